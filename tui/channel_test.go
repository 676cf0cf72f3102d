package tui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
)

// TestChannelReadOnlyComposer: in a channel where alice is not admin the
// list marks it "#", the composer is replaced by a line saying that only
// admins post, typed text is neither shown nor sent, a command still
// runs, and a selected message can still get a reaction. Where alice is
// admin the composer is there.
func TestChannelReadOnlyComposer(t *testing.T) {
	f := newFake()
	f.convs[0].Channel = true // Project
	m := New(f, Options{Now: func() time.Time { return testNow }, Plain: true})
	m.listen = false
	h := &harness{t: t, m: m, f: f}
	h.run(m.Init())
	h.send(tea.WindowSizeMsg{Width: 100, Height: 30})
	h.contains("# Project")

	h.press("down", "enter")
	if h.m.conv == nil || h.m.conv.id != 2 {
		t.Fatalf("Project not open:\n%s", h.screen())
	}
	h.contains("only admins post in this channel")
	h.lacks("Message · Enter send")
	h.typeText("hello")
	h.press("enter")
	if h.f.called("send 2 hello") || strings.Contains(h.screen(), "> hello") {
		t.Errorf("a member's text was taken in a channel: calls %q\n%s", h.f.calls, h.screen())
	}

	h.press("up", "+", "1")
	if !h.f.called("react 2 " + mid(0x24).String() + " 👍 false") {
		t.Errorf("no reaction in the channel: calls %q\n%s", h.f.calls, h.screen())
	}

	h.typeText("/mute")
	h.contains("> /mute")
	h.press("enter")
	if !h.f.called("set_muted 2 true") {
		t.Errorf("a command in the channel did not run: calls %q", h.f.calls)
	}
}

// TestChannelAdminComposer: the channel's admin has the composer.
func TestChannelAdminComposer(t *testing.T) {
	f := newFake()
	f.convs[0].Channel, f.convs[0].Admin = true, true
	m := New(f, Options{Now: func() time.Time { return testNow }, Plain: true})
	m.listen = false
	h := &harness{t: t, m: m, f: f}
	h.run(m.Init())
	h.send(tea.WindowSizeMsg{Width: 100, Height: 30})
	h.press("down", "enter")
	h.lacks("only admins post in this channel")
	h.typeText("news")
	h.press("enter")
	if !h.f.called("send 2 news") {
		t.Errorf("the admin's post was not sent: calls %q", h.f.calls)
	}
}
