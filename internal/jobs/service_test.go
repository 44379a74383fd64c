package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
	"github.com/mosaic-imaging/mosaic/internal/sqldb/sqltest"
)

// engines runs fn on SQLite and on PostgreSQL.
func engines(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "hub.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, sqltest.PostgresURL(t)) })
}

// world is a Service with permits in memory and a sender that records
// what it sends and answers as told.
type world struct {
	svc     *Service
	permits map[string]Permit
	orgs    map[string]string
	mu      sync.Mutex
	sent    []fed.JobBody
	answer  func(node string, kind fed.TaskKind) (fed.JobAck, error)
	audits  []string
}

func newWorld(t *testing.T, dsn string, cfg Config) *world {
	t.Helper()
	db, err := sqldb.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &world{permits: map[string]Permit{}, orgs: map[string]string{"alma": "north", "bert": "south", "carl": "south"}}
	w.answer = func(string, fed.TaskKind) (fed.JobAck, error) { return fed.JobAck{Accepted: true}, nil }
	cfg.DB = db
	cfg.Permit = func(_ context.Context, id, user string) (Permit, error) {
		p, ok := w.permits[id]
		if !ok || p.Researcher != user {
			return Permit{}, errors.New("not found")
		}
		return p, nil
	}
	cfg.Send = func(_ context.Context, node string, kind fed.TaskKind, body any, ack *fed.JobAck) error {
		a, err := w.answer(node, kind)
		if err != nil {
			return err
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if b, ok := body.(fed.JobBody); ok {
			w.sent = append(w.sent, b)
			a.Job = b.Job
		}
		if b, ok := body.(fed.JobCancelBody); ok {
			a.Job = b.Job
		}
		a.Node = node
		*ack = a
		return nil
	}
	cfg.Organisation = func(_ context.Context, u string) (string, error) { return w.orgs[u], nil }
	cfg.Audit = func(actor, action, subject string, _ map[string]any) error {
		w.mu.Lock()
		w.audits = append(w.audits, action)
		w.mu.Unlock()
		return nil
	}
	if w.svc, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return w
}

var rosa = Actor{ID: "rosa"}

func (w *world) tool(t *testing.T) *Tool {
	t.Helper()
	ctx := context.Background()
	prog := []byte("#!/bin/sh\necho hi\n")
	tl, err := w.svc.RegisterTool(ctx, rosa, ToolInput{Name: "hi", Kind: KindProcess, Digest: Digest(prog), Program: prog})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alma", "bert"} {
		if tl, err = w.svc.ReviewTool(ctx, Actor{ID: u}, tl.ID, "approve", ""); err != nil {
			t.Fatal(err)
		}
	}
	if tl.State != ToolApproved {
		t.Fatalf("tool %s", tl.State)
	}
	return tl
}

