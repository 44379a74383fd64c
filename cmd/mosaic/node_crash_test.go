//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/big"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", to read the index

	"github.com/mosaic-imaging/mosaic/internal/dicom"
	"github.com/mosaic-imaging/mosaic/internal/synth"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
)

// The crash test's knobs. MOSAIC_CRASH_ROUNDS and MOSAIC_CRASH_SEED
// override the number of kills and the seed of the kill points.
const (
	crashDataset    = "crash"
	crashClients    = 3 // concurrent STOW-RS clients
	crashBatch      = 8 // objects per STOW-RS request
	crashRounds     = 5
	crashMinDelay   = 50 * time.Millisecond
	crashMaxDelay   = 1500 * time.Millisecond
	crashWADOSample = 20 // acknowledged objects of earlier rounds retrieved per round
)

// TestNodeCrash is the node's crash test: a kill -9 during a large ingest,
// repeated at random points, never loses an acknowledged object nor
// leaves a dangling row (an index row without its blob).
//
// Each round starts 'mosaic node serve' on the same data directory, has
// several STOW-RS clients post batches of a synthetic cohort in a loop,
// and SIGKILLs the server after a random delay. Every SOP Instance UID a
// fully received STOW-RS response acknowledged joins a global set. Then:
//
//   - the index as the crash left it has no row whose blob is missing,
//     differs from its key (SHA-256) or, in the files layout, was never
//     synced (still in blobs/pending/, which a kill keeps but a power
//     cut would not), and
//     holds every acknowledged object;
//   - the restarted node finds every acknowledged object by QIDO-RS and
//     serves a sample of them (all of this round's) by WADO-RS, each a
//     parsable DICOM object with the right UID and the bytes of its blob;
//   - after a clean stop, 'mosaic node gc --grace 0s' leaves exactly the
//     referenced blobs, every one intact.
func TestNodeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the node crash test in -short mode: it builds the binary and SIGKILLs nodes for some ten seconds")
	}
	rounds := crashRounds
	if s := os.Getenv("MOSAIC_CRASH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("MOSAIC_CRASH_ROUNDS=%q: want a positive integer", s)
		}
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MOSAIC_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MOSAIC_CRASH_SEED=%q: want an unsigned integer", s)
		}
		seed = n
	}
	t.Logf("kill points from seed %d (MOSAIC_CRASH_SEED=%d draws them again)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x6d6f73616963))

	t0 := time.Now()
	tmp := t.TempDir()
	bin := crashBinary(t)
	files := crashCohort(t, filepath.Join(tmp, "cohort"))
	data := filepath.Join(tmp, "node")
	crashCLI(t, bin, "node", "dataset", "create", "--create", "--data", data, "--id", crashDataset, "--title", "Crash test")
	tok := strings.TrimSpace(crashCLI(t, bin, "node", "token", "create", "--data", data, "--name", "crash-test", "--scope", "write", "--dataset", crashDataset))
	if tok == "" || strings.ContainsAny(tok, " \n") {
		t.Fatalf("token create printed %q", tok)
	}
	t.Logf("setup: binary, %d cohort files and data directory in %.1f s", len(files), time.Since(t0).Seconds())

	// Each client owns every crashClients-th file and keeps its place from
	// round to round, so the ingest goes on where the kill cut it. Past
	// the end of its share a client starts again with new UIDs (see
	// crashVariant), so every round ingests new objects; a batch the kill
	// cut is sent again first, as a PACS retries what was not
	// acknowledged.
	var shares [crashClients][][]byte
	for i, f := range files {
		shares[i%crashClients] = append(shares[i%crashClients], f)
	}
	var cursor [crashClients]int
	var retry [crashClients][][]byte

	acked := map[string]crashAck{} // every SOP Instance UID acknowledged so far
	var totalReq, totalCut int
	for round := 1; round <= rounds; round++ {
		tr := time.Now()
		logs := []string{filepath.Join(tmp, fmt.Sprintf("serve-%d.log", round)), filepath.Join(tmp, fmt.Sprintf("serve-%d-restart.log", round))}
		srv := crashStart(t, bin, data, logs[0])

		// Ingest until the kill.
		ctx, cancel := context.WithCancel(context.Background())
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: crashClients}, Timeout: time.Minute}
		var mu sync.Mutex
		st := crashStats{acked: map[string]crashAck{}, failures: map[string]int{}}
		var wg sync.WaitGroup
		for c := range crashClients {
			wg.Go(func() {
				for ctx.Err() == nil {
					batch := retry[c]
					if batch == nil {
						share := shares[c]
						for range crashBatch {
							b := share[cursor[c]%len(share)]
							if pass := cursor[c] / len(share); pass > 0 {
								b = crashVariant(t, b, pass)
							}
							batch = append(batch, b)
							cursor[c]++
						}
					}
					retry[c] = nil
					if !crashPost(t, ctx, hc, srv.base, tok, batch, round, &mu, &st) {
						retry[c] = batch
					}
				}
			})
		}
		delay := crashMinDelay + time.Duration(rng.Int64N(int64(crashMaxDelay-crashMinDelay)))
		time.Sleep(delay)
		srv.kill(t)
		cancel()
		wg.Wait()
		hc.CloseIdleConnections()
		newAcks := 0
		for uid, a := range st.acked {
			if _, ok := acked[uid]; !ok {
				acked[uid] = a
				newAcks++
			}
		}
		totalReq += st.requests
		totalCut += st.cut

		// (b) The index as the crash left it: no dangling row, and every
		// acknowledged object indexed.
		rows := crashIndexRows(t, data, filepath.Join(tmp, fmt.Sprintf("index-crash-%d", round)))
		blobs := crashBlobs(t, data)
		crashCheckRows(t, "after the kill", rows, blobs)
		crashCheckAcked(t, "in the index after the kill", acked, rows)
		blobsAfterKill := len(blobs)

		// (a) The restarted node serves every acknowledged object.
		srv = crashStart(t, bin, data, logs[1])
		found := crashQIDO(t, srv.base, tok)
		crashCheckAcked(t, "found by QIDO-RS after the restart", acked, found)
		sample := crashSample(rng, acked, round)
		crashWADO(t, srv.base, tok, sample, acked, rows)
		srv.stop(t)

		// (b) again after recovery, and QIDO-RS agrees with the index.
		rows = crashIndexRows(t, data, filepath.Join(tmp, fmt.Sprintf("index-stopped-%d", round)))
		blobs = crashBlobs(t, data)
		crashCheckRows(t, "after a restart and clean stop", rows, blobs)
		if missing, extra := crashDiff(rows, found); len(missing)+len(extra) > 0 {
			t.Errorf("round %d: QIDO-RS and the index disagree: %d rows not found by QIDO-RS (e.g. %v), %d QIDO-RS results without a row (e.g. %v)",
				round, len(missing), crashFew(missing), len(extra), crashFew(extra))
		}

		// (c) Garbage collection removes exactly the unreferenced blobs.
		refs := map[string]bool{}
		for _, k := range rows {
			refs[k] = true
		}
		unref := 0
		for k := range blobs {
			if !refs[k] {
				unref++
			}
		}
		out := crashCLI(t, bin, "node", "gc", "--data", data, "--grace", "0s")
		var gcRefs, gcUnref, gcRemoved int
		if _, err := fmt.Sscanf(out, "gc: %d objects referenced, %d unreferenced: removed %d", &gcRefs, &gcUnref, &gcRemoved); err != nil {
			t.Fatalf("round %d: gc printed %q: %v", round, out, err)
		}
		if gcRefs != len(refs) || gcUnref != unref || gcRemoved != unref {
			t.Errorf("round %d: gc reports %d referenced, %d unreferenced, %d removed; the test counts %d referenced and %d unreferenced blobs",
				round, gcRefs, gcUnref, gcRemoved, len(refs), unref)
		}
		after := crashBlobs(t, data)
		crashCheckRows(t, "after gc", rows, after)
		var left []string
		for k := range after {
			if !refs[k] {
				left = append(left, k)
			}
		}
		if len(left) > 0 {
			sort.Strings(left)
			t.Errorf("round %d: %d unreferenced blobs remain after gc --grace 0s (e.g. %v)", round, len(left), crashFew(left))
		}

		t.Logf("round %d: killed after %4d ms: %3d requests (%d cut by the kill), %3d objects acknowledged (%3d new; %d failed items %v); "+
			"acknowledged so far %4d, index %4d rows, blobs on disk %4d after the kill, %4d before gc, %d collected by gc; round took %.1f s",
			round, delay.Milliseconds(), st.requests, st.cut, len(st.acked), newAcks, st.failed, st.failures,
			len(acked), len(rows), blobsAfterKill, len(blobs), gcRemoved, time.Since(tr).Seconds())
		if t.Failed() {
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("end of %s:\n%s", filepath.Base(l), crashTail(b, 10))
			}
			t.Fatalf("round %d failed", round)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no object was ever acknowledged: the test exercised nothing")
	}
	t.Logf("%d kills, %d requests (%d cut), %d objects acknowledged, none lost, no dangling row; %.1f s in all",
		rounds, totalReq, totalCut, len(acked), time.Since(t0).Seconds())
}

