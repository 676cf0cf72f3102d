package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/server/store"
)

// Issue point 6: the client uploads a last-resort KeyPackage for every
// suite at registration, and replaces it after a claim returned it and a
// Welcome used it (RFC 9420 §16.8).
func TestLastResortKeyPackageReplaced(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	alice := register(t, s, "alice")
	bob := register(t, s, "bob")
	acc, err := bob.c.Whoami()
	if err != nil {
		t.Fatal(err)
	}
	dev := store.DeviceID(acc.Device)
	count := func(cs uint16) store.KeyPackageCount {
		t.Helper()
		c, err := s.st.CountKeyPackages(ctx, dev, cs, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, cs := range client.DefaultCipherSuites {
		if c := count(uint16(cs)); c.Available == 0 || !c.LastResort || c.LastResortClaimed {
			t.Errorf("suite %#04x after registration: %+v, want one-time packages and an unused last resort", uint16(cs), c)
		}
	}
	// Bob is offline while his one-time packages of the preferred suite
	// are all claimed.
	cs := uint16(client.DefaultCipherSuites[0])
	u, err := s.st.UserByName(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	for count(cs).Available > 0 {
		if _, err := s.st.ClaimKeyPackages(ctx, u.ID, cs, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// Alice's claim gets his last-resort package.
	alice.start()
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if c := count(cs); !c.LastResort || !c.LastResortClaimed {
		t.Fatalf("after alice's claim: %+v, want the last resort claimed", c)
	}
	// Bob joins with it, then replaces it and refills his pool.
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("joined", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == conv
	})
	if c := count(cs); !c.LastResort || c.LastResortClaimed || c.Available == 0 {
		t.Errorf("after bob's sync: %+v, want a new, unused last resort and one-time packages", c)
	}
}
