package tui

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/daemonapi"
)

var update = flag.Bool("update", false, "rewrite the golden screens in testdata")

// harness runs a model like a program does, but synchronously: every
// command runs to its message, which is applied in turn. Events are
// injected, not read.
type harness struct {
	t    *testing.T
	m    *Model
	f    *fakeBackend
	quit bool
}

func newHarness(t *testing.T, w, h int) *harness {
	t.Helper()
	f := newFake()
	m := New(f, Options{Now: func() time.Time { return testNow }, Plain: true})
	m.listen = false
	hs := &harness{t: t, m: m, f: f}
	hs.run(m.Init())
	hs.send(tea.WindowSizeMsg{Width: w, Height: h})
	return hs
}

// send applies msg and everything its commands lead to.
func (h *harness) send(msg tea.Msg) {
	queue := []tea.Msg{msg}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		_, cmd := h.m.Update(next)
		queue = append(queue, h.exec(cmd)...)
	}
}

func (h *harness) run(cmd tea.Cmd) {
	for _, msg := range h.exec(cmd) {
		h.send(msg)
	}
}

// exec runs a command and returns the messages it produced.
func (h *harness) exec(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	switch msg := cmd().(type) {
	case nil:
		return nil
	case tea.BatchMsg:
		var out []tea.Msg
		for _, c := range msg {
			out = append(out, h.exec(c)...)
		}
		return out
	case tea.QuitMsg:
		h.quit = true
		return nil
	default:
		return []tea.Msg{msg}
	}
}

// press sends keys by name ("enter", "up", "ctrl+f", or one character).
func (h *harness) press(keys ...string) {
	for _, k := range keys {
		h.send(keyMsg(k))
	}
}

