package disclosure

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"testing/quick"
)

var key = []byte("0123456789abcdef0123456789abcdef")

// randomPolicy draws a valid policy: rounding 1 to 10, a floor that is a
// multiple of it (1 to 60), noise off or up to 20.
func randomPolicy(r *rand.Rand) Policy {
	round := 1 + r.IntN(10)
	p := Policy{Round: round, Floor: round * (1 + r.IntN(60/round)), Key: key}
	if r.IntN(3) > 0 {
		p.Noise = r.Float64() * 20
	}
	return p
}

// checkCount asserts the invariants of one output.
func checkCount(t *testing.T, p Policy, n int, q []byte, label string) {
	t.Helper()
	out := p.Count(n, q, label)
	f, r := p.floor(), p.round()
	if out != 0 && out < f {
		t.Fatalf("%+v n=%d: output %d is between 1 and the floor %d", p, n, out, f)
	}
	if out < 0 {
		t.Fatalf("%+v n=%d: negative output %d", p, n, out)
	}
	if out%r != 0 {
		t.Fatalf("%+v n=%d: output %d is not a multiple of %d", p, n, out, r)
	}
	if n < f && out != 0 {
		t.Fatalf("%+v n=%d below the floor gave %d", p, n, out)
	}
	if again := p.Count(n, q, label); again != out {
		t.Fatalf("%+v n=%d: %d then %d", p, n, out, again)
	}
	if p.scale() == 0 && n >= f && math.Abs(float64(out-n)) > float64(r)/2 {
		t.Fatalf("%+v n=%d: noiseless output %d is more than %d/2 away", p, n, out, r)
	}
}

func TestCountProperties(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		p := randomPolicy(r)
		n := r.IntN(200) - 5
		if i%10 == 0 {
			n = r.Int()
		}
		q := []byte(fmt.Sprintf(`{"q":%d}`, r.IntN(50)))
		checkCount(t, p, n, q, []string{"subjects", "studies", "gender/female"}[r.IntN(3)])
	}
}

func TestCountQuick(t *testing.T) {
	t.Parallel()
	f := func(n int, floor, round uint8, noise float64, q []byte, label string) bool {
		p := Policy{Round: int(round%20) + 1, Noise: math.Abs(math.Mod(noise, 50)), Key: key}
		p.Floor = p.Round * (int(floor%10) + 1)
		if math.IsNaN(p.Noise) {
			p.Noise = 0
		}
		out := p.Count(n, q, label)
		return (out == 0 || out >= p.Floor) && out%p.Round == 0 && out >= 0 && out == p.Count(n, q, label)
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 100000}); err != nil {
		t.Error(err)
	}
}

