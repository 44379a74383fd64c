package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned (wrapped) by Append after Close.
var ErrClosed = errors.New("audit: log closed")

// ErrLocked is returned (wrapped) by Open when another open Log, in this
// process or another, holds the file: two writers would fork the chain.
var ErrLocked = errors.New("audit: log in use by another writer")

const (
	fileMode = 0o600
	dirMode  = 0o700
)

// Options tune OpenWith.
type Options struct {
	// Now returns the time stamped on each record; nil means time.Now.
	// Tests inject a fixed clock.
	Now func() time.Time
}

// Log is an open audit log. Its methods are safe for concurrent use.
type Log struct {
	path     string
	now      func() time.Time
	repaired int64

	mu     sync.Mutex // orders writes; guards the fields below
	f      *os.File
	size   int64  // bytes in the file, all complete lines
	seq    int    // seq of the last record written
	last   string // hash of the last record written
	failed error  // set when the file can no longer be trusted to append to
	closed bool

	syncMu  sync.Mutex // one fsync at a time; guards synced and syncErr
	synced  int        // every record up to this seq is durable
	syncErr error      // set when an fsync failed or the file was closed

	durable atomic.Pointer[head] // the last durable record
}

type head struct {
	seq  int
	hash string
}

// Open opens the log at path with default options; see OpenWith.
func Open(path string) (*Log, error) { return OpenWith(path, Options{}) }