// typeText types text character by character.
func (h *harness) typeText(s string) {
	for _, r := range s {
		h.send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

func keyMsg(k string) tea.KeyPressMsg {
	named := map[string]tea.Key{
		"enter": {Code: tea.KeyEnter}, "esc": {Code: tea.KeyEscape}, "up": {Code: tea.KeyUp}, "down": {Code: tea.KeyDown},
		"tab": {Code: tea.KeyTab}, "pgup": {Code: tea.KeyPgUp}, "pgdown": {Code: tea.KeyPgDown}, "backspace": {Code: tea.KeyBackspace},
		"ctrl+f": {Code: 'f', Mod: tea.ModCtrl}, "ctrl+s": {Code: 's', Mod: tea.ModCtrl}, "ctrl+up": {Code: tea.KeyUp, Mod: tea.ModCtrl}, "ctrl+j": {Code: 'j', Mod: tea.ModCtrl},
		"alt+enter": {Code: tea.KeyEnter, Mod: tea.ModAlt},
	}
	if key, ok := named[k]; ok {
		return tea.KeyPressMsg(key)
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

// screen is the rendered screen without escape sequences.
func (h *harness) screen() string {
	return ansi.Strip(h.m.View().Content)
}

// checkGolden compares the screen with testdata/name.golden.
func (h *harness) checkGolden(name string) {
	h.t.Helper()
	got := h.screen() + "\n"
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatalf("%v (run go test ./tui -update)", err)
	}
	if got != string(want) {
		h.t.Errorf("screen %s differs from %s:\n%s", name, path, got)
	}
}

// checkSize asserts that the screen fills w×h and no line is wider.
func (h *harness) checkSize(w, hh int) {
	h.t.Helper()
	lines := strings.Split(h.m.View().Content, "\n")
	if len(lines) != hh {
		h.t.Errorf("%d lines, want %d", len(lines), hh)
	}
	for i, l := range lines {
		if got := ansi.StringWidth(l); got > w {
			h.t.Errorf("line %d is %d cells wide, more than %d: %q", i, got, w, ansi.Strip(l))
		}
	}
}

func (h *harness) contains(want ...string) {
	h.t.Helper()
	s := h.screen()
	for _, w := range want {
		if !strings.Contains(s, w) {
			h.t.Errorf("screen lacks %q:\n%s", w, s)
		}
	}
}

func (h *harness) lacks(unwanted ...string) {
	h.t.Helper()
	s := h.screen()
	for _, w := range unwanted {
		if strings.Contains(s, w) {
			h.t.Errorf("screen shows %q:\n%s", w, s)
		}
	}
}

// openBob opens the 1:1 with bob (first in the list).
func (h *harness) openBob() {
	h.press("enter")
	if h.m.conv == nil || h.m.conv.id != 1 {
		h.t.Fatalf("conversation with bob not open:\n%s", h.screen())
	}
}

func TestListSortedByActivity(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		h := newHarness(t, size[0], size[1])
		h.checkGolden(fmt.Sprintf("list_%dx%d", size[0], size[1]))
		s := h.screen()
		order := []string{"bob", "Project", "carol", "Empty"}
		last := -1
		for _, title := range order {
			i := strings.Index(s, "  "+title)
			if i < 0 {
				i = strings.Index(s, "▸ "+title)
			}
			if i <= last {
				t.Errorf("%dx%d: %q not after the previous one in:\n%s", size[0], size[1], title, s)
			}
			last = i
		}
		h.contains("(2)", "14:20", "bob: Perfect", "(1)", "Sun", "you: ship it", "no messages")
	}
}

func TestListWithoutLast(t *testing.T) {
	f := newFake()
	for i := range f.convs {
		f.convs[i].Last = nil
	}
	m := New(f, Options{Now: func() time.Time { return testNow }, Plain: true})
	m.listen = false
	h := &harness{t: t, m: m, f: f}
	h.run(m.Init())
	h.contains("bob: Perfect", "you: ship it", "carol: hi alice!", "no messages")
	if vis := m.visible(); vis[0].ID != 1 || vis[3].ID != 4 {
		t.Errorf("not sorted by the entries loaded: %v", []any{vis[0].ID, vis[1].ID, vis[2].ID, vis[3].ID})
	}
	if got := m.selectedConv(); got != 1 {
		t.Errorf("the cursor is on conversation %d, want the most recent (1) until the user moves it", got)
	}
	h.send(convsMsg{convs: slices.Clone(f.convs)})
	h.contains("bob: Perfect")
}

func TestFilter(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.press("/")
	h.typeText("car")
	h.contains("Filter: car", "carol")
	h.lacks("Project", "Empty")
	h.press("enter")
	if h.m.conv == nil || h.m.conv.id != 3 {
		t.Fatalf("Enter in the filter did not open carol's conversation")
	}
	h.lacks("Filter: car")
	h.contains("Project", "carol") // the whole list is back
	h.press("tab", "ctrl+f")
	h.typeText("zz")
	h.contains("Filter: zz")
	h.press("esc")
	h.lacks("Filter:")
	h.contains("Project", "carol")
}

func TestConversation(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		h := newHarness(t, size[0], size[1])
		h.openBob()
		h.checkGolden(fmt.Sprintf("conversation_%dx%d", size[0], size[1]))
		h.checkSize(size[0], size[1])
		h.contains("Thursday, 5 March 2026", "(edited)", "message deleted", "┃ alice: Thanks", "👍 2  🎉 1",
			"[file] report.pdf (12.3 kB)", "· you added carol", "read by bob", "Perfect")
		if !h.f.called("mark_read 1") {
			t.Error("opening the conversation did not mark it read")
		}
		if strings.Contains(h.screen(), "(2)") {
			t.Error("the open conversation still counts unread messages")
		}
	}
	h := newHarness(t, 120, 40)
	h.openBob()
	h.contains("Wednesday, 4 March 2026")
}

func TestSendReply(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.openBob()
	h.press("up") // composer empty: selects the latest message
	h.press("up", "up", "up")
	if sel := h.m.selected(); sel == nil || sel.ID != mid(4) {
		t.Fatalf("selected %v, want message 4", sel)
	}
	h.press("r")
	h.contains("replying to alice: Thanks")
	h.typeText("see you")
	h.press("enter")
	if !h.f.called("send 1 see you") {
		t.Fatalf("no send: %v", h.f.calls)
	}
	if got := h.f.sent[0].ReplyTo; got != mid(4) {
		t.Errorf("ReplyTo %v, want %v", got, mid(4))
	}
	h.contains("see you", "┃ alice: Thanks")
	h.lacks("replying to")
}

func TestComposerNewline(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.openBob()
	h.typeText("one")
	h.press("alt+enter")
	h.typeText("two")
	h.press("ctrl+j")
	h.typeText("three")
	h.send(tea.PasteMsg{Content: strings.Repeat("long paste ", 200)})
	h.press("enter")
	want := "send 1 one\ntwo\nthree" + strings.Repeat("long paste ", 200)
	if !h.f.called(want) {
		t.Fatalf("sent %q", h.f.calls)
	}
}

func TestEditDeleteReact(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.openBob()
	h.press("up", "up", "up", "up") // message 4, alice's
	h.press("e")
	h.contains("editing: Thanks")
	h.press("backspace")
	h.typeText("!")
	h.press("enter")
	want := "edit 1 " + mid(4).String() + " Thanks, I will read them before lunch and come back with comments on the budget part!"
	if !h.f.called(want) {
		t.Errorf("no %q in %q", want, h.f.calls)
	}
	h.press("up", "up", "up", "up", "d")
	h.contains("Delete this message for everyone? (y/n)")
	h.press("n")
	if h.f.called("delete 1 " + mid(4).String()) {
		t.Fatal("deleted although the answer was n")
	}
	h.press("up", "up", "up", "up", "d", "y")
	if !h.f.called("delete 1 " + mid(4).String()) {
		t.Errorf("no delete in %q", h.f.calls)
	}
	h.press("up", "+")
	h.contains("React: 1 👍")
	h.press("1")
	if !h.f.called("react 1 " + mid(7).String() + " 👍 false") {
		t.Errorf("no reaction in %q", h.f.calls)
	}
	h.press("up", "up", "up", "up", "+")
	h.press("1") // bob's 👍 is not alice's: added
	h.press("up", "+")
	h.typeText("🚀")
	h.press("enter")
	if !h.f.called("react 1 " + mid(7).String() + " 🚀 false") {
		t.Errorf("no typed reaction in %q", h.f.calls)
	}
}

func TestCommands(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.openBob()
	h.typeText("/timer 1h")
	h.press("enter")
	if !h.f.called("set_timer 1 1h0m0s") {
		t.Errorf("/timer 1h: no set_timer in %q", h.f.calls)
	}
	h.contains("⏱ 1h")
	h.typeText("/timer 1m")
	h.press("enter")
	h.contains("/timer: protocol: parse timer")
	for _, c := range []struct{ line, call string }{
		{"/rename Review team", "set_name 1 Review team"},
		{"/topic Q3 budget", "set_topic 1 Q3 budget"},
		{"/add @dave", "add 1 dave"},
		{"/new carol", "new_direct carol"},
		{"/group Ops bob carol", "new_group Ops bob,carol"},
	} {
		h.typeText(c.line)
		h.press("enter")
		if !h.f.called(c.call) {
			t.Errorf("%s: no %q in %q", c.line, c.call, h.f.calls)
		}
	}
	h.typeText("/remove bob")
	h.press("enter")
	h.contains("remove bob: " + client.ErrNotMember.Error())
	h.typeText("/nonsense")
	h.press("enter")
	h.contains("unknown command /nonsense")
	h.typeText("/leave")
	h.press("enter", "y")
	if !h.f.called("leave 2") { // /group opened conversation 2
		t.Errorf("no leave in %q", h.f.calls)
	}
}

func TestNewFromList(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {50, 16}} {
		h := newHarness(t, size[0], size[1])
		h.press("n")
		h.contains("> /new")
		h.typeText("carol")
		h.press("enter")
		if !h.f.called("new_direct carol") || h.m.conv == nil || h.m.conv.id != 3 {
			t.Errorf("%dx%d: /new carol from the list did not open conversation 3: %q", size[0], size[1], h.f.calls)
		}
		h.contains("hi alice!")
	}
}

