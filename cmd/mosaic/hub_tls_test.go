package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestHubServePlainNATSNeedsInsecure: `hub serve --nats-no-tls` on an
// address other machines reach stops with a message naming --insecure,
// before anything listens.
func TestHubServePlainNATSNeedsInsecure(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"hub", "serve", "--create", "--data", t.TempDir(), "--listen", "127.0.0.1:0",
		"--nats-listen", "0.0.0.0:0", "--nats-no-tls"}, os.Getenv, strings.NewReader(""), &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "--insecure") {
		t.Errorf("exit %d, stderr %q: want %d and a message naming --insecure", code, stderr.String(), exitUsage)
	}
}