func TestCountExamples(t *testing.T) {
	t.Parallel()
	var p Policy // defaults: floor 10, rounding 5, no noise
	for n, want := range map[int]int{-1: 0, 0: 0, 1: 0, 9: 0, 10: 10, 11: 10, 12: 10, 13: 15, 17: 15, 18: 20, 102: 100, 103: 105} {
		if got := p.Count(n, nil, "subjects"); got != want {
			t.Errorf("default policy, %d: got %d, want %d", n, got, want)
		}
	}
	exact := Policy{Floor: 1, Round: 1}
	for _, n := range []int{1, 2, 9, 10, 12345} {
		if got := exact.Count(n, nil, ""); got != n {
			t.Errorf("floor 1, no rounding, %d: got %d", n, got)
		}
	}
	if got := exact.Count(0, nil, ""); got != 0 {
		t.Errorf("floor 1, 0: got %d", got)
	}
	// A floor that is not a multiple of the rounding is raised.
	odd := Policy{Floor: 11, Round: 5}
	if odd.Validate() == nil {
		t.Error("floor 11 with rounding 5 validated")
	}
	if got := odd.Count(12, nil, ""); got != 0 {
		t.Errorf("floor 11 rounding 5, 12: got %d, want 0 (floor raised to 15)", got)
	}
	if got := odd.Count(16, nil, ""); got != 15 {
		t.Errorf("floor 11 rounding 5, 16: got %d, want 15", got)
	}
	if e := odd.Effective(); e.Floor != 15 || e.Round != 5 {
		t.Errorf("effective policy: %+v", e)
	}
	if e := (Policy{}).Effective(); e.Floor != DefaultFloor || e.Round != DefaultRound || e.Noise != 0 {
		t.Errorf("effective default policy: %+v", e)
	}
	// A negative floor is refused, and treated as the default.
	neg := Policy{Floor: -3}
	if !errors.Is(neg.Validate(), ErrPolicy) {
		t.Error("negative floor validated")
	}
	if got := neg.Count(5, nil, ""); got != 0 {
		t.Errorf("negative floor, 5: got %d", got)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := []Policy{{}, {Floor: 10, Round: 5}, {Floor: 1, Round: 1}, {Floor: 20, Round: 10, Noise: 2, Key: key}}
	for _, p := range good {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	bad := []Policy{{Floor: -1}, {Round: -1}, {Floor: 7}, {Round: 3}, {Noise: -1}, {Noise: math.NaN(), Key: key}, {Noise: math.Inf(1), Key: key},
		{Noise: 2}, {Noise: 2, Key: []byte("short")}}
	for _, p := range bad {
		if err := p.Validate(); !errors.Is(err, ErrPolicy) {
			t.Errorf("%+v: got %v, want ErrPolicy", p, err)
		}
	}
}

// TestNoise checks the noise itself: deterministic per query and label,
// independent across labels and keys, and Laplace-distributed.
func TestNoise(t *testing.T) {
	t.Parallel()
	p := Policy{Floor: 10, Round: 1, Noise: 3, Key: key}
	other := p
	other.Key = []byte("fedcba9876543210fedcba9876543210")
	q := []byte(`{"lens":1,"ast":{"and":[]}}`)
	if p.uniform(q, "subjects") != p.uniform(q, "subjects") {
		t.Fatal("noise is not deterministic")
	}
	var sum, abs float64
	const draws = 100000
	sameKey, sameLabel, sameSplit := 0, 0, 0
	for i := 0; i < draws; i++ {
		qi := []byte(fmt.Sprintf(`{"q":%d}`, i))
		u := p.uniform(qi, "subjects")
		if u <= 0 || u >= 1 {
			t.Fatalf("uniform %v out of (0, 1)", u)
		}
		if u == other.uniform(qi, "subjects") {
			sameKey++
		}
		if u == p.uniform(qi, "studies") {
			sameLabel++
		}
		// The length prefix keeps the query and label apart.
		if p.uniform(qi[:len(qi)-1], string(qi[len(qi)-1:])+"subjects") == u {
			sameSplit++
		}
		l := laplace(p.Noise, u)
		sum += l
		abs += math.Abs(l)
	}
	if sameKey > 0 || sameLabel > 0 || sameSplit > 0 {
		t.Errorf("noise repeats across keys %d, labels %d, splits %d times", sameKey, sameLabel, sameSplit)
	}
	// Laplace(0, b): mean 0, mean absolute value b.
	if mean := sum / draws; math.Abs(mean) > 0.05 {
		t.Errorf("mean noise %.3f, want about 0", mean)
	}
	if mad := abs / draws; math.Abs(mad-p.Noise) > 0.05 {
		t.Errorf("mean absolute noise %.3f, want about %v", mad, p.Noise)
	}
	// Different keys give different answers for some counts.
	differ := 0
	for i := 0; i < 1000; i++ {
		qi := []byte(fmt.Sprintf(`{"q":%d}`, i))
		if p.Count(100, qi, "subjects") != other.Count(100, qi, "subjects") {
			differ++
		}
	}
	if differ < 500 {
		t.Errorf("only %d of 1000 answers differ between keys", differ)
	}
	// Noise can take a count at the floor to 0, never to 1..9.
	zeros := 0
	for i := 0; i < 1000; i++ {
		out := p.Count(10, []byte(fmt.Sprint(i)), "subjects")
		if out == 0 {
			zeros++
		} else if out < 10 {
			t.Fatalf("output %d", out)
		}
	}
	if zeros == 0 || zeros == 1000 {
		t.Errorf("%d of 1000 counts at the floor suppressed by noise", zeros)
	}
}

func FuzzCount(f *testing.F) {
	f.Add(12, 10, 5, 0.0, []byte("q"), "subjects")
	f.Add(10, 10, 5, 3.0, []byte(`{"lens":1}`), "studies")
	f.Add(-5, 0, 0, 1e9, []byte{}, "")
	f.Add(1<<62, 7, 3, 2.5, []byte("x"), "gender/female")
	f.Fuzz(func(t *testing.T, n, floor, round int, noise float64, q []byte, label string) {
		p := Policy{Floor: floor, Round: round, Noise: noise, Key: key}
		out := p.Count(n, q, label)
		f, r := p.floor(), p.round()
		if f < 1 || r < 1 || f%r != 0 {
			t.Fatalf("effective floor %d rounding %d", f, r)
		}
		if out < 0 || (out > 0 && out < f) || out%r != 0 || (n < f && out != 0) {
			t.Fatalf("%+v n=%d: output %d", p, n, out)
		}
		if out != p.Count(n, q, label) {
			t.Fatal("not deterministic")
		}
	})
}
