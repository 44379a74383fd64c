package hub_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/executor"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/jobs"
	"github.com/mosaic-imaging/mosaic/internal/node"
	"github.com/mosaic-imaging/mosaic/internal/permit"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
)

// fakeExec stands in for an executor: run decides what a run does.
type fakeExec struct {
	kind executor.Kind
	run  func(ctx context.Context, spec executor.Spec, log func(string)) (executor.Result, error)
	runs atomic.Int32
}

func (f *fakeExec) Kind() executor.Kind { return f.kind }
func (f *fakeExec) Run(ctx context.Context, spec executor.Spec, log func(string)) (executor.Result, error) {
	f.runs.Add(1)
	return f.run(ctx, spec, log)
}

// jobEnv is a hub and one node over NATS, with a researcher, an admin
// and two reviewers of two organisations, and an approved process tool.
type jobEnv struct {
	t                  *testing.T
	h                  *hub.Hub
	url                string
	n                  *node.Node
	researcher, resTok string
	adminTok           string
	program            []byte
	digest             string
	exec               *fakeExec
	verdicts           map[string]airlock.Decision // by output name; release when absent
	tokens             map[string]string           // permit id: its token
}

func newJobEnv(t *testing.T, ncfg node.Config) *jobEnv {
	t.Helper()
	e := &jobEnv{t: t, researcher: "rosa", verdicts: map[string]airlock.Decision{}, tokens: map[string]string{}}
	e.program = []byte("#!/bin/sh\necho hello from the job\necho 'x,n' > /out/result.csv\n")
	e.digest = jobs.Digest(e.program)
	if ncfg.Jobs.Kind == "" {
		ncfg.Jobs.Kind = executor.Process
	}
	if ncfg.Jobs.AllowPrograms == nil {
		ncfg.Jobs.AllowPrograms = []string{e.digest}
	}
	h, srv := tlsHub(t, hub.Config{RevocationInterval: 200 * time.Millisecond})
	e.h, e.url = h, srv.URL
	e.n = enrolNode(t, h, srv, "north", ncfg)
	ctx := context.Background()
	for _, ds := range []string{"lung", "brain"} {
		if _, err := e.n.CreateDataset(ctx, index.Dataset{ID: ds, Title: ds, AccessRights: "RESTRICTED", Tier: 3}); err != nil {
			t.Fatal(err)
		}
	}
	e.exec = &fakeExec{kind: executor.Process, run: func(ctx context.Context, spec executor.Spec, log func(string)) (executor.Result, error) {
		log("hello from the job")
		os.WriteFile(filepath.Join(spec.Output, "result.csv"), []byte("x,n\na,12\n"), 0o644)
		return executor.Result{ExitCode: 0, Duration: time.Millisecond}, nil
	}}
	e.n.SetExecutor(e.exec)
	e.n.SetOutputCheck(func(_ airlock.Policy, _ airlock.Permissions, o airlock.Output) airlock.Verdict {
		d, ok := e.verdicts[o.Name]
		if !ok {
			d = airlock.Release
		}
		return airlock.Verdict{Decision: d, Findings: []airlock.Finding{{Check: "test", Result: d, Detail: "decided by the test"}}}
	})
	startLink(t, e.n)
	if !online(t, h, "north", 10*time.Second) {
		t.Fatal("the node did not come online")
	}
	// The node must have heard the hub's revocation list before it
	// honours any permit.
	time.Sleep(500 * time.Millisecond)
	for _, u := range []struct{ id, role, org string }{{"rosa", "researcher", "uni"}, {"root", "admin", "hub"}, {"alma", "researcher", "north-hospital"}, {"bert", "researcher", "south-hospital"}, {"carl", "researcher", "south-hospital"}} {
		if err := h.AddUser(ctx, u.id, "password-"+u.id, u.role); err != nil {
			t.Fatal(err)
		}
		if err := h.SetOrganisation(ctx, u.id, u.org); err != nil {
			t.Fatal(err)
		}
	}
	e.resTok = e.token("rosa")
	e.adminTok = e.token("root")
	return e
}

