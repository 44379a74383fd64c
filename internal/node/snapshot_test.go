package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/lens"
	"github.com/mosaic-imaging/mosaic/internal/permit"
	"github.com/mosaic-imaging/mosaic/internal/sqldb/sqltest"
)

const allQuery = `{"operand":"AND","children":[]}`

// snapshotNode opens a node on SQLite (or PostgreSQL: db "postgres")
// with the given disclosure floor and ingests, by STOW-RS, the synthetic
// cohort's patients numbered from first to last-1 into dataset "lung".
func snapshotNode(t *testing.T, db string, floor int) (*Node, *httptest.Server, string, func(first, last int)) {
	t.Helper()
	return snapshotNodeWith(t, db, floor, nil)
}

// snapshotNodeWith is snapshotNode with the configuration edited first
// (edit may be nil).
func snapshotNodeWith(t *testing.T, db string, floor int, edit func(*Config)) (*Node, *httptest.Server, string, func(first, last int)) {
	t.Helper()
	dir, _ := testCohort(t)
	cfg := Config{Data: t.TempDir(), Policy: "longitudinal", SearchFloor: floor, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxObjectBytes: 64 << 20}
	if edit != nil {
		edit(&cfg)
	}
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
	pats, err := os.ReadDir(filepath.Join(dir, "dicom"))
	if err != nil {
		t.Fatal(err)
	}
	files := cohortFiles(t, dir)
	ingest := func(first, last int) {
		t.Helper()
		for _, p := range pats[first:last] {
			var mine []string
			for _, f := range files {
				if strings.Contains(f, string(filepath.Separator)+p.Name()+string(filepath.Separator)) {
					mine = append(mine, f)
				}
			}
			ctype, body := stowBody(t, mine)
			resp, b := do(t, "POST", srv.URL+"/dicom-web/lung/studies", tok, ctype, body, "application/dicom+json")
			if resp.StatusCode != 200 && resp.StatusCode != 202 {
				t.Fatalf("STOW of patient %s: %d %s", p.Name(), resp.StatusCode, b)
			}
		}
	}
	return n, srv, tok, ingest
}

// datasetStudies reads every study of the dataset through the node's own
// DICOMweb (not the snapshot code): patient ID and study UID.
func datasetStudies(t *testing.T, srv *httptest.Server, tok string) []index.SnapshotMember {
	t.Helper()
	resp, b := do(t, "GET", srv.URL+"/dicom-web/lung/studies?limit=1000&includefield=00100020", tok, "", nil, "application/dicom+json")
	if resp.StatusCode != 200 {
		t.Fatalf("QIDO: %d %s", resp.StatusCode, b)
	}
	var out []index.SnapshotMember
	for _, o := range dicomJSON(t, b) {
		out = append(out, index.SnapshotMember{Patient: str(o, "00100020"), Study: str(o, "0020000D")})
	}
	return out
}

func dicomJSON(t *testing.T, b []byte) []map[string]struct{ Value []any } {
	t.Helper()
	var out []map[string]struct{ Value []any }
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("DICOM JSON: %v: %s", err, b)
	}
	return out
}

func str(o map[string]struct{ Value []any }, tag string) string {
	if v := o[tag].Value; len(v) > 0 {
		s, _ := v[0].(string)
		return s
	}
	return ""
}

