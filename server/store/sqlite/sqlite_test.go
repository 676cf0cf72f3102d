package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/storetest"
)

func open(t testing.TB) *Store {
	s, err := Open(context.Background(), NewConfig(filepath.Join(t.TempDir(), "parley.db")))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func TestReopenMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	for range 2 {
		s, err := Open(context.Background(), NewConfig(path))
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.SchemaVersion(context.Background()); err != nil || v != 15 {
			t.Errorf("schema version %d, %v", v, err)
		}
		var mode string
		var sync int
		s.w.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
		s.w.QueryRow(`PRAGMA synchronous`).Scan(&sync)
		if mode != "wal" || sync != 2 {
			t.Errorf("journal_mode %q synchronous %d, want wal and 2 (FULL)", mode, sync)
		}
		s.Close()
	}
	if err := (Config{Path: path}).Validate(); err == nil {
		t.Error("config without readers validated")
	}
}

// TestCheckInvariantsDetects corrupts a database behind the store's back
// and expects the invariant check to notice.
func TestCheckInvariantsDetects(t *testing.T) {
	for _, corrupt := range []string{
		`UPDATE members SET cursor = 99`,
		`INSERT INTO entries (conversation_id, seq, kind, sender, data, created) VALUES (1, 5, 1, 'a-1', x'00', 0)`,
		`UPDATE conversation_heads SET head = 0`,
		`UPDATE conversation_heads SET proposals = 1`,
		`INSERT INTO pending_proposals (conversation_id, idx, epoch, data, created) VALUES (1, 0, 0, x'00', 0)`,
		`INSERT INTO blobs (id, owner, size, sha256, created, expires) SELECT 'b', id, 1, x'00', 10, 10 FROM users`,
	} {
		s := open(t)
		ctx := context.Background()
		_, d, err := s.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: []byte("k"), Device: store.Device{ID: "a-1", SignatureKey: []byte("s")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Creator: d.ID}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEntries(ctx, []store.NewEntry{{Conversation: 1, Sender: d.ID, Data: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckInvariants(ctx); err != nil {
			t.Fatalf("clean database: %v", err)
		}
		if _, err := s.w.Exec(corrupt); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckInvariants(ctx); err == nil {
			t.Errorf("corruption %q not detected", corrupt)
		}
		s.Close()
	}
}

// Migration 3 moves each conversation's head to conversation_heads.
func TestMigrateHeads(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "parley.db")
	s, err := Open(ctx, NewConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	_, d, err := s.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: []byte("k"), Device: store.Device{ID: "a-1", SignatureKey: []byte("s")}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Creator: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := s.AppendEntries(ctx, []store.NewEntry{{Conversation: c.ID, Sender: d.ID, Data: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// Back to schema version 2 (and the tables migration 7 changes back
	// to version 6).
	execRaw(t, path,
		`ALTER TABLE conversations ADD COLUMN head INTEGER NOT NULL DEFAULT 0`,
		`UPDATE conversations SET head = (SELECT head FROM conversation_heads WHERE conversation_id = conversations.id)`,
		`DROP TABLE conversation_heads`,
		`ALTER TABLE conversations ADD COLUMN proposals INTEGER NOT NULL DEFAULT 0`,
		`DROP TABLE pending_proposals`,
		`DELETE FROM schema_migrations WHERE version IN (3, 7)`,
	)
	s, err = Open(ctx, NewConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Conversation(ctx, c.ID); err != nil || got.Head != 5 {
		t.Fatalf("head after migration %d, %v", got.Head, err)
	}
	if err := s.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := s.AppendEntries(ctx, []store.NewEntry{{Conversation: c.ID, Sender: d.ID, Data: []byte("x")}}); err != nil || res[0].Entry.Seq != 6 {
		t.Fatalf("append after migration: %+v %v", res, err)
	}
}

// Migration 7 moves the proposal count to conversation_heads and restarts
// it at 0: a follower state written before it already includes the
// proposals of its epoch, and none of them is a pending_proposals row.
func TestMigratePendingProposals(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "parley.db")
	s, err := Open(ctx, NewConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	_, d, err := s.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: []byte("k"), Device: store.Device{ID: "a-1", SignatureKey: []byte("s")}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), FollowerState: []byte("state+3 proposals"), Creator: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Back to schema version 6, with 3 proposals in the follower state.
	execRaw(t, path,
		`ALTER TABLE conversation_heads DROP COLUMN proposals`,
		`ALTER TABLE conversation_heads DROP COLUMN proposal_bytes`,
		`ALTER TABLE conversation_heads DROP COLUMN proposals_digest`,
		`ALTER TABLE conversations ADD COLUMN proposals INTEGER NOT NULL DEFAULT 0`,
		`UPDATE conversations SET proposals = 3`,
		`DROP TABLE pending_proposals`,
		`DELETE FROM schema_migrations WHERE version = 7`,
	)
	s, err = Open(ctx, NewConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Conversation(ctx, c.ID)
	if err != nil || got.Proposals != 0 || got.ProposalBytes != 0 || got.ProposalsDigest != nil || string(got.FollowerState) != "state+3 proposals" {
		t.Fatalf("after migration %+v, %v", got, err)
	}
	if err := s.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Propose(ctx, store.Proposal{Conversation: c.ID, Sender: d.ID, Data: []byte("p"), Digest: []byte("d")}); err != nil {
		t.Fatalf("propose after migration: %v", err)
	}
	if err := s.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}

// Migration 10 stores trees node by node; a conversation stored before
// keeps its whole tree in its follower state (LegacyTree) until MoveTree.
func TestMigrateTreeNodes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "parley.db")
	s, err := Open(ctx, NewConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	_, d, err := s.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: []byte("k"), Device: store.Device{ID: "a-1", SignatureKey: []byte("s")}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), FollowerState: []byte("state with tree"), Creator: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Back to schema version 9.
	execRaw(t, path, append(slices.Clone(withoutTreeLog),
		`ALTER TABLE conversations DROP COLUMN tree_floor`,
		`ALTER TABLE conversations DROP COLUMN legacy_tree`,
		`ALTER TABLE conversations ADD COLUMN tree BLOB NOT NULL DEFAULT x'01'`,
		`DELETE FROM schema_migrations WHERE version IN (10, 14, 15)`,
	)...)
	s, err = Open(ctx, NewConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Conversation(ctx, c.ID)
	if err != nil || !got.LegacyTree || string(got.FollowerState) != "state with tree" {
		t.Fatalf("after migration %+v, %v", got, err)
	}
	if ids, err := s.LegacyTrees(ctx); err != nil || len(ids) != 1 || ids[0] != c.ID {
		t.Fatalf("legacy trees %v, %v", ids, err)
	}
	if _, err := s.Tree(ctx, c.ID, 0); !errors.Is(err, store.ErrGone) {
		t.Fatalf("tree of a legacy conversation: %v, want ErrGone", err)
	}
	if err := s.MoveTree(ctx, c.ID, 1, []byte("state"), []store.TreeNode{{Index: 0, Data: []byte("leaf")}}); !errors.Is(err, store.ErrStaleState) {
		t.Fatalf("move at another epoch: %v, want ErrStaleState", err)
	}
	if err := s.MoveTree(ctx, c.ID, 0, []byte("state"), []store.TreeNode{{Index: 0, Data: []byte("leaf")}, {Index: 2, Data: []byte("leaf2")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveTree(ctx, c.ID, 0, []byte("state"), nil); !errors.Is(err, store.ErrStaleState) {
		t.Fatalf("move again: %v, want ErrStaleState", err)
	}
	got, err = s.Conversation(ctx, c.ID)
	if err != nil || got.LegacyTree || string(got.FollowerState) != "state" {
		t.Fatalf("after the move %+v, %v", got, err)
	}
	if ns, err := s.Tree(ctx, c.ID, 0); err != nil || len(ns) != 2 || string(ns[1].Data) != "leaf2" {
		t.Fatalf("moved tree %+v, %v", ns, err)
	}
	if err := s.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}

// withoutTreeLog takes a database back from the tree log of schema
// version 15 (the tables, and the conversations' columns).
var withoutTreeLog = []string{
	`DROP TABLE tree_snapshots`,
	`DROP TABLE tree_snapshot_parts`,
	`DROP TABLE tree_changes`,
	`ALTER TABLE conversations DROP COLUMN tree_snapshot`,
	`ALTER TABLE conversations DROP COLUMN tree_snapshot_bytes`,
	`ALTER TABLE conversations DROP COLUMN tree_log_bytes`,
	`ALTER TABLE conversations DROP COLUMN tree_converted`,
}

// TestTreeLogMigration: migration 15 and ConvertTreeNodes move the node
// versions of tree_nodes (the layout of versions 10 to 14) into the tree
// log, and the trees of every kept epoch read as before; a version that
// only epochs before the floor needed is left behind.
func TestTreeLogMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "parley.db")
	s, err := Open(ctx, NewConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	id := storetest.TreeHistory(t, s)
	c, err := s.Conversation(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	before := map[uint64][]store.TreeNode{}
	var floor uint64
	for e := c.Epoch + 1; e > 0; e-- {
		ns, err := s.Tree(ctx, id, e-1)
		if errors.Is(err, store.ErrGone) {
			break // before the tree floor
		}
		if err != nil {
			t.Fatalf("tree at %d: %v", e-1, err)
		}
		before[e-1], floor = ns, e-1
	}
	if len(before) < 2 || floor == 0 {
		t.Fatalf("the trees of %d epochs kept from %d, want a history after a floor", len(before), floor)
	}
	s.Close()
	// Back to schema version 14: the floor's tree as versions at or
	// before it (one of them superseded), then each later epoch's
	// changes as versions of that epoch.
	stmts := append(slices.Clone(withoutTreeLog),
		`CREATE TABLE tree_nodes (id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL REFERENCES conversations(id), node INTEGER NOT NULL, epoch INTEGER NOT NULL, data BLOB)`,
		`CREATE UNIQUE INDEX tree_nodes_by_node ON tree_nodes (conversation_id, node, epoch)`,
		`DELETE FROM schema_migrations WHERE version = 15`,
		fmt.Sprintf(`INSERT INTO tree_nodes (conversation_id, node, epoch, data) VALUES (%d, 0, %d, x'6f6c64')`, id, floor-1),
	)
	version := func(e uint64, nd store.TreeNode) string {
		data := "NULL"
		if nd.Data != nil {
			data = fmt.Sprintf("x'%x'", nd.Data)
		}
		return fmt.Sprintf(`INSERT INTO tree_nodes (conversation_id, node, epoch, data) VALUES (%d, %d, %d, %s)`, id, nd.Index, e, data)
	}
	for _, nd := range before[floor] {
		stmts = append(stmts, version(floor, nd))
	}
	for e := floor + 1; e <= c.Epoch; e++ {
		for _, nd := range treeDiff(before[e-1], before[e]) {
			stmts = append(stmts, version(e, nd))
		}
	}
	execRaw(t, path, stmts...)
	if s, err = Open(ctx, NewConfig(path)); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.w.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'tree_nodes'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("tree_nodes after the move: %d tables, %v", n, err)
	}
	for e, want := range before {
		got, err := s.Tree(ctx, id, e)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("tree at %d after the move: %+v, %v; want %+v", e, got, err, want)
		}
		changes, err := s.TreeChanges(ctx, id, floor, e)
		if err != nil || !reflect.DeepEqual(changes, treeDiff(before[floor], want)) {
			t.Fatalf("changes from %d to %d after the move: %+v, %v; want %+v", floor, e, changes, err, treeDiff(before[floor], want))
		}
	}
	if _, err := s.Tree(ctx, id, floor-1); !errors.Is(err, store.ErrGone) {
		t.Fatalf("tree before the floor after the move: %v, want ErrGone", err)
	}
	// The conversation goes on in the log.
	if _, err := s.Commit(ctx, store.Commit{Conversation: id, Epoch: c.Epoch, Sender: "tree-history-1", Tree: []store.TreeNode{{Index: 0, Data: []byte("next")}}, TreeHistory: 3}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Tree(ctx, id, c.Epoch+1); err != nil || string(got[0].Data) != "next" {
		t.Fatalf("tree after a commit: %+v, %v", got, err)
	}
	if err := s.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}

// treeDiff returns the nodes that differ from a to b (sorted trees of
// non-blank nodes), blank ones with nil data.
func treeDiff(a, b []store.TreeNode) []store.TreeNode {
	m := map[uint32][]byte{}
	for _, nd := range a {
		m[nd.Index] = nd.Data
	}
	var out []store.TreeNode
	for _, nd := range b {
		if old, ok := m[nd.Index]; !ok || !bytes.Equal(old, nd.Data) {
			out = append(out, nd)
		}
		delete(m, nd.Index)
	}
	for x := range m {
		out = append(out, store.TreeNode{Index: x})
	}
	slices.SortFunc(out, func(x, y store.TreeNode) int { return cmp.Compare(x.Index, y.Index) })
	return out
}

// TestTreePruning: a commit deletes the snapshots and changes that no
// epoch from its tree floor on needs, so the rows stay bounded however
// many commits change the tree.
func TestTreePruning(t *testing.T) {
	ctx := context.Background()
	s, d, c := openTwoLeaves(t)
	const history = 3
	for e := range uint64(50) {
		changes := []store.TreeNode{{Index: 0, Data: fmt.Appendf(nil, "a%d", e+1)}, {Index: 1, Data: []byte("p")}}
		if e%2 == 1 {
			changes[1].Data = nil // blank again
		}
		if _, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: e, Sender: d.ID, Tree: changes, TreeHistory: history}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SnapshotTree(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	snapshots, changes := logRows(t, s, c.ID)
	// The snapshot at or before the floor (47) and the later ones, the
	// changes after it.
	if snapshots > history+2 || changes > 2*history+2 {
		t.Errorf("%d snapshots and %d changes after 50 commits with a history of %d epochs", snapshots, changes, history)
	}
	if ns, err := s.Tree(ctx, c.ID, 47); err != nil || len(ns) != 3 || string(ns[0].Data) != "a47" {
		t.Errorf("tree at the floor: %+v, %v", ns, err)
	}
	if _, err := s.Tree(ctx, c.ID, 46); !errors.Is(err, store.ErrGone) {
		t.Errorf("tree before the floor: %v, want ErrGone", err)
	}
}

// TestTreeSnapshots: SnapshotTree after every commit writes a snapshot
// when the changes since the last one add up to its size, so a tree
// that commits change little of gets few: what commits write stays about
// twice their changes.
func TestTreeSnapshots(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	_, d, err := s.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: []byte("k"), Device: store.Device{ID: "a-1", SignatureKey: []byte("s")}})
	if err != nil {
		t.Fatal(err)
	}
	const nodes, size, commits, changed = 200, 100, 300, 4
	tree := make([]store.TreeNode, nodes)
	for i := range tree {
		tree[i] = store.TreeNode{Index: uint32(2 * i), Data: bytes.Repeat([]byte{byte(i)}, size)}
	}
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Tree: tree, Creator: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	for e := range uint64(commits) {
		var ch []store.TreeNode
		for k := range changed {
			x := (int(e)*changed + k) % nodes
			tree[x].Data = fmt.Appendf(bytes.Repeat([]byte{'x'}, size-10), "%10d", e)
			ch = append(ch, tree[x])
		}
		if _, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: e, Sender: d.ID, Tree: ch, TreeHistory: commits}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SnapshotTree(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	snapshots, _ := logRows(t, s, c.ID)
	// Changes of 4 nodes (432 bytes) against a tree of 200 (21,600): a
	// snapshot every 50 commits, the first one included.
	if want := commits/(nodes/changed) + 1; snapshots != want {
		t.Errorf("%d snapshots after %d commits, want %d", snapshots, commits, want)
	}
	got, err := s.Tree(ctx, c.ID, commits)
	if err != nil || !reflect.DeepEqual(got, tree) {
		t.Fatalf("tree after %d commits: %d nodes, %v; want the %d written", commits, len(got), err, len(tree))
	}
}

// openTwoLeaves opens a store with a user's device and a conversation
// it created with a tree of two leaves.
func openTwoLeaves(t *testing.T) (*Store, store.Device, store.Conversation) {
	t.Helper()
	s := open(t)
	ctx := context.Background()
	_, d, err := s.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: []byte("k"), Device: store.Device{ID: "a-1", SignatureKey: []byte("s")}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Tree: []store.TreeNode{{Index: 0, Data: []byte("a")}, {Index: 2, Data: []byte("b")}}, Creator: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	return s, d, c
}

// logRows counts conversation id's snapshots and changes.
func logRows(t *testing.T, s *Store, id store.ConversationID) (snapshots, changes int) {
	t.Helper()
	if err := s.w.QueryRow(`SELECT count(*) FROM tree_snapshots WHERE conversation_id = ?`, id).Scan(&snapshots); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRow(`SELECT count(*) FROM tree_changes WHERE conversation_id = ?`, id).Scan(&changes); err != nil {
		t.Fatal(err)
	}
	return snapshots, changes
}

// TestBackupTrees: a backup holds the trees of a conversation's kept
// epochs (their snapshots and changes), and no more.
func TestBackupTrees(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	id := storetest.TreeHistory(t, s)
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := s.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	cp, err := Open(ctx, NewConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	storetest.SameTrees(t, s, cp, id)
	if err := cp.CheckInvariants(ctx); err != nil {
		t.Error(err)
	}
}

// execRaw runs statements on the closed store's file, outside the
// store: the tests take a database back to an older schema with it.
func execRaw(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestTreeSnapshotLeftovers: parts left by a snapshot that did not
// finish (parleyd killed between its transactions) are never read, are
// replaced by the next snapshot of their epoch, and are pruned with the
// history.
func TestTreeSnapshotLeftovers(t *testing.T) {
	ctx := context.Background()
	s, d, c := openTwoLeaves(t)
	commit := func(e uint64) {
		t.Helper()
		if _, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: e, Sender: d.ID, Tree: []store.TreeNode{{Index: 0, Data: fmt.Appendf(nil, "a%d", e+1)}, {Index: 2, Data: fmt.Appendf(nil, "b%d", e+1)}}, TreeHistory: 2}); err != nil {
			t.Fatal(err)
		}
	}
	commit(0)
	// An unfinished snapshot of epoch 1: a part with no header, and a
	// stray part of epoch 1 that a finished snapshot would not have.
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO tree_snapshot_parts (conversation_id, epoch, part, data) VALUES (%d, 1, 0, x'00')`, c.ID),
		fmt.Sprintf(`INSERT INTO tree_snapshot_parts (conversation_id, epoch, part, data) VALUES (%d, 1, 7, x'00')`, c.ID),
	} {
		if _, err := s.w.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if ns, err := s.Tree(ctx, c.ID, 1); err != nil || len(ns) != 2 || string(ns[0].Data) != "a1" {
		t.Fatalf("tree beside an unfinished snapshot: %+v, %v", ns, err)
	}
	if wrote, err := s.SnapshotTree(ctx, c.ID); err != nil || !wrote {
		t.Fatalf("snapshot over the leftovers: %v, %v", wrote, err)
	}
	if ns, err := s.Tree(ctx, c.ID, 1); err != nil || len(ns) != 2 || string(ns[1].Data) != "b1" {
		t.Fatalf("tree from the snapshot: %+v, %v", ns, err)
	}
	var parts int
	if err := s.w.QueryRow(`SELECT count(*) FROM tree_snapshot_parts WHERE conversation_id = ? AND epoch = 1`, c.ID).Scan(&parts); err != nil || parts != 1 {
		t.Fatalf("%d parts of epoch 1's snapshot (%v), want 1", parts, err)
	}
	// A leftover of epoch 2, never finished, goes with the history.
	if _, err := s.w.Exec(fmt.Sprintf(`INSERT INTO tree_snapshot_parts (conversation_id, epoch, part, data) VALUES (%d, 2, 0, x'00')`, c.ID)); err != nil {
		t.Fatal(err)
	}
	for e := uint64(1); e < 10; e++ {
		commit(e)
		if _, err := s.SnapshotTree(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.w.QueryRow(`SELECT count(*) FROM tree_snapshot_parts WHERE conversation_id = ? AND epoch <= 2`, c.ID).Scan(&parts); err != nil || parts != 0 {
		t.Fatalf("%d parts of epochs up to 2 after the floor passed them (%v)", parts, err)
	}
	if ns, err := s.Tree(ctx, c.ID, 10); err != nil || string(ns[0].Data) != "a10" {
		t.Fatalf("tree at the end: %+v, %v", ns, err)
	}
	if err := s.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
	// parleyd check finds a tree that cannot be read.
	var latest, last int64
	if err := s.w.QueryRow(`SELECT tree_snapshot, epoch FROM conversations WHERE id = ?`, c.ID).Scan(&latest, &last); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ del, want string }{
		{fmt.Sprintf(`DELETE FROM tree_changes WHERE conversation_id = %d AND epoch = %d`, c.ID, last), "an epoch's changes missing"},
		{fmt.Sprintf(`DELETE FROM tree_snapshot_parts WHERE conversation_id = %d AND epoch = %d`, c.ID, latest), "tree without its latest snapshot"},
	} {
		if _, err := s.w.Exec(tc.del); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckInvariants(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("after %s: %v, want %q", tc.del, err, tc.want)
		}
	}
}

// TestTreeSnapshotParts: a snapshot larger than a part is stored in
// several, each a whole number of nodes, and read back whole.
func TestTreeSnapshotParts(t *testing.T) {
	ctx := context.Background()
	s, d, _ := openTwoLeaves(t)
	tree := make([]store.TreeNode, 1500)
	for i := range tree {
		tree[i] = store.TreeNode{Index: uint32(2 * i), Data: bytes.Repeat([]byte{byte(i)}, 1000)}
	}
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("large"), Tree: tree, Creator: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	for i := range tree {
		tree[i].Data = bytes.Repeat([]byte{byte(i + 1)}, 1000)
	}
	if _, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 0, Sender: d.ID, Tree: tree, TreeHistory: 10}); err != nil {
		t.Fatal(err)
	}
	if wrote, err := s.SnapshotTree(ctx, c.ID); err != nil || !wrote {
		t.Fatalf("snapshot: %v, %v", wrote, err)
	}
	var parts, header int
	if err := s.w.QueryRow(`SELECT count(*) FROM tree_snapshot_parts WHERE conversation_id = ? AND epoch = 1`, c.ID).Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRow(`SELECT parts FROM tree_snapshots WHERE conversation_id = ? AND epoch = 1`, c.ID).Scan(&header); err != nil {
		t.Fatal(err)
	}
	if parts < 2 || header != parts {
		t.Fatalf("a 1.5 MB snapshot in %d parts, its header says %d", parts, header)
	}
	if got, err := s.Tree(ctx, c.ID, 1); err != nil || !reflect.DeepEqual(got, tree) {
		t.Fatalf("tree from its parts: %d nodes, %v; want the %d committed", len(got), err, len(tree))
	}
}
