//go:build uidev

// The page in a real browser, against the fake bridge of
// testdata/fakebridge.js instead of the WebAssembly program: it drives
// the main screens at desktop and phone sizes, fails on a script error
// or a Content-Security-Policy violation, and leaves screenshots in
// $PARLEY_UIDEV_OUT (default: parley-uidev in the temporary directory).
//
//	go test -tags uidev -run TestUI -v ./server/webclient
//
// It needs Chromium (PARLEY_CHROMIUM, else chromium on the PATH).

package webclient

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	"github.com/chromedp/chromedp"
)

// devCSP is the policy parleyd serves the page with.
const devCSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' blob: data:; manifest-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// devHandler serves ui/ with the fake bridge in place of wasm_exec.js
// and boot.js; under /boot/ it serves the page unchanged, without the
// WebAssembly files, to show how a failed start looks.
func devHandler(t *testing.T) http.Handler {
	index, err := os.ReadFile("ui/index.html")
	if err != nil {
		t.Fatal(err)
	}
	fake := strings.Replace(string(index), `<script src="wasm_exec.js" defer></script>`+"\n", "", 1)
	fake = strings.Replace(fake, `<script src="boot.js" defer>`, `<script src="fakebridge.js" defer>`, 1)
	if fake == string(index) {
		t.Fatal("ui/index.html: the scripts to replace by the fake bridge are not found")
	}
	files := http.FileServer(http.Dir("ui"))
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, fake)
	})
	mux.HandleFunc("/manifest.webmanifest", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/manifest+json")
		fmt.Fprint(w, `{"name":"Parley","start_url":"/","display":"standalone"}`)
	})
	mux.HandleFunc("/fakebridge.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "testdata/fakebridge.js")
	})
	mux.Handle("/boot/", http.StripPrefix("/boot", files))
	mux.Handle("/", files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", devCSP)
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// startBrowser starts Chromium and returns its context.
func startBrowser(t *testing.T) context.Context {
	path := os.Getenv("PARLEY_CHROMIUM")
	if path == "" {
		var err error
		if path, err = exec.LookPath("chromium"); err != nil {
			t.Skip("chromium not found (set PARLEY_CHROMIUM)")
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// page is one browser tab on the page, with its script errors.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string
	out  string
	mu   sync.Mutex
	errs []string
	// ignore are the texts of console messages that the test expects.
	ignore []string
}

// newPage opens a tab of w×h pixels that records the page's exceptions,
// errors and Content-Security-Policy violations, reported when the test
// ends. Failed loads (the icons, which this test does not serve) are
// not errors.
func newPage(t *testing.T, bctx context.Context, base, out string, w, h int64) *page {
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	p := &page{t: t, ctx: ctx, base: base, out: out}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if p.ignored(m.Text) {
				continue
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				p.mu.Lock()
				p.errs = append(p.errs, m.String())
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.errs {
			t.Errorf("page: %s", e)
		}
	})
	p.run(chromedp.EmulateViewport(w, h))
	return p
}

func (p *page) ignored(text string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.ignore {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

func (p *page) run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatal(err)
	}
}

// shot saves a screenshot of the viewport as NAME.png.
func (p *page) shot(name string) {
	p.t.Helper()
	buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.out, name+".png"), buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// until waits until the JavaScript expression is true.
func (p *page) until(expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		p.shot("failed-" + strings.ReplaceAll(p.t.Name(), "/", "-"))
		p.t.Fatalf("waiting for %s: %v", expr, err)
	}
}

func (p *page) open(path string) {
	p.t.Helper()
	p.run(chromedp.Navigate(p.base + path))
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.run(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// keys types s into the element sel ("\r" is Enter).
func (p *page) keys(sel, s string) {
	p.t.Helper()
	p.run(chromedp.SendKeys(chromedp.CSS(sel), s))
}

// enter presses Enter in the element sel as a keyboard does: the page
// sees keydown and keyup. (SendKeys "\r" also sends the character, which
// the page's preventDefault on keydown would have suppressed.)
func (p *page) enter(sel string) {
	p.t.Helper()
	p.run(chromedp.Focus(chromedp.CSS(sel)), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
			}); err != nil {
				return err
			}
		}
		return nil
	}))
}

