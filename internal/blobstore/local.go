package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fsx"
)

// Layout of a local store's root directory. All three are on one file
// system, so a file moves between them with link(2) or rename(2) and is
// never copied.
const (
	dirBlobs   = "sha256"  // durable blobs: sha256/ab/abcd...
	dirPending = "pending" // committed, not yet synced: pending/abcd...
	dirTmp     = "tmp"     // being written
)

const (
	fileMode = 0o600
	dirMode  = 0o700

	// defaultStaleAge is how old a file in tmp/ must be before OpenLocal
	// removes it as left behind by a crash. Age is measured from the last
	// write, so a slow upload in another process sharing the root survives
	// unless it stalls this long.
	defaultStaleAge = time.Minute

	// syncWorkers bounds how many fsync calls Sync runs at once. Parallel
	// fsyncs let the file system group them into fewer journal commits.
	syncWorkers = 16

	copyBufSize = 1 << 20
)

// syncMode selects how Local.Sync makes data durable.
type syncMode int

const (
	// syncFiles fsyncs each file committed since the last Sync, then
	// each directory its new name went into.
	syncFiles syncMode = iota
	// syncFS calls syncfs(2) on the store's file system instead, once for
	// the data and once for the names. Linux only.
	syncFS
)

func (m syncMode) String() string {
	if m == syncFS {
		return "syncfs"
	}
	return "fsync"
}

type localOptions struct {
	staleAge time.Duration // zero means defaultStaleAge; negative removes every tmp file
	sync     syncMode
	// namedTemp makes writers use named files in tmp/ even where
	// O_TMPFILE works (tests of crash recovery).
	namedTemp bool
}

// Local is the engine for a directory on a local file system.
//
// A committed blob first lives under pending/ and is moved to its final
// place, sha256/ab/<key>, by Sync once its bytes are on stable storage.
// So a file under sha256/ always holds exactly its key's content, even
// after a power cut: without this step a crash could leave a final name
// whose data never reached the disk (an empty or zero-filled file), and
// because a later Commit of the same content trusts the existing copy,
// the damage would be permanent. Open, Stat and List look in both places.
// When a store is opened, files left in pending/ by a crash are hashed
// again: intact ones are made durable and moved into place, damaged ones
// removed.
//
// Sync fsyncs each file committed since the previous Sync (up to 16 at
// once, so the file system can group them into fewer journal commits),
// then each directory that received a new name; it touches nothing else on
// the file system. On Linux, Commit starts the write-back of each blob
// (sync_file_range(2)) so the disk is busy while the caller goes on and
// Sync mostly waits for the journal.
//
// The alternative, one syncfs(2) for the data and one for the names, is
// kept as an internal option and measured by BenchmarkLocalPut: on the
// development machine it was about 1.4 times faster with a Sync every 64
// blobs of 512 KiB, because it issues two disk cache flushes instead of
// one per file and directory. It is not the default because it also
// flushes every other program's dirty data on the file system (a staging
// area or database beside the store makes each Sync wait for their
// backlog), cannot say which blob failed, and reports write-back errors
// only since Linux 5.8: on an older kernel (RHEL 8 runs 4.18) a failed
// write would go unreported and Sync would lie.
//
// The root must be on a file system with hard links (any POSIX local
// file system). One process should own a root; a second one opening it
// is safe but may move the first one's pending blobs into place early.
type Local struct {
	root     string
	blobDir  string
	pendDir  string
	tmpDir   string
	rootFile *os.File // kept open for syncfs
	mode     syncMode

	mu      sync.Mutex
	pending map[Key]struct{} // committed since the last Sync began
	closed  bool

	syncMu sync.Mutex          // Syncs run one at a time
	dirty  map[string]struct{} // directories a failed Sync could not fsync; under syncMu

	// noUnnamed is set once O_TMPFILE proved unsupported here; writers
	// then use named files in tmp/.
	noUnnamed atomic.Bool
}

var _ Store = (*Local)(nil)

// OpenLocal opens (creating it if needed) the local store rooted at the
// directory root. It removes files left in tmp/ by a crash more than a
// minute ago and recovers blobs committed but not synced before a crash.
func OpenLocal(root string) (*Local, error) {
	return openLocal(root, localOptions{})
}

