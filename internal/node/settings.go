package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SaveSettings writes, for a node just made, the settings that
// differ from the defaults (site key, index, object store, policy) into
// DATA/node.json, so that the later commands, given only --data, use the
// same key and stores rather than making new ones. Paths are made
// absolute. It writes nothing when node.json exists or nothing differs,
// and reports whether it wrote.
func SaveSettings(c Config) (bool, error) {
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
		{"policy", c.Policy, DefaultPolicy, false},
	} {
		if err := keep(s.name, s.value, s.def, s.isPath); err != nil {
			return false, fmt.Errorf("node: settings: %w", err)
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
		return false, fmt.Errorf("node: settings: %w", err)
	}
	return true, nil
}
