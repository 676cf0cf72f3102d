package sqlitestore

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/store"
)

// TestExpiry: messages with an expiry are listed when due, in order of
// expiry; ExpireMessage erases one to a tombstone that still refuses a
// replay of its id; DeleteConversation forgets the expiries.
func TestExpiry(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "store.db"), passOpts("pw"))
	at := time.Unix(1_800_000_000, 0)
	update(t, s, func(tx store.Tx) error {
		for i, m := range []*store.Message{
			{Conversation: 1, ID: mid(1), Text: "late", Content: []byte("c1"), Expires: at.Add(time.Hour)},
			{Conversation: 1, ID: mid(2), Text: "keeps"},
			{Conversation: 2, ID: mid(3), Text: "soon", Content: []byte("c3"), Reactions: []store.Reaction{{User: "bob", Emoji: "👍"}}, ReadBy: []string{"bob"}, Expires: at.Add(time.Minute + time.Millisecond)},
		} {
			if _, err := tx.AddMessage(m); err != nil {
				t.Fatalf("add %d: %v", i, err)
			}
		}
		return nil
	})
	view(t, s, func(tx store.Tx) error {
		next, ok, err := tx.NextExpiry()
		if err != nil || !ok || !next.Equal(at.Add(time.Minute+time.Second)) {
			t.Errorf("NextExpiry = %v, %v, %v; want %v (rounded up)", next, ok, err, at.Add(time.Minute+time.Second))
		}
		due, err := tx.ExpiredBy(at.Add(time.Minute))
		if err != nil || len(due) != 0 {
			t.Errorf("ExpiredBy before the first expiry = %v, %v", due, err)
		}
		due, err = tx.ExpiredBy(at.Add(2 * time.Hour))
		if err != nil || len(due) != 2 || due[0] != [2]int64{2, 1} || due[1] != [2]int64{1, 1} {
			t.Errorf("ExpiredBy after both = %v, %v; want 2/1 then 1/1", due, err)
		}
		return nil
	})
	update(t, s, func(tx store.Tx) error {
		m, err := tx.ExpireMessage(2, 1)
		if err != nil || m == nil || !m.Expired || m.Text != "" || m.Content != nil || m.Reactions != nil || m.ReadBy != nil {
			t.Fatalf("ExpireMessage = %+v, %v; want an empty tombstone", m, err)
		}
		if again, err := tx.ExpireMessage(2, 1); err != nil || again != nil {
			t.Errorf("ExpireMessage again = %+v, %v; want nothing", again, err)
		}
		if added, err := tx.AddMessage(&store.Message{Conversation: 2, ID: mid(3), Text: "soon"}); err != nil || added {
			t.Errorf("replay of an expired message added = %v, %v; want false", added, err)
		}
		stored, err := tx.MessageByID(2, mid(3))
		if err != nil || !stored.Expired || stored.Text != "" {
			t.Errorf("stored tombstone %+v, %v", stored, err)
		}
		return tx.DeleteConversation(1)
	})
	view(t, s, func(tx store.Tx) error {
		if _, ok, err := tx.NextExpiry(); err != nil || ok {
			t.Errorf("NextExpiry after expiring and deleting: %v, %v; want none", ok, err)
		}
		return nil
	})
}