func TestSaveAttachment(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.openBob()
	h.typeText("/save /tmp/x")
	h.press("enter")
	h.contains("select a message with a file first")
	h.press("up", "up", "up", "up", "up")
	h.typeText("s")
	if !h.f.called("download a1b2 .") {
		t.Errorf("no download in %q", h.f.calls)
	}
	h.contains("saved ./report.pdf")
}

func TestIncomingMessage(t *testing.T) {
	h := newHarness(t, 120, 40)
	h.openBob()
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventMessage, Conversation: 1,
		Message: &client.Message{Conversation: 1, Seq: 8, ID: mid(8), Sender: "bob", Sent: at(5, 14, 25), Received: at(5, 14, 25), Kind: content.KindText, Text: "one more thing"}})})
	h.contains("one more thing")
	if !h.f.called("mark_read_up_to 1 8") {
		t.Errorf("the message shown was not marked read: %q", h.f.calls)
	}
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventMessage, Conversation: 3,
		Message: &client.Message{Conversation: 3, Seq: 2, ID: mid(0x32), Sender: "carol", Sent: at(5, 14, 29), Received: at(5, 14, 29), Kind: content.KindText, Text: "lunch?"}})})
	cv := h.m.findConv(3)
	if cv.Unread != 2 {
		t.Errorf("carol's conversation has %d unread, want 2", cv.Unread)
	}
	h.contains("carol: lunch?", "(2) 14:29")
	if vis := h.m.visible(); vis[0].ID != 3 {
		t.Errorf("carol's conversation is not first after its new message")
	}
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventEdited, Conversation: 1,
		Message: &client.Message{Conversation: 1, Seq: 8, ID: mid(8), Sender: "bob", Sent: at(5, 14, 25), Edited: at(5, 14, 26), Kind: content.KindText, Text: "one last thing"}})})
	h.contains("one last thing (edited)")
	h.lacks("one more thing")
}

