package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/parley-chat/parley/client"
)

// searchOutput is the output of search --json and read --mentions --json.
type searchOutput struct {
	Results []searchResultJSON `json:"results"`
}

// TestSearchAndMentions: with the real binaries, alice mentions bob in a
// group that bob muted; bob's read --mentions lists that message with
// the group's title, and search finds messages by words, prefix, sender,
// conversation and dates.
func TestSearchAndMentions(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob", "carol")
	c.run("alice", "group", "create", "team", "--members", "bob")
	c.run("bob", "read") // bob joins
	if out := c.run("bob", "mute", "team"); !strings.HasPrefix(out, "muted team") {
		t.Errorf("mute: %q", out)
	}
	c.run("alice", "send", "team", "lunch today @bob? and @carol")
	c.run("alice", "send", "team", "the budget draft is ready")
	c.run("bob", "chat", "new", "alice")
	c.run("bob", "send", "alice", "budget looks fine")

	var got searchOutput
	if err := json.Unmarshal([]byte(c.run("bob", "--json", "read", "--mentions")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Results) != 1 || got.Results[0].ConversationTitle != "team" || !got.Results[0].Message.MentionsMe ||
		strings.Join(got.Results[0].Message.Mentions, ",") != "bob" || got.Results[0].Message.Text != "lunch today @bob? and @carol" {
		t.Fatalf("bob's read --mentions --json = %+v", got)
	}
	if out := c.run("alice", "read", "--mentions"); out != "no messages mention you\n" {
		t.Errorf("alice's read --mentions = %q", out)
	}
	if out := c.run("bob", "read", "--mentions"); !strings.Contains(out, "[team] ") || !strings.Contains(out, "alice: lunch today @bob? and @carol") {
		t.Errorf("bob's read --mentions = %q", out)
	}

	out := c.run("bob", "search", "BUDG")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "bob: budget looks fine") || !strings.Contains(lines[1], "[team] ") ||
		!strings.Contains(lines[1], "alice: the budget draft is ready") {
		t.Errorf("bob's search BUDG, newest first = %q", out)
	}
	if err := json.Unmarshal([]byte(c.run("bob", "--json", "search", "budget", "--from", "alice", "--in", "team")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Results) != 1 || got.Results[0].Message.Text != "the budget draft is ready" {
		t.Errorf("search budget --from alice --in team = %+v", got)
	}
	if out := c.run("bob", "search", "budget", "--before", "2001-01-01"); out != "no messages found\n" {
		t.Errorf("search --before 2001-01-01 = %q", out)
	}
	if out := c.run("bob", "search", "lunch", "--after", "2001-01-01T00:00:00Z"); !strings.Contains(out, "lunch today") {
		t.Errorf("search --after 2001 = %q", out)
	}
	if _, stderr, code := c.runStatus("bob", "search", "x", "--after", "yesterday"); code != exitUsage || !strings.Contains(stderr, `"yesterday"`) {
		t.Errorf("search --after yesterday: exit %d, %q", code, stderr)
	}
	if out := c.run("bob", "--json", "read", "team"); !strings.Contains(out, `"muted": true`) {
		t.Errorf("read --json of a muted conversation does not say muted:\n%s", out)
	}
	if out := c.run("bob", "read"); !strings.Contains(out, "team (muted)") {
		t.Errorf("read lists the muted conversation without its mark:\n%s", out)
	}

	// Under a daemon: listen prints the mention of the muted group, not
	// its other messages; search and mute go through the daemon.
	c.startDaemon("bob")
	text := c.listenText("bob")
	c.run("alice", "send", "team", "quiet message")
	c.run("alice", "send", "team", "loud @bob message")
	text.waitLine(t, func(line string) bool {
		if strings.Contains(line, "quiet message") {
			t.Errorf("listen printed a message of the muted conversation: %q", line)
		}
		return strings.HasPrefix(line, "[team] mentions you: ") && strings.HasSuffix(line, "alice: loud @bob message")
	})
	if out := c.run("bob", "search", "quiet"); !strings.Contains(out, "alice: quiet message") {
		t.Errorf("search through the daemon = %q", out)
	}
	c.run("bob", "mute", "team", "--off")
	if out := c.run("bob", "--json", "read", "team"); strings.Contains(out, `"muted": true`) {
		t.Errorf("read --json after mute --off still says muted")
	}
}

// TestMutedQuiet: listen's text output leaves out the message events of
// a muted conversation, except a message that mentions this user.
func TestMutedQuiet(t *testing.T) {
	mention := &client.Message{Text: "@bob", MentionsMe: true}
	plain := &client.Message{Text: "hi"}
	for _, tc := range []struct {
		ev    client.Event
		quiet bool
	}{
		{client.Event{Kind: client.EventMessage, Message: plain, Muted: true}, true},
		{client.Event{Kind: client.EventMessage, Message: mention, Muted: true}, false},
		{client.Event{Kind: client.EventMessage, Message: plain}, false},
		{client.Event{Kind: client.EventReaction, Message: mention, Muted: true}, true},
		{client.Event{Kind: client.EventMemberJoined, Muted: true}, false},
	} {
		if got := mutedQuiet(tc.ev); got != tc.quiet {
			t.Errorf("mutedQuiet(%s, muted %v, mentions me %v) = %v", tc.ev.Kind, tc.ev.Muted, tc.ev.Message != nil && tc.ev.Message.MentionsMe, got)
		}
	}
}
