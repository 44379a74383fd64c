package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// BenchmarkIngest measures the door, the blob store and the index
// together: objects of a --size bench cohort (512x512 CT) ingested by four
// goroutines, as four STOW-RS requests would, each durable at the end.
func BenchmarkIngest(b *testing.B) {
	dir := b.TempDir()
	if _, err := synth.Generate(context.Background(), synth.Options{Dir: dir, Patients: 2, Seed: 3, Size: synth.SizeBench}); err != nil {
		b.Fatal(err)
	}
	var objs [][]byte
	var total int64
	for _, f := range cohortFilesB(b, dir) {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		objs = append(objs, data)
		total += int64(len(data))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		data := b.TempDir()
		n, err := Open(context.Background(), Config{Data: data, Policy: "longitudinal", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := n.Index.CreateDataset(context.Background(), index.Dataset{ID: "d", Title: "d"}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				var ts []*Ticket
				for i := w; i < len(objs); i += 4 {
					ts = append(ts, n.Ingest(context.Background(), "d", "bench", bytes.NewReader(objs[i])))
				}
				for _, t := range ts {
					if o := t.Wait(); o.Status != StatusStored && o.Status != StatusRejected {
						b.Errorf("%s: %s", o.Status, o.Reason)
					}
				}
			}(w)
		}
		wg.Wait()
		b.StopTimer()
		n.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(len(objs)), "objects/op")
}

func cohortFilesB(b *testing.B, dir string) []string {
	var files []string
	err := filepath.WalkDir(filepath.Join(dir, "dicom"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	sort.Strings(files)
	return files
}
