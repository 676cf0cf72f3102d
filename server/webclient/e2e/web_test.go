package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/internal/browsertest"
	"github.com/parley-chat/parley/protocol"
)

// sel is the CSS selector of the elements with a data-testid
// (docs/web.md, "Test hooks").
func sel(testid string) string { return fmt.Sprintf("[data-testid=%q]", testid) }

// messageWith is the selector of the message whose id the page found for
// a text (see messageID).
func messageWith(id string) string { return fmt.Sprintf("[data-testid=message][data-id=%q]", id) }

// webUser is a person in a browser: a Chromium with its own profile
// directory (so its own IndexedDB), which can be closed and started again
// on the same directory.
type webUser struct {
	t    testing.TB
	name string
	dir  string
	url  string
	b    *browsertest.Browser
	p    *browsertest.Page
	// extra are Chromium options of this user's browser.
	extra []chromedp.ExecAllocatorOption
	// origins are the origins of every request the page made.
	mu      sync.Mutex
	origins map[string]bool
}

func newWebUser(t testing.TB, name, url string, extra ...chromedp.ExecAllocatorOption) *webUser {
	u := &webUser{t: t, name: name, dir: filepath.Join(t.TempDir(), "chromium-"+name), url: url, origins: map[string]bool{}, extra: extra}
	u.start()
	return u
}

// start starts the browser on the user's profile directory with one tab.
func (u *webUser) start() {
	u.t.Helper()
	u.b = browsertest.Start(u.t, u.dir, u.extra...)
	u.p = u.b.NewPage(u.t, u.name, 1280, 800)
	u.p.Out = os.Getenv("PARLEY_WEB_SCREENSHOTS")
	ctx := u.p.Context()
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		u.t.Fatal(err)
	}
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			u.mu.Lock()
			u.origins[origin(ev.Request.URL)] = true
			u.mu.Unlock()
		}
	}()
}

// stop closes the browser, as a person quits it.
func (u *webUser) stop() { u.b.Close() }

// origin is scheme://host[:port] of a URL; a blob: URL has the origin
// of the page that made it, and data: URLs are "data:".
func origin(url string) string {
	url = strings.TrimPrefix(url, "blob:")
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		s, _, _ := strings.Cut(url, ":")
		return s + ":"
	}
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host
}

// checkOrigins fails the test if the page asked for anything outside its
// own origin (data: URLs aside).
func (u *webUser) checkOrigins() {
	u.t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	own := origin(u.url)
	ws := "ws" + strings.TrimPrefix(own, "http")
	for o := range u.origins {
		if o != own && o != ws && o != "data:" {
			u.t.Errorf("%s's page asked %s, another origin than %s", u.name, o, own)
		}
	}
}

// register opens an invite link in the browser and registers.
func (u *webUser) register(link string) {
	u.t.Helper()
	u.p.Open(link)
	u.p.Until(fmt.Sprintf(`document.querySelector(%q)?.value.length > 0`, sel("register-invite")))
	u.p.Shot("register")
	u.p.Keys(sel("register-name"), u.name)
	u.p.Click(sel("register-submit"))
	u.waitConnected()
}

// waitConnected waits for the list and the connected state.
func (u *webUser) waitConnected() {
	u.t.Helper()
	u.p.Until(fmt.Sprintf(`document.querySelector('%s[data-state=connected]') && document.querySelector(%q)`, sel("connection"), sel("conv-list")))
}

// open opens the conversation titled title from the list.
func (u *webUser) open(title string) {
	u.t.Helper()
	u.p.Until(browsertest.HasText(sel("conv-name"), title))
	u.p.Run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`[...document.querySelectorAll(%q)].find(e => e.querySelector(%q)?.textContent.includes(%q)).click()`,
			sel("conv-item"), sel("conv-name"), title))(ctx, t)
		return err
	}))
	u.p.Until(fmt.Sprintf(`document.querySelector(%q)?.textContent.includes(%q)`, sel("conv-title"), title))
}

