package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

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
		if _, err := n.ix.CreateDataset(context.Background(), index.Dataset{ID: "d", Title: "d"}); err != nil {
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
					if o := t.Wait(context.Background()); o.Status != StatusStored && o.Status != StatusRejected {
						b.Errorf("%s: %s", o.Status, o.Reason)
					}
				}
			}(w)
		}
		wg.Wait()
		b.StopTimer()
		n.Close(context.Background())
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

// BenchmarkCollectGarbage compares the complete collection with the one
// `node serve` runs at start (CollectRecentGarbage) on a node holding
// 100,000 small objects in packs, every one referenced, and nothing
// changed since the last complete collection: the complete one reads
// every row and every record header, the recent one neither.
func BenchmarkCollectGarbage(b *testing.B) {
	const objects = 100_000
	ctx := context.Background()
	cfg := Config{Data: b.TempDir(), Policy: "longitudinal", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n, err := Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := n.ix.CreateDataset(ctx, index.Dataset{ID: "d", Title: "d"}); err != nil {
		b.Fatal(err)
	}
	var batch []index.Instance
	for i := range objects {
		w, err := n.blobs.Create(ctx)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(w, "object %d", i)
		ref, size, _, err := w.Commit()
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, index.Instance{Dataset: "d", PatientID: fmt.Sprintf("P%d", i/1000),
			StudyUID: fmt.Sprintf("2.25.1%d", i/100), SeriesUID: fmt.Sprintf("2.25.2%d", i/100), SOPUID: fmt.Sprintf("2.25.3%d", i),
			Modality: "CT", BlobKey: string(ref.Key), BlobLoc: string(ref.Loc), Size: size})
		if len(batch) == 1000 || i == objects-1 {
			if err := n.blobs.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := n.ix.PutInstances(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	// Written long before the last complete collection, by a process
	// that has ended: the node is opened again.
	n.Close(context.Background())
	if n, err = Open(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	defer n.Close(context.Background())
	old := time.Now().Add(-3 * time.Hour)
	packs, _ := filepath.Glob(filepath.Join(n.Config().Data, "blobs", "packs", "*.pack"))
	for _, p := range packs {
		if err := os.Chtimes(p, old, old); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := n.CollectGarbage(ctx, time.Hour, false); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		run  func() (GCStats, error)
	}{
		{"complete", func() (GCStats, error) { return n.CollectGarbage(ctx, time.Hour, false) }},
		{"recent", func() (GCStats, error) { return n.CollectRecentGarbage(ctx, time.Hour) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				st, err := c.run()
				if err != nil || st.Removed != 0 || st.Failed != 0 {
					b.Fatalf("%+v, %v", st, err)
				}
			}
		})
	}
}
