package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/server/store"
)

// nodes builds tree nodes from "index:data" pairs; "index:" is a blank.
func nodes(pairs ...string) []store.TreeNode {
	out := make([]store.TreeNode, 0, len(pairs))
	for _, p := range pairs {
		idx, data, _ := strings.Cut(p, ":")
		var nd store.TreeNode
		fmt.Sscan(idx, &nd.Index)
		if data != "" {
			nd.Data = []byte(data)
		}
		out = append(out, nd)
	}
	return out
}

// treeString renders nodes as "index:data" pairs.
func treeString(ns []store.TreeNode) string {
	var parts []string
	for _, n := range ns {
		parts = append(parts, fmt.Sprintf("%d:%s", n.Index, n.Data))
	}
	return strings.Join(parts, " ")
}

// commitTree commits a tree change to the conversation at its epoch,
// then lets the store snapshot the tree as the delivery service does.
func commitTree(t *testing.T, s store.Store, c store.ConversationID, by store.DeviceID, history uint64, changes ...string) {
	t.Helper()
	conv, err := s.Conversation(ctx, c)
	must(t, "conversation", err)
	_, err = s.Commit(ctx, store.Commit{Conversation: c, Epoch: conv.Epoch, Sender: by, Data: []byte("commit"), GroupInfo: []byte("gi"),
		FollowerState: []byte("fs"), Tree: nodes(changes...), TreeHistory: history, Created: t0})
	must(t, fmt.Sprintf("commit at epoch %d", conv.Epoch), err)
	_, err = s.SnapshotTree(ctx, c)
	must(t, fmt.Sprintf("snapshot at epoch %d", conv.Epoch+1), err)
}

// testTreeSnapshots: SnapshotTree stores the current tree when the
// changes since the last snapshot add up to its size, and the trees of
// every kept epoch read the same before and after.
func testTreeSnapshots(t *testing.T, s store.Store) {
	_, d := mkUser(t, s, "alice")
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Suite: suite, GroupInfo: []byte("gi0"),
		Tree: nodes("0:a0", "2:b0"), FollowerState: []byte("fs0"), Creator: d.ID, Created: t0})
	must(t, "create", err)
	snapshot := func(want bool) {
		t.Helper()
		wrote, err := s.SnapshotTree(ctx, c.ID)
		if err != nil || wrote != want {
			t.Fatalf("snapshot: %v, %v; want %v", wrote, err, want)
		}
	}
	commit := func(history uint64, changes ...string) {
		t.Helper()
		conv, err := s.Conversation(ctx, c.ID)
		must(t, "conversation", err)
		_, err = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: conv.Epoch, Sender: d.ID, Data: []byte("commit"), GroupInfo: []byte("gi"),
			FollowerState: []byte("fs"), Tree: nodes(changes...), TreeHistory: history, Created: t0})
		must(t, fmt.Sprintf("commit at epoch %d", conv.Epoch), err)
	}
	snapshot(false) // the tree of the conversation's creation is one
	commit(100, "0:a1")
	snapshot(false) // one node changed of the two
	commit(100, "2:b2", "4:")
	want := map[uint64]string{0: "0:a0 2:b0", 1: "0:a1 2:b0", 2: "0:a1 2:b2"}
	for e, w := range want {
		wantTree(t, s, c.ID, e, w)
	}
	snapshot(true) // the changes add up to the tree's size
	snapshot(false)
	for e, w := range want {
		wantTree(t, s, c.ID, e, w)
	}
	got, err := s.TreeChanges(ctx, c.ID, 0, 2)
	if err != nil || treeString(got) != "0:a1 2:b2 4:" {
		t.Errorf("changes from epoch 0 to 2 across a snapshot: %q, %v", treeString(got), err)
	}
	// With a history of one epoch, the snapshots and changes before the
	// floor go, the trees from it on stay.
	for e := 3; e <= 12; e++ {
		commit(1, fmt.Sprintf("0:a%d", e), fmt.Sprintf("%d:n%d", 2*(e%3)+4, e))
		if _, err := s.SnapshotTree(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	wantTree(t, s, c.ID, 11, "0:a11 2:b2 4:n9 6:n10 8:n11")
	wantTree(t, s, c.ID, 12, "0:a12 2:b2 4:n12 6:n10 8:n11")
	_, err = s.Tree(ctx, c.ID, 10)
	wantErr(t, "a tree older than the history", err, store.ErrGone)
	_, err = s.SnapshotTree(ctx, 9999)
	wantErr(t, "a snapshot of an unknown conversation", err, store.ErrNotFound)

	// A tree larger than a snapshot's part (1 MiB) is stored and read in
	// parts.
	big := make([]store.TreeNode, 1500)
	for i := range big {
		big[i] = store.TreeNode{Index: uint32(2 * i), Data: []byte(strings.Repeat(fmt.Sprintf("%04d", i), 250))}
	}
	c, err = s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("big"), Suite: suite, GroupInfo: []byte("gi0"),
		Tree: big, FollowerState: []byte("fs0"), Creator: d.ID, Created: t0})
	must(t, "create a large tree", err)
	for i := range big {
		big[i].Data = []byte(strings.Repeat(fmt.Sprintf("%04x", i), 250))
	}
	_, err = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 0, Sender: d.ID, Data: []byte("commit"), GroupInfo: []byte("gi"),
		FollowerState: []byte("fs"), Tree: big, TreeHistory: 0, Created: t0})
	must(t, "commit every node of the large tree", err)
	snapshot(true)
	got, err = s.Tree(ctx, c.ID, 1)
	if err != nil || treeString(got) != treeString(big) {
		t.Errorf("large tree after its snapshot: %d nodes, %v; want the %d committed", len(got), err, len(big))
	}
}

