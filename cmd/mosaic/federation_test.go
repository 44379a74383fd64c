//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/synth"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
)

// fedProc is a running hub or node process.
type fedProc struct {
	cmd    *exec.Cmd
	url    string
	log    string
	exited chan struct{}
}

// fedStart runs a serve command and waits for its banner line, which
// starts with prefix and carries the URL as its next word.
func fedStart(t *testing.T, bin, logPath, prefix string, args ...string) *fedProc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = crashEnv()
	cmd.Stderr = logf
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &fedProc{cmd: cmd, log: logPath, exited: make(chan struct{})}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				select {
				case urlc <- strings.Fields(rest)[0]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case u := <-urlc:
		p.url = strings.TrimSuffix(u, "/")
	case <-p.exited:
		b, _ := os.ReadFile(logPath)
		t.Fatalf("%s exited early:\n%s", strings.Join(args, " "), crashTail(b, 20))
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start", strings.Join(args, " "))
	}
	return p
}

func (p *fedProc) kill() {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *fedProc) stop(t *testing.T) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("process did not stop on SIGTERM")
	}
}

// fedSite is one node of the test federation and its cohort's truth.
type fedSite struct {
	name, dataset string
	cancers       []string
	patients      int
	seed          uint64
	dir, data     string
	rows          []map[string]string // clinical.csv
	proc          *fedProc
}

func (s *fedSite) count(match func(map[string]string) bool) int {
	n := 0
	for _, r := range s.rows {
		if match(r) {
			n++
		}
	}
	return n
}

