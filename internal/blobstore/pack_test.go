package blobstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func packFiles(t *testing.T, root string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(root, dirPacks, "*"+packExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPacksCopies(t *testing.T) {
	// The engine does not deduplicate: each Commit is a copy of its own,
	// and deleting one leaves the other.
	ctx := context.Background()
	s := openTestPacks(t, t.TempDir(), PackOptions{})
	data := randomBytes(7, 100_000)
	a, existedA := put(t, s, data, 0)
	b, existedB := put(t, s, data, 4096)
	if existedA || existedB {
		t.Errorf("existed = %v, %v; want false, false", existedA, existedB)
	}
	if a.Key != b.Key || a.Loc == b.Loc || a.Loc == "" {
		t.Fatalf("refs %v and %v: want one key, two locations", a, b)
	}
	if err := s.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, a); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of the deleted copy: %v, want ErrNotFound", err)
	}
	if got := readAll(t, s, b); !bytes.Equal(got, data) {
		t.Errorf("the other copy reads wrong bytes")
	}
	if got := list(t, s); len(got) != 1 {
		t.Errorf("List = %v, want the one copy left", got)
	}
}

func TestPacksRolloverAndReopen(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openTestPacks(t, root, PackOptions{MaxPackBytes: 100_000})
	var refs []Ref
	for i := range 10 {
		r, _ := put(t, s, randomBytes(uint64(i), 30_000), 7000)
		refs = append(refs, r)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// 10 records of 30 KB in packs closed at 100 KB: 4 records a pack.
	if n := len(packFiles(t, root)); n != 3 {
		t.Errorf("%d packs, want 3", n)
	}
	s.Close()

	s2 := openTestPacks(t, root, PackOptions{MaxPackBytes: 100_000})
	for i, r := range refs {
		if got := readAll(t, s2, r); !bytes.Equal(got, randomBytes(uint64(i), 30_000)) {
			t.Errorf("blob %d reads wrong bytes after reopen", i)
		}
	}
	r, _ := put(t, s2, []byte("after reopen"), 0)
	seq, _, _ := parseLoc(r.Loc)
	if seq != 4 {
		t.Errorf("new blob in pack %d, want a new pack 4 (packs are never appended to after a restart)", seq)
	}
	if n := len(list(t, s2)); n != 11 {
		t.Errorf("List: %d blobs, want 11", n)
	}
}

func TestPacksAbortCutsBack(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openTestPacks(t, root, PackOptions{})
	r, _ := put(t, s, randomBytes(1, 5000), 0)
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(randomBytes(2, 50_000))
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	files := packFiles(t, root)
	if len(files) != 1 {
		t.Fatalf("packs %v, want one", files)
	}
	fi, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(recHeaderSize + 5000); fi.Size() != want {
		t.Errorf("pack is %d bytes after an abort, want %d", fi.Size(), want)
	}
	// The next blob goes where the aborted one was.
	r2, _ := put(t, s, []byte("next"), 0)
	if want := formatLoc(1, recHeaderSize+5000); r2.Loc != want {
		t.Errorf("next blob at %s, want %s", r2.Loc, want)
	}
	if got := readAll(t, s, r); !bytes.Equal(got, randomBytes(1, 5000)) {
		t.Errorf("first blob damaged by the abort")
	}
}

func TestPacksCrashLeftovers(t *testing.T) {
	// What a crash can leave at the end of a pack: a record without its
	// header (the writer died before Commit), a header whose content is
	// cut short, garbage; and a header damaged in place. Synced blobs stay
	// readable, List reports only whole records, Refs into the damage are
	// not found, and a pack whose records cannot all be read is never
	// removed as empty.
	ctx := context.Background()
	root := t.TempDir()
	s := openTestPacks(t, root, PackOptions{})
	var synced []Ref
	for i := range 3 {
		r, _ := put(t, s, randomBytes(uint64(i), 20_000), 0)
		synced = append(synced, r)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cut, _ := put(t, s, randomBytes(9, 20_000), 0) // committed, to be cut
	w, err := s.Create(ctx)                        // never committed
	if err != nil {
		t.Fatal(err)
	}
	w.Write(randomBytes(10, 8000))
	// The process dies here: nothing more is synced, and the kernel
	// closes its descriptors (releasing its locks).
	s.Close()
	files := packFiles(t, root)
	if len(files) != 1 {
		t.Fatalf("packs %v, want one", files)
	}
	if got := list(t, openTestPacks(t, root, PackOptions{})); len(got) != 4 {
		t.Errorf("List with a record without header at the end = %d blobs, want 4", len(got))
	}
	_, off, _ := parseLoc(cut.Loc)
	if err := os.Truncate(files[0], off+recHeaderSize+1000); err != nil {
		t.Fatal(err)
	}

	s2 := openTestPacks(t, root, PackOptions{})
	for i, r := range synced {
		if got := readAll(t, s2, r); !bytes.Equal(got, randomBytes(uint64(i), 20_000)) {
			t.Errorf("synced blob %d damaged", i)
		}
	}
	if _, err := s2.Open(ctx, cut); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of the cut blob: %v, want ErrNotFound", err)
	}
	if got := list(t, s2); len(got) != 3 {
		t.Errorf("List = %d blobs, want the 3 synced", len(got))
	}

	// Garbage after the last whole record, and a flipped bit in a header.
	f, err := os.OpenFile(files[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte("MBLB"), 100))
	f.Close()
	if got := list(t, s2); len(got) != 3 {
		t.Errorf("List with garbage at the end = %d blobs, want 3", len(got))
	}
	_, off1, _ := parseLoc(synced[1].Loc)
	flip(t, files[0], off1+20)
	if _, err := s2.Open(ctx, synced[1]); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a blob whose header is damaged: %v, want ErrNotFound", err)
	}
	if got := readAll(t, s2, synced[0]); !bytes.Equal(got, randomBytes(0, 20_000)) {
		t.Errorf("blob before the damaged header unreadable")
	}
	// A Ref naming the wrong key at a good location is not found either.
	if _, err := s2.Open(ctx, Ref{Key: synced[0].Key, Loc: synced[2].Loc}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open with another blob's location: %v, want ErrNotFound", err)
	}
	// Even with every record the scan can reach deleted, the pack stays:
	// the one after the damage is live.
	s3 := openTestPacks(t, root, PackOptions{emptyAge: -1})
	if err := s3.Delete(ctx, synced[0]); err != nil {
		t.Fatal(err)
	}
	if got := list(t, s3); len(got) != 0 {
		t.Errorf("List = %v, want nothing reachable", got)
	}
	if n, err := s3.RemoveEmpty(ctx); err != nil || n != 0 {
		t.Errorf("RemoveEmpty = %d, %v; want the damaged pack kept", n, err)
	}
	if got := readAll(t, s3, synced[2]); !bytes.Equal(got, randomBytes(2, 20_000)) {
		t.Errorf("blob after the damaged header lost")
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

func TestPacksDeleteFreesSpace(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openTestPacks(t, root, PackOptions{})
	big, _ := put(t, s, randomBytes(1, 8<<20), 1<<20)
	small, _ := put(t, s, []byte("small"), 0)
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	files := packFiles(t, root)
	blocks := func() int64 {
		var st syscall.Stat_t
		if err := syscall.Stat(files[0], &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	before := blocks()
	if err := s.Delete(ctx, big); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, big); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if after := blocks(); after > before-7<<20 && runtime.GOOS == "linux" {
		t.Errorf("pack uses %d bytes on disk before the delete, %d after: the blob's blocks were not released", before, after)
	}
	if got := readAll(t, s, small); string(got) != "small" {
		t.Errorf("the blob after the deleted one reads %q", got)
	}
	if got := list(t, s); len(got) != 1 {
		t.Errorf("List = %v, want only the small blob", got)
	}
	// A pack this process still writes is kept even when empty.
	if err := s.Delete(ctx, small); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RemoveEmpty(ctx); err != nil || n != 0 {
		t.Errorf("RemoveEmpty = %d, %v; want 0, nil", n, err)
	}
	if n := len(packFiles(t, root)); n != 1 {
		t.Errorf("%d packs, want the one being written", n)
	}
	s.Close()
	// After a restart it is no one's: RemoveEmpty removes it (at once
	// here; a minute after its last change by default), List never.
	s2 := openTestPacks(t, root, PackOptions{emptyAge: -1})
	if got := list(t, s2); len(got) != 0 {
		t.Errorf("List = %v, want empty", got)
	}
	if n := len(packFiles(t, root)); n != 1 {
		t.Errorf("%d packs after List, want 1: List removes nothing", n)
	}
	if n, err := s2.RemoveEmpty(ctx); err != nil || n != 1 {
		t.Errorf("RemoveEmpty = %d, %v; want 1, nil", n, err)
	}
	if n := len(packFiles(t, root)); n != 0 {
		t.Errorf("%d packs left, want 0", n)
	}
	s3 := openTestPacks(t, root, PackOptions{})
	put(t, s3, []byte("x"), 0)
	r3, _ := put(t, s3, []byte("y"), 0)
	s3.Close()
	s4 := openTestPacks(t, root, PackOptions{emptyAge: -1}) // no lock, old enough: only the live blob keeps it
	if err := s4.Delete(ctx, r3); err != nil {
		t.Fatal(err)
	}
	if n, err := s4.RemoveEmpty(ctx); err != nil || n != 0 {
		t.Errorf("RemoveEmpty of a pack with a live blob = %d, %v; want 0, nil", n, err)
	}
}

func TestPacksReadFilesLayout(t *testing.T) {
	// A root written by the Local engine stays readable through Refs
	// without a location; new blobs go to packs.
	ctx := context.Background()
	root := t.TempDir()
	l := openTestLocal(t, root, localOptions{})
	old, _ := put(t, l, []byte("stored as a file"), 0)
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	l.Close()
	s := openTestPacks(t, root, PackOptions{})
	if got := readAll(t, s, old); string(got) != "stored as a file" {
		t.Errorf("file blob reads %q", got)
	}
	r, _ := put(t, s, []byte("in a pack"), 0)
	if r.Loc == "" {
		t.Errorf("new blob has no pack location")
	}
	got := list(t, s)
	if _, ok := got[old]; !ok || len(got) != 2 {
		t.Errorf("List = %v, want the file blob and the packed one", got)
	}
	if err := s.Delete(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, old); !errors.Is(err, ErrNotFound) {
		t.Errorf("file blob after Delete: %v", err)
	}
}

func TestPackReaderWriteTo(t *testing.T) {
	// io.Copy from a pack blob to a file goes through WriteTo and a
	// limited descriptor copy: exactly the blob, from where Read left off.
	ctx := context.Background()
	s := openTestPacks(t, t.TempDir(), PackOptions{})
	put(t, s, randomBytes(1, 3000), 0) // a neighbour before
	data := randomBytes(2, 1<<20+5)
	r, _ := put(t, s, data, 0)
	put(t, s, randomBytes(3, 3000), 0) // and after
	br, err := s.Open(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	head := make([]byte, 10)
	if _, err := io.ReadFull(br, head); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	n, err := io.Copy(out, br)
	if err != nil || n != int64(len(data)-10) {
		t.Fatalf("copy = %d, %v; want %d", n, err, len(data)-10)
	}
	got, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(head, got...), data) {
		t.Errorf("copied bytes differ")
	}
	if n, err := io.Copy(io.Discard, br); n != 0 || err != nil {
		t.Errorf("copy at the end = %d, %v", n, err)
	}
}

func TestParseLoc(t *testing.T) {
	for _, c := range []struct {
		loc Loc
		seq uint64
		off int64
		ok  bool
	}{
		{"1:0", 1, 0, true},
		{"12:4096", 12, 4096, true},
		{"0:0", 0, 0, false},
		{"1:", 0, 0, false},
		{":5", 0, 0, false},
		{"1:-5", 0, 0, false},
		{"+1:5", 0, 0, false},
		{"1:5:6", 0, 0, false},
		{"1:99999999999999999999", 0, 0, false},
		{"../1:0", 0, 0, false},
		{"", 0, 0, false},
	} {
		seq, off, ok := parseLoc(c.loc)
		if ok != c.ok || (ok && (seq != c.seq || off != c.off)) {
			t.Errorf("parseLoc(%q) = %d, %d, %v; want %d, %d, %v", c.loc, seq, off, ok, c.seq, c.off, c.ok)
		}
	}
}

func TestPacksTwoProcesses(t *testing.T) {
	// Two stores on one root, as an ingest beside a running server: they
	// never write to the same pack, and neither's List removes a pack the
	// other is writing, even before its first record is committed.
	ctx := context.Background()
	root := t.TempDir()
	a := openTestPacks(t, root, PackOptions{emptyAge: -1})
	b := openTestPacks(t, root, PackOptions{emptyAge: -1}) // both start at pack 1
	wa, err := a.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wb, err := b.Create(ctx)
	if err != nil {
		t.Fatalf("second store, same pack number: %v", err)
	}
	if n := len(packFiles(t, root)); n != 2 {
		t.Fatalf("%d packs, want one per store", n)
	}
	// b's pack is empty so far (not one byte written): only its lock
	// tells a that it is in use.
	if n, err := a.RemoveEmpty(ctx); err != nil || n != 0 {
		t.Errorf("RemoveEmpty with b's new pack empty = %d, %v; want 0, nil", n, err)
	}
	if n := len(packFiles(t, root)); n != 2 {
		t.Fatalf("%d packs after RemoveEmpty, want 2: a pack being written was removed", n)
	}
	wa.Write([]byte("from a"))
	wb.Write([]byte("from b"))
	// a sees b's empty pack, which b holds: it must stay.
	if got := list(t, a); len(got) != 0 {
		t.Errorf("List = %v, want nothing committed yet", got)
	}
	if n, err := a.RemoveEmpty(ctx); err != nil || n != 0 {
		t.Errorf("RemoveEmpty = %d, %v; want 0, nil", n, err)
	}
	if n := len(packFiles(t, root)); n != 2 {
		t.Fatalf("%d packs after RemoveEmpty, want 2: a pack being written was removed", n)
	}
	ra, _, _, err := wa.Commit()
	if err != nil {
		t.Fatal(err)
	}
	rb, _, _, err := wb.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if ra.Loc == rb.Loc {
		t.Errorf("both blobs at %s", ra.Loc)
	}
	for _, c := range []struct {
		s    Store
		r    Ref
		want string
	}{{a, rb, "from b"}, {b, ra, "from a"}} {
		if got := readAll(t, c.s, c.r); string(got) != c.want {
			t.Errorf("read %q, want %q", got, c.want)
		}
	}
}

func TestPacksSyncFailureSticks(t *testing.T) {
	// After a failed flush the kernel may have dropped the unwritten
	// pages and report nothing the next time: no later Sync may succeed,
	// so no blob written around the failure is ever vouched for.
	ctx := context.Background()
	s := openTestPacks(t, t.TempDir(), PackOptions{})
	put(t, s, []byte("before"), 0)
	fail := errors.New("EIO")
	syncFile = func(*os.File) error { return fail }
	err := s.Sync(ctx)
	syncFile = fdatasync
	if !errors.Is(err, fail) {
		t.Fatalf("Sync = %v, want the flush error", err)
	}
	if s.Err() == nil {
		t.Errorf("Err() = nil after a failed flush")
	}
	put(t, s, []byte("after"), 0) // a new pack, the failed one is sealed
	for i := range 2 {
		if err := s.Sync(ctx); !errors.Is(err, fail) {
			t.Errorf("Sync %d after the failure = %v, want the failure again", i+1, err)
		}
	}
	// A new store on the root starts afresh.
	s2 := openTestPacks(t, s.Root(), PackOptions{})
	put(t, s2, []byte("new"), 0)
	if err := s2.Sync(ctx); err != nil {
		t.Errorf("Sync of a newly opened store: %v", err)
	}
}

// TestPacksChangedOnly: ListChanged and RemoveEmptyChanged look only at
// packs changed since a time (appending and deleting both count), and the
// collector's mark round-trips and reads as zero when missing or damaged.
func TestPacksChangedOnly(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s1 := openTestPacks(t, root, PackOptions{emptyAge: -1})
	a, _ := put(t, s1, randomBytes(1, 3000), 0)
	b, _ := put(t, s1, randomBytes(2, 3000), 0)
	if err := s1.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	old := time.Now().Add(-2 * time.Hour)
	pack1 := filepath.Join(root, dirPacks, fmt.Sprintf("%012d%s", 1, packExt))
	if err := os.Chtimes(pack1, old, old); err != nil {
		t.Fatal(err)
	}

	s2 := openTestPacks(t, root, PackOptions{emptyAge: -1})
	if m := s2.GCMark(); !m.IsZero() {
		t.Fatalf("mark of a new store: %v", m)
	}
	if idle, err := s2.IdleSeq(); err != nil || idle != 1 {
		t.Errorf("IdleSeq = %d, %v; want 1 (the closed pack)", idle, err)
	}
	c, _ := put(t, s2, randomBytes(3, 3000), 0)
	if err := s2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if idle, err := s2.IdleSeq(); err != nil || idle != 1 {
		t.Errorf("IdleSeq while pack 2 is written = %d, %v; want 1", idle, err)
	}
	since := GCMark{Time: time.Now().Add(-time.Hour), Seq: 2}
	changed := func() map[Ref]bool {
		got := map[Ref]bool{}
		if err := s2.ListChanged(ctx, since, func(r Ref, _ int64, _ time.Time) error { got[r] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := changed(); len(got) != 1 || !got[c] {
		t.Errorf("ListChanged = %v, want only %v", got, c)
	}
	// A pack numbered above the mark is looked at whatever its time (a
	// clock set back).
	pack2 := filepath.Join(root, dirPacks, fmt.Sprintf("%012d%s", 2, packExt))
	if err := os.Chtimes(pack2, old, old); err != nil {
		t.Fatal(err)
	}
	since.Seq = 1
	if got := changed(); len(got) != 1 || !got[c] {
		t.Errorf("ListChanged with pack 2 above the mark = %v, want only %v", got, c)
	}
	since.Seq = 2
	if got := changed(); len(got) != 0 {
		t.Errorf("ListChanged with both packs old and at or below the mark = %v, want none", got)
	}
	now := time.Now()
	if err := os.Chtimes(pack2, now, now); err != nil {
		t.Fatal(err)
	}
	if got := list(t, s2); len(got) != 3 {
		t.Errorf("List = %v, want all three", got)
	}
	if err := s2.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := changed(); len(got) != 2 || !got[b] || !got[c] {
		t.Errorf("after a delete in the old pack, ListChanged = %v, want %v and %v", got, b, c)
	}

	// The old pack emptied, then left unchanged for long: only a full
	// pass removes it.
	if err := s2.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(pack1, old, old); err != nil {
		t.Fatal(err)
	}
	if n, err := s2.RemoveEmptyChanged(ctx, since); err != nil || n != 0 {
		t.Errorf("RemoveEmptyChanged = %d, %v; want 0 (the empty pack has not changed since)", n, err)
	}
	if n, err := s2.RemoveEmpty(ctx); err != nil || n != 1 {
		t.Errorf("RemoveEmpty = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(pack1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the empty pack is still there: %v", err)
	}

	mark := GCMark{Time: time.Date(2026, 11, 27, 10, 11, 12, 13, time.UTC), Seq: 41}
	if err := s2.SetGCMark(mark); err != nil {
		t.Fatal(err)
	}
	if got := s2.GCMark(); !got.Time.Equal(mark.Time) || got.Seq != mark.Seq {
		t.Errorf("GCMark = %v, want %v", got, mark)
	}
	// A store opened again numbers its packs above the mark, even with
	// fewer packs left.
	s2.Close()
	s3 := openTestPacks(t, root, PackOptions{emptyAge: -1})
	d, _ := put(t, s3, randomBytes(4, 100), 0)
	if seq, _, ok := parseLoc(d.Loc); !ok || seq != 42 {
		t.Errorf("new pack after a mark at 41: %v, want number 42", d.Loc)
	}
	if seqs, err := s3.packSeqs(); err != nil || len(seqs) != 2 || seqs[0] != 2 || seqs[1] != 42 {
		t.Errorf("packs %v, %v; want 2 and 42 (the mark is no pack)", seqs, err)
	}
	s3.Close()
	if err := os.WriteFile(filepath.Join(root, dirPacks, gcMarkName), []byte("yesterday\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := s3.GCMark(); !got.IsZero() {
		t.Errorf("GCMark of a damaged mark = %v, want zero", got)
	}
}