// OpenLocalSyncFS opens the local store like OpenLocal, but its Sync calls
// syncfs(2) once for the whole file system instead of fsyncing each new
// file and directory: faster when many blobs are committed at once, at
// the costs described on Local (it also waits for other programs' data on
// that file system, and cannot say which blob failed). For a file system
// given over to the store. Where syncfs is missing it behaves as
// OpenLocal.
func OpenLocalSyncFS(root string) (*Local, error) {
	return openLocal(root, localOptions{sync: syncFS})
}

func openLocal(root string, opt localOptions) (*Local, error) {
	if root == "" {
		return nil, errors.New("blobstore: open local: empty path")
	}
	root = filepath.Clean(root)
	s := &Local{
		root:    root,
		blobDir: filepath.Join(root, dirBlobs),
		pendDir: filepath.Join(root, dirPending),
		tmpDir:  filepath.Join(root, dirTmp),
		mode:    opt.sync,
		pending: make(map[Key]struct{}),
		dirty:   make(map[string]struct{}),
	}
	if opt.namedTemp {
		s.noUnnamed.Store(true)
	}
	if s.mode == syncFS && !syncfsSupported {
		s.mode = syncFiles
	}
	for _, d := range []string{s.blobDir, s.pendDir, s.tmpDir} {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return nil, fmt.Errorf("blobstore: open local: %w", err)
		}
	}
	// The three directories must survive a crash for Sync's promise to
	// hold; this costs two fsyncs per open, nothing when they already are.
	for _, d := range []string{root, filepath.Dir(root)} {
		if err := fsyncPath(d); err != nil {
			return nil, fmt.Errorf("blobstore: open local: %w", err)
		}
	}
	f, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("blobstore: open local: %w", err)
	}
	s.rootFile = f
	staleAge := opt.staleAge
	if staleAge == 0 {
		staleAge = defaultStaleAge
	}
	if err := s.cleanTmp(staleAge); err != nil {
		f.Close()
		return nil, err
	}
	if err := s.recoverPending(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// Root returns the directory the store lives in.
func (s *Local) Root() string { return s.root }

func (s *Local) blobPath(k Key) string {
	return s.blobDir + string(os.PathSeparator) + string(k[:2]) + string(os.PathSeparator) + string(k)
}

func (s *Local) pendingPath(k Key) string {
	return s.pendDir + string(os.PathSeparator) + string(k)
}

// cleanTmp removes files in tmp/ last written more than age ago (all of
// them if age < 0).
func (s *Local) cleanTmp(age time.Duration) error {
	entries, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return fmt.Errorf("blobstore: clean tmp: %w", err)
	}
	now := time.Now()
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if age >= 0 && now.Sub(info.ModTime()) < age {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.tmpDir, e.Name())); err != nil {
			return fmt.Errorf("blobstore: clean tmp: %w", err)
		}
	}
	return nil
}

// recoverPending deals with what a crash left in pending/: blobs whose
// content still matches their name are made durable and moved into place;
// anything else (data lost in a power cut, stray files) is removed.
func (s *Local) recoverPending() error {
	entries, err := os.ReadDir(s.pendDir)
	if err != nil {
		return fmt.Errorf("blobstore: recover pending: %w", err)
	}
	keep := make(map[Key]struct{})
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(s.pendDir, name)
		if !validKey(name) || !e.Type().IsRegular() {
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("blobstore: recover pending: %w", err)
			}
			continue
		}
		k := Key(name)
		if _, err := os.Lstat(s.blobPath(k)); err == nil {
			// Already durable in place (a Sync moved another link).
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("blobstore: recover pending: %w", err)
			}
			continue
		}
		ok, err := fileHasKey(p, k)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("blobstore: recover pending: %w", err)
		}
		if !ok {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("blobstore: recover pending: %w", err)
			}
			continue
		}
		keep[k] = struct{}{}
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if err := s.persist(keep, syncFiles); err != nil {
		return fmt.Errorf("blobstore: recover pending: %w", err)
	}
	return nil
}

func fileHasKey(path string, k Key) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, *bp); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == string(k), nil
}