func digestOf(ms []index.SnapshotMember) string {
	var lines []string
	for _, m := range ms {
		lines = append(lines, m.Patient+" "+m.Study+"\n")
	}
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		io.WriteString(h, l)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestMakeSnapshot: a snapshot's digest is the one computed here from
// the node's DICOMweb answers; counts under the floor leave as 0; later
// ingests leave it unchanged and the same id answers the same; bad
// input is refused with a clear error.
func TestMakeSnapshot(t *testing.T) {
	ctx := context.Background()
	// Without noise, so that the whole cohort (12 patients) passes the
	// floor every time (TestSnapshotCountsUnderDisclosureControl has
	// noise).
	noNoise := 0.0
	n, srv, tok, ingest := snapshotNodeWith(t, "sqlite", 10, func(c *Config) { c.SearchNoise = &noNoise })
	ingest(0, 4)
	before := datasetStudies(t, srv, tok)
	if len(before) < 4 {
		t.Fatalf("%d studies of 4 patients", len(before))
	}
	body := fed.SnapshotBody{Snapshot: "s1", Request: "r1", Dataset: "lung", Query: json.RawMessage(allQuery)}
	ans, err := n.MakeSnapshot(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	if ans.Digest != "" || ans.Floor != 10 || ans.Subjects != 0 || ans.Studies != 0 || ans.Created.IsZero() {
		t.Fatalf("snapshot of 4 patients under a floor of 10 (counts and digest withheld): %+v", ans)
	}
	if sn, _ := n.Snapshot(ctx, "s1", "lung"); sn.Subjects != 4 || sn.Studies != len(before) || sn.Digest != digestOf(before) {
		t.Fatalf("stored snapshot: %+v (plain digest here %s)", sn, digestOf(before))
	}

	ingest(4, 12)
	after := datasetStudies(t, srv, tok)
	again, err := n.MakeSnapshot(ctx, body)
	if err != nil || again != ans {
		t.Fatalf("the same snapshot after more patients came: %v\n%+v\n%+v", err, again, ans)
	}
	s2, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s2", Request: "r1", Dataset: "lung", Query: json.RawMessage(allQuery)})
	if err != nil || s2.Subjects < 10 || s2.Studies < 10 {
		t.Fatalf("snapshot of every patient (at least the floor): %v %+v", err, s2)
	}
	sn2, err := n.Snapshot(ctx, "s2", "lung")
	if err != nil || sn2.Digest != digestOf(after) {
		t.Fatalf("stored snapshot s2: %v %+v, plain digest here %s", err, sn2, digestOf(after))
	}
	if s2.Digest != n.SnapshotDigest(sn2) || !s2.DigestOK() || s2.Digest == sn2.Digest {
		t.Fatalf("published digest %s: not the node's keyed digest %s of the plain %s", s2.Digest, n.SnapshotDigest(sn2), sn2.Digest)
	}

	for _, c := range []struct {
		body fed.SnapshotBody
		want error
	}{
		{fed.SnapshotBody{Snapshot: "s3", Dataset: "nope", Query: json.RawMessage(allQuery)}, index.ErrNotFound},
		{fed.SnapshotBody{Snapshot: "s3", Dataset: "../x", Query: json.RawMessage(allQuery)}, index.ErrNotFound},
		{fed.SnapshotBody{Snapshot: "", Dataset: "lung", Query: json.RawMessage(allQuery)}, ErrSnapshotRequest},
		{fed.SnapshotBody{Snapshot: "a/b", Dataset: "lung", Query: json.RawMessage(allQuery)}, ErrSnapshotRequest},
		{fed.SnapshotBody{Snapshot: "s3", Dataset: "lung", Query: json.RawMessage(`{"key":"nope"}`)}, ErrSnapshotRequest},
		{fed.SnapshotBody{Snapshot: "s3", Dataset: "lung"}, ErrSnapshotRequest},
	} {
		if _, err := n.MakeSnapshot(ctx, c.body); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.body, err, c.want)
		}
	}
}

// TestSnapshotHandler serves a snapshot over real HTTP as the relay
// would: searches return only its studies, with URLs below the permit's
// root; metadata and frames of its studies are served; a study outside
// it answers exactly as one that does not exist; a view permit cannot
// retrieve or download; the archive's checksums match the bytes served,
// and a Range request resumes a download; path tricks are refused. On
// SQLite and PostgreSQL.
func TestSnapshotHandler(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) { testSnapshotHandler(t, db) })
	}
}

