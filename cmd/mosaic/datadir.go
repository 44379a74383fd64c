package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mosaic-imaging/mosaic/internal/node"
)

// dataPresent returns an error unless dir is a directory with something
// in it: a mistyped --data must not make a new, empty node or hub (with
// new keys) silently. kind is "node" or "hub", naming the init command.
func dataPresent(dir, kind string) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no %s at %s: run 'mosaic %s init --data %s' or pass --create", kind, dir, kind, dir)
	}
	if err != nil {
		return fmt.Errorf("%s: data directory: %w", kind, err)
	}
	defer d.Close()
	if fi, err := d.Stat(); err == nil && !fi.IsDir() {
		return fmt.Errorf("%s: data directory %s is not a directory", kind, dir)
	}
	if _, err := d.Readdirnames(1); err == io.EOF {
		return fmt.Errorf("no %s at %s (the directory is empty): run 'mosaic %s init --data %s' or pass --create", kind, dir, kind, dir)
	} else if err != nil {
		return fmt.Errorf("%s: data directory: %w", kind, err)
	}
	return nil
}

// saveNodeSettings writes, for a node init just made, the settings that
// differ from the defaults (site key, index, object store, policy) into
// DATA/node.json, so that the later commands, given only --data, use the
// same key and stores rather than making new ones. Paths are made
// absolute. It writes nothing when node.json exists or nothing differs,
// and reports whether it wrote.
func saveNodeSettings(c node.Config) (bool, error) {
	path := filepath.Join(c.Data, "node.json")
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	settings := map[string]string{}
	keep := func(name, value, def string, isPath bool) error {
		if value == "" || value == def {
			return nil
		}
		if isPath && !strings.Contains(value, "://") {
			abs, err := filepath.Abs(value)
			if err != nil {
				return err
			}
			value = abs
		}
		settings[name] = value
		return nil
	}
	for _, s := range []struct {
		name, value, def string
		isPath           bool
	}{
		{"site_key", c.SiteKey, filepath.Join(c.Data, "site.key"), true},
		{"db", c.DB, filepath.Join(c.Data, "index.db"), true},
		{"blobs", c.Blobs, filepath.Join(c.Data, "blobs"), true},
		{"policy", c.Policy, node.DefaultPolicy, false},
	} {
		if err := keep(s.name, s.value, s.def, s.isPath); err != nil {
			return false, fmt.Errorf("node init: %w", err)
		}
	}
	if len(settings) == 0 {
		return false, nil
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return false, fmt.Errorf("node init: %w", err)
	}
	return true, nil
}

// siteKeyPresent returns an error when a node command that may not make a
// node is about to use a site key file that does not exist: opening the
// node would create a new key, and every pseudonym after it would differ
// from the ones the node holds.
func siteKeyPresent(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("node: the site key %s does not exist; pass the key this node was made with (--site-key, $%s or site_key in node.json), or --create to make a new one", path, siteKeyEnv)
	}
	return nil
}
