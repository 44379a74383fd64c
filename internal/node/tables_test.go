package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/table"
)

// tableCSV makes a patient-linked table of the given patient values, with
// an age and a stage.
func tableCSV(patients []string) string {
	var b strings.Builder
	b.WriteString("pid,age,stage\n")
	for i, p := range patients {
		fmt.Fprintf(&b, "%s,%d,%s\n", p, 40+i, []string{"I", "II", "III"}[i%3])
	}
	return b.String()
}

// TestPutTableSnapshot stores patient-linked and unlinked tables in a
// node with real images, on SQLite and PostgreSQL: pseudonyms are kept,
// original IDs pseudonymised, unknown patients refused with their count
// and first line, a failed import leaves the old table, and a snapshot
// sees only its patients' rows of a linked table and all of an unlinked
// one.
func TestPutTableSnapshot(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			ctx := context.Background()
			noNoise := 0.0
			n, srv, tok, ingest := snapshotNodeWith(t, db, 1, func(c *Config) { c.SearchNoise = &noNoise })
			ingest(0, 3)
			var first []string
			for _, m := range datasetStudies(t, srv, tok) {
				if !slices.Contains(first, m.Patient) {
					first = append(first, m.Patient)
				}
			}
			if len(first) != 3 {
				t.Fatalf("%d patients", len(first))
			}
			if _, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Request: "r1", Dataset: "lung", Query: json.RawMessage(allQuery)}); err != nil {
				t.Fatal(err)
			}
			ingest(3, 5)
			var all []string
			for _, m := range datasetStudies(t, srv, tok) {
				if !slices.Contains(all, m.Patient) {
					all = append(all, m.Patient)
				}
			}
			// A clinical-only patient known by its original ID.
			if err := n.ix.PutClinical(ctx, "lung", []index.ClinicalPatient{{PatientID: n.eng.PatientPseudonym("HOSP-77", ""), BirthSex: "male"}}); err != nil {
				t.Fatal(err)
			}
			rows := append(slices.Clone(all), "HOSP-77")
			dict := &table.Dictionary{Patient: "pid"}
			info, err := n.PutTable(ctx, "lung", "clinical", strings.NewReader(tableCSV(rows)), dict)
			if err != nil {
				t.Fatal(err)
			}
			if info.Rows != len(rows) || info.Schema.Patient != "pid" || len(info.Digest) != 64 {
				t.Fatalf("info %+v", info)
			}
			tb, got, err := n.Table(ctx, "lung", "clinical")
			if err != nil || got.Digest != info.Digest {
				t.Fatal(err)
			}
			pats := tb.Patients()
			if !slices.Equal(pats[:len(all)], all) || pats[len(all)] != n.eng.PatientPseudonym("HOSP-77", "") {
				t.Fatalf("patients not linked: %v", pats)
			}

			// Unknown patients: refused with the count and first line,
			// never the value; the stored table is left as it was.
			bad := append(slices.Clone(all), "STRANGER-1", "STRANGER-2")
			_, err = n.PutTable(ctx, "lung", "clinical", strings.NewReader(tableCSV(bad)), dict)
			var re *table.RowError
			if !errors.As(err, &re) || re.Line != len(all)+2 || !strings.Contains(re.Msg, "2 rows") || strings.Contains(err.Error(), "STRANGER") {
				t.Fatalf("unknown patients: %v", err)
			}
			// A bad row: the same.
			_, err = n.PutTable(ctx, "lung", "clinical", strings.NewReader("pid,age\n"+all[0]+",1,2\n"), dict)
			if !errors.As(err, &re) || re.Line != 2 {
				t.Fatalf("bad row: %v", err)
			}
			if _, again, err := n.Table(ctx, "lung", "clinical"); err != nil || again.Digest != info.Digest {
				t.Fatalf("after failed imports: %+v %v", again, err)
			}
			if _, err := n.PutTable(ctx, "ghost", "clinical", strings.NewReader(tableCSV(all)), dict); !errors.Is(err, index.ErrNotFound) {
				t.Fatalf("missing dataset: %v", err)
			}
			if _, err := n.PutTable(ctx, "lung", "../x", strings.NewReader(tableCSV(all)), dict); !errors.Is(err, ErrBadTable) {
				t.Fatalf("bad name: %v", err)
			}

			// An unlinked table.
			if _, err := n.PutTable(ctx, "lung", "sites", strings.NewReader("site,beds\nA,10\nB,20\n"), nil); err != nil {
				t.Fatal(err)
			}
			list, err := n.Tables(ctx, "lung")
			if err != nil || len(list) != 2 || list[0].Name != "clinical" || list[1].Name != "sites" {
				t.Fatalf("list %+v %v", list, err)
			}

			snap, err := n.SnapshotTable(ctx, "lung", "s1", "clinical")
			if err != nil {
				t.Fatal(err)
			}
			if sp := snap.Patients(); len(sp) != 3 || !slices.Equal(sp, first) {
				t.Fatalf("snapshot rows %v, want %v", sp, first)
			}
			whole, err := n.SnapshotTable(ctx, "lung", "s1", "sites")
			if err != nil || whole.Rows() != 2 {
				t.Fatalf("unlinked table in a snapshot: %v", err)
			}
			if _, err := n.SnapshotTable(ctx, "lung", "nosuch", "sites"); !errors.Is(err, index.ErrNotFound) {
				t.Fatalf("missing snapshot: %v", err)
			}

			// Replacing keeps one blob; deleting removes it, and gc finds
			// nothing to remove while tables are held.
			if _, err := n.PutTable(ctx, "lung", "sites", strings.NewReader("site,beds\nA,10\nB,21\n"), nil); err != nil {
				t.Fatal(err)
			}
			st, err := n.CollectGarbage(ctx, 0, false)
			if err != nil || st.Removed != 0 {
				t.Fatalf("gc with tables: %+v %v", st, err)
			}
			if _, _, err := n.Table(ctx, "lung", "sites"); err != nil {
				t.Fatalf("table after gc: %v", err)
			}
			if err := n.DeleteTable(ctx, "lung", "sites"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := n.Table(ctx, "lung", "sites"); !errors.Is(err, index.ErrNotFound) {
				t.Fatalf("deleted table: %v", err)
			}
		})
	}
}

