package deid

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/fsx"
)

// Statuses of an object written to a Tree.
const (
	TreeOK       = "ok"       // written, or an identical file already there
	TreeRejected = "rejected" // refused by the engine (Rejection.Code)
	TreeFailed   = "failed"   // unreadable input or output not written
)

// Codes of the objects a Tree does not simply write. Rejections carry the
// engine's codes (burned-in-annotation, pixel-text-risk, leak, ...).
const (
	CodeSkipped     = "skipped"            // identical output already present
	CodeReadError   = "read-error"         // not DICOM, truncated, unreadable
	CodeExists      = "output-exists"      // a different file is at the output path
	CodeDuplicate   = "duplicate-uid"      // two inputs of the run, one output, different bytes
	CodeUnsafePath  = "unsafe-output-path" // an output path component is not a plain name
	CodeWriteError  = "write-error"        // the output could not be written
	ReasonDuplicate = "duplicate SOP Instance UID with different content"
)

// Placed is what became of one object given to a Tree.
type Placed struct {
	Status string
	Code   string
	Reason string
	// Output is the path of the file (empty when nothing was written).
	Output string
	// Patient is the patient pseudonym of an object written or skipped.
	Patient string
	Counts  *Counts
	// Bytes is the size of a newly written file (0 when skipped).
	Bytes int64
}

// Tree is a folder of de-identified objects laid out as
//
//	DIR/<patient pseudonym>/<study UID>/<series UID>/<SOP instance UID>.dcm
//
// Each file gets its name only once complete: it is written unnamed
// (O_TMPFILE on Linux) or under a hidden temporary name, then linked or
// renamed into place without ever replacing a file. A file already there
// with the same bytes is left alone (skipped); one with other bytes is
// never overwritten. Files are readable by their owner only, and one Sync
// makes every file of a run durable. A Tree is safe for concurrent use
// through its Writers.
type Tree struct {
	dir string
	eng *Engine

	mu      sync.Mutex // guards written and the no-replace renames
	written map[string]struct{}
	dirs    sync.Map // output folders known to exist
	// noTmpfile is set when unnamed files are unsupported.
	noTmpfile atomic.Bool
	wrote     atomic.Bool
}

// useUnnamed lets tests exercise the named temporary files that systems
// without O_TMPFILE use.
var useUnnamed = true

// OpenTree creates dir when missing (mode 0700) and returns a Tree that
// writes objects de-identified by eng into it.
func OpenTree(dir string, eng *Engine) (*Tree, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	t := &Tree{dir: dir, eng: eng, written: map[string]struct{}{}}
	if !useUnnamed || !unnamedWorks(dir) {
		t.noTmpfile.Store(true)
	}
	return t, nil
}

// Dir returns the tree's folder as given to OpenTree.
func (t *Tree) Dir() string { return t.dir }

// Sync flushes the file system that holds the tree (one call for every
// file written), when anything was written.
func (t *Tree) Sync() error {
	if !t.wrote.Load() {
		return nil
	}
	return fsx.SyncFS(t.dir)
}

// TreeWriter writes objects into a Tree; each goroutine uses its own.
type TreeWriter struct {
	t *Tree
	// stage is the folder where the next output starts: the folder of the
	// last one. Consecutive objects are mostly of one series, so the new
	// file usually starts in its final folder, which keeps the file
	// system's allocation local (all files starting at the top of the tree
	// made creation several times slower on ext4).
	stage string
}

// Writer returns a writer for one goroutine.
func (t *Tree) Writer() *TreeWriter { return &TreeWriter{t: t, stage: t.dir} }

// Write de-identifies the object read from src and publishes it at its
// place in the tree once complete. check, when not nil, is called after
// the object was read and before it is published: an error from it
// fails the object with that code (the caller's limits on the input) and
// nothing is kept. An unpublished file never outlives the call.
func (w *TreeWriter) Write(src io.Reader, opts dicom.ReadOptions, check func() (code string, err error)) Placed {
	t := w.t
	tmp, err := t.newOutFile(w.stage)
	if err != nil {
		return Placed{Status: TreeFailed, Code: CodeWriteError, Reason: err.Error()}
	}
	defer tmp.discard()
	cw := &countWriter{w: tmp.f}
	res, err := t.eng.Rewrite(cw, src, opts)
	if check != nil {
		if code, cerr := check(); cerr != nil {
			// Whatever the decoder made of the cut stream, nothing is kept.
			return Placed{Status: TreeFailed, Code: code, Reason: cerr.Error()}
		}
	}
	if err != nil {
		var rj *Rejection
		if errors.As(err, &rj) {
			return Placed{Status: TreeRejected, Code: rj.Code, Reason: rj.Reason}
		}
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == tmp.f.Name() {
			return Placed{Status: TreeFailed, Code: CodeWriteError, Reason: "write: " + pe.Err.Error()}
		}
		return Placed{Status: TreeFailed, Code: CodeReadError, Reason: err.Error()}
	}
	counts := res.Counts
	parts := []string{res.PatientPseudonym, res.StudyUID, res.SeriesUID, res.SOPInstanceUID}
	for _, c := range parts {
		if !safeComponent(c) {
			return Placed{Status: TreeFailed, Code: CodeUnsafePath, Reason: "an output path component is not a plain name of letters, digits, dots and dashes (check the policy's patient ID prefix)"}
		}
	}
	dir := filepath.Join(t.dir, parts[0], parts[1], parts[2])
	dest := filepath.Join(dir, parts[3]+".dcm")
	if err := t.makeDir(dir, parts[:3]); err != nil {
		return Placed{Status: TreeFailed, Code: CodeWriteError, Reason: err.Error()}
	}
	w.stage = dir
	code, reason, err := t.place(tmp, dest)
	p := Placed{Status: TreeOK, Output: dest, Patient: res.PatientPseudonym, Counts: &counts}
	switch {
	case err != nil:
		return Placed{Status: TreeFailed, Code: CodeWriteError, Reason: err.Error()}
	case code == CodeSkipped:
		p.Code, p.Reason = code, reason
	case code != "":
		return Placed{Status: TreeFailed, Code: code, Reason: reason}
	default:
		p.Bytes = cw.n
		t.wrote.Store(true)
	}
	return p
}

