package compute

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// TestPlainOnlyWhenAsked: an update trained for secure aggregation
// (the training step did not ask for plain) is not handed out in the
// clear to a hub that asks for it with StepPlain; one trained for a
// plain run is.
func TestPlainOnlyWhenAsked(t *testing.T) {
	a, targets := federation(t, 3, map[string]string{})
	n, tg := a.nodes["node1"], targets[0]
	n.keep(&update{comp: "c1", permit: tg.PermitID, round: 1, weights: []float64{1, 2}, samples: 20, created: n.now()})
	raw, _ := json.Marshal(PlainParams{Round: 1})
	ans := n.Handle(context.Background(), "t", fed.ComputeBody{Computation: "c1", Step: StepPlain, Round: 1, Permit: tg.Token, Researcher: "rosa", Params: raw})
	if ans.Refused == "" || ans.Result != nil {
		t.Fatalf("an update trained for secure aggregation left in the clear: %+v", ans)
	}
	n.keep(&update{comp: "c2", permit: tg.PermitID, round: 1, weights: []float64{1, 2}, samples: 20, plain: true, created: n.now()})
	ans = n.Handle(context.Background(), "t", fed.ComputeBody{Computation: "c2", Step: StepPlain, Round: 1, Permit: tg.Token, Researcher: "rosa", Params: raw})
	if ans.Refused != "" || ans.Result == nil {
		t.Fatalf("a plain run's update was refused: %+v", ans)
	}
}

// TestKeptStateBoundToPermit: an update kept for a computation under one
// permit is not reached by the same computation id under another permit.
func TestKeptStateBoundToPermit(t *testing.T) {
	a, targets := federation(t, 3, map[string]string{})
	n, tg := a.nodes["node1"], targets[0]
	n.keep(&update{comp: "c1", permit: "pm-someone-else", round: 1, weights: []float64{1, 2}, samples: 20, plain: true, created: n.now()})
	raw, _ := json.Marshal(PlainParams{Round: 1})
	ans := n.Handle(context.Background(), "t", fed.ComputeBody{Computation: "c1", Step: StepPlain, Round: 1, Permit: tg.Token, Researcher: "rosa", Params: raw})
	if ans.Refused == "" || ans.Result != nil {
		t.Fatalf("another permit's update was reached: %+v", ans)
	}
	n.keepScores(&scored{comp: "c1", permit: "pm-someone-else", scores: []float64{0.1}, labels: []float64{1}, created: n.now()})
	if n.keptScores("c1", tg.PermitID) != nil {
		t.Fatal("another permit's scores were reached")
	}
}

// TestDPUpdateNeedsItsSurvivors: an update noised for at least t nodes
// in the sum does not join an aggregation that may end with fewer (with
// 3 nodes, the default threshold is 2: a sum of two would carry 2/3 of
// the noise the accountant counts).
func TestDPUpdateNeedsItsSurvivors(t *testing.T) {
	a, targets := federation(t, 3, map[string]string{}, map[string]string{}, map[string]string{})
	for _, tg := range targets {
		n := a.nodes[tg.Node]
		n.keep(&update{comp: "c1", permit: tg.PermitID, round: 1, weights: []float64{1, 2}, samples: 1, minSurvivors: 3, created: n.now()})
	}
	r := &Runner{Ask: a, Researcher: "rosa"}
	if _, err := r.Aggregate(context.Background(), "c1", 1, "c1/update/1", targets, Part{Kind: PartUpdate, Round: 1}, 3); err == nil {
		t.Fatal("DP updates noised for 3 nodes were summed under a threshold of 2")
	}
	agg, err := r.Aggregate(context.Background(), "c1", 1, "c1/update/1b", targets, Part{Kind: PartUpdate, Round: 1, MinSum: 3}, 3)
	if err != nil {
		t.Fatalf("a sum that needs all three: %v", err)
	}
	if len(agg.Rows) != 3 {
		t.Fatalf("rows %v", agg.Rows)
	}
}

// TestValidateOverlap: a validation of a fitted model over a node's rows
// and a second one over the same rows but one (a variable missing at a
// single row added to the formula) would give that row's label by
// difference of the counts: the node's overlap control refuses the
// second, as it does for models.
func TestValidateOverlap(t *testing.T) {
	csv := synth(91, 200, 0)
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	lines[0] += ",w"
	for i := 1; i < len(lines); i++ {
		if i == 1 {
			lines[i] += ",NA"
		} else {
			lines[i] += fmt.Sprintf(",%d", i%7)
		}
	}
	a, targets := federation(t, 10, map[string]string{"clin": strings.Join(lines, "\n") + "\n"})
	r := &Runner{Ask: a, Researcher: "rosa"}
	spec := ValidationSpec{Table: "clin", Formula: "outcome ~ x", Family: "binomial", Coefficients: []string{"(Intercept)", "x"}, Estimates: []float64{0, 1}, Grid: []float64{0.5}, Bins: 1}
	if _, err := r.Validate(context.Background(), "vo-1", spec, targets); err != nil {
		t.Fatal(err)
	}
	spec.Formula, spec.Coefficients, spec.Estimates = "outcome ~ x + w", []string{"(Intercept)", "x", "w"}, []float64{0, 1, 0}
	res, err := r.Validate(context.Background(), "vo-2", spec, targets)
	if err == nil {
		t.Fatalf("a validation over all rows but one passed: %+v", res)
	}
	if !strings.Contains(err.Error(), "node1 overlap") {
		t.Errorf("refused for another reason: %v", err)
	}
}
