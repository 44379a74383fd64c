package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
	"github.com/mosaic-imaging/mosaic/internal/sqldb/sqltest"
)

// engines runs the conformance suite on every engine the index supports.
func engines(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "index.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		url := sqltest.PostgresURL(t)
		s, err := Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		fn(t, s)
	})
}

func TestDatasets(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d, err := s.CreateDataset(ctx, Dataset{ID: "lung-ct", Title: "Lung CT"})
		if err != nil {
			t.Fatal(err)
		}
		if d.AccessRights != "RESTRICTED" || d.Tier != 1 || d.Created.IsZero() {
			t.Errorf("defaults: %+v", d)
		}
		if _, err := s.CreateDataset(ctx, Dataset{ID: "lung-ct", Title: "Other"}); !errors.Is(err, ErrExists) {
			t.Errorf("duplicate id: %v", err)
		}
		for _, bad := range []Dataset{{ID: "../x", Title: "t"}, {ID: "UPPER", Title: "t"}, {ID: "ok", Title: " "}, {ID: "ok", Title: "t", Tier: 4}, {ID: "ok", Title: "t", AccessRights: "OPEN"}} {
			if _, err := s.CreateDataset(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: got %v, want ErrInvalid", bad, err)
			}
		}
		u, err := s.UpdateDataset(ctx, "lung-ct", func(d *Dataset) error { d.Licence = "CC-BY-4.0"; d.Tier = 2; return nil })
		if err != nil || u.Licence != "CC-BY-4.0" || u.Tier != 2 {
			t.Fatalf("update: %+v %v", u, err)
		}
		got, err := s.Dataset(ctx, "lung-ct")
		if err != nil || got.Licence != "CC-BY-4.0" || got.Title != "Lung CT" {
			t.Fatalf("read back: %+v %v", got, err)
		}
		if _, err := s.Dataset(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown dataset: %v", err)
		}
		all, err := s.Datasets(ctx)
		if err != nil || len(all) != 1 {
			t.Fatalf("list: %v %v", all, err)
		}
		if err := s.DeleteDataset(ctx, "lung-ct"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDataset(ctx, "lung-ct"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
	})
}

func TestTokens(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		secret, tok, err := s.CreateToken(ctx, "ops", ScopeAdmin, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.CheckToken(ctx, secret)
		if err != nil || got.ID != tok.ID || got.Scope != ScopeAdmin || got.Dataset != "" || got.Name != "ops" {
			t.Fatalf("check: %+v %v", got, err)
		}
		for _, bad := range []string{"", "mnt_", secret + "x", "mnt_" + tok.ID + "_wrong", "' OR 1=1 --", secret[:len(secret)-1]} {
			if _, err := s.CheckToken(ctx, bad); !errors.Is(err, ErrBadToken) {
				t.Errorf("token %q accepted: %v", bad, err)
			}
		}
		if err := s.RevokeToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckToken(ctx, secret); !errors.Is(err, ErrBadToken) {
			t.Errorf("revoked token accepted: %v", err)
		}
		list, err := s.Tokens(ctx)
		if err != nil || len(list) != 1 || list[0].Revoked == nil || list[0].Scope != ScopeAdmin {
			t.Fatalf("list: %+v %v", list, err)
		}
	})
}