// crashAck is an acknowledged object: where to retrieve it (relative to
// the dataset's DICOMweb root) and the round that acknowledged it.
type crashAck struct {
	path  string
	round int
}

// crashStats counts one round's ingest.
type crashStats struct {
	requests, cut, failed int
	failures              map[string]int // failed items by Failure Reason (hex)
	acked                 map[string]crashAck
}

var crashBin struct {
	once sync.Once
	path string
	err  error
	dir  string
}

// crashBinary builds the mosaic binary once per test run, into a
// directory that TestMain removes when every test is done (several tests
// share the binary).
func crashBinary(t *testing.T) string {
	t.Helper()
	crashBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "mosaic-crash-bin-")
		if err != nil {
			crashBin.err = err
			return
		}
		crashBin.dir = dir
		path := filepath.Join(dir, "mosaic")
		cmd := exec.Command("go", "build", "-o", path, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			crashBin.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		crashBin.path = path
	})
	if crashBin.err != nil {
		t.Fatal(crashBin.err)
	}
	return crashBin.path
}

// crashCohort generates two small synthetic cohorts and returns their
// DICOM files' contents in a fixed order.
func crashCohort(t *testing.T, dir string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, seed := range []uint64{7, 2} {
		d := filepath.Join(dir, strconv.FormatUint(seed, 10))
		if _, err := synth.Generate(context.Background(), synth.Options{Dir: d, Patients: 6, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		var paths []string
		err := filepath.WalkDir(filepath.Join(d, synth.DICOMDir), func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				paths = append(paths, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(paths)
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	if len(out) < crashClients*crashBatch {
		t.Fatalf("the cohort has only %d files", len(out))
	}
	return out
}

// crashEnv is the environment of the binary: without MOSAIC_* variables,
// so that the caller's configuration cannot steer the node.
func crashEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MOSAIC_") {
			env = append(env, kv)
		}
	}
	return env
}

// crashCLI runs a short mosaic command and returns its stdout.
func crashCLI(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = crashEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mosaic %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.Bytes(), crashTail(stderr.Bytes(), 20))
	}
	return stdout.String()
}

