package node

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/blobstore"
	"github.com/mosaic-imaging/mosaic/internal/index"
)

// stalledBlobs is a blob store whose Sync never returns until its context
// ends: a stalled disk or bucket, as a stalled database would be.
type stalledBlobs struct{ blobstore.Store }

func (stalledBlobs) Sync(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// stalledCommitter starts a committer whose every commit stalls, with
// the given commit timeout, and returns a ticket queued to it and a stop
// function.
func stalledCommitter(t *testing.T, timeout time.Duration) (*Ticket, func()) {
	n := &Node{cfg: Config{CommitTimeout: timeout}, blobs: stalledBlobs{}, m: newMetrics(),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n.commit = newCommitter(n, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.commit.run(context.Background())
	}()
	tk := &Ticket{n: n, path: "test", t0: time.Now(), out: Outcome{SOPInstanceUID: "1.2.3"}}
	tk.p = n.commit.submit(index.Instance{SOPUID: "1.2.3"}, func(p *pending) { tk.settle(p) })
	return tk, func() { n.commit.close(); <-done }
}

// TestCommitTimeout: a commit that stalls fails after exactly the commit
// timeout, and its waiter gets an outcome that says so.
func TestCommitTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk, stop := stalledCommitter(t, 30*time.Second)
		defer stop()
		t0 := time.Now()
		o := tk.Wait(context.Background())
		if took := time.Since(t0); took != 30*time.Second {
			t.Errorf("the stalled commit ended after %s, want the commit timeout, 30s", took)
		}
		if o.Status != StatusFailed || o.Code != CodeCommitTimeout || !o.Internal {
			t.Errorf("outcome %+v, want failed with code %s", o, CodeCommitTimeout)
		}
	})
}

// TestWaitCancelled: a wait whose context ends first returns then, with
// an outcome that says the wait ended (not the commit); a later wait
// still gets the commit's own outcome.
func TestWaitCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk, stop := stalledCommitter(t, 30*time.Second)
		defer stop()
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		o := tk.Wait(ctx)
		if took := time.Since(t0); took != 5*time.Second || o.Code != CodeCommitTimeout || o.Status != StatusFailed {
			t.Errorf("wait with a 5s deadline: after %s, %+v", took, o)
		}
		ctx, cancel2 := context.WithCancel(context.Background())
		go func() { time.Sleep(time.Second); cancel2() }()
		if o := tk.Wait(ctx); o.Code != CodeWaitCancelled || time.Since(t0) != 6*time.Second {
			t.Errorf("cancelled wait: after %s, %+v", time.Since(t0), o)
		}
		if o := tk.Wait(context.Background()); o.Code != CodeCommitTimeout || time.Since(t0) != 30*time.Second {
			t.Errorf("final wait: after %s, %+v; want the commit's timeout at 30s", time.Since(t0), o)
		}
	})
}

// objectsCounted is the node's count of objects with the given ingest
// path and outcome status.
func objectsCounted(t *testing.T, n *Node, path, status string) float64 {
	t.Helper()
	fams, err := n.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != "mosaic_node_ingest_objects_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["path"] == path && labels["status"] == status {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestAbandonedWaitCounted: a ticket whose wait was cancelled and that
// nobody waits for again is counted once its commit ends, and only once
// when waited for afterwards.
func TestAbandonedWaitCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk, stop := stalledCommitter(t, 30*time.Second)
		defer stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if o := tk.Wait(ctx); o.Code != CodeCommitTimeout {
			t.Fatalf("wait with a 5s deadline: %+v", o)
		}
		if got := objectsCounted(t, tk.n, "test", StatusFailed); got != 0 {
			t.Errorf("counted %v objects before the commit ended, want 0", got)
		}
		time.Sleep(time.Minute) // past the commit timeout
		synctest.Wait()
		if got := objectsCounted(t, tk.n, "test", StatusFailed); got != 1 {
			t.Errorf("counted %v failed objects after the commit ended, want 1", got)
		}
		tk.Wait(context.Background())
		if got := objectsCounted(t, tk.n, "test", StatusFailed); got != 1 {
			t.Errorf("counted %v failed objects after a later wait, want still 1", got)
		}
	})
}

// TestCommitWinsOverDeadline: when the commit has ended by the time the
// wait's context ends too, the wait reports the commit's outcome, not a
// timeout.
func TestCommitWinsOverDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 200 {
		n := &Node{m: newMetrics()}
		p := &pending{done: make(chan struct{}), status: index.Stored}
		close(p.done)
		tk := &Ticket{n: n, p: p, path: "test", t0: time.Now(), out: Outcome{SOPInstanceUID: "1.2.3"}}
		if o := tk.Wait(ctx); o.Status != StatusStored {
			t.Fatalf("try %d: a stored object whose wait also ended was reported %s (%s)", i, o.Status, o.Code)
		}
	}
}
