package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxRecordBytes is the largest line a record may take in the file,
	// without its newline. Append rejects larger entries; Verify rejects
	// longer lines.
	MaxRecordBytes = 64 << 10

	// HashLen is the length of a record hash in characters.
	HashLen = 2 * sha256.Size

	// MaxActionLen is the longest Action accepted.
	MaxActionLen = 64

	// TimeLayout is how a record's time is written: RFC 3339 in UTC with
	// exactly nine fractional digits, so every time has the same width
	// and times sort as strings.
	TimeLayout = "2006-01-02T15:04:05.000000000Z"
)

// ZeroHash is the prev of the first record, and the head of an empty log.
var ZeroHash = strings.Repeat("0", HashLen)

// ErrInvalidEntry is returned (wrapped) by Append for an entry it refuses:
// an action that is not a lowercase token, an empty or malformed actor,
// text that is not UTF-8, a Detail that is not JSON, or a record larger
// than MaxRecordBytes.
var ErrInvalidEntry = errors.New("audit: invalid entry")

// Entry is what a caller records: who did what to what, with a few details.
// It must never hold patient data (see the package documentation).
type Entry struct {
	// Actor is who acted, as "kind:id": "user:alice", "node:hospital-a",
	// "hub". Required; printable UTF-8, at most 256 bytes.
	Actor string
	// Action is a lowercase token: a letter, then letters, digits, and
	// single '.', '_' or '-' between them ("search", "node.enrol",
	// "node.remove"); at most MaxActionLen bytes.
	Action string
	// Subject is what the action was about: a query ID, a node ID, a
	// dataset ID. Printable UTF-8, may be empty.
	Subject string
	// Detail holds small JSON values (anything encoding/json accepts),
	// such as a query's canonical description and hash, counts per
	// dataset, node statuses.
	Detail map[string]any
}

// Record is an Entry as written to the log.
type Record struct {
	Seq     int       // 1 for the first record, then consecutive
	Time    time.Time // when it was appended, UTC
	Actor   string
	Action  string
	Subject string
	// Detail is the entry's Detail as recorded: decoded back from its
	// canonical JSON, so nested values are map[string]any and []any and
	// numbers are json.Number. Nil when the entry had none.
	Detail map[string]any
	Prev   string // Hash of the previous record; ZeroHash for the first
	Hash   string // SHA-256 of this record's canonical encoding, hex
}

const maxActorLen = 256

func (e *Entry) validate() error {
	if !validAction(e.Action) {
		return fmt.Errorf("%w: action must be a lowercase token of at most %d bytes (letters, digits and single '.', '_' or '-' between them)", ErrInvalidEntry, MaxActionLen)
	}
	if e.Actor == "" {
		return fmt.Errorf("%w: action %s: empty actor", ErrInvalidEntry, e.Action)
	}
	if len(e.Actor) > maxActorLen || !printable(e.Actor) {
		return fmt.Errorf("%w: action %s: actor must be printable UTF-8 of at most %d bytes", ErrInvalidEntry, e.Action, maxActorLen)
	}
	if !printable(e.Subject) {
		return fmt.Errorf("%w: action %s: subject must be printable UTF-8", ErrInvalidEntry, e.Action)
	}
	return nil
}

func validAction(s string) bool {
	if s == "" || len(s) > MaxActionLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '-':
			// A separator must sit between two letters or digits.
			if i == len(s)-1 || s[i-1] == '.' || s[i-1] == '_' || s[i-1] == '-' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// appendJSON appends v as compact JSON without HTML escaping, the one
// encoder used for every part of a record.
func appendJSON(b []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return b, err
	}
	out := buf.Bytes()
	return append(b, out[:len(out)-1]...), nil // Encode adds a newline
}

// canonicalDetail returns the canonical JSON of d (keys sorted at every
// depth, numbers in canonical form, {} when empty) and d decoded back from
// it. Encoding, decoding with json.Number and encoding again turns structs,
// json.RawMessage and custom marshalers into plain sorted objects, and is
// stable from then on.
func canonicalDetail(d map[string]any) ([]byte, map[string]any, error) {
	if len(d) == 0 {
		return []byte("{}"), nil, nil
	}
	first, err := appendJSON(nil, d)
	if err != nil {
		return nil, nil, err
	}
	m, err := decodeDetail(first)
	if err != nil {
		return nil, nil, err
	}
	if err := canonicalNumbers(m); err != nil {
		return nil, nil, err
	}
	out, err := appendJSON(nil, m)
	if err != nil {
		return nil, nil, err
	}
	return out, m, nil
}

