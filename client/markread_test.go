package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/parley-chat/parley/client"
)

// TestMarkReadState: MarkRead clears the unread count with the receipt
// it sends (the sender sees the message read), and also where no receipt
// can be sent: carol, removed from the group after alice's message came,
// still reads it on her device, and is told that the receipt was not
// sent.
func TestMarkReadState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, carol := register(t, s, "alice"), register(t, s, "bob"), register(t, s, "carol")
	for _, d := range []*device{alice, bob, carol} {
		d.start()
	}
	conv, err := alice.c.NewGroup(ctx, "team", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	hello, err := alice.c.Send(ctx, conv, "hello", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unread := func(d *device) int {
		t.Helper()
		cv, err := d.c.Conversation(ctx, conv)
		if err != nil {
			t.Fatalf("%s: conversation: %v", d.name, err)
		}
		return cv.Unread
	}
	for _, d := range []*device{bob, carol} {
		waitMessage(d, hello.ID)
		if n := unread(d); n != 1 {
			t.Fatalf("%s: %d unread before reading, want 1", d.name, n)
		}
	}

	if err := bob.c.MarkRead(ctx, conv); err != nil {
		t.Fatalf("bob marks read: %v", err)
	}
	if n := unread(bob); n != 0 {
		t.Errorf("bob: %d unread after reading, want 0", n)
	}
	alice.waitEvent("bob's receipt", func(ev client.Event) bool {
		return ev.Kind == client.EventRead && ev.User == "bob" && ev.Message.ID == hello.ID
	})

	if err := alice.c.Remove(ctx, conv, "carol"); err != nil {
		t.Fatal(err)
	}
	carol.waitEvent("removed", func(ev client.Event) bool { return ev.Kind == client.EventConversationLeft && ev.Conversation == conv })
	if err := carol.c.MarkRead(ctx, conv); !errors.Is(err, client.ErrNotMember) {
		t.Errorf("carol, removed, marks read: %v; want ErrNotMember for the receipt", err)
	}
	if n := unread(carol); n != 0 {
		t.Errorf("carol: %d unread after reading, want 0", n)
	}
}
