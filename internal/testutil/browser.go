package testutil

import (
	"context"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's Chromium (scripts/test-deps.sh installs it).
const ChromiumPath = "/usr/bin/chromium"

// NeedChromium fails the test in CI, and skips it elsewhere, when
// Chromium is not installed: CI must never skip a browser test.
func NeedChromium(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: scripts/test-deps.sh installs Debian's chromium", ChromiumPath)
		}
		t.Skipf("%s is missing (apt-get install chromium, or make test-deps): the browser test needs it", ChromiumPath)
	}
}

// Browser starts headless Chromium with the flags these machines need
// (the tests run as root: no sandbox; no GPU, no background traffic, a
// fresh profile) plus extra, and returns a context for chromedp's
// actions. Chromium stops when ctx ends or the test does.
func Browser(t testing.TB, ctx context.Context, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}, extra...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	return browser
}
