package blobstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// URLs
	_ "gocloud.dev/blob/memblob"  // mem:// URLs
	_ "gocloud.dev/blob/s3blob"   // s3:// URLs (and S3-compatible stores)
	"gocloud.dev/gcerrors"
)

// Object names in a bucket.
const (
	blobPrefix = "sha256/" // sha256/<key>
	tmpPrefix  = "tmp/"    // tmp/<random>, being committed
)

// serverCopyLimit is the largest object every supported service copies on
// the server side (S3's CopyObject stops at 5 GiB). Larger blobs whose
// server-side copy fails are copied through this process instead.
const serverCopyLimit = 5 << 30

// Bucket is the engine for an object store reached through
// gocloud.dev/blob: S3 and S3-compatible stores, and for tests the mem and
// file drivers.
//
// A new blob is uploaded to tmp/<random> while it is hashed, then copied
// on the server to sha256/<key> and the temporary object deleted: the key
// is not known until the last byte, and object stores cannot rename.
// An object becomes visible only when its upload completes, so a crash
// never leaves a partial blob under sha256/; it may leave a whole object
// under tmp/, which OpenBucket removes once it is a minute old. Abandoned
// S3 multipart uploads are not visible to List; a bucket lifecycle rule
// (AbortIncompleteMultipartUpload) should expire them.
type Bucket struct {
	b *blob.Bucket
	// Commits of one key take the same stripe, so that within a process
	// exactly one of several concurrent commits of one content reports
	// existed=false. Across processes existed is best-effort (both may
	// copy; the content is the same).
	stripes [64]sync.Mutex
}

var _ Store = (*Bucket)(nil)

// OpenBucket opens the bucket at a gocloud.dev/blob URL ("s3://...",
// "mem://", "file:///...") as a Store and removes temporary objects left by
// crashed commits.
func OpenBucket(ctx context.Context, url string) (*Bucket, error) {
	b, err := blob.OpenBucket(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("blobstore: open bucket: %w", err)
	}
	s := NewBucket(b)
	if err := s.cleanTmp(ctx, defaultStaleAge); err != nil {
		b.Close()
		return nil, err
	}
	return s, nil
}

// NewBucket returns a Store on an open bucket; Close closes the bucket.
func NewBucket(b *blob.Bucket) *Bucket { return &Bucket{b: b} }

// cleanTmp deletes objects under tmp/ older than age.
func (s *Bucket) cleanTmp(ctx context.Context, age time.Duration) error {
	it := s.b.List(&blob.ListOptions{Prefix: tmpPrefix})
	now := time.Now()
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("blobstore: clean tmp: %w", err)
		}
		if obj.IsDir || now.Sub(obj.ModTime) < age {
			continue
		}
		if err := s.b.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return fmt.Errorf("blobstore: clean tmp: %w", err)
		}
	}
}

func objectName(k Key) string { return blobPrefix + string(k) }

// Create implements Store. Cancelling ctx aborts the upload.
func (s *Bucket) Create(ctx context.Context) (Writer, error) {
	var rnd [16]byte
	rand.Read(rnd[:])
	name := tmpPrefix + hex.EncodeToString(rnd[:])
	wctx, cancel := context.WithCancel(ctx)
	w, err := s.b.NewWriter(wctx, name, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("blobstore: create: %w", err)
	}
	return &bucketWriter{s: s, ctx: ctx, cancel: cancel, w: w, name: name, h: sha256.New()}, nil
}

type bucketWriter struct {
	s      *Bucket
	ctx    context.Context
	cancel context.CancelFunc
	w      *blob.Writer
	name   string
	h      hash.Hash
	size   int64
	err    error
	done   bool
}

func (w *bucketWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("blobstore: write: %w", ErrClosed)
	}
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.w.Write(p)
	w.h.Write(p[:n])
	w.size += int64(n)
	if err != nil {
		w.err = fmt.Errorf("blobstore: write: %w", err)
		return n, w.err
	}
	return n, nil
}

func (w *bucketWriter) Commit() (Ref, int64, bool, error) {
	if w.done {
		return Ref{}, 0, false, fmt.Errorf("blobstore: commit: %w", ErrClosed)
	}
	w.done = true
	if w.err != nil {
		w.cancel() // abandons the upload
		w.w.Close()
		return Ref{}, 0, false, w.err
	}
	err := w.w.Close()
	w.cancel()
	if err != nil {
		return Ref{}, 0, false, fmt.Errorf("blobstore: commit: %w", err)
	}
	k := Key(hex.EncodeToString(w.h.Sum(nil)))
	existed, err := w.s.place(w.ctx, k, w.name, w.size)
	// The blob, if placed, is a copy now. A failed delete leaves an object
	// that the next OpenBucket removes.
	_ = w.s.b.Delete(w.ctx, w.name)
	if err != nil {
		return Ref{}, 0, false, fmt.Errorf("blobstore: commit %s: %w", k, err)
	}
	return Ref{Key: k}, w.size, existed, nil
}

