package disclosure

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// Member identifies one patient of one dataset inside the node: the first
// 16 bytes of SHA-256 of the dataset id and the patient's pseudonym
// (MemberOf). It never leaves the node; the seeds derived from sets of
// members are keyed with the node's secret.
type Member [16]byte

// MemberOf returns the member identity of patient in dataset.
func MemberOf(dataset, patient string) Member {
	h := sha256.New()
	h.Write([]byte("mosaic-member\x00"))
	h.Write([]byte(dataset))
	h.Write([]byte{0})
	h.Write([]byte(patient))
	var m Member
	copy(m[:], h.Sum(nil))
	return m
}

// Group accumulates a set of members: how many, and the sum of their
// identities modulo 2^128, which names the set whatever order its members
// were added in. Groups add up: the group of a union of disjoint sets is
// the sum of their groups. The zero value is the empty set.
type Group struct {
	N      int
	hi, lo uint64
}

// Add puts m in the group (a member must be added once).
func (g *Group) Add(m Member) {
	lo := binary.BigEndian.Uint64(m[8:])
	hi := binary.BigEndian.Uint64(m[:8])
	var c uint64
	g.lo, c = bits.Add64(g.lo, lo, 0)
	g.hi, _ = bits.Add64(g.hi, hi, c)
	g.N++
}

// Plus returns the group of the union of g and o, which must be disjoint.
func (g Group) Plus(o Group) Group {
	var c uint64
	g.lo, c = bits.Add64(g.lo, o.lo, 0)
	g.hi, _ = bits.Add64(g.hi, o.hi, c)
	g.N += o.N
	return g
}

// Seed is the keyed digest of a set of patients: the noise of every
// figure about that set is drawn from it, so every way of asking for the
// same set gets the same figure.
type Seed [32]byte

// seed returns HMAC-SHA256(key, "set" || n || sum): equal sets give equal
// seeds; without the key nobody can tell which set a seed names.
func (g Group) seed(key []byte) Seed {
	m := hmac.New(sha256.New, key)
	var b [3 + 8 + 16]byte
	copy(b[:], "set")
	binary.BigEndian.PutUint64(b[3:], uint64(g.N))
	binary.BigEndian.PutUint64(b[11:], g.hi)
	binary.BigEndian.PutUint64(b[19:], g.lo)
	m.Write(b[:])
	var s Seed
	copy(s[:], m.Sum(nil))
	return s
}

// Set is a set of members by their ordinal in a dataset's register (see
// Control): a bitmap, so that the distance between two sets (how many
// patients are in one and not the other) is a population count.
type Set struct {
	words []uint64
	n     int
}

// Has reports whether ordinal i is in the set.
func (s *Set) Has(i uint32) bool {
	w := int(i / 64)
	return w < len(s.words) && s.words[w]&(1<<(i%64)) != 0
}

// add puts ordinal i in the set.
func (s *Set) add(i uint32) {
	w := int(i / 64)
	for len(s.words) <= w {
		s.words = append(s.words, 0)
	}
	if s.words[w]&(1<<(i%64)) == 0 {
		s.words[w] |= 1 << (i % 64)
		s.n++
	}
}

// Len is the number of members.
func (s *Set) Len() int { return s.n }

// Distance is the size of the symmetric difference of s and o.
func (s *Set) Distance(o *Set) int {
	a, b := s.words, o.words
	if len(a) < len(b) {
		a, b = b, a
	}
	d := 0
	for i := range b {
		d += bits.OnesCount64(a[i] ^ b[i])
	}
	for _, w := range a[len(b):] {
		d += bits.OnesCount64(w)
	}
	return d
}

// bytes encodes the set for storage (little-endian words, trailing zero
// words dropped).
func (s *Set) bytes() []byte {
	words := s.words
	for len(words) > 0 && words[len(words)-1] == 0 {
		words = words[:len(words)-1]
	}
	out := make([]byte, 8*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint64(out[8*i:], w)
	}
	return out
}

// setFromBytes decodes what bytes wrote; trailing bytes that do not make
// a whole word are ignored.
func setFromBytes(b []byte) *Set {
	s := &Set{words: make([]uint64, len(b)/8)}
	for i := range s.words {
		s.words[i] = binary.LittleEndian.Uint64(b[8*i:])
		s.n += bits.OnesCount64(s.words[i])
	}
	return s
}