func (e *jobEnv) token(user string) string {
	tok, err := e.h.NewUserToken(context.Background(), user, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// api calls the hub's API and decodes a 2xx answer into out.
func (e *jobEnv) api(token, method, path string, body, out any) (int, string) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// permit grants the researcher a permit at north.
func (e *jobEnv) permit(id, dataset string, ops []permit.Op, expires time.Time) string {
	e.t.Helper()
	now := time.Now()
	nbf := now.Add(-time.Hour)
	tok, err := e.h.GrantTestPermit(context.Background(), permit.Claims{ID: id, Researcher: e.researcher, Node: "north", Dataset: dataset,
		Snapshot: "snap-" + id, Operations: ops, Purpose: "test", IssuedAt: nbf.Unix(), NotBefore: nbf.Unix(), Expires: expires.Unix()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.tokens[id] = tok
	// The permit's snapshot, frozen at the node as the access road does.
	if _, err := e.n.MakeSnapshot(context.Background(), fed.SnapshotBody{Snapshot: "snap-" + id, Request: "req-" + id, Dataset: dataset,
		Query: json.RawMessage(`{"operand":"AND","children":[]}`)}); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *jobEnv) processPermit(id string) string {
	return e.permit(id, "lung", []permit.Op{permit.OpProcess}, time.Now().Add(time.Hour))
}

// approvedTool registers the program and has two people of two
// organisations approve it.
func (e *jobEnv) approvedTool() jobs.Tool {
	e.t.Helper()
	var tool jobs.Tool
	if st, b := e.api(e.resTok, "POST", "/api/v1/tools", jobs.ToolInput{Name: "hello", Kind: "process", Digest: e.digest, Description: "says hello", Program: e.program}, &tool); st != 201 {
		e.t.Fatalf("register: %d %s", st, b)
	}
	for _, u := range []string{"alma", "bert"} {
		if st, b := e.api(e.token(u), "POST", "/api/v1/tools/"+tool.ID+"/reviews", map[string]string{"decision": "approve", "comment": "read it"}, &tool); st != 200 {
			e.t.Fatalf("review by %s: %d %s", u, st, b)
		}
	}
	if tool.State != jobs.ToolApproved {
		e.t.Fatalf("tool after two approvals of two organisations: %s", tool.State)
	}
	return tool
}

func (e *jobEnv) spec(permits ...string) jobs.Spec {
	return jobs.Spec{JobName: "hello", Kind: "process", Image: e.digest, CommandArgs: []string{"--n", "1"}, DatasetsList: []string{"lung"},
		Env: []jobs.EnvVar{{Name: "ALPHA", Value: "0.05"}}, Resources: jobs.Resources{Flavor: "no-gpu"}, Permits: permits}
}

func (e *jobEnv) submit(spec jobs.Spec) jobs.Job {
	e.t.Helper()
	var j jobs.Job
	if st, b := e.api(e.resTok, "POST", "/api/v1/jobs", spec, &j); st != 201 {
		e.t.Fatalf("submit: %d %s", st, b)
	}
	return j
}

// wait polls the job until ok says it is done.
func (e *jobEnv) wait(id string, ok func(j jobs.Job) bool) jobs.Job {
	e.t.Helper()
	var j jobs.Job
	if err := testutil.Poll(15*time.Second, func() error {
		if st, b := e.api(e.resTok, "GET", "/api/v1/jobs/"+id, nil, &j); st != 200 {
			return fmt.Errorf("get: %d %s", st, b)
		}
		if !ok(j) {
			return fmt.Errorf("job %s: %+v", j.State, j.Nodes)
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return j
}

// ask sends a job task straight to the node, past the hub's checks, to
// see the node's own.
func (e *jobEnv) ask(body fed.JobBody) fed.JobAck {
	e.t.Helper()
	var ack fed.JobAck
	if _, err := e.h.Ask(context.Background(), "north", fed.TaskJob, body, 10*time.Second, &ack); err != nil {
		e.t.Fatal(err)
	}
	if ack.Node != "north" || ack.Job != body.Job {
		e.t.Fatalf("ack %+v for job %s", ack, body.Job)
	}
	return ack
}

// body is a job task as the hub would send it, for permit id.
func (e *jobEnv) body(job, permitID string, spec jobs.Spec, tool jobs.Tool) fed.JobBody {
	e.t.Helper()
	raw, _ := json.Marshal(spec)
	traw, _ := json.Marshal(tool)
	return fed.JobBody{Job: job, Permit: e.tokens[permitID], Researcher: e.researcher, Spec: raw, Tool: traw}
}

// TestJobEndToEnd: a researcher registers a program, two people of two
// organisations approve it, and a job under a process permit runs at a
// real node over NATS: the hub sees it run, its released log line, its
// released output (assembled from chunks, SHA-256 checked), an output
// held at the node arriving once a person releases it, and a refused
// output reported by name.
func TestJobEndToEnd(t *testing.T) {
	e := newJobEnv(t, node.Config{})
	tool := e.approvedTool()
	big := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 kB: three chunks
	var seen executor.Spec
	e.exec.run = func(ctx context.Context, spec executor.Spec, log func(string)) (executor.Result, error) {
		seen = spec
		log("hello from the job")
		log("second line")
		os.WriteFile(filepath.Join(spec.Output, "result.csv"), []byte("x,n\na,12\n"), 0o644)
		os.WriteFile(filepath.Join(spec.Output, "model.bin"), big, 0o644)
		os.WriteFile(filepath.Join(spec.Output, "review.csv"), []byte("x,n\nb,3\n"), 0o644)
		os.WriteFile(filepath.Join(spec.Output, "rows.csv"), []byte("id\n1\n"), 0o644)
		return executor.Result{ExitCode: 0, Duration: time.Millisecond}, nil
	}
	e.verdicts["review.csv"] = airlock.Review
	e.verdicts["rows.csv"] = airlock.Refuse
	// A research table of the dataset (no patient column: the permit's
	// snapshot sees it whole), which the job finds at /data/tables.
	if _, err := e.n.PutTable(context.Background(), "lung", "outcomes", strings.NewReader("site,age\nA,61\nB,57\n"), nil); err != nil {
		t.Fatal(err)
	}
	var tableSeen string
	run := e.exec.run
	e.exec.run = func(ctx context.Context, spec executor.Spec, log func(string)) (executor.Result, error) {
		for _, m := range spec.Inputs {
			if m.Target == "/data" {
				b, _ := os.ReadFile(filepath.Join(m.Host, "tables", "outcomes.csv"))
				tableSeen = string(b)
			}
		}
		return run(ctx, spec, log)
	}
	p := e.processPermit("pm-e2e")
	j := e.submit(e.spec(p))
	if j.Tool != tool.ID || len(j.Nodes) != 1 || j.Nodes[0].Node != "north" {
		t.Fatalf("submitted: %+v", j)
	}
	j = e.wait(j.ID, func(j jobs.Job) bool { return j.State == fed.JobHeld })
	ns := j.Nodes[0]
	if ns.ExitCode == nil || *ns.ExitCode != 0 {
		t.Errorf("exit code %v", ns.ExitCode)
	}
	if !strings.Contains(ns.Message, "rows.csv") || !strings.Contains(ns.Message, "held") {
		t.Errorf("message %q does not name the refused and held outputs", ns.Message)
	}
	// What the executor was given: the program at /in, data at /data.
	if len(seen.Command) != 3 || seen.Command[0] != "/in/program" || seen.Env["ALPHA"] != "0.05" || len(seen.Inputs) != 2 {
		t.Errorf("executor spec %+v", seen)
	}
	if !strings.Contains(tableSeen, "A,61") || !strings.Contains(tableSeen, "B,57") {
		t.Errorf("the job's /data/tables/outcomes.csv: %q", tableSeen)
	}
	// Logs.
	var logs struct{ Lines []jobs.LogLine }
	if st, b := e.api(e.resTok, "GET", "/api/v1/jobs/"+j.ID+"/logs", nil, &logs); st != 200 || len(logs.Lines) != 2 || logs.Lines[0].Line != "hello from the job" {
		t.Errorf("logs: %d %s", st, b)
	}
	// Outputs: released ones only.
	var outs struct{ Outputs []jobs.OutputInfo }
	e.api(e.resTok, "GET", "/api/v1/jobs/"+j.ID+"/outputs", nil, &outs)
	names := map[string]jobs.OutputInfo{}
	for _, o := range outs.Outputs {
		names[o.Name] = o
	}
	if len(names) != 2 || names["result.csv"].Size != 9 || names["model.bin"].Size != int64(len(big)) {
		t.Fatalf("outputs %+v", outs.Outputs)
	}
	req, _ := http.NewRequest("GET", e.url+"/api/v1/jobs/"+j.ID+"/outputs/north/model.bin", nil)
	req.Header.Set("Authorization", "Bearer "+e.resTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(big)
	if !bytes.Equal(got, big) || resp.Header.Get("X-Content-SHA256") != hex.EncodeToString(sum[:]) {
		t.Errorf("model.bin: %d bytes, digest %s", len(got), resp.Header.Get("X-Content-SHA256"))
	}
	// Another researcher sees no such job.
	e.h.AddUser(context.Background(), "eve", "password-eve", "researcher")
	if st, _ := e.api(e.token("eve"), "GET", "/api/v1/jobs/"+j.ID, nil, nil); st != 404 {
		t.Errorf("another researcher's GET: %d, want 404", st)
	}
	// The held output arrives once a person releases it.
	if err := e.n.ReleaseJobOutput(context.Background(), j.ID, "review.csv"); err != nil {
		t.Fatal(err)
	}
	j = e.wait(j.ID, func(j jobs.Job) bool { return j.State == fed.JobSucceeded })
	if len(j.Nodes[0].Outputs) != 3 {
		t.Errorf("outputs after the release: %+v", j.Nodes[0].Outputs)
	}
	// The node's own record, on its API for admin tokens only.
	nsrv := httptest.NewServer(e.n.Handler())
	defer nsrv.Close()
	admin, _, _ := e.n.CreateToken(context.Background(), "admin", index.ScopeAdmin, "")
	reader, _, _ := e.n.CreateToken(context.Background(), "reader", index.ScopeRead, "")
	nodeGet := func(tok string, out any) int {
		req, _ := http.NewRequest("GET", nsrv.URL+"/api/v1/jobs/"+j.ID, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	if st := nodeGet(reader, nil); st != 403 {
		t.Errorf("the node's jobs API for a read token: %d", st)
	}
	var rec struct {
		Job     index.Job
		Outputs []index.JobOutput
	}
	if st := nodeGet(admin, &rec); st != 200 || rec.Job.State != fed.JobSucceeded || rec.Job.Permit != "pm-e2e" {
		t.Errorf("the node's record: %d %+v", st, rec.Job)
	}
	fate := map[string]string{}
	for _, o := range rec.Outputs {
		fate[o.Name] = o.State
	}
	if fate["result.csv"] != "released" || fate["rows.csv"] != "refused" || fate["review.csv"] != "released" {
		t.Errorf("the node's record of the outputs: %v", fate)
	}
	// The job's folder is gone at the node.
	if _, err := os.Stat(filepath.Join(e.n.Config().Data, "jobs", j.ID)); !os.IsNotExist(err) {
		t.Errorf("job folder left behind: %v", err)
	}
	// The admin sees it in every job's list; the page shows it.
	var all struct{ Jobs []jobs.Job }
	if st, _ := e.api(e.adminTok, "GET", "/api/v1/jobs", nil, &all); st != 200 || len(all.Jobs) != 1 {
		t.Errorf("admin list: %d %+v", st, all)
	}
	// The hub's audit log has the job's road.
	for _, a := range []string{"job-submitted", "job-sent", "job-finished", "job-output-received"} {
		if len(hubAudit(t, e.h, a)) == 0 {
			t.Errorf("no %s in the hub's audit log", a)
		}
	}
}

// hubAudit returns the hub's audit records of action.
func hubAudit(t *testing.T, h *hub.Hub, action string) []map[string]any {
	t.Helper()
	fh, err := os.Open(filepath.Join(h.Config().Data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []map[string]any
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		json.Unmarshal(sc.Bytes(), &rec)
		if rec["action"] == action {
			out = append(out, rec)
		}
	}
	return out
}

// TestJobFollowLogs: ?follow=1 streams the log lines as they come and
// ends when the job does.
func TestJobFollowLogs(t *testing.T) {
	e := newJobEnv(t, node.Config{})
	e.approvedTool()
	gate := make(chan struct{})
	e.exec.run = func(ctx context.Context, spec executor.Spec, log func(string)) (executor.Result, error) {
		log("first")
		<-gate
		log("second")
		return executor.Result{}, nil
	}
	j := e.submit(e.spec(e.processPermit("pm-follow")))
	req, _ := http.NewRequest("GET", e.url+"/api/v1/jobs/"+j.ID+"/logs?follow=1", nil)
	req.Header.Set("Authorization", "Bearer "+e.resTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || sc.Text() != "north: first" {
		t.Fatalf("first streamed line %q", sc.Text())
	}
	close(gate)
	if !sc.Scan() || sc.Text() != "north: second" {
		t.Fatalf("second streamed line %q", sc.Text())
	}
	done := make(chan bool)
	go func() { done <- !sc.Scan() }()
	select {
	case ended := <-done:
		if !ended {
			t.Errorf("a line after the last: %q", sc.Text())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end with the job")
	}
}

// TestJobRefusedAtNode: the node's own checks, each with a job sent
// straight to it past the hub's: no permit, an expired one, a revoked
// one, a view-only one, one for another dataset, another researcher's,
// a tool not approved, a tool not on the node's allow-list, and a node
// busy with as many jobs as it allows. Nothing runs.
func TestJobRefusedAtNode(t *testing.T) {
	e := newJobEnv(t, node.Config{MaxJobs: 1})
	tool := e.approvedTool()
	ctx := context.Background()
	good := e.processPermit("pm-good")
	expired := e.permit("pm-expired", "lung", []permit.Op{permit.OpProcess}, time.Now().Add(-time.Minute))
	view := e.permit("pm-view", "lung", []permit.Op{permit.OpView, permit.OpDownload}, time.Now().Add(time.Hour))
	brain := e.permit("pm-brain", "brain", []permit.Op{permit.OpProcess}, time.Now().Add(time.Hour))
	revoked := e.processPermit("pm-revoked")
	if err := e.n.RevokePermit(ctx, revoked, "withdrawn"); err != nil {
		t.Fatal(err)
	}
	// A permit whose snapshot the node never froze.
	now := time.Now()
	nosnapTok, err := e.h.GrantTestPermit(ctx, permit.Claims{ID: "pm-nosnap", Researcher: "rosa", Node: "north", Dataset: "lung", Snapshot: "snap-unknown",
		Operations: []permit.Op{permit.OpProcess}, Purpose: "test", IssuedAt: now.Unix(), NotBefore: now.Add(-time.Minute).Unix(), Expires: now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	e.tokens["pm-nosnap"] = nosnapTok
	pending := tool
	pending.State = jobs.ToolPending
	other := tool
	other.Digest = jobs.Digest([]byte("another program"))
	other.Program = []byte("another program")
	otherSpec := e.spec("pm-good")
	otherSpec.Image = other.Digest
	cases := []struct {
		name, code, reason string
		body               fed.JobBody
	}{
		{"no permit", fed.RefusedPermit, "no permit", func() fed.JobBody { b := e.body("job-none", good, e.spec(good), tool); b.Permit = ""; return b }()},
		{"forged permit", fed.RefusedPermit, "not valid", func() fed.JobBody { b := e.body("job-forged", good, e.spec(good), tool); b.Permit += "x"; return b }()},
		{"expired", fed.RefusedPermit, "expired", e.body("job-expired", expired, e.spec(expired), tool)},
		{"revoked", fed.RefusedPermit, "revoked", e.body("job-revoked", revoked, e.spec(revoked), tool)},
		{"view only", fed.RefusedPermit, "does not allow", e.body("job-view", view, e.spec(view), tool)},
		{"another dataset", fed.RefusedPermit, "does not name", e.body("job-brain", brain, e.spec(brain), tool)},
		{"another researcher", fed.RefusedPermit, "another researcher", func() fed.JobBody {
			b := e.body("job-other", good, e.spec(good), tool)
			b.Researcher = "eve"
			return b
		}()},
		{"snapshot not at the node", fed.RefusedPermit, "snapshot does not exist", e.body("job-nosnap", "pm-nosnap", e.spec("pm-nosnap"), tool)},
		{"tool not approved", fed.RefusedTool, "not approved", e.body("job-pending", good, e.spec(good), pending)},
		{"not on the allow-list", fed.RefusedTool, "allow-list", e.body("job-allow", good, otherSpec, other)},
		{"GPU flavor", fed.RefusedExecutor, "GPU", func() fed.JobBody {
			s := e.spec(good)
			s.Resources.Flavor = "small-gpu"
			return e.body("job-gpu", good, s, tool)
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ack := e.ask(c.body)
			if ack.Accepted || ack.Refused != c.code || !strings.Contains(ack.Reason, c.reason) {
				t.Errorf("ack %+v, want refused %s (%q)", ack, c.code, c.reason)
			}
		})
	}
	if n := e.exec.runs.Load(); n != 0 {
		t.Errorf("%d runs of refused jobs", n)
	}
	t.Run("busy", func(t *testing.T) {
		block := make(chan struct{})
		e.exec.run = func(ctx context.Context, spec executor.Spec, log func(string)) (executor.Result, error) {
			select {
			case <-block:
			case <-ctx.Done():
			}
			return executor.Result{}, nil
		}
		defer close(block)
		if ack := e.ask(e.body("job-first", good, e.spec(good), tool)); !ack.Accepted {
			t.Fatalf("first job: %+v", ack)
		}
		ack := e.ask(e.body("job-second", good, e.spec(good), tool))
		if ack.Accepted || ack.Refused != fed.RefusedBusy {
			t.Errorf("second job while the first runs at MaxJobs 1: %+v", ack)
		}
	})
	if refused := nodeAuditActions(t, filepath.Join(e.n.Config().Data, "audit.log"), "job-refused"); len(refused) < len(cases)+1 {
		t.Errorf("%d refusals in the node's audit log, want %d", len(refused), len(cases)+1)
	}
}

// TestJobRefusedAtHub: the hub refuses at submission a job without
// permits, with another's, a revoked, expired or view-only permit, a
// dataset no permit covers, an unapproved or unknown tool, and a tag
// rather than a digest; a dry run validates without sending.
func TestJobRefusedAtHub(t *testing.T) {
	e := newJobEnv(t, node.Config{})
	good := e.processPermit("pm-good")
	// Not approved yet: one approval, then two of one organisation.
	var tool jobs.Tool
	if st, b := e.api(e.resTok, "POST", "/api/v1/tools", jobs.ToolInput{Name: "hello", Kind: "process", Digest: e.digest, Program: e.program}, &tool); st != 201 {
		t.Fatalf("register: %d %s", st, b)
	}
	if st, _ := e.api(e.resTok, "POST", "/api/v1/tools/"+tool.ID+"/reviews", map[string]string{"decision": "approve"}, nil); st != 403 {
		t.Errorf("the submitter reviewed their own tool: %d", st)
	}
	refusedTool := func(why string) {
		t.Helper()
		if st, b := e.api(e.resTok, "POST", "/api/v1/jobs", e.spec(good), nil); st != 400 || !strings.Contains(b, "not approved") {
			t.Errorf("%s: %d %s", why, st, b)
		}
	}
	refusedTool("no review")
	e.api(e.token("bert"), "POST", "/api/v1/tools/"+tool.ID+"/reviews", map[string]string{"decision": "approve"}, &tool)
	refusedTool("one approval")
	e.api(e.token("carl"), "POST", "/api/v1/tools/"+tool.ID+"/reviews", map[string]string{"decision": "approve"}, &tool)
	if tool.State != jobs.ToolPending {
		t.Errorf("two approvals of one organisation: %s", tool.State)
	}
	refusedTool("two approvals of one organisation")
	e.api(e.token("alma"), "POST", "/api/v1/tools/"+tool.ID+"/reviews", map[string]string{"decision": "approve"}, &tool)
	if tool.State != jobs.ToolApproved {
		t.Fatalf("three approvals of two organisations: %s", tool.State)
	}
	view := e.permit("pm-view", "lung", []permit.Op{permit.OpView}, time.Now().Add(time.Hour))
	expired := e.permit("pm-expired", "lung", []permit.Op{permit.OpProcess}, time.Now().Add(-time.Minute))
	revoked := e.processPermit("pm-revoked")
	e.h.RevokeTestPermit(context.Background(), revoked)
	e.researcher = "alma"
	almas := e.processPermit("pm-almas")
	e.researcher = "rosa"
	for _, c := range []struct {
		name, want string
		spec       jobs.Spec
	}{
		{"no permits", "at least one", e.spec()},
		{"another's permit", "not one of yours", e.spec(almas)},
		{"unknown permit", "not one of yours", e.spec("pm-nope")},
		{"view only", "does not allow process", e.spec(view)},
		{"expired", "expired", e.spec(expired)},
		{"revoked", "revoked", e.spec(revoked)},
		{"dataset not listed", "datasetsList does not name", func() jobs.Spec { s := e.spec(good); s.DatasetsList = []string{"brain"}; return s }()},
		{"unknown tool", "not in the tool catalogue", func() jobs.Spec { s := e.spec(good); s.Image = jobs.Digest([]byte("x")); return s }()},
		{"image by tag", "by digest", func() jobs.Spec { s := e.spec(good); s.Kind, s.Image = "container", "alpine:latest"; return s }()},
		{"bad env", "environment variable", func() jobs.Spec { s := e.spec(good); s.Env = []jobs.EnvVar{{Name: "A=B"}}; return s }()},
	} {
		if st, b := e.api(e.resTok, "POST", "/api/v1/jobs", c.spec, nil); st != 400 || !strings.Contains(b, c.want) {
			t.Errorf("%s: %d %s, want 400 with %q", c.name, st, b, c.want)
		}
	}
	dry := e.spec(good)
	dry.DryRun = true
	var j jobs.Job
	if st, b := e.api(e.resTok, "POST", "/api/v1/jobs", dry, &j); st != 200 || j.State != "dry-run" {
		t.Errorf("dry run: %d %s", st, b)
	}
	var l struct{ Jobs []jobs.Job }
	e.api(e.resTok, "GET", "/api/v1/jobs", nil, &l)
	if len(l.Jobs) != 0 || e.exec.runs.Load() != 0 {
		t.Errorf("a refused or dry-run job was recorded or run: %d jobs, %d runs", len(l.Jobs), e.exec.runs.Load())
	}
	if st, _ := e.api("", "GET", "/api/v1/jobs", nil, nil); st != 401 {
		t.Errorf("without a token: %d", st)
	}
}

// TestJobCancel: a job that would run for ever is cancelled from the
// hub; the node stops it, reports it cancelled, and keeps serving.
func TestJobCancel(t *testing.T) {
	e := newJobEnv(t, node.Config{})
	e.approvedTool()
	started := make(chan struct{})
	e.exec.run = func(ctx context.Context, spec executor.Spec, log func(string)) (executor.Result, error) {
		close(started)
		<-ctx.Done()
		return executor.Result{Killed: "cancelled", ExitCode: -1}, nil
	}
	j := e.submit(e.spec(e.processPermit("pm-cancel")))
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the job did not start")
	}
	if st, b := e.api(e.resTok, "DELETE", "/api/v1/jobs/"+j.ID, nil, nil); st != 200 {
		t.Fatalf("cancel: %d %s", st, b)
	}
	j = e.wait(j.ID, func(j jobs.Job) bool { return j.State == fed.JobCancelled })
	if len(e.n.RunningJobs()) != 0 {
		t.Errorf("still running at the node: %v", e.n.RunningJobs())
	}
	// The node still takes jobs.
	e.exec.run = func(ctx context.Context, spec executor.Spec, log func(string)) (executor.Result, error) {
		return executor.Result{}, nil
	}
	j2 := e.submit(e.spec(e.processPermit("pm-after")))
	e.wait(j2.ID, func(j jobs.Job) bool { return j.State == fed.JobSucceeded })
}

// TestJobExecutorFailure: an executor that fails, a program that exits
// non-zero and one killed at a limit are reported as such, with the
// exit code.
func TestJobExecutorFailure(t *testing.T) {
	e := newJobEnv(t, node.Config{})
	e.approvedTool()
	for _, c := range []struct {
		name, state, msg string
		res              executor.Result
		err              error
	}{
		{"executor error", fed.JobFailed, "the executor failed: sandbox could not start", executor.Result{}, errors.New("sandbox could not start")},
		{"exit code", fed.JobFailed, "exited with code 3", executor.Result{ExitCode: 3}, nil},
		{"memory limit", fed.JobKilled, "memory limit", executor.Result{ExitCode: 137, Killed: "memory"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.exec.run = func(ctx context.Context, spec executor.Spec, log func(string)) (executor.Result, error) {
				return c.res, c.err
			}
			j := e.submit(e.spec(e.processPermit("pm-" + strings.ReplaceAll(c.name, " ", "-"))))
			j = e.wait(j.ID, func(j jobs.Job) bool { return j.State != fed.JobQueued && j.State != fed.JobRunning })
			if j.State != c.state || !strings.Contains(j.Nodes[0].Message, c.msg) {
				t.Errorf("state %s, message %q; want %s, %q", j.State, j.Nodes[0].Message, c.state, c.msg)
			}
			if c.err == nil && (j.Nodes[0].ExitCode == nil || *j.Nodes[0].ExitCode != c.res.ExitCode) {
				t.Errorf("exit code %v, want %d", j.Nodes[0].ExitCode, c.res.ExitCode)
			}
		})
	}
}

// needSandbox skips a test when bubblewrap or util-linux's setpriv and
// prlimit are missing, except under CI, where it fails.
func needSandbox(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"bwrap", "setpriv", "prlimit"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing (apt-get install bubblewrap util-linux)", tool)
			}
			t.Skipf("%s is missing (apt-get install bubblewrap util-linux)", tool)
		}
	}
}

// TestJobSandboxedProcess: a job through the node's real bubblewrap
// executor and its real airlock: the program sees its parameters at
// /in, cannot read the host's files, writes an aggregate table in the
// airlock's structured format, which it releases, and a bare CSV, which
// waits for a person; a log line that looks like an identifier is held,
// the others reach the hub.
func TestJobSandboxedProcess(t *testing.T) {
	needSandbox(t)
	prog := []byte(`#!/bin/sh
echo "hello from the sandbox"
test -f /in/params.json && echo "params present"
if cat /etc/shadow >/dev/null 2>&1; then echo "read the host"; else echo "host hidden"; fi
echo "patient 1234567890"
printf 'group,count\na,120\nb,150\n' > /out/counts.csv
printf '{"mosaic_output":"table","version":1,"kind":"frequency","dimensions":["group"],"cells":[{"key":["a"],"count":120},{"key":["b"],"count":150}]}' > /out/counts.json
exit 0
`)
	digest := jobs.Digest(prog)
	e := newJobEnv(t, node.Config{Jobs: executor.Config{Kind: executor.Process, AllowPrograms: []string{digest},
		Limits: executor.Limits{WallClock: 20 * time.Second}}})
	e.n.SetExecutor(nil)
	e.n.SetOutputCheck(nil)
	e.program, e.digest = prog, digest
	e.approvedTool()
	t0 := time.Now()
	j := e.submit(e.spec(e.processPermit("pm-sandbox")))
	j = e.wait(j.ID, func(j jobs.Job) bool { return j.State != fed.JobQueued && j.State != fed.JobRunning })
	t.Logf("job %s in %s: %+v", j.State, time.Since(t0).Round(time.Millisecond), j.Nodes[0])
	var logs struct{ Lines []jobs.LogLine }
	e.api(e.resTok, "GET", "/api/v1/jobs/"+j.ID+"/logs", nil, &logs)
	var got []string
	for _, l := range logs.Lines {
		got = append(got, l.Line)
	}
	want := []string{"hello from the sandbox", "params present", "host hidden"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("released log lines %q, want %q (the identifier-like line held)", got, want)
	}
	if j.Nodes[0].ExitCode == nil || *j.Nodes[0].ExitCode != 0 {
		t.Errorf("exit code %v: %s", j.Nodes[0].ExitCode, j.Nodes[0].Message)
	}
	var outs struct{ Outputs []jobs.OutputInfo }
	e.api(e.resTok, "GET", "/api/v1/jobs/"+j.ID+"/outputs", nil, &outs)
	if len(outs.Outputs) != 1 || outs.Outputs[0].Name != "counts.json" {
		t.Errorf("released outputs %+v; message %q", outs.Outputs, j.Nodes[0].Message)
	}
	if j.State != fed.JobHeld || !strings.Contains(j.Nodes[0].Message, "2 held for review at the node (counts.csv, held-log.txt)") {
		t.Fatalf("state %s, message %q: want the held log lines waiting at the node", j.State, j.Nodes[0].Message)
	}
	// The node's airlock holds them; a person releases one and rejects
	// the other; the released one reaches the hub and the job ends.
	st, err := e.n.Airlock()
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := st.ListJob(j.ID)
	if len(hs) != 3 {
		t.Errorf("the airlock's store holds %d outputs of the job, want 3: %+v", len(hs), hs)
	}
	if err := e.n.ReleaseJobOutput(context.Background(), j.ID, "counts.csv"); err != nil {
		t.Fatal(err)
	}
	if err := e.n.RejectJobOutput(context.Background(), j.ID, "held-log.txt", "an identifier in the log"); err != nil {
		t.Fatal(err)
	}
	j = e.wait(j.ID, func(j jobs.Job) bool { return j.State == fed.JobSucceeded })
	if len(j.Nodes[0].Outputs) != 2 || !strings.Contains(j.Nodes[0].Message, "1 rejected") {
		t.Errorf("after the decisions: outputs %+v, message %q", j.Nodes[0].Outputs, j.Nodes[0].Message)
	}
	if len(nodeAuditActions(t, filepath.Join(e.n.Config().Data, "audit.log"), "airlock-release")) != 2 {
		t.Errorf("want two airlock-release records in the node's audit log (the checks' and the person's)")
	}
}

// TestJobPages: /jobs, /jobs/{id} and /tools for a logged-in user: the
// job's state per node, its released log line and a link to its output;
// the catalogue with the review form, whose cross-site post is refused
// and whose own post records the review; no page without a log-in, and
// no other researcher's job.
func TestJobPages(t *testing.T) {
	e := newJobEnv(t, node.Config{})
	tool := e.approvedTool()
	j := e.submit(e.spec(e.processPermit("pm-pages")))
	e.wait(j.ID, func(j jobs.Job) bool { return j.State == fed.JobSucceeded })
	srv := &httptest.Server{URL: e.url}
	if r := uiGet(t, e.url+"/jobs", ""); r.StatusCode != http.StatusSeeOther {
		t.Errorf("/jobs without a log-in: %d", r.StatusCode)
	}
	rosa := uiLogin(t, srv, "rosa", "password-rosa")
	uiWant(t, uiGet(t, e.url+"/jobs", rosa), 200, `href="/jobs/`+j.ID+`"`, "succeeded", `<a href="/jobs" aria-current="page">Jobs</a>`)
	uiWant(t, uiGet(t, e.url+"/jobs/"+j.ID, rosa), 200, "north/lung", "hello from the job", `href="/jobs/`+j.ID+`/outputs/north/result.csv"`)
	uiWant(t, uiGet(t, e.url+"/jobs/"+j.ID+"/outputs/north/result.csv", rosa), 200, "x,n")
	uiWant(t, uiGet(t, e.url+"/jobs/"+j.ID+"/outputs/north/result.csv", uiLogin(t, srv, "bert", "password-bert")), 404)
	alma := uiLogin(t, srv, "alma", "password-alma")
	uiWant(t, uiGet(t, e.url+"/jobs/"+j.ID, alma), 404)
	// A second tool, reviewed through the page.
	var t2 jobs.Tool
	other := []byte("#!/bin/sh\necho other\n")
	e.api(e.resTok, "POST", "/api/v1/tools", jobs.ToolInput{Name: "other", Kind: "process", Digest: jobs.Digest(other), Program: other}, &t2)
	uiWant(t, uiGet(t, e.url+"/tools", alma), 200, tool.Digest, "approved", `action="/tools/`+t2.ID+`/review"`)
	form := url.Values{"decision": {"approve"}, "comment": {"fine"}}
	uiWant(t, uiDo(t, "POST", e.url+"/tools/"+t2.ID+"/review", form, map[string]string{"Sec-Fetch-Site": "cross-site", "Cookie": "mosaic_session=" + alma}), 403, "Request refused")
	var got jobs.Tool
	e.api(e.resTok, "GET", "/api/v1/tools/"+t2.ID, nil, &got)
	if len(got.Reviews) != 0 {
		t.Fatalf("a cross-site post recorded a review: %+v", got.Reviews)
	}
	if r := uiPost(t, e.url+"/tools/"+t2.ID+"/review", form, alma); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("review through the page: %d %s", r.StatusCode, r.body)
	}
	e.api(e.resTok, "GET", "/api/v1/tools/"+t2.ID, nil, &got)
	if len(got.Reviews) != 1 || got.Reviews[0].Reviewer != "alma" || got.Reviews[0].Organisation != "north-hospital" {
		t.Errorf("reviews after the page's post: %+v", got.Reviews)
	}
	// The submitter gets no form for their own tool.
	uiWant(t, uiGet(t, e.url+"/tools", rosa), 200, "you registered it")
}

// TestJobContainer: a job with a container image by digest, built
// locally FROM scratch, through the node's real Podman executor and
// airlock: the image on the node's allow-list runs without network and
// with a read-only root, its log lines and its output reach the hub.
func TestJobContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image")
	}
	for _, tool := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing (apt-get install podman runc)", tool)
			}
			t.Skipf("%s is missing (apt-get install podman runc)", tool)
		}
	}
	dir := t.TempDir()
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", filepath.Join(dir, "probe"), "../executor/testdata/probe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("FROM scratch\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\n"), 0o644)
	if out, err := exec.Command("podman", "--runtime", "runc", "--cgroup-manager=cgroupfs", "build", "-q", "-t", "localhost/mosaic-jobprobe:test", dir).CombinedOutput(); err != nil {
		t.Fatalf("podman build: %v: %s", err, out)
	}
	out, err := exec.Command("podman", "image", "inspect", "--format", "{{.Digest}}", "localhost/mosaic-jobprobe:test").Output()
	if err != nil {
		t.Fatal(err)
	}
	digest := strings.TrimSpace(string(out))
	image := "localhost/mosaic-jobprobe@" + digest
	e := newJobEnv(t, node.Config{Jobs: executor.Config{Kind: executor.Container, ContainerRuntime: "runc", CgroupManager: "cgroupfs",
		AllowImages: []string{digest}, Limits: executor.Limits{WallClock: 60 * time.Second}}})
	e.n.SetExecutor(nil)
	e.n.SetOutputCheck(nil)
	var tool jobs.Tool
	if st, b := e.api(e.resTok, "POST", "/api/v1/tools", jobs.ToolInput{Name: "probe", Kind: "container", Digest: digest}, &tool); st != 201 {
		t.Fatalf("register: %d %s", st, b)
	}
	for _, u := range []string{"alma", "bert"} {
		e.api(e.token(u), "POST", "/api/v1/tools/"+tool.ID+"/reviews", map[string]string{"decision": "approve"}, &tool)
	}
	spec := e.spec(e.processPermit("pm-container"))
	spec.Kind, spec.Image, spec.CommandArgs = "container", image, []string{"write"}
	spec.Env = []jobs.EnvVar{{Name: "GREETING", Value: "hi"}}
	j := e.submit(spec)
	j = e.wait(j.ID, func(j jobs.Job) bool { return j.State != fed.JobQueued && j.State != fed.JobRunning })
	var logs struct{ Lines []jobs.LogLine }
	e.api(e.resTok, "GET", "/api/v1/jobs/"+j.ID+"/logs", nil, &logs)
	var lines []string
	for _, l := range logs.Lines {
		lines = append(lines, l.Line)
	}
	t.Logf("job %s: %q; %s", j.State, lines, j.Nodes[0].Message)
	if !slices.Contains(lines, "root filesystem read-only") {
		t.Errorf("log lines %q", lines)
	}
	if j.Nodes[0].ExitCode == nil || *j.Nodes[0].ExitCode != 0 {
		t.Errorf("exit code %v: %s", j.Nodes[0].ExitCode, j.Nodes[0].Message)
	}
	// hello.txt is plain text: the airlock holds it for a person.
	if err := e.n.ReleaseJobOutput(context.Background(), j.ID, "hello.txt"); err != nil {
		t.Fatalf("release: %v (job %s: %s)", err, j.State, j.Nodes[0].Message)
	}
	j = e.wait(j.ID, func(j jobs.Job) bool { return j.State == fed.JobSucceeded })
	if len(j.Nodes[0].Outputs) != 1 || j.Nodes[0].Outputs[0].Name != "hello.txt" {
		t.Errorf("outputs %+v", j.Nodes[0].Outputs)
	}
}
