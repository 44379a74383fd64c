// Command relay measures DICOMweb through the hub's relay against the
// same node served directly, in one run, for bench/relay.sh (not part of
// the binary): a real node (internal/node) holding a synthetic cohort,
// its real outbound link to an embedded NATS server that confines it as
// the hub does, and the relay's client (internal/relay) behind an HTTP
// server, as the hub mounts it. The node runs as a second process of this
// program (-role node). It prints WADO-RS throughput and time to first
// byte both ways, QIDO-RS latency both ways, and the peak RSS of the hub
// side and of the node during a transfer of at least 1 GB through the
// relay.
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/node"
	"github.com/mosaic-imaging/mosaic/internal/relay"
)

func main() {
	cohort := flag.String("cohort", "", "a folder of DICOM files (mosaic synth --size bench output) to ingest")
	work := flag.String("work", "", "a work folder (the node's data directory goes below it)")
	rounds := flag.Int("rounds", 3, "WADO-RS rounds over every study, each way")
	qidos := flag.Int("qido", 300, "QIDO-RS searches each way")
	bigGB := flag.Float64("big", 1, "GB to move through the relay for the memory figures")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	role := flag.String("role", "", "node: run as the node's process (started by the benchmark itself)")
	natsURL := flag.String("nats", "", "the NATS server (role node)")
	hubKey := flag.String("hubkey", "", "the hub's public key (role node)")
	flag.Parse()
	if *role == "node" {
		if err := nodeRole(*cohort, *work, *natsURL, *hubKey); err != nil {
			fmt.Fprintln(os.Stderr, "relay node:", err)
			os.Exit(1)
		}
		return
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if *cohort == "" || *work == "" {
		fmt.Fprintln(os.Stderr, "usage: relay -cohort DIR -work DIR [-rounds N] [-qido N] [-big GB]")
		os.Exit(2)
	}
	if err := run(*cohort, *work, *rounds, *qidos, *bigGB); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}

func run(cohort, work string, rounds, qidos int, bigGB float64) error {
	// NATS with the hub's permission model for nodes: the hub side.
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Users: []*server.User{
		{Username: "hub", Password: "hub-secret"},
		{Username: "bench-node", Password: "node-secret", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: fed.NodePublishAllow("bench-node")},
			Subscribe: &server.SubjectPermission{Allow: fed.NodeSubscribeAllow("bench-node")},
			Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: 2 * time.Minute},
		}},
	}})
	if err != nil {
		return err
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("NATS did not start")
	}
	defer ns.Shutdown()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)

	// The node: a second process of this program.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, "-role", "node", "-cohort", cohort, "-work", work, "-nats", ns.ClientURL(), "-hubkey", fed.EncodeKey(pub))
	child.Stderr = os.Stderr
	toNode, err := child.StdinPipe()
	if err != nil {
		return err
	}
	out, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { toNode.Close(); child.Wait() }()
	fromNode := bufio.NewScanner(out)
	var direct, tok string
	for fromNode.Scan() {
		line := fromNode.Text()
		if rest, ok := strings.CutPrefix(line, "ready "); ok {
			direct, tok, _ = strings.Cut(rest, " ")
			break
		}
		fmt.Println(line)
	}
	if direct == "" {
		return fmt.Errorf("the node process did not start")
	}

	hc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("hub", "hub-secret"))
	if err != nil {
		return err
	}
	defer hc.Close()
	c := relay.NewClient(hc, func(t fed.Task) ([]byte, error) { return fed.Seal(priv, fed.SignerHub, t) }, relay.Options{})
	hub, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Forward(w, r, "bench-node", fed.RelayRequest{Path: strings.TrimPrefix(r.URL.Path, "/dicom-web/relay"), Researcher: "bench", Root: "http://" + r.Host + "/dicom-web/relay/"})
	}))
	if err != nil {
		return err
	}
	directRoot := direct + "/dicom-web/bench"
	relayRoot := hub + "/dicom-web/relay"

	studies, err := listStudies(directRoot, tok)
	if err != nil {
		return err
	}
	fmt.Printf("studies: %d\n\n", len(studies))

	// WADO-RS: every study, alternating the two ways, rounds times.
	type acc struct {
		bytes int64
		took  time.Duration
		ttfb  []time.Duration
	}
	res := map[string]*acc{"direct": {}, "relay": {}}
	for r := 0; r < rounds; r++ {
		for _, s := range studies {
			for _, way := range []string{"direct", "relay"} {
				if r%2 == 1 {
					way = map[string]string{"direct": "relay", "relay": "direct"}[way]
				}
				root := map[string]string{"direct": directRoot, "relay": relayRoot}[way]
				b, ttfb, took, err := fetch(root+"/studies/"+s, tok, `multipart/related; type="application/dicom"`)
				if err != nil {
					return fmt.Errorf("%s WADO-RS: %w", way, err)
				}
				a := res[way]
				a.bytes += b
				a.took += took
				a.ttfb = append(a.ttfb, ttfb)
			}
		}
	}
	d, rl := res["direct"], res["relay"]
	dt, rt := float64(d.bytes)/1e6/d.took.Seconds(), float64(rl.bytes)/1e6/rl.took.Seconds()
	fmt.Printf("WADO-RS, every study, %d rounds (%.0f MB each way)\n", rounds, float64(d.bytes)/1e6)
	fmt.Printf("| way | MB/s | first byte p50 | first byte p95 |\n|---|---|---|---|\n")
	fmt.Printf("| direct | %.0f | %s | %s |\n", dt, pct(d.ttfb, 50), pct(d.ttfb, 95))
	fmt.Printf("| relay | %.0f | %s | %s |\n", rt, pct(rl.ttfb, 50), pct(rl.ttfb, 95))
	fmt.Printf("relay/direct throughput: %.0f%%; first byte p50 difference: %s\n\n", 100*rt/dt, pct(rl.ttfb, 50)-pct(d.ttfb, 50))

	// QIDO-RS: study searches and series of a study, alternating.
	lat := map[string][]time.Duration{}
	for i := 0; i < qidos; i++ {
		q := "/studies?limit=10"
		if i%2 == 1 {
			q = "/studies/" + studies[i%len(studies)] + "/series"
		}
		for _, way := range []string{"direct", "relay"} {
			root := map[string]string{"direct": directRoot, "relay": relayRoot}[way]
			_, _, took, err := fetch(root+q, tok, "application/dicom+json")
			if err != nil {
				return fmt.Errorf("%s QIDO-RS: %w", way, err)
			}
			lat[way] = append(lat[way], took)
		}
	}
	fmt.Printf("QIDO-RS, %d searches each way\n| way | p50 | p95 |\n|---|---|---|\n", qidos)
	for _, way := range []string{"direct", "relay"} {
		fmt.Printf("| %s | %s | %s |\n", way, pct(lat[way], 50), pct(lat[way], 95))
	}
	fmt.Println()

	// Memory: at least bigGB through the relay, study after study, with
	// the heap sampled and both processes' peak RSS reset first.
	runtime.GC()
	resetHWM()
	fmt.Fprintln(toNode, "reset")
	if !fromNode.Scan() || fromNode.Text() != "reset" {
		return fmt.Errorf("the node process did not reset its peak RSS")
	}
	stop := make(chan struct{})
	var peak uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	var moved int64
	start := time.Now()
	for moved < int64(bigGB*1e9) {
		for _, s := range studies {
			b, _, _, err := fetch(relayRoot+"/studies/"+s, tok, `multipart/related; type="application/dicom"`)
			if err != nil {
				return fmt.Errorf("relay WADO-RS: %w", err)
			}
			moved += b
		}
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	fmt.Fprintln(toNode, "report")
	var nodeHWM string
	if fromNode.Scan() {
		nodeHWM = fromNode.Text()
	}
	fmt.Printf("memory: %.2f GB through the relay in %s (%.0f MB/s); peak Go heap in use at the hub side %.1f MB; peak RSS: hub side (NATS server, relay client, HTTP client) %s, node side %s\n",
		float64(moved)/1e9, took.Round(time.Millisecond), float64(moved)/1e6/took.Seconds(), float64(peak)/(1<<20), vmHWM(), nodeHWM)
	return nil
}

