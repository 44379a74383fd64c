package disclosure

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"
)

// Refusal reasons of an Answer.
const (
	RefusedDay   = "budget-day"   // the researcher's budget for today is spent
	RefusedTotal = "budget-total" // the researcher's budget is spent for good
)

// Outcome says how an answer was made, for the audit log and the attack
// detector; it is not shown to researchers.
type Outcome string

// Outcomes of Control.Answer.
const (
	OutcomeFresh      Outcome = "fresh"      // figures drawn for a set not answered before
	OutcomeSame       Outcome = "same"       // the set was answered before: the same figures
	OutcomeRepeat     Outcome = "repeat"     // the same question by the same researcher on unchanged data
	OutcomeFloor      Outcome = "floor"      // fewer patients than the floor: empty
	OutcomePopulation Outcome = "population" // within the floor of the whole dataset: its figures
	OutcomeOverlap    Outcome = "overlap"    // within the floor of a set answered before: its figures
	OutcomeRefused    Outcome = "refused"    // budget spent
)

// Settings are the stateful parts of a node's disclosure control. The
// zero value is the default: overlap control on, a budget of
// DefaultDailyEpsilon a day and DefaultTotalEpsilon in all per researcher
// and dataset.
type Settings struct {
	// NoOverlap turns the overlap control off: then only the floor and
	// the complement control stand between two close sets.
	NoOverlap bool
	// Epsilon is charged for each answer; 0 means 2/Noise (the Laplace
	// mechanism's epsilon for the subjects and for the studies, each
	// 1/Noise for its sensitivity), or 1 without noise.
	Epsilon float64
	// DailyEpsilon and TotalEpsilon cap what one researcher may spend at
	// one dataset in a day (UTC) and in all. 0 means the default;
	// negative means no cap.
	DailyEpsilon, TotalEpsilon float64
	// MaxHistory bounds the sets kept per dataset for the overlap control
	// (0: DefaultMaxHistory); the oldest go first.
	MaxHistory int
	// Thresholds of the attack detector (0: the defaults).
	Alerts AlertThresholds
	// Clock replaces time.Now (tests, the attack harness).
	Clock func() time.Time
}

// Defaults of Settings.
const (
	DefaultDailyEpsilon = 10
	DefaultTotalEpsilon = 40
	DefaultMaxHistory   = 50000
)

// AlertThresholds say how many suspicious answers one researcher may get
// at one dataset in a day before the node raises an alert.
type AlertThresholds struct {
	// Differencing counts answers served from a close set the same
	// researcher asked with another question (default 5).
	Differencing int
	// Complement counts answers to a question that selects nearly the
	// whole dataset but not all of it (default 3).
	Complement int
	// Sweep counts distinct questions of one shape: the same criteria
	// with other values (default 12).
	Sweep int
}

func (a AlertThresholds) withDefaults() AlertThresholds {
	if a.Differencing <= 0 {
		a.Differencing = 5
	}
	if a.Complement <= 0 {
		a.Complement = 3
	}
	if a.Sweep <= 0 {
		a.Sweep = 12
	}
	return a
}

// Alert kinds.
const (
	AlertDifferencing = "differencing"
	AlertComplement   = "complement"
	AlertSweep        = "sweep"
	AlertBudget       = "budget"
)

// Alert is an attack pattern seen in one researcher's questions.
type Alert struct {
	Time       time.Time `json:"time"`
	Dataset    string    `json:"dataset"`
	Researcher string    `json:"researcher"`
	Kind       string    `json:"kind"`
	Count      int       `json:"count"`
	Detail     string    `json:"detail"`
}

// Budget is what a researcher has left at a dataset.
type Budget struct {
	Charged   float64
	DayLeft   float64
	TotalLeft float64
}

// StoredSet is one answered set as the Store keeps it.
type StoredSet struct {
	Set        []byte // Set.bytes
	Figures    []byte // JSON of Figures
	By         string // the researcher who first asked ("" for the catalogue)
	Query      string // the question's key
	Population bool   // the whole dataset
	Created    time.Time
}

