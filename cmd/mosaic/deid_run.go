package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/deid"
	"github.com/mosaic-imaging/mosaic/internal/dicom"
)

// Statuses of a report line.
const (
	statusOK       = "ok"
	statusRejected = "rejected"
	statusFailed   = "failed"
)

// Codes of the objects that are not simply written. Rejections carry the
// engine's codes (burned-in-annotation, pixel-text-risk, leak, ...).
const (
	codeSkipped      = "skipped"            // identical output already present
	codeReadError    = "read-error"         // not DICOM, truncated, unreadable
	codeUnsafeMember = "unsafe-zip-member"  // zip member name with .. or absolute
	codeZipLimit     = "zip-limit"          // zip member too large or inflating too much
	codeZipError     = "zip-error"          // corrupt archive or member
	codeExists       = "output-exists"      // a different file is at the output path
	codeDuplicate    = "duplicate-uid"      // two inputs of the run, one output, different bytes
	codeUnsafePath   = "unsafe-output-path" // an output path component is not a plain name
	codeWriteError   = "write-error"        // the output could not be written
	codeNotRegular   = "not-a-regular-file" // device, socket, ...
	codeNested       = "nested-archive"     // a zip inside a zip
	reasonDuplicate  = "duplicate SOP Instance UID with different content"
	reasonUnsafeName = "unsafe zip member name"
)

// record is one report line.
type record struct {
	seq    int
	Input  string       `json:"input"`
	Output string       `json:"output"`
	Status string       `json:"status"`
	Code   string       `json:"code,omitempty"`
	Reason string       `json:"reason"`
	Counts *deid.Counts `json:"counts,omitempty"`
	bytes  int64
}

// task is one object to de-identify: a file or a zip member, or an input
// that already failed while listing.
type task struct {
	seq   int
	input string
	path  string
	zf    *zip.File
	arch  *archive
	fail  *record
}

// archive is an open zip shared by the tasks of its members; it is closed
// when the last one is done.
type archive struct {
	rc   *zip.ReadCloser
	refs atomic.Int64
}

func (a *archive) release() {
	if a.refs.Add(-1) == 0 {
		a.rc.Close()
	}
}

type summary struct {
	ok, skipped, failed int
	rejected            map[string]int
	bytes               int64
}

func (s *summary) total() int {
	n := s.ok + s.skipped + s.failed
	for _, v := range s.rejected {
		n += v
	}
	return n
}

func (s *summary) rejectedTotal() int {
	n := 0
	for _, v := range s.rejected {
		n += v
	}
	return n
}

type runner struct {
	e       *env
	eng     *deid.Engine
	fl      deidFlags
	workers int
	outDir  string // as given
	outRes  string // resolved, to skip it when walking
	// skipFiles are resolved paths never read as input (key, report).
	skipFiles map[string]bool

	mu      sync.Mutex // guards written and the no-replace renames
	written map[string]struct{}
	dirs    sync.Map // output directories known to exist
	// noTmpfile is set once unnamed files proved unsupported.
	noTmpfile atomic.Bool

	// Progress, read by the progress line.
	found, done, failedN, rejectedN atomic.Int64
	listed                          atomic.Bool // every input listed: found is the total
	outBytes                        atomic.Int64
	errMu                           sync.Mutex // serialises stderr
	progress                        bool
}

