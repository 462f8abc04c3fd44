package testharness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is a headless Chromium driven through the DevTools protocol
// (chromedp). One is started per test binary, on first use, and stopped
// by Main; each test gets its own tab in its own browser context, so that
// tests share no cookies.
type Browser struct {
	// Log is the browser's output.
	Log         string
	dir         string
	ctx         context.Context // the browser's first tab, which keeps it running
	cancel      context.CancelFunc
	cancelAlloc context.CancelFunc
}

var sharedBrowser struct {
	once    sync.Once
	browser *Browser
	err     error
}

// chromiumFlags are the flags the browser runs with: headless, no
// sandbox (tests run as root), and nothing that reaches the network on
// its own.
var chromiumFlags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("headless", true),
	chromedp.Flag("no-sandbox", true),
	chromedp.Flag("disable-gpu", true),
	chromedp.Flag("disable-quic", true),
	chromedp.Flag("no-first-run", true),
	chromedp.Flag("no-default-browser-check", true),
	chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true),
	chromedp.Flag("disable-dev-shm-usage", true),
	chromedp.Flag("hide-scrollbars", true),
	chromedp.Flag("mute-audio", true),
	chromedp.WindowSize(1280, 900),
}

// Chromium returns the test binary's browser, starting it on first use:
// Debian's chromium (or $DRGUARD_CHROMIUM) with a fresh user-data-dir. A
// missing browser skips the test, or fails it under CI (see Need).
func Chromium(t testing.TB) *Browser {
	t.Helper()
	bin, err := findBinary(os.Getenv("DRGUARD_CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium")
	if err != nil {
		Need(t, "chromium (apt-get install chromium)", err)
	}
	sharedBrowser.once.Do(func() { sharedBrowser.browser, sharedBrowser.err = startChromium(bin) })
	if sharedBrowser.err != nil {
		t.Fatalf("testharness: chromium: %v", sharedBrowser.err)
	}
	b := sharedBrowser.browser
	dumpLogOnFailure(t, "chromium", b.Log)
	return b
}

func startChromium(bin string) (*Browser, error) {
	removeStaleTempDirs("dgchrome")
	dir, err := os.MkdirTemp("/tmp", fmt.Sprintf("dgchrome%d-", os.Getpid()))
	if err != nil {
		return nil, err
	}
	b := &Browser{dir: dir, Log: filepath.Join(dir, "chromium.log")}
	logf, err := os.Create(b.Log)
	if err != nil {
		return nil, err
	}
	opts := append([]chromedp.ExecAllocatorOption{chromedp.ExecPath(bin), chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.CombinedOutput(logf)}, chromiumFlags...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b.ctx, b.cancel, b.cancelAlloc = ctx, cancel, cancelAlloc
	// The browser lives as long as the context of its first action: ctx,
	// not one with a deadline. A browser that does not start ends the
	// allocator's wait with an error.
	if err := chromedp.Do(ctx); err != nil {
		b.stop()
		return nil, fmt.Errorf("start %s: %w\n%s", bin, err, logTail(b.Log, 20))
	}
	return b, nil
}

// stop ends the browser and removes its directory.
func (b *Browser) stop() {
	b.cancel()
	b.cancelAlloc() // waits for the process to exit
	_ = os.RemoveAll(b.dir)
}

// NewTab opens a tab in a fresh browser context, like a private window of
// its own: no cookies from other tests. The tab closes when the test ends.
// Actions run on the returned context time out after within.
func (b *Browser) NewTab(t testing.TB, within time.Duration) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab, for as long as ctx
		t.Fatalf("testharness: new tab: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, within)
	t.Cleanup(cancelTimeout)
	return ctx
}

// stopShared stops the browser Chromium started, if any.
func stopShared() {
	if b := sharedBrowser.browser; b != nil {
		b.stop()
	}
}
