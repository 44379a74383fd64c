package node

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"slices"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/executor"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/jobs"
	"github.com/mosaic-imaging/mosaic/internal/permit"
)

// onJob takes a signed job task: it checks the permit, the tool against
// the node's allow-list and the node's capacity, answers with a signed
// JobAck, and runs an accepted job in the background.
func (l *Link) onJob(m *nats.Msg, task fed.Task) {
	ack := l.acceptJob(task)
	ack.Node, ack.TaskID = l.f.Node, task.ID
	l.reply(m, ack)
}

// reply signs and sends a JobAck.
func (l *Link) reply(m *nats.Msg, ack fed.JobAck) {
	msg, err := fed.Seal(l.key, l.f.Node, ack)
	if err != nil {
		l.n.log.Error("job answer not signed", "err", err)
		return
	}
	if m.Reply != "" {
		if err := m.Respond(msg); err != nil {
			l.n.log.Warn("job answer not sent", "err", err)
		}
	}
}

// acceptJob decides on a job task; an accepted job is started.
func (l *Link) acceptJob(task fed.Task) fed.JobAck {
	var body fed.JobBody
	var spec jobs.Spec
	refuse := func(code, reason string, detail map[string]any) fed.JobAck {
		if detail == nil {
			detail = map[string]any{}
		}
		detail["code"], detail["reason"], detail["researcher"], detail["task"] = code, reason, body.Researcher, task.ID
		if _, err := l.audit.Append(audit.Entry{Actor: actorHub, Action: actionJobRefused, Subject: body.Job, Detail: detail}); err != nil {
			l.n.log.Error("audit append failed", "action", actionJobRefused, "err", err)
		}
		l.n.log.Warn("job refused", "job", body.Job, "code", code, "reason", reason)
		return fed.JobAck{Job: body.Job, Refused: code, Reason: reason}
	}
	if err := json.Unmarshal(task.Body, &body); err != nil {
		return refuse(fed.RefusedInvalid, "malformed job body", nil)
	}
	if !jobIDPattern.MatchString(body.Job) {
		return refuse(fed.RefusedInvalid, "not a valid job id", nil)
	}
	if err := json.Unmarshal(body.Spec, &spec); err != nil {
		return refuse(fed.RefusedInvalid, "malformed job spec", nil)
	}
	if err := spec.Normalize(); err != nil {
		return refuse(fed.RefusedInvalid, err.Error(), nil)
	}
	ctx, cancel := context.WithDeadline(context.Background(), task.Expires)
	defer cancel()
	if body.Permit == "" {
		return refuse(fed.RefusedPermit, "the job carries no permit", nil)
	}
	c, err := l.CheckPermit(ctx, body.Permit, body.Researcher, permit.OpProcess)
	if err != nil {
		var pe *PermitError
		if errors.As(err, &pe) {
			return refuse(fed.RefusedPermit, pe.Error(), map[string]any{"permit": c.ID, "permit_reason": pe.Reason})
		}
		return refuse(fed.RefusedPermit, "permit refused", map[string]any{"permit": c.ID})
	}
	if !slices.Contains(spec.DatasetsList, c.Dataset) && !slices.Contains(spec.DatasetsList, c.Node+"/"+c.Dataset) {
		return refuse(fed.RefusedPermit, "the permit is for dataset "+c.Dataset+", which the job does not name", map[string]any{"permit": c.ID})
	}
	if _, err := l.n.ix.Snapshot(ctx, c.Snapshot, c.Dataset); err != nil {
		return refuse(fed.RefusedPermit, "the permit's snapshot does not exist at this node", map[string]any{"permit": c.ID})
	}
	if !slices.Contains(spec.Permits, c.ID) {
		return refuse(fed.RefusedPermit, "the permit is not among the job's permits", map[string]any{"permit": c.ID})
	}
	var tool *jobs.Tool
	if len(body.Tool) > 0 && string(body.Tool) != "null" {
		tool = &jobs.Tool{}
		if err := json.Unmarshal(body.Tool, tool); err != nil {
			return refuse(fed.RefusedInvalid, "malformed tool record", nil)
		}
	}
	if code, reason := l.n.checkTool(spec, tool); code != "" {
		return refuse(code, reason, map[string]any{"permit": c.ID, "image": spec.Image})
	}
	j := &runningJob{id: body.Job, researcher: body.Researcher, dataset: c.Dataset, snapshot: c.Snapshot, spec: spec, tool: tool,
		perm: airlock.Permissions{}, dir: filepath.Join(l.n.cfg.Data, "jobs", body.Job), link: l, done: make(chan struct{})}
	jctx, jcancel := context.WithCancel(context.Background())
	j.cancel = jcancel
	if code, reason := l.n.jobs.reserve(j, l.n.maxJobs()); code != "" {
		jcancel()
		return refuse(code, reason, map[string]any{"permit": c.ID})
	}
	if err := l.n.ix.PutJob(ctx, index.Job{ID: j.id, Researcher: j.researcher, Permit: c.ID, Dataset: c.Dataset, Snapshot: c.Snapshot,
		Kind: spec.Kind, Image: spec.Image, State: fed.JobQueued}); err != nil {
		l.n.jobs.release(j.id)
		jcancel()
		if errors.Is(err, index.ErrExists) {
			return refuse(fed.RefusedInvalid, "the node was sent this job before", nil)
		}
		l.n.log.Error("job not recorded", "job", j.id, "err", err)
		return refuse(fed.RefusedBusy, "the node could not record the job", nil)
	}
	l.n.jobAudit(j, actionJobAccepted, map[string]any{"permit": c.ID, "snapshot": c.Snapshot, "kind": spec.Kind, "image": spec.Image,
		"flavor": spec.Resources.Flavor, "task": task.ID})
	go l.n.runJob(jctx, j)
	return fed.JobAck{Job: body.Job, Accepted: true}
}

