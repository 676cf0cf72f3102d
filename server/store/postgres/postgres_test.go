package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/storetest"
)

// defaultTestDSN is the local PostgreSQL of the build machines.
const defaultTestDSN = testenv.DefaultPostgres

// testDSN returns the database of the tests: $PARLEY_TEST_POSTGRES or the
// local default.
func testDSN() string { return testenv.PostgresURL() }

// admin connects to the test database for setup. When it is unreachable
// the test is skipped, or fails under CI=true (testenv).
func admin(t testing.TB) *pgx.Conn {
	t.Helper()
	dsn := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		err = conn.Ping(ctx)
	}
	if err != nil {
		testenv.Unavailable(t, testenv.NeedPostgres, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// freshSchema returns the name of a new random schema, created when create
// is set, and dropped with everything in it when the test ends.
func freshSchema(t testing.TB, create bool) string {
	t.Helper()
	conn := admin(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "parley_test_" + hex.EncodeToString(b)
	if create {
		if _, err := conn.Exec(context.Background(), `CREATE SCHEMA `+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Fatalf("create schema %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// openSchema opens a store on the schema; the test closes it.
func openSchema(t testing.TB, schema string) *Store {
	t.Helper()
	c := NewConfig(testDSN())
	c.Schema = schema
	c.MaxConns = 8
	s, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// open opens a store on a fresh schema and closes it at the end.
func open(t testing.TB) *Store {
	t.Helper()
	s := openSchema(t, freshSchema(t, true))
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	admin(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		// The schema is dropped after Run's cleanup has checked the
		// invariants and closed the store (cleanups run last-in first-out).
		return openSchema(t, freshSchema(t, true))
	})
}

func TestConfig(t *testing.T) {
	for _, c := range []Config{
		{},
		{DSN: defaultTestDSN, MaxConns: 1},
		{DSN: defaultTestDSN, Schema: "s", MaxConns: 0},
		{DSN: defaultTestDSN, Schema: "s", MaxConns: 2, MinConns: 3},
		{DSN: defaultTestDSN, Schema: string(make([]byte, 64)), MaxConns: 1},
		{DSN: "postgres://x:badport/db", Schema: "s", MaxConns: 1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("config %+v validated", c)
		}
	}
	if err := NewConfig(defaultTestDSN).Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
}

// TestMigrateConcurrently starts several nodes at once on a schema that
// does not exist yet: all open, and every migration is applied once.
func TestMigrateConcurrently(t *testing.T) {
	schema := freshSchema(t, false)
	const nodes = 4
	stores := make([]*Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			c := NewConfig(testDSN())
			c.Schema, c.MaxConns = schema, 2
			stores[i], errs[i] = Open(context.Background(), c)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	ms, _ := loadMigrations()
	var n int
	if err := stores[0].pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Errorf("%d migration records (%v), want %d", n, err, len(ms))
	}
	if v, err := stores[1].SchemaVersion(context.Background()); err != nil || v != ms[len(ms)-1].Version {
		t.Errorf("schema version %d, %v", v, err)
	}
	// Nothing leaked into public.
	var leaked int
	stores[0].pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('users', 'entries', 'schema_migrations')`).Scan(&leaked)
	if leaked != 0 {
		t.Errorf("%d parley tables in schema public", leaked)
	}
	// Reopening applies nothing.
	s := openSchema(t, schema)
	s.Close()
	if err := s.Ping(context.Background()); err == nil {
		t.Error("ping on a closed store succeeded")
	}
}

// TestTwoNodes runs two Stores on one schema, as two parleyd nodes: they
// race commits for the same epoch and claims for the same user.
func TestTwoNodes(t *testing.T) {
	schema := freshSchema(t, true)
	nodes := []*Store{openSchema(t, schema), openSchema(t, schema)}
	for _, s := range nodes {
		defer s.Close()
	}
	ctx := context.Background()
	a, b := nodes[0], nodes[1]
	u, d, err := a.CreateUser(ctx, store.NewUser{Name: "alice", IdentityKey: []byte("k"), Device: store.Device{ID: "alice-1", SignatureKey: []byte("s1")}})
	if err != nil {
		t.Fatal(err)
	}
	const racers = 16
	var devs []store.DeviceID
	for i := range racers {
		dv, err := nodes[i%2].AddDevice(ctx, store.Device{ID: store.DeviceID(fmt.Sprint("new-", i)), User: u.ID, SignatureKey: []byte(fmt.Sprint("key-", i))})
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, dv.ID)
	}
	c, err := b.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Creator: d.ID})
	if err != nil {
		t.Fatal(err)
	}

	// Commits: several rounds, every racer on alternating nodes names
	// the same epoch; exactly one per epoch wins.
	for epoch := range uint64(5) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, racers)
		for i := range racers {
			wg.Go(func() {
				<-start
				_, errs[i] = nodes[i%2].Commit(ctx, store.Commit{Conversation: c.ID, Epoch: epoch, Sender: d.ID, Data: []byte("c"),
					GroupInfo: []byte(fmt.Sprint(i)), Add: []store.DeviceID{devs[i]}, Welcomes: []store.Welcome{{Device: devs[i], Data: []byte("w")}}})
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		for i, err := range errs {
			if err == nil {
				winners++
			} else if cur, ok := store.CurrentEpoch(err); !ok || cur != epoch+1 {
				t.Errorf("epoch %d: racer %d: %v", epoch, i, err)
			}
		}
		if winners != 1 {
			t.Fatalf("epoch %d: %d commits accepted, want 1", epoch, winners)
		}
		got, err := a.Conversation(ctx, c.ID)
		if err != nil || got.Epoch != epoch+1 || got.Head != epoch+1 {
			t.Fatalf("after epoch %d: %+v %v", epoch, got, err)
		}
	}

	// Appends from both nodes interleave without gaps or duplicates.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 10 {
				batch := make([]store.NewEntry, 10)
				for j := range batch {
					batch[j] = store.NewEntry{Conversation: c.ID, Sender: d.ID, Data: []byte("m")}
				}
				if _, err := nodes[i%2].AppendEntries(ctx, batch); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, _ := b.Conversation(ctx, c.ID); got.Head != 5+800 {
		t.Errorf("head %d after 800 appends, want 805", got.Head)
	}

	// Claims: 40 one-time packages per device for 3 devices plus a last
	// resort for one; 2 nodes × 6 claimers × 10 claims.
	v, vd, err := a.CreateUser(ctx, store.NewUser{Name: "bob", IdentityKey: []byte("k"), Device: store.Device{ID: "bob-1", SignatureKey: []byte("b1")}})
	if err != nil {
		t.Fatal(err)
	}
	vdevs := []store.DeviceID{vd.ID}
	for i := 2; i <= 3; i++ {
		dv, err := b.AddDevice(ctx, store.Device{ID: store.DeviceID(fmt.Sprint("bob-", i)), User: v.ID, SignatureKey: []byte(fmt.Sprint("b", i))})
		if err != nil {
			t.Fatal(err)
		}
		vdevs = append(vdevs, dv.ID)
	}
	const perDevice = 40
	var kps []store.KeyPackage
	for _, dv := range vdevs {
		for i := range perDevice {
			kps = append(kps, store.KeyPackage{Ref: []byte(fmt.Sprintf("%s/%03d", dv, i)), Device: dv, Suite: 1, Data: []byte("kp")})
		}
	}
	kps = append(kps, store.KeyPackage{Ref: []byte("lr"), Device: vd.ID, Suite: 1, Data: []byte("kp"), LastResort: true})
	if err := a.AddKeyPackages(ctx, kps); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	claims := 0
	for i := range 12 {
		wg.Go(func() {
			for range 10 {
				got, err := nodes[i%2].ClaimKeyPackages(ctx, v.ID, 1, time.Time{})
				if err != nil && !errors.Is(err, store.ErrNoKeyPackage) {
					t.Errorf("claim: %v", err)
					return
				}
				mu.Lock()
				claims++
				for _, k := range got {
					seen[string(k.Ref)]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for ref, n := range seen {
		if ref != "lr" && n > 1 {
			t.Errorf("package %s handed out %d times", ref, n)
		}
	}
	// 120 claims: bob-1 gets its 40 then the last resort 80 times; the
	// others run dry after 40 each.
	if len(seen) != 3*perDevice+1 || seen["lr"] != claims-perDevice {
		t.Errorf("%d distinct packages claimed in %d claims, last resort %d times", len(seen), claims, seen["lr"])
	}
	for _, s := range nodes {
		if err := s.CheckInvariants(ctx); err != nil {
			t.Error(err)
		}
	}
}

// TestCheckInvariantsDetects corrupts the database behind the store's back
// and expects the invariant check to notice.
func TestCheckInvariantsDetects(t *testing.T) {
	for _, corrupt := range []string{
		`UPDATE members SET cursor = 99`,
		`INSERT INTO entries (conversation_id, seq, kind, sender, data, created) VALUES (1, 5, 1, 'a-1', '\x00', 0)`,
		`UPDATE conversations SET head = 0`,
		`INSERT INTO inbox (device_id, seq, conversation_id, data, created) VALUES ('a-1', 7, 1, '', 0)`,
		`UPDATE conversations SET proposals = 1`,
		`INSERT INTO pending_proposals (conversation_id, idx, epoch, data, created) SELECT id, 0, 0, '\x00', 0 FROM conversations`,
		`INSERT INTO blobs (id, owner, size, sha256, created, expires) SELECT 'b', id, 1, '\x00', 10, 10 FROM users`,
	} {
		s := open(t)
		ctx := context.Background()
		_, d, err := s.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: []byte("k"), Device: store.Device{ID: "a-1", SignatureKey: []byte("s")}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Creator: d.ID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEntries(ctx, []store.NewEntry{{Conversation: c.ID, Sender: d.ID, Data: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckInvariants(ctx); err != nil {
			t.Fatalf("clean database: %v", err)
		}
		if _, err := s.pool.Exec(ctx, corrupt); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckInvariants(ctx); err == nil {
			t.Errorf("corruption %q not detected", corrupt)
		}
	}
}

// TestBackupRestore restores a backup with psql into another schema and
// compares the two.
func TestBackupRestore(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed")
	}
	ctx := context.Background()
	src := open(t)
	u, d, err := src.CreateUser(ctx, store.NewUser{Name: "a\tb\\c", IdentityKey: []byte{0, 1, '\n', 255}, Device: store.Device{ID: "a-1", SignatureKey: []byte("s")}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := src.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Creator: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.AppendEntries(ctx, []store.NewEntry{{Conversation: c.ID, Sender: d.ID, Data: []byte("x\ny")}, {Conversation: c.ID, Sender: d.ID, Data: nil}}); err != nil {
		t.Fatal(err)
	}
	if err := src.AddKeyPackages(ctx, []store.KeyPackage{{Ref: []byte("r"), Device: d.ID, Suite: 1, Data: []byte("kp"), LastResort: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Propose(ctx, store.Proposal{Conversation: c.ID, Sender: d.ID, Data: []byte("p\x00"), Digest: []byte{0, 1}}); err != nil {
		t.Fatal(err)
	}
	// Trees stored as changes and snapshots over several epochs, some
	// dropped, and a conversation whose tree is still whole in its
	// follower state.
	trees := storetest.TreeHistory(t, src)
	legacy, err := src.CreateConversation(ctx, store.NewConversation{GroupID: []byte("legacy"), FollowerState: []byte("whole"), Creator: d.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.pool.Exec(ctx, `UPDATE conversations SET legacy_tree = 1 WHERE id = $1`, legacy.ID); err != nil {
		t.Fatal(err)
	}
	blobExpires := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	if err := src.CreateBlob(ctx, store.Blob{ID: "b", Owner: u.ID, Size: 3, SHA256: []byte("h"), Created: blobExpires.Add(-time.Hour), Expires: blobExpires}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup.sql")
	if err := src.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	dstSchema := freshSchema(t, true)
	dst := openSchema(t, dstSchema)
	defer dst.Close()
	cmd := exec.CommandContext(ctx, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", testDSN(), "-f", path)
	cmd.Env = append(os.Environ(), "PGOPTIONS=-c search_path="+dstSchema)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("psql restore: %v\n%s", err, out)
	}
	s1, _ := src.Stats(ctx)
	s2, _ := dst.Stats(ctx)
	if s1 != s2 {
		t.Errorf("stats %+v after restore, want %+v", s2, s1)
	}
	got, err := dst.User(ctx, u.ID)
	if err != nil || got.Name != u.Name || string(got.IdentityKey) != string(u.IdentityKey) {
		t.Errorf("restored user %+v %v", got, err)
	}
	if got, err := dst.Conversation(ctx, c.ID); err != nil || got.Proposals != 1 || got.ProposalBytes != 2 || string(got.ProposalsDigest) != "\x00\x01" {
		t.Errorf("restored conversation %+v %v", got, err)
	}
	if ps, err := dst.PendingProposals(ctx, c.ID, 0, 0, 1); err != nil || len(ps) != 1 || string(ps[0].Data) != "p\x00" {
		t.Errorf("restored pending proposals %+v %v", ps, err)
	}
	if b, err := dst.Blob(ctx, "b"); err != nil || !b.Expires.Equal(blobExpires) {
		t.Errorf("restored blob %+v %v, want expiry %v", b, err, blobExpires)
	}
	es, _ := dst.Entries(ctx, c.ID, 0, -1)
	if len(es) != 3 || string(es[0].Data) != "x\ny" || es[1].Seq != 2 {
		t.Errorf("restored entries %+v", es)
	}
	storetest.SameTrees(t, src, dst, trees)
	if ids, err := dst.LegacyTrees(ctx); err != nil || len(ids) != 1 || ids[0] != legacy.ID {
		t.Errorf("restored legacy trees %v, %v; want [%d]", ids, err, legacy.ID)
	}
	// Ids continue after the restored ones.
	c2, err := dst.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g2"), Creator: d.ID})
	if err != nil || c2.ID <= legacy.ID {
		t.Errorf("new conversation after restore: %+v %v", c2, err)
	}
	if err := dst.CheckInvariants(ctx); err != nil {
		t.Error(err)
	}
}

// TestBackupColumns: a backup copies every column of every table, so that
// a column added by a migration is not lost on restore.
func TestBackupColumns(t *testing.T) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	rows, _ := s.pool.Query(ctx, `SELECT table_name, string_agg(column_name, ', ' ORDER BY column_name) FROM information_schema.columns
		WHERE table_schema = $1 AND table_name <> 'schema_migrations' GROUP BY table_name`, s.schema)
	tables := map[string]string{}
	var name, cols string
	if _, err := pgx.ForEachRow(rows, []any{&name, &cols}, func() error { tables[name] = cols; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(tables) == 0 {
		t.Fatal("no tables found")
	}
	for _, bt := range backupTables {
		want, ok := tables[bt.name]
		if !ok {
			t.Errorf("backup copies table %s, which the schema does not have", bt.name)
			continue
		}
		got := strings.Split(bt.cols, ", ")
		slices.Sort(got)
		if strings.Join(got, ", ") != want {
			t.Errorf("backup copies %s (%s), the table has (%s)", bt.name, strings.Join(got, ", "), want)
		}
		delete(tables, bt.name)
	}
	for name := range tables {
		t.Errorf("table %s is not in the backup", name)
	}
}

// TestSchemaName opens a store on a schema whose name needs quoting.
func TestSchemaName(t *testing.T) {
	conn := admin(t)
	b := make([]byte, 4)
	rand.Read(b)
	name := `Parley "Test" ` + hex.EncodeToString(b)
	t.Cleanup(func() {
		conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`)
	})
	s := openSchema(t, name)
	defer s.Close()
	ctx := context.Background()
	if _, _, err := s.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: []byte("k"), Device: store.Device{ID: "a-1", SignatureKey: []byte("s")}}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM `+pgx.Identifier{name, "users"}.Sanitize()).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d users in schema %q: %v", n, name, err)
	}
}
