package viewer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mosaic-imaging/mosaic/internal/viewer"
)

// chromiumPath is Debian's Chromium (scripts/test-deps.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// viewState is what the page shows: the viewer's state as it mirrors it
// into the viewport's data attributes, and a digest of the pixels drawn
// on its canvas, read back from the canvas itself.
type viewState struct {
	State    string `json:"state"`
	Series   string `json:"series"`
	Index    int    `json:"index"`
	Count    int    `json:"count"`
	VOI      string `json:"voi"`
	Rendered int    `json:"rendered"`
	CSP      int    `json:"csp"`
	Message  string `json:"message"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Hash     uint32 `json:"hash"`
	Distinct int    `json:"distinct"`
	Err      string `json:"err"`
}

const readState = `(() => {
  const v = document.getElementById('viewport');
  const s = {state: v.dataset.state || '', series: v.dataset.series || '', index: Number(v.dataset.index ?? -1),
    count: Number(v.dataset.count || 0), voi: v.dataset.voi || '', rendered: Number(v.dataset.rendered || 0),
    csp: Number(v.dataset.cspViolations || 0), message: document.getElementById('message').textContent,
    width: 0, height: 0, hash: 0, distinct: 0, err: ''};
  const c = v.querySelector('canvas');
  if (!c) { s.err = 'no canvas in the viewport'; return s; }
  const ctx = c.getContext('2d');
  if (!ctx) { s.err = 'the canvas has no 2d context'; return s; }
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  s.width = c.width; s.height = c.height;
  let h = 2166136261;
  const seen = new Set();
  for (let i = 0; i < d.length; i += 4) { h = Math.imul(h ^ d[i] ^ (d[i+1] << 8) ^ (d[i+2] << 16), 16777619) >>> 0; seen.add(d[i]); }
  s.hash = h; s.distinct = seen.size;
  return s;
})()`

// TestViewerBrowser opens the built viewer in headless Chromium against a
// real node on the same origin, and checks what a researcher needs: the
// series of every study are listed, a series is drawn (pixels read back
// from the canvas are not all one value), the mouse wheel moves to the
// next slice (and the pixels change), dragging changes window/level (and
// the pixels change), the centre and width fields set the window, and the
// page's Content Security Policy is never violated.
func TestViewerBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		needTool(t, fmt.Errorf("%s is missing (apt-get install chromium, or make test-deps): %w", chromiumPath, err))
	}
	needTool(t, viewer.Check(viewer.Assets()))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
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
	slices := len(fx.want[study][series])

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 800),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	bctx, cancelSteps := context.WithTimeout(browser, 60*time.Second)
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
	state := func() viewState {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[viewState](readState))
		if err != nil {
			fail("reading the page: %v", err)
		}
		return s
	}
	// waitFor polls the page until cond holds, then returns its state.
	waitFor := func(what, cond string) viewState {
		t.Helper()
		pctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if _, err := chromedp.Run(pctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			s, _ := chromedp.Run(bctx, chromedp.Evaluate[viewState](readState))
			fail("waiting for %s: %v; page: %+v", what, err, s)
		}
		return state()
	}
	const vp = `document.getElementById('viewport')`

	t1 := time.Now()
	if err := chromedp.Do(bctx, chromedp.Navigate(fx.srv.URL+"/viewer/")); err != nil {
		fail("open the viewer: %v", err)
	}
	s := waitFor("the first series", vp+`.dataset.state === 'ready' || `+vp+`.dataset.state === 'error'`)
	if s.State != "ready" {
		fail("the viewer did not start: %+v", s)
	}
	t.Logf("first series drawn %s after opening the page", time.Since(t1).Round(time.Millisecond))

	// Every series of every study is listed, and nothing else.
	listed, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#series button[data-series]')].map(b => b.dataset.series)`))
	if err != nil {
		fail("series list: %v", err)
	}
	want := 0
	for _, ss := range fx.want {
		want += len(ss)
		for se := range ss {
			if !strings.Contains(strings.Join(listed, " "), se) {
				t.Errorf("series %s is not listed", se)
			}
		}
	}
	if len(listed) != want {
		t.Errorf("%d series listed, want %d", len(listed), want)
	}

	// Open the CT series.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#series button[data-series="`+series+`"]`))); err != nil {
		fail("click the series: %v", err)
	}
	s0 := waitFor("the CT series", fmt.Sprintf(`%s.dataset.series === %q && %s.dataset.state === 'ready' && Number(%s.dataset.count) === %d`, vp, series, vp, vp, slices))
	if s0.Err != "" || s0.Width == 0 || s0.Height == 0 {
		fail("no canvas to read: %+v", s0)
	}
	if s0.Distinct < 8 {
		fail("the image is blank: %d distinct grey levels on the canvas (%+v)", s0.Distinct, s0)
	}
	if s0.Index != slices/2 {
		t.Errorf("opened at slice %d, want the middle one, %d of %d", s0.Index, slices/2, slices)
	}

	box, err := chromedp.Run(bctx, chromedp.Dimensions(chromedp.ID("viewport")))
	if err != nil {
		fail("viewport box: %v", err)
	}
	q := box.Content
	cx, cy := (q[0]+q[2]+q[4]+q[6])/4, (q[1]+q[3]+q[5]+q[7])/4

	// The mouse wheel scrolls one slice, and the pixels change.
	if err := chromedp.Do(bctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseWheel, cx, cy, func(p *input.DispatchMouseEventParams) {
		p.DeltaY = 100
		p.DeltaX = 0.01 // the protocol wants both, and a zero is not sent
	})); err != nil {
		fail("wheel: %v", err)
	}
	s1 := waitFor("the next slice", fmt.Sprintf(`Number(%s.dataset.index) !== %d && Number(%s.dataset.rendered) > %d`, vp, s0.Index, vp, s0.Rendered))
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
	drag := []chromedp.Action[chromedp.Void]{
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, cx, cy, chromedp.ButtonType(input.MouseButtonLeft), chromedp.ClickCount(1),
			func(p *input.DispatchMouseEventParams) { p.Buttons = 1 }),
	}
	for i := 1; i <= 8; i++ {
		x, y := cx+float64(i)*12, cy+float64(i)*8
		drag = append(drag, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y, chromedp.ButtonType(input.MouseButtonLeft),
			func(p *input.DispatchMouseEventParams) { p.Buttons = 1 }))
	}
	drag = append(drag, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, cx+96, cy+64, chromedp.ButtonType(input.MouseButtonLeft), chromedp.ClickCount(1)))
	if err := chromedp.Do(bctx, drag...); err != nil {
		fail("drag: %v", err)
	}
	s2 := waitFor("a new window", fmt.Sprintf(`%s.dataset.voi !== %q && Number(%s.dataset.rendered) > %d`, vp, s1.VOI, vp, s1.Rendered))
	if s2.Index != s1.Index {
		t.Errorf("window/level moved the slice from %d to %d", s1.Index, s2.Index)
	}
	if s2.Hash == s1.Hash {
		t.Errorf("window %s and window %s look the same on the canvas", s1.VOI, s2.VOI)
	}

	// The fields set an exact window.
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.ID("wc"), "300"),
		chromedp.SetValue(chromedp.ID("ww"), "500"),
		chromedp.Click(chromedp.ID("apply-wl"))); err != nil {
		fail("window fields: %v", err)
	}
	s3 := waitFor("the window of the fields", fmt.Sprintf(`%s.dataset.voi === "300,500"`, vp))
	if s3.Hash == s2.Hash {
		t.Errorf("window 300/500 and window %s look the same on the canvas", s2.VOI)
	}
	t.Logf("slices %d→%d, windows %s → %s → %s, %d grey levels", s0.Index, s1.Index, s1.VOI, s2.VOI, s3.VOI, s3.Distinct)

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
	if s3.CSP != 0 {
		fail("%d Content Security Policy violations", s3.CSP)
	}
	if errors.Is(bctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the browser steps ran out of time")
	}
}
