package fl

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestFedAvgWeightsBySamplesAndSkipsBadUpdates(t *testing.T) {
	ups := []Update{
		{Node: "a", Weights: []float64{1, 2}, Samples: 10},
		{Node: "b", Weights: []float64{4, 8}, Samples: 30},
		{Node: "nan", Weights: []float64{math.NaN(), 0}, Samples: 5},
		{Node: "inf", Weights: []float64{math.Inf(-1), 0}, Samples: 5},
		{Node: "short", Weights: []float64{1}, Samples: 5},
		{Node: "zero", Weights: []float64{1, 1}, Samples: 0},
		{Node: "negative", Weights: []float64{1, 1}, Samples: -3},
		{Node: "nansamples", Weights: []float64{1, 1}, Samples: math.NaN()},
		{Node: "a", Weights: []float64{100, 100}, Samples: 100},
	}
	avg, skipped, err := FedAvg(ups, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{(10*1 + 30*4) / 40.0, (10*2 + 30*8) / 40.0}
	if avg[0] != want[0] || avg[1] != want[1] {
		t.Fatalf("avg %v, want %v", avg, want)
	}
	for node, reason := range map[string]string{"nan": SkipNotFinite, "inf": SkipNotFinite, "short": SkipWrongLength,
		"zero": SkipNoSamples, "negative": SkipNoSamples, "nansamples": SkipNoSamples, "a (#8)": SkipDuplicate} {
		if !strings.HasPrefix(skipped[node], reason) {
			t.Errorf("skipped[%q] = %q, want %q", node, skipped[node], reason)
		}
	}
	if len(skipped) != 7 {
		t.Errorf("skipped %v, want 7 entries", skipped)
	}
	if _, _, err := FedAvg(ups[2:8], 2); err != ErrNoUpdates {
		t.Errorf("only bad updates: err %v, want ErrNoUpdates", err)
	}
	if _, _, err := FedAvg(ups, 0); err == nil {
		t.Error("length 0 accepted")
	}
	if _, _, err := FedAvg([]Update{{Node: "big", Weights: []float64{math.MaxFloat64}, Samples: 1e10}}, 1); err == nil {
		t.Error("an overflowing average accepted")
	}
}

func TestWeightedSumEqualsFedAvg(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 1000
	var ups []Update
	sum := make([]float64, n+1)
	for i := range 5 {
		w := make([]float64, n)
		for j := range w {
			w[j] = r.NormFloat64()
		}
		u := Update{Node: string(rune('a' + i)), Weights: w, Samples: float64(10 + r.IntN(100))}
		ups = append(ups, u)
		for j, x := range Weighted(u.Weights, u.Samples) {
			sum[j] += x
		}
	}
	avg, skipped, err := FedAvg(ups, n)
	if err != nil || len(skipped) != 0 {
		t.Fatal(err, skipped)
	}
	got, samples, err := FromWeighted(sum)
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, u := range ups {
		total += u.Samples
	}
	if samples != total {
		t.Errorf("samples %v, want %v", samples, total)
	}
	for j := range avg {
		if math.Abs(avg[j]-got[j]) > 1e-12 {
			t.Fatalf("value %d: secure-aggregation form %v, FedAvg %v", j, got[j], avg[j])
		}
	}
	for _, bad := range [][]float64{nil, {1}, {1, 0}, {1, -2}, {math.NaN(), 1}, {1, math.Inf(1)}} {
		if _, _, err := FromWeighted(bad); err == nil {
			t.Errorf("FromWeighted(%v) accepted", bad)
		}
	}
}

// BenchmarkFedAvg averages 10 updates of a 10 MB model (2.6M float32
// values); bytes are the models' float32 size.
func BenchmarkFedAvg(b *testing.B) {
	const n, nodes = 2_600_000, 10
	ups := make([]Update, nodes)
	for i := range ups {
		w := make([]float64, n)
		for j := range w {
			w[j] = float64(i+j%7) * 0.01
		}
		ups[i] = Update{Node: string(rune('a' + i)), Weights: w, Samples: float64(100 + i)}
	}
	b.SetBytes(n * 4 * nodes)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := FedAvg(ups, n); err != nil {
			b.Fatal(err)
		}
	}
}
