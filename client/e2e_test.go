package client_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/parley-chat/parley/client"
)

// TestDirectChat: two users register, open a 1:1 conversation and
// exchange text, replies, reactions, edits, deletes and read receipts.
func TestDirectChat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	bob := register(t, s, "bob")
	alice.start()
	bob.start()

	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("joined", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == conv
	})
	if again, err := alice.c.NewDirect(ctx, "bob"); err != nil || again != conv {
		t.Fatalf("NewDirect again: %d, %v; want %d", again, err, conv)
	}
	hello, err := alice.c.Send(ctx, conv, "hello bob", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hello.State != client.Sent || hello.ServerSeq == 0 {
		t.Errorf("sent message state %v seq %d", hello.State, hello.ServerSeq)
	}
	bob.waitTexts(conv, "hello bob")
	reply, err := bob.c.Send(ctx, conv, "hi alice", client.SendOptions{ReplyTo: hello.ID})
	if err != nil {
		t.Fatal(err)
	}
	alice.waitTexts(conv, "hello bob", "hi alice")
	ms, _ := alice.c.Messages(ctx, conv, 0, 0)
	if ms[1].ReplyTo != hello.ID || ms[1].Sender != "bob" {
		t.Errorf("reply: %+v", ms[1])
	}
	if err := alice.c.React(ctx, conv, reply.ID, "👍", false); err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("reaction", func(ev client.Event) bool {
		return ev.Kind == client.EventReaction && ev.Message.ID == reply.ID && slices.Contains(ev.Message.Reactions, client.Reaction{User: "alice", Emoji: "👍"})
	})
	if err := alice.c.Edit(ctx, conv, hello.ID, "hello bob (edited)"); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, "hello bob (edited)", "hi alice")
	if err := alice.c.Edit(ctx, conv, reply.ID, "not mine"); err == nil {
		t.Error("edited another user's message")
	}
	if err := bob.c.Delete(ctx, conv, reply.ID); err != nil {
		t.Fatal(err)
	}
	alice.waitTexts(conv, "hello bob (edited)", "")
	ms, _ = alice.c.Messages(ctx, conv, 0, 0)
	if !ms[1].Deleted || ms[0].Edited.IsZero() {
		t.Errorf("after delete: %+v", ms)
	}
	if err := bob.c.MarkRead(ctx, conv); err != nil {
		t.Fatal(err)
	}
	alice.waitEvent("read", func(ev client.Event) bool {
		return ev.Kind == client.EventRead && ev.User == "bob" && ev.Message.ID == hello.ID
	})
	ms, _ = alice.c.Messages(ctx, conv, 0, 0)
	if ms[0].State != client.Read || !slices.Equal(ms[0].ReadBy, []string{"bob"}) {
		t.Errorf("read state: %+v", ms[0])
	}
	mb, err := alice.c.Members(ctx, conv)
	if err != nil || len(mb) != 2 {
		t.Fatalf("members: %+v %v", mb, err)
	}
	cv, _ := alice.c.Conversation(ctx, conv)
	if cv.CipherSuite != 0xF001 {
		t.Errorf("suite %#x, want X-Wing", cv.CipherSuite)
	}
}

// TestErrors: the sentinel errors the CLI maps to messages.
func TestErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	if _, err := alice.c.NewDirect(ctx, "nobody"); !errors.Is(err, client.ErrUnknownUser) {
		t.Errorf("NewDirect(nobody): %v", err)
	}
	if _, err := alice.c.Send(ctx, 42, "x", client.SendOptions{}); !errors.Is(err, client.ErrUnknownConversation) {
		t.Errorf("Send to unknown: %v", err)
	}
	if _, err := alice.c.Register(ctx, s.url, "", "alice2"); !errors.Is(err, client.ErrAlreadyRegistered) {
		t.Errorf("Register twice: %v", err)
	}
	down := openDeviceURL(t, "https://127.0.0.1:1", "", t.TempDir(), "x")
	if _, err := down.c.Register(ctx, "https://127.0.0.1:1", "", "x"); !errors.Is(err, client.ErrServerUnreachable) {
		t.Errorf("Register at a closed port: %v", err)
	}
}
