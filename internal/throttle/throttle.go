// Package throttle slows down the guessing of passwords: it counts
// failed attempts per key (an account, a source address, or both) and
// makes a key wait, with exponential back-off up to a cap, before it may
// try again. Attempts made during a wait are refused without checking
// anything, so that guessing stops rather than merely slows. Keys are
// forgotten after a success or a quiet period, and the tables hold a
// bounded number of keys, so that an attacker with many addresses or
// names cannot grow them without bound.
//
// A Guard combines three limiters for logins; a Limiter is one table.
package throttle

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"sync"
	"time"
)

// Config sets a limiter's back-off.
type Config struct {
	// After is how many failures a key may have before each next attempt
	// waits (default 5).
	After int
	// Base is the first wait, after After failures (default 1 s); each
	// further failure doubles it.
	Base time.Duration
	// Max caps the wait (default 5 min).
	Max time.Duration
	// Forget is the quiet period after which a key's failures are
	// forgotten: no failure for this long (default 30 min; never less
	// than Max).
	Forget time.Duration
	// Size bounds the number of keys held (default 10,000); when full,
	// the key whose last failure is oldest is dropped first.
	Size int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.After <= 0 {
		c.After = 5
	}
	if c.Base <= 0 {
		c.Base = time.Second
	}
	if c.Max <= 0 {
		c.Max = 5 * time.Minute
	}
	if c.Max < c.Base {
		c.Max = c.Base
	}
	if c.Forget <= 0 {
		c.Forget = 30 * time.Minute
	}
	if c.Forget < c.Max {
		c.Forget = c.Max
	}
	if c.Size <= 0 {
		c.Size = 10000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Limiter counts failures per key. It is safe for concurrent use.
type Limiter struct {
	cfg  Config
	mu   sync.Mutex
	keys map[string]*list.Element
	lru  list.List // of *entry, the most recent failure at the front
}

type entry struct {
	key      string
	failures int
	last     time.Time // of the last failure
	until    time.Time // no attempt before
}

// New returns a limiter; zero fields of cfg take their defaults.
func New(cfg Config) *Limiter {
	cfg.defaults()
	return &Limiter{cfg: cfg, keys: map[string]*list.Element{}}
}

// backoff is the wait after a key's failures-th failure.
func (l *Limiter) backoff(failures int) time.Duration {
	n := failures - l.cfg.After
	if n < 0 {
		return 0
	}
	w := l.cfg.Base
	for ; n > 0 && w < l.cfg.Max; n-- {
		w *= 2
	}
	return min(w, l.cfg.Max)
}

// get returns key's entry, or nil when it has none or its failures are
// forgotten. The caller holds mu.
func (l *Limiter) get(key string, now time.Time) *entry {
	el := l.keys[key]
	if el == nil {
		return nil
	}
	e := el.Value.(*entry)
	if now.Sub(e.last) >= l.cfg.Forget {
		l.lru.Remove(el)
		delete(l.keys, key)
		return nil
	}
	return e
}

// Wait returns how long key must wait before its next attempt: 0 when it
// may try now.
func (l *Limiter) Wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	if e := l.get(key, now); e != nil && e.until.After(now) {
		return e.until.Sub(now)
	}
	return 0
}

// Failures returns key's failures not yet forgotten.
func (l *Limiter) Failures(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.get(key, l.cfg.Now()); e != nil {
		return e.failures
	}
	return 0
}

// Fail records a failure of key. It returns the wait key now has, and
// started when this failure is the one that brought the key to its first
// wait (since it was last forgotten): a lockout begins.
func (l *Limiter) Fail(key string) (wait time.Duration, started bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	e := l.get(key, now)
	if e == nil {
		// Make room: drop forgotten keys from the back, then, when
		// still full, the key whose last failure is oldest.
		for back := l.lru.Back(); back != nil; back = l.lru.Back() {
			b := back.Value.(*entry)
			if now.Sub(b.last) < l.cfg.Forget && len(l.keys) < l.cfg.Size {
				break
			}
			l.lru.Remove(back)
			delete(l.keys, b.key)
		}
		e = &entry{key: key}
		l.keys[key] = l.lru.PushFront(e)
	} else {
		l.lru.MoveToFront(l.keys[key])
	}
	e.failures++
	e.last = now
	if w := l.backoff(e.failures); w > 0 {
		e.until = now.Add(w)
		return w, e.failures == l.cfg.After
	}
	return 0, false
}

// Undo takes back one failure of key: an attempt counted in advance that
// turned out to succeed. A key left with fewer than After failures has no
// wait.
func (l *Limiter) Undo(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.get(key, l.cfg.Now())
	if e == nil {
		return
	}
	if e.failures > 0 {
		e.failures--
	}
	if e.failures < l.cfg.After {
		e.until = time.Time{}
	}
}

// Forget drops key's failures.
func (l *Limiter) Forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el := l.keys[key]; el != nil {
		l.lru.Remove(el)
		delete(l.keys, key)
	}
}

// Len returns the number of keys held (forgotten ones included until
// they are dropped).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// Source is the part of a remote address that throttling counts by: the
// IP address without the port, and for IPv6 its /64 network (one
// subscriber usually holds a whole /64). Anything that does not parse is
// kept whole.
func Source(remoteAddr string) string {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return shortKey(host)
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// shortKey keeps keys small whatever a client sends: long ones are
// replaced by their hash.
func shortKey(s string) string {
	if len(s) <= 64 {
		return s
	}
	h := sha256.Sum256([]byte(s))
	return "#" + hex.EncodeToString(h[:16])
}
