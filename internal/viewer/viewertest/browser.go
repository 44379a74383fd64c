package viewertest

import (
	"context"
	"fmt"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// View is what the viewer's page shows, read in a browser: the state the
// app mirrors into the viewport's data attributes, and a digest of the
// pixels on its canvas, read back from the canvas itself.
type View struct {
	State    string `json:"state"`    // loading, ready, empty or error
	Series   string `json:"series"`   // the Series Instance UID shown
	Index    int    `json:"index"`    // the slice shown, from 0
	Count    int    `json:"count"`    // the slices of the series
	VOI      string `json:"voi"`      // "centre,width"
	Rendered int    `json:"rendered"` // renders so far
	CSP      int    `json:"csp"`      // Content Security Policy violations
	Message  string `json:"message"`  // the status line
	Width    int    `json:"width"`    // of the canvas
	Height   int    `json:"height"`
	Hash     uint32 `json:"hash"`     // of the canvas's pixels
	Distinct int    `json:"distinct"` // grey levels on the canvas
	Err      string `json:"err"`      // why the canvas could not be read
}

const readView = `(() => {
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

const vp = `document.getElementById('viewport')`

// Read returns what the page in ctx (a chromedp context on the viewer's
// page) shows now.
func Read(ctx context.Context) (View, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[View](readView))
}

// wait polls the page until cond (a JavaScript expression) holds, for at
// most 30 seconds, and returns what it shows then.
func wait(ctx context.Context, what, cond string) (View, error) {
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(pctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		v, _ := Read(ctx)
		return v, fmt.Errorf("waiting for %s: %v; the page shows %+v", what, err, v)
	}
	return Read(ctx)
}

// Open navigates to the viewer's page (for example
// https://hub.example/viewer/?permit=ID, with the browser logged in) and
// waits until its first series is drawn, or it reports an error.
func Open(ctx context.Context, pageURL string) (View, error) {
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
		return View{}, err
	}
	v, err := wait(ctx, "the first series", vp+`.dataset.state === 'ready' || `+vp+`.dataset.state === 'error' || `+vp+`.dataset.state === 'empty'`)
	if err == nil && v.State != "ready" {
		err = fmt.Errorf("the viewer did not start: %s (%+v)", v.Message, v)
	}
	return v, err
}

// Listed returns the Series Instance UIDs of the series list.
func Listed(ctx context.Context) ([]string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#series button[data-series]')].map(b => b.dataset.series)`))
}

// OpenSeries clicks a series in the list and waits until its slices
// (count of them) are drawn.
func OpenSeries(ctx context.Context, series string, count int) (View, error) {
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#series button[data-series="`+series+`"]`))); err != nil {
		return View{}, err
	}
	return wait(ctx, "series "+series, fmt.Sprintf(`%s.dataset.series === %q && %s.dataset.state === 'ready' && Number(%s.dataset.count) === %d`, vp, series, vp, vp, count))
}

// centre is the middle of the viewport on the page.
func centre(ctx context.Context) (float64, float64, error) {
	box, err := chromedp.Run(ctx, chromedp.Dimensions(chromedp.ID("viewport")))
	if err != nil {
		return 0, 0, err
	}
	q := box.Content
	return (q[0] + q[2] + q[4] + q[6]) / 4, (q[1] + q[3] + q[5] + q[7]) / 4, nil
}

// Wheel turns the mouse wheel over the image once (positive dy: towards
// the user) and waits until another slice is drawn.
func Wheel(ctx context.Context, before View, dy float64) (View, error) {
	x, y, err := centre(ctx)
	if err != nil {
		return View{}, err
	}
	if err := chromedp.Do(ctx, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseWheel, x, y, func(p *input.DispatchMouseEventParams) {
		p.DeltaY = dy
		p.DeltaX = 0.01 // the protocol wants both, and a zero is not sent
	})); err != nil {
		return View{}, err
	}
	return wait(ctx, "another slice", fmt.Sprintf(`Number(%s.dataset.index) !== %d && Number(%s.dataset.rendered) > %d`, vp, before.Index, vp, before.Rendered))
}

// Drag drags over the image with the left button (window/level) by dx,
// dy pixels and waits until a new window is drawn.
func Drag(ctx context.Context, before View, dx, dy float64) (View, error) {
	x, y, err := centre(ctx)
	if err != nil {
		return View{}, err
	}
	held := func(p *input.DispatchMouseEventParams) { p.Buttons = 1 }
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x, y, chromedp.ButtonType(input.MouseButtonLeft), chromedp.ClickCount(1), held),
	}
	const n = 8
	for i := 1; i <= n; i++ {
		steps = append(steps, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x+dx*float64(i)/n, y+dy*float64(i)/n,
			chromedp.ButtonType(input.MouseButtonLeft), held))
	}
	steps = append(steps, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x+dx, y+dy, chromedp.ButtonType(input.MouseButtonLeft), chromedp.ClickCount(1)))
	if err := chromedp.Do(ctx, steps...); err != nil {
		return View{}, err
	}
	return wait(ctx, "a new window", fmt.Sprintf(`%s.dataset.voi !== %q && Number(%s.dataset.rendered) > %d`, vp, before.VOI, vp, before.Rendered))
}

// SetWindow types a window centre and width into the fields, applies
// them and waits until that window is drawn.
func SetWindow(ctx context.Context, centre, width int) (View, error) {
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("wc"), fmt.Sprint(centre)),
		chromedp.SetValue(chromedp.ID("ww"), fmt.Sprint(width)),
		chromedp.Click(chromedp.ID("apply-wl"))); err != nil {
		return View{}, err
	}
	return wait(ctx, "the window of the fields", fmt.Sprintf(`%s.dataset.voi === "%d,%d"`, vp, centre, width))
}

// Key focuses the image, presses a key (kb.ArrowUp, kb.ArrowDown,
// kb.PageUp, kb.PageDown scroll) and waits until another slice is drawn.
func Key(ctx context.Context, before View, key string) (View, error) {
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.ID("viewport")), chromedp.KeyEvent(key)); err != nil {
		return View{}, err
	}
	return wait(ctx, "another slice", fmt.Sprintf(`Number(%s.dataset.index) !== %d && Number(%s.dataset.rendered) > %d`, vp, before.Index, vp, before.Rendered))
}
