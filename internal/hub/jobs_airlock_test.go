package hub_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/executor"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/jobs"
	"github.com/mosaic-imaging/mosaic/internal/node"
	"github.com/mosaic-imaging/mosaic/internal/synth"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// TestJobLogPseudonymHeld: a job in the real sandbox prints a patient
// pseudonym of its snapshot, read from a patient-linked research table;
// the node's log filter knows the snapshot's pseudonyms and holds that
// line, while an ordinary line is released. The pseudonym has no long
// digit run, so only the pseudonym check can hold it.
func TestJobLogPseudonymHeld(t *testing.T) {
	needSandbox(t)
	prog := []byte(`#!/bin/sh
P=$(sed -n 2p /data/tables/linked.csv | cut -d, -f1)
test -n "$P" && echo "first subject $P"
echo "done"
`)
	digest := jobs.Digest(prog)
	e := newJobEnv(t, node.Config{Jobs: executor.Config{Kind: executor.Process, AllowPrograms: []string{digest},
		Limits: executor.Limits{WallClock: 20 * time.Second}}})
	e.n.SetExecutor(nil)
	e.n.SetOutputCheck(nil)
	e.program, e.digest = prog, digest
	e.approvedTool()
	ctx := context.Background()
	// Two synthetic patients' images at the node, then the permit's
	// snapshot of them.
	cohort := filepath.Join(t.TempDir(), "cohort")
	if _, err := synth.Generate(ctx, synth.Options{Dir: cohort, Patients: 2, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(filepath.Join(cohort, synth.DICOMDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		e.n.IngestWait(ctx, "lung", "test", f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pid := e.processPermit("pm-pseudo")
	pats, err := e.n.DatasetPatients(ctx, "lung")
	if err != nil || len(pats) == 0 {
		t.Fatalf("the dataset's patients: %v %v", pats, err)
	}
	var pick string
	for _, p := range pats {
		if !regexp.MustCompile(`[0-9]{6}`).MatchString(p) {
			pick = p
			break
		}
	}
	if pick == "" {
		t.Fatalf("every pseudonym has a digit run of 6: the digit check alone would hold them")
	}
	if _, err := e.n.PutTable(ctx, "lung", "linked", strings.NewReader("patient,score\n"+pick+",1\n"), &table.Dictionary{Patient: "patient"}); err != nil {
		t.Fatal(err)
	}
	j := e.submit(e.spec(pid))
	j = e.wait(j.ID, func(j jobs.Job) bool { return j.State != fed.JobQueued && j.State != fed.JobRunning })
	var logs struct{ Lines []jobs.LogLine }
	e.api(e.resTok, "GET", "/api/v1/jobs/"+j.ID+"/logs", nil, &logs)
	var got []string
	for _, l := range logs.Lines {
		got = append(got, l.Line)
		if strings.Contains(l.Line, pick) {
			t.Errorf("a log line with the patient's pseudonym reached the hub: %q", l.Line)
		}
	}
	if strings.Join(got, "|") != "done" {
		t.Errorf("released log lines %q, want only %q; job %s: %s", got, "done", j.State, j.Nodes[0].Message)
	}
	if !strings.Contains(j.Nodes[0].Message, "held-log.txt") {
		t.Errorf("the held line is not waiting at the node: %q", j.Nodes[0].Message)
	}
}