func TestConnectionState(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.contains("1 queued") // the Project's last message is pending
	conn := func(s client.ConnState) {
		h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventConnection, Connection: s})})
	}
	conn(client.Connected)
	h.contains("● connected · 1 queued")
	conn(client.Connecting)
	h.contains("◌ reconnecting")
	conn(client.Disconnected)
	h.contains("○ offline · 1 queued")
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventDelivered, Conversation: 2,
		Message: &client.Message{Conversation: 2, Seq: 4, ID: mid(0x24), Sender: "alice", Sent: at(5, 9, 12), Kind: content.KindText, Text: "ship it", State: client.Sent}})})
	h.contains("○ offline")
	h.lacks("queued")
}

func TestIdentityChangedBanner(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.openBob()
	h.lacks("identity key changed")
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventIdentityChanged, User: "bob"})})
	h.contains("⚠ bob's identity key changed.", "Compare safety numbers:", "/verify bob")
	h.checkGolden("identity_changed_80x24")

	h = newHarness(t, 80, 24)
	h.f.members[1][1].IdentityChanged = true
	h.openBob()
	h.contains("⚠ bob's identity key changed")
}

func TestVerify(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.openBob()
	h.typeText("/verify bob")
	h.press("enter")
	h.checkGolden("verify_80x24")
	sn, _ := h.f.SafetyNumber(context.Background(), "bob")
	for _, g := range sn.Groups {
		h.contains(g)
	}
	h.contains("not verified")
	h.press("m")
	if !h.f.called("mark_verified bob") {
		t.Fatalf("no mark_verified in %q", h.f.calls)
	}
	h.contains("✓ verified", "bob marked verified")
	h.press("esc")
	h.contains("Perfect")

	h = newHarness(t, 120, 40)
	h.openBob()
	h.typeText("/verify bob")
	h.press("enter")
	h.contains("█▀▀▀▀▀█ ▄ █▀▀▀▀▀█")
}

func TestMembers(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.press("down", "enter") // Project
	h.typeText("/members")
	h.press("enter")
	h.contains("alice  admin  device D1  this device", "bob  device B1  ✓ verified", "carol  device C1  not verified")
	h.press("down", "down", "v")
	h.contains("Safety number with carol")
}

func TestUnsafeAndLeftBanners(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.f.convs[1].Unsafe = &client.Alarm{User: "mallory", Reason: "device not certified"}
	h.f.convs[1].Left = true
	h.openBob()
	h.contains("⚠ Unsafe conversation: device not certified.", "no longer a member")
	h.checkSize(80, 24)
}

func TestHelp(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.openBob()
	h.typeText("?")
	h.lacks("parley tui — keys") // a message may start with "?"
	h.press("backspace", "tab", "?")
	h.checkGolden("help_80x24")
	h.contains("Alt-Enter", "/rename", "/verify USER")
	h.press("x")
	h.lacks("parley tui — keys")
}

func TestResize(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}, {50, 16}, {20, 5}} {
		h := newHarness(t, 80, 24)
		h.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		h.checkSize(size[0], size[1])
		h.openBob()
		h.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		h.checkSize(size[0], size[1])
		h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventIdentityChanged, User: "bob"})})
		h.checkSize(size[0], size[1])
		h.press("up", "up")
		h.checkSize(size[0], size[1])
		h.press("esc")
		h.typeText("/verify bob")
		h.press("enter")
		h.checkSize(size[0], size[1])
		h.press("esc", "?")
		h.checkSize(size[0], size[1])
	}
}

