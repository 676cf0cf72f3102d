package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/sqlitestore"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// editStore runs f on the closed profile of d in a transaction.
func editStore(t *testing.T, d *device, f func(tx store.Tx) error) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(d.dir, client.StoreFile), sqlitestore.Options{
		Passphrase: []byte("correct horse " + d.name), KDF: fastKDF,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Update(ctx, f); err != nil {
		t.Fatal(err)
	}
}

// TestUnusableRatchetState: a stored ratchet state that does not apply
// to the stored group state (damaged: mls.ErrMalformed; from an older
// epoch: mls.ErrStale) is not ignored in favour of the full state, which
// would encrypt again with message keys already used. The profile opens,
// the conversation is reported in an error event, and it refuses to send:
// the peer receives nothing more.
func TestUnusableRatchetState(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// damage returns the ratchet state to store instead of the
		// current one (cur), given the one stored after the first
		// message (first).
		damage   func(first, cur []byte) []byte
		selfUpd  bool // move to a new epoch after the first message
		mlsCause string
	}{
		{name: "malformed", damage: func(_, cur []byte) []byte { return cur[:len(cur)-1] }, mlsCause: "malformed"},
		{name: "stale", damage: func(first, _ []byte) []byte { return first }, selfUpd: true, mlsCause: "epoch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
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
			if _, err := alice.c.Send(ctx, conv, "one", client.SendOptions{}); err != nil {
				t.Fatal(err)
			}
			alice.close()
			var first []byte
			editStore(t, alice, func(tx store.Tx) error {
				first, err = tx.RatchetState(conv)
				return err
			})
			alice = openDevice(t, s, alice.dir, "alice")
			if tc.selfUpd {
				if err := alice.c.SelfUpdate(ctx, conv); err != nil {
					t.Fatal(err)
				}
				if _, err := alice.c.Send(ctx, conv, "two", client.SendOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			alice.close()
			editStore(t, alice, func(tx store.Tx) error {
				cur, err := tx.RatchetState(conv)
				if err != nil {
					return err
				}
				return tx.PutRatchetState(conv, tc.damage(first, cur))
			})
			if err := bob.c.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			before := bob.texts(conv)

			alice = openDevice(t, s, alice.dir, "alice")
			ev := alice.waitEvent("unusable state", func(ev client.Event) bool {
				return ev.Kind == client.EventError && ev.Conversation == conv && errors.Is(ev.Err, client.ErrStateUnusable)
			})
			if !strings.Contains(ev.Error, tc.mlsCause) {
				t.Errorf("event error %q does not name the cause %q", ev.Error, tc.mlsCause)
			}
			if !strings.Contains(alice.logs.String(), "stored state unusable") {
				t.Errorf("no log of the refused conversation:\n%s", alice.logs.String())
			}
			_, err = alice.c.Send(ctx, conv, "must not be sent", client.SendOptions{})
			if !errors.Is(err, client.ErrStateUnusable) {
				t.Fatalf("send: err = %v, want ErrStateUnusable", err)
			}
			if err := alice.c.SelfUpdate(ctx, conv); !errors.Is(err, client.ErrStateUnusable) {
				t.Fatalf("self-update: err = %v, want ErrStateUnusable", err)
			}
			if err := alice.c.Sync(ctx); err != nil {
				t.Fatalf("sync with a refused conversation: %v", err)
			}
			if err := bob.c.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if got := bob.texts(conv); !slices.Equal(got, before) {
				t.Fatalf("bob reads %q after the refused send, want %q", got, before)
			}
		})
	}
}

// TestReplayOrKeyReuse: the same ciphertext applied twice (a sender that
// posted again after a crash) is a quiet duplicate; another ciphertext
// under a key already used (the sender reused a key, or a forgery) is
// reported loudly, as an error event and a warning.
func TestReplayOrKeyReuse(t *testing.T) {
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
	acct, err := alice.c.Whoami()
	if err != nil {
		t.Fatal(err)
	}
	// ct1 advances alice's ratchet in memory only; after a reopen she is
	// back before it and ct2 uses the same key: a forced key reuse.
	ct1, err := client.EncryptForTest(alice.c, conv, "first")
	if err != nil {
		t.Fatal(err)
	}
	alice.close()
	alice = openDevice(t, s, alice.dir, "alice")
	ct2, err := client.EncryptForTest(alice.c, conv, "other")
	if err != nil {
		t.Fatal(err)
	}
	seq, err := client.CursorForTest(ctx, bob.c, conv)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(data []byte) {
		t.Helper()
		seq++
		e := protocol.Entry{Conversation: conv, Seq: seq, Kind: protocol.KindApplication, Sender: acct.Device, Data: data, Time: time.Now()}
		if err := client.ApplyEntryForTest(ctx, bob.c, e); err != nil {
			t.Fatal(err)
		}
	}
	errorEvents := func() []client.Event {
		bob.mu.Lock()
		defer bob.mu.Unlock()
		var out []client.Event
		for _, ev := range bob.events {
			if ev.Kind == client.EventError {
				out = append(out, ev)
			}
		}
		return out
	}

	apply(ct1)
	bob.waitTexts(conv, "first")

	// The same ciphertext again, also across a restart: quiet.
	apply(ct1)
	bob.close()
	bob = openDevice(t, s, bob.dir, "bob")
	apply(ct1)
	bob.waitTexts(conv, "first")
	logs := bob.logs.String()
	if !strings.Contains(logs, `level=DEBUG msg="replayed message ignored"`) {
		t.Errorf("no debug line for the duplicate:\n%s", logs)
	}
	if strings.Contains(logs, "level=WARN") || len(errorEvents()) > 0 {
		t.Fatalf("a duplicate was reported loudly: %v\n%s", errorEvents(), logs)
	}

	// Another ciphertext under the same key: loud.
	apply(ct2)
	ev := bob.waitEvent("key reuse", func(ev client.Event) bool {
		return ev.Kind == client.EventError && ev.Conversation == conv && errors.Is(ev.Err, client.ErrKeyReused)
	})
	if !strings.Contains(ev.Error, string(acct.Device)) {
		t.Errorf("event %q does not name the sending device %s", ev.Error, acct.Device)
	}
	if !strings.Contains(bob.logs.String(), `level=WARN msg="message key used twice"`) {
		t.Errorf("no warning for the key reuse:\n%s", bob.logs.String())
	}
	bob.waitTexts(conv, "first")
	if cur, err := client.CursorForTest(ctx, bob.c, conv); err != nil || cur != seq {
		t.Fatalf("cursor %d (%v), want %d", cur, err, seq)
	}
}
