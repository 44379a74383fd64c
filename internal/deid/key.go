package deid

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// KeySize is the size of a site key in bytes.
const KeySize = 32

// Key is a site's pseudonymisation secret. It never leaves the site and is
// never printed or logged: Key's String hides it.
type Key struct{ b [KeySize]byte }

// String hides the key.
func (Key) String() string { return "deid.Key(hidden)" }

// GoString hides the key.
func (Key) GoString() string { return "deid.Key(hidden)" }

// NewKey returns a key made of the given bytes (tests, fixed keys).
func NewKey(b []byte) (Key, error) {
	var k Key
	if len(b) != KeySize {
		return k, fmt.Errorf("deid: key of %d bytes, want %d", len(b), KeySize)
	}
	copy(k.b[:], b)
	return k, nil
}

// ErrKeyFile marks a site key file that exists but cannot be used.
var ErrKeyFile = errors.New("unusable site key file")

// LoadKey reads the site key at path; an error wrapping fs.ErrNotExist
// says there is none. A key file readable by others is refused.
func LoadKey(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("deid: site key: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Key{}, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return Key{}, fmt.Errorf("deid: %w: %s is accessible to others (mode %v); chmod 600 it", ErrKeyFile, path, fi.Mode().Perm())
	}
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("deid: %w: %s holds %d bytes, want %d", ErrKeyFile, path, len(b), KeySize)
	}
	return NewKey(b)
}

// LoadOrCreateKey reads the site key at path, or creates it (32 random
// bytes, mode 0600, written atomically) when the file does not exist. It
// reports whether it created the key. A key file readable by others is
// refused.
func LoadOrCreateKey(path string) (Key, bool, error) {
	if k, err := LoadKey(path); err == nil {
		return k, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Key{}, false, err
	}
	var k Key
	if _, err := rand.Read(k.b[:]); err != nil {
		return Key{}, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Key{}, false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".site-key-*")
	if err != nil {
		return Key{}, false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return Key{}, false, err
	}
	if _, err := tmp.Write(k.b[:]); err != nil {
		tmp.Close()
		return Key{}, false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return Key{}, false, err
	}
	if err := tmp.Close(); err != nil {
		return Key{}, false, err
	}
	// Link rather than rename so that a key created meanwhile by another
	// process is never replaced.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateKey(path)
		}
		return Key{}, false, err
	}
	return k, true, nil
}

// hasher computes keyed hashes with one key; it pools HMAC states.
type hasher struct {
	pool sync.Pool
}

func newHasher(k Key) *hasher {
	h := &hasher{}
	key := k.b
	h.pool.New = func() any { return hmac.New(sha256.New, key[:]) }
	return h
}

// sum returns HMAC-SHA-256(key, domain || 0 || parts joined by 0).
func (h *hasher) sum(dst []byte, domain string, parts ...string) []byte {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(domain))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	dst = m.Sum(dst)
	h.pool.Put(m)
	return dst
}

// uid maps a UID to 2.25 followed by the decimal of the first 128 bits of
// its keyed hash: the same UID maps the same way everywhere, with no
// table, and the result is a valid UID of at most 44 characters.
func (h *hasher) uid(orig string) string {
	var buf [sha256.Size]byte
	s := h.sum(buf[:0], "uid", orig)
	n := new(big.Int).SetBytes(s[:16])
	return "2.25." + n.String()
}

// pseudonymAlphabet has no I, O, 0 or 1, which read alike.
const pseudonymAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// pseudonym returns prefix plus 16 upper-case base-32 characters (80 bits)
// of the keyed hash of the parts.
func (h *hasher) pseudonym(prefix, domain string, parts ...string) string {
	var buf [sha256.Size]byte
	s := h.sum(buf[:0], domain, parts...)
	const alphabet = pseudonymAlphabet
	var out strings.Builder
	out.Grow(len(prefix) + 16)
	out.WriteString(prefix)
	v := binary.BigEndian.Uint64(s[:8])
	w := binary.BigEndian.Uint16(s[8:10])
	for i := 0; i < 12; i++ {
		out.WriteByte(alphabet[v>>59])
		v <<= 5
	}
	for i := 0; i < 4; i++ {
		out.WriteByte(alphabet[w>>11])
		w <<= 5
	}
	return out.String()
}

// shiftDays returns the per-patient date offset in days, in
// [-maxDays, -1].
func (h *hasher) shiftDays(patient string, maxDays int) int {
	var buf [sha256.Size]byte
	s := h.sum(buf[:0], "date-shift", patient)
	return -1 - int(binary.BigEndian.Uint64(s[:8])%uint64(maxDays))
}
