package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/executor"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/jobs"
)

// reviewExec runs fn as a job's program.
type reviewExec struct {
	fn func(spec executor.Spec, log func(string))
}

func (x *reviewExec) Kind() executor.Kind { return executor.Process }
func (x *reviewExec) Run(ctx context.Context, spec executor.Spec, log func(string)) (executor.Result, error) {
	x.fn(spec, log)
	return executor.Result{Duration: time.Millisecond}, nil
}

// TestJobAirlockKnowsPseudonyms: a job that prints a patient's pseudonym
// in its log, and writes a structured table labelled with the snapshot's
// pseudonyms, must not get them past the airlock: the log line is held,
// the table refused. The node has the matcher (AirlockInputs) but must
// hand it to the log filter and to the checks.
func TestJobAirlockKnowsPseudonyms(t *testing.T) {
	ctx := context.Background()
	n, srv, tok, ingest := snapshotNode(t, "sqlite", 1)
	ingest(0, 3)
	if _, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Dataset: "lung", Query: json.RawMessage(allQuery)}); err != nil {
		t.Fatal(err)
	}
	members := datasetStudies(t, srv, tok)
	if len(members) == 0 {
		t.Fatal("no members")
	}
	pseud := members[0].Patient
	n.SetExecutor(&reviewExec{fn: func(spec executor.Spec, log func(string)) {
		log("patient " + pseud)
		tbl := map[string]any{"mosaic_output": "table", "version": 1, "kind": "frequency", "dimensions": []string{"patient"},
			"cells": []map[string]any{{"key": []string{pseud}, "count": 12}, {"key": []string{"other"}, "count": 15}}}
		b, _ := json.Marshal(tbl)
		os.WriteFile(filepath.Join(spec.Output, "table.json"), b, 0o644)
	}})
	j := &runningJob{id: "job-pseud", researcher: "rosa", dataset: "lung", snapshot: "s1",
		spec: jobs.Spec{Kind: jobs.KindProcess, Resources: jobs.Resources{Flavor: "no-gpu"}},
		dir:  filepath.Join(n.cfg.Data, "jobs", "job-pseud"), done: make(chan struct{})}
	state, msg, _ := n.execute(ctx, j)
	if state != fed.JobSucceeded {
		t.Fatalf("state %s: %s", state, msg)
	}
	if _, err := os.Stat(filepath.Join(j.dir, "out", heldLogName)); err != nil {
		t.Errorf("the log line naming a patient's pseudonym was released, not held: %v", err)
	}
	n.airlockOutputs(ctx, j)
	st, err := n.Airlock()
	if err != nil {
		t.Fatal(err)
	}
	hs, err := st.ListJob(j.id)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Name == "table.json" && h.State != airlock.StateRefused {
			t.Errorf("a table labelled with a patient's pseudonym is %s, not refused: %+v", h.State, h.Verdict)
		}
	}
}

// TestJobOutputNamesPassTheFilter: the names of refused and held outputs
// go to the hub in the job's message, which no person checks: a name
// holding a pseudonym or a long number must not be among them.
func TestJobOutputNamesPassTheFilter(t *testing.T) {
	ctx := context.Background()
	n, srv, tok, ingest := snapshotNode(t, "sqlite", 1)
	ingest(0, 2)
	if _, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Dataset: "lung", Query: json.RawMessage(allQuery)}); err != nil {
		t.Fatal(err)
	}
	pseud := datasetStudies(t, srv, tok)[0].Patient
	bad := []string{pseud + ".bin", "mrn-1234567890.bin", "held-" + pseud + ".txt"}
	n.SetExecutor(&reviewExec{fn: func(spec executor.Spec, log func(string)) {
		os.WriteFile(filepath.Join(spec.Output, bad[0]), []byte{0, 1, 2, 3, 0xff}, 0o644)
		os.WriteFile(filepath.Join(spec.Output, bad[1]), []byte{0, 1, 2, 3, 0xff}, 0o644)
		os.WriteFile(filepath.Join(spec.Output, bad[2]), []byte("some text\n"), 0o644)
	}})
	j := &runningJob{id: "job-names", researcher: "rosa", dataset: "lung", snapshot: "s1",
		spec: jobs.Spec{Kind: jobs.KindProcess, Resources: jobs.Resources{Flavor: "no-gpu"}},
		dir:  filepath.Join(n.cfg.Data, "jobs", "job-names"), done: make(chan struct{})}
	if state, msg, _ := n.execute(ctx, j); state != fed.JobSucceeded {
		t.Fatalf("state %s: %s", state, msg)
	}
	_, summary := n.airlockOutputs(ctx, j)
	for _, name := range []string{pseud, "1234567890"} {
		if strings.Contains(summary, name) {
			t.Errorf("the job's message to the hub carries %q: %s", name, summary)
		}
	}
}

