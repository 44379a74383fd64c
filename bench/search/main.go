// Command search measures federated search through a Mosaic hub over many
// nodes. It is a benchmark tool, not part of the mosaic binary;
// bench/search.sh starts a hub and its nodes as processes and runs it.
//
//	search load  -data DIR -dataset ID [-patients 10000] [-seed 1] [-cpuprofile FILE]
//	search query -hub URL -token T [-n 1000] [-c 1] [-warmup 0] [-nodes N] [-seed 7]
//	search local -data DIR [-n 1000] [-c 1] [-warmup 20] [-seed 7] [-cpuprofile FILE]
//
// load fills a node's data directory (the index DIR/index.db, which
// `mosaic node dataset create` made; the dataset is created with Tier 3
// when it is missing) with -patients synthetic cancer patients, through
// index.PutInstances and index.PutClinical, the paths ingest and
// `mosaic node import-clinical` take, in large batches (one transaction
// per batch). The patients are internal/cohort's: cancer patients of six
// types with their stages, treatments and one to three imaging studies on
// the node's fleet of scanners (see that package). The loader uses one
// connection with a large page cache (the rows written are the same as
// with the node's settings) and refuses a dataset that already holds
// patients.
//
// query sends -n federated searches (POST HUB/api/v1/search with
// Authorization: Bearer TOKEN, the bare Samply Lens AST as body) from -c
// concurrent clients, after -warmup searches that are not counted. The
// searches are an even, shuffled mix of twelve shapes:
//
//	empty         no criterion (what Lens sends: an OR without children)
//	gender        gender EQUALS, NOT_EQUALS or IN
//	age           age at diagnosis BETWEEN
//	diagnosis     diagnosis EQUALS a SNOMED CT concept or an ICD-10 code
//	year          year of diagnosis BETWEEN
//	modality      imaging modality EQUALS (RadLex or DICOM) or IN
//	body-part     body part EQUALS (SNOMED CT)
//	manufacturer  manufacturer EQUALS (NCIt, NeuroLex) or CONTAINS
//	and           AND of 2 to 4 of the criteria above, on different keys
//	or-diag       OR of 2 or 3 diagnoses
//	not           NOT of one criterion
//	nested        AND and OR nested, sometimes with a NOT
//
// The time of a search runs from sending the request to having read the
// whole answer. It prints, per shape and overall, the 50th, 95th and 99th
// percentile and the maximum of that time in milliseconds, the 95th
// percentile of the hub's own took_ms, the nodes that answered (fewest per
// search), the searches in which some node was late, unreachable or in
// error, and the mean number of subjects per search (summed over the
// datasets). Every node must answer every search: -nodes N also requires
// exactly N nodes in each answer. The exit status is 1 when a request
// failed or a node did not answer, after the report.
//
// local runs the same mix in this process against index.FederatedCounts
// on one node's index, without NATS, HTTP or disclosure control, to tell
// the index's share of the time from the federation's. It prints the same
// table (without the hub's columns) and this process's CPU time per
// search; -cpuprofile writes a CPU profile of the timed part for go tool
// pprof.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/cohort"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/lens"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "load":
		err = load(os.Args[2:])
	case "query":
		err = query(os.Args[2:])
	case "local":
		err = local(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "search:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: search load|query|local [flags] (search MODE -h lists the flags)")
	os.Exit(2)
}

