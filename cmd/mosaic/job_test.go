package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/jobs"
	"github.com/mosaic-imaging/mosaic/internal/oidc"
)

// TestJobAndToolCommands runs mosaic tool and mosaic job in-process
// against a real hub: a program registered with the token mosaic login
// stored, reviewed by two people of two organisations with --token,
// listed as approved; a job under a permit that is not the researcher's
// refused with the hub's reason; the usage errors.
func TestJobAndToolCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, err := hub.Open(ctx, hub.Config{Data: t.TempDir(), NATSListen: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	toks := map[string]string{}
	for _, u := range []struct{ id, org string }{{"rosa", "uni"}, {"alma", "north"}, {"bert", "south"}} {
		if err := h.AddUser(ctx, u.id, u.id+"-password-123", hub.RoleResearcher); err != nil {
			t.Fatal(err)
		}
		if err := h.SetOrganisation(ctx, u.id, u.org); err != nil {
			t.Fatal(err)
		}
		if toks[u.id], err = h.NewUserToken(ctx, u.id, "cli"); err != nil {
			t.Fatal(err)
		}
	}
	cfgHome := filepath.Join(t.TempDir(), "config")
	getenv := func(k string) string {
		if k == "XDG_CONFIG_HOME" {
			return cfgHome
		}
		return ""
	}
	creds, _ := oidc.CredentialsFile(getenv)
	if err := creds.Save(srv.URL, toks["rosa"]); err != nil {
		t.Fatal(err)
	}
	mosaic := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(ctx, args, getenv, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	prog := filepath.Join(t.TempDir(), "train.py")
	os.WriteFile(prog, []byte("print('hello')\n"), 0o644)
	code, out, errs := mosaic("tool", "register", "--hub", srv.URL, "--name", "train", "--program", prog, "--description", "a test")
	if code != 0 || !strings.Contains(out, "pending") {
		t.Fatalf("tool register: %d %q %q", code, out, errs)
	}
	id := strings.Fields(out)[1]
	if code, _, errs := mosaic("tool", "review", "--hub", srv.URL, id, "--approve"); code == 0 || !strings.Contains(errs, "cannot review") {
		t.Errorf("the registrant's own review: %d %q", code, errs)
	}
	for _, u := range []string{"alma", "bert"} {
		if code, out, errs := mosaic("tool", "review", "--hub", srv.URL, "--token", toks[u], id, "--approve", "--comment", "fine"); code != 0 {
			t.Fatalf("review by %s: %d %q %q", u, code, out, errs)
		}
	}
	code, out, _ = mosaic("tool", "list", "--hub", srv.URL)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "approved") {
		t.Errorf("tool list: %d %q", code, out)
	}
	// A job under someone else's (or no such) permit: the hub's reason.
	code, _, errs = mosaic("job", "submit", "--hub", srv.URL, "--name", "fit", "--program", prog, "--permit", "pm-x", "--datasets", "lung", "--dry-run")
	if code == 0 || !strings.Contains(errs, "not one of yours") {
		t.Errorf("job submit under a foreign permit: %d %q", code, errs)
	}
	code, out, _ = mosaic("job", "list", "--hub", srv.URL)
	if code != 0 || !strings.HasPrefix(out, "ID") {
		t.Errorf("job list: %d %q", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"job", "submit", "--name", "x", "--program", prog}, "--hub"},
		{[]string{"job", "submit", "--hub", srv.URL, "--name", "x", "--program", prog, "--image", "a@" + jobs.Digest(nil)}, "one of"},
		{[]string{"job", "submit", "--hub", srv.URL, "--name", "x", "--program", prog, "--env", "NOEQUALS", "--datasets", "d"}, "NAME=VALUE"},
		{[]string{"tool", "review", "--hub", srv.URL, id}, "--approve"},
		{[]string{"job", "list", "--hub", "ftp://x"}, "http"},
	} {
		if code, _, errs := mosaic(c.args...); code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: %d %q, want usage error with %q", c.args, code, errs, c.want)
		}
	}
	if code, out, _ := mosaic("job", "submit", "--help"); code != 0 || !strings.Contains(out, "--dry-run") || !strings.Contains(out, "--permit") {
		t.Errorf("job submit --help: %d %q", code, out)
	}
}
