package node

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A node opened with KeyMustExist refuses a missing site key and makes
// nothing; SaveSettings keeps what differs from the defaults, with
// absolute paths, and never overwrites node.json.
func TestKeyMustExistAndSettings(t *testing.T) {
	data := filepath.Join(t.TempDir(), "node")
	_, err := Open(context.Background(), Config{Data: data, KeyMustExist: true})
	if !errors.Is(err, ErrNoSiteKey) {
		t.Fatalf("Open without a key: %v, want ErrNoSiteKey", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("a refused Open made the data directory (%v)", err)
	}

	key := filepath.Join(t.TempDir(), "site.key")
	c := Config{Data: data, SiteKey: key, Policy: "longitudinal"}
	n, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	if saved, err := SaveSettings(c); err != nil || !saved {
		t.Fatalf("SaveSettings: %v %v", saved, err)
	}
	raw, _ := os.ReadFile(filepath.Join(data, "node.json"))
	var got map[string]string
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["site_key"] != key || got["policy"] != "longitudinal" {
		t.Errorf("node.json = %v; want only site_key %s and policy longitudinal", got, key)
	}
	if saved, _ := SaveSettings(Config{Data: data, Policy: "basic"}); saved {
		t.Error("SaveSettings overwrote node.json")
	}
	// With the key in place, KeyMustExist opens the node.
	n, err = Open(context.Background(), Config{Data: data, SiteKey: key, KeyMustExist: true})
	if err != nil {
		t.Fatalf("Open with its key: %v", err)
	}
	n.Close(context.Background())
}
