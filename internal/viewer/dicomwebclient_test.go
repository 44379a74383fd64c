package viewer_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/viewer/viewertest"
)

// TestDICOMwebClient reads a real node's DICOMweb root with
// dicomweb-client from npm (on Node.js): every study, series and instance
// must be found, the study's and series' metadata must list every
// instance, and each frame must have Rows × Columns × Bits Allocated / 8
// bytes and the very pixels of the input file. The node checks the
// bearer token itself (no help from the test's server), so the client's
// token handling is exercised too; without the token it must fail. The
// same client then reads a permit's snapshot as the node serves it for
// the hub's relay: only the snapshot's studies are there.
//
// MOSAIC_DICOMWEB_ROOT and MOSAIC_DICOMWEB_TOKEN point the same client
// at another root (the hub's relay of a permit, say): then only the
// client's own checks run (frame lengths, metadata against searches).
func TestDICOMwebClient(t *testing.T) {
	needTool(t, viewertest.Ready())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	if root := os.Getenv("MOSAIC_DICOMWEB_ROOT"); root != "" {
		rep, err := viewertest.Run(ctx, root, os.Getenv("MOSAIC_DICOMWEB_TOKEN"), 0)
		if err != nil {
			t.Fatal(err)
		}
		want := viewertest.Want{}
		for _, st := range rep.Studies {
			want[st.UID] = map[string][]string{}
			for _, se := range st.Series {
				want[st.UID][se.UID] = se.Instances
			}
		}
		for _, err := range rep.Check(want) {
			t.Error(err)
		}
		t.Logf("%s: %d studies", root, len(rep.Studies))
		return
	}

	fx := startFixture(t)
	// Straight to the node's handler, which must see the token: the
	// fixture's server adds one only when a request has none, so a
	// wrong token reaches the node as it is.
	root := fx.srv.URL + "/dicom-web/" + fxDataset + "/"
	t0 := time.Now()
	rep, err := viewertest.Run(ctx, root, fx.token, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dicomweb-client read %d studies in %s", len(rep.Studies), time.Since(t0).Round(time.Millisecond))
	for _, err := range rep.Check(fx.want) {
		t.Error(err)
	}
	frames := 0
	for _, st := range rep.Studies {
		for _, se := range st.Series {
			if se.Modality != fx.modality[se.UID] {
				t.Errorf("series %s: modality %q, want %q", se.UID, se.Modality, fx.modality[se.UID])
			}
			for _, f := range se.Frames {
				frames++
				if f.Frame == 1 && f.SHA256 != fx.frame1[f.SOP] {
					t.Errorf("instance %s frame 1: the bytes differ from the input file's pixels", f.SOP)
				}
			}
		}
	}
	instances := 0
	for _, st := range fx.want {
		for _, sops := range st {
			instances += len(sops)
		}
	}
	if frames < instances {
		t.Errorf("%d frames read for %d instances", frames, instances)
	}

	// The snapshot of a permit, served by the node as the hub relays it:
	// only the studies frozen in it exist, later ones do not.
	snap, err := viewertest.Run(ctx, fx.srv.URL+fxPermitRoot, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range snap.Check(fx.snapWant) {
		t.Errorf("snapshot: %v", err)
	}
	if len(snap.Studies) >= len(rep.Studies) {
		t.Errorf("the snapshot has %d studies, the dataset %d: the test needs studies outside it", len(snap.Studies), len(rep.Studies))
	}

	if _, err := viewertest.Run(ctx, root, "not-a-token", 1); err == nil {
		t.Error("dicomweb-client read the node with a wrong token")
	} else {
		t.Logf("with a wrong token: %v", err)
	}
}
