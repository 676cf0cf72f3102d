//go:build uidev

// The page in a real browser, against the fake bridge of
// testdata/fakebridge.js instead of the WebAssembly program: it drives
// the main screens at desktop and phone sizes, fails on a script error
// or a Content-Security-Policy violation, and leaves screenshots in
// $PARLEY_UIDEV_OUT (default: parley-uidev in the temporary directory).
//
//	go test -tags uidev -run TestUI -v ./server/webclient
//
// It needs Chromium (see internal/browsertest).

package webclient

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/parley-chat/parley/internal/browsertest"
)

// atBottomWithImage holds once the open conversation's image has loaded
// and the history still shows its newest entry: the image grew the
// history above it after the conversation opened at its bottom.
const atBottomWithImage = `(() => {
	const img = document.querySelector('img[data-testid=attachment-image]');
	const h = document.querySelector('[data-testid=history]');
	return img && img.complete && img.naturalHeight > 0 && h.scrollHeight - h.scrollTop - h.clientHeight < 2;
})()`

// devCSP is the policy parleyd serves the page with.
const devCSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' blob: data:; manifest-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// devHandler serves ui/ with the fake bridge in place of boot.js (and
// its worker); under /boot/ it serves the page unchanged, without the
// WebAssembly files, to show how a failed start looks.
func devHandler(t testing.TB) http.Handler {
	index, err := os.ReadFile("ui/index.html")
	if err != nil {
		t.Fatal(err)
	}
	fake := strings.Replace(string(index), `<script src="boot.js" defer>`, `<script src="fakebridge.js" defer>`, 1)
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

// page is a tab on the page served at base.
type page struct {
	*browsertest.Page
	base string
}

func newPage(t *testing.T, b *browsertest.Browser, base, out string, w, h int64) *page {
	p := b.NewPage(t, "ui", w, h)
	p.Out = out
	return &page{Page: p, base: base}
}

func (p *page) open(path string) { p.Open(p.base + path) }

// do runs a JavaScript statement in the page (such as a call of
// parleyFake's).
func (p *page) do(expr string) { browsertest.Eval[bool](p.Page, "("+expr+", true)") }

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
	b := browsertest.Start(t, "")
	t.Logf("screenshots in %s", out)

	t.Run("desktop", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/")
		p.Until(`document.querySelector('[data-testid=connection][data-state=connected]') && document.querySelectorAll('[data-testid=conv-item]').length === 5`)
		p.Until(`document.querySelector('[data-testid=conv-item]').dataset.conversation === "1"`) // latest activity first
		p.Shot("desktop-list")

		p.Click(`[data-testid=conv-item][data-conversation="2"]`)
		p.Until(browsertest.HasText(`[data-testid=message-text]`, "Lunch at 12?"))
		p.Until(`!document.querySelector('[data-conversation="2"] [data-testid=unread-badge]')`)
		p.Click(`[data-testid=conv-item][data-conversation="1"]`)
		p.Until(`document.querySelector('img[data-testid=attachment-image]')?.src.startsWith("blob:")`)
		p.Until(`document.querySelectorAll('[data-testid=system-line]').length === 2 && document.querySelector('[data-testid=message-quote]')`)
		p.Until(browsertest.HasText(`[data-testid=message-text]`, "<b>not bold</b>"))
		p.Until(atBottomWithImage)
		p.Shot("desktop-conversation")

		p.Keys(`[data-testid=composer-input]`, "hello from the browser")
		p.Enter(`[data-testid=composer-input]`)
		p.Until(browsertest.HasText(`[data-testid=message-text]`, "echo: hello from the browser"))
		// The live region reads the other side's message out.
		p.Until(`document.querySelector('[data-testid=announce]').textContent.endsWith(": echo: hello from the browser")`)
		p.Until(browsertest.HasText(`[data-testid=message-state]`, "read by bob, carol"))
		p.Until(`document.querySelector('[data-testid=composer-input]').value === ""`)
		// The composer grows with its text up to 200 px, then scrolls,
		// and is one line again once emptied.
		height := func() float64 {
			return browsertest.Eval[float64](p.Page, `document.querySelector('[data-testid=composer-input]').getBoundingClientRect().height`)
		}
		one := height()
		p.Set(`[data-testid=composer-input]`, "one\ntwo\nthree")
		three := height()
		p.Set(`[data-testid=composer-input]`, strings.Repeat("line\n", 30))
		many := height()
		p.Set(`[data-testid=composer-input]`, "")
		again := height()
		if one < 20 || one > 60 || three < 2*one || many > 200 || many < three || again != one {
			t.Errorf("composer heights: empty %.1f, three lines %.1f, thirty %.1f (at most 200), emptied %.1f", one, three, many, again)
		}
		t.Logf("composer heights: empty %.1f, three lines %.1f, thirty %.1f, emptied %.1f", one, three, many, again)

		p.Click(`[data-testid=message][data-seq="10"] [data-testid=reply]`)
		p.Until(browsertest.HasText(`[data-testid=composer-mode]`, "Replying to carol"))
		p.Keys(`[data-testid=composer-input]`, "on it")
		p.Enter(`[data-testid=composer-input]`)
		p.Until(`[...document.querySelectorAll('[data-testid=message]')].some(m => m.textContent.includes("on it") && m.querySelector('[data-testid=message-quote]'))`)

		p.Click(`[data-testid=message][data-seq="10"] [data-testid=react]`)
		p.Click(`[data-testid=message][data-seq="10"] [data-testid=react-choice][data-emoji="🎉"]`)
		p.Until(`document.querySelector('[data-testid=message][data-seq="10"] [data-testid=reaction][data-emoji="🎉"][aria-pressed=true]')`)
		p.Click(`[data-testid=message][data-seq="4"] [data-testid=reaction][data-emoji="👍"]`)
		p.Until(browsertest.HasText(`[data-testid=message][data-seq="4"] [data-testid=reaction]`, "👍 1"))

		p.ClickLast(`[data-testid=message][data-sender=alice] [data-testid=edit]`)
		p.Until(browsertest.HasText(`[data-testid=composer-mode]`, "Editing"))
		p.Set(`[data-testid=composer-input]`, "")
		p.Keys(`[data-testid=composer-input]`, "on it, edited")
		p.Enter(`[data-testid=composer-input]`)
		p.Until(browsertest.HasText(`[data-testid=message-text]`, "on it, edited") + ` && document.querySelector('[data-testid=message-edited]')`)

		p.ClickLast(`[data-testid=message][data-sender=alice] [data-testid=delete]`)
		p.Until(`document.querySelector('dialog[open] [data-testid=delete-dialog]')`)
		p.Shot("desktop-delete-dialog")
		p.Click(`[data-testid=dialog-submit]`)
		p.Until(`[...document.querySelectorAll('[data-testid=message][data-sender=alice] [data-testid=message-text]')].pop().textContent === "Message deleted"`)

		file := filepath.Join(t.TempDir(), "notes.txt")
		if err := os.WriteFile(file, []byte("some notes\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		p.Run(chromedp.SetUploadFiles(chromedp.CSS(`[data-testid=file-input]`), []string{file}))
		p.Until(`!document.querySelector('[data-testid=upload-progress]').hidden`)
		p.Shot("desktop-uploading")
		p.Until(browsertest.HasText(`[data-testid=attachment-name]`, "notes.txt"))

		if got := p.Download(`[data-testid=message][data-seq="9"] [data-testid=download]`, "spec.pdf"); string(got) != "%PDF-1.4 fake\n" {
			t.Errorf("downloaded spec.pdf = %q", got)
		}

		p.Click(`[data-testid=members-toggle]`)
		p.Until(`document.querySelectorAll('[data-testid=member]').length === 3 && document.querySelector('[data-testid=member][data-user=carol] [data-testid=member-unverified]')`)
		p.Shot("desktop-members")
		p.Click(`[data-testid=member-verify][data-user=bob]`)
		p.Until(`document.querySelectorAll('[data-testid=safety-group]').length === 12 && document.querySelector('[data-testid=safety-qr]')?.complete`)
		p.Shot("desktop-verify")
		p.Click(`[data-testid=verify-mark]`)
		p.Until(`document.querySelector('[data-testid=verified]')`)
		p.Click(`[data-testid=panel-back]`)
		p.Until(`document.querySelector('[data-testid=member][data-user=bob] [data-testid=member-verified]')`)

		p.Click(`[data-testid=member-add]`)
		p.Keys(`[data-testid=dialog-users]`, "dave\r")
		p.Until(browsertest.HasText(`[data-testid=system-line]`, "alice added dave") + ` && document.querySelector('[data-testid=member][data-user=dave]')`)
		p.Click(`[data-testid=member-remove][data-user=dave]`)
		p.Click(`[data-testid=dialog-submit]`)
		p.Until(browsertest.HasText(`[data-testid=system-line]`, "alice removed dave"))
		p.Click(`[data-testid=conv-rename]`)
		p.Set(`[data-testid=dialog-text]`, "")
		p.Keys(`[data-testid=dialog-text]`, "Design crew\r")
		p.Until(browsertest.HasText(`[data-testid=conv-title]`, "Design crew"))

		p.Choose(`[data-testid=conv-timer]`, "3600")
		p.Until(browsertest.HasText(`[data-testid=system-line]`, "disappearing messages") + ` && document.querySelector('[data-testid=conv-timer]').value === "3600"`)

		p.Dark()
		p.Shot("desktop-dark")
	})

	t.Run("new-chats", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/")
		p.Until(`document.querySelectorAll('[data-testid=conv-item]').length === 5`)
		p.Click(`[data-testid=conv-item][data-conversation="3"]`)
		p.Until(`document.querySelectorAll('[data-testid=message]').length === 50`)
		for _, n := range []int{100, 120} {
			p.Run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=history]').scrollTop = 0`)(ctx, t)
				return err
			}))
			p.Until(fmt.Sprintf(`document.querySelectorAll('[data-testid=message]').length === %d`, n))
		}
		p.Until(browsertest.HasText(`[data-testid=history] .notice`, "Start of the conversation"))

		p.Click(`[data-testid=new-group]`)
		p.Keys(`[data-testid=dialog-title]`, "Lunch")
		p.Keys(`[data-testid=dialog-members]`, "bob, carol\r")
		p.Until(browsertest.HasText(`[data-testid=conv-title]`, "Lunch") + ` && document.querySelectorAll('[data-testid=conv-item]').length === 6`)
		p.Click(`[data-testid=new-direct]`)
		p.Keys(`[data-testid=dialog-user]`, "erin\r")
		p.Until(browsertest.HasText(`[data-testid=conv-title]`, "erin"))
	})

	t.Run("roles", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/")
		p.Click(`[data-testid=conv-item][data-conversation="1"]`)
		p.Click(`[data-testid=members-toggle]`)
		p.Until(`document.querySelector('[data-testid=member][data-user=alice] [data-testid=member-admin]') && document.querySelectorAll('[data-testid=policy-rule]').length === 7`)
		p.Until(`!document.querySelector('[data-testid=member][data-user=bob] [data-testid=member-admin]') && !document.querySelector('[data-testid=conv-timer]').disabled`)
		p.Click(`[data-testid=member-role][data-user=bob]`)
		p.Until(browsertest.HasText(`[data-testid=system-line][data-kind=role_changed]`, "alice made bob an admin") +
			` && document.querySelector('[data-testid=member][data-user=bob] [data-testid=member-admin]')`)
		p.Click(`[data-testid=member-role][data-user=bob][data-role=member]`)
		p.Until(browsertest.HasText(`[data-testid=system-line][data-kind=role_changed]`, "alice made bob a member (no longer admin)") +
			` && document.querySelector('[data-testid=member][data-user=bob][data-role=member]')`)
		p.Choose(`[data-testid=policy-rule][data-action=add]`, "admins")
		p.Until(browsertest.HasText(`[data-testid=system-line][data-kind=policy_changed]`, "alice changed the rules: only admins may add members, remove members"))
		p.Until(`document.querySelector('[data-testid=policy-rule][data-action=add]').value === "admins"`)
		p.Shot("desktop-roles")

		// carol is the admin of Book club: alice sees the rules, may add
		// but not remove, and may not change the timer.
		p.Click(`[data-testid=conv-item][data-conversation="5"]`)
		p.Until(`document.querySelectorAll('[data-testid=policy-value]').length === 7 && !document.querySelector('[data-testid=policy-rule]')`)
		p.Until(browsertest.HasText(`[data-testid=policy-hint]`, "Only admins may remove members, change the timer, change roles and rules"))
		p.Until(`document.querySelector('[data-testid=conv-timer]').disabled && document.querySelector('[data-testid=timer-reason]') && document.querySelector('[data-testid=member-add]')`)
		p.Until(`!document.querySelector('[data-testid=member-remove]') && !document.querySelector('[data-testid=member-role]') && document.querySelector('[data-testid=member][data-user=carol] [data-testid=member-admin]')`)
		p.Until(browsertest.HasText(`[data-testid=system-line]`, "carol changed the rules: only admins may remove members, change the timer, change roles and rules; every member may post messages, add members, rename, change the topic"))
		p.Until(browsertest.HasText(`[data-testid=system-line]`, "carol made erin an admin"))
		p.Shot("desktop-roles-member")
	})

	t.Run("channel", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/")
		p.Click(`[data-testid=conv-item][data-conversation="4"]`)
		p.Until(browsertest.HasText(`[data-testid=conv-title]`, "# Announcements") + ` && ` + browsertest.HasText(`[data-testid=conv-item][data-conversation="4"] [data-testid=conv-name]`, "# Announcements"))
		p.Until(`document.querySelector('[data-testid=composer]').hidden && document.querySelector('[data-testid=composer-closed]').textContent.includes("Only admins post in this channel")`)
		p.Until(`document.querySelector('[data-testid=conv-timer-badge]').textContent === "⏱ 1 day"`)
		p.Until(`document.querySelectorAll('[data-testid=message-expires]').length === 2 && ` + browsertest.HasText(`[data-testid=message-expires]`, "disappears in 1"))
		p.Until(`!document.querySelector('[data-testid=message] [data-testid=reply]')`)
		p.Click(`[data-testid=message][data-seq="4"] [data-testid=react]`)
		p.Click(`[data-testid=message][data-seq="4"] [data-testid=react-choice][data-emoji="🎉"]`)
		p.Until(`document.querySelector('[data-testid=message][data-seq="4"] [data-testid=reaction][data-emoji="🎉"][aria-pressed=true]')`)
		p.Shot("desktop-channel")
		p.Click(`[data-testid=members-toggle]`)
		p.Until(`document.querySelector('[data-testid=member][data-user=bob] [data-testid=member-admin]') && !document.querySelector('[data-testid=member-add]') && document.querySelector('[data-testid=conv-timer]')`)
		p.Shot("desktop-channel-members")
		p.Click(`[data-testid=panel-close]`)

		if !browsertest.Eval[bool](p.Page, `parleyFake.expire(4, 3)`) {
			t.Fatal("the fake has no message 3 in conversation 4")
		}
		p.Until(`!document.querySelector('[data-testid=message][data-seq="3"]') && document.querySelector('[data-testid=message][data-seq="4"]')`)

		p.Click(`[data-testid=new-channel]`)
		p.Keys(`[data-testid=dialog-title]`, "Releases")
		p.Keys(`[data-testid=dialog-members]`, "bob carol\r")
		p.Until(browsertest.HasText(`[data-testid=conv-title]`, "# Releases") + ` && !document.querySelector('[data-testid=composer]').hidden`)
		p.Click(`[data-testid=members-toggle]`)
		p.Choose(`[data-testid=conv-timer]`, "86400")
		p.Until(browsertest.HasText(`[data-testid=system-line]`, "alice set disappearing messages to 1 day") + ` && document.querySelector('[data-testid=conv-timer-badge]').textContent === "⏱ 1 day"`)
		p.Keys(`[data-testid=composer-input]`, "version 2 is out")
		p.Enter(`[data-testid=composer-input]`)
		p.Until(`[...document.querySelectorAll('[data-testid=message][data-sender=alice]')].some(m => m.textContent.includes("version 2 is out") && m.querySelector('[data-testid=message-expires]'))`)
		p.Shot("desktop-channel-admin")
	})

	t.Run("mentions", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/")
		p.Click(`[data-testid=conv-item][data-conversation="1"]`)
		p.Until(`document.querySelector('[data-testid=message][data-seq="10"].mention')`)
		in := `[data-testid=composer-input]`
		p.Keys(in, "hi @")
		p.Until(`[...document.querySelectorAll('[data-testid=mention-option]')].map(o => o.dataset.user).join() === "bob,carol"`)
		p.Press(in, "ArrowDown")
		p.Until(`document.querySelector('[data-testid=mention-option][aria-selected=true]').dataset.user === "carol"`)
		p.Shot("desktop-mention-picker")
		p.Press(in, "Enter")
		p.Until(`document.querySelector('[data-testid=composer-input]').value === "hi @carol " && document.querySelector('[data-testid=mention-list]').hidden`)
		p.Keys(in, "and @b")
		p.Until(`document.querySelectorAll('[data-testid=mention-option]').length === 1`)
		p.Press(in, "Tab")
		p.Until(`document.querySelector('[data-testid=composer-input]').value === "hi @carol and @bob "`)
		p.Keys(in, "@")
		p.Until(`!document.querySelector('[data-testid=mention-list]').hidden`)
		p.Press(in, "Escape")
		p.Until(`document.querySelector('[data-testid=mention-list]').hidden`)
		p.Set(in, "")
		p.Keys(in, "@c")
		p.Click(`[data-testid=mention-option][data-user=carol]`)
		p.Until(`document.querySelector('[data-testid=composer-input]').value === "@carol "`)
		p.Keys(in, "look")
		p.Enter(in)
		p.Until(browsertest.HasText(`[data-testid=message][data-sender=alice] [data-testid=message-text]`, "@carol look"))

		p.Click(`[data-testid=mentions-open]`)
		p.Until(`document.querySelectorAll('[data-testid=search-result]').length === 2 && document.querySelector('[data-testid=conv-list]').hidden`)
		p.Until(browsertest.HasText(`[data-testid=results-title]`, "Mentions of you") + ` && ` + browsertest.HasText(`[data-testid=result-text]`, "@alice did you finish"))
		p.Shot("desktop-mentions")
		p.Click(`[data-testid=search-result][data-conversation="5"]`)
		p.Until(browsertest.HasText(`[data-testid=conv-title]`, "Book club") + ` && document.querySelector('[data-testid=message][data-seq="6"].focus.mention')`)
		p.Click(`[data-testid=search-close]`)
		p.Until(`!document.querySelector('[data-testid=conv-list]').hidden && document.querySelector('[data-testid=search-results]').hidden`)
	})

	t.Run("search", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/")
		p.Until(`document.querySelectorAll('[data-testid=conv-item]').length === 5`)
		p.Keys(`[data-testid=search-input]`, "budg\r")
		p.Until(`document.querySelectorAll('[data-testid=search-result]').length === 2 && [...document.querySelectorAll('[data-testid=result-mark]')].every(m => m.textContent === "budget")`)
		p.Click(`[data-testid=search-filters-toggle]`)
		p.Keys(`[data-testid=search-from]`, "erin")
		p.Choose(`[data-testid=search-conv]`, "5")
		p.Keys(`[data-testid=search-input]`, "\r")
		p.Until(`document.querySelectorAll('[data-testid=search-result]').length === 1 && document.querySelector('[data-testid=result-sender]').textContent === "erin"`)
		p.Until(browsertest.HasText(`[data-testid=result-conv]`, "Book club") + ` && document.querySelector('[data-testid=result-time]').dateTime`)
		p.Shot("desktop-search")
		p.Set(`[data-testid=search-from]`, "")
		p.Choose(`[data-testid=search-conv]`, "")
		p.Set(`[data-testid=search-input]`, "")
		p.Keys(`[data-testid=search-input]`, "archived message 30\r")
		p.Until(`document.querySelectorAll('[data-testid=search-result]').length === 1 && ` + browsertest.HasText(`[data-testid=result-text]`, "archived message 30"))
		marks := browsertest.Eval[int](p.Page, `performance.getEntriesByName("parley-history").length`)
		p.Click(`[data-testid=search-result]`)
		p.Until(fmt.Sprintf(`performance.getEntriesByName("parley-history").length === %d`, marks+1))
		p.Until(`(() => {
			const m = document.querySelector('[data-testid=message].focus'), h = document.querySelector('[data-testid=history]');
			if (!m || m.dataset.seq !== "30") return false;
			const a = m.getBoundingClientRect(), b = h.getBoundingClientRect();
			return a.top >= b.top && a.bottom <= b.bottom;
		})()`)
		p.Shot("desktop-search-opened")
		p.Dark()
		p.Keys(`[data-testid=search-input]`, "\r")
		p.Until(`document.querySelectorAll('[data-testid=search-result]').length === 1`)
		p.Shot("desktop-search-dark")
	})

	t.Run("typing", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/")
		p.Click(`[data-testid=conv-item][data-conversation="1"]`)
		p.Until(`document.querySelectorAll('[data-testid=message]').length > 3`)
		p.Keys(`[data-testid=composer-input]`, "abc")
		p.Keys(`[data-testid=composer-input]`, "def")
		p.Until(`document.querySelector('[data-testid=composer-input]').value === "abcdef"`)
		if n := browsertest.Eval[int](p.Page, `parleyFake.sentTyping.filter(s => s.typing && s.conversation === 1).length`); n != 1 {
			t.Errorf("send_typing true sent %d times while typing 6 characters, want 1", n)
		}
		// Sending says nothing more: the message tells the others that
		// this user stopped typing; typing again says it at once.
		p.Enter(`[data-testid=composer-input]`)
		p.Until(`document.querySelector('[data-testid=composer-input]').value === ""`)
		p.Keys(`[data-testid=composer-input]`, "g")
		p.Until(`parleyFake.sentTyping.length === 2 && parleyFake.sentTyping.at(-1).typing === true`)
		p.do(`parleyFake.typing(1, "bob", true)`)
		p.Until(`document.querySelector('[data-testid=typing]').textContent === "bob is typing…"`)
		p.Shot("desktop-typing")
		p.do(`parleyFake.typing(1, "bob", false)`)
		p.Until(`document.querySelector('[data-testid=typing]').textContent === ""`)
	})

	// A message to the conversation whose item has the keyboard's focus
	// changes the item and brings it to the top of the list; the focus
	// stays on it.
	t.Run("list-focus", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/#c=1")
		p.Until(`document.querySelectorAll('[data-testid=conv-item]').length === 5`)
		item := `document.querySelector('[data-testid=conv-item][data-conversation="3"]')`
		p.do(item + `.focus()`)
		p.Until(`document.activeElement === ` + item)
		p.do(`parleyFake.incoming(3, "while focused")`)
		p.Until(`document.querySelector('[data-testid=conv-item]').dataset.conversation === "3" && ` +
			item + `.querySelector('[data-testid=conv-preview]').textContent === "bob: while focused"`)
		p.Until(item + `.querySelector('[data-testid=unread-badge]')?.textContent === "1"`)
		if !browsertest.Eval[bool](p.Page, `document.activeElement === `+item) {
			t.Errorf("the focus left the conversation's item when its message came: on %s", browsertest.Eval[string](p.Page, `document.activeElement.outerHTML.slice(0, 80)`))
		}
		// The items are filled in place: muting the open conversation
		// marks its item, unmuting takes the mark away again.
		open := `document.querySelector('[data-testid=conv-item][data-conversation="1"]')`
		p.Click(`[data-testid=members-toggle]`)
		p.Click(`[data-testid=conv-mute]`)
		p.Until(open + `.querySelector('[aria-label=muted]') !== null`)
		p.Click(`[data-testid=conv-mute]`)
		p.Until(open + `.querySelector('[aria-label=muted]') === null && ` + open + `.querySelector('[data-testid=conv-name]').textContent !== ""`)
	})

	// A message whose event comes while the history's answer is on its
	// way, an answer made before the message was stored: the history
	// shows it once.
	t.Run("history-race", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/#c=1")
		p.Until(`document.querySelectorAll('[data-testid=message]').length > 3`)
		p.do(`parleyFake.holdHistory()`)
		p.Click(`[data-testid=conv-item][data-conversation="2"]`)
		p.Until(`parleyFake.historyHeld()`)
		p.do(`parleyFake.incoming(2, "while loading")`)
		p.Until(`document.querySelector('[data-testid=conv-item][data-conversation="2"] [data-testid=conv-preview]').textContent === "bob: while loading"`)
		p.do(`parleyFake.releaseHistory()`)
		p.Until(browsertest.HasText(`[data-testid=message-text]`, "Lunch at 12?"))
		p.Until(`document.querySelector('[data-testid=history]').lastElementChild?.querySelector('[data-testid=message-text]')?.textContent === "while loading"`)
		if n := browsertest.Eval[int](p.Page, `[...document.querySelectorAll('[data-testid=message-text]')].filter((e) => e.textContent === "while loading").length`); n != 1 {
			t.Errorf("the message that came while the history loaded is shown %d times, want 1", n)
		}
	})

	t.Run("place", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/#c=5")
		p.Until(browsertest.HasText(`[data-testid=conv-title]`, "Book club"))
		p.Until(`performance.getEntriesByName("parley-usable").length === 1 && performance.getEntriesByName("parley-history").length === 1`)
		p.Click(`[data-testid=conv-item][data-conversation="2"]`)
		p.Until(`location.hash === "#c=2" && ` + browsertest.HasText(`[data-testid=message-text]`, "Lunch at 12?"))
		p.Run(chromedp.Reload())
		p.Until(`location.hash === "#c=2" && document.querySelector('[data-testid=conv-title]')?.textContent === "bob" && ` + browsertest.HasText(`[data-testid=message-text]`, "Lunch at 12?"))
		p.Until(`performance.getEntriesByName("parley-usable").length === 1`)
	})

	t.Run("phone", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 390, 844)
		p.open("/")
		p.Until(`document.querySelectorAll('[data-testid=conv-item]').length === 5`)
		p.Shot("phone-list")
		p.Click(`[data-testid=conv-item][data-conversation="1"]`)
		p.Until(`document.querySelector('img[data-testid=attachment-image]')?.src.startsWith("blob:") && getComputedStyle(document.querySelector('.sidebar')).display === "none"`)
		p.Until(atBottomWithImage)
		p.Shot("phone-conversation")
		p.Click(`[data-testid=members-toggle]`)
		p.Until(`document.querySelectorAll('[data-testid=member]').length === 3`)
		p.Shot("phone-members")
		p.Click(`[data-testid=member-verify][data-user=carol]`)
		p.Until(`document.querySelectorAll('[data-testid=safety-group]').length === 12`)
		p.Shot("phone-verify")
		p.Click(`[data-testid=panel-close]`)
		p.Click(`[data-testid=back]`)
		p.Until(`getComputedStyle(document.querySelector('.sidebar')).display !== "none"`)
	})

	t.Run("register", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 390, 844)
		p.open("/?fake=register#invite=3q2-7m9XyQv&fp=abcd")
		p.Until(`document.querySelector('[data-testid=register-invite]')?.value.includes("invite=3q2-7m9XyQv") && location.hash === ""`)
		p.Until(`performance.getEntriesByName("parley-usable").length === 1`)
		p.Shot("phone-register")
		p.Keys(`[data-testid=register-name]`, "Not Valid")
		p.Click(`[data-testid=register-submit]`)
		p.Until(`!document.querySelector('[data-testid=form-error]').hidden`)
		p.Set(`[data-testid=register-name]`, "zoe")
		p.Click(`[data-testid=register-submit]`)
		p.Until(`document.querySelector('[data-testid=me]')?.textContent === "zoe"`)
	})

	t.Run("link", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/?fake=register")
		p.Click(`[data-testid=link-start]`)
		p.Until(`document.querySelector('[data-testid=link-name]')?.value.includes("Chrome")`)
		p.Click(`[data-testid=link-submit]`)
		p.Until(browsertest.HasText(`[data-testid=link-code]`, "K7QD-M2XF") + ` && document.querySelector('[data-testid=link-qr]')?.complete`)
		p.Until(browsertest.HasText(`[data-testid=link-confirmation]`, "493 018"))
		p.Shot("desktop-link-browser")
		// Declined on the other device: said, and a new code can be asked.
		p.do(`parleyFake.declineLink()`)
		p.Until(browsertest.HasText(`[data-testid=form-error]`, "declined on your other device") + ` && !document.querySelector('[data-testid=link-submit]').hidden`)
		// Cancelled here: back to the form, without an error.
		p.Click(`[data-testid=link-submit]`)
		p.Until(`document.querySelector('[data-testid=link-code]')`)
		p.Click(`[data-testid=link-cancel]`)
		p.Until(`!document.querySelector('[data-testid=link-submit]').hidden && document.querySelector('[data-testid=form-error]').hidden`)
		p.Click(`[data-testid=link-submit]`)
		p.Until(`document.querySelector('[data-testid=link-confirmation]')`)
		p.do(`parleyFake.acceptLink()`)
		p.Until(`document.querySelectorAll('[data-testid=conv-item]').length === 5 && document.querySelector('[data-testid=me]').textContent === "alice"`)
	})

	t.Run("devices", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/")
		p.Click(`[data-testid=conv-item][data-conversation="1"]`)
		p.Click(`[data-testid=devices-open]`)
		p.Until(`document.querySelectorAll('[data-testid=device]').length === 4 && getComputedStyle(document.querySelector('[data-testid=conversation]')).display === "none"`)
		p.Until(`document.querySelector('[data-testid=device][data-this=true] [data-testid=device-this]') && document.querySelector('[data-testid=device][data-state=forged] [data-testid=device-forged]')`)
		p.Until(`document.querySelector('[data-testid=devices-forged]') && document.querySelector('[data-testid=device][data-state=revoked] [data-testid=device-revoked]') && !document.querySelector('[data-testid=device][data-state=revoked] [data-testid=device-revoke]')`)
		p.Shot("desktop-devices")

		// Rename.
		p.Click(`[data-testid=device-rename][data-device="7ac3d2e1f0a9b8c7d6e5f4a3b2c1d0e9"]`)
		p.Set(`[data-testid=dialog-name]`, "")
		p.Keys(`[data-testid=dialog-name]`, "work laptop\r")
		p.Until(browsertest.HasText(`[data-testid=device][data-device="7ac3d2e1f0a9b8c7d6e5f4a3b2c1d0e9"] [data-testid=device-name]`, "work laptop"))

		// A wrong code fails its check; a right one shows the
		// confirmation, and accepted, the new device is listed.
		p.Click(`[data-testid=link-device-open]`)
		p.Keys(`[data-testid=link-device-code]`, "WRONG-CODE\r")
		p.Until(browsertest.HasText(`[data-testid=link-device-error]`, "failed its check"))
		p.Click(`[data-testid=link-device-retry]`)
		p.Keys(`[data-testid=link-device-code]`, "K7QD-M2XF-9PLA-4RTE-YB6W-HNC3\r")
		p.Until(browsertest.HasText(`[data-testid=link-device-confirmation]`, "493 018"))
		p.Shot("desktop-devices-link")
		p.Click(`[data-testid=link-device-decline]`)
		p.Until(browsertest.HasText(`[data-testid=link-device-result]`, "Declined"))
		p.Click(`[data-testid=link-device-close]`)
		p.Click(`[data-testid=link-device-open]`)
		p.Keys(`[data-testid=link-device-code]`, "K7QD-M2XF-9PLA-4RTE-YB6W-HNC3\r")
		p.Click(`[data-testid=link-device-history]`)
		p.Click(`[data-testid=link-device-accept]`)
		p.Until(browsertest.HasText(`[data-testid=link-device-result]`, "Linked phone; added it to 5 conversations") + ` && document.querySelectorAll('[data-testid=device]').length === 5`)
		p.Until(browsertest.HasText(`[data-testid=link-device-history-result]`, "Sent it the history of 5 conversations (142 messages)"))

		// Revoke: the laptop and the phone go; the last device is refused.
		for n := 2; n >= 1; n-- {
			p.Click(`[data-testid=device][data-state=active][data-this=false] [data-testid=device-revoke]`)
			p.Until(`document.querySelector('dialog[open] [data-testid=revoke-device-dialog]')`)
			p.Click(`[data-testid=dialog-submit]`)
			p.Until(fmt.Sprintf(`document.querySelectorAll('[data-testid=device][data-state=active]').length === %d`, n))
		}
		p.Click(`[data-testid=device][data-this=true] [data-testid=device-revoke]`)
		p.Until(`document.querySelector('dialog[open] [data-testid=revoke-device-dialog]')`)
		p.Shot("desktop-devices-revoke")
		p.Click(`[data-testid=dialog-submit]`)
		p.Until(browsertest.HasText(`[data-testid=devices-error]`, "last active device") + ` && document.querySelector('[data-testid=device][data-this=true]').dataset.state === "active"`)
		p.Click(`[data-testid=devices-back]`)
		p.Until(`!document.querySelector('[data-testid=devices-view]') || document.querySelector('[data-testid=devices-view]').hidden`)
		p.Until(`getComputedStyle(document.querySelector('[data-testid=conversation]')).display !== "none"`)
	})

	t.Run("devices-phone", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 390, 844)
		p.open("/")
		p.Until(`document.querySelectorAll('[data-testid=conv-item]').length === 5`)
		p.Click(`[data-testid=devices-open]`)
		p.Until(`document.querySelectorAll('[data-testid=device]').length >= 4 && getComputedStyle(document.querySelector('.sidebar')).display === "none"`)
		p.Shot("phone-devices")
		p.Click(`[data-testid=devices-back]`)
		p.Until(`getComputedStyle(document.querySelector('.sidebar')).display !== "none"`)
	})

	t.Run("passphrase", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/?fake=passphrase")
		p.Until(`document.querySelector('[data-testid=passphrase-form]')`)
		p.Keys(`[data-testid=passphrase-input]`, "nope\r")
		p.Until(browsertest.HasText(`[data-testid=form-error]`, "Wrong passphrase"))
		p.Shot("desktop-passphrase")
		p.Set(`[data-testid=passphrase-input]`, "secret")
		p.Click(`[data-testid=passphrase-submit]`)
		p.Until(`document.querySelectorAll('[data-testid=conv-item]').length === 5`)
	})

	t.Run("identity", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.open("/?fake=identity")
		p.Until(`document.querySelector('[data-testid=identity-alert][data-user=carol]')`)
		p.Click(`[data-testid=conv-item][data-conversation="1"]`)
		p.Until(`document.querySelectorAll('[data-testid=message]').length > 3`)
		p.Shot("desktop-identity-alert")
		p.Click(`[data-testid=identity-review][data-user=carol]`)
		p.Until(`document.querySelector('[data-testid=identity-accept]') && document.querySelectorAll('[data-testid=safety-group]').length === 12`)
		p.Shot("desktop-identity-accept")
		p.Click(`[data-testid=identity-accept]`)
		p.Until(`document.querySelector('[data-testid=verify-mark]') && !document.querySelector('[data-testid=identity-alert]')`)
	})

	t.Run("boot-failure", func(t *testing.T) {
		p := newPage(t, b, srv.URL, out, 1280, 800)
		p.Ignore("wasm_exec.js")
		p.Ignore("manifest.webmanifest")
		p.open("/boot/index.html")
		p.Until(`document.querySelector('[data-testid=boot-status].error')?.textContent.includes("wasm_exec.js")`)
		p.Shot("desktop-boot-failure")
	})
}