// wantTree checks the tree of an epoch.
func wantTree(t *testing.T, s store.Store, c store.ConversationID, epoch uint64, want string) {
	t.Helper()
	got, err := s.Tree(ctx, c, epoch)
	if err != nil || treeString(got) != want {
		t.Errorf("tree at epoch %d: %q, %v; want %q", epoch, treeString(got), err, want)
	}
}

func testTreeNodes(t *testing.T, s store.Store) {
	_, d := mkUser(t, s, "alice")
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Suite: suite, GroupInfo: []byte("gi0"),
		Tree: nodes("0:a0", "2:b0"), FollowerState: []byte("fs0"), Creator: d.ID, Created: t0})
	must(t, "create", err)
	wantTree(t, s, c.ID, 0, "0:a0 2:b0")
	commitTree(t, s, c.ID, d.ID, 10, "1:p1", "2:", "4:c1")
	wantTree(t, s, c.ID, 1, "0:a0 1:p1 4:c1")
	wantTree(t, s, c.ID, 0, "0:a0 2:b0")
	commitTree(t, s, c.ID, d.ID, 10, "0:a2", "4:", "2:b2")
	wantTree(t, s, c.ID, 2, "0:a2 1:p1 2:b2")
	wantTree(t, s, c.ID, 1, "0:a0 1:p1 4:c1")
	wantTree(t, s, c.ID, 0, "0:a0 2:b0")

	_, err = s.Tree(ctx, c.ID, 3)
	wantErr(t, "a future epoch's tree", err, store.ErrInvalid)
	_, err = s.Tree(ctx, 9999, 0)
	wantErr(t, "an unknown conversation's tree", err, store.ErrNotFound)
	// A refused commit stores none of its nodes.
	_, err = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 1, Sender: d.ID, Data: []byte("late"), Tree: nodes("0:late", "6:late"), Created: t0})
	wantErr(t, "stale commit", err, store.ErrStaleEpoch)
	wantTree(t, s, c.ID, 2, "0:a2 1:p1 2:b2")
	if got, _ := s.Conversation(ctx, c.ID); got.LegacyTree {
		t.Error("a conversation created with nodes is LegacyTree")
	}
	if ids, err := s.LegacyTrees(ctx); err != nil || len(ids) != 0 {
		t.Errorf("legacy trees: %v, %v; want none", ids, err)
	}
	// MoveTree is only for LegacyTree conversations.
	err = s.MoveTree(ctx, c.ID, 2, []byte("moved"), nodes("0:x"))
	wantErr(t, "move a tree stored by nodes", err, store.ErrStaleState)
	wantTree(t, s, c.ID, 2, "0:a2 1:p1 2:b2")
}