func (s *Local) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Create implements Store. The blob is written to a new file in tmp/.
func (s *Local) Create(ctx context.Context) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blobstore: create: %w", err)
	}
	if s.isClosed() {
		return nil, fmt.Errorf("blobstore: create: %w", ErrClosed)
	}
	if !s.noUnnamed.Load() {
		f, err := fsx.CreateUnnamed(s.pendDir, fileMode)
		if err == nil {
			if err := f.Chmod(fileMode); err != nil { // not subject to the umask
				f.Close()
				return nil, fmt.Errorf("blobstore: create: %w", err)
			}
			return &LocalWriter{hashingFile: hashingFile{f: f, h: sha256.New()}, s: s, unnamed: true}, nil
		}
		if !errors.Is(err, errors.ErrUnsupported) {
			return nil, fmt.Errorf("blobstore: create: %w", err)
		}
		s.noUnnamed.Store(true)
	}
	f, err := os.CreateTemp(s.tmpDir, "blob-")
	if err != nil {
		return nil, fmt.Errorf("blobstore: create: %w", err)
	}
	// CreateTemp makes 0600; fchmod is not subject to the umask.
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("blobstore: create: %w", err)
	}
	return &LocalWriter{hashingFile: hashingFile{f: f, h: sha256.New()}, s: s}, nil
}

// LocalWriter is the Writer of the local engine. Besides Write it has
// ReadFrom, so io.Copy from a file or socket into it lets the kernel move
// the bytes (copy_file_range(2), splice(2)); the hash is then computed by
// reading back what was stored.
type LocalWriter struct {
	hashingFile
	s *Local
	// unnamed is set for a file opened with O_TMPFILE in pending/: it
	// has no name until Commit links it there under its key.
	unnamed bool
}

var (
	_ Writer        = (*LocalWriter)(nil)
	_ io.ReaderFrom = (*LocalWriter)(nil)
)

// hashingFile is what the writers of both local engines share: the blob's
// bytes go straight to f, from its current offset (no buffering: callers
// write large chunks), and through the hash.
type hashingFile struct {
	f    *os.File
	base int64 // offset in f of the blob's first byte
	h    hash.Hash
	size int64
	err  error // first write error; the blob can no longer be committed
	done bool  // Commit or Abort was called
}

func (w *hashingFile) usable() error {
	if w.done {
		return fmt.Errorf("blobstore: write: %w", ErrClosed)
	}
	return w.err
}

// Write implements io.Writer.
func (w *hashingFile) Write(p []byte) (int, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.size += int64(n)
	if err != nil {
		w.err = fmt.Errorf("blobstore: write: %w", err)
		return n, w.err
	}
	return n, nil
}

// ReadFrom implements io.ReaderFrom. When r is backed by a file
// descriptor (an *os.File, a network connection, or one of them inside an
// *io.LimitedReader) the copy is left to the os package, which uses
// copy_file_range(2) or splice(2) where it can; the kernel cannot hash, so
// the new bytes are then read back from the file into the hash. Other
// readers are copied through a 1 MiB buffer.
func (w *hashingFile) ReadFrom(r io.Reader) (int64, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	if !hasFD(r) {
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		// Hide ReadFrom so io.CopyBuffer does not call us back.
		return io.CopyBuffer(struct{ io.Writer }{w}, r, *bp)
	}
	from := w.base + w.size
	n, err := w.f.ReadFrom(r)
	w.size += n
	if herr := hashRange(w.h, w.f, from, n); herr != nil {
		w.err = fmt.Errorf("blobstore: write: read back: %w", herr)
		return n, w.err
	}
	if err != nil {
		w.err = fmt.Errorf("blobstore: write: %w", err)
		return n, w.err
	}
	return n, nil
}

// hashRange feeds bytes [off, off+n) of f to h.
func hashRange(h hash.Hash, f *os.File, off, n int64) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for n > 0 {
		chunk := buf
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		m, err := f.ReadAt(chunk, off)
		h.Write(chunk[:m])
		off += int64(m)
		n -= int64(m)
		if err != nil && n > 0 {
			return err
		}
	}
	return nil
}

// hasFD reports whether r (or the reader inside an *io.LimitedReader) has
// a file descriptor the os package can copy from in the kernel.
func hasFD(r io.Reader) bool {
	if lr, ok := r.(*io.LimitedReader); ok {
		r = lr.R
	}
	_, ok := r.(syscall.Conn)
	return ok
}

var copyBufs = sync.Pool{New: func() any {
	b := make([]byte, copyBufSize)
	return &b
}}