// place copies the uploaded object tmp to k's name unless it is there.
func (s *Bucket) place(ctx context.Context, k Key, tmp string, size int64) (existed bool, err error) {
	// Keys are uniformly distributed, so their first byte picks a stripe
	// as well as any hash would.
	mu := &s.stripes[int(unhex(k[0])<<4|unhex(k[1]))%len(s.stripes)]
	mu.Lock()
	defer mu.Unlock()
	dst := objectName(k)
	existed, err = s.b.Exists(ctx, dst)
	if err != nil || existed {
		return existed, err
	}
	err = s.b.Copy(ctx, dst, tmp, nil)
	if err != nil && size > serverCopyLimit && gcerrors.Code(err) != gcerrors.NotFound {
		err = s.copyThrough(ctx, dst, tmp)
	}
	return false, err
}

func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// copyThrough copies an object by reading and re-uploading it.
func (s *Bucket) copyThrough(ctx context.Context, dst, src string) error {
	r, err := s.b.NewReader(ctx, src, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.b.NewWriter(wctx, dst, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel()
		w.Close()
		return err
	}
	return w.Close()
}

func (w *bucketWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.cancel() // the upload is abandoned, no object is created
	w.w.Close()
	return nil
}

// Open implements Store. The returned Reader reads with ctx.
func (s *Bucket) Open(ctx context.Context, ref Ref) (Reader, error) {
	k, err := keyOnly("open", ref)
	if err != nil {
		return nil, err
	}
	r, err := s.b.NewReader(ctx, objectName(k), nil)
	if err != nil {
		return nil, bucketErr("open", k, err)
	}
	return &bucketReader{s: s, ctx: ctx, name: objectName(k), r: r, size: r.Size()}, nil
}

func bucketErr(op string, k Key, err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("blobstore: %s %s: %w", op, k, ErrNotFound)
	}
	return fmt.Errorf("blobstore: %s %s: %w", op, k, err)
}

// bucketReader keeps its own position so that Seek never reaches the
// bucket (blob.Reader logs seeks past the end); Read repositions the
// underlying reader only when the position moved.
type bucketReader struct {
	s    *Bucket
	ctx  context.Context
	name string
	r    *blob.Reader
	size int64
	pos  int64 // position of Read and Seek
	rpos int64 // position of r
}

func (r *bucketReader) Size() int64 { return r.size }

func (r *bucketReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.pos != r.rpos {
		if _, err := r.r.Seek(r.pos, io.SeekStart); err != nil {
			return 0, err
		}
		r.rpos = r.pos
	}
	n, err := r.r.Read(p)
	r.pos += int64(n)
	r.rpos += int64(n)
	return n, err
}

func (r *bucketReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.size
	default:
		return r.pos, errors.New("blobstore: seek: invalid whence")
	}
	if off < 0 {
		return r.pos, errors.New("blobstore: seek: negative position")
	}
	r.pos = off
	return off, nil
}

// ReadAt reads with a ranged request of its own, so calls may run
// concurrently with each other and with Read.
func (r *bucketReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("blobstore: read at: negative offset")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= r.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.size-off)
	rr, err := r.s.b.NewRangeReader(r.ctx, r.name, off, n, nil)
	if err != nil {
		return 0, err
	}
	defer rr.Close()
	m, err := io.ReadFull(rr, p[:n])
	if err != nil {
		return m, err
	}
	if m < len(p) {
		return m, io.EOF
	}
	return m, nil
}

func (r *bucketReader) Close() error { return r.r.Close() }

// Stat implements Store.
func (s *Bucket) Stat(ctx context.Context, r Ref) (int64, error) {
	k, err := keyOnly("stat", r)
	if err != nil {
		return 0, err
	}
	a, err := s.b.Attributes(ctx, objectName(k))
	if err != nil {
		return 0, bucketErr("stat", k, err)
	}
	return a.Size, nil
}

// Delete implements Store.
func (s *Bucket) Delete(ctx context.Context, r Ref) error {
	k, err := keyOnly("delete", r)
	if errors.Is(err, ErrNotFound) {
		return nil // a pack location: nothing of this store's
	}
	if err != nil {
		return err
	}
	if err := s.b.Delete(ctx, objectName(k)); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return bucketErr("delete", k, err)
	}
	return nil
}

// List implements Store by listing the prefix sha256/.
func (s *Bucket) List(ctx context.Context, fn func(r Ref, size int64, mod time.Time) error) error {
	it := s.b.List(&blob.ListOptions{Prefix: blobPrefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("blobstore: list: %w", err)
		}
		name := strings.TrimPrefix(obj.Key, blobPrefix)
		if obj.IsDir || !validKey(name) {
			continue
		}
		if err := fn(Ref{Key: Key(name)}, obj.Size, obj.ModTime); err != nil {
			return err
		}
	}
}

// Sync implements Store and does nothing: object stores (S3 and its
// compatibles) acknowledge an upload only once it is stored durably, so
// every committed blob is already durable. The file driver (file:// URLs)
// never fsyncs, so a bucket on a local disk is NOT durable; use the local
// engine there. The mem driver keeps nothing across a restart.
func (s *Bucket) Sync(ctx context.Context) error { return nil }

// Close implements Store; it closes the bucket.
func (s *Bucket) Close() error { return s.b.Close() }
