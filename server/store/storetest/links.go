package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/server/store"
)

// testLinkMailboxes: a mailbox starts with the new device's message, is
// claimed by the first account that writes from the existing side, holds
// at most limit messages, returns them in order after a seq, expires,
// and is deleted by DeleteLinkMailbox and by Prune once expired.
func testLinkMailboxes(t *testing.T, s store.Store) {
	alice, _ := mkUser(t, s, "alice")
	bob, _ := mkUser(t, s, "bob")
	m := store.LinkMailbox{ID: "ABCD2345", TokenHash: []byte("hash"), Created: t0, Expires: t0.Add(10 * time.Minute)}
	must(t, "create", s.CreateLinkMailbox(ctx, m, store.LinkMessage{From: store.LinkNew, Data: []byte("hello"), Created: t0}))
	wantErr(t, "create again", s.CreateLinkMailbox(ctx, m, store.LinkMessage{From: store.LinkNew, Created: t0}), store.ErrConflict)

	got, err := s.LinkMailbox(ctx, m.ID, t0)
	must(t, "mailbox", err)
	if got.User != 0 || string(got.TokenHash) != "hash" || !got.Expires.Equal(m.Expires) {
		t.Errorf("mailbox %+v", got)
	}
	at := t0.Add(time.Second)
	seq, err := s.AppendLinkMessage(ctx, m.ID, alice.ID, store.LinkMessage{From: store.LinkExisting, Data: []byte("e1"), Created: at}, 4)
	if err != nil || seq != 2 {
		t.Fatalf("append by alice: %d %v", seq, err)
	}
	if got, _ := s.LinkMailbox(ctx, m.ID, at); got.User != alice.ID {
		t.Errorf("claimed by %d, want alice %d", got.User, alice.ID)
	}
	_, err = s.AppendLinkMessage(ctx, m.ID, bob.ID, store.LinkMessage{From: store.LinkExisting, Data: []byte("x"), Created: at}, 4)
	wantErr(t, "append by bob", err, store.ErrNotFound)
	if seq, err := s.AppendLinkMessage(ctx, m.ID, 0, store.LinkMessage{From: store.LinkNew, Data: []byte("n2"), Created: at}, 4); err != nil || seq != 3 {
		t.Fatalf("append by the new device: %d %v", seq, err)
	}
	if _, err := s.AppendLinkMessage(ctx, m.ID, alice.ID, store.LinkMessage{From: store.LinkExisting, Data: []byte("e2"), Created: at}, 4); err != nil {
		t.Fatal(err)
	}
	_, err = s.AppendLinkMessage(ctx, m.ID, alice.ID, store.LinkMessage{From: store.LinkExisting, Data: []byte("e3"), Created: at}, 4)
	wantErr(t, "append beyond the limit", err, store.ErrQuotaExceeded)

	msgs, err := s.LinkMessages(ctx, m.ID, 1)
	must(t, "messages", err)
	var seqs []uint64
	var data string
	for _, x := range msgs {
		seqs = append(seqs, x.Seq)
		data += string(x.Data) + "/"
		if (x.From == store.LinkNew) != (string(x.Data) == "n2") {
			t.Errorf("message %d from side %d", x.Seq, x.From)
		}
	}
	if len(seqs) != 3 || seqs[0] != 2 || seqs[2] != 4 || data != "e1/n2/e2/" {
		t.Errorf("messages after 1: %v %q", seqs, data)
	}

	// Expired: gone for readers and writers, then pruned.
	late := m.Expires
	if _, err := s.LinkMailbox(ctx, m.ID, late); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired mailbox: %v", err)
	}
	_, err = s.AppendLinkMessage(ctx, m.ID, 0, store.LinkMessage{From: store.LinkNew, Created: late}, 10)
	wantErr(t, "append to an expired mailbox", err, store.ErrNotFound)
	m2 := store.LinkMailbox{ID: "ZZZZ7777", TokenHash: []byte("h2"), Created: t0, Expires: t0.Add(time.Hour)}
	must(t, "create another", s.CreateLinkMailbox(ctx, m2, store.LinkMessage{From: store.LinkNew, Data: []byte("k"), Created: t0}))
	r, err := s.Prune(ctx, store.PruneOptions{Now: late})
	must(t, "prune", err)
	if r.LinkMailboxes != 1 {
		t.Errorf("pruned %d link mailboxes, want 1", r.LinkMailboxes)
	}
	if msgs, _ := s.LinkMessages(ctx, m.ID, 0); len(msgs) != 0 {
		t.Errorf("%d messages left of a pruned mailbox", len(msgs))
	}
	// The id is free again; the live mailbox is deleted on request.
	must(t, "create with a pruned id", s.CreateLinkMailbox(ctx, store.LinkMailbox{ID: m.ID, TokenHash: []byte("h3"), Created: late, Expires: late.Add(time.Minute)},
		store.LinkMessage{From: store.LinkNew, Created: late}))
	must(t, "delete", s.DeleteLinkMailbox(ctx, m2.ID))
	must(t, "delete again", s.DeleteLinkMailbox(ctx, m2.ID))
	if _, err := s.LinkMailbox(ctx, m2.ID, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted mailbox: %v", err)
	}
	if msgs, _ := s.LinkMessages(ctx, m2.ID, 0); len(msgs) != 0 {
		t.Errorf("%d messages left of a deleted mailbox", len(msgs))
	}
}

// testLinkMailboxConcurrent: two accounts racing to claim one mailbox:
// exactly one wins, and the seqs of concurrent appends are distinct.
func testLinkMailboxConcurrent(t *testing.T, s store.Store) {
	alice, _ := mkUser(t, s, "alice")
	bob, _ := mkUser(t, s, "bob")
	m := store.LinkMailbox{ID: "RACE2345", TokenHash: []byte("hash"), Created: t0, Expires: t0.Add(10 * time.Minute)}
	must(t, "create", s.CreateLinkMailbox(ctx, m, store.LinkMessage{From: store.LinkNew, Created: t0}))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		u := alice.ID
		if i%2 == 1 {
			u = bob.ID
		}
		wg.Go(func() {
			_, errs[i] = s.AppendLinkMessage(ctx, m.ID, u, store.LinkMessage{From: store.LinkExisting, Data: []byte{byte(i)}, Created: t0}, 100)
		})
	}
	wg.Wait()
	got, err := s.LinkMailbox(ctx, m.ID, t0)
	must(t, "mailbox", err)
	for i, err := range errs {
		mine := (i%2 == 0) == (got.User == alice.ID)
		if mine && err != nil || !mine && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("append %d (owner %d): %v", i, got.User, err)
		}
	}
	msgs, err := s.LinkMessages(ctx, m.ID, 0)
	must(t, "messages", err)
	if len(msgs) != 5 {
		t.Errorf("%d messages, want 5", len(msgs))
	}
}
