package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/client/store/storetest"
)

// cheap are Argon2id parameters that keep tests fast.
var cheap = store.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}

func passOpts(p string) Options { return Options{Passphrase: []byte(p), KDF: cheap} }

func openStore(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func update(t *testing.T, s *Store, fn func(store.Tx) error) {
	t.Helper()
	storetest.Update(t, s, fn)
}

func view(t *testing.T, s *Store, fn func(store.Tx) error) {
	t.Helper()
	storetest.View(t, s, fn)
}

var (
	mid = storetest.MID
	now = storetest.Now
)

// fill writes one record of every kind (storetest.Fill).
func fill(t *testing.T, s *Store) {
	t.Helper()
	storetest.Fill(t, s)
}

// check verifies what fill wrote (storetest.Check).
func check(t *testing.T, s *Store) {
	t.Helper()
	storetest.Check(t, s)
}

func TestWrongPassphrase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := openStore(t, path, passOpts("right"))
	fill(t, s)
	s.Close()
	_, err := Open(context.Background(), path, passOpts("wrong"))
	if !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("Open with a wrong passphrase: %v, want ErrWrongKey", err)
	}
	if bytes.Contains([]byte(err.Error()), []byte("wrong")) && bytes.Contains([]byte(err.Error()), []byte("right")) {
		t.Fatalf("error reveals a passphrase: %v", err)
	}
	t.Logf("wrong passphrase: %v", err)
	if _, err := Open(context.Background(), path, Options{KeyFile: filepath.Join(t.TempDir(), "k")}); err == nil {
		t.Fatal("a passphrase store opened with a key file")
	}
	if _, err := Open(context.Background(), path, Options{}); err == nil {
		t.Fatal("Open without a key")
	}
}

func TestDefaultKDFInHeader(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB Argon2id in -short mode")
	}
	path := filepath.Join(t.TempDir(), "store.db")
	s := openStore(t, path, Options{Passphrase: []byte("pw")})
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, want := range map[string]string{"kdf": "argon2id", "argon2id.time": "3", "argon2id.memory_kib": "65536", "argon2id.threads": "2"} {
		var got string
		if err := db.QueryRow(`SELECT CAST(value AS TEXT) FROM header WHERE name = ?`, name).Scan(&got); err != nil || got != want {
			t.Errorf("header %s = %q, %v; want %q", name, got, err, want)
		}
	}
	start := time.Now()
	openStore(t, path, Options{Passphrase: []byte("pw")})
	t.Logf("opening with the default Argon2id parameters took %v", time.Since(start))
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path, keyPath := filepath.Join(dir, "store.db"), filepath.Join(dir, "store.key")
	s := openStore(t, path, Options{KeyFile: keyPath})
	fill(t, s)
	s.Close()
	fi, err := os.Stat(keyPath)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != KeySize {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	check(t, openStore(t, path, Options{KeyFile: keyPath}))

	if err := os.Chmod(keyPath, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), path, Options{KeyFile: keyPath}); err == nil {
		t.Fatal("opened with a key file readable by group")
	} else {
		t.Logf("group-readable key file: %v", err)
	}
	os.Chmod(keyPath, 0o604)
	if _, err := Open(context.Background(), path, Options{KeyFile: keyPath}); err == nil {
		t.Fatal("opened with a key file readable by others")
	}
	os.Chmod(keyPath, 0o600)

	other := filepath.Join(dir, "other.key")
	if err := CreateKeyFile(other); err != nil {
		t.Fatal(err)
	}
	if err := CreateKeyFile(other); err == nil {
		t.Fatal("CreateKeyFile overwrote a file")
	}
	if _, err := Open(context.Background(), path, Options{KeyFile: other}); !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("other key file: %v, want ErrWrongKey", err)
	}
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("short"), 0o600)
	if _, err := Open(context.Background(), path, Options{KeyFile: short}); err == nil {
		t.Fatal("opened with a short key file")
	}
	if _, err := Open(context.Background(), path, Options{KeyFile: filepath.Join(dir, "missing.key")}); err == nil {
		t.Fatal("opened an existing store with a missing key file")
	}
	if _, err := Open(context.Background(), path, passOpts("pw")); err == nil {
		t.Fatal("a key file store opened with a passphrase")
	}
}

