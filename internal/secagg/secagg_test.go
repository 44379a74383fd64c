package secagg

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// party is one test participant.
type party struct {
	id  string
	key ed25519.PrivateKey
}

func newParties(t testing.TB, n int) ([]party, Directory) {
	t.Helper()
	ps := make([]party, n)
	dir := Directory{}
	for i := range ps {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = party{id: fmt.Sprintf("node-%02d", i), key: priv}
		dir[ps[i].id] = pub
	}
	return ps, dir
}

func config(session string, ps []party, length int, enc Encoding) Config {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.id
	}
	return Config{Session: session, Participants: ids, Length: length, Encoding: enc}
}

// dropouts says who stops where in a round.
type dropouts struct {
	afterAdvert map[string]bool // advertise, send no shares
	afterShares map[string]bool // share, send no masked vector
	afterMask   map[string]bool // mask, send no reveal
}

// round is a whole aggregation carried out in memory, the server
// relaying every message as the compute package does over the link.
type round struct {
	cfg     Config
	clients map[string]*Client
	server  *Server
	adverts []Advert
	routed  map[string][]Share
	masked  []Masked
	alive   []string
	reveals []Reveal
}

func newRound(t testing.TB, cfg Config, ps []party, dir Directory) *round {
	t.Helper()
	r := &round{cfg: cfg, clients: map[string]*Client{}}
	var err error
	if r.server, err = NewServer(cfg, dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		c, err := NewClient(cfg, p.id, p.key, dir, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		r.clients[p.id] = c
	}
	return r
}

// run carries the round to its sum; xs gives each participant's vector.
func (r *round) run(t testing.TB, xs map[string][]float64, d dropouts) ([]float64, error) {
	t.Helper()
	ids := sortedKeys(r.clients)
	r.adverts = nil
	for _, id := range ids {
		a, err := r.clients[id].Advert()
		if err != nil {
			t.Fatal(err)
		}
		r.adverts = append(r.adverts, a)
	}
	good, why, err := r.server.CheckAdverts(r.adverts)
	if err != nil || len(why) > 0 {
		t.Fatalf("adverts: %v %v", err, why)
	}
	var shares []Share
	for _, id := range ids {
		s, err := r.clients[id].Shares(good)
		if err != nil {
			t.Fatalf("shares of %s: %v", id, err)
		}
		if !d.afterAdvert[id] {
			shares = append(shares, s...)
		}
	}
	routed, senders, err := r.server.Route(good, shares)
	if err != nil {
		return nil, err
	}
	r.routed = routed
	r.masked = nil
	for _, id := range senders {
		m, err := r.clients[id].Mask(routed[id], xs[id])
		if err != nil {
			t.Fatalf("mask of %s: %v", id, err)
		}
		if !d.afterShares[id] {
			r.masked = append(r.masked, m)
		}
	}
	alive, err := r.server.Survivors(r.masked)
	if err != nil {
		return nil, err
	}
	r.alive = alive
	r.reveals = nil
	for _, id := range alive {
		rv, err := r.clients[id].Reveal(alive)
		if err != nil {
			t.Fatalf("reveal of %s: %v", id, err)
		}
		if !d.afterMask[id] {
			r.reveals = append(r.reveals, rv)
		}
	}
	return r.server.Sum(good, r.masked, r.reveals)
}

func randomVectors(ids []string, length int, scale float64, seed uint64) map[string][]float64 {
	rng := mrand.New(mrand.NewPCG(seed, 7))
	xs := map[string][]float64{}
	for _, id := range ids {
		x := make([]float64, length)
		for i := range x {
			x[i] = (rng.Float64()*2 - 1) * scale
		}
		xs[id] = x
	}
	return xs
}

// ringSum is the exact expectation: the decoded sum of the encodings of
// the given participants' vectors.
func ringSum(t testing.TB, enc Encoding, xs map[string][]float64, ids []string) []float64 {
	t.Helper()
	var total []byte
	for _, id := range ids {
		v, err := enc.Encode(xs[id])
		if err != nil {
			t.Fatal(err)
		}
		if total == nil {
			total = make([]byte, len(v))
		}
		addBytes(total, v, enc.Bytes())
	}
	return enc.decode(total)
}

func plainSum(xs map[string][]float64, ids []string) []float64 {
	var out []float64
	for _, id := range ids {
		if out == nil {
			out = make([]float64, len(xs[id]))
		}
		for i, v := range xs[id] {
			out[i] += v
		}
	}
	return out
}

func checkSum(t *testing.T, got []float64, enc Encoding, xs map[string][]float64, ids []string) {
	t.Helper()
	want := ringSum(t, enc, xs, ids)
	if len(got) != len(want) {
		t.Fatalf("sum has %d values, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("value %d: secure sum %v, ring sum %v", i, got[i], want[i])
		}
	}
	plain := plainSum(xs, ids)
	tol := float64(len(ids)) * math.Ldexp(1, -enc.Frac)
	for i := range plain {
		// The plain float sum has its own rounding error.
		mag := 0.0
		for _, id := range ids {
			mag += math.Abs(xs[id][i])
		}
		if math.Abs(got[i]-plain[i]) > tol+float64(len(ids))*0x1p-52*mag {
			t.Fatalf("value %d: secure sum %v, plain sum %v", i, got[i], plain[i])
		}
	}
}

func TestSumEqualsPlainSum(t *testing.T) {
	for _, enc := range []Encoding{Ring64, Ring128, Ring48, {Bits: 32, Frac: 8}, {Bits: 64, Frac: 16}, {Bits: 128, Frac: 90}} {
		for _, n := range []int{3, 5, 10} {
			for _, length := range []int{1, 2, 3, 100, 4097, 100_000, 200_001} {
				if length >= 100_000 && (n == 5 || enc.Frac == 16 || enc.Frac == 90 || enc.Bits == 32) {
					continue // the long vectors once per size and ring are enough
				}
				if length == 200_001 && (n != 3 || enc.Bits != 48) {
					continue // split between goroutines at an odd element size
				}
				t.Run(fmt.Sprintf("bits%d-frac%d-n%d-len%d", enc.Bits, enc.Frac, n, length), func(t *testing.T) {
					ps, dir := newParties(t, n)
					cfg := config("s1", ps, length, enc)
					r := newRound(t, cfg, ps, dir)
					ids := sortedKeys(r.clients)
					scale := 1000.0
					if enc.Frac == 90 {
						scale = 100
					}
					xs := randomVectors(ids, length, scale, uint64(n*length))
					got, err := r.run(t, xs, dropouts{})
					if err != nil {
						t.Fatal(err)
					}
					checkSum(t, got, enc, xs, ids)
				})
			}
		}
	}
}

func TestSmallRounds(t *testing.T) {
	for _, n := range []int{1, 2} {
		ps, dir := newParties(t, n)
		r := newRound(t, config("small", ps, 5, Ring64), ps, dir)
		ids := sortedKeys(r.clients)
		xs := randomVectors(ids, 5, 3, 11)
		got, err := r.run(t, xs, dropouts{})
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		checkSum(t, got, Ring64, xs, ids)
	}
}

func TestDropouts(t *testing.T) {
	ids := func(ns ...int) map[string]bool {
		m := map[string]bool{}
		for _, n := range ns {
			m[fmt.Sprintf("node-%02d", n)] = true
		}
		return m
	}
	cases := []struct {
		name string
		n    int
		d    dropouts
	}{
		{"n10-3-after-shares", 10, dropouts{afterShares: ids(0, 4, 9)}},
		{"n10-3-after-mask", 10, dropouts{afterMask: ids(1, 2, 3)}},
		{"n10-mixed", 10, dropouts{afterAdvert: ids(5), afterShares: ids(0), afterMask: ids(9)}},
		{"n10-2-after-shares-1-after-mask", 10, dropouts{afterShares: ids(2, 7), afterMask: ids(8)}},
		{"n5-1-after-shares", 5, dropouts{afterShares: ids(3)}},
		{"n5-1-after-mask", 5, dropouts{afterMask: ids(0)}},
		{"n5-1-after-advert", 5, dropouts{afterAdvert: ids(4)}},
		{"n3-1-after-shares", 3, dropouts{afterShares: ids(2)}},
	}
	for _, enc := range []Encoding{Ring64, Ring128, Ring48} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s-%d", tc.name, enc.Bits), func(t *testing.T) {
				ps, dir := newParties(t, tc.n)
				r := newRound(t, config("drop", ps, 257, enc), ps, dir)
				all := sortedKeys(r.clients)
				xs := randomVectors(all, 257, 50, 3)
				got, err := r.run(t, xs, tc.d)
				if err != nil {
					t.Fatal(err)
				}
				// The sum is of those whose masked vectors the server has.
				var counted []string
				for _, id := range all {
					if !tc.d.afterAdvert[id] && !tc.d.afterShares[id] {
						counted = append(counted, id)
					}
				}
				if !slices.Equal(counted, r.alive) {
					t.Fatalf("survivors %v, want %v", r.alive, counted)
				}
				checkSum(t, got, enc, xs, counted)
			})
		}
	}
}