func TestNoColor(t *testing.T) {
	colour := func(plain bool) bool {
		f := newFake()
		m := New(f, Options{Now: func() time.Time { return testNow }, Plain: plain})
		m.listen = false
		h := &harness{t: t, m: m, f: f}
		h.run(m.Init())
		h.openBob()
		s := m.View().Content
		return strings.Contains(s, "[38;") || strings.Contains(s, "[48;") || strings.Contains(s, ";38;") || strings.Contains(s, ";48;")
	}
	if colour(true) {
		t.Error("plain screen has colour escapes")
	}
	if !colour(false) {
		t.Error("colour screen has no colour escapes (the test cannot tell plain from colour)")
	}
}

func TestOlderHistory(t *testing.T) {
	h := newHarness(t, 80, 24)
	var long []*client.Message
	for i := range 250 {
		long = append(long, &client.Message{Conversation: 4, Seq: int64(i + 1), ID: content.MessageID{9, byte(i), byte(i >> 8)},
			Sender: "dave", Sent: at(5, 8, 0), Received: at(5, 8, 0), Kind: content.KindText, Text: fmt.Sprintf("line %d", i+1)})
	}
	h.f.history[4] = long
	h.m.page = 100
	h.press("down", "down", "down", "enter")
	h.contains("line 250")
	if n := len(h.m.conv.msgs); n != 100 {
		t.Fatalf("%d entries loaded, want 100", n)
	}
	for range 60 {
		h.press("pgup")
	}
	if n := len(h.m.conv.msgs); n != 250 {
		t.Fatalf("%d entries loaded after scrolling up, want 250 (History lasts %v)", n, h.f.histLast)
	}
	h.contains("start of the conversation", "line 1 ")
}

func TestEventLoop(t *testing.T) {
	f := newFake()
	f.events = []*daemonapi.Event{daemonapi.NewEvent(client.Event{Kind: client.EventConnection, Connection: client.Connected})}
	m := New(f, Options{Now: func() time.Time { return testNow }, Plain: true})
	h := &harness{t: t, m: m, f: f}
	// Init subscribes first and loads the list only once the events
	// flow, so that nothing recorded in between is missed.
	var ev eventMsg
	for _, msg := range h.exec(m.Init()) {
		if _, ok := msg.(subscribedMsg); !ok {
			h.send(msg)
			continue
		}
		if f.called("conversations") {
			t.Fatal("the list was loaded before the subscription")
		}
		_, cmd := m.Update(msg)
		for _, next := range h.exec(cmd) {
			if e, ok := next.(eventMsg); ok {
				ev = e
			} else {
				h.send(next)
			}
		}
	}
	if !f.called("subscribe") || !f.called("conversations") {
		t.Fatalf("calls %q: want subscribe, then conversations", f.calls)
	}
	if ev.ev == nil || ev.ev.Connection != "connected" {
		t.Fatalf("first event %#v, want the connection", ev)
	}
	_, cmd := m.Update(ev)
	if !strings.Contains(ansi.Strip(m.View().Content), "● connected") {
		t.Error("connection event not shown")
	}
	if cmd == nil {
		t.Fatal("the event loop was not armed again")
	}
	// The fake has no more events: the next read ends the loop with an
	// error, shown in the status line.
	end := cmd()
	if _, ok := end.(eventErrMsg); !ok {
		t.Fatalf("the next read returned %#v, want the end of the events", end)
	}
	m.Update(end)
	if !strings.Contains(ansi.Strip(m.View().Content), "daemon gone") {
		t.Errorf("end of events not shown: %#v", end)
	}
}

