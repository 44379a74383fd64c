package index

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/lens"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// Cohort snapshots: when a dataset is made available under an access
// request, the node freezes what the request's query selects in it (the
// matching patients and all their studies at that moment) so that later
// ingests never change what a permit covers. Patients are matched by the
// federated search's evaluator (fedmem.go); a patient without studies
// has nothing to deliver and is no member. Objects stored later into a
// member study stay outside too: a snapshot keeps the highest instance
// row it saw (instances are numbered in commit order: SQLite has one
// writer, and on PostgreSQL the snapshot waits for the writers in flight).

// SnapshotMember is one study of a snapshot and its patient's pseudonym.
type SnapshotMember struct {
	Patient, Study string
}

// memberRow is a member with its study's row.
type memberRow struct {
	SnapshotMember
	pk int64
}

// Snapshot is a cohort snapshot as the node keeps it.
type Snapshot struct {
	ID      string
	Dataset string
	Request string
	// Query is the Lens query as given (its canonical form).
	Query   string
	Created time.Time
	// Digest is the SHA-256 (hex) of the sorted lines "patient study\n"
	// of the members (SnapshotDigest).
	Digest string
	// Subjects and Studies are the raw counts: they must pass the node's
	// disclosure floor before they leave it.
	Subjects, Studies int
}