func TestTooFewSurvivors(t *testing.T) {
	ps, dir := newParties(t, 10)
	all := make([]string, 10)
	for i, p := range ps {
		all[i] = p.id
	}
	xs := randomVectors(all, 8, 1, 1)

	// Four drop after sharing: six survivors, threshold seven.
	r := newRound(t, config("few", ps, 8, Ring64), ps, dir)
	_, err := r.run(t, xs, dropouts{afterShares: map[string]bool{all[0]: true, all[1]: true, all[2]: true, all[3]: true}})
	if err == nil || !strings.Contains(err.Error(), "fewer than the threshold") {
		t.Fatalf("six survivors of ten: %v", err)
	}
	// The clients refuse a list that short even if the server asks.
	if _, err := r.clients[all[5]].Reveal(all[4:]); err == nil {
		t.Fatal("a client revealed for six survivors with threshold seven")
	}

	// Three drop after masking and one after sharing: enough survivors,
	// too few reveals.
	r = newRound(t, config("few2", ps, 8, Ring64), ps, dir)
	_, err = r.run(t, xs, dropouts{afterShares: map[string]bool{all[0]: true}, afterMask: map[string]bool{all[1]: true, all[2]: true, all[3]: true}})
	if err == nil || !strings.Contains(err.Error(), "reveals, fewer than the threshold") {
		t.Fatalf("six reveals of ten: %v", err)
	}

	// Four advertise but never share.
	r = newRound(t, config("few3", ps, 8, Ring64), ps, dir)
	_, err = r.run(t, xs, dropouts{afterAdvert: map[string]bool{all[0]: true, all[1]: true, all[2]: true, all[3]: true}})
	if err == nil || !strings.Contains(err.Error(), "fewer than the threshold") {
		t.Fatalf("six sharers of ten: %v", err)
	}
}

