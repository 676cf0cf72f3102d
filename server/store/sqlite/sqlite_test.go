package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
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
		if v, err := s.SchemaVersion(context.Background()); err != nil || v != 14 {
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
	execRaw(t, path,
		`DROP TABLE tree_nodes`,
		`ALTER TABLE conversations DROP COLUMN tree_floor`,
		`ALTER TABLE conversations DROP COLUMN legacy_tree`,
		`ALTER TABLE conversations ADD COLUMN tree BLOB NOT NULL DEFAULT x'01'`,
		`DELETE FROM schema_migrations WHERE version IN (10, 14)`,
	)
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

// TestTreeNodesRowidMigration: migration 14 moves the node versions of
// the WITHOUT ROWID layout into the rowid table unchanged, and the trees
// of every kept epoch read as before.
func TestTreeNodesRowidMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "parley.db")
	s, err := Open(ctx, NewConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	id := storetest.TreeHistory(t, s)
	before := map[uint64][]store.TreeNode{}
	c, err := s.Conversation(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for e := range c.Epoch + 1 {
		ns, err := s.Tree(ctx, id, e)
		if errors.Is(err, store.ErrGone) {
			continue // before the tree floor
		}
		if err != nil {
			t.Fatalf("tree at %d: %v", e, err)
		}
		before[e] = ns
	}
	if len(before) < 2 {
		t.Fatalf("%d epochs' trees kept, want a history", len(before))
	}
	var rows int
	if err := s.w.QueryRow(`SELECT count(*) FROM tree_nodes`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Back to schema version 13: the WITHOUT ROWID layout, same rows.
	execRaw(t, path,
		`CREATE TABLE tree_nodes_v13 (conversation_id INTEGER NOT NULL REFERENCES conversations(id), node INTEGER NOT NULL, epoch INTEGER NOT NULL, data BLOB, PRIMARY KEY (conversation_id, node, epoch)) WITHOUT ROWID`,
		`INSERT INTO tree_nodes_v13 SELECT conversation_id, node, epoch, data FROM tree_nodes`,
		`DROP TABLE tree_nodes`,
		`ALTER TABLE tree_nodes_v13 RENAME TO tree_nodes`,
		`DELETE FROM schema_migrations WHERE version = 14`,
	)
	if s, err = Open(ctx, NewConfig(path)); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var after int
	var ddl string
	if err := s.w.QueryRow(`SELECT count(*) FROM tree_nodes`).Scan(&after); err != nil || after != rows {
		t.Fatalf("%d node versions after the migration (%v), want %d", after, err, rows)
	}
	if err := s.w.QueryRow(`SELECT sql FROM sqlite_schema WHERE name = 'tree_nodes'`).Scan(&ddl); err != nil || strings.Contains(ddl, "WITHOUT ROWID") {
		t.Fatalf("tree_nodes after the migration: %q, %v", ddl, err)
	}
	for e, want := range before {
		got, err := s.Tree(ctx, id, e)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("tree at %d after the migration: %+v, %v; want %+v", e, got, err, want)
		}
	}
	if err := s.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTreePruning: a commit deletes the node versions that no epoch from
// its tree floor on needs, so the rows stay bounded however many commits
// change a node.
func TestTreePruning(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	_, d, err := s.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: []byte("k"), Device: store.Device{ID: "a-1", SignatureKey: []byte("s")}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Tree: []store.TreeNode{{Index: 0, Data: []byte("a")}, {Index: 2, Data: []byte("b")}}, Creator: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	const history = 3
	for e := range uint64(50) {
		changes := []store.TreeNode{{Index: 0, Data: fmt.Appendf(nil, "a%d", e+1)}, {Index: 1, Data: []byte("p")}}
		if e%2 == 1 {
			changes[1].Data = nil // blank again
		}
		if _, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: e, Sender: d.ID, Tree: changes, TreeHistory: history}); err != nil {
			t.Fatal(err)
		}
	}
	var rows int
	if err := s.w.QueryRow(`SELECT count(*) FROM tree_nodes WHERE conversation_id = ?`, c.ID).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	// Node 0: the versions of epochs 47 to 50; node 1: those of 48 to 50
	// but for a blank oldest; node 2: its one version.
	if rows > 2*(history+1)+1 {
		t.Errorf("%d node versions after 50 commits with a history of %d epochs", rows, history)
	}
	if ns, err := s.Tree(ctx, c.ID, 47); err != nil || len(ns) != 3 || string(ns[0].Data) != "a47" {
		t.Errorf("tree at the floor: %+v, %v", ns, err)
	}
}

// TestBackupTrees: a backup holds the trees of a conversation's kept
// epochs, node by node, and no more.
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
