//go:build linux

package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/sqldb/sqltest"
)

// pgServer is the PostgreSQL server processes serving a test database:
// its postmaster and the backends of the database's connections.
type pgServer struct {
	postmaster int
	backends   []int
}

// serverProcs finds the processes behind the connections to the database
// at url (the server runs on this machine: scripts/with-postgres.sh).
func serverProcs(t *testing.T, url string) pgServer {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var s pgServer
	rows, err := c.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		s.backends = append(s.backends, pid)
	}
	rows.Close()
	var self int
	if err := c.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&self); err != nil {
		t.Fatal(err)
	}
	// The postmaster is every backend's parent.
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(self), "stat"))
	if err != nil {
		t.Fatalf("the PostgreSQL server of %s is not a process of this machine (scripts/with-postgres.sh starts one): %v", url, err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 2 {
		t.Fatalf("/proc/%d/stat: %q", self, b)
	}
	if s.postmaster, err = strconv.Atoi(f[1]); err != nil || s.postmaster <= 1 {
		t.Fatalf("/proc/%d/stat: parent %q", self, f[1])
	}
	if len(s.backends) == 0 {
		t.Fatal("the node holds no connection to the database")
	}
	return s
}

// signal sends sig to the postmaster and the backends.
func (s pgServer) signal(t *testing.T, sig syscall.Signal) {
	for _, pid := range append([]int{s.postmaster}, s.backends...) {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("signal %v to PostgreSQL process %d: %v", sig, pid, err)
		}
	}
}

// firstRead calls fn when the handler first reads the request body: the
// token and the dataset were checked by then.
type firstRead struct {
	io.ReadCloser
	once *sync.Once
	fn   func()
}

func (f firstRead) Read(p []byte) (int, error) {
	f.once.Do(f.fn)
	return f.ReadCloser.Read(p)
}

