package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/tlsutil"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/postgres"

	"github.com/parley-chat/parley/server/store/sqlite/sqlitetest"
)

// checkModes fails the test for every file under the roots that is not
// 0600 and every directory that is not 0700; it returns the names seen.
func checkModes(t *testing.T, roots ...string) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			seen[d.Name()] = true
			want := fs.FileMode(0o600)
			if fi.IsDir() {
				want = 0o700
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return seen
}

// TestDataFileModes checks that under umask 022 everything parleyd
// creates in a fresh data directory, while it runs and after it stopped,
// is 0600 (files) or 0700 (directories): the database with its -wal and
// -shm files, the TLS certificate and key, the first-start invite file,
// an attachment and its directories, and a backup.
func TestDataFileModes(t *testing.T) {
	old := syscall.Umask(0o022) // the tests of this package do not run in parallel
	t.Cleanup(func() { syscall.Umask(old) })
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startInProcess(t, nil, "--data-dir", dataDir)
	base := "https://" + s.addr
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: (&child{t: t, fingerprint: line(s.stdout.String(), "TLS certificate SHA-256 fingerprint: ")}).tlsConfig()}}

	// A user, a conversation, a message and an attachment.
	alice := newTestUser(t, "alice")
	alice.register(t, hc, base, line(s.stdout.String(), "admin invite: "))
	token := alice.login(t, hc, base, "localhost")
	group, conv := alice.createConversation(t, hc, base, token, "modes-group")
	msg, err := group.Encrypt([]byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var sent protocol.SendResponse
	doJSON(t, hc, "POST", fmt.Sprintf("%s/v1/conversations/%d/messages", base, conv.ID), token, protocol.SendRequest{Message: msg}, &sent, http.StatusOK)
	req, err := http.NewRequest("POST", base+"/v1/attachments", strings.NewReader("encrypted attachment"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload attachment: status %d", resp.StatusCode)
	}

	// A backup beside the running server, into the data directory.
	e, stdout, _ := testEnv(t, nil)
	runOK(t, e, stdout, "backup", "--data-dir", dataDir, filepath.Join(dataDir, "backup.db"))

	seen := checkModes(t, dataDir)
	for _, name := range []string{"parley.db", "parley.db-wal", "parley.db-shm", tlsutil.CertFile, tlsutil.KeyFile, bootstrapFile, "blobs", "tmp", "backup.db"} {
		if !seen[name] {
			t.Errorf("no %s in the data directory while parleyd runs", name)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	checkModes(t, dataDir)
}

// damageTable overwrites the root page of the table in the closed SQLite
// database at path with random bytes from a seed it logs
// (sqlitetest.CorruptTable).
func damageTable(t *testing.T, path, table string) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("damage seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	sqlitetest.CorruptTable(t, path, table, rng)
}

// seedLog adds a conversation of alice-dev1 (seedStore) with n entries.
func seedLog(t *testing.T, st store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	c, err := st.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Creator: "alice-dev1", Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var batch []store.NewEntry
	for range n {
		batch = append(batch, store.NewEntry{Conversation: c.ID, Sender: "alice-dev1", Data: bytes.Repeat([]byte{0xa5}, 200), Created: time.Now()})
	}
	if res, err := st.AppendEntries(ctx, batch); err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
}

// TestStartupCheckRefusesDamagedDatabase damages the log's pages of a
// database and expects start-up to fail, naming the file, the check and
// the way to restore; then that store_check_timeout skips the check (0)
// or abandons it when the budget runs out.
func TestStartupCheckRefusesDamagedDatabase(t *testing.T) {
	dir := t.TempDir()
	st := seedStore(t, dir, "alice")
	seedLog(t, st, 200)
	st.Close()
	path := filepath.Join(dir, "parley.db")
	damageTable(t, path, "entries")

	e, _, stderr := testEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	started := false
	e.ready = func(string) { started = true; cancel() }
	err := run(ctx, []string{"--listen", "127.0.0.1:0", "--data-dir", dir, "--tls-mode", "off"}, e)
	if started {
		t.Fatal("parleyd started on a damaged database")
	}
	var msg bytes.Buffer
	if code := exitCode(err, &msg); code != 1 {
		t.Errorf("exit code %d, want 1: %v", code, err)
	}
	for _, want := range []string{path + " is damaged", "quick_check", "restore from a backup", "parleyd backup", "docs/operations.md"} {
		if !strings.Contains(msg.String(), want) {
			t.Errorf("message lacks %q:\n%s", want, msg.String())
		}
	}
	if !strings.Contains(stderr.String(), "took=") {
		t.Errorf("the log does not say how long the check took:\n%s", stderr)
	}

	// A healthy database passes and the log says how long it took;
	// store_check_timeout = 0 skips the check; a budget that runs out
	// abandons it with a warning and parleyd starts.
	dir2 := t.TempDir()
	seedStore(t, dir2, "alice").Close()
	for _, tc := range []struct{ budget, log string }{
		{"1m", "start-up integrity check passed"},
		{"0", "start-up integrity check skipped"},
		{"1ns", "did not finish within store_check_timeout"},
	} {
		s := startInProcess(t, nil, "--data-dir", dir2, "--tls-mode", "off", "--store-check-timeout", tc.budget)
		if logs := s.stderr.String(); !strings.Contains(logs, tc.log) || tc.budget != "0" && !strings.Contains(logs, "took=") {
			t.Errorf("store_check_timeout %s: the log lacks %q or the time taken:\n%s", tc.budget, tc.log, logs)
		}
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAdminCheck checks `parleyd admin check`: ok on a healthy store, the
// broken invariant (and foreign key) of a row crafted in the SQLite file,
// and the damage of a page.
func TestAdminCheck(t *testing.T) {
	dir := t.TempDir()
	st := seedStore(t, dir, "alice", "bob")
	seedLog(t, st, 20)
	e, stdout, _ := testEnv(t, map[string]string{"PARLEY_DATA_DIR": dir})
	if out := runOK(t, e, stdout, "admin", "check"); !strings.HasPrefix(out, "ok: ") {
		t.Errorf("healthy store: %q", out)
	}

	// bob's row disappears behind the store's back: his device now
	// belongs to a missing user.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "parley.db")+"?_pragma=foreign_keys(0)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM users WHERE name = 'bob'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := len(stdout.String())
	err = run(context.Background(), []string{"admin", "check"}, e)
	out := stdout.String()[before:]
	var msg bytes.Buffer
	if code := exitCode(err, &msg); code != 1 {
		t.Errorf("exit code %d, want 1: %v", code, err)
	}
	for _, want := range []string{"device of a missing user: [bob-dev1]", "foreign_key_check: row"} {
		if !strings.Contains(out, want) {
			t.Errorf("findings lack %q:\n%s", want, out)
		}
	}
	if !strings.Contains(msg.String(), "failed its consistency check") {
		t.Errorf("message: %s", msg.String())
	}

	// A damaged page is reported before the store is opened.
	st.Close()
	damageTable(t, filepath.Join(dir, "parley.db"), "entries")
	before = len(stdout.String())
	err = run(context.Background(), []string{"admin", "check"}, e)
	out = stdout.String()[before:]
	msg.Reset()
	if code := exitCode(err, &msg); code != 1 || !strings.Contains(out, "integrity_check: ") || !strings.Contains(msg.String(), "is damaged") || !strings.Contains(msg.String(), "restore from a backup") {
		t.Errorf("damaged page: exit %d, output %q, message %q", code, out, msg.String())
	}
}

// TestAdminCheckPostgres checks `parleyd admin check` on a PostgreSQL
// store: ok when healthy, the finding of a cursor moved beyond the log
// head behind the store's back.
func TestAdminCheckPostgres(t *testing.T) {
	dsn := clusterPostgres(t)
	schema := clusterSchema(t, dsn)
	ctx := context.Background()
	pc := postgres.NewConfig(dsn)
	pc.Schema = schema
	st, err := postgres.Open(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, d, err := st.CreateUser(ctx, store.NewUser{Name: "alice", IdentityKey: []byte("k"), Created: time.Now(),
		Device: store.Device{ID: "alice-dev1", SignatureKey: []byte("s"), Created: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g"), Creator: d.ID, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	e, stdout, _ := testEnv(t, nil)
	args := []string{"admin", "check", "--store", dsn, "--store-schema", schema}
	if out := runOK(t, e, stdout, args...); !strings.HasPrefix(out, "ok: ") {
		t.Errorf("healthy store: %q", out)
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "members"}.Sanitize()+` SET cursor = 99 WHERE conversation_id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}
	before := len(stdout.String())
	err = run(ctx, args, e)
	out := stdout.String()[before:]
	var msg bytes.Buffer
	if code := exitCode(err, &msg); code != 1 || !strings.Contains(out, fmt.Sprintf("cursor beyond the log head: [%d]", c.ID)) {
		t.Errorf("broken invariant: exit %d, output %q, message %q", code, out, msg.String())
	}
}
