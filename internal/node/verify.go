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

// VerifyStats sums up a verification of a dataset's objects. The lists
// hold SOP Instance UIDs, sorted.
type VerifyStats struct {
	Objects, Bytes int64
	// Missing objects have no blob where their index row says.
	Missing []string
	// Damaged objects read back whole but with another size or hash.
	Damaged []string
	// Unreadable objects could not be read to the end (an I/O error).
	Unreadable []string
}

// VerifyObjects reads back every object a dataset's index refers to and
// checks it is there, has the indexed size and hashes to its key: the
// scrub a data holder runs to find objects lost or damaged on disk. A
// problem with one object is recorded and the walk goes on; only the
// index, or ctx, ends it early. progress, if not nil, is called after
// each object with the counts so far.
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
	for range runtime.NumCPU() {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			for j := range jobs {
				res := n.verifyObject(ctx, j.ref, j.size, buf)
				mu.Lock()
				switch res {
				case objMissing:
					st.Missing = append(st.Missing, j.uid)
				case objDamaged:
					st.Damaged = append(st.Damaged, j.uid)
				case objUnreadable:
					if ctx.Err() == nil {
						st.Unreadable = append(st.Unreadable, j.uid)
					}
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
	err := n.ix.DatasetBlobs(ctx, dataset, func(uid, key, loc string, size int64) error {
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
		err = ctx.Err()
	}
	sort.Strings(st.Missing)
	sort.Strings(st.Damaged)
	sort.Strings(st.Unreadable)
	return st, err
}

type objState int

const (
	objIntact objState = iota
	objMissing
	objDamaged
	objUnreadable
)

// verifyObject reads the blob at ref back and says what it found.
func (n *Node) verifyObject(ctx context.Context, ref blobstore.Ref, size int64, buf []byte) objState {
	r, err := n.blobs.Open(ctx, ref)
	if errors.Is(err, blobstore.ErrNotFound) {
		return objMissing
	}
	if err != nil {
		return objUnreadable
	}
	defer r.Close()
	h := sha256.New()
	got, err := io.CopyBuffer(h, ctxReader{ctx, r}, buf)
	switch {
	case err != nil:
		return objUnreadable
	case got != size || hex.EncodeToString(h.Sum(nil)) != string(ref.Key):
		return objDamaged
	}
	return objIntact
}

// ctxReader stops reading once ctx is done, so an interrupted scrub does
// not read a large object to its end.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
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
	add("object-damaged", "indexed objects whose stored bytes no longer match their size or SHA-256: ingest them again from the source", st.Damaged)
	add("object-unreadable", "indexed objects that could not be read back (an I/O error): check the disk, then run the check again", st.Unreadable)
	return out
}