// Store keeps a Control's state across restarts. The node's index
// implements it on SQLite and PostgreSQL; MemStore keeps it in memory.
type Store interface {
	// LoadDisclosure returns a dataset's member register (members in
	// ordinal order) and its newest answered sets, at most limit besides
	// the answers for whole populations (all of those), oldest first.
	LoadDisclosure(ctx context.Context, dataset string, limit int) ([]Member, []StoredSet, error)
	// SaveDisclosure writes a batch in one transaction: members appended
	// to registers, sets answered, budget charges.
	SaveDisclosure(ctx context.Context, b Batch) error
	// Spent returns what researcher spent at dataset on day and in all.
	Spent(ctx context.Context, dataset, researcher, day string) (onDay, total float64, err error)
}

// Batch is what a Control has to write since its last Flush.
type Batch struct {
	Members []Members
	Sets    []DatasetSet
	Charges []Charge
}

// Members are new members of a dataset's register, the first taking
// ordinal First.
type Members struct {
	Dataset string
	First   uint32
	Members []Member
}

// DatasetSet is an answered set of one dataset.
type DatasetSet struct {
	Dataset string
	StoredSet
}

// Charge is what a researcher spent at a dataset on a day.
type Charge struct {
	Dataset, Researcher, Day string
	Epsilon                  float64
}

func (b *Batch) empty() bool { return len(b.Members) == 0 && len(b.Sets) == 0 && len(b.Charges) == 0 }

// Control is a node's disclosure control over time: the Policy for each
// figure, plus what needs memory of earlier answers (the overlap control,
// the privacy budget, the attack detector). Its methods are safe for
// concurrent use.
type Control struct {
	p     Policy
	s     Settings
	store Store

	mu       sync.Mutex
	datasets map[string]*dsState
	budgets  map[[2]string]*budgetState // dataset, researcher
	repeats  map[repeatKey]Figures
	activity map[[2]string]*activity // dataset, researcher
	alerts   []Alert
	// pending is what Answer decided and Flush has not yet written.
	pending Batch
}

type dsState struct {
	// popVersion is the data version whose whole population was last
	// given an answer, popEntry that answer.
	popVersion string
	popEntry   *entry
	register   map[Member]uint32
	next       uint32
	entries    []*entry
}

type entry struct {
	set     *Set
	figures Figures
	by      string
	query   string
	pop     bool
}

type budgetState struct {
	day          string
	onDay, total float64
}

type repeatKey struct{ dataset, researcher, query, version string }

type activity struct {
	day          string
	differencing int
	complement   int
	shapes       map[string]map[string]bool
	raised       map[string]bool
}

// maxRepeats bounds the remembered questions; past it they are forgotten
// all at once (a forgotten repeat is charged again: the safe side).
const maxRepeats = 100000

// maxAlerts bounds the alerts kept in memory for Alerts.
const maxAlerts = 1000

// NewControl returns a control applying p, with its state in store (nil:
// in memory only).
func NewControl(p Policy, s Settings, store Store) (*Control, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		store = NewMemStore()
	}
	if s.Clock == nil {
		s.Clock = time.Now
	}
	if s.MaxHistory <= 0 {
		s.MaxHistory = DefaultMaxHistory
	}
	if s.DailyEpsilon == 0 {
		s.DailyEpsilon = DefaultDailyEpsilon
	}
	if s.TotalEpsilon == 0 {
		s.TotalEpsilon = DefaultTotalEpsilon
	}
	if s.Epsilon == 0 {
		s.Epsilon = 1
		if b := p.scale(); b > 0 {
			s.Epsilon = 2 / b
		}
	}
	if math.IsNaN(s.Epsilon) || s.Epsilon < 0 || math.IsNaN(s.DailyEpsilon) || math.IsNaN(s.TotalEpsilon) {
		return nil, fmt.Errorf("%w: epsilon and budgets must be numbers, epsilon not negative", ErrPolicy)
	}
	s.Alerts = s.Alerts.withDefaults()
	return &Control{p: p, s: s, store: store, datasets: map[string]*dsState{},
		budgets: map[[2]string]*budgetState{}, repeats: map[repeatKey]Figures{}, activity: map[[2]string]*activity{}}, nil
}

