package node

import (
	"testing"

	"github.com/mosaic-imaging/mosaic/internal/permit"
)

// TestRelayOp: whole objects and the archive need download; searches,
// metadata, frames and bulk data need view.
func TestRelayOp(t *testing.T) {
	for path, want := range map[string]permit.Op{
		"/studies":                                            permit.OpView,
		"/studies/1.2":                                        permit.OpDownload,
		"/studies/1.2/":                                       permit.OpDownload,
		"/studies/1.2/metadata":                               permit.OpView,
		"/studies/1.2/series":                                 permit.OpView,
		"/studies/1.2/series/3.4":                             permit.OpDownload,
		"/studies/1.2/series/3.4/metadata":                    permit.OpView,
		"/studies/1.2/series/3.4/instances":                   permit.OpView,
		"/studies/1.2/series/3.4/instances/5.6":               permit.OpDownload,
		"/studies/1.2/series/3.4/instances/5.6/metadata":      permit.OpView,
		"/studies/1.2/series/3.4/instances/5.6/frames/1":      permit.OpView,
		"/studies/1.2/series/3.4/instances/5.6/bulk/7fe00010": permit.OpView,
		"/studies/1.2/series/3.4/instances/5.6/bulk/a/b/c":    permit.OpView,
		"/archive/manifest":                                   permit.OpDownload,
		"/archive/objects/5.6":                                permit.OpDownload,
		"/series":                                             permit.OpView,
		"/instances":                                          permit.OpView,
	} {
		if got := relayOp(path); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
}