// nodeRole is the node's process: it ingests the cohort, serves DICOMweb
// directly, links to the NATS server as the node, answers relayed
// requests, prints "ready URL TOKEN", and then answers "reset" (peak RSS
// cleared) and "report" (peak RSS) on stdin until it closes.
func nodeRole(cohort, work, natsURL, hubKey string) error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	data := filepath.Join(work, "node")
	n, err := node.Open(ctx, node.Config{Data: data, Policy: "longitudinal", Log: log, MaxObjectBytes: 256 << 20})
	if err != nil {
		return err
	}
	defer n.Close(ctx)
	if err := ingest(ctx, n, cohort); err != nil {
		return err
	}
	tok, _, err := n.CreateToken(ctx, "bench", index.ScopeRead, "bench")
	if err != nil {
		return err
	}
	direct, err := serve(n.Handler())
	if err != nil {
		return err
	}
	fj, _ := json.Marshal(node.Federation{EnrollResponse: fed.EnrollResponse{Node: "bench-node", NATSURLs: []string{natsURL},
		NATSUser: "bench-node", NATSPassword: "node-secret", HubKey: hubKey}, Enrolled: time.Now()})
	if err := os.WriteFile(filepath.Join(data, "federation.json"), fj, 0o600); err != nil {
		return err
	}
	l, err := n.StartLink(node.LinkOptions{Heartbeat: time.Hour})
	if err != nil {
		return err
	}
	defer l.Close()
	nh := n.Handler()
	l.SetRelayResolver(func(_ context.Context, req fed.RelayRequest) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.URL.Path = "/dicom-web/bench" + r.URL.Path
			r.RequestURI = r.URL.RequestURI()
			r.Header.Set("Authorization", "Bearer "+tok)
			nh.ServeHTTP(w, r)
		}), nil
	})
	for deadline := time.Now().Add(10 * time.Second); !l.Connected(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the node's link did not come up")
		}
	}
	fmt.Printf("ready %s %s\n", direct, tok)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "reset":
			runtime.GC()
			resetHWM()
			fmt.Println("reset")
		case "report":
			fmt.Println(vmHWM())
		}
	}
	return nil
}

