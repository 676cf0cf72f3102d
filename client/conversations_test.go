package client_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/internal/profilegen"
	"github.com/parley-chat/parley/protocol"
)

// lastOf describes a conversation's Last ("" for none) and checks that
// Conversations, Conversation and History(…, 0, 1) agree on it.
func (d *device) lastOf(conv protocol.ConversationID) string {
	d.t.Helper()
	ctx := context.Background()
	cvs, err := d.c.Conversations(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	var listed *client.Conversation
	for i := range cvs {
		if i > 0 && cvs[i].ID <= cvs[i-1].ID {
			d.t.Errorf("%s: Conversations not by id: %d after %d", d.name, cvs[i].ID, cvs[i-1].ID)
		}
		if cvs[i].ID == conv {
			listed = &cvs[i]
		}
	}
	if listed == nil {
		d.t.Fatalf("%s: conversation %d not listed", d.name, conv)
	}
	one, err := d.c.Conversation(ctx, conv)
	if err != nil {
		d.t.Fatal(err)
	}
	h, err := d.c.History(ctx, conv, 0, 1)
	if err != nil {
		d.t.Fatal(err)
	}
	describe := func(m *client.Message) string {
		if m == nil {
			return ""
		}
		return fmt.Sprintf("%s deleted=%v edited=%v seq=%d", line(m), m.Deleted, !m.Edited.IsZero(), m.Seq)
	}
	got := describe(listed.Last)
	if other := describe(one.Last); other != got {
		d.t.Errorf("%s: conversation %d: Conversations gives Last %q, Conversation %q", d.name, conv, got, other)
	}
	var fromHistory string
	if len(h) == 1 {
		fromHistory = describe(h[0])
	}
	if fromHistory != got {
		d.t.Errorf("%s: conversation %d: Last %q, but History's last entry is %q", d.name, conv, got, fromHistory)
	}
	if listed.Unread != one.Unread {
		d.t.Errorf("%s: conversation %d: Conversations counts %d unread, Conversation %d", d.name, conv, listed.Unread, one.Unread)
	}
	return got
}

// TestConversationLast: Conversation.Last is the latest history entry —
// nil for an empty history, then each new message or system line, the
// message's new text after an edit and its deletion — on both sides, in
// Conversations and Conversation alike; Conversations stays by id
// whatever the activity.
func TestConversationLast(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	sync := func(d *device) {
		t.Helper()
		if err := d.c.Sync(ctx); err != nil {
			t.Fatalf("%s: sync: %v", d.name, err)
		}
	}
	alone, err := alice.c.NewGroup(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := alice.lastOf(alone); got != "" {
		t.Errorf("a conversation with an empty history has Last %q", got)
	}

	conv, err := alice.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := alice.lastOf(conv), "renamed:alice::team deleted=false edited=false seq=2"; got != want {
		t.Errorf("alice's Last after creating the group: %q, want %q", got, want)
	}
	hello, err := alice.c.Send(ctx, conv, "hello", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := alice.lastOf(conv), "hello deleted=false edited=false seq=3"; got != want {
		t.Errorf("alice's Last after sending: %q, want %q", got, want)
	}
	sync(bob)
	if got, want := bob.lastOf(conv), "hello deleted=false edited=false seq=3"; got != want {
		t.Errorf("bob's Last: %q, want %q", got, want)
	}

	// Activity in the older conversation leaves the list by id.
	if _, err := alice.c.Send(ctx, alone, "note to self", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := alice.lastOf(alone), "note to self deleted=false edited=false seq=1"; got != want {
		t.Errorf("alice's Last of her own group: %q, want %q", got, want)
	}

	// An edit and a deletion change the entry, not which one is last.
	if err := alice.c.Edit(ctx, conv, hello.ID, "hello all"); err != nil {
		t.Fatal(err)
	}
	if got, want := alice.lastOf(conv), "hello all deleted=false edited=true seq=3"; got != want {
		t.Errorf("alice's Last after her edit: %q, want %q", got, want)
	}
	if err := alice.c.Delete(ctx, conv, hello.ID); err != nil {
		t.Fatal(err)
	}
	sync(bob)
	for _, d := range []*device{alice, bob} {
		if got, want := d.lastOf(conv), " deleted=true edited=true seq=3"; got != want {
			t.Errorf("%s's Last after the deletion: %q, want %q", d.name, got, want)
		}
	}

	// A system line and a message of the other side come after it.
	if err := alice.c.SetTopic(ctx, conv, "plans"); err != nil {
		t.Fatal(err)
	}
	if got, want := alice.lastOf(conv), "topic_changed:alice::plans deleted=false edited=false seq=4"; got != want {
		t.Errorf("alice's Last after setting the topic: %q, want %q", got, want)
	}
	if _, err := bob.c.Send(ctx, conv, "sounds good", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	sync(alice)
	if got, want := alice.lastOf(conv), "sounds good deleted=false edited=false seq=5"; got != want {
		t.Errorf("alice's Last after bob's answer: %q, want %q", got, want)
	}
	// bob answered before he received the topic: his device recorded the
	// topic last, although the log has it before his answer. Last is the
	// entry recorded last, as History(…, 0, 1) returns it.
	if got, want := bob.lastOf(conv), "sounds good deleted=false edited=false seq=4"; got != want {
		t.Errorf("bob's Last after his answer: %q, want %q", got, want)
	}
	sync(bob)
	if got, want := bob.lastOf(conv), "topic_changed:alice::plans deleted=false edited=false seq=5"; got != want {
		t.Errorf("bob's Last after receiving the topic: %q, want %q", got, want)
	}
	cv, err := alice.c.Conversation(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if cv.Unread != 1 || cv.Last.Sender != "bob" {
		t.Errorf("alice: %d unread, last by %q; want 1, by bob", cv.Unread, cv.Last.Sender)
	}
}

// TestGeneratedProfile: a profile that profilegen filled opens with
// client.Open, and Conversations gives each conversation the unread
// count of its read position (so the SDK still keeps read positions as
// profilegen writes them) and its last entry; Conversation agrees.
func TestGeneratedProfile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, cfg := range []profilegen.Config{
		{Conversations: 30, Entries: 700, UnreadConversations: 6, UnreadEntries: 9, Seed: 1},
		{Conversations: 12, Entries: 100, NoReadPositions: true, Seed: 2},
	} {
		c, p := openGenerated(t, cfg)
		cvs, err := c.Conversations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(cvs) != len(p.Conversations) {
			t.Fatalf("%d conversations listed, %d generated", len(cvs), len(p.Conversations))
		}
		unread := 0
		for i, cv := range cvs {
			want := p.Conversations[i]
			if cv.ID != want.ID || cv.Unread != want.Unread || cv.Last == nil || cv.Last.Seq != int64(want.Entries) || cv.Last.Text != want.LastText {
				t.Errorf("conversation %d: unread %d, last %+v; want conversation %d, %d unread, last entry %d %q", cv.ID, cv.Unread, cv.Last, want.ID, want.Unread, want.Entries, want.LastText)
			}
			one, err := c.Conversation(ctx, cv.ID)
			if err != nil {
				t.Fatal(err)
			}
			if one.Unread != cv.Unread || one.Last == nil || one.Last.Seq != cv.Last.Seq {
				t.Errorf("conversation %d: Conversation gives %d unread, last %+v; Conversations %d, %+v", cv.ID, one.Unread, one.Last, cv.Unread, cv.Last)
			}
			unread += cv.Unread
		}
		if unread == 0 {
			t.Errorf("%+v: no unread message at all", cfg)
		}
	}
}

// TestGeneratedIntoRegistered: profilegen adds to a registered profile
// without touching its account or its conversations, after them, with
// copies of the group state of one of them that client.Open loads.
func TestGeneratedIntoRegistered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	register(t, s, "bob")
	conv, err := alice.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	alice.close()
	p, err := profilegen.Fill(ctx, profilegen.Config{Dir: alice.dir, Passphrase: []byte("correct horse alice"), KDF: fastKDF,
		User: "ignored", Conversations: 4, Entries: 40, UnreadConversations: 4, UnreadEntries: 5, GroupsLike: conv})
	if err != nil {
		t.Fatal(err)
	}
	if p.User != "alice" || p.Conversations[0].ID != conv+1 {
		t.Errorf("generated for %q from conversation %d; want alice, from %d", p.User, p.Conversations[0].ID, conv+1)
	}
	alice = openDevice(t, s, alice.dir, "alice")
	cvs, err := alice.c.Conversations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cvs) != 5 || cvs[0].ID != conv || cvs[0].Name != "team" || cvs[0].Epoch == 0 {
		t.Fatalf("conversations after filling: %+v", cvs)
	}
	if _, err := alice.c.Send(ctx, conv, "still works", client.SendOptions{}); err != nil {
		t.Errorf("send in the registered conversation after filling: %v", err)
	}
	for i, cv := range cvs[1:] {
		if want := p.Conversations[i]; cv.ID != want.ID || cv.Unread != want.Unread || cv.Epoch != cvs[0].Epoch || !slices.Equal(cv.Members, []string{"alice", "bob"}) {
			t.Errorf("generated conversation %+v, want %+v in a copy of the group (epoch %d, alice and bob)", cv, want, cvs[0].Epoch)
		}
	}
}
