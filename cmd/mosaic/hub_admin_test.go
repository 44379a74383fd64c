package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/hub"
)

// TestHubAdminCommands: the user, token and node commands work on the
// hub's database alone (through hub.Admin), and node list prints JSON
// with -o json.
func TestHubAdminCommands(t *testing.T) {
	data := t.TempDir()
	cli := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(stdin), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, out, errs := cli("a long enough password\n", "hub", "user", "add", "--create", "--data", data, "--password-stdin", "alice"); code != 0 || !strings.Contains(out, "user alice added (researcher)") {
		t.Fatalf("user add: %d %q %q", code, out, errs)
	}
	if code, _, errs := cli("", "hub", "user", "add", "--data", data, "alice"); code == 0 || !strings.Contains(errs, "already exists") {
		t.Errorf("second user add: %d %q", code, errs)
	}
	// Representatives: a role, an address and the datasets they decide for.
	if code, out, errs := cli("", "hub", "user", "add", "--data", data, "--role", "representative", "--email", "rep@north.example", "--represents", "north/ds1", "--represents", "east/*", "rita"); code != 0 || !strings.Contains(out, "user rita added (representative)") {
		t.Errorf("representative add: %d %q %q", code, out, errs)
	}
	if code, _, errs := cli("", "hub", "user", "add", "--data", data, "--role", "boss", "bob"); code == 0 || !strings.Contains(errs, "role") {
		t.Errorf("unknown role: %d %q", code, errs)
	}
	if code, _, errs := cli("", "hub", "user", "add", "--data", data, "--represents", "north", "carl"); code != 2 || !strings.Contains(errs, "NODE/DATASET") {
		t.Errorf("bad --represents: %d %q", code, errs)
	}
	if code, out, errs := cli("", "hub", "user", "represent", "--data", data, "alice", "south/ds2"); code != 0 || out != "alice represents south/ds2\n" {
		t.Errorf("user represent: %d %q %q", code, out, errs)
	}
	if code, _, errs := cli("", "hub", "user", "represent", "--data", data, "nobody", "south/ds2"); code == 0 || !strings.Contains(errs, "not found") {
		t.Errorf("represent for an unknown user: %d %q", code, errs)
	}
	func() {
		a, err := hub.OpenAdmin(context.Background(), hub.Config{Data: data, DB: filepath.Join(data, "hub.db")})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		for user, want := range map[string]string{"rita": "[{east *} {north ds1}]", "alice": "[{south ds2}]"} {
			got, err := a.Representations(context.Background(), user)
			if err != nil || fmt.Sprint(got) != want {
				t.Errorf("%s represents %v (%v), want %s", user, got, err, want)
			}
		}
	}()
	if code, out, errs := cli("", "hub", "token", "create", "--data", data, "--user", "alice"); code != 0 || !strings.HasPrefix(out, "mht_") {
		t.Errorf("token create: %d %q %q", code, out, errs)
	}
	if code, _, errs := cli("", "hub", "token", "create", "--data", data, "--user", "bob"); code == 0 || !strings.Contains(errs, "not found") {
		t.Errorf("token for an unknown user: %d %q", code, errs)
	}
	if code, out, errs := cli("", "hub", "node", "add", "--data", data, "--title", "North Hospital", "north"); code != 0 || !strings.HasPrefix(out, "mhe_") {
		t.Fatalf("node add: %d %q %q", code, out, errs)
	}
	if code, out, errs := cli("", "hub", "node", "remove", "--data", data, "north"); code != 0 || out != "node north removed\n" {
		t.Errorf("node remove: %d %q %q", code, out, errs)
	}
	code, out, errs := cli("", "hub", "node", "list", "--data", data, "-o", "json")
	var list struct {
		Nodes []struct {
			ID, Title string
			Removed   *string
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Nodes) != 1 || list.Nodes[0].ID != "north" ||
		list.Nodes[0].Title != "North Hospital" || list.Nodes[0].Removed == nil {
		t.Errorf("node list -o json: %d %q %q", code, out, errs)
	}
	if code, out, _ := cli("", "hub", "node", "list", "--data", data); code != 0 || !strings.HasPrefix(out, "NODE") || !strings.Contains(out, "North Hospital") {
		t.Errorf("node list: %d %q", code, out)
	}
	if code, _, errs := cli("", "hub", "node", "list", "--data", data, "-o", "xml"); code == 0 || !strings.Contains(errs, "table or json") {
		t.Errorf("node list -o xml: %d %q", code, errs)
	}
}
