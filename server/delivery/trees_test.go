package delivery_test

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// commit commits a new path of the member (no proposals), and
// submits the commit with the new epoch's GroupInfo; it must be accepted.
func (e *proposalEnv) commit(tb testing.TB) {
	tb.Helper()
	epoch := e.g.Epoch()
	pc, err := e.g.Commit(mls.CommitOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.g.MergePendingCommit(pc); err != nil {
		tb.Fatal(err)
	}
	gi, err := e.g.GroupInfo(mls.GroupInfoOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := e.svc.Handshake(context.Background(), e.sess, e.conv, protocol.HandshakeRequest{Epoch: epoch, Message: pc.Message, GroupInfo: gi}); err != nil {
		tb.Fatalf("commit of epoch %d: %v", epoch, err)
	}
}

// wantTree checks that the service serves the member's current tree.
func (e *proposalEnv) wantTree(tb testing.TB) {
	tb.Helper()
	want, err := e.g.RatchetTree()
	if err != nil {
		tb.Fatal(err)
	}
	got, err := e.svc.Tree(context.Background(), e.sess, e.conv, e.g.Epoch())
	if err != nil || !bytes.Equal(got, want) {
		tb.Fatalf("tree of epoch %d: %d bytes, %v; want the member's %d bytes", e.g.Epoch(), len(got), err, len(want))
	}
}

// TestLegacyTreeMovedOnFirstUse: a conversation whose whole tree is in
// its follower state (stored before trees were stored node by node) and
// that MoveLegacyTrees did not move is moved when first used: its tree is
// served, and a commit is followed from the moved nodes.
func TestLegacyTreeMovedOnFirstUse(t *testing.T) {
	ctx := context.Background()
	e := newProposalEnv(t, nil)
	e.commit(t)
	e.commit(t)
	c, err := e.st.Conversation(ctx, store.ConversationID(e.conv))
	if err != nil {
		t.Fatal(err)
	}
	epoch := c.Epoch
	tree, err := e.st.Tree(ctx, c.ID, epoch)
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]mls.TreeNode, len(tree))
	for i, nd := range tree {
		nodes[i] = mls.TreeNode{Index: nd.Index, Data: nd.Data}
	}
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}

	// Back to the layout of a store before trees were stored apart from
	// the follower state.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pg, err := mls.LoadPublicGroupTree(nil, c.FollowerState, nodes)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := pg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE conversations SET follower_state = $1, legacy_tree = 1, tree_floor = 0, tree_snapshot = 0, tree_snapshot_bytes = 0, tree_log_bytes = 0 WHERE id = $2`,
		`DELETE FROM tree_snapshots WHERE conversation_id = $2`,
		`DELETE FROM tree_snapshot_parts WHERE conversation_id = $2`,
		`DELETE FROM tree_changes WHERE conversation_id = $2`,
	} {
		if _, err := db.Exec(q, whole, e.conv); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	// A new service, as after a restart, without MoveLegacyTrees.
	e.open(t)
	if ids, err := e.st.LegacyTrees(ctx); err != nil || len(ids) != 1 {
		t.Fatalf("legacy trees %v, %v; want the conversation", ids, err)
	}
	e.wantTree(t)
	c, err = e.st.Conversation(ctx, store.ConversationID(e.conv))
	if err != nil || c.LegacyTree || c.Epoch != epoch {
		t.Fatalf("after the first use: %+v, %v", c, err)
	}
	if ns, err := e.st.Tree(ctx, c.ID, epoch); err != nil || len(ns) != len(nodes) {
		t.Fatalf("stored tree of epoch %d: %d nodes, %v; want %d", epoch, len(ns), err, len(nodes))
	}
	e.restart(t) // the follower rebuilds the group from the moved nodes
	e.commit(t)
	e.wantTree(t)
}

// TestTreeSnapshotsAfterCommits: the service's background work asks the
// store for a snapshot of a conversation's tree after each commit, and
// one is stored when the commits' changes add up to the tree. Here the
// tree is the member's leaf: its first commit makes it 15 bytes smaller
// than the one the conversation was created with, so the first snapshot
// comes at the second commit, and then one at every commit. The tree the
// service serves stays the member's.
func TestTreeSnapshotsAfterCommits(t *testing.T) {
	e := newProposalEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	var stored []uint64
	for range 6 {
		e.commit(t)
		select {
		case call := <-e.st.snapped:
			if call.err != nil || call.epoch != e.g.Epoch() {
				t.Fatalf("snapshot after the commit to epoch %d: %+v", e.g.Epoch(), call)
			}
			if call.wrote {
				stored = append(stored, call.epoch)
			}
		case <-time.After(time.Minute):
			t.Fatalf("no snapshot asked for after the commit to epoch %d", e.g.Epoch())
		}
		e.wantTree(t)
	}
	if !slices.Equal(stored, []uint64{2, 3, 4, 5, 6}) {
		t.Errorf("snapshots stored at epochs %v, want 2 to 6", stored)
	}
}
