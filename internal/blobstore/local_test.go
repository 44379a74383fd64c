package blobstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// regularFiles lists the regular files under dir.
func regularFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestLocalCrashMidWrite(t *testing.T) {
	root := t.TempDir()
	s := openTestLocal(t, root, localOptions{namedTemp: true})
	ctx := context.Background()

	// Two writers abandoned mid-blob, as by a kill -9: neither Commit nor
	// Abort ever runs.
	var abandoned []*LocalWriter
	for i := range 2 {
		w, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(randomBytes(uint64(i), 300_000)); err != nil {
			t.Fatal(err)
		}
		abandoned = append(abandoned, w.(*LocalWriter))
	}
	if files := regularFiles(t, filepath.Join(root, dirBlobs)); len(files) != 0 {
		t.Errorf("files under sha256/ during writes: %v", files)
	}
	if got := list(t, s); len(got) != 0 {
		t.Errorf("List during writes = %v, want empty", got)
	}
	// Make one of them look a minute and a half old.
	old := abandoned[0].f.Name()
	then := time.Now().Add(-90 * time.Second)
	if err := os.Chtimes(old, then, then); err != nil {
		t.Fatal(err)
	}

	// Restart with the default age: only the old file goes.
	s2 := openTestLocal(t, root, localOptions{namedTemp: true})
	tmp := regularFiles(t, filepath.Join(root, dirTmp))
	if len(tmp) != 1 || tmp[0] != abandoned[1].f.Name() {
		t.Errorf("tmp after reopen = %v, want only the fresh file %s", tmp, abandoned[1].f.Name())
	}
	if got := list(t, s2); len(got) != 0 {
		t.Errorf("List after reopen = %v, want empty", got)
	}
	// With no grace period the fresh one goes too.
	openTestLocal(t, root, localOptions{staleAge: -1})
	if tmp := regularFiles(t, filepath.Join(root, dirTmp)); len(tmp) != 0 {
		t.Errorf("tmp after reopen with staleAge<0 = %v, want empty", tmp)
	}
	if files := regularFiles(t, filepath.Join(root, dirBlobs)); len(files) != 0 {
		t.Errorf("files under sha256/ after crash: %v", files)
	}
}

// TestLocalUnnamedAbandoned: a writer on an unnamed file (O_TMPFILE) that
// dies mid-blob leaves no file anywhere once its descriptor is gone.
func TestLocalUnnamedAbandoned(t *testing.T) {
	root := t.TempDir()
	s := openTestLocal(t, root, localOptions{})
	w, err := s.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lw := w.(*LocalWriter)
	if !lw.unnamed {
		t.Skip("O_TMPFILE unsupported on this file system; the named path is tested above")
	}
	if _, err := w.Write(randomBytes(9, 100_000)); err != nil {
		t.Fatal(err)
	}
	lw.f.Close() // the process dies: the kernel closes the descriptor
	for _, d := range []string{dirBlobs, dirPending, dirTmp} {
		if files := regularFiles(t, filepath.Join(root, d)); len(files) != 0 {
			t.Errorf("files in %s after an abandoned unnamed write: %v", d, files)
		}
	}
	if got := list(t, s); len(got) != 0 {
		t.Errorf("List = %v, want empty", got)
	}
}

func TestLocalCrashAfterCommit(t *testing.T) {
	// Committed but unsynced blobs survive a process crash (the page cache
	// does) and are put in place when the store is opened again.
	root := t.TempDir()
	s := openTestLocal(t, root, localOptions{})
	synced, _ := put(t, s, []byte("synced"), 0)
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	unsynced, _ := put(t, s, []byte("unsynced"), 0)
	if _, err := os.Stat(s.pendingPath(unsynced.Key)); err != nil {
		t.Fatalf("unsynced blob not in pending/: %v", err)
	}

	s2 := openTestLocal(t, root, localOptions{}) // s is never closed: a crash
	for _, k := range []Ref{synced, unsynced} {
		if _, err := os.Stat(s2.blobPath(k.Key)); err != nil {
			t.Errorf("blob %s not in place after reopen: %v", k, err)
		}
	}
	if files := regularFiles(t, filepath.Join(root, dirPending)); len(files) != 0 {
		t.Errorf("pending/ after reopen = %v, want empty", files)
	}
	if got := readAll(t, s2, unsynced); string(got) != "unsynced" {
		t.Errorf("unsynced blob reads %q", got)
	}
	if n := len(list(t, s2)); n != 2 {
		t.Errorf("List: %d blobs, want 2", n)
	}
}

func TestLocalPowerCutDamage(t *testing.T) {
	// A power cut before Sync can leave a pending file whose data never
	// reached the disk: empty, or the right length of zeros. Reopening
	// must drop it, never trust it.
	root := t.TempDir()
	s := openTestLocal(t, root, localOptions{})
	emptied, _ := put(t, s, randomBytes(1, 5000), 0)
	zeroed, _ := put(t, s, randomBytes(2, 5000), 0)
	intact, _ := put(t, s, randomBytes(3, 5000), 0)
	if err := os.Truncate(s.pendingPath(emptied.Key), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.pendingPath(zeroed.Key), make([]byte, 5000), fileMode); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, dirPending, "stray"), []byte("?"), fileMode); err != nil {
		t.Fatal(err)
	}

	s2 := openTestLocal(t, root, localOptions{})
	ctx := context.Background()
	for _, k := range []Ref{emptied, zeroed} {
		if _, err := s2.Open(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("damaged blob: Open: %v, want ErrNotFound", err)
		}
	}
	if got := readAll(t, s2, intact); !bytes.Equal(got, randomBytes(3, 5000)) {
		t.Errorf("intact blob damaged")
	}
	if files := regularFiles(t, filepath.Join(root, dirPending)); len(files) != 0 {
		t.Errorf("pending/ after reopen = %v, want empty", files)
	}
	// The content can be stored again, not deduplicated against the damage.
	if _, existed := put(t, s2, randomBytes(1, 5000), 0); existed {
		t.Errorf("existed = true for content whose copy was damaged")
	}
}

