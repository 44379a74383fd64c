package attack

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"
)

// Accuracy is how close ordinary answers come to the truth.
type Accuracy struct {
	Queries int // ordinary queries sent
	// Answers is the number of dataset answers of at least MinCount,
	// the ones the error is measured over.
	Answers int
	MAE     float64 // mean absolute error of those answers
	MaxErr  int     // largest absolute error among them
	// Suppressed counts answers of 0 whose true count was not 0, and
	// Refused answers refused for a spent budget.
	Suppressed, Refused int
}

// MinCount is the smallest answered count the accuracy is measured on:
// ordinary research asks about groups of this size and more.
const MinCount = 20

// MeasureAccuracy sends n ordinary researcher queries (1 to 3 criteria,
// drawn from seed) with an account of its own, and compares the answers
// of MinCount and more with the nodes' raw counts.
func MeasureAccuracy(ctx context.Context, f *Federation, n int, seed uint64) (Accuracy, error) {
	var acc Accuracy
	c := &Client{URL: f.URL, HTTP: &http.Client{Timeout: time.Minute}}
	r := rand.New(rand.NewPCG(seed, 0x6f7264696e617279))
	var sum float64
	var account Account
	for i := range n {
		// Ordinary counts come from many researchers, each asking a few
		// questions, well within a day's budget.
		if i%OrdinaryPerResearcher == 0 {
			var err error
			if account, err = f.NewAccount(ctx); err != nil {
				return acc, err
			}
		}
		q := Ordinary(r)
		ans, floor, err := c.Search(ctx, account, q)
		if err != nil {
			return acc, err
		}
		f.mu.Lock()
		f.Floor = max(f.Floor, floor)
		f.mu.Unlock()
		acc.Queries++
		truth, err := f.Truth(ctx, q)
		if err != nil {
			return acc, err
		}
		for _, cell := range f.Cells {
			a := ans[cell]
			switch {
			case a.Refused != "":
				acc.Refused++
			case a.Count == 0 && truth[cell] > 0:
				acc.Suppressed++
			case a.Count >= MinCount:
				e := a.Count - truth[cell]
				if e < 0 {
					e = -e
				}
				sum += float64(e)
				acc.MaxErr = max(acc.MaxErr, e)
				acc.Answers++
			}
		}
	}
	acc.MAE = sum / float64(max(acc.Answers, 1))
	return acc, nil
}

// OrdinaryPerResearcher is how many questions of the ordinary workload
// one researcher asks before the next takes over.
const OrdinaryPerResearcher = 10

// Report is a whole run.
type Report struct {
	Setup    string // the federation and the nodes' settings, in words
	K        int    // hidden cells have true counts 1 to K-1
	Results  []Result
	Accuracy *Accuracy
	// AccuracySetup describes the federation of the accuracy
	// measurement when it differs from the attacks'.
	AccuracySetup string
	Took          time.Duration
}

// Describe says in words what f is: nodes, patients, and the floor the
// nodes report.
func Describe(f *Federation) string {
	return fmt.Sprintf("%d nodes x 1 Tier 3 dataset x %d synthetic patients (seed %d); node floor %d as reported; hub daily query limit raised to %d so that the nodes' own controls are measured",
		len(f.Cells), f.setup.Patients, f.setup.Seed, f.Floor, HubQueriesPerDay)
}

// Run runs the plan's attacks against f and, when p.Workload > 0, the
// accuracy measurement.
func Run(ctx context.Context, f *Federation, p Plan) (Report, error) {
	t0 := time.Now()
	var rep Report
	res, err := RunAttacks(ctx, f, p)
	rep.Results = res
	if err != nil {
		return rep, err
	}
	if p.Workload > 0 {
		acc, err := MeasureAccuracy(ctx, f, p.Workload, p.Seed)
		if err != nil {
			return rep, err
		}
		rep.Accuracy = &acc
	}
	p.defaults()
	rep.K = (&runner{f: f, p: p}).k()
	rep.Setup = Describe(f)
	rep.Took = time.Since(t0)
	return rep, nil
}

// Markdown writes the report as a Markdown table and a few lines.
func (rep Report) Markdown(w io.Writer) error {
	pct := func(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) }
	fmt.Fprintf(w, "Setup: %s.\n\n", rep.Setup)
	if len(rep.Results) > 0 {
		fmt.Fprintf(w, "Hidden cells: true counts 1 to %d (narrowing and studies: ages held by exactly one patient at a node).\n\n", rep.K-1)
		fmt.Fprintln(w, "| attack | hidden cells | recovered exactly | share | blind guess | queries | days waited | refused | note |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---|")
		for _, r := range rep.Results {
			fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %d | %d | %d | %s |\n", r.Title, r.Cells, r.Recovered, pct(r.Share()), pct(r.BlindShare()),
				r.Queries, r.Days, r.Refusals, r.Note)
		}
		fmt.Fprintln(w)
	}
	if a := rep.Accuracy; a != nil {
		if rep.AccuracySetup != "" {
			fmt.Fprintf(w, "Accuracy setup: %s.\n\n", rep.AccuracySetup)
		}
		mae := "n/a"
		if a.Answers > 0 {
			mae = fmt.Sprintf("%.2f", a.MAE)
		}
		fmt.Fprintln(w, "| ordinary queries | answers >= 20 | mean absolute error | largest error | suppressed (true count > 0) | refused |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|")
		fmt.Fprintf(w, "| %d | %d | %s | %d | %d | %d |\n\n", a.Queries, a.Answers, mae, a.MaxErr, a.Suppressed, a.Refused)
	}
	_, err := fmt.Fprintf(w, "Run time %.1f s.\n", rep.Took.Seconds())
	return err
}