// teamOfTwo starts a parleyd where carol (on the CLI) made the group
// "team" with alice (in a browser) and said first in it, which alice's
// page shows open; it returns alice, a client of carol's daemon (its
// events subscribed to) and the group's id.
func teamOfTwo(t testing.TB, first string) (alice *webUser, dc *daemonapi.Client, conv protocol.ConversationID) {
	t.Helper()
	parleyd, cliBin := build(t)
	srv := startServer(t, parleyd)
	carol, link := newAdmin(t, cliBin, srv, 1)
	alice = newWebUser(t, "alice", srv.url)
	alice.register(link)
	carol.run("group", "create", "team", "--members", "alice")
	carol.run("send", "team", first)
	alice.open("team")
	alice.waitMessage(first)
	dc = startDaemon(t, cliBin, carol.dir)
	ctx := context.Background()
	if err := dc.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}
	convs, err := dc.Conversations(ctx)
	if err != nil || len(convs) != 1 {
		t.Fatalf("carol's conversations: %v, %v", convs, err)
	}
	return alice, dc, convs[0].ID
}

// waitReadBy waits until the daemon of dc (subscribed to its events)
// hears that user read the message with text.
func waitReadBy(tb testing.TB, dc *daemonapi.Client, user, text string) {
	tb.Helper()
	waitDaemonEvent(tb, dc, fmt.Sprintf("%s's read receipt of %q", user, text), func(ev *daemonapi.Event) bool {
		return ev.Event == "read" && ev.User == user && ev.Message != nil && ev.Message.Text == text
	})
}

// waitDaemonEvent waits, a minute at most, for an event of the daemon of
// dc (subscribed to its events) that match accepts.
func waitDaemonEvent(tb testing.TB, dc *daemonapi.Client, what string, match func(*daemonapi.Event) bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		ev, err := dc.NextEvent(ctx)
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		if match(ev) {
			return
		}
	}
}

// inFront has u's page behave as the tab in front of the person, with
// the focus: a headless page has none of its own, and the page sends
// read receipts only for what the person can see.
func (u *webUser) inFront() {
	u.t.Helper()
	if _, err := chromedp.Call(u.p.Context(), emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		u.t.Fatalf("%s: focus emulation: %v", u.name, err)
	}
}

// waitMessage waits for a message with text and returns its id.
func (u *webUser) waitMessage(text string) string {
	u.t.Helper()
	u.p.Until(browsertest.HasText(sel("message-text"), text))
	return browsertest.Eval[string](u.p, fmt.Sprintf(
		`[...document.querySelectorAll(%q)].find(e => e.querySelector(%q)?.textContent.includes(%q)).dataset.id`,
		sel("message"), sel("message-text"), text))
}

// send types text in the composer and presses Enter.
func (u *webUser) send(text string) {
	u.t.Helper()
	u.p.Keys(sel("composer-input"), text)
	u.p.Enter(sel("composer-input"))
}

// inviteRE finds the invite link that parley invite create prints.
var inviteRE = regexp.MustCompile(`(https?://\S*#invite=\S+)`)

