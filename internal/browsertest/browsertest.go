// Package browsertest drives Debian's headless Chromium for the tests of
// the web client, over the DevTools protocol (chromedp): a browser with
// its own profile directory, tabs that record the page's script errors
// and Content-Security-Policy violations, and the steps a test takes as a
// person would (click, type, press Enter, download), each bounded in time
// and waiting on the page's state, never on sleeps.
//
// Chromium comes from Debian's chromium package, which scripts/test
// installs; PARLEY_CHROMIUM names another executable. Without it, tests
// skip, or fail under CI=true.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
)

// Timeout bounds each step of a Page.
const Timeout = 90 * time.Second

// Chromium returns the path of the Chromium executable: PARLEY_CHROMIUM,
// else /usr/bin/chromium, else chromium on the PATH. Without one the test
// is skipped, or fails when CI=true.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PARLEY_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing (scripts/test installs it)")
	}
	t.Skip("chromium is missing: apt-get install chromium, or set PARLEY_CHROMIUM")
	return ""
}

// Flags are the Chromium flags the tests run with: headless, without
// the sandbox (tests may run as root), and without the background
// connections that this machine's closed network refuses.
func Flags(exec, userDataDir string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exec),
		chromedp.UserDataDir(userDataDir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 800),
	}
}

// Browser is one Chromium process.
type Browser struct {
	t    testing.TB
	ctx  context.Context
	stop func()
}

// Start starts Chromium with the profile directory dir (a new one when
// empty) and the extra options; it stops when the test ends, or at
// Close.
func Start(t testing.TB, dir string, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(Flags(Chromium(t), dir), extra...)...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &Browser{t: t, ctx: ctx, stop: func() { cancel(); cancelAlloc() }}
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a deadline
		b.stop()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// Close stops the browser; its profile directory stays.
func (b *Browser) Close() { b.stop() }

// Page is one tab, with the script errors of its page.
type Page struct {
	t    testing.TB
	ctx  context.Context
	name string
	// Out is where Shot saves screenshots (besides the artifact directory).
	Out  string
	mu   sync.Mutex
	errs []string
	log  []string
	// ignore are the texts of console messages that the test expects.
	ignore []string
	done   chan struct{}
	// metrics: Chromium's performance metrics were enabled (Meter).
	metrics bool
}

// NewPage opens a tab of w×h pixels for the test t, named name (for screenshots and
// errors). It records the page's exceptions, console errors and
// Content-Security-Policy violations, and fails the test with them when
// the test ends; failed loads (network errors) are not errors. Its
// console is logged when the test fails.
func (b *Browser) NewPage(t testing.TB, name string, w, h int64) *Page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	p := &Page{t: t, ctx: ctx, name: name, done: make(chan struct{})}
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		cancel()
		t.Fatal(err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		defer close(p.done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			p.record(m)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.errs {
			t.Errorf("%s: page: %s", name, e)
		}
		if t.Failed() {
			t.Logf("%s: console:\n%s", name, strings.Join(p.log, "\n"))
		}
	})
	p.Run(chromedp.EmulateViewport(w, h))
	return p
}

// record keeps a console message, and an error the test did not expect.
func (p *Page) record(m chromedp.ConsoleMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, m.String())
	for _, s := range p.ignore {
		if strings.Contains(m.Text, s) {
			return
		}
	}
	if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || (m.Type == chromedp.ConsoleError && m.Source != "network") {
		p.errs = append(p.errs, m.String())
	}
}

// Ignore makes console messages that contain s no errors.
func (p *Page) Ignore(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ignore = append(p.ignore, s)
}

// Context is the tab's context, for actions this package does not offer.
func (p *Page) Context() context.Context { return p.ctx }

// Run runs actions within Timeout, failing the test (with a screenshot)
// if they fail.
func (p *Page) Run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.Shot("failed")
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// Grant grants the page's origin the permission named (such as
// "notifications"), as a person who allowed it in the browser would.
func (p *Page) Grant(origin, permission string) {
	p.t.Helper()
	if _, err := chromedp.Call(p.ctx, browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: permission}, Setting: browser.PermissionSettingGranted, Origin: origin}); err != nil {
		p.t.Fatalf("%s: grant %s to %s: %v", p.name, permission, origin, err)
	}
}