// run lists the inputs, de-identifies them with the workers, and writes
// the report in input order.
func (r *runner) run(args []string) (summary, error) {
	sum := summary{rejected: map[string]int{}}
	var report *bufio.Writer
	var reportFile *os.File
	if r.fl.report != "" {
		f, err := os.OpenFile(r.fl.report, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return sum, fmt.Errorf("deid: report: %w", err)
		}
		reportFile = f
		report = bufio.NewWriterSize(f, 64<<10)
	}
	r.progress = !r.fl.quiet && isTerminal(r.e.stderr)
	if !useUnnamed || !unnamedWorks(r.outDir) {
		r.noTmpfile.Store(true)
	}

	tasks := make(chan task, 4*r.workers)
	results := make(chan record, 4*r.workers)
	go func() {
		defer close(tasks)
		defer r.listed.Store(true)
		r.list(args, func(t task) bool {
			r.found.Add(1)
			select {
			case tasks <- t:
				return true
			case <-r.e.ctx.Done():
				if t.arch != nil {
					t.arch.release()
				}
				return false
			}
		})
	}()
	var wg sync.WaitGroup
	for range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{stage: r.outDir}
			for t := range tasks {
				if r.e.ctx.Err() != nil {
					if t.arch != nil {
						t.arch.release()
					}
					continue
				}
				results <- r.process(t, w)
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()

	stopProgress := r.startProgress()
	// Reorder so that the report follows the input order.
	pending := map[int]record{}
	next := 0
	var werr error
	emit := func(rec record) {
		switch rec.Status {
		case statusOK:
			if rec.Code == codeSkipped {
				sum.skipped++
			} else {
				sum.ok++
				sum.bytes += rec.bytes
			}
		case statusRejected:
			sum.rejected[rec.Code]++
		default:
			sum.failed++
			r.printErr("deid: %s: failed: %s", rec.Input, rec.Reason)
		}
		if report != nil && werr == nil {
			b, _ := json.Marshal(rec)
			b = append(b, '\n')
			if _, err := report.Write(b); err != nil {
				werr = err
			}
		}
	}
	for rec := range results {
		pending[rec.seq] = rec
		for {
			p, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			emit(p)
		}
	}
	// Only a cancelled run leaves gaps.
	keys := make([]int, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		emit(pending[k])
	}
	stopProgress()
	if report != nil {
		if err := report.Flush(); err != nil && werr == nil {
			werr = err
		}
		if err := reportFile.Close(); err != nil && werr == nil {
			werr = err
		}
	}
	if werr != nil {
		return sum, fmt.Errorf("deid: report: %w", werr)
	}
	if err := r.e.ctx.Err(); err != nil {
		return sum, fmt.Errorf("deid: interrupted after %d objects: %w", sum.total(), err)
	}
	if r.fl.sync && sum.ok > 0 {
		if err := syncFS(r.outDir); err != nil {
			return sum, fmt.Errorf("deid: sync %s: %w", r.outDir, err)
		}
	}
	return sum, nil
}

// list enumerates the objects of the inputs in a stable order, calling
// emit for each; emit returns false to stop.
func (r *runner) list(args []string, emit func(task) bool) {
	seq := 0
	add := func(t task) bool {
		t.seq = seq
		seq++
		return emit(t)
	}
	failed := func(input, code, reason string) bool {
		return add(task{input: input, fail: &record{Input: input, Status: statusFailed, Code: code, Reason: reason}})
	}
	for _, in := range args {
		fi, err := os.Stat(in)
		if err != nil {
			if !failed(in, codeReadError, err.Error()) {
				return
			}
			continue
		}
		if !fi.IsDir() {
			if !r.listFile(in, fi, add, failed) {
				return
			}
			continue
		}
		rootRes, _ := resolvePath(in)
		root := in
		if li, err := os.Lstat(in); err == nil && li.Mode()&fs.ModeSymlink != 0 {
			root = in + string(filepath.Separator) // walk the folder a named link leads to
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if !failed(p, codeReadError, err.Error()) {
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
				if r.outRes != "" && within(res, r.outRes) {
					return filepath.SkipDir // never read what this run writes
				}
				return nil
			}
			if r.skipFiles[res] {
				return nil
			}
			info, err := os.Stat(p) // follows links to files
			if err != nil {
				if !failed(p, codeReadError, err.Error()) {
					return filepath.SkipAll
				}
				return nil
			}
			if info.IsDir() {
				// Links inside folders are not followed (they may loop).
				if !failed(p, codeNotRegular, "link to a folder, not followed: name the folder itself") {
					return filepath.SkipAll
				}
				return nil
			}
			if !r.listFile(p, info, add, failed) {
				return filepath.SkipAll
			}
			return nil
		})
		if err != nil {
			failed(in, codeReadError, err.Error())
		}
	}
}