// TestWebClient: two people in browsers and one on the CLI chat through
// a real parleyd: the browsers register from an invite link, the CLI
// user puts them in a group, and they exchange messages, a reply, a
// reaction and a file, verify each other's safety numbers, reload, and
// catch up after being away. The pages load nothing from another origin.
func TestWebClient(t *testing.T) {
	parleyd, cliBin := build(t)
	srv := startServer(t, parleyd)

	carol, link := newAdmin(t, cliBin, srv, 2)

	alice := newWebUser(t, "alice", srv.url)
	bob := newWebUser(t, "bob", srv.url)
	alice.register(link)
	bob.register(link)
	alice.p.Shot("list-empty")
	// The program runs in a worker: the page has its bridge's stand-in
	// and never loaded Go's loader.
	if !browsertest.Eval[bool](alice.p, `typeof globalThis.Go === "undefined" && typeof globalThis.parley?.connect === "function"`) {
		t.Error("the page holds Go's loader, or no bridge: the program does not run in a worker")
	}

	carol.run("group", "create", "team", "--members", "alice,bob")
	carol.run("send", "team", "hello from carol")

	alice.open("team")
	carolMsg := alice.waitMessage("hello from carol")
	bob.open("team")
	bob.waitMessage("hello from carol")

	// A message from a browser reaches the other browser and the CLI.
	alice.send("hi from alice")
	aliceMsg := bob.waitMessage("hi from alice")
	carol.waitRead("team", "hi from alice")

	// A reply, shown with its quote.
	bob.p.Click(messageWith(aliceMsg) + " " + sel("reply"))
	bob.p.Until(fmt.Sprintf(`!document.querySelector(%q).hidden`, sel("composer-mode")))
	bob.send("reply from bob")
	replyMsg := alice.waitMessage("reply from bob")
	alice.p.Until(fmt.Sprintf(`document.querySelector(%q)?.textContent.includes("hi from alice")`, messageWith(replyMsg)+" "+sel("message-quote")))

	// A reaction, seen by the other browser.
	bob.p.Click(messageWith(carolMsg) + " " + sel("react"))
	bob.p.Click(sel("react-choice") + `[data-emoji="👍"]`)
	alice.p.Until(fmt.Sprintf(`document.querySelector(%q)`, messageWith(carolMsg)+" "+sel("reaction")+`[data-emoji="👍"]`))

	// A file, uploaded by one browser and downloaded by the other.
	file := filepath.Join(t.TempDir(), "notes.txt")
	want := []byte("the plan, in plain text\n")
	if err := os.WriteFile(file, want, 0o600); err != nil {
		t.Fatal(err)
	}
	alice.p.Upload(sel("file-input"), file)
	bob.p.Until(browsertest.HasText(sel("attachment-name"), "notes.txt"))
	fileMsg := browsertest.Eval[string](bob.p, fmt.Sprintf(
		`[...document.querySelectorAll(%q)].find(e => e.querySelector(%q)?.textContent.includes("notes.txt")).dataset.id`,
		sel("message"), sel("attachment-name")))
	if got := bob.p.Download(messageWith(fileMsg)+" "+sel("download"), "notes.txt"); string(got) != string(want) {
		t.Errorf("bob downloaded %q, want %q", got, want)
	}
	alice.p.Shot("conversation")
	carol.waitRead("team", "notes.txt")

	// Safety numbers: both browsers show the same digits for each other,
	// and marking verified shows.
	aliceDigits := alice.safetyNumber("bob")
	bobDigits := bob.safetyNumber("alice")
	if aliceDigits == "" || aliceDigits != bobDigits {
		t.Errorf("safety numbers differ: alice sees %q for bob, bob sees %q for alice", aliceDigits, bobDigits)
	}
	alice.p.Shot("safety-number")
	alice.p.Click(sel("verify-mark"))
	alice.p.Until(fmt.Sprintf(`document.querySelector(%q)`, sel("verified")))
	alice.p.Click(sel("panel-close"))
	bob.p.Click(sel("panel-close"))

	// Edit and delete, seen by the other browser.
	alice.send("a typo hree")
	typo := bob.waitMessage("a typo hree")
	alice.p.Click(messageWith(typo) + " " + sel("edit"))
	alice.p.Set(sel("composer-input"), "a typo here")
	alice.p.Enter(sel("composer-input"))
	bob.p.Until(fmt.Sprintf(`document.querySelector(%q)?.textContent === "a typo here" && document.querySelector(%q)`,
		messageWith(typo)+" "+sel("message-text"), messageWith(typo)+" "+sel("message-edited")))
	alice.p.Click(messageWith(typo) + " " + sel("delete"))
	alice.p.Click(sel("delete-dialog") + " " + sel("dialog-submit"))
	bob.p.Until(fmt.Sprintf(`document.querySelector(%q)?.textContent === "Message deleted"`, messageWith(typo)+" "+sel("message-text")))

	// A group made in the browser: created, renamed, a member removed;
	// the CLI user sees the changes.
	alice.p.Click(sel("new-group"))
	alice.p.Keys(sel("dialog-title"), "pair")
	alice.p.Keys(sel("dialog-members"), "bob carol")
	alice.p.Click(sel("new-group-dialog") + " " + sel("dialog-submit"))
	alice.p.Until(fmt.Sprintf(`document.querySelector(%q)?.textContent.includes("pair")`, sel("conv-title")))
	bob.p.Until(browsertest.HasText(sel("conv-name"), "pair"))
	alice.p.Click(sel("members-toggle"))
	alice.p.Click(sel("conv-rename"))
	alice.p.Set(sel("dialog-text"), "pair of us")
	alice.p.Click(sel("rename-dialog") + " " + sel("dialog-submit"))
	bob.p.Until(browsertest.HasText(sel("conv-name"), "pair of us"))
	carol.run("read") // joins the group
	if out := carol.run("read", "pair of us"); !strings.Contains(out, "pair of us") {
		t.Errorf("carol's read of the renamed group:\n%s", out)
	}
	alice.p.Click(fmt.Sprintf(`%s[data-user="carol"]`, sel("member-remove")))
	alice.p.Click(sel("remove-dialog") + " " + sel("dialog-submit"))
	alice.p.Until(fmt.Sprintf(`!document.querySelector('%s[data-user="carol"]')`, sel("member")))
	alice.p.Shot("members")
	alice.p.Click(sel("panel-close"))
	bob.open("pair of us")
	bob.p.Until(browsertest.HasText(sel("system-line"), "carol"))
	if out := carol.run("read", "pair of us"); !strings.Contains(out, "removed") {
		t.Errorf("carol's read of the group she was removed from:\n%s", out)
	}
	bob.open("team")
	alice.open("team")

	// A reload keeps the profile and the history (IndexedDB); the service
	// worker installed at the first load now controls the page.
	bob.p.Run(chromedp.Reload())
	bob.waitConnected()
	bob.p.Until(`navigator.serviceWorker.controller !== null`)
	bob.open("team")
	bob.waitMessage("reply from bob")
	bob.p.Until(browsertest.HasText(sel("attachment-name"), "notes.txt"))

	// Away: bob quits the browser; what is sent meanwhile arrives when he
	// comes back.
	bob.checkOrigins()
	bob.stop()
	const away = 6
	for i := 1; i < away; i++ {
		carol.run("send", "team", fmt.Sprintf("away %d", i))
	}
	carol.run("send", "team", "while bob was away")
	alice.waitMessage("while bob was away")
	bob.start()
	bob.p.Open(srv.url + "/")
	bob.waitConnected()
	// The list counts what came while he was away, exactly: counts of
	// message events and of list loads that crossed them are set again
	// once the burst is over.
	bob.p.Until(fmt.Sprintf(`[...document.querySelectorAll(%q)].find((e) => e.querySelector(%q)?.textContent === "team")?.querySelector(%q)?.textContent === "%d"`,
		sel("conv-item"), sel("conv-name"), sel("unread-badge"), away))
	bob.open("team")
	bob.waitMessage("while bob was away")
	bob.p.Shot("caught-up")
	bob.p.Run(chromedp.EmulateViewport(390, 844))
	bob.p.Until(fmt.Sprintf(`document.querySelector(%q)?.offsetParent !== null`, sel("back")))
	bob.p.Shot("phone")

	alice.checkOrigins()
	bob.checkOrigins()
}