// Minimize minimizes the page's window, or with false restores it: a
// minimized page is hidden (document.hidden), as a tab in the
// background is.
func (p *Page) Minimize(minimized bool) {
	p.t.Helper()
	win, err := chromedp.Call(p.ctx, browser.GetWindowForTarget, browser.GetWindowForTargetParams{})
	if err != nil {
		p.t.Fatalf("%s: its window: %v", p.name, err)
	}
	state := browser.WindowStateNormal
	if minimized {
		state = browser.WindowStateMinimized
	}
	if _, err := chromedp.Call(p.ctx, browser.SetWindowBounds, browser.SetWindowBoundsParams{WindowID: win.WindowID, Bounds: &browser.Bounds{WindowState: state}}); err != nil {
		p.t.Fatalf("%s: window %s: %v", p.name, state, err)
	}
}

// Eval evaluates a JavaScript expression and returns its value.
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.name, expr, err)
	}
	return v
}

// BusyMeter returns a function that reads Chromium's count of the time
// the page's main thread was busy so far (its TaskDuration metric), in
// milliseconds. Reading it is a task of that thread, so it runs after
// the frame that showed what the page was waiting for.
func (p *Page) BusyMeter() func() float64 {
	p.t.Helper()
	return p.Meter("TaskDuration")
}

// CPUMeter is BusyMeter for the CPU time the page's main thread used so
// far (ThreadTime): what it did without the time it waited for a core.
func (p *Page) CPUMeter() func() float64 {
	p.t.Helper()
	return p.Meter("ThreadTime")
}

// Meter returns a function that reads one of Chromium's performance
// metrics of the page (a time, in seconds), in milliseconds.
func (p *Page) Meter(metric string) func() float64 {
	p.t.Helper()
	if !p.metrics {
		if _, err := chromedp.Call(p.ctx, performance.Enable, performance.EnableParams{}); err != nil {
			p.t.Fatalf("%s: enable performance metrics: %v", p.name, err)
		}
		p.metrics = true
	}
	return func() float64 {
		res, err := chromedp.Call(p.ctx, performance.GetMetrics, cdp.Empty{})
		if err != nil {
			p.t.Fatalf("%s: performance metrics: %v", p.name, err)
		}
		for _, m := range res.Metrics {
			if m.Name == metric {
				return m.Value * 1000
			}
		}
		p.t.Fatalf("%s: performance metrics: no %s", p.name, metric)
		return 0
	}
}

// Shot saves a PNG of the viewport as NAME-SHOT.png in the test's
// artifact directory (kept by go test -artifacts) and in Out when set.
func (p *Page) Shot(shot string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Logf("%s: screenshot %s: %v", p.name, shot, err)
		return
	}
	dirs := []string{}
	if t, ok := p.t.(*testing.T); ok {
		dirs = append(dirs, t.ArtifactDir())
	}
	if p.Out != "" {
		dirs = append(dirs, p.Out)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, p.name+"-"+shot+".png"), buf, 0o644); err != nil {
			p.t.Logf("%s: screenshot %s: %v", p.name, shot, err)
		}
	}
}

// Until waits until the JavaScript expression is true, re-evaluating it
// on every change of the page.
func (p *Page) Until(expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(Timeout-time.Second))); err != nil {
		p.Shot("failed")
		p.t.Fatalf("%s: waiting for %s: %v", p.name, expr, err)
	}
}

// UntilHidden waits until the JavaScript expression is true,
// re-evaluating it every 50 ms: for a hidden page (a minimized window, a
// tab in the background), which draws no frames, so Until would never
// evaluate it.
func (p *Page) UntilHidden(expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(Timeout-time.Second))); err != nil {
		p.Shot("failed")
		p.t.Fatalf("%s: waiting for %s: %v", p.name, expr, err)
	}
}

// UntilMutation waits until the JavaScript expression is true,
// re-evaluating it only when the document changes: a wait that costs the
// page nothing between changes, for measurements (Until re-evaluates at
// every frame, which also sees changes outside the document).
func (p *Page) UntilMutation(expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(Timeout-time.Second))); err != nil {
		p.Shot("failed")
		p.t.Fatalf("%s: waiting for %s: %v", p.name, expr, err)
	}
}

