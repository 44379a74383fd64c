package fl

import (
	"math"
	"testing"
)

// TestEpsilonKnownValue checks the accountant against a value computed
// by hand. The Gaussian mechanism with noise multiplier σ = 1 (L2
// sensitivity 1) has Rényi DP α/(2σ²) = α/2 at order α; one round, δ =
// 1e-5. The conversion ε(α) = α/2 + log((α−1)/α) − (log δ + log α)/(α−1)
// with log δ = −11.512925:
//
//	α = 5.25: 2.625 − 0.211309 + (11.512925 − 1.658228)/4.25 = 4.732413
//	α = 5.5:  2.75  − 0.200671 + (11.512925 − 1.704748)/4.5  = 4.728924
//	α = 5.75: 2.875 − 0.180324 + (11.512925 − 1.749200)/4.75 = 4.750191
//
// (the classic conversion α/2 + log(1/δ)/(α−1), at its best α = 1 +
// √(2·11.512925) = 5.798, gives 5.30: looser). The grid's best is α =
// 5.5: ε = 4.7289.
func TestEpsilonKnownValue(t *testing.T) {
	got := Epsilon(1, 1, 1e-5)
	if math.Abs(got-4.728924) > 1e-5 {
		t.Fatalf("Epsilon(1, 1, 1e-5) = %.6f, want 4.728924", got)
	}
	// Composition: T rounds at σ equal one round at σ/√T.
	if a, b := Epsilon(2, 4, 1e-6), Epsilon(1, 1, 1e-6); math.Abs(a-b) > 1e-12 {
		t.Errorf("4 rounds at σ=2 give %v, one at σ=1 %v", a, b)
	}
	// More rounds, less noise, smaller δ: more ε.
	if !(Epsilon(1, 10, 1e-5) > Epsilon(1, 5, 1e-5) && Epsilon(0.5, 1, 1e-5) > Epsilon(1, 1, 1e-5) &&
		Epsilon(1, 1, 1e-9) > Epsilon(1, 1, 1e-5)) {
		t.Error("epsilon is not monotone")
	}
	if Epsilon(1, 0, 1e-5) != 0 {
		t.Error("no rounds spend something")
	}
	for _, c := range [][3]float64{{0, 1, 1e-5}, {-1, 1, 1e-5}, {1, 1, 0}, {1, 1, 1}, {math.NaN(), 1, 1e-5}} {
		if e := Epsilon(c[0], int(c[1]), c[2]); !math.IsInf(e, 1) {
			t.Errorf("Epsilon%v = %v, want +Inf", c, e)
		}
	}
}

// TestEpsilonAboveExactCurve: the RDP bound is an upper bound of the
// exact privacy loss of the Gaussian mechanism (Balle and Wang 2018:
// δ(ε) = Φ(1/(2σ) − εσ) − e^ε Φ(−1/(2σ) − εσ)), and not far above it.
func TestEpsilonAboveExactCurve(t *testing.T) {
	phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	exact := func(sigma, delta float64) float64 {
		lo, hi := 0.0, 100.0
		for range 200 {
			e := (lo + hi) / 2
			d := phi(1/(2*sigma)-e*sigma) - math.Exp(e)*phi(-1/(2*sigma)-e*sigma)
			if d > delta {
				lo = e
			} else {
				hi = e
			}
		}
		return hi
	}
	for _, sigma := range []float64{0.8, 1, 2, 5} {
		for _, delta := range []float64{1e-5, 1e-8} {
			e, x := Epsilon(sigma, 1, delta), exact(sigma, delta)
			if e < x || e > 1.6*x+0.05 {
				t.Errorf("σ=%v δ=%v: RDP ε %.4f, exact %.4f", sigma, delta, e, x)
			}
		}
	}
}

func TestRoundEpsilonAddsUp(t *testing.T) {
	var sum float64
	for r := 1; r <= 20; r++ {
		e := RoundEpsilon(1.1, r, 1e-5)
		if e < 0 {
			t.Fatalf("round %d spends %v", r, e)
		}
		sum += e
	}
	if want := Epsilon(1.1, 20, 1e-5); math.Abs(sum-want) > 1e-9 {
		t.Errorf("20 rounds spent %v, accountant says %v", sum, want)
	}
}