// ValidSnapshotID reports whether id can name a snapshot: 1 to 128
// letters, digits, dashes, dots and underscores (the hub's ids are
// random hex).
func ValidSnapshotID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// SnapshotDigest is the digest of a member list: the SHA-256 (hex) of
// its lines "patient study\n" sorted bytewise. The order of members
// given does not matter.
func SnapshotDigest(members []SnapshotMember) string {
	lines := make([]string, len(members))
	for i, m := range members {
		lines[i] = m.Patient + " " + m.Study + "\n"
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// matchedPatients evaluates q over dataset and returns the pseudonyms of
// the matching patients, with the version of the dataset's data they
// were read from ("id:changed_at").
func (s *Store) matchedPatients(ctx context.Context, q *lens.Query, dataset string) (map[string]bool, string, error) {
	snap, match, err := s.prepare(ctx, q)
	if err != nil {
		return nil, "", err
	}
	ds := slices.Index(snap.datasets, dataset)
	if ds < 0 {
		return nil, "", fmt.Errorf("%w: dataset %s", ErrNotFound, dataset)
	}
	out := map[string]bool{}
	for i := range snap.patients {
		p := &snap.patients[i]
		if int(p.ds) == ds && match(p) {
			out[snap.pids[i]] = true
		}
	}
	return out, snap.versions[ds], nil
}

// querier is what both a DB and a Tx offer.
type querier interface {
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// studiesOf returns the studies of the given patients in dataset, in
// patient then study order.
func studiesOf(ctx context.Context, db querier, dataset string, patients map[string]bool) ([]memberRow, error) {
	rows, err := db.Query(ctx, `SELECT p.patient_id, st.study_uid, st.pk FROM studies st JOIN patients p ON p.pk = st.patient_pk
		WHERE st.dataset_id = ? ORDER BY p.patient_id, st.study_uid`, dataset)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []memberRow{}
	for rows.Next() {
		var m memberRow
		if err := rows.Scan(&m.Patient, &m.Study, &m.pk); err != nil {
			return nil, err
		}
		if patients[m.Patient] {
			out = append(out, m)
		}
	}
	return out, rows.Err()
}

// SnapshotMembers returns what a snapshot of q in dataset would hold
// now: the studies of the patients q matches there. ErrNotFound for a
// dataset the node does not hold, ErrInvalid for a query it cannot
// evaluate.
func (s *Store) SnapshotMembers(ctx context.Context, q *lens.Query, dataset string) ([]SnapshotMember, error) {
	pats, _, err := s.matchedPatients(ctx, q, dataset)
	if err != nil {
		return nil, err
	}
	rows, err := studiesOf(ctx, s.db, dataset, pats)
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotMember, len(rows))
	for i, r := range rows {
		out[i] = r.SnapshotMember
	}
	return out, nil
}

// errMoved is returned inside MakeSnapshot's transaction when the
// dataset changed after its patients were matched.
var errMoved = errors.New("index: dataset changed while the snapshot was made")

// snapshotMatched, when set (by tests), runs between the matching of a
// snapshot's patients and its transaction.
var snapshotMatched func()

// MakeSnapshot freezes what q selects in sn.Dataset under sn.ID (and
// sn.Request) and returns the stored snapshot. It is idempotent: when a
// snapshot of that id and dataset exists it is returned unchanged and
// created is false, whatever q says now.
func (s *Store) MakeSnapshot(ctx context.Context, sn Snapshot, q *lens.Query) (out Snapshot, created bool, err error) {
	if !ValidSnapshotID(sn.ID) {
		return out, false, fmt.Errorf("%w: snapshot id", ErrInvalid)
	}
	if !ValidDatasetID(sn.Dataset) {
		return out, false, fmt.Errorf("%w: dataset %s", ErrNotFound, sn.Dataset)
	}
	if len(sn.Request) > 128 {
		return out, false, fmt.Errorf("%w: request id too long", ErrInvalid)
	}
	if got, err := s.Snapshot(ctx, sn.ID, sn.Dataset); err == nil {
		return got, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return out, false, err
	}
	if q == nil || q.Root == nil {
		return out, false, fmt.Errorf("%w: no query", ErrInvalid)
	}
	sn.Query = string(q.Canonical())
	for range 5 {
		pats, version, err := s.matchedPatients(ctx, q, sn.Dataset)
		if err != nil {
			return out, false, err
		}
		if snapshotMatched != nil {
			snapshotMatched()
		}
		created = false
		err = s.db.InTx(ctx, func(tx *sqldbTx) error {
			now := s.now().UTC().Truncate(time.Millisecond)
			// The insert comes first: on SQLite it takes the write lock
			// before anything is read, so nothing is stored between
			// the reads below and the commit.
			res, err := tx.Exec(ctx, `INSERT INTO snapshots (id, dataset_id, request, query, created_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (id, dataset_id) DO NOTHING`, sn.ID, sn.Dataset, sn.Request, sn.Query, now.UnixMilli())
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return nil // made meanwhile: read it below
			}
			if s.db.Dialect == sqldb.Postgres {
				// Wait for instance rows being written to commit, and
				// hold new ones until this one does: the highest row
				// read below then bounds exactly what is stored now.
				if _, err := tx.Exec(ctx, `LOCK TABLE instances, studies IN SHARE MODE`); err != nil {
					return err
				}
			}
			var changed int64
			if err := tx.QueryRow(ctx, `SELECT changed_at FROM datasets WHERE id = ?`, sn.Dataset).Scan(&changed); err != nil {
				return err
			}
			if version != sn.Dataset+":"+strconv.FormatInt(changed, 10) {
				return errMoved
			}
			members, err := studiesOf(ctx, tx, sn.Dataset, pats)
			if err != nil {
				return err
			}
			var last int64
			if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(pk), 0) FROM instances WHERE dataset_id = ?`, sn.Dataset).Scan(&last); err != nil {
				return err
			}
			subjects := map[string]bool{}
			list := make([]SnapshotMember, len(members))
			for i, m := range members {
				list[i] = m.SnapshotMember
				subjects[m.Patient] = true
			}
			// Members are written a few hundred rows a statement.
			const chunk = 200
			for rest := members; len(rest) > 0; {
				part := rest[:min(chunk, len(rest))]
				rest = rest[len(part):]
				args := make([]any, 0, 5*len(part))
				for _, m := range part {
					args = append(args, sn.ID, sn.Dataset, m.pk, m.Patient, m.Study)
				}
				q := `INSERT INTO snapshot_members (snapshot_id, dataset_id, study_pk, patient_id, study_uid) VALUES (?, ?, ?, ?, ?)` +
					strings.Repeat(`, (?, ?, ?, ?, ?)`, len(part)-1)
				if _, err := tx.Exec(ctx, q, args...); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE snapshots SET digest = ?, subjects = ?, studies = ?, last_instance_pk = ? WHERE id = ? AND dataset_id = ?`,
				SnapshotDigest(list), len(subjects), len(members), last, sn.ID, sn.Dataset); err != nil {
				return err
			}
			created = true
			return nil
		})
		if errors.Is(err, errMoved) {
			continue
		}
		if err != nil {
			return out, false, fmt.Errorf("index: snapshot: %w", err)
		}
		out, err = s.Snapshot(ctx, sn.ID, sn.Dataset)
		return out, created, err
	}
	return out, false, fmt.Errorf("index: snapshot: the dataset kept changing; try again")
}

// Snapshot returns a stored snapshot; ErrNotFound when the node holds
// none of that id for dataset.
func (s *Store) Snapshot(ctx context.Context, id, dataset string) (Snapshot, error) {
	sn := Snapshot{ID: id, Dataset: dataset}
	var created int64
	err := s.db.QueryRow(ctx, `SELECT request, query, created_at, digest, subjects, studies FROM snapshots WHERE id = ? AND dataset_id = ?`,
		id, dataset).Scan(&sn.Request, &sn.Query, &created, &sn.Digest, &sn.Subjects, &sn.Studies)
	if errors.Is(err, sql.ErrNoRows) {
		return sn, fmt.Errorf("%w: snapshot %s of dataset %s", ErrNotFound, id, dataset)
	}
	if err != nil {
		return sn, err
	}
	sn.Created = time.UnixMilli(created).UTC()
	return sn, nil
}

