package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Layout of a pack store: ROOT/packs/000000000012.pack.
const (
	dirPacks = "packs"
	packExt  = ".pack"

	// DefaultMaxPackBytes is the size at which a pack stops taking new
	// blobs.
	DefaultMaxPackBytes = 1 << 30

	// defaultEmptyAge is how long a pack with no live record must have
	// been left alone before RemoveEmpty removes it. With the lock a
	// writer holds (see lockPack), it covers the instant between another
	// process creating a pack and locking it.
	defaultEmptyAge = time.Minute

	recHeaderSize = 64
	recVersion    = 1
	flagDeleted   = 1
)

var recMagic = [4]byte{'M', 'B', 'L', 'B'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// PackOptions tunes a pack store. The zero value is the default.
type PackOptions struct {
	// MaxPackBytes is the size at which a pack stops taking new blobs
	// (default DefaultMaxPackBytes). A blob larger than that still goes
	// whole into one pack.
	MaxPackBytes int64

	// emptyAge overrides defaultEmptyAge (tests; negative means none).
	emptyAge time.Duration
}

// Packs is the default engine for a directory on a local disk. It appends
// blobs to a few large files, the packs (ROOT/packs/SEQ.pack), instead of
// creating a file per blob: storing an object then costs a write of its
// bytes and of a 64-byte record header, and making a whole batch durable
// one fdatasync(2) per pack written since the last Sync. There is no
// inode, directory entry or rename per blob, which on the file systems
// measured was most of the kernel's work in an ingest (see
// docs/performance.md).
//
// The engine does not index its packs: Commit returns a Ref whose Loc says
// where the blob is, and the caller keeps it (a data node keeps it in the
// index row of the object). So Commit cannot know whether the content is
// already stored: it always stores a new copy (existed is false), and the
// caller, who decides which copy it keeps, deletes the others.
//
// Each blob is one record: a header (magic, version, flags, size, time,
// the SHA-256 of the content, and a CRC-32C of the header) followed by
// the content. A writer holds a pack alone while it writes, so the
// records of one pack follow each other; concurrent writers use separate
// packs. A pack is written by one process only and never appended to
// after it is closed; a new process starts new packs.
//
// Durability: Commit writes the header after the content and starts the
// write-back of both; Sync fdatasyncs every pack written since the last
// Sync. A crash can leave, at the end of a pack, a record whose content
// or header never reached the disk; such a record was never synced, so no
// caller holds its Ref, and Open verifies the header and its key before
// reading. List (which a collector uses) stops at the first invalid
// header of a pack.
//
// Delete marks the record deleted in its header, flushes that mark, and
// then releases the record's disk blocks with fallocate(2)
// FALLOC_FL_PUNCH_HOLE where the file system allows. A reader already open
// on the blob then reads zeros: callers delete only blobs nothing refers
// to. RemoveEmpty deletes packs left without a live record. A garbage
// collector can keep a GCMark and then list (ListChanged) only the packs
// that may have taken garbage since.
//
// Blobs stored under their key by the Local engine in the same root
// (sha256/) stay readable through Refs without a Loc, and are listed and
// deleted as before; new blobs always go to packs.
type Packs struct {
	root     string
	dir      string
	files    *Local // blobs a Local store left in root; nil if none
	maxSize  int64
	emptyAge time.Duration

	mu      sync.Mutex
	free    []*pack          // open packs no writer holds
	dirty   map[*pack]bool   // written since the last Sync took its set
	syncing map[*pack]bool   // being synced
	active  map[uint64]*pack // every pack this process writes
	nextSeq uint64           // number of the next new pack
	closed  bool
	syncMu  sync.Mutex // one Sync at a time
	// syncErr is the first failed flush: every Sync after it fails too,
	// until the store is opened again. After a failed fdatasync the
	// kernel may drop the unwritten pages and report nothing the next
	// time, so a later Sync that succeeded would vouch for blobs whose
	// bytes are gone.
	syncErr error
}

// syncFile flushes a pack; tests replace it to make flushes fail.
var syncFile = fdatasync

// pack is one pack file this process writes to.
type pack struct {
	seq    uint64
	f      *os.File
	end    int64 // offset of the next record; changed by the holder only
	held   bool  // a writer holds it
	sealed bool  // full, or broken by a write error: takes no more blobs
}

var _ Store = (*Packs)(nil)

// OpenPacks opens (creating it if needed) the pack store rooted at the
// directory root.
func OpenPacks(root string, opt PackOptions) (*Packs, error) {
	if root == "" {
		return nil, errors.New("blobstore: open packs: empty path")
	}
	root = filepath.Clean(root)
	s := &Packs{
		root:     root,
		dir:      filepath.Join(root, dirPacks),
		maxSize:  opt.MaxPackBytes,
		emptyAge: opt.emptyAge,
		dirty:    make(map[*pack]bool),
		syncing:  make(map[*pack]bool),
		active:   make(map[uint64]*pack),
		nextSeq:  1,
	}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxPackBytes
	}
	switch {
	case s.emptyAge == 0:
		s.emptyAge = defaultEmptyAge
	case s.emptyAge < 0:
		s.emptyAge = 0
	}
	if err := os.MkdirAll(s.dir, dirMode); err != nil {
		return nil, fmt.Errorf("blobstore: open packs: %w", err)
	}
	for _, d := range []string{root, filepath.Dir(root)} {
		if err := fsyncPath(d); err != nil {
			return nil, fmt.Errorf("blobstore: open packs: %w", err)
		}
	}
	seqs, err := s.packSeqs()
	if err != nil {
		return nil, fmt.Errorf("blobstore: open packs: %w", err)
	}
	if len(seqs) > 0 {
		s.nextSeq = seqs[len(seqs)-1] + 1
	}
	// Numbers are not used twice, even when the last packs were removed:
	// a pack numbered at or below a collector's mark must be one that was
	// closed when the mark was taken.
	if m := s.GCMark(); m.Seq >= s.nextSeq {
		s.nextSeq = m.Seq + 1
	}
	if fi, err := os.Stat(filepath.Join(root, dirBlobs)); err == nil && fi.IsDir() {
		if s.files, err = OpenLocal(root); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Root returns the directory the store lives in.
func (s *Packs) Root() string { return s.root }

func (s *Packs) packPath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%012d%s", seq, packExt))
}

// packSeqs returns the numbers of the pack files present, in order.
func (s *Packs) packSeqs() ([]uint64, error) {
	names, err := readDirNames(s.dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, n := range names {
		if seq, ok := parsePackName(n); ok {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

func parsePackName(name string) (uint64, bool) {
	num, ok := strings.CutSuffix(name, packExt)
	if !ok || len(num) != 12 {
		return 0, false
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	return seq, err == nil
}

func formatLoc(seq uint64, off int64) Loc {
	return Loc(strconv.FormatUint(seq, 10) + ":" + strconv.FormatInt(off, 10))
}

// parseLoc reads "SEQ:OFFSET"; anything else is not a location.
func parseLoc(l Loc) (seq uint64, off int64, ok bool) {
	a, b, found := strings.Cut(string(l), ":")
	if !found || !digits(a) || !digits(b) {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(a, 10, 64)
	off, err2 := strconv.ParseInt(b, 10, 64)
	return seq, off, err1 == nil && err2 == nil && seq > 0
}

func digits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// recHeader is the decoded header of a record.
type recHeader struct {
	flags byte
	size  int64
	time  int64 // Unix nanoseconds of the Commit
	key   [sha256.Size]byte
}

func (h *recHeader) encode(b []byte) {
	clear(b[:recHeaderSize])
	copy(b[0:4], recMagic[:])
	b[4] = recVersion
	b[5] = h.flags
	binary.LittleEndian.PutUint64(b[8:16], uint64(h.size))
	binary.LittleEndian.PutUint64(b[16:24], uint64(h.time))
	copy(b[24:56], h.key[:])
	binary.LittleEndian.PutUint32(b[60:64], crc32.Checksum(b[:60], castagnoli))
}

// decode reports whether b holds a valid header.
func (h *recHeader) decode(b []byte) bool {
	if len(b) < recHeaderSize || [4]byte(b[0:4]) != recMagic || b[4] != recVersion {
		return false
	}
	if binary.LittleEndian.Uint32(b[60:64]) != crc32.Checksum(b[:60], castagnoli) {
		return false
	}
	size := binary.LittleEndian.Uint64(b[8:16])
	if size > 1<<62 {
		return false
	}
	h.flags = b[5]
	h.size = int64(size)
	h.time = int64(binary.LittleEndian.Uint64(b[16:24]))
	h.key = [sha256.Size]byte(b[24:56])
	return true
}

// take gives the caller a pack to write to alone: a free one, or a new
// one.
func (s *Packs) take() (*pack, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if n := len(s.free); n > 0 {
		p := s.free[n-1]
		s.free = s.free[:n-1]
		p.held = true
		s.mu.Unlock()
		return p, nil
	}
	seq := s.nextSeq
	s.nextSeq++
	s.mu.Unlock()

	// Another process writing to the same root (an ingest beside the
	// server) may have taken the number: go on to the next free one.
	f, err := os.OpenFile(s.packPath(seq), os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	for tries := 0; errors.Is(err, fs.ErrExist) && tries < 1000; tries++ {
		s.mu.Lock()
		seq = max(s.nextSeq, seq+1)
		s.nextSeq = seq + 1
		s.mu.Unlock()
		f, err = os.OpenFile(s.packPath(seq), os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	}
	if err != nil {
		return nil, err
	}
	// The lock tells other processes' RemoveEmpty that the pack is in
	// use, even while it holds no record yet.
	if err := lockPack(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	// The pack's name must survive a crash before any blob in it is
	// acknowledged; this is one fsync per new pack.
	if err := fsyncPath(s.dir); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	p := &pack{seq: seq, f: f, held: true}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		f.Close()
		return nil, ErrClosed
	}
	s.active[seq] = p
	return p, nil
}

// release hands a pack back after a writer's Commit or Abort.
func (s *Packs) release(p *pack, committed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.held = false
	if committed {
		s.dirty[p] = true
	}
	if p.end >= s.maxSize {
		p.sealed = true
	}
	if s.closed {
		return
	}
	if p.sealed {
		s.retireLocked(p)
		return
	}
	s.free = append(s.free, p)
}

// retireLocked closes a sealed pack once no writer holds it and no Sync
// still has to flush it. s.mu is held.
func (s *Packs) retireLocked(p *pack) {
	if p.held || s.dirty[p] || s.syncing[p] {
		return
	}
	if s.active[p.seq] == p {
		delete(s.active, p.seq)
		p.f.Close()
	}
}

// Create implements Store. The blob goes into a pack the writer holds
// until Commit or Abort.
func (s *Packs) Create(ctx context.Context) (Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blobstore: create: %w", err)
	}
	p, err := s.take()
	if err != nil {
		return nil, fmt.Errorf("blobstore: create: %w", err)
	}
	w := &PackWriter{hashingFile: hashingFile{f: p.f, base: p.end + recHeaderSize, h: sha256.New()}, s: s, p: p, start: p.end}
	// The header is written by Commit; until then its place is a hole.
	if _, err := p.f.Seek(p.end+recHeaderSize, io.SeekStart); err != nil {
		w.err = fmt.Errorf("blobstore: create: %w", err)
	}
	return w, nil
}

// PackWriter is the Writer of the pack engine. Like LocalWriter it has
// ReadFrom, so a copy from a file or socket stays in the kernel.
type PackWriter struct {
	hashingFile // on the pack's file, from the record's content
	s           *Packs
	p           *pack
	start       int64 // offset of the record
}

var (
	_ Writer        = (*PackWriter)(nil)
	_ io.ReaderFrom = (*PackWriter)(nil)
)

// Commit implements Writer: it writes the record's header and hands the
// pack back. existed is always false (see Packs). It does not sync.
func (w *PackWriter) Commit() (Ref, int64, bool, error) {
	if w.done {
		return Ref{}, 0, false, fmt.Errorf("blobstore: commit: %w", ErrClosed)
	}
	if w.err != nil {
		err := w.err
		w.Abort()
		return Ref{}, 0, false, err
	}
	w.done = true
	h := recHeader{size: w.size, time: time.Now().UnixNano(), key: [sha256.Size]byte(w.h.Sum(nil))}
	var b [recHeaderSize]byte
	h.encode(b[:])
	k := Key(hex.EncodeToString(h.key[:]))
	if _, err := w.p.f.WriteAt(b[:], w.start); err != nil {
		w.rollback()
		return Ref{}, 0, false, fmt.Errorf("blobstore: commit %s: %w", k, err)
	}
	end := w.start + recHeaderSize + w.size
	startWritebackRange(w.p.f, w.start, end-w.start)
	w.p.end = end
	w.s.release(w.p, true)
	return Ref{Key: k, Loc: formatLoc(w.p.seq, w.start)}, w.size, false, nil
}

// Abort implements Writer: the pack is cut back to where the record
// began.
func (w *PackWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	return w.rollback()
}

// rollback removes the unfinished record and hands the pack back; a pack
// that cannot be cut back takes no more blobs.
func (w *PackWriter) rollback() error {
	w.done = true
	err := w.p.f.Truncate(w.start)
	if err != nil {
		w.s.mu.Lock()
		w.p.sealed = true
		w.s.mu.Unlock()
		err = fmt.Errorf("blobstore: abort: %w", err)
	}
	w.s.release(w.p, false)
	return err
}

// openRecord opens the pack a Loc points into and checks that a live
// record of key k starts there. flag is os.O_RDONLY or os.O_RDWR.
func (s *Packs) openRecord(op string, r Ref, flag int) (*os.File, recHeader, int64, error) {
	var h recHeader
	seq, off, ok := parseLoc(r.Loc)
	if !ok {
		return nil, h, 0, fmt.Errorf("blobstore: %s %s: %w (not a pack location)", op, r, ErrNotFound)
	}
	f, err := os.OpenFile(s.packPath(seq), flag, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, h, 0, fmt.Errorf("blobstore: %s %s: %w", op, r, ErrNotFound)
		}
		return nil, h, 0, fmt.Errorf("blobstore: %s %s: %w", op, r, err)
	}
	var b [recHeaderSize]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		f.Close()
		if errors.Is(err, io.EOF) {
			return nil, h, 0, fmt.Errorf("blobstore: %s %s: %w", op, r, ErrNotFound)
		}
		return nil, h, 0, fmt.Errorf("blobstore: %s %s: %w", op, r, err)
	}
	if !h.decode(b[:]) || hex.EncodeToString(h.key[:]) != string(r.Key) || h.flags&flagDeleted != 0 {
		f.Close()
		return nil, h, 0, fmt.Errorf("blobstore: %s %s: %w", op, r, ErrNotFound)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, h, 0, fmt.Errorf("blobstore: %s %s: %w", op, r, err)
	}
	if off+recHeaderSize+h.size > fi.Size() {
		f.Close()
		return nil, h, 0, fmt.Errorf("blobstore: %s %s: %w (the pack ends inside the blob)", op, r, ErrNotFound)
	}
	return f, h, off, nil
}

// Open implements Store.
func (s *Packs) Open(ctx context.Context, r Ref) (Reader, error) {
	if err := r.Key.check("open"); err != nil {
		return nil, err
	}
	if r.Loc == "" {
		if s.files == nil {
			return nil, fmt.Errorf("blobstore: open %s: %w", r, ErrNotFound)
		}
		return s.files.Open(ctx, r)
	}
	if s.isClosed() {
		return nil, fmt.Errorf("blobstore: open: %w", ErrClosed)
	}
	f, h, off, err := s.openRecord("open", r, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return &PackReader{f: f, base: off + recHeaderSize, size: h.size}, nil
}

// Stat implements Store.
func (s *Packs) Stat(ctx context.Context, r Ref) (int64, error) {
	if err := r.Key.check("stat"); err != nil {
		return 0, err
	}
	if r.Loc == "" {
		if s.files == nil {
			return 0, fmt.Errorf("blobstore: stat %s: %w", r, ErrNotFound)
		}
		return s.files.Stat(ctx, r)
	}
	if s.isClosed() {
		return 0, fmt.Errorf("blobstore: stat: %w", ErrClosed)
	}
	f, h, _, err := s.openRecord("stat", r, os.O_RDONLY)
	if err != nil {
		return 0, err
	}
	f.Close()
	return h.size, nil
}

// Delete implements Store; see Packs for what deleting from a pack does.
func (s *Packs) Delete(ctx context.Context, r Ref) error {
	if err := r.Key.check("delete"); err != nil {
		return err
	}
	if r.Loc == "" {
		if s.files == nil {
			return nil
		}
		return s.files.Delete(ctx, r)
	}
	if s.isClosed() {
		return fmt.Errorf("blobstore: delete: %w", ErrClosed)
	}
	f, h, off, err := s.openRecord("delete", r, os.O_RDWR)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	h.flags |= flagDeleted
	var b [recHeaderSize]byte
	h.encode(b[:])
	if _, err := f.WriteAt(b[:], off); err != nil {
		return fmt.Errorf("blobstore: delete %s: %w", r, err)
	}
	// The mark must be on disk before the content is released: a crash
	// in between must not leave a live header over zeros.
	if err := syncFile(f); err != nil {
		// The failed flush may have been the one that should have
		// reported lost pages of blobs still being written to this
		// pack: no Sync may vouch for them now (see syncErr).
		err = fmt.Errorf("blobstore: delete %s: %w", r, err)
		s.mu.Lock()
		if s.syncErr == nil {
			s.syncErr = fmt.Errorf("blobstore: sync: %w (no blob is made durable until the store is opened again)", err)
		}
		s.mu.Unlock()
		return err
	}
	if err := punchHole(f, off+recHeaderSize, h.size); err != nil {
		return fmt.Errorf("blobstore: delete %s: %w", r, err)
	}
	return nil
}

// List implements Store: the blobs a Local store left in the root, then
// the live records of every pack, pack by pack. It changes nothing; see
// RemoveEmpty.
func (s *Packs) List(ctx context.Context, fn func(r Ref, size int64, mod time.Time) error) error {
	if s.isClosed() {
		return fmt.Errorf("blobstore: list: %w", ErrClosed)
	}
	if s.files != nil {
		if err := s.files.List(ctx, fn); err != nil {
			return err
		}
	}
	return s.listPacks(ctx, GCMark{}, fn)
}

// GCMark is where a garbage collection that ran to the end left off. A
// pack can take new garbage only while it is written to (records that
// never got an index row, copies whose deletion failed), and a pack is
// never written to again once closed; so the next collection needs to
// look only at the packs numbered above Seq, which were not all closed
// when the mark was taken, and, going by the clock, at those changed at
// or after Time. The zero GCMark means: look at everything.
type GCMark struct {
	Time time.Time
	Seq  uint64
}

// IsZero reports whether m is the zero GCMark.
func (m GCMark) IsZero() bool { return m.Time.IsZero() && m.Seq == 0 }

// IdleSeq returns the highest pack number up to which every pack present
// is closed for writing: neither written by this process nor locked by
// another (where there is no flock, every pack counts as possibly in
// use). A collector takes it before it starts, for the mark it leaves.
func (s *Packs) IdleSeq() (uint64, error) {
	seqs, err := s.packSeqs()
	if err != nil {
		return 0, fmt.Errorf("blobstore: idle packs: %w", err)
	}
	var idle uint64
	for _, seq := range seqs {
		s.mu.Lock()
		_, writing := s.active[seq]
		s.mu.Unlock()
		if writing {
			break
		}
		f, err := os.Open(s.packPath(seq))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return 0, fmt.Errorf("blobstore: idle packs: %w", err)
		}
		locked, err := tryLockPack(f)
		f.Close() // and with it the lock just taken
		if err != nil {
			return 0, fmt.Errorf("blobstore: idle packs: %w", err)
		}
		if !locked {
			break
		}
		idle = seq
	}
	return idle, nil
}

// ListChanged is List for what may have changed since a garbage
// collection left m: the packs numbered above m.Seq or modified at or
// after m.Time, and the blobs of a Local store in the root modified at or
// after m.Time. With the zero mark it is List.
func (s *Packs) ListChanged(ctx context.Context, m GCMark, fn func(r Ref, size int64, mod time.Time) error) error {
	if s.isClosed() {
		return fmt.Errorf("blobstore: list: %w", ErrClosed)
	}
	if s.files != nil {
		err := s.files.List(ctx, func(r Ref, size int64, mod time.Time) error {
			if mod.Before(m.Time) {
				return nil
			}
			return fn(r, size, mod)
		})
		if err != nil {
			return err
		}
	}
	return s.listPacks(ctx, m, fn)
}

func (s *Packs) listPacks(ctx context.Context, m GCMark, fn func(r Ref, size int64, mod time.Time) error) error {
	seqs, err := s.changedSeqs(m)
	if err != nil {
		return fmt.Errorf("blobstore: list: %w", err)
	}
	for _, seq := range seqs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("blobstore: list: %w", err)
		}
		if _, err := s.scanPack(seq, fn); err != nil {
			return err
		}
	}
	return nil
}

// changedSeqs returns the numbers of the packs present that are numbered
// above m.Seq or were modified at or after m.Time (all of them for the
// zero mark), in order.
func (s *Packs) changedSeqs(m GCMark) ([]uint64, error) {
	seqs, err := s.packSeqs()
	if err != nil || m.IsZero() {
		return seqs, err
	}
	out := seqs[:0]
	for _, seq := range seqs {
		if seq > m.Seq {
			out = append(out, seq)
			continue
		}
		fi, err := os.Stat(s.packPath(seq))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // removed meanwhile
		case err != nil:
			return nil, err
		case !fi.ModTime().Before(m.Time):
			out = append(out, seq)
		}
	}
	return out, nil
}

// RemoveEmpty removes the packs that hold no live record, that no
// process writes (this one's packs are known, another's are locked) and
// that were last changed more than a minute ago, and returns how many it
// removed. A pack whose records cannot all be read is kept. A garbage
// collector calls it after its deletes.
func (s *Packs) RemoveEmpty(ctx context.Context) (int, error) {
	return s.RemoveEmptyChanged(ctx, GCMark{})
}

// RemoveEmptyChanged is RemoveEmpty for the packs ListChanged looks at: a
// pack is left empty only by deletes, which change it.
func (s *Packs) RemoveEmptyChanged(ctx context.Context, m GCMark) (int, error) {
	if s.isClosed() {
		return 0, fmt.Errorf("blobstore: remove empty packs: %w", ErrClosed)
	}
	seqs, err := s.changedSeqs(m)
	if err != nil {
		return 0, fmt.Errorf("blobstore: remove empty packs: %w", err)
	}
	removed := 0
	var errs []error
	for _, seq := range seqs {
		if err := ctx.Err(); err != nil {
			return removed, fmt.Errorf("blobstore: remove empty packs: %w", err)
		}
		empty, err := s.scanPack(seq, nil)
		if err != nil {
			errs = append(errs, err) // the others may still be removed
			continue
		}
		if !empty {
			continue
		}
		ok, err := s.removeEmpty(seq)
		if err != nil {
			errs = append(errs, fmt.Errorf("blobstore: remove pack %d: %w", seq, err))
			continue
		}
		if ok {
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

// gcMarkName is the file, among the packs, that holds the GCMark.
const gcMarkName = "gc-mark"

// GCMark returns the mark a garbage collector stored with SetGCMark, or
// the zero mark when there is none or it cannot be read (then the next
// collection looks at everything).
func (s *Packs) GCMark() GCMark {
	b, err := os.ReadFile(filepath.Join(s.dir, gcMarkName))
	if err != nil {
		return GCMark{}
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return GCMark{}
	}
	t, err := time.Parse(time.RFC3339Nano, fields[0])
	if err != nil {
		return GCMark{}
	}
	seq, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return GCMark{}
	}
	return GCMark{Time: t, Seq: seq}
}

// SetGCMark stores m for GCMark. The file is replaced whole; losing it
// only makes the next collection look at everything.
func (s *Packs) SetGCMark(m GCMark) error {
	tmp, err := os.CreateTemp(s.dir, gcMarkName+".tmp-")
	if err != nil {
		return fmt.Errorf("blobstore: gc mark: %w", err)
	}
	_, err = fmt.Fprintf(tmp, "%s %d\n", m.Time.UTC().Format(time.RFC3339Nano), m.Seq)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(s.dir, gcMarkName))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("blobstore: gc mark: %w", err)
	}
	return nil
}

// Err returns the flush failure that stops every Sync (see Sync), or nil
// while the store can still make blobs durable.
func (s *Packs) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncErr
}

func (s *Packs) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// removeEmpty removes pack seq, found without live records, unless a
// process may still write to it, and reports whether it did.
func (s *Packs) removeEmpty(seq uint64) (bool, error) {
	s.mu.Lock()
	_, writing := s.active[seq]
	s.mu.Unlock()
	if writing {
		return false, nil
	}
	f, err := os.Open(s.packPath(seq))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if time.Since(fi.ModTime()) < s.emptyAge {
		return false, nil
	}
	locked, err := tryLockPack(f)
	if err != nil || !locked {
		return false, err // another process writes to it
	}
	// Scanned again under the lock: a pack with a live record is kept.
	if empty, err := s.scanPack(seq, nil); err != nil || !empty {
		return false, err
	}
	if err := os.Remove(f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// scanPack calls fn for each live record of pack seq, up to the first
// invalid header. It reports whether the pack is empty: every byte of it
// read as records, none of them live. A pack whose scan stopped early
// (the end of an interrupted write, or a damaged header) is never empty:
// records the scan could not reach may be live.
func (s *Packs) scanPack(seq uint64, fn func(r Ref, size int64, mod time.Time) error) (empty bool, err error) {
	f, err := os.Open(s.packPath(seq))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // removed meanwhile
		}
		return false, fmt.Errorf("blobstore: scan pack %d: %w", seq, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("blobstore: scan pack %d: %w", seq, err)
	}
	var b [recHeaderSize]byte
	live := 0
	off := int64(0)
	for off+recHeaderSize <= fi.Size() {
		if _, err := f.ReadAt(b[:], off); err != nil {
			return false, fmt.Errorf("blobstore: scan pack %d: %w", seq, err)
		}
		var h recHeader
		if !h.decode(b[:]) {
			break
		}
		next := off + recHeaderSize + h.size
		if next > fi.Size() {
			break
		}
		if h.flags&flagDeleted == 0 {
			live++
			if fn != nil {
				r := Ref{Key: Key(hex.EncodeToString(h.key[:])), Loc: formatLoc(seq, off)}
				if err := fn(r, h.size, time.Unix(0, h.time)); err != nil {
					return false, err
				}
			}
		}
		off = next
	}
	return live == 0 && off == fi.Size(), nil
}

// Sync implements Store: one fdatasync per pack written since the last
// Sync, run side by side. A failed flush fails this Sync and every later
// one (see syncErr); the pack takes no more blobs.
func (s *Packs) Sync(ctx context.Context) error {
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
	if s.syncErr != nil {
		s.mu.Unlock()
		return s.syncErr
	}
	var todo []*pack
	for p := range s.dirty {
		todo = append(todo, p)
		s.syncing[p] = true
	}
	clear(s.dirty)
	s.mu.Unlock()

	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, p := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = syncFile(p.f)
		}()
	}
	wg.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for i, p := range todo {
		delete(s.syncing, p)
		if errs[i] != nil {
			p.sealed = true
			if first == nil {
				first = fmt.Errorf("blobstore: sync: pack %d: %w (no blob is made durable until the store is opened again)", p.seq, errs[i])
				s.syncErr = first
			}
			// The free list must not hand it out again.
			s.free = slices.DeleteFunc(s.free, func(q *pack) bool { return q == p })
		}
		if p.sealed && !s.closed {
			s.retireLocked(p)
		}
	}
	return first
}

// Close implements Store. It does not Sync.
func (s *Packs) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for seq, p := range s.active {
		p.f.Close()
		delete(s.active, seq)
	}
	s.free = nil
	s.mu.Unlock()
	if s.files != nil {
		return s.files.Close()
	}
	return nil
}