func TestClipAndNoise(t *testing.T) {
	c, norm, err := ClipL2([]float64{3, 4}, 1)
	if err != nil || norm != 5 || math.Abs(c[0]-0.6) > 1e-15 || math.Abs(c[1]-0.8) > 1e-15 {
		t.Fatalf("clip (3,4) to 1: %v %v %v", c, norm, err)
	}
	c, _, _ = ClipL2([]float64{0.3, 0.4}, 1)
	if c[0] != 0.3 || c[1] != 0.4 {
		t.Errorf("a vector inside the ball changed: %v", c)
	}
	// Huge values do not overflow the norm.
	c, norm, err = ClipL2([]float64{1e300, 1e300}, 2)
	if err != nil || math.IsInf(norm, 0) || math.Abs(math.Hypot(c[0], c[1])-2) > 1e-12 {
		t.Errorf("clip of huge values: %v %v %v", c, norm, err)
	}
	if _, _, err := ClipL2([]float64{math.NaN()}, 1); err == nil {
		t.Error("NaN clipped")
	}
	if _, _, err := ClipL2([]float64{1}, 0); err == nil {
		t.Error("clip 0 accepted")
	}
	u, norm, err := ClipUpdate([]float64{1, 10}, []float64{1, 2}, 4)
	if err != nil || norm != 8 || u[0] != 1 || u[1] != 6 {
		t.Errorf("ClipUpdate: %v %v %v", u, norm, err)
	}
	if _, _, err := ClipUpdate([]float64{1}, []float64{1, 2}, 4); err == nil {
		t.Error("ClipUpdate of mismatched lengths accepted")
	}

	d := DP{Clip: 2, NoiseMultiplier: 1.5, Delta: 1e-5}
	if err := d.Validate(); err != nil || d.Sigma() != 3 {
		t.Fatal(err, d.Sigma())
	}
	if math.Abs(d.NodeSigma(9)-1) > 1e-15 {
		t.Errorf("node sigma for 9 survivors %v, want 1", d.NodeSigma(9))
	}
	for _, bad := range []DP{{}, {Clip: 1, NoiseMultiplier: 1}, {Clip: -1, NoiseMultiplier: 1, Delta: 1e-5}, {Clip: 1, NoiseMultiplier: math.Inf(1), Delta: 1e-5}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	r, err := NewNoiseSource()
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float64, 200000)
	if err := AddNoise(v, d.Sigma(), r); err != nil {
		t.Fatal(err)
	}
	var m, ss float64
	for _, x := range v {
		m += x
		ss += x * x
	}
	m /= float64(len(v))
	sd := math.Sqrt(ss/float64(len(v)) - m*m)
	if math.Abs(m) > 0.05 || math.Abs(sd-3) > 0.05 {
		t.Errorf("noise mean %v sd %v, want 0 and 3", m, sd)
	}
	if AddNoise(v, -1, r) == nil || AddNoise(v, 1, nil) == nil {
		t.Error("bad noise arguments accepted")
	}
}

func TestDPFedAvg(t *testing.T) {
	global := []float64{1, 1}
	ups := []Update{
		{Node: "a", Weights: []float64{1, 11}, Samples: 100}, // change (0,10): clipped to (0,1)
		{Node: "b", Weights: []float64{1.5, 1}, Samples: 1},  // change (0.5,0): kept
		{Node: "c", Weights: []float64{math.NaN(), 1}, Samples: 5},
	}
	d := DP{Clip: 1, NoiseMultiplier: 1e-9, Delta: 1e-5} // noise negligible: the mean is checked
	r, _ := NewNoiseSource()
	avg, skipped, err := DPFedAvg(global, ups, d, r)
	if err != nil {
		t.Fatal(err)
	}
	if skipped["c"] != SkipNotFinite || len(skipped) != 1 {
		t.Errorf("skipped %v", skipped)
	}
	if math.Abs(avg[0]-1.25) > 1e-6 || math.Abs(avg[1]-1.5) > 1e-6 {
		t.Errorf("avg %v, want (1.25, 1.5): equal weights of clipped changes", avg)
	}
	// With real noise the spread of the result is Sigma/n.
	d.NoiseMultiplier = 2
	var ss float64
	const trials = 4000
	for range trials {
		avg, _, err := DPFedAvg(global, ups[:2], d, r)
		if err != nil {
			t.Fatal(err)
		}
		ss += (avg[0] - 1.25) * (avg[0] - 1.25)
	}
	if sd := math.Sqrt(ss / trials); math.Abs(sd-1) > 0.05 {
		t.Errorf("noise on the mean has sd %v, want 2·1/2 = 1", sd)
	}
	if _, _, err := DPFedAvg(global, ups, DP{}, r); err == nil {
		t.Error("invalid DP accepted")
	}
	if _, _, err := DPFedAvg(global, ups[2:], d, r); err == nil {
		t.Error("a round without usable updates accepted")
	}
}