// testTreeChanges: the changes between two kept epochs, applied to the
// earlier tree, give the later one; an epoch whose tree is gone, or not
// there yet, is refused.
func testTreeChanges(t *testing.T, s store.Store) {
	_, d := mkUser(t, s, "alice")
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Suite: suite, GroupInfo: []byte("gi0"),
		Tree: nodes("0:a0", "2:b0"), FollowerState: []byte("fs0"), Creator: d.ID, Created: t0})
	must(t, "create", err)
	commitTree(t, s, c.ID, d.ID, 3, "1:p1", "2:", "4:c1") // epoch 1
	commitTree(t, s, c.ID, d.ID, 3, "0:a2", "4:", "2:b2") // epoch 2
	commitTree(t, s, c.ID, d.ID, 3, "6:g3")               // epoch 3
	want := map[[2]uint64]string{
		{0, 0}: "", {0, 1}: "1:p1 2: 4:c1", {0, 2}: "0:a2 1:p1 2:b2 4:", {1, 2}: "0:a2 2:b2 4:", {2, 3}: "6:g3", {0, 3}: "0:a2 1:p1 2:b2 4: 6:g3",
	}
	for k, w := range want {
		got, err := s.TreeChanges(ctx, c.ID, k[0], k[1])
		if err != nil || treeString(got) != w {
			t.Errorf("changes from epoch %d to %d: %q, %v; want %q", k[0], k[1], treeString(got), err, w)
		}
	}
	// Applied to the earlier tree they give the later one.
	for since := range uint64(4) {
		for epoch := since; epoch < 4; epoch++ {
			tree, err := s.Tree(ctx, c.ID, since)
			must(t, "tree", err)
			changes, err := s.TreeChanges(ctx, c.ID, since, epoch)
			must(t, "tree changes", err)
			m := map[uint32][]byte{}
			for _, n := range tree {
				m[n.Index] = n.Data
			}
			for _, n := range changes {
				if n.Data == nil {
					delete(m, n.Index)
				} else {
					m[n.Index] = n.Data
				}
			}
			var applied []store.TreeNode
			for x, d := range m {
				applied = append(applied, store.TreeNode{Index: x, Data: d})
			}
			slices.SortFunc(applied, func(a, b store.TreeNode) int { return int(a.Index) - int(b.Index) })
			later, err := s.Tree(ctx, c.ID, epoch)
			must(t, "tree", err)
			if treeString(applied) != treeString(later) {
				t.Errorf("the tree of %d with the changes to %d is %q, the tree of %d %q", since, epoch, treeString(applied), epoch, treeString(later))
			}
		}
	}
	_, err = s.TreeChanges(ctx, c.ID, 2, 1)
	wantErr(t, "changes to an epoch before since", err, store.ErrInvalid)
	_, err = s.TreeChanges(ctx, c.ID, 1, 4)
	wantErr(t, "changes to a future epoch", err, store.ErrInvalid)
	_, err = s.TreeChanges(ctx, 9999, 0, 0)
	wantErr(t, "changes of an unknown conversation", err, store.ErrNotFound)
	commitTree(t, s, c.ID, d.ID, 3, "0:a4") // epoch 4: floor 1
	_, err = s.TreeChanges(ctx, c.ID, 0, 4)
	wantErr(t, "changes since an epoch before the history", err, store.ErrGone)
	got, err := s.TreeChanges(ctx, c.ID, 1, 4)
	if err != nil || treeString(got) != "0:a4 2:b2 4: 6:g3" {
		t.Errorf("changes from epoch 1, the floor, to 4: %q, %v", treeString(got), err)
	}
}

