package ingest

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeSink reads each object whole and reports its content as the
// reason; the outcome settles after a delay that makes later objects
// finish first, so only the reordering puts them back in input order.
type fakeSink struct {
	delay  func(content string) time.Duration
	onPut  func(content string)
	puts   atomic.Int64
	active atomic.Int64
	peak   atomic.Int64
}

func (s *fakeSink) Worker() Worker { return s }

func (s *fakeSink) Put(ctx context.Context, src *Source) Pending {
	s.puts.Add(1)
	n := s.active.Add(1)
	defer s.active.Add(-1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	b, err := io.ReadAll(src)
	if err != nil {
		return Done{Status: StatusFailed, Code: "fake-read", Reason: err.Error()}
	}
	if s.onPut != nil {
		s.onPut(string(b))
	}
	ch := make(chan Outcome, 1)
	go func() {
		if s.delay != nil {
			time.Sleep(s.delay(string(b)))
		}
		ch <- Outcome{Status: "ok", Reason: string(b), Bytes: int64(len(b)), Patient: strings.SplitN(string(b), "/", 2)[0]}
	}()
	return chanPending(ch)
}

type chanPending chan Outcome

func (c chanPending) Wait() Outcome { return <-c }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

type member struct {
	name string
	data []byte
}

func writeZip(t *testing.T, path string, members []member) {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, m := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.String())
}

func collect(t *testing.T, ctx context.Context, inputs []string, sink Sink, opts Options) ([]Result, Summary, error) {
	t.Helper()
	var out []Result
	opts.OnResult = func(r Result) { out = append(out, r) }
	sum, err := Run(ctx, inputs, sink, opts)
	return out, sum, err
}

