package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/ingest"
)

// record is one line of the report of mosaic deid.
type record struct {
	Input  string       `json:"input"`
	Output string       `json:"output"`
	Status string       `json:"status"`
	Code   string       `json:"code,omitempty"`
	Reason string       `json:"reason"`
	Counts *deid.Counts `json:"counts,omitempty"`
}

func deidRecord(r ingest.Result) record {
	rec := record{Input: r.Input, Status: r.Status, Code: r.Code, Reason: r.Reason}
	if p, ok := r.Detail.(deid.Placed); ok {
		rec.Output, rec.Counts = p.Output, p.Counts
	}
	return rec
}

// deidSummary is the summary of mosaic deid (-o json prints it).
type deidSummary struct {
	Policy    string         `json:"policy"`
	Output    string         `json:"output"`
	Objects   int            `json:"objects"`
	OK        int            `json:"ok"`
	Skipped   int            `json:"skipped"`
	Rejected  int            `json:"rejected"`
	Reasons   map[string]int `json:"rejected_by_code"`
	Failed    int            `json:"failed"`
	Failures  map[string]int `json:"failed_by_code"`
	Patients  int            `json:"patients"`
	Bytes     int64          `json:"bytes_written"`
	Seconds   float64        `json:"seconds"`
	Cancelled bool           `json:"cancelled"`
	Report    string         `json:"report,omitempty"`
}

// deidRun runs the ingest into the tree, writes the report and prints the
// summary.
func deidRun(e *env, fl deidFlags, tree *deid.Tree, policy string, args []string, opts ingest.Options) error {
	var rep *bufio.Writer
	var repFile *os.File
	if fl.report != "" {
		f, err := os.OpenFile(fl.report, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("deid: report: %w", err)
		}
		repFile = f
		rep = bufio.NewWriterSize(f, 64<<10)
	}
	pp := newProgressPrinter(e.stderr, fl.quiet)
	var werr error
	opts.OnResult = func(r ingest.Result) {
		if r.Status == ingest.StatusFailed && r.Code != ingest.CodeCancelled {
			pp.printf("deid: %s: failed: %s", r.Input, r.Reason)
		}
		if rep != nil && werr == nil {
			b, _ := json.Marshal(deidRecord(r))
			if _, err := rep.Write(append(b, '\n')); err != nil {
				werr = err
			}
		}
	}
	opts.OnProgress = func(p ingest.Progress) {
		total := "listing inputs"
		if p.Listed {
			total = fmt.Sprintf("of %d", p.Found)
		}
		pp.draw(fmt.Sprintf("deid: %d %s, %d rejected, %d failed, %s written, %.0f MB/s",
			p.Done, total, p.Rejected, p.Failed, humanBytes(p.Bytes), float64(p.Bytes)/1e6/max(p.Elapsed.Seconds(), 0.001)))
	}
	sum, runErr := ingest.Run(e.ctx, args, ingest.Tree{T: tree}, opts)
	pp.clear()
	if rep != nil {
		if err := rep.Flush(); err != nil && werr == nil {
			werr = err
		}
		if err := repFile.Close(); err != nil && werr == nil {
			werr = err
		}
	}
	if werr != nil {
		return fmt.Errorf("deid: report: %w", werr)
	}
	if runErr == nil && fl.sync {
		if err := tree.Sync(); err != nil {
			return fmt.Errorf("deid: sync %s: %w", tree.Dir(), err)
		}
	}
	s := deidSummary{
		Policy: policy, Output: tree.Dir(), Objects: sum.Objects,
		Skipped:  sum.Count(deid.TreeOK, deid.CodeSkipped),
		Rejected: sum.Count(deid.TreeRejected), Reasons: orEmpty(sum.Codes[deid.TreeRejected]),
		Failed: sum.Count(ingest.StatusFailed), Failures: orEmpty(sum.Codes[ingest.StatusFailed]),
		Patients: sum.Patients, Bytes: sum.Bytes, Seconds: sum.Seconds, Cancelled: sum.Cancelled, Report: fl.report,
	}
	s.OK = sum.Count(deid.TreeOK) - s.Skipped
	if fl.format == outputJSON {
		if err := writeJSON(e.stdout, s); err != nil {
			return err
		}
	} else {
		printDeidSummary(e, s)
	}
	if runErr != nil {
		return fmt.Errorf("deid: cancelled after %s: %w", plural(s.Objects-s.Failures[ingest.CodeCancelled], "object"), runErr)
	}
	if s.Failed > 0 {
		return exitError{code: exitFailure, msg: fmt.Sprintf("deid: %d of %s failed%s", s.Failed, plural(s.Objects, "object"), reportHint(fl.report))}
	}
	return nil
}

func orEmpty(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}

func printDeidSummary(e *env, s deidSummary) {
	w := e.stdout
	took := time.Duration(s.Seconds * float64(time.Second)).Round(10 * time.Millisecond)
	fmt.Fprintf(w, "deid: processed %s of %s with policy %s into %s in %s (%s written)\n",
		plural(s.Objects, "object"), plural(s.Patients, "patient"), s.Policy, s.Output, took, humanBytes(s.Bytes))
	fmt.Fprintf(w, "  ok        %7d\n", s.OK)
	fmt.Fprintf(w, "  skipped   %7d  (identical file already present)\n", s.Skipped)
	fmt.Fprintf(w, "  rejected  %7d\n", s.Rejected)
	codes := make([]string, 0, len(s.Reasons))
	for c := range s.Reasons {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "    %-24s %7d\n", c, s.Reasons[c])
	}
	fmt.Fprintf(w, "  failed    %7d\n", s.Failed)
	if s.Cancelled {
		fmt.Fprintf(w, "  cancelled before the end: %s not read\n", plural(s.Failures[ingest.CodeCancelled], "object"))
	}
	if s.Report != "" {
		fmt.Fprintf(w, "report: %s\n", s.Report)
	}
}

func reportHint(report string) string {
	if report == "" {
		return " (listed above)"
	}
	return " (see " + report + ")"
}