// Commit implements Writer: it closes the temporary file and links it
// into pending/ under its key. It does not fsync; see Local.Sync.
func (w *LocalWriter) Commit() (Ref, int64, bool, error) {
	if w.done {
		return Ref{}, 0, false, fmt.Errorf("blobstore: commit: %w", ErrClosed)
	}
	w.done = true
	if w.unnamed {
		return w.commitUnnamed()
	}
	tmp := w.f.Name()
	defer os.Remove(tmp) // the blob, if committed, has another name now
	if w.err != nil {
		w.f.Close()
		return Ref{}, 0, false, w.err
	}
	startWriteback(w.f)
	if err := w.f.Close(); err != nil {
		return Ref{}, 0, false, fmt.Errorf("blobstore: commit: %w", err)
	}
	k := Key(hex.EncodeToString(w.h.Sum(nil)))
	existed, err := w.s.place(k, tmp)
	if err != nil {
		return Ref{}, 0, false, fmt.Errorf("blobstore: commit %s: %w", k, err)
	}
	return Ref{Key: k}, w.size, existed, nil
}

// commitUnnamed links an O_TMPFILE file into pending/ under its key.
func (w *LocalWriter) commitUnnamed() (Ref, int64, bool, error) {
	defer w.f.Close()
	if w.err != nil {
		return Ref{}, 0, false, w.err
	}
	startWriteback(w.f)
	k := Key(hex.EncodeToString(w.h.Sum(nil)))
	existed, err := w.s.placeWith(k, func(dst string) error { return fsx.LinkUnnamed(w.f, dst) })
	if err != nil {
		return Ref{}, 0, false, fmt.Errorf("blobstore: commit %s: %w", k, err)
	}
	return Ref{Key: k}, w.size, existed, nil
}

// place makes the closed file tmp visible as blob k.
func (s *Local) place(k Key, tmp string) (existed bool, err error) {
	return s.placeWith(k, func(dst string) error { return os.Link(tmp, dst) })
}

// placeWith makes blob k visible with link, which names the new file dst
// and fails with fs.ErrExist when dst exists.
func (s *Local) placeWith(k Key, link func(dst string) error) (existed bool, err error) {
	if _, err := os.Lstat(s.blobPath(k)); err == nil {
		return true, nil
	}
	// link(2) fails if the name exists, so of several concurrent commits
	// of one content exactly one creates it.
	switch err := link(s.pendingPath(k)); {
	case err == nil:
		// A Sync may have moved an earlier copy into place between the
		// Lstat and the link; the next Sync renames this one over it.
		_, serr := os.Lstat(s.blobPath(k))
		existed = serr == nil
	case errors.Is(err, fs.ErrExist):
		existed = true
	default:
		return false, err
	}
	// Recorded after the link, and also when the link found an earlier
	// copy, so that a Sync called after this Commit returns covers k
	// whichever commit created the pending file.
	s.mu.Lock()
	s.pending[k] = struct{}{}
	s.mu.Unlock()
	return existed, nil
}

// Abort implements Writer.
func (w *LocalWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	cerr := w.f.Close()
	if w.unnamed {
		// An unnamed file vanishes with its last descriptor.
		if cerr != nil && !errors.Is(cerr, fs.ErrClosed) {
			return fmt.Errorf("blobstore: abort: %w", cerr)
		}
		return nil
	}
	if err := os.Remove(w.f.Name()); err != nil {
		return fmt.Errorf("blobstore: abort: %w", err)
	}
	if cerr != nil && !errors.Is(cerr, fs.ErrClosed) {
		return fmt.Errorf("blobstore: abort: %w", cerr)
	}
	return nil
}

// LocalReader is the Reader of the local engine: an *os.File opened
// read-only. Its WriteTo hands the copy to the os package, so io.Copy to
// a TCP or Unix socket uses sendfile(2) and to a file copy_file_range(2).
type LocalReader struct {
	f    *os.File
	size int64
}

var (
	_ Reader      = (*LocalReader)(nil)
	_ io.WriterTo = (*LocalReader)(nil)
)

// File returns the underlying file, for callers that need the descriptor
// (sendfile to a connection they manage, mmap). Closing the reader closes
// it.
func (r *LocalReader) File() *os.File { return r.f }

// Size implements Reader.
func (r *LocalReader) Size() int64 { return r.size }

