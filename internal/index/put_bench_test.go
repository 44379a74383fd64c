package index

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkPutInstances indexes objects on SQLite in batches of 1 and of
// 16: a commit per object is what a sender of one object per request
// costs, and the fixed cost of a transaction (its statements, the commit
// and its fsync) shows in the difference. One op is one batch; the
// µs/object metric divides by the objects.
func BenchmarkPutInstances(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "index.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.CreateDataset(ctx, Dataset{ID: "d", Title: "d"}); err != nil {
				b.Fatal(err)
			}
			// A patient's 12 objects, renamed per round so that every put
			// stores new rows in known series.
			base := cohort("d", 1)
			round := 0
			next := func(n int) []Instance {
				out := make([]Instance, n)
				for i := range out {
					in := base[(round*n+i)%len(base)]
					k := round*n + i
					in.SOPUID = fmt.Sprintf("2.25.9%d", k)
					in.BlobKey = fmt.Sprintf("%064d", k)
					out[i] = in
				}
				round++
				return out
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				st, err := s.PutInstances(ctx, next(batch))
				if err != nil {
					b.Fatal(err)
				}
				for _, x := range st {
					if x != Stored {
						b.Fatalf("status %v", x)
					}
				}
				n += batch
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n)/1e3, "µs/object")
		})
	}
}