// TestTableAPI checks the HTTP API: media type, tokens and scopes,
// errors with the line, the dictionary as query or header, listing
// without levels and deleting as admin.
func TestTableAPI(t *testing.T) {
	n, srv, admin := testNode(t, "sqlite")
	ctx := context.Background()
	if _, err := n.ix.CreateDataset(ctx, index.Dataset{ID: "brain", Title: "Brain"}); err != nil {
		t.Fatal(err)
	}
	write, _, _ := n.ix.CreateToken(ctx, "w", index.ScopeWrite, "lung")
	read, _, _ := n.ix.CreateToken(ctx, "r", index.ScopeRead, "lung")
	otherWrite, _, _ := n.ix.CreateToken(ctx, "o", index.ScopeWrite, "brain")
	u := srv.URL + "/api/v1/datasets/lung/tables/labs"
	body := []byte("site,hb,grade\nA,13.5,1\nB,NA,2\nC,12.1,1\nD,11,2\n")

	resp, b := do(t, "PUT", u, write, "application/json", body, "")
	if resp.StatusCode != 415 {
		t.Errorf("JSON body: %d %s", resp.StatusCode, b)
	}
	if resp, _ := do(t, "PUT", u, "", "text/csv", body, ""); resp.StatusCode != 401 {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	for name, tok := range map[string]string{"read": read, "write for another dataset": otherWrite} {
		if resp, b := do(t, "PUT", u, tok, "text/csv", body, ""); resp.StatusCode != 403 {
			t.Errorf("%s token: %d %s", name, resp.StatusCode, b)
		}
	}
	resp, b = do(t, "PUT", u+"?type.grade=categorical", write, "text/csv; charset=utf-8", body, "")
	if resp.StatusCode != 201 {
		t.Fatalf("put: %d %s", resp.StatusCode, b)
	}
	var info table.Info
	json.Unmarshal(b, &info)
	if info.Rows != 4 || info.Schema.Columns[2].Type != table.Categorical || info.Schema.Columns[1].Type != table.Numeric {
		t.Fatalf("put answer %s", b)
	}
	// Replace, with the dictionary in a header.
	req := map[string]string{DictionaryHeader: `{"columns": {"hb": "text"}}`}
	resp, b = doHeaders(t, "PUT", u, write, "text/csv", body, req)
	info = table.Info{}
	json.Unmarshal(b, &info)
	if resp.StatusCode != 200 || info.Schema.Columns[1].Type != table.Text {
		t.Fatalf("replace: %d %s", resp.StatusCode, b)
	}
	// A bad row: 400 with the line; the table is unchanged.
	resp, b = do(t, "PUT", u+"?"+url.Values{"type.hb": {"numeric"}}.Encode(), write, "text/csv", []byte("site,hb,grade\nA,1,1\nB,x,2\n"), "")
	var e struct {
		Error  string
		Line   int
		Column string
	}
	if resp.StatusCode != 400 || json.Unmarshal(b, &e) != nil || e.Line != 3 || e.Column != "hb" {
		t.Fatalf("bad row: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "PUT", u+"?type.hb=float", write, "text/csv", body, "")
	if resp.StatusCode != 400 {
		t.Errorf("bad dictionary: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "PUT", srv.URL+"/api/v1/datasets/lung/tables/9bad", write, "text/csv", body, "")
	if resp.StatusCode != 400 {
		t.Errorf("bad name: %d %s", resp.StatusCode, b)
	}
	resp, b = do(t, "GET", srv.URL+"/api/v1/datasets/lung/tables", read, "", nil, "")
	var list struct{ Tables []table.Info }
	if resp.StatusCode != 200 || json.Unmarshal(b, &list) != nil || len(list.Tables) != 1 || list.Tables[0].Schema.Columns[1].Type != table.Text {
		t.Fatalf("list: %d %s", resp.StatusCode, b)
	}
	if strings.Contains(string(b), "levels") {
		t.Errorf("the list shows levels: %s", b)
	}
	resp, b = do(t, "GET", u, read, "", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"rows": 4`) {
		t.Errorf("get: %d %s", resp.StatusCode, b)
	}
	if resp, _ := do(t, "DELETE", u, write, "", nil, ""); resp.StatusCode != 403 {
		t.Errorf("delete with a write token: %d", resp.StatusCode)
	}
	if resp, b := do(t, "DELETE", u, admin, "", nil, ""); resp.StatusCode != 204 {
		t.Errorf("delete: %d %s", resp.StatusCode, b)
	}
	if resp, _ := do(t, "GET", u, read, "", nil, ""); resp.StatusCode != 404 {
		t.Errorf("get after delete: %d", resp.StatusCode)
	}
	if resp, _ := do(t, "PUT", srv.URL+"/api/v1/datasets/ghost/tables/x", admin, "text/csv", body, ""); resp.StatusCode != 404 {
		t.Errorf("missing dataset: %d", resp.StatusCode)
	}
}

func doHeaders(t *testing.T, method, u, tok, ctype string, body []byte, h map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", ctype)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestCatalogueTables checks that a Tier 3 dataset lists its tables in
// the catalogue (names, columns, types, patient-linked), with no levels,
// and that a Tier 1 dataset does not.
func TestCatalogueTables(t *testing.T) {
	ctx := context.Background()
	n, err := Open(ctx, Config{Data: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	var ids []string
	for _, d := range []index.Dataset{{ID: "t3", Tier: 3}, {ID: "t1", Tier: 1}} {
		d.Title, d.Description, d.Licence, d.Contact = "T", "Patients.", "CC-BY-4.0", "data@example.org"
		if _, err := n.CreateDataset(ctx, d); err != nil {
			t.Fatal(err)
		}
		var pats []index.ClinicalPatient
		for i := range 30 {
			age := 40 + i
			id := fmt.Sprintf("MOS-%s-%03d", d.ID, i)
			pats = append(pats, index.ClinicalPatient{PatientID: id, BirthSex: "female",
				Condition: &index.Condition{CancerType: "breast", AgeAtDiagnosis: &age, ICD10: "C50.9"}})
			if d.ID == "t3" {
				ids = append(ids, id)
			}
		}
		if err := n.ix.PutClinical(ctx, d.ID, pats); err != nil {
			t.Fatal(err)
		}
		if _, err := n.PutTable(ctx, d.ID, "labs", strings.NewReader("site,secretlevel\nA,SECRETLEVEL\nB,x\nC,SECRETLEVEL\nD,x\nE,x\n"),
			&table.Dictionary{Columns: map[string]table.Type{"secretlevel": table.Categorical}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.PutTable(ctx, "t3", "clinical", strings.NewReader(tableCSV(ids)), &table.Dictionary{Patient: "pid"}); err != nil {
		t.Fatal(err)
	}
	cat, err := n.CatalogueSummary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]fed.DatasetSummary{}
	for _, d := range cat.Datasets {
		got[d.ID] = d
	}
	if len(got) != 2 {
		t.Fatalf("catalogue %+v held back %+v", cat.Datasets, cat.HeldBack)
	}
	if len(got["t1"].Tables) != 0 {
		t.Errorf("a Tier 1 dataset lists tables: %+v", got["t1"].Tables)
	}
	t3 := got["t3"].Tables
	if len(t3) != 2 || t3[0].Name != "clinical" || !t3[0].PatientLinked || t3[1].PatientLinked ||
		t3[0].Columns[2] != (fed.ColumnSummary{Name: "stage", Type: "categorical"}) {
		t.Errorf("Tier 3 tables: %+v", t3)
	}
	b, _ := json.Marshal(cat)
	if strings.Contains(string(b), "SECRETLEVEL") || strings.Contains(string(b), "levels") || strings.Contains(string(b), ids[0]) {
		t.Errorf("the catalogue shows values: %s", b)
	}
}