func testSnapshotHandler(t *testing.T, db string) {
	ctx := context.Background()
	n, srv, tok, ingest := snapshotNode(t, db, 1)
	ingest(0, 3)
	members := datasetStudies(t, srv, tok)
	if _, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Dataset: "lung", Query: json.RawMessage(allQuery)}); err != nil {
		t.Fatal(err)
	}
	ingest(3, 5)
	var outside string
	for _, s := range datasetStudies(t, srv, tok) {
		if !hasStudy(members, s.Study) {
			outside = s.Study
		}
	}
	if outside == "" {
		t.Fatal("no study outside the snapshot")
	}

	const root = "https://hub.example/dicom-web/permits/P1/"
	claims := func(ops ...permit.Op) permit.Claims {
		return permit.Claims{ID: "P1", Researcher: "u1", Node: "north", Dataset: "lung", Snapshot: "s1", Operations: ops}
	}
	serve := func(c permit.Claims) *httptest.Server {
		h, err := n.SnapshotHandler(c, root)
		if err != nil {
			t.Fatal(err)
		}
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		return s
	}
	view, down, proc := serve(claims(permit.OpView)), serve(claims(permit.OpDownload)), serve(claims(permit.OpProcess))
	get := func(s *httptest.Server, path, accept string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL, nil)
		req.URL.Opaque = path // sent as it is, not cleaned
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, b
	}
	const dj = "application/dicom+json"

	// Searches: the snapshot's studies only, URLs below root.
	resp, b := get(view, "/studies?limit=1000", dj)
	if resp.StatusCode != 200 {
		t.Fatalf("QIDO: %d %s", resp.StatusCode, b)
	}
	hits := dicomJSON(t, b)
	if len(hits) != len(members) {
		t.Fatalf("QIDO studies: %d, want %d", len(hits), len(members))
	}
	for _, h := range hits {
		if !hasStudy(members, str(h, "0020000D")) || !strings.HasPrefix(str(h, "00081190"), root+"studies/") {
			t.Errorf("QIDO hit %v", h)
		}
	}
	if strings.Contains(string(b), srv.URL) || strings.Contains(string(b), strings.TrimPrefix(view.URL, "http://")) {
		t.Error("an answer names the node's address")
	}
	for _, level := range []string{"series", "instances"} {
		resp, b := get(view, "/"+level+"?limit=1000", dj)
		if resp.StatusCode != 200 {
			t.Fatalf("QIDO %s: %d", level, resp.StatusCode)
		}
		want := 0
		for _, m := range members {
			want += qidoCount(t, srv, tok, "studies/"+m.Study+"/"+level, map[string][]string{})
		}
		if got := len(dicomJSON(t, b)); got != want {
			t.Errorf("QIDO %s in the snapshot: %d, want %d", level, got, want)
		}
	}

	// Metadata and frames of a member.
	study := members[0].Study
	resp, b = get(view, "/studies/"+study+"/metadata", dj)
	if resp.StatusCode != 200 {
		t.Fatalf("metadata: %d %s", resp.StatusCode, b)
	}
	if strings.Contains(string(b), BulkMarker) || strings.Contains(string(b), "127.0.0.1") {
		t.Error("metadata names the node or its marker")
	}
	meta := dicomJSON(t, b)
	series, inst := str(meta[0], "0020000E"), str(meta[0], "00080018")
	resp, b = get(view, "/studies/"+study+"/series/"+series+"/instances/"+inst+"/frames/1", "")
	if resp.StatusCode != 200 || len(b) == 0 {
		t.Errorf("frames of a member: %d %s", resp.StatusCode, b)
	}
	if resp, _ := get(view, "/studies/"+study+"/series/"+series+"/instances", dj); resp.StatusCode != 200 {
		t.Errorf("QIDO instances of a member series: %d", resp.StatusCode)
	}

	// Outside the snapshot: as if it did not exist.
	for _, p := range []string{"/studies/%s/metadata", "/studies/%s/series", "/studies/%s/instances"} {
		r1, b1 := get(view, strings.Replace(p, "%s", outside, 1), dj)
		r2, b2 := get(view, strings.Replace(p, "%s", "1.2.3.4.5.6.7", 1), dj)
		if r1.StatusCode != r2.StatusCode || !bytes.Equal(b1, b2) || r1.StatusCode == 200 && string(b1) != "[]" {
			t.Errorf("%s outside: %d %.200s; not there: %d %.200s", p, r1.StatusCode, b1, r2.StatusCode, b2)
		}
	}
	if r, _ := get(down, "/studies/"+outside, `multipart/related; type="application/dicom"`); r.StatusCode != 404 {
		t.Errorf("retrieve of a study outside: %d", r.StatusCode)
	}

	// A view permit neither retrieves nor downloads; a process-only
	// permit does not even view.
	for _, p := range []string{"/studies/" + study, "/studies/" + study + "/series/" + series, "/archive/manifest", "/archive/objects/" + inst} {
		if r, _ := get(view, p, `multipart/related; type="application/dicom"`); r.StatusCode != 403 {
			t.Errorf("view permit, %s: %d", p, r.StatusCode)
		}
	}
	if r, _ := get(proc, "/studies", dj); r.StatusCode != 403 {
		t.Errorf("process permit, QIDO: %d", r.StatusCode)
	}

	// Download: retrieval and the archive.
	resp, b = get(down, "/studies/"+study, `multipart/related; type="application/dicom"`)
	if resp.StatusCode != 200 {
		t.Fatalf("retrieve: %d %s", resp.StatusCode, b)
	}
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	mr := multipart.NewReader(bytes.NewReader(b), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if !strings.HasPrefix(p.Header.Get("Content-Location"), root+"studies/"+study+"/") {
			t.Errorf("Content-Location %q", p.Header.Get("Content-Location"))
		}
	}
	resp, b = get(down, "/archive/manifest", "")
	if resp.StatusCode != 200 {
		t.Fatalf("manifest: %d %s", resp.StatusCode, b)
	}
	var man ArchiveManifest
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, m := range members {
		want += qidoCount(t, srv, tok, "studies/"+m.Study+"/instances", map[string][]string{})
	}
	if man.Snapshot != "s1" || len(man.Objects) != want {
		t.Fatalf("manifest: %s, %d objects, want %d", man.Snapshot, len(man.Objects), want)
	}
	for i, o := range man.Objects {
		if !hasStudy(members, o.Study) || o.URL != root+"archive/objects/"+o.Instance {
			t.Errorf("manifest object %+v", o)
		}
		if i > 3 {
			continue
		}
		resp, whole := get(down, "/"+strings.TrimPrefix(o.URL, root), "")
		sum := sha256.Sum256(whole)
		if resp.StatusCode != 200 || int64(len(whole)) != o.Size || hex.EncodeToString(sum[:]) != o.SHA256 || resp.Header.Get("Content-Type") != "application/dicom" {
			t.Fatalf("object %s: %d, %d bytes, sha256 %x; manifest %+v", o.Instance, resp.StatusCode, len(whole), sum, o)
		}
		// Resume after the first 1000 bytes, only if the object is
		// still the same one.
		etag := resp.Header.Get("ETag")
		resp, rest := get(down, "/"+strings.TrimPrefix(o.URL, root), "", "Range", "bytes=1000-", "If-Range", etag)
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(append(whole[:1000:1000], rest...), whole) {
			t.Fatalf("resumed download: %d, %d bytes", resp.StatusCode, len(rest))
		}
		resp, _ = get(down, "/"+strings.TrimPrefix(o.URL, root), "", "Range", "bytes=1000-", "If-Range", `"other"`)
		if resp.StatusCode != 200 {
			t.Errorf("Range with a stale If-Range: %d, want the whole object", resp.StatusCode)
		}
	}
	if r, _ := get(down, "/archive/objects/"+outsideInstance(t, srv, tok, outside), ""); r.StatusCode != 404 {
		t.Errorf("an object outside the snapshot: %d", r.StatusCode)
	}

	// Path tricks: refused, never served.
	long := strings.Repeat("1.", 40) + "1"
	for _, p := range []string{
		"/studies/../archive/manifest",
		"/studies/%2e%2e/archive/manifest",
		"/archive/objects/..%2F..%2Fetc%2Fpasswd",
		"/archive/objects/%2e%2e",
		"/studies/" + study + "%2Fmetadata",
		"/studies/" + study + "/./metadata",
		"//archive/manifest",
		"/studies/" + long + "/metadata",
		"/studies/abc/metadata",
		"/archive/objects/" + long,
		"/archive/objects/1.2.x",
		"/studies/" + study + "/series/" + series + "/instances/" + inst + "/bulk/..%2F..%2F",
		"/studies/" + study + "\\..\\metadata",
	} {
		r, b := get(down, p, dj)
		if r.StatusCode != 400 && r.StatusCode != 404 {
			t.Errorf("%s: %d %.200s", p, r.StatusCode, b)
		}
	}

	// Permits that name no snapshot here, and bad roots.
	if _, err := n.SnapshotHandler(permit.Claims{Dataset: "lung", Snapshot: "s9", Operations: []permit.Op{permit.OpView}}, root); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("unknown snapshot: %v", err)
	}
	if _, err := n.SnapshotHandler(permit.Claims{Dataset: "other", Snapshot: "s1", Operations: []permit.Op{permit.OpView}}, root); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("snapshot of another dataset: %v", err)
	}
	for _, r := range []string{"", "/x/", "https://hub.example/p", `https://hub.example/"x/`, "ftp://hub.example/", "https://hub.example/?a=1/"} {
		if _, err := n.SnapshotHandler(claims(permit.OpView), r); !errors.Is(err, ErrSnapshotRequest) {
			t.Errorf("root %q: %v", r, err)
		}
	}
}

