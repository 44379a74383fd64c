package ingest

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// Defaults of the input guards.
const (
	// DefaultMaxMember bounds the bytes read from one zip member.
	DefaultMaxMember = 4 << 30
	// DefaultMaxRatio bounds how many times a zip member may inflate.
	DefaultMaxRatio = 200
	// RatioFloor is the size below which the ratio is not enforced: a
	// small member cannot be a bomb, and tiny files compress well.
	RatioFloor = 1 << 20
	// MaxInflated bounds the inflated size of a dataset in the deflated
	// transfer syntax, which is held in memory.
	MaxInflated = 512 << 20
)

// Codes of the inputs this package fails itself. A sink adds its own.
const (
	CodeReadError    = "read-error"         // not DICOM, truncated, unreadable, cannot be opened or walked
	CodeUnsafeMember = "unsafe-zip-member"  // zip member name with .. or absolute
	CodeZipLimit     = "zip-limit"          // zip member too large or inflating too much
	CodeZipError     = "zip-error"          // corrupt archive or member
	CodeNotRegular   = "not-a-regular-file" // device, socket, link to a folder inside a folder
	CodeNested       = "nested-archive"     // a zip inside a zip
	CodeCancelled    = "cancelled"          // the run was cancelled before the object was read
	// ReasonUnsafeName starts the reason of CodeUnsafeMember.
	ReasonUnsafeName = "unsafe zip member name"
	// ReasonCancelled is the reason of CodeCancelled.
	ReasonCancelled = "cancelled"
)

// Limits are the guards on zip members.
type Limits struct {
	// MaxMember bounds the bytes of one member, declared and inflated
	// (DefaultMaxMember when 0).
	MaxMember int64
	// MaxRatio bounds how many times a member over RatioFloor may inflate
	// (DefaultMaxRatio when 0).
	MaxRatio int
}

func (l Limits) withDefaults() Limits {
	if l.MaxMember <= 0 {
		l.MaxMember = DefaultMaxMember
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l
}

// ListOptions say what List reads.
type ListOptions struct {
	Limits
	// SkipDir is a resolved folder (ResolvePath) never read: the
	// destination of the run.
	SkipDir string
	// SkipFiles are resolved paths never read: the site key, the report.
	SkipFiles map[string]bool
}

// Object is one DICOM object found in the inputs: a file or a zip member,
// or an input that failed while listing (Failure is then set).
type Object struct {
	// Seq is the object's place in input order, from 0.
	Seq int
	// Input names it: a path, or "archive.zip!member" for a zip member.
	Input string
	// Failure is set when the object cannot be read at all.
	Failure *Failure

	path string
	zf   *zip.File
	arch *archive
	lim  Limits
}

// Failure is why an input could not be read.
type Failure struct {
	Code   string
	Reason string
}

// archive is an open zip shared by the objects of its members; it is
// closed when the last one is released.
type archive struct {
	rc   *zip.ReadCloser
	refs atomic.Int64
}

func (a *archive) release() {
	if a.refs.Add(-1) == 0 {
		a.rc.Close()
	}
}

// Release lets go of the object's archive; every Object List gives must
// be released once (Run does it), read or not. Releasing twice is a
// no-op.
func (o *Object) Release() {
	if o.arch != nil {
		o.arch.release()
		o.arch = nil
	}
}

// Source is an object's stream, as opened by Open. For a zip member it
// enforces the size and ratio limits: once one is passed every Read
// fails, and LimitErr says so.
type Source struct {
	r     io.Reader
	c     io.Closer
	n     int64
	max   int64
	ratio int64
	comp  int64
	zip   bool
	err   error
}

// Open opens the object for reading. The caller closes the Source.
func (o *Object) Open() (*Source, *Failure) {
	if o.Failure != nil {
		return nil, o.Failure
	}
	if o.zf != nil {
		rc, err := o.zf.Open()
		if err != nil {
			return nil, &Failure{Code: CodeZipError, Reason: err.Error()}
		}
		return &Source{r: rc, c: rc, zip: true, max: o.lim.MaxMember, ratio: int64(o.lim.MaxRatio), comp: int64(o.zf.CompressedSize64)}, nil
	}
	f, err := os.Open(o.path)
	if err != nil {
		return nil, &Failure{Code: CodeReadError, Reason: err.Error()}
	}
	return &Source{r: f, c: f}, nil
}

// MaxBytes returns the most bytes the source may give (0: no bound of
// its own), to bound what a decoder inflates in memory.
func (s *Source) MaxBytes() int64 {
	if s.zip {
		return s.max
	}
	return 0
}

func (s *Source) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	if !s.zip {
		return n, err
	}
	s.n += int64(n)
	switch {
	case s.n > s.max:
		s.err = fmt.Errorf("zip member inflates beyond the size limit of %d bytes; not read further", s.max)
	case s.n > RatioFloor && s.n > s.ratio*max(s.comp, 1):
		s.err = fmt.Errorf("zip member inflates more than %d times its compressed size (likely a zip bomb); not read further", s.ratio)
	}
	if s.err != nil {
		return 0, s.err
	}
	return n, err
}

// LimitErr returns the error of a limit the source passed, or nil. A sink
// must not keep an object whose source passed a limit.
func (s *Source) LimitErr() error { return s.err }

// Close closes the file or zip member.
func (s *Source) Close() error { return s.c.Close() }

