package blobstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The conformance suite runs against every engine.

func TestPacks(t *testing.T) {
	testStore(t, false, func(t *testing.T) Store {
		return openTestPacks(t, t.TempDir(), PackOptions{})
	})
}

func TestPacksSmall(t *testing.T) {
	// Packs of 64 KiB: most blobs fill one, so writers keep starting new
	// packs and retiring full ones.
	testStore(t, false, func(t *testing.T) Store {
		return openTestPacks(t, t.TempDir(), PackOptions{MaxPackBytes: 64 << 10})
	})
}

func TestLocal(t *testing.T) {
	testStore(t, true, func(t *testing.T) Store {
		return openTestLocal(t, t.TempDir(), localOptions{})
	})
}

func TestLocalSyncfs(t *testing.T) {
	if !syncfsSupported {
		t.Skip("syncfs(2) is Linux only")
	}
	testStore(t, true, func(t *testing.T) Store {
		return openTestLocal(t, t.TempDir(), localOptions{sync: syncFS})
	})
}

func TestBucketMem(t *testing.T) {
	testStore(t, true, func(t *testing.T) Store {
		return openTestBucket(t, "mem://")
	})
}

func TestBucketFile(t *testing.T) {
	testStore(t, true, func(t *testing.T) Store {
		return openTestBucket(t, "file://"+filepath.ToSlash(t.TempDir()))
	})
}

