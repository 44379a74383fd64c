package lens

import (
	"encoding/base64"
	"errors"
	"testing"
)

// FuzzParse: Parse never panics, refuses with an *Error only, and what it
// accepts has a canonical form that survives writing it back in the
// Explorer's form, and that Describe can render.
func FuzzParse(f *testing.F) {
	seeds := []string{
		lensQuery,
		`{"ast":{"operand":"OR","children":[]},"id":"x"}`,
		`{"lang":"ast","query":"` + base64.StdEncoding.EncodeToString([]byte(lensQuery)) + `"}`,
		not(and(leaf("SNOMEDCT263495000", "IN", `["F","M"]`), leaf("SNOMEDCT432213005", "LOWER_THAN", `2019.5`))),
		or(leaf("SNOMEDCT439401001", "EQUALS", `"C34.1"`), leaf("SNOMEDCT123037004", "NOT_EQUALS", `"SNOMEDCT39607008"`)),
		leaf("C25392", "CONTAINS", `"philips"`),
		leaf("SNOMEDCT423493009", "BETWEEN", `{"min":50,"max":0}`),
		`{"key":"RID10311","type":"EQUALS","value":"CT","value":"MR"}`,
		`{"operand":"NOT","children":[{"operand":"NOT","children":[{"operand":"AND"}]}]}`,
		`[`, `{}`, `null`, `"x"`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := Parse(body)
		if err != nil {
			var le *Error
			if !errors.As(err, &le) || !errors.Is(err, ErrInvalid) || q != nil {
				t.Fatalf("error %v (%T) with query %v", err, err, q)
			}
			if len(le.Reason) > 200 || len(le.Path) > 1000 {
				t.Fatalf("error too long: %v", err)
			}
			return
		}
		_ = q.Describe()
		roundTrip(t, q)
		// Parsing the canonical query's Explorer form twice gives the
		// same bytes (the canonical form is stable).
		q2, _ := (Limits{MaxBytes: 1 << 22, MaxLeaves: 1 << 20, MaxDepth: 1 << 10}).Parse(must(q.MarshalJSON()))
		b1, _ := q.MarshalJSON()
		b2, _ := q2.MarshalJSON()
		if string(b1) != string(b2) {
			t.Fatalf("unstable encoding:\n%s\n%s", b1, b2)
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// fuzzLeaves are conditions FuzzCanonical builds trees from, each with an
// equivalent spelling.
var fuzzLeaves = [][2]string{
	{leaf("SNOMEDCT263495000", "EQUALS", `"SNOMEDCT248152002"`), leaf("SNOMEDCT263495000", "IN", `["female","F"]`)},
	{leaf("SNOMEDCT263495000", "IN", `["M","SNOMEDCT74964007"]`), leaf("SNOMEDCT263495000", "IN", `["other","248153007"]`)},
	{leaf("SNOMEDCT423493009", "BETWEEN", `{"min":50,"max":70}`), leaf("SNOMEDCT423493009", "BETWEEN", `{"max":70.4,"min":49.1}`)},
	{leaf("SNOMEDCT423493009", "GREATER_THAN", `60`), leaf("SNOMEDCT423493009", "BETWEEN", `{"min":61,"max":0}`)},
	{leaf("SNOMEDCT432213005", "LOWER_THAN", `2019`), leaf("SNOMEDCT432213005", "BETWEEN", `{"max":2018}`)},
	{leaf("SNOMEDCT439401001", "EQUALS", `"SNOMEDCT363406005"`), leaf("SNOMEDCT439401001", "EQUALS", `"colorectal"`)},
	{leaf("SNOMEDCT439401001", "IN", `["C34.1","C50"]`), leaf("SNOMEDCT439401001", "IN", `["c50","C341","C50"]`)},
	{leaf("RID10311", "EQUALS", `"RID10321"`), leaf("RID10311", "IN", `["ct"]`)},
	{leaf("RID10311", "NOT_EQUALS", `"MR"`), leaf("RID10311", "NOT_EQUALS", `"RID10312"`)},
	{leaf("SNOMEDCT123037004", "EQUALS", `"SNOMEDCT39607008"`), leaf("SNOMEDCT123037004", "IN", `["THORAX","LUNG","CHEST"]`)},
	{leaf("C25392", "IN", `["C200140","birnlex_3065"]`), leaf("C25392", "IN", `["Philips Healthcare","birnlex_3066"]`)},
	{leaf("C25392", "CONTAINS", `"holo"`), leaf("C25392", "CONTAINS", `" HOLO "`)},
}

// FuzzCanonical builds a query tree and an equivalent one (children
// reversed, operators nested in operators of the same kind, double NOTs,
// other spellings of the same conditions) from the fuzzer's bytes: both
// must have the same canonical form, and the form must survive the
// Explorer round trip.
func FuzzCanonical(f *testing.F) {
	f.Add([]byte{1, 3, 0, 2, 0, 5, 3, 0, 7})
	f.Add([]byte{2, 2, 1, 2, 0, 1, 0, 4, 3, 0, 9, 0, 10})
	f.Add([]byte{3, 1, 3, 0, 11})
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func() int {
			if len(data) == 0 {
				return 0
			}
			b := int(data[0])
			data = data[1:]
			return b
		}
		var gen func(depth int) (string, string)
		gen = func(depth int) (string, string) {
			op := next() % 4
			if depth >= 5 || op == 0 {
				l := fuzzLeaves[next()%len(fuzzLeaves)]
				if next()%2 == 0 {
					return l[0], not(not(l[1]))
				}
				return l[0], l[1]
			}
			if op == 3 {
				a, b := gen(depth + 1)
				return not(a), not(b)
			}
			var as, bs []string
			for n := next() % 4; n > 0; n-- {
				a, b := gen(depth + 1)
				as = append(as, a)
				bs = append([]string{b}, bs...) // reversed
			}
			if op == 1 {
				if len(bs) > 1 && next()%2 == 0 {
					bs = []string{and(bs[:1]...), and(bs[1:]...)}
				}
				return and(as...), and(bs...)
			}
			if len(bs) > 1 && next()%2 == 0 {
				bs = []string{or(bs[:1]...), or(bs[1:]...)}
			}
			return or(as...), or(bs...)
		}
		a, b := gen(0)
		lim := Limits{MaxDepth: 64, MaxLeaves: 10000, MaxBytes: 1 << 22}
		qa, err := lim.Parse([]byte(a))
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		qb, err := lim.Parse([]byte(b))
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if string(qa.Canonical()) != string(qb.Canonical()) {
			t.Fatalf("equivalent queries differ:\n%s\n%s\n->\n%s\n%s", a, b, qa.Canonical(), qb.Canonical())
		}
		roundTrip(t, qa)
	})
}
