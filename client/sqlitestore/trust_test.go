package sqlitestore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-chat/parley/client/store"
)

// rawRows returns the (key, value) rows of a table of a closed store.
func rawRows(t *testing.T, path, query string) [][2][]byte {
	t.Helper()
	db := rawDB(t, path)
	defer db.Close()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][2][]byte
	for rows.Next() {
		var r [2][]byte
		if err := rows.Scan(&r[0], &r[1]); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// rawExec runs statements on a closed store, as an attacker with the file
// but without the key would.
func rawExec(t *testing.T, path, query string, args ...any) {
	t.Helper()
	db := rawDB(t, path)
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// TestTrustRollbackOfWholeFile states the limit of the trust check: a copy
// of the whole file put back is consistent in itself, and Open cannot
// tell (docs/security.md says so).
func TestTrustRollbackOfWholeFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	s := openStore(t, path, passOpts("pw"))
	fill(t, s)
	s.Close()
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, passOpts("pw"))
	update(t, s, func(tx store.Tx) error {
		return tx.PutContact(&store.Contact{User: "bob", IdentityKey: bytes.Repeat([]byte{2}, 32), Verified: true, Pinned: now})
	})
	s.Close()
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, passOpts("pw"))
	if a := s.TrustAlarm(); a != nil {
		t.Fatalf("TrustAlarm = %+v: the limit changed, update docs/security.md", a)
	}
	view(t, s, func(tx store.Tx) error {
		if c, err := tx.Contact("bob"); err != nil || c.Verified {
			t.Errorf("Contact(bob) = %+v, %v, want the old unverified row", c, err)
		}
		return nil
	})
}

// sealedOf returns the sealed value of a row as stored.
func sealedOf(t *testing.T, s *Store, query string, args ...any) []byte {
	t.Helper()
	var v []byte
	if err := s.db.QueryRowContext(context.Background(), query, args...).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// onDisk reports whether the nonce or the tag of a sealed value is in the
// database file or its WAL.
func onDisk(t *testing.T, path string, sealed []byte) bool {
	t.Helper()
	nonce, tag := sealed[1:25], sealed[len(sealed)-16:]
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(b, nonce) || bytes.Contains(b, tag) {
			return true
		}
	}
	return false
}

// TestNoStaleSealedValues: a sealed value that was overwritten or deleted
// leaves the database file and its WAL, while the store is open (as a
// crash would leave them) and after Close.
func TestNoStaleSealedValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := openStore(t, path, passOpts("pw"))
	fill(t, s)
	big := bytes.Repeat([]byte("FORWARD-SECRET "), 1000) // spans overflow pages
	steps := []struct {
		name  string
		write func(tx store.Tx) error
		query string
		args  []any
		reuse func(tx store.Tx) error // overwrites or deletes the value
	}{
		{"a contact's key changed (trust)",
			func(tx store.Tx) error {
				return tx.PutContact(&store.Contact{User: "bob", IdentityKey: bytes.Repeat([]byte{0xb0}, 32), Pinned: now})
			},
			`SELECT v FROM contacts WHERE h = ?`, []any{s.blind("contact", []byte("bob"))},
			func(tx store.Tx) error {
				return tx.PutContact(&store.Contact{User: "bob", IdentityKey: bytes.Repeat([]byte{0xb1}, 32), Verified: true, Pinned: now})
			}},
		{"a used KeyPackage deleted",
			func(tx store.Tx) error { return tx.PutKeyPackage([]byte("ref-used"), big) },
			`SELECT v FROM keypackages WHERE ref = ?`, []any{[]byte("ref-used")},
			func(tx store.Tx) error { return tx.DeleteKeyPackage([]byte("ref-used")) }},
		{"the group state of an epoch left behind",
			func(tx store.Tx) error { return tx.PutGroupState(1, big) },
			`SELECT v FROM groups WHERE conv = ?`, []any{1},
			func(tx store.Tx) error { return tx.PutGroupState(1, []byte("next epoch")) }},
	}
	for _, st := range steps {
		update(t, s, st.write)
		old := sealedOf(t, s, st.query, st.args...)
		if !onDisk(t, path, old) {
			t.Fatalf("%s: the value is not on disk after it was written: the scan sees nothing", st.name)
		}
		update(t, s, st.reuse)
		if onDisk(t, path, old) {
			t.Errorf("%s: the old sealed value is still in the database file or WAL", st.name)
		}
	}

	// Anything else overwritten is gone once the store is closed.
	update(t, s, func(tx store.Tx) error { return tx.SetSetting("theme", bytes.Repeat([]byte("light "), 100)) })
	old := sealedOf(t, s, `SELECT v FROM settings WHERE k = 'theme'`)
	update(t, s, func(tx store.Tx) error { return tx.SetSetting("theme", []byte("solarized")) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if onDisk(t, path, old) {
		t.Error("an overwritten setting is still in the database file or WAL after Close")
	}
}