// Open navigates to url.
func (p *Page) Open(url string) {
	p.t.Helper()
	p.Run(chromedp.Navigate(url))
}

// Click clicks the element sel once it is visible, with the mouse. A
// page that replaced the element between the query and the click (a
// re-render) gets the click on the new one.
func (p *Page) Click(sel string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	for {
		err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
		if err == nil {
			return
		}
		if !replaced(err) || ctx.Err() != nil {
			p.Shot("failed")
			p.t.Fatalf("%s: click %s: %v", p.name, sel, err)
		}
	}
}

// replaced tells the errors of an action on a node that the page removed
// in the meantime.
func replaced(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Could not find node with given id") || strings.Contains(s, "Node is detached") || strings.Contains(s, "No node with given id")
}

// Keys types s into the element sel.
func (p *Page) Keys(sel, s string) {
	p.t.Helper()
	p.Run(chromedp.SendKeys(chromedp.CSS(sel), s))
}

// Enter presses Enter in the element sel as a keyboard does: the page
// sees keydown and keyup. (SendKeys "\r" also sends the character, which
// the page's preventDefault on keydown would have suppressed.)
func (p *Page) Enter(sel string) {
	p.t.Helper()
	p.Press(sel, "Enter")
}

// keyCodes are the virtual key codes of the keys Press knows.
var keyCodes = map[string]int64{"Enter": 13, "Tab": 9, "Escape": 27, "ArrowUp": 38, "ArrowDown": 40}

// Press presses a key (Enter, Tab, Escape, ArrowUp, ArrowDown) in the
// element sel: the page sees keydown and keyup, no character.
func (p *Page) Press(sel, key string) {
	p.t.Helper()
	code, ok := keyCodes[key]
	if !ok {
		p.t.Fatalf("%s: press %q: not a key Press knows", p.name, key)
	}
	p.Run(chromedp.Focus(chromedp.CSS(sel)), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: key, Code: key, WindowsVirtualKeyCode: code, NativeVirtualKeyCode: code,
			}); err != nil {
				return err
			}
		}
		return nil
	}))
}

// Set replaces the value of the input sel, as typing would.
func (p *Page) Set(sel, s string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`(e => { e.value = %q; e.dispatchEvent(new Event("input")) })(document.querySelector(%q))`, s, sel))
}

// ClickLast clicks the last element that matches sel.
func (p *Page) ClickLast(sel string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`[...document.querySelectorAll(%q)].pop().click()`, sel))
}

// Choose selects the option of value v in the select sel.
func (p *Page) Choose(sel, v string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`(e => { e.value = %q; e.dispatchEvent(new Event("change")) })(document.querySelector(%q))`, v, sel))
}

func (p *Page) eval(expr string) {
	p.t.Helper()
	p.Run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](expr)(ctx, t)
		return err
	}))
}

// Upload sets the files of the file input sel.
func (p *Page) Upload(sel string, files ...string) {
	p.t.Helper()
	p.Run(chromedp.SetUploadFiles(chromedp.CSS(sel), files))
}

// Download clicks the download button sel and returns the file named
// name that the browser saved.
func (p *Page) Download(sel, name string) []byte {
	p.t.Helper()
	dir := p.t.TempDir()
	events := true
	if _, err := chromedp.CallBrowser(p.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: &events,
	}); err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	p.Click(sel)
	for ev, err := range progress {
		if err != nil {
			p.t.Fatalf("%s: download %s: %v", p.name, name, err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			p.t.Fatalf("%s: download %s: canceled", p.name, name)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

// Dark makes the page prefer the dark colour scheme.
func (p *Page) Dark() {
	p.t.Helper()
	if _, err := chromedp.Call(p.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		p.t.Fatal(err)
	}
}

// HasText is an expression: an element that matches sel contains s.
func HasText(sel, s string) string {
	return fmt.Sprintf(`[...document.querySelectorAll(%q)].some(e => e.textContent.includes(%q))`, sel, s)
}

// LastHasText returns an expression true when the last element matching
// sel contains s: cheaper than HasText on a long list, for a predicate
// evaluated on every mutation while a page is measured.
func LastHasText(sel, s string) string {
	return fmt.Sprintf(`(() => { const l = document.querySelectorAll(%q); return l.length > 0 && l[l.length-1].textContent.includes(%q) })()`, sel, s)
}
