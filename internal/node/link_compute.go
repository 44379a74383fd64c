package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/compute"
	"github.com/mosaic-imaging/mosaic/internal/executor"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/permit"
	"github.com/mosaic-imaging/mosaic/internal/stats"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// onCompute answers one step of a federated computation: the step runs
// in package compute with the node's environment (computeEnv); the
// answer, signed by the node, leaves once the step is in the audit log.
func (l *Link) onCompute(m *nats.Msg, task fed.Task) {
	l.compOnce.Do(func() { l.comp = compute.NewNode(&computeEnv{l: l, hist: stats.NewMemoryHistory()}) })
	var body fed.ComputeBody
	var ans fed.ComputeAnswer
	if err := json.Unmarshal(task.Body, &body); err != nil {
		ans = fed.ComputeAnswer{Node: l.f.Node, TaskID: task.ID, Refused: fed.RefusedInvalid, Reason: "malformed compute body"}
		if _, aerr := l.audit.Append(audit.Entry{Actor: actorHub, Action: "compute-step", Subject: task.ID, Detail: map[string]any{"refused": fed.RefusedInvalid}}); aerr != nil {
			l.n.log.Error("audit append failed", "err", aerr)
			return
		}
	} else {
		ctx, cancel := context.WithDeadline(context.Background(), task.Expires)
		ans = l.comp.Handle(ctx, task.ID, body)
		cancel()
	}
	msg, err := fed.Seal(l.key, l.f.Node, ans)
	if err != nil {
		l.n.log.Error("compute answer not signed", "err", err)
		return
	}
	if m.Reply != "" {
		if err := m.Respond(msg); err != nil {
			l.n.log.Warn("compute answer not sent", "err", err)
		}
	}
}

// computeEnv is the node as package compute sees it.
type computeEnv struct {
	l    *Link
	once sync.Once
	ex   executor.Executor
	// hist is the overlap control's memory of row sets, for the link's
	// life (a restart forgets it).
	hist *stats.MemoryHistory
}

func (e *computeEnv) History() stats.History { return e.hist }

func (e *computeEnv) ID() string              { return e.l.f.Node }
func (e *computeEnv) Key() ed25519.PrivateKey { return e.l.key }
func (e *computeEnv) Floor() int              { return e.l.n.cfg.SearchFloor }
func (e *computeEnv) Airlock() airlock.Policy { return e.l.n.cfg.Airlock }
func (e *computeEnv) AllowPrograms() []string { return e.l.n.cfg.Jobs.AllowPrograms }

func (e *computeEnv) CheckPermit(ctx context.Context, token, researcher string) (permit.Claims, error) {
	return e.l.CheckPermit(ctx, token, researcher, permit.OpProcess)
}

func (e *computeEnv) Table(ctx context.Context, dataset, snapshot, name string) (*table.Table, error) {
	return e.l.n.SnapshotTable(ctx, dataset, snapshot, name)
}

func (e *computeEnv) Tables(ctx context.Context, dataset string) ([]string, error) {
	infos, err := e.l.n.Tables(ctx, dataset)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, i := range infos {
		names = append(names, i.Name)
	}
	return names, nil
}

func (e *computeEnv) Executor() executor.Executor {
	e.once.Do(func() {
		if e.l.n.cfg.Jobs.Kind == "" {
			return
		}
		ex, err := executor.New(e.l.n.cfg.Jobs)
		if err != nil {
			e.l.n.log.Error("the executor of programs is not available", "err", err)
			return
		}
		e.ex = ex
	})
	return e.ex
}

func (e *computeEnv) Audit(action, subject string, detail map[string]any) error {
	_, err := e.l.audit.Append(audit.Entry{Actor: actorHub, Action: action, Subject: subject, Detail: detail})
	if err != nil {
		e.l.n.log.Error("audit append failed: a compute step is not answered", "err", err)
	}
	return err
}

func (e *computeEnv) WorkDir() string {
	dir := os.TempDir()
	if e.l.n.cfg.Data != "" {
		dir = filepath.Join(e.l.n.cfg.Data, "compute")
	}
	os.MkdirAll(dir, 0o700)
	return dir
}