// Policy returns the per-figure policy, defaults filled in.
func (c *Control) Policy() Policy { return c.p.Effective() }

// Settings returns the settings, defaults filled in.
func (c *Control) Settings() Settings { return c.s }

// Request is one question about one dataset.
type Request struct {
	Dataset string
	// Researcher is the asking researcher's pseudonym at this node; ""
	// for the node's own publications (the catalogue), which are neither
	// charged nor watched.
	Researcher string
	// Query names the question as asked (its canonical form), and Shape
	// the question with its values left out; both only feed the repeat
	// cache and the attack detector.
	Query, Shape string
	// Version names the state of the dataset's data: the same question
	// on the same version is a repeat.
	Version string
	// Matched is the set the question selects; Population the whole
	// dataset.
	Matched, Population *Tally
}

// Answer is what the control lets out about a request.
type Answer struct {
	Figures Figures
	Refused string
	Budget  *Budget // nil for requests without a researcher
	Outcome Outcome
	Alerts  []Alert // raised by this request
}

func (c *Control) day() string { return c.s.Clock().UTC().Format("2006-01-02") }

// Flush writes what the answers since the last Flush decided (budget
// charges, answered sets, new members) in one transaction. Call it before
// any answer leaves the process, so that an answer is never out while
// its charge could still be lost. After a failure the batch is kept and
// written with the next one.
func (c *Control) Flush(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending.empty() {
		return nil
	}
	if err := c.store.SaveDisclosure(ctx, c.pending); err != nil {
		return fmt.Errorf("disclosure: save: %w", err)
	}
	c.pending = Batch{}
	return nil
}

// Answer decides what may be said about r.Matched. In order: a question
// repeated by the same researcher on unchanged data gets the same answer
// free; a researcher whose budget is spent is refused; a set under the
// floor is empty; a set leaving out fewer than the floor of the whole
// dataset gets the dataset's figures (complement control); a set closer
// than its radius (the floor to twice the floor, drawn from its seed) to
// a set answered before (by anyone) gets that set's figures (overlap
// control); any other set gets fresh figures, drawn from its own seed, and
// is remembered. Call Flush before the answer leaves the process.
func (c *Control) Answer(ctx context.Context, r Request) (Answer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var a Answer
	var b *budgetState
	if r.Researcher != "" {
		var err error
		if b, err = c.budget(ctx, r.Dataset, r.Researcher); err != nil {
			return a, err
		}
		if f, ok := c.repeats[repeatKey{r.Dataset, r.Researcher, r.Query, r.Version}]; ok {
			a.Figures, a.Outcome, a.Budget = f, OutcomeRepeat, c.left(b, 0)
			return a, nil
		}
		eps := c.s.Epsilon
		switch {
		case c.s.TotalEpsilon >= 0 && b.total+eps > c.s.TotalEpsilon+1e-9:
			a.Refused = RefusedTotal
		case c.s.DailyEpsilon >= 0 && b.onDay+eps > c.s.DailyEpsilon+1e-9:
			a.Refused = RefusedDay
		}
		if a.Refused != "" {
			a.Outcome, a.Budget = OutcomeRefused, c.left(b, 0)
			a.Alerts = c.watch(r, a.Outcome, nil)
			return a, nil
		}
	}
	f, outcome, hit, err := c.decide(ctx, r)
	if err != nil {
		return a, err
	}
	a.Figures, a.Outcome = f, outcome
	if b != nil {
		c.pending.Charges = append(c.pending.Charges, Charge{r.Dataset, r.Researcher, b.day, c.s.Epsilon})
		b.onDay += c.s.Epsilon
		b.total += c.s.Epsilon
		a.Budget = c.left(b, c.s.Epsilon)
		if len(c.repeats) >= maxRepeats {
			clear(c.repeats)
		}
		c.repeats[repeatKey{r.Dataset, r.Researcher, r.Query, r.Version}] = f
		a.Alerts = c.watch(r, outcome, hit)
	}
	return a, nil
}