func isZipName(p string) bool { return strings.EqualFold(filepath.Ext(p), ".zip") }

// listFile emits a file, or the members of a zip archive.
func (r *runner) listFile(p string, fi fs.FileInfo, add func(task) bool, failed func(string, string, string) bool) bool {
	if !fi.Mode().IsRegular() {
		return failed(p, codeNotRegular, "not a regular file")
	}
	if !isZipName(p) {
		return add(task{input: p, path: p})
	}
	zr, err := zip.OpenReader(p)
	if err != nil {
		return failed(p, codeZipError, err.Error())
	}
	a := &archive{rc: zr}
	a.refs.Store(1)
	defer a.release()
	for _, zf := range zr.File {
		name := zf.Name
		input := p + "!" + name
		if strings.HasSuffix(name, "/") && zf.UncompressedSize64 == 0 {
			if !unsafeMemberName(name) {
				continue // a folder entry
			}
		}
		switch {
		case unsafeMemberName(name):
			if !failed(input, codeUnsafeMember, reasonUnsafeName+": absolute, drive-qualified or with \"..\"; not read") {
				return false
			}
			continue
		case zf.UncompressedSize64 > uint64(r.fl.maxMember):
			if !failed(input, codeZipLimit, fmt.Sprintf("zip member declares %d bytes, more than --zip-max-size %d; not read", zf.UncompressedSize64, r.fl.maxMember)) {
				return false
			}
			continue
		case isZipName(name):
			if !failed(input, codeNested, "zip archive inside a zip archive: extract the outer archive first") {
				return false
			}
			continue
		}
		a.refs.Add(1)
		if !add(task{input: input, zf: zf, arch: a}) {
			return false
		}
	}
	return true
}

