package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrBroken is wrapped by every *VerifyError, so callers of Open can tell a
// damaged log from a file they could not read with errors.Is.
var ErrBroken = errors.New("audit: log is broken")

// VerifyError says where a log stops being a valid chain. Its reasons name
// line and sequence numbers and hashes, never the content of a record.
type VerifyError struct {
	Line   int    // 1-based line number of the first bad line
	Seq    int    // the seq that line carries; 0 when it could not be read
	Reason string // what is wrong, in plain words
}

func (e *VerifyError) Error() string {
	if e.Seq == 0 {
		return fmt.Sprintf("audit log broken at line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("audit log broken at line %d (seq %d): %s", e.Line, e.Seq, e.Reason)
}

func (e *VerifyError) Unwrap() error { return ErrBroken }

// Summary describes a valid log, or the valid part before a bad line.
type Summary struct {
	Records     int       // number of records
	First, Last time.Time // times of the first and last record; zero when empty
	LastHash    string    // hash of the last record; ZeroHash when empty
}

// Verify reads a whole log and checks that every line is a record in
// canonical form, that seq runs 1, 2, 3... with no gap, that each prev is
// the hash of the record before, and that each hash recomputes. It returns
// the Summary of a valid log, or a *VerifyError for the first bad line
// (with the Summary of the records before it), or a read error from r.
//
// Verify is strict: a last line without its newline is an error here, even
// though Open repairs it. Times are not required to increase, since clocks
// are stepped back; seq is the order.
func Verify(r io.Reader) (Summary, error) {
	s, _, err := verify(r)
	return s, err
}

// verifyState is what Open needs beyond a Summary.
type verifyState struct {
	end  int64 // bytes in complete, valid lines
	torn bool  // the error, if any, is only an incomplete last line
}

// wire is a record as parsed from a line, before its checks.
type wire struct {
	Seq     int             `json:"seq"`
	Time    string          `json:"time"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Subject string          `json:"subject"`
	Detail  json.RawMessage `json:"detail"`
	Prev    string          `json:"prev"`
}

func verify(r io.Reader) (Summary, verifyState, error) {
	s := Summary{LastHash: ZeroHash}
	var st verifyState
	br := bufio.NewReaderSize(r, MaxRecordBytes+1)
	var body []byte
	for line := 1; ; line++ {
		raw, err := br.ReadSlice('\n')
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			return s, st, &VerifyError{Line: line, Reason: fmt.Sprintf("line is longer than %d bytes", MaxRecordBytes)}
		case err == io.EOF && len(raw) == 0:
			return s, st, nil
		case err == io.EOF:
			st.torn = true
			return s, st, &VerifyError{Line: line, Reason: "last line is incomplete (no newline at the end): a write was cut short, or the file was cut"}
		default:
			return s, st, fmt.Errorf("audit: verify: read line %d: %w", line, err)
		}
		text := raw[:len(raw)-1]
		rec, reason := checkLine(text, s.Records+1, s.LastHash, &body)
		if reason != "" {
			return s, st, &VerifyError{Line: line, Seq: rec.Seq, Reason: reason}
		}
		if s.Records == 0 {
			s.First = rec.Time
		}
		s.Records++
		s.Last = rec.Time
		s.LastHash = rec.Hash
		st.end += int64(len(raw))
	}
}

// checkLine checks one line (without its newline) that should hold record
// seq chained to prev. It returns the record and "" when the line is good,
// or a reason (and the seq read, if any) when it is not. body is scratch
// space reused across lines.
func checkLine(text []byte, seq int, prev string, body *[]byte) (Record, string) {
	if len(text) == 0 {
		return Record{}, "empty line"
	}
	if len(text) > MaxRecordBytes {
		return Record{}, fmt.Sprintf("line is longer than %d bytes", MaxRecordBytes)
	}
	// The hash member is last: ,"hash":"<64 lowercase hex>"}
	n := len(text) - hashSuffixLen
	if n < 1 || !bytes.HasPrefix(text[n:], []byte(hashMemberPrefix)) || !bytes.HasSuffix(text, []byte(hashMemberSuffix)) {
		return Record{Seq: peekSeq(text)}, "record does not end with its hash member"
	}
	stated := text[n+len(hashMemberPrefix) : len(text)-len(hashMemberSuffix)]
	if !lowerHex(stated) {
		return Record{Seq: peekSeq(text)}, "hash is not 64 lowercase hex digits"
	}
	b := append((*body)[:0], text[:n]...)
	b = append(b, '}')
	*body = b

	var w wire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Record{Seq: peekSeq(text)}, "not a valid record: " + jsonReason(err)
	}
	rec := Record{Seq: w.Seq, Actor: w.Actor, Action: w.Action, Subject: w.Subject, Prev: w.Prev, Hash: string(stated)}
	if w.Seq != seq {
		return rec, fmt.Sprintf("seq %d where %d was expected (a record was removed, inserted or moved)", w.Seq, seq)
	}
	if w.Prev != prev {
		if seq == 1 {
			return rec, "prev of the first record is not 64 zeros (records before it were removed, or it was forged)"
		}
		return rec, fmt.Sprintf("prev does not match the hash of record %d (a record was removed, inserted or rewritten)", seq-1)
	}
	sum := sha256.Sum256(b)
	var h [HashLen]byte
	hex.Encode(h[:], sum[:])
	if !bytes.Equal(h[:], stated) {
		return rec, "hash does not match the record's content (the record was altered)"
	}
	t, err := time.Parse(TimeLayout, w.Time)
	if err != nil {
		return rec, "time is not RFC 3339 in UTC with nine fractional digits"
	}
	rec.Time = t
	if len(w.Detail) == 0 {
		return rec, "record has no detail member"
	}
	d, err := decodeDetail(w.Detail)
	if err != nil {
		return rec, "detail is not a JSON object"
	}
	// The line must be exactly what the writer would produce for what it
	// parses to, so every reader agrees on what the record says. Decoded
	// with json.Number, d only needs its numbers put in canonical form to
	// encode canonically.
	canon := []byte("{}")
	if len(d) > 0 {
		if err := canonicalNumbers(d); err != nil {
			return rec, "detail holds a number out of range"
		}
		if canon, err = appendJSON(nil, d); err != nil {
			return rec, "detail cannot be encoded"
		}
		rec.Detail = d
	}
	middle, err := encodeMiddle(w.Actor, w.Action, w.Subject, canon)
	if err != nil {
		return rec, "record cannot be encoded"
	}
	if !bytes.Equal(appendCanonical(nil, w.Seq, t, middle, w.Prev), b) {
		return rec, "record is not in canonical form (member order, spacing, escapes or number form differ from the writer's)"
	}
	return rec, ""
}

// peekSeq reads the seq of a line too damaged to parse, for the error
// message, or returns 0.
func peekSeq(text []byte) int {
	var p struct {
		Seq int `json:"seq"`
	}
	if json.Unmarshal(text, &p) != nil {
		return 0
	}
	return p.Seq
}

func lowerHex(b []byte) bool {
	if len(b) != HashLen {
		return false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// jsonReason describes a decoding error without quoting the line's content.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("member %q has the wrong type", te.Field)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON (cut short)"
	default:
		return "unknown member or malformed JSON"
	}
}
