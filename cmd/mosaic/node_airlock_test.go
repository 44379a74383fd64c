package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/airlock"
	"github.com/mosaic-imaging/mosaic/internal/audit"
	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/node"
)

// TestNodeAirlockCLI: outputs held by a node are listed and shown;
// release needs two different people on a two-person node, reject takes
// a reason, every decision is in the audit log; bad input is refused
// clearly; with the audit log held by a serving node, nothing is decided.
func TestNodeAirlockCLI(t *testing.T) {
	ctx := context.Background()
	data := filepath.Join(t.TempDir(), "node")
	adm := []string{"--data", data}
	mosaic := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := runMosaic(t, append(args, adm...)...)
		if code != want {
			t.Fatalf("%s: exit %d (want %d)\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out + errOut
	}
	mosaic(0, "node", "init")
	if err := os.WriteFile(filepath.Join(data, "node.json"), []byte(`{"airlock": {"two_person": true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(ctx, node.Config{Data: data, KeyMustExist: true, Airlock: airlock.Policy{TwoPerson: true}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s, err := n.Airlock()
	if err != nil {
		t.Fatal(err)
	}
	held, _ := s.Hold(airlock.Output{Job: "job-1", Name: "summary.txt", Data: []byte("mean age is fine\n")}, airlock.Permissions{})
	other, _ := s.Hold(airlock.Output{Job: "job-1", Name: "plot-notes.txt", Data: []byte("see plot\n")}, airlock.Permissions{})
	refused, _ := s.Hold(airlock.Output{Job: "job-2", Name: "t.json", Data: []byte(`{"mosaic_output":"table","version":1,"kind":"frequency","cells":[{"key":["a"],"count":4},{"key":["b"],"count":30}]}`)}, airlock.Permissions{})
	if held.State != airlock.StateHeld || refused.State != airlock.StateRefused {
		t.Fatalf("%s %s", held.State, refused.State)
	}
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}

	out := mosaic(0, "node", "airlock", "list")
	if !strings.Contains(out, held.ID) || !strings.Contains(out, "refused") || !strings.Contains(out, "summary.txt") {
		t.Fatalf("list:\n%s", out)
	}
	out = mosaic(0, "node", "airlock", "list", "--state", "held", "-o", "json")
	var list struct{ Outputs []airlock.Held }
	if json.Unmarshal([]byte(out), &list) != nil || len(list.Outputs) != 2 {
		t.Fatalf("list json:\n%s", out)
	}
	out = mosaic(0, "node", "airlock", "show", refused.ID)
	if !strings.Contains(out, "threshold") || !strings.Contains(out, "fewer than 10") {
		t.Fatalf("show:\n%s", out)
	}
	if out := mosaic(0, "node", "airlock", "show", held.ID, "--content", "-"); out != "mean age is fine\n" {
		t.Fatalf("content: %q", out)
	}
	mosaic(1, "node", "airlock", "show", "out-00000000000000000000")
	mosaic(2, "node", "airlock", "list", "--state", "maybe")
	mosaic(2, "node", "airlock", "reject", other.ID, "--as", "alice")

	out = mosaic(0, "node", "airlock", "release", held.ID, "--as", "alice")
	if !strings.Contains(out, "a second person") {
		t.Fatalf("first approval: %s", out)
	}
	if out := mosaic(1, "node", "airlock", "release", held.ID, "--as", "alice"); !strings.Contains(out, "same person") {
		t.Fatalf("same person twice: %s", out)
	}
	out = mosaic(0, "node", "airlock", "release", held.ID, "--as", "bob")
	if !strings.Contains(out, "released by alice and bob") {
		t.Fatalf("second approval: %s", out)
	}
	if out := mosaic(1, "node", "airlock", "release", refused.ID, "--as", "alice"); !strings.Contains(out, "failed the checks") {
		t.Fatalf("release of a refused output: %s", out)
	}
	mosaic(0, "node", "airlock", "reject", other.ID, "--as", "carol", "--reason", "not needed")

	third, err := os.ReadFile(filepath.Join(data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"airlock-hold", "airlock-refuse", `"person:alice","action":"airlock-approve"`, `"person:bob","action":"airlock-release"`, `"person:carol","action":"airlock-reject"`} {
		if !strings.Contains(string(third), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	// A serving node linked to its hub holds the audit log: the CLI hands
	// its decision to it, and it is recorded there.
	n2, err := node.Open(ctx, node.Config{Data: data, KeyMustExist: true, Airlock: airlock.Policy{TwoPerson: true}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := n2.Airlock()
	late, err := s2.Hold(airlock.Output{Job: "job-3", Name: "n.txt", Data: []byte("x\n")}, airlock.Permissions{})
	if err != nil {
		t.Fatal(err)
	}
	stuck, _ := s2.Hold(airlock.Output{Job: "job-3", Name: "m.txt", Data: []byte("y\n")}, airlock.Permissions{})
	hubPub, _, _ := ed25519.GenerateKey(rand.Reader)
	fj, _ := json.Marshal(node.Federation{EnrollResponse: fed.EnrollResponse{Node: "north", NATSURLs: []string{"nats://127.0.0.1:1"}, HubKey: fed.EncodeKey(hubPub)}, Enrolled: time.Now()})
	if err := os.WriteFile(filepath.Join(data, "federation.json"), fj, 0o600); err != nil {
		t.Fatal(err)
	}
	link, err := n2.StartLink(node.LinkOptions{Heartbeat: time.Hour})
	if err != nil || link == nil {
		t.Fatalf("start link: %v", err)
	}
	if _, err := audit.Open(filepath.Join(data, "audit.log")); !errors.Is(err, audit.ErrLocked) {
		t.Fatalf("the link does not hold the audit log: %v", err)
	}
	out = mosaic(0, "node", "airlock", "release", late.ID, "--as", "alice")
	if !strings.Contains(out, "a second person") {
		t.Fatalf("release through the serving node: %s", out)
	}
	if out := mosaic(1, "node", "airlock", "release", late.ID, "--as", "alice"); !strings.Contains(out, "same person") {
		t.Fatalf("same person twice through the serving node: %s", out)
	}
	out = mosaic(0, "node", "airlock", "release", late.ID, "--as", "bob")
	if !strings.Contains(out, "released by alice and bob") {
		t.Fatalf("second release through the serving node: %s", out)
	}
	link.Close()
	n2.Close(ctx)
	log, _ := os.ReadFile(filepath.Join(data, "audit.log"))
	if !strings.Contains(string(log), `"actor":"person:bob","action":"airlock-release","subject":"`+late.ID) {
		t.Fatalf("the serving node did not record the CLI's release:\n%s", log)
	}

	// Another writer that does not answer: nothing is decided.
	l, err := audit.Open(filepath.Join(data, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if out := mosaic(1, "node", "airlock", "release", stuck.ID, "--as", "alice", "--wait", "1s"); !strings.Contains(out, "/airlock") {
		t.Fatalf("release while the audit log is held: %s", out)
	}
	if out := mosaic(0, "node", "airlock", "show", stuck.ID, "-o", "json"); !strings.Contains(out, `"state": "held"`) || strings.Contains(out, "alice") {
		t.Fatalf("decided without an audit record: %s", out)
	}
	if ents, _ := os.ReadDir(filepath.Join(data, "airlock", "requests")); len(ents) != 0 {
		t.Fatalf("requests left behind: %v", ents)
	}
}