// crashNode is a running 'mosaic node serve'.
type crashNode struct {
	cmd    *exec.Cmd
	base   string // the dataset's DICOMweb root, with a trailing slash
	log    string
	exited chan struct{} // closed once the process has been waited for
	state  *os.ProcessState
}

// crashStart starts serve on data and waits until it is ready. The
// process is killed when the test ends, whatever happens.
func crashStart(t *testing.T, bin, data, logPath string) *crashNode {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "node", "serve", "--data", data, "--listen", "127.0.0.1:0", "--policy", "longitudinal")
	cmd.Env = crashEnv()
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &crashNode{cmd: cmd, log: logPath, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "mosaic node listening on "); ok {
				select {
				case addr <- a:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		n.state = cmd.ProcessState
		close(n.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-n.exited:
		default:
			cmd.Process.Kill()
			<-n.exited
		}
	})
	select {
	case a := <-addr:
		n.base = strings.TrimSuffix(a, "/") + "/dicom-web/" + crashDataset + "/"
		ready := strings.TrimSuffix(a, "/") + "/readyz"
		if err := testutil.Poll(20*time.Second, func() error {
			resp, err := http.Get(ready)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("readyz: %s", resp.Status)
			}
			return nil
		}); err != nil {
			t.Fatalf("serve not ready: %v\n%s", err, n.tail())
		}
		return n
	case <-n.exited:
		t.Fatalf("serve exited before listening: %v\n%s", n.state, n.tail())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not print its address within 30 s\n%s", n.tail())
	}
	return nil
}