// canonicalNumbers rewrites, in place, every number in a decoded Detail
// that is not an integer literal (-?(0|[1-9][0-9]*)) into the form
// encoding/json gives its float64 value, so 3e1 and 30.0 both become 30 and
// 0.50 becomes 0.5. Integer literals are kept digit for digit, however
// large, so IDs and counts beyond 2^53 survive.
func canonicalNumbers(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if n, ok := x.(json.Number); ok {
				c, err := canonicalNumber(n)
				if err != nil {
					return err
				}
				v[k] = c
			} else if err := canonicalNumbers(x); err != nil {
				return err
			}
		}
	case []any:
		for i, x := range v {
			if n, ok := x.(json.Number); ok {
				c, err := canonicalNumber(n)
				if err != nil {
					return err
				}
				v[i] = c
			} else if err := canonicalNumbers(x); err != nil {
				return err
			}
		}
	}
	return nil
}

func canonicalNumber(n json.Number) (json.Number, error) {
	if integerLiteral(string(n)) {
		return n, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return "", fmt.Errorf("number out of range")
	}
	b, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	return json.Number(b), nil
}

func integerLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// decodeDetail decodes a JSON object with numbers as json.Number.
func decodeDetail(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the object")
	}
	return m, nil
}

// encodeMiddle returns the part of the canonical encoding that does not
// depend on the record's place in the chain:
// "actor":A,"action":B,"subject":C,"detail":D
func encodeMiddle(actor, action, subject string, detail []byte) ([]byte, error) {
	b := make([]byte, 0, 64+len(actor)+len(action)+len(subject)+len(detail))
	var err error
	b = append(b, `"actor":`...)
	if b, err = appendJSON(b, actor); err != nil {
		return nil, err
	}
	b = append(b, `,"action":`...)
	if b, err = appendJSON(b, action); err != nil {
		return nil, err
	}
	b = append(b, `,"subject":`...)
	if b, err = appendJSON(b, subject); err != nil {
		return nil, err
	}
	b = append(b, `,"detail":`...)
	return append(b, detail...), nil
}

// Fixed parts of a line around the middle.
const (
	hashMemberPrefix = `,"hash":"`
	hashMemberSuffix = `"}`
	// hashSuffixLen is the length of `,"hash":"<64 hex>"}`.
	hashSuffixLen = len(hashMemberPrefix) + HashLen + len(hashMemberSuffix)
	// maxFixedLen bounds what a line holds besides the middle: the seq
	// (at most 19 digits), the time, prev, hash and the member names.
	maxFixedLen = len(`{"seq":,"time":"",,"prev":""}`) + 19 + len(TimeLayout) + HashLen + hashSuffixLen
)

// appendCanonical appends the canonical encoding of a record (see the
// package documentation) given its middle part.
func appendCanonical(b []byte, seq int, t time.Time, middle []byte, prev string) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"time":"`...)
	b = t.UTC().AppendFormat(b, TimeLayout)
	b = append(b, `",`...)
	b = append(b, middle...)
	b = append(b, `,"prev":"`...)
	b = append(b, prev...)
	return append(b, `"}`...)
}

// appendLine appends the file line of a record (canonical encoding plus
// the hash member and a newline) and returns it with the hash.
func appendLine(b []byte, seq int, t time.Time, middle []byte, prev string) ([]byte, string) {
	start := len(b)
	b = appendCanonical(b, seq, t, middle, prev)
	sum := sha256.Sum256(b[start:])
	var h [HashLen]byte
	hex.Encode(h[:], sum[:])
	b = b[:len(b)-1] // drop the closing brace
	b = append(b, hashMemberPrefix...)
	b = append(b, h[:]...)
	b = append(b, hashMemberSuffix...)
	return append(b, '\n'), string(h[:])
}

// validTime reports whether t can be written in TimeLayout's fixed width.
func validTime(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}
