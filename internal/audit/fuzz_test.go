package audit

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzWrittenRecordVerifies checks that whatever JSON a caller puts in
// Detail, the record the writer produces passes Verify, and that the
// canonical form is stable: encoding what Verify read gives the same bytes.
func FuzzWrittenRecordVerifies(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"b":[1.0,2e3,-0,0.1],"a":{"z":null,"y":"\u2028<&>"}}`,
		`{"n":123456789012345678901234567890}`, `{"x":"\ud800"}`, `{"k":1e308,"m":5e-324}`,
		`[1,2]`, `"s"`, `{"é":"\u0000\t"}`,
	} {
		f.Add([]byte(s), "user:alice", "q-1")
	}
	f.Fuzz(func(t *testing.T, detail []byte, actor, subject string) {
		if !json.Valid(detail) {
			return
		}
		e := Entry{Actor: actor, Action: "search", Subject: subject, Detail: map[string]any{"v": json.RawMessage(detail)}}
		if e.validate() != nil {
			return
		}
		canon, _, err := canonicalDetail(e.Detail)
		if err != nil {
			return // a number out of range, say: Append refuses it
		}
		middle, err := encodeMiddle(e.Actor, e.Action, e.Subject, canon)
		if err != nil {
			t.Fatal(err)
		}
		line, hash := appendLine(nil, 1, t0, middle, ZeroHash)
		s, err := Verify(bytes.NewReader(line))
		if err != nil {
			t.Fatalf("written record does not verify: %v\n%s", err, line)
		}
		if s.Records != 1 || s.LastHash != hash {
			t.Fatalf("got %+v, want one record with hash %s", s, hash)
		}
		d, err := decodeDetail(canon)
		if err != nil {
			t.Fatal(err)
		}
		again, _, err := canonicalDetail(d)
		if err != nil || !bytes.Equal(again, canon) {
			t.Fatalf("canonical form not stable: %s then %s (%v)", canon, again, err)
		}
	})
}
