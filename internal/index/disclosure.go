package index

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
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
	// The newest sets up to the limit, and the answers for whole
	// populations however old (they anchor the complement control, and
	// the history in memory never forgets them either), oldest first.
	type row struct {
		pk int64
		st disclosure.StoredSet
	}
	var sets []row
	for _, q := range []string{
		`SELECT pk, members, figures, researcher, query, population, created_at FROM disclosure_sets
			WHERE dataset_id = ? AND population = 0 ORDER BY pk DESC LIMIT ?`,
		`SELECT pk, members, figures, researcher, query, population, created_at FROM disclosure_sets
			WHERE dataset_id = ? AND population <> 0 ORDER BY pk DESC LIMIT ?`,
	} {
		rows, err := s.db.Query(ctx, q, dataset, limit)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			var r row
			var fig string
			var pop, created int64
			if err := rows.Scan(&r.pk, &r.st.Set, &fig, &r.st.By, &r.st.Query, &pop, &created); err != nil {
				rows.Close()
				return nil, nil, err
			}
			r.st.Figures, r.st.Population, r.st.Created = []byte(fig), pop != 0, time.Unix(created, 0).UTC()
			sets = append(sets, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	slices.SortFunc(sets, func(a, b row) int { return cmp.Compare(a.pk, b.pk) })
	out := make([]disclosure.StoredSet, len(sets))
	for i, r := range sets {
		out[i] = r.st
	}
	return members, out, nil
}

// SaveDisclosure implements disclosure.Store: the whole batch in one
// transaction.
func (s *Store) SaveDisclosure(ctx context.Context, b disclosure.Batch) error {
	return s.db.InTx(ctx, func(tx *sqldb.Tx) error {
		for _, st := range b.Sets {
			pop := 0
			if st.Population {
				pop = 1
			}
			if _, err := tx.Exec(ctx, `INSERT INTO disclosure_sets (dataset_id, members, figures, researcher, query, population, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, st.Dataset, st.Set, string(st.Figures), st.By, st.Query, pop, st.Created.Unix()); err != nil {
				return err
			}
		}
		for _, c := range b.Charges {
			if _, err := tx.Exec(ctx, `INSERT INTO disclosure_budget (dataset_id, researcher, day, spent) VALUES (?, ?, ?, ?)
				ON CONFLICT (dataset_id, researcher, day) DO UPDATE SET spent = disclosure_budget.spent + excluded.spent`,
				c.Dataset, c.Researcher, c.Day, c.Epsilon); err != nil {
				return err
			}
		}
		// Members go in 200 rows a statement (the first search after a
		// large ingest registers every patient). A member already in the
		// register at its ordinal is left as it is, so that a batch
		// retried after a commit whose answer was lost does not fail for
		// ever; a different member at that ordinal is refused below.
		for _, ms := range b.Members {
			for start := 0; start < len(ms.Members); start += 200 {
				chunk := ms.Members[start:min(start+200, len(ms.Members))]
				var q strings.Builder
				q.WriteString(`INSERT INTO disclosure_members (dataset_id, ordinal, member) VALUES `)
				args := make([]any, 0, 3*len(chunk))
				for i, m := range chunk {
					if i > 0 {
						q.WriteString(", ")
					}
					q.WriteString("(?, ?, ?)")
					args = append(args, ms.Dataset, int64(ms.First)+int64(start+i), m[:])
				}
				q.WriteString(` ON CONFLICT (dataset_id, ordinal) DO NOTHING`)
				if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
					return err
				}
			}
			rows, err := tx.Query(ctx, `SELECT ordinal, member FROM disclosure_members WHERE dataset_id = ? AND ordinal >= ? AND ordinal < ? ORDER BY ordinal`,
				ms.Dataset, int64(ms.First), int64(ms.First)+int64(len(ms.Members)))
			if err != nil {
				return err
			}
			n := 0
			for rows.Next() {
				var o int64
				var got []byte
				if err := rows.Scan(&o, &got); err != nil {
					rows.Close()
					return err
				}
				if i := o - int64(ms.First); i < 0 || i >= int64(len(ms.Members)) || string(got) != string(ms.Members[i][:]) {
					rows.Close()
					return fmt.Errorf("index: disclosure register of %s holds another member at %d", ms.Dataset, o)
				}
				n++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if n != len(ms.Members) {
				return fmt.Errorf("index: disclosure register of %s: %d of %d members written", ms.Dataset, n, len(ms.Members))
			}
		}
		return nil
	})
}

// Spent implements disclosure.Store.
func (s *Store) Spent(ctx context.Context, dataset, researcher, day string) (onDay, total float64, err error) {
	err = s.db.QueryRow(ctx, `SELECT COALESCE(SUM(CASE WHEN day = ? THEN spent ELSE 0 END), 0), COALESCE(SUM(spent), 0)
		FROM disclosure_budget WHERE dataset_id = ? AND researcher = ?`, day, dataset, researcher).Scan(&onDay, &total)
	return onDay, total, err
}