// OpenWith opens the log at path for appending, creating it (mode 0600,
// parent directories 0700) if needed. It reads and verifies the whole file
// first, to continue the chain from its last record. A last line without
// its newline, left by a crash in the middle of a write, is cut off (see
// Repaired); any other damage makes OpenWith fail with an error wrapping
// the *VerifyError that names the first bad line (errors.As), and
// ErrBroken (errors.Is). The file is locked against a second writer while
// open (on Unix systems); a second Open fails with ErrLocked.
func OpenWith(path string, o Options) (*Log, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	_, err := os.Lstat(path)
	created := errors.Is(err, fs.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, fileMode)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	l, err := open(f, path, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	if created {
		// Make the new file's name durable, not just its content.
		if err := syncDir(dir); err != nil {
			l.Close()
			return nil, fmt.Errorf("audit: open %s: sync directory: %w", path, err)
		}
	}
	return l, nil
}

func open(f *os.File, path string, o Options) (*Log, error) {
	if err := lockFile(f); err != nil {
		return nil, fmt.Errorf("audit: open %s: %w (%v)", path, ErrLocked, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("audit: open %s: not a regular file", path)
	}
	s, st, err := verify(f)
	var repaired int64
	if err != nil {
		if !st.torn {
			return nil, fmt.Errorf("audit: open %s: %w", path, err)
		}
		// Only a torn last line: its Append never returned, drop it.
		repaired = fi.Size() - st.end
		if err := f.Truncate(st.end); err != nil {
			return nil, fmt.Errorf("audit: open %s: cut torn last line: %w", path, err)
		}
	}
	// Whatever a previous process wrote may still be only in the page
	// cache; the chain continues from what is on disk.
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("audit: open %s: sync: %w", path, err)
	}
	l := &Log{
		path: path, now: o.Now, repaired: repaired,
		f: f, size: st.end, seq: s.Records, last: s.LastHash, synced: s.Records,
	}
	l.durable.Store(&head{s.Records, s.LastHash})
	return l, nil
}

// Repaired returns how many bytes of a torn last line Open cut off, 0 when
// the file ended cleanly. Callers should log it when it is not 0.
func (l *Log) Repaired() int64 { return l.repaired }

// Path returns the file the log writes to.
func (l *Log) Path() string { return l.path }

// Head returns the seq and hash of the last record known to be on disk (0
// and ZeroHash for an empty log). Every record whose Append returned is
// covered. A hub publishes it, or a node sends it elsewhere, so that a
// later rewrite of the whole file is caught (see the package
// documentation).
func (l *Log) Head() (seq int, hash string) {
	h := l.durable.Load()
	return h.seq, h.hash
}

// Append writes e as the next record and returns once the record is on
// disk. It fails with ErrInvalidEntry for an entry it refuses (nothing is
// written), with ErrClosed after Close, and with the underlying error when
// writing or syncing fails. After a failed sync the log takes no more
// records, since the file's state is unknown: reopen it, which verifies
// the chain. A failed write that leaves the file as it was (the disk was
// full, say) does not stop later Appends.
func (l *Log) Append(e Entry) (Record, error) {
	if err := e.validate(); err != nil {
		return Record{}, err
	}
	detail, norm, err := canonicalDetail(e.Detail)
	if err != nil {
		return Record{}, fmt.Errorf("%w: action %s: detail is not JSON: %v", ErrInvalidEntry, e.Action, err)
	}
	middle, err := encodeMiddle(e.Actor, e.Action, e.Subject, detail)
	if err != nil {
		return Record{}, fmt.Errorf("%w: action %s: %v", ErrInvalidEntry, e.Action, err)
	}
	if len(middle)+maxFixedLen > MaxRecordBytes {
		return Record{}, fmt.Errorf("%w: action %s: record would exceed %d bytes", ErrInvalidEntry, e.Action, MaxRecordBytes)
	}
	line := make([]byte, 0, len(middle)+maxFixedLen+1)

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return Record{}, fmt.Errorf("audit: append to %s: %w", l.path, ErrClosed)
	}
	if l.failed != nil {
		l.mu.Unlock()
		return Record{}, fmt.Errorf("audit: append to %s: log unusable after an earlier failure: %w", l.path, l.failed)
	}
	t := l.now().UTC()
	if !validTime(t) {
		l.mu.Unlock()
		return Record{}, fmt.Errorf("audit: append to %s: clock gives year %d", l.path, t.Year())
	}
	seq, prev := l.seq+1, l.last
	line, hash := appendLine(line, seq, t, middle, prev)
	if n, err := l.f.Write(line); err != nil {
		if n > 0 {
			// Put the file back as it was, or stop: the next record
			// must not follow a partial line.
			if terr := l.f.Truncate(l.size); terr != nil {
				l.failed = err
			}
		}
		l.mu.Unlock()
		return Record{}, fmt.Errorf("audit: append to %s: %w", l.path, err)
	}
	l.size += int64(len(line))
	l.seq, l.last = seq, hash
	l.mu.Unlock()

	if err := l.waitDurable(seq); err != nil {
		return Record{}, fmt.Errorf("audit: append to %s: sync: %w", l.path, err)
	}
	return Record{
		Seq: seq, Time: t, Actor: e.Actor, Action: e.Action, Subject: e.Subject,
		Detail: norm, Prev: prev, Hash: hash,
	}, nil
}

// waitDurable returns once record seq is on disk. One fsync covers every
// line written before it starts, so appends arriving while an fsync runs
// wait for the next one and share it.
func (l *Log) waitDurable(seq int) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.synced >= seq {
		return nil
	}
	if l.syncErr != nil {
		return l.syncErr
	}
	l.mu.Lock()
	target := head{l.seq, l.last}
	l.mu.Unlock()
	if err := l.f.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the dirty
		// pages; nothing written since the last good sync can be
		// trusted, so stop here.
		l.syncErr = err
		l.mu.Lock()
		l.failed = err
		l.mu.Unlock()
		return err
	}
	l.synced = target.seq
	l.durable.Store(&target)
	return nil
}

// Close syncs and closes the file. Appends still waiting for their sync
// are covered by Close's; Appends after it fail with ErrClosed. Close is
// idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	target := head{l.seq, l.last}
	l.mu.Unlock()

	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	var err error
	if l.syncErr == nil && l.synced < target.seq {
		if err = l.f.Sync(); err == nil {
			l.synced = target.seq
			l.durable.Store(&target)
		} else {
			l.syncErr = err // what Appends still waiting will see
		}
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if l.syncErr == nil {
		l.syncErr = ErrClosed
	}
	if err != nil {
		return fmt.Errorf("audit: close %s: %w", l.path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
