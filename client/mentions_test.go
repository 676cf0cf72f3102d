package client_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parley-chat/parley/client"
)

// TestMentions: alice mentions bob in a group of alice and bob; bob's
// copy lists the mention and MentionsMe, also in a conversation he muted
// (the event says Muted, and a notifier shows it all the same); "@carol",
// who is no member, mentions no one; a text "@bob" whose sender listed no
// mention mentions no one on receipt; an attachment's caption mentions
// too; read --mentions (Search with MentionsMe) lists exactly the
// messages that mention bob, newest first.
func TestMentions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	bob := register(t, s, "bob")
	register(t, s, "carol")
	alice.start()
	bob.start()
	conv, err := alice.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("joined", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == conv
	})
	if err := bob.c.SetMuted(ctx, conv, true); err != nil {
		t.Fatal(err)
	}
	if cv, err := bob.c.Conversation(ctx, conv); err != nil || !cv.Muted {
		t.Fatalf("bob's conversation after SetMuted: %+v, %v", cv, err)
	}

	sent, err := alice.c.Send(ctx, conv, "hi @Bob, and @carol too", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sent.Mentions, []string{"bob"}) || sent.MentionsMe {
		t.Errorf("alice's copy: mentions %q, mentions me %v; want [bob], false", sent.Mentions, sent.MentionsMe)
	}
	ev := bob.waitEvent("the mention", func(ev client.Event) bool {
		return ev.Kind == client.EventMessage && ev.Message.ID == sent.ID
	})
	if !ev.Muted || !ev.Message.MentionsMe || !slices.Equal(ev.Message.Mentions, []string{"bob"}) {
		t.Errorf("bob's event: muted %v, mentions %q, mentions me %v; want true, [bob], true", ev.Muted, ev.Message.Mentions, ev.Message.MentionsMe)
	}
	// The sender lists no mention: the receiver does not read the text.
	unlisted, err := alice.c.Send(ctx, conv, "@bob this one lists no one", client.SendOptions{Mentions: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := alice.c.Send(ctx, conv, "to @carol only", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range [][16]byte{unlisted.ID, plain.ID} {
		ev := bob.waitEvent("a message", func(ev client.Event) bool {
			return ev.Kind == client.EventMessage && ev.Message.ID == id
		})
		if ev.Message.MentionsMe || len(ev.Message.Mentions) != 0 || !ev.Muted {
			t.Errorf("bob's event for %q: mentions %q, mentions me %v, muted %v; want none, false, true", ev.Message.Text, ev.Message.Mentions, ev.Message.MentionsMe, ev.Muted)
		}
	}
	// An attachment's caption mentions too.
	path := filepath.Join(t.TempDir(), "plan.txt")
	if err := os.WriteFile(path, []byte("the plan"), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := alice.c.SendFile(ctx, conv, path, client.SendOptions{Caption: "@bob the plan"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := bob.waitEvent("the file", func(ev client.Event) bool {
		return ev.Kind == client.EventMessage && ev.Message.ID == file.ID
	}); !ev.Message.MentionsMe || ev.Message.Attachment == nil {
		t.Errorf("bob's event for the file: %+v; want an attachment that mentions him", ev.Message)
	}
	ms, err := bob.c.Messages(ctx, conv, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var me []string
	for _, m := range ms {
		if m.MentionsMe {
			me = append(me, m.Text)
		}
	}
	if !slices.Equal(me, []string{"hi @Bob, and @carol too", "@bob the plan"}) {
		t.Errorf("bob's history mentions him in %q", me)
	}
	hits, err := bob.c.Search(ctx, client.SearchQuery{MentionsMe: true})
	if err != nil || len(hits) != 2 || hits[0].ID != file.ID || hits[1].ID != sent.ID || hits[1].Conversation != conv {
		t.Errorf("bob's Search(mentions me) = %v, %v; want the file, then the first message", hits, err)
	}
	// Unmuted: the events say so; the setting survives a restart.
	if err := bob.c.SetMuted(ctx, conv, false); err != nil {
		t.Fatal(err)
	}
	again, err := alice.c.Send(ctx, conv, "unmuted now", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ev := bob.waitEvent("unmuted", func(ev client.Event) bool {
		return ev.Kind == client.EventMessage && ev.Message.ID == again.ID
	}); ev.Muted {
		t.Error("an event of an unmuted conversation says Muted")
	}
	if err := bob.c.SetMuted(ctx, conv, true); err != nil {
		t.Fatal(err)
	}
	dir := bob.dir
	bob.close()
	bob = openDevice(t, s, dir, "bob")
	if cv, err := bob.c.Conversation(ctx, conv); err != nil || !cv.Muted {
		t.Errorf("muted after reopening: %+v, %v", cv, err)
	}
	if err := bob.c.SetMuted(ctx, 999999, true); err == nil {
		t.Error("SetMuted of an unknown conversation succeeded")
	}
}