// TestTokenScopes: tokens keep their scope and dataset; unknown scopes
// and datasets are refused; deleting a dataset revokes its tokens.
func TestTokenScopes(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.CreateDataset(ctx, Dataset{ID: "lung", Title: "Lung"}); err != nil {
			t.Fatal(err)
		}
		secret, _, err := s.CreateToken(ctx, "viewer", ScopeRead, "lung")
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.CheckToken(ctx, secret)
		if err != nil || got.Scope != ScopeRead || got.Dataset != "lung" {
			t.Fatalf("check: %+v %v", got, err)
		}
		if _, _, err := s.CreateToken(ctx, "x", "root", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("unknown scope: %v", err)
		}
		if _, _, err := s.CreateToken(ctx, "x", ScopeRead, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown dataset: %v", err)
		}
		list, err := s.Tokens(ctx)
		if err != nil || len(list) != 1 || list[0].Scope != ScopeRead || list[0].Dataset != "lung" {
			t.Fatalf("list: %+v %v", list, err)
		}
		if err := s.DeleteDataset(ctx, "lung"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateDataset(ctx, Dataset{ID: "lung", Title: "Another lung"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckToken(ctx, secret); !errors.Is(err, ErrBadToken) {
			t.Errorf("a token of a deleted dataset works for a new one of the same id: %v", err)
		}
	})
}

func TestTokenAllows(t *testing.T) {
	tests := []struct {
		scope, dataset string // the token's
		need, on       string // asked
		want           bool
	}{
		{ScopeRead, "", ScopeRead, "a", true},
		{ScopeRead, "", ScopeWrite, "a", false},
		{ScopeRead, "", ScopeRead, "", true},
		{ScopeWrite, "", ScopeWrite, "a", true},
		{ScopeWrite, "", ScopeAdmin, "a", false},
		{ScopeWrite, "", ScopeRead, "b", true},
		{ScopeAdmin, "", ScopeAdmin, "", true},
		{ScopeAdmin, "", ScopeWrite, "b", true},
		{ScopeRead, "a", ScopeRead, "a", true},
		{ScopeRead, "a", ScopeRead, "b", false},
		{ScopeRead, "a", ScopeRead, "", true}, // a listing, limited by the caller
		{ScopeWrite, "a", ScopeWrite, "a", true},
		{ScopeWrite, "a", ScopeWrite, "b", false},
		{ScopeAdmin, "a", ScopeAdmin, "a", true},
		{ScopeAdmin, "a", ScopeAdmin, "", false}, // creating datasets, tokens
		{ScopeAdmin, "a", ScopeRead, "b", false},
		{ScopeAdmin, "", "root", "", false},
		{"", "", ScopeRead, "", false},
	}
	for _, tt := range tests {
		got := Token{Scope: tt.scope, Dataset: tt.dataset}.Allows(tt.need, tt.on)
		if got != tt.want {
			t.Errorf("%s token for %q asked %s on %q: got %v, want %v", tt.scope, tt.dataset, tt.need, tt.on, got, tt.want)
		}
	}
}

// TestTokenMigrationKeepsAdmin: a token made before scopes existed is an
// admin token for every dataset after the migration, on both engines.
func TestTokenMigrationKeepsAdmin(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			dsn := filepath.Join(t.TempDir(), "index.db")
			if engine == "postgres" {
				dsn = sqltest.PostgresURL(t)
			}
			// The schema as it was before scopes: migrations 1 to 5.
			old := fstest.MapFS{}
			entries, err := migrations.ReadDir("migrations")
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Name() < "006" {
					b, _ := migrations.ReadFile("migrations/" + e.Name())
					old["migrations/"+e.Name()] = &fstest.MapFile{Data: b}
				}
			}
			db, err := sqldb.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Migrate(ctx, "node", old, "migrations"); err != nil {
				t.Fatal(err)
			}
			secret := tokenPrefix + "oldtoken_" + strings.Repeat("a", 32)
			if _, err := db.Exec(ctx, `INSERT INTO tokens (id, hash, name, created_at) VALUES (?, ?, ?, ?)`, "oldtoken", hashToken(secret), "before scopes", 1); err != nil {
				t.Fatal(err)
			}
			db.Close()

			s, err := Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tok, err := s.CheckToken(ctx, secret)
			if err != nil || tok.Scope != ScopeAdmin || tok.Dataset != "" {
				t.Fatalf("old token after the migration: %+v %v; want admin for all datasets", tok, err)
			}
			if !tok.Allows(ScopeAdmin, "") || !tok.Allows(ScopeWrite, "any") {
				t.Error("old token lost powers")
			}
			list, err := s.Tokens(ctx)
			if err != nil || len(list) != 1 || list[0].Scope != ScopeAdmin {
				t.Errorf("list: %+v %v", list, err)
			}
		})
	}
}

func ptr(i int) *int { return &i }

// cohort makes instances of pat patients, 2 studies each, 2 series per
// study (CT and MR), 3 instances per series.
func cohort(dataset string, pat int) []Instance {
	var out []Instance
	for p := 0; p < pat; p++ {
		for st := 0; st < 2; st++ {
			for se := 0; se < 2; se++ {
				mod := []string{"CT", "MR"}[se]
				for i := 0; i < 3; i++ {
					uid := fmt.Sprintf("2.25.%d%d%d%d", p+1, st, se, i)
					out = append(out, Instance{
						Dataset: dataset, PatientID: fmt.Sprintf("P%03d", p), PatientName: fmt.Sprintf("Name%03d^Given", p),
						PatientSex: []string{"F", "M"}[p%2],
						StudyUID:   fmt.Sprintf("2.25.%d%d", p+1, st), StudyDate: fmt.Sprintf("20%02d0101", 18+st), StudyTime: "101500",
						AccessionNumber: "", StudyID: "S1",
						SeriesUID: fmt.Sprintf("2.25.%d%d%d", p+1, st, se), Modality: mod, SeriesNumber: ptr(se + 1), BodyPart: "CHEST",
						SOPUID: uid, SOPClassUID: "1.2.840.10008.5.1.4.1.1.2", InstanceNumber: ptr(i + 1),
						BlobKey: fmt.Sprintf("%064d", p*1000+st*100+se*10+i), Size: 1000, PixelOffset: 100, PixelLength: 900,
						Meta: []byte(fmt.Sprintf(`{"00080018":{"vr":"UI","Value":["%s"]}}`, uid)),
					})
				}
			}
		}
	}
	return out
}

