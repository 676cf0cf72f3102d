package client_test

import (
	"context"
	"strings"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/server/store"
)

// TestMessagesPaddedToOneSize checks what the server sees of a
// conversation: a 100-byte text, a reaction, a short text and a read
// receipt are application messages of one size, because the SDK pads
// every PrivateMessage (docs/content.md, "Padding").
func TestMessagesPaddedToOneSize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, conv := directPair(t, s)
	long, err := alice.c.Send(ctx, conv, strings.Repeat("x", 100), client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.c.React(ctx, conv, long.ID, "👍", false); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Send(ctx, conv, "ok", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, strings.Repeat("x", 100), "ok")
	if err := bob.c.MarkRead(ctx, conv); err != nil {
		t.Fatal(err)
	}
	entries, err := s.st.Entries(ctx, store.ConversationID(conv), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, e := range entries {
		if e.Kind == store.KindApplication {
			sizes = append(sizes, len(e.Data))
		}
	}
	if len(sizes) < 4 {
		t.Fatalf("%d application entries (sizes %v), want at least text, reaction, text, receipt", len(sizes), sizes)
	}
	for _, n := range sizes[1:] {
		if n != sizes[0] {
			t.Fatalf("application entries of sizes %v: want one size", sizes)
		}
	}
	t.Logf("every application entry is %d bytes", sizes[0])
}
