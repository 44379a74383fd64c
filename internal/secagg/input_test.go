package secagg

import (
	"crypto/ed25519"
	"crypto/rand"
	"math"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func wantErr(t *testing.T, what string, err error, words string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted", what)
	}
	if words != "" && !strings.Contains(err.Error(), words) {
		t.Fatalf("%s: error %q does not say %q", what, err, words)
	}
}

func TestConfigRefused(t *testing.T) {
	ps, dir := newParties(t, 4)
	good := config("cfg", ps, 10, Ring64)
	if _, err := NewServer(good, dir); err != nil {
		t.Fatal(err)
	}
	v, err := good.Validate()
	if err != nil || v.Threshold != 3 {
		t.Fatalf("default threshold of 4: %d, %v", v.Threshold, err)
	}
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 4, 6: 4, 9: 6, 10: 7, 100: 67} {
		if got := DefaultThreshold(n); got != want {
			t.Errorf("DefaultThreshold(%d) = %d, want %d", n, got, want)
		}
	}
	bad := map[string]func(c *Config){
		"no session":        func(c *Config) { c.Session = "" },
		"unsorted":          func(c *Config) { c.Participants[0], c.Participants[1] = c.Participants[1], c.Participants[0] },
		"repeated":          func(c *Config) { c.Participants[1] = c.Participants[0] },
		"empty id":          func(c *Config) { c.Participants[0] = "" },
		"none":              func(c *Config) { c.Participants = nil },
		"threshold low":     func(c *Config) { c.Threshold = 2 },
		"threshold high":    func(c *Config) { c.Threshold = 5 },
		"threshold neg":     func(c *Config) { c.Threshold = -1 },
		"length 0":          func(c *Config) { c.Length = 0 },
		"length huge":       func(c *Config) { c.Length = MaxLength + 1 },
		"bits 36":           func(c *Config) { c.Encoding.Bits = 36 },
		"bits 24":           func(c *Config) { c.Encoding.Bits, c.Encoding.Frac = 24, 8 },
		"bits 72":           func(c *Config) { c.Encoding.Bits = 72 },
		"frac negative":     func(c *Config) { c.Encoding.Frac = -1 },
		"frac all the bits": func(c *Config) { c.Encoding.Frac = 63 },
	}
	for name, mutate := range bad {
		c := good
		c.Participants = slices.Clone(good.Participants)
		mutate(&c)
		if _, err := NewServer(c, dir); err == nil {
			t.Errorf("%s: server accepted", name)
		}
		if _, err := NewClient(c, ps[0].id, ps[0].key, dir, rand.Reader); err == nil {
			t.Errorf("%s: client accepted", name)
		}
	}
	_, err = NewClient(good, "node-99", ps[0].key, dir, rand.Reader)
	wantErr(t, "not a participant", err, "not a participant")
	_, err = NewClient(good, ps[0].id, ps[1].key, dir, rand.Reader)
	wantErr(t, "someone else's key", err, "not the enrolment key")
	_, err = NewClient(good, ps[0].id, nil, dir, rand.Reader)
	wantErr(t, "no key", err, "")
	short := Directory{ps[0].id: dir[ps[0].id]}
	_, err = NewClient(good, ps[0].id, ps[0].key, short, rand.Reader)
	wantErr(t, "directory without a participant", err, "no enrolment key")
	_, err = NewServer(good, short)
	wantErr(t, "server directory without a participant", err, "no enrolment key")
	_, err = NewClient(good, ps[0].id, ps[0].key, dir, nil)
	wantErr(t, "no randomness", err, "")
	_, err = NewClient(good, ps[0].id, ps[0].key, dir, strings.NewReader("short"))
	wantErr(t, "randomness runs out", err, "randomness")
}

// sharedRound is a round of four taken to the point where every client
// has made its shares.
func sharedRound(t testing.TB, session string, ps []party, dir Directory) (*round, []Advert, []Share) {
	t.Helper()
	r := newRound(t, config(session, ps, 6, Ring64), ps, dir)
	adverts := r.collectAdverts(t)
	var shares []Share
	for _, id := range sortedKeys(r.clients) {
		s, err := r.clients[id].Shares(adverts)
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, s...)
	}
	routed, _, err := r.server.Route(adverts, shares)
	if err != nil {
		t.Fatal(err)
	}
	r.routed = routed
	return r, adverts, shares
}

