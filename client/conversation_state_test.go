package client_test

import (
	"context"
	"slices"
	"testing"

	"github.com/parley-chat/parley/client"
)

// TestDirectTravelsInMLS: the invited user records a 1:1 conversation as
// direct (the flag travels in the creator's first MLS message), so its
// own NewDirect finds it instead of opening a second one.
func TestDirectTravelsInMLS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	bob := register(t, s, "bob")
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cv, err := bob.c.Conversation(ctx, conv)
	if err != nil || !cv.Direct {
		t.Fatalf("bob's view of the 1:1: %+v, %v", cv, err)
	}
	again, err := bob.c.NewDirect(ctx, "alice")
	if err != nil || again != conv {
		t.Fatalf("bob's NewDirect(alice) = %d, %v; want the existing %d", again, err, conv)
	}
	// A group of two with a title is not a 1:1.
	g, err := alice.c.NewGroup(ctx, "pair", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if cv, err := bob.c.Conversation(ctx, g); err != nil || cv.Direct || cv.Name != "pair" {
		t.Fatalf("bob's view of the titled group: %+v, %v", cv, err)
	}
}

// TestSendAfterReopen: a sender that reopens its profile between
// messages (as every parley command does) never reuses a message key: a
// member who joins afterwards reads every message, including the first
// one sent right after the group was created.
func TestSendAfterReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	register(t, s, "bob")
	carol := register(t, s, "carol")
	conv, err := alice.c.NewGroup(ctx, "team", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, text := range []string{"before anything", "second", "third"} {
		alice.close()
		alice = openDevice(t, s, alice.dir, "alice")
		if _, err := alice.c.Send(ctx, conv, text, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
		want = append(want, text)
	}
	if err := carol.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := carol.texts(conv); !slices.Equal(got, want) {
		t.Fatalf("carol reads %q, want %q\n%s", got, want, carol.logs.String())
	}
}

// TestReaddWhileOffline: alice removes carol and adds her back while
// carol runs nothing; when carol syncs, the Welcome in her inbox rejoins
// her (her old state still says member), she is in the group's epoch and
// reads what is sent after the re-add, and she can send.
func TestReaddWhileOffline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	carol := register(t, s, "carol")
	conv, err := alice.c.NewGroup(ctx, "team", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if err := carol.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Send(ctx, conv, "still here", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.Remove(ctx, conv, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Send(ctx, conv, "while carol is out", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.Add(ctx, conv, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Send(ctx, conv, "welcome back", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := carol.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cv, err := carol.c.Conversation(ctx, conv)
	if err != nil || cv.Left || cv.Epoch != alice.epoch(conv) {
		t.Fatalf("carol after the re-add: %+v, %v; alice's epoch %d\n%s", cv, err, alice.epoch(conv), carol.logs.String())
	}
	if got, want := carol.texts(conv), []string{"still here", "welcome back"}; !slices.Equal(got, want) {
		t.Fatalf("carol reads %q, want %q", got, want)
	}
	if _, err := carol.c.Send(ctx, conv, "glad to be back", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	alice.waitTexts(conv, "still here", "while carol is out", "welcome back", "glad to be back")
}