// TestStowWithStalledPostgres pauses the PostgreSQL server (SIGSTOP of
// the postmaster and of the node's backends) while a STOW-RS request is
// in flight: the client gets a 503 that says why within the commit
// timeout, never a hang; Close with a deadline returns despite the
// stalled database. Once the server resumes, the node works and its
// index and blobs agree, and the object acknowledged before the stall is
// intact.
func TestStowWithStalledPostgres(t *testing.T) {
	url := sqltest.PostgresURL(t)
	ctx := context.Background()
	cdir, man := testCohort(t)
	risky := map[string]bool{}
	for _, r := range man.Risky {
		risky[filepath.Join(cdir, filepath.FromSlash(r.Path))] = true
	}
	var files []string
	for _, f := range cohortFiles(t, cdir) {
		if !risky[f] && len(files) < 3 {
			files = append(files, f)
		}
	}
	const timeout = 4 * time.Second
	data := t.TempDir()
	cfg := Config{Data: data, DB: url, Policy: "longitudinal", CommitTimeout: timeout, MaxObjectBytes: 64 << 20,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			n.Close(ctx)
		}
	}()
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: "lung", Title: "Lung"}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := n.CreateToken(ctx, "test", index.ScopeWrite, "lung")
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	reading := make(chan struct{})
	h := n.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			r.Body = firstRead{r.Body, &once, func() { close(reading) }}
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	stow := func(ct string, body io.Reader) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/dicom-web/lung/studies", body)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Accept", "application/dicom+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}

	// Object A is acknowledged before the stall.
	ct0, body0 := stowBody(t, files[:1])
	if code, body := stow(ct0, bytes.NewReader(body0)); code != 200 && code != 202 {
		t.Fatalf("STOW before the stall: %d %s", code, body)
	}
	<-reading // (the first request's)
	once, reading = sync.Once{}, make(chan struct{})

	pg := serverProcs(t, url)
	var stopped atomic.Bool
	resume := func() {
		if stopped.Swap(false) {
			pg.signal(t, syscall.SIGCONT)
		}
	}
	defer resume() // never leave the shared server stopped

	// Object B is in flight when the server stops: the request's head
	// is sent, the node has checked the token and starts reading.
	ct, body := stowBody(t, files[1:2])
	pr, pw := io.Pipe()
	go func() {
		pw.Write(body[:64])
		<-reading
		for !stopped.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		pw.Write(body[64:])
		pw.Close()
	}()
	type result struct {
		code int
		body string
	}
	done := make(chan result, 1)
	go func() {
		code, b := stow(ct, pr)
		done <- result{code, b}
	}()
	select {
	case <-reading:
	case <-time.After(30 * time.Second):
		t.Fatal("the node never read the STOW body")
	}
	stopped.Store(true)
	pg.signal(t, syscall.SIGSTOP)
	t0 := time.Now()
	var res result
	select {
	case res = <-done:
	case <-time.After(10 * timeout):
		t.Fatalf("no answer %s after the database stopped (commit timeout %s): the request hangs", 10*timeout, timeout)
	}
	took := time.Since(t0)
	if res.code != http.StatusServiceUnavailable || !strings.Contains(res.body, "did not commit the object") {
		t.Errorf("STOW while the database is stopped: %d %s; want 503 saying the commit did not finish", res.code, res.body)
	}
	// The answer comes with the commit timeout, not after a hang (the
	// margin is for a loaded machine; TestCommitTimeout checks the
	// deadline itself).
	if took > timeout+5*time.Second {
		t.Errorf("the error came %s after the stall; the commit timeout is %s", took, timeout)
	}
	t.Logf("STOW answered %d %s after the database stopped", res.code, took.Round(time.Millisecond))

	// A request that arrives while the database is stopped gets a 503 at
	// its token check, not a hang.
	t0 = time.Now()
	go func() {
		code, b := stow(ct0, bytes.NewReader(body0))
		done <- result{code, b}
	}()
	select {
	case res = <-done:
	case <-time.After(10 * timeout):
		t.Fatalf("a STOW sent while the database is stopped hangs")
	}
	if res.code != http.StatusServiceUnavailable || !strings.Contains(res.body, "did not answer within") || time.Since(t0) > timeout+5*time.Second {
		t.Errorf("STOW sent while the database is stopped: %d %s after %s", res.code, res.body, time.Since(t0))
	}

	// Object C is queued while the server is still stopped; Close with a
	// deadline returns anyway, and C is not acknowledged.
	fh, err := os.Open(files[2])
	if err != nil {
		t.Fatal(err)
	}
	tk := n.Ingest(ctx, "lung", "test", fh)
	fh.Close()
	srv.Close()
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	t0 = time.Now()
	err = n.Close(cctx)
	cancel()
	closed = true
	// Close gives up at its deadline, well before the commit timeout.
	if took := time.Since(t0); took > timeout/2 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a 500ms deadline on a stopped database: %v after %s; want the deadline's error before %s", err, took, timeout/2)
	}
	if o := tk.Wait(ctx); o.Status == StatusStored || o.Status == StatusDuplicate {
		t.Errorf("an object queued while the database was stopped was acknowledged: %+v", o)
	}
	t.Logf("Close on a stopped database: %v after %s", err, time.Since(t0).Round(time.Millisecond))

	// The server resumes: the node opens and works, and its index and
	// blobs agree.
	resume()
	n2, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close(ctx)
	srv2 := httptest.NewServer(n2.Handler())
	defer srv2.Close()
	for _, f := range files {
		ct, b := stowBody(t, []string{f})
		resp, out := do(t, "POST", srv2.URL+"/dicom-web/lung/studies", tok, ct, b, "application/dicom+json")
		var r map[string]struct {
			Value []map[string]any `json:"Value"`
		}
		if (resp.StatusCode != 200 && resp.StatusCode != 202) || json.Unmarshal(out, &r) != nil || len(r["00081199"].Value) != 1 {
			t.Errorf("STOW of %s after the database resumed: %d %s", filepath.Base(f), resp.StatusCode, out)
		}
	}
	c, err := n2.ix.DatasetCounts(ctx, "lung")
	if err != nil || c.Instances != 3 {
		t.Errorf("after the stall: %d instances indexed (%v), want 3", c.Instances, err)
	}
	st, err := n2.VerifyObjects(ctx, "lung", nil)
	if err != nil || st.Objects != 3 || len(st.Missing)+len(st.Damaged)+len(st.Unreadable) > 0 {
		t.Errorf("index and blobs disagree after the stall: %+v %v", st, err)
	}
	// What the stall left unreferenced is garbage, and only that.
	gc, err := n2.CollectGarbage(ctx, -time.Hour, false)
	if err != nil || gc.Referenced != 3 || gc.Failed > 0 {
		t.Errorf("gc after the stall: %+v %v", gc, err)
	}
	if st, err := n2.VerifyObjects(ctx, "lung", nil); err != nil || st.Objects != 3 || len(st.Missing)+len(st.Damaged)+len(st.Unreadable) > 0 {
		t.Errorf("after gc: %+v %v", st, err)
	}
}
