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

func TestGarbageCollection(t *testing.T) {
	ctx := context.Background()
	n, _, _ := testNode(t, "sqlite")
	root := filepath.Join(n.Config().Data, "blobs")
	// What a crash leaves: a pack written by an earlier process with
	// objects that no row refers to.
	packs := []string{orphanPack(t, root, "orphan one", "orphan two")}
	age := func() { // as if written two hours ago
		old := time.Now().Add(-2 * time.Hour)
		if err := os.Chtimes(packs[0], old, old); err != nil {
			t.Fatal(err)
		}
	}
	exists := func() bool { _, err := os.Stat(packs[0]); return err == nil }

	// A failing delete is counted and the collection goes on.
	good := n.blobs
	n.blobs = failingPackDelete{good.(*blobstore.Packs)}
	st, err := n.CollectGarbage(ctx, 0, false)
	n.blobs = good
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

// failingPackDelete is the pack store with a Delete that fails.
type failingPackDelete struct{ *blobstore.Packs }

func (failingPackDelete) Delete(context.Context, blobstore.Ref) error {
	return errors.New("read-only file system")
}

// TestRecentGarbageCollection: the collection at start looks at
// everything the first time and leaves a mark; after that, only at the
// packs that may have changed since (numbered above the mark, or modified
// after it), where it finds what a crash left among the objects rows
// refer to and what was too young the time before. A pack closed and left
// unchanged since is not read. Failed and dry runs leave the mark alone,
// and a mark from the future, or many changed records, mean a complete
// collection.
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
	packs := n.blobs.(*blobstore.Packs)
	unchanged := orphanPack(t, root, "in a pack left unchanged") // pack 1
	orphanPack(t, root, "young at the first collection")         // pack 2
	ingest(files[:6])                                            // the node's pack 3

	// No mark yet: a complete collection; with an hour's grace both
	// orphans are kept.
	st, err := n.CollectRecentGarbage(ctx, time.Hour)
	if err != nil || !st.Since.IsZero() || st.Young != 2 || st.Removed != 0 || st.Referenced == 0 {
		t.Fatalf("first collection: %+v, %v; want a complete one keeping 2 young orphans", st, err)
	}
	mark := packs.GCMark()
	if mark.Seq != 2 || !mark.Time.Before(time.Now().Add(-time.Hour)) {
		t.Fatalf("mark %+v: want pack 2 (the node writes pack 3) and a time before the grace", mark)
	}

	old := mark.Time.Add(-time.Hour)
	if err := os.Chtimes(unchanged, old, old); err != nil {
		t.Fatal(err)
	}
	orphanPack(t, root, "crash leftover one", "crash leftover two") // pack 4
	ingest(files[6:12])
	st, err = n.CollectRecentGarbage(ctx, 0)
	if err != nil || st.Since.IsZero() || st.Removed != 3 || st.Failed != 0 || st.Referenced == 0 {
		t.Errorf("recent collection: %+v, %v; want 3 removed (the once young one, the crash leftovers) and the objects kept", st, err)
	}
	mark2 := packs.GCMark()
	if !mark2.Time.After(mark.Time) || mark2.Seq != 2 {
		t.Errorf("mark %+v after the recent collection, want a later time and still pack 2", mark2)
	}

	// A failed delete, or a dry run, leaves the mark as it was.
	orphanPack(t, root, "to fail")
	n.blobs = failingPackDelete{packs}
	st, err = n.CollectRecentGarbage(ctx, 0)
	n.blobs = packs
	if err != nil || st.Failed != 1 {
		t.Errorf("collection with a failing delete: %+v, %v; want 1 failed", st, err)
	}
	if _, err := n.CollectGarbage(ctx, 0, true); err != nil {
		t.Fatal(err)
	}
	if got := packs.GCMark(); got != mark2 {
		t.Errorf("mark %+v after a failed and a dry run, want %+v unchanged", got, mark2)
	}

	// A mark from the future: a complete collection, which finds the
	// orphan in the unchanged pack too.
	if err := packs.SetGCMark(blobstore.GCMark{Time: time.Now().Add(time.Hour), Seq: 1000}); err != nil {
		t.Fatal(err)
	}
	st, err = n.CollectRecentGarbage(ctx, 0)
	if err != nil || !st.Since.IsZero() || st.Removed != 2 {
		t.Errorf("collection under a mark from the future: %+v, %v; want a complete one removing 2", st, err)
	}

	// Past maxChanged records, a complete collection too.
	defer func(m int) { maxChanged = m }(maxChanged)
	maxChanged = 0
	orphanPack(t, root, "one more")
	st, err = n.CollectRecentGarbage(ctx, 0)
	if err != nil || !st.Since.IsZero() || st.Removed != 1 {
		t.Errorf("collection at start after much was written: %+v, %v; want a complete one removing 1", st, err)
	}
	st, err = n.CollectGarbage(ctx, 0, false)
	if err != nil || st.Removed != 0 || st.Unreferenced != 0 {
		t.Errorf("complete collection after that: %+v, %v; want nothing left", st, err)
	}
	// Every object ingested is still there.
	if err := n.ix.BlobRefs(ctx, func(k, loc string, size int64) error {
		got, err := n.blobs.Stat(ctx, blobRef(k, loc))
		if err != nil || got != size {
			t.Errorf("object %s after the collections: %d bytes, %v", loc, got, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
