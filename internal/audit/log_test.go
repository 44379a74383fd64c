package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

// stepClock returns a clock that starts at t0 and moves one millisecond
// per call.
func stepClock() func() time.Time {
	var mu sync.Mutex
	next := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := next
		next = next.Add(time.Millisecond)
		return t
	}
}

func openTest(t *testing.T, path string) *Log {
	t.Helper()
	l, err := OpenWith(path, Options{Now: stepClock()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func entry(i int) Entry {
	return Entry{
		Actor:   "user:alice",
		Action:  "search",
		Subject: fmt.Sprintf("q-%d", i),
		Detail:  map[string]any{"count": i * 10, "datasets": []string{"ds-a", "ds-b"}},
	}
}

// writeLog writes n records to a new log and returns its path and records.
func writeLog(t *testing.T, n int) (string, []Record) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openTest(t, path)
	var recs []Record
	for i := 1; i <= n; i++ {
		r, err := l.Append(entry(i))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, recs
}

func verifyFile(t *testing.T, path string) (Summary, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Verify(f)
}

// TestCanonicalVector pins the file format and the hash definition of the
// package documentation with a record written out by hand.
func TestCanonicalVector(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := OpenWith(path, Options{Now: func() time.Time {
		return time.Date(2025, 1, 2, 4, 4, 5, 6, time.FixedZone("CET", 3600))
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type dataset struct {
		Z string `json:"z"`
		A int    `json:"a"`
	}
	rec, err := l.Append(Entry{
		Actor:   "user:alice",
		Action:  "search",
		Subject: "q-1",
		Detail: map[string]any{
			"query":    "a<b & \"c\"\n",
			"counts":   map[string]int{"ds-b": 20, "ds-a": 10},
			"ratio":    0.5,
			"big":      int64(1) << 60,
			"dataset":  dataset{Z: "é", A: 1},
			"statuses": []any{"ok", nil, true},
			"raw":      json.RawMessage(`{"b":3e1, "a":0.50,"c":[1.0,-0]}`),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	canonical := `{"seq":1,"time":"2025-01-02T03:04:05.000000006Z","actor":"user:alice","action":"search","subject":"q-1",` +
		`"detail":{"big":1152921504606846976,"counts":{"ds-a":10,"ds-b":20},"dataset":{"a":1,"z":"é"},"query":"a<b & \"c\"\n","ratio":0.5,"raw":{"a":0.5,"b":30,"c":[1,-0]},"statuses":["ok",null,true]},` +
		`"prev":"0000000000000000000000000000000000000000000000000000000000000000"}`
	sum := sha256.Sum256([]byte(canonical))
	hash := hex.EncodeToString(sum[:])
	want := strings.TrimSuffix(canonical, "}") + `,"hash":"` + hash + `"}` + "\n"
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("file:\n got %s\nwant %s", got, want)
	}
	if rec.Seq != 1 || rec.Hash != hash || rec.Prev != ZeroHash || !rec.Time.Equal(t0) || rec.Time.Location() != time.UTC {
		t.Errorf("record: got seq %d hash %s prev %s time %v", rec.Seq, rec.Hash, rec.Prev, rec.Time)
	}
	if n, ok := rec.Detail["big"].(json.Number); !ok || n.String() != "1152921504606846976" {
		t.Errorf("Detail[big]: got %#v, want json.Number 1152921504606846976", rec.Detail["big"])
	}
	if seq, h := l.Head(); seq != 1 || h != hash {
		t.Errorf("Head: got %d %s, want 1 %s", seq, h, hash)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	path, recs := writeLog(t, 20)
	s, err := verifyFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{Records: 20, First: recs[0].Time, Last: recs[19].Time, LastHash: recs[19].Hash}
	if s != want {
		t.Errorf("Summary: got %+v, want %+v", s, want)
	}
	for i, r := range recs {
		if r.Seq != i+1 {
			t.Errorf("record %d: seq %d", i+1, r.Seq)
		}
		if i > 0 && r.Prev != recs[i-1].Hash {
			t.Errorf("record %d: prev %s, want %s", i+1, r.Prev, recs[i-1].Hash)
		}
	}
	if !s.First.Equal(t0) || !s.Last.Equal(t0.Add(19*time.Millisecond)) {
		t.Errorf("times: got %v .. %v", s.First, s.Last)
	}
}

func TestVerifyEmpty(t *testing.T) {
	t.Parallel()
	s, err := Verify(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if s.Records != 0 || s.LastHash != ZeroHash || !s.First.IsZero() {
		t.Errorf("got %+v, want no records and ZeroHash", s)
	}
}

// forge returns a line (without newline) for a record with a correct hash
// over whatever it is given, as an attacker who knows the format would
// write it.
func forge(t *testing.T, seq int, tm time.Time, actor, prev string) []byte {
	t.Helper()
	middle, err := encodeMiddle(actor, "search", "q-forged", []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	line, _ := appendLine(nil, seq, tm, middle, prev)
	return bytes.TrimSuffix(line, []byte("\n"))
}

func hashOf(t *testing.T, line []byte) string {
	t.Helper()
	var r struct{ Hash string }
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatal(err)
	}
	return r.Hash
}

// rehash recomputes the hash of an edited line, keeping its prev.
func rehash(line []byte) []byte {
	body := append(bytes.Clone(line[:len(line)-hashSuffixLen]), '}')
	sum := sha256.Sum256(body)
	return append(body[:len(body)-1], []byte(hashMemberPrefix+hex.EncodeToString(sum[:])+hashMemberSuffix)...)
}

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	path, recs := writeLog(t, 8)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	split := func() [][]byte {
		return bytes.SplitAfter(bytes.Clone(orig), []byte("\n"))[:8]
	}
	trim := func(b []byte) []byte { return bytes.TrimSuffix(b, []byte("\n")) }
	tests := []struct {
		name   string
		edit   func(lines [][]byte) []byte
		line   int
		seq    int
		reason string
	}{
		{"edit a field in the middle", func(l [][]byte) []byte {
			l[4] = bytes.Replace(l[4], []byte("user:alice"), []byte("user:mallo"), 1)
			return bytes.Join(l, nil)
		}, 5, 5, "altered"},
		{"edit a detail count", func(l [][]byte) []byte {
			l[4] = bytes.Replace(l[4], []byte(`"count":50`), []byte(`"count":10`), 1)
			return bytes.Join(l, nil)
		}, 5, 5, "altered"},
		{"delete a line", func(l [][]byte) []byte {
			return bytes.Join(append(l[:4:4], l[5:]...), nil)
		}, 5, 6, "seq 6 where 5 was expected"},
		{"reorder two lines", func(l [][]byte) []byte {
			l[3], l[4] = l[4], l[3]
			return bytes.Join(l, nil)
		}, 4, 5, "seq 5 where 4 was expected"},
		{"insert a forged line with a valid hash but wrong prev", func(l [][]byte) []byte {
			f := forge(t, 5, recs[4].Time, "user:mallory", recs[2].Hash)
			return bytes.Join(append(l[:4:4], append([][]byte{append(f, '\n')}, l[4:]...)...), nil)
		}, 5, 5, "prev does not match the hash of record 4"},
		{"insert a forged line with the right prev", func(l [][]byte) []byte {
			f := forge(t, 5, recs[4].Time, "user:mallory", recs[3].Hash)
			return bytes.Join(append(l[:4:4], append([][]byte{append(f, '\n')}, l[4:]...)...), nil)
		}, 6, 5, "seq 5 where 6 was expected"},
		{"replace a line by a forged one", func(l [][]byte) []byte {
			l[4] = append(forge(t, 5, recs[4].Time, "user:mallory", recs[3].Hash), '\n')
			return bytes.Join(l, nil)
		}, 6, 6, "prev does not match the hash of record 5"},
		{"truncate in the middle of a line", func(l [][]byte) []byte {
			b := bytes.Join(l, nil)
			return b[:len(bytes.Join(l[:5], nil))+40]
		}, 6, 0, "incomplete"},
		{"change the first record", func(l [][]byte) []byte {
			l[0] = bytes.Replace(l[0], []byte(`"subject":"q-1"`), []byte(`"subject":"q-9"`), 1)
			return bytes.Join(l, nil)
		}, 1, 1, "altered"},
		{"change the first record and its hash", func(l [][]byte) []byte {
			l[0] = append(rehash(trim(bytes.Replace(l[0], []byte(`"subject":"q-1"`), []byte(`"subject":"q-9"`), 1))), '\n')
			return bytes.Join(l, nil)
		}, 2, 2, "prev does not match the hash of record 1"},
		{"drop the first record", func(l [][]byte) []byte {
			return bytes.Join(l[1:], nil)
		}, 1, 2, "seq 2 where 1 was expected"},
		{"forged first record with a non-zero prev", func(l [][]byte) []byte {
			l[0] = append(forge(t, 1, t0, "user:mallory", recs[7].Hash), '\n')
			return bytes.Join(l, nil)
		}, 1, 1, "prev of the first record is not 64 zeros"},
		{"change the hash member", func(l [][]byte) []byte {
			l[2] = bytes.Replace(l[2], []byte(recs[2].Hash), []byte(recs[1].Hash), 1)
			return bytes.Join(l, nil)
		}, 3, 3, "altered"},
		{"spaces, valid hash", func(l [][]byte) []byte {
			l[2] = append(rehash(bytes.Replace(trim(l[2]), []byte(`"seq":3,`), []byte(`"seq": 3, `), 1)), '\n')
			return bytes.Join(l, nil)
		}, 3, 3, "canonical"},
		{"duplicate member, valid hash", func(l [][]byte) []byte {
			l[2] = append(rehash(bytes.Replace(trim(l[2]), []byte(`"actor":"user:alice"`), []byte(`"actor":"user:alice","actor":"user:eve"`), 1)), '\n')
			return bytes.Join(l, nil)
		}, 3, 3, "canonical"},
		{"unsorted detail, valid hash", func(l [][]byte) []byte {
			l[2] = append(rehash(bytes.Replace(trim(l[2]), []byte(`"detail":{"count":30,"datasets":["ds-a","ds-b"]}`), []byte(`"detail":{"datasets":["ds-a","ds-b"],"count":30}`), 1)), '\n')
			return bytes.Join(l, nil)
		}, 3, 3, "canonical"},
		{"number rewritten, valid hash", func(l [][]byte) []byte {
			l[2] = append(rehash(bytes.Replace(trim(l[2]), []byte(`"count":30`), []byte(`"count":3e1`), 1)), '\n')
			return bytes.Join(l, nil)
		}, 3, 3, "canonical"},
		{"time not in UTC, valid hash", func(l [][]byte) []byte {
			l[2] = append(rehash(bytes.Replace(trim(l[2]), []byte(`000006Z"`), []byte(`000006+00:00"`), 1)), '\n')
			return bytes.Join(l, nil)
		}, 3, 3, "time is not"},
		{"extra member, valid hash", func(l [][]byte) []byte {
			l[2] = append(rehash(bytes.Replace(trim(l[2]), []byte(`"subject":`), []byte(`"note":"x","subject":`), 1)), '\n')
			return bytes.Join(l, nil)
		}, 3, 3, "unknown member"},
		{"empty line", func(l [][]byte) []byte {
			return bytes.Join(append(l[:3:3], append([][]byte{[]byte("\n")}, l[3:]...)...), nil)
		}, 4, 0, "empty line"},
		{"not a record", func(l [][]byte) []byte {
			return bytes.Join(append(l[:3:3], append([][]byte{[]byte("hello\n")}, l[3:]...)...), nil)
		}, 4, 0, "does not end with its hash member"},
		{"malformed JSON", func(l [][]byte) []byte {
			l[2] = bytes.Replace(l[2], []byte(`{"seq":3,`), []byte(`{"seq":3,,`), 1)
			return bytes.Join(l, nil)
		}, 3, 0, "malformed JSON"},
		{"line too long", func(l [][]byte) []byte {
			return bytes.Join(append(l[:3:3], append(bytes.Repeat([]byte("x"), MaxRecordBytes+1), '\n')), nil)
		}, 4, 0, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Verify(bytes.NewReader(tt.edit(split())))
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v (%+v), want a *VerifyError", err, s)
			}
			if ve.Line != tt.line || ve.Seq != tt.seq || !strings.Contains(ve.Reason, tt.reason) {
				t.Errorf("got line %d seq %d %q, want line %d seq %d and %q", ve.Line, ve.Seq, ve.Reason, tt.line, tt.seq, tt.reason)
			}
			if !errors.Is(err, ErrBroken) {
				t.Errorf("errors.Is(%v, ErrBroken) is false", err)
			}
			if s.Records != tt.line-1 {
				t.Errorf("Summary.Records: got %d, want %d (the records before the bad line)", s.Records, tt.line-1)
			}
			if strings.Contains(err.Error(), "alice") || strings.Contains(err.Error(), "q-") {
				t.Errorf("error quotes record content: %v", err)
			}
		})
	}
}

// TestVerifyCannotSeeConsistentRewrite shows what only a head recorded
// elsewhere catches: a log cut at a line boundary, or rewritten from the
// first changed record on with fresh hashes, still verifies.
func TestVerifyCannotSeeConsistentRewrite(t *testing.T) {
	t.Parallel()
	path, recs := writeLog(t, 6)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(orig, []byte("\n"))[:6]

	cut := bytes.Join(lines[:4], nil)
	s, err := Verify(bytes.NewReader(cut))
	if err != nil || s.Records != 4 {
		t.Fatalf("cut log: got %+v %v, want 4 valid records", s, err)
	}
	if s.LastHash == recs[5].Hash {
		t.Error("cut log has the recorded head")
	}

	var rewritten []byte
	prev := recs[2].Hash
	rewritten = append(rewritten, bytes.Join(lines[:3], nil)...)
	for seq := 4; seq <= 6; seq++ {
		f := forge(t, seq, recs[seq-1].Time, "user:mallory", prev)
		prev = hashOf(t, f)
		rewritten = append(append(rewritten, f...), '\n')
	}
	s, err = Verify(bytes.NewReader(rewritten))
	if err != nil || s.Records != 6 {
		t.Fatalf("rewritten log: got %+v %v, want 6 valid records", s, err)
	}
	if s.LastHash == recs[5].Hash {
		t.Error("rewritten log has the recorded head")
	}
}

func TestOpenRepairsTornLastLine(t *testing.T) {
	t.Parallel()
	path, recs := writeLog(t, 5)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	full := string(bytes.SplitAfter(orig, []byte("\n"))[4])
	for _, tail := range []string{
		"{",
		full[:len(full)/2],
		full[:len(full)-1],                 // all but the newline
		"\x00\x00\x00\x00\x00\x00\x00\x00", // a file system that grew the file but lost the data
	} {
		if err := os.WriteFile(path, append(bytes.Clone(orig), tail...), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := verifyFile(t, path); err == nil {
			t.Fatal("Verify accepted a torn last line")
		}
		l, err := OpenWith(path, Options{Now: stepClock()})
		if err != nil {
			t.Fatalf("tail %q: %v", tail, err)
		}
		if l.Repaired() != int64(len(tail)) {
			t.Errorf("Repaired: got %d, want %d", l.Repaired(), len(tail))
		}
		if seq, h := l.Head(); seq != 5 || h != recs[4].Hash {
			t.Errorf("Head: got %d %s, want 5 %s", seq, h, recs[4].Hash)
		}
		r, err := l.Append(entry(6))
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != 6 || r.Prev != recs[4].Hash {
			t.Errorf("next record: got seq %d prev %s, want 6 %s", r.Seq, r.Prev, recs[4].Hash)
		}
		l.Close()
		s, err := verifyFile(t, path)
		if err != nil || s.Records != 6 || s.LastHash != r.Hash {
			t.Errorf("after repair: got %+v %v, want 6 records ending %s", s, err, r.Hash)
		}
	}
}

func TestOpenRefusesBrokenLog(t *testing.T) {
	t.Parallel()
	path, _ := writeLog(t, 5)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		line int
	}{
		{"edited record", bytes.Replace(orig, []byte(`"subject":"q-3"`), []byte(`"subject":"q-7"`), 1), 3},
		{"edited record and torn tail", append(bytes.Replace(orig, []byte(`"subject":"q-3"`), []byte(`"subject":"q-7"`), 1), `{"seq":6`...), 3},
		{"junk longer than a record without newline", append(bytes.Clone(orig), bytes.Repeat([]byte("x"), MaxRecordBytes+10)...), 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := Open(path)
			if err == nil {
				l.Close()
				t.Fatal("Open accepted a broken log")
			}
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Line != c.line || !errors.Is(err, ErrBroken) {
				t.Errorf("got %v, want a *VerifyError at line %d", err, c.line)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("line %d", c.line)) || !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file and line: %v", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, c.data) {
				t.Error("Open changed a broken log")
			}
		})
	}
}

func TestReopenContinuesChain(t *testing.T) {
	t.Parallel()
	path, recs := writeLog(t, 3)
	l := openTest(t, path)
	if seq, h := l.Head(); seq != 3 || h != recs[2].Hash {
		t.Fatalf("Head after reopen: got %d %s, want 3 %s", seq, h, recs[2].Hash)
	}
	if l.Repaired() != 0 {
		t.Errorf("Repaired: got %d, want 0", l.Repaired())
	}
	prev := recs[2].Hash
	for i := 4; i <= 5; i++ {
		r, err := l.Append(entry(i))
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != i || r.Prev != prev {
			t.Errorf("got seq %d prev %s, want %d %s", r.Seq, r.Prev, i, prev)
		}
		prev = r.Hash
	}
	l.Close()
	s, err := verifyFile(t, path)
	if err != nil || s.Records != 5 || s.LastHash != prev {
		t.Errorf("got %+v %v, want 5 records ending %s", s, err, prev)
	}
}

func TestConcurrentAppends(t *testing.T) {
	t.Parallel()
	const goroutines, each = 16, 40
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path) // the real clock
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	seqs := make(chan int, goroutines*each)
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r, err := l.Append(Entry{Actor: fmt.Sprintf("node:n%d", g), Action: "search", Subject: fmt.Sprint(i)})
				if err != nil {
					errs <- err
					return
				}
				if s, _ := l.Head(); s < r.Seq {
					errs <- fmt.Errorf("Head %d behind a returned Append %d", s, r.Seq)
					return
				}
				seqs <- r.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := make(map[int]bool)
	for s := range seqs {
		if seen[s] {
			t.Errorf("seq %d returned twice", s)
		}
		seen[s] = true
	}
	s, err := verifyFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Records != goroutines*each || len(seen) != goroutines*each {
		t.Errorf("got %d records, %d distinct seqs, want %d", s.Records, len(seen), goroutines*each)
	}
	if seq, h := l.Head(); seq != s.Records || h != s.LastHash {
		t.Errorf("Head: got %d %s, want %d %s", seq, h, s.Records, s.LastHash)
	}
}

func TestAppendRejects(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openTest(t, path)
	ok := Entry{Actor: "user:alice", Action: "search"}
	for _, a := range []string{"search", "node.enrol", "node.remove", "job_run", "download-v2", "a1"} {
		e := ok
		e.Action = a
		if _, err := l.Append(e); err != nil {
			t.Errorf("action %q: %v", a, err)
		}
	}
	before, _ := os.ReadFile(path)
	big := strings.Repeat("x", MaxRecordBytes)
	for _, c := range []struct {
		name string
		e    Entry
	}{
		{"empty action", Entry{Actor: "user:alice"}},
		{"capital", Entry{Actor: "user:alice", Action: "Search"}},
		{"space", Entry{Actor: "user:alice", Action: "search all"}},
		{"punctuation", Entry{Actor: "user:alice", Action: "search!"}},
		{"leading digit", Entry{Actor: "user:alice", Action: "1search"}},
		{"leading separator", Entry{Actor: "user:alice", Action: ".search"}},
		{"trailing separator", Entry{Actor: "user:alice", Action: "search."}},
		{"double separator", Entry{Actor: "user:alice", Action: "node..remove"}},
		{"non-ASCII", Entry{Actor: "user:alice", Action: "recherché"}},
		{"too long", Entry{Actor: "user:alice", Action: strings.Repeat("a", MaxActionLen+1)}},
		{"empty actor", Entry{Action: "search"}},
		{"actor with newline", Entry{Actor: "user:alice\n", Action: "search"}},
		{"actor too long", Entry{Actor: strings.Repeat("a", 257), Action: "search"}},
		{"subject not UTF-8", Entry{Actor: "user:alice", Action: "search", Subject: "\xff"}},
		{"detail not JSON", Entry{Actor: "user:alice", Action: "search", Detail: map[string]any{"c": make(chan int)}}},
		{"detail too large", Entry{Actor: "user:alice", Action: "search", Detail: map[string]any{"q": big}}},
	} {
		if _, err := l.Append(c.e); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: got %v, want ErrInvalidEntry", c.name, err)
		}
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("a refused entry changed the file")
	}
	// The largest detail that fits is accepted and verifies.
	n := MaxRecordBytes - maxFixedLen - len(`"actor":"user:alice","action":"search","subject":"","detail":{"q":""}`)
	if _, err := l.Append(Entry{Actor: "user:alice", Action: "search", Detail: map[string]any{"q": big[:n]}}); err != nil {
		t.Fatalf("largest entry: %v", err)
	}
	if s, err := verifyFile(t, path); err != nil || s.Records != 7 {
		t.Errorf("got %+v %v, want 7 records", s, err)
	}
}

func TestCloseAndLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "dir", "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if locking {
		if l2, err := Open(path); !errors.Is(err, ErrLocked) {
			if l2 != nil {
				l2.Close()
			}
			t.Errorf("second Open: got %v, want ErrLocked", err)
		}
	}
	if _, err := l.Append(entry(1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.Append(entry(2)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: got %v, want ErrClosed", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode: got %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm()&^0o700 != 0 {
		t.Errorf("directory mode: got %v, want at most 0700", di.Mode().Perm())
	}
	// Closed, the file can be opened again.
	l = openTest(t, path)
	if seq, _ := l.Head(); seq != 1 {
		t.Errorf("Head: got %d, want 1", seq)
	}
}