func (w *world) submit(t *testing.T, nodes ...string) *Job {
	t.Helper()
	tl := w.tool(t)
	var ids, ds []string
	for _, n := range nodes {
		id := "pm-" + n
		w.permits[id] = Permit{ID: id, Researcher: "rosa", Node: n, Dataset: "lung", Snapshot: "s", Operations: []string{"process"}, Expires: time.Now().Add(time.Hour), Token: "tok-" + n}
		ids = append(ids, id)
		ds = append(ds, n+"/lung")
	}
	j, err := w.svc.Submit(context.Background(), rosa, Spec{JobName: "j", Kind: KindProcess, Image: tl.Digest, DatasetsList: ds, Permits: ids})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestEvents: events of one job at one node are taken in order only;
// outputs are assembled from chunks in order and checked against their
// size and SHA-256; logs and outputs are bounded; another node's events
// for the job are refused.
func TestEvents(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn, Config{MaxLogLines: 3, MaxOutputBytes: 1000, MaxOutputs: 2})
		ctx := context.Background()
		j := w.submit(t, "north", "south")
		if j.State != fed.JobQueued || len(w.sent) != 2 || w.sent[0].Permit == "" {
			t.Fatalf("submitted %+v, sent %d", j, len(w.sent))
		}
		ev := func(node string, seq int64, e fed.JobEvent) error {
			e.Node, e.Job, e.Seq = node, j.ID, seq
			return w.svc.Event(ctx, e)
		}
		if err := ev("north", 5, fed.JobEvent{State: fed.JobRunning, Progress: 0.5, Log: []string{"a", "b"}}); err != nil {
			t.Fatal(err)
		}
		if err := ev("north", 5, fed.JobEvent{Log: []string{"repeat"}}); !errors.Is(err, ErrConflict) {
			t.Errorf("a repeated seq: %v", err)
		}
		if err := ev("north", 4, fed.JobEvent{State: fed.JobSucceeded}); !errors.Is(err, ErrConflict) {
			t.Errorf("an older seq: %v", err)
		}
		if err := ev("east", 1, fed.JobEvent{State: fed.JobSucceeded}); !errors.Is(err, ErrNotFound) {
			t.Errorf("a node not in the job: %v", err)
		}
		if err := ev("north", 6, fed.JobEvent{Progress: -1, Log: []string{"c", "d", "e"}}); err != nil {
			t.Fatal(err)
		}
		got, _ := w.svc.Get(ctx, rosa, j.ID)
		if got.State != fed.JobRunning || got.Nodes[0].LogLines != 3 || got.Nodes[0].LogDropped != 2 || got.Nodes[0].Progress != 0.5 {
			t.Errorf("after logs: %+v", got.Nodes[0])
		}
		logs, _ := w.svc.Logs(ctx, rosa, j.ID, "", 0, 0)
		if len(logs) != 3 || logs[2].Line != "c" {
			t.Errorf("logs %+v", logs)
		}
		data := []byte(strings.Repeat("x", 700))
		sum := sha256.Sum256(data)
		hexsum := hex.EncodeToString(sum[:])
		chunk := func(seq int64, name string, off int, b []byte, last bool, size int, digest string) error {
			c := &fed.OutputChunk{Name: name, Offset: int64(off), Data: b, Last: last}
			if last {
				c.Size, c.SHA256 = int64(size), digest
			}
			return ev("north", seq, fed.JobEvent{Output: c})
		}
		if err := chunk(7, "a.csv", 0, data[:300], false, 0, ""); err != nil {
			t.Fatal(err)
		}
		if err := chunk(8, "a.csv", 500, data[300:], true, 700, hexsum); !errors.Is(err, ErrInvalid) {
			t.Errorf("a chunk out of order: %v", err)
		}
		// Started again, whole.
		chunk(9, "a.csv", 0, data[:300], false, 0, "")
		if err := chunk(10, "a.csv", 300, data[300:], true, 700, hexsum); err != nil {
			t.Fatal(err)
		}
		if err := chunk(11, "bad.csv", 0, []byte("abc"), true, 3, hexsum); !errors.Is(err, ErrInvalid) {
			t.Errorf("a wrong digest: %v", err)
		}
		if err := chunk(12, "../x", 0, []byte("abc"), true, 3, hexsum); !errors.Is(err, ErrInvalid) {
			t.Errorf("a path as a name: %v", err)
		}
		if err := chunk(13, "big.csv", 0, data, false, 0, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("past the bytes per node: %v", err)
		}
		_, b, err := w.svc.Output(ctx, rosa, j.ID, "north", "a.csv")
		if err != nil || string(b) != string(data) {
			t.Errorf("output: %v, %d bytes", err, len(b))
		}
		if _, _, err := w.svc.Output(ctx, Actor{ID: "eve"}, j.ID, "north", "a.csv"); !errors.Is(err, ErrNotFound) {
			t.Errorf("another's output: %v", err)
		}
		ev("north", 20, fed.JobEvent{State: fed.JobSucceeded, ExitCode: new(int)})
		ev("south", 1, fed.JobEvent{State: fed.JobFailed, Message: "exited with code 1"})
		got, _ = w.svc.Get(ctx, rosa, j.ID)
		if got.State != fed.JobFailed || got.Nodes[1].Message != "exited with code 1" || len(got.Nodes[0].Outputs) != 1 {
			t.Errorf("at the end: %+v", got)
		}
		if !strings.Contains(strings.Join(w.audits, " "), ActionFinished) || !strings.Contains(strings.Join(w.audits, " "), ActionOutputRejected) {
			t.Errorf("audits %v", w.audits)
		}
	})
}