// testTreeHistory: a commit keeps the trees of TreeHistory epochs before
// the new one readable, and no older ones.
func testTreeHistory(t *testing.T, s store.Store) {
	_, d := mkUser(t, s, "alice")
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Suite: suite, GroupInfo: []byte("gi0"),
		Tree: nodes("0:a0", "2:b0"), FollowerState: []byte("fs0"), Creator: d.ID, Created: t0})
	must(t, "create", err)
	commitTree(t, s, c.ID, d.ID, 2, "0:a1", "6:g1") // epoch 1
	commitTree(t, s, c.ID, d.ID, 2, "0:a2", "6:")   // epoch 2
	commitTree(t, s, c.ID, d.ID, 2, "0:a3")         // epoch 3: floor 1
	wantTree(t, s, c.ID, 1, "0:a1 2:b0 6:g1")
	wantTree(t, s, c.ID, 2, "0:a2 2:b0")
	_, err = s.Tree(ctx, c.ID, 0)
	wantErr(t, "a tree older than the history", err, store.ErrGone)
	commitTree(t, s, c.ID, d.ID, 2, "0:a4", "6:") // epoch 4: floor 2
	commitTree(t, s, c.ID, d.ID, 2, "0:a5")       // epoch 5: floor 3
	for e, want := range map[uint64]string{3: "0:a3 2:b0", 4: "0:a4 2:b0", 5: "0:a5 2:b0"} {
		wantTree(t, s, c.ID, e, want)
	}
	for _, e := range []uint64{0, 1, 2} {
		_, err = s.Tree(ctx, c.ID, e)
		wantErr(t, fmt.Sprintf("the tree of epoch %d, before the history", e), err, store.ErrGone)
	}
	// Without history only the current tree is kept.
	commitTree(t, s, c.ID, d.ID, 0, "2:b6") // epoch 6
	wantTree(t, s, c.ID, 6, "0:a5 2:b6")
	_, err = s.Tree(ctx, c.ID, 5)
	wantErr(t, "the previous tree without history", err, store.ErrGone)
}

// TreeHistory creates, in s, a user and a conversation whose tree changes
// over eight commits with a history of three epochs: the trees of epochs
// 5 to 8 are kept, those before are gone. Tests of a store's copies
// (backups) compare it with SameTrees.
func TreeHistory(t *testing.T, s store.Store) store.ConversationID {
	t.Helper()
	_, d := mkUser(t, s, "tree-history")
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("tree-history"), Suite: suite, GroupInfo: []byte("gi0"),
		Tree: nodes("0:a0", "2:b0"), FollowerState: []byte("fs0"), Creator: d.ID, Created: t0})
	must(t, "create", err)
	for e := range 8 {
		changes := []string{fmt.Sprintf("0:a%d", e+1), fmt.Sprintf("%d:n%d", 2*(e%4)+4, e+1)}
		if e%3 == 2 {
			changes = append(changes, "2:") // blank again
		} else {
			changes = append(changes, fmt.Sprintf("2:b%d", e+1))
		}
		commitTree(t, s, c.ID, d.ID, 3, changes...)
	}
	return c.ID
}

// SameTrees checks that dst, a copy of src, returns what src returns for
// the tree of every epoch of conversation id: the same nodes for the
// epochs kept, store.ErrGone for the older ones. src must keep at least
// two epochs' trees and have dropped at least one.
func SameTrees(t *testing.T, src, dst store.Store, id store.ConversationID) {
	t.Helper()
	c, err := src.Conversation(ctx, id)
	must(t, "conversation", err)
	kept, gone := 0, 0
	for e := range c.Epoch + 1 {
		want, werr := src.Tree(ctx, id, e)
		got, gerr := dst.Tree(ctx, id, e)
		switch {
		case werr == nil:
			kept++
			if gerr != nil || treeString(got) != treeString(want) {
				t.Errorf("copy's tree of conversation %d at epoch %d: %q, %v; want %q", id, e, treeString(got), gerr, treeString(want))
			}
		case errors.Is(werr, store.ErrGone):
			gone++
			wantErr(t, fmt.Sprintf("copy's tree of conversation %d at epoch %d, before the history", id, e), gerr, store.ErrGone)
		default:
			t.Fatalf("tree of conversation %d at epoch %d: %v", id, e, werr)
		}
	}
	if kept < 2 || gone < 1 {
		t.Fatalf("conversation %d keeps the trees of %d epochs and dropped %d: want at least 2 and 1", id, kept, gone)
	}
}