// unsafeMemberName reports a zip member name that would leave the folder
// it was extracted to: absolute, drive-qualified, or with a ".."
// component (with either separator), or with a NUL.
func unsafeMemberName(name string) bool {
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

// worker is the state of one worker goroutine.
type worker struct {
	// stage is the folder where the next output starts: the folder of the
	// last one. Consecutive objects are mostly of one series, so the new
	// file usually starts in its final folder, which keeps the file
	// system's allocation local (all files starting at the top of OUTDIR
	// made creation several times slower on ext4).
	stage string
}

// process de-identifies one task.
func (r *runner) process(t task, w *worker) (rec record) {
	if t.fail != nil {
		rec = *t.fail
		rec.seq = t.seq
		r.count(rec)
		return rec
	}
	defer func() {
		rec.seq = t.seq
		rec.Input = t.input
		r.count(rec)
	}()
	ropts := dicom.ReadOptions{MaxInflated: r.fl.maxInflated}
	if t.zf != nil {
		defer t.arch.release()
		rc, err := t.zf.Open()
		if err != nil {
			return record{Status: statusFailed, Code: codeZipError, Reason: err.Error()}
		}
		defer rc.Close()
		lr := &zipLimit{r: rc, max: r.fl.maxMember, ratio: int64(r.fl.maxRatio), comp: int64(t.zf.CompressedSize64)}
		ropts.MaxInflated = min(ropts.MaxInflated, r.fl.maxMember)
		return r.deidentify(lr, ropts, w)
	}
	f, err := os.Open(t.path)
	if err != nil {
		return record{Status: statusFailed, Code: codeReadError, Reason: err.Error()}
	}
	defer f.Close()
	return r.deidentify(f, ropts, w)
}

func (r *runner) count(rec record) {
	switch rec.Status {
	case statusFailed:
		r.failedN.Add(1)
	case statusRejected:
		r.rejectedN.Add(1)
	}
	r.done.Add(1)
}

// zipLimit bounds what one zip member may inflate to.
type zipLimit struct {
	r     io.Reader
	n     int64
	max   int64
	ratio int64
	comp  int64
	err   error
}

func (z *zipLimit) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	n, err := z.r.Read(p)
	z.n += int64(n)
	switch {
	case z.n > z.max:
		z.err = fmt.Errorf("zip member inflates beyond --zip-max-size %d bytes; not read further", z.max)
	case z.n > ratioFloor && z.n > z.ratio*max(z.comp, 1):
		z.err = fmt.Errorf("zip member inflates more than %d times its compressed size (likely a zip bomb); not read further", z.ratio)
	}
	if z.err != nil {
		return 0, z.err
	}
	return n, err
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

// deidentify rewrites one object into a new file and publishes it at its
// output path once complete. An unpublished file never outlives the call.
func (r *runner) deidentify(src io.Reader, ropts dicom.ReadOptions, w *worker) record {
	tmp, err := r.newOutFile(w.stage)
	if err != nil {
		return record{Status: statusFailed, Code: codeWriteError, Reason: err.Error()}
	}
	defer tmp.discard()
	cw := &countWriter{w: tmp.f}
	res, err := r.eng.Rewrite(cw, src, ropts)
	if lr, ok := src.(*zipLimit); ok && lr.err != nil {
		// Whatever the decoder made of the cut stream, nothing is kept.
		return record{Status: statusFailed, Code: codeZipLimit, Reason: lr.err.Error()}
	}
	if err != nil {
		var rj *deid.Rejection
		if errors.As(err, &rj) {
			return record{Status: statusRejected, Code: rj.Code, Reason: rj.Reason}
		}
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == tmp.f.Name() {
			return record{Status: statusFailed, Code: codeWriteError, Reason: "write: " + pe.Err.Error()}
		}
		return record{Status: statusFailed, Code: codeReadError, Reason: err.Error()}
	}
	counts := res.Counts
	parts := []string{res.PatientPseudonym, res.StudyUID, res.SeriesUID, res.SOPInstanceUID}
	for _, c := range parts {
		if !safeComponent(c) {
			return record{Status: statusFailed, Code: codeUnsafePath, Reason: "an output path component is not a plain name of letters, digits, dots and dashes (check the policy's patient ID prefix)"}
		}
	}
	dir := filepath.Join(r.outDir, parts[0], parts[1], parts[2])
	dest := filepath.Join(dir, parts[3]+".dcm")
	if err := r.makeDir(dir, parts[:3]); err != nil {
		return record{Status: statusFailed, Code: codeWriteError, Reason: err.Error()}
	}
	w.stage = dir
	code, reason, err := r.place(tmp, dest)
	rec := record{Output: dest, Counts: &counts, bytes: cw.n}
	switch {
	case err != nil:
		return record{Status: statusFailed, Code: codeWriteError, Reason: err.Error()}
	case code == codeSkipped:
		rec.Status, rec.Code, rec.Reason = statusOK, code, reason
	case code != "":
		return record{Status: statusFailed, Code: code, Reason: reason}
	default:
		rec.Status = statusOK
		r.outBytes.Add(cw.n)
	}
	return rec
}

// useUnnamed lets tests exercise the named temporary files that systems
// without O_TMPFILE use.
var useUnnamed = true

// unnamedWorks tries an unnamed file in dir, named and removed at once.
func unnamedWorks(dir string) bool {
	f, err := openUnnamed(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [12]byte
	rand.Read(b[:])
	probe := filepath.Join(dir, ".deid-probe-"+hex.EncodeToString(b[:]))
	if err := linkUnnamed(f, probe); err != nil {
		return false
	}
	return os.Remove(probe) == nil
}

// outFile is an output being written: an unnamed file (O_TMPFILE, Linux)
// that only gets a name once complete, or a hidden temporary file in a
// folder of OUTDIR that is renamed into place.
type outFile struct {
	f         *os.File
	name      string // the temporary name; "" when unnamed
	published bool
}

// newOutFile starts an output in dir, a folder of OUTDIR, readable by its
// owner only: de-identified data stays private to the user who made it.
func (r *runner) newOutFile(dir string) (*outFile, error) {
	if !r.noTmpfile.Load() {
		f, err := openUnnamed(dir)
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
		if err := linkUnnamed(o.f, dest); err != nil {
			return err
		}
		o.published = true
		return o.f.Close()
	}
	if err := o.f.Close(); err != nil {
		return err
	}
	if err := renameNoReplace(o.name, dest); err != nil {
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
// "..", so that an output path never leaves OUTDIR.
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

// makeDir creates OUTDIR/a/b/c one level at a time, refusing anything that
// is not a real directory (a symbolic link planted in OUTDIR could
// otherwise lead outside it).
func (r *runner) makeDir(dir string, parts []string) error {
	if _, ok := r.dirs.Load(dir); ok {
		return nil
	}
	cur := r.outDir
	for _, c := range parts {
		cur = filepath.Join(cur, c)
		if _, ok := r.dirs.Load(cur); ok {
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
		r.dirs.Store(cur, true)
	}
	return nil
}

// place publishes the finished file at dest unless a file is there. It
// returns a code and reason when the object is skipped or fails.
func (r *runner) place(o *outFile, dest string) (code, reason string, err error) {
	r.mu.Lock()
	err = o.publish(dest)
	if err == nil {
		r.written[dest] = struct{}{}
		r.mu.Unlock()
		return "", "", nil
	}
	_, inRun := r.written[dest]
	r.mu.Unlock()
	if !errors.Is(err, fs.ErrExist) {
		return "", "", fmt.Errorf("move into place: %w", err)
	}
	same, err := sameContent(o, dest)
	if err != nil {
		return codeExists, "a file is already at the output path and could not be compared (" + err.Error() + "); not overwritten", nil
	}
	switch {
	case same && inRun:
		return codeSkipped, "identical to the output of another input of this run", nil
	case same:
		return codeSkipped, "identical output already present", nil
	case inRun:
		return codeDuplicate, reasonDuplicate, nil
	}
	return codeExists, "a different file is already at the output path; not overwritten", nil
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

// printErr writes a message line on stderr, clearing the progress line.
func (r *runner) printErr(format string, a ...any) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.progress {
		fmt.Fprint(r.e.stderr, "\r\x1b[K")
	}
	fmt.Fprintf(r.e.stderr, format+"\n", a...)
}

// startProgress redraws a progress line on a terminal; it returns the
// function that stops and clears it.
func (r *runner) startProgress() func() {
	if !r.progress {
		return func() {}
	}
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				r.errMu.Lock()
				fmt.Fprint(r.e.stderr, "\r\x1b[K")
				r.errMu.Unlock()
				return
			case <-t.C:
				el := time.Since(start).Seconds()
				b := r.outBytes.Load()
				total := "listing inputs"
				if r.listed.Load() {
					total = fmt.Sprintf("of %d", r.found.Load())
				}
				r.errMu.Lock()
				fmt.Fprintf(r.e.stderr, "\r\x1b[Kdeid: %d objects (%s), %d rejected, %d failed, %s written, %.0f MB/s",
					r.done.Load(), total, r.rejectedN.Load(), r.failedN.Load(), humanBytes(b), float64(b)/1e6/max(el, 0.001))
				r.errMu.Unlock()
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}

func (r *runner) printSummary(s summary, took time.Duration, policy string) {
	w := r.e.stdout
	fmt.Fprintf(w, "deid: processed %d objects with policy %s into %s in %s (%s written)\n",
		s.total(), policy, r.outDir, took.Round(10*time.Millisecond), humanBytes(s.bytes))
	fmt.Fprintf(w, "  ok        %7d\n", s.ok)
	fmt.Fprintf(w, "  skipped   %7d  (identical file already present)\n", s.skipped)
	fmt.Fprintf(w, "  rejected  %7d\n", s.rejectedTotal())
	codes := make([]string, 0, len(s.rejected))
	for c := range s.rejected {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "    %-24s %7d\n", c, s.rejected[c])
	}
	fmt.Fprintf(w, "  failed    %7d\n", s.failed)
	if r.fl.report != "" {
		fmt.Fprintf(w, "report: %s\n", r.fl.report)
	}
}