// TestSubmitAcks: refusals and undelivered tasks are each node's state;
// an event that came before the acknowledgement is not overwritten.
func TestSubmitAcks(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn, Config{})
		w.answer = func(node string, kind fed.TaskKind) (fed.JobAck, error) {
			switch node {
			case "north":
				return fed.JobAck{Refused: fed.RefusedTool, Reason: "not on the allow-list"}, nil
			case "south":
				return fed.JobAck{}, errors.New("node offline")
			}
			return fed.JobAck{Accepted: true}, nil
		}
		j := w.submit(t, "north", "south", "west")
		states := map[string]NodeState{}
		for _, n := range j.Nodes {
			states[n.Node] = n
		}
		if s := states["north"]; s.State != fed.JobRefused || s.Refused != fed.RefusedTool || s.Message != "not on the allow-list" {
			t.Errorf("north %+v", s)
		}
		if s := states["south"]; s.State != fed.JobFailed || !strings.Contains(s.Message, "offline") {
			t.Errorf("south %+v", s)
		}
		if s := states["west"]; s.State != fed.JobQueued {
			t.Errorf("west %+v", s)
		}
		// Cancel: only west is asked.
		w.sent = nil
		j, err := w.svc.Cancel(context.Background(), rosa, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range j.Nodes {
			if n.Node == "west" && n.State != fed.JobCancelled {
				t.Errorf("west after cancel: %+v", n)
			}
		}
	})
}

// TestToolReviews: approvals need distinct people of distinct
// organisations other than the submitter; a rejection blocks it; bad
// registrations are refused.
func TestToolReviews(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		w := newWorld(t, dsn, Config{})
		ctx := context.Background()
		prog := []byte("x")
		for _, in := range []ToolInput{
			{Name: "", Kind: KindProcess, Digest: Digest(prog)},
			{Name: "a", Kind: "vm", Digest: Digest(prog)},
			{Name: "a", Kind: KindProcess, Digest: "sha256:abc"},
			{Name: "a", Kind: KindProcess, Digest: Digest([]byte("y")), Program: prog},
			{Name: "a", Kind: KindContainer, Digest: Digest(prog), Program: prog},
		} {
			if _, err := w.svc.RegisterTool(ctx, rosa, in); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: %v", in, err)
			}
		}
		tl, err := w.svc.RegisterTool(ctx, rosa, ToolInput{Name: "a", Kind: KindProcess, Digest: Digest(prog), Program: prog})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.RegisterTool(ctx, rosa, ToolInput{Name: "b", Kind: KindProcess, Digest: Digest(prog)}); !errors.Is(err, ErrConflict) {
			t.Errorf("the same digest twice: %v", err)
		}
		if _, err := w.svc.ReviewTool(ctx, rosa, tl.ID, "approve", ""); !errors.Is(err, ErrForbidden) {
			t.Errorf("own review: %v", err)
		}
		review := func(u, d, c string) *Tool {
			t.Helper()
			tl, err := w.svc.ReviewTool(ctx, Actor{ID: u}, tl.ID, d, c)
			if err != nil {
				t.Fatal(err)
			}
			return tl
		}
		review("bert", "approve", "")
		review("bert", "approve", "again") // one person, one review
		if got := review("carl", "approve", ""); got.State != ToolPending || len(got.Reviews) != 2 {
			t.Errorf("two of one organisation: %s, %d reviews", got.State, len(got.Reviews))
		}
		if got := review("alma", "approve", ""); got.State != ToolApproved {
			t.Errorf("two organisations: %s", got.State)
		}
		if _, err := w.svc.ReviewTool(ctx, Actor{ID: "alma"}, tl.ID, "reject", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("a rejection without a comment: %v", err)
		}
		if got := review("alma", "reject", "it phones home"); got.State != ToolRejected {
			t.Errorf("after a rejection: %s", got.State)
		}
		l, _ := w.svc.Tools(ctx)
		if len(l) != 1 || l[0].Program != nil {
			t.Errorf("list %+v", l)
		}
		raw, _ := json.Marshal(l[0])
		if strings.Contains(string(raw), `"program"`) {
			t.Errorf("the list carries programs: %s", raw)
		}
	})
}