// TestJobLargeOutputNotRead: an output over the airlock's size limit is
// refused without being read into memory: the node read up to 1 GiB of
// each output file before the checks refused anything over 10 MiB.
func TestJobLargeOutputNotRead(t *testing.T) {
	ctx := context.Background()
	n, _, _, ingest := snapshotNode(t, "sqlite", 1)
	ingest(0, 1)
	if _, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Dataset: "lung", Query: json.RawMessage(allQuery)}); err != nil {
		t.Fatal(err)
	}
	n.SetExecutor(&reviewExec{fn: func(spec executor.Spec, log func(string)) {
		f, _ := os.Create(filepath.Join(spec.Output, "big.txt"))
		f.Truncate(200 << 20) // sparse: 200 MiB read as zeros
		f.Close()
	}})
	j := &runningJob{id: "job-big", researcher: "rosa", dataset: "lung", snapshot: "s1",
		spec: jobs.Spec{Kind: jobs.KindProcess, Resources: jobs.Resources{Flavor: "no-gpu"}},
		dir:  filepath.Join(n.cfg.Data, "jobs", "job-big"), done: make(chan struct{})}
	if state, msg, _ := n.execute(ctx, j); state != fed.JobSucceeded {
		t.Fatalf("state %s: %s", state, msg)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, summary := n.airlockOutputs(ctx, j)
	runtime.ReadMemStats(&after)
	if !strings.Contains(summary, "refused") {
		t.Fatalf("summary %s", summary)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 50<<20 {
		t.Errorf("checking a 200 MiB output allocated %d MiB", grew>>20)
	}
}

// TestJobHeldLogNotAFIFO: a job that leaves a named pipe where the node
// keeps its held log lines (out/held-log.txt) must not hang the node: an
// open for writing blocks until a reader comes, and none does, so the
// job's slot was never given back and the node could not close.
func TestJobHeldLogNotAFIFO(t *testing.T) {
	ctx := context.Background()
	n, _, _, ingest := snapshotNode(t, "sqlite", 1)
	ingest(0, 1)
	if _, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Dataset: "lung", Query: json.RawMessage(allQuery)}); err != nil {
		t.Fatal(err)
	}
	n.SetExecutor(&reviewExec{fn: func(spec executor.Spec, log func(string)) {
		if err := syscall.Mkfifo(filepath.Join(spec.Output, heldLogName), 0o644); err != nil {
			t.Error(err)
		}
		log("record 1234567890") // held by the filter
	}})
	j := &runningJob{id: "job-fifo", researcher: "rosa", dataset: "lung", snapshot: "s1",
		spec: jobs.Spec{Kind: jobs.KindProcess, Resources: jobs.Resources{Flavor: "no-gpu"}},
		dir:  filepath.Join(n.cfg.Data, "jobs", "job-fifo"), done: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		n.execute(ctx, j)
		n.airlockOutputs(ctx, j)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		// Unblock the node's open so the test can end.
		if f, err := os.OpenFile(filepath.Join(j.dir, "out", heldLogName), os.O_RDONLY, 0); err == nil {
			defer f.Close()
		}
		t.Fatal("the node hung on a named pipe in the job's output folder")
	}
}

// TestJobManualReleaseHoldsLogs: on a node whose airlock releases every
// output by hand (manual_release), log lines are outputs too: none
// leaves at once.
func TestJobManualReleaseHoldsLogs(t *testing.T) {
	ctx := context.Background()
	n, _, _, ingest := snapshotNodeWith(t, "sqlite", 1, func(c *Config) { c.Airlock.ManualRelease = true })
	ingest(0, 1)
	if _, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Dataset: "lung", Query: json.RawMessage(allQuery)}); err != nil {
		t.Fatal(err)
	}
	n.SetExecutor(&reviewExec{fn: func(spec executor.Spec, log func(string)) {
		log("age 61 sex F stage 3")
	}})
	j := &runningJob{id: "job-manual", researcher: "rosa", dataset: "lung", snapshot: "s1",
		spec: jobs.Spec{Kind: jobs.KindProcess, Resources: jobs.Resources{Flavor: "no-gpu"}},
		dir:  filepath.Join(n.cfg.Data, "jobs", "job-manual"), done: make(chan struct{})}
	n.execute(ctx, j)
	b, err := os.ReadFile(filepath.Join(j.dir, "out", heldLogName))
	if err != nil || !strings.Contains(string(b), "age 61") {
		t.Fatalf("the log line was not held on a manual-release node: %v %q", err, b)
	}
}

// TestJobManyOutputsBounded: a job may leave up to 100,000 files in its
// output folder; the airlock takes max_files of them (100) and the node
// must refuse the rest without checking and storing each: it went
// through the store for every file, and the store reads every record it
// holds for each, so a few thousand files took the node minutes, and
// the job's message named every one.
func TestJobManyOutputsBounded(t *testing.T) {
	ctx := context.Background()
	n, _, _, ingest := snapshotNode(t, "sqlite", 1)
	ingest(0, 1)
	if _, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Dataset: "lung", Query: json.RawMessage(allQuery)}); err != nil {
		t.Fatal(err)
	}
	n.SetExecutor(&reviewExec{fn: func(spec executor.Spec, log func(string)) {
		for i := 0; i < 3000; i++ {
			os.WriteFile(filepath.Join(spec.Output, fmt.Sprintf("f%04d.txt", i)), []byte("x\n"), 0o644)
		}
	}})
	j := &runningJob{id: "job-many", researcher: "rosa", dataset: "lung", snapshot: "s1",
		spec: jobs.Spec{Kind: jobs.KindProcess, Resources: jobs.Resources{Flavor: "no-gpu"}},
		dir:  filepath.Join(n.cfg.Data, "jobs", "job-many"), done: make(chan struct{})}
	n.execute(ctx, j)
	start := time.Now()
	_, summary := n.airlockOutputs(ctx, j)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("checking 3000 outputs took %v", d)
	}
	if len(summary) > 20000 {
		t.Errorf("the job's message is %d bytes long", len(summary))
	}
}