// set replaces the value of the input sel.
func (p *page) set(sel, s string) {
	p.t.Helper()
	p.run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(e => { e.value = %q; e.dispatchEvent(new Event("input")) })(document.querySelector(%q))`, s, sel))(ctx, t)
		return err
	}))
}

// clickLast clicks the last element that matches sel.
func (p *page) clickLast(sel string) {
	p.t.Helper()
	p.run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`[...document.querySelectorAll(%q)].pop().click()`, sel))(ctx, t)
		return err
	}))
}

// choose selects the option of value v in the select sel.
func (p *page) choose(sel, v string) {
	p.t.Helper()
	p.run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(e => { e.value = %q; e.dispatchEvent(new Event("change")) })(document.querySelector(%q))`, v, sel))(ctx, t)
		return err
	}))
}

// download clicks the download button sel and returns the file that
// the browser saved.
func (p *page) download(sel, name string) []byte {
	p.t.Helper()
	dir := p.t.TempDir()
	events := true
	if _, err := chromedp.CallBrowser(p.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: &events,
	}); err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	p.click(sel)
	for ev, err := range progress {
		if err != nil {
			p.t.Fatalf("download %s: %v", name, err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			p.t.Fatalf("download %s: canceled", name)
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

func (p *page) dark() {
	p.t.Helper()
	if _, err := chromedp.Call(p.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		p.t.Fatal(err)
	}
}

// hasText is an expression: an element of selector sel has text s.
func hasText(sel, s string) string {
	return fmt.Sprintf(`[...document.querySelectorAll(%q)].some(e => e.textContent.includes(%q))`, sel, s)
}

func TestUI(t *testing.T) {
	out := os.Getenv("PARLEY_UIDEV_OUT")
	if out == "" {
		out = filepath.Join(os.TempDir(), "parley-uidev")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(devHandler(t))
	t.Cleanup(srv.Close)
	bctx := startBrowser(t)
	t.Logf("screenshots in %s", out)

	t.Run("desktop", func(t *testing.T) {
		p := newPage(t, bctx, srv.URL, out, 1280, 800)
		p.open("/")
		p.until(`document.querySelector('[data-testid=connection][data-state=connected]') && document.querySelectorAll('[data-testid=conv-item]').length === 3`)
		p.until(`document.querySelector('[data-testid=conv-item]').dataset.conversation === "1"`) // latest activity first
		p.shot("desktop-list")

		p.click(`[data-testid=conv-item][data-conversation="2"]`)
		p.until(hasText(`[data-testid=message-text]`, "Lunch at 12?"))
		p.until(`!document.querySelector('[data-conversation="2"] [data-testid=unread-badge]')`)
		p.click(`[data-testid=conv-item][data-conversation="1"]`)
		p.until(`document.querySelector('img[data-testid=attachment-image]')?.src.startsWith("blob:")`)
		p.until(`document.querySelectorAll('[data-testid=system-line]').length === 2 && document.querySelector('[data-testid=message-quote]')`)
		p.until(hasText(`[data-testid=message-text]`, "<b>not bold</b>"))
		p.shot("desktop-conversation")

		p.keys(`[data-testid=composer-input]`, "hello from the browser")
		p.enter(`[data-testid=composer-input]`)
		p.until(hasText(`[data-testid=message-text]`, "echo: hello from the browser"))
		p.until(hasText(`[data-testid=message-state]`, "read by bob, carol"))
		p.until(`document.querySelector('[data-testid=composer-input]').value === ""`)

		p.click(`[data-testid=message][data-seq="10"] [data-testid=reply]`)
		p.until(hasText(`[data-testid=composer-mode]`, "Replying to carol"))
		p.keys(`[data-testid=composer-input]`, "on it")
		p.enter(`[data-testid=composer-input]`)
		p.until(`[...document.querySelectorAll('[data-testid=message]')].some(m => m.textContent.includes("on it") && m.querySelector('[data-testid=message-quote]'))`)

		p.click(`[data-testid=message][data-seq="10"] [data-testid=react]`)
		p.click(`[data-testid=message][data-seq="10"] [data-testid=react-choice][data-emoji="🎉"]`)
		p.until(`document.querySelector('[data-testid=message][data-seq="10"] [data-testid=reaction][data-emoji="🎉"][aria-pressed=true]')`)
		p.click(`[data-testid=message][data-seq="4"] [data-testid=reaction][data-emoji="👍"]`)
		p.until(hasText(`[data-testid=message][data-seq="4"] [data-testid=reaction]`, "👍 1"))

		p.clickLast(`[data-testid=message][data-sender=alice] [data-testid=edit]`)
		p.until(hasText(`[data-testid=composer-mode]`, "Editing"))
		p.set(`[data-testid=composer-input]`, "")
		p.keys(`[data-testid=composer-input]`, "on it, edited")
		p.enter(`[data-testid=composer-input]`)
		p.until(hasText(`[data-testid=message-text]`, "on it, edited") + ` && document.querySelector('[data-testid=message-edited]')`)

		p.clickLast(`[data-testid=message][data-sender=alice] [data-testid=delete]`)
		p.until(`document.querySelector('dialog[open] [data-testid=delete-dialog]')`)
		p.shot("desktop-delete-dialog")
		p.click(`[data-testid=dialog-submit]`)
		p.until(`[...document.querySelectorAll('[data-testid=message][data-sender=alice] [data-testid=message-text]')].pop().textContent === "Message deleted"`)

		file := filepath.Join(t.TempDir(), "notes.txt")
		if err := os.WriteFile(file, []byte("some notes\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		p.run(chromedp.SetUploadFiles(chromedp.CSS(`[data-testid=file-input]`), []string{file}))
		p.until(`!document.querySelector('[data-testid=upload-progress]').hidden`)
		p.shot("desktop-uploading")
		p.until(hasText(`[data-testid=attachment-name]`, "notes.txt"))

		if got := p.download(`[data-testid=message][data-seq="9"] [data-testid=download]`, "spec.pdf"); string(got) != "%PDF-1.4 fake\n" {
			t.Errorf("downloaded spec.pdf = %q", got)
		}

		p.click(`[data-testid=members-toggle]`)
		p.until(`document.querySelectorAll('[data-testid=member]').length === 3 && document.querySelector('[data-testid=member][data-user=carol] [data-testid=member-unverified]')`)
		p.shot("desktop-members")
		p.click(`[data-testid=member-verify][data-user=bob]`)
		p.until(`document.querySelectorAll('[data-testid=safety-group]').length === 12 && document.querySelector('[data-testid=safety-qr]')?.complete`)
		p.shot("desktop-verify")
		p.click(`[data-testid=verify-mark]`)
		p.until(`document.querySelector('[data-testid=verified]')`)
		p.click(`[data-testid=panel-back]`)
		p.until(`document.querySelector('[data-testid=member][data-user=bob] [data-testid=member-verified]')`)

		p.click(`[data-testid=member-add]`)
		p.keys(`[data-testid=dialog-users]`, "dave\r")
		p.until(hasText(`[data-testid=system-line]`, "alice added dave") + ` && document.querySelector('[data-testid=member][data-user=dave]')`)
		p.click(`[data-testid=member-remove][data-user=dave]`)
		p.click(`[data-testid=dialog-submit]`)
		p.until(hasText(`[data-testid=system-line]`, "alice removed dave"))
		p.click(`[data-testid=conv-rename]`)
		p.set(`[data-testid=dialog-text]`, "")
		p.keys(`[data-testid=dialog-text]`, "Design crew\r")
		p.until(hasText(`[data-testid=conv-title]`, "Design crew"))

		p.choose(`[data-testid=conv-timer]`, "3600")
		p.until(hasText(`[data-testid=system-line]`, "disappearing messages") + ` && document.querySelector('[data-testid=conv-timer]').value === "3600"`)

		p.dark()
		p.shot("desktop-dark")
	})

	t.Run("new-chats", func(t *testing.T) {
		p := newPage(t, bctx, srv.URL, out, 1280, 800)
		p.open("/")
		p.until(`document.querySelectorAll('[data-testid=conv-item]').length === 3`)
		p.click(`[data-testid=conv-item][data-conversation="3"]`)
		p.until(`document.querySelectorAll('[data-testid=message]').length === 50`)
		for _, n := range []int{100, 120} {
			p.run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=history]').scrollTop = 0`)(ctx, t)
				return err
			}))
			p.until(fmt.Sprintf(`document.querySelectorAll('[data-testid=message]').length === %d`, n))
		}
		p.until(hasText(`[data-testid=history] .notice`, "Start of the conversation"))

		p.click(`[data-testid=new-group]`)
		p.keys(`[data-testid=dialog-title]`, "Lunch")
		p.keys(`[data-testid=dialog-members]`, "bob, carol\r")
		p.until(hasText(`[data-testid=conv-title]`, "Lunch") + ` && document.querySelectorAll('[data-testid=conv-item]').length === 4`)
		p.click(`[data-testid=new-direct]`)
		p.keys(`[data-testid=dialog-user]`, "erin\r")
		p.until(hasText(`[data-testid=conv-title]`, "erin"))
	})

	t.Run("phone", func(t *testing.T) {
		p := newPage(t, bctx, srv.URL, out, 390, 844)
		p.open("/")
		p.until(`document.querySelectorAll('[data-testid=conv-item]').length === 3`)
		p.shot("phone-list")
		p.click(`[data-testid=conv-item][data-conversation="1"]`)
		p.until(`document.querySelector('img[data-testid=attachment-image]')?.src.startsWith("blob:") && getComputedStyle(document.querySelector('.sidebar')).display === "none"`)
		p.shot("phone-conversation")
		p.click(`[data-testid=members-toggle]`)
		p.until(`document.querySelectorAll('[data-testid=member]').length === 3`)
		p.shot("phone-members")
		p.click(`[data-testid=member-verify][data-user=carol]`)
		p.until(`document.querySelectorAll('[data-testid=safety-group]').length === 12`)
		p.shot("phone-verify")
		p.click(`[data-testid=panel-close]`)
		p.click(`[data-testid=back]`)
		p.until(`getComputedStyle(document.querySelector('.sidebar')).display !== "none"`)
	})

	t.Run("register", func(t *testing.T) {
		p := newPage(t, bctx, srv.URL, out, 390, 844)
		p.open("/?fake=register#invite=3q2-7m9XyQv&fp=abcd")
		p.until(`document.querySelector('[data-testid=register-invite]')?.value.includes("invite=3q2-7m9XyQv") && location.hash === ""`)
		p.shot("phone-register")
		p.keys(`[data-testid=register-name]`, "Not Valid")
		p.click(`[data-testid=register-submit]`)
		p.until(`!document.querySelector('[data-testid=form-error]').hidden`)
		p.set(`[data-testid=register-name]`, "zoe")
		p.click(`[data-testid=register-submit]`)
		p.until(`document.querySelector('[data-testid=me]')?.textContent === "zoe"`)
	})

	t.Run("passphrase", func(t *testing.T) {
		p := newPage(t, bctx, srv.URL, out, 1280, 800)
		p.open("/?fake=passphrase")
		p.until(`document.querySelector('[data-testid=passphrase-form]')`)
		p.keys(`[data-testid=passphrase-input]`, "nope\r")
		p.until(hasText(`[data-testid=form-error]`, "Wrong passphrase"))
		p.shot("desktop-passphrase")
		p.set(`[data-testid=passphrase-input]`, "secret")
		p.click(`[data-testid=passphrase-submit]`)
		p.until(`document.querySelectorAll('[data-testid=conv-item]').length === 3`)
	})

	t.Run("identity", func(t *testing.T) {
		p := newPage(t, bctx, srv.URL, out, 1280, 800)
		p.open("/?fake=identity")
		p.until(`document.querySelector('[data-testid=identity-alert][data-user=carol]')`)
		p.click(`[data-testid=conv-item][data-conversation="1"]`)
		p.until(`document.querySelectorAll('[data-testid=message]').length > 3`)
		p.shot("desktop-identity-alert")
		p.click(`[data-testid=identity-review][data-user=carol]`)
		p.until(`document.querySelector('[data-testid=identity-accept]') && document.querySelectorAll('[data-testid=safety-group]').length === 12`)
		p.shot("desktop-identity-accept")
		p.click(`[data-testid=identity-accept]`)
		p.until(`document.querySelector('[data-testid=verify-mark]') && !document.querySelector('[data-testid=identity-alert]')`)
	})

	t.Run("boot-failure", func(t *testing.T) {
		p := newPage(t, bctx, srv.URL, out, 1280, 800)
		p.mu.Lock()
		p.ignore = []string{"wasm_exec.js", "manifest.webmanifest"}
		p.mu.Unlock()
		p.open("/boot/index.html")
		p.until(`document.querySelector('[data-testid=boot-status].error')?.textContent.includes("wasm_exec.js")`)
		p.shot("desktop-boot-failure")
	})
}