func TestPutAndSearch(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, id := range []string{"a", "b"} {
			if _, err := s.CreateDataset(ctx, Dataset{ID: id, Title: id}); err != nil {
				t.Fatal(err)
			}
		}
		insts := cohort("a", 5)
		// Two batches, the second overlapping the first.
		st, err := s.PutInstances(ctx, insts[:40])
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range st {
			if x != Stored {
				t.Fatalf("instance %d: %v", i, x)
			}
		}
		st, err = s.PutInstances(ctx, insts[30:])
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range st {
			want := Stored
			if i < 10 {
				want = Duplicate
			}
			if x != want {
				t.Fatalf("second batch %d: %v, want %v", i, x, want)
			}
		}
		// Same UID, other content: a conflict, nothing changed.
		c := insts[0]
		c.BlobKey = fmt.Sprintf("%064d", 999999)
		st, err = s.PutInstances(ctx, []Instance{c})
		if err != nil || st[0] != Conflict {
			t.Fatalf("conflict: %v %v", st, err)
		}
		// The other dataset is separate.
		if st, err := s.PutInstances(ctx, cohort("b", 1)[:1]); err != nil || st[0] != Stored {
			t.Fatalf("dataset b: %v %v", st, err)
		}
		counts, err := s.DatasetCounts(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if counts != (Counts{Patients: 5, Studies: 10, Series: 20, Instances: 60, Bytes: 60000}) {
			t.Fatalf("counts: %+v", counts)
		}

		search := func(q Search) []Hit {
			t.Helper()
			q.Dataset = "a"
			h, err := s.Search(ctx, q)
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			return h
		}
		if n := len(search(Search{Level: StudyLevel})); n != 10 {
			t.Errorf("all studies: %d", n)
		}
		h := search(Search{Level: StudyLevel, Filters: []Filter{{Tag: 0x00100020, Kind: MatchExact, Value: "P002"}}})
		if len(h) != 2 || h[0].Values[0x00100020] != "P002" || h[0].Values[0x00080061] != `CT\MR` || h[0].Values[0x00201208] != "6" || h[0].Values[0x00201206] != "2" {
			t.Fatalf("by patient: %+v", h)
		}
		if string(h[0].Meta) == "" {
			t.Error("study hit without metadata")
		}
		if n := len(search(Search{Level: StudyLevel, Filters: []Filter{{Tag: 0x00080020, Kind: MatchRange, Min: "20190101"}}})); n != 5 {
			t.Errorf("date range: %d", n)
		}
		if n := len(search(Search{Level: StudyLevel, Filters: []Filter{{Tag: 0x00080020, Kind: MatchRange, Max: "20181231"}, {Tag: 0x00080061, Kind: MatchExact, Value: "MR"}}})); n != 5 {
			t.Errorf("date and modality: %d", n)
		}
		if n := len(search(Search{Level: StudyLevel, Filters: []Filter{{Tag: 0x00080061, Kind: MatchExact, Value: "PT"}}})); n != 0 {
			t.Errorf("absent modality: %d", n)
		}
		// Person names ignore case; wildcards; SQL-looking values are data.
		if n := len(search(Search{Level: StudyLevel, Filters: []Filter{{Tag: 0x00100010, Kind: MatchWildcard, Pattern: "name00%"}}})); n != 10 {
			t.Errorf("PN wildcard: %d", n)
		}
		if n := len(search(Search{Level: StudyLevel, Filters: []Filter{{Tag: 0x00100020, Kind: MatchWildcard, Pattern: "p00%"}}})); n != 0 {
			t.Errorf("LO wildcard must respect case: %d", n)
		}
		if n := len(search(Search{Level: StudyLevel, Filters: []Filter{{Tag: 0x00100020, Kind: MatchWildcard, Pattern: "P00_"}}})); n != 10 {
			t.Errorf("LO wildcard: %d", n)
		}
		for _, v := range []string{"' OR '1'='1", "P001'; DROP TABLE studies; --", `\`, "%"} {
			if n := len(search(Search{Level: StudyLevel, Filters: []Filter{{Tag: 0x00100020, Kind: MatchExact, Value: v}}})); n != 0 {
				t.Errorf("value %q matched %d", v, n)
			}
		}
		if n := len(search(Search{Level: StudyLevel, Filters: []Filter{{Tag: 0x0020000D, Kind: MatchList, Values: []string{"2.25.10", "2.25.21", "2.25.99"}}}})); n != 2 {
			t.Errorf("UID list: %d", n)
		}
		// Pages.
		var pages []string
		for off := 0; off < 10; off += 3 {
			for _, h := range search(Search{Level: StudyLevel, Limit: 3, Offset: off}) {
				pages = append(pages, h.StudyUID)
			}
		}
		if len(pages) != 10 {
			t.Errorf("pages: %v", pages)
		}
		seen := map[string]bool{}
		for _, p := range pages {
			seen[p] = true
		}
		if len(seen) != 10 {
			t.Errorf("pages repeat studies: %v", pages)
		}
		// Series and instances, scoped and not.
		hs := search(Search{Level: SeriesLevel, StudyUID: "2.25.10"})
		if len(hs) != 2 || hs[0].Values[0x00201209] != "3" || hs[0].Values[0x00080060] != "CT" {
			t.Fatalf("series of a study: %+v", hs)
		}
		if n := len(search(Search{Level: SeriesLevel, Filters: []Filter{{Tag: 0x00080060, Kind: MatchExact, Value: "MR"}}})); n != 10 {
			t.Errorf("MR series: %d", n)
		}
		hi := search(Search{Level: InstanceLevel, StudyUID: "2.25.10", SeriesUID: "2.25.101"})
		if len(hi) != 3 || hi[2].Values[0x00200013] != "3" {
			t.Fatalf("instances of a series: %+v", hi)
		}
		if _, err := s.Search(ctx, Search{Dataset: "a", Level: StudyLevel, Filters: []Filter{{Tag: 0x00080060, Kind: MatchExact, Value: "CT"}}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("series attribute at study level: %v", err)
		}
		// Retrieval lists and metadata.
		list, err := s.Instances(ctx, "a", "2.25.10", "", "")
		if err != nil || len(list) != 6 || list[0].BlobKey == "" || list[0].PixelOffset != 100 {
			t.Fatalf("instances: %+v %v", list, err)
		}
		if _, err := s.Instances(ctx, "b", "2.25.20", "", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("other dataset's study: %v", err)
		}
		var metas int
		if err := s.Metadata(ctx, "a", "2.25.10", "2.25.101", "", func([]byte) error { metas++; return nil }); err != nil || metas != 3 {
			t.Errorf("metadata: %d %v", metas, err)
		}
	})
}

// TestConcurrentPuts writes overlapping batches from several goroutines:
// every instance ends up indexed once, and the counters agree.
func TestConcurrentPuts(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.CreateDataset(ctx, Dataset{ID: "a", Title: "a"}); err != nil {
			t.Fatal(err)
		}
		insts := cohort("a", 4)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := g; i < len(insts); i += 8 {
					end := min(i+8, len(insts))
					if _, err := s.PutInstances(ctx, insts[i:end]); err != nil {
						errs <- err
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		c, err := s.DatasetCounts(ctx, "a")
		if err != nil || c.Instances != int64(len(insts)) || c.Studies != 8 || c.Series != 16 {
			t.Fatalf("counts %+v %v", c, err)
		}
		h, err := s.Search(ctx, Search{Dataset: "a", Level: StudyLevel})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range h {
			if x.Values[0x00201208] != "6" {
				t.Errorf("study %s counts %s instances", x.StudyUID, x.Values[0x00201208])
			}
		}
	})
}

var _ = dicom.Tag(0)

func TestClinicalAndCheck(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.CreateDataset(ctx, Dataset{ID: "a", Title: "a", Tier: 3}); err != nil {
			t.Fatal(err)
		}
		insts := cohort("a", 3)
		// One series mixes in another patient's instance.
		insts[1].PatientID = "P002"
		if _, err := s.PutInstances(ctx, insts); err != nil {
			t.Fatal(err)
		}
		yes := true
		var pats []ClinicalPatient
		for _, id := range []string{"P000", "P001", "P009"} {
			pats = append(pats, ClinicalPatient{PatientID: id, BirthSex: "female", Deceased: &yes,
				Condition: &Condition{CancerType: "lung", AgeAtDiagnosis: ptr(61), DiagnosisDate: "20171215", ICD10: "C34.1", Topography: "C34.1", Morphology: "8140/3"},
				Stages:    []Stage{{Code: "T", Value: "T2", System: "TNM8 clinical"}},
				Episodes:  []Episode{{Type: "Diagnosis", OffsetDays: ptr(0)}},
			})
		}
		pats[1].Condition = nil
		if err := s.PutClinical(ctx, "a", pats); err != nil {
			t.Fatal(err)
		}
		// Re-importing replaces, not duplicates.
		if err := s.PutClinical(ctx, "a", pats); err != nil {
			t.Fatal(err)
		}
		c, err := s.CompareClinical(ctx, "a", 10)
		if err != nil {
			t.Fatal(err)
		}
		if c.ClinicalPatients != 3 || c.ImagedPatients != 3 || len(c.ClinicalNoImages) != 1 || c.ClinicalNoImages[0] != "P009" ||
			len(c.ImagesNoClinical) != 1 || c.ImagesNoClinical[0] != "P002" {
			t.Fatalf("compare: %+v", c)
		}
		// A list may be capped; the counts never are.
		if c, err := s.CompareClinical(ctx, "a", 0); err != nil || len(c.ClinicalNoImages) != 0 || len(c.ImagesNoClinical) != 0 ||
			c.ClinicalNoImagesCount != 1 || c.ImagesNoClinicalCount != 1 {
			t.Fatalf("compare capped at 0: %+v %v", c, err)
		}
		var off sql.NullInt64
		if err := s.db.QueryRow(ctx, `SELECT offset_from_diagnosis_days FROM cdm_image_study WHERE study_uid = '2.25.10'`).Scan(&off); err != nil || !off.Valid || off.Int64 != 17 {
			t.Fatalf("offset from diagnosis: %v %v", off, err)
		}
		probs, err := s.Check(ctx, "a", 3, 5)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, p := range probs {
			got[p.Kind] = p.Count
		}
		want := map[string]int64{"series-mixed-patients": 1, "study-mixed-patients": 1, "patient-no-clinical": 1, "clinical-no-images": 1,
			"clinical-no-condition": 1, "clinical-no-treatment": 0, "study-no-patient-age": 6, "series-no-manufacturer": 12, "study-no-offset": 4}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("check %s: %d, want %d (all: %v)", k, got[k], v, got)
			}
		}
		if got["series-no-modality"] != 0 || got["duplicate-object"] != 0 {
			t.Errorf("false problems: %v", got)
		}
		// A lower tier hides the tier-3 checks.
		probs, _ = s.Check(ctx, "a", 1, 5)
		for _, p := range probs {
			if p.Tier > 1 {
				t.Errorf("tier 1 check reports %s", p.Kind)
			}
		}
	})
}

// TestBlobLookups: HasBlob, HeldBlobs and BlobRefs agree on which blobs
// (key and location) rows refer to, on both engines, across more keys
// than one HeldBlobs query takes.
func TestBlobLookups(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.CreateDataset(ctx, Dataset{ID: "a", Title: "a"}); err != nil {
			t.Fatal(err)
		}
		insts := cohort("a", 30) // 360 objects
		for i := range insts {
			insts[i].BlobLoc = fmt.Sprintf("1:%d", i*1000)
		}
		if _, err := s.PutInstances(ctx, insts); err != nil {
			t.Fatal(err)
		}
		var ask [][2]string
		for i, in := range insts {
			ask = append(ask, [2]string{in.BlobKey, in.BlobLoc})
			if i%3 == 0 {
				// The same content at another place: a copy no row holds.
				ask = append(ask, [2]string{in.BlobKey, "2:0"})
			}
		}
		ask = append(ask, [2]string{strings.Repeat("f", 64), "1:0"})
		held, err := s.HeldBlobs(ctx, ask)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) != len(insts) {
			t.Errorf("HeldBlobs: %d held, want %d", len(held), len(insts))
		}
		refs := map[[2]string]bool{}
		if err := s.BlobRefs(ctx, func(k, loc string, _ int64) error { refs[[2]string{k, loc}] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		for _, b := range ask {
			has, err := s.HasBlob(ctx, b[0], b[1])
			if err != nil {
				t.Fatal(err)
			}
			if held[b] != has || refs[b] != has {
				t.Errorf("blob %s at %s: HeldBlobs %v, HasBlob %v, BlobRefs %v", b[0][:8], b[1], held[b], has, refs[b])
			}
		}
		if got, err := s.HeldBlobs(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("HeldBlobs of nothing: %v, %v", got, err)
		}
	})
}