// ---- load ----

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	data := fs.String("data", "", "the node's data directory; its index is DATA/index.db (required)")
	dataset := fs.String("dataset", "", "dataset id; created with Tier 3 when missing (required)")
	patients := fs.Int("patients", 10000, "patients to add")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same cohort")
	batch := fs.Int("batch", 20000, "instances per index transaction (cut at patient boundaries)")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the load to FILE")
	fs.Parse(args)
	if *data == "" || *dataset == "" || *patients < 1 {
		return errors.New("load: -data and -dataset are required, -patients must be positive")
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	t0 := time.Now()
	st, err := index.Open(ctx, filepath.Join(*data, "index.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	// One connection with a page cache that holds the whole batch, so
	// that a transaction's pages are not spilled to the WAL before its
	// commit (what the node's small default cache does with large
	// batches). This speeds the load only; the rows are the same.
	st.DB().SetMaxOpenConns(1)
	if _, err := st.DB().Exec(ctx, `PRAGMA cache_size = -262144`); err != nil {
		return err
	}
	d, err := st.Dataset(ctx, *dataset)
	if errors.Is(err, index.ErrNotFound) {
		d, err = st.CreateDataset(ctx, index.Dataset{ID: *dataset, Title: "Synthetic cancer imaging cohort " + *dataset,
			Description: "Synthetic patients for the federated search benchmark (bench/search.sh).", Tier: 3})
	}
	if err != nil {
		return err
	}
	if d.Tier < 2 {
		return fmt.Errorf("load: dataset %s is Tier %d: federated search only counts Tier 2 and 3 datasets", d.ID, d.Tier)
	}
	if c, err := st.DatasetCounts(ctx, d.ID); err != nil {
		return err
	} else if c.Patients > 0 {
		return fmt.Errorf("load: dataset %s already holds %d imaged patients", d.ID, c.Patients)
	}

	ls, err := cohort.Load(ctx, st, d.ID, cohort.New(*seed), *patients, *batch)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	fi, _ := os.Stat(filepath.Join(*data, "index.db"))
	var size int64
	if fi != nil {
		size = fi.Size()
	}
	fmt.Printf("load %s/%s: %d patients (%d with clinical rows, %d imaged), %d studies, %d series and instances in %.1f s (index %.1f s, clinical %.1f s); index.db %.1f MB\n",
		*data, d.ID, ls.Patients, ls.Clinical, ls.Imaged, ls.Studies, ls.Instances, time.Since(t0).Seconds(), ls.Index.Seconds(), (ls.Total - ls.Index).Seconds(), float64(size)/1e6)
	return nil
}

// ---- the query mix ----

func pick[T any](r *mrand.Rand, v []T) T { return v[r.IntN(len(v))] }

// shapes are the kinds of query, in report order.
var shapes = []string{"empty", "gender", "age", "diagnosis", "year", "modality", "body-part", "manufacturer", "and", "or-diag", "not", "nested"}

// spec is one query of the mix.
type spec struct {
	shape string
	body  []byte
}

func leaf(key, typ, system string, value any) map[string]any {
	return map[string]any{"key": key, "type": typ, "system": system, "value": value}
}

func op(operand string, children ...map[string]any) map[string]any {
	if children == nil {
		children = []map[string]any{}
	}
	return map[string]any{"operand": operand, "children": children}
}

// Catalogue keys and values (internal/lens).
var (
	keyGender   = lens.Gender.Key()
	keyAge      = lens.AgeAtDiagnosis.Key()
	keyDiag     = lens.Diagnosis.Key()
	keyYear     = lens.YearOfDiagnosis.Key()
	keyModality = lens.Modality.Key()
	keyBodyPart = lens.BodyPart.Key()
	keyManuf    = lens.Manufacturer.Key()

	genders       = []string{"SNOMEDCT248152002", "SNOMEDCT248153007"} // female, male
	diagnoses     = []string{"SNOMEDCT363406005", "SNOMEDCT254837009", "SNOMEDCT363358000", "SNOMEDCT363484005", "SNOMEDCT399068003", "SNOMEDCT93870000", "SNOMEDCT363418001"}
	icdCodes      = []string{"C34", "C34.1", "C50", "C50.4", "C61", "C18", "C20", "C22", "C25.0"}
	modalities    = []string{"RID10312", "RID10321", "RID10337", "MR", "CT", "MG"}
	bodyParts     = []string{"SNOMEDCT76752008", "SNOMEDCT71854001", "SNOMEDCT39607008", "SNOMEDCT12921003", "SNOMEDCT41216001", "SNOMEDCT51185008", "SNOMEDCT818981001", "SNOMEDCT38266002"}
	manufacturers = []string{"C200140", "birnlex_3066", "birnlex_12833", "birnlex_3065", "birnlex_3067"}
)

// leafKinds are the single criteria; and, not and nested draw from them.
var leafKinds = []string{"gender", "age", "diagnosis", "year", "modality", "body-part", "manufacturer"}

func randLeaf(r *mrand.Rand, kind string) map[string]any {
	switch kind {
	case "gender":
		switch r.IntN(6) {
		case 0:
			return leaf(keyGender, "NOT_EQUALS", "", pick(r, genders))
		case 1:
			return leaf(keyGender, "IN", "", genders)
		}
		return leaf(keyGender, "EQUALS", "", pick(r, genders))
	case "age":
		lo := 30 + r.IntN(45)
		return leaf(keyAge, "BETWEEN", "", map[string]int{"min": lo, "max": lo + 5 + r.IntN(25)})
	case "diagnosis":
		if r.IntN(4) == 0 {
			return leaf(keyDiag, "EQUALS", "http://hl7.org/fhir/sid/icd-10", pick(r, icdCodes))
		}
		return leaf(keyDiag, "EQUALS", "", pick(r, diagnoses))
	case "year":
		lo := 2015 + r.IntN(10)
		return leaf(keyYear, "BETWEEN", "", map[string]int{"min": lo, "max": min(2024, lo+r.IntN(5))})
	case "modality":
		if r.IntN(5) == 0 {
			a := r.Perm(len(modalities))
			return leaf(keyModality, "IN", "", []string{modalities[a[0]], modalities[a[1]]})
		}
		return leaf(keyModality, "EQUALS", "", pick(r, modalities))
	case "body-part":
		return leaf(keyBodyPart, "EQUALS", "", pick(r, bodyParts))
	case "manufacturer":
		if r.IntN(5) == 0 {
			return leaf(keyManuf, "CONTAINS", "", pick(r, []string{"hologic", "medical", "canon"}))
		}
		return leaf(keyManuf, "EQUALS", "", pick(r, manufacturers))
	}
	panic("unknown leaf kind " + kind)
}

// randLeaves draws n criteria on different keys.
func randLeaves(r *mrand.Rand, n int) []map[string]any {
	var out []map[string]any
	for _, i := range r.Perm(len(leafKinds))[:n] {
		out = append(out, randLeaf(r, leafKinds[i]))
	}
	return out
}

func randQuery(r *mrand.Rand, shape string) map[string]any {
	switch shape {
	case "empty":
		if r.IntN(2) == 0 {
			return op("OR")
		}
		return op("AND")
	case "and":
		return op("AND", randLeaves(r, 2+r.IntN(3))...)
	case "or-diag":
		p := r.Perm(len(diagnoses))
		var kids []map[string]any
		for _, i := range p[:2+r.IntN(2)] {
			kids = append(kids, leaf(keyDiag, "EQUALS", "", diagnoses[i]))
		}
		return op("OR", kids...)
	case "not":
		return op("NOT", randLeaf(r, pick(r, leafKinds)))
	case "nested":
		ls := randLeaves(r, 4)
		switch r.IntN(3) {
		case 0: // a AND (b OR c)
			return op("AND", ls[0], op("OR", ls[1], ls[2]))
		case 1: // (a AND b) OR (c AND d)
			return op("OR", op("AND", ls[0], ls[1]), op("AND", ls[2], ls[3]))
		default: // a AND (b OR c) AND NOT d
			return op("AND", ls[0], op("OR", ls[1], ls[2]), op("NOT", ls[3]))
		}
	}
	// A single criterion, as Lens sends it: under an AND.
	return op("AND", randLeaf(r, shape))
}

// mix makes n queries, the shapes in equal numbers, shuffled.
func mix(r *mrand.Rand, n int) []spec {
	out := make([]spec, n)
	for i := range out {
		s := shapes[i%len(shapes)]
		b, _ := json.Marshal(randQuery(r, s))
		out[i] = spec{shape: s, body: b}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// result is the outcome of one search.
type result struct {
	shape    string
	d        time.Duration
	hubMS    float64 // took_ms the hub reports
	answered int     // nodes that answered
	missing  map[string]int
	subjects int
	err      error
}

// run sends the queries from c workers and returns their results in
// order, and the wall time.
func run(qs []spec, c int, do func(spec) result) ([]result, time.Duration) {
	out := make([]result, len(qs))
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(qs) {
					return
				}
				out[i] = do(qs[i])
			}
		}()
	}
	wg.Wait()
	return out, time.Since(t0)
}

type mixFlags struct {
	n, c, warmup int
	seed         uint64
}

func (f *mixFlags) register(fs *flag.FlagSet, warmup int) {
	fs.IntVar(&f.n, "n", 1000, "searches timed")
	fs.IntVar(&f.c, "c", 1, "concurrent clients")
	fs.IntVar(&f.warmup, "warmup", warmup, "searches sent first and not counted")
	fs.Uint64Var(&f.seed, "seed", 7, "random seed of the mix (the same seed gives the same searches)")
}

func (f *mixFlags) searches() ([]spec, []spec, error) {
	if f.n < 1 || f.c < 1 || f.warmup < 0 {
		return nil, nil, errors.New("-n and -c must be positive")
	}
	r := mrand.New(mrand.NewPCG(f.seed, 0x6c656e73))
	timed := mix(r, f.n)
	return mix(r, f.warmup), timed, nil
}

// searchAnswer is the part of the hub's answer the report reads.
type searchAnswer struct {
	Results []struct {
		Node     string `json:"node"`
		Dataset  string `json:"dataset"`
		Subjects int    `json:"subjects_count"`
	} `json:"results"`
	Nodes []struct {
		Node   string  `json:"node"`
		Status string  `json:"status"`
		TookMS float64 `json:"took_ms"`
		Error  string  `json:"error"`
	} `json:"nodes"`
	TookMS float64 `json:"took_ms"`
}

func query(args []string) error {
	fs := flag.NewFlagSet("query", flag.ExitOnError)
	var mf mixFlags
	mf.register(fs, 0)
	hub := fs.String("hub", "", "the hub's URL, e.g. http://127.0.0.1:8080 (required)")
	token := fs.String("token", "", "a hub user's API token (default: env MOSAIC_HUB_TOKEN)")
	nodes := fs.Int("nodes", 0, "nodes every answer must list, all answered (0: whatever the hub lists, at least one)")
	fs.Parse(args)
	warm, timed, err := mf.searches()
	if err != nil {
		return err
	}
	if *hub == "" {
		return errors.New("query: -hub is required")
	}
	if *token == "" {
		*token = os.Getenv("MOSAIC_HUB_TOKEN")
	}
	endpoint := strings.TrimSuffix(*hub, "/") + "/api/v1/search"
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: mf.c, DisableCompression: true}}
	do := func(q spec) result {
		res := result{shape: q.shape, missing: map[string]int{}}
		req, err := http.NewRequest("POST", endpoint, bytes.NewReader(q.body))
		if err != nil {
			res.err = err
			return res
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+*token)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			res.err = err
			return res
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res.d = time.Since(t0)
		if err != nil {
			res.err = err
			return res
		}
		if resp.StatusCode != http.StatusOK {
			res.err = fmt.Errorf("POST %s %s: %s: %.300s", endpoint, q.body, resp.Status, body)
			return res
		}
		var a searchAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			res.err = fmt.Errorf("POST %s %s: answer: %w", endpoint, q.body, err)
			return res
		}
		res.hubMS = a.TookMS
		for _, n := range a.Nodes {
			if n.Status == "answered" {
				res.answered++
			} else {
				res.missing[n.Status]++
			}
		}
		if len(a.Nodes) == 0 {
			res.missing["no nodes"]++
		}
		if *nodes > 0 && len(a.Nodes) != *nodes {
			res.missing[fmt.Sprintf("%d nodes listed", len(a.Nodes))]++
		}
		for _, x := range a.Results {
			res.subjects += x.Subjects
		}
		return res
	}
	fmt.Printf("POST %s: %d searches, %d client(s), %d CPUs", endpoint, len(timed), mf.c, runtime.NumCPU())
	if len(warm) > 0 {
		fmt.Printf(", after %d warm-up searches", len(warm))
	}
	fmt.Println()
	if len(warm) > 0 {
		wres, _ := run(warm, mf.c, do)
		for _, r := range wres {
			if r.err != nil {
				return fmt.Errorf("warm-up: %w", r.err)
			}
		}
	}
	res, wall := run(timed, mf.c, do)
	if !report(res, wall, true) {
		os.Exit(1)
	}
	return nil
}

