package index

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/disclosure"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// The index keeps the state of the node's disclosure control: it
// implements disclosure.Store.
var _ disclosure.Store = (*Store)(nil)

// LoadDisclosure implements disclosure.Store.
func (s *Store) LoadDisclosure(ctx context.Context, dataset string, limit int) ([]disclosure.Member, []disclosure.StoredSet, error) {
	var members []disclosure.Member
	rows, err := s.db.Query(ctx, `SELECT ordinal, member FROM disclosure_members WHERE dataset_id = ? ORDER BY ordinal`, dataset)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var o int64
		var b []byte
		if err := rows.Scan(&o, &b); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if o != int64(len(members)) || len(b) != len(disclosure.Member{}) {
			rows.Close()
			return nil, nil, fmt.Errorf("index: disclosure register of %s is damaged at %d", dataset, o)
		}
		members = append(members, disclosure.Member(b))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	var sets []disclosure.StoredSet
	rows, err = s.db.Query(ctx, `SELECT members, figures, researcher, query, population, created_at FROM disclosure_sets
		WHERE dataset_id = ? ORDER BY pk DESC LIMIT ?`, dataset, limit)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var st disclosure.StoredSet
		var fig string
		var pop, created int64
		if err := rows.Scan(&st.Set, &fig, &st.By, &st.Query, &pop, &created); err != nil {
			return nil, nil, err
		}
		st.Figures, st.Population, st.Created = []byte(fig), pop != 0, time.Unix(created, 0).UTC()
		sets = append(sets, st)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	slices.Reverse(sets)
	return members, sets, nil
}

// AddMembers implements disclosure.Store.
func (s *Store) AddMembers(ctx context.Context, dataset string, first uint32, members []disclosure.Member) error {
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		for i, m := range members {
			if _, err := tx.Exec(ctx, `INSERT INTO disclosure_members (dataset_id, ordinal, member) VALUES (?, ?, ?)`,
				dataset, int64(first)+int64(i), m[:]); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddSet implements disclosure.Store.
func (s *Store) AddSet(ctx context.Context, dataset string, st disclosure.StoredSet) error {
	pop := 0
	if st.Population {
		pop = 1
	}
	_, err := s.db.Exec(ctx, `INSERT INTO disclosure_sets (dataset_id, members, figures, researcher, query, population, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, dataset, st.Set, string(st.Figures), st.By, st.Query, pop, st.Created.Unix())
	return err
}

// Spent implements disclosure.Store.
func (s *Store) Spent(ctx context.Context, dataset, researcher, day string) (onDay, total float64, err error) {
	err = s.db.QueryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN day = ? THEN spent ELSE 0 END), 0), COALESCE(SUM(spent), 0)
		FROM disclosure_budget WHERE dataset_id = ? AND researcher = ?`, day, dataset, researcher).Scan(&onDay, &total)
	return onDay, total, err
}

// Charge implements disclosure.Store.
func (s *Store) Charge(ctx context.Context, dataset, researcher, day string, eps float64) error {
	_, err := s.db.Exec(ctx, `INSERT INTO disclosure_budget (dataset_id, researcher, day, spent) VALUES (?, ?, ?, ?)
		ON CONFLICT (dataset_id, researcher, day) DO UPDATE SET spent = disclosure_budget.spent + excluded.spent`,
		dataset, researcher, day, eps)
	return err
}