// decide applies the floor, the complement and the overlap controls.
func (c *Control) decide(ctx context.Context, r Request) (Figures, Outcome, *entry, error) {
	floor := c.p.floor()
	if r.Matched.All.N < floor {
		return Figures{}, OutcomeFloor, nil, nil
	}
	ds, err := c.dataset(ctx, r.Dataset)
	if err != nil {
		return Figures{}, "", nil, err
	}
	if c.s.NoOverlap {
		if r.Population != nil && r.Population.All.N > r.Matched.All.N && r.Population.All.N-r.Matched.All.N < floor {
			return c.p.Figures(r.Population, r.Population), OutcomePopulation, nil, nil
		}
		return c.p.Figures(r.Matched, r.Population), OutcomeFresh, nil, nil
	}
	set, err := c.setOf(r.Dataset, ds, r.Matched)
	if err != nil {
		return Figures{}, "", nil, err
	}
	// The whole dataset has an answer (or a close set does) before any
	// set is looked up; done once per version of the data.
	var popEntry *entry
	if r.Population != nil && r.Population.All.N >= floor {
		if r.Version == "" || r.Version != ds.popVersion || ds.popEntry == nil {
			pop, err := c.setOf(r.Dataset, ds, r.Population)
			if err != nil {
				return Figures{}, "", nil, err
			}
			e, _ := c.nearest(ds, pop, floor, true)
			if e == nil {
				if e, err = c.remember(r.Dataset, ds, &entry{set: pop, figures: c.p.Figures(r.Population, r.Population), pop: true}); err != nil {
					return Figures{}, "", nil, err
				}
			}
			ds.popVersion, ds.popEntry = r.Version, e
		}
		popEntry = ds.popEntry
		// Complement control: a set leaving out fewer than the floor of
		// the dataset gets the dataset's answer, however far it is from
		// the sets answered before (after an ingest, the dataset's answer
		// may be that of a set a few patients away).
		if n, all := r.Matched.All.N, r.Population.All.N; n < all && all-n < floor {
			return popEntry.figures, OutcomePopulation, popEntry, nil
		}
	}
	// Overlap control, with a radius of its own for each set, from the
	// floor to twice the floor: whether an answer is shared tells only
	// that the sets are close by some unknown distance, not that they
	// differ by fewer than exactly k patients. The answers for whole
	// populations are left to the complement control above, at exactly
	// the floor: what it tells (fewer than k left out) the floor tells of
	// the set left out anyway, and a wider radius there would answer
	// every large set of a small dataset with the dataset's total.
	if popEntry != nil && popEntry.set.Distance(set) == 0 {
		return popEntry.figures, OutcomeSame, popEntry, nil
	}
	if e, d := c.nearest(ds, set, c.radius(r.Matched), false); e != nil {
		if d == 0 {
			return e.figures, OutcomeSame, e, nil
		}
		return e.figures, OutcomeOverlap, e, nil
	}
	e, err := c.remember(r.Dataset, ds, &entry{set: set, figures: c.p.Figures(r.Matched, r.Population), by: r.Researcher, query: r.Query})
	if err != nil {
		return Figures{}, "", nil, err
	}
	return e.figures, OutcomeFresh, e, nil
}

// radius is the overlap control's radius for the set t: from the floor
// to twice the floor less one, drawn from the set's seed (the same set
// always gets the same radius).
func (c *Control) radius(t *Tally) int {
	f := c.p.floor()
	s := t.All.seed(c.p.Key)
	u := c.p.uniform(s[:], "overlap-radius")
	return f + min(int(u*float64(f)), f-1)
}

// nearest returns the remembered set closest to s among those less than
// radius away (answers for whole populations only withPop), the earliest
// of equals, and its distance.
func (c *Control) nearest(ds *dsState, s *Set, radius int, withPop bool) (*entry, int) {
	var best *entry
	bestD := radius
	for _, e := range ds.entries {
		if e.pop && !withPop {
			continue
		}
		if d := e.set.n - s.n; d >= bestD || -d >= bestD {
			continue
		}
		if d := e.set.Distance(s); d < bestD {
			best, bestD = e, d
			if d == 0 {
				break
			}
		}
	}
	return best, bestD
}

