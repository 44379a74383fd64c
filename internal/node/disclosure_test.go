package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/disclosure"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/lens"
)

// A node on a real SQLite index keeps its researchers' budgets and its
// answered sets across a restart, answers close sets alike, refuses a
// spent budget, and shows its alerts to admins.
func TestNodeDisclosureAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	open := func() *Node {
		n, err := Open(ctx, Config{Data: dir, Policy: "longitudinal", SearchEpsilon: 1.0 / 3, SearchDailyEpsilon: 2, SearchTotalEpsilon: 3,
			Clock: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := open()
	if _, err := n.ix.CreateDataset(ctx, index.Dataset{ID: "lung", Title: "Lung", Description: "Lung cancer patients.", Licence: "CC-BY-4.0", Contact: "data@example.org", Tier: 3}); err != nil {
		t.Fatal(err)
	}
	var pats []index.ClinicalPatient
	for i := range 60 {
		age, sex := 40+i%30, []string{"female", "male"}[i%2]
		pats = append(pats, index.ClinicalPatient{PatientID: fmt.Sprintf("MOS-%03d", i), BirthSex: sex,
			Condition: &index.Condition{CancerType: "lung", AgeAtDiagnosis: &age, ICD10: "C34.1"}})
	}
	if err := n.ix.PutClinical(ctx, "lung", pats); err != nil {
		t.Fatal(err)
	}
	ask := func(n *Node, researcher, ast string) (int, string) {
		t.Helper()
		q, err := lens.Parse([]byte(ast))
		if err != nil {
			t.Fatal(err)
		}
		res, _, err := n.Search(ctx, q, researcher)
		if err != nil || len(res) != 1 {
			t.Fatalf("search: %v %+v", err, res)
		}
		return res[0].SubjectsCount, res[0].Refused
	}
	const (
		all     = `{"operand":"AND","children":[]}`
		ageOver = `{"key":"SNOMEDCT423493009","type":"BETWEEN","system":"","value":{"min":%d,"max":200}}`
	)
	// ε is 1/3 per answer: six answers a day.
	// Ages 50 to 60: 22 patients, far from the whole dataset's 60.
	ageBetween := `{"key":"SNOMEDCT423493009","type":"BETWEEN","system":"","value":{"min":50,"max":%d}}`
	mid, _ := ask(n, "r1", fmt.Sprintf(ageBetween, 60))
	for i := range 5 {
		if _, refused := ask(n, "r1", fmt.Sprintf(ageOver, 46+i)); refused != "" {
			t.Fatalf("answer %d refused: %s", i+2, refused)
		}
	}
	if _, refused := ask(n, "r1", all); refused != disclosure.RefusedDay {
		t.Fatalf("the seventh answer: %q", refused)
	}
	n.Close(context.Background())
	n = open()
	defer n.Close(context.Background())
	if _, refused := ask(n, "r1", all); refused != disclosure.RefusedDay {
		t.Fatalf("after a restart: %q", refused)
	}
	// Another researcher asking for a set two patients away from r1's
	// first (closer than any radius) gets r1's answer, from the stored
	// history.
	if got, _ := ask(n, "r2", fmt.Sprintf(ageBetween, 61)); got != mid || mid == 0 {
		t.Errorf("ages 50 to 61 after a restart: %d, ages 50 to 60 were %d", got, mid)
	}
	now = now.Add(24 * time.Hour)
	ask(n, "r1", fmt.Sprintf(ageOver, 60))
	ask(n, "r1", fmt.Sprintf(ageOver, 61))
	ask(n, "r1", fmt.Sprintf(ageOver, 62))
	if _, refused := ask(n, "r1", fmt.Sprintf(ageOver, 63)); refused != disclosure.RefusedTotal {
		t.Fatalf("past the total cap: %q", refused)
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	tok, _, err := n.ix.CreateToken(ctx, "admin", index.ScopeAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, "GET", srv.URL+"/api/v1/disclosure", tok, "", nil, "")
	var got struct {
		Floor  int
		Noise  float64
		Alerts []disclosure.Alert
	}
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 || got.Floor != 10 || got.Noise != DefaultSearchNoise {
		t.Fatalf("GET /api/v1/disclosure: %d %s", resp.StatusCode, body)
	}
	kinds := map[string]bool{}
	for _, a := range got.Alerts {
		kinds[a.Kind] = true
	}
	if !kinds[disclosure.AlertBudget] {
		t.Errorf("alerts %+v, want a budget alert", got.Alerts)
	}
	if resp, _ := do(t, "GET", srv.URL+"/api/v1/disclosure", "", "", nil, ""); resp.StatusCode != 401 {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
}

// BenchmarkSearchDisclosure answers federated searches on a node of
// 10,000 patients through the whole disclosure control (subjects, tally,
// overlap lookup in a growing history, budget charged in the index), one
// new question per iteration, so that every answer is drawn afresh or
// matched against the sets before it.
func BenchmarkSearchDisclosure(b *testing.B) {
	ctx := context.Background()
	n, err := Open(ctx, Config{Data: b.TempDir(), Policy: "longitudinal", SearchDailyEpsilon: -1, SearchTotalEpsilon: -1,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close(context.Background())
	if _, err := n.ix.CreateDataset(ctx, index.Dataset{ID: "d", Title: "d", Description: "Test patients.", Licence: "CC-BY-4.0", Contact: "data@example.org", Tier: 3}); err != nil {
		b.Fatal(err)
	}
	var pats []index.ClinicalPatient
	for i := range 10000 {
		age, year := 30+i%61, 2010+i%15
		pats = append(pats, index.ClinicalPatient{PatientID: fmt.Sprintf("MOS-%05d", i), BirthSex: []string{"female", "male"}[i%2],
			Condition: &index.Condition{CancerType: []string{"lung", "breast", "liver"}[i%3], AgeAtDiagnosis: &age, DiagnosisYear: &year, ICD10: "C34.1"}})
	}
	if err := n.ix.PutClinical(ctx, "d", pats); err != nil {
		b.Fatal(err)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		lo := 30 + i%50
		hi := lo + 3 + (i*7)%40
		q, err := lens.Parse([]byte(fmt.Sprintf(`{"operand":"OR","children":[{"key":"SNOMEDCT423493009","type":"BETWEEN","system":"","value":{"min":%d,"max":%d}},{"key":"SNOMEDCT439401001","type":"EQUALS","system":"","value":"SNOMEDCT363358000"}]}`, lo, hi)))
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := n.Search(ctx, q, fmt.Sprint("r", i%5)); err != nil {
			b.Fatal(err)
		}
	}
}

// Nodes and hubs of different versions keep working together: a search
// from a hub before per-node pseudonyms is charged to its user hash, one
// naming nobody to a shared budget, and a node.json written before noise
// was on by default keeps what it said.
func TestDisclosureUpgrade(t *testing.T) {
	if got := ResearcherOf(fed.SearchBody{User: "0a1b2c3d4e5f6071"}, "north"); got != "user:0a1b2c3d4e5f6071" {
		t.Errorf("old hub: %q", got)
	}
	if got := ResearcherOf(fed.SearchBody{}, "north"); got != "anonymous" {
		t.Errorf("no researcher: %q", got)
	}
	if got := ResearcherOf(fed.SearchBody{User: "x", Researchers: map[string]string{"north": "r-1", "south": "r-2"}}, "north"); got != "r-1" {
		t.Errorf("new hub: %q", got)
	}
	for _, c := range []struct {
		json  string
		noise float64
	}{{`{"search_floor": 10, "search_round": 1, "search_noise": 0}`, 0}, {`{"search_noise": 2.5}`, 2.5}, {`{}`, DefaultSearchNoise}} {
		var cfg Config
		if err := json.Unmarshal([]byte(c.json), &cfg); err != nil {
			t.Fatal(err)
		}
		cfg.Data = t.TempDir()
		cfg.Defaults()
		if err := cfg.Validate(); err != nil || *cfg.SearchNoise != c.noise || !*cfg.SearchOverlap {
			t.Errorf("%s: noise %v overlap %v (%v)", c.json, *cfg.SearchNoise, *cfg.SearchOverlap, err)
		}
	}
}
