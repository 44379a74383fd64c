package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/node"
	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// TestStowDeidentifiedStudy: a study de-identified with 'mosaic deid'
// and sent by STOW-RS to /studies/{its UID} at a node with the same site
// key is stored whole, without a mismatch: the objects keep their UIDs,
// so the URL names the study as they do. Sent to another study's URL,
// every object is reported as a mismatch.
func TestStowDeidentifiedStudy(t *testing.T) {
	tmp := t.TempDir()
	cohort := filepath.Join(tmp, "cohort")
	if _, err := synth.Generate(context.Background(), synth.Options{Dir: cohort, Patients: 2, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(tmp, "site.key")
	out := filepath.Join(tmp, "deid")
	if code, _, stderr := runMosaic(t, "deid", "-q", "--policy", "eucaim", "--site-key", key, "--out", out, filepath.Join(cohort, synth.DICOMDir)); code != exitOK {
		t.Fatalf("deid: exit %d\n%s", code, stderr)
	}
	// The de-identified objects by study.
	studies := map[string][]string{}
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := dicom.ReadFile(p, dicom.ReadOptions{})
		if err != nil {
			return nil // a report or other file beside the objects
		}
		uid := f.Dataset.UID(dicom.NewTag(0x0020, 0x000D))
		studies[uid] = append(studies[uid], p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var uids []string
	for u := range studies {
		uids = append(uids, u)
	}
	sort.Strings(uids)
	if len(uids) < 2 || uids[0] == "" {
		t.Fatalf("want at least two de-identified studies, have %q", uids)
	}

	n, err := node.Open(context.Background(), node.Config{Data: filepath.Join(tmp, "node"), SiteKey: key, Policy: "eucaim",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxObjectBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer func() {
		srv.Close()
		n.Close(context.Background())
	}()
	if _, err := n.CreateDataset(context.Background(), index.Dataset{ID: "d", Title: "D"}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := n.CreateToken(context.Background(), "t", index.ScopeAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	stow := func(study string, files []string) (int, int, int, string) {
		t.Helper()
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
		req, _ := http.NewRequest("POST", srv.URL+"/dicom-web/d/studies/"+study, &buf)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", `multipart/related; type="application/dicom"; boundary=`+mw.Boundary())
		req.Header.Set("Accept", "application/dicom+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r map[string]struct {
			Value []any `json:"Value"`
		}
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("STOW to %s: %d %.300s", study, resp.StatusCode, b)
		}
		retrieve := ""
		if v := r["00081190"].Value; len(v) == 1 {
			retrieve, _ = v[0].(string)
		}
		return resp.StatusCode, len(r["00081199"].Value), len(r["00081198"].Value), retrieve
	}
	first := studies[uids[0]]
	// 202: stored with the warning every de-identified object carries
	// (its attributes were coerced).
	code, stored, failed, retrieve := stow(uids[0], first)
	if code != http.StatusAccepted || stored != len(first) || failed != 0 || retrieve != srv.URL+"/dicom-web/d/studies/"+uids[0] {
		t.Errorf("STOW of a de-identified study to its own URL: %d, %d stored, %d failed, retrieve at %q; want 202, %d stored, none failed, retrieve at its UID", code, stored, failed, retrieve, len(first))
	}
	second := studies[uids[1]]
	if code, stored, failed, _ := stow(uids[0], second); code != http.StatusConflict || stored != 0 || failed != len(second) {
		t.Errorf("STOW of a de-identified study to another study's URL: %d, %d stored, %d failed; want every object a mismatch (%d)", code, stored, failed, len(second))
	}
}
