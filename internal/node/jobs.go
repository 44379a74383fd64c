package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/executor"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/jobs"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// Processing jobs at the node. A job the hub signs comes with the
// researcher's process permit, which the node checks itself (link_job.go);
// an accepted job gets a folder DATA/jobs/<id>/ with in/ (its parameters
// and program), data/ (the snapshot's research tables as CSV and, when
// asked, its DICOM files) and out/, runs through the node's executor
// with in/ and data/ read-only at /in and /data and out/ writable at
// /out, and reports its progress and released log lines as signed
// JobEvents. At the end the airlock checks every file in out/: released
// files go to the hub in chunks, held ones wait for a person, refused
// ones are reported by name and reason. The inputs are removed after the
// run; outputs stay until released or refused.

// Audit actions of jobs in the node's audit log.
const (
	actionJobRefused   = "job-refused"
	actionJobAccepted  = "job-accepted"
	actionJobFinished  = "job-finished"
	actionJobCancel    = "job-cancel"
	actionJobOutput    = "job-output"
	actionJobOutputOut = "job-output-released"
)

// Output states in the node's record.
const (
	outputReleased = "released"
	outputHeld     = "held"
	outputRefused  = "refused"
)

// outputChunk is the size of the chunks outputs travel in (under
// fed.MaxOutputChunk, so that a signed event stays well under
// fed.MaxMessage once encoded).
const outputChunk = 256 << 10

// jobLogBatch and jobLogEvery: log lines go to the hub in events of at
// most this many lines, at least this often while there are some.
const (
	jobLogBatch = 200
	jobLogEvery = 250 * time.Millisecond
	maxLogLine  = 4096
)

// jobIDPattern is the shape of a job id the node accepts (it names a
// folder).
var jobIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// jobsState is the node's running jobs and its test hooks.
type jobsState struct {
	mu      sync.Mutex
	running map[string]*runningJob
	wg      sync.WaitGroup
	closed  bool
	// exec, when set, replaces the executor node.json names (tests).
	exec executor.Executor
	// check, when set, replaces the airlock's Check (tests).
	check func(airlock.Policy, airlock.Permissions, airlock.Output) airlock.Verdict
	// held are the jobs with outputs in the airlock (released ones are
	// sent through the job's link as they are released), by job id.
	held map[string]*runningJob
	seq  atomic.Int64
	// hooked is set once the airlock store's release hook is ours.
	hooked sync.Once
	// quit is closed when the node closes (watchers of held outputs
	// stop).
	quitOnce sync.Once
	quit     chan struct{}
}

func (s *jobsState) quitting() <-chan struct{} {
	s.quitOnce.Do(func() { s.quit = make(chan struct{}) })
	return s.quit
}

// runningJob is one job at this node.
type runningJob struct {
	id, researcher, dataset, snapshot string
	spec                              jobs.Spec
	tool                              *jobs.Tool
	perm                              airlock.Permissions
	// isPseudonym and inputRows describe the job's inputs to the
	// airlock's row-level checks and log filter (set by prepareJob).
	isPseudonym func(string) bool
	inputRows   []int
	dir         string
	link        *Link
	cancel      context.CancelFunc
	cancelled   atomic.Bool
	done        chan struct{}
}

// SetExecutor makes the node run jobs through x rather than the executor
// node.json names (for tests; nil goes back to node.json's).
func (n *Node) SetExecutor(x executor.Executor) {
	n.jobs.mu.Lock()
	n.jobs.exec = x
	n.jobs.mu.Unlock()
}

// SetOutputCheck makes the node check job outputs with fn rather than
// airlock.Check (for tests; nil goes back to airlock.Check).
func (n *Node) SetOutputCheck(fn func(airlock.Policy, airlock.Permissions, airlock.Output) airlock.Verdict) {
	n.jobs.mu.Lock()
	n.jobs.check = fn
	n.jobs.mu.Unlock()
}

