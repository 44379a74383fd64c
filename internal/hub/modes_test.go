//go:build unix

package hub_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/hub"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/node"
	"github.com/mosaic-imaging/mosaic/internal/synth"
)

// TestDataFileModes: with a umask that takes nothing away, everything a
// hub and an enrolled node that ingested an object make in their data
// directories (databases with their -wal and -shm, keys, certificates,
// federation settings, audit logs, blob packs and their folders) is for
// the service user only.
func TestDataFileModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	ctx := context.Background()
	root := t.TempDir()
	hubData, nodeData := filepath.Join(root, "hub"), filepath.Join(root, "node")

	h, srv := tlsHub(t, hub.Config{Data: hubData})
	n, err := node.Open(ctx, node.Config{Data: nodeData, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	if _, err := n.CreateDataset(ctx, index.Dataset{ID: "d", Title: "D", Description: "One patient.", Licence: "CC-BY-4.0", Contact: "data@north.example", Tier: 2}); err != nil {
		t.Fatal(err)
	}
	cohort := filepath.Join(root, "cohort")
	if _, err := synth.Generate(ctx, synth.Options{Dir: cohort, Patients: 1, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	stored := 0
	filepath.WalkDir(filepath.Join(cohort, synth.DICOMDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || stored > 0 {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if o := n.IngestWait(ctx, "d", "test", f); o.Status == node.StatusStored {
			stored++
		}
		return nil
	})
	if stored == 0 {
		t.Fatal("no object stored")
	}
	tok, err := h.AddNode(ctx, "north", "North", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Enroll(ctx, srv.URL, tok, "test"); err != nil {
		t.Fatal(err)
	}
	startLink(t, n)
	if !online(t, h, "north", 10*time.Second) {
		t.Fatal("the node did not come online")
	}

	want := map[string]bool{"hub/hub.db": false, "hub/hub.db-wal": false, "hub/hub.key": false, "hub/audit.log": false,
		"hub/nats-ca.pem": false, "hub/nats-ca.key": false, "hub/nats": false,
		"node/index.db": false, "node/index.db-wal": false, "node/index.db-shm": false, "node/site.key": false, "node/node.key": false,
		"node/federation.json": false, "node/audit.log": false, "node/blobs": false, "node/blobs/packs": false}
	packs := 0
	for _, dir := range []string{hubData, nodeData} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if _, ok := want[rel]; ok {
				want[rel] = true
			}
			if strings.HasSuffix(p, ".pack") {
				packs++
			}
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: mode %v, want no access for group and others", rel, fi.Mode().Perm())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for rel, seen := range want {
		if !seen {
			t.Errorf("%s was not made: the test would not check it", rel)
		}
	}
	if packs == 0 {
		t.Error("no pack file was made")
	}
}
