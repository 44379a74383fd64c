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

// orphanPack writes a pack, as an earlier process would, holding objects
// no row refers to, and returns its path.
func orphanPack(t *testing.T, root string, blobs ...string) string {
	t.Helper()
	ctx := context.Background()
	before, _ := filepath.Glob(filepath.Join(root, "packs", "*.pack"))
	prev, err := blobstore.OpenPacks(root, blobstore.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		w, err := prev.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(b))
		if _, _, _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := prev.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	prev.Close()
	after, _ := filepath.Glob(filepath.Join(root, "packs", "*.pack"))
	if len(after) != len(before)+1 {
		t.Fatalf("packs %v after %v: want one more", after, before)
	}
	return after[len(after)-1]
}

// TestRecentGarbageCollection: the collection at start looks at every
// pack the first time and leaves a mark; after that, only at packs
// changed since the mark, where it finds what a crash left among the
// objects rows refer to. A pack left unchanged since is not read, which
// is what a complete collection is for.
func TestRecentGarbageCollection(t *testing.T) {
	ctx := context.Background()
	n, _, _ := testNode(t, "sqlite")
	root := filepath.Join(n.Config().Data, "blobs")
	dir, _ := testCohort(t)
	files := cohortFiles(t, dir)
	ingest := func(files []string) {
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			o := n.IngestWait(ctx, "lung", "test", fh)
			fh.Close()
			if o.Status != StatusStored && o.Status != StatusRejected {
				t.Fatalf("%s: %s %s", f, o.Status, o.Reason)
			}
		}
	}
	ingest(files[:6])
	packs := n.Blobs.(*blobstore.Packs)

	// No mark yet: everything is looked at.
	hidden := orphanPack(t, root, "left before the first collection")
	st, err := n.CollectRecentGarbage(ctx, 0)
	if err != nil || !st.Since.IsZero() || st.Removed != 1 || st.Referenced == 0 {
		t.Fatalf("first collection: %+v, %v; want a complete one removing 1", st, err)
	}
	mark := packs.GCMark()
	if mark.IsZero() {
		t.Fatal("no mark after a complete collection")
	}

	// A pack unchanged since before the mark with an orphan in it (as
	// after restoring an older index): not looked at.
	old := mark.Add(-time.Hour)
	stale := orphanPack(t, root, "unreferenced, in an unchanged pack")
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(hidden, old, old); err != nil {
		t.Fatal(err)
	}
	// What a crash leaves after the mark: found.
	orphanPack(t, root, "crash leftover one", "crash leftover two")
	ingest(files[6:12]) // new objects, in packs changed since the mark
	st, err = n.CollectRecentGarbage(ctx, 0)
	if err != nil || st.Since.IsZero() || st.Removed != 2 || st.Failed != 0 || st.Referenced == 0 {
		t.Errorf("recent collection: %+v, %v; want 2 removed and the new objects kept, from the packs changed since the mark", st, err)
	}
	if got := packs.GCMark(); !got.After(mark) {
		t.Errorf("mark %v after the recent collection, want later than %v", got, mark)
	}
	// Past maxChanged records in changed packs, the collection at start
	// is a complete one: it finds the new orphan and the one in the
	// unchanged pack.
	defer func(m int) { maxChanged = m }(maxChanged)
	maxChanged = 0
	orphanPack(t, root, "one more")
	st, err = n.CollectRecentGarbage(ctx, 0)
	if err != nil || !st.Since.IsZero() || st.Removed != 2 {
		t.Errorf("collection at start after much was written: %+v, %v; want a complete one removing 2", st, err)
	}
	st, err = n.CollectGarbage(ctx, 0, false)
	if err != nil || st.Removed != 0 || st.Unreferenced != 0 {
		t.Errorf("complete collection after that: %+v, %v; want nothing left", st, err)
	}
	// Every object ingested is still there and reads back.
	if err := n.Index.BlobRefs(ctx, func(k, loc string, size int64) error {
		got, err := n.Blobs.Stat(ctx, blobRef(k, loc))
		if err != nil || got != size {
			t.Errorf("object %s after the collections: %d bytes, %v", loc, got, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
