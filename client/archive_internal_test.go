package client

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/parley-chat/parley/client/sqlitestore"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// TestExportImportHistory: a history exported from one profile and
// imported into another holds the same messages in the same order, with
// the read position carried over; a conversation the importing profile
// knows under another group keeps its own history; a message it holds
// already is not stored twice; importing the same archive again adds
// nothing; the search index, when built, finds the imported messages.
func TestExportImportHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kdf := store.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	open := func(dir string) *Client {
		st, err := sqlitestore.Open(ctx, filepath.Join(dir, StoreFile), sqlitestore.Options{Passphrase: []byte("pass"), KDF: kdf})
		if err != nil {
			t.Fatal(err)
		}
		err = st.Update(ctx, func(tx store.Tx) error {
			err := tx.PutIdentity(&store.Identity{Server: "https://chat.example", User: "alice", Device: "d1",
				IdentityKey: make([]byte, 64), DeviceScheme: protocol.SchemeEd25519, DeviceKey: make([]byte, 32)})
			if err != nil {
				return err
			}
			return tx.SetSetting(settingServerName, []byte("chat.example"))
		})
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		c, err := Open(ctx, Config{ProfileDir: dir, Passphrase: []byte("pass"), KDF: kdf})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	srcDir := t.TempDir()
	convs := fillStore(t, filepath.Join(srcDir, StoreFile), sqlitestore.Options{Passphrase: []byte("pass"), KDF: kdf}, 3, 30)
	src := open(srcDir)
	if err := src.st.Update(ctx, func(tx store.Tx) error { return advanceMarker(tx, readSetting(convs[0]), 10) }); err != nil {
		t.Fatal(err)
	}
	var archived bytes.Buffer
	n, err := src.exportHistory(ctx, &archived, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != (HistoryCount{Conversations: 3, Messages: 90}) {
		t.Errorf("exported %+v", n)
	}

	// The importing profile knows conversation 2 under another group and
	// holds one message of conversation 3.
	dstDir := t.TempDir()
	fillStore(t, filepath.Join(dstDir, StoreFile), sqlitestore.Options{Passphrase: []byte("pass"), KDF: kdf}, 0, 0)
	dst := open(dstDir)
	var held store.Message
	err = dst.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutConversation(&store.Conversation{ID: convs[1], GroupID: []byte("another group")}); err != nil {
			return err
		}
		var ms []store.Message
		err := src.st.View(ctx, func(stx store.Tx) error {
			var err error
			ms, err = stx.Messages(convs[2], 4, 1)
			return err
		})
		if err != nil {
			return err
		}
		held = ms[0]
		if err := tx.PutConversation(&store.Conversation{ID: convs[2], GroupID: []byte{2}}); err != nil {
			return err
		}
		held.Seq = 0
		_, err = tx.AddMessage(&held)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	dst.PrepareSearch()
	got, err := dst.importHistory(ctx, bytes.NewReader(archived.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got != (HistoryCount{Conversations: 1, Messages: 59}) {
		t.Errorf("imported %+v, want conversation 1 made, 30 + 29 messages stored", got)
	}
	texts := func(c *Client, conv protocol.ConversationID) []string {
		ms, err := c.History(ctx, conv, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.Text)
		}
		return out
	}
	if a, b := texts(src, convs[0]), texts(dst, convs[0]); len(b) != 30 || !equalStrings(a, b) {
		t.Errorf("conversation 1 imported as %q, want %q", b, a)
	}
	if b := texts(dst, convs[1]); len(b) != 0 {
		t.Errorf("conversation 2, known under another group, got %d messages of the archive", len(b))
	}
	if b := texts(dst, convs[2]); len(b) != 30 || b[0] != held.Text {
		t.Errorf("conversation 3 holds %d messages starting with %q, want 30 starting with the one held", len(b), b[0])
	}
	cv, err := dst.Conversation(ctx, convs[0])
	if err != nil {
		t.Fatal(err)
	}
	if cv.Unread != 20 {
		t.Errorf("conversation 1: %d unread, want 20 (read up to the tenth message on the exporting device)", cv.Unread)
	}
	hits, err := dst.Search(ctx, SearchQuery{Text: "message 17 of conversation 0"})
	if err != nil || len(hits) == 0 {
		t.Errorf("search for an imported message: %d hits, %v", len(hits), err)
	}
	again, err := dst.importHistory(ctx, bytes.NewReader(archived.Bytes()))
	if err != nil || again != (HistoryCount{}) {
		t.Errorf("importing again: %+v, %v; want nothing added", again, err)
	}
	// A truncated archive is refused.
	if _, err := dst.importHistory(ctx, bytes.NewReader(archived.Bytes()[:archived.Len()-3])); err == nil {
		t.Error("a truncated archive was imported")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
