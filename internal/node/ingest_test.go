package node

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/blobstore"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
)

// failingSync is a blob store whose Sync fails: nothing written through it
// may be acknowledged or indexed.
type failingSync struct {
	blobstore.Store
	syncs int
}

func (f *failingSync) Sync(context.Context) error {
	f.syncs++
	return errors.New("disk flush failed")
}

// Err reports the failure, as the pack store does after a failed flush.
func (f *failingSync) Err() error {
	if f.syncs > 0 {
		return errors.New("disk flush failed")
	}
	return nil
}

func TestIngestBlobSyncFails(t *testing.T) {
	// The index commit waits for the blob sync and is skipped when it
	// fails: a node that committed first, or never synced, would index
	// objects a power cut can lose.
	dir, _ := testCohort(t)
	files := cohortFiles(t, dir)[:6]
	n, srv, tok := testNode(t, "sqlite")
	good := n.blobs
	bad := &failingSync{Store: good}
	n.blobs = bad
	ct, body := stowBody(t, files)
	resp, b := do(t, "POST", srv.URL+"/dicom-web/lung/studies", tok, ct, body, "application/dicom+json")
	if resp.StatusCode < 500 {
		t.Errorf("STOW with a failing blob sync: %d %s, want a server error", resp.StatusCode, b)
	}
	if bad.syncs == 0 {
		t.Errorf("the node never synced the blob store")
	}
	if got := qidoCount(t, srv, tok, "instances", url.Values{}); got != 0 {
		t.Errorf("%d instances indexed although their blobs were never made durable", got)
	}
	if resp, b := do(t, "GET", srv.URL+"/readyz", "", "", nil, ""); resp.StatusCode != 503 {
		t.Errorf("readyz after a failed flush: %d %s, want 503", resp.StatusCode, b)
	}

	// With the store healthy again the same request stores everything.
	n.blobs = good
	resp, b = do(t, "POST", srv.URL+"/dicom-web/lung/studies", tok, ct, body, "application/dicom+json")
	if resp.StatusCode != 200 && resp.StatusCode != 202 { // 202: stored with coerced attributes
		t.Fatalf("STOW after recovery: %d %s", resp.StatusCode, b)
	}
	if got := qidoCount(t, srv, tok, "instances", url.Values{}); got != len(files) {
		t.Errorf("%d instances indexed, want %d", got, len(files))
	}
}

func TestResendLeavesOneCopy(t *testing.T) {
	// The pack store writes a new copy of every object it is given; the
	// node removes the copies of objects it already held, so the store
	// ends with exactly one blob per indexed object.
	dir, _ := testCohort(t)
	files := cohortFiles(t, dir)[:8]
	n, srv, tok := testNode(t, "sqlite")
	if _, ok := n.blobs.(*blobstore.Packs); !ok {
		t.Fatalf("the default blob store is %T, want packs", n.blobs)
	}
	ct, body := stowBody(t, files)
	for i := range 3 {
		resp, b := do(t, "POST", srv.URL+"/dicom-web/lung/studies", tok, ct, body, "application/dicom+json")
		if resp.StatusCode != 200 && resp.StatusCode != 202 {
			t.Fatalf("STOW %d: %d %s", i+1, resp.StatusCode, b)
		}
	}
	indexed := qidoCount(t, srv, tok, "instances", url.Values{})
	if indexed != len(files) {
		t.Fatalf("%d instances indexed, want %d", indexed, len(files))
	}
	// The copies go in the background, off the commit path.
	testutil.Eventually(t, 10*time.Second, func() error {
		blobs := 0
		err := n.blobs.List(context.Background(), func(blobstore.Ref, int64, time.Time) error { blobs++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		if blobs != indexed {
			return fmt.Errorf("%d blobs stored for %d indexed objects sent three times", blobs, indexed)
		}
		return nil
	})
	st, err := n.CollectGarbage(context.Background(), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Referenced != indexed || st.Unreferenced != 0 {
		t.Errorf("gc: %+v, want %d referenced and nothing else", st, indexed)
	}
	checkRetrieve(t, srv, tok, files)
}
