package hub

import (
	"math"
	"net"
	"sync"
	"time"
)

// Limits of unauthenticated enrolment attempts, per source address (an
// IPv4 address or an IPv6 /64). A source may try enrolBurst times at
// once, then once per enrolRefill; past that it gets 429 without its
// token being looked at. Refusals are written to the audit log once when
// a source first fails, then as one record per source and enrolWindow
// with their count, so that a flood of bad tokens adds a few records,
// not one per attempt.
const (
	enrolBurst      = 10
	enrolRefill     = 30 * time.Second
	enrolWindow     = 10 * time.Minute
	enrolMaxSources = 10000
	enrolOverflow   = "other" // the source of everyone once the table is full
)

// enrolLimit throttles and counts enrolment attempts by source.
type enrolLimit struct {
	mu      sync.Mutex
	now     func() time.Time
	sources map[string]*enrolSource
}

type enrolSource struct {
	tokens  float64
	filled  time.Time // when tokens was last topped up
	window  time.Time // start of the audit window (zero: none open)
	refused int       // refusals in the window after its first one
	limited int       // attempts answered 429 in the window
}

// enrolSummary is one source's refusals over a window, for the audit log.
type enrolSummary struct {
	source           string
	since            time.Time
	refused, limited int
}

func newEnrolLimit() *enrolLimit {
	return &enrolLimit{now: time.Now, sources: map[string]*enrolSource{}}
}

// sourceOf is the source of a request's remote address: the IP, or the
// /64 of an IPv6 address (one site's hosts share it).
func sourceOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
	}
	return ip.String()
}

// source returns src's entry, topped up; l.mu is held.
func (l *enrolLimit) source(src string, now time.Time) *enrolSource {
	s, ok := l.sources[src]
	if !ok {
		if len(l.sources) >= enrolMaxSources {
			return l.source(enrolOverflow, now)
		}
		s = &enrolSource{tokens: enrolBurst, filled: now}
		l.sources[src] = s
	}
	if d := now.Sub(s.filled); d > 0 {
		s.tokens = math.Min(enrolBurst, s.tokens+d.Seconds()/enrolRefill.Seconds())
		s.filled = now
	}
	return s
}

// take reserves an attempt for src; when none is left it counts the
// attempt as limited and says when the next one will be.
func (l *enrolLimit) take(src string) (ok bool, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	s := l.source(src, now)
	if s.tokens < 1 {
		if s.window.IsZero() {
			s.window = now
		}
		s.limited++
		return false, time.Duration((1 - s.tokens) * float64(enrolRefill))
	}
	s.tokens--
	return true, 0
}

// succeeded gives a successful enrolment its attempt back.
func (l *enrolLimit) succeeded(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.source(src, l.now())
	s.tokens = math.Min(enrolBurst, s.tokens+1)
}

// refused counts a refused attempt; first is true when it opens a
// window, and should be written at once.
func (l *enrolLimit) refused(src string) (first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	s := l.source(src, now)
	if s.window.IsZero() {
		s.window = now
		return true
	}
	s.refused++
	return false
}

// due closes the windows that ended (every window if all) and returns
// those with attempts to report; it forgets idle sources.
func (l *enrolLimit) due(all bool) []enrolSummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var out []enrolSummary
	for src, s := range l.sources {
		if !s.window.IsZero() && (all || now.Sub(s.window) >= enrolWindow) {
			if s.refused+s.limited > 0 {
				out = append(out, enrolSummary{source: src, since: s.window, refused: s.refused, limited: s.limited})
			}
			s.window, s.refused, s.limited = time.Time{}, 0, 0
		}
		if s.window.IsZero() && s.tokens+now.Sub(s.filled).Seconds()/enrolRefill.Seconds() >= enrolBurst {
			delete(l.sources, src)
		}
	}
	return out
}

// flushEnrolRefusals writes the refusals counted over the windows that
// ended (all of them when the hub closes) to the audit log.
func (h *Hub) flushEnrolRefusals(all bool) {
	for _, s := range h.enrol.due(all) {
		h.note("anonymous", "enroll-refused", "", map[string]any{"remote": s.source, "count": s.refused + s.limited,
			"rate_limited": s.limited, "since": s.since.UTC().Format(time.RFC3339)})
		h.log.Warn("enrolment attempts refused", "remote", s.source, "count", s.refused+s.limited, "rate_limited", s.limited)
	}
}
