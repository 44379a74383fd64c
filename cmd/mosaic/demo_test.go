package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/demo"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
)

// TestDemo runs the demo federation twice on one folder, as the
// acceptance contract does: demo.json names the hub, a token and the
// nodes; the catalogue is public; a search with the token returns
// per-dataset results and per-node statuses; the second run reuses the
// cohorts.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and ingests three cohorts; skipped with -short")
	}
	data := filepath.Join(t.TempDir(), "demo")
	var firstTotal int
	for turn := 1; turn <= 2; turn++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		t0 := time.Now()
		var before time.Time
		if fi, err := os.Stat(filepath.Join(data, "demo.json")); err == nil {
			before = fi.ModTime()
		}
		var stderr strings.Builder
		go func() {
			done <- run(ctx, []string{"demo", "--data", data, "--addr", "127.0.0.1:0"}, func(string) string { return "" }, strings.NewReader(""), io.Discard, &stderr)
		}()
		var info demo.Info
		testutil.Eventually(t, 90*time.Second, func() error {
			select {
			case code := <-done:
				t.Fatalf("demo run %d exited %d before it was ready: %s", turn, code, stderr.String())
			default:
			}
			fi, err := os.Stat(filepath.Join(data, "demo.json"))
			if err != nil {
				return err
			}
			if !fi.ModTime().After(before) {
				return errors.New("demo.json is the previous run's")
			}
			b, err := os.ReadFile(filepath.Join(data, "demo.json"))
			if err != nil {
				return err
			}
			return json.Unmarshal(b, &info)
		})
		took := time.Since(t0)
		t.Logf("run %d ready in %s", turn, took)
		if info.HubURL == "" || info.Token == "" || len(info.Nodes) != 3 || info.User == "" || info.Password == "" {
			t.Fatalf("demo.json: %+v", info)
		}
		for _, n := range info.Nodes {
			if n.Name == "" || !strings.HasPrefix(n.URL, "http://") || n.Scope != "read" {
				t.Errorf("node in demo.json: %+v", n)
			}
			// The node token reads its dataset and does nothing more.
			for _, c := range []struct {
				method, path string
				want         int
			}{
				{"GET", "/dicom-web/" + n.Dataset + "/studies?limit=1", 200},
				{"POST", "/dicom-web/" + n.Dataset + "/studies", 403},
				{"POST", "/api/v1/datasets", 403},
				{"GET", "/api/v1/tokens", 403},
			} {
				req, _ := http.NewRequest(c.method, n.URL+c.path, strings.NewReader("{}"))
				req.Header.Set("Authorization", "Bearer "+n.Token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != c.want {
					t.Errorf("node %s: %s %s with the demo token: %d, want %d", n.Name, c.method, c.path, resp.StatusCode, c.want)
				}
			}
		}
		// The access accounts: the admin token is an admin's, the
		// researcher's is not, and each node has a representative.
		for _, c := range []struct {
			who, token string
			want       int
		}{{"admin", info.AdminToken, 200}, {"researcher", info.ResearcherToken, 403}} {
			req, _ := http.NewRequest("GET", info.HubURL+"/api/v1/nodes", nil)
			req.Header.Set("Authorization", "Bearer "+c.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("GET /api/v1/nodes with the demo's %s token: %d, want %d", c.who, resp.StatusCode, c.want)
			}
		}
		for _, n := range info.Nodes {
			if n.Representative == "" || n.RepresentativeToken == "" || info.Representatives[n.Name].Token != n.RepresentativeToken {
				t.Errorf("node %s: no representative in demo.json: %+v", n.Name, n)
			}
		}
		resp, err := http.Get(info.HubURL + "/api/v1/datasets")
		if err != nil {
			t.Fatal(err)
		}
		var cat struct{ Datasets []struct{ Node, ID string } }
		json.NewDecoder(resp.Body).Decode(&cat)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(cat.Datasets) != 3 {
			t.Errorf("public catalogue: %d, %d datasets", resp.StatusCode, len(cat.Datasets))
		}
		req, _ := http.NewRequest("POST", info.HubURL+"/api/v1/search", strings.NewReader(`{"operand":"AND","children":[]}`))
		req.Header.Set("Authorization", "Bearer "+info.Token)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var res struct {
			Results []struct {
				Node, Dataset string
				Subjects      int `json:"subjects_count"`
			}
			Nodes []struct{ Node, Status string }
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &res) != nil || len(res.Results) != 3 || len(res.Nodes) != 3 {
			t.Fatalf("search: %d %s", resp.StatusCode, b)
		}
		total := 0
		for _, r := range res.Results {
			if r.Node == "" || r.Dataset == "" || r.Subjects < 10 {
				t.Errorf("result %+v in the answer %s", r, b)
			}
			total += r.Subjects
		}
		for _, n := range res.Nodes {
			if n.Status != "answered" {
				t.Errorf("node %s: %s", n.Node, n.Status)
			}
		}
		if turn == 1 {
			firstTotal = total
		} else if total != firstTotal {
			t.Errorf("second run counts %d subjects, first %d", total, firstTotal)
		}
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("demo exited %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("demo did not stop")
		}
	}
	// Every record of the demo's log (the hub's and the nodes') names
	// each key once.
	lf, err := os.Open(filepath.Join(data, "demo.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if n, err := testutil.JSONLogKeysOnce(lf); err != nil || n == 0 {
		t.Errorf("demo.log: %d records checked: %v", n, err)
	}
}