// TestRandomKeys presses random keys, with resizes and events in
// between: the model never panics and the screen always fits.
func TestRandomKeys(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("TUI_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (TUI_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	keys := []string{"enter", "esc", "up", "down", "tab", "pgup", "pgdown", "backspace", "ctrl+f", "ctrl+s", "ctrl+up", "ctrl+j",
		"alt+enter", "/", "?", "d", "y", "n", "+", "1", "r", "e", "s", "v", "m", "j", "k", "a", "x", " "}
	sizes := [][2]int{{80, 24}, {120, 40}, {50, 16}, {20, 5}, {1, 1}}
	events := []client.Event{
		{Kind: client.EventConnection, Connection: client.Connecting},
		{Kind: client.EventIdentityChanged, User: "bob"},
		{Kind: client.EventMessage, Conversation: 1, Message: &client.Message{Conversation: 1, Seq: 50, ID: mid(50), Sender: "bob", Sent: testNow, Kind: content.KindText, Text: "ping"}},
		{Kind: client.EventDeleted, Conversation: 1, Message: &client.Message{Conversation: 1, Seq: 7, ID: mid(7), Sender: "bob", Sent: testNow, Deleted: true}},
		{Kind: client.EventOverflow},
	}
	h := newHarness(t, 80, 24)
	size := sizes[0]
	for i := range 3000 {
		switch r := rng.IntN(100); {
		case r < 3:
			size = sizes[rng.IntN(len(sizes))]
			h.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		case r < 6:
			h.send(eventMsg{daemonapi.NewEvent(events[rng.IntN(len(events))])})
		case r < 8:
			h.typeText([]string{"/verify bob", "/members", "/rename x", "/save", "/help", "/file nope"}[rng.IntN(6)])
		default:
			h.press(keys[rng.IntN(len(keys))])
		}
		if h.quit {
			h.quit = false
		}
		if i%50 == 0 {
			h.checkSize(size[0], size[1])
		}
	}
	h.checkSize(size[0], size[1])
}

// TestReconnect: when the daemon's events end, the model asks for a new
// Backend (trying again after a failure), subscribes to it and reloads
// the open conversation from it, so that what arrived meanwhile shows
// once.
func TestReconnect(t *testing.T) {
	h := newHarness(t, 120, 40)
	h.openBob()
	after := newFake() // the profile as the restarted daemon serves it
	bob := h.m.conv.id
	missed := &client.Message{Conversation: bob, Seq: 99, ID: content.MessageID{9}, Sender: "bob", Sent: testNow, Received: testNow,
		Kind: content.KindText, Text: "sent while the daemon was down", State: client.Received}
	after.history[bob] = append(after.history[bob], missed)
	attempts := 0
	h.m.reconnect = func(context.Context) (Backend, error) {
		attempts++
		if attempts == 1 {
			return nil, errors.New("no daemon yet")
		}
		return after, nil
	}
	h.m.listen = true
	_, cmd := h.m.Update(eventErrMsg{errors.New("connection reset")})
	h.contains("daemon gone")
	// The first attempt fails and schedules another; run it.
	msg := cmd()
	if r, ok := msg.(reconnectMsg); !ok || r.err == nil {
		t.Fatalf("first attempt = %#v, want a failure", msg)
	}
	_, cmd = h.m.Update(msg)
	h.contains("trying again")
	msg = cmd() // the tick fires, then the second attempt runs
	if r, ok := msg.(reconnectMsg); !ok || r.err != nil || r.b != after {
		t.Fatalf("second attempt = %#v, want the new backend", msg)
	}
	h.m.listen = false // events are injected from here on
	h.send(msg)
	h.m.listen = true
	if attempts != 2 {
		t.Errorf("%d attempts, want 2", attempts)
	}
	if h.m.b != after {
		t.Fatal("the model still uses the lost backend")
	}
	h.lacks("daemon gone")
	h.contains("sent while the daemon was down")
	if n := strings.Count(h.screen(), "sent while the daemon was down"); n != 1 {
		t.Errorf("the missed message shows %d times", n)
	}
}

// TestHostileText: text that other people chose (messages, names, file
// names, reactions, titles) cannot drive the terminal: no escape or
// control character of it reaches the screen.
func TestHostileText(t *testing.T) {
	h := newHarness(t, 120, 40)
	hostile := "\x1b]52;c;cHduZWQ=\a\x1b[2J\x1b[31mred\x9b31m\rover"
	bob := h.f.convs[0].ID
	for _, cv := range h.f.convs {
		if cv.Direct {
			bob = cv.ID
			break
		}
	}
	e := &client.Message{Conversation: bob, Seq: 500, ID: content.MessageID{5}, Sender: "bob", Sent: testNow, Received: testNow,
		Kind: content.KindText, Text: "hi " + hostile, State: client.Received,
		Reactions:  []client.Reaction{{User: "bob", Emoji: hostile}},
		Attachment: &client.Attachment{FileName: "a" + hostile + ".pdf", Size: 10}}
	h.f.mu.Lock()
	h.f.history[bob] = append(h.f.history[bob], e)
	h.f.mu.Unlock()
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventMessage, Conversation: bob, Message: e})})
	h.run(h.m.openConversation(bob))
	raw := h.m.View().Content
	for _, bad := range []string{"\x1b]52", "\x1b[2J", "\a", "\x9b", "\r"} {
		if strings.Contains(raw, bad) {
			t.Errorf("the screen carries %q from a message", bad)
		}
	}
	h.contains("hi ", "red", ".pdf (10 B)")
}

