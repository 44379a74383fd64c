package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNodeServeLinkFailure: when the link to the hub cannot start,
// `node serve` returns the error and its HTTP server no longer accepts
// connections (it used to keep serving after the command returned).
func TestNodeServeLinkFailure(t *testing.T) {
	data := t.TempDir()
	// Enrolled, but with a hub key that does not decode.
	if err := os.WriteFile(filepath.Join(data, "federation.json"), []byte(`{"node":"north","hub_key":"not a key","nats_urls":["nats://127.0.0.1:1"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, []string{"node", "serve", "--create", "--data", data, "--listen", "127.0.0.1:0"}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	if code == 0 || ctx.Err() != nil {
		t.Fatalf("node serve with a broken link: exit %d (%v), want a failure at once", code, ctx.Err())
	}
	if !strings.Contains(stderr.String(), "bad public key") {
		t.Errorf("stderr lacks the link's error:\n%s", stderr.String())
	}
	_, addr, ok := strings.Cut(stdout.String(), "listening on http://")
	if !ok {
		t.Fatalf("no banner: %q", stdout.String())
	}
	c, err := net.DialTimeout("tcp", strings.TrimSpace(addr), time.Second)
	if err == nil {
		c.Close()
		t.Errorf("node serve returned, and its HTTP server still accepts connections on %s", strings.TrimSpace(addr))
	}
}