// List enumerates the objects of the inputs in a stable order (inputs in
// the order given, folders in lexical order, zip members in archive
// order), calling emit for each; emit returns false to stop. Inputs that
// cannot be opened, walked or read are emitted as failed objects. List
// stops when ctx is done and returns ctx's error.
func List(ctx context.Context, inputs []string, opts ListOptions, emit func(*Object) bool) error {
	l := &lister{ctx: ctx, opts: opts, emit: emit}
	l.opts.Limits = opts.Limits.withDefaults()
	l.run(inputs)
	return ctx.Err()
}

type lister struct {
	ctx     context.Context
	opts    ListOptions
	emit    func(*Object) bool
	seq     int
	stopped bool
}

func (l *lister) add(o *Object) bool {
	if l.stopped {
		o.Release()
		return false
	}
	if l.ctx.Err() != nil {
		o.Release()
		l.stopped = true
		return false
	}
	o.Seq = l.seq
	o.lim = l.opts.Limits
	l.seq++
	if !l.emit(o) {
		l.stopped = true
	}
	return !l.stopped
}

func (l *lister) failed(input, code, reason string) bool {
	return l.add(&Object{Input: input, Failure: &Failure{Code: code, Reason: reason}})
}

func (l *lister) run(inputs []string) {
	for _, in := range inputs {
		fi, err := os.Stat(in)
		if err != nil {
			if !l.failed(in, CodeReadError, err.Error()) {
				return
			}
			continue
		}
		if !fi.IsDir() {
			if !l.file(in, fi) {
				return
			}
			continue
		}
		rootRes, _ := ResolvePath(in)
		root := in
		if li, err := os.Lstat(in); err == nil && li.Mode()&fs.ModeSymlink != 0 {
			root = in + string(filepath.Separator) // walk the folder a named link leads to
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if !l.failed(p, CodeReadError, err.Error()) {
					return filepath.SkipAll
				}
				if d != nil && d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			rel, _ := filepath.Rel(in, p)
			res := filepath.Join(rootRes, rel)
			if d.IsDir() {
				if l.opts.SkipDir != "" && Within(res, l.opts.SkipDir) {
					return filepath.SkipDir // never read what this run writes
				}
				return nil
			}
			if l.opts.SkipFiles[res] {
				return nil
			}
			info, err := os.Stat(p) // follows links to files
			if err != nil {
				if !l.failed(p, CodeReadError, err.Error()) {
					return filepath.SkipAll
				}
				return nil
			}
			if info.IsDir() {
				// Links inside folders are not followed (they may loop).
				if !l.failed(p, CodeNotRegular, "link to a folder, not followed: name the folder itself") {
					return filepath.SkipAll
				}
				return nil
			}
			if !l.file(p, info) {
				return filepath.SkipAll
			}
			return nil
		})
		if err != nil && !l.stopped {
			if !l.failed(in, CodeReadError, err.Error()) {
				return
			}
		}
		if l.stopped {
			return
		}
	}
}

// IsZipName reports whether p names a zip archive.
func IsZipName(p string) bool { return strings.EqualFold(filepath.Ext(p), ".zip") }

// file emits a file, or the members of a zip archive.
func (l *lister) file(p string, fi fs.FileInfo) bool {
	if !fi.Mode().IsRegular() {
		return l.failed(p, CodeNotRegular, "not a regular file")
	}
	if !IsZipName(p) {
		return l.add(&Object{Input: p, path: p})
	}
	zr, err := zip.OpenReader(p)
	if err != nil {
		return l.failed(p, CodeZipError, err.Error())
	}
	a := &archive{rc: zr}
	a.refs.Store(1)
	defer a.release()
	for _, zf := range zr.File {
		name := zf.Name
		input := p + "!" + name
		if strings.HasSuffix(name, "/") && zf.UncompressedSize64 == 0 && !UnsafeMemberName(name) {
			continue // a folder entry
		}
		switch {
		case UnsafeMemberName(name):
			if !l.failed(input, CodeUnsafeMember, ReasonUnsafeName+": absolute, drive-qualified or with \"..\"; not read") {
				return false
			}
			continue
		case zf.UncompressedSize64 > uint64(l.opts.MaxMember):
			if !l.failed(input, CodeZipLimit, fmt.Sprintf("zip member declares %d bytes, more than the size limit of %d; not read", zf.UncompressedSize64, l.opts.MaxMember)) {
				return false
			}
			continue
		case IsZipName(name):
			if !l.failed(input, CodeNested, "zip archive inside a zip archive: extract the outer archive first") {
				return false
			}
			continue
		}
		a.refs.Add(1)
		if !l.add(&Object{Input: input, zf: zf, arch: a}) {
			return false
		}
	}
	return true
}

// UnsafeMemberName reports a zip member name that would leave the folder
// it was extracted to: absolute, drive-qualified, or with a ".."
// component (with either separator), or with a NUL.
func UnsafeMemberName(name string) bool {
	if name == "" || strings.ContainsRune(name, 0) {
		return true
	}
	n := strings.ReplaceAll(name, `\`, "/")
	if strings.HasPrefix(n, "/") || path.IsAbs(n) {
		return true
	}
	if len(n) >= 2 && n[1] == ':' {
		return true
	}
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}

// ResolvePath returns the absolute form of p with symbolic links resolved
// in the longest part of it that exists, so paths can be compared even
// before they are created.
func ResolvePath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	cur := abs
	for {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// Within reports whether path p is dir or lies under it (both resolved).
func Within(p, dir string) bool {
	if p == dir {
		return true
	}
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