// resetHWM clears the process's peak RSS (Linux: clear_refs 5).
func resetHWM() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func ingest(ctx context.Context, n *node.Node, dir string) error {
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: "bench", Title: "Relay bench"}); err != nil {
		return err
	}
	var files []string
	filepath.WalkDir(filepath.Join(dir, "dicom"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if len(files) == 0 {
		return fmt.Errorf("no DICOM files below %s/dicom", dir)
	}
	start := time.Now()
	var mu sync.Mutex
	var firstErr error
	var stored int
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(files); i += 2 {
				f, err := os.Open(files[i])
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				o := n.IngestWait(ctx, "bench", files[i], f)
				f.Close()
				mu.Lock()
				if o.Status == "stored" || o.Status == "duplicate" {
					stored++
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("ingested %d of %d objects in %s\n", stored, len(files), time.Since(start).Round(time.Second))
	return nil
}

func serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

func listStudies(root, tok string) ([]string, error) {
	req, _ := http.NewRequest("GET", root+"/studies?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/dicom+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rows []map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		return nil, fmt.Errorf("QIDO-RS studies: %d: %w", resp.StatusCode, err)
	}
	var out []string
	for _, r := range rows {
		var uid struct{ Value []string }
		if json.Unmarshal(r["0020000D"], &uid) == nil && len(uid.Value) == 1 {
			out = append(out, uid.Value[0])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no studies")
	}
	return out, nil
}

// fetch GETs url and reads the whole body: bytes, time to the first
// body byte, and total time.
func fetch(url, tok, accept string) (int64, time.Duration, time.Duration, error) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", accept)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	var one [1]byte
	k, err := io.ReadFull(resp.Body, one[:])
	ttfb := time.Since(start)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return 0, 0, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	took := time.Since(start)
	if err != nil {
		return 0, 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, 0, fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return n + int64(k), ttfb, took, nil
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}

func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