// TestRenderedEntriesFollowChanges: the history keeps the rendered
// entries between frames; a change of an entry shows, and so does the
// change of a message in the quotes of its replies, a reply that
// arrived before the message it quotes, a new width and the selection.
func TestRenderedEntriesFollowChanges(t *testing.T) {
	h := newHarness(t, 120, 40)
	h.openBob()
	h.contains("┃ alice: Thanks, I will read")
	edited := *h.m.conv.find(mid(4))
	edited.Text, edited.Edited = "Thanks, read them already", at(5, 14, 27)
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventEdited, Conversation: 1, Message: &edited})})
	h.contains("┃ alice: Thanks, read them already", "Thanks, read them already (edited)")
	h.lacks("Thanks, I will read")

	reply := &client.Message{Conversation: 1, Seq: 9, ID: mid(9), Sender: "bob", Sent: at(5, 14, 28), Received: at(5, 14, 28),
		Kind: content.KindText, Text: "answer", ReplyTo: mid(8)}
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventMessage, Conversation: 1, Message: reply})})
	h.contains("┃ (earlier message)")
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventMessage, Conversation: 1,
		Message: &client.Message{Conversation: 1, Seq: 8, ID: mid(8), Sender: "bob", Sent: at(5, 14, 27), Received: at(5, 14, 27), Kind: content.KindText, Text: "question"}})})
	h.contains("┃ bob: question")
	h.lacks("(earlier message)")

	h.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	h.checkSize(80, 24)
	h.press("up") // the entry's gutter, after the list's border
	h.contains("│▸")
	h.press("esc")
	h.lacks("│▸")
}

// TestListLoading: before the daemon lists the conversations the list
// says it is loading, not that there are none; listLoaded tells when the
// first screen is complete.
func TestListLoading(t *testing.T) {
	f := newFake()
	f.convs = nil
	m := New(f, Options{Now: func() time.Time { return testNow }, Plain: true})
	m.listen = false
	h := &harness{t: t, m: m, f: f}
	h.contains("loading…")
	h.lacks("no conversations")
	if m.listLoaded() {
		t.Error("listLoaded before the daemon answered")
	}
	h.run(m.Init())
	h.contains("no conversations (n: new)")
	h.lacks("loading…")
	if !m.listLoaded() {
		t.Error("not listLoaded after the account and the list arrived")
	}
}

// TestRolesCommands: /role changes a role, /policy shows who may do
// what, /channel creates a channel.
func TestRolesCommands(t *testing.T) {
	h := newHarness(t, 120, 40)
	h.press("down", "enter") // Project, alice's policy
	h.typeText("/role @bob admin")
	h.press("enter")
	if !h.f.called("set_role 2 bob true") {
		t.Errorf("calls %q: want set_role 2 bob true", h.f.calls)
	}
	h.contains("bob is now admin")
	h.typeText("/role bob boss")
	h.press("enter")
	h.contains("usage: /role USER admin|member")
	h.typeText("/policy")
	h.press("enter")
	h.contains("admins=alice add=members remove=admins")
	h.typeText("/channel news bob carol")
	h.press("enter")
	if !h.f.called("new_channel news bob,carol") {
		t.Errorf("calls %q: want new_channel news bob,carol", h.f.calls)
	}
}

// TestExpiredEvent: an expired message leaves the open conversation, and
// a timer change shows in its header, without reopening it.
func TestExpiredEvent(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.openBob()
	h.f.mu.Lock()
	hist := h.f.history[1]
	last := hist[len(hist)-1]
	h.f.history[1] = hist[:len(hist)-1] // the daemon's history leaves it out
	bob := slices.IndexFunc(h.f.convs, func(cv client.Conversation) bool { return cv.ID == 1 })
	h.f.convs[bob].Last = hist[len(hist)-2]
	h.f.mu.Unlock()
	h.contains(last.Text)
	gone := *last
	gone.Text, gone.Expired = "", true
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventExpired, Conversation: 1, Message: &gone})})
	h.lacks(last.Text)

	h.f.mu.Lock()
	h.f.convs[bob].Timer = 7 * 24 * time.Hour
	h.f.mu.Unlock()
	line := &client.Message{Conversation: 1, Seq: 99, ID: mid(99), Sender: "bob", Sent: testNow,
		System: &client.System{Kind: client.SystemTimerChanged, Value: "1w", Previous: "off"}}
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventSystem, Conversation: 1, Message: line})})
	h.contains("⏱ 1w")
}

