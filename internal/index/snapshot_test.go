package index

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/lens"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

func femaleQuery(t *testing.T) *lens.Query {
	t.Helper()
	n, err := lens.Is(lens.Gender, "female")
	if err != nil {
		t.Fatal(err)
	}
	q, err := lens.NewQuery(n)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestSnapshots: a snapshot holds the studies of the matching patients
// at the time it is made, with a digest computed independently here;
// later ingests (new patients that match, new series and instances in a
// member study) change neither it nor what its searches and listings
// return; the same id gives the stored snapshot back unchanged; studies
// outside it are not found.
func TestSnapshots(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.CreateDataset(ctx, Dataset{ID: "lung", Title: "Lung"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateDataset(ctx, Dataset{ID: "other", Title: "Other"}); err != nil {
			t.Fatal(err)
		}
		// Six patients, P000..P005; the even ones are female.
		if _, err := s.PutInstances(ctx, cohort("lung", 6)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutInstances(ctx, cohort("other", 2)); err != nil {
			t.Fatal(err)
		}
		q := femaleQuery(t)
		members, err := s.SnapshotMembers(ctx, q, "lung")
		if err != nil {
			t.Fatal(err)
		}
		var want []SnapshotMember
		for _, p := range []int{0, 2, 4} {
			for st := 0; st < 2; st++ {
				want = append(want, SnapshotMember{Patient: fmt.Sprintf("P%03d", p), Study: fmt.Sprintf("2.25.%d%d", p+1, st)})
			}
		}
		if fmt.Sprint(members) != fmt.Sprint(want) {
			t.Fatalf("members: %v, want %v", members, want)
		}

		sn, created, err := s.MakeSnapshot(ctx, Snapshot{ID: "snap-1", Dataset: "lung", Request: "req-1"}, q)
		if err != nil || !created {
			t.Fatalf("make: %v %v", created, err)
		}
		// The digest, computed here from the expected members.
		var lines []string
		for _, m := range want {
			lines = append(lines, m.Patient+" "+m.Study+"\n")
		}
		sort.Strings(lines)
		h := sha256.New()
		for _, l := range lines {
			h.Write([]byte(l))
		}
		if sn.Digest != hex.EncodeToString(h.Sum(nil)) || sn.Subjects != 3 || sn.Studies != 6 || sn.Request != "req-1" || sn.Query == "" {
			t.Fatalf("snapshot: %+v", sn)
		}

		// Later: two more female patients, and a new series and instance
		// in a member study.
		later := cohort("lung", 9)
		more := append(later[6*12:7*12:7*12], later[8*12:]...) // P006 and P008, female
		extra := cohort("lung", 1)[0]
		extra.SeriesUID, extra.SOPUID, extra.BlobKey = "2.25.1099", "2.25.10990", fmt.Sprintf("%064d", 999999)
		extra2 := cohort("lung", 1)[0]
		extra2.SOPUID, extra2.BlobKey = "2.25.10009", fmt.Sprintf("%064d", 999998)
		if _, err := s.PutInstances(ctx, append(more, extra, extra2)); err != nil {
			t.Fatal(err)
		}
		if now, _ := s.SnapshotMembers(ctx, q, "lung"); len(now) != 10 {
			t.Fatalf("the query now matches %d studies, want 10", len(now))
		}
		again, created, err := s.MakeSnapshot(ctx, Snapshot{ID: "snap-1", Dataset: "lung", Request: "req-other"}, q)
		if err != nil || created || again != sn {
			t.Fatalf("same id again: %v %v\n%+v\n%+v", created, err, again, sn)
		}
		got, err := s.SnapshotStudies(ctx, "snap-1", "lung")
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("studies after ingest: %v %v", got, err)
		}
		// A new snapshot sees the new patients.
		sn2, created, err := s.MakeSnapshot(ctx, Snapshot{ID: "snap-2", Dataset: "lung"}, q)
		if err != nil || !created || sn2.Studies != 10 || sn2.Subjects != 5 || sn2.Digest == sn.Digest {
			t.Fatalf("second snapshot: %+v %v %v", sn2, created, err)
		}

		if ok, err := s.SnapshotHasStudy(ctx, "snap-1", "lung", "2.25.10"); !ok || err != nil {
			t.Fatalf("member study: %v %v", ok, err)
		}
		for _, c := range [][3]string{{"snap-1", "lung", "2.25.20"}, {"snap-1", "lung", "2.25.70"}, {"snap-1", "other", "2.25.10"}, {"nope", "lung", "2.25.10"}} {
			if ok, err := s.SnapshotHasStudy(ctx, c[0], c[1], c[2]); ok || err != nil {
				t.Errorf("%v: a member: %v %v", c, ok, err)
			}
		}

		// Listings: every instance of the snapshot as it was (6 studies of
		// 12), not the series and instance stored later.
		all, err := s.SnapshotInstances(ctx, "snap-1", "lung", "", "", "")
		if err != nil || len(all) != 6*6 {
			t.Fatalf("instances of the snapshot: %d %v", len(all), err)
		}
		for _, in := range all {
			if in.SOPUID == extra.SOPUID || in.SOPUID == extra2.SOPUID {
				t.Errorf("an instance stored after the snapshot is in it: %s", in.SOPUID)
			}
		}
		if l, err := s.SnapshotInstances(ctx, "snap-1", "lung", "2.25.10", "", ""); err != nil || len(l) != 6 {
			t.Errorf("a member study: %d %v", len(l), err)
		}
		if l, err := s.SnapshotInstances(ctx, "snap-2", "lung", "2.25.10", "", ""); err != nil || len(l) != 8 {
			t.Errorf("a member study in the later snapshot: %d %v", len(l), err)
		}
		for _, st := range []string{"2.25.20", "2.25.70", "2.25.99"} {
			if _, err := s.SnapshotInstances(ctx, "snap-1", "lung", st, "", ""); !errors.Is(err, ErrNotFound) {
				t.Errorf("study %s outside the snapshot: %v", st, err)
			}
			err := s.SnapshotMetadata(ctx, "snap-1", "lung", st, "", "", func([]byte) error { return nil })
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("metadata of study %s outside the snapshot: %v", st, err)
			}
		}
		if _, err := s.SnapshotInstances(ctx, "snap-1", "lung", "2.25.10", extra.SeriesUID, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("a later series of a member study: %v", err)
		}
		n := 0
		if err := s.SnapshotMetadata(ctx, "snap-1", "lung", "2.25.10", "", "", func([]byte) error { n++; return nil }); err != nil || n != 6 {
			t.Errorf("metadata of a member study: %d %v", n, err)
		}

		// Searches within the snapshot.
		count := func(level Level, study string) int {
			hits, err := s.Search(ctx, Search{Dataset: "lung", Level: level, StudyUID: study, Snapshot: "snap-1", NoMeta: true})
			if err != nil {
				t.Fatal(err)
			}
			return len(hits)
		}
		if c := count(StudyLevel, ""); c != 6 {
			t.Errorf("studies in the snapshot: %d", c)
		}
		if c := count(SeriesLevel, ""); c != 12 {
			t.Errorf("series in the snapshot: %d", c)
		}
		if c := count(InstanceLevel, ""); c != 36 {
			t.Errorf("instances in the snapshot: %d", c)
		}
		if c := count(SeriesLevel, "2.25.20"); c != 0 {
			t.Errorf("series of a study outside: %d", c)
		}
		// The numbers of series and instances are those of the snapshot.
		for _, c := range []struct {
			snap  string
			level Level
			tag   dicom.Tag
			want  string
		}{
			{"snap-1", StudyLevel, 0x00201206, "2"}, {"snap-1", StudyLevel, 0x00201208, "6"}, {"snap-1", SeriesLevel, 0x00201209, "3"},
			{"snap-2", StudyLevel, 0x00201206, "3"}, {"snap-2", StudyLevel, 0x00201208, "8"}, {"snap-2", SeriesLevel, 0x00201209, "4"},
		} {
			hits, err := s.Search(ctx, Search{Dataset: "lung", Level: c.level, StudyUID: "2.25.10", Snapshot: c.snap, NoMeta: true,
				Filters: []Filter{{Tag: 0x0020000E, Kind: MatchList, Values: []string{"2.25.100"}}}[:int(c.level)]})
			if err != nil || len(hits) != 1 || hits[0].Values[c.tag] != c.want {
				t.Errorf("%s %s in %s: %v %v, want %s", c.tag, "2.25.10", c.snap, hits, err, c.want)
			}
		}
		if hits, err := s.Search(ctx, Search{Dataset: "lung", Level: StudyLevel, Snapshot: "nope"}); err != nil || len(hits) != 0 {
			t.Errorf("search in no snapshot: %v %v", hits, err)
		}
		if hits, _ := s.Search(ctx, Search{Dataset: "lung", Level: StudyLevel, NoMeta: true}); len(hits) != 16 {
			t.Errorf("studies without a snapshot: %d", len(hits))
		}

		// Bad input.
		if _, _, err := s.MakeSnapshot(ctx, Snapshot{ID: "../x", Dataset: "lung"}, q); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad id: %v", err)
		}
		if _, _, err := s.MakeSnapshot(ctx, Snapshot{ID: "s3", Dataset: "nope"}, q); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown dataset: %v", err)
		}
		if _, _, err := s.MakeSnapshot(ctx, Snapshot{ID: "s3", Dataset: "lung"}, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("no query: %v", err)
		}
		if _, err := s.Snapshot(ctx, "s3", "lung"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a failed snapshot was stored: %v", err)
		}
	})
}