// safetyNumber opens the members panel, asks for user's safety number
// and returns its digits as shown.
func (u *webUser) safetyNumber(user string) string {
	u.t.Helper()
	u.p.Click(sel("members-toggle"))
	u.p.Click(fmt.Sprintf(`%s[data-user=%q]`, sel("member-verify"), user))
	u.p.Until(fmt.Sprintf(`document.querySelectorAll(%q).length === 12 && document.querySelector(%q)`, sel("safety-group"), sel("safety-qr")))
	return browsertest.Eval[string](u.p, fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.textContent).join(" ")`, sel("safety-group")))
}

// waitRead reads conv with the CLI until a message holds text: each read
// syncs with the server, so this waits on the server's state.
func (u *cliUser) waitRead(conv, text string) {
	u.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out := u.run("read", conv)
		if strings.Contains(out, text) {
			return
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("parley read %s: no %q within a minute:\n%s", conv, text, out)
		}
	}
}

// TestWebClientTLS: over https with parleyd's self-signed certificate
// (which this browser is told to accept, as a person who checked the
// fingerprint would), the page registers, connects its WebSocket (wss:,
// allowed by the policy's connect-src 'self') and sends a message the
// CLI reads.
func TestWebClientTLS(t *testing.T) {
	parleyd, cliBin := build(t)
	srv := startServerTLS(t, parleyd, "self-signed")
	if !strings.HasPrefix(srv.url, "https://") {
		t.Fatalf("parleyd serves %s, want https", srv.url)
	}
	carol, link := newAdmin(t, cliBin, srv, 1)
	alice := newWebUser(t, "alice-tls", srv.url, chromedp.IgnoreCertErrors)
	alice.register(link)
	carol.run("chat", "new", "alice-tls")
	alice.open("carol")
	alice.send("over wss")
	carol.waitRead("alice-tls", "over wss")
	alice.checkOrigins()
}

// TestWebClientGovernance: roles, channels, the timer, typing, mentions
// and search in the browser against the real SDK and parleyd. An admin
// makes a channel in the browser; its member sees no composer and cannot
// post; the CLI user's post there is refused; the admin promotes the
// member, who then types (the admin's page shows it) and posts; the
// admin sets a timer that both pages show; a mention from the CLI shows
// in the mentions view; search finds a message and opens it.
func TestWebClientGovernance(t *testing.T) {
	parleyd, cliBin := build(t)
	srv := startServer(t, parleyd)
	carol, link := newAdmin(t, cliBin, srv, 2)
	alice := newWebUser(t, "alice", srv.url)
	bob := newWebUser(t, "bob", srv.url)
	alice.register(link)
	bob.register(link)

	// A channel made in the browser: its members read, only admins post.
	alice.p.Click(sel("new-channel"))
	alice.p.Keys(sel("dialog-title"), "news")
	alice.p.Keys(sel("dialog-members"), "bob carol")
	alice.p.Click(sel("new-channel-dialog") + " " + sel("dialog-submit"))
	alice.p.Until(fmt.Sprintf(`document.querySelector(%q)?.textContent.includes("news")`, sel("conv-title")))
	alice.send("first news")
	bob.open("news")
	bob.waitMessage("first news")
	bob.p.Until(fmt.Sprintf(`!document.querySelector(%q).hidden && document.querySelector(%q).hidden`, sel("composer-closed"), sel("composer")))
	bob.p.Shot("channel-member")
	carol.run("read")
	if out := carol.fail("send", "news", "a member's post"); !strings.Contains(out, "admin") {
		t.Errorf("carol's post in the channel: %s", out)
	}

	// The admin makes bob an admin: his page gets the composer, and his
	// post reaches everyone.
	alice.p.Click(sel("members-toggle"))
	alice.p.Click(fmt.Sprintf(`%s[data-user="bob"][data-role="admin"]`, sel("member-role")))
	alice.p.Until(fmt.Sprintf(`document.querySelector('%s[data-user="bob"]')?.dataset.role === "admin"`, sel("member")))
	bob.p.Until(fmt.Sprintf(`!document.querySelector(%q).hidden`, sel("composer")))
	bob.p.Keys(sel("composer-input"), "news from")
	alice.p.Until(fmt.Sprintf(`document.querySelector(%q)?.textContent.includes("bob")`, sel("typing")))
	bob.p.Keys(sel("composer-input"), " bob")
	bob.p.Enter(sel("composer-input"))
	alice.waitMessage("news from bob")
	alice.p.Until(fmt.Sprintf(`!document.querySelector(%q)?.textContent.includes("bob")`, sel("typing")))
	carol.waitRead("news", "news from bob")
	bob.p.Until(fmt.Sprintf(`[...document.querySelectorAll('%s[data-kind="role_changed"]')].length > 0`, sel("system-line")))

	// A disappearing-message timer set in the browser shows on both pages
	// and on the next message.
	alice.p.Choose(sel("conv-timer"), "86400")
	bob.p.Until(fmt.Sprintf(`!document.querySelector(%q).hidden`, sel("conv-timer-badge")))
	alice.p.Click(sel("panel-close"))
	alice.send("this one disappears")
	bob.p.Until(fmt.Sprintf(`[...document.querySelectorAll(%q)].some(e => e.querySelector(%q)?.textContent.includes("this one disappears") && e.querySelector(%q))`,
		sel("message"), sel("message-text"), sel("message-expires")))
	if out := carol.run("read", "news"); !strings.Contains(out, "this one disappears") {
		t.Errorf("carol's read of the channel:\n%s", out)
	}

	// A mention from the CLI shows in alice's mentions view, and search
	// finds a message and opens it.
	carol.run("chat", "new", "alice")
	carol.run("send", "alice", "@alice lunch at noon?")
	alice.p.Until(browsertest.HasText(sel("conv-name"), "carol"))
	alice.p.Click(sel("mentions-open"))
	alice.p.Until(browsertest.HasText(sel("result-text"), "lunch at noon"))
	alice.p.Shot("mentions")
	alice.p.Click(sel("search-close"))
	alice.p.Keys(sel("search-input"), "disappears\r")
	alice.p.Until(browsertest.HasText(sel("result-text"), "this one disappears"))
	alice.p.Shot("search")
	alice.p.Click(sel("search-result"))
	alice.p.Until(fmt.Sprintf(`document.querySelector('%s.focus')?.textContent.includes("this one disappears")`, sel("message")))
}

// fail runs a parley command that must fail and returns its standard
// error.
func (u *cliUser) fail(args ...string) string {
	u.t.Helper()
	cmd := exec.Command(u.bin, append([]string{"--dir", u.dir}, args...)...)
	cmd.Env = append(os.Environ(), "PARLEY_PASSPHRASE=", "PARLEY_DAEMON=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		u.t.Fatalf("parley %s succeeded, want a failure", strings.Join(args, " "))
	}
	return stderr.String()
}

// aliceRegistered starts parleyd with carol, on the CLI, as its
// administrator, and registers alice in a browser with carol's invite.
func aliceRegistered(t *testing.T) (*server, *cliUser, *webUser) {
	t.Helper()
	parleyd, cliBin := build(t)
	srv := startServer(t, parleyd)
	carol, link := newAdmin(t, cliBin, srv, 1)
	alice := newWebUser(t, "alice", srv.url)
	alice.register(link)
	return srv, carol, alice
}

// TestWebClientSecondTab opens the web client in a second tab of a
// browser whose first tab holds the profile: the second tab says why it
// cannot open it, with the bridge's error code carried from the worker
// that runs the program to the page.
func TestWebClientSecondTab(t *testing.T) {
	srv, _, alice := aliceRegistered(t)

	second := alice.b.NewPage(t, "alice-second", 1280, 800)
	second.Open(srv.url + "/")
	second.Until(browsertest.HasText(sel("fatal"), "another tab or window"))
	second.Until(`globalThis.parleyReady === true`)
	got := browsertest.Eval[string](second, `globalThis.parley.open({}).then(() => "opened", (err) => err.code + ": " + err.message)`)
	if !strings.HasPrefix(got, "profile_busy: ") || !strings.Contains(got, "another tab or window") {
		t.Errorf("parley.open in a second tab: %s, want a profile_busy rejection", got)
	}
	// The first tab goes on.
	alice.waitConnected()
}
