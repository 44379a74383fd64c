package fl

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
	"github.com/mosaic-imaging/mosaic/internal/sqldb/sqltest"
)

func ledgerEngines(t *testing.T, cap float64, fn func(t *testing.T, l *SQLLedger, db *sqldb.DB)) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dsn := filepath.Join(t.TempDir(), "hub.db")
			if engine == "postgres" {
				dsn = sqltest.PostgresURL(t)
			}
			db, err := sqldb.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			l, err := NewLedger(db, cap)
			if err != nil {
				t.Fatal(err)
			}
			fn(t, l, db)
		})
	}
}

func TestLedgerSpendsAndRefusesPastCap(t *testing.T) {
	ledgerEngines(t, 10, func(t *testing.T, l *SQLLedger, db *sqldb.DB) {
		ctx := context.Background()
		if s, err := l.Spent(ctx, "alice"); err != nil || s != 0 {
			t.Fatalf("nothing spent: %v %v", s, err)
		}
		tot, err := l.Spend(ctx, "alice", "job1", 4, 1e-5)
		if err != nil || tot != 4 {
			t.Fatalf("spend 4: %v %v", tot, err)
		}
		if tot, err = l.Spend(ctx, "alice", "job1", 2.5, 1e-6); err != nil || tot != 6.5 {
			t.Fatalf("spend 2.5 more: %v %v", tot, err)
		}
		if tot, err = l.Spend(ctx, "alice", "job2", 3.5, 1e-5); err != nil || tot != 10 {
			t.Fatalf("spend up to the cap: %v %v", tot, err)
		}
		if _, err = l.Spend(ctx, "alice", "job3", 0.001, 1e-5); !errors.Is(err, ErrBudget) {
			t.Fatalf("past the cap: %v, want ErrBudget", err)
		}
		if s, _ := l.Spent(ctx, "alice"); s != 10 {
			t.Errorf("a refused spend changed the total to %v", s)
		}
		// Another researcher has a budget of their own.
		if tot, err = l.Spend(ctx, "bob", "job1", 9, 1e-5); err != nil || tot != 9 {
			t.Fatalf("bob: %v %v", tot, err)
		}
		spends, delta, err := l.Spends(ctx, "alice")
		if err != nil || len(spends) != 2 {
			t.Fatalf("spends %v %v", spends, err)
		}
		byComp := map[string]Spend{}
		for _, s := range spends {
			byComp[s.Computation] = s
		}
		if byComp["job1"].Epsilon != 6.5 || byComp["job1"].Delta != 1e-5 || byComp["job2"].Epsilon != 3.5 {
			t.Errorf("per computation: %+v", spends)
		}
		if math.Abs(delta-2e-5) > 1e-18 {
			t.Errorf("total delta %v, want 2e-5", delta)
		}
		var events int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM fl_privacy_events WHERE researcher = ?`, "alice").Scan(&events); err != nil || events != 3 {
			t.Errorf("events %d %v, want 3 (the refused spend not recorded)", events, err)
		}
		for _, bad := range []struct {
			r, c     string
			eps, del float64
		}{{"", "j", 1, 0}, {"a", "", 1, 0}, {"a", "j", -1, 0}, {"a", "j", math.NaN(), 0}, {"a", "j", math.Inf(1), 0}, {"a", "j", 1, 1}, {"a", "j", 1, -1}} {
			if _, err := l.Spend(ctx, bad.r, bad.c, bad.eps, bad.del); err == nil || errors.Is(err, ErrBudget) {
				t.Errorf("Spend%+v: %v, want an input error", bad, err)
			}
		}
	})
}

// TestLedgerConcurrentSpends: 40 goroutines each spend 1 against a cap
// of 25: exactly 25 succeed and the total is 25.
func TestLedgerConcurrentSpends(t *testing.T) {
	ledgerEngines(t, 25, func(t *testing.T, l *SQLLedger, _ *sqldb.DB) {
		ctx := context.Background()
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused := 0, 0
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := l.Spend(ctx, "carol", "job"+string(rune('a'+i%5)), 1, 1e-6)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrBudget):
					refused++
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if ok != 25 || refused != 15 {
			t.Errorf("%d spends succeeded and %d were refused, want 25 and 15", ok, refused)
		}
		if s, _ := l.Spent(ctx, "carol"); s != 25 {
			t.Errorf("total %v, want 25", s)
		}
		spends, _, _ := l.Spends(ctx, "carol")
		var sum float64
		for _, s := range spends {
			sum += s.Epsilon
		}
		if sum != 25 {
			t.Errorf("per-computation spends add to %v, want 25", sum)
		}
	})
}

func TestNewLedgerBadInput(t *testing.T) {
	if _, err := NewLedger(nil, 1); err == nil {
		t.Error("nil database accepted")
	}
	db, err := sqldb.Open(context.Background(), filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []float64{-1, math.NaN(), math.Inf(1)} {
		if _, err := NewLedger(db, c); err == nil {
			t.Errorf("cap %v accepted", c)
		}
	}
	// Opening twice migrates once.
	if _, err := NewLedger(db, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLedger(db, 1); err != nil {
		t.Fatal(err)
	}
}