func (c *Control) remember(dataset string, ds *dsState, e *entry) (*entry, error) {
	fj, err := json.Marshal(e.figures)
	if err != nil {
		return nil, err
	}
	c.pending.Sets = append(c.pending.Sets, DatasetSet{dataset, StoredSet{Set: e.set.bytes(), Figures: fj, By: e.by, Query: e.query, Population: e.pop, Created: c.s.Clock().UTC()}})
	ds.entries = append(ds.entries, e)
	if len(ds.entries) > c.s.MaxHistory {
		// Forget the oldest set that is not a whole population (those
		// anchor the complement control).
		for i, old := range ds.entries {
			if !old.pop {
				ds.entries = append(ds.entries[:i], ds.entries[i+1:]...)
				break
			}
		}
	}
	return e, nil
}

// dataset loads a dataset's register and history on first use.
func (c *Control) dataset(ctx context.Context, id string) (*dsState, error) {
	if ds := c.datasets[id]; ds != nil {
		return ds, nil
	}
	members, sets, err := c.store.LoadDisclosure(ctx, id, c.s.MaxHistory)
	if err != nil {
		return nil, fmt.Errorf("disclosure: load %s: %w", id, err)
	}
	ds := &dsState{register: make(map[Member]uint32, len(members))}
	for i, m := range members {
		ds.register[m] = uint32(i)
	}
	ds.next = uint32(len(members))
	for _, s := range sets {
		e := &entry{set: setFromBytes(s.Set), by: s.By, query: s.Query, pop: s.Population}
		if err := json.Unmarshal(s.Figures, &e.figures); err != nil {
			return nil, fmt.Errorf("disclosure: load %s: stored figures: %w", id, err)
		}
		ds.entries = append(ds.entries, e)
	}
	c.datasets[id] = ds
	return ds, nil
}

// setOf maps a tally's members to the dataset's register, registering
// the new ones.
func (c *Control) setOf(dataset string, ds *dsState, t *Tally) (*Set, error) {
	s := &Set{}
	var fresh []Member
	for _, m := range t.members {
		o, ok := ds.register[m]
		if !ok {
			o = ds.next + uint32(len(fresh))
			fresh = append(fresh, m)
			ds.register[m] = o
		}
		s.add(o)
	}
	if len(fresh) > 0 {
		c.pending.Members = append(c.pending.Members, Members{dataset, ds.next, fresh})
		ds.next += uint32(len(fresh))
	}
	return s, nil
}

func (c *Control) budget(ctx context.Context, dataset, researcher string) (*budgetState, error) {
	day := c.day()
	k := [2]string{dataset, researcher}
	b := c.budgets[k]
	if b != nil {
		// Once loaded, the process's own count is the truth (its charges
		// may not be flushed yet): a new day starts from nothing.
		if b.day != day {
			b.day, b.onDay = day, 0
		}
		return b, nil
	}
	onDay, total, err := c.store.Spent(ctx, dataset, researcher, day)
	if err != nil {
		return nil, fmt.Errorf("disclosure: budget: %w", err)
	}
	b = &budgetState{day: day, onDay: onDay, total: total}
	c.budgets[k] = b
	return b, nil
}

func (c *Control) left(b *budgetState, charged float64) *Budget {
	out := &Budget{Charged: charged, DayLeft: math.Inf(1), TotalLeft: math.Inf(1)}
	if c.s.DailyEpsilon >= 0 {
		out.DayLeft = math.Max(0, c.s.DailyEpsilon-b.onDay)
	}
	if c.s.TotalEpsilon >= 0 {
		out.TotalLeft = math.Max(0, c.s.TotalEpsilon-b.total)
	}
	out.DayLeft = math.Min(out.DayLeft, out.TotalLeft)
	return out
}

// Spent returns what researcher has left at dataset now.
func (c *Control) Spent(ctx context.Context, dataset, researcher string) (*Budget, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.budget(ctx, dataset, researcher)
	if err != nil {
		return nil, err
	}
	return c.left(b, 0), nil
}

