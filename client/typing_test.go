package client_test

import (
	"context"
	"slices"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/store"
)

// typings returns the EventTyping events of user in conv that d saw.
func (d *device) typings(conv protocol.ConversationID, user string) []bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []bool
	for _, ev := range d.events {
		if ev.Kind == client.EventTyping && ev.Conversation == conv && ev.User == user {
			out = append(out, ev.Typing)
		}
	}
	return out
}

// Typing indicators against a real parleyd: they reach the connected
// members and not the sender, are never stored (neither by the server nor
// in any history), are lost for offline members, are rate-limited per
// device, leave later messages decryptable although some of their
// generations never arrived, and do nothing either way when the setting
// is off.
func TestTyping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Six relayed per device for the whole test: the rate is checked
	// without depending on the time the test takes.
	const burst = 6
	s := newServerWith(t, func(c *delivery.Config) { c.EphemeralRate, c.EphemeralBurst = 1e-6, burst })
	alice, bob, carol := register(t, s, "alice"), register(t, s, "bob"), register(t, s, "carol")
	frank := openDeviceConfig(t, s.url, s.fingerprint, t.TempDir(), "frank", func(c *client.Config) { c.DisableTyping = true })
	if _, err := frank.c.Register(ctx, s.url, "", "frank"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{alice, bob, carol, frank} {
		d.start()
	}
	conv, err := alice.c.NewGroup(ctx, "team", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	// A message read by everyone: their connections follow the
	// conversation.
	if _, err := alice.c.Send(ctx, conv, "hello", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, "hello")
	carol.waitTexts(conv, "hello")
	alice.waitEvent("connected", func(ev client.Event) bool {
		return ev.Kind == client.EventConnection && ev.Connection == client.Connected
	})
	entries := func() int {
		es, err := s.st.Entries(ctx, store.ConversationID(conv), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	logged := entries()

	// 1: reaches bob and carol.
	if err := alice.c.SendTyping(ctx, conv, true); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{bob, carol} {
		ev := d.waitEvent("alice typing", func(ev client.Event) bool { return ev.Kind == client.EventTyping })
		if ev.User != "alice" || ev.Device != alice.deviceID() || ev.Conversation != conv || !ev.Typing {
			t.Errorf("%s: typing event %+v, want alice's device typing in %d", d.name, ev, conv)
		}
	}
	if n := entries(); n != logged {
		t.Errorf("the log held %d entries, now %d: the typing message was stored", logged, n)
	}

	// 2: carol is offline and never gets it.
	carol.stop()
	if err := alice.c.SendTyping(ctx, conv, false); err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("alice stopped", func(ev client.Event) bool { return ev.Kind == client.EventTyping && !ev.Typing })

	// 3: frank turned typing off: he does not see alice's, and sends none.
	direct, err := alice.c.NewDirect(ctx, "frank")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Send(ctx, direct, "hi frank", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	frank.waitTexts(direct, "hi frank")
	if err := alice.c.SendTyping(ctx, direct, true); err != nil {
		t.Fatal(err)
	}
	if err := frank.c.SendTyping(ctx, direct, true); err != nil {
		t.Fatal(err)
	}

	// 4: five more in the group: the burst has three left.
	for range 5 {
		if err := alice.c.SendTyping(ctx, conv, true); err != nil {
			t.Fatal(err)
		}
	}

	// The server reads alice's WebSocket in order: once it has her
	// acknowledgement of a later entry, sent on that WebSocket after the
	// typing messages, it has relayed (or dropped) them all, to
	// connections that now hold them ahead of any later entry.
	bobHere, err := bob.c.Send(ctx, conv, "bob here", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	alice.waitTexts(conv, "hello", "bob here")
	waitAcked(t, s, alice, conv, bobHere.ServerSeq)

	// Later messages decrypt, after typing messages that took ratchet
	// generations, some of which never reached carol or bob.
	if _, err := alice.c.Send(ctx, conv, "after typing", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	carol.start()
	bob.waitTexts(conv, "hello", "bob here", "after typing")
	carol.waitTexts(conv, "hello", "bob here", "after typing")
	if _, err := frank.c.Send(ctx, direct, "hi alice", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	frank.waitTexts(direct, "hi frank", "hi alice")
	alice.waitTexts(direct, "hi frank", "hi alice")

	// Relayed: 1, 2 and three of 4 (3 took a token too).
	if got, want := bob.typings(conv, "alice"), []bool{true, false, true, true, true}; !slices.Equal(got, want) {
		t.Errorf("bob saw alice typing %v, want %v (the rate limit lets %d through)", got, want, burst)
	}
	if got := carol.typings(conv, "alice"); !slices.Equal(got, []bool{true}) {
		t.Errorf("carol saw alice typing %v, want only what came while she was online", got)
	}
	if got := frank.typings(direct, "alice"); len(got) != 0 {
		t.Errorf("frank, with typing off, saw alice typing %v", got)
	}
	if got := alice.typings(direct, "frank"); len(got) != 0 {
		t.Errorf("frank, with typing off, sent typing %v", got)
	}
	if got := alice.typings(conv, "alice"); len(got) != 0 {
		t.Errorf("alice got her own typing back: %v", got)
	}
	// Nothing of it in any history, nor in the server's log.
	for _, d := range []*device{alice, bob, carol} {
		if got := d.texts(conv); len(got) != 3 {
			t.Errorf("%s's history: %q", d.name, got)
		}
	}
	if n := entries(); n != logged+2 {
		t.Errorf("the log holds %d entries, want %d: only the two messages", n, logged+2)
	}
}
