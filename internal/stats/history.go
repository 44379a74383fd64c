package stats

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"

	"github.com/mosaic-imaging/mosaic/internal/fed"
)

// History is the node's memory of the row sets its answers used, per
// researcher and table, against differencing: two answers whose rows
// differ by a few rows let the difference of their sums reveal those
// rows (one-row-removed differences). Admit refuses (RefusedOverlap) a
// row set that differs from an earlier one by between 1 and floor − 1
// rows, counting rows in either and not both; the same set again, or a
// set that differs by at least the floor, is admitted and remembered.
// A node may keep History in a persistent store; MemoryHistory keeps it
// in memory.
type History interface {
	Admit(researcher, table string, rows []int, floor int) error
}

// Fingerprint is a digest of a row set (order and repeats ignored).
func Fingerprint(rows []int) string {
	s := sortedSet(rows)
	h := sha256.New()
	var b [4]byte
	for _, r := range s {
		binary.BigEndian.PutUint32(b[:], uint32(r))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sortedSet(rows []int) []int32 {
	s := make([]int32, 0, len(rows))
	for _, r := range rows {
		s = append(s, int32(r))
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	out := s[:0]
	for i, r := range s {
		if i == 0 || r != s[i-1] {
			out = append(out, r)
		}
	}
	return out
}

// MemoryHistory is a History in memory. The zero value is not usable;
// call NewMemoryHistory.
type MemoryHistory struct {
	mu   sync.Mutex
	sets map[[2]string][]rowSet
	// MaxSets bounds the distinct row sets kept per researcher and
	// table (default 1000). Past it a new row set is refused rather than
	// an old one forgotten, which would reopen differencing.
	MaxSets int
}

type rowSet struct {
	digest string
	rows   []int32
}

// NewMemoryHistory returns an empty history.
func NewMemoryHistory() *MemoryHistory {
	return &MemoryHistory{sets: map[[2]string][]rowSet{}, MaxSets: 1000}
}

// Admit implements History.
func (h *MemoryHistory) Admit(researcher, table string, rows []int, floor int) error {
	for _, r := range rows {
		if r < 0 || r > 1<<31-1 {
			return fmt.Errorf("stats: row index out of range")
		}
	}
	s := sortedSet(rows)
	d := Fingerprint(rows)
	key := [2]string{researcher, table}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, old := range h.sets[key] {
		if old.digest == d {
			return nil // the same rows again
		}
		if diff := symDiff(old.rows, s, floor); diff > 0 && diff < floor {
			return refuse(fed.RefusedOverlap, "the rows differ from an earlier answer's by fewer than the floor")
		}
	}
	if max := h.MaxSets; max > 0 && len(h.sets[key]) >= max {
		return refuse(fed.RefusedOverlap, "too many distinct row sets asked of this table")
	}
	h.sets[key] = append(h.sets[key], rowSet{digest: d, rows: s})
	return nil
}

// symDiff counts rows in exactly one of two sorted sets, stopping once
// the count reaches limit.
func symDiff(a, b []int32, limit int) int {
	d := len(a) - len(b)
	if d < 0 {
		d = -d
	}
	if d >= limit {
		return d
	}
	n, i, j := 0, 0, 0
	for i < len(a) && j < len(b) && n < limit {
		switch {
		case a[i] == b[j]:
			i++
			j++
		case a[i] < b[j]:
			n++
			i++
		default:
			n++
			j++
		}
	}
	return n + (len(a) - i) + (len(b) - j)
}
