package blobstore

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
)

const benchBlobSize = 512 << 10

// BenchmarkLocalPut stores distinct 512 KiB blobs through Write, without
// Sync and with a Sync every 64 blobs, the latter with both strategies
// (fsync per file and directory, the default; and syncfs).
func BenchmarkLocalPut(b *testing.B) {
	for _, c := range []struct {
		name  string
		mode  syncMode
		every uint64
	}{
		{"nosync", syncFiles, 0},
		{"sync64", syncFiles, 64},
		{"sync64-syncfs", syncFS, 64},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.mode == syncFS && !syncfsSupported {
				b.Skip("syncfs(2) is Linux only")
			}
			ctx := context.Background()
			s := openTestLocal(b, b.TempDir(), localOptions{sync: c.mode})
			data := randomBytes(1, benchBlobSize)
			b.SetBytes(benchBlobSize)
			b.ReportAllocs()
			var n uint64
			for b.Loop() {
				n++
				binary.LittleEndian.PutUint64(data, n) // no dedup
				w, err := s.Create(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Write(data); err != nil {
					b.Fatal(err)
				}
				if _, _, _, err := w.Commit(); err != nil {
					b.Fatal(err)
				}
				if c.every > 0 && n%c.every == 0 {
					if err := s.Sync(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkPut stores distinct 512 KiB blobs through Write with a Sync
// every 64 blobs, in each engine for a local disk: packs (the default)
// and a file per blob (both Sync strategies).
func BenchmarkPut(b *testing.B) {
	for _, c := range []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"packs", func(b *testing.B) Store { return openTestPacks(b, b.TempDir(), PackOptions{}) }},
		{"files", func(b *testing.B) Store { return openTestLocal(b, b.TempDir(), localOptions{}) }},
		{"files-syncfs", func(b *testing.B) Store { return openTestLocal(b, b.TempDir(), localOptions{sync: syncFS}) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			s := c.open(b)
			data := randomBytes(1, benchBlobSize)
			b.SetBytes(benchBlobSize)
			b.ReportAllocs()
			var n uint64
			for b.Loop() {
				n++
				binary.LittleEndian.PutUint64(data, n) // no dedup
				w, err := s.Create(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Write(data); err != nil {
					b.Fatal(err)
				}
				if _, _, _, err := w.Commit(); err != nil {
					b.Fatal(err)
				}
				if n%64 == 0 {
					if err := s.Sync(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkLocalPutFromFile stores 512 KiB blobs with io.Copy from an
// *os.File, which goes through LocalWriter.ReadFrom (copy_file_range(2)
// and hashing read back); "nofd" hides the file descriptor so the copy
// goes through the 1 MiB buffer instead.
func BenchmarkLocalPutFromFile(b *testing.B) {
	for _, c := range []struct {
		name string
		wrap func(*os.File) io.Reader
	}{
		{"copy_file_range", func(f *os.File) io.Reader { return f }},
		{"nofd", func(f *os.File) io.Reader { return struct{ io.Reader }{f} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			s := openTestLocal(b, b.TempDir(), localOptions{})
			src, err := os.Create(filepath.Join(b.TempDir(), "src"))
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			if _, err := src.Write(randomBytes(1, benchBlobSize)); err != nil {
				b.Fatal(err)
			}
			r := c.wrap(src)
			var head [8]byte
			b.SetBytes(benchBlobSize)
			b.ReportAllocs()
			var n uint64
			for b.Loop() {
				n++
				binary.LittleEndian.PutUint64(head[:], n) // no dedup
				if _, err := src.WriteAt(head[:], 0); err != nil {
					b.Fatal(err)
				}
				if _, err := src.Seek(0, io.SeekStart); err != nil {
					b.Fatal(err)
				}
				w, err := s.Create(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(w, r); err != nil {
					b.Fatal(err)
				}
				if _, _, _, err := w.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
