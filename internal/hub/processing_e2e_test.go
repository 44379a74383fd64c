package hub_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/compute"
	"github.com/mosaic-imaging/mosaic/internal/executor"
	"github.com/mosaic-imaging/mosaic/internal/fl"
	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/node"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
)

// procNeeds fails under CI and skips elsewhere when a tool is missing.
func procNeeds(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath("Rscript"); err != nil {
		missing = append(missing, "Rscript (apt-get install r-base-core)")
	}
	if _, err := exec.LookPath("bwrap"); err != nil {
		missing = append(missing, "bwrap (apt-get install bubblewrap)")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import numpy").Run(); err != nil {
		missing = append(missing, "numpy in /usr/bin/python3 (apt-get install python3-numpy)")
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the processing end-to-end test needs %s", strings.Join(missing, ", "))
	}
	t.Skipf("the processing end-to-end test needs %s", strings.Join(missing, ", "))
}

// procTable writes a synthetic research table: a continuous outcome y
// and a binary outcome from known models of x, z and stage, a
// categorical rare whose level "C" has rareC rows, and w1..w12 noise.
func procTable(seed uint64, n, rareC int) string {
	r := mrand.New(mrand.NewPCG(seed, 11))
	var b strings.Builder
	b.WriteString("y,x,z,stage,outcome,rare")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, ",w%d", i)
	}
	b.WriteString("\n")
	eff := map[string]float64{"I": 0, "II": 0.6, "III": -0.5}
	stages := []string{"I", "II", "III"}
	for i := 0; i < n; i++ {
		x, z := r.NormFloat64(), r.Float64()*4
		s := stages[i%3]
		y := 1 + 2*x - 0.5*z + eff[s] + r.NormFloat64()
		eta := -0.3 + 1.1*x - 0.4*z + eff[s]
		o := 0
		if r.Float64() < 1/(1+math.Exp(-eta)) {
			o = 1
		}
		rare := []string{"A", "B"}[i%2]
		if i < rareC {
			rare = "C"
		}
		fmt.Fprintf(&b, "%.6f,%.6f,%.6f,%s,%d,%s", y, x, z, s, o, rare)
		for j := 0; j < 12; j++ {
			fmt.Fprintf(&b, ",%.4f", r.NormFloat64())
		}
		b.WriteString("\n")
	}
	return b.String()
}

func readProg(t *testing.T, path string) compute.Program {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return compute.Program{Name: filepath.Base(path), Content: b, Digest: "sha256:" + hex.EncodeToString(sum[:])}
}

// rFit fits formula over the pooled CSV with R and returns its
// coefficient table by term: estimate, std error, statistic, p.
func rFit(t *testing.T, csvPath, call string) map[string][4]float64 {
	t.Helper()
	script := fmt.Sprintf(`d <- read.csv(%q, stringsAsFactors = FALSE)
m <- %s
s <- summary(m)$coefficients
cat(sprintf("%%s|%%.17g|%%.17g|%%.17g|%%.17g\n", rownames(s), s[,1], s[,2], s[,3], s[,4]), sep = "")
`, csvPath, call)
	out, err := exec.Command("Rscript", "-e", script).CombinedOutput()
	if err != nil {
		t.Fatalf("Rscript: %v: %s", err, out)
	}
	res := map[string][4]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 5 {
			t.Fatalf("R printed %q", line)
		}
		var v [4]float64
		for i := range v {
			v[i], _ = strconv.ParseFloat(f[i+1], 64)
		}
		res[f[0]] = v
	}
	return res
}

func rel(a, b float64) float64 {
	return math.Abs(a-b) / math.Max(math.Abs(b), 1e-300)
}

