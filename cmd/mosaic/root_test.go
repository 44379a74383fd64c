package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

func TestRootExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string // expected in stdout or stderr
	}{
		{[]string{"--version"}, exitOK, "mosaic version"},
		{[]string{"version"}, exitOK, "mosaic version"},
		{[]string{"version", "extra"}, exitUsage, "unknown command"},
		{[]string{"--help"}, exitOK, "synth"},
		{[]string{"bogus"}, exitUsage, "unknown command"},
		{[]string{"--no-such-flag"}, exitUsage, "unknown flag"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tt.args, os.Getenv, strings.NewReader(""), &stdout, &stderr)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tt.args, code, tt.code, stderr.String())
		}
		if !strings.Contains(stdout.String()+stderr.String(), tt.out) {
			t.Errorf("%v: output lacks %q: %q %q", tt.args, tt.out, stdout.String(), stderr.String())
		}
	}
}
