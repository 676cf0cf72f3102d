package tui

import (
	"slices"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/daemonapi"
)

// clock is a settable clock for a harness; its ticks fire at once (the
// model then looks at the clock to decide what ran out).
func (h *harness) clock() *time.Time {
	now := testNow
	h.m.now = func() time.Time { return now }
	h.m.tick = func(_ time.Duration, f func(time.Time) tea.Msg) tea.Cmd {
		return func() tea.Msg { return f(now) }
	}
	return &now
}

func typingEvent(user string, typing bool) eventMsg {
	return eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventTyping, Conversation: 1, User: user, Device: "B1", Typing: typing})}
}

// Typing in the composer sends "typing" at most every 3 seconds, and
// "stopped" when the composer is emptied or another conversation
// opened, but not when the message is sent (the message tells the
// others); commands send nothing.
func TestTypingSent(t *testing.T) {
	h := newHarness(t, 80, 24)
	now := h.clock()
	h.openBob()
	h.typeText("hel")
	if got, want := h.f.typingCalls(), []string{"typing 1 true"}; !slices.Equal(got, want) {
		t.Fatalf("after typing: %q, want %q", got, want)
	}
	*now = now.Add(typingEvery)
	h.typeText("lo")
	h.press("enter")
	if got, want := h.f.typingCalls(), []string{"typing 1 true", "typing 1 true"}; !slices.Equal(got, want) {
		t.Fatalf("after 3 s and sending: %q, want %q", got, want)
	}
	if !h.f.called("send 1 hello") {
		t.Fatalf("not sent: %q", h.f.calls)
	}
	h.typeText("x")
	h.press("backspace")
	h.typeText("/he")
	h.press("backspace", "backspace", "backspace")
	h.typeText("y")
	if got, want := h.f.typingCalls()[2:], []string{"typing 1 true", "typing 1 false", "typing 1 true"}; !slices.Equal(got, want) {
		t.Fatalf("after clearing, a command and typing again: %q, want %q", got, want)
	}
	h.run(h.m.openConversation(2))
	if got := h.f.typingCalls(); got[len(got)-1] != "typing 1 false" {
		t.Errorf("opening another conversation did not say stopped: %q", got)
	}
}

// The others' typing shows above the composer for 5 seconds after their
// last indicator, until they stop or their message arrives; it never
// enters the history.
func TestTypingShown(t *testing.T) {
	h := newHarness(t, 80, 24)
	now := h.clock()
	h.openBob()
	h.send(typingEvent("bob", true))
	h.contains("bob is typing…")
	h.send(typingEvent("carol", true))
	h.contains("bob and carol are typing…")
	h.send(typingEvent("carol", false))
	h.contains("bob is typing…")
	h.lacks("carol are typing")

	*now = now.Add(4 * time.Second)
	h.send(typingExpiredMsg{})
	h.contains("bob is typing…")
	*now = now.Add(time.Second)
	h.send(typingExpiredMsg{})
	h.lacks("is typing")

	h.send(typingEvent("bob", true))
	h.contains("bob is typing…")
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventMessage, Conversation: 1,
		Message: &client.Message{Conversation: 1, Seq: 8, ID: mid(8), Sender: "bob", Sent: at(5, 14, 25), Received: at(5, 14, 25), Kind: content.KindText, Text: "done typing"}})})
	h.contains("done typing")
	h.lacks("is typing")

	h.send(typingEvent("alice", true)) // this user's other device
	h.lacks("is typing")
}
