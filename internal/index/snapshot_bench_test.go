package index_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/cohort"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/lens"
)

// BenchmarkSnapshot makes a snapshot of every patient of a 10,000-patient
// dataset (synthetic index rows) on SQLite, then times study searches
// within it against the same searches over the whole dataset: the first
// page, and a page far in.
//
//	go test ./internal/index -run '^$' -bench Snapshot -benchtime 200x
func BenchmarkSnapshot(b *testing.B) {
	ctx := context.Background()
	st, err := index.Open(ctx, filepath.Join(b.TempDir(), "index.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateDataset(ctx, index.Dataset{ID: "ds", Title: "DS"}); err != nil {
		b.Fatal(err)
	}
	ls, err := cohort.Load(ctx, st, "ds", cohort.New(1), 10000, 5000)
	if err != nil {
		b.Fatal(err)
	}
	q, err := lens.NewQuery(lens.AllOf())
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	sn, _, err := st.MakeSnapshot(ctx, index.Snapshot{ID: "s", Dataset: "ds"}, q)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("snapshot of %d patients, %d studies (%d loaded): %s", sn.Subjects, sn.Studies, ls.Studies, time.Since(t0))
	for _, c := range []struct {
		name          string
		snap          string
		limit, offset int
	}{{"whole-first100", "", 100, 0}, {"snapshot-first100", "s", 100, 0},
		{"whole-100at5000", "", 100, 5000}, {"snapshot-100at5000", "s", 100, 5000}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				hits, err := st.Search(ctx, index.Search{Dataset: "ds", Level: index.StudyLevel, Snapshot: c.snap, Limit: c.limit, Offset: c.offset, NoMeta: true})
				if err != nil || len(hits) != c.limit {
					b.Fatal(len(hits), err)
				}
			}
		})
	}
}
