package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// recorder is a T that records a failure instead of ending the test.
type recorder struct{ msg string }

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
}

func TestEventually(t *testing.T) {
	t.Parallel()
	calls := 0
	var r recorder
	Eventually(&r, time.Second, func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if r.msg != "" || calls != 3 {
		t.Fatalf("a condition true at the third call: %d calls, failure %q", calls, r.msg)
	}

	calls = 0
	t0 := time.Now()
	Eventually(&r, 150*time.Millisecond, func() error {
		calls++
		return fmt.Errorf("still not ready (call %d)", calls)
	})
	took := time.Since(t0)
	if want := fmt.Sprintf("still not ready (call %d)", calls); !strings.Contains(r.msg, want) {
		t.Errorf("the failure %q does not carry the last error %q", r.msg, want)
	}
	if took < 150*time.Millisecond || took > 2*time.Second || calls < 2 {
		t.Errorf("a condition never true: gave up after %s and %d calls, want about 150ms", took, calls)
	}
}

func TestEventuallyCallsOnceWithNoTime(t *testing.T) {
	t.Parallel()
	var r recorder
	calls := 0
	Eventually(&r, 0, func() error { calls++; return errors.New("no") })
	if calls != 1 || r.msg == "" {
		t.Fatalf("timeout 0: %d calls, failure %q; want 1 call and a failure", calls, r.msg)
	}
}

func TestJSONKeysOnce(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, err string
	}{
		{`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, ""},
		{`{"a":1,"a":2}`, `key "a" appears twice in the record`},
		{`{"a":1,"b":{"x":1,"x":2}}`, `key "x" appears twice in b`},
		{`{"l":[{"k":1},{"k":1,"k":2}]}`, `key "k" appears twice in l[1]`},
		{`{"a":1} {"b":2}`, "more than one JSON value"},
		{`{"a":`, "EOF"},
	} {
		err := JSONKeysOnce([]byte(c.in))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one with %q", c.in, err, c.err)
		}
	}
}

// TestJSONLogKeysOnce shows the mistake the check is for: slog's JSON
// handler writes a key given by With and again in the record.
func TestJSONLogKeysOnce(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("fine", "node", "a")
	buf.WriteString("not a record\n")
	log.With("node", "a").Info("twice", "node", "a")
	n, err := JSONLogKeysOnce(&buf)
	if err == nil || !strings.Contains(err.Error(), `key "node" appears twice`) || !strings.Contains(err.Error(), "log line 3") || n != 2 {
		t.Fatalf("got %d records, %v; want the third line's duplicated key", n, err)
	}
}
