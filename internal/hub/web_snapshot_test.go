package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestUISnapshotPage: a snapshot's landing page is public and shows the
// query, the time and each dataset's digest and counts, "fewer than"
// the floor where a node reported none over it; an unknown id, a bad
// one, or a hub without snapshots is a 404 page, and a failing hook a
// 500 page that tells nothing of the failure.
func TestUISnapshotPage(t *testing.T) {
	h := grantHubConfig(t, Config{})
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	if r := uiGetPlain(t, srv.URL+"/snapshots/snap-1"); r.code != 404 || !strings.Contains(r.body, "Snapshot not found") {
		t.Errorf("without the hook: %d", r.code)
	}
	made := time.Date(2026, 11, 2, 10, 30, 0, 0, time.UTC)
	var asked []string
	h.SetSnapshots(func(ctx context.Context, id string) (SnapshotView, error) {
		asked = append(asked, id)
		switch id {
		case "snap-1":
			return SnapshotView{ID: "snap-1", Title: "Lung nodules & outcomes", Query: `Diagnosis is "lung <b>cancer</b>"`, Created: made, Datasets: []SnapshotDataset{
				{Node: "north", Dataset: "lung-ct", Title: "Lung CT", Digest: strings.Repeat("ab", 32), Subjects: 1234, Studies: 2345, Floor: 10, Created: made},
				{Node: "south", Dataset: "pelvis-mr", Digest: "", Subjects: 0, Studies: 0, Floor: 5, Created: made},
			}}, nil
		case "broken":
			return SnapshotView{}, errors.New("database at /secret/path is down")
		}
		return SnapshotView{}, fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
	})
	r := uiGetPlain(t, srv.URL+"/snapshots/snap-1")
	for _, want := range []string{"snap-1", "Diagnosis is &#34;lung &lt;b&gt;cancer&lt;/b&gt;&#34;", "north/lung-ct", "Lung CT", strings.Repeat("ab", 32),
		"1,234", "2,345", "south/pelvis-mr", "withheld under the node's floor", "fewer than 5", "2026-11-02", "Lung nodules &amp; outcomes"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("snapshot page lacks %q", want)
		}
	}
	if r.code != 200 || strings.Contains(r.body, "<b>cancer") || strings.Contains(r.body, "fewer than 10") {
		t.Errorf("snapshot page: %d\n%s", r.code, r.body)
	}
	if r := uiGetPlain(t, srv.URL+"/snapshots/unknown"); r.code != 404 || !strings.Contains(r.body, "Snapshot not found") {
		t.Errorf("unknown snapshot: %d", r.code)
	}
	if r := uiGetPlain(t, srv.URL+"/snapshots/"+strings.Repeat("x", 129)); r.code != 404 {
		t.Errorf("overlong id: %d", r.code)
	}
	if r := uiGetPlain(t, srv.URL+"/snapshots/broken"); r.code != 500 || strings.Contains(r.body, "secret") {
		t.Errorf("failing hook: %d %s", r.code, r.body)
	}
	for _, id := range asked {
		if !snapshotID.MatchString(id) {
			t.Errorf("the hook was asked for %q", id)
		}
	}
}

type plainResponse struct {
	code int
	body string
}

func uiGetPlain(t *testing.T, u string) plainResponse {
	t.Helper()
	resp, err := httpGet(u)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func httpGet(u string) (plainResponse, error) {
	resp, err := http.Get(u)
	if err != nil {
		return plainResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return plainResponse{resp.StatusCode, string(b)}, err
}