// Read implements io.Reader.
func (r *LocalReader) Read(p []byte) (int, error) { return r.f.Read(p) }

// ReadAt implements io.ReaderAt.
func (r *LocalReader) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(p, off) }

// Seek implements io.Seeker.
func (r *LocalReader) Seek(off int64, whence int) (int64, error) { return r.f.Seek(off, whence) }

// WriteTo implements io.WriterTo.
func (r *LocalReader) WriteTo(w io.Writer) (int64, error) { return r.f.WriteTo(w) }

// Close implements io.Closer.
func (r *LocalReader) Close() error { return r.f.Close() }

// openBlob opens k where it is: in place, or still pending. Sync renames
// pending files into place, so looking in place again after pending
// misses no blob that exists throughout the call.
func (s *Local) openBlob(k Key) (*os.File, error) {
	p := s.blobPath(k)
	f, err := os.Open(p)
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	f, err = os.Open(s.pendingPath(k))
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	return os.Open(p)
}

// Open implements Store.
func (s *Local) Open(ctx context.Context, r Ref) (Reader, error) {
	k, err := keyOnly("open", r)
	if err != nil {
		return nil, err
	}
	f, err := s.openBlob(k)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blobstore: open %s: %w", k, ErrNotFound)
		}
		return nil, fmt.Errorf("blobstore: open %s: %w", k, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobstore: open %s: %w", k, err)
	}
	return &LocalReader{f: f, size: fi.Size()}, nil
}

// Stat implements Store.
func (s *Local) Stat(ctx context.Context, r Ref) (int64, error) {
	k, err := keyOnly("stat", r)
	if err != nil {
		return 0, err
	}
	p := s.blobPath(k)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		if fi, err = os.Stat(s.pendingPath(k)); errors.Is(err, fs.ErrNotExist) {
			fi, err = os.Stat(p)
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("blobstore: stat %s: %w", k, ErrNotFound)
		}
		return 0, fmt.Errorf("blobstore: stat %s: %w", k, err)
	}
	return fi.Size(), nil
}

// Delete implements Store. The removal is not made durable: after a crash
// a deleted blob may come back (intact), never a damaged one.
func (s *Local) Delete(ctx context.Context, r Ref) error {
	k, err := keyOnly("delete", r)
	if errors.Is(err, ErrNotFound) {
		return nil // a pack location: nothing of this store's
	}
	if err != nil {
		return err
	}
	// Pending first: if a Sync moves the file in between, the second
	// remove still finds it.
	for _, p := range []string{s.pendingPath(k), s.blobPath(k)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("blobstore: delete %s: %w", k, err)
		}
	}
	return nil
}

// List implements Store. It reads pending/ first, then walks sha256/, so a
// blob Sync moves during the walk is seen once.
func (s *Local) List(ctx context.Context, fn func(r Ref, size int64, mod time.Time) error) error {
	entries, err := os.ReadDir(s.pendDir)
	if err != nil {
		return fmt.Errorf("blobstore: list: %w", err)
	}
	seen := make(map[Key]struct{}, len(entries))
	for _, e := range entries {
		if !validKey(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // deleted or moved into place meanwhile
		}
		k := Key(e.Name())
		seen[k] = struct{}{}
		if err := fn(Ref{Key: k}, info.Size(), info.ModTime()); err != nil {
			return err
		}
	}
	return s.walkBlobs(ctx, func(k Key, info fs.FileInfo) error {
		if _, ok := seen[k]; ok {
			return nil
		}
		return fn(Ref{Key: k}, info.Size(), info.ModTime())
	})
}

// walkBlobs calls fn for each file under sha256/ab/ whose name is a key
// in the right directory.
func (s *Local) walkBlobs(ctx context.Context, fn func(Key, fs.FileInfo) error) error {
	level1, err := readDirNames(s.blobDir)
	if err != nil {
		return fmt.Errorf("blobstore: list: %w", err)
	}
	for _, a := range level1 {
		if len(a) != 2 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("blobstore: list: %w", err)
		}
		d, err := os.Open(filepath.Join(s.blobDir, a))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("blobstore: list: %w", err)
		}
		files, err := d.ReadDir(-1)
		d.Close()
		if err != nil {
			return fmt.Errorf("blobstore: list: %w", err)
		}
		for _, e := range files {
			name := e.Name()
			if !validKey(name) || name[:2] != a {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue // deleted meanwhile
			}
			if err := fn(Key(name), info); err != nil {
				return err
			}
		}
	}
	return nil
}

