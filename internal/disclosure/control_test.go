package disclosure

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// cohort is a dataset of n synthetic patients for control tests.
type cohort struct {
	id       string
	subjects []*Subject
	ages     []int
	female   []bool
}

func newCohort(id string, n int, seed uint64) *cohort {
	r := rand.New(rand.NewPCG(seed, 1))
	c := &cohort{id: id}
	for i := range n {
		age := 30 + r.IntN(60)
		f := r.IntN(2) == 0
		g := "male"
		if f {
			g = "female"
		}
		c.subjects = append(c.subjects, &Subject{Member: MemberOf(id, fmt.Sprintf("MOS-%04d", i)), Studies: 1 + r.IntN(3),
			Youngest: age, Oldest: age, HasAge: true, Categories: []Category{{"gender", g}, {"modality", []string{"CT", "MR"}[r.IntN(2)]}}})
		c.ages = append(c.ages, age)
		c.female = append(c.female, f)
	}
	return c
}

// tally counts the patients match selects.
func (c *cohort) tally(match func(i int) bool) *Tally {
	t := NewTally()
	for i, s := range c.subjects {
		if match(i) {
			t.Add(s)
		}
	}
	return t
}

func (c *cohort) ask(t *testing.T, ctl *Control, researcher, query string, match func(i int) bool) Answer {
	t.Helper()
	a, err := ctl.Answer(context.Background(), Request{Dataset: c.id, Researcher: researcher, Query: query, Version: "v1",
		Matched: c.tally(match), Population: c.tally(func(int) bool { return true })})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newTestControl(t *testing.T, noise float64, s Settings) *Control {
	t.Helper()
	if s.DailyEpsilon == 0 {
		s.DailyEpsilon = -1
	}
	if s.TotalEpsilon == 0 {
		s.TotalEpsilon = -1
	}
	ctl, err := NewControl(Policy{Floor: 10, Round: 1, Noise: noise, Key: key}, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ctl
}

// A group under the floor is invisible to complement differencing: the
// whole dataset minus the group gets the whole dataset's answer.
func TestControlComplement(t *testing.T) {
	t.Parallel()
	for _, overlap := range []bool{true, false} {
		c := newCohort("ds", 100, 1)
		ctl := newTestControl(t, 3, Settings{NoOverlap: !overlap})
		all := c.ask(t, ctl, "r1", "all", func(int) bool { return true })
		for a := 0; a < 120; a++ {
			small := 0
			for _, age := range c.ages {
				if age == a {
					small++
				}
			}
			if small == 0 || small >= 10 {
				continue
			}
			not := c.ask(t, ctl, "r1", fmt.Sprint("not-age-", a), func(i int) bool { return c.ages[i] != a })
			if !reflect.DeepEqual(not.Figures, all.Figures) || not.Outcome != OutcomePopulation {
				t.Fatalf("overlap %v: NOT(age = %d) (%d patients left out) answered %+v (%s), all %+v", overlap, a, small, not.Figures, not.Outcome, all.Figures)
			}
		}
	}
}

// General differencing (A ∪ B) − B, in either order, by one researcher or
// two, and the set-equality test (Q against Q AND female for a male
// target) all get identical answers under the overlap control.
func TestControlOverlap(t *testing.T) {
	t.Parallel()
	c := newCohort("ds", 200, 2)
	ctl := newTestControl(t, 3, Settings{})
	target := 7
	for i := range c.subjects {
		if c.female[i] {
			continue
		}
		target = i
		break
	}
	// B: patients aged 40 to 70 other than the target.
	inB := func(i int) bool { return i != target && c.ages[i] >= 40 && c.ages[i] <= 70 }
	withA := c.ask(t, ctl, "r1", "A or B", func(i int) bool { return i == target || inB(i) })
	b := c.ask(t, ctl, "r2", "B", inB)
	if !reflect.DeepEqual(withA.Figures, b.Figures) || b.Outcome != OutcomeOverlap {
		t.Fatalf("B after A∪B: %+v (%s), A∪B %+v", b.Figures, b.Outcome, withA.Figures)
	}
	// The equality test: Q holds the target and a few men; Q AND female
	// leaves them out. Under the overlap control both get one answer,
	// whatever the target's sex.
	var men []int
	for i := range c.subjects {
		if !c.female[i] && i != target && len(men) < 3 && !inB(i) {
			men = append(men, i)
		}
	}
	inQ := func(i int) bool {
		return i == target || (inB(i) && c.female[i]) || i == men[0] || i == men[1] || i == men[2]
	}
	q := c.ask(t, ctl, "r1", "Q", inQ)
	qf := c.ask(t, ctl, "r1", "Q and female", func(i int) bool { return inQ(i) && c.female[i] })
	if !reflect.DeepEqual(q.Figures, qf.Figures) {
		t.Fatalf("the equality test separates Q from Q AND female: %+v vs %+v", q.Figures, qf.Figures)
	}
	// Without the overlap control the two answers are drawn apart (the
	// test above can fail).
	off := newTestControl(t, 3, Settings{NoOverlap: true})
	x := c.ask(t, off, "r1", "Q", inQ)
	y := c.ask(t, off, "r1", "Q and female", func(i int) bool { return inQ(i) && c.female[i] })
	if reflect.DeepEqual(x.Figures, y.Figures) || x.Outcome != OutcomeFresh || y.Outcome != OutcomeFresh {
		t.Fatalf("without overlap control Q and Q AND female: %+v (%s), %+v (%s)", x.Figures, x.Outcome, y.Figures, y.Outcome)
	}
}

// Differencing by many trackers recovers nothing: every set within the
// floor of an answered one gets that one's answer, so the estimate of a
// small group's size from pairs is always 0.
func TestControlTrackerDifferences(t *testing.T) {
	t.Parallel()
	c := newCohort("ds", 300, 3)
	ctl := newTestControl(t, 3, Settings{})
	inA := func(i int) bool { return c.ages[i] == 45 }
	for lo := 30; lo < 80; lo++ {
		inB := func(i int) bool { return !inA(i) && c.ages[i] >= lo && c.ages[i] < lo+15 }
		u := c.ask(t, ctl, "r1", fmt.Sprint("A or B", lo), func(i int) bool { return inA(i) || inB(i) })
		b := c.ask(t, ctl, "r1", fmt.Sprint("B", lo), inB)
		if u.Figures.Subjects != b.Figures.Subjects {
			t.Fatalf("tracker %d: A∪B %d, B %d: a difference leaked", lo, u.Figures.Subjects, b.Figures.Subjects)
		}
	}
	if len(ctl.Alerts()) == 0 {
		t.Error("fifty tracker pairs raised no alert")
	}
}

// The budget refuses past the daily cap, lets the researcher go on the
// next day, stops for good at the total cap, keeps budgets apart per
// researcher, and does not charge a repeated question.
func TestControlBudget(t *testing.T) {
	t.Parallel()
	c := newCohort("ds", 100, 4)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	// Noise 4: each answer costs 2/4 = 0.5 (subjects and studies).
	ctl, err := NewControl(Policy{Floor: 10, Round: 1, Noise: 4, Key: key},
		Settings{DailyEpsilon: 2, TotalEpsilon: 3, Clock: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := 0
	ask := func(r string) Answer {
		q++
		return c.ask(t, ctl, r, fmt.Sprint("q", q), func(i int) bool { return c.ages[i] > 20+q })
	}
	for i := range 4 {
		if a := ask("r1"); a.Refused != "" || a.Budget.Charged != 0.5 {
			t.Fatalf("answer %d: %+v", i, a)
		}
	}
	if a := ask("r1"); a.Refused != RefusedDay || a.Budget.DayLeft != 0 || a.Budget.TotalLeft != 1 || a.Figures.Subjects != 0 {
		t.Fatalf("past the daily cap: %+v %+v", a, a.Budget)
	}
	if a := ask("r2"); a.Refused != "" {
		t.Fatalf("another researcher refused: %+v", a)
	}
	// The same question again is free, even past the cap.
	if a := c.ask(t, ctl, "r1", "q1", func(i int) bool { return c.ages[i] > 21 }); a.Outcome != OutcomeRepeat || a.Refused != "" || a.Budget.Charged != 0 {
		t.Fatalf("repeat: %+v", a)
	}
	now = now.Add(24 * time.Hour)
	for i := range 6 {
		a := ask("r1")
		switch {
		case i < 2 && a.Refused != "":
			t.Fatalf("day 2, answer %d refused: %+v", i, a)
		case i >= 2 && a.Refused != RefusedTotal:
			t.Fatalf("day 2, answer %d: %q, want the total cap", i, a.Refused)
		}
	}
	if al := ctl.Alerts(); len(al) == 0 || al[0].Kind != AlertBudget {
		t.Errorf("alerts %+v, want a budget alert", al)
	}
}

// State survives a restart: the budget spent and the sets answered.
func TestControlStore(t *testing.T) {
	t.Parallel()
	c := newCohort("ds", 100, 5)
	st := NewMemStore()
	mk := func() *Control {
		ctl, err := NewControl(Policy{Floor: 10, Round: 1, Noise: 3, Key: key}, Settings{DailyEpsilon: 1, TotalEpsilon: -1}, st)
		if err != nil {
			t.Fatal(err)
		}
		return ctl
	}
	ctl := mk()
	inB := func(i int) bool { return c.ages[i] >= 50 }
	first := c.ask(t, ctl, "r1", "B", inB)
	c.ask(t, ctl, "r1", "x", func(i int) bool { return c.ages[i] >= 40 })
	c.ask(t, ctl, "r1", "y", func(i int) bool { return c.ages[i] >= 45 })
	if err := ctl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctl = mk()
	if a := c.ask(t, ctl, "r1", "z", func(i int) bool { return c.ages[i] >= 60 }); a.Refused != RefusedDay {
		t.Fatalf("after a restart the day's budget is back: %+v", a)
	}
	a := c.ask(t, ctl, "r2", "B minus one", func(i int) bool { return inB(i) && i != firstOf(c, inB) })
	if !reflect.DeepEqual(a.Figures, first.Figures) || a.Outcome != OutcomeOverlap {
		t.Fatalf("after a restart a close set is drawn afresh: %+v (%s) vs %+v", a.Figures, a.Outcome, first.Figures)
	}
}

func firstOf(c *cohort, match func(int) bool) int {
	for i := range c.subjects {
		if match(i) {
			return i
		}
	}
	return -1
}

// A sweep over one criterion raises an alert once.
func TestControlSweepAlert(t *testing.T) {
	t.Parallel()
	c := newCohort("ds", 100, 6)
	ctl := newTestControl(t, 3, Settings{})
	var raised int
	for a := 30; a < 60; a++ {
		ans, err := ctl.Answer(context.Background(), Request{Dataset: c.id, Researcher: "r1", Query: fmt.Sprint("not age ", a), Shape: "NOT(age)",
			Version: "v", Matched: c.tally(func(i int) bool { return c.ages[i] != a }), Population: c.tally(func(int) bool { return true })})
		if err != nil {
			t.Fatal(err)
		}
		for _, al := range ans.Alerts {
			if al.Kind == AlertSweep {
				raised++
			}
		}
	}
	if raised != 1 {
		t.Fatalf("sweep alerts %d, want 1", raised)
	}
}

// Figures never name a category or an age decade held by fewer than the
// floor, whatever the set.
func TestFiguresFloor(t *testing.T) {
	t.Parallel()
	p := Policy{Floor: 10, Round: 1, Noise: 0, Key: key}
	c := newCohort("ds", 60, 7)
	f := p.Figures(c.tally(func(i int) bool { return i < 25 }), nil)
	if f.Subjects != 25 {
		t.Fatalf("subjects %d", f.Subjects)
	}
	t25 := c.tally(func(i int) bool { return i < 25 })
	for kind, vals := range f.Categories {
		for _, v := range vals {
			if n := t25.Category(kind, v); n < 10 {
				t.Errorf("%s %s named with %d patients", kind, v, n)
			}
		}
	}
	if f.AgeRange == nil {
		t.Fatal("no age range")
	}
	below, above := 0, 0
	for i := range 25 {
		if c.ages[i] < f.AgeRange[0]+10 {
			below++
		}
		if c.ages[i] > f.AgeRange[1]-10 {
			above++
		}
	}
	if below < 10 || above < 10 {
		t.Errorf("age range %v: %d patients in its first decade or below, %d in its last or above", *f.AgeRange, below, above)
	}
}

// Figures of random sets keep their invariants: subjects 0 or at least
// the floor, nothing else when subjects is 0, age ranges on whole
// decades, and the same figures for the same set whatever the order.
func TestFiguresProperties(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	c := newCohort("ds", 400, 8)
	pop := c.tally(func(int) bool { return true })
	for i := range 2000 {
		p := Policy{Floor: 5 + r.IntN(20), Round: 1, Noise: float64(r.IntN(6)), Key: key}
		frac := r.Float64()
		in := map[int]bool{}
		for j := range c.subjects {
			if r.Float64() < frac*0.2 {
				in[j] = true
			}
		}
		f := p.Figures(c.tally(func(j int) bool { return in[j] }), pop)
		if f.Subjects != 0 && f.Subjects < p.Floor {
			t.Fatalf("case %d: %d subjects under the floor %d", i, f.Subjects, p.Floor)
		}
		if f.Subjects == 0 && (f.Studies != 0 || f.AgeRange != nil || len(f.Categories) != 0) {
			t.Fatalf("case %d: an empty answer says %+v", i, f)
		}
		if ar := f.AgeRange; ar != nil && (ar[0]%10 != 0 || (ar[1]+1)%10 != 0 || ar[0] > ar[1]) {
			t.Fatalf("case %d: age range %v", i, *ar)
		}
		rev := NewTally()
		for j := len(c.subjects) - 1; j >= 0; j-- {
			if in[j] {
				rev.Add(c.subjects[j])
			}
		}
		if g := p.Figures(rev, pop); !reflect.DeepEqual(g, f) {
			t.Fatalf("case %d: order changed the figures: %+v vs %+v", i, g, f)
		}
	}
}

// A full history forgets its oldest sets but never the whole dataset's:
// the complement control holds after thousands of questions.
func TestControlHistoryBound(t *testing.T) {
	t.Parallel()
	c := newCohort("ds", 400, 9)
	ctl := newTestControl(t, 3, Settings{MaxHistory: 20})
	all := c.ask(t, ctl, "r1", "all", func(int) bool { return true })
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 300 {
		c.ask(t, ctl, "r2", fmt.Sprint("random ", i), func(int) bool { return r.IntN(2) == 0 })
	}
	if n := len(ctl.datasets["ds"].entries); n != 20 {
		t.Errorf("history holds %d sets, want 20", n)
	}
	not := c.ask(t, ctl, "r1", "all but one", func(i int) bool { return i != 3 })
	if !reflect.DeepEqual(not.Figures, all.Figures) {
		t.Fatalf("after a full history, all but one patient: %+v, all %+v", not.Figures, all.Figures)
	}
}

// After an ingest of a few patients, a set that leaves out fewer than the
// floor of the new population still gets the dataset's answer, even when
// it is far from every answered set.
func TestControlComplementAfterIngest(t *testing.T) {
	t.Parallel()
	c := newCohort("ds", 100, 10)
	ctl := newTestControl(t, 3, Settings{})
	all := func(int) bool { return true }
	before := c.ask(t, ctl, "r1", "all", all)
	grown := newCohort("ds", 106, 10) // the same 100 patients and 6 new ones
	ask := func(match func(int) bool) Answer {
		a, err := ctl.Answer(context.Background(), Request{Dataset: "ds", Researcher: "r1", Query: "all but five", Version: "v2",
			Matched: grown.tally(match), Population: grown.tally(all)})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := ask(func(i int) bool { return i >= 5 })
	if a.Outcome != OutcomePopulation || !reflect.DeepEqual(a.Figures, before.Figures) {
		t.Fatalf("all but 5 of 106 after an ingest: %+v (%s), the dataset's answer %+v", a.Figures, a.Outcome, before.Figures)
	}
}

// The overlap control is no exact threshold: scanning pads onto two
// anchors, one with the target's group and one without, and comparing
// where each scan first gets a fresh answer, does not tell the target's
// sex reliably (with a fixed radius of k it does, every time).
func TestControlOverlapNoExactThreshold(t *testing.T) {
	t.Parallel()
	var right, wrong int
	for trial := range 30 {
		female := trial%2 == 0
		c := newCohort("ds", 400, uint64(200+trial))
		target := 0
		c.ages[target], c.female[target] = 95, female
		s := *c.subjects[target]
		s.Youngest, s.Oldest = 95, 95
		c.subjects[target] = &s
		ctl := newTestControl(t, 3, Settings{})
		byAge := map[int][]int{}
		for i := 1; i < len(c.subjects); i++ {
			byAge[c.ages[i]] = append(byAge[c.ages[i]], i)
		}
		// Pads: single patients aged 60 to 89, one at a time.
		var pads []int
		for a := 60; a < 90; a++ {
			pads = append(pads, byAge[a]...)
		}
		scan := func(name string, base func(int) bool, withF bool) int {
			anchor := c.ask(t, ctl, "r1", name, base)
			for j := 1; j <= len(pads); j++ {
				in := map[int]bool{}
				for _, p := range pads[:j] {
					in[p] = true
				}
				f := c.ask(t, ctl, "r1", fmt.Sprint(name, j), func(i int) bool {
					return base(i) || in[i] || (i == target && c.female[i] == withF)
				})
				if !reflect.DeepEqual(f.Figures, anchor.Figures) {
					return j
				}
			}
			return -1
		}
		jF := scan("F", func(i int) bool { return i != target && c.ages[i] >= 30 && c.ages[i] < 45 }, true)
		jM := scan("M", func(i int) bool { return i != target && c.ages[i] >= 45 && c.ages[i] < 60 }, false)
		switch {
		case jF == jM:
		case (jF < jM) == female:
			right++
		default:
			wrong++
		}
	}
	t.Logf("target's sex from the overlap control: %d right, %d wrong of 30", right, wrong)
	if wrong == 0 && right > 10 {
		t.Errorf("the overlap control told the target's sex %d times and never wrongly: an exact threshold", right)
	}
}

// A patient with many studies does not show in three answers: studies
// are counted at most StudiesCap a patient, with noise to match.
func TestStudiesThreeSet(t *testing.T) {
	t.Parallel()
	right := 0
	const trials = 100
	for trial := range trials {
		female := trial%2 == 0
		c := newCohort("ds", 400, uint64(1000+trial))
		s := *c.subjects[0]
		s.Studies, s.Youngest, s.Oldest = 40, 95, 95
		c.subjects[0], c.ages[0], c.female[0] = &s, 95, female
		ctl := newTestControl(t, 3, Settings{})
		inA := func(i int) bool { return c.ages[i] == 95 && c.female[i] }
		p1 := func(i int) bool { return c.ages[i] >= 30 && c.ages[i] < 40 }
		p2 := func(i int) bool { return c.ages[i] >= 60 && c.ages[i] < 70 }
		u := c.ask(t, ctl, "r1", "A or P1 or P2", func(i int) bool { return inA(i) || p1(i) || p2(i) })
		a1 := c.ask(t, ctl, "r1", "P1", p1)
		a2 := c.ask(t, ctl, "r1", "P2", p2)
		if est := u.Figures.Studies - a1.Figures.Studies - a2.Figures.Studies; (2*est > StudiesCap) == female {
			right++
		}
	}
	t.Logf("the target's sex from three studies figures: %d of %d right", right, trials)
	if right > 75 {
		t.Errorf("three studies figures tell a patient's sex %d times in %d", right, trials)
	}
}

// Sets that leave out k or more of a small dataset are never answered
// with the dataset's total: only the complement control, at exactly k,
// reaches the whole dataset's answer.
func TestControlPopulationOnlyByComplement(t *testing.T) {
	t.Parallel()
	for seed := range 20 {
		c := newCohort(fmt.Sprint("ds", seed), 28, uint64(300+seed))
		ctl := newTestControl(t, 2.5, Settings{})
		all := c.ask(t, ctl, "r1", "all", func(int) bool { return true })
		for left := 18; left >= 10; left-- {
			a := c.ask(t, ctl, "r1", fmt.Sprint("all but ", left), func(i int) bool { return i >= left })
			if a.Outcome == OutcomePopulation || reflect.DeepEqual(a.Figures, all.Figures) {
				t.Fatalf("seed %d: a set leaving out %d of 28 got the dataset's answer (%s)", seed, left, a.Outcome)
			}
		}
	}
}
