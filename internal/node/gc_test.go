package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/blobstore"
)

// failingDelete is a blob store whose Delete fails.
type failingDelete struct{ blobstore.Store }

func (failingDelete) Delete(context.Context, blobstore.Ref) error {
	return errors.New("read-only file system")
}

func TestGarbageCollection(t *testing.T) {
	ctx := context.Background()
	n, _, _ := testNode(t, "sqlite")
	root := filepath.Join(n.Config().Data, "blobs")
	// What a crash leaves: a pack written by an earlier process with
	// objects that no row refers to.
	prev, err := blobstore.OpenPacks(root, blobstore.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"orphan one", "orphan two"} {
		w, _ := prev.Create(ctx)
		w.Write([]byte(b))
		if _, _, _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	prev.Sync(ctx)
	prev.Close()
	packs, _ := filepath.Glob(filepath.Join(root, "packs", "*.pack"))
	if len(packs) != 1 {
		t.Fatalf("packs %v, want one", packs)
	}
	age := func() { // as if written two hours ago
		old := time.Now().Add(-2 * time.Hour)
		if err := os.Chtimes(packs[0], old, old); err != nil {
			t.Fatal(err)
		}
	}
	exists := func() bool { _, err := os.Stat(packs[0]); return err == nil }

	// A failing delete is counted and the collection goes on.
	good := n.Blobs
	n.Blobs = failingDelete{good}
	st, err := n.CollectGarbage(ctx, 0, false)
	n.Blobs = good
	if err != nil || st.Failed != 2 || st.Removed != 0 {
		t.Errorf("gc with failing deletes: %+v, %v; want 2 failed, none removed, no error", st, err)
	}

	// A dry run counts and changes nothing, packs included.
	age()
	st, err = n.CollectGarbage(ctx, 0, true)
	if err != nil || st.Unreferenced != 2 || st.Removed != 2 || st.Packs != 0 || !exists() {
		t.Errorf("dry run: %+v, %v, pack there %v; want 2 counted, no pack removed", st, err, exists())
	}
	// The real run deletes both; the emptied pack changed just now, so
	// it goes at a later run.
	st, err = n.CollectGarbage(ctx, 0, false)
	if err != nil || st.Removed != 2 || st.Failed != 0 {
		t.Errorf("gc: %+v, %v; want 2 removed", st, err)
	}
	if !exists() {
		t.Errorf("pack removed in the run that emptied it")
	}
	age()
	st, err = n.CollectGarbage(ctx, 0, true)
	if err != nil || st.Packs != 0 || !exists() {
		t.Errorf("dry run over an old empty pack: %+v, %v, pack there %v; want it kept", st, err, exists())
	}
	st, err = n.CollectGarbage(ctx, 0, false)
	if err != nil || st.Unreferenced != 0 || st.Packs != 1 || exists() {
		t.Errorf("gc of an old empty pack: %+v, %v, pack there %v; want it removed", st, err, exists())
	}
}
