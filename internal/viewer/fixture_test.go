package viewer_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/node"
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
	// series is the modality of each series.
	modality map[string]string
}

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
	fx := &fixture{node: n, want: viewertest.Want{}, frame1: map[string]string{}, modality: map[string]string{}}

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
		tickets = append(tickets, pending{p, n.Ingest(ctx, fxDataset, "test", f)})
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
		if fx.want[o.StudyUID] == nil {
			fx.want[o.StudyUID] = map[string][]string{}
		}
		fx.want[o.StudyUID][o.SeriesUID] = append(fx.want[o.StudyUID][o.SeriesUID], o.SOPInstanceUID)
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
	fx.srv = httptest.NewServer(mux)
	t.Cleanup(fx.srv.Close)
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