func TestSharesAndMaskRefuseBadInput(t *testing.T) {
	ps, dir := newParties(t, 4)
	r, adverts, _ := sharedRound(t, "in", ps, dir)
	old, _, _ := sharedRound(t, "in-old", ps, dir)
	c := r.clients["node-00"]
	in := r.routed["node-00"]
	x := []float64{1, 2, 3, 4, 5, 6}

	// Shares again with the same adverts is a retry; others are refused.
	if _, err := c.Shares(adverts); err != nil {
		t.Fatal(err)
	}
	_, err := c.Shares(adverts[:3])
	wantErr(t, "second set of adverts", err, "already")

	_, err = c.Mask(in, x[:5])
	wantErr(t, "short vector", err, "want 6")
	_, err = c.Mask(in, append(slices.Clone(x), 7))
	wantErr(t, "long vector", err, "want 6")
	_, err = c.Mask(in, []float64{1, 2, math.NaN(), 4, 5, 6})
	wantErr(t, "NaN", err, "value 2 is not a finite")
	_, err = c.Mask(in, []float64{1, 2, 3, math.Inf(-1), 5, 6})
	wantErr(t, "infinity", err, "value 3 is not a finite")
	_, err = c.Mask(in, []float64{1, 2, 3, 4, 1 << 31, 6})
	wantErr(t, "overflow", err, "value 4 is out of the range")

	mutate := func(f func(s []Share) []Share) []Share { return f(slices.Clone(in)) }
	_, err = c.Mask(mutate(func(s []Share) []Share { s[0].Session = "other"; return s }), x)
	wantErr(t, "share of another session", err, "another session")
	_, err = c.Mask(mutate(func(s []Share) []Share { return append(s, s[1]) }), x)
	wantErr(t, "replayed share", err, "two shares from")
	_, err = c.Mask(mutate(func(s []Share) []Share { s[0].To = "node-02"; return s }), x)
	wantErr(t, "share for another", err, "not for node-00")
	_, err = c.Mask(mutate(func(s []Share) []Share { s[0].From = "node-00"; return s }), x)
	wantErr(t, "share from itself", err, "itself")
	_, err = c.Mask(mutate(func(s []Share) []Share { s[0].From = "node-77"; return s }), x)
	wantErr(t, "share from a stranger", err, "did not advertise")
	_, err = c.Mask(mutate(func(s []Share) []Share {
		s[0].Ciphertext = slices.Clone(s[0].Ciphertext)
		s[0].Ciphertext[20] ^= 1
		return s
	}), x)
	wantErr(t, "tampered share", err, "does not decrypt")
	_, err = c.Mask(mutate(func(s []Share) []Share { s[0].Ciphertext = s[0].Ciphertext[:30]; return s }), x)
	wantErr(t, "cut share", err, "wrong size")
	// A share node-01 sent node-00 in the earlier session, replayed.
	replay := old.routed["node-00"][0]
	replay.Session = "in"
	_, err = c.Mask(mutate(func(s []Share) []Share { s[0] = replay; return s }), x)
	wantErr(t, "share replayed from another session", err, "does not decrypt")
	// The share node-01 sent node-02, relabelled for node-00.
	cross := r.routed["node-02"][1] // from node-01
	cross.To = "node-00"
	_, err = c.Mask(mutate(func(s []Share) []Share { s[0] = cross; return s }), x)
	wantErr(t, "share for someone else relabelled", err, "does not decrypt")
	_, err = c.Mask(in[:1], x)
	wantErr(t, "too few shares", err, "fewer than the threshold")

	// After all those refusals the real shares work, and a retry gives
	// back the first masked vector even with another x.
	m1, err := c.Mask(in, x)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := c.Mask(in, []float64{9, 9, 9, 9, 9, 9})
	if err != nil || string(m1.Data) != string(m2.Data) {
		t.Fatalf("retry of Mask: %v, same data %v", err, string(m1.Data) == string(m2.Data))
	}
	_, err = c.Mask(in[:2], x)
	wantErr(t, "mask again with other shares", err, "already masked")

	// Order: Mask before Shares, Reveal before Mask.
	fresh := newRound(t, config("order", ps, 6, Ring64), ps, dir).clients["node-01"]
	_, err = fresh.Mask(nil, x)
	wantErr(t, "Mask before Shares", err, "before Shares")
	_, err = fresh.Reveal([]string{"node-00", "node-01", "node-02"})
	wantErr(t, "Reveal before Mask", err, "before Mask")
}