func openTestLocal(t testing.TB, root string, opt localOptions) *Local {
	t.Helper()
	s, err := openLocal(root, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openTestPacks(t testing.TB, root string, opt PackOptions) *Packs {
	t.Helper()
	s, err := OpenPacks(root, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openTestBucket(t testing.TB, url string) *Bucket {
	t.Helper()
	s, err := OpenBucket(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func keyOf(b []byte) Key {
	sum := sha256.Sum256(b)
	return Key(hex.EncodeToString(sum[:]))
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// put stores data, writing it in chunks of chunk bytes (all at once if 0),
// and checks the key and size Commit returns.
func put(t testing.TB, s Store, data []byte, chunk int) (Ref, bool) {
	t.Helper()
	r, existed, err := tryPut(s, data, chunk)
	if err != nil {
		t.Fatal(err)
	}
	return r, existed
}

// tryPut is put for goroutines other than the test's.
func tryPut(s Store, data []byte, chunk int) (Ref, bool, error) {
	w, err := s.Create(context.Background())
	if err != nil {
		return Ref{}, false, err
	}
	defer w.Abort()
	if chunk <= 0 {
		chunk = len(data)
	}
	for rest := data; len(rest) > 0; {
		n := min(chunk, len(rest))
		if _, err := w.Write(rest[:n]); err != nil {
			return Ref{}, false, err
		}
		rest = rest[n:]
	}
	r, size, existed, err := w.Commit()
	if err != nil {
		return Ref{}, false, err
	}
	if want := keyOf(data); r.Key != want {
		return Ref{}, false, fmt.Errorf("commit: key %s, want %s", r.Key, want)
	}
	if size != int64(len(data)) {
		return Ref{}, false, fmt.Errorf("commit: size %d, want %d", size, len(data))
	}
	return r, existed, nil
}

func readAll(t testing.TB, s Store, k Ref) []byte {
	t.Helper()
	b, err := tryReadAll(s, k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tryReadAll(s Store, k Ref) ([]byte, error) {
	r, err := s.Open(context.Background(), k)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if r.Size() != int64(len(b)) {
		return nil, fmt.Errorf("Size() = %d, read %d bytes", r.Size(), len(b))
	}
	return b, nil
}

type listed struct {
	size int64
	mod  time.Time
}

func list(t testing.TB, s Store) map[Ref]listed {
	t.Helper()
	m := make(map[Ref]listed)
	err := s.List(context.Background(), func(k Ref, size int64, mod time.Time) error {
		if _, dup := m[k]; dup {
			t.Errorf("List: %s reported twice", k)
		}
		m[k] = listed{size, mod}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testStore runs the conformance suite. byKey says the engine stores
// blobs under their key, so content written twice is stored once;
// otherwise (packs) every Commit stores a new copy.
func testStore(t *testing.T, byKey bool, open func(t *testing.T) Store) {
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		for i, size := range []int{0, 1, 1<<20 + 3, 10 << 20} {
			data := randomBytes(uint64(i), size)
			k, existed := put(t, s, data, 256<<10)
			if existed {
				t.Errorf("size %d: existed = true on first commit", size)
			}
			if got, err := s.Stat(ctx, k); err != nil || got != int64(size) {
				t.Errorf("Stat = %d, %v; want %d, nil", got, err, size)
			}
			if got := readAll(t, s, k); !bytes.Equal(got, data) {
				t.Errorf("size %d: read back %d bytes that differ", size, len(got))
			}
		}
		if n := len(list(t, s)); n != 4 {
			t.Errorf("List: %d blobs, want 4", n)
		}
	})

	t.Run("SameContent", func(t *testing.T) {
		s := open(t)
		data := randomBytes(7, 100_000)
		k1, existed1 := put(t, s, data, 0)
		k2, existed2 := put(t, s, data, 4096) // other chunking, same content
		if !byKey {
			// The engine stores a copy per Commit: one key, two places,
			// both readable (TestPacksCopies deletes one).
			if existed1 || existed2 || k1.Key != k2.Key || k1.Loc == k2.Loc {
				t.Errorf("refs %v (existed %v) and %v (existed %v): want one key, two new copies", k1, existed1, k2, existed2)
			}
			for _, k := range []Ref{k1, k2} {
				if got := readAll(t, s, k); !bytes.Equal(got, data) {
					t.Errorf("%v reads other bytes", k)
				}
			}
			if got := list(t, s); len(got) != 2 {
				t.Errorf("List = %v, want the two copies", got)
			}
			return
		}
		if k1 != k2 {
			t.Errorf("keys %s and %s differ", k1, k2)
		}
		if existed1 || !existed2 {
			t.Errorf("existed = %v, %v; want false, true", existed1, existed2)
		}
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		_, existed3 := put(t, s, data, 0) // after Sync moved it (local engine)
		if !existed3 {
			t.Errorf("existed after Sync = false, want true")
		}
		got := list(t, s)
		if len(got) != 1 || got[k1].size != int64(len(data)) || k1.Loc != "" {
			t.Errorf("List = %v, want one blob of %d bytes", got, len(data))
		}
	})

	t.Run("Abort", func(t *testing.T) {
		s := open(t)
		w, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(randomBytes(1, 5000)); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Errorf("second Abort: %v", err)
		}
		if _, _, _, err := w.Commit(); !errors.Is(err, ErrClosed) {
			t.Errorf("Commit after Abort: %v, want ErrClosed", err)
		}
		if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("Write after Abort: %v, want ErrClosed", err)
		}
		if got := list(t, s); len(got) != 0 {
			t.Errorf("List after Abort = %v, want empty", got)
		}
		if _, err := s.Open(ctx, Ref{Key: keyOf(randomBytes(1, 5000))}); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open of aborted blob: %v, want ErrNotFound", err)
		}
	})

	t.Run("CommitTwice", func(t *testing.T) {
		s := open(t)
		w, err := s.Create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("once"))
		r, _, _, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := w.Commit(); !errors.Is(err, ErrClosed) {
			t.Errorf("second Commit: %v, want ErrClosed", err)
		}
		if err := w.Abort(); err != nil {
			t.Errorf("Abort after Commit: %v, want nil", err)
		}
		if _, err := s.Stat(ctx, r); err != nil {
			t.Errorf("Abort after Commit removed the blob: %v", err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		stored, _ := put(t, s, []byte("stored"), 0)
		never := keyOf([]byte("never stored"))
		for _, k := range []Ref{
			{Key: never},
			{Key: never, Loc: "1:0"},
			{Key: never, Loc: stored.Loc},
			{Key: stored.Key, Loc: "999:0"},
			{Key: stored.Key, Loc: "1:12345678"},
			{Key: stored.Key, Loc: "../1:0"},
			{Key: stored.Key, Loc: "1:-64"},
			{Key: stored.Key, Loc: "x"},
		} {
			if k == stored {
				continue
			}
			if _, err := s.Open(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("Open(%v): %v, want ErrNotFound", k, err)
			}
			if _, err := s.Stat(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("Stat(%v): %v, want ErrNotFound", k, err)
			}
			if err := s.Delete(ctx, k); err != nil {
				t.Errorf("Delete(%v) of absent blob: %v, want nil", k, err)
			}
		}
		if got := readAll(t, s, stored); string(got) != "stored" {
			t.Errorf("the stored blob reads %q after deletes of absent ones", got)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		keep, _ := put(t, s, []byte("keep"), 0)
		synced, _ := put(t, s, []byte("synced"), 0)
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		unsynced, _ := put(t, s, []byte("unsynced"), 0)
		for _, k := range []Ref{synced, unsynced} {
			if err := s.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Open(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("Open after Delete: %v, want ErrNotFound", err)
			}
			if _, err := s.Stat(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("Stat after Delete: %v, want ErrNotFound", err)
			}
		}
		if err := s.Sync(ctx); err != nil { // must cope with the deleted pending blob
			t.Errorf("Sync after Delete: %v", err)
		}
		got := list(t, s)
		if _, ok := got[keep]; len(got) != 1 || !ok {
			t.Errorf("List after Delete = %v, want only %s", got, keep)
		}
		// Content can come back after a delete.
		if _, existed := put(t, s, []byte("synced"), 0); existed {
			t.Errorf("existed = true for deleted content")
		}
	})

	t.Run("InvalidKey", func(t *testing.T) {
		s := open(t)
		for _, key := range []Key{"", "../../../etc/passwd", Key(strings.Repeat("A", 64)),
			Key("../" + strings.Repeat("a", 61)), Key(strings.Repeat("a", 63))} {
			k := Ref{Key: key}
			if _, err := s.Open(ctx, k); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Open(%q): %v, want ErrInvalidKey", k, err)
			}
			if _, err := s.Stat(ctx, k); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Stat(%q): %v, want ErrInvalidKey", k, err)
			}
			if err := s.Delete(ctx, k); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Delete(%q): %v, want ErrInvalidKey", k, err)
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		s := open(t)
		want := make(map[Ref]int64)
		start := time.Now().Add(-time.Minute) // coarse file system clocks
		for i := range 30 {
			data := randomBytes(uint64(100+i), i*97)
			k, _ := put(t, s, data, 0)
			want[k] = int64(len(data))
			if i == 14 {
				if err := s.Sync(ctx); err != nil { // half synced, half pending
					t.Fatal(err)
				}
			}
		}
		got := list(t, s)
		if len(got) != len(want) {
			t.Errorf("List: %d blobs, want %d", len(got), len(want))
		}
		for k, size := range want {
			e, ok := got[k]
			switch {
			case !ok:
				t.Errorf("List: %s missing", k)
			case e.size != size:
				t.Errorf("List: %s size %d, want %d", k, e.size, size)
			case e.mod.Before(start) || e.mod.After(time.Now().Add(time.Minute)):
				t.Errorf("List: %s mod time %v, want about now", k, e.mod)
			}
		}
		stop := errors.New("stop")
		calls := 0
		err := s.List(ctx, func(Ref, int64, time.Time) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("List with failing fn: %v after %d calls, want stop after 1", err, calls)
		}
	})

	t.Run("ReadAtSeek", func(t *testing.T) {
		s := open(t)
		data := randomBytes(3, 1<<20+3)
		k, _ := put(t, s, data, 0)
		r, err := s.Open(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		size := int64(len(data))
		for _, c := range []struct {
			off     int64
			n       int
			wantN   int
			wantEOF bool
		}{
			{0, 100, 100, false},
			{1, 4096, 4096, false},
			{4095, 70000, 70000, false},
			{size - 10, 10, 10, false},
			{size - 10, 100, 10, true},
			{size, 1, 0, true},
			{size + 5, 1, 0, true},
		} {
			p := make([]byte, c.n)
			n, err := r.ReadAt(p, c.off)
			if n != c.wantN || (err == io.EOF) != c.wantEOF || (err != nil && err != io.EOF) {
				t.Errorf("ReadAt(%d bytes, %d) = %d, %v; want %d, EOF %v", c.n, c.off, n, err, c.wantN, c.wantEOF)
				continue
			}
			if n > 0 && !bytes.Equal(p[:n], data[c.off:c.off+int64(n)]) {
				t.Errorf("ReadAt(%d bytes, %d): wrong bytes", c.n, c.off)
			}
		}
		// Concurrent ReadAt is allowed.
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				off := int64(g) * 200_000
				p := make([]byte, 50_000)
				if n, err := r.ReadAt(p, off); err != nil || !bytes.Equal(p[:n], data[off:off+int64(n)]) {
					t.Errorf("concurrent ReadAt at %d: %d, %v", off, n, err)
				}
			})
		}
		wg.Wait()

		seekRead := func(off int64, whence int, wantPos int64, n int) {
			t.Helper()
			pos, err := r.Seek(off, whence)
			if err != nil || pos != wantPos {
				t.Fatalf("Seek(%d, %d) = %d, %v; want %d", off, whence, pos, err, wantPos)
			}
			p := make([]byte, n)
			if _, err := io.ReadFull(r, p); err != nil {
				t.Fatalf("read after Seek to %d: %v", pos, err)
			}
			if !bytes.Equal(p, data[pos:pos+int64(n)]) {
				t.Errorf("read after Seek to %d: wrong bytes", pos)
			}
		}
		seekRead(-5, io.SeekEnd, size-5, 5)
		seekRead(1000, io.SeekStart, 1000, 10)
		seekRead(90, io.SeekCurrent, 1100, 20)
		seekRead(0, io.SeekStart, 0, 1)
		if pos, err := r.Seek(0, io.SeekEnd); err != nil || pos != size {
			t.Errorf("Seek to end = %d, %v", pos, err)
		}
		if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("Read at end = %d, %v; want 0, EOF", n, err)
		}
		if _, err := r.Seek(-1, io.SeekStart); err == nil {
			t.Errorf("Seek to -1: no error")
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		contents := make([][]byte, 5)
		for i := range contents {
			contents[i] = randomBytes(uint64(1000+i), 200_000+i)
		}
		var mu sync.Mutex
		created := make(map[Key]int)
		refs := make(map[Key]Ref)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for j := range 2 * len(contents) {
					data := contents[(g+j)%len(contents)]
					k, existed, err := tryPut(s, data, 64<<10)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if !existed {
						created[k.Key]++
					}
					refs[k.Key] = k
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		puts := 8 * 2 // each goroutine writes each content twice
		for _, c := range contents {
			want := 1
			if !byKey {
				want = puts
			}
			if n := created[keyOf(c)]; n != want {
				t.Errorf("content %s: %d commits reported existed=false, want %d", keyOf(c), n, want)
			}
			if got := readAll(t, s, refs[keyOf(c)]); !bytes.Equal(got, c) {
				t.Errorf("content %s: read back wrong bytes", keyOf(c))
			}
		}
		want := len(contents)
		if !byKey {
			want *= puts
		}
		if n := len(list(t, s)); n != want {
			t.Errorf("List: %d blobs, want %d", n, want)
		}
	})

	t.Run("ConcurrentSync", func(t *testing.T) {
		// Commits, reads and Syncs at once: every blob stays readable.
		s := open(t)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for j := range 20 {
					data := randomBytes(uint64(j%7), 10_000) // overlapping
					k, _, err := tryPut(s, data, 0)
					if err != nil {
						t.Error(err)
						return
					}
					if got, err := tryReadAll(s, k); err != nil || !bytes.Equal(got, data) {
						t.Errorf("goroutine %d: read back: %v", g, err)
					}
					if j%5 == g {
						if err := s.Sync(ctx); err != nil {
							t.Errorf("Sync: %v", err)
						}
					}
				}
			})
		}
		wg.Wait()
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		want := 7
		if !byKey {
			want = 4 * 20
		}
		if n := len(list(t, s)); n != want {
			t.Errorf("List: %d blobs, want %d", n, want)
		}
	})

	t.Run("Sync", func(t *testing.T) {
		s := open(t)
		if err := s.Sync(ctx); err != nil {
			t.Errorf("Sync of empty store: %v", err)
		}
		var keys []Ref
		for i := range 10 {
			k, _ := put(t, s, randomBytes(uint64(i), 3000), 0)
			keys = append(keys, k)
		}
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(ctx); err != nil {
			t.Errorf("second Sync: %v", err)
		}
		for i, k := range keys {
			if got := readAll(t, s, k); !bytes.Equal(got, randomBytes(uint64(i), 3000)) {
				t.Errorf("blob %d: wrong bytes after Sync", i)
			}
		}
	})
}

func TestParseKey(t *testing.T) {
	valid := keyOf([]byte("x"))
	if k, err := ParseKey(string(valid)); err != nil || k != valid {
		t.Errorf("ParseKey(%q) = %q, %v", valid, k, err)
	}
	for _, s := range []string{
		"",
		"abc",
		string(valid[:63]),
		string(valid) + "0",
		strings.ToUpper(string(valid)),
		"../" + string(valid[3:]),
		"ab/" + string(valid[3:]),
		string(valid[:63]) + "g",
		string(valid[:62]) + "\x00a",
		"./" + string(valid[2:]),
	} {
		if _, err := ParseKey(s); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParseKey(%q): %v, want ErrInvalidKey", s, err)
		}
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, c := range []struct {
		location string
		want     string
	}{
		{dir, "*blobstore.Packs"},
		{filepath.Join(dir, "odd://name"), "*blobstore.Packs"}, // a path, not a URL
		{"mem://", "*blobstore.Bucket"},
		{"file://" + filepath.ToSlash(t.TempDir()), "*blobstore.Bucket"},
	} {
		s, err := Open(ctx, c.location)
		if err != nil {
			t.Errorf("Open(%q): %v", c.location, err)
			continue
		}
		if got := fmt.Sprintf("%T", s); got != c.want {
			t.Errorf("Open(%q) = %s, want %s", c.location, got, c.want)
		}
		s.Close()
	}
	for _, bad := range []string{"", "nosuchscheme://x"} {
		if s, err := Open(ctx, bad); err == nil {
			s.Close()
			t.Errorf("Open(%q): no error", bad)
		}
	}
}
