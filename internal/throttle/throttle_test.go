package throttle

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for the tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLimiterBackoff(t *testing.T) {
	c := newClock()
	l := New(Config{After: 5, Base: time.Second, Max: 8 * time.Second, Forget: time.Minute, Now: c.now})
	want := []time.Duration{0, 0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, w := range want {
		if got := l.Wait("k"); got != 0 {
			t.Fatalf("before failure %d: wait %s, want 0", i+1, got)
		}
		got, started := l.Fail("k")
		if got != w {
			t.Errorf("failure %d: wait %s, want %s", i+1, got, w)
		}
		if started != (i == 4) {
			t.Errorf("failure %d: started %v", i+1, started)
		}
		if got := l.Wait("k"); got != w {
			t.Errorf("after failure %d: Wait %s, want %s", i+1, got, w)
		}
		c.add(w)
	}
	// The wait expires with the clock, and a quiet period forgets.
	l.Fail("k")
	c.add(8*time.Second - time.Millisecond)
	if l.Wait("k") != time.Millisecond {
		t.Errorf("wait not counting down: %s", l.Wait("k"))
	}
	c.add(time.Millisecond)
	if l.Wait("k") != 0 {
		t.Errorf("wait did not expire: %s", l.Wait("k"))
	}
	c.add(time.Minute)
	if n := l.Failures("k"); n != 0 {
		t.Errorf("after a quiet minute: %d failures, want 0", n)
	}
	if w, _ := l.Fail("k"); w != 0 {
		t.Errorf("a forgotten key waits %s after one failure", w)
	}
}

func TestLimiterBounded(t *testing.T) {
	c := newClock()
	l := New(Config{After: 3, Size: 100, Now: c.now})
	for range 3 {
		l.Fail("victim")
	}
	for i := range 10000 {
		l.Fail(fmt.Sprintf("k%d", i))
		if i%50 == 0 {
			l.Fail("victim") // the key under attack keeps failing
		}
		c.add(time.Millisecond)
	}
	if n := l.Len(); n > 100 {
		t.Errorf("%d keys held, want at most 100", n)
	}
	if l.Wait("victim") == 0 {
		t.Error("the key under attack was dropped to make room for others")
	}
}

func TestGuardStopsGuessing(t *testing.T) {
	c := newClock()
	g := NewGuard(GuardConfig{Failures: 5, MaxWait: time.Minute, Now: c.now})
	refused := 0
	for range 40 {
		a, wait := g.Begin("alice", "10.0.0.1")
		if a == nil {
			if wait <= 0 {
				t.Fatal("refused without a wait")
			}
			refused++
			continue
		}
		a.Done(false)
	}
	if refused != 35 {
		t.Errorf("%d of 40 guesses refused, want 35 (5 checked)", refused)
	}
	// The right password is refused too, without being checked.
	if a, wait := g.Begin("alice", "10.0.0.1"); a != nil || wait != time.Second {
		t.Errorf("right password during the wait: attempt %v, wait %s; want refused for 1s", a, wait)
	}
	c.add(time.Second)
	a, _ := g.Begin("alice", "10.0.0.1")
	if a == nil {
		t.Fatal("refused after the wait")
	}
	a.Done(true)
	// A success forgets the account's failures from this source.
	for range 4 {
		a, _ := g.Begin("alice", "10.0.0.1")
		if a == nil {
			t.Fatal("refused after a success")
		}
		a.Done(false)
	}
}

func TestGuardConcurrentAttemptsCounted(t *testing.T) {
	g := NewGuard(GuardConfig{Failures: 5})
	var attempts []*Attempt
	for range 20 {
		if a, _ := g.Begin("bob", "10.0.0.9"); a != nil {
			attempts = append(attempts, a) // all still being checked
		}
	}
	if len(attempts) != 5 {
		t.Errorf("%d concurrent attempts admitted, want 5", len(attempts))
	}
}

// TestGuardOwnerNotLockedOut: a distributed attack on an account from many
// addresses slows the attackers, but the owner from a clean address logs
// in at once, and anyone else waits at most MaxWait.
func TestGuardOwnerNotLockedOut(t *testing.T) {
	c := newClock()
	g := NewGuard(GuardConfig{Failures: 5, MaxWait: 2 * time.Minute, Now: c.now})
	var maxWait time.Duration
	for i := range 2000 {
		src := fmt.Sprintf("198.51.%d.%d", i/200, i%200)
		for range 3 {
			a, wait := g.Begin("carol", src)
			if a == nil {
				maxWait = max(maxWait, wait)
				continue
			}
			a.Done(false)
		}
		c.add(10 * time.Millisecond)
	}
	if maxWait == 0 || maxWait > 2*time.Minute {
		t.Errorf("attackers waited at most %s, want a wait of at most 2m", maxWait)
	}
	a, wait := g.Begin("carol", "192.0.2.7")
	if a == nil {
		t.Fatalf("the owner from a clean address is refused for %s", wait)
	}
	a.Done(true)
	// An address that failed before waits for the account, but at most
	// MaxWait.
	_, wait = g.Begin("carol", "198.51.0.1")
	if wait > 2*time.Minute {
		t.Errorf("wait %s beyond the cap", wait)
	}
	pair, source, account := g.Sizes()
	if pair > 10000 || source > 10000 || account > 10000 {
		t.Errorf("tables %d, %d, %d: beyond their bound", pair, source, account)
	}
}

// TestGuardBounded: an attacker with many addresses and names cannot
// grow the tables beyond their size.
func TestGuardBounded(t *testing.T) {
	c := newClock()
	g := NewGuard(GuardConfig{Size: 50, Now: c.now})
	for i := range 5000 {
		if a, _ := g.Begin(fmt.Sprintf("user%d", i), fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)); a != nil {
			a.Done(false)
		}
		c.add(time.Millisecond)
	}
	if pair, source, account := g.Sizes(); pair > 50 || source > 50 || account > 50 {
		t.Errorf("tables hold %d, %d, %d keys; want at most 50 each", pair, source, account)
	}
}

func TestSource(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3:5555":              "10.1.2.3",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1":   "2001:db8:1:2::/64",
		"[::ffff:10.1.2.3]:80":       "10.1.2.3",
		"pipe":                       "pipe",
	} {
		if got := Source(in); got != want {
			t.Errorf("Source(%q) = %q, want %q", in, got, want)
		}
	}
}