// tail returns the end of the node's log.
func (n *crashNode) tail() string {
	b, _ := os.ReadFile(n.log)
	return crashTail(b, 15)
}

func crashTail(b []byte, lines int) string {
	s := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}

// kill sends SIGKILL and waits for the process; it must not have died
// before on its own.
func (n *crashNode) kill(t *testing.T) {
	t.Helper()
	select {
	case <-n.exited:
		t.Fatalf("serve died before the kill: %v\n%s", n.state, n.tail())
	default:
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-n.exited
	if ws, ok := n.state.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("serve ended with %v, not by the SIGKILL\n%s", n.state, n.tail())
	}
}

// stop sends SIGTERM and expects a clean exit.
func (n *crashNode) stop(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.exited:
	case <-time.After(40 * time.Second):
		t.Fatalf("serve did not stop within 40 s of SIGTERM\n%s", n.tail())
	}
	if n.state.ExitCode() != 0 {
		t.Errorf("serve stopped with %v\n%s", n.state, n.tail())
	}
}

// crashVariant returns the object b with new study, series, instance and
// frame of reference UIDs, derived from the old ones and pass: the same
// images make new objects for the node.
func crashVariant(t *testing.T, b []byte, pass int) []byte {
	f, err := dicom.Parse(b, dicom.ReadOptions{})
	if err != nil {
		t.Errorf("cohort file: %v", err)
		return b
	}
	for _, tag := range []dicom.Tag{0x0020000D, 0x0020000E, dicom.TagSOPInstanceUID, 0x00200052} {
		old := f.Dataset.UID(tag)
		if old == "" {
			continue
		}
		sum := sha256.Sum256([]byte(strconv.Itoa(pass) + "/" + old))
		uid := "2.25." + new(big.Int).SetBytes(sum[:16]).String()
		if err := f.Dataset.SetStrings(tag, dicom.UI, uid); err != nil {
			t.Errorf("cohort file: %v", err)
			return b
		}
	}
	var buf bytes.Buffer
	if err := dicom.WriteFile(&buf, f); err != nil {
		t.Errorf("cohort file: %v", err)
		return b
	}
	return buf.Bytes()
}

