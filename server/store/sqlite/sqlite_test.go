package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
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
		if v, err := s.SchemaVersion(context.Background()); err != nil || v != 5 {
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
	// Back to schema version 2.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`ALTER TABLE conversations ADD COLUMN head INTEGER NOT NULL DEFAULT 0`,
		`UPDATE conversations SET head = (SELECT head FROM conversation_heads WHERE conversation_id = conversations.id)`,
		`DROP TABLE conversation_heads`,
		`DELETE FROM schema_migrations WHERE version = 3`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
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
