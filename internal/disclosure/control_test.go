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
	fem := c.ask(t, ctl, "r1", "(A or B) and female", func(i int) bool { return (i == target || inB(i)) && c.female[i] })
	femB := c.ask(t, ctl, "r1", "B and female", func(i int) bool { return inB(i) && c.female[i] })
	if !reflect.DeepEqual(fem.Figures, femB.Figures) {
		t.Fatalf("equality test tells the target's sex: %+v vs %+v", fem.Figures, femB.Figures)
	}
	// Without the overlap control the two answers are drawn apart (the
	// test above can fail).
	off := newTestControl(t, 3, Settings{NoOverlap: true})
	x := c.ask(t, off, "r1", "A or B", func(i int) bool { return i == target || inB(i) })
	y := c.ask(t, off, "r1", "B", inB)
	if reflect.DeepEqual(x.Figures, y.Figures) {
		t.Log("without overlap control the answers happen to coincide")
	}
	if x.Outcome != OutcomeFresh || y.Outcome != OutcomeFresh {
		t.Fatalf("without overlap control: %s, %s", x.Outcome, y.Outcome)
	}
}

// Differencing by many trackers recovers nothing: every set within the
// floor of an answered one gets that one's answer, so the estimate of a
// small group's size from pairs is always 0.
func TestControlTrackerDifferences(t *testing.T) {
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
	c := newCohort("ds", 100, 4)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ctl, err := NewControl(Policy{Floor: 10, Round: 1, Noise: 2, Key: key},
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
