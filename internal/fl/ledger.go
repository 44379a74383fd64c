package fl

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Ledger keeps the privacy loss spent per researcher across jobs.
type Ledger interface {
	// Spend adds eps for researcher, refusing (and adding nothing) when
	// the total would pass the cap; it returns the total after.
	Spend(ctx context.Context, researcher, computation string, eps, delta float64) (total float64, err error)
	Spent(ctx context.Context, researcher string) (float64, error)
}

// ErrBudget reports a spend refused because it would pass the cap (the
// refusal code fed.RefusedDP).
var ErrBudget = errors.New("fl: privacy budget spent")

// SQLLedger is the Ledger on the hub's database (SQLite or PostgreSQL).
//
// Across computations the ledger composes by adding: a researcher's ε
// is the sum of the ε of each computation, and their δ the sum of each
// computation's δ. Within a computation the caller spends the increase
// of the accountant's ε round by round (RoundEpsilon), so that the
// computation's row holds its ε after the rounds so far; its δ is the
// largest δ spent for it.
type SQLLedger struct {
	db  *sqldb.DB
	cap float64
	now func() time.Time
}

// NewLedger opens the ledger on db, migrating its tables, with cap the
// most ε a researcher may spend in total.
func NewLedger(db *sqldb.DB, cap float64) (*SQLLedger, error) {
	if db == nil {
		return nil, errors.New("fl: ledger: no database")
	}
	if !(cap >= 0) || math.IsInf(cap, 0) {
		return nil, errors.New("fl: ledger: cap must be a non-negative number")
	}
	if err := db.Migrate(context.Background(), "fl", migrations, "migrations"); err != nil {
		return nil, err
	}
	return &SQLLedger{db: db, cap: cap, now: time.Now}, nil
}

// Cap is the most ε a researcher may spend.
func (l *SQLLedger) Cap() float64 { return l.cap }

// Spend adds eps (and delta) for researcher's computation in one
// transaction, refusing with ErrBudget, and adding nothing, when the
// researcher's total would pass the cap. Concurrent spends are
// serialised on the researcher's row, so together they never pass the
// cap either.
func (l *SQLLedger) Spend(ctx context.Context, researcher, computation string, eps, delta float64) (float64, error) {
	if researcher == "" || computation == "" {
		return 0, errors.New("fl: ledger: researcher and computation are required")
	}
	if !(eps >= 0) || math.IsInf(eps, 0) {
		return 0, errors.New("fl: ledger: epsilon must be a non-negative number")
	}
	if !(delta >= 0 && delta < 1) {
		return 0, errors.New("fl: ledger: delta must be in [0, 1)")
	}
	now := l.now().UnixMilli()
	var total float64
	err := l.db.InTx(ctx, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO fl_privacy_totals (researcher, epsilon, updated_at) VALUES (?, 0, ?)
			ON CONFLICT (researcher) DO NOTHING`, researcher, now); err != nil {
			return err
		}
		// The conditional update takes the row's lock; on PostgreSQL a
		// waiting update re-reads the row and checks the cap again.
		res, err := tx.Exec(ctx, `UPDATE fl_privacy_totals SET epsilon = epsilon + ?, updated_at = ?
			WHERE researcher = ? AND epsilon + ? <= ?`, eps, now, researcher, eps, l.cap)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			var spent float64
			if err := tx.QueryRow(ctx, `SELECT epsilon FROM fl_privacy_totals WHERE researcher = ?`, researcher).Scan(&spent); err != nil {
				return err
			}
			return fmt.Errorf("%w: %.4g spent of a cap of %.4g, %.4g more refused", ErrBudget, spent, l.cap, eps)
		}
		if err := tx.QueryRow(ctx, `SELECT epsilon FROM fl_privacy_totals WHERE researcher = ?`, researcher).Scan(&total); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fl_privacy_spends (researcher, computation, epsilon, delta, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (researcher, computation) DO UPDATE SET
				epsilon = fl_privacy_spends.epsilon + excluded.epsilon,
				delta = CASE WHEN excluded.delta > fl_privacy_spends.delta THEN excluded.delta ELSE fl_privacy_spends.delta END,
				updated_at = excluded.updated_at`, researcher, computation, eps, delta, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO fl_privacy_events (researcher, computation, epsilon, delta, total_after, at) VALUES (?, ?, ?, ?, ?, ?)`,
			researcher, computation, eps, delta, total, now)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrBudget) {
			return 0, err
		}
		return 0, fmt.Errorf("fl: ledger: %w", err)
	}
	return total, nil
}

// Spent is researcher's total ε (0 for a researcher who spent nothing).
func (l *SQLLedger) Spent(ctx context.Context, researcher string) (float64, error) {
	var eps float64
	err := l.db.QueryRow(ctx, `SELECT COALESCE(SUM(epsilon), 0) FROM fl_privacy_totals WHERE researcher = ?`, researcher).Scan(&eps)
	if err != nil {
		return 0, fmt.Errorf("fl: ledger: %w", err)
	}
	return eps, nil
}

// Spend is one computation's line of a researcher's ledger.
type Spend struct {
	Computation string    `json:"computation"`
	Epsilon     float64   `json:"epsilon"`
	Delta       float64   `json:"delta"`
	Updated     time.Time `json:"updated"`
}

// Spends lists researcher's spends per computation, oldest first, and
// the total δ (the sum over computations).
func (l *SQLLedger) Spends(ctx context.Context, researcher string) ([]Spend, float64, error) {
	rows, err := l.db.Query(ctx, `SELECT computation, epsilon, delta, updated_at FROM fl_privacy_spends
		WHERE researcher = ? ORDER BY updated_at, computation`, researcher)
	if err != nil {
		return nil, 0, fmt.Errorf("fl: ledger: %w", err)
	}
	defer rows.Close()
	var out []Spend
	var delta float64
	for rows.Next() {
		var s Spend
		var ms int64
		if err := rows.Scan(&s.Computation, &s.Epsilon, &s.Delta, &ms); err != nil {
			return nil, 0, fmt.Errorf("fl: ledger: %w", err)
		}
		s.Updated = time.UnixMilli(ms).UTC()
		delta += s.Delta
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("fl: ledger: %w", err)
	}
	return out, delta, nil
}