func TestServerRefusesBadInput(t *testing.T) {
	ps, dir := newParties(t, 4)
	r := newRound(t, config("srv", ps, 6, Ring64), ps, dir)
	all := sortedKeys(r.clients)
	xs := randomVectors(all, 6, 10, 5)
	if _, err := r.run(t, xs, dropouts{}); err != nil {
		t.Fatal(err)
	}
	s := r.server
	sum := func(masked []Masked, reveals []Reveal) error {
		_, err := s.Sum(r.adverts, masked, reveals)
		return err
	}
	if err := sum(r.masked, r.reveals); err != nil {
		t.Fatal(err)
	}
	m := func(f func(m []Masked) []Masked) []Masked {
		out := slices.Clone(r.masked)
		return f(out)
	}
	wantErr(t, "short masked vector", sum(m(func(v []Masked) []Masked { v[0].Data = v[0].Data[:40]; return v }), r.reveals), "want 48")
	wantErr(t, "masked of another session", sum(m(func(v []Masked) []Masked { v[0].Session = "x"; return v }), r.reveals), "another session")
	wantErr(t, "replayed masked", sum(m(func(v []Masked) []Masked { return append(v, v[0]) }), r.reveals), "two masked")
	wantErr(t, "masked from a stranger", sum(m(func(v []Masked) []Masked { v[0].From = "node-50"; return v }), r.reveals), "not a participant")

	rv := func(f func(v []Reveal) []Reveal) []Reveal {
		out := make([]Reveal, len(r.reveals))
		for i, x := range r.reveals {
			out[i] = cloneReveal(x)
		}
		return f(out)
	}
	wantErr(t, "reveal of another session", sum(r.masked, rv(func(v []Reveal) []Reveal { v[0].Session = "x"; return v })), "another session")
	wantErr(t, "too few reveals", sum(r.masked, r.reveals[:2]), "fewer than the threshold")
	wantErr(t, "replayed reveal", sum(r.masked, rv(func(v []Reveal) []Reveal { return append(v[:2], v[0]) })), "two reveals")
	wantErr(t, "replayed reveal", sum(r.masked, rv(func(v []Reveal) []Reveal { return append(v, v[0]) })), "two reveals")
	wantErr(t, "reveal from a non-survivor", sum(r.masked[1:], r.reveals[1:]), "not name the survivors")
	wantErr(t, "reveal naming too few", sum(r.masked, rv(func(v []Reveal) []Reveal { delete(v[1].Alive, "node-03"); return v })), "not name the survivors")
	wantErr(t, "reveals disagreeing", sum(r.masked, rv(func(v []Reveal) []Reveal { v[2].Dropped["node-03"] = v[2].Alive["node-03"]; return v })), "disagree")
	wantErr(t, "malformed share", sum(r.masked, rv(func(v []Reveal) []Reveal { v[0].Alive["node-01"] = []byte{1}; return v })), "malformed")
	wantErr(t, "wrong share", sum(r.masked, rv(func(v []Reveal) []Reveal {
		b := slices.Clone(v[0].Alive["node-01"])
		b[32] ^= 1
		v[0].Alive["node-01"] = b
		return v
	})), "do not rebuild the self-mask seed of node-01")
	wantErr(t, "forged advert", func() error {
		a := slices.Clone(r.adverts)
		a[0].Sig = slices.Clone(a[0].Sig)
		a[0].Sig[0] ^= 1
		_, err := s.Sum(a, r.masked, r.reveals)
		return err
	}(), "not signed")
	// A server that lost a vector after the reveals can not use them.
	wantErr(t, "vectors and reveals of different survivors", sum(r.masked[:3], r.reveals[:3]), "not name the survivors")

	// Route leaves out a sender that did not send everyone a share, or
	// sent one twice.
	r2, adverts, shares := sharedRound(t, "route", ps, dir)
	var short []Share
	for _, sh := range shares {
		if !(sh.From == "node-01" && sh.To == "node-03") {
			short = append(short, sh)
		}
	}
	routed, senders, err := r2.server.Route(adverts, short)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(senders, []string{"node-00", "node-02", "node-03"}) {
		t.Fatalf("senders when node-01 left one out: %v", senders)
	}
	for to, in := range routed {
		for _, sh := range in {
			if sh.To != to || !slices.Contains(senders, sh.From) {
				t.Fatalf("routed a share from %s to %s under %s", sh.From, sh.To, to)
			}
		}
	}
	_, senders, err = r2.server.Route(adverts, append(slices.Clone(shares), shares[0]))
	if err != nil || !slices.Equal(senders, []string{"node-01", "node-02", "node-03"}) {
		t.Fatalf("senders when node-00 sent a share twice: %v %v", senders, err)
	}
	_, _, err = r2.server.Route(adverts, shares[:4])
	wantErr(t, "too few sharers", err, "fewer than the threshold")
	if _, why, err := r2.server.CheckAdverts(append(slices.Clone(adverts), adverts[0])); err != nil || len(why) != 1 {
		t.Fatalf("repeated advert at the server: %v %v", why, err)
	}
}

