package viewer_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/node"
	"github.com/mosaic-imaging/mosaic/internal/permit"
	"github.com/mosaic-imaging/mosaic/internal/synth"
	"github.com/mosaic-imaging/mosaic/internal/viewer"
	"github.com/mosaic-imaging/mosaic/internal/viewer/viewertest"
)

const fxDataset = "imaging"

// fixture is a real node holding a de-identified synthetic cohort, served
// by a real HTTP server together with the viewer, same-origin as the hub
// serves both: DICOMweb at /dicom-web/imaging/, the viewer at /viewer/.
type fixture struct {
	srv   *httptest.Server
	node  *node.Node
	token string // a read token of the node
	// want is what the node holds: study, series, instances.
	want viewertest.Want
	// frame1 is the SHA-256 of frame 1 of each instance, read from the
	// input files (de-identification keeps the pixels).
	frame1 map[string]string
	// modality is the modality of each series.
	modality map[string]string
	// snapWant is what snapshot s1 holds: the first patient's studies,
	// frozen before the others were ingested. Its DICOMweb root, served
	// by the node's SnapshotHandler as the hub's relay serves a permit, is
	// /dicom-web/permits/P1/, and the viewer of that permit is at
	// /viewer-permit/.
	snapWant viewertest.Want
}

const fxPermitRoot = "/dicom-web/permits/P1/"

// startFixture runs the node and the server. The handler of /dicom-web/
// adds the node's read token to requests without one, as the hub's relay
// stands for the researcher before a node; the viewer at /viewer/ reads
// /dicom-web/imaging/.
func startFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := synth.Generate(ctx, synth.Options{Dir: filepath.Join(dir, "cohort"), Patients: 3, Seed: 20261207}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(ctx, node.Config{Data: filepath.Join(dir, "node"), Policy: "longitudinal",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: fxDataset, Title: "Synthetic imaging for the viewer tests"}); err != nil {
		t.Fatal(err)
	}
	fx := &fixture{node: n, want: viewertest.Want{}, snapWant: viewertest.Want{}, frame1: map[string]string{}, modality: map[string]string{}}

	var files []string
	err = filepath.WalkDir(filepath.Join(dir, "cohort", synth.DICOMDir), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("the synthetic cohort has no files: %v", err)
	}
	sort.Strings(files)
	// The first patient's files, then snapshot s1 of everything the
	// dataset holds, then the other patients' files.
	first := filepath.Join(dir, "cohort", synth.DICOMDir, "0001") + string(filepath.Separator)
	split := 0
	for split < len(files) && strings.HasPrefix(files[split], first) {
		split++
	}
	if split == 0 || split == len(files) {
		t.Fatalf("the cohort's files do not start with patient 0001's: %d of %d", split, len(files))
	}
	fx.ingest(t, files[:split], fx.snapWant)
	if _, err := n.MakeSnapshot(ctx, fed.SnapshotBody{Snapshot: "s1", Request: "r1", Dataset: fxDataset,
		Query: json.RawMessage(`{"operand":"AND","children":[]}`)}); err != nil {
		t.Fatal(err)
	}
	fx.ingest(t, files[split:], nil)
	if len(fx.want) == 0 {
		t.Fatal("no object was stored")
	}

	tok, _, err := n.CreateToken(ctx, "viewer-test", index.ScopeRead, fxDataset)
	if err != nil {
		t.Fatal(err)
	}
	fx.token = tok
	nodeHandler := n.Handler()
	mux := http.NewServeMux()
	mux.Handle("/dicom-web/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		nodeHandler.ServeHTTP(w, r)
	}))
	root := func(r *http.Request) (string, bool) { return "/dicom-web/" + fxDataset + "/", true }
	mux.Handle("/viewer/", http.StripPrefix("/viewer", viewer.Handler(root)))
	// A viewer with nothing to show, and one whose root the node refuses
	// (the token is for another dataset).
	mux.Handle("/viewer-none/", http.StripPrefix("/viewer-none", viewer.Handler(func(*http.Request) (string, bool) { return "", false })))
	mux.Handle("/viewer-refused/", http.StripPrefix("/viewer-refused", viewer.Handler(func(*http.Request) (string, bool) { return "/dicom-web/other/", true })))
	mux.Handle("/viewer-permit/", http.StripPrefix("/viewer-permit", viewer.Handler(func(*http.Request) (string, bool) { return fxPermitRoot, true })))
	fx.srv = httptest.NewServer(mux)
	t.Cleanup(fx.srv.Close)
	// The snapshot's DICOMweb, with URLs in answers under the permit's
	// root on this server (the hub, in real life).
	c := permit.Claims{ID: "P1", Researcher: "u1", Node: "test", Dataset: fxDataset, Snapshot: "s1", Operations: []permit.Op{permit.OpView}}
	sh, err := n.SnapshotHandler(c, fx.srv.URL+fxPermitRoot)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(fxPermitRoot, http.StripPrefix(strings.TrimSuffix(fxPermitRoot, "/"), sh))
	return fx
}

// needTool fails in CI and skips elsewhere when err says a tool or the
// built viewer is missing.
func needTool(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%v (CI must have it: make test runs scripts/test-deps.sh and make viewer)", err)
	}
	t.Skipf("%v", err)
}

// ingest stores files at the node and records them in fx.want (and in
// also, when not nil).
func (fx *fixture) ingest(t *testing.T, files []string, also viewertest.Want) {
	t.Helper()
	ctx := context.Background()
	type pending struct {
		path string
		tk   *node.Ticket
	}
	var tickets []pending
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, pending{p, fx.node.Ingest(ctx, fxDataset, "test", f)})
		f.Close()
	}
	for _, pd := range tickets {
		o := pd.tk.Wait(ctx)
		switch o.Status {
		case node.StatusStored:
		case node.StatusRejected: // text burned into the pixels: refused at the door
			continue
		default:
			t.Fatalf("ingest: %s %s: %s", o.Status, o.Code, o.Reason)
		}
		for _, w := range []viewertest.Want{fx.want, also} {
			if w == nil {
				continue
			}
			if w[o.StudyUID] == nil {
				w[o.StudyUID] = map[string][]string{}
			}
			w[o.StudyUID][o.SeriesUID] = append(w[o.StudyUID][o.SeriesUID], o.SOPInstanceUID)
		}
		df, err := dicom.ReadFile(pd.path, dicom.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ds := &df.Dataset
		num := func(tag dicom.Tag) int {
			v, _ := ds.Int(tag)
			return int(v)
		}
		size := num(0x00280010) * num(0x00280011) * max(num(0x00280002), 1) * num(0x00280100) / 8
		px := ds.Get(dicom.TagPixelData)
		if px == nil || size == 0 || len(px.Value) < size {
			t.Fatalf("%s: no native pixel data of %d bytes", filepath.Base(pd.path), size)
		}
		sum := sha256.Sum256(px.Value[:size])
		fx.frame1[o.SOPInstanceUID] = hex.EncodeToString(sum[:])
		fx.modality[o.SeriesUID], _ = ds.String(0x00080060)
	}
}
