package compute

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// TestStore: computations on a real SQLite database, kept per
// researcher (another's is not found), with a run's weights, and what a
// stopped hub was running marked failed at the next start.
func TestStore(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := OpenStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(ctx, db); err != nil {
		t.Fatalf("migrating twice: %v", err)
	}
	if err := s.Create(ctx, "a1", KindAnalysis, "rosa", "lm y ~ x", `{"type":"lm"}`); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "l1", KindLearning, "rosa", "logreg", `{}`); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, "a1", StateSucceeded, `{"n":3}`, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWeights(ctx, "l1", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if w, err := s.Weights(ctx, "l1", "rosa"); err != nil || len(w) != 3 {
		t.Errorf("weights %v %v", w, err)
	}
	if _, err := s.Weights(ctx, "l1", "mallory"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another's weights: %v", err)
	}
	if _, err := s.Get(ctx, "a1", "mallory"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another's analysis: %v", err)
	}
	r, err := s.Get(ctx, "a1", "rosa")
	if err != nil || r.State != StateSucceeded || r.Result != `{"n":3}` {
		t.Errorf("get %+v %v", r, err)
	}
	list, err := s.List(ctx, "rosa", KindAnalysis, 10)
	if err != nil || len(list) != 1 || list[0].ID != "a1" {
		t.Errorf("list %+v %v", list, err)
	}
	if n, err := s.FailRunning(ctx, "the hub stopped"); err != nil || n != 1 {
		t.Errorf("fail running: %d %v", n, err)
	}
	if r, _ := s.Get(ctx, "l1", ""); r.State != StateFailed || r.Error != "the hub stopped" {
		t.Errorf("after a restart %+v", r)
	}
}