func TestEncoding(t *testing.T) {
	cases := []struct {
		enc Encoding
		x   []float64
	}{
		{Ring64, []float64{0, 1, -1, 0.5, -0.25, 1e-9, 2147483647.5, -2147483648, 3.14159}},
		{Encoding{64, 0}, []float64{0, 1, -1, 9007199254740992, -9007199254740992}},
		{Ring128, []float64{0, 1, -1, 1e18, -1e18, 0x1p62, -0x1p62, 0x1p62 + 0x1p10, 1e-15}},
		{Ring48, []float64{0, 1, -1, 0.5, -0.25, 8388607.5, -8388608, 3.14159, 1e-7}},
		{Encoding{40, 4}, []float64{0, 1, -1, 34359738367.0 / 16, -34359738368.0 / 16, 1.0625}},
		{Encoding{32, 0}, []float64{0, 1, -1, 2147483647, -2147483648}},
		{Encoding{128, 0}, []float64{0x1p126, -0x1p126, -0x1p127, 0x1p100 + 0x1p48, -0x1p90 - 0x1p38, 12345}},
	}
	for _, tc := range cases {
		b, err := tc.enc.Encode(tc.x)
		if err != nil {
			t.Fatalf("%v: %v", tc.enc, err)
		}
		if len(b) != len(tc.x)*tc.enc.Bytes() {
			t.Fatalf("%v: %d bytes", tc.enc, len(b))
		}
		back, err := tc.enc.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range tc.x {
			want := math.Ldexp(math.Round(math.Ldexp(v, tc.enc.Frac)), -tc.enc.Frac)
			if back[i] != want {
				t.Errorf("%v: %v came back as %v, want %v", tc.enc, v, back[i], want)
			}
		}
	}
	for _, tc := range []struct {
		enc Encoding
		x   float64
	}{
		{Ring64, 0x1p31}, {Ring64, -0x1p31 - 1}, {Ring48, 0x1p23}, {Ring48, -0x1p23 - 0x1p-20}, {Encoding{32, 0}, 0x1p31}, {Encoding{64, 0}, 0x1p63}, {Ring128, 0x1p63}, {Encoding{128, 0}, 0x1p127}, {Ring128, math.MaxFloat64},
	} {
		if _, err := tc.enc.Encode([]float64{0, tc.x}); err == nil || !strings.Contains(err.Error(), "value 1 is out of the range") {
			t.Errorf("%v: %v encoded: %v", tc.enc, tc.x, err)
		}
	}
	if _, err := Ring128.Decode(make([]byte, 24)); err == nil {
		t.Error("24 bytes decoded as 128-bit values")
	}
	if _, err := (Encoding{Bits: 96}).Decode(make([]byte, 24)); err == nil {
		t.Error("decoded with 96 bits")
	}

	// The 128-bit conversion agrees with exact arithmetic, rounding to
	// nearest.
	rng := mrand.New(mrand.NewPCG(1, 2))
	two128 := new(big.Int).Lsh(big.NewInt(1), 128)
	for i := 0; i < 20000; i++ {
		lo, hi := rng.Uint64(), rng.Uint64()>>uint(rng.IntN(128))
		if i%2 == 0 {
			lo, hi = neg128(lo, hi)
		}
		n := new(big.Int).Lsh(new(big.Int).SetUint64(hi), 64)
		n.Or(n, new(big.Int).SetUint64(lo))
		if hi>>63 == 1 {
			n.Sub(n, two128)
		}
		want, _ := new(big.Float).SetInt(n).Float64()
		if got := int128Float(lo, hi); got != want {
			t.Fatalf("%x %x: %v, want %v", hi, lo, got, want)
		}
		if math.Abs(want) < 0x1p127 && want == math.Round(want) {
			l2, h2 := float128(want)
			back := int128Float(l2, h2)
			if back != want {
				t.Fatalf("float128 round trip of %v gives %v", want, back)
			}
		}
	}
}

