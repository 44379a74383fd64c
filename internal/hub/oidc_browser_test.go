package hub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mosaic-imaging/mosaic/internal/oidc"
	"github.com/mosaic-imaging/mosaic/internal/testutil"
)

// TestOIDCBrowser logs in through the provider's own page in headless
// Chromium: the hub's login page, the provider's form, back on the hub
// with the role the provider's groups give; then logs out at the hub and
// the provider.
func TestOIDCBrowser(t *testing.T) {
	testutil.NeedChromium(t)
	f := oidcSetup(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	browser := testutil.Browser(t, ctx)
	bctx, cancelSteps := context.WithTimeout(browser, 45*time.Second)
	defer cancelSteps()

	// The hub's login page sends the browser to the provider's.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(f.url+"/login?next=/catalogue"),
		chromedp.WaitVisible(chromedp.ID("oidc-login")),
		chromedp.Click(chromedp.ID("oidc-login")),
		chromedp.WaitVisible(chromedp.ID("username")),
	); err != nil {
		t.Fatal(err)
	}
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || !strings.HasPrefix(loc, f.op.issuer+"/login") {
		t.Fatalf("at %q (%v), want the provider's login page", loc, err)
	}
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "alice-pass"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.CSS(".who")),
	); err != nil {
		t.Fatal(err)
	}
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != f.url+"/catalogue" {
		t.Fatalf("after login at %q (%v), want the hub's catalogue", loc, err)
	}
	who, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(".who")))
	if want := oidc.UserID(f.op.issuer, "a1f3-alice") + " researcher"; err != nil || strings.Join(strings.Fields(who), " ") != want {
		t.Fatalf("logged in as %q (%v), want %q", who, err, want)
	}

	// Logging out ends the hub's session and the provider's, and the
	// provider sends the browser back to the hub.
	if err := chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`a.login`)),
	); err != nil {
		t.Fatal(err)
	}
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != f.url+"/" {
		t.Fatalf("after logout at %q (%v), want the hub", loc, err)
	}
	f.op.mu.Lock()
	ended := append([]string(nil), f.op.terminated...)
	f.op.mu.Unlock()
	if len(ended) != 1 || ended[0] != "a1f3-alice" {
		t.Errorf("sessions ended at the provider: %v", ended)
	}
}
