// Package viewertest runs the dicomweb-client conformance check
// (web/viewer/test/dicomweb-client.mjs, on Node.js) against any DICOMweb
// root, a node's or the hub's relay of a permit, and checks its report.
// It is for tests: it finds the script through its own source file.
package viewertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Report is what the script read through dicomweb-client.
type Report struct {
	Root    string  `json:"root"`
	Studies []Study `json:"studies"`
}

// Study is one study of searchForStudies, with the number of instances
// in retrieveStudyMetadata.
type Study struct {
	UID               string   `json:"uid"`
	MetadataInstances int      `json:"metadata_instances"`
	Series            []Series `json:"series"`
}

// Series is one series of searchForSeries: its instances' UIDs from
// searchForInstances (sorted), the number of instances in
// retrieveSeriesMetadata, and the frames read with retrieveInstanceFrames.
type Series struct {
	UID               string   `json:"uid"`
	Modality          string   `json:"modality"`
	Instances         []string `json:"instances"`
	MetadataInstances int      `json:"metadata_instances"`
	Frames            []Frame  `json:"frames"`
}

// Frame is one frame as retrieveInstanceFrames returned it, with the
// image attributes of the instance's metadata.
type Frame struct {
	SOP             string `json:"sop"`
	Frame           int    `json:"frame"`
	Rows            int    `json:"rows"`
	Columns         int    `json:"columns"`
	BitsAllocated   int    `json:"bits_allocated"`
	SamplesPerPixel int    `json:"samples_per_pixel"`
	Bytes           int    `json:"bytes"`
	SHA256          string `json:"sha256"`
}

// ErrNoNode says that node, npm or the script's packages are missing.
var ErrNoNode = errors.New("viewertest: Node.js or web/viewer/node_modules is missing (make viewer installs the packages; scripts/test-deps.sh installs nodejs and npm)")

// WebDir is web/viewer of this source tree.
func WebDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "web", "viewer")
}

// Ready returns ErrNoNode (wrapped, with the reason) when the check
// cannot run here.
func Ready() error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("%w: %v", ErrNoNode, err)
	}
	if _, err := os.Stat(filepath.Join(WebDir(), "node_modules", "dicomweb-client", "package.json")); err != nil {
		return fmt.Errorf("%w: %v", ErrNoNode, err)
	}
	return nil
}

// Run reads root (an absolute DICOMweb root URL) with dicomweb-client,
// with token as bearer token when not empty, retrieving frames of at
// most maxInstances instances per series (0: all).
func Run(ctx context.Context, root, token string, maxInstances int) (*Report, error) {
	if err := Ready(); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join("test", "dicomweb-client.mjs"), root, strconv.Itoa(maxInstances))
	cmd.Dir = WebDir()
	cmd.Env = append(os.Environ(), "MOSAIC_DICOMWEB_TOKEN="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// dicomweb-client dumps the failed request to stderr first;
		// the script's own message is the last line.
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return nil, fmt.Errorf("viewertest: dicomweb-client against %s: %v: %s", root, err, msg)
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("viewertest: the script's report: %v", err)
	}
	return &rep, nil
}

// Want is what a root should hold: study UID to series UID to the
// series' SOP Instance UIDs.
type Want map[string]map[string][]string

// Check compares the report with want and checks every frame's length
// against its instance's Rows, Columns, Samples per Pixel and Bits
// Allocated; it returns every difference found.
func (rep *Report) Check(want Want) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	seen := map[string]bool{}
	for _, st := range rep.Studies {
		seen[st.UID] = true
		wantSeries, ok := want[st.UID]
		if !ok {
			bad("study %s was found but should not be there", st.UID)
			continue
		}
		total := 0
		seenSeries := map[string]bool{}
		for _, se := range st.Series {
			seenSeries[se.UID] = true
			wantSOPs, ok := wantSeries[se.UID]
			if !ok {
				bad("series %s of study %s was found but should not be there", se.UID, st.UID)
				continue
			}
			w := slices.Sorted(slices.Values(wantSOPs))
			if !slices.Equal(se.Instances, w) {
				bad("series %s: searchForInstances found %d instances, want %d (%v, want %v)", se.UID, len(se.Instances), len(w), se.Instances, w)
			}
			if se.MetadataInstances != len(w) {
				bad("series %s: retrieveSeriesMetadata gave %d instances, want %d", se.UID, se.MetadataInstances, len(w))
			}
			for _, f := range se.Frames {
				if !slices.Contains(w, f.SOP) {
					bad("series %s: a frame of instance %s, which is not in the series", se.UID, f.SOP)
				}
				size := f.Rows * f.Columns * max(f.SamplesPerPixel, 1) * f.BitsAllocated / 8
				if size == 0 || f.Bytes != size {
					bad("instance %s frame %d: %d bytes, want Rows %d × Columns %d × Samples %d × Bits Allocated %d / 8 = %d",
						f.SOP, f.Frame, f.Bytes, f.Rows, f.Columns, f.SamplesPerPixel, f.BitsAllocated, size)
				}
			}
			total += len(w)
		}
		for se := range wantSeries {
			if !seenSeries[se] {
				bad("series %s of study %s is missing", se, st.UID)
			}
		}
		if st.MetadataInstances != total {
			bad("study %s: retrieveStudyMetadata gave %d instances, want %d", st.UID, st.MetadataInstances, total)
		}
	}
	for st := range want {
		if !seen[st] {
			bad("study %s is missing", st)
		}
	}
	return errs
}