// executor returns the executor jobs run through.
func (n *Node) executor() (executor.Executor, error) {
	n.jobs.mu.Lock()
	x := n.jobs.exec
	n.jobs.mu.Unlock()
	if x != nil {
		return x, nil
	}
	if n.cfg.Jobs.Kind == "" {
		return nil, errors.New("this node runs no jobs (node.json has no jobs executor)")
	}
	return executor.New(n.cfg.Jobs)
}

func (n *Node) outputCheck() func(airlock.Policy, airlock.Permissions, airlock.Output) airlock.Verdict {
	n.jobs.mu.Lock()
	defer n.jobs.mu.Unlock()
	if n.jobs.check != nil {
		return n.jobs.check
	}
	return airlock.Check
}

// maxJobs is how many jobs the node runs at once.
func (n *Node) maxJobs() int {
	if n.cfg.MaxJobs > 0 {
		return n.cfg.MaxJobs
	}
	return 2
}

// reserve takes a slot for job j, or says why not.
func (s *jobsState) reserve(j *runningJob, max int) (code, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fed.RefusedBusy, "the node is shutting down"
	}
	if s.running == nil {
		s.running = map[string]*runningJob{}
	}
	if _, ok := s.running[j.id]; ok {
		return fed.RefusedInvalid, "the node runs this job already"
	}
	if len(s.running) >= max {
		return fed.RefusedBusy, fmt.Sprintf("the node runs %d jobs, as many as it allows", len(s.running))
	}
	s.running[j.id] = j
	s.wg.Add(1)
	return "", ""
}

func (s *jobsState) release(id string) {
	s.mu.Lock()
	delete(s.running, id)
	s.mu.Unlock()
	s.wg.Done()
}