func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

// Sync implements Store; see Local for the method. Blobs whose data
// cannot be flushed are removed rather than left to be trusted by a later
// Commit of the same content.
func (s *Local) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blobstore: sync: %w", err)
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("blobstore: sync: %w", ErrClosed)
	}
	keys := s.pending
	s.pending = make(map[Key]struct{})
	s.mu.Unlock()
	if err := s.persist(keys, s.mode); err != nil {
		return fmt.Errorf("blobstore: sync: %w", err)
	}
	return nil
}

// persist makes the pending files of keys durable, moves them into place
// and makes the new names durable. The caller holds syncMu.
func (s *Local) persist(keys map[Key]struct{}, mode syncMode) error {
	if len(keys) == 0 && len(s.dirty) == 0 {
		return nil
	}
	var errs []error

	// 1. The bytes.
	var flushed []Key
	if mode == syncFS {
		if err := syncfs(s.rootFile); err != nil {
			for k := range keys {
				os.Remove(s.pendingPath(k))
			}
			return fmt.Errorf("syncfs: %w", err)
		}
		for k := range keys {
			flushed = append(flushed, k)
		}
	} else {
		paths := make([]string, 0, len(keys))
		for k := range keys {
			paths = append(paths, s.pendingPath(k))
		}
		ok, failed := fsyncAll(paths)
		for _, i := range ok {
			flushed = append(flushed, Key(filepath.Base(paths[i])))
		}
		for _, f := range failed {
			os.Remove(f.path)
			errs = append(errs, f.err)
		}
	}

	// 2. The names.
	dirs := s.dirty
	s.dirty = make(map[string]struct{})
	for _, k := range flushed {
		dst := s.blobPath(k)
		created, err := s.makeDirs(k)
		for _, d := range created {
			dirs[filepath.Dir(d)] = struct{}{}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Rename(s.pendingPath(k), dst); err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // deleted, or moved by recovery in another process
				errs = append(errs, err)
			}
			continue
		}
		dirs[filepath.Dir(dst)] = struct{}{}
	}

	// 3. The directories holding the new names.
	if mode == syncFS {
		if err := syncfs(s.rootFile); err != nil {
			for d := range dirs {
				s.dirty[d] = struct{}{}
			}
			errs = append(errs, fmt.Errorf("syncfs: %w", err))
		}
	} else {
		paths := make([]string, 0, len(dirs))
		for d := range dirs {
			paths = append(paths, d)
		}
		_, failed := fsyncAll(paths)
		for _, f := range failed {
			s.dirty[f.path] = struct{}{}
			errs = append(errs, f.err)
		}
	}
	return errors.Join(errs...)
}

// makeDirs creates sha256/ab for k if missing and returns it if it did;
// its parent must then be fsynced.
func (s *Local) makeDirs(k Key) (created []string, err error) {
	for _, d := range []string{filepath.Join(s.blobDir, string(k[:2]))} {
		switch err := os.Mkdir(d, dirMode); {
		case err == nil:
			created = append(created, d)
		case errors.Is(err, fs.ErrExist):
		default:
			return created, err
		}
	}
	return created, nil
}

type pathErr struct {
	path string
	err  error
}

// fsyncAll fsyncs the files or directories at paths, up to syncWorkers at
// a time, and returns the indexes that succeeded and the failures. A path
// that no longer exists is in neither.
func fsyncAll(paths []string) (ok []int, failed []pathErr) {
	var mu sync.Mutex
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(len(paths), syncWorkers) {
		wg.Go(func() {
			for i := range work {
				err := fsyncPath(paths[i])
				mu.Lock()
				switch {
				case err == nil:
					ok = append(ok, i)
				case errors.Is(err, fs.ErrNotExist):
				default:
					failed = append(failed, pathErr{paths[i], err})
				}
				mu.Unlock()
			}
		})
	}
	for i := range paths {
		work <- i
	}
	close(work)
	wg.Wait()
	return ok, failed
}

func fsyncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close implements Store. Blobs committed since the last Sync stay where
// they are; the next OpenLocal makes them durable.
func (s *Local) Close() error {
	s.syncMu.Lock() // let a running Sync finish with rootFile
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.rootFile.Close()
}
