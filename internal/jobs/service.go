package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Permit is what the hub's access service holds of a permit, as the
// jobs service needs it.
type Permit struct {
	ID         string
	Researcher string
	Node       string
	Dataset    string
	Snapshot   string
	Operations []string
	Expires    time.Time
	Token      string
	Revoked    bool
}

// Actor is the user behind a call.
type Actor struct {
	ID    string
	Admin bool
}

// Config wires a Service to the hub.
type Config struct {
	DB *sqldb.DB
	// Permit returns permit id of user (ErrNotFound-like errors for
	// another user's or an unknown permit).
	Permit func(ctx context.Context, id, user string) (Permit, error)
	// Send signs a task of kind with body for node and waits for its
	// signed JobAck (the hub's Ask).
	Send func(ctx context.Context, node string, kind fed.TaskKind, body any, ack *fed.JobAck) error
	// Organisation returns a user's organisation ("" when none).
	Organisation func(ctx context.Context, user string) (string, error)
	// Audit records an action in the hub's audit log (may be nil).
	Audit func(actor, action, subject string, detail map[string]any) error
	// ToolReviews and ToolOrganisations: approvals needed (default 2, 2).
	ToolReviews, ToolOrganisations int
	// MaxLogLines bounds the log lines kept per job and node (default
	// 10000); MaxOutputBytes the output bytes per job and node (default
	// 256 MiB); MaxOutputs the outputs per job and node (default 100).
	MaxLogLines    int
	MaxOutputBytes int64
	MaxOutputs     int
	Now            func() time.Time
	Log            *slog.Logger
}

// Service is the hub's jobs and tool catalogue.
type Service struct {
	cfg Config
	db  *sqldb.DB

	mu      sync.Mutex
	watch   map[string]chan struct{} // job id: closed on the next change
	partial map[string]*bytes.Buffer // job/node/name: an output being received
	evMu    sync.Mutex               // serialises events
}

// Audit actions.
const (
	ActionSubmitted      = "job-submitted"
	ActionSent           = "job-sent"
	ActionRefused        = "job-refused"
	ActionFinished       = "job-finished"
	ActionCancelled      = "job-cancelled"
	ActionOutput         = "job-output-received"
	ActionOutputRejected = "job-output-rejected"
	ActionToolRegistered = "tool-registered"
	ActionToolReviewed   = "tool-reviewed"
)

// New migrates the database and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Permit == nil || cfg.Send == nil {
		return nil, errors.New("jobs: a database, a permit lookup and a sender are required")
	}
	if cfg.ToolReviews <= 0 {
		cfg.ToolReviews = 2
	}
	if cfg.ToolOrganisations <= 0 {
		cfg.ToolOrganisations = 2
	}
	if cfg.MaxLogLines <= 0 {
		cfg.MaxLogLines = 10000
	}
	if cfg.MaxOutputBytes <= 0 {
		cfg.MaxOutputBytes = 256 << 20
	}
	if cfg.MaxOutputs <= 0 {
		cfg.MaxOutputs = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Audit == nil {
		cfg.Audit = func(string, string, string, map[string]any) error { return nil }
	}
	if cfg.Organisation == nil {
		cfg.Organisation = func(context.Context, string) (string, error) { return "", nil }
	}
	if err := cfg.DB.Migrate(context.Background(), "jobs", migrations, "migrations"); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, db: cfg.DB, watch: map[string]chan struct{}{}, partial: map[string]*bytes.Buffer{}}, nil
}

func ms(t time.Time) int64     { return t.UnixMilli() }
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func newID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func invalid(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(f, a...)) }

// changed wakes whoever waits on job's changes.
func (s *Service) changed(job string) {
	s.mu.Lock()
	if ch, ok := s.watch[job]; ok {
		close(ch)
		delete(s.watch, job)
	}
	s.mu.Unlock()
}

// Changes returns a channel closed at the job's next change.
func (s *Service) Changes(job string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.watch[job]
	if !ok {
		ch = make(chan struct{})
		s.watch[job] = ch
	}
	return ch
}

// target is one node of a job being submitted.
type target struct {
	permit Permit
}

// datasetListed reports whether list names the permit's dataset, as
// "dataset" or "node/dataset".
func datasetListed(list []string, p Permit) bool {
	return slices.Contains(list, p.Dataset) || slices.Contains(list, p.Node+"/"+p.Dataset)
}

