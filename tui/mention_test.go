package tui

import (
	"strings"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/daemonapi"
)

// TestMentionHighlighted: a message that mentions this user is marked
// ("@" in the gutter, "@you" after the sender, in the mention style); one
// whose text only writes "@alice" is not.
func TestMentionHighlighted(t *testing.T) {
	h := newHarness(t, 120, 40)
	h.openBob()
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventMessage, Conversation: 1,
		Message: &client.Message{Conversation: 1, Seq: 8, ID: mid(8), Sender: "bob", Sent: at(5, 14, 25), Received: at(5, 14, 25),
			Kind: content.KindText, Text: "@alice look", Mentions: []string{"alice"}, MentionsMe: true}})})
	h.send(eventMsg{daemonapi.NewEvent(client.Event{Kind: client.EventMessage, Conversation: 1,
		Message: &client.Message{Conversation: 1, Seq: 9, ID: mid(9), Sender: "bob", Sent: at(5, 14, 26), Received: at(5, 14, 26),
			Kind: content.KindText, Text: "@alice in text only"}})})
	h.contains("@alice look", "@alice in text only")
	var marked []string
	for _, line := range strings.Split(h.screen(), "\n") {
		if strings.Contains(line, "│@") || strings.Contains(line, "@you") {
			marked = append(marked, line)
		}
	}
	if len(marked) != 1 || !strings.Contains(marked[0], "│@14:25 bob @you") {
		t.Errorf("marked lines %q; want the header of the message that mentions alice only", marked)
	}
	if !strings.Contains(h.m.View().Content, h.m.st.mention.Render("@you")) {
		t.Error("the mark is not drawn in the mention style")
	}
}
