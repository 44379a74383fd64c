package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaic-imaging/mosaic/internal/hub"
)

// accessConfigFor parses hub serve's flags and returns the hub
// configuration they make, as `hub serve` would before opening the hub.
func accessConfigFor(t *testing.T, args []string, envs map[string]string) (hub.Config, error) {
	t.Helper()
	var f hubFlags
	cmd := &cobra.Command{Use: "serve"}
	f.register(cmd.Flags(), true)
	f.registerCreate(cmd.Flags())
	if err := cmd.Flags().Parse(append([]string{"--create", "--data", t.TempDir()}, args...)); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	var stderr bytes.Buffer
	e := &env{ctx: context.Background(), getenv: func(k string) string { return envs[k] }, stdout: &stderr, stderr: &stderr}
	c, err := f.configFor(e, cmd)
	return c, err
}

// TestHubServeAccessFlags checks that hub serve's SMTP and access flags,
// and their environment variables, reach the hub's configuration, flags
// over the environment.
func TestHubServeAccessFlags(t *testing.T) {
	c, err := accessConfigFor(t, []string{"--smtp-addr", "mail.example:587", "--smtp-from", "hub@example.org",
		"--smtp-user", "hub", "--smtp-password-file", "/run/secrets/smtp", "--smtp-tls", "implicit",
		"--remind-after", "48h", "--escalate-after", "240h", "--max-permit-days", "90", "--revocation-interval", "5s"},
		map[string]string{"MOSAIC_HUB_SMTP_TLS": "insecure", "MOSAIC_HUB_SMTP_USER": "other"})
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Addr != "mail.example:587" || c.SMTP.From != "hub@example.org" || c.SMTP.User != "hub" ||
		c.SMTP.PasswordFile != "/run/secrets/smtp" || c.SMTP.TLS != "implicit" {
		t.Errorf("SMTP config %+v", c.SMTP)
	}
	if c.Access.RemindAfter != 48*time.Hour || c.Access.EscalateAfter != 240*time.Hour || c.Access.MaxDays != 90 {
		t.Errorf("access config %+v", c.Access)
	}
	if c.RevocationInterval != 5*time.Second {
		t.Errorf("revocation interval %s, want 5s", c.RevocationInterval)
	}

	c, err = accessConfigFor(t, nil, map[string]string{"MOSAIC_HUB_SMTP_ADDR": "relay.example:25", "MOSAIC_HUB_SMTP_FROM": "hub@example.org",
		"MOSAIC_HUB_SMTP_USER": "u", "MOSAIC_HUB_SMTP_PASSWORD_FILE": "/pw", "MOSAIC_HUB_SMTP_TLS": "required"})
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Addr != "relay.example:25" || c.SMTP.From != "hub@example.org" || c.SMTP.User != "u" || c.SMTP.PasswordFile != "/pw" || c.SMTP.TLS != "required" {
		t.Errorf("SMTP config from the environment %+v", c.SMTP)
	}
	// Without the flags the hub's defaults stand.
	if c.RevocationInterval != 15*time.Second || c.Access.RemindAfter != 0 || c.Access.MaxDays != 0 {
		t.Errorf("defaults changed without flags: revocation %s, access %+v", c.RevocationInterval, c.Access)
	}
}

// TestHubServeAccessFlagsBad checks that bad access flags are usage
// errors (exit 2) naming the flag, before any hub starts.
func TestHubServeAccessFlagsBad(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--smtp-tls", "sometimes"}, nil, `--smtp-tls "sometimes"`},
		{nil, map[string]string{"MOSAIC_HUB_SMTP_TLS": "ssl"}, `--smtp-tls "ssl"`},
		{[]string{"--smtp-addr", "mail.example:25"}, nil, "--smtp-addr needs --smtp-from"},
		{[]string{"--remind-after", "-1h"}, nil, "--remind-after -1h0m0s: must be positive"},
		{[]string{"--escalate-after", "0s"}, nil, "--escalate-after 0s: must be positive"},
		{[]string{"--max-permit-days", "0"}, nil, "--max-permit-days 0"},
		{[]string{"--revocation-interval", "2h"}, nil, "revocation_interval 2h0m0s"},
	} {
		args := append([]string{"hub", "serve", "--create", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--nats-no-tls"}, c.args...)
		var stdout, stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		st := run(ctx, args, func(k string) string { return c.env[k] }, strings.NewReader(""), &stdout, &stderr)
		cancel()
		if st != exitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want exit %d with %q", c.args, c.env, st, stderr.String(), exitUsage, c.want)
		}
	}
}

// TestHubServeHelpNamesAccess checks that hub serve's help says what the
// hub serves for access and where the docs are.
func TestHubServeHelpNamesAccess(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if st := run(context.Background(), []string{"hub", "serve", "--help"}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); st != 0 {
		t.Fatalf("exit %d: %s", st, stderr.String())
	}
	for _, want := range []string{"/api/v1/access-requests", "/api/v1/permits/ID/revoke", "/dicom-web/permits/ID/", "/viewer/?permit=ID",
		"docs/oidc.md", "docs/access.md", "mosaic login --hub URL", "--smtp-tls", "--max-permit-days"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("hub serve --help lacks %q", want)
		}
	}
}
