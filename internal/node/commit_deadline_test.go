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
	tk.p = n.commit.submit(index.Instance{SOPUID: "1.2.3"})
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