// stop cancels every running job and waits for them to end.
func (s *jobsState) stop() {
	s.quitting()
	s.mu.Lock()
	if !s.closed {
		close(s.quit)
	}
	s.closed = true
	for _, j := range s.running {
		j.cancelled.Store(true)
		j.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Running lists the ids of the jobs the node runs now.
func (n *Node) RunningJobs() []string {
	n.jobs.mu.Lock()
	defer n.jobs.mu.Unlock()
	var ids []string
	for id := range n.jobs.running {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// event signs and publishes one JobEvent of j.
func (n *Node) jobEvent(j *runningJob, ev fed.JobEvent) {
	l := j.link
	if l == nil {
		return
	}
	ev.Node, ev.Job, ev.Time = l.f.Node, j.id, time.Now().UTC()
	// Seq grows across the node's jobs and restarts (nanoseconds at the
	// first event, one more each time).
	n.jobs.seq.CompareAndSwap(0, time.Now().UnixNano())
	ev.Seq = n.jobs.seq.Add(1)
	msg, err := fed.Seal(l.key, l.f.Node, ev)
	if err != nil {
		n.log.Error("job event not signed", "job", j.id, "err", err)
		return
	}
	if err := l.nc.Publish(fed.NodeSubject(l.f.Node, fed.MsgJob), msg); err != nil {
		n.log.Warn("job event not sent", "job", j.id, "err", err)
	}
}

// runJob runs an accepted job to its end.
func (n *Node) runJob(ctx context.Context, j *runningJob) {
	defer close(j.done)
	defer n.jobs.release(j.id)
	defer j.cancel()
	start := time.Now()
	state, msg, code := n.execute(ctx, j)
	// The inputs go; the outputs stay until released or refused.
	os.RemoveAll(filepath.Join(j.dir, "in"))
	os.RemoveAll(filepath.Join(j.dir, "data"))
	var held int
	if state == fed.JobSucceeded || state == fed.JobFailed {
		// A failed run's outputs pass the same airlock: they may say why.
		var summary string
		held, summary = n.airlockOutputs(ctx, j)
		if summary != "" {
			msg += "; " + summary
		}
		if held > 0 && state == fed.JobSucceeded {
			state = fed.JobHeld
		}
	}
	if held == 0 {
		os.RemoveAll(j.dir)
	} else if n.usesStore() {
		n.jobs.wg.Add(1)
		go func() {
			defer n.jobs.wg.Done()
			n.watchHeld(j)
		}()
	}
	n.ix.SetJobState(context.WithoutCancel(ctx), j.id, state, msg, code)
	n.jobAudit(j, actionJobFinished, map[string]any{"state": state, "message": msg, "exit_code": code, "seconds": time.Since(start).Seconds()})
	n.jobEvent(j, fed.JobEvent{State: state, Progress: 1, Message: msg, ExitCode: code})
}

// jobAudit appends a record of j to the link's audit log.
func (n *Node) jobAudit(j *runningJob, action string, detail map[string]any) {
	if j.link == nil {
		return
	}
	if detail == nil {
		detail = map[string]any{}
	}
	detail["researcher"], detail["dataset"] = j.researcher, j.dataset
	if _, err := j.link.audit.Append(audit.Entry{Actor: actorHub, Action: action, Subject: j.id, Detail: detail}); err != nil {
		n.log.Error("audit append failed", "action", action, "job", j.id, "err", err)
	}
}

// execute prepares the job's folder and runs it: the state it ended in,
// words about it, and the exit code.
func (n *Node) execute(ctx context.Context, j *runningJob) (string, string, *int) {
	x, err := n.executor()
	if err != nil {
		return fed.JobFailed, "no executor: " + err.Error(), nil
	}
	if err := n.prepareJob(ctx, j); err != nil {
		n.log.Warn("job inputs not prepared", "job", j.id, "err", err)
		return fed.JobFailed, "the node could not prepare the job's inputs", nil
	}
	if ctx.Err() != nil {
		return fed.JobCancelled, "cancelled before it started", nil
	}
	n.ix.SetJobState(ctx, j.id, fed.JobRunning, "", nil)
	n.jobEvent(j, fed.JobEvent{State: fed.JobRunning, Progress: 0})

	// Log lines, bounded, go to the hub in batches.
	lines := make(chan string, 1024)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		n.forwardLogs(j, lines)
	}()
	maxLines := n.cfg.Airlock.MaxLogLines
	if maxLines <= 0 {
		maxLines = 10000
	}
	// Lines the airlock's filter does not release at once are kept, and
	// checked at the end as an output of their own (heldLogName).
	filter := airlock.NewLogFilter(n.cfg.Airlock, j.isPseudonym)
	var count, dropped int
	var heldLines []string
	logFn := func(line string) {
		if count >= maxLines {
			dropped++
			return
		}
		count++
		if len(line) > maxLogLine {
			line = line[:maxLogLine]
		}
		// A node that releases every output by hand holds every line.
		if ok, _ := filter.Line(line); !ok || n.cfg.Airlock.ManualRelease {
			heldLines = append(heldLines, line)
			return
		}
		select {
		case lines <- line:
		case <-ctx.Done():
		}
	}
	spec := n.execSpec(j)
	res, err := x.Run(ctx, spec, logFn)
	var extra string
	close(lines)
	<-sent
	if len(heldLines) > 0 {
		if err := appendLines(filepath.Join(j.dir, "out", heldLogName), heldLines); err != nil {
			n.log.Warn("held log lines not kept", "job", j.id, "err", err)
		}
		extra += fmt.Sprintf(" (%d log lines held by the airlock's filter, in %s)", len(heldLines), heldLogName)
	}
	code := res.ExitCode
	if dropped > 0 {
		extra += fmt.Sprintf(" (%d log lines over the node's limit of %d were dropped)", dropped, maxLines)
	}
	switch {
	case j.cancelled.Load() || res.Killed == "cancelled":
		return fed.JobCancelled, "cancelled" + extra, nil
	case err != nil:
		n.log.Warn("job run failed", "job", j.id, "err", err)
		return fed.JobFailed, "the executor failed: " + firstLine(err.Error()) + extra, nil
	case res.Killed != "":
		return fed.JobKilled, "killed: the " + res.Killed + " limit was hit" + extra, &code
	case code != 0:
		return fed.JobFailed, fmt.Sprintf("exited with code %d", code) + extra, &code
	}
	return fed.JobSucceeded, "finished in " + res.Duration.Round(time.Millisecond).String() + extra, &code
}

// heldLogName is the output that holds the log lines the airlock's
// filter did not release at once: it waits for a person like any other.
const heldLogName = "held-log.txt"

// appendLines appends lines to a file (created if missing, never
// through a link, never a named pipe or device the job left there).
func appendLines(path string, lines []string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o644)
	if err != nil {
		return err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return errors.New("not a regular file")
	}
	for _, l := range lines {
		if _, err := io.WriteString(f, l+"\n"); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// forwardLogs sends log lines as events, in batches.
func (n *Node) forwardLogs(j *runningJob, lines <-chan string) {
	var batch []string
	tick := time.NewTicker(jobLogEvery)
	defer tick.Stop()
	flush := func() {
		if len(batch) > 0 {
			n.jobEvent(j, fed.JobEvent{State: fed.JobRunning, Progress: -1, Log: batch})
			batch = nil
		}
	}
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				flush()
				return
			}
			batch = append(batch, l)
			if len(batch) >= jobLogBatch {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// execSpec is the executor's view of the job.
func (n *Node) execSpec(j *runningJob) executor.Spec {
	env := map[string]string{}
	for _, e := range j.spec.Env {
		env[e.Name] = e.Value
	}
	env["MOSAIC_JOB"] = j.id
	var cmd []string
	switch j.spec.Kind {
	case jobs.KindProcess:
		cmd = append([]string{"/in/program"}, j.spec.CommandArgs...)
	case jobs.KindBuiltin:
		cmd = append([]string{j.spec.Image}, j.spec.CommandArgs...)
	default:
		cmd = append(cmd, j.spec.CommandArgs...)
	}
	image := ""
	if j.spec.Kind == jobs.KindContainer {
		image = j.spec.Image
	}
	return executor.Spec{Job: j.id, Command: cmd, Image: image, Env: env,
		Inputs: []executor.Mount{{Host: filepath.Join(j.dir, "in"), Target: "/in"}, {Host: filepath.Join(j.dir, "data"), Target: "/data"}},
		Output: filepath.Join(j.dir, "out"), Limits: n.cfg.Jobs.Limits, Flavor: j.spec.Resources.Flavor}
}

// prepareJob makes the job's folder: in/ (params.json, the program),
// data/tables/*.csv (the snapshot's rows), data/dicom/ when asked, out/.
func (n *Node) prepareJob(ctx context.Context, j *runningJob) error {
	for _, d := range []string{"in", "data/tables", "out"} {
		if err := os.MkdirAll(filepath.Join(j.dir, d), 0o755); err != nil {
			return err
		}
	}
	params, err := json.MarshalIndent(map[string]any{"job": j.id, "dataset": j.dataset, "snapshot": j.snapshot, "args": j.spec.CommandArgs,
		"flavor": j.spec.Resources.Flavor, "annotations": j.spec.Annotations}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(j.dir, "in", "params.json"), params, 0o644); err != nil {
		return err
	}
	if j.tool != nil && j.spec.Kind == jobs.KindProcess {
		if err := os.WriteFile(filepath.Join(j.dir, "in", "program"), j.tool.Program, 0o755); err != nil {
			return err
		}
	}
	infos, err := n.Tables(ctx, j.dataset)
	if err != nil && !errors.Is(err, table.ErrNotImplemented) {
		return fmt.Errorf("tables: %w", err)
	}
	for _, info := range infos {
		t, err := n.SnapshotTable(ctx, j.dataset, j.snapshot, info.Name)
		if err != nil {
			return fmt.Errorf("table %s: %w", info.Name, err)
		}
		if err := writeFile(filepath.Join(j.dir, "data", "tables", info.Name+".csv"), t.WriteCSV); err != nil {
			return fmt.Errorf("table %s: %w", info.Name, err)
		}
		j.inputRows = append(j.inputRows, t.Rows())
	}
	isPseudonym, patients, err := n.AirlockInputs(ctx, j.dataset, j.snapshot)
	if err != nil {
		return fmt.Errorf("the snapshot's patients for the airlock: %w", err)
	}
	j.isPseudonym, j.inputRows = isPseudonym, append(j.inputRows, patients)
	if j.spec.DICOM {
		insts, err := n.ix.SnapshotInstances(ctx, j.snapshot, j.dataset, "", "", "")
		if err != nil {
			return fmt.Errorf("snapshot instances: %w", err)
		}
		for _, in := range insts {
			dir := filepath.Join(j.dir, "data", "dicom", safeName(in.StudyUID), safeName(in.SeriesUID))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			br, err := n.blobs.Open(ctx, blobRef(in.BlobKey, in.BlobLoc))
			if err != nil {
				return fmt.Errorf("instance blob: %w", err)
			}
			err = writeFile(filepath.Join(dir, safeName(in.SOPUID)+".dcm"), func(w io.Writer) error { _, err := io.Copy(w, br); return err })
			br.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// safeName keeps the characters of a UID a file name may hold.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

func writeFile(path string, fn func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// maxOutputRead bounds what the node reads of one output for the
// airlock; larger files are refused unread.
const maxOutputRead = 1 << 30

// airlockOutputs checks every file in out/: it sends the released ones,
// records the held ones, and reports the refused ones. It returns how
// many are held and a summary in words (names and reasons, no values).
func (n *Node) airlockOutputs(ctx context.Context, j *runningJob) (int, string) {
	out := filepath.Join(j.dir, "out")
	entries, err := os.ReadDir(out)
	if err != nil {
		return 0, "the node could not read the job's outputs"
	}
	var store *airlock.Store
	if n.usesStore() {
		if store, err = n.Airlock(); err != nil {
			n.log.Error("the airlock's store could not be opened: no output leaves", "job", j.id, "err", err)
			return 0, "the node's airlock could not be opened: no output left the node"
		}
		n.hookRelease(store)
		n.jobs.mu.Lock()
		if n.jobs.held == nil {
			n.jobs.held = map[string]*runningJob{}
		}
		n.jobs.held[j.id] = j
		n.jobs.mu.Unlock()
	}
	check := n.outputCheck()
	var released, held []string
	var refused []string
	// An output's name leaves the node with it, or in the job's message
	// when it is held or refused: it must pass the log filter's test,
	// and is withheld from the message when it does not.
	nameOK := func(name string) bool {
		ok, _ := (&airlock.LogFilter{IsPseudonym: j.isPseudonym, MaxLines: math.MaxInt}).Line(name)
		return ok
	}
	// Past max_files the airlock refuses every output: those are
	// removed unread, and counted, not checked and recorded one by one.
	maxFiles := n.cfg.Airlock.WithDefaults().MaxFiles
	overflow := 0
	for i, e := range entries {
		name := e.Name()
		path := filepath.Join(out, name)
		if i >= maxFiles {
			overflow++
			os.RemoveAll(path)
			continue
		}
		reason := ""
		var data []byte
		shown := name
		if !nameOK(name) {
			shown = "(a name withheld)"
		}
		switch {
		case !e.Type().IsRegular():
			reason = "not a regular file"
		case !jobs.ValidOutputName(name):
			reason = "not a valid output name"
		case !nameOK(name):
			reason = "a name with a long number, an identifier or a pseudonym"
		default:
			fi, err := e.Info()
			if err != nil || fi.Size() > min(maxOutputRead, n.cfg.Airlock.WithDefaults().MaxFileBytes) {
				// Over the airlock's size limit: refused unread.
				reason = "too large to check"
				break
			}
			if data, err = readRegular(path); err != nil {
				reason = "not readable"
			}
		}
		rec := n.recordOutput(ctx, j, name, data)
		if reason != "" {
			rec.State, rec.Reason = outputRefused, reason
			n.ix.PutJobOutput(context.WithoutCancel(ctx), rec)
			refused = append(refused, shown+": "+reason)
			n.jobAudit(j, actionJobOutput, map[string]any{"name": name, "decision": string(airlock.Refuse), "reason": reason})
			os.RemoveAll(path)
			continue
		}
		if store != nil {
			// The store checks, keeps and audits; a release is sent by
			// its hook (onAirlockRelease).
			h, err := store.Hold(airlock.Output{Job: j.id, Name: name, Data: data,
				InputRows: j.inputRows, IsPseudonym: j.isPseudonym}, j.perm)
			os.Remove(path)
			switch {
			case err != nil:
				n.log.Error("airlock: output not recorded", "job", j.id, "err", err)
				rec.State, rec.Reason = outputRefused, "the airlock could not record it"
				refused = append(refused, shown+": "+rec.Reason)
			case h.State == airlock.StateReleased:
				rec.State = outputReleased
				released = append(released, name)
			case h.State == airlock.StateHeld:
				rec.State, rec.Reason = outputHeld, verdictReason(h.Verdict)
				held = append(held, shown)
			default:
				rec.State, rec.Reason = outputRefused, verdictReason(h.Verdict)
				refused = append(refused, shown+": "+rec.Reason)
			}
			n.ix.PutJobOutput(context.WithoutCancel(ctx), rec)
			continue
		}
		v := check(n.cfg.Airlock, j.perm, airlock.Output{Job: j.id, Name: name, Data: data, InputRows: j.inputRows, IsPseudonym: j.isPseudonym})
		why := verdictReason(v)
		n.jobAudit(j, actionJobOutput, map[string]any{"name": name, "decision": string(v.Decision), "reason": why, "size": len(data), "sha256": rec.SHA256})
		switch v.Decision {
		case airlock.Release:
			if err := n.sendOutput(ctx, j, name, data); err != nil {
				rec.State, rec.Reason = outputHeld, "not sent: "+err.Error()
				held = append(held, shown)
				n.ix.PutJobOutput(context.WithoutCancel(ctx), rec)
				continue
			}
			rec.State = outputReleased
			released = append(released, name)
			os.Remove(path)
		case airlock.Review:
			rec.State, rec.Reason = outputHeld, why
			held = append(held, shown)
		default:
			rec.State, rec.Reason = outputRefused, why
			refused = append(refused, shown+": "+why)
			os.Remove(path)
		}
		n.ix.PutJobOutput(context.WithoutCancel(ctx), rec)
	}
	if overflow > 0 {
		refused = append(refused, fmt.Sprintf("%d more outputs: over the airlock's limit of %d", overflow, maxFiles))
		n.jobAudit(j, actionJobOutput, map[string]any{"decision": string(airlock.Refuse), "count": overflow,
			"reason": fmt.Sprintf("over the airlock's limit of %d outputs", maxFiles)})
	}
	if len(held) > 0 && store == nil {
		n.jobs.mu.Lock()
		if n.jobs.held == nil {
			n.jobs.held = map[string]*runningJob{}
		}
		n.jobs.held[j.id] = j
		n.jobs.mu.Unlock()
	}
	if len(held) == 0 && store != nil {
		n.jobs.mu.Lock()
		delete(n.jobs.held, j.id)
		n.jobs.mu.Unlock()
	}
	var parts []string
	if len(released) > 0 {
		parts = append(parts, fmt.Sprintf("%d output(s) released", len(released)))
	}
	if len(held) > 0 {
		parts = append(parts, fmt.Sprintf("%d held for review at the node (%s)", len(held), strings.Join(held, ", ")))
	}
	if len(refused) > 0 {
		parts = append(parts, fmt.Sprintf("%d refused by the airlock (%s)", len(refused), strings.Join(refused, "; ")))
	}
	return len(held), strings.Join(parts, "; ")
}

// readRegular reads a file that must still be a regular file when
// opened (not swapped for a link to something else meanwhile).
func readRegular(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	return io.ReadAll(io.LimitReader(f, maxOutputRead))
}

func (n *Node) recordOutput(ctx context.Context, j *runningJob, name string, data []byte) index.JobOutput {
	sum := sha256.Sum256(data)
	return index.JobOutput{Job: j.id, Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
}

// verdictReason is the airlock's findings in words (never values).
func verdictReason(v airlock.Verdict) string {
	var parts []string
	for _, f := range v.Findings {
		if f.Result != airlock.Release {
			parts = append(parts, f.Check+": "+f.Detail)
		}
	}
	if len(parts) == 0 {
		return string(v.Decision)
	}
	s := strings.Join(parts, "; ")
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}

// sendOutput sends one released output to the hub in chunks.
func (n *Node) sendOutput(ctx context.Context, j *runningJob, name string, data []byte) error {
	if j.link == nil || j.link.nc == nil || j.link.nc.IsClosed() {
		return errors.New("no link to the hub")
	}
	sum := sha256.Sum256(data)
	for off := 0; ; off += outputChunk {
		end := min(off+outputChunk, len(data))
		last := end == len(data)
		c := &fed.OutputChunk{Name: name, Offset: int64(off), Data: data[off:end], Last: last}
		if last {
			c.Size, c.SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
		}
		n.jobEvent(j, fed.JobEvent{State: fed.JobRunning, Progress: -1, Output: c})
		if last {
			break
		}
		// Do not outrun the connection's buffer.
		if err := j.link.nc.FlushTimeout(10 * time.Second); err != nil {
			return err
		}
	}
	n.jobAudit(j, actionJobOutputOut, map[string]any{"name": name, "size": len(data), "sha256": hex.EncodeToString(sum[:])})
	return nil
}

// ReleaseJobOutput sends an output the airlock held, once a person
// released it (the airlock store's release hook calls it): the job's
// state at the hub moves on when nothing of it is held any more.
func (n *Node) ReleaseJobOutput(ctx context.Context, job, name string) error {
	if n.usesStore() {
		return n.decideInStore(job, name, true, "")
	}
	return n.decideHeld(ctx, job, name, true, "")
}

// RejectJobOutput drops an output the airlock held, once a person
// rejected it, and tells the hub.
func (n *Node) RejectJobOutput(ctx context.Context, job, name, reason string) error {
	if n.usesStore() {
		return n.decideInStore(job, name, false, reason)
	}
	return n.decideHeld(ctx, job, name, false, reason)
}

// usesStore says whether outputs go through the airlock's store (not
// when a test replaced the checks).
func (n *Node) usesStore() bool {
	n.jobs.mu.Lock()
	defer n.jobs.mu.Unlock()
	return n.jobs.check == nil
}

// decideInStore releases or rejects a held output of job by name in the
// airlock's store, as the node itself ("node" as the person).
func (n *Node) decideInStore(job, name string, release bool, reason string) error {
	st, err := n.Airlock()
	if err != nil {
		return err
	}
	hs, err := st.ListJob(job)
	if err != nil {
		return err
	}
	for _, h := range hs {
		if h.Name != name || h.State != airlock.StateHeld {
			continue
		}
		if release {
			_, err = st.Release(h.ID, "node")
		} else {
			_, err = st.Reject(h.ID, "node", reason)
		}
		return err
	}
	return fmt.Errorf("%w: output %s of job %s is not held here", index.ErrInvalid, name, job)
}

// hookRelease makes the airlock store send what it releases.
func (n *Node) hookRelease(st *airlock.Store) {
	n.jobs.hooked.Do(func() { st.OnRelease(n.onAirlockRelease) })
}

// onAirlockRelease sends an output the airlock released (by its checks
// or by people) through its job's link, and marks it sent. An output of
// a job this process does not know (released after a restart) stays
// unsent in the store.
func (n *Node) onAirlockRelease(h airlock.Held, data []byte) {
	n.jobs.mu.Lock()
	j := n.jobs.held[h.Job]
	n.jobs.mu.Unlock()
	if j == nil {
		n.log.Warn("airlock: a released output of a job this process does not run waits in the store", "job", h.Job, "output", h.ID)
		return
	}
	ctx := context.Background()
	if err := n.sendOutput(ctx, j, h.Name, data); err != nil {
		n.log.Warn("airlock: released output not sent", "job", h.Job, "err", err)
		return
	}
	st, err := n.Airlock()
	if err == nil {
		err = st.MarkSent(h.ID)
	}
	if err != nil {
		n.log.Warn("airlock: output sent but not marked", "job", h.Job, "err", err)
	}
	rec := index.JobOutput{Job: h.Job, Name: h.Name, State: outputReleased, Size: h.Size, SHA256: h.SHA256}
	if len(h.DecidedBy) > 0 {
		rec.Reason = "released by " + strings.Join(h.DecidedBy, ", ")
	}
	n.ix.PutJobOutput(ctx, rec)
}

// heldEvery is how often a job with held outputs looks whether people
// decided them.
var heldEvery = 500 * time.Millisecond

// watchHeld waits until no output of j is held in the airlock any more,
// then reports the job's end (succeeded, with how many were rejected).
func (n *Node) watchHeld(j *runningJob) {
	tick := time.NewTicker(heldEvery)
	defer tick.Stop()
	for {
		select {
		case <-n.jobs.quitting():
			return
		case <-tick.C:
		}
		st, err := n.Airlock()
		if err != nil {
			continue
		}
		hs, err := st.ListJob(j.id)
		if err != nil {
			continue
		}
		held, rejected := 0, 0
		for _, h := range hs {
			switch h.State {
			case airlock.StateHeld:
				held++
			case airlock.StateRejected:
				rejected++
			}
		}
		if held > 0 {
			continue
		}
		n.jobs.mu.Lock()
		delete(n.jobs.held, j.id)
		n.jobs.mu.Unlock()
		os.RemoveAll(j.dir)
		msg := "every held output decided at the node"
		if rejected > 0 {
			msg += fmt.Sprintf(" (%d rejected)", rejected)
		}
		ctx := context.Background()
		n.ix.SetJobState(ctx, j.id, fed.JobSucceeded, msg, nil)
		n.jobAudit(j, actionJobFinished, map[string]any{"state": fed.JobSucceeded, "message": msg})
		n.jobEvent(j, fed.JobEvent{State: fed.JobSucceeded, Progress: 1, Message: msg})
		return
	}
}

func (n *Node) decideHeld(ctx context.Context, job, name string, release bool, reason string) error {
	n.jobs.mu.Lock()
	j := n.jobs.held[job]
	n.jobs.mu.Unlock()
	rec, err := n.ix.JobOutput(ctx, job, name)
	if err != nil {
		return err
	}
	if rec.State != outputHeld || j == nil {
		return fmt.Errorf("%w: output %s of job %s is not held here", index.ErrInvalid, name, job)
	}
	path := filepath.Join(j.dir, "out", name)
	if release {
		data, err := readRegular(path)
		if err != nil {
			return fmt.Errorf("node: held output %s: %w", name, err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != rec.SHA256 {
			return fmt.Errorf("node: held output %s changed since it was checked", name)
		}
		if err := n.sendOutput(ctx, j, name, data); err != nil {
			return err
		}
		rec.State, rec.Reason = outputReleased, "released by a person"
	} else {
		rec.State, rec.Reason = outputRefused, "rejected by a person: "+firstLine(reason)
		n.jobEvent(j, fed.JobEvent{State: fed.JobHeld, Progress: 1, Message: "output " + name + " rejected at the node"})
	}
	os.Remove(path)
	if err := n.ix.PutJobOutput(ctx, rec); err != nil {
		return err
	}
	outs, err := n.ix.JobOutputs(ctx, job)
	if err != nil {
		return err
	}
	for _, o := range outs {
		if o.State == outputHeld {
			return nil
		}
	}
	n.jobs.mu.Lock()
	delete(n.jobs.held, job)
	n.jobs.mu.Unlock()
	os.RemoveAll(j.dir)
	rj, _ := n.ix.Job(ctx, job)
	n.ix.SetJobState(ctx, job, fed.JobSucceeded, rj.Message, nil)
	n.jobEvent(j, fed.JobEvent{State: fed.JobSucceeded, Progress: 1, Message: "every held output decided at the node"})
	return nil
}
