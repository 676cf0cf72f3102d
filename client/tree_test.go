package client_test

import (
	"context"
	"slices"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/server/delivery"
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
