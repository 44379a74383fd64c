package compute

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// wideTable writes n rows of y and x1..x19 (a linear model of 20
// coefficients with the intercept).
func wideTable(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 3))
	var b strings.Builder
	b.Grow(n * 20 * 10)
	b.WriteString("y")
	for j := 1; j < 20; j++ {
		fmt.Fprintf(&b, ",x%d", j)
	}
	b.WriteString("\n")
	x := make([]float64, 20)
	for i := 0; i < n; i++ {
		y := 1.0
		for j := 1; j < 20; j++ {
			x[j] = r.NormFloat64()
			y += float64(j) * 0.1 * x[j]
		}
		y += r.NormFloat64()
		fmt.Fprintf(&b, "%.5f", y)
		for j := 1; j < 20; j++ {
			fmt.Fprintf(&b, ",%.5f", x[j])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// BenchmarkLM3x1M is a linear model of 20 coefficients over three nodes
// of a million rows each, end to end in memory: levels, the four steps of
// secure aggregation (real secagg, 128-bit ring) and the fit, each node
// computing its part from its table (real stats).
func BenchmarkLM3x1M(b *testing.B) {
	rows := 1_000_000
	if testing.Short() {
		rows = 50_000
	}
	a, targets := federation(b, 10, map[string]string{"t": wideTable(1, rows)}, map[string]string{"t": wideTable(2, rows)}, map[string]string{"t": wideTable(3, rows)})
	terms := make([]string, 19)
	for j := range terms {
		terms[j] = fmt.Sprintf("x%d", j+1)
	}
	q := AnalysisRequest{Type: TypeLM, Table: "t", Formula: "y ~ " + strings.Join(terms, " + ")}
	r := &Runner{Ask: a, Researcher: "rosa"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		res, err := r.Analyze(context.Background(), fmt.Sprintf("bench-%d", i), q, targets)
		if err != nil || res.N != 3*rows {
			b.Fatalf("%v %+v", err, res)
		}
	}
}

// BenchmarkAggregate10Nodes is one secure aggregation of a kept update
// of the largest model a message carries, across ten nodes in memory:
// the overhead a FedAvg round adds to the nodes' training.
func BenchmarkAggregate10Nodes(b *testing.B) {
	for _, size := range []int{1000, maxValues} {
		b.Run(fmt.Sprintf("values=%d", size), func(b *testing.B) {
			tabs := make([]map[string]string, 10)
			for i := range tabs {
				tabs[i] = map[string]string{}
			}
			a, targets := federation(b, 10, tabs...)
			w := make([]float64, size)
			for i := range w {
				w[i] = float64(i%97) / 97
			}
			// Each node's update kept under the permit the round's steps
			// carry to it (a kept update answers only its own permit).
			for _, t := range targets {
				a.nodes[t.Node].keep(&update{comp: "fl", permit: t.PermitID, round: 1, weights: w, samples: 100, created: a.nodes[t.Node].now()})
			}
			r := &Runner{Ask: a, Researcher: "rosa"}
			b.SetBytes(int64(8 * size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				agg, err := r.Aggregate(context.Background(), "fl", 1, fmt.Sprintf("s-%d", i), targets, Part{Kind: PartUpdate, Round: 1}, size+1)
				if err != nil || len(agg.Rows) != 10 {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(a.bytes.Load())/float64(i), "msgbytes/op")
		})
	}
}