// adverts collects every client's advert.
func (r *round) collectAdverts(t testing.TB) []Advert {
	t.Helper()
	var out []Advert
	for _, id := range sortedKeys(r.clients) {
		a, err := r.clients[id].Advert()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func TestForgedAdvertRefused(t *testing.T) {
	ps, dir := newParties(t, 4)
	cfg := config("forge", ps, 4, Ring64)
	r := newRound(t, cfg, ps, dir)
	adverts := r.collectAdverts(t)

	// The server (or anyone on the way) puts its own keys in node-01's
	// advert and signs with a key that is not node-01's.
	_, mallory, _ := ed25519.GenerateKey(rand.Reader)
	forged := adverts[1]
	forged.MaskKey = slices.Clone(adverts[3].MaskKey)
	forged.Sig = ed25519.Sign(mallory, advertMessage(r.server.Config().digest(), forged))
	bad := slices.Clone(adverts)
	bad[1] = forged
	if _, err := r.clients["node-00"].Shares(bad); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("forged advert: %v", err)
	}
	good, why, err := r.server.CheckAdverts(bad)
	if err != nil || len(good) != 3 || len(why) != 1 {
		t.Fatalf("server kept %d adverts, refused %v, err %v", len(good), why, err)
	}

	// A key swapped under the real signature.
	swapped := adverts[2]
	swapped.EncKey = slices.Clone(adverts[0].EncKey)
	bad = slices.Clone(adverts)
	bad[2] = swapped
	if _, err := r.clients["node-00"].Shares(bad); err == nil {
		t.Fatal("an advert with a swapped key was accepted")
	}

	// An advert signed for another session, or another configuration.
	other := cfg
	other.Session = "forge-2"
	c2, err := NewClient(other, "node-02", ps[2].key, dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := c2.Advert()
	bad = slices.Clone(adverts)
	bad[2] = a2
	if _, err := r.clients["node-00"].Shares(bad); err == nil || !strings.Contains(err.Error(), "another session") {
		t.Fatalf("advert of another session: %v", err)
	}
	a2.Session = cfg.Session // relabelled: the signature still binds the first
	bad[2] = a2
	if _, err := r.clients["node-00"].Shares(bad); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("relabelled advert of another session: %v", err)
	}
	longer := cfg
	longer.Length = 5
	c3, err := NewClient(longer, "node-02", ps[2].key, dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bad[2], _ = c3.Advert()
	if _, err := r.clients["node-00"].Shares(bad); err == nil {
		t.Fatal("an advert made for another configuration was accepted")
	}

	// A repeated advert, and one's own advert left out or replaced.
	if _, err := r.clients["node-00"].Shares(append(slices.Clone(adverts), adverts[1])); err == nil {
		t.Fatal("a repeated advert was accepted")
	}
	if _, err := r.clients["node-00"].Shares(adverts[1:]); err == nil {
		t.Fatal("adverts without the client's own were accepted")
	}
	c0b, _ := NewClient(cfg, "node-00", ps[0].key, dir, rand.Reader)
	bad = slices.Clone(adverts)
	bad[0], _ = c0b.Advert()
	if _, err := r.clients["node-00"].Shares(bad); err == nil || !strings.Contains(err.Error(), "not the one it made") {
		t.Fatalf("a replaced own advert: %v", err)
	}

	// The good adverts still work after all those refusals.
	if _, err := r.clients["node-00"].Shares(adverts); err != nil {
		t.Fatal(err)
	}
}

func TestTwoSurvivorListsRefused(t *testing.T) {
	ps, dir := newParties(t, 5) // threshold 4
	r := newRound(t, config("lists", ps, 16, Ring64), ps, dir)
	all := sortedKeys(r.clients)
	xs := randomVectors(all, 16, 1, 2)
	if _, err := r.run(t, xs, dropouts{}); err != nil {
		t.Fatal(err)
	}
	c := r.clients[all[0]]
	first, err := c.Reveal(all)
	if err != nil {
		t.Fatal(err)
	}
	// Asked again with the same list (a retry), the answer is the same.
	again, err := c.Reveal(slices.Clone(all))
	if err != nil || !slices.Equal(sortedKeys(again.Alive), sortedKeys(first.Alive)) || string(again.Alive[all[1]]) != string(first.Alive[all[1]]) {
		t.Fatalf("retry: %v", err)
	}
	// A second list that calls node 4 dropped would get its mask key's
	// share as well as its seed's: refused.
	if _, err := c.Reveal(all[:4]); err == nil || !strings.Contains(err.Error(), "second, different") {
		t.Fatalf("second list: %v", err)
	}
	// A fresh client refuses lists that do not name it, are short or
	// name someone twice.
	r2 := newRound(t, config("lists2", ps, 16, Ring64), ps, dir)
	_, err = r2.run(t, xs, dropouts{afterMask: map[string]bool{all[0]: true}})
	if err != nil {
		t.Fatal(err)
	}
	c = newRound(t, config("lists3", ps, 16, Ring64), ps, dir).clients[all[0]]
	if _, err := c.Reveal(all); err == nil {
		t.Fatal("a reveal before masking")
	}
	// After masking, a client refuses a list not naming it.
	r3 := newRound(t, config("lists4", ps, 16, Ring64), ps, dir)
	if _, err := r3.run(t, xs, dropouts{afterShares: map[string]bool{all[4]: true}}); err != nil {
		t.Fatal(err)
	}
	c4 := r3.clients[all[4]] // masked, but the server "lost" its vector
	if _, err := c4.Reveal(all[:4]); err == nil || !strings.Contains(err.Error(), "do not include") {
		t.Fatalf("list not naming the client: %v", err)
	}
	if _, err := c4.Reveal([]string{all[4], all[4], all[1], all[2]}); err == nil {
		t.Fatal("a list naming a survivor twice")
	}
	if _, err := c4.Reveal(all[2:]); err == nil {
		t.Fatal("a list shorter than the threshold")
	}
}

func TestMaskedRevealsNothing(t *testing.T) {
	ps, dir := newParties(t, 3)
	const length = 20000
	r := newRound(t, config("uniform", ps, length, Ring64), ps, dir)
	all := sortedKeys(r.clients)
	// Vectors that are all zeros or all ones: as unlike random as can be.
	xs := map[string][]float64{}
	for i, id := range all {
		x := make([]float64, length)
		for j := range x {
			x[j] = float64(i % 2)
		}
		xs[id] = x
	}
	got, err := r.run(t, xs, dropouts{})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 1 || got[length-1] != 1 {
		t.Fatalf("sum %v", got[:1])
	}
	for _, m := range r.masked {
		plain, _ := Ring64.Encode(xs[m.From])
		same := 0
		for i := 0; i+8 <= len(plain); i += 8 {
			if string(plain[i:i+8]) == string(m.Data[i:i+8]) {
				same++
			}
		}
		if same > 0 {
			t.Fatalf("%d of the masked values of %s equal the plain ones", same, m.From)
		}
		// Byte frequencies: chi-square with 255 degrees of freedom; the
		// 0.9999 quantile is about 340.
		var counts [256]float64
		for _, b := range m.Data {
			counts[b]++
		}
		exp := float64(len(m.Data)) / 256
		chi := 0.0
		for _, c := range counts {
			chi += (c - exp) * (c - exp) / exp
		}
		if chi > 340 {
			t.Fatalf("masked vector of %s: byte chi-square %.0f, not uniform", m.From, chi)
		}
		// Every bit of the 64 is set about half the time.
		for bit := 0; bit < 64; bit++ {
			ones := 0
			for i := 0; i < len(m.Data); i += 8 {
				if m.Data[i+bit/8]>>(bit%8)&1 == 1 {
					ones++
				}
			}
			if d := math.Abs(float64(ones) - length/2); d > 5*math.Sqrt(length/4.0) {
				t.Fatalf("masked vector of %s: bit %d set %d times of %d", m.From, bit, ones, length)
			}
		}
	}
}
