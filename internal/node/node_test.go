package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/sqldb/sqltest"
	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// cohort is a synthetic cohort shared by the tests of this package.
var cohort struct {
	once sync.Once
	dir  string
	man  synth.Manifest
	err  error
}

func testCohort(t *testing.T) (string, synth.Manifest) {
	t.Helper()
	cohort.once.Do(func() {
		dir, err := os.MkdirTemp("", "mosaic-node-cohort-")
		if err != nil {
			cohort.err = err
			return
		}
		cohort.dir = dir
		cohort.man, cohort.err = synth.Generate(context.Background(), synth.Options{Dir: dir, Patients: 12, Seed: 7})
	})
	if cohort.err != nil {
		t.Fatal(cohort.err)
	}
	return cohort.dir, cohort.man
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cohort.dir != "" {
		os.RemoveAll(cohort.dir)
	}
	os.Exit(code)
}

// testNode opens a node on a temporary data directory with the
// longitudinal policy (which removes descriptions, so that no synthetic
// object is held back by the leak check), on SQLite or PostgreSQL.
func testNode(t *testing.T, db string) (*Node, *httptest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{Data: dir, Policy: "longitudinal", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxObjectBytes: 64 << 20}
	if db == "postgres" {
		cfg.DB = sqltest.PostgresURL(t)
	}
	n, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	t.Cleanup(func() {
		srv.Close()
		n.Close(context.Background())
	})
	if _, err := n.ix.CreateDataset(context.Background(), index.Dataset{ID: "lung", Title: "Lung"}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := n.ix.CreateToken(context.Background(), "test", index.ScopeAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	return n, srv, tok
}

func cohortFiles(t *testing.T, dir string) []string {
	var files []string
	err := filepath.WalkDir(filepath.Join(dir, "dicom"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// stowBody builds a multipart/related STOW-RS body of files.
func stowBody(t *testing.T, files []string) (string, []byte) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/dicom"}})
		pw.Write(b)
	}
	mw.Close()
	return `multipart/related; type="application/dicom"; boundary=` + mw.Boundary(), buf.Bytes()
}

func do(t *testing.T, method, u, tok, ctype string, body []byte, accept string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

func qidoCount(t *testing.T, srv *httptest.Server, tok, path string, q url.Values) int {
	t.Helper()
	q.Set("limit", "1000")
	resp, b := do(t, "GET", srv.URL+"/dicom-web/lung/"+path+"?"+q.Encode(), tok, "", nil, "application/dicom+json")
	if resp.StatusCode != 200 {
		t.Fatalf("QIDO %s %v: %d %s", path, q, resp.StatusCode, b)
	}
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("QIDO %s: %v", path, err)
	}
	return len(out)
}

// TestNodeEndToEnd ingests a synthetic cohort by STOW-RS into a running
// node, on SQLite and on PostgreSQL, and checks QIDO-RS against the
// cohort's manifest and WADO-RS against the input's pixel data.
func TestNodeEndToEnd(t *testing.T) {
	dir, man := testCohort(t)
	files := cohortFiles(t, dir)
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			_, srv, tok := testNode(t, db)
			// Two requests, as a PACS sends studies in batches.
			var stored, failed int
			for _, chunk := range [][]string{files[:len(files)/2], files[len(files)/2:]} {
				ct, body := stowBody(t, chunk)
				resp, b := do(t, "POST", srv.URL+"/dicom-web/lung/studies", tok, ct, body, "application/dicom+json")
				if resp.StatusCode != 202 && resp.StatusCode != 200 {
					t.Fatalf("STOW: %d %s", resp.StatusCode, b)
				}
				var r map[string]struct {
					Value []map[string]any `json:"Value"`
				}
				if err := json.Unmarshal(b, &r); err != nil {
					t.Fatal(err)
				}
				stored += len(r["00081199"].Value)
				failed += len(r["00081198"].Value)
			}
			wantStored := man.Instances - len(man.Risky)
			if stored != wantStored || failed != len(man.Risky) {
				t.Fatalf("STOW stored %d, failed %d; the manifest has %d instances of which %d risky", stored, failed, man.Instances, len(man.Risky))
			}
			// QIDO per modality against the manifest; the risky
			// modalities were refused at the door.
			for mod, c := range man.Modalities {
				want := c
				if mod == "US" || mod == "OT" {
					want = synth.Count{}
				}
				if got := qidoCount(t, srv, tok, "studies", url.Values{"ModalitiesInStudy": {mod}}); got != want.Studies {
					t.Errorf("%s studies: QIDO %d, manifest %d", mod, got, want.Studies)
				}
				if got := qidoCount(t, srv, tok, "series", url.Values{"Modality": {mod}}); got != want.Series {
					t.Errorf("%s series: QIDO %d, manifest %d", mod, got, want.Series)
				}
			}
			if got := qidoCount(t, srv, tok, "instances", url.Values{}); got != wantStored {
				t.Errorf("instances: QIDO %d, want %d", got, wantStored)
			}
			// Re-sending is a no-op.
			ct, body := stowBody(t, files[:5])
			if resp, b := do(t, "POST", srv.URL+"/dicom-web/lung/studies", tok, ct, body, ""); resp.StatusCode >= 300 && resp.StatusCode != 409 {
				t.Fatalf("re-send: %d %s", resp.StatusCode, b)
			}
			if got := qidoCount(t, srv, tok, "instances", url.Values{}); got != wantStored {
				t.Errorf("after re-send: %d instances", got)
			}
			checkRetrieve(t, srv, tok, files)
		})
	}
}