func TestShamir(t *testing.T) {
	if !fieldPrime.ProbablyPrime(64) || fieldPrime.BitLen() != 257 {
		t.Fatal("the field's modulus is not a 257-bit prime")
	}
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = 0xff // the largest secret
	}
	xs := []int64{1, 2, 3, 5, 8, 9, 10}
	shares, err := split(secret, xs, 5, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Every 5 of the 7 give the secret back.
	for skip1 := range xs {
		for skip2 := skip1 + 1; skip2 < len(xs); skip2++ {
			var px []int64
			var py [][]byte
			for i := range xs {
				if i != skip1 && i != skip2 {
					px, py = append(px, xs[i]), append(py, shares[i])
				}
			}
			got, err := combine(px, py)
			if err != nil || string(got) != string(secret) {
				t.Fatalf("without %d and %d: %x %v", skip1, skip2, got, err)
			}
		}
	}
	// Four do not.
	if got, err := combine(xs[:4], shares[:4]); err == nil && string(got) == string(secret) {
		t.Fatal("four shares of a threshold of five gave the secret")
	}
	if _, err := combine([]int64{1, 1}, [][]byte{shares[0], shares[0]}); err == nil {
		t.Fatal("two shares at one point combined")
	}
	big := fieldPrime.FillBytes(make([]byte, shareSize))
	if _, err := combine([]int64{1}, [][]byte{big}); err == nil {
		t.Fatal("a share outside the field was taken")
	}
	if _, err := split(secret[:31], xs, 3, rand.Reader); err == nil {
		t.Fatal("a 31-byte secret was shared")
	}
	if _, err := split(secret, xs, 8, rand.Reader); err == nil {
		t.Fatal("a threshold above the shares")
	}
}

// A client answers for its own enrolment key only: the ed25519 key it
// holds is checked.
func TestClientKeyChecked(t *testing.T) {
	ps, dir := newParties(t, 3)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := NewClient(config("k", ps, 1, Ring64), ps[0].id, other, dir, rand.Reader); err == nil {
		t.Fatal("a client with a key not in the directory")
	}
}

// A task delivered twice at once must not make a client mask twice:
// concurrent calls with the same shares get one and the same vector.
func TestConcurrentRetries(t *testing.T) {
	ps, dir := newParties(t, 4)
	r, adverts, _ := sharedRound(t, "conc", ps, dir)
	c := r.clients["node-02"]
	first, err := c.Shares(adverts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Shares(adverts)
	if err != nil || len(again) != len(first) || string(again[0].Ciphertext) != string(first[0].Ciphertext) {
		t.Fatalf("Shares retried: %v", err)
	}
	out := make(chan Masked, 8)
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			m, err := c.Mask(r.routed["node-02"], []float64{float64(i), 1, 2, 3, 4, 5})
			out <- m
			errs <- err
		}()
	}
	var data string
	for i := 0; i < 8; i++ {
		m := <-out
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			data = string(m.Data)
		} else if string(m.Data) != data {
			t.Fatal("two different masked vectors from one client in one session")
		}
	}
}

// A node that advertises a key of small order, signed with its own
// enrolment key, cannot make the others mask with a known value: they
// refuse the advert before sharing.
func TestSmallOrderKeyRefused(t *testing.T) {
	ps, dir := newParties(t, 3)
	cfg := config("small-order", ps, 2, Ring64)
	r := newRound(t, cfg, ps, dir)
	adverts := r.collectAdverts(t)
	for name, mutate := range map[string]func(a *Advert){
		"mask": func(a *Advert) { a.MaskKey = make([]byte, 32) },
		"enc":  func(a *Advert) { a.EncKey = make([]byte, 32) },
	} {
		bad := slices.Clone(adverts)
		a := bad[2]
		mutate(&a)
		a.Sig = ed25519.Sign(ps[2].key, advertMessage(r.server.Config().digest(), a))
		bad[2] = a
		c, err := NewClient(cfg, ps[0].id, ps[0].key, dir, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		own, _ := c.Advert()
		bad[0] = own
		if _, err := c.Shares(bad); err == nil || !strings.Contains(err.Error(), "node-02") || strings.Contains(err.Error(), "not signed") {
			t.Fatalf("%s key of small order: %v", name, err)
		}
	}
}
