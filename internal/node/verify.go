package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"sort"
	"sync"

	"github.com/mosaic-imaging/mosaic/internal/blobstore"
	"github.com/mosaic-imaging/mosaic/internal/index"
)

// VerifyStats sums up a verification of a dataset's objects.
type VerifyStats struct {
	Objects, Bytes   int64
	Missing, Damaged []string // SOP Instance UIDs, sorted
}

// VerifyObjects reads back every object a dataset's index refers to and
// checks it is there, has the indexed size and hashes to its key: the
// scrub a data holder runs to find objects lost or damaged on disk.
// progress, if not nil, is called after each object with the counts so
// far.
func (n *Node) VerifyObjects(ctx context.Context, dataset string, progress func(done, bytes int64)) (VerifyStats, error) {
	type job struct {
		uid  string
		ref  blobstore.Ref
		size int64
	}
	var st VerifyStats
	var mu sync.Mutex
	jobs := make(chan job)
	var wg sync.WaitGroup
	var firstErr error
	for range runtime.NumCPU() {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			for j := range jobs {
				ok, err := n.verifyObject(ctx, j.ref, j.size, buf)
				mu.Lock()
				switch {
				case errors.Is(err, blobstore.ErrNotFound):
					st.Missing = append(st.Missing, j.uid)
				case err != nil:
					if firstErr == nil {
						firstErr = err
					}
				case !ok:
					st.Damaged = append(st.Damaged, j.uid)
				}
				st.Objects++
				st.Bytes += j.size
				if progress != nil {
					progress(st.Objects, st.Bytes)
				}
				mu.Unlock()
			}
		})
	}
	err := n.Index.DatasetBlobs(ctx, dataset, func(uid, key, loc string, size int64) error {
		select {
		case jobs <- job{uid, blobRef(key, loc), size}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(jobs)
	wg.Wait()
	if err == nil {
		err = firstErr
	}
	sort.Strings(st.Missing)
	sort.Strings(st.Damaged)
	return st, err
}

// verifyObject reports whether the blob at ref has size bytes hashing to
// its key. A missing blob is an error wrapping blobstore.ErrNotFound.
func (n *Node) verifyObject(ctx context.Context, ref blobstore.Ref, size int64, buf []byte) (bool, error) {
	r, err := n.Blobs.Open(ctx, ref)
	if err != nil {
		return false, err
	}
	defer r.Close()
	h := sha256.New()
	got, err := io.CopyBuffer(h, struct{ io.Reader }{r}, buf)
	if err != nil {
		return false, nil // unreadable bytes are damage, not a failure of the check
	}
	return got == size && hex.EncodeToString(h.Sum(nil)) == string(ref.Key), nil
}

// VerifyProblems turns a verification into check problems.
func VerifyProblems(st VerifyStats, examples int) []index.Problem {
	var out []index.Problem
	add := func(kind, msg string, uids []string) {
		if len(uids) == 0 {
			return
		}
		p := index.Problem{Kind: kind, Severity: "error", Count: int64(len(uids)), Message: msg}
		p.Examples = uids[:min(examples, len(uids))]
		out = append(out, p)
	}
	add("object-missing", "indexed objects whose stored bytes are gone: ingest them again from the source", st.Missing)
	add("object-damaged", "indexed objects whose stored bytes no longer match their SHA-256: ingest them again from the source", st.Damaged)
	return out
}
