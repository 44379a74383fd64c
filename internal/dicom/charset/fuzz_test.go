package charset

import (
	"testing"
	"unicode/utf8"
)

// fuzzTerms are the Specific Character Sets that the fuzz tests pick from.
var fuzzTerms = [][]string{
	nil,
	{"ISO_IR 100"},
	{"ISO_IR 192"},
	{"GB18030"},
	{"GBK"},
	{"ISO_IR 13"},
	{"ISO_IR 166"},
	{"ISO_IR 127"},
	{"", "ISO 2022 IR 87"},
	{"ISO 2022 IR 13", "ISO 2022 IR 87"},
	{"", "ISO 2022 IR 87", "ISO 2022 IR 159"},
	{"", "ISO 2022 IR 149"},
	{"", "ISO 2022 IR 58"},
	{"ISO 2022 IR 100", "ISO 2022 IR 126", "ISO 2022 IR 144"},
	{"ISO 2022 IR 149"},
	{"ISO 2022 IR 6", "ISO 2022 IR 13", "ISO 2022 IR 87", "ISO 2022 IR 159", "ISO 2022 IR 149", "ISO 2022 IR 58", "ISO 2022 IR 100"},
}

func fuzzSet(t *testing.T, which uint8) *Set {
	return mustParse(t, fuzzTerms[int(which)%len(fuzzTerms)])
}

func fuzzKind(k uint8) Kind { return Kind(int(k) % 3) }

func FuzzDecode(f *testing.F) {
	for _, ex := range examples {
		for i := range fuzzTerms {
			f.Add([]byte(ex.raw), uint8(i), uint8(ex.kind))
		}
	}
	f.Add([]byte("\x1b$B\x1b$)C\x1b(J\x1b-A\xa4\x1b"), uint8(15), uint8(0))
	f.Add([]byte("\x8e\x52\x93\x63\xe0\x40\xfc\xfc"), uint8(5), uint8(2))
	f.Add([]byte("\x81\x30\x81\x30\xff\x80"), uint8(3), uint8(1))
	f.Fuzz(func(t *testing.T, raw []byte, which, k uint8) {
		s, kind := fuzzSet(t, which), fuzzKind(k)
		out := s.Decode(raw, kind)
		if !utf8.ValidString(out) {
			t.Fatalf("%q Decode(%q) = %q: not valid UTF-8", s.Terms(), raw, out)
		}
		if s.IsUTF8() && utf8.Valid(raw) && out != string(raw) {
			t.Fatalf("ISO_IR 192 Decode(%q) = %q: valid UTF-8 must decode to itself", raw, out)
		}
		if isPlainASCII(raw) && out != string(raw) {
			t.Fatalf("%q Decode(%q) = %q: plain ASCII must decode to itself", s.Terms(), raw, out)
		}
		// Whatever the encoder accepts comes back unchanged.
		enc, err := s.Encode(out, kind)
		if err != nil {
			return
		}
		if back := s.Decode(enc, kind); back != out {
			t.Fatalf("%q: Decode(%q) = %q, Encode gives %q, which decodes to %q", s.Terms(), raw, out, enc, back)
		}
	})
}

func FuzzEncode(f *testing.F) {
	for _, ex := range examples {
		for i := range fuzzTerms {
			f.Add(ex.text, uint8(i), uint8(ex.kind))
		}
	}
	f.Add("～¢·—Ω^é=山ﾔ\\한\r\n中", uint8(15), uint8(2))
	f.Fuzz(func(t *testing.T, text string, which, k uint8) {
		s, kind := fuzzSet(t, which), fuzzKind(k)
		enc, err := s.Encode(text, kind)
		if err != nil {
			return
		}
		dec := s.Decode(enc, kind)
		if !hasAlias(text) {
			if dec != text {
				t.Fatalf("%q: Encode(%q) = %q, which decodes to %q", s.Terms(), text, enc, dec)
			}
			return
		}
		// The few characters that the encoder accepts in two spellings
		// come back in the national standard's spelling, which then
		// stays as it is.
		again, err := s.Encode(dec, kind)
		if err != nil {
			t.Fatalf("%q: Encode(%q) = %q, decodes to %q, which does not encode: %v", s.Terms(), text, enc, dec, err)
		}
		if back := s.Decode(again, kind); back != dec {
			t.Fatalf("%q: %q decodes to %q, then %q", s.Terms(), text, dec, back)
		}
	})
}

// hasAlias reports whether text holds a character that the encoder accepts
// as another spelling of a character of a multi-byte set.
func hasAlias(text string) bool {
	for _, r := range text {
		for _, m := range dbcsEncodeAlias {
			if _, ok := m[r]; ok {
				return true
			}
		}
	}
	return false
}
