package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/sqldb/sqltest"
)

// TestReadsWithStalledIndex: QIDO-RS and WADO-RS requests that passed
// their token and dataset checks find the index tables locked by another
// session (as a stalled database would leave them): each gets a 503
// within the commit timeout, not a hang, and answers again once the
// lock goes.
func TestReadsWithStalledIndex(t *testing.T) {
	url := sqltest.PostgresURL(t)
	ctx := context.Background()
	cdir, man := testCohort(t)
	risky := map[string]bool{}
	for _, r := range man.Risky {
		risky[r.Path] = true
	}
	var files []string
	for _, f := range cohortFiles(t, cdir) {
		if len(files) < 2 && !risky[strings.TrimPrefix(strings.TrimPrefix(f, cdir), "/")] {
			files = append(files, f)
		}
	}
	const timeout = 2 * time.Second
	n, err := Open(ctx, Config{Data: t.TempDir(), DB: url, Policy: "longitudinal", CommitTimeout: timeout, MaxObjectBytes: 64 << 20,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler())
	defer func() {
		srv.Close()
		n.Close(ctx)
	}()
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: "lung", Title: "Lung"}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := n.CreateToken(ctx, "test", index.ScopeAdmin, "")
	if err != nil {
		t.Fatal(err)
	}
	ct, body := stowBody(t, files)
	if resp, b := do(t, "POST", srv.URL+"/dicom-web/lung/studies", tok, ct, body, "application/dicom+json"); resp.StatusCode != 200 && resp.StatusCode != 202 {
		t.Fatalf("STOW: %d %s", resp.StatusCode, b)
	}
	hits, err := n.ix.Search(ctx, index.Search{Dataset: "lung", Level: index.StudyLevel, Limit: 1})
	if err != nil || len(hits) != 1 {
		t.Fatalf("the stored study: %v %v", hits, err)
	}
	study := hits[0].StudyUID
	reads := []struct{ name, path, accept string }{
		{"QIDO studies", "/dicom-web/lung/studies", "application/dicom+json"},
		{"QIDO series", "/dicom-web/lung/studies/" + study + "/series", "application/dicom+json"},
		{"WADO metadata", "/dicom-web/lung/studies/" + study + "/metadata", "application/dicom+json"},
		{"WADO retrieve", "/dicom-web/lung/studies/" + study, `multipart/related; type="application/dicom"; transfer-syntax=*`},
	}
	get := func(path, accept string) (int, string, time.Duration) {
		t0 := time.Now()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", accept)
		c := &http.Client{Timeout: 10 * timeout}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error(), time.Since(t0)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), time.Since(t0)
	}
	for _, rd := range reads {
		if code, b, _ := get(rd.path, rd.accept); code != 200 {
			t.Fatalf("%s before the lock: %d %.200s", rd.name, code, b)
		}
	}

	// Another session locks the tables these reads use; the token and
	// dataset checks still pass.
	lc, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close(ctx)
	tx, err := lc.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE studies, series, instances IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	for _, rd := range reads {
		code, b, took := get(rd.path, rd.accept)
		if code != http.StatusServiceUnavailable || !strings.Contains(b, "did not answer within") {
			t.Errorf("%s with the index locked: %d %.200s after %s; want 503 saying the database did not answer", rd.name, code, b, took)
		}
		if took > timeout+3*time.Second {
			t.Errorf("%s with the index locked answered after %s; the commit timeout is %s", rd.name, took, timeout)
		}
	}
	if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		t.Fatal(err)
	}
	for _, rd := range reads {
		if code, b, _ := get(rd.path, rd.accept); code != 200 {
			t.Errorf("%s once the lock is gone: %d %.200s", rd.name, code, b)
		}
	}
}

// TestRowWatch: a streamed query is cancelled when the database gives no
// row within the timeout, with an error that wraps DeadlineExceeded, but
// not when the caller is slow with a row.
func TestRowWatch(t *testing.T) {
	n := &Node{cfg: Config{CommitTimeout: 50 * time.Millisecond}}
	// rows stands for a query: it waits gap before each of its rows,
	// or gives up when ctx ends.
	rows := func(ctx context.Context, count int, gap time.Duration, fn func() error) error {
		for i := 0; i < count; i++ {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(gap):
			}
			if err := fn(); err != nil {
				return err
			}
		}
		return nil
	}
	// A slow client: each row takes twice the timeout to write.
	ctx, wd := n.rowWatch(context.Background())
	err := wd.err(rows(ctx, 3, 0, func() error {
		wd.pause()
		defer wd.resume()
		time.Sleep(100 * time.Millisecond)
		return nil
	}))
	wd.stop()
	if err != nil {
		t.Errorf("a slow client cut the query: %v", err)
	}
	// A stalled database: the second row never comes in time.
	ctx, wd = n.rowWatch(context.Background())
	t0 := time.Now()
	err = wd.err(rows(ctx, 2, time.Hour, func() error { return nil }))
	wd.stop()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 2*time.Second {
		t.Errorf("a stalled query: %v after %s; want a deadline error after 50ms", err, time.Since(t0))
	}
}
