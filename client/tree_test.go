package client_test

import (
	"context"
	"slices"
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

// TestJoinerAtPowerOfTwoUpdates: the device that joins at leaf 64 commits
// a self-update at once (giving keys to the parents above the creator's
// copath), the one at leaf 65 does not.
func TestJoinerAtPowerOfTwoUpdates(t *testing.T) {
	ctx := context.Background()
	ts := testserver.StartWith(t, testserver.Options{DefaultLimits: true})
	s := &server{srv: ts.HTTP, url: ts.URL, fingerprint: ts.Fingerprint, name: ts.Name, st: ts.Store, svc: ts.Service}
	fillers := registerMany(t, s, "member", 63)
	open := func(name string) *device {
		d := openDeviceConfig(t, s.url, s.fingerprint, t.TempDir(), name, suite1)
		if _, err := d.c.Register(ctx, s.url, "", name); err != nil {
			t.Fatal(err)
		}
		return d
	}
	alice, x, y := open("alice"), open("xavier"), open("yvonne")
	conv, err := alice.c.NewChannel(ctx, "announcements")
	if err != nil {
		t.Fatal(err)
	}
	for _, users := range [][]string{fillers, {"xavier"}, {"yvonne"}} { // leaves 1-63, 64, 65
		if err := alice.c.AddUsers(ctx, conv, users...); err != nil {
			t.Fatal(err)
		}
	}
	added, err := alice.c.Conversation(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	lastSender := func() store.DeviceID {
		t.Helper()
		es, err := s.st.Entries(ctx, store.ConversationID(conv), 0, 1000)
		if err != nil || len(es) == 0 {
			t.Fatalf("entries: %v", err)
		}
		return es[len(es)-1].Sender
	}
	y.start()
	y.waitEvent("yvonne joins", func(ev client.Event) bool { return ev.Kind == client.EventConversationJoined })
	x.start()
	x.waitEvent("xavier joins", func(ev client.Event) bool { return ev.Kind == client.EventConversationJoined })
	waitFor(t, "xavier's self-update", func() bool {
		cv, err := x.c.Conversation(ctx, conv)
		return err == nil && cv.Epoch == added.Epoch+1
	})
	acct, err := x.c.Whoami()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lastSender(), store.DeviceID(acct.Device); got != want {
		t.Errorf("the commit after the joins is by %s, want xavier's device %s", got, want)
	}
	y.stop()
	x.stop()
	if err := y.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if cv, _ := y.c.Conversation(ctx, conv); cv.Epoch != added.Epoch+1 {
		t.Errorf("epoch %d after yvonne (leaf 65) joined and xavier (leaf 64) updated, want %d: one self-update", cv.Epoch, added.Epoch+1)
	}

	// Alice (leaf 0) removes yvonne: her commit's path meets leaf 65's
	// only at the root, so xavier, leftmost under leaf 65's parent, sets
	// that path again with a self-update.
	if err := alice.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.Remove(ctx, conv, "yvonne"); err != nil {
		t.Fatal(err)
	}
	removed, err := alice.c.Conversation(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	x.start()
	waitFor(t, "xavier's self-update after yvonne's removal", func() bool {
		cv, err := x.c.Conversation(ctx, conv)
		return err == nil && cv.Epoch == removed.Epoch+1
	})
	if got, want := lastSender(), store.DeviceID(acct.Device); got != want {
		t.Errorf("the commit after the removal is by %s, want xavier's device %s", got, want)
	}
}

func TestFillsTree(t *testing.T) {
	var got []int
	for l := range 20000 {
		if client.FillsTree(uint32(l)) {
			got = append(got, l)
		}
	}
	if want := []int{64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384}; !slices.Equal(got, want) {
		t.Errorf("leaves that update on joining: %v, want %v", got, want)
	}
}
