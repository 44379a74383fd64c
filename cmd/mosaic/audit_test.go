package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/audit"
)

// writeAuditLog writes a log of n records and returns its path and head.
func writeAuditLog(t *testing.T, dir string, n int) (string, string) {
	t.Helper()
	path := filepath.Join(dir, "audit.log")
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	l, err := audit.OpenWith(path, audit.Options{Now: func() time.Time {
		now = now.Add(time.Second)
		return now
	}})
	if err != nil {
		t.Fatal(err)
	}
	var last audit.Record
	for i := 1; i <= n; i++ {
		last, err = l.Append(audit.Entry{
			Actor: "user:alice", Action: "search", Subject: fmt.Sprintf("q-%d", i),
			Detail: map[string]any{"counts": map[string]int{"lung-ct": 10 * i}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, last.Hash
}

func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	good, head := writeAuditLog(t, filepath.Join(dir, "good"), 5)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.log")
	if err := os.WriteFile(tampered, bytes.Replace(data, []byte(`"lung-ct":30`), []byte(`"lung-ct":31`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.log")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.log")
	other := strings.Repeat("ab", audit.HashLen/2)

	tests := []struct {
		name      string
		args      []string
		code      int
		stdout    []string // each must appear in stdout
		stderr    string   // must appear in stderr
		notStdout string   // must not appear in stdout
	}{
		{"ok", []string{"audit", "verify", good}, exitOK,
			[]string{good + ": ok, 5 records, first 2025-03-04T05:06:08.000000000Z, last 2025-03-04T05:06:12.000000000Z, head " + head + "\n"}, "", ""},
		{"empty", []string{"audit", "verify", empty}, exitOK,
			[]string{empty + ": ok, 0 records, head " + audit.ZeroHash}, "", ""},
		{"tampered", []string{"audit", "verify", good, tampered}, exitFailure,
			[]string{good + ": ok, 5 records", tampered + ": BROKEN at line 3 (seq 3): hash does not match the record's content"},
			"1 of 2 logs failed verification", ""},
		{"missing file", []string{"audit", "verify", missing, good}, exitFailure,
			[]string{good + ": ok"}, "audit verify " + missing + ": open", missing},
		{"head matches", []string{"audit", "verify", "--head", strings.ToUpper(head), good}, exitOK,
			[]string{good + ": ok, 5 records"}, "", ""},
		{"head mismatch", []string{"audit", "verify", "--head", other, good}, exitFailure,
			[]string{good + ": HEAD MISMATCH, 5 records, head " + head + ", expected " + other}, "failed verification", ""},
		{"no args", []string{"audit", "verify"}, exitUsage, nil, "requires at least 1 arg", ""},
		{"bad head", []string{"audit", "verify", "--head", "abc", good}, exitUsage, nil, "--head must be a hash", ""},
		{"head with two files", []string{"audit", "verify", "--head", head, good, good}, exitUsage, nil, "--head checks one log", ""},
		{"unknown flag", []string{"audit", "verify", "--nope", good}, exitUsage, nil, "unknown flag", ""},
		{"help", []string{"audit", "verify", "--help"}, exitOK, []string{"head recorded", "--head"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMosaic(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stdout %q, stderr %q)", code, tt.code, stdout, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr)
			}
			if tt.notStdout != "" && strings.Contains(stdout, tt.notStdout) {
				t.Errorf("stdout has %q:\n%s", tt.notStdout, stdout)
			}
		})
	}
}

func TestAuditVerifyJSON(t *testing.T) {
	dir := t.TempDir()
	good, head := writeAuditLog(t, dir, 3)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	cut := filepath.Join(dir, "cut.log")
	// Drop the second record.
	if err := os.WriteFile(cut, append(bytes.Clone(lines[0]), lines[2]...), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.log")
	// -o json, and --json as its synonym, print one document.
	code, stdout, stderr := runMosaic(t, "audit", "verify", "-o", "json", good, cut, missing)
	if code != exitFailure {
		t.Errorf("exit %d, want %d (stderr %q)", code, exitFailure, stderr)
	}
	if code2, stdout2, _ := runMosaic(t, "audit", "verify", "--json", good, cut, missing); code2 != code || stdout2 != stdout {
		t.Errorf("--json: exit %d and\n%s\nwhere -o json gave %d and\n%s", code2, stdout2, code, stdout)
	}
	var doc struct{ Logs []auditResult }
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil || dec.More() {
		t.Fatalf("not one JSON document (%v): %s", err, stdout)
	}
	got := doc.Logs
	if len(got) != 3 {
		t.Fatalf("got %d objects, want 3:\n%s", len(got), stdout)
	}
	want := []auditResult{
		{File: good, Status: "ok", Records: 3, First: "2025-03-04T05:06:08.000000000Z", Last: "2025-03-04T05:06:10.000000000Z", Head: head},
		{File: cut, Status: "broken", Records: 1, Line: 2, Seq: 3, Reason: "seq 3 where 2 was expected (a record was removed, inserted or moved)"},
		{File: missing, Status: "unreadable"},
	}
	for i := range want {
		g := got[i]
		if want[i].Status == "unreadable" {
			if g.Status != "unreadable" || g.File != missing || !strings.Contains(g.Error, "no such file") {
				t.Errorf("object %d: got %+v, want unreadable %s", i, g, missing)
			}
			continue
		}
		if g != want[i] {
			t.Errorf("object %d:\n got %+v\nwant %+v", i, g, want[i])
		}
	}
}

func TestAuditVerifyStdin(t *testing.T) {
	good, head := writeAuditLog(t, t.TempDir(), 2)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"audit", "verify", "--head", head, "-"}, func(string) string { return "" }, bytes.NewReader(data), &stdout, &stderr)
	if code != exitOK || !strings.HasPrefix(stdout.String(), "-: ok, 2 records") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