// Submit validates spec for actor, records the job, and sends it to the
// nodes of its permits (unless it is a dry run), waiting for each
// node's acknowledgement.
func (s *Service) Submit(ctx context.Context, actor Actor, spec Spec) (*Job, error) {
	if actor.ID == "" {
		return nil, fmt.Errorf("%w: log in first", ErrForbidden)
	}
	if err := spec.Normalize(); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	var targets []target
	nodes := map[string]bool{}
	for _, id := range spec.Permits {
		p, err := s.cfg.Permit(ctx, id, actor.ID)
		if err != nil || p.Researcher != actor.ID {
			return nil, invalid("permit %s is not one of yours", trunc(id))
		}
		switch {
		case p.Revoked:
			return nil, invalid("permit %s has been revoked", p.ID)
		case !p.Expires.After(now):
			return nil, invalid("permit %s has expired", p.ID)
		case !slices.Contains(p.Operations, "process"):
			return nil, invalid("permit %s does not allow process (it allows %s)", p.ID, strings.Join(p.Operations, ", "))
		case !datasetListed(spec.DatasetsList, p):
			return nil, invalid("permit %s is for dataset %s/%s, which datasetsList does not name", p.ID, p.Node, p.Dataset)
		case nodes[p.Node]:
			return nil, invalid("two permits for node %s: a job runs once per node", p.Node)
		}
		nodes[p.Node] = true
		targets = append(targets, target{permit: p})
	}
	for _, d := range spec.DatasetsList {
		found := false
		for _, t := range targets {
			found = found || d == t.permit.Dataset || d == t.permit.Node+"/"+t.permit.Dataset
		}
		if !found {
			return nil, invalid("dataset %s in datasetsList has no permit among permits", trunc(d))
		}
	}
	var tool *Tool
	if spec.Kind != KindBuiltin {
		digest := spec.Image
		if spec.Kind == KindContainer {
			digest = ImageDigest(spec.Image)
		}
		t, err := s.toolByDigest(ctx, digest)
		if errors.Is(err, ErrNotFound) {
			return nil, invalid("the %s tool %s is not in the tool catalogue; register it and have it reviewed", spec.Kind, digest)
		}
		if err != nil {
			return nil, err
		}
		if t.Kind != spec.Kind {
			return nil, invalid("tool %s is a %s tool, not %s", t.ID, t.Kind, spec.Kind)
		}
		if t.State != ToolApproved {
			return nil, invalid("tool %s (%s) is not approved: it needs %d approvals from %d organisations", t.ID, t.Name, s.cfg.ToolReviews, s.cfg.ToolOrganisations)
		}
		tool = t
	}
	job := &Job{ID: newID("job-"), Name: spec.JobName, Researcher: actor.ID, Spec: spec, Created: now.UTC(), DryRun: spec.DryRun}
	if tool != nil {
		job.Tool = tool.ID
	}
	for _, t := range targets {
		job.Nodes = append(job.Nodes, NodeState{Node: t.permit.Node, Dataset: t.permit.Dataset, Permit: t.permit.ID, State: "sent", Progress: -1, Updated: now.UTC()})
	}
	if spec.DryRun {
		job.State = "dry-run"
		return job, nil
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	if err := s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO jobs (id, researcher, name, spec, tool_id, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			job.ID, actor.ID, job.Name, string(raw), job.Tool, ms(now)); err != nil {
			return err
		}
		for _, n := range job.Nodes {
			if _, err := tx.Exec(ctx, `INSERT INTO job_nodes (job_id, node_id, dataset_id, permit_id, state, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
				job.ID, n.Node, n.Dataset, n.Permit, n.State, ms(now)); err != nil {
				return err
			}
		}
		return s.cfg.Audit(actor.ID, ActionSubmitted, job.ID, map[string]any{"name": job.Name, "kind": spec.Kind, "image": spec.Image,
			"tool": job.Tool, "permits": spec.Permits, "flavor": spec.Resources.Flavor})
	}); err != nil {
		return nil, err
	}
	var toolRaw json.RawMessage
	if tool != nil {
		if toolRaw, err = json.Marshal(tool); err != nil {
			return nil, err
		}
	}
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.send(ctx, job, actor.ID, t.permit, raw, toolRaw)
		}()
	}
	wg.Wait()
	return s.Get(ctx, actor, job.ID)
}

// send sends job to one node and records its answer.
func (s *Service) send(ctx context.Context, job *Job, researcher string, p Permit, spec, tool json.RawMessage) {
	body := fed.JobBody{Job: job.ID, Permit: p.Token, Researcher: researcher, Spec: spec, Tool: tool}
	var ack fed.JobAck
	err := s.cfg.Send(ctx, p.Node, fed.TaskJob, body, &ack)
	if err == nil && (ack.Job != job.ID || ack.Node != p.Node) {
		err = errors.New("the node's answer is for another job")
	}
	var state, refused, msg, action string
	switch {
	case err != nil:
		state, msg, action = fed.JobFailed, "not delivered: "+err.Error(), ActionRefused
	case !ack.Accepted:
		state, refused, msg, action = fed.JobRefused, ack.Refused, ack.Reason, ActionRefused
	default:
		state, action = fed.JobQueued, ActionSent
	}
	s.cfg.Audit(researcher, action, job.ID, map[string]any{"node": p.Node, "dataset": p.Dataset, "permit": p.ID, "refused": refused, "reason": msg})
	s.evMu.Lock()
	defer s.evMu.Unlock()
	// An event may have come before the acknowledgement: it wins.
	if _, err := s.db.Exec(context.WithoutCancel(ctx), `UPDATE job_nodes SET state = ?, refused = ?, message = ?, updated_at = ? WHERE job_id = ? AND node_id = ? AND (state = 'sent' OR ? <> 'queued')`,
		state, refused, msg, ms(s.cfg.Now()), job.ID, p.Node, state); err != nil {
		s.cfg.Log.Error("job state not stored", "job", job.ID, "node", p.Node, "err", err)
	}
	s.changed(job.ID)
}

// terminal reports whether a node's state is final.
func terminal(state string) bool {
	switch state {
	case fed.JobSucceeded, fed.JobFailed, fed.JobCancelled, fed.JobKilled, fed.JobRefused:
		return true
	}
	return false
}

// overall is a job's state from its nodes'.
func overall(j *Job) string {
	if len(j.Nodes) == 0 {
		return fed.JobFailed
	}
	counts := map[string]int{}
	for _, n := range j.Nodes {
		counts[n.State]++
	}
	if len(counts) == 1 {
		// Every node in one state: the job's (sent, until a node
		// answers, shows as queued).
		for st := range counts {
			if st == "sent" {
				return fed.JobQueued
			}
			return st
		}
	}
	switch {
	case counts[fed.JobRunning] > 0:
		return fed.JobRunning
	case counts["sent"] > 0 || counts[fed.JobQueued] > 0:
		return fed.JobQueued
	case counts[fed.JobHeld] > 0:
		return fed.JobHeld
	case counts[fed.JobSucceeded] == len(j.Nodes):
		return fed.JobSucceeded
	case j.Cancelled:
		return fed.JobCancelled
	case counts[fed.JobRefused] == len(j.Nodes):
		return fed.JobRefused
	default:
		return fed.JobFailed
	}
}

// load reads a job without checking who asks.
func (s *Service) load(ctx context.Context, id string) (*Job, error) {
	j := &Job{ID: id}
	var spec string
	var created, cancelled int64
	err := s.db.QueryRow(ctx, `SELECT researcher, name, spec, tool_id, cancelled, created_at FROM jobs WHERE id = ?`, id).
		Scan(&j.Researcher, &j.Name, &spec, &j.Tool, &cancelled, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: job %s", ErrNotFound, trunc(id))
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(spec), &j.Spec); err != nil {
		return nil, err
	}
	j.Created, j.Cancelled = fromMS(created), cancelled != 0
	rows, err := s.db.Query(ctx, `SELECT node_id, dataset_id, permit_id, state, progress, exit_code, refused, message, log_lines, log_dropped, updated_at
		FROM job_nodes WHERE job_id = ? ORDER BY node_id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var n NodeState
		var code sql.NullInt64
		var up int64
		if err := rows.Scan(&n.Node, &n.Dataset, &n.Permit, &n.State, &n.Progress, &code, &n.Refused, &n.Message, &n.LogLines, &n.LogDropped, &up); err != nil {
			return nil, err
		}
		if code.Valid {
			c := int(code.Int64)
			n.ExitCode = &c
		}
		n.Updated = fromMS(up)
		j.Nodes = append(j.Nodes, n)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	outs, err := s.outputs(ctx, id)
	if err != nil {
		return nil, err
	}
	for i := range j.Nodes {
		for _, o := range outs {
			if o.Node == j.Nodes[i].Node {
				j.Nodes[i].Outputs = append(j.Nodes[i].Outputs, o)
			}
		}
	}
	j.State = overall(j)
	return j, nil
}

// visible loads a job actor may see: the researcher's own, or any for
// an admin; others are told it does not exist.
func (s *Service) visible(ctx context.Context, actor Actor, id string) (*Job, error) {
	j, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.Researcher != actor.ID && !actor.Admin {
		return nil, fmt.Errorf("%w: job %s", ErrNotFound, trunc(id))
	}
	return j, nil
}

// Get returns a job with its state per node.
func (s *Service) Get(ctx context.Context, actor Actor, id string) (*Job, error) {
	return s.visible(ctx, actor, id)
}

// List returns actor's jobs (an admin's: every job), newest first.
func (s *Service) List(ctx context.Context, actor Actor) ([]*Job, error) {
	q, args := `SELECT id FROM jobs WHERE researcher = ? ORDER BY created_at DESC, id LIMIT 500`, []any{actor.ID}
	if actor.Admin {
		q, args = `SELECT id FROM jobs ORDER BY created_at DESC, id LIMIT 500`, nil
	}
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := []*Job{}
	for _, id := range ids {
		j, err := s.load(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// Cancel asks every node of the job that has not finished to stop it.
func (s *Service) Cancel(ctx context.Context, actor Actor, id string) (*Job, error) {
	j, err := s.visible(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.db.Exec(ctx, `UPDATE jobs SET cancelled = ? WHERE id = ?`, ms(s.cfg.Now()), id); err != nil {
		return nil, err
	}
	if err := s.cfg.Audit(actor.ID, ActionCancelled, id, nil); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	for _, n := range j.Nodes {
		if terminal(n.State) || n.State == fed.JobHeld {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ack fed.JobAck
			err := s.cfg.Send(ctx, n.Node, fed.TaskJobCancel, fed.JobCancelBody{Job: id, Reason: "cancelled by " + actor.ID}, &ack)
			if err != nil {
				s.cfg.Log.Warn("job cancel not delivered", "job", id, "node", n.Node, "err", err)
				return
			}
			if ack.Accepted {
				s.evMu.Lock()
				// A node that never started it: cancelled now; a running
				// one reports its end as an event.
				s.db.Exec(context.WithoutCancel(ctx), `UPDATE job_nodes SET state = ?, updated_at = ? WHERE job_id = ? AND node_id = ? AND state IN ('sent', 'queued')`,
					fed.JobCancelled, ms(s.cfg.Now()), id, n.Node)
				s.evMu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.changed(id)
	return s.load(ctx, id)
}

// Logs returns the released log lines of a job after line id after
// (0: from the start), at most limit (default 1000), optionally of one
// node.
func (s *Service) Logs(ctx context.Context, actor Actor, id, node string, after int64, limit int) ([]LogLine, error) {
	if _, err := s.visible(ctx, actor, id); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 10000 {
		limit = 1000
	}
	q := `SELECT id, node_id, line, created_at FROM job_logs WHERE job_id = ? AND id > ?`
	args := []any{id, after}
	if node != "" {
		q += ` AND node_id = ?`
		args = append(args, node)
	}
	q += fmt.Sprintf(` ORDER BY id LIMIT %d`, limit)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []LogLine{}
	for rows.Next() {
		var l LogLine
		var c int64
		if err := rows.Scan(&l.ID, &l.Node, &l.Line, &c); err != nil {
			return nil, err
		}
		l.Time = fromMS(c)
		out = append(out, l)
	}
	return out, rows.Err()
}

func (s *Service) outputs(ctx context.Context, id string) ([]OutputInfo, error) {
	rows, err := s.db.Query(ctx, `SELECT node_id, name, size, sha256, created_at FROM job_outputs WHERE job_id = ? ORDER BY node_id, name`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []OutputInfo{}
	for rows.Next() {
		var o OutputInfo
		var c int64
		if err := rows.Scan(&o.Node, &o.Name, &o.Size, &o.SHA256, &c); err != nil {
			return nil, err
		}
		o.Received = fromMS(c)
		out = append(out, o)
	}
	return out, rows.Err()
}

// Outputs lists a job's released outputs.
func (s *Service) Outputs(ctx context.Context, actor Actor, id string) ([]OutputInfo, error) {
	if _, err := s.visible(ctx, actor, id); err != nil {
		return nil, err
	}
	return s.outputs(ctx, id)
}

// Output returns one released output and its bytes, checked against its
// SHA-256 again.
func (s *Service) Output(ctx context.Context, actor Actor, id, node, name string) (OutputInfo, []byte, error) {
	if _, err := s.visible(ctx, actor, id); err != nil {
		return OutputInfo{}, nil, err
	}
	o := OutputInfo{Node: node, Name: name}
	var data []byte
	var c int64
	err := s.db.QueryRow(ctx, `SELECT size, sha256, data, created_at FROM job_outputs WHERE job_id = ? AND node_id = ? AND name = ?`, id, node, name).
		Scan(&o.Size, &o.SHA256, &data, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return o, nil, fmt.Errorf("%w: output %s of node %s", ErrNotFound, trunc(name), trunc(node))
	}
	if err != nil {
		return o, nil, err
	}
	o.Received = fromMS(c)
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != o.SHA256 {
		return o, nil, fmt.Errorf("jobs: output %s of %s does not match its SHA-256", name, node)
	}
	return o, data, nil
}

// Event takes a node's JobEvent, whose signature the caller checked
// (ev.Node is the signer). Events out of order or of a job the node is
// not part of are dropped; logs and outputs are bounded.
func (s *Service) Event(ctx context.Context, ev fed.JobEvent) error {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	var seq int64
	var state string
	var lines, dropped int
	var outBytes int64
	var researcher string
	err := s.db.QueryRow(ctx, `SELECT n.seq, n.state, n.log_lines, n.log_dropped, n.output_bytes, j.researcher FROM job_nodes n JOIN jobs j ON j.id = n.job_id
		WHERE n.job_id = ? AND n.node_id = ?`, ev.Job, ev.Node).Scan(&seq, &state, &lines, &dropped, &outBytes, &researcher)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: node %s has no job %s", ErrNotFound, trunc(ev.Node), trunc(ev.Job))
	}
	if err != nil {
		return err
	}
	if ev.Seq <= seq {
		return fmt.Errorf("%w: event %d of job %s at %s is not after %d", ErrConflict, ev.Seq, ev.Job, ev.Node, seq)
	}
	now := s.cfg.Now()
	newState := state
	switch ev.State {
	case fed.JobQueued, fed.JobRunning, fed.JobSucceeded, fed.JobFailed, fed.JobCancelled, fed.JobKilled, fed.JobRefused, fed.JobHeld:
		newState = ev.State
	case "":
	default:
		return invalid("unknown job state %q", trunc(ev.State))
	}
	progress := ev.Progress
	if progress > 1 || progress < -1 || progress != progress {
		progress = -1
	}
	var outErr error
	err = s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		keep := ev.Log
		if room := s.cfg.MaxLogLines - lines; len(keep) > room {
			dropped += len(keep) - max(room, 0)
			keep = keep[:max(room, 0)]
		}
		for _, l := range keep {
			if len(l) > 4096 {
				l = l[:4096]
			}
			if _, err := tx.Exec(ctx, `INSERT INTO job_logs (job_id, node_id, line, created_at) VALUES (?, ?, ?, ?)`, ev.Job, ev.Node, strings.ToValidUTF8(l, "?"), ms(now)); err != nil {
				return err
			}
		}
		lines += len(keep)
		if ev.Output != nil {
			n, err := s.chunk(ctx, tx, ev, outBytes, now, researcher)
			if err != nil {
				outErr = err
			}
			outBytes += n
		}
		var code any
		if ev.ExitCode != nil {
			code = *ev.ExitCode
		}
		msg := ev.Message
		if len(msg) > 1000 {
			msg = msg[:1000]
		}
		// A negative progress (unknown, as log and output events carry)
		// keeps the last one known.
		_, err := tx.Exec(ctx, `UPDATE job_nodes SET seq = ?, state = ?, progress = CASE WHEN ? < 0 THEN progress ELSE ? END, exit_code = COALESCE(?, exit_code), message = CASE WHEN ? = '' THEN message ELSE ? END,
			log_lines = ?, log_dropped = ?, output_bytes = ?, updated_at = ? WHERE job_id = ? AND node_id = ?`,
			ev.Seq, newState, progress, progress, code, msg, msg, lines, dropped, outBytes, ms(now), ev.Job, ev.Node)
		return err
	})
	if err != nil {
		return err
	}
	if newState != state && terminal(newState) {
		s.cfg.Audit(ev.Node, ActionFinished, ev.Job, map[string]any{"node": ev.Node, "state": newState, "exit_code": ev.ExitCode, "message": ev.Message})
	}
	s.changed(ev.Job)
	return outErr
}

// chunk takes one output chunk: it must continue the output where the
// last one ended; the last one completes it, checked against its size
// and SHA-256. It returns the bytes it took.
func (s *Service) chunk(ctx context.Context, tx *sqldb.Tx, ev fed.JobEvent, used int64, now time.Time, researcher string) (int64, error) {
	c := ev.Output
	key := ev.Job + "\x00" + ev.Node + "\x00" + c.Name
	s.mu.Lock()
	defer s.mu.Unlock()
	reject := func(why string) (int64, error) {
		delete(s.partial, key)
		s.cfg.Audit(ev.Node, ActionOutputRejected, ev.Job, map[string]any{"node": ev.Node, "name": c.Name, "reason": why})
		return 0, invalid("output %s of job %s at %s: %s", trunc(c.Name), ev.Job, ev.Node, why)
	}
	if !ValidOutputName(c.Name) {
		return reject("not a valid output name")
	}
	if len(c.Data) > fed.MaxOutputChunk {
		return reject("a chunk larger than the largest allowed")
	}
	buf := s.partial[key]
	if buf == nil {
		if c.Offset != 0 {
			return reject("a chunk that does not start the output")
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM job_outputs WHERE job_id = ? AND node_id = ?`, ev.Job, ev.Node).Scan(&n); err != nil {
			return 0, err
		}
		if n >= s.cfg.MaxOutputs {
			return reject("more outputs than the hub keeps for one job and node")
		}
		buf = &bytes.Buffer{}
		s.partial[key] = buf
	}
	if c.Offset != int64(buf.Len()) {
		return reject("a chunk out of order")
	}
	if used+int64(len(c.Data)) > s.cfg.MaxOutputBytes {
		return reject(fmt.Sprintf("more output than the hub keeps for one job and node (%d bytes)", s.cfg.MaxOutputBytes))
	}
	buf.Write(c.Data)
	if !c.Last {
		return int64(len(c.Data)), nil
	}
	delete(s.partial, key)
	sum := sha256.Sum256(buf.Bytes())
	if c.Size != int64(buf.Len()) || !strings.EqualFold(hex.EncodeToString(sum[:]), c.SHA256) {
		s.cfg.Audit(ev.Node, ActionOutputRejected, ev.Job, map[string]any{"node": ev.Node, "name": c.Name, "reason": "size or SHA-256 mismatch"})
		return 0, invalid("output %s of job %s at %s does not match its size or SHA-256", c.Name, ev.Job, ev.Node)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM job_outputs WHERE job_id = ? AND node_id = ? AND name = ?`, ev.Job, ev.Node, c.Name); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO job_outputs (job_id, node_id, name, size, sha256, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		ev.Job, ev.Node, c.Name, c.Size, hex.EncodeToString(sum[:]), buf.Bytes(), ms(now)); err != nil {
		return 0, err
	}
	if err := s.cfg.Audit(ev.Node, ActionOutput, ev.Job, map[string]any{"node": ev.Node, "name": c.Name, "size": c.Size, "sha256": hex.EncodeToString(sum[:]), "researcher": researcher}); err != nil {
		return 0, err
	}
	return int64(len(c.Data)), nil
}