// crashPost sends one STOW-RS request and records what a fully received
// response acknowledged. Requests the kill cuts only count as cut: it
// returns false for them.
func crashPost(t *testing.T, ctx context.Context, hc *http.Client, base, tok string, batch [][]byte, round int, mu *sync.Mutex, st *crashStats) bool {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, b := range batch {
		pw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/dicom"}})
		pw.Write(b)
	}
	mw.Close()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"studies", &buf)
	req.Header.Set("Content-Type", `multipart/related; type="application/dicom"; boundary=`+mw.Boundary())
	req.Header.Set("Accept", "application/dicom+json")
	req.Header.Set("Authorization", "Bearer "+tok)
	mu.Lock()
	st.requests++
	mu.Unlock()
	resp, err := hc.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		mu.Lock()
		st.cut++
		mu.Unlock()
		if ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond) // the node is gone; the round is ending
		}
		return false
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted, http.StatusConflict:
	default:
		t.Errorf("round %d: STOW-RS answered %d: %s", round, resp.StatusCode, crashTail(body, 5))
		return true
	}
	type item map[string]struct {
		Value []any `json:"Value"`
	}
	var r map[string]struct {
		Value []item `json:"Value"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Errorf("round %d: STOW-RS response (%d) is not DICOM JSON: %v", round, resp.StatusCode, err)
		return true
	}
	str := func(it item, tag string) string {
		if v := it[tag].Value; len(v) > 0 {
			s, _ := v[0].(string)
			return s
		}
		return ""
	}
	mu.Lock()
	defer mu.Unlock()
	for _, it := range r["00081198"].Value {
		st.failed++
		reason := "?"
		if v := it["00081197"].Value; len(v) > 0 {
			if f, ok := v[0].(float64); ok {
				reason = fmt.Sprintf("%04X", int(f))
			}
		}
		st.failures[reason]++
	}
	for _, it := range r["00081199"].Value {
		uid, u := str(it, "00081155"), str(it, "00081190")
		_, path, ok := strings.Cut(u, "/dicom-web/"+crashDataset+"/")
		if uid == "" || !ok || !strings.HasSuffix(path, "/instances/"+uid) {
			t.Errorf("round %d: STOW-RS acknowledged an item with SOP Instance UID %q and Retrieve URL %q", round, uid, u)
			continue
		}
		st.acked[uid] = crashAck{path: path, round: round}
	}
	return true
}

// crashIndexRows reads the instances table (SOP Instance UID to blob
// reference: the key, then "@" and the pack location for packed blobs)
// from a copy of the index and its write-ahead log, so that the node's
// files stay as they are and the copy recovers as the node would.
func crashIndexRows(t *testing.T, data, dir string) map[string]string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(filepath.Join(data, "index.db"+suffix))
		if errors.Is(err, fs.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "index.db"+suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := db.Query(`SELECT sop_uid, blob_key, blob_loc FROM instances WHERE dataset_id = ?`, crashDataset)
	if err != nil {
		t.Fatalf("reading the index: %v", err)
	}
	defer q.Close()
	rows := map[string]string{}
	for q.Next() {
		var uid, key, loc string
		if err := q.Scan(&uid, &key, &loc); err != nil {
			t.Fatal(err)
		}
		if loc != "" {
			key += "@" + loc
		}
		rows[uid] = key
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// crashBlob is where the bytes of one stored blob are.
type crashBlob struct {
	path      string
	off, size int64
	pending   bool // a file blob not yet moved into place by a Sync
}

// crashBlobs lists the blobs of the node's store, read independently of
// internal/blobstore from the documented layouts: records in
// blobs/packs/SEQ.pack (a 64-byte header: "MBLB", version 1, flags with
// bit 0 for deleted, size and time as little-endian 64-bit integers, the
// SHA-256 of the content, four reserved bytes, the CRC-32C of the first
// 60 bytes; then the content), named KEY@SEQ:OFFSET, and files
// blobs/sha256/ab/KEY (blobs/pending/KEY before a Sync), named KEY.
func crashBlobs(t *testing.T, data string) map[string]crashBlob {
	t.Helper()
	root := filepath.Join(data, "blobs")
	out := map[string]crashBlob{}
	for _, dir := range []string{"sha256", "pending"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, e fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || !e.Type().IsRegular() {
				return err
			}
			k := filepath.Base(p)
			if _, herr := hex.DecodeString(k); len(k) != 64 || herr != nil {
				return nil
			}
			if _, dup := out[k]; !dup {
				fi, err := e.Info()
				if err != nil {
					return err
				}
				out[k] = crashBlob{path: p, size: fi.Size(), pending: dir == "pending"}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	packs, err := filepath.Glob(filepath.Join(root, "packs", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	for _, p := range packs {
		seq, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(p), ".pack"), 10, 64)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off+64 <= int64(len(b)); {
			h := b[off : off+64]
			if string(h[:4]) != "MBLB" || h[4] != 1 || binary.LittleEndian.Uint32(h[60:]) != crc32.Checksum(h[:60], table) {
				break // the end of what was written whole
			}
			size := int64(binary.LittleEndian.Uint64(h[8:16]))
			if size < 0 || off+64+size > int64(len(b)) {
				break
			}
			if h[5]&1 == 0 {
				out[fmt.Sprintf("%x@%d:%d", h[24:56], seq, off)] = crashBlob{path: p, off: off + 64, size: size}
			}
			off += 64 + size
		}
	}
	return out
}

// crashCheckRows fails for every row whose blob is missing or does not
// hash to its key, and for every row whose blob is a file still in
// pending/: the files layout moves a blob into sha256/ only once Sync has
// made it durable, so such a row was committed before its blob was
// synced. (A kill -9 keeps the page cache, so that blob survives it, but
// a power cut would not. Packs have no such outward sign; the node's
// TestIngestBlobSyncFails checks the order there.)
func crashCheckRows(t *testing.T, when string, rows map[string]string, blobs map[string]crashBlob) {
	t.Helper()
	var missing, damaged, unsynced []string
	checked := map[string]bool{}
	for uid, ref := range rows {
		bl, ok := blobs[ref]
		if !ok {
			missing = append(missing, uid)
			continue
		}
		if checked[ref] {
			continue
		}
		checked[ref] = true
		if bl.pending {
			unsynced = append(unsynced, uid)
		}
		f, err := os.Open(bl.path)
		if err != nil {
			missing = append(missing, uid)
			continue
		}
		h := sha256.New()
		_, err = io.Copy(h, io.NewSectionReader(f, bl.off, bl.size))
		f.Close()
		if err != nil {
			missing = append(missing, uid)
			continue
		}
		if key, _, _ := strings.Cut(ref, "@"); hex.EncodeToString(h.Sum(nil)) != key {
			damaged = append(damaged, uid)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Errorf("%s: %d dangling index rows, whose blob is missing (e.g. %v)", when, len(missing), crashFew(missing))
	}
	if len(damaged) > 0 {
		sort.Strings(damaged)
		t.Errorf("%s: %d index rows whose blob does not hash to its key (e.g. %v)", when, len(damaged), crashFew(damaged))
	}
	if len(unsynced) > 0 {
		sort.Strings(unsynced)
		t.Errorf("%s: %d index rows whose blob was never synced (still in blobs/pending/; e.g. %v)", when, len(unsynced), crashFew(unsynced))
	}
}

// crashCheckAcked fails for every acknowledged UID not in have.
func crashCheckAcked[V any](t *testing.T, where string, acked map[string]crashAck, have map[string]V) {
	t.Helper()
	var lost []string
	for uid, a := range acked {
		if _, ok := have[uid]; !ok {
			lost = append(lost, fmt.Sprintf("%s (round %d)", uid, a.round))
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		t.Errorf("%d of %d acknowledged objects are not %s: %v", len(lost), len(acked), where, crashFew(lost))
	}
}

// crashQIDO lists every instance of the dataset by QIDO-RS, page by page.
func crashQIDO(t *testing.T, base, tok string) map[string]bool {
	t.Helper()
	const limit = 1000
	found := map[string]bool{}
	for offset := 0; ; offset += limit {
		q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
		status, body := crashGet(t, base+"instances?"+q.Encode(), tok, "application/dicom+json")
		if status == http.StatusNoContent {
			break
		}
		if status != http.StatusOK {
			t.Fatalf("QIDO-RS instances: %d %s", status, crashTail(body, 5))
		}
		var page []map[string]struct {
			Value []any `json:"Value"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("QIDO-RS instances: %v", err)
		}
		for _, m := range page {
			if v := m["00080018"].Value; len(v) > 0 {
				if s, ok := v[0].(string); ok {
					found[s] = true
					continue
				}
			}
			t.Fatalf("QIDO-RS result without SOP Instance UID: %v", m)
		}
		if len(page) < limit {
			break
		}
	}
	return found
}