// PackReader reads one blob of a pack through its own descriptor.
type PackReader struct {
	f    *os.File
	base int64 // offset of the content in the pack
	size int64
	pos  int64
}

var (
	_ Reader      = (*PackReader)(nil)
	_ io.WriterTo = (*PackReader)(nil)
)

// Size implements Reader.
func (r *PackReader) Size() int64 { return r.size }

// ReadAt implements io.ReaderAt.
func (r *PackReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("blobstore: read: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := r.size - off; int64(want) > rest {
		p = p[:rest]
	}
	n, err := r.f.ReadAt(p, r.base+off)
	if err == nil && n < want {
		err = io.EOF
	}
	return n, err
}

// Read implements io.Reader.
func (r *PackReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (r *PackReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.size
	default:
		return 0, errors.New("blobstore: seek: bad whence")
	}
	if off < 0 {
		return 0, errors.New("blobstore: seek: negative position")
	}
	r.pos = off
	return off, nil
}

// WriteTo implements io.WriterTo. The copy goes through the descriptor
// with a limit, so io.Copy to a socket or a file can stay in the kernel
// (sendfile(2), copy_file_range(2)).
func (r *PackReader) WriteTo(w io.Writer) (int64, error) {
	if r.pos >= r.size {
		return 0, nil
	}
	if _, err := r.f.Seek(r.base+r.pos, io.SeekStart); err != nil {
		return 0, err
	}
	want := r.size - r.pos
	n, err := io.Copy(w, &io.LimitedReader{R: r.f, N: want})
	r.pos += n
	if err == nil && n < want {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Close implements io.Closer.
func (r *PackReader) Close() error { return r.f.Close() }