// rawDB opens the store file without the store, as an attacker would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRowsNotSwappable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := openStore(t, path, passOpts("pw"))
	fill(t, s)
	s.Close()
	db := rawDB(t, path)
	swaps := []struct{ table, key, a, b string }{
		{"messages", "seq", "1", "2"},
		{"groups", "conv", "1", "2"},
		{"conversations", "id", "1", "2"},
		{"keypackages", "hex(ref)", fmt.Sprintf("'%X'", "ref1"), fmt.Sprintf("'%X'", "ref2")},
		{"cursors", "conv", "0", "1"},
	}
	swap := func(table, key, a, b string) {
		t.Helper()
		var va, vb []byte
		q := fmt.Sprintf(`SELECT v FROM %s WHERE %s = `, table, key)
		if err := errors.Join(db.QueryRow(q+a).Scan(&va), db.QueryRow(q+b).Scan(&vb)); err != nil {
			t.Fatalf("swap %s: %v", table, err)
		}
		u := fmt.Sprintf(`UPDATE %s SET v = ? WHERE %s = `, table, key)
		if _, err := db.Exec(u+a, vb); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(u+b, va); err != nil {
			t.Fatal(err)
		}
	}
	for _, sw := range swaps {
		swap(sw.table, sw.key, sw.a, sw.b)
	}
	var hs []string
	rows, err := db.Query(`SELECT hex(h) FROM contacts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var h string
		rows.Scan(&h)
		hs = append(hs, "'"+h+"'")
	}
	rows.Close()
	swap("contacts", "hex(h)", hs[0], hs[1])
	db.Close()
	s = openStore(t, path, passOpts("pw"))
	view(t, s, func(tx store.Tx) error {
		_, e1 := tx.Messages(1, 0, 0)
		_, e2 := tx.GroupState(1)
		_, e3 := tx.Conversation(2)
		_, e4 := tx.KeyPackage([]byte("ref1"))
		_, e5 := tx.Cursor(1)
		for i, err := range []error{e1, e2, e3, e4, e5} {
			if !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("read %d after swap: %v, want ErrCorrupt", i+1, err)
			} else if i == 0 {
				t.Logf("swapped messages: %v", err)
			}
		}
		// Swapped contacts fail the trust check of Open, which refuses
		// them from then on.
		for _, u := range []string{"bob", "carol"} {
			if _, err := tx.Contact(u); !errors.Is(err, store.ErrTrustRollback) {
				t.Errorf("contact %s after swap: %v, want ErrTrustRollback", u, err)
			}
		}
		// Rows that were not touched still open.
		if _, err := tx.Identity(); err != nil {
			t.Errorf("Identity: %v", err)
		}
		return nil
	})
}

// TestNoPlaintextOnDisk checks that secrets and names do not appear in the
// database or its WAL.
func TestNoPlaintextOnDisk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	s := openStore(t, path, passOpts("pw"))
	secrets := []string{"SECRET-MESSAGE-TEXT", "zelda-the-contact", "MLS-STATE-SECRET", "PRIVATE-KEY-BYTES", "Secret Desk Name"}
	update(t, s, func(tx store.Tx) error {
		_, err := tx.AddMessage(&store.Message{Conversation: 1, ID: mid(1), Sender: "zelda-the-contact", Text: secrets[0], Content: []byte(secrets[0])})
		return errors.Join(err,
			tx.PutContact(&store.Contact{User: secrets[1], IdentityKey: []byte(secrets[3])}),
			tx.PutGroupState(1, []byte(secrets[2])),
			tx.PutIdentity(&store.Identity{User: "me", IdentityKey: []byte(secrets[3])}),
			tx.PutConversation(&store.Conversation{ID: 1, Name: secrets[4]}))
	})
	var all []byte
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("nothing on disk")
	}
	for _, sec := range secrets {
		if bytes.Contains(all, []byte(sec)) {
			t.Errorf("%q is on disk in clear", sec)
		}
	}
}

// The crash tests run the helper below in a child process that kills
// itself with SIGKILL at a chosen point, then reopen the store.
const crashEnv = "SQLITESTORE_CRASH_HELPER"

// TestCrashHelper is the child process; it is skipped in a normal run.
func TestCrashHelper(t *testing.T) {
	mode, path := os.Getenv(crashEnv), os.Getenv(crashEnv+"_PATH")
	if mode == "" {
		t.Skip("only run as the child of the crash tests")
	}
	s, err := Open(context.Background(), path, passOpts("pw"))
	if err != nil {
		t.Fatal(err)
	}
	kill := func() { syscall.Kill(os.Getpid(), syscall.SIGKILL); select {} }
	switch mode {
	case "before-commit", "after-commit":
		err = s.Update(context.Background(), func(tx store.Tx) error {
			tx.PutGroupState(1, []byte("epoch 2"))
			tx.AddMessage(&store.Message{Conversation: 1, ID: mid(200), Text: "in epoch 2"})
			tx.SetCursor(1, 11)
			if mode == "before-commit" {
				kill()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		kill()
	case "burst":
		// Commit transactions without end; the parent kills the process
		// at a random moment.
		var start uint64
		if err := s.View(context.Background(), func(tx store.Tx) error { start, err = tx.Cursor(1); return err }); err != nil {
			t.Fatal(err)
		}
		for i := start + 1; ; i++ {
			err := s.Update(context.Background(), func(tx store.Tx) error {
				tx.PutGroupState(1, []byte("epoch "+strconv.FormatUint(i, 10)))
				var id [16]byte
				binary.BigEndian.PutUint64(id[:], i)
				if added, err := tx.AddMessage(&store.Message{Conversation: 1, ID: id, ServerSeq: i, Text: strconv.FormatUint(i, 10)}); err != nil || !added {
					return fmt.Errorf("add message %d: %v, added %v", i, err, added)
				}
				return tx.SetCursor(1, i)
			})
			if err != nil {
				t.Fatal(err)
			}
			if i == start+1 {
				os.WriteFile(path+".started", nil, 0o600)
			}
		}
	}
}

func runChild(t *testing.T, mode, path string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+mode, crashEnv+"_PATH="+path)
	return cmd
}

func crashBase(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "store.db")
	s := openStore(t, path, passOpts("pw"))
	fill(t, s)
	s.Close()
	return path
}

func TestCrashBeforeCommit(t *testing.T) {
	path := crashBase(t)
	err := runChild(t, "before-commit", path).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v", err)
	}
	s := openStore(t, path, passOpts("pw"))
	check(t, s)
	view(t, s, func(tx store.Tx) error {
		g, _ := tx.GroupState(1)
		c, _ := tx.Cursor(1)
		ms, _ := tx.Messages(1, 0, 0)
		if string(g) != "mls state 1" || c != 10 || len(ms) != 3 {
			t.Errorf("after a crash before commit: state %q, cursor %d, %d messages", g, c, len(ms))
		}
		return nil
	})
}

func TestCrashAfterCommit(t *testing.T) {
	path := crashBase(t)
	runChild(t, "after-commit", path).Run()
	s := openStore(t, path, passOpts("pw"))
	view(t, s, func(tx store.Tx) error {
		g, _ := tx.GroupState(1)
		c, _ := tx.Cursor(1)
		ms, _ := tx.Messages(1, 0, 0)
		if string(g) != "epoch 2" || c != 11 || len(ms) != 4 || ms[3].Text != "in epoch 2" {
			t.Errorf("after a crash after commit: state %q, cursor %d, %d messages", g, c, len(ms))
		}
		return nil
	})
}

// TestCrashDuringBurst kills a child that commits state, message and
// cursor together in a loop, at random moments, and checks after each
// kill that the three agree: no transaction is ever half applied.
func TestCrashDuringBurst(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	path := crashBase(t)
	for round := range 5 {
		os.Remove(path + ".started")
		cmd := runChild(t, "burst", path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(path + ".started"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatal("child never started")
			}
		}
		time.Sleep(time.Duration(r.IntN(300)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		s := openStore(t, path, passOpts("pw"))
		view(t, s, func(tx store.Tx) error {
			g, err := tx.GroupState(1)
			if err != nil {
				return err
			}
			c, err := tx.Cursor(1)
			if err != nil {
				return err
			}
			ms, err := tx.LastMessages(1, 1)
			if err != nil || len(ms) != 1 {
				return fmt.Errorf("last message: %v", err)
			}
			last := ms[0]
			if string(g) != "epoch "+strconv.FormatUint(c, 10) || last.ServerSeq != c {
				t.Errorf("round %d: state %q, cursor %d, last message server seq %d: a transaction was half applied", round, g, c, last.ServerSeq)
			}
			t.Logf("round %d: killed after cursor %d", round, c)
			return nil
		})
		s.Close()
	}
}

func BenchmarkReceive(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "store.db"), passOpts("pw"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	state := make([]byte, 4096)
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		i++
		err := s.Update(context.Background(), func(tx store.Tx) error {
			var id [16]byte
			copy(id[:], strconv.FormatUint(i, 10))
			if _, err := tx.AddMessage(&store.Message{Conversation: 1, ID: id, Text: "hello there", Content: make([]byte, 200)}); err != nil {
				return err
			}
			if err := tx.PutGroupState(1, state); err != nil {
				return err
			}
			return tx.SetCursor(1, i)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestRatchetStateNotMovable: a ratchet state is bound to its table and
// row: moved into the groups table it does not open as a group state.
func TestRatchetStateNotMovable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := openStore(t, path, passOpts("pw"))
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutGroupState(8, []byte("full 8")); err != nil {
			return err
		}
		return tx.PutRatchetState(8, []byte("ratchet 8"))
	})
	s.Close()
	db := rawDB(t, path)
	if _, err := db.Exec(`UPDATE groups SET v = (SELECT v FROM ratchets WHERE conv = 8) WHERE conv = 8`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = openStore(t, path, passOpts("pw"))
	view(t, s, func(tx store.Tx) error {
		if _, err := tx.GroupState(8); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("GroupState with a moved ratchet state: %v, want ErrCorrupt", err)
		}
		return nil
	})
}

// TestFormatUpgrade: a version 1 store (no ratchets table) is upgraded
// when opened with the right key, left alone with a wrong one; an unknown
// version is refused.
func TestFormatUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := openStore(t, path, passOpts("pw"))
	fill(t, s)
	s.Close()
	format := func() string {
		t.Helper()
		db := rawDB(t, path)
		defer db.Close()
		var v []byte
		if err := db.QueryRow(`SELECT value FROM header WHERE name = 'format'`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	if v := format(); v != formatVersion {
		t.Fatalf("new store has format %q, want %q", v, formatVersion)
	}
	db := rawDB(t, path)
	if _, err := db.Exec(`DROP TABLE ratchets; DROP TABLE trust; DELETE FROM header WHERE name = 'trust_version';
		UPDATE header SET value = X'31' WHERE name = 'format'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(context.Background(), path, passOpts("wrong")); !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("open with a wrong passphrase: %v", err)
	}
	if v := format(); v != "1" {
		t.Fatalf("format after a failed open is %q, want 1", v)
	}
	s = openStore(t, path, passOpts("pw"))
	check(t, s)
	update(t, s, func(tx store.Tx) error { return tx.PutRatchetState(1, []byte("r")) })
	if a := s.TrustAlarm(); a != nil {
		t.Errorf("trust alarm after the upgrade: %+v", a)
	}
	s.Close()
	if v := format(); v != formatVersion {
		t.Fatalf("format after the upgrade is %q, want %q", v, formatVersion)
	}
	db = rawDB(t, path)
	if _, err := db.Exec(`UPDATE header SET value = X'39' WHERE name = 'format'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(context.Background(), path, passOpts("pw")); err == nil || !strings.Contains(err.Error(), `unknown store format "9"`) {
		t.Fatalf("open of format 9: %v", err)
	}
}