// TestStaleLoads: a list or history the daemon answered before it stored
// a message, applied after that message's event, does not hide the
// message; the model asks again and shows what the daemon has then.
func TestStaleLoads(t *testing.T) {
	h := newHarness(t, 120, 40)
	h.openBob()
	carol := &client.Message{Conversation: 3, Seq: 2, ID: mid(0x32), Sender: "carol", Sent: at(5, 14, 29), Received: at(5, 14, 29), Kind: content.KindText, Text: "lunch?"}
	bob := &client.Message{Conversation: 1, Seq: 8, ID: mid(8), Sender: "bob", Sent: at(5, 14, 30), Received: at(5, 14, 30), Kind: content.KindText, Text: "one more thing"}
	// Loads answered before the messages were stored.
	staleList := h.m.loadConversations()()
	staleHistory := h.m.loadHistory(1, h.m.page, false)()
	asked := len(h.f.histLast)
	// The daemon stores the messages, then sends their events.
	h.f.mu.Lock()
	h.f.history[1] = append(h.f.history[1], bob)
	for i := range h.f.convs {
		switch h.f.convs[i].ID {
		case 1:
			h.f.convs[i].Last = bob
		case 3:
			h.f.convs[i].Last, h.f.convs[i].Unread = carol, h.f.convs[i].Unread+1
		}
	}
	h.f.mu.Unlock()
	for _, e := range []*client.Message{carol, bob} {
		h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventMessage, Conversation: e.Conversation, Message: e})})
	}
	h.send(staleList)
	h.send(staleHistory)
	h.contains("carol: lunch?", "one more thing")
	if cv := h.m.findConv(3); cv.Last == nil || cv.Last.ID != carol.ID {
		t.Errorf("the list shows %v as carol's latest entry, want %q", cv.Last, carol.Text)
	}
	if len(h.f.histLast) == asked {
		t.Errorf("the stale history was not asked for again")
	}
	// A load asked for after the events is applied as it comes.
	h.send(h.m.loadConversations()())
	if cv := h.m.findConv(1); cv.Last == nil || cv.Last.ID != bob.ID {
		t.Errorf("the list shows %v as bob's latest entry, want %q", cv.Last, bob.Text)
	}
}

// TestDevices: /devices lists the account's devices (this one, a
// revoked one, a forged one marked); x revokes after y, and the last
// device's refusal says what to do; /link CODE asks whether the new
// device shows the confirmation: n declines, y links it; a wrong code's
// failure is shown.
func TestDevices(t *testing.T) {
	h := newHarness(t, 100, 24)
	h.openBob()
	h.typeText("/devices")
	h.press("enter")
	h.contains("Your devices", "desktop", "this device", "laptop", "old phone", "revoked Tue", "FORGED", "(f4f4f4f4…)")
	h.checkGolden("devices_100x24")
	h.checkSize(100, 24)
	h.press("down", "x")
	h.contains("Revoke “laptop”?")
	h.press("y")
	if !h.f.called("revoke_device a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2 false") {
		t.Errorf("calls %v", h.f.calls)
	}
	h.contains("revoked a2a2a2a2…")
	h.press("up", "x", "y")
	h.contains("your last active device: link another first")
	h.press("esc")
	h.lacks("Your devices")

	h.typeText("/link GOOD-CODE")
	h.press("enter")
	h.contains("Link a new device: “tablet”", "It must show the confirmation:  493 018", "Does the new device “tablet” show 493 018?")
	h.checkGolden("link_100x24")
	h.press("n")
	if !h.f.called("link_device_confirm L1 false") {
		t.Errorf("calls %v", h.f.calls)
	}
	h.contains("declined: nothing was linked")
	h.lacks("Link a new device")

	h.press("esc")
	h.typeText("/link GOOD-CODE")
	h.press("enter", "y")
	if !h.f.called("link_device_confirm L1 true") {
		t.Errorf("calls %v", h.f.calls)
	}
	h.contains("linked “tablet”; added it to 3 conversations")

	h.press("esc")
	h.typeText("/link WRONG")
	h.press("enter")
	h.contains("the linking channel failed its check")
	h.lacks("Does the new device")
}
