package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/audit"
)

func newAuditCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the audit logs the hub and nodes keep",
		Long: `The hub and every node keep an audit log: one record per action that crosses
a trust boundary (a federated search, a node's enrolment or removal, and
later access decisions, jobs and downloads), written at both ends. The log
is a file of JSON lines, each record naming who acted, what they did and to
what, with a sequence number, a UTC time, the hash of the record before it
(prev) and its own SHA-256 hash. Records hold IDs, hashes and counts, never
patient data.`,
	}
	cmd.AddCommand(newAuditVerifyCmd(e))
	return cmd
}

// auditResult is what verify reports for one file (one JSON object with
// --json).
type auditResult struct {
	File   string `json:"file"`
	Status string `json:"status"` // ok, broken, head_mismatch or unreadable
	// Records counts the valid records: all of them, or those before the
	// bad line of a broken log.
	Records      int    `json:"records"`
	First        string `json:"first,omitempty"`
	Last         string `json:"last,omitempty"`
	Head         string `json:"head,omitempty"`
	ExpectedHead string `json:"expected_head,omitempty"`
	Line         int    `json:"line,omitempty"`
	Seq          int    `json:"seq,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Error        string `json:"error,omitempty"`
}

func newAuditVerifyCmd(e *env) *cobra.Command {
	var (
		format string
		head   string
	)
	cmd := &cobra.Command{
		Use:   "verify [-o json] [--head HASH] FILE...",
		Short: "Check that audit logs are unbroken hash chains",
		Long: `Check each audit log FILE ("-" reads standard input) from its first record to
its last: every line is a well-formed record in canonical form, the sequence
numbers run 1, 2, 3... without a gap, every record's prev is the hash of the
record before it, and every hash recomputes from the record's content.

This proves that no record was changed, removed, inserted or moved, unless
everything after it was rewritten too. It cannot see a log cut off after a
complete record, or one rewritten consistently from the first changed record
to the end with fresh hashes. Those are caught only by comparing the head
(the hash of the last record) with a head recorded somewhere the writer of
the log cannot change: published by the hub, sent to another party, written
in an operator's notebook. Compare the printed head with the recorded one,
or give it with --head to have it checked (for a log that has grown since
the head was recorded, the heads differ although nothing is wrong).

For each FILE one line is printed:
  FILE: ok, N records, first TIME, last TIME, head HASH
  FILE: BROKEN at line L (seq S): REASON
  FILE: HEAD MISMATCH, N records, head HASH, expected HASH
L is the first bad line and S the sequence number it carries (left out when
the line cannot be read). A last line without its newline is reported as
broken here; the hub and node cut such a line, left by a crash in the middle
of a write, when they next open the log.

With -o json (or --json), one JSON document {"logs": [...]} with an object
per FILE: file, status (ok, broken, head_mismatch or unreadable), records
(for a broken log, the valid records before the bad line), first, last,
head, expected_head, line, seq, reason and error, each when it applies.

Exit status: 0 when every log verified, 1 when any is broken, does not
match --head or cannot be read, 2 when the command line is wrong.`,
		Example: `  mosaic audit verify /srv/hub/audit.log
  mosaic audit verify --head 3f5c...e1 /srv/node/audit.log
  mosaic audit verify -o json /srv/nodes/*/audit.log`,
		Args: argsError(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validOutput(format); err != nil {
				return err
			}
			if head != "" {
				head = strings.ToLower(head)
				if !isHash(head) {
					return usagef("audit verify: --head must be a hash of %d hex digits", audit.HashLen)
				}
				if len(args) > 1 {
					return usagef("audit verify: --head checks one log; %d were named", len(args))
				}
			}
			out := bufio.NewWriter(e.stdout)
			failed := 0
			results := []auditResult{}
			for _, path := range args {
				if err := e.ctx.Err(); err != nil {
					return err
				}
				res := verifyAuditFile(e, path, head)
				if res.Status != "ok" {
					failed++
				}
				if res.Status == "unreadable" {
					out.Flush() // keep stdout and stderr in order
					fmt.Fprintf(e.stderr, "mosaic: audit verify %s: %s\n", path, res.Error)
				}
				if format == outputJSON {
					results = append(results, res)
				} else if res.Status != "unreadable" {
					out.WriteString(auditLine(res) + "\n")
				}
			}
			if format == outputJSON {
				if err := writeJSON(out, map[string]any{"logs": results}); err != nil {
					return fmt.Errorf("audit verify: %w", err)
				}
			}
			if err := out.Flush(); err != nil {
				return fmt.Errorf("audit verify: write: %w", err)
			}
			if failed > 0 {
				return exitError{code: exitFailure, msg: fmt.Sprintf("audit verify: %d of %d logs failed verification", failed, len(args))}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	addOutputFlag(cmd, &format)
	addJSONAlias(cmd, &format)
	fl.StringVar(&head, "head", "", "also check that the last record's hash is `HASH` (a head recorded elsewhere); one FILE only")
	return cmd
}

func verifyAuditFile(e *env, path, head string) auditResult {
	res := auditResult{File: path}
	var r io.Reader
	if path == "-" {
		r = e.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			res.Status, res.Error = "unreadable", err.Error()
			return res
		}
		defer f.Close()
		r = f
	}
	s, err := audit.Verify(r)
	res.Records = s.Records
	var ve *audit.VerifyError
	switch {
	case errors.As(err, &ve):
		res.Status, res.Line, res.Seq, res.Reason = "broken", ve.Line, ve.Seq, ve.Reason
		return res
	case err != nil:
		res.Status, res.Error = "unreadable", err.Error()
		return res
	}
	res.Status, res.Head = "ok", s.LastHash
	if s.Records > 0 {
		res.First, res.Last = s.First.Format(audit.TimeLayout), s.Last.Format(audit.TimeLayout)
	}
	if head != "" {
		res.ExpectedHead = head
		if head != s.LastHash {
			res.Status = "head_mismatch"
		}
	}
	return res
}

func auditLine(r auditResult) string {
	switch r.Status {
	case "broken":
		if r.Seq == 0 {
			return fmt.Sprintf("%s: BROKEN at line %d: %s", r.File, r.Line, r.Reason)
		}
		return fmt.Sprintf("%s: BROKEN at line %d (seq %d): %s", r.File, r.Line, r.Seq, r.Reason)
	case "head_mismatch":
		return fmt.Sprintf("%s: HEAD MISMATCH, %s, head %s, expected %s", r.File, records(r.Records), r.Head, r.ExpectedHead)
	}
	if r.Records == 0 {
		return fmt.Sprintf("%s: ok, 0 records, head %s", r.File, r.Head)
	}
	return fmt.Sprintf("%s: ok, %s, first %s, last %s, head %s", r.File, records(r.Records), r.First, r.Last, r.Head)
}

func records(n int) string {
	if n == 1 {
		return "1 record"
	}
	return fmt.Sprintf("%d records", n)
}

func isHash(s string) bool {
	if len(s) != audit.HashLen {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
