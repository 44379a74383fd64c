package executor

import (
	"fmt"
	"sort"
)

// Flavor is a job's resources in EUCAIM jobman's terms.
type Flavor struct {
	Name string
	// CPUs is the number of CPUs a run may use.
	CPUs float64
	// GPUs is the number of GPUs (nvidia.com/gpu) it asks for.
	GPUs int
}

// Flavors are the resource flavors jobs may name; an empty name is
// no-gpu.
var Flavors = map[string]Flavor{
	"no-gpu":     {Name: "no-gpu", CPUs: 1},
	"small-gpu":  {Name: "small-gpu", CPUs: 2, GPUs: 1},
	"medium-gpu": {Name: "medium-gpu", CPUs: 4, GPUs: 1},
	"large-gpu":  {Name: "large-gpu", CPUs: 8, GPUs: 2},
}

// LookupFlavor returns the flavor name names ("" is no-gpu).
func LookupFlavor(name string) (Flavor, error) {
	if name == "" {
		name = "no-gpu"
	}
	f, ok := Flavors[name]
	if !ok {
		names := make([]string, 0, len(Flavors))
		for n := range Flavors {
			names = append(names, n)
		}
		sort.Strings(names)
		return Flavor{}, fmt.Errorf("%w: unknown flavor %q (one of %v)", ErrInvalid, name, names)
	}
	return f, nil
}
