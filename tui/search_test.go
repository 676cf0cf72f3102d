package tui

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/parley-chat/parley/client"
)

// searchHarness is a harness on the fake profile answering every search with two of
// bob's conversation's messages, newest first.
func searchHarness(t *testing.T, w, hh int) *harness {
	t.Helper()
	h := newHarness(t, w, hh)
	bob := h.f.history[1]
	h.f.found = []*client.Message{bob[3], bob[0]}
	return h
}

func TestSearch(t *testing.T) {
	h := searchHarness(t, 80, 24)
	h.m.page = 3 // opening bob's conversation plainly loads too little to show the first message
	h.press("ctrl+s")
	h.typeText("the review in:bob from:@bob")
	h.press("enter")
	if len(h.f.queries) != 1 {
		t.Fatalf("%d searches, want 1", len(h.f.queries))
	}
	if q, want := h.f.queries[0], (client.SearchQuery{Text: "the review", From: "bob", In: 1}); q != want {
		t.Errorf("query %+v, want %+v", q, want)
	}
	h.contains("Search: the review in:bob from:@bob", "2 messages", "bob · Wed 18:02", "Are we still on for the review", "alice · 09:20")
	h.checkSize(80, 24)

	h.press("down", "enter")
	c := h.m.conv
	if c == nil || c.id != 1 || h.m.overlay != overlayNone {
		t.Fatalf("conversation with bob not open at the result:\n%s", h.screen())
	}
	if e := h.m.selected(); e == nil || e.ID != mid(1) {
		t.Fatalf("selected %v, want the first message:\n%s", e, h.screen())
	}
	h.contains("▸18:02 bob", "Are we still on for the review tomorrow?", "r reply")
	h.checkSize(80, 24)
	if !h.f.called("mark_read 1") {
		t.Error("opening at a result did not mark the conversation read")
	}
}

func TestSearchGolden(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		h := searchHarness(t, size[0], size[1])
		h.press("ctrl+s")
		h.typeText("the review")
		h.press("enter")
		h.checkGolden(fmt.Sprintf("search_%dx%d", size[0], size[1]))
		h.checkSize(size[0], size[1])
	}
}

func TestSearchSizes(t *testing.T) {
	for _, size := range [][2]int{{50, 16}, {20, 5}, {200, 10}} {
		h := searchHarness(t, size[0], size[1])
		h.press("ctrl+s")
		h.typeText("the review")
		h.press("enter")
		h.checkSize(size[0], size[1])
		h.press("down", "down", "up")
		h.checkSize(size[0], size[1])
	}
}

func TestSearchEscAndNoResults(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.press("ctrl+s")
	h.typeText("nothing")
	h.press("enter")
	h.contains("Search: nothing", "no messages match")
	h.press("enter") // nothing to open
	h.contains("no messages match")
	h.press("esc")
	h.lacks("no messages match")
	if h.m.overlay != overlayNone {
		t.Errorf("overlay %d after esc, want none", h.m.overlay)
	}
}

func TestSearchError(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.f.searchErr = errors.New("index unavailable")
	h.press("ctrl+s")
	h.typeText("x")
	h.press("enter")
	if !h.m.statusErr || h.m.status != "search: index unavailable" {
		t.Errorf("status %q (error %v), want the search error", h.m.status, h.m.statusErr)
	}
	h.contains("search: index unavailable", "search failed")
}

func TestSearchUnknownConversation(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.press("ctrl+s")
	h.typeText("x in:nobody")
	h.press("enter")
	if len(h.f.queries) != 0 {
		t.Errorf("searched %+v, want no search", h.f.queries)
	}
	h.contains(`/search: no conversation "nobody"`)
}

func TestHighlight(t *testing.T) {
	m := New(newFake(), Options{Plain: true})
	got := m.highlight("Are we still on for THE review?", highlightTerms("the rev"), 60)
	// Plain text keeps the words; the style marks where they match.
	want := "Are we still on for " + m.st.match.Render("THE") + " " + m.st.match.Render("rev") + "iew?"
	if got != fit(want, 60) {
		t.Errorf("highlight = %q, want %q", got, fit(want, 60))
	}
	long := "one two three four five six seven eight nine ten eleven twelve needle end"
	if got := m.highlight(long, highlightTerms("needle"), 20); width(got) != 20 || !strings.Contains(ansi.Strip(got), "needle") {
		t.Errorf("highlight of a late match = %q, want it in 20 cells", got)
	}
}

func TestMentions(t *testing.T) {
	h := newHarness(t, 80, 24)
	carol := h.f.history[3][0]
	carol.MentionsMe = true
	h.f.found = []*client.Message{carol}
	h.openBob()
	h.typeText("/mentions")
	h.press("enter")
	if n := len(h.f.queries); n != 1 || !h.f.queries[0].MentionsMe || h.f.queries[0].Text != "" {
		t.Fatalf("queries %+v, want one with MentionsMe", h.f.queries)
	}
	h.contains("Messages that mention you", "1 message", "carol · Sun 08:00 @you", "hi alice!")
	h.checkSize(80, 24)
	h.press("enter")
	if h.m.conv == nil || h.m.conv.id != 3 || h.m.selected() == nil || h.m.selected().ID != carol.ID {
		t.Fatalf("conversation with carol not open at the mention:\n%s", h.screen())
	}
}

func TestMute(t *testing.T) {
	h := newHarness(t, 80, 24)
	h.openBob()
	h.typeText("/mute")
	h.press("enter")
	if !h.f.called("set_muted 1 true") {
		t.Fatalf("calls %v lack set_muted 1 true", h.f.calls)
	}
	h.contains(mutedMark)
	h.checkSize(80, 24)
	h.typeText("/unmute")
	h.press("enter")
	if !h.f.called("set_muted 1 false") {
		t.Fatalf("calls %v lack set_muted 1 false", h.f.calls)
	}
	h.lacks(mutedMark)
}

func TestMutedUnread(t *testing.T) {
	cv := &client.Conversation{Unread: 2, Muted: true, Last: &client.Message{Text: "hi"}}
	if unreadLoud(cv) {
		t.Error("unread of a muted conversation stands out")
	}
	cv.Last.MentionsMe = true
	if !unreadLoud(cv) || !mentionUnread(cv) {
		t.Error("an unread mention in a muted conversation does not stand out")
	}
	cv.Muted, cv.Last.MentionsMe = false, false
	if !unreadLoud(cv) {
		t.Error("unread of a conversation not muted does not stand out")
	}
}
