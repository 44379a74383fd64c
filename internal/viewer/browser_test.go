package viewer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/mosaic-imaging/mosaic/internal/testutil"
	"github.com/mosaic-imaging/mosaic/internal/viewer"
	"github.com/mosaic-imaging/mosaic/internal/viewer/viewertest"
)

// TestViewerBrowser opens the built viewer in headless Chromium against a
// real node on the same origin, and checks what a researcher needs: the
// series of every study are listed, a series is drawn (pixels read back
// from the canvas are not all one value), the mouse wheel moves to the
// next slice (and the pixels change), dragging changes window/level (and
// the pixels change), the centre and width fields set the window, the
// arrow keys scroll and keep the window, the viewer of a permit shows
// its snapshot's series only, a link
// to a study and series opens just those, and the page's Content Security
// Policy is never violated.
func TestViewerBrowser(t *testing.T) {
	if _, err := os.Stat(testutil.ChromiumPath); err != nil {
		needTool(t, fmt.Errorf("%s is missing (apt-get install chromium, or make test-deps): %w", testutil.ChromiumPath, err))
	}
	needTool(t, viewer.Check(viewer.Assets()))
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	t0 := time.Now()
	fx := startFixture(t)
	t.Logf("node ready in %s", time.Since(t0).Round(time.Millisecond))

	// The series to scroll: the CT series with the most slices.
	var study, series string
	for st, ss := range fx.want {
		for se, sops := range ss {
			if fx.modality[se] == "CT" && (series == "" || len(sops) > len(fx.want[study][series])) {
				study, series = st, se
			}
		}
	}
	if series == "" || len(fx.want[study][series]) < 3 {
		t.Fatalf("the cohort has no CT series of 3 slices or more: choose another seed")
	}
	count := len(fx.want[study][series])

	browser := testutil.Browser(t, ctx, chromedp.WindowSize(1200, 800))
	bctx, cancelSteps := context.WithTimeout(browser, 80*time.Second)
	defer cancelSteps()

	// The page's console errors and exceptions, for the failure message.
	var mu sync.Mutex
	var console []string
	if err := chromedp.Listen(bctx, func(ev any) {
		var line string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type != runtime.ConsoleAPICalledTypeError && e.Type != runtime.ConsoleAPICalledTypeWarning {
				return
			}
			var parts []string
			for _, a := range e.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			line = string(e.Type) + ": " + strings.Join(parts, " ")
		case *runtime.EventExceptionThrown:
			line = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				line += " " + e.ExceptionDetails.Exception.Description
			}
		default:
			return
		}
		mu.Lock()
		console = append(console, line)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf(format+"\nconsole:\n%s", append(args, strings.Join(console, "\n"))...)
	}
	t1 := time.Now()
	if _, err := viewertest.Open(bctx, fx.srv.URL+"/viewer/"); err != nil {
		fail("open the viewer: %v", err)
	}
	t.Logf("first series drawn %s after opening the page", time.Since(t1).Round(time.Millisecond))

	// Every series of every study is listed, and nothing else.
	listed, err := viewertest.Listed(bctx)
	if err != nil {
		fail("series list: %v", err)
	}
	want := 0
	for _, ss := range fx.want {
		want += len(ss)
		for se := range ss {
			if !slices.Contains(listed, se) {
				t.Errorf("series %s is not listed", se)
			}
		}
	}
	if len(listed) != want {
		t.Errorf("%d series listed, want %d", len(listed), want)
	}

	// The CT series, drawn: not all one grey.
	s0, err := viewertest.OpenSeries(bctx, series, count)
	if err != nil {
		fail("open the CT series: %v", err)
	}
	if s0.Err != "" || s0.Width == 0 || s0.Height == 0 {
		fail("no canvas to read: %+v", s0)
	}
	if s0.Distinct < 8 {
		fail("the image is blank: %d distinct grey levels on the canvas (%+v)", s0.Distinct, s0)
	}
	if s0.Index != count/2 {
		t.Errorf("opened at slice %d, want the middle one, %d of %d", s0.Index, count/2, count)
	}

	// The mouse wheel scrolls one slice, and the pixels change.
	s1, err := viewertest.Wheel(bctx, s0, 100)
	if err != nil {
		fail("wheel: %v", err)
	}
	if d := s1.Index - s0.Index; d != 1 && d != -1 {
		t.Errorf("the wheel moved %d slices, want 1", d)
	}
	if s1.Hash == s0.Hash {
		t.Errorf("slice %d and slice %d look the same on the canvas", s0.Index, s1.Index)
	}
	if s1.Distinct < 8 {
		t.Errorf("slice %d is blank: %d grey levels", s1.Index, s1.Distinct)
	}

	// Dragging with the left button changes window/level, and the pixels.
	s2, err := viewertest.Drag(bctx, s1, 96, 64)
	if err != nil {
		fail("drag: %v", err)
	}
	if s2.Index != s1.Index {
		t.Errorf("window/level moved the slice from %d to %d", s1.Index, s2.Index)
	}
	if s2.Hash == s1.Hash {
		t.Errorf("window %s and window %s look the same on the canvas", s1.VOI, s2.VOI)
	}

	// The fields set an exact window.
	s3, err := viewertest.SetWindow(bctx, 300, 500)
	if err != nil {
		fail("window fields: %v", err)
	}
	if s3.Hash == s2.Hash {
		t.Errorf("window 300/500 and window %s look the same on the canvas", s2.VOI)
	}
	t.Logf("slices %d→%d, windows %s → %s → %s, %d grey levels", s0.Index, s1.Index, s1.VOI, s2.VOI, s3.VOI, s3.Distinct)

	// The arrow keys scroll too, keeping the window.
	s4, err := viewertest.Key(bctx, s3, kb.ArrowUp)
	if err != nil {
		fail("arrow up: %v", err)
	}
	if s4.Index != s3.Index-1 || s4.VOI != s3.VOI || s4.Hash == s3.Hash {
		t.Errorf("arrow up: slice %d → %d (want %d), window %s → %s", s3.Index, s4.Index, s3.Index-1, s3.VOI, s4.VOI)
	}

	// A link to one study and series lists that study's series only and
	// opens that series first.
	v, err := viewertest.Open(bctx, fx.srv.URL+"/viewer/?study="+study+"&series="+series)
	if err != nil {
		fail("open a study by link: %v", err)
	}
	if v.Series != series || v.Count != count {
		t.Errorf("the link to series %s opened %s (%d slices)", series, v.Series, v.Count)
	}
	listed, err = viewertest.Listed(bctx)
	if err != nil {
		fail("series list: %v", err)
	}
	if len(listed) != len(fx.want[study]) {
		t.Errorf("the link to study %s lists %d series, want %d", study, len(listed), len(fx.want[study]))
	}
	for _, se := range listed {
		if _, ok := fx.want[study][se]; !ok {
			t.Errorf("the link to study %s lists series %s of another study", study, se)
		}
	}

	// The viewer of a permit lists the snapshot's series only.
	if _, err := viewertest.Open(bctx, fx.srv.URL+"/viewer-permit/"); err != nil {
		fail("open the permit's viewer: %v", err)
	}
	if listed, err = viewertest.Listed(bctx); err != nil {
		fail("series list: %v", err)
	}
	inSnap := 0
	for st, ss := range fx.snapWant {
		inSnap += len(ss)
		for se := range ss {
			if !slices.Contains(listed, se) {
				t.Errorf("the permit's viewer does not list series %s of study %s", se, st)
			}
		}
	}
	if len(listed) != inSnap {
		t.Errorf("the permit's viewer lists %d series, the snapshot has %d", len(listed), inSnap)
	}

	// Nothing to show, or a root the server refuses: the page says why.
	for _, c := range []struct{ path, says string }{
		{"/viewer-none/", "there is nothing to view here"},
		{"/viewer-refused/", "the server answered HTTP 403"},
	} {
		v, err := viewertest.Open(bctx, fx.srv.URL+c.path)
		if err == nil || v.State != "error" || !strings.Contains(v.Message, c.says) {
			t.Errorf("%s: state %q, message %q, want an error saying %q", c.path, v.State, v.Message, c.says)
		}
	}

	if dir := os.Getenv("MOSAIC_UI_SCREENSHOTS"); dir != "" {
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "viewer.png"), png, 0o644)
		}
		if err != nil {
			t.Errorf("screenshot: %v", err)
		}
	}
	mu.Lock()
	t.Logf("console: %d errors and warnings %q", len(console), console)
	mu.Unlock()
	final, err := viewertest.Read(bctx)
	if err != nil {
		fail("read the page: %v", err)
	}
	if s3.CSP != 0 || final.CSP != 0 {
		fail("%d and %d Content Security Policy violations on the two pages", s3.CSP, final.CSP)
	}
	if errors.Is(bctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the browser steps ran out of time")
	}
}