func hasStudy(ms []index.SnapshotMember, study string) bool {
	for _, m := range ms {
		if m.Study == study {
			return true
		}
	}
	return false
}

func outsideInstance(t *testing.T, srv *httptest.Server, tok, study string) string {
	t.Helper()
	resp, b := do(t, "GET", srv.URL+"/dicom-web/lung/studies/"+study+"/instances", tok, "", nil, "application/dicom+json")
	if resp.StatusCode != 200 {
		t.Fatalf("QIDO: %d", resp.StatusCode)
	}
	return str(dicomJSON(t, b)[0], "00080018")
}

// TestOnSnapshotRoundTrip sends a snapshot task signed with a hub key
// over a real NATS server: the node answers with a SnapshotAnswer signed
// by its own key and records it; a task signed by another key gets no
// answer and is recorded as refused.
func TestOnSnapshotRoundTrip(t *testing.T) {
	noNoise := 0.0 // two patients, counted and given a digest every time
	n, _, _, ingest := snapshotNodeWith(t, "sqlite", 1, func(c *Config) { c.SearchNoise = &noNoise })
	ingest(0, 2)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	hubPub, hubKey, _ := ed25519.GenerateKey(rand.Reader)
	nodePub, nodeKey, _ := ed25519.GenerateKey(rand.Reader)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	logPath := filepath.Join(t.TempDir(), "audit.log")
	al, err := audit.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	l := &Link{n: n, f: Federation{EnrollResponse: fed.EnrollResponse{Node: "north"}}, hubKey: hubPub, key: nodeKey, audit: al, nc: nc}
	if _, err := nc.Subscribe(fed.TaskSubject("north"), l.onTask); err != nil {
		t.Fatal(err)
	}
	hub, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	task := func(key ed25519.PrivateKey, id string, body any) []byte {
		b, _ := json.Marshal(body)
		now := time.Now()
		msg, err := fed.Seal(key, fed.SignerHub, fed.Task{ID: id, Kind: fed.TaskSnapshot, Issued: now, Expires: now.Add(time.Minute), Audience: "north", Body: b})
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	body := fed.SnapshotBody{Snapshot: "snap-7", Request: "req-7", Dataset: "lung", Query: json.RawMessage(allQuery)}
	reply, err := hub.Request(fed.TaskSubject("north"), task(hubKey, "t1", body), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ans fed.SnapshotAnswer
	signer, err := fed.Unseal(nodePub, reply.Data, &ans)
	if err != nil || signer != "north" {
		t.Fatalf("answer: %v signer %q", err, signer)
	}
	sn, err := n.ix.Snapshot(context.Background(), "snap-7", "lung")
	if err != nil || ans.Error != "" || ans.Node != "north" || ans.TaskID != "t1" || ans.Snapshot != "snap-7" || ans.Dataset != "lung" ||
		ans.Digest != n.SnapshotDigest(sn) || ans.Subjects != 2 || ans.Studies != sn.Studies || ans.Floor != 1 {
		t.Fatalf("answer %+v; stored %+v %v", ans, sn, err)
	}
	if here, err := n.MakeSnapshot(context.Background(), body); err != nil || here.Subjects != ans.Subjects || here.Studies != ans.Studies || here.Digest != ans.Digest {
		t.Fatalf("answer over NATS %+v, made here %+v (%v)", ans, here, err)
	}

	// A bad body gets an answer with an error and no data.
	bad := body
	bad.Dataset = "nope"
	reply, err = hub.Request(fed.TaskSubject("north"), task(hubKey, "t2", bad), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ans = fed.SnapshotAnswer{}
	if _, err := fed.Unseal(nodePub, reply.Data, &ans); err != nil || ans.Error == "" || ans.Digest != "" || ans.Subjects != 0 {
		t.Fatalf("answer to a snapshot of no dataset: %v %+v", err, ans)
	}

	// Forged: no answer.
	_, forged, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := hub.Request(fed.TaskSubject("north"), task(forged, "t3", body), 500*time.Millisecond); err == nil {
		t.Fatal("a forged task was answered")
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	if strings.Count(log, `"snapshot-made"`) != 2 || !strings.Contains(log, `"snap-7"`) || !strings.Contains(log, `"req-7"`) || !strings.Contains(log, `"task-refused"`) {
		t.Errorf("audit log:\n%s", log)
	}
}

// TestSnapshotDigestWithheldUnderFloor (found in review): the hub
// publishes each node's digest on the public snapshot landing page. A
// plain SHA-256 of "pseudonym study" lines would let anyone holding a
// patient's pseudonym and study UIDs test whether that patient is in a
// small cohort, and the digest of nothing would tell 0 from 1..floor-1.
// Under the floor no digest leaves; above it, the digest is keyed by the
// node (TestMakeSnapshot checks it is not the plain one).
func TestSnapshotDigestWithheldUnderFloor(t *testing.T) {
	ctx := context.Background()
	n, srv, tok, ingest := snapshotNode(t, "sqlite", 10)
	ingest(0, 1) // one patient: under the floor
	members := datasetStudies(t, srv, tok)
	ans, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Request: "r1", Dataset: "lung", Query: json.RawMessage(allQuery)})
	if err != nil {
		t.Fatal(err)
	}
	if ans.Subjects != 0 {
		t.Fatalf("count under the floor left the node: %+v", ans)
	}
	if ans.Digest == digestOf(members) {
		t.Errorf("a cohort of one patient under the floor gets a public digest anyone with that patient's pseudonym and study UIDs recomputes (%s)", ans.Digest)
	}
	if ans.Digest != "" {
		t.Errorf("a cohort under the floor gets a digest %s: it must be withheld", ans.Digest)
	}
	if !ans.DigestOK() {
		t.Errorf("the hub would refuse the answer %+v", ans)
	}
}

// TestSnapshotCountsUnderDisclosureControl (found in review): search
// counts pass the node's whole disclosure control (floor, rounding,
// keyed noise, complement and overlap controls); a snapshot's counts,
// published on the hub's public landing page, must too, or the hub (or
// whoever holds its key) could difference exact counts of two queries
// that differ by one person.
func TestSnapshotCountsUnderDisclosureControl(t *testing.T) {
	ctx := context.Background()
	// A fixed site key: the noise is keyed by it, so the figures drawn
	// here are the same every run (with a random key, both noisy counts
	// would come out exact in a few runs in a thousand).
	n, _, _, ingest := snapshotNodeWith(t, "sqlite", 10, func(c *Config) {
		key := filepath.Join(c.Data, "site.key")
		if err := os.WriteFile(key, bytes.Repeat([]byte{0x5a}, 32), 0o600); err != nil {
			t.Fatal(err)
		}
		c.SiteKey = key
	})
	ingest(0, 12)
	pol := n.ctl.Policy()
	ans, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Request: "r1", Dataset: "lung", Query: json.RawMessage(allQuery)})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := n.Snapshot(ctx, "s1", "lung")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("policy floor %d round %d noise %v; true subjects %d studies %d; answered %d %d", pol.Floor, pol.Round, pol.Noise, sn.Subjects, sn.Studies, ans.Subjects, ans.Studies)
	if (pol.Noise > 0 || pol.Round > 1) && ans.Subjects == sn.Subjects && ans.Studies == sn.Studies {
		t.Errorf("the snapshot answer carries the exact counts (%d subjects, %d studies) past the node's disclosure control", ans.Subjects, ans.Studies)
	}
}

