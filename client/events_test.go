package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
)

// TestEventOverflow: a reader that falls behind by more than EventBuffer
// events gets one EventOverflow in their place, and the store still has
// every message.
func TestEventOverflow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	alice.start()
	// Bob's events are not read until the burst is in his store.
	c, err := client.Open(ctx, client.Config{
		ProfileDir: t.TempDir(), Passphrase: []byte("pw"), KDF: fastKDF,
		TLSFingerprint: s.fingerprint, EventBuffer: 4,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		SelfUpdateMessages: -1, SelfUpdateInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Register(ctx, s.url, "", "bob"); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(runCtx)
	}()
	defer func() { stop(); <-done }()
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if _, err := alice.c.Send(ctx, conv, fmt.Sprint(i), client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "bob's store to have the burst", func() bool {
		ms, _ := c.Messages(ctx, conv, 0, 0)
		return len(ms) == n
	})
	var got []client.Event
	for len(got) == 0 || got[len(got)-1].Kind != client.EventOverflow {
		select {
		case ev := <-c.Events():
			got = append(got, ev)
		case <-time.After(10 * time.Second):
			t.Fatalf("no overflow event; got %d events", len(got))
		}
	}
	// At most one queue's worth plus the event the pump held, then the
	// overflow standing for the rest.
	if len(got) > 4+2 {
		t.Errorf("%d events before the overflow, want at most 5", len(got)-1)
	}
	o := got[len(got)-1]
	// Bob saw: connecting, connected, joined, and 20 messages at least.
	if total := len(got) - 1 + o.Dropped; total < n+3 {
		t.Errorf("%d events delivered + %d dropped, want at least %d", len(got)-1, o.Dropped, n+3)
	}
	if o.Connection != client.Connected {
		t.Errorf("overflow reports connection %v, want connected", o.Connection)
	}
	t.Logf("%d events, then overflow with %d dropped", len(got)-1, o.Dropped)
	// Nothing more is queued until new events happen; they flow again.
	if _, err := alice.c.Send(ctx, conv, "after", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-c.Events():
			if ev.Kind == client.EventOverflow {
				t.Fatalf("second overflow: %+v", ev)
			}
			if ev.Kind == client.EventMessage && ev.Message.Text == "after" {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no event for the message after the overflow")
		}
	}
}
