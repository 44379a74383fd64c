package throttle

import (
	"strings"
	"sync"
	"time"
)

// Kinds of keys a Guard counts by, as Lockout reports them.
const (
	KindPair    = "account-source" // one account from one source
	KindSource  = "source"         // one source, any account
	KindAccount = "account"        // one account, any source
)

// GuardConfig sets a Guard's three limiters.
type GuardConfig struct {
	// Failures is how many failed passwords one account may get from one
	// source before each next attempt waits (default 5). A source may
	// fail 4 times as often over all accounts, an account twice as often
	// from all sources.
	Failures int
	// MaxWait caps every wait (default 5 min).
	MaxWait time.Duration
	// Forget is the quiet period after which failures are forgotten
	// (default 30 min; never less than MaxWait).
	Forget time.Duration
	// Size bounds each of the three tables (default 10,000 keys).
	Size int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Guard throttles password checks by account and source address. Every
// attempt counts as a failure from the moment it begins, so that
// concurrent attempts cannot slip past the count while their passwords
// are being checked; Done takes the count back for a success.
//
// The per-account limit slows a distributed attack on one account, but
// it cannot shut the account's owner out: it applies only to sources that
// have failed before (on any account), so an attempt from a clean address
// is never held by it, and it never holds anyone longer than MaxWait.
type Guard struct {
	mu                    sync.Mutex
	pair, source, account *Limiter
}

// NewGuard returns a Guard; zero fields of cfg take their defaults.
func NewGuard(cfg GuardConfig) *Guard {
	if cfg.Failures <= 0 {
		cfg.Failures = 5
	}
	c := Config{After: cfg.Failures, Max: cfg.MaxWait, Forget: cfg.Forget, Size: cfg.Size, Now: cfg.Now}
	src, acct := c, c
	src.After, acct.After = 4*cfg.Failures, 2*cfg.Failures
	return &Guard{pair: New(c), source: New(src), account: New(acct)}
}

// Lockout is a wait that an attempt's failure began.
type Lockout struct {
	Kind string // KindPair, KindSource or KindAccount
	Wait time.Duration
}

// Attempt is a password check under way.
type Attempt struct {
	g                     *Guard
	pair, source, account string
	locks                 []Lockout
}

// Begin asks whether account may check a password from source now. When
// it may not, it returns nil and how long to wait: the caller refuses the
// attempt without checking the password. Otherwise the caller checks the
// password and calls Done with the result.
func (g *Guard) Begin(account, source string) (*Attempt, time.Duration) {
	account = shortKey(strings.ToLower(account))
	source = shortKey(source)
	a := &Attempt{g: g, pair: account + "\x00" + source, source: source, account: account}
	g.mu.Lock()
	defer g.mu.Unlock()
	wait := max(g.pair.Wait(a.pair), g.source.Wait(a.source))
	if g.source.Failures(a.source) > 0 {
		wait = max(wait, g.account.Wait(a.account))
	}
	if wait > 0 {
		return nil, wait
	}
	for _, k := range []struct {
		l    *Limiter
		key  string
		kind string
	}{{g.pair, a.pair, KindPair}, {g.source, a.source, KindSource}, {g.account, a.account, KindAccount}} {
		if w, started := k.l.Fail(k.key); started {
			a.locks = append(a.locks, Lockout{Kind: k.kind, Wait: w})
		}
	}
	return a, 0
}

// Done ends an attempt. After a success the account's failures are
// forgotten, from this source and overall, and the attempt no longer
// counts against the source (whose other failures stay: logging in to
// one's own account must not wipe out guesses at others). After a
// failure it returns the waits this attempt began, for the caller to
// record.
func (a *Attempt) Done(ok bool) []Lockout {
	if !ok {
		return a.locks
	}
	a.g.mu.Lock()
	defer a.g.mu.Unlock()
	a.g.pair.Forget(a.pair)
	a.g.account.Forget(a.account)
	a.g.source.Undo(a.source)
	return nil
}

// Sizes returns the number of keys each table holds: per account and
// source, per source, per account.
func (g *Guard) Sizes() (pair, source, account int) {
	return g.pair.Len(), g.source.Len(), g.account.Len()
}
