package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/blobstore"
)

// deleteRecorder is a blob store whose deletes take a while and are
// counted, and which notes any delete that runs after it was closed.
type deleteRecorder struct {
	blobstore.Store
	closed  atomic.Bool
	deletes atomic.Int64
	late    atomic.Int64 // deletes begun or ended after Close
}

func (d *deleteRecorder) Delete(ctx context.Context, r blobstore.Ref) error {
	if d.closed.Load() {
		d.late.Add(1)
	}
	d.deletes.Add(1)
	time.Sleep(time.Millisecond)
	if d.closed.Load() {
		d.late.Add(1)
	}
	return nil
}

func (d *deleteRecorder) Close() error {
	d.closed.Store(true)
	return d.Store.Close()
}

// TestCloseCancelledWithDropsQueued: Close with a context that already
// ended, while the queue of copies to delete is full, returns only once
// the deleting goroutine stopped, and no delete runs after the stores
// closed.
func TestCloseCancelledWithDropsQueued(t *testing.T) {
	cfg := Config{Data: t.TempDir(), Policy: "longitudinal", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &deleteRecorder{Store: n.blobs}
	n.blobs = rec // before any copy is queued: the queue orders it before runDrops reads it
	for i := range cap(n.drops) {
		n.drops <- blobstore.Ref{Key: blobstore.Key(fmt.Sprintf("%064x", i))}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = n.Close(ctx)
	if err != nil {
		t.Logf("Close: %v", err) // the context ended; an error saying so is fine
	}
	select {
	case <-n.dropsDone:
	default:
		t.Fatal("Close returned while the goroutine deleting copies still runs")
	}
	if !rec.closed.Load() {
		t.Fatal("Close did not close the blob store")
	}
	after := rec.deletes.Load()
	time.Sleep(50 * time.Millisecond)
	if got := rec.deletes.Load(); got != after {
		t.Errorf("%d deletes ran after Close returned", got-after)
	}
	if late := rec.late.Load(); late > 0 {
		t.Errorf("%d deletes ran after the blob store closed", late)
	}
	if after >= int64(cap(n.drops)) {
		t.Errorf("all %d queued copies were deleted although Close's context had ended", after)
	}
}
