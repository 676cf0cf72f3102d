package client_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/parley-chat/parley/client"
)

// TestRestoredProfileRejoinsWithFreshKeys copies alice's profile
// directory (what looks like a backup), lets her send from the original,
// restores the copy and sends from it: the restored device finds its
// state older than its messages in the log, rejoins with fresh keys and
// says so, and bob reads the new message without any "message key used
// twice" — also when the restored copy first sends while the server is
// down.
func TestRestoredProfileRejoinsWithFreshKeys(t *testing.T) {
	t.Parallel()
	for _, offline := range []bool{false, true} {
		name := "online"
		if offline {
			name = "offline"
		}
		t.Run(name, func(t *testing.T) { testRestoredProfile(t, offline) })
	}
}

func testRestoredProfile(t *testing.T, offline bool) {
	ctx := context.Background()
	s := newServer(t)
	alice, bob, conv := directPair(t, s)
	send := func(d *device, text string) {
		t.Helper()
		if _, err := d.c.Send(ctx, conv, text, client.SendOptions{}); err != nil {
			t.Fatalf("%s sends %q: %v", d.name, text, err)
		}
	}
	send(alice, "before the copy")
	bob.waitTexts(conv, "before the copy")

	dir := alice.dir
	alice.close()
	backup := t.TempDir()
	if err := os.CopyFS(backup, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	alice = openDevice(t, s, dir, "alice")
	send(alice, "after the copy 1")
	send(alice, "after the copy 2")
	bob.waitTexts(conv, "before the copy", "after the copy 1", "after the copy 2")
	alice.close()

	// Restore the copy.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, os.DirFS(backup)); err != nil {
		t.Fatal(err)
	}
	if offline {
		// The restored copy sends while it cannot reach the server: the
		// message waits, unencrypted, until the conversation is current.
		alice = openDeviceURL(t, "https://127.0.0.1:1", s.fingerprint, dir, "alice")
		if _, err := alice.c.Send(ctx, conv, "from the restored copy", client.SendOptions{}); !errors.Is(err, client.ErrServerUnreachable) {
			t.Fatalf("send while the server is down: %v, want ErrServerUnreachable", err)
		}
		alice.close()
		alice = openDevice(t, s, dir, "alice")
		if err := alice.c.Sync(ctx); err != nil {
			t.Fatalf("sync of the restored copy: %v", err)
		}
	} else {
		alice = openDevice(t, s, dir, "alice")
		send(alice, "from the restored copy")
	}
	bob.waitTexts(conv, "before the copy", "after the copy 1", "after the copy 2", "from the restored copy")
	alice.waitEvent("state restored", func(ev client.Event) bool {
		return ev.Kind == client.EventStateRestored && ev.Conversation == conv && ev.Err == nil
	})
	alice.start()
	send(bob, "bob reads it")
	// What the newer copy sent is not in the restored copy's history: a
	// member cannot decrypt its own messages.
	alice.waitTexts(conv, "before the copy", "from the restored copy", "bob reads it")
	bob.mu.Lock()
	defer bob.mu.Unlock()
	for _, ev := range bob.events {
		if ev.Kind == client.EventError {
			t.Errorf("bob: %v", ev.Err)
		}
	}
}