// checkRetrieve fetches one series by WADO-RS and compares each object's
// pixel data with the input file of the same instance number.
func checkRetrieve(t *testing.T, srv *httptest.Server, tok string, files []string) {
	t.Helper()
	resp, b := do(t, "GET", srv.URL+"/dicom-web/lung/series?Modality=CT&limit=1", tok, "", nil, "")
	var series []map[string]struct {
		Value []any `json:"Value"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &series) != nil || len(series) != 1 {
		t.Fatalf("series search: %d %s", resp.StatusCode, b)
	}
	st, se := series[0]["0020000D"].Value[0].(string), series[0]["0020000E"].Value[0].(string)
	resp, b = do(t, "GET", srv.URL+"/dicom-web/lung/studies/"+st+"/series/"+se, tok, "", nil, `multipart/related; type="application/dicom"`)
	if resp.StatusCode != 200 {
		t.Fatalf("WADO series: %d %s", resp.StatusCode, b)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/related" {
		t.Fatalf("WADO content type %q", resp.Header.Get("Content-Type"))
	}
	// Index the inputs' pixel data by content.
	inputs := map[string]bool{}
	for _, f := range files {
		df, err := dicom.ReadFile(f, dicom.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if e := df.Dataset.Get(dicom.TagPixelData); e != nil {
			inputs[string(e.Value)] = true
		}
	}
	mr := multipart.NewReader(bytes.NewReader(b), params["boundary"])
	parts := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		obj, _ := io.ReadAll(p)
		df, err := dicom.Parse(obj, dicom.ReadOptions{})
		if err != nil {
			t.Fatalf("retrieved object %d: %v", parts, err)
		}
		pix := df.Dataset.Get(dicom.TagPixelData)
		if pix == nil || !inputs[string(pix.Value)] {
			t.Errorf("retrieved object %d: pixel data matches no input", parts)
		}
		if name, _ := df.Dataset.String(dicom.NewTag(0x0010, 0x0010)); name == "" || !strings.HasPrefix(df.Dataset.UID(dicom.TagSOPInstanceUID), "2.25.") {
			t.Errorf("retrieved object %d is not de-identified", parts)
		}
		parts++
	}
	if parts == 0 {
		t.Fatal("WADO returned no objects")
	}
	// Metadata comes from the index, with bulk data URIs that resolve.
	resp, b = do(t, "GET", srv.URL+"/dicom-web/lung/studies/"+st+"/series/"+se+"/metadata", tok, "", nil, "application/dicom+json")
	var meta []map[string]map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(b, &meta) != nil || len(meta) != parts {
		t.Fatalf("metadata: %d, %d objects for %d retrieved", resp.StatusCode, len(meta), parts)
	}
	uri, _ := meta[0]["7FE00010"]["BulkDataURI"].(string)
	if !strings.HasPrefix(uri, srv.URL+"/dicom-web/lung/studies/") {
		t.Fatalf("pixel data BulkDataURI %q", uri)
	}
	resp, pix := do(t, "GET", uri, tok, "", nil, "")
	if resp.StatusCode != 200 || !inputs[string(pix)] {
		t.Fatalf("bulk data: %d, %d bytes, matches an input: %v", resp.StatusCode, len(pix), inputs[string(pix)])
	}
	sop := meta[0]["00080018"]["Value"].([]any)[0].(string)
	resp, fb := do(t, "GET", srv.URL+"/dicom-web/lung/studies/"+st+"/series/"+se+"/instances/"+sop+"/frames/1", tok, "", nil, "")
	if resp.StatusCode != 200 || !bytes.Contains(fb, pix) {
		t.Fatalf("frame 1: %d (%d bytes)", resp.StatusCode, len(fb))
	}
}

// TestBadRequests sends what a careless or hostile client might: each
// gets the right status and nothing is stored.
func TestBadRequests(t *testing.T) {
	dir, _ := testCohort(t)
	files := cohortFiles(t, dir)
	n, srv, tok := testNode(t, "sqlite")
	good, body := stowBody(t, files[:2])
	cases := []struct {
		name, method, path, tok, ctype string
		body                           []byte
		want                           int
	}{
		{"no token", "GET", "/dicom-web/lung/studies", "", "", nil, 401},
		{"bad token", "GET", "/dicom-web/lung/studies", "mnt_x_y", "", nil, 401},
		{"unknown dataset", "GET", "/dicom-web/nope/studies", tok, "", nil, 404},
		{"path trick dataset", "GET", "/dicom-web/..%2f..%2fetc/studies", tok, "", nil, 404},
		{"SQL in query", "GET", "/dicom-web/lung/studies?PatientID=%27%20OR%201%3D1%20--", tok, "", nil, 200},
		{"unknown parameter", "GET", "/dicom-web/lung/studies?NoSuchThing=1", tok, "", nil, 400},
		{"bad date", "GET", "/dicom-web/lung/studies?StudyDate=2020-13-01", tok, "", nil, 400},
		{"bad uid in path", "GET", "/dicom-web/lung/studies/1.2.abc", tok, "", nil, 400},
		{"missing study", "GET", "/dicom-web/lung/studies/1.2.3", tok, "", nil, 404},
		{"wrong content type", "POST", "/dicom-web/lung/studies", tok, "application/json", []byte("{}"), 415},
		{"no boundary", "POST", "/dicom-web/lung/studies", tok, "multipart/related; type=\"application/dicom\"", body, 400},
		{"truncated", "POST", "/dicom-web/lung/studies", tok, good, body[:len(body)/2], 400},
		{"empty body", "POST", "/dicom-web/lung/studies", tok, good, nil, 400},
	}
	for _, c := range cases {
		resp, b := do(t, c.method, srv.URL+c.path, c.tok, c.ctype, c.body, "")
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d (%s)", c.name, resp.StatusCode, c.want, b)
		}
		if resp.StatusCode >= 400 && !json.Valid(b) {
			t.Errorf("%s: error body is not JSON: %s", c.name, b)
		}
	}
	// A truncated request may store the complete objects before the
	// cut, never a partial one: every indexed blob reads as DICOM.
	list, _ := n.ix.Search(context.Background(), index.Search{Dataset: "lung", Level: index.InstanceLevel})
	for _, h := range list {
		insts, err := n.ix.Instances(context.Background(), "lung", h.StudyUID, h.SeriesUID, h.SOPUID)
		if err != nil {
			t.Fatal(err)
		}
		r, err := n.blobs.Open(context.Background(), blobRef(insts[0].BlobKey, insts[0].BlobLoc))
		if err != nil {
			t.Fatalf("indexed blob missing: %v", err)
		}
		if _, err := dicom.NewDecoder(r, dicom.ReadOptions{}).ReadFile(); err != nil {
			t.Errorf("indexed object unreadable: %v", err)
		}
		r.Close()
	}
	// Non-DICOM parts and oversized ones fail alone.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	pw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/dicom"}})
	pw.Write([]byte("this is not DICOM at all, just text"))
	pw, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/dicom"}})
	pw.Write(make([]byte, 65<<20))
	b, _ := os.ReadFile(files[0])
	pw, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/dicom"}})
	pw.Write(b)
	mw.Close()
	resp, rb := do(t, "POST", srv.URL+"/dicom-web/lung/studies", tok, `multipart/related; type="application/dicom"; boundary=`+mw.Boundary(), buf.Bytes(), "")
	if resp.StatusCode != 202 || strings.Count(string(rb), `"00081197"`) != 2 {
		t.Errorf("mixed request: %d %s", resp.StatusCode, rb)
	}
	// The service still serves.
	if resp, _ := do(t, "GET", srv.URL+"/readyz", "", "", nil, ""); resp.StatusCode != 200 {
		t.Errorf("readyz after bad input: %d", resp.StatusCode)
	}
	fmt.Fprint(io.Discard, n)
}

// TestTokenUseRecorded: a request with a token records the token's last
// use in the index, off the request's path; a request without a valid
// token records nothing.
func TestTokenUseRecorded(t *testing.T) {
	n, srv, tok := testNode(t, "sqlite")
	ctx := context.Background()
	get := func(secret string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/datasets", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get(tok + "x"); st != http.StatusUnauthorized {
		t.Fatalf("wrong token: HTTP %d", st)
	}
	n.touches.Wait()
	toks, err := n.ix.Tokens(ctx)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens: %v, %v", toks, err)
	}
	if toks[0].LastUsed != nil {
		t.Fatalf("a refused request recorded a use at %v", toks[0].LastUsed)
	}
	for range 3 {
		if st := get(tok); st != http.StatusOK {
			t.Fatalf("HTTP %d", st)
		}
	}
	n.touches.Wait()
	if toks, err = n.ix.Tokens(ctx); err != nil {
		t.Fatal(err)
	}
	if toks[0].LastUsed == nil {
		t.Fatal("the token's use was not recorded")
	}
}