// local runs the mix in this process against index.FederatedCounts.
func local(args []string) error {
	fs := flag.NewFlagSet("local", flag.ExitOnError)
	var mf mixFlags
	mf.register(fs, 20)
	data := fs.String("data", "", "a node's data directory (its index is DATA/index.db) (required)")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the timed searches to FILE")
	fs.Parse(args)
	warm, timed, err := mf.searches()
	if err != nil {
		return err
	}
	if *data == "" {
		return errors.New("local: -data is required")
	}
	ctx := context.Background()
	st, err := index.Open(ctx, filepath.Join(*data, "index.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	do := func(q spec) result {
		res := result{shape: q.shape}
		t0 := time.Now()
		lq, err := lens.Parse(q.body)
		if err != nil {
			res.err = fmt.Errorf("%s: %w", q.body, err)
			return res
		}
		stats, err := st.FederatedCounts(ctx, lq)
		res.d = time.Since(t0)
		if err != nil {
			res.err = fmt.Errorf("%s: %w", q.body, err)
			return res
		}
		res.answered = 1
		for _, s := range stats {
			res.subjects += s.Subjects
		}
		return res
	}
	fmt.Printf("index.FederatedCounts on %s: %d searches, %d client(s), %d CPUs, after %d warm-up searches (raw counts, no disclosure control)\n",
		*data, len(timed), mf.c, runtime.NumCPU(), len(warm))
	run(warm, mf.c, do)
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	cpu0 := processCPU()
	res, wall := run(timed, mf.c, do)
	cpu := processCPU() - cpu0
	if *profile != "" {
		pprof.StopCPUProfile()
	}
	ok := report(res, wall, false)
	// On a busy machine the CPU time is the steadier figure.
	fmt.Printf("CPU time of this process per search: %.1f ms\n", float64(cpu)/float64(time.Millisecond)/float64(len(res)))
	if !ok {
		os.Exit(1)
	}
	return nil
}

// processCPU is the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report prints the table; false when a search failed or a node did not
// answer.
func report(res []result, wall time.Duration, hub bool) bool {
	byShape := map[string][]result{}
	ok := true
	failures := 0
	for _, r := range res {
		if r.err != nil {
			if failures < 5 {
				fmt.Fprintln(os.Stderr, "search failed:", r.err)
			}
			failures++
			ok = false
			continue
		}
		byShape[r.shape] = append(byShape[r.shape], r)
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	if hub {
		fmt.Printf("%-13s %5s %8s %8s %8s %8s %8s %8s %8s %9s\n", "shape", "count", "p50 ms", "p95 ms", "p99 ms", "max ms", "hub p95", "answered", "missing", "subjects")
	} else {
		fmt.Printf("%-13s %5s %8s %8s %8s %8s %9s\n", "shape", "count", "p50 ms", "p95 ms", "p99 ms", "max ms", "subjects")
	}
	missing := map[string]int{}
	line := func(name string, rs []result) {
		if len(rs) == 0 {
			return
		}
		ds := make([]time.Duration, len(rs))
		hubs := make([]float64, len(rs))
		var subjects int
		fewest, short := math.MaxInt, 0
		for i, r := range rs {
			ds[i] = r.d
			hubs[i] = r.hubMS
			subjects += r.subjects
			fewest = min(fewest, r.answered)
			if len(r.missing) > 0 {
				short++
			}
			if name == "all" {
				for k, v := range r.missing {
					missing[k] += v
				}
			}
		}
		slices.Sort(ds)
		slices.Sort(hubs)
		mean := float64(subjects) / float64(len(rs))
		if hub {
			fmt.Printf("%-13s %5d %8.1f %8.1f %8.1f %8.1f %8.1f %8d %8d %9.0f\n", name, len(rs), ms(percentile(ds, 50)), ms(percentile(ds, 95)),
				ms(percentile(ds, 99)), ms(ds[len(ds)-1]), hubs[rank(len(hubs), 95)], fewest, short, mean)
		} else {
			fmt.Printf("%-13s %5d %8.1f %8.1f %8.1f %8.1f %9.0f\n", name, len(rs), ms(percentile(ds, 50)), ms(percentile(ds, 95)),
				ms(percentile(ds, 99)), ms(ds[len(ds)-1]), mean)
		}
	}
	for _, s := range shapes {
		line(s, byShape[s])
	}
	var all []result
	for _, r := range res {
		if r.err == nil {
			all = append(all, r)
		}
	}
	line("all", all)
	fmt.Printf("wall time %.1f s, %.1f searches/s; %d failed requests", wall.Seconds(), float64(len(res))/wall.Seconds(), failures)
	if hub {
		var keys []string
		for k := range missing {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, missing[k]))
			ok = false
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		fmt.Printf("; node answers not \"answered\": %s", strings.Join(parts, ", "))
	}
	fmt.Println()
	if hub {
		fmt.Println("(answered: fewest nodes answering one search; missing: searches with a node late, unreachable or in error; subjects: mean per search over all datasets)")
	}
	return ok
}

// rank is the index of the nearest-rank percentile p of n sorted values.
func rank(n int, p float64) int {
	i := int(math.Ceil(p/100*float64(n))) - 1
	return min(max(i, 0), n-1)
}

func percentile(ds []time.Duration, p float64) time.Duration { return ds[rank(len(ds), p)] }