// TestRunOrder: results come back in input order although they settle
// in reverse, every object is read once, and the summary adds up.
func TestRunOrder(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := range 60 {
		p := filepath.Join(dir, "in", fmt.Sprintf("p%d", i%7), fmt.Sprintf("%03d.dcm", i))
		writeFile(t, p, fmt.Sprintf("p%d/%03d", i%7, i))
	}
	// WalkDir's order: lexical by folder, then by file.
	filepath.WalkDir(filepath.Join(dir, "in"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			want = append(want, p)
		}
		return nil
	})
	sink := &fakeSink{delay: func(c string) time.Duration {
		var n int
		fmt.Sscanf(c[strings.Index(c, "/")+1:], "%d", &n)
		return time.Duration(60-n) * 200 * time.Microsecond
	}}
	var progress int
	res, sum, err := collect(t, context.Background(), []string{filepath.Join(dir, "in")}, sink, Options{
		Workers: 8, ProgressEvery: time.Millisecond,
		OnProgress: func(p Progress) {
			progress++
			if p.Done > p.Found || p.Failed != 0 {
				t.Errorf("progress %+v", p)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(want) {
		t.Fatalf("%d results for %d files", len(res), len(want))
	}
	for i, r := range res {
		if r.Seq != i || r.Input != want[i] || r.Status != "ok" {
			t.Fatalf("result %d: %+v, want input %s", i, r, want[i])
		}
		b, _ := os.ReadFile(r.Input)
		if r.Reason != string(b) {
			t.Errorf("%s: sink read %q, file holds %q", r.Input, r.Reason, b)
		}
	}
	if sum.Objects != 60 || sum.Count("ok") != 60 || sum.Patients != 7 || sum.Bytes != int64(60*len("p0/000")) || sum.Cancelled {
		t.Errorf("summary %+v", sum)
	}
	if sink.puts.Load() != 60 {
		t.Errorf("%d puts for 60 objects", sink.puts.Load())
	}
	if sink.peak.Load() > 8 {
		t.Errorf("%d objects read at once with 8 workers", sink.peak.Load())
	}
	if progress == 0 {
		t.Error("no progress reported")
	}
}

// TestRunGuards: zip members with unsafe names, declared or actual sizes
// beyond the limit, bombs and nested archives fail with their code and
// are never given to the sink; the safe members are.
func TestRunGuards(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(dir, "export.zip")
	bomb := make([]byte, 4<<20) // zeros inflate about a thousand times
	writeZip(t, arch, []member{
		{"study/", nil},
		{"study/a.dcm", []byte("A")},
		{"../evil.dcm", []byte("EVIL")},
		{"/abs.dcm", []byte("ABS")},
		{`..\win.dcm`, []byte("WIN")},
		{`C:\drive.dcm`, []byte("DRIVE")},
		{"sub/../../up.dcm", []byte("UP")},
		{"bomb.dcm", bomb},
		{"inner.ZIP", []byte("PK")},
		{"study/b.dcm", []byte("B")},
	})
	var seen sync.Map
	sink := &fakeSink{onPut: func(c string) { seen.Store(c, true) }}
	res, sum, err := collect(t, context.Background(), []string{arch}, sink, Options{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ member, status, code string }{
		{"study/a.dcm", "ok", ""},
		{"../evil.dcm", StatusFailed, CodeUnsafeMember},
		{"/abs.dcm", StatusFailed, CodeUnsafeMember},
		{`..\win.dcm`, StatusFailed, CodeUnsafeMember},
		{`C:\drive.dcm`, StatusFailed, CodeUnsafeMember},
		{"sub/../../up.dcm", StatusFailed, CodeUnsafeMember},
		{"bomb.dcm", StatusFailed, CodeZipLimit},
		{"inner.ZIP", StatusFailed, CodeNested},
		{"study/b.dcm", "ok", ""},
	}
	if len(res) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(res), len(want), res)
	}
	for i, w := range want {
		r := res[i]
		if r.Input != arch+"!"+w.member || r.Status != w.status || r.Code != w.code {
			t.Errorf("result %d: %s %s %s (%s), want %s %s %s", i, r.Input, r.Status, r.Code, r.Reason, w.member, w.status, w.code)
		}
	}
	for _, c := range []string{"EVIL", "ABS", "WIN", "DRIVE", "UP", "PK"} {
		if _, ok := seen.Load(c); ok {
			t.Errorf("the sink was given %s", c)
		}
	}
	if sum.Count(StatusFailed) != 7 || sum.Count("ok") != 2 || sum.Count(StatusFailed, CodeUnsafeMember) != 5 {
		t.Errorf("summary %+v", sum)
	}

	// The declared size is checked before reading, the actual size while
	// reading; both fail, and nothing passes.
	for _, max := range []int64{1, 3} {
		res, _, _ = collect(t, context.Background(), []string{arch}, &fakeSink{}, Options{ListOptions: ListOptions{Limits: Limits{MaxMember: max}}})
		for _, r := range res {
			if r.Status == "ok" && int64(len(r.Reason)) > max {
				t.Errorf("limit %d: %s passed", max, r.Input)
			}
		}
	}
	// A ratio limit of 1000 lets the bomb through.
	res, _, _ = collect(t, context.Background(), []string{arch}, &fakeSink{}, Options{ListOptions: ListOptions{Limits: Limits{MaxRatio: 100000}}})
	if r := res[6]; r.Status != "ok" {
		t.Errorf("bomb with a ratio limit of 100000: %+v", r)
	}
}

// TestRunErrorsReported: inputs that cannot be opened or walked, links to
// folders, special files and the destination are never dropped silently.
func TestRunErrorsReported(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	writeFile(t, filepath.Join(in, "a.dcm"), "A")
	writeFile(t, filepath.Join(in, "out", "x.dcm"), "OUT")
	writeFile(t, filepath.Join(in, "site.key"), "KEY")
	if err := os.Symlink(filepath.Join(dir, "gone.dcm"), filepath.Join(in, "dangling.dcm")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(in, filepath.Join(in, "loop")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(in, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "corrupt.zip"), "PK not really")
	outRes, _ := ResolvePath(filepath.Join(in, "out"))
	keyRes, _ := ResolvePath(filepath.Join(in, "site.key"))
	res, sum, err := collect(t, context.Background(),
		[]string{filepath.Join(dir, "missing.dcm"), in, filepath.Join(dir, "corrupt.zip")}, &fakeSink{},
		Options{ListOptions: ListOptions{SkipDir: outRes, SkipFiles: map[string]bool{keyRes: true}}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res {
		got[strings.TrimPrefix(r.Input, dir+"/")] = r.Status + " " + r.Code
	}
	want := map[string]string{
		"missing.dcm":     "failed " + CodeReadError,
		"in/a.dcm":        "ok ",
		"in/dangling.dcm": "failed " + CodeReadError,
		"in/loop":         "failed " + CodeNotRegular,
		"in/fifo":         "failed " + CodeNotRegular,
		"corrupt.zip":     "failed " + CodeZipError,
	}
	if len(got) != len(want) || len(res) != len(want) {
		t.Errorf("results %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
	if sum.Count(StatusFailed) != 5 {
		t.Errorf("summary %+v", sum)
	}
}

// TestRunCancel: a cancelled run stops listing, fails the objects it
// listed but did not read as cancelled, still reports them in order,
// releases its archives and says it was cancelled.
func TestRunCancel(t *testing.T) {
	dir := t.TempDir()
	var members []member
	for i := range 200 {
		members = append(members, member{fmt.Sprintf("m%03d.dcm", i), []byte(fmt.Sprintf("m%03d", i))})
	}
	writeZip(t, filepath.Join(dir, "a.zip"), members)
	for i := range 200 {
		writeFile(t, filepath.Join(dir, "f", fmt.Sprintf("%03d.dcm", i)), fmt.Sprintf("f%03d", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n atomic.Int64
	// Reading is slower than listing, so listed objects wait for a
	// worker when the run is cancelled.
	sink := &fakeSink{onPut: func(string) {
		if n.Add(1) == 20 {
			cancel()
		}
		time.Sleep(time.Millisecond)
	}}
	res, sum, err := collect(t, ctx, []string{filepath.Join(dir, "a.zip"), filepath.Join(dir, "f")}, sink, Options{Workers: 2})
	if !errors.Is(err, context.Canceled) || !sum.Cancelled {
		t.Fatalf("err %v, summary %+v", err, sum)
	}
	if len(res) == 0 || len(res) >= 400 {
		t.Fatalf("%d results after cancelling at 20 of 400", len(res))
	}
	cancelled := 0
	for i, r := range res {
		if r.Seq != i {
			t.Fatalf("result %d has seq %d", i, r.Seq)
		}
		switch {
		case r.Status == StatusFailed && r.Code == CodeCancelled && r.Reason == ReasonCancelled:
			cancelled++
		case r.Status != "ok":
			t.Errorf("%+v", r)
		}
	}
	if cancelled == 0 || int64(len(res)-cancelled) != sink.puts.Load() || sum.Count(StatusFailed, CodeCancelled) != cancelled {
		t.Errorf("%d results, %d cancelled, %d read; summary %+v", len(res), cancelled, sink.puts.Load(), sum)
	}
	if sink.puts.Load() > 20+2 {
		t.Errorf("%d objects read after cancelling at 20 with 2 workers", sink.puts.Load())
	}
}

// TestListStable: two listings of the same inputs give the same order.
func TestListStable(t *testing.T) {
	dir := t.TempDir()
	names := []string{"b/2", "a/1", "c", "a/0", "b/10"}
	for _, n := range names {
		writeFile(t, filepath.Join(dir, n), n)
	}
	list := func() []string {
		var out []string
		if err := List(context.Background(), []string{dir}, ListOptions{}, func(o *Object) bool {
			defer o.Release()
			out = append(out, strings.TrimPrefix(o.Input, dir+"/"))
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := list(), list()
	if want := []string{"a/0", "a/1", "b/10", "b/2", "c"}; !slices.Equal(a, want) || !slices.Equal(a, b) {
		t.Errorf("listings %v and %v, want %v", a, b, want)
	}
}

func TestUnsafeMemberName(t *testing.T) {
	for name, unsafe := range map[string]bool{
		"a.dcm": false, "dir/a.dcm": false, "a..b.dcm": false, "..a": false,
		"": true, "..": true, "../a": true, "a/../../b": true, `a\..\b`: true, "/a": true, `\a`: true,
		"C:a": true, `c:\a`: true, "a\x00b": true,
	} {
		if got := UnsafeMemberName(name); got != unsafe {
			t.Errorf("UnsafeMemberName(%q) = %v", name, got)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		p, dir string
		in     bool
	}{
		{"/a/b", "/a", true}, {"/a", "/a", true}, {"/ab", "/a", false}, {"/a/../b", "/a", false}, {"/", "/a", false},
	} {
		if got := Within(filepath.Clean(c.p), c.dir); got != c.in {
			t.Errorf("Within(%s, %s) = %v", c.p, c.dir, got)
		}
	}
}
