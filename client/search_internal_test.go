package client

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/content"

	"github.com/parley-chat/parley/client/sqlitestore"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// TestIndexEditsDuringBuild: messages edited and deleted while the index
// is being built (committed to the store, then reported, as the client
// does) end up in the index with their current text only: every message
// of the store with text has exactly one live document, which holds its
// words, and no deleted message has one.
func TestIndexEditsDuringBuild(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	pass := []byte("correct horse generated")
	kdf := store.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	convs := fillStore(t, filepath.Join(dir, StoreFile), sqlitestore.Options{Passphrase: pass, KDF: kdf}, 100, 50)
	c, err := Open(ctx, Config{ProfileDir: dir, Passphrase: pass, KDF: kdf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// change edits (or, for every fifth, deletes) message 5 of a
	// conversation, then reports it.
	change := func(conv protocol.ConversationID, i int) {
		var ev Event
		err := c.st.Update(ctx, func(tx store.Tx) error {
			ms, err := tx.Messages(conv, 4, 1)
			if err != nil || len(ms) == 0 {
				return err
			}
			m := &ms[0]
			if i%5 == 0 {
				m.Deleted, m.Text, m.Content = true, "", nil
				ev.Kind = EventDeleted
			} else {
				m.Text = fmt.Sprintf("zebra%d edited", i)
				ev.Kind = EventEdited
			}
			ev.Conversation, ev.Message = conv, viewMessage(m)
			return tx.UpdateMessage(m)
		})
		if err != nil {
			t.Error(err)
			return
		}
		c.ev.push(ev)
	}
	c.PrepareSearch()
	var wg sync.WaitGroup
	for i, conv := range convs {
		wg.Go(func() { change(conv, i) })
	}
	wg.Wait()
	if _, err := c.Search(ctx, SearchQuery{Text: "zebra"}); err != nil {
		t.Fatal(err)
	}

	live := map[docKey]docInfo{}
	c.idx.mu.Lock()
	for _, d := range c.idx.docs {
		if d.dead {
			continue
		}
		k := docKey{d.conv, d.seq}
		if _, dup := live[k]; dup {
			t.Errorf("message %d/%d has two live documents", d.conv, d.seq)
		}
		live[k] = d
	}
	c.idx.mu.Unlock()
	texts := 0
	err = c.st.View(ctx, func(tx store.Tx) error {
		for _, conv := range convs {
			err := tx.MessageTexts(conv, func(m *store.MessageText) error {
				_, ok := live[docKey{m.Conversation, m.Seq}]
				if hasText := !m.System && !m.Deleted && m.Text != ""; hasText != ok {
					t.Errorf("message %d/%d (text %q, deleted %v): live document %v", m.Conversation, m.Seq, m.Text, m.Deleted, ok)
				} else if hasText {
					texts++
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if texts != len(live) {
		t.Errorf("%d messages with text, %d live documents", texts, len(live))
	}
	for i, conv := range convs {
		want := 0
		if i%5 != 0 {
			want = 1
		}
		if got := c.idx.query(SearchQuery{Text: fmt.Sprintf("zebra%d", i), In: conv}); len(got) != want {
			t.Errorf("conversation %d: %d documents hold zebra%d, want %d", conv, len(got), i, want)
		}
	}
}

// fillStore writes n conversations of per text messages each into a new
// store at path and returns their ids.
func fillStore(t *testing.T, path string, opts sqlitestore.Options, n, per int) []protocol.ConversationID {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var convs []protocol.ConversationID
	err = st.Update(ctx, func(tx store.Tx) error {
		for i := range n {
			conv := protocol.ConversationID(i + 1)
			if err := tx.PutConversation(&store.Conversation{ID: conv, GroupID: []byte{byte(i)}, Members: []string{"alice", "bob"}, Created: now}); err != nil {
				return err
			}
			for j := range per {
				cm := content.New(content.KindText, now.Add(time.Duration(j)*time.Minute))
				cm.Text = fmt.Sprintf("message %d of conversation %d", j, i)
				data, err := content.Encode(cm)
				if err != nil {
					return err
				}
				m := &store.Message{Conversation: conv, ID: cm.ID, Sender: "bob", Sent: cm.Sent, Received: cm.Sent, Content: data, Text: cm.Text}
				if _, err := tx.AddMessage(m); err != nil {
					return err
				}
			}
			convs = append(convs, conv)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return convs
}
