package client_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/internal/testserver"
	"github.com/parley-chat/parley/server/httpapi"
)

// TestAcksBatched: a device that comes back to 150 entries, against a
// server that lets a connection send 20 frames a second (burst 20),
// catches up on one connection: it acknowledges in batches, not with a
// frame per entry, which would exceed the limit and have the server
// close the connection again and again. Its last acknowledgement still
// reaches the server.
func TestAcksBatched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := testserver.StartWith(t, testserver.Options{HTTP: func(h *httpapi.Config) {
		h.RateLimits.FramesPerConnection = httpapi.Rate{PerSecond: 20, Burst: 20}
	}})
	s := &server{srv: ts.HTTP, url: ts.URL, fingerprint: ts.Fingerprint, name: ts.Name, st: ts.Store, svc: ts.Service}
	alice, bob, conv := directPair(t, s)
	bob.stop()
	const n = 150
	var last uint64
	for i := range n {
		m, err := alice.c.Send(ctx, conv, fmt.Sprintf("m%d", i), client.SendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		last = m.ServerSeq
	}
	before := bob.connections(client.Connecting)
	bob.start()
	bob.waitEvent("the last message", func(ev client.Event) bool {
		return ev.Kind == client.EventMessage && ev.Message != nil && ev.Message.Text == fmt.Sprintf("m%d", n-1)
	})
	waitAcked(t, s, bob, conv, last)

	if k := bob.connections(client.Connecting) - before; k != 1 {
		t.Errorf("bob connected %d times to catch up, want once; log:\n%s", k, bob.logs.String())
	}
}
