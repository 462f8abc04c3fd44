package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// twoApproversPolicy is countingPolicy's step gated behind two approvers.
func twoApproversPolicy(dir string) string {
	return strings.Replace(countingPolicy(dir, true), "approval: {required: true, expires: 10m}", "approval: {required: true, expires: 10m, approvals: 2}", 1)
}

// browserTab is a tab of the shared Chromium, watched for Content Security
// Policy violations.
type browserTab struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	csp []string
}

func newBrowserTab(t *testing.T) *browserTab {
	t.Helper()
	tab := &browserTab{t: t, ctx: testharness.Chromium(t).NewTab(t, 2*time.Minute)}
	err := chromedp.Listen(tab.ctx, func(ev any) {
		var text string
		switch e := ev.(type) {
		case *cdplog.EventEntryAdded:
			text = e.Entry.Text
		case *runtime.EventExceptionThrown:
			text = e.ExceptionDetails.Text
		}
		if strings.Contains(text, "Content Security Policy") {
			tab.mu.Lock()
			tab.csp = append(tab.csp, text)
			tab.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(tab.ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	return tab
}

// do runs actions, failing the test on error.
func (b *browserTab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page (awaiting it, when
// it is a promise).
func eval[T any](b *browserTab, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitFor evaluates a JavaScript condition every 50 ms until it holds;
// while the page navigates, an evaluation that fails counts as false.
func (b *browserTab) waitFor(what, cond string) {
	b.t.Helper()
	expr := "(() => { try { return !!(" + cond + ") } catch (e) { return false } })()"
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			page, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
			b.t.Fatalf("timed out waiting for %s (%s); the page says:\n%s", what, cond, page)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// violations are the CSP violations the browser reported so far.
func (b *browserTab) violations() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.csp...)
}

// checkPage runs the accessibility and CSP smoke check on the page as the
// browser holds it now.
func (b *browserTab) checkPage(name string) {
	b.t.Helper()
	for _, p := range testharness.PageProblems(eval[string](b, "document.documentElement.outerHTML")) {
		b.t.Errorf("%s: %s", name, p)
	}
}

// screenshot saves the page as name.png in $DRGUARD_SCREENSHOT_DIR, or in
// the test's temporary directory.
func (b *browserTab) screenshot(name string) string {
	b.t.Helper()
	dir := os.Getenv("DRGUARD_SCREENSHOT_DIR")
	if dir == "" {
		dir = b.t.TempDir()
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		b.t.Errorf("%s is not a PNG", path)
	}
	return path
}

// signInAs signs in through the form.
func (b *browserTab) signInAs(base, token, name string) {
	b.t.Helper()
	b.do(chromedp.Navigate(base+"/"), chromedp.WaitVisible("#token"))
	b.checkPage("/signin")
	b.do(chromedp.SendKeys("#token", token), chromedp.Submit("form.signin"), chromedp.WaitVisible("#current-user"))
	if got := eval[string](b, "document.getElementById('current-user').textContent + ' ' + document.getElementById('current-role').textContent"); got != name {
		b.t.Fatalf("signed in as %q, want %q", got, name)
	}
}

// TestConsoleInBrowser drives the console in headless Chromium: an
// approver signs in, opens the incident of a posted alert and watches its
// timeline change without a reload, approves the gated step and sees it
// run; a viewer finds no buttons; a forged cross-site POST carrying the
// session cookie is refused. No page breaks the CSP, and the pages pass
// the accessibility smoke check.
func TestConsoleInBrowser(t *testing.T) {
	out := t.TempDir()
	a := startApp(t, twoApproversPolicy(out))
	bob := newBrowserTab(t)
	bob.signInAs(a.URL, approverToken, "bob approver")

	post(t, a, webhook("firing", time.Now().Add(-time.Minute).UTC(), dbDown("pg-browser")))
	ap := pendingFor(t, a, "pg-browser")
	bob.do(chromedp.Navigate(a.URL+"/incidents"), chromedp.Click(`a[href="/incidents/`+ap.IncidentID+`"]`), chromedp.WaitVisible("#timeline"))
	bob.waitFor("the event stream", `document.getElementById('live-status').textContent.startsWith('Live')`)
	bob.checkPage("incident page")
	eval[int](bob, "window.drguardNoReload = 42")

	// Another approver's vote reaches bob's timeline without a reload.
	if code, _, body := approve(t, a, ap.ID, approver2); code != http.StatusOK {
		t.Fatalf("carol approves: %d %s", code, body)
	}
	bob.waitFor("carol's vote on the timeline", `document.getElementById('timeline').textContent.includes('carol approved step restart')`)
	if eval[int](bob, "window.drguardNoReload || 0") != 42 {
		t.Fatal("the page reloaded to show the vote")
	}
	bob.screenshot("console-incident")

	bob.do(chromedp.Navigate(a.URL + "/approvals"))
	bob.waitFor("the approval", `document.getElementById('`+ap.ID+`') !== null`)
	bob.checkPage("approvals page")
	if votes := eval[string](bob, `document.querySelector('#`+ap.ID+` .votes').textContent`); !strings.Contains(votes, "approved by carol") || !strings.Contains(votes, "1 more approval needed") {
		t.Errorf("the approvals page says %q", votes)
	}
	bob.screenshot("console-approvals")
	bob.do(chromedp.SendKeys("#approve-comment-"+ap.ID, "restore checked"), chromedp.Click(`#`+ap.ID+` form[action$="/approve"] button`))
	bob.waitFor("the decision", `(document.getElementById('decided') || {}).textContent?.includes('now approved')`)

	bob.do(chromedp.Navigate(a.URL + "/incidents/" + ap.IncidentID))
	bob.waitFor("the step to run and succeed", `document.querySelector('[data-step="restart"] [data-step-state]').textContent === 'succeeded'`)
	if n := executions(t, out); n != 1 {
		t.Errorf("the step ran %d times, want 1", n)
	}

	t.Run("viewer", func(t *testing.T) { viewerFindsNoButtons(t, a) })
	t.Run("forged cross-site POST", func(t *testing.T) { forgedPostRefused(t, a, bob) })
	if v := bob.violations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %q", v)
	}
}

// viewerFindsNoButtons: a viewer sees a pending approval but no button
// that changes anything (only Sign out, and the incident list's filter),
// and the server refuses the decision the page did not offer.
func viewerFindsNoButtons(t *testing.T, a *testApp) {
	post(t, a, webhook("firing", time.Now().Add(-time.Minute).UTC(), dbDown("pg-viewer")))
	ap := pendingFor(t, a, "pg-viewer")
	victor := newBrowserTab(t)
	victor.signInAs(a.URL, viewerToken, "victor viewer")
	for _, path := range []string{"/approvals", "/incidents/" + ap.IncidentID, "/incidents", "/recoverability"} {
		victor.do(chromedp.Navigate(a.URL + path))
		victor.waitFor(path, `document.querySelector('main h1') !== null`)
		victor.checkPage(path)
		// Sign out, and Filter on the incident list (a GET form), are all.
		buttons := eval[string](victor, `[...document.querySelectorAll('button')].map(b => b.textContent.trim()).join(',')`)
		if buttons != "Sign out" && (path != "/incidents" || buttons != "Sign out,Filter") {
			t.Errorf("%s: a viewer sees buttons %q", path, buttons)
		}
	}
	status := eval[int](victor, `(async () => {
		const csrf = document.querySelector('input[name=csrf]').value;
		const r = await fetch('/approvals/`+ap.ID+`/approve', {method: 'POST', body: new URLSearchParams({csrf, paramsHash: '`+ap.ParamsHash+`'})});
		return r.status; })()`)
	if status != http.StatusForbidden || len(pendingFor(t, a, "pg-viewer").Votes) != 0 {
		t.Errorf("a viewer's POST with its session and CSRF token: %d; want 403 and no vote", status)
	}
	if v := victor.violations(); len(v) > 0 {
		t.Errorf("Content Security Policy violations: %q", v)
	}
}

// forgedPostRefused: a page on another origin of the same site (so the
// SameSite=Strict session cookie goes along) submits a form to approve;
// drguard refuses it and nothing is approved.
func forgedPostRefused(t *testing.T, a *testApp, bob *browserTab) {
	post(t, a, webhook("firing", time.Now().Add(-time.Minute).UTC(), dbDown("pg-forged")))
	ap := pendingFor(t, a, "pg-forged")
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>win a prize</title><form method="post" action="%s/approvals/%s/approve">
<input type="hidden" name="paramsHash" value="%s"><input type="hidden" name="csrf" value="guessed">
<button id="go">Claim</button></form>`, a.URL, ap.ID, ap.ParamsHash)
	}))
	defer evil.Close()
	bob.do(chromedp.Navigate(evil.URL), chromedp.Click("#go"))
	bob.waitFor("drguard's answer", `location.pathname.endsWith('/approve')`)
	if body := eval[string](bob, "document.body.innerText"); !strings.Contains(body, "cross-origin request refused") {
		t.Errorf("the forged POST got: %q", body)
	}
	if now := pendingFor(t, a, "pg-forged"); len(now.Votes) != 0 {
		t.Errorf("the forged POST approved: %v", now.Votes)
	}
}

// TestBrowserReportsCSPViolations: the watch that TestConsoleInBrowser
// relies on sees a violation: an inline script under drguard's own
// Content-Security-Policy.
func TestBrowserReportsCSPViolations(t *testing.T) {
	a := startApp(t, noPolicies)
	resp, err := http.Get(a.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		fmt.Fprint(w, `<!doctype html><title>t</title><p id="p">x</p><script>document.title = 'ran'</script>`)
	}))
	defer page.Close()
	tab := newBrowserTab(t)
	tab.do(chromedp.Navigate(page.URL), chromedp.WaitVisible("#p"))
	testharness.Eventually(t, 10*time.Second, "a reported violation", func() bool { return len(tab.violations()) > 0 })
	if title := eval[string](tab, "document.title"); title == "ran" {
		t.Error("the inline script ran under drguard's CSP")
	}
}
