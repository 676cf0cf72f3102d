package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
	sstore "github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/postgres"
	"github.com/parley-chat/parley/server/store/sqlite"
)

// A conversation stored before ratchet trees were stored apart from the
// follower state keeps its whole tree in conversations.follower_state
// (mls.PublicGroup.MarshalBinary) with legacy_tree = 1 and no stored
// tree. parleyd moves such trees into the tree log when it starts. These
// tests turn a conversation that parleyd stored back into that layout
// while parleyd is stopped, start it again, and check that the members
// go on: send, commit, add a member who joins with the tree the server
// serves, and read each other.

// legacyBackend is a store parleyd runs on and the test opens directly.
type legacyBackend struct {
	args  []string                        // args are parleyd's store flags.
	open  func(t *testing.T) *sql.DB      // open opens the store's database.
	store func(t *testing.T) sstore.Store // store opens it as parleyd does.
}

// sqliteLegacyBackend is the SQLite file of the data directory.
func sqliteLegacyBackend(dataDir string) legacyBackend {
	path := filepath.Join(dataDir, "parley.db")
	return legacyBackend{open: func(t *testing.T) *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		return db
	}, store: func(t *testing.T) sstore.Store {
		st, err := sqlite.Open(context.Background(), sqlite.NewConfig(path))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}}
}

// TestLegacyTreesMoved runs the conversion on parleyd's SQLite store.
func TestLegacyTreesMoved(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	testLegacyTreesMoved(t, dataDir, sqliteLegacyBackend(dataDir))
}

