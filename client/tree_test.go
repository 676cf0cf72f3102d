package client_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/internal/testserver"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/store"
)

// TestJoinFetchesTree: Welcomes carry no ratchet tree; a device whose
// Welcome waited while the group moved on joins with the tree of the
// Welcome's epoch from the server, then follows the later commits. A
// Welcome older than the trees the server keeps is not lost: the device
// takes over its leaf by external commit.
func TestJoinFetchesTree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		history  uint64
		external bool
	}{
		{"tree of an older epoch", 10, false},
		{"tree gone", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServerWith(t, func(c *delivery.Config) { c.TreeHistoryEpochs = tc.history })
			alice := register(t, s, "alice")
			bob := register(t, s, "bob")
			carol := register(t, s, "carol")
			conv, err := alice.c.NewGroup(ctx, "team", "bob")
			if err != nil {
				t.Fatal(err)
			}
			if err := bob.c.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if err := alice.c.Add(ctx, conv, "carol"); err != nil { // carol is offline
				t.Fatal(err)
			}
			for range 3 {
				if err := alice.c.SelfUpdate(ctx, conv); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := alice.c.Send(ctx, conv, "after the updates", client.SendOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := carol.c.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			cv, err := carol.c.Conversation(ctx, conv)
			if err != nil {
				t.Fatalf("carol did not join: %v", err)
			}
			if !slices.Equal(cv.Members, []string{"alice", "bob", "carol"}) {
				t.Errorf("carol sees the members %v", cv.Members)
			}
			got := carol.texts(conv)
			if read := slices.Contains(got, "after the updates"); read == tc.external {
				t.Errorf("carol's history %q: the message after the updates read %v, want %v", got, read, !tc.external)
			}
			// Everyone follows carol's join and reads her.
			if _, err := carol.c.Send(ctx, conv, "hi from carol", client.SendOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, d := range []*device{alice, bob} {
				if err := d.c.Sync(ctx); err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(d.texts(conv), "hi from carol") {
					t.Errorf("%s did not read carol: %q", d.name, d.texts(conv))
				}
			}
		})
	}
}

// TestMembersFillTree: in a conversation of 64 members or more, the
// member that mls.Group.TreeFiller names commits a self-update after the
// commit that made it one — the creator after adding members, a device
// after the Add that put members beside it, and again after a removal
// blanked its part of the tree — and the members the rule does not name
// do not commit.
func TestMembersFillTree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := testserver.StartWith(t, testserver.Options{DefaultLimits: true})
	s := &server{srv: ts.HTTP, url: ts.URL, fingerprint: ts.Fingerprint, name: ts.Name, st: ts.Store, svc: ts.Service}
	first := registerMany(t, s, "member", 63)
	second := registerMany(t, s, "other", 7)
	open := func(name string) *device {
		d := openDeviceConfig(t, s.url, s.fingerprint, t.TempDir(), name, suite1)
		if _, err := d.c.Register(ctx, s.url, "", name); err != nil {
			t.Fatal(err)
		}
		return d
	}
	alice, x := open("alice"), open("xavier")
	conv, err := alice.c.NewChannel(ctx, "announcements")
	if err != nil {
		t.Fatal(err)
	}
	deviceOf := func(d *device) store.DeviceID {
		t.Helper()
		acct, err := d.c.Whoami()
		if err != nil {
			t.Fatal(err)
		}
		return store.DeviceID(acct.Device)
	}
	// commits returns the senders of the conversation's handshakes
	// after seq.
	commitsAfter := func(seq uint64) []store.DeviceID {
		t.Helper()
		es, err := s.st.Entries(ctx, store.ConversationID(conv), seq, 1000)
		if err != nil {
			t.Fatalf("entries: %v", err)
		}
		var out []store.DeviceID
		for _, e := range es {
			if e.Kind == store.KindHandshake {
				out = append(out, e.Sender)
			}
		}
		return out
	}
	head := func() uint64 {
		t.Helper()
		es, err := s.st.Entries(ctx, store.ConversationID(conv), 0, 10000)
		if err != nil || len(es) == 0 {
			t.Fatalf("entries: %v", err)
		}
		return es[len(es)-1].Seq
	}
	// commitsBy waits for len(want) commits after seq and checks their
	// senders, then that no other follows while x catches up.
	commitsBy := func(what string, seq uint64, want ...store.DeviceID) {
		t.Helper()
		waitFor(t, what, func() bool { return len(commitsAfter(seq)) >= len(want) })
		if err := x.c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if got := commitsAfter(seq); !slices.Equal(got, want) {
			t.Errorf("%s: commits after seq %d by %v, want %v", what, seq, got, want)
		}
	}
	a, xd := deviceOf(alice), deviceOf(x)

	// Leaves 1-63 are added by Adds alone: the parents of height 3 and
	// more are blank, and alice, leftmost under the one of leaves 0-7,
	// fills it and the path above it.
	seq := head()
	if err := alice.c.AddUsers(ctx, conv, first...); err != nil {
		t.Fatal(err)
	}
	x.start()
	commitsBy("alice's Add and self-update", seq, a, a)

	// Xavier joins at leaf 64: the new root is blank, but the rule names
	// the members under the blank nodes of leaves 8-63 first, and they
	// are not running.
	if err := alice.c.AddUsers(ctx, conv, "xavier"); err != nil {
		t.Fatal(err)
	}
	x.waitEvent("xavier joins", func(ev client.Event) bool { return ev.Kind == client.EventConversationJoined })
	// Leaves 65-71 join beside him: xavier is leftmost under the
	// height-3 node of leaves 64-71 and fills it.
	seq = head()
	if err := alice.c.AddUsers(ctx, conv, second...); err != nil {
		t.Fatal(err)
	}
	commitsBy("alice's Add of leaves 65-71 and xavier's self-update", seq, a, xd)

	// Alice removes one of them: her path meets the removed leaf's only
	// at the root, and xavier sets that node again.
	if err := alice.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	seq = head()
	if err := alice.c.Remove(ctx, conv, second[len(second)-1]); err != nil {
		t.Fatal(err)
	}
	commitsBy("alice's removal and xavier's self-update", seq, a, xd)
}

// TestWelcomeKeptWhileServerFails: a join that fails for the server's
// or the network's sake (here a member's lookup, unreachable) leaves the
// Welcome in the inbox, and the next sync joins; before, the Welcome
// was acknowledged as unusable and the device never joined.
func TestWelcomeKeptWhileServerFails(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	bob := register(t, s, "bob")
	conv, err := alice.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	var fired atomic.Bool
	client.SetFailpoint(func(name string) bool { return name == "welcome-unreachable" && fired.CompareAndSwap(false, true) })
	defer client.SetFailpoint(nil)
	if err := bob.c.Sync(ctx); !errors.Is(err, client.ErrServerUnreachable) {
		t.Fatalf("sync while the join's lookups fail: %v, want ErrServerUnreachable", err)
	}
	if _, err := bob.c.Conversation(ctx, conv); err == nil {
		t.Fatal("bob joined although the join failed")
	}
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatalf("sync once the server answers: %v", err)
	}
	if _, err := bob.c.Conversation(ctx, conv); err != nil {
		t.Fatalf("bob did not join once the server answered: %v", err)
	}
}
