// Package airlock checks everything a job or an analysis would send out
// of a node before it leaves: statistical disclosure checks no weaker
// than the defaults of SACRO's ACRO (cell threshold 10, zeros
// disclosive, degrees of freedom at least 10, dominance (2, 90%) and
// p-ratio 10% on sums and means, negative or unusual values to review),
// file types, sizes, row-level and DICOM content, and logs; outputs that
// need a person wait in the node's store until released (by two people
// where the node says so) or rejected, every decision audited.
package airlock

import (
	"errors"
	"time"
)

// ErrNotImplemented marks the contract's stubs.
var ErrNotImplemented = errors.New("airlock: not implemented")

// Policy is a node's airlock settings (node.json "airlock").
type Policy struct {
	CellThreshold int     `json:"cell_threshold"`   // default 10
	MinDF         int     `json:"min_df"`           // default 10
	DominanceN    int     `json:"dominance_n"`      // default 2
	DominanceK    float64 `json:"dominance_k"`      // default 0.9
	PRatio        float64 `json:"p_ratio"`          // default 0.1
	ZerosDisclose *bool   `json:"zeros_disclosive"` // default true
	MaxFileBytes  int64   `json:"max_file_bytes"`   // default 10 MiB
	MaxTotalBytes int64   `json:"max_total_bytes"`  // default 50 MiB
	MaxFiles      int     `json:"max_files"`        // default 100
	MaxLogLines   int     `json:"max_log_lines"`    // default 10000
	ManualRelease bool    `json:"manual_release"`   // every output waits for a person
	TwoPerson     bool    `json:"two_person"`       // a release needs two different people
}

// Permissions are what the permit allows beyond aggregates.
type Permissions struct {
	RowLevel bool
	DICOM    bool
}

// Decision is the airlock's verdict on one output.
type Decision string

// Decisions.
const (
	Release Decision = "release"
	Review  Decision = "review" // waits for a person
	Refuse  Decision = "refuse"
)

// Finding is one check's result.
type Finding struct {
	Check  string   `json:"check"`
	Result Decision `json:"result"`
	Detail string   `json:"detail"` // never the values themselves
}

// Verdict is the decision on one output and why.
type Verdict struct {
	Decision Decision  `json:"decision"`
	Findings []Finding `json:"findings"`
}

// Output is one output of a job or analysis.
type Output struct {
	Job  string
	Name string
	Data []byte
}

// Check runs every check on one output.
func Check(pol Policy, perm Permissions, out Output) Verdict {
	return Verdict{Decision: Refuse, Findings: []Finding{{Check: "contract", Result: Refuse, Detail: "not implemented"}}}
}

// Held is an output waiting in the store.
type Held struct {
	ID        string    `json:"id"`
	Job       string    `json:"job"`
	Name      string    `json:"name"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Verdict   Verdict   `json:"verdict"`
	Created   time.Time `json:"created"`
	State     string    `json:"state"` // held, released, rejected
	Approvals []string  `json:"approvals,omitempty"`
	DecidedBy []string  `json:"decided_by,omitempty"`
	Reason    string    `json:"reason,omitempty"`
}
