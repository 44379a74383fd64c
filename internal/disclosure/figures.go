package disclosure

import (
	"maps"
	"slices"
	"sort"
	"strconv"
)

// Category is a value of one kind a patient has: ("gender", "female"),
// ("modality", "CT"), ("body_part", "CHEST"), ... A patient may have
// several values of one kind (modalities) or none.
type Category struct{ Kind, Value string }

// Subject is what the figures of an answer need to know of one patient.
type Subject struct {
	Member  Member
	Studies int
	// Youngest and Oldest are the patient's youngest and oldest ages at
	// diagnosis, when HasAge.
	Youngest, Oldest int
	HasAge           bool
	Categories       []Category
}

// StudiesCap is the most studies one patient adds to a studies figure:
// the figure's sensitivity, which its noise is scaled by.
const StudiesCap = 5

// Tally gathers the subjects of one set: the set itself, and (worked out
// only when figures are drawn) the subsets of each category and the
// subsets by decade of age that the age range is made from. Every figure
// is a count of one of these sets, drawn with the seed of that set.
type Tally struct {
	All      Group
	Studies  int
	subjects []*Subject
	members  []Member
	split    bool
	cats     map[Category]Group
	young    map[int]Group // decade of the youngest age -> patients
	old      map[int]Group // decade of the oldest age -> patients
}

// NewTally returns an empty tally.
func NewTally() *Tally { return &Tally{} }

// NewTallySize returns an empty tally with room for n subjects.
func NewTallySize(n int) *Tally {
	return &Tally{subjects: make([]*Subject, 0, n), members: make([]Member, 0, n)}
}

// Add counts one subject; each must be added once, and must not change
// while the tally is in use.
func (t *Tally) Add(s *Subject) {
	t.All.Add(s.Member)
	t.Studies += min(s.Studies, StudiesCap)
	t.subjects = append(t.subjects, s)
	t.members = append(t.members, s.Member)
	t.split = false
}

// splitUp works out the category and age subsets.
func (t *Tally) splitUp() {
	if t.split {
		return
	}
	t.cats, t.young, t.old = map[Category]Group{}, map[int]Group{}, map[int]Group{}
	for _, s := range t.subjects {
		for _, c := range s.Categories {
			g := t.cats[c]
			g.Add(s.Member)
			t.cats[c] = g
		}
		if s.HasAge {
			y, o := floorDiv(s.Youngest, 10), floorDiv(s.Oldest, 10)
			g := t.young[y]
			g.Add(s.Member)
			t.young[y] = g
			g = t.old[o]
			g.Add(s.Member)
			t.old[o] = g
		}
	}
	t.split = true
}

// Members lists the members added, in the order they were.
func (t *Tally) Members() []Member { return t.members }

// Category returns the count of one category.
func (t *Tally) Category(kind, value string) int {
	t.splitUp()
	return t.cats[Category{kind, value}].N
}

// Figures are the protected figures of one set: what an answer about it
// may say. Zero Subjects means "fewer than the floor, or none".
type Figures struct {
	Subjects int `json:"subjects"`
	// Studies counts the set's imaging studies, at most StudiesCap a
	// patient.
	Studies int `json:"studies"`
	// AgeRange spans the decades that hold all but the youngest and the
	// oldest few patients (fewer than the floor at each end), as [lo, hi]
	// years.
	AgeRange *[2]int `json:"age_range,omitempty"`
	// Categories names, per kind, the values held by at least the floor
	// of the set's patients, sorted.
	Categories map[string][]string `json:"categories,omitempty"`
}

// Named returns the values of kind that the figures name (never nil).
func (f Figures) Named(kind string) []string {
	if v := f.Categories[kind]; v != nil {
		return v
	}
	return []string{}
}

// Figures protects the figures of the set t within its dataset, whose
// whole population is pop (nil: not known). Every figure is a count of a
// set, with its noise drawn from that set's seed and a label naming the
// figure:
//
//   - subjects: the set's size; under the floor (after noise), the whole
//     answer is empty;
//   - studies: the number of imaging studies of the set's patients;
//   - a category is named when the count of the set's patients in it
//     passes the floor; when fewer than the floor of the category's
//     patients in the whole dataset are left out of the set, the
//     category's whole count is used instead (complement control within
//     the category);
//   - the age range runs from the decade where the count of patients at
//     or below it first passes the floor to the decade where the count at
//     or above it does, so that neither end names a few patients.
func (p Policy) Figures(t, pop *Tally) Figures {
	f := p.floor()
	var out Figures
	allSeed := t.All.seed(p.Key)
	out.Subjects = p.Count(t.All.N, allSeed[:], "subjects")
	if out.Subjects == 0 {
		return Figures{}
	}
	// One patient adds up to StudiesCap studies (more are not counted),
	// so the noise is StudiesCap times larger; drawn afresh whenever the
	// total changes, so that a change in a patient's studies does not
	// come out exact as the difference of two answers about one set.
	out.Studies = p.count(t.Studies, allSeed[:], "studies/"+strconv.Itoa(t.Studies), p.scale()*StudiesCap)
	t.splitUp()
	if pop != nil {
		pop.splitUp()
	}
	out.Categories = map[string][]string{}
	for _, c := range slices.SortedFunc(maps.Keys(t.cats), func(a, b Category) int {
		if a.Kind != b.Kind {
			return compare(a.Kind, b.Kind)
		}
		return compare(a.Value, b.Value)
	}) {
		g := t.cats[c]
		if g.N < f {
			continue
		}
		if pop != nil {
			if pg, ok := pop.cats[c]; ok && pg.N > g.N && pg.N-g.N < f {
				g = pg
			}
		}
		s := g.seed(p.Key)
		if p.Count(g.N, s[:], "category/"+c.Kind+"/"+c.Value) > 0 {
			out.Categories[c.Kind] = append(out.Categories[c.Kind], c.Value)
		}
	}
	for _, v := range out.Categories {
		sort.Strings(v)
	}
	if lo, hi, ok := p.ageRange(t); ok {
		out.AgeRange = &[2]int{lo, hi}
	}
	return out
}

// ageRange finds the decades where the cumulative counts from below and
// from above first pass the floor.
func (p Policy) ageRange(t *Tally) (lo, hi int, ok bool) {
	ys := slices.Sorted(maps.Keys(t.young))
	os := slices.Sorted(maps.Keys(t.old))
	var cum Group
	loFound := false
	for _, d := range ys {
		cum = cum.Plus(t.young[d])
		s := cum.seed(p.Key)
		if p.Count(cum.N, s[:], "age/below") > 0 {
			lo, loFound = d*10, true
			break
		}
	}
	cum = Group{}
	hiFound := false
	for i := len(os) - 1; i >= 0; i-- {
		d := os[i]
		cum = cum.Plus(t.old[d])
		s := cum.seed(p.Key)
		if p.Count(cum.N, s[:], "age/above") > 0 {
			hi, hiFound = d*10+9, true
			break
		}
	}
	if !loFound || !hiFound {
		return 0, 0, false
	}
	if lo > hi {
		lo, hi = hi-9, lo+9
	}
	return lo, hi, true
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