// TestSnapshotCountsAsSearch: a snapshot's counts are the figures a
// federated search of the same set gets (the same seed, the same
// controls), so a snapshot is never finer than a search answer.
func TestSnapshotCountsAsSearch(t *testing.T) {
	ctx := context.Background()
	n, _, _, ingest := snapshotNode(t, "sqlite", 10)
	ingest(0, 12)
	if _, err := n.ix.UpdateDataset(ctx, "lung", func(d *index.Dataset) error {
		d.Tier, d.Description, d.Licence, d.Contact = 2, "Synthetic lung CT", "CC-BY-4.0", "data@example.org"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	q, err := lens.Parse([]byte(allQuery))
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := n.Search(ctx, q, "r-1")
	if err != nil || len(res) != 1 {
		t.Fatalf("search: %v %+v", err, res)
	}
	ans, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Request: "r1", Dataset: "lung", Query: json.RawMessage(allQuery)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("search %d/%d, snapshot %d/%d", res[0].SubjectsCount, res[0].StudiesCount, ans.Subjects, ans.Studies)
	if ans.Subjects != res[0].SubjectsCount || ans.Studies != res[0].StudiesCount {
		t.Errorf("snapshot of the whole dataset answers %d/%d, the search of it %d/%d", ans.Subjects, ans.Studies, res[0].SubjectsCount, res[0].StudiesCount)
	}
}