// TestLegacyTreesMovedPostgres runs the conversion on a PostgreSQL store
// (a fresh schema of the test database).
func TestLegacyTreesMovedPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the parleyd binary")
	}
	dsn := clusterPostgres(t)
	schema := clusterSchema(t, dsn)
	testLegacyTreesMoved(t, filepath.Join(t.TempDir(), "data"), legacyBackend{
		args: []string{"--store", withQuery(t, dsn, "schema", schema)},
		open: func(t *testing.T) *sql.DB {
			db, err := sql.Open("pgx", withQuery(t, dsn, "search_path", schema))
			if err != nil {
				t.Fatal(err)
			}
			return db
		},
		store: func(t *testing.T) sstore.Store {
			c := postgres.NewConfig(dsn)
			c.Schema = schema
			st, err := postgres.Open(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	})
}

func testLegacyTreesMoved(t *testing.T, dataDir string, be legacyBackend) {
	start := time.Now()
	bin := buildParleyd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A fixed port, so that the clients find the restarted server.
	args := append([]string{"--listen", "127.0.0.1:" + strconv.Itoa(freePort(t)), "--open-registration",
		"--rate-limits-requests-per-ip-per-second", "1e6", "--rate-limits-requests-per-ip-burst", "1000000",
		"--rate-limits-requests-per-user-per-second", "1e6", "--rate-limits-requests-per-user-burst", "1000000",
		"--rate-limits-auth-per-ip-per-second", "1e6", "--rate-limits-auth-per-ip-burst", "1000000",
		"--rate-limits-register-per-ip-per-second", "1e6", "--rate-limits-register-per-ip-burst", "1000000",
	}, be.args...)
	p := startParleyd(t, bin, dataDir, args...)

	members := map[string]*legacyMember{}
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		m := &legacyMember{t: t, name: name, dir: t.TempDir()}
		m.open(p)
		if _, err := m.c.Register(ctx, p.url, "", name); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		members[name] = m
	}
	alice, bob, carol, dave := members["alice"], members["bob"], members["carol"], members["dave"]
	three := []*legacyMember{alice, bob, carol}

	// Three members, two epochs' worth of tree rows, messages both ways.
	conv, err := alice.c.NewGroup(ctx, "legacy", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	syncAll(ctx, t, bob, carol)
	if err := bob.c.SelfUpdate(ctx, conv); err != nil {
		t.Fatalf("bob's self-update before the restart: %v", err)
	}
	for _, m := range three {
		m.send(ctx, conv, "before from "+m.name)
	}
	syncAll(ctx, t, three...)
	for _, m := range three {
		m.wantTexts(ctx, conv, "before from alice", "before from bob", "before from carol")
	}

	for _, m := range members {
		m.close()
	}
	if err := p.stop(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatalf("stop parleyd: %v", err)
	}
	db := be.open(t)
	defer db.Close()
	st := be.store(t)
	epoch, nodes, legacy := makeLegacyTree(ctx, t, db, st, int64(conv))
	st.Close()
	t.Logf("conversation %d at epoch %d: %d tree nodes put back into a %d-byte follower state", conv, epoch, nodes, len(legacy))

	p = startParleyd(t, bin, dataDir, args...)
	if !logHas(p.stderr.String(), `msg="conversation tree stored apart from its follower state"`, fmt.Sprintf("conversation=%d epoch=%d nodes=%d", conv, epoch, nodes)) ||
		!logHas(p.stderr.String(), `msg="stored conversation trees apart from their follower state"`, "conversations=1") {
		t.Errorf("the start log does not report conversation %d's tree moved:\n%s", conv, p.stderr)
	}
	var flag, rows int
	var state []byte
	if err := db.QueryRowContext(ctx, `SELECT legacy_tree, follower_state FROM conversations WHERE id = $1`, int64(conv)).Scan(&flag, &state); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM tree_snapshots WHERE conversation_id = $1 AND epoch = $2`, int64(conv), epoch).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if flag != 0 || rows != 1 || len(state) >= len(legacy) {
		t.Errorf("after the start: legacy_tree %d, %d tree snapshots at epoch %d (want 0 and 1), follower state of %d bytes (the whole tree's was %d)",
			flag, rows, epoch, len(state), len(legacy))
	}

	// The members go on with the moved tree: a message, a commit that
	// the server follows from the stored nodes, an add whose Welcome
	// the new member joins with the tree the server builds from them.
	for _, m := range members {
		m.open(p)
	}
	bob.send(ctx, conv, "after from bob")
	if err := carol.c.SelfUpdate(ctx, conv); err != nil {
		t.Fatalf("carol's self-update after the move: %v", err)
	}
	syncAll(ctx, t, alice, bob)
	if err := alice.c.Add(ctx, conv, "dave"); err != nil {
		t.Fatalf("alice adds dave after the move: %v", err)
	}
	syncAll(ctx, t, bob, carol, dave)
	cv, err := dave.c.Conversation(ctx, conv)
	if err != nil {
		t.Fatalf("dave did not join: %v\n%s", err, dave.logs)
	}
	if !slices.Equal(cv.Members, []string{"alice", "bob", "carol", "dave"}) {
		t.Errorf("dave sees the members %v", cv.Members)
	}
	all := []*legacyMember{alice, bob, carol, dave}
	for _, m := range all {
		m.send(ctx, conv, "last from "+m.name)
	}
	syncAll(ctx, t, all...)
	last := []string{"last from alice", "last from bob", "last from carol", "last from dave"}
	for _, m := range three {
		m.wantTexts(ctx, conv, append([]string{"before from alice", "before from bob", "before from carol", "after from bob"}, last...)...)
	}
	dave.wantTexts(ctx, conv, last...)
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM conversations WHERE legacy_tree <> 0`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("%d conversations still legacy, %v", rows, err)
	}
	for _, m := range members {
		m.close()
	}
	if err := p.stop(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	t.Logf("%v", time.Since(start).Round(time.Millisecond))
}

// makeLegacyTree turns conversation id into the layout of a store written
// before trees were stored apart from the follower state: the whole
// group, tree included, in follower_state, legacy_tree set and no tree
// rows. It reads the tree through st and returns the conversation's
// epoch, the count of its tree's non-blank nodes and the new follower
// state.
func makeLegacyTree(ctx context.Context, t *testing.T, db *sql.DB, st sstore.Store, id int64) (uint64, int, []byte) {
	t.Helper()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var epoch uint64
	var state []byte
	if err := tx.QueryRowContext(ctx, `SELECT epoch, follower_state FROM conversations WHERE id = $1`, id).Scan(&epoch, &state); err != nil {
		t.Fatalf("conversation %d: %v", id, err)
	}
	tree, err := st.Tree(ctx, sstore.ConversationID(id), epoch)
	if err != nil {
		t.Fatalf("tree of conversation %d: %v", id, err)
	}
	nodes := make([]mls.TreeNode, len(tree))
	for i, nd := range tree {
		nodes[i] = mls.TreeNode{Index: nd.Index, Data: nd.Data}
	}
	pg, err := mls.LoadPublicGroupTree(nil, state, nodes)
	if err != nil {
		t.Fatalf("rebuild the group of conversation %d: %v", id, err)
	}
	whole, err := pg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE conversations SET follower_state = $1, legacy_tree = 1, tree_floor = 0, tree_snapshot = 0, tree_snapshot_bytes = 0, tree_log_bytes = 0 WHERE id = $2`, []any{whole, id}},
		{`DELETE FROM tree_snapshots WHERE conversation_id = $1`, []any{id}},
		{`DELETE FROM tree_snapshot_parts WHERE conversation_id = $1`, []any{id}},
		{`DELETE FROM tree_changes WHERE conversation_id = $1`, []any{id}},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return epoch, len(nodes), whole
}

// legacyMember is a user with one client profile.
type legacyMember struct {
	t    *testing.T
	name string
	dir  string
	c    *client.Client
	logs *syncBuffer
}

// open opens the member's profile on the server.
func (m *legacyMember) open(p *child) {
	m.t.Helper()
	m.logs = &syncBuffer{}
	c, err := client.Open(context.Background(), client.Config{
		ProfileDir: m.dir, Passphrase: []byte("passphrase of " + m.name),
		KDF:       store.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1},
		ServerURL: p.url, TLSFingerprint: p.fingerprint,
		Logger:             slog.New(slog.NewTextHandler(m.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		SelfUpdateMessages: -1, SelfUpdateInterval: -1,
	})
	if err != nil {
		m.t.Fatalf("open %s: %v", m.name, err)
	}
	m.c = c
	m.t.Cleanup(m.close)
}

func (m *legacyMember) close() {
	if m.c != nil {
		m.c.Close()
		m.c = nil
	}
}

func (m *legacyMember) send(ctx context.Context, conv protocol.ConversationID, text string) {
	m.t.Helper()
	if _, err := m.c.Send(ctx, conv, text, client.SendOptions{}); err != nil {
		m.t.Fatalf("%s sends %q: %v", m.name, text, err)
	}
}

// wantTexts checks that the member's history holds the texts.
func (m *legacyMember) wantTexts(ctx context.Context, conv protocol.ConversationID, want ...string) {
	m.t.Helper()
	ms, err := m.c.Messages(ctx, conv, 0, 0)
	if err != nil {
		m.t.Fatalf("%s's messages: %v", m.name, err)
	}
	var got []string
	for _, msg := range ms {
		if msg.Text != "" {
			got = append(got, msg.Text)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			m.t.Errorf("%s did not read %q; history %q\n%s", m.name, w, got, m.logs)
		}
	}
}

// logHas reports whether a line of the log holds all the parts.
func logHas(log string, parts ...string) bool {
	for line := range strings.Lines(log) {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			return true
		}
	}
	return false
}

// syncAll syncs the members' clients with the server.
func syncAll(ctx context.Context, t *testing.T, ms ...*legacyMember) {
	t.Helper()
	for _, m := range ms {
		if err := m.c.Sync(ctx); err != nil {
			t.Fatalf("%s syncs: %v", m.name, err)
		}
	}
}
