package index

import (
	"context"
	"errors"
	"testing"
)

// TestResearchTables stores, replaces, lists and deletes research table
// rows on both engines, and checks that garbage collection's questions
// see their blobs and that a dataset with tables is not deleted.
func TestResearchTables(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.CreateDataset(ctx, Dataset{ID: "lung", Title: "Lung"}); err != nil {
			t.Fatal(err)
		}
		before, _ := s.Dataset(ctx, "lung")
		row := ResearchTable{Dataset: "lung", Name: "clinical", Schema: []byte(`{"columns":[]}`), Rows: 10, Digest: "d1", BlobKey: "k1", BlobLoc: "1:0", Size: 100}
		if _, _, err := s.PutResearchTable(ctx, ResearchTable{Dataset: "ghost", Name: "x", Schema: []byte(`{}`)}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("table of a missing dataset: %v", err)
		}
		if _, ok, err := s.PutResearchTable(ctx, row); err != nil || ok {
			t.Fatalf("put: %v %v", ok, err)
		}
		after, _ := s.Dataset(ctx, "lung")
		if !after.Changed.After(before.Changed) {
			t.Error("putting a table did not mark the dataset changed")
		}
		row2 := row
		row2.Digest, row2.BlobKey, row2.Rows = "d2", "k2", 20
		old, ok, err := s.PutResearchTable(ctx, row2)
		if err != nil || !ok || old.BlobKey != "k1" || old.Rows != 10 {
			t.Fatalf("replace: %+v %v %v", old, ok, err)
		}
		got, err := s.GetResearchTable(ctx, "lung", "clinical")
		if err != nil || got.Digest != "d2" || got.Rows != 20 || string(got.Schema) != `{"columns":[]}` || got.Updated.IsZero() {
			t.Fatalf("get: %+v %v", got, err)
		}
		if _, err := s.GetResearchTable(ctx, "lung", "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		list, err := s.ResearchTables(ctx, "lung")
		if err != nil || len(list) != 1 || list[0].Name != "clinical" {
			t.Fatalf("list: %+v %v", list, err)
		}
		if held, err := s.HasBlob(ctx, "k2", "1:0"); err != nil || !held {
			t.Errorf("HasBlob of a table's blob: %v %v", held, err)
		}
		if held, _ := s.HasBlob(ctx, "k1", "1:0"); held {
			t.Error("HasBlob of a replaced table's blob")
		}
		m, err := s.HeldBlobs(ctx, [][2]string{{"k2", "1:0"}, {"k1", "1:0"}})
		if err != nil || !m[[2]string{"k2", "1:0"}] || m[[2]string{"k1", "1:0"}] {
			t.Errorf("HeldBlobs: %v %v", m, err)
		}
		refs := 0
		s.BlobRefs(ctx, func(k, l string, n int64) error {
			if k == "k2" {
				refs++
			}
			return nil
		})
		if refs != 1 {
			t.Errorf("BlobRefs saw the table's blob %d times", refs)
		}
		if err := s.DeleteDataset(ctx, "lung"); !errors.Is(err, ErrInvalid) {
			t.Errorf("deleting a dataset with a table: %v", err)
		}
		if err := s.PutClinical(ctx, "lung", []ClinicalPatient{{PatientID: "MOS-A", BirthSex: "female"}}); err != nil {
			t.Fatal(err)
		}
		if p, err := s.DatasetPatients(ctx, "lung"); err != nil || len(p) != 1 || !p["MOS-A"] {
			t.Errorf("patients: %v %v", p, err)
		}
		del, err := s.DeleteResearchTable(ctx, "lung", "clinical")
		if err != nil || del.BlobKey != "k2" {
			t.Fatalf("delete: %+v %v", del, err)
		}
		if _, err := s.DeleteResearchTable(ctx, "lung", "clinical"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete again: %v", err)
		}
		if held, _ := s.TableBlobHeld(ctx, "k2", "1:0"); held {
			t.Error("blob held after delete")
		}
	})
}