// unnamedWorks tries an unnamed file in dir, named and removed at once.
func unnamedWorks(dir string) bool {
	f, err := fsx.CreateUnnamed(dir, 0o600)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [12]byte
	rand.Read(b[:])
	probe := filepath.Join(dir, ".deid-probe-"+hex.EncodeToString(b[:]))
	if err := fsx.LinkUnnamed(f, probe); err != nil {
		return false
	}
	return os.Remove(probe) == nil
}

// countWriter counts the bytes written to a file.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadFrom lets the pixel data of a file move inside the kernel when the
// destination can take it that way.
func (c *countWriter) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := c.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(c.w, r)
	}
	c.n += n
	return n, err
}

// outFile is an output being written: an unnamed file (O_TMPFILE, Linux)
// that only gets a name once complete, or a hidden temporary file in a
// folder of the tree that is renamed into place.
type outFile struct {
	f         *os.File
	name      string // the temporary name; "" when unnamed
	published bool
}

// newOutFile starts an output in dir, a folder of the tree, readable by
// its owner only: de-identified data stays private to the user who made
// it.
func (t *Tree) newOutFile(dir string) (*outFile, error) {
	if !t.noTmpfile.Load() {
		f, err := fsx.CreateUnnamed(dir, 0o600)
		if err == nil {
			return &outFile{f: f}, nil
		}
	}
	var b [12]byte
	for range 100 {
		rand.Read(b[:])
		name := filepath.Join(dir, ".deid-"+hex.EncodeToString(b[:])+".tmp")
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return &outFile{f: f, name: name}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	return nil, errors.New("cannot create a temporary file in " + dir)
}

// publish gives the complete file the name dest, failing with fs.ErrExist
// when a file already has it; nothing is ever replaced.
func (o *outFile) publish(dest string) error {
	if o.name == "" {
		if err := fsx.LinkUnnamed(o.f, dest); err != nil {
			return err
		}
		o.published = true
		return o.f.Close()
	}
	if err := o.f.Close(); err != nil {
		return err
	}
	if err := fsx.RenameNoReplace(o.name, dest); err != nil {
		return err
	}
	o.published = true
	return nil
}

// discard closes the file and removes it unless it was published.
func (o *outFile) discard() {
	if o.published {
		return
	}
	o.f.Close()
	if o.name != "" {
		os.Remove(o.name)
	}
}

// safeComponent accepts only names of [A-Za-z0-9.-] that are not "." or
// "..", so that an output path never leaves the tree.
func safeComponent(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// makeDir creates DIR/a/b/c one level at a time, refusing anything that
// is not a real directory (a symbolic link planted in the tree could
// otherwise lead outside it).
func (t *Tree) makeDir(dir string, parts []string) error {
	if _, ok := t.dirs.Load(dir); ok {
		return nil
	}
	cur := t.dir
	for _, c := range parts {
		cur = filepath.Join(cur, c)
		if _, ok := t.dirs.Load(cur); ok {
			continue
		}
		err := os.Mkdir(cur, 0o700)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create output folder: %w", err)
		}
		if err != nil {
			fi, lerr := os.Lstat(cur)
			if lerr != nil {
				return fmt.Errorf("create output folder: %w", lerr)
			}
			if !fi.IsDir() {
				return fmt.Errorf("output path %s exists and is not a folder (a link or a file); not written", cur)
			}
		}
		t.dirs.Store(cur, true)
	}
	return nil
}

// place publishes the finished file at dest unless a file is there. It
// returns a code and reason when the object is skipped or fails.
func (t *Tree) place(o *outFile, dest string) (code, reason string, err error) {
	t.mu.Lock()
	err = o.publish(dest)
	if err == nil {
		t.written[dest] = struct{}{}
		t.mu.Unlock()
		return "", "", nil
	}
	_, inRun := t.written[dest]
	t.mu.Unlock()
	if !errors.Is(err, fs.ErrExist) {
		return "", "", fmt.Errorf("move into place: %w", err)
	}
	same, err := sameContent(o, dest)
	if err != nil {
		return CodeExists, "a file is already at the output path and could not be compared (" + err.Error() + "); not overwritten", nil
	}
	switch {
	case same && inRun:
		return CodeSkipped, "identical to the output of another input of this run", nil
	case same:
		return CodeSkipped, "identical output already present", nil
	case inRun:
		return CodeDuplicate, ReasonDuplicate, nil
	}
	return CodeExists, "a different file is already at the output path; not overwritten", nil
}

// sameContent compares the new file with the regular file at path, byte
// for byte.
func sameContent(o *outFile, path string) (bool, error) {
	fb, err := os.Lstat(path)
	if err != nil {
		return false, err
	}
	if !fb.Mode().IsRegular() {
		return false, errors.New("not a regular file")
	}
	a := o.f
	if o.name != "" { // closed before the rename was tried
		if a, err = os.Open(o.name); err != nil {
			return false, err
		}
		defer a.Close()
	}
	fa, err := a.Stat()
	if err != nil {
		return false, err
	}
	if fa.Size() != fb.Size() {
		return false, nil
	}
	b, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer b.Close()
	ra := io.NewSectionReader(a, 0, fa.Size())
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(ra, ba)
		nb, eb := io.ReadFull(b, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == ea, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
}