// watch feeds the attack detector with one answer and returns the alerts
// it raises (each kind at most once per researcher, dataset and day).
func (c *Control) watch(r Request, o Outcome, hit *entry) []Alert {
	day := c.day()
	k := [2]string{r.Dataset, r.Researcher}
	act := c.activity[k]
	if act == nil || act.day != day {
		if len(c.activity) > maxRepeats {
			clear(c.activity)
		}
		act = &activity{day: day, shapes: map[string]map[string]bool{}, raised: map[string]bool{}}
		c.activity[k] = act
	}
	var out []Alert
	raise := func(kind string, n int, detail string) {
		if act.raised[kind] {
			return
		}
		act.raised[kind] = true
		a := Alert{Time: c.s.Clock().UTC(), Dataset: r.Dataset, Researcher: r.Researcher, Kind: kind, Count: n, Detail: detail}
		out = append(out, a)
		if len(c.alerts) >= maxAlerts {
			c.alerts = append(c.alerts[:0], c.alerts[len(c.alerts)-maxAlerts/2:]...)
		}
		c.alerts = append(c.alerts, a)
	}
	switch o {
	case OutcomeRefused:
		raise(AlertBudget, 1, "privacy budget spent")
		return out
	case OutcomeOverlap:
		if hit != nil && hit.by == r.Researcher && hit.query != r.Query {
			act.differencing++
		}
	case OutcomePopulation:
		act.complement++
	}
	if r.Shape != "" {
		qs := act.shapes[r.Shape]
		if qs == nil {
			if len(act.shapes) > 1000 {
				clear(act.shapes)
			}
			qs = map[string]bool{}
			act.shapes[r.Shape] = qs
		}
		if len(qs) <= c.s.Alerts.Sweep {
			qs[r.Query] = true
		}
		if len(qs) >= c.s.Alerts.Sweep {
			raise(AlertSweep, len(qs), "many questions of one shape with other values")
		}
	}
	if act.differencing >= c.s.Alerts.Differencing {
		raise(AlertDifferencing, act.differencing, "questions whose sets differ by fewer patients than the floor from the researcher's earlier ones")
	}
	if act.complement >= c.s.Alerts.Complement {
		raise(AlertComplement, act.complement, "questions selecting all but a few patients of the dataset")
	}
	return out
}

// Alerts returns the alerts raised since the process started (the most
// recent maxAlerts), oldest first.
func (c *Control) Alerts() []Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Alert(nil), c.alerts...)
}

// MemStore is a Store in memory, for tests and nodes without a database.
type MemStore struct {
	mu      sync.Mutex
	members map[string][]Member
	sets    map[string][]StoredSet
	spent   map[[3]string]float64
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{members: map[string][]Member{}, sets: map[string][]StoredSet{}, spent: map[[3]string]float64{}}
}

// LoadDisclosure implements Store.
func (m *MemStore) LoadDisclosure(_ context.Context, dataset string, limit int) ([]Member, []StoredSet, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sets := m.sets[dataset]
	if len(sets) > limit {
		sets = sets[len(sets)-limit:]
	}
	return append([]Member(nil), m.members[dataset]...), append([]StoredSet(nil), sets...), nil
}

// SaveDisclosure implements Store.
func (m *MemStore) SaveDisclosure(_ context.Context, b Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	// All or nothing: check every register first.
	next := map[string]int{}
	for _, ms := range b.Members {
		have, ok := next[ms.Dataset]
		if !ok {
			have = len(m.members[ms.Dataset])
		}
		if int(ms.First) != have {
			return fmt.Errorf("disclosure: register of %s has %d members, not %d", ms.Dataset, have, ms.First)
		}
		next[ms.Dataset] = have + len(ms.Members)
	}
	for _, ms := range b.Members {
		m.members[ms.Dataset] = append(m.members[ms.Dataset], ms.Members...)
	}
	for _, st := range b.Sets {
		m.sets[st.Dataset] = append(m.sets[st.Dataset], st.StoredSet)
	}
	for _, ch := range b.Charges {
		m.spent[[3]string{ch.Dataset, ch.Researcher, ch.Day}] += ch.Epsilon
	}
	return nil
}

// Spent implements Store.
func (m *MemStore) Spent(_ context.Context, dataset, researcher, day string) (float64, float64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var total float64
	for k, v := range m.spent {
		if k[0] == dataset && k[1] == researcher {
			total += v
		}
	}
	return m.spent[[3]string{dataset, researcher, day}], total, nil
}