// TestFederation runs a hub and three node processes on a real NATS link:
// enrolment, ingest, catalogue, searches whose expected counts come from
// the cohorts' clinical tables (exact above the floor, empty below), a
// node stopped mid-way (reported, and not waited for) and
// restarted (it rejoins), and verified audit logs at both ends.
func TestFederation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a hub and three nodes as processes; skipped with -short")
	}
	bin := crashBinary(t)
	root := t.TempDir()
	sites := []*fedSite{
		{name: "north", dataset: "thorax", cancers: []string{"lung", "breast"}, patients: 24, seed: 31},
		{name: "south", dataset: "pelvis", cancers: []string{"prostate", "colorectal"}, patients: 18, seed: 32},
		{name: "east", dataset: "abdomen", cancers: []string{"liver", "pancreas"}, patients: 12, seed: 33},
	}
	hubData := filepath.Join(root, "hub")
	crashCLI(t, bin, "hub", "init", "--data", hubData)
	hubProc := fedStart(t, bin, filepath.Join(root, "hub.log"), "mosaic hub listening on ", "hub", "serve", "--data", hubData, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0")
	cmd := exec.Command(bin, "hub", "user", "add", "--data", hubData, "alice", "--admin", "--password-stdin")
	cmd.Env, cmd.Stdin = crashEnv(), strings.NewReader("correct horse battery staple\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v %s", err, out)
	}
	tok := strings.TrimSpace(crashCLI(t, bin, "hub", "token", "create", "--data", hubData, "--user", "alice"))

	for _, s := range sites {
		s.dir = filepath.Join(root, "cohort-"+s.name)
		s.data = filepath.Join(root, "node-"+s.name)
		if _, err := synth.Generate(context.Background(), synth.Options{Dir: s.dir, Patients: s.patients, Seed: s.seed, CancerTypes: s.cancers}); err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(filepath.Join(s.dir, "clinical.csv"))
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs[1:] {
			m := map[string]string{}
			for i, h := range recs[0] {
				m[h] = r[i]
			}
			s.rows = append(s.rows, m)
		}
		common := []string{"--data", s.data, "--policy", "longitudinal"}
		// Exact answers, so that every figure of the pipeline can be
		// checked against the cohort: no noise, no overlap control, no
		// budget cap. The attack harness (internal/attack) measures the
		// defaults.
		if err := os.MkdirAll(s.data, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.data, "node.json"), []byte(`{"search_noise": 0, "search_overlap": false, "search_daily_epsilon": -1, "search_total_epsilon": -1}`), 0o600); err != nil {
			t.Fatal(err)
		}
		adm := []string{"--data", s.data}
		// The first command makes the node (--create): the directory
		// holds only node.json, no site key yet.
		crashCLI(t, bin, append([]string{"node", "dataset", "create", "--create", "--id", s.dataset, "--title", s.name + " cohort", "--tier", "3",
			"--description", "Synthetic patients.", "--licence", "CC-BY-4.0", "--contact", "data@" + s.name + ".example"}, adm...)...)
		crashCLI(t, bin, append([]string{"node", "ingest", "-q", "--dataset", s.dataset, filepath.Join(s.dir, "dicom")}, common...)...)
		crashCLI(t, bin, append([]string{"node", "import-clinical", "--dataset", s.dataset, filepath.Join(s.dir, "clinical.csv")}, common...)...)
		etok := strings.TrimSpace(crashCLI(t, bin, "hub", "node", "add", "--data", hubData, s.name, "--title", strings.ToUpper(s.name[:1])+s.name[1:]+" Hospital"))
		crashCLI(t, bin, append([]string{"node", "enroll", "--hub", hubProc.url, "--token", etok}, adm...)...)
		// The token works once.
		if out, err := exec.Command(bin, append([]string{"node", "enroll", "--hub", hubProc.url, "--token", etok}, adm...)...).CombinedOutput(); err == nil {
			t.Errorf("a used enrolment token worked again: %s", out)
		}
	}
	startNode := func(s *fedSite) {
		s.proc = fedStart(t, bin, filepath.Join(root, s.name+".log"), "mosaic node listening on ", "node", "serve", "--data", s.data, "--listen", "127.0.0.1:0", "--policy", "longitudinal")
	}
	for _, s := range sites {
		startNode(s)
	}

	get := func(path, token string) (int, []byte) {
		req, _ := http.NewRequest("GET", hubProc.url+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// All nodes online, their datasets in the public catalogue.
	testutil.Eventually(t, 30*time.Second, func() error {
		_, b := get("/api/v1/nodes", tok)
		var nodes struct{ Nodes []struct{ ID, Status string } }
		json.Unmarshal(b, &nodes)
		online := 0
		for _, n := range nodes.Nodes {
			if n.Status == "online" {
				online++
			}
		}
		_, b = get("/api/v1/datasets", "")
		var cat struct{ Total int }
		json.Unmarshal(b, &cat)
		if online != 3 || cat.Total != 3 {
			return fmt.Errorf("%d nodes online and %d datasets in the catalogue, want 3 and 3", online, cat.Total)
		}
		return nil
	})
	code, b := get("/api/v1/datasets", "")
	var cat struct {
		Datasets []struct {
			Node     string
			ID       string
			Subjects int
		}
	}
	json.Unmarshal(b, &cat)
	for _, d := range cat.Datasets {
		for _, s := range sites {
			if s.name == d.Node && (d.ID != s.dataset || d.Subjects != s.patients) {
				t.Errorf("catalogue %s/%s: %d subjects, want %s with %d", d.Node, d.ID, d.Subjects, s.dataset, s.patients)
			}
		}
	}
	if code != 200 {
		t.Fatalf("catalogue: %d", code)
	}

	type result struct {
		Results []struct {
			Node, Dataset string
			Subjects      int `json:"subjects_count"`
			Studies       int `json:"studies_count"`
			Budget        *struct {
				Charged float64
			}
		}
		Nodes []struct{ Node, Status string }
	}
	search := func(ast string) (result, time.Duration) {
		t.Helper()
		t0 := time.Now()
		req, _ := http.NewRequest("POST", hubProc.url+"/api/v1/search", strings.NewReader(ast))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("search %s: %d %s", ast, resp.StatusCode, body)
		}
		var r result
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		return r, time.Since(t0)
	}
	floor := 10
	// The floor and the complement control (docs/disclosure.md): a set
	// under the floor is empty; one that leaves fewer than the floor of
	// the dataset out gets the whole dataset's count.
	expect := func(n, all int) int {
		switch {
		case n < floor:
			return 0
		case all-n < floor:
			return all
		}
		return n
	}
	leaf := func(key, typ, value string) string {
		return fmt.Sprintf(`{"key":%q,"type":%q,"system":"","value":%s}`, key, typ, value)
	}
	and := func(children ...string) string {
		return `{"operand":"AND","children":[` + strings.Join(children, ",") + `]}`
	}
	female := leaf("SNOMEDCT263495000", "EQUALS", `"SNOMEDCT248152002"`)
	ageRange := leaf("SNOMEDCT423493009", "BETWEEN", `{"min":55,"max":75}`)
	cases := []struct {
		name  string
		ast   string
		match func(map[string]string) bool
	}{
		{"everyone", and(), func(map[string]string) bool { return true }},
		{"female", and(female), func(r map[string]string) bool { return r["birth_sex"] == "female" }},
		{"not female", `{"operand":"NOT","children":[` + female + `]}`, func(r map[string]string) bool { return r["birth_sex"] != "female" }},
		{"age 55-75", and(ageRange), func(r map[string]string) bool { a, _ := strconv.Atoi(r["age_at_diagnosis"]); return a >= 55 && a <= 75 }},
		{"female and age", and(female, ageRange), func(r map[string]string) bool {
			a, _ := strconv.Atoi(r["age_at_diagnosis"])
			return r["birth_sex"] == "female" && a >= 55 && a <= 75
		}},
		{"lung or prostate", `{"operand":"OR","children":[` + leaf("SNOMEDCT439401001", "EQUALS", `"SNOMEDCT363358000"`) + `,` + leaf("SNOMEDCT439401001", "EQUALS", `"SNOMEDCT399068003"`) + `]}`,
			func(r map[string]string) bool { return r["cancer_type"] == "lung" || r["cancer_type"] == "prostate" }},
		{"MR", and(leaf("RID10311", "EQUALS", `"RID10312"`)), func(r map[string]string) bool { return strings.Contains(r["modalities"], "MR") }},
	}
	sawFloor, sawComplement := false, false
	for _, c := range cases {
		r, took := search(c.ast)
		if took > 5*time.Second {
			t.Errorf("%s: took %s", c.name, took)
		}
		got := map[string]int{}
		for _, e := range r.Results {
			got[e.Node] = e.Subjects
			if e.Budget == nil || e.Budget.Charged != 1 {
				t.Errorf("%s at %s: budget %+v, want a charge of 1 (noise off)", c.name, e.Node, e.Budget)
			}
		}
		for _, s := range sites {
			raw := s.count(c.match)
			if raw > 0 && raw < floor {
				sawFloor = true
			}
			if raw >= floor && s.patients-raw > 0 && s.patients-raw < floor {
				sawComplement = true
			}
			if want := expect(raw, s.patients); got[s.name] != want {
				t.Errorf("%s at %s: %d subjects, want %d (raw %d of %d, floor %d)", c.name, s.name, got[s.name], want, raw, s.patients, floor)
			}
		}
		for _, n := range r.Nodes {
			if n.Status != "answered" {
				t.Errorf("%s: node %s %s", c.name, n.Node, n.Status)
			}
		}
	}
	if !sawFloor {
		t.Error("no query hit a count under the floor: the cohorts do not test disclosure control")
	}
	if !sawComplement {
		t.Error("no query left fewer than the floor out: the cohorts do not test the complement control")
	}

	// A node stopped cleanly tells the hub it leaves: the search right
	// after does not wait for it (the deadline is 5 s) and reports it
	// unreachable.
	sites[2].proc.stop(t)
	r, took := search(and(female))
	t.Logf("search right after a node stopped: %s", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("search right after a node stopped took %s: it waited for the node", took)
	}
	for _, n := range r.Nodes {
		if n.Node == "east" && n.Status != "unreachable" {
			t.Errorf("stopped node reported as %s, want unreachable", n.Status)
		}
	}
	// Restarted, it rejoins.
	startNode(sites[2])
	testutil.Eventually(t, 30*time.Second, func() error {
		r, _ := search(and())
		for _, n := range r.Nodes {
			if n.Node == "east" {
				if n.Status != "answered" {
					return fmt.Errorf("the restarted node east: %s", n.Status)
				}
				return nil
			}
		}
		return errors.New("the restarted node east is not among the nodes searched")
	})
	// Bad input is refused, and the hub keeps answering.
	for _, bad := range []string{"", "{", `{"key":"NOPE","type":"EQUALS","value":"x"}`, strings.Repeat(`{"operand":"NOT","children":[`, 40) + female + strings.Repeat("]}", 40)} {
		req, _ := http.NewRequest("POST", hubProc.url+"/api/v1/search", strings.NewReader(bad))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("bad query %.40q: %d", bad, resp.StatusCode)
		}
	}
	if c, _ := get("/api/v1/nodes", ""); c != 401 {
		t.Errorf("nodes without login: %d", c)
	}
	// Removing a node cuts it off.
	crashCLI(t, bin, "hub", "node", "remove", "--data", hubData, "south")
	testutil.Eventually(t, 10*time.Second, func() error {
		r, _ := search(and())
		for _, n := range r.Nodes {
			if n.Node == "south" {
				return errors.New("the removed node south is still searched")
			}
		}
		for _, e := range r.Results {
			if e.Node == "south" {
				return errors.New("the removed node south still has results")
			}
		}
		return nil
	})
	// Both ends' audit logs verify.
	for _, s := range sites {
		s.proc.stop(t)
	}
	hubProc.stop(t)
	// Every JSON log record of the hub and the nodes names each key once.
	for _, name := range []string{"hub", "north", "south", "east"} {
		lf, err := os.Open(filepath.Join(root, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		n, err := testutil.JSONLogKeysOnce(lf)
		lf.Close()
		if err != nil || n == 0 {
			t.Errorf("%s.log: %d records checked: %v", name, n, err)
		}
	}
	out := crashCLI(t, bin, "audit", "verify", filepath.Join(hubData, "audit.log"), filepath.Join(sites[0].data, "audit.log"))
	if strings.Count(out, ": ok") != 2 {
		t.Errorf("audit verify: %s", out)
	}
	hubLog, _ := os.ReadFile(filepath.Join(hubData, "audit.log"))
	if n := bytes.Count(hubLog, []byte(`"action":"search"`)); n < len(cases) {
		t.Errorf("hub audit log holds %d searches", n)
	}
	// Each node knows the researcher by a pseudonym of its own: never the
	// user's name, and not the same at two nodes.
	seen := map[string]string{}
	for _, s := range sites[:2] {
		b, _ := os.ReadFile(filepath.Join(s.data, "audit.log"))
		if bytes.Contains(b, []byte("alice")) {
			t.Errorf("%s's audit log names the user", s.name)
		}
		var pseudonyms []string
		for _, line := range bytes.Split(b, []byte("\n")) {
			var rec struct {
				Action string
				Detail struct{ Researcher string }
			}
			// A node removed from the hub gets no pseudonym ("anonymous")
			// for the searches it still sees before it is cut off.
			if json.Unmarshal(line, &rec) == nil && rec.Action == "search" && rec.Detail.Researcher != "anonymous" {
				pseudonyms = append(pseudonyms, rec.Detail.Researcher)
			}
		}
		if len(pseudonyms) == 0 || !strings.HasPrefix(pseudonyms[0], "r-") {
			t.Fatalf("%s's searches: researchers %q", s.name, pseudonyms)
		}
		for _, p := range pseudonyms {
			if p != pseudonyms[0] {
				t.Errorf("%s knows one user by two pseudonyms: %q", s.name, pseudonyms)
			}
			if other, ok := seen[p]; ok && other != s.name {
				t.Errorf("%s and %s know the user by the same pseudonym", other, s.name)
			}
			seen[p] = s.name
		}
	}
}
