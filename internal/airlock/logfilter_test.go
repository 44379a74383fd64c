package airlock

import "testing"

func TestLogFilter(t *testing.T) {
	f := NewLogFilter(Policy{MaxLogLines: 5}, PseudonymSet([]string{"MOSAIC-ABCDEFGHJKLMNPQR"}))
	cases := []struct {
		line string
		ok   bool
	}{
		{"epoch 3 loss 0.6931472 accuracy 0.81", true},
		{"reading table clinical (12 columns)", true},
		{"patient 1234567 has no stage", false},            // a long digit run
		{"born 19600131", false},                           // a date written as digits
		{"series 1.2.840.113619.2.55 skipped", false},      // a UID
		{"skipping MOSAIC-ABCDEFGHJKLMNPQR: no CT", false}, // a pseudonym
		{"skipping mosaic-abcdefghjklmnpqr.", false},       // in other case, with a full stop
		{string(make([]byte, 300)), false},                 // long
		{"bell \a here", false},                            // control characters
		{"\xff\xfe", false},                                // not UTF-8
		{"done", true},
	}
	for _, c := range cases {
		if ok, why := f.Line(c.line); ok != c.ok {
			t.Errorf("%q: released %v (%s), want %v", c.line, ok, why, c.ok)
		}
	}
	// Three released so far; the limit of five holds the sixth.
	rel, held := f.Split([]string{"a", "b", "c"})
	if len(rel) != 2 || len(held) != 1 {
		t.Fatalf("released %q held %q", rel, held)
	}
}

func TestDigitRun(t *testing.T) {
	for s, want := range map[string]int{"": 0, "abc": 0, "12345": 5, "0.123456789": 1, "1.2.3456789": 7, "x 42.000001 y 123": 3} {
		if got := digitRun(s); got != want {
			t.Errorf("digitRun(%q) = %d, want %d", s, got, want)
		}
	}
}
