package secagg

import (
	"encoding/json"
	"testing"
)

// FuzzMessages feeds arbitrary bytes, read as the JSON of each kind of
// message, to the party that receives that kind: nothing may panic, and
// nothing but the real messages may be taken.
func FuzzMessages(f *testing.F) {
	ps, dir := newParties(f, 4)
	// A finished round gives the server's inputs and seeds the corpus.
	done := newRound(f, config("fuzz", ps, 3, Ring64), ps, dir)
	all := sortedKeys(done.clients)
	if _, err := done.run(f, randomVectors(all, 3, 1, 9), dropouts{}); err != nil {
		f.Fatal(err)
	}
	// A round whose clients have shared but not masked, for Mask.
	open, _, _ := sharedRound(f, "fuzz-open", ps, dir)
	c := open.clients["node-00"]
	fresh := newRound(f, config("fuzz-fresh", ps, 3, Ring64), ps, dir).clients["node-01"]

	seed := func(kind byte, v any) {
		b, _ := json.Marshal(v)
		f.Add(append([]byte{kind}, b...))
	}
	seed(0, done.adverts)
	seed(1, open.routed["node-00"])
	seed(2, done.masked)
	seed(3, done.reveals)
	seed(4, done.alive)
	f.Add([]byte{5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte{1, '[', '{', '"', 'c', 'i', 'p', 'h', 'e', 'r', 't', 'e', 'x', 't', '"', ':', '"', 'A', 'A', '"', '}', ']'})
	f.Add([]byte{3, 'n', 'u', 'l', 'l'})

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		body := data[1:]
		switch data[0] % 6 {
		case 0:
			var as []Advert
			if json.Unmarshal(body, &as) != nil {
				return
			}
			_, _, _ = done.server.CheckAdverts(as)
			_, _ = fresh.Shares(as)
		case 1:
			var ss []Share
			if json.Unmarshal(body, &ss) != nil {
				return
			}
			_, _ = c.Mask(ss, []float64{1, 2, 3})
		case 2:
			var ms []Masked
			if json.Unmarshal(body, &ms) != nil {
				return
			}
			_, _ = done.server.Survivors(ms)
			_, _ = done.server.Sum(done.adverts, ms, done.reveals)
		case 3:
			var rs []Reveal
			if json.Unmarshal(body, &rs) != nil {
				return
			}
			if got, err := done.server.Sum(done.adverts, done.masked, rs); err == nil && len(got) != 3 {
				t.Fatalf("a sum of %d values", len(got))
			}
		case 4:
			var list []string
			if json.Unmarshal(body, &list) != nil {
				return
			}
			_, _ = done.clients["node-02"].Reveal(list)
		case 5:
			if len(body) == 0 {
				return
			}
			for _, e := range []Encoding{Ring64, Ring128, {Bits: int(body[0]), Frac: 3}} {
				_, _ = e.Decode(body)
			}
		}
	})
}
