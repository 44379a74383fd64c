package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

// TestHubNodeListHeldBack: 'hub node list' shows the datasets a node
// holds back and why, as a column and as a JSON field.
func TestHubNodeListHeldBack(t *testing.T) {
	data := t.TempDir()
	cli := func(args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, _, errs := cli("hub", "node", "add", "--create", "--data", data, "--title", "North Hospital", "north"); code != 0 {
		t.Fatalf("node add: %d %q", code, errs)
	}
	// What the hub stores from the node's catalogue message.
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(data, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(ctx, `INSERT INTO held_back (node_id, dataset_id, title, tier, reasons, reported_at) VALUES (?, ?, ?, ?, ?, ?)`,
		"north", "chest", "Chest CT", 3, `["no licence","no contact point"]`, 1)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli("hub", "node", "list", "--data", data, "-o", "json")
	var list struct {
		Nodes []struct {
			ID       string
			HeldBack []struct {
				ID      string
				Tier    int
				Reasons []string
			} `json:"held_back"`
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Nodes) != 1 || len(list.Nodes[0].HeldBack) != 1 ||
		list.Nodes[0].HeldBack[0].ID != "chest" || strings.Join(list.Nodes[0].HeldBack[0].Reasons, ", ") != "no licence, no contact point" {
		t.Errorf("node list -o json: %d %q %q", code, out, errs)
	}
	code, out, _ = cli("hub", "node", "list", "--data", data)
	if code != 0 || !strings.Contains(out, "HELD BACK") || !strings.Contains(out, "chest (no licence, no contact point)") {
		t.Errorf("node list: %d %q", code, out)
	}
}