func crashGet(t *testing.T, u, tok, accept string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", accept)
	c := &http.Client{Timeout: time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the response: %v", u, err)
	}
	return resp.StatusCode, b
}

// crashSample picks the objects to retrieve: every one acknowledged in
// this round and a few random ones of earlier rounds.
func crashSample(rng *rand.Rand, acked map[string]crashAck, round int) []string {
	var now, before []string
	for uid, a := range acked {
		if a.round == round {
			now = append(now, uid)
		} else {
			before = append(before, uid)
		}
	}
	sort.Strings(before)
	rng.Shuffle(len(before), func(i, j int) { before[i], before[j] = before[j], before[i] })
	return append(now, before[:min(len(before), crashWADOSample)]...)
}

// crashWADO retrieves each sampled object by WADO-RS and checks it is one
// DICOM object with its SOP Instance UID and the bytes of its blob.
func crashWADO(t *testing.T, base, tok string, uids []string, acked map[string]crashAck, rows map[string]string) {
	t.Helper()
	work := make(chan string)
	var mu sync.Mutex
	var bad []string
	fail := func(uid, format string, args ...any) {
		mu.Lock()
		bad = append(bad, uid+": "+fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	hc := &http.Client{Timeout: time.Minute}
	defer hc.CloseIdleConnections()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for uid := range work {
				req, _ := http.NewRequest("GET", base+acked[uid].path, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Accept", `multipart/related; type="application/dicom"; transfer-syntax=*`)
				resp, err := hc.Do(req)
				if err != nil {
					fail(uid, "%v", err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					fail(uid, "reading: %v", err)
					continue
				}
				if resp.StatusCode != http.StatusOK {
					fail(uid, "status %d: %s", resp.StatusCode, crashTail(body, 3))
					continue
				}
				mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
				if err != nil || mt != "multipart/related" {
					fail(uid, "content type %q", resp.Header.Get("Content-Type"))
					continue
				}
				mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
				var objs [][]byte
				for {
					p, err := mr.NextPart()
					if err == io.EOF {
						break
					}
					if err != nil {
						fail(uid, "multipart: %v", err)
						break
					}
					b, err := io.ReadAll(p)
					if err != nil {
						fail(uid, "multipart: %v", err)
						break
					}
					objs = append(objs, b)
				}
				if len(objs) != 1 {
					fail(uid, "%d objects retrieved", len(objs))
					continue
				}
				df, err := dicom.Parse(objs[0], dicom.ReadOptions{})
				if err != nil {
					fail(uid, "not parsable: %v", err)
					continue
				}
				if got := df.Dataset.UID(dicom.TagSOPInstanceUID); got != uid {
					fail(uid, "retrieved object has SOP Instance UID %q", got)
				}
				sum := sha256.Sum256(objs[0])
				if ref, ok := rows[uid]; ok && !strings.HasPrefix(ref, hex.EncodeToString(sum[:])) {
					fail(uid, "retrieved bytes do not hash to the blob key of its row")
				}
			}
		})
	}
	for _, uid := range uids {
		work <- uid
	}
	close(work)
	wg.Wait()
	if len(bad) > 0 {
		sort.Strings(bad)
		t.Errorf("WADO-RS: %d of %d acknowledged objects not served right: %v", len(bad), len(uids), crashFew(bad))
	}
}

// crashDiff returns the keys of a missing from b and of b missing from a.
func crashDiff[A, B any](a map[string]A, b map[string]B) (missing, extra []string) {
	for k := range a {
		if _, ok := b[k]; !ok {
			missing = append(missing, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}

// crashFew keeps error messages short.
func crashFew(s []string) []string {
	if len(s) > 5 {
		return append(s[:5:5], fmt.Sprintf("and %d more", len(s)-5))
	}
	return s
}