// checkTool checks a job's tool against the node's executor and
// allow-list, which refuses everything it does not name.
func (n *Node) checkTool(spec jobs.Spec, tool *jobs.Tool) (code, reason string) {
	n.jobs.mu.Lock()
	x := n.jobs.exec
	n.jobs.mu.Unlock()
	kind := n.cfg.Jobs.Kind
	if x != nil {
		kind = x.Kind()
	}
	// Only a cluster has GPUs to give.
	if spec.Resources.Flavor != "no-gpu" && kind != executor.Kubernetes {
		return fed.RefusedExecutor, "this node has no GPU for the flavor " + spec.Resources.Flavor
	}
	want := map[string]executor.Kind{jobs.KindContainer: executor.Container, jobs.KindProcess: executor.Process, jobs.KindBuiltin: executor.Builtin}[spec.Kind]
	if spec.Kind == jobs.KindContainer && kind == executor.Kubernetes {
		want = executor.Kubernetes
	}
	if kind == "" || kind != want {
		return fed.RefusedExecutor, "this node has no executor for " + spec.Kind + " jobs"
	}
	if spec.Kind == jobs.KindBuiltin {
		return "", ""
	}
	if tool == nil {
		return fed.RefusedTool, "the job carries no tool record"
	}
	if tool.State != jobs.ToolApproved {
		return fed.RefusedTool, "the tool is not approved in the hub's catalogue"
	}
	if tool.Kind != spec.Kind {
		return fed.RefusedTool, "the tool record is of another kind"
	}
	switch spec.Kind {
	case jobs.KindContainer:
		d := jobs.ImageDigest(spec.Image)
		if d != tool.Digest {
			return fed.RefusedTool, "the image is not the tool's digest"
		}
		if !slices.Contains(n.cfg.Jobs.AllowImages, d) {
			return fed.RefusedTool, "the image " + d + " is not on this node's allow-list"
		}
	case jobs.KindProcess:
		if spec.Image != tool.Digest || len(tool.Program) == 0 || jobs.Digest(tool.Program) != tool.Digest {
			return fed.RefusedTool, "the program does not match the tool's digest"
		}
		if !slices.Contains(n.cfg.Jobs.AllowPrograms, tool.Digest) {
			return fed.RefusedTool, "the program " + tool.Digest + " is not on this node's allow-list"
		}
	}
	return "", ""
}

// onJobCancel takes a signed job-cancel task: a running job is stopped
// (it reports its end as an event).
func (l *Link) onJobCancel(m *nats.Msg, task fed.Task) {
	var body fed.JobCancelBody
	ack := fed.JobAck{Node: l.f.Node, TaskID: task.ID}
	if err := json.Unmarshal(task.Body, &body); err != nil {
		ack.Refused, ack.Reason = fed.RefusedInvalid, "malformed cancel body"
		l.reply(m, ack)
		return
	}
	ack.Job = body.Job
	l.n.jobs.mu.Lock()
	j := l.n.jobs.running[body.Job]
	l.n.jobs.mu.Unlock()
	if j == nil {
		ack.Refused, ack.Reason = fed.RefusedInvalid, "the node runs no such job"
	} else {
		j.cancelled.Store(true)
		j.cancel()
		ack.Accepted = true
	}
	if _, err := l.audit.Append(audit.Entry{Actor: actorHub, Action: actionJobCancel, Subject: body.Job, Detail: map[string]any{
		"running": j != nil, "task": task.ID}}); err != nil {
		l.n.log.Error("audit append failed", "action", actionJobCancel, "err", err)
	}
	l.reply(m, ack)
}

// jobRoutes mounts the node's jobs API: GET /api/v1/jobs lists the jobs
// the node was sent, GET /api/v1/jobs/{id} one with its outputs' fate
// (admin tokens).
func (n *Node) jobRoutes(route func(string, http.HandlerFunc, string)) {
	route("GET /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		js, err := n.ix.Jobs(r.Context())
		if err != nil {
			n.storeError(w, err)
			return
		}
		if js == nil {
			js = []index.Job{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"jobs": js, "running": n.RunningJobs()})
	}, index.ScopeAdmin)
	route("GET /api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, err := n.ix.Job(r.Context(), r.PathValue("id"))
		if err != nil {
			n.storeError(w, err)
			return
		}
		outs, err := n.ix.JobOutputs(r.Context(), j.ID)
		if err != nil {
			n.storeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"job": j, "outputs": outs})
	}, index.ScopeAdmin)
}