func TestLocalLayoutAndPermissions(t *testing.T) {
	root := t.TempDir()
	s := openTestLocal(t, root, localOptions{})
	k, _ := put(t, s, []byte("layout"), 0)
	checkMode := func(p string, want fs.FileMode) {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	checkMode(s.pendingPath(k.Key), fileMode)
	if tmp := regularFiles(t, filepath.Join(root, dirTmp)); len(tmp) != 0 {
		t.Errorf("tmp/ after Commit = %v, want empty", tmp)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(root, "sha256", string(k.Key[:2]), string(k.Key))
	if got := regularFiles(t, filepath.Join(root, dirBlobs)); len(got) != 1 || got[0] != want {
		t.Fatalf("files under sha256/ = %v, want %s", got, want)
	}
	checkMode(want, fileMode)
	if files := regularFiles(t, filepath.Join(root, dirPending)); len(files) != 0 {
		t.Errorf("pending/ after Sync = %v, want empty", files)
	}
	// Directories are made 0750; the umask may only take bits away.
	for d := filepath.Dir(want); d != filepath.Dir(root); d = filepath.Dir(d) {
		if d == root {
			continue // made by t.TempDir
		}
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&^dirMode != 0 || perm&0o700 != 0o700 {
			t.Errorf("%s: mode %v, want 0750 or less (at least 0700)", d, perm)
		}
	}
}

func TestLocalReadFrom(t *testing.T) {
	s := openTestLocal(t, t.TempDir(), localOptions{})
	data := randomBytes(9, 3<<20+17)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	copyIn := func(name string, want []byte, fill func(w Writer) error) {
		t.Helper()
		w, err := s.Create(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		if err := fill(w); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		k, size, _, err := w.Commit()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k.Key != keyOf(want) || k.Loc != "" || size != int64(len(want)) {
			t.Errorf("%s: key %s size %d, want %s size %d", name, k, size, keyOf(want), len(want))
		}
		if got := readAll(t, s, k); !bytes.Equal(got, want) {
			t.Errorf("%s: stored bytes differ", name)
		}
	}
	rewind := func(off int64) {
		t.Helper()
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
	}

	rewind(0)
	copyIn("file", data, func(w Writer) error { _, err := io.Copy(w, f); return err })
	rewind(100)
	copyIn("file at offset", data[100:], func(w Writer) error { _, err := io.Copy(w, f); return err })
	rewind(0)
	copyIn("limited file", data[:1<<20], func(w Writer) error {
		_, err := io.Copy(w, io.LimitReader(f, 1<<20))
		return err
	})
	rewind(0)
	copyIn("write then file", append([]byte("head"), data...), func(w Writer) error {
		if _, err := w.Write([]byte("head")); err != nil {
			return err
		}
		_, err := io.Copy(w, f)
		return err
	})
	copyIn("bytes.Reader", data, func(w Writer) error { _, err := io.Copy(w, bytes.NewReader(data)); return err })

	// A blob of the store itself, through LocalReader.WriteTo.
	k, _ := put(t, s, []byte("blob to blob"), 0)
	copyIn("store reader", []byte("blob to blob"), func(w Writer) error {
		r, err := s.Open(context.Background(), k)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(w, r)
		return err
	})

	// A TCP connection (splice(2) on Linux).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		c.Write(data)
		c.Close()
	}()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	copyIn("tcp", data, func(w Writer) error { _, err := io.Copy(w, conn); return err })
}

func TestLocalReaderFile(t *testing.T) {
	s := openTestLocal(t, t.TempDir(), localOptions{})
	data := randomBytes(5, 2<<20)
	k, _ := put(t, s, data, 0)
	r, err := s.Open(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lr, ok := r.(*LocalReader)
	if !ok || lr.File() == nil {
		t.Fatalf("Open returned %T without a file", r)
	}

	// To a file (copy_file_range(2)).
	dst, err := os.Create(filepath.Join(t.TempDir(), "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if n, err := io.Copy(dst, r); err != nil || n != int64(len(data)) {
		t.Fatalf("io.Copy to file = %d, %v", n, err)
	}
	if got, _ := os.ReadFile(dst.Name()); !bytes.Equal(got, data) {
		t.Errorf("copy to file differs")
	}

	// To a TCP connection (sendfile(2)).
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	got := make(chan []byte)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		c.Close()
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(c, r); err != nil || n != int64(len(data)) {
		t.Fatalf("io.Copy to TCP = %d, %v", n, err)
	}
	c.Close()
	if b := <-got; !bytes.Equal(b, data) {
		t.Errorf("copy to TCP differs (%d bytes)", len(b))
	}
}

func TestLocalClosed(t *testing.T) {
	s := openTestLocal(t, t.TempDir(), localOptions{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Create after Close: %v, want ErrClosed", err)
	}
	if err := s.Sync(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestBucketAbortLeavesNoObject(t *testing.T) {
	s := openTestBucket(t, "mem://")
	ctx := context.Background()
	w, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("aborted"))
	w.Abort()
	put(t, s, []byte("committed"), 0)
	it := s.b.List(nil)
	var names []string
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, obj.Key)
	}
	if want := objectName(keyOf([]byte("committed"))); len(names) != 1 || names[0] != want {
		t.Errorf("objects = %v, want only %s", names, want)
	}
}
