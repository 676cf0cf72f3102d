package client_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// channel starts alice, bob and carol in a channel alice created, with
// alice's first post received by both.
func channel(t *testing.T, s *server) (alice, bob, carol *device, conv protocol.ConversationID, first *client.Message) {
	t.Helper()
	ctx := context.Background()
	alice, bob, carol = register(t, s, "alice"), register(t, s, "bob"), register(t, s, "carol")
	for _, d := range []*device{alice, bob, carol} {
		d.start()
	}
	conv, err := alice.c.NewChannel(ctx, "news", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	first, err = alice.c.Send(ctx, conv, "welcome", client.SendOptions{})
	if err != nil {
		t.Fatalf("alice, admin, posts: %v", err)
	}
	bob.waitTexts(conv, "welcome")
	carol.waitTexts(conv, "welcome")
	return alice, bob, carol, conv, first
}

// TestChannelCreate: a channel's policy reserves every action to its
// creator, the only admin; Conversation says it is a channel and who is
// admin; Recreate keeps it a channel; a group is none.
func TestChannelCreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	alice, bob, _, conv, _ := channel(t, newServer(t))
	p, err := bob.c.Policy(ctx, conv)
	if err != nil || p == nil || !slices.Equal(p.Admins, []string{"alice"}) {
		t.Fatalf("bob sees policy %v, %v; want alice the only admin", p, err)
	}
	for _, a := range protocol.Actions() {
		if p.Rule(a) != protocol.WhoAdmins {
			t.Errorf("channel rule %s = %s, want admins", a, p.Rule(a))
		}
	}
	for _, d := range []struct {
		dev   *device
		admin bool
	}{{alice, true}, {bob, false}} {
		cv, err := d.dev.c.Conversation(ctx, conv)
		if err != nil || !cv.Channel || cv.Admin != d.admin || cv.Name != "news" || cv.Direct {
			t.Errorf("%s: Conversation = %+v, %v; want channel news, admin %v", d.dev.name, cv, err, d.admin)
		}
	}
	again, err := alice.c.Recreate(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if cv, err := alice.c.Conversation(ctx, again); err != nil || !cv.Channel || !cv.Admin {
		t.Errorf("the recreated channel = %+v, %v; want a channel", cv, err)
	}
	group, err := alice.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if cv, err := bob.c.Conversation(ctx, group); err == nil && cv.Channel {
		t.Errorf("a group is listed as a channel: %+v", cv)
	}
}

// TestChannelMemberPost: a member's Send in a channel fails with a policy
// error and stores nothing; a member whose client skips that check posts
// anyway, and the other members neither show it nor count it unread.
func TestChannelMemberPost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	alice, bob, carol, conv, _ := channel(t, newServer(t))
	_, err := bob.c.Send(ctx, conv, "me too", client.SendOptions{})
	var pe *protocol.PolicyError
	if !errors.Is(err, protocol.ErrPolicyViolation) || !errors.As(err, &pe) || pe.User != "bob" {
		t.Fatalf("bob posts in the channel: %v, want a policy violation", err)
	}
	if got := bob.texts(conv); !slices.Equal(got, []string{"welcome"}) {
		t.Fatalf("bob's history after the refused post: %q", got)
	}

	client.SkipPostCheckForTest(bob.c, true)
	if _, err := bob.c.Send(ctx, conv, "forged", client.SendOptions{}); err != nil {
		t.Fatalf("bob's modified client posts: %v", err)
	}
	// alice's next post comes after bob's in the log: once it is shown,
	// bob's was processed.
	second, err := alice.c.Send(ctx, conv, "second", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	carol.waitTexts(conv, "welcome", "second")
	// bob's reaction comes after his post in the log.
	bob.waitTexts(conv, "welcome", "forged", "second")
	if err := bob.c.React(ctx, conv, second.ID, "👀", false); err != nil {
		t.Fatal(err)
	}
	alice.waitEvent("bob's reaction", func(ev client.Event) bool {
		return ev.Kind == client.EventReaction && ev.User == "bob"
	})
	if got := alice.texts(conv); !slices.Equal(got, []string{"welcome", "second"}) {
		t.Errorf("alice's history: %q, want bob's forged post left out", got)
	}
	if cv, err := carol.c.Conversation(ctx, conv); err != nil || cv.Unread != 2 {
		t.Errorf("carol's unread count = %+v, %v; want 2 (bob's post not counted)", cv, err)
	}
}

// TestChannelReactions: members react, and every member sees their
// reactions; a member's read receipts are not sent; a member may not
// rename the channel (the SDK refuses, and the members ignore a rename
// sent anyway) nor edit an admin's post.
func TestChannelReactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	alice, bob, carol, conv, first := channel(t, newServer(t))
	if err := bob.c.MarkRead(ctx, conv); err != nil {
		t.Fatalf("bob marks the channel read: %v", err)
	}
	if err := bob.c.React(ctx, conv, first.ID, "👍", false); err != nil {
		t.Fatalf("bob reacts: %v", err)
	}
	for _, d := range []*device{alice, carol} {
		d.waitEvent("bob's reaction", func(ev client.Event) bool {
			return ev.Kind == client.EventReaction && ev.Conversation == conv && ev.User == "bob"
		})
	}
	ms, err := alice.c.Messages(ctx, conv, 0, 0)
	if err != nil || len(ms) != 1 {
		t.Fatalf("alice's history: %v, %v", ms, err)
	}
	if r := ms[0].Reactions; len(r) != 1 || r[0].User != "bob" {
		t.Errorf("reactions on alice's post = %v, want bob's", r)
	}
	// bob's read receipt would precede his reaction in the log.
	if slices.Contains(ms[0].ReadBy, "bob") {
		t.Errorf("alice's post is read by %v: a member sent a read receipt in a channel", ms[0].ReadBy)
	}
	if err := bob.c.SetName(ctx, conv, "bob's"); !errors.Is(err, protocol.ErrPolicyViolation) {
		t.Errorf("bob renames the channel: %v, want a policy violation", err)
	}
	if err := bob.c.SetTopic(ctx, conv, "anything"); !errors.Is(err, protocol.ErrPolicyViolation) {
		t.Errorf("bob changes the topic: %v, want a policy violation", err)
	}
	if err := bob.c.Edit(ctx, conv, first.ID, "bob's words"); err == nil {
		t.Errorf("bob edits alice's post")
	}
	// A rename sent past the SDK's check is ignored by the members.
	if err := client.SendMetadataForTest(ctx, bob.c, conv, "bob's", false); err != nil {
		t.Fatal(err)
	}
	waitLine(carol, conv, client.SystemChangeIgnored, "")
	if cv, err := carol.c.Conversation(ctx, conv); err != nil || cv.Name != "news" {
		t.Errorf("carol's channel after bob's rename = %+v, %v; want news", cv, err)
	}
}