// TestProcessingEndToEnd is issue 15's "Done when" for federated
// analyses, learning and validation: a real hub and three real nodes
// over NATS with TLS, each with a synthetic research table, process
// permits granted through the access service; lm and glm equal to R's
// fit of the pooled rows to 1e-8; five FedAvg rounds of the numpy
// logistic regression example run by bubblewrap at the nodes, equal
// under secure aggregation and in the clear; a validation whose merged
// metrics equal the pooled computation; a node stopped in the middle of
// a run drops and the rounds go on; and the refusals: a view-only
// permit, a revoked permit, another dataset, a design under one node's
// floor, a saturated model.
func TestProcessingEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("the processing end-to-end test takes most of a minute")
	}
	procNeeds(t)
	t0 := time.Now()
	root := filepath.Join("..", "..")
	logreg := readProg(t, filepath.Join(root, "examples", "fl", "logreg.py"))
	validate := readProg(t, filepath.Join(root, "examples", "fl", "validate_logreg.py"))
	lib := readProg(t, filepath.Join(root, "clients", "python", "mosaic_fl.py"))
	logreg.Files, validate.Files = []compute.Program{lib}, []compute.Program{lib}

	ctx := context.Background()
	h, srv := tlsHub(t, hub.Config{Processing: hub.ProcessingConfig{StepTimeout: 30 * time.Second, RoundTimeout: time.Minute}})
	for _, u := range []struct{ id, role string }{{"rosa", hub.RoleResearcher}, {"admin", hub.RoleAdmin}} {
		if err := h.AddUser(ctx, u.id, "a-long-password-1", u.role); err != nil {
			t.Fatal(err)
		}
	}
	rosa, _ := h.NewUserToken(ctx, "rosa", "test")
	admin, _ := h.NewUserToken(ctx, "admin", "test")

	type site struct {
		name string
		rows int
		rare int
		csv  string
		n    *node.Node
		link *node.Link
		rep  string
	}
	sites := []*site{{name: "north", rows: 400}, {name: "south", rows: 300, rare: 3}, {name: "east", rows: 48}}
	jobs := executor.Config{Kind: executor.Process, AllowPrograms: []string{logreg.Digest, validate.Digest, lib.Digest}}
	ds := index.Dataset{ID: "registry", Title: "Cancer registry", Description: "Outcomes of a regional registry.", Licence: "CC-BY-4.0",
		Contact: "registry@example.org", AccessRights: "RESTRICTED", Tier: 3}
	for i, s := range sites {
		rare := s.rare
		if rare == 0 {
			rare = 20
		}
		s.csv = procTable(uint64(100+i), s.rows, rare)
		s.n = enrolNode(t, h, srv, s.name, node.Config{SearchFloor: 10, Jobs: jobs})
		if _, err := s.n.CreateDataset(ctx, ds); err != nil {
			t.Fatal(err)
		}
		if _, err := s.n.PutTable(ctx, "registry", "clinical", strings.NewReader(s.csv), nil); err != nil {
			t.Fatal(err)
		}
		s.rep = "rep-" + s.name
		if err := h.AddUser(ctx, s.rep, "a-long-password-1", hub.RoleRepresentative); err != nil {
			t.Fatal(err)
		}
		if err := h.AddRepresentative(ctx, s.rep, hub.Representation{Node: s.name, Dataset: "registry"}); err != nil {
			t.Fatal(err)
		}
	}
	// North holds a second dataset, without the table.
	other := ds
	other.ID, other.Title = "imaging", "Imaging archive"
	if _, err := sites[0].n.CreateDataset(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := h.AddRepresentative(ctx, sites[0].rep, hub.Representation{Node: "north", Dataset: "imaging"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range sites {
		s.link = startLink(t, s.n)
	}
	for _, s := range sites {
		if !online(t, h, s.name, 15*time.Second) {
			t.Fatalf("%s did not come online", s.name)
		}
	}

	api := func(token, method, path string, body any, out any) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil {
			json.Unmarshal(b, out)
		}
		return resp.StatusCode, string(b)
	}
	// The catalogue has the datasets once the nodes published them.
	if err := testutil.Poll(15*time.Second, func() error {
		var list struct{ Total int }
		api(rosa, "GET", "/api/v1/datasets", nil, &list)
		if list.Total < 4 {
			return fmt.Errorf("%d datasets in the catalogue", list.Total)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	type permitOut struct{ ID, Node, Dataset string }
	grant := func(title string, ops []string, datasets [][2]string) (string, []permitOut) {
		t.Helper()
		var dl []map[string]string
		for _, d := range datasets {
			dl = append(dl, map[string]string{"node": d[0], "dataset": d[1]})
		}
		var req struct{ ID string }
		if st, b := api(rosa, "POST", "/api/v1/access-requests", map[string]any{"title": title, "description": "Federated analyses of outcomes.",
			"duo": []string{"DUO:0000042"}, "query": json.RawMessage(`{"operand":"AND","children":[]}`), "datasets": dl, "operations": ops, "days": 30}, &req); st != 201 {
			t.Fatalf("access request: %d %s", st, b)
		}
		base := "/api/v1/access-requests/" + req.ID
		if st, b := api(rosa, "POST", base+"/submit", nil, nil); st != 200 {
			t.Fatalf("submit: %d %s", st, b)
		}
		if st, b := api(admin, "POST", base+"/review", map[string]string{"decision": "approve", "message": "Complete."}, nil); st != 200 {
			t.Fatalf("review: %d %s", st, b)
		}
		for _, d := range datasets {
			repTok, _ := h.NewUserToken(ctx, "rep-"+d[0], "test")
			if st, b := api(repTok, "POST", base+"/datasets/"+d[0]+"/"+d[1]+"/decision", map[string]string{"decision": "approve", "message": "Granted."}, nil); st != 200 {
				t.Fatalf("%s approves: %d %s", d[0], st, b)
			}
		}
		var got struct{ Permits []permitOut }
		if st, b := api(rosa, "GET", base, nil, &got); st != 200 || len(got.Permits) != len(datasets) {
			t.Fatalf("request: %d %s", st, b)
		}
		return req.ID, got.Permits
	}
	all := [][2]string{{"north", "registry"}, {"south", "registry"}, {"east", "registry"}}
	request, permits := grant("Outcomes", []string{"process"}, all)
	t.Logf("permits granted after %s", time.Since(t0).Round(time.Millisecond))

	// The pooled rows, for R.
	var pooled strings.Builder
	for i, s := range sites {
		c := s.csv
		if i > 0 {
			c = c[strings.IndexByte(c, '\n')+1:]
		}
		pooled.WriteString(c)
	}
	pooledPath := filepath.Join(t.TempDir(), "pooled.csv")
	if err := os.WriteFile(pooledPath, []byte(pooled.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	type fitOut struct {
		Coefficients []struct {
			Term                                  string
			Estimate, StdError, Statistic, PValue float64
		} `json:"coefficients"`
		N           int               `json:"n"`
		DF          int               `json:"df"`
		RowsPerNode map[string]int    `json:"rows_per_node"`
		Refused     map[string]string `json:"refused"`
		Error       string            `json:"error"`
	}
	analyze := func(body map[string]any) (int, fitOut) {
		t.Helper()
		var out struct {
			Coefficients []struct {
				Term      string  `json:"term"`
				Estimate  float64 `json:"estimate"`
				StdError  float64 `json:"std_error"`
				Statistic float64 `json:"statistic"`
				PValue    float64 `json:"p_value"`
			} `json:"coefficients"`
			N           int               `json:"n"`
			DF          int               `json:"df"`
			RowsPerNode map[string]int    `json:"rows_per_node"`
			Refused     map[string]string `json:"refused"`
			Error       string            `json:"error"`
		}
		st, b := api(rosa, "POST", "/api/v1/analyses", body, &out)
		if st != 200 {
			t.Logf("analysis %v: %d %s", body["formula"], st, b)
		}
		f := fitOut{N: out.N, DF: out.DF, RowsPerNode: out.RowsPerNode, Refused: out.Refused, Error: out.Error}
		for _, c := range out.Coefficients {
			f.Coefficients = append(f.Coefficients, struct {
				Term                                  string
				Estimate, StdError, Statistic, PValue float64
			}{c.Term, c.Estimate, c.StdError, c.Statistic, c.PValue})
		}
		return st, f
	}
	checkR := func(what string, got fitOut, want map[string][4]float64) {
		t.Helper()
		if len(got.Coefficients) != len(want) {
			t.Errorf("%s: %d coefficients, R has %d", what, len(got.Coefficients), len(want))
			return
		}
		worst := 0.0
		for _, c := range got.Coefficients {
			w, ok := want[c.Term]
			if !ok {
				t.Errorf("%s: R has no term %q", what, c.Term)
				continue
			}
			for i, v := range []float64{c.Estimate, c.StdError, c.Statistic} {
				worst = math.Max(worst, rel(v, w[i]))
			}
			if w[3] > 1e-200 {
				worst = math.Max(worst, rel(c.PValue, w[3])*1e-2)
			}
		}
		if worst > 1e-8 {
			t.Errorf("%s: largest relative difference to R %.3g, want under 1e-8: %+v vs %v", what, worst, got.Coefficients, want)
		}
		t.Logf("%s: equal to R's pooled fit within %.2g (relative)", what, worst)
	}

	// lm and glm over the request's process permits equal R's pooled fits.
	st, lm := analyze(map[string]any{"type": "lm", "table": "clinical", "formula": "y ~ x + z + factor(stage)", "request": request})
	if st != 200 {
		t.Errorf("lm: %d", st)
	}
	checkR("lm", lm, rFit(t, pooledPath, `lm(y ~ x + z + factor(stage), data = d)`))
	if lm.RowsPerNode["north"] != 400 || lm.RowsPerNode["south"] != 300 || lm.RowsPerNode["east"] != 48 || lm.N != 748 {
		t.Errorf("lm rows %v n %d", lm.RowsPerNode, lm.N)
	}
	st, glm := analyze(map[string]any{"type": "glm", "family": "binomial", "table": "clinical", "formula": "outcome ~ x + z + factor(stage)", "request": request})
	if st != 200 {
		t.Errorf("glm: %d", st)
	}
	checkR("glm", glm, rFit(t, pooledPath, `glm(outcome ~ x + z + factor(stage), family = binomial, data = d)`))
	if st, page := api(rosa, "GET", "/analyses", nil, nil); st != 200 || !strings.Contains(page, "factor(stage)II") {
		t.Errorf("the analyses page: %d %.300s", st, page)
	}
	t.Logf("lm and glm after %s", time.Since(t0).Round(time.Millisecond))

	// Refusals: a level under south's floor, a model saturated at east.
	if st, f := analyze(map[string]any{"type": "lm", "table": "clinical", "formula": "y ~ x + factor(rare)", "request": request}); st != 200 ||
		!strings.HasPrefix(f.Refused["south"], "level") || f.RowsPerNode["south"] != 0 || f.N != 448 {
		t.Errorf("a level under south's floor: %d %+v", st, f)
	}
	sat := "y ~ x + z + factor(stage) + w1 + w2 + w3 + w4 + w5 + w6 + w7 + w8 + w9 + w10 + w11 + w12"
	if st, f := analyze(map[string]any{"type": "lm", "table": "clinical", "formula": sat, "request": request}); st != 200 ||
		!strings.HasPrefix(f.Refused["east"], "saturated") || f.N != 700 {
		t.Errorf("a model saturated at east: %d %+v", st, f)
	}
	// A view-only permit and a permit of another dataset are refused.
	viewReq, _ := grant("View only", []string{"view"}, all)
	if st, f := analyze(map[string]any{"type": "lm", "table": "clinical", "formula": "y ~ x", "request": viewReq}); st != 422 ||
		!strings.HasPrefix(f.Refused["north"], "permit") || !strings.HasPrefix(f.Refused["east"], "permit") {
		t.Errorf("view-only permits: %d %+v", st, f)
	}
	_, otherPermits := grant("Other dataset", []string{"process"}, [][2]string{{"north", "imaging"}})
	if st, f := analyze(map[string]any{"type": "lm", "table": "clinical", "formula": "y ~ x", "permits": []string{otherPermits[0].ID}}); st != 422 ||
		!strings.Contains(f.Refused["north"], "not available under this permit") {
		t.Errorf("a permit of another dataset: %d %+v", st, f)
	}

	// Five rounds of FedAvg of the numpy example, under secure
	// aggregation and in the clear: the same weights.
	w0, err := compute.EncodeWeights([]fl.Tensor{{Name: "weight", DType: "F64", Shape: []int64{2}}, {Name: "bias", DType: "F64", Shape: []int64{1}}}, []float64{0, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]any{"table": "clinical", "target": "outcome", "features": []string{"x", "z"}, "epochs": 5, "lr": 0.3, "seed": 1}
	type runOut struct {
		State  string `json:"state"`
		Error  string `json:"error"`
		Result struct {
			Rounds []compute.Round `json:"rounds"`
		} `json:"result"`
	}
	learn := func(secure bool, rounds int, onRound func(int)) (runOut, []float64) {
		t.Helper()
		var started struct{ ID string }
		if st, b := api(rosa, "POST", "/api/v1/learning", map[string]any{"name": fmt.Sprintf("logreg secure=%v", secure), "program": logreg, "weights": w0,
			"rounds": rounds, "algorithm": "fedavg", "params": params, "secure": secure, "request": request}, &started); st != 202 {
			t.Fatalf("learning: %d %s", st, b)
		}
		var run runOut
		seen := 0
		if err := testutil.Poll(90*time.Second, func() error {
			run = runOut{}
			api(rosa, "GET", "/api/v1/learning/"+started.ID, nil, &run)
			for ; seen < len(run.Result.Rounds); seen++ {
				if onRound != nil {
					onRound(seen + 1)
				}
			}
			if run.State == "running" {
				return fmt.Errorf("round %d of %d", len(run.Result.Rounds), rounds)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		resp, err := http.NewRequest("GET", srv.URL+"/api/v1/learning/"+started.ID+"/weights", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Header.Set("Authorization", "Bearer "+rosa)
		r, err := http.DefaultClient.Do(resp)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		ts, err := fl.ReadSafetensors(r.Body)
		if err != nil {
			t.Fatalf("weights: %v", err)
		}
		v, err := compute.Flatten(ts)
		if err != nil {
			t.Fatal(err)
		}
		// The page of the run shows its rounds and the loss chart.
		if st, page := api(rosa, "GET", "/learning/"+started.ID, nil, nil); st != 200 || !strings.Contains(page, `id="loss-chart"`) ||
			!strings.Contains(page, fmt.Sprintf(`data-round="%d"`, rounds)) {
			t.Errorf("the run's page: %d %.300s", st, page)
		}
		return run, v
	}
	sec, ws := learn(true, 5, nil)
	if sec.State != "succeeded" || len(sec.Result.Rounds) != 5 {
		t.Fatalf("secure run: %+v", sec)
	}
	plain, wp := learn(false, 5, nil)
	if plain.State != "succeeded" {
		t.Fatalf("plain run: %+v", plain)
	}
	for i := range ws {
		if math.Abs(ws[i]-wp[i]) > 1e-9*math.Max(1, math.Abs(wp[i])) || ws[i] == 0 {
			t.Errorf("weight %d: secure %.17g, plain %.17g", i, ws[i], wp[i])
		}
	}
	for _, rd := range sec.Result.Rounds {
		if len(rd.Participants) != 3 || rd.Samples != 748 || rd.Loss == nil {
			t.Errorf("secure round %+v", rd)
		}
	}
	if l := sec.Result.Rounds; *l[4].Loss >= *l[0].Loss {
		t.Errorf("the loss did not fall: %g then %g", *l[0].Loss, *l[4].Loss)
	}
	t.Logf("weights after five rounds: secure %v, plain %v (after %s)", ws, wp, time.Since(t0).Round(time.Millisecond))

	// A validation of the trained model: merged metrics equal the pooled
	// computation on the plan the nodes' floors left.
	wt, _ := compute.EncodeWeights([]fl.Tensor{{Name: "weight", DType: "F64", Shape: []int64{2}}, {Name: "bias", DType: "F64", Shape: []int64{1}}}, ws)
	var vr struct {
		N           float64           `json:"n"`
		AUC         float64           `json:"auc"`
		Sensitivity []float64         `json:"sensitivity"`
		Specificity []float64         `json:"specificity"`
		Plan        fl.Plan           `json:"plan"`
		RowsPerNode map[string]int    `json:"rows_per_node"`
		Refused     map[string]string `json:"refused"`
		Error       string            `json:"error"`
	}
	// At north and south: east's 48 rows would merge the grid's
	// intervals down to one under its floor of ten positives and
	// negatives in each.
	var valPermits []string
	for _, p := range permits {
		if p.Node != "east" {
			valPermits = append(valPermits, p.ID)
		}
	}
	if st, b := api(rosa, "POST", "/api/v1/validations", map[string]any{"program": validate, "weights": wt, "params": params,
		"grid": []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}, "bins": 5, "permits": valPermits}, &vr); st != 200 {
		t.Fatalf("validation: %d %s", st, b)
	}
	if len(vr.Plan.Grid) < 3 || vr.AUC < 0.6 {
		t.Errorf("validation on %d thresholds, AUC %g", len(vr.Plan.Grid), vr.AUC)
	}
	var scores, labels []float64
	north, south := sites[0].csv, sites[1].csv
	for _, line := range strings.Split(strings.TrimSpace(north+south[strings.IndexByte(south, '\n')+1:]), "\n")[1:] {
		f := strings.Split(line, ",")
		x, _ := strconv.ParseFloat(f[1], 64)
		z, _ := strconv.ParseFloat(f[2], 64)
		o, _ := strconv.ParseFloat(f[4], 64)
		e := x*ws[0] + z*ws[1] + ws[2]
		scores = append(scores, 0.5*(1+math.Tanh(0.5*e)))
		labels = append(labels, o)
	}
	part, err := fl.NodeValidationPlan(scores, labels, vr.Plan, 1)
	if err != nil {
		t.Fatalf("pooled validation on %+v: %v", vr.Plan, err)
	}
	want, err := fl.Merge(part)
	if err != nil {
		t.Fatal(err)
	}
	if vr.N != 700 || math.Abs(vr.AUC-want.AUC) > 1e-12 || len(vr.Sensitivity) != len(want.Sensitivity) {
		t.Errorf("validation n %g auc %.15g, pooled n %g auc %.15g", vr.N, vr.AUC, want.N, want.AUC)
	}
	for i := range want.Sensitivity {
		if math.Abs(vr.Sensitivity[i]-want.Sensitivity[i]) > 1e-12 || math.Abs(vr.Specificity[i]-want.Specificity[i]) > 1e-12 {
			t.Errorf("threshold %g: %g %g, pooled %g %g", want.Grid[i], vr.Sensitivity[i], vr.Specificity[i], want.Sensitivity[i], want.Specificity[i])
		}
	}
	t.Logf("validation: AUC %.4f on %d thresholds, equal to the pooled computation (after %s)", vr.AUC, len(vr.Plan.Grid), time.Since(t0).Round(time.Millisecond))

	// A node stopped in the middle of a run drops; the rounds go on.
	stopped, _ := learn(true, 2, func(round int) {
		if round == 1 {
			sites[2].link.Close()
		}
	})
	if stopped.State != "succeeded" || len(stopped.Result.Rounds) != 2 {
		t.Fatalf("run with a node stopped: %+v", stopped)
	}
	last := stopped.Result.Rounds[1]
	if len(last.Participants) != 2 || last.Dropped["east"] == "" || last.Samples != 700 {
		t.Errorf("the last round after east stopped: %+v", last)
	}

	// A revoked permit is refused at its node.
	var northPermit string
	for _, p := range permits {
		if p.Node == "north" {
			northPermit = p.ID
		}
	}
	if st, b := api(rosa, "POST", "/api/v1/permits/"+northPermit+"/revoke", nil, nil); st != 200 {
		t.Fatalf("revoke: %d %s", st, b)
	}
	if err := testutil.Poll(10*time.Second, func() error {
		_, f := analyze(map[string]any{"type": "lm", "table": "clinical", "formula": "y ~ x", "request": request})
		if !strings.HasPrefix(f.Refused["north"], "permit") {
			return fmt.Errorf("north: %q", f.Refused["north"])
		}
		return nil
	}); err != nil {
		t.Errorf("a revoked permit: %v", err)
	}
	t.Logf("the end-to-end run took %s", time.Since(t0).Round(time.Millisecond))
}