// SnapshotHasStudy reports whether study is a member of the snapshot.
func (s *Store) SnapshotHasStudy(ctx context.Context, id, dataset, study string) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM snapshot_members WHERE snapshot_id = ? AND dataset_id = ? AND study_uid = ?`,
		id, dataset, study).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// SnapshotStudies lists the members of a snapshot in patient then study
// order.
func (s *Store) SnapshotStudies(ctx context.Context, id, dataset string) ([]SnapshotMember, error) {
	rows, err := s.db.Query(ctx, `SELECT patient_id, study_uid FROM snapshot_members WHERE snapshot_id = ? AND dataset_id = ?
		ORDER BY patient_id, study_uid`, id, dataset)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []SnapshotMember{}
	for rows.Next() {
		var m SnapshotMember
		if err := rows.Scan(&m.Patient, &m.Study); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SnapshotInstances lists the stored instances of a snapshot, like
// Instances: all of them when studyUID is empty, else those of a member
// study, series or instance. ErrNotFound when nothing matches (a study
// outside the snapshot is not found, as one that does not exist).
func (s *Store) SnapshotInstances(ctx context.Context, id, dataset, studyUID, seriesUID, sopUID string) ([]StoredInstance, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: no snapshot", ErrInvalid)
	}
	return s.instances(ctx, id, dataset, studyUID, seriesUID, sopUID)
}

// SnapshotMetadata is Metadata within a snapshot: a study, series or
// instance outside it is ErrNotFound.
func (s *Store) SnapshotMetadata(ctx context.Context, id, dataset, studyUID, seriesUID, sopUID string, fn func(meta []byte) error) error {
	if id == "" || studyUID == "" {
		return fmt.Errorf("%w: no snapshot or study", ErrInvalid)
	}
	return s.metadata(ctx, id, dataset, studyUID, seriesUID, sopUID, fn)
}

// snapshotLast returns the highest instance row of a snapshot; ok is
// false when there is no such snapshot.
func (s *Store) snapshotLast(ctx context.Context, id, dataset string) (last int64, ok bool, err error) {
	err = s.db.QueryRow(ctx, `SELECT last_instance_pk FROM snapshots WHERE id = ? AND dataset_id = ?`, id, dataset).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return last, err == nil, err
}

// scopeLast is snapshotLast for listings: 0 without a snapshot,
// ErrNotFound for one that does not exist.
func (s *Store) scopeLast(ctx context.Context, id, dataset string) (int64, error) {
	if id == "" {
		return 0, nil
	}
	last, ok, err := s.snapshotLast(ctx, id, dataset)
	if err == nil && !ok {
		err = fmt.Errorf("%w: no such study, series or instance", ErrNotFound)
	}
	return last, err
}

// snapshotScope is the SQL condition that keeps a search or listing at
// level inside a snapshot whose highest instance row is last (aliases as
// in Search: st, se, i), with its arguments: the study is a member, and
// the series or instance was stored when the snapshot was made.
func snapshotScope(id, dataset string, level Level, last int64) (string, []any) {
	conds := []string{`EXISTS (SELECT 1 FROM snapshot_members sm WHERE sm.snapshot_id = ? AND sm.dataset_id = ? AND sm.study_pk = st.pk)`}
	args := []any{id, dataset}
	n := strconv.FormatInt(last, 10)
	switch level {
	case SeriesLevel:
		conds = append(conds, `se.first_instance_pk <= `+n)
	case InstanceLevel:
		conds = append(conds, `i.pk <= `+n)
	}
	return "(" + strings.Join(conds, " AND ") + ")", args
}

// snapshotColumns returns the index's columns as a search within a
// snapshot sees them: the numbers of series and instances count only
// those stored when the snapshot was made.
func snapshotColumns(last int64) func(dicom.Tag) (column, bool) {
	n := strconv.FormatInt(last, 10)
	counts := map[dicom.Tag]string{
		0x00201206: `(SELECT COUNT(*) FROM series cs WHERE cs.study_pk = st.pk AND cs.first_instance_pk <= ` + n + `)`,
		0x00201208: `(SELECT COUNT(*) FROM series cs JOIN instances ci ON ci.series_pk = cs.pk WHERE cs.study_pk = st.pk AND ci.pk <= ` + n + `)`,
		0x00201209: `(SELECT COUNT(*) FROM instances ci WHERE ci.series_pk = se.pk AND ci.pk <= ` + n + `)`,
	}
	return func(t dicom.Tag) (column, bool) {
		c, ok := columns[t]
		if e, counted := counts[t]; ok && counted {
			c.expr = e
		}
		return c, ok
	}
}