// TestSnapshotRace: a patient stored between the evaluation of the query
// and the snapshot's transaction is not lost: the snapshot is made again
// over the new data, so its members are what the query selects at one
// moment.
func TestSnapshotRace(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.CreateDataset(ctx, Dataset{ID: "lung", Title: "Lung"}); err != nil {
			t.Fatal(err)
		}
		all := cohort("lung", 3)
		if _, err := s.PutInstances(ctx, all[:12]); err != nil { // P000, female
			t.Fatal(err)
		}
		calls := 0
		snapshotMatched = func() {
			calls++
			if calls == 1 {
				if _, err := s.PutInstances(ctx, all[24:]); err != nil { // P002, female
					t.Error(err)
				}
			}
		}
		defer func() { snapshotMatched = nil }()
		sn, _, err := s.MakeSnapshot(ctx, Snapshot{ID: "s", Dataset: "lung"}, femaleQuery(t))
		if err != nil || sn.Subjects != 2 || sn.Studies != 4 || calls != 2 {
			t.Fatalf("snapshot made while a patient was stored: %+v %v (%d evaluations)", sn, err, calls)
		}
	})
}

// TestSnapshotWaitsForWriters: an object being written into a member
// study while the snapshot is made is either in it or not, for good: the
// snapshot waits for the write to commit (on PostgreSQL, whose row
// numbers may commit out of order, by locking the tables; on SQLite by
// its single writer), so what it lists right after it is made is what it
// lists later.
func TestSnapshotWaitsForWriters(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.CreateDataset(ctx, Dataset{ID: "lung", Title: "Lung"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutInstances(ctx, cohort("lung", 1)); err != nil {
			t.Fatal(err)
		}
		var seriesPK int64
		if err := s.db.QueryRow(ctx, `SELECT pk FROM series WHERE series_uid = '2.25.100'`).Scan(&seriesPK); err != nil {
			t.Fatal(err)
		}
		// A writer in flight: an instance of a member series, not yet
		// committed.
		tx, err := s.db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.Exec(ctx, `INSERT INTO instances (dataset_id, series_pk, sop_uid, blob_key, size, ingested_at) VALUES ('lung', ?, '2.25.77', 'k', 1, 0)`, seriesPK); err != nil {
			t.Fatal(err)
		}
		if s.db.Dialect == sqldb.Postgres {
			// Another writer commits meanwhile, its row numbered after
			// the one in flight (SQLite has one writer at a time).
			more := cohort("lung", 1)[0]
			more.SOPUID, more.BlobKey = "2.25.78", fmt.Sprintf("%064d", 78)
			if _, err := s.PutInstances(ctx, []Instance{more}); err != nil {
				t.Fatal(err)
			}
		}
		type made struct {
			first []StoredInstance
			err   error
		}
		done := make(chan made, 1)
		go func() {
			_, _, err := s.MakeSnapshot(ctx, Snapshot{ID: "s", Dataset: "lung"}, femaleQuery(t))
			if err != nil {
				done <- made{err: err}
				return
			}
			l, err := s.SnapshotInstances(ctx, "s", "lung", "", "", "")
			done <- made{l, err}
		}()
		var m made
		select {
		case m = <-done:
		case <-time.After(500 * time.Millisecond):
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if m.first == nil && m.err == nil {
			m = <-done
		}
		if m.err != nil {
			t.Fatal(m.err)
		}
		later, err := s.SnapshotInstances(ctx, "s", "lung", "", "", "")
		if err != nil || len(later) != len(m.first) {
			t.Fatalf("the snapshot listed %d objects when made and %d once the writer committed (%v)", len(m.first), len(later), err)
		}
	})
}
