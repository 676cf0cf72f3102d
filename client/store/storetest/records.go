package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// testRoundTrip: every kind of record reads back as written, in the
// same store and after a reopen.
func testRoundTrip(t *testing.T, o Opener) {
	s := o.Open(t)
	Fill(t, s)
	Check(t, s)
	s.Close()
	Check(t, o.Open(t))
}

// testMessageUpdatesAndDuplicates: a replayed message id is not added;
// messages, queued messages and key packages are updated and deleted;
// a View refuses a write; DeleteConversation takes the history and group
// state with it.
func testMessageUpdatesAndDuplicates(t *testing.T, o Opener) {
	s := o.Open(t)
	Fill(t, s)
	Update(t, s, func(tx store.Tx) error {
		added, err := tx.AddMessage(&store.Message{Conversation: 1, ID: MID('f'), Text: "replayed"})
		if err != nil || added {
			t.Errorf("AddMessage of a duplicate id = %v, %v; want false, nil", added, err)
		}
		m, err := tx.MessageByID(1, MID('f'))
		if err != nil {
			return err
		}
		m.Text, m.Edited = "first, edited", Now.Add(time.Minute)
		m.Reactions = append(m.Reactions, store.Reaction{User: "carol", Emoji: "👍"})
		if err := tx.UpdateMessage(m); err != nil {
			return err
		}
		m.ID = MID('x')
		if err := tx.UpdateMessage(m); err == nil {
			t.Error("UpdateMessage accepted a changed id")
		}
		out, err := tx.Outbox(1)
		if err != nil {
			return err
		}
		out[0].Ciphertext, out[0].Attempts = []byte("mls ciphertext"), 1
		if err := tx.UpdateOutgoing(&out[0]); err != nil {
			return err
		}
		return tx.DeleteKeyPackage([]byte("ref1"))
	})
	View(t, s, func(tx store.Tx) error {
		ms, err := tx.Messages(1, 0, 0)
		if err != nil || len(ms) != 3 || ms[0].Text != "first, edited" || len(ms[0].Reactions) != 1 {
			t.Errorf("after edit: %+v, %v", ms, err)
		}
		out, err := tx.Outbox(1)
		if err != nil || string(out[0].Ciphertext) != "mls ciphertext" {
			t.Errorf("Outbox after update: %+v, %v", out, err)
		}
		if _, err := tx.KeyPackage([]byte("ref1")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted key package: %v", err)
		}
		if err := tx.SetSetting("x", nil); err == nil {
			t.Error("View allowed a write")
		}
		return nil
	})
	Update(t, s, func(tx store.Tx) error {
		out, _ := tx.Outbox(0)
		if err := tx.Dequeue(out[0].ID); err != nil {
			return err
		}
		return tx.DeleteConversation(1)
	})
	check := func(s store.Store) {
		t.Helper()
		View(t, s, func(tx store.Tx) error {
			if ms, _ := tx.Messages(1, 0, 0); len(ms) != 0 {
				t.Errorf("messages left after DeleteConversation: %d", len(ms))
			}
			if _, err := tx.GroupState(1); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("group state after DeleteConversation: %v", err)
			}
			if _, err := tx.MessageByID(1, MID('f')); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("MessageByID after DeleteConversation: %v", err)
			}
			if c, err := tx.Cursor(1); err != nil || c != 0 {
				t.Errorf("Cursor after DeleteConversation = %d, %v", c, err)
			}
			if _, err := tx.Conversation(1); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Conversation after DeleteConversation: %v", err)
			}
			if out, _ := tx.Outbox(0); len(out) != 0 {
				t.Errorf("outbox after Dequeue: %+v", out)
			}
			if kp, err := tx.KeyPackage([]byte("ref2")); err != nil || string(kp) != "kp private 2" {
				t.Errorf("KeyPackage(ref2) = %q, %v", kp, err)
			}
			if n, err := tx.KeyPackageCount(); err != nil || n != 1 {
				t.Errorf("KeyPackageCount = %d, %v", n, err)
			}
			return nil
		})
	}
	check(s)
	s.Close()
	s = o.Open(t)
	check(s)
	// The history of a deleted conversation starts again at 1.
	Update(t, s, func(tx store.Tx) error {
		m := &store.Message{Conversation: 1, ID: MID('f'), Text: "again"}
		if added, err := tx.AddMessage(m); err != nil || !added || m.Seq != 1 {
			t.Errorf("AddMessage after DeleteConversation = %v, %v, seq %d", added, err, m.Seq)
		}
		return nil
	})
}

// testRollback: an Update whose function fails or panics changes nothing.
func testRollback(t *testing.T, o Opener) {
	s := o.Open(t)
	Fill(t, s)
	boom := errors.New("boom")
	err := s.Update(context.Background(), func(tx store.Tx) error {
		tx.PutGroupState(1, []byte("new state"))
		tx.AddMessage(&store.Message{Conversation: 1, ID: MID(77), Text: "lost"})
		tx.PutContact(&store.Contact{User: "dave", IdentityKey: []byte{4}})
		tx.DeleteConversation(2)
		tx.SetSetting("theme", []byte("light"))
		tx.Enqueue(&store.Outgoing{Conversation: 2, Content: []byte("lost")})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the function's error", err)
	}
	panicked := func() (p any) {
		defer func() { p = recover() }()
		s.Update(context.Background(), func(tx store.Tx) error {
			tx.PutGroupState(1, []byte("panic state"))
			tx.DeleteKeyPackage([]byte("ref1"))
			panic("inside transaction")
		})
		return nil
	}()
	if panicked != "inside transaction" {
		t.Errorf("Update's panic = %v, want the function's panic passed on", panicked)
	}
	Check(t, s)
	View(t, s, func(tx store.Tx) error {
		if _, err := tx.MessageByID(1, MID(77)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("message added by a rolled back Update: %v", err)
		}
		return nil
	})
	check := func(s store.Store) {
		t.Helper()
		View(t, s, func(tx store.Tx) error {
			if g, _ := tx.GroupState(1); string(g) != "mls state 1" {
				t.Errorf("group state after rollback: %q", g)
			}
			if kp, err := tx.KeyPackage([]byte("ref1")); err != nil || string(kp) != "kp private 1" {
				t.Errorf("KeyPackage(ref1) after rollback = %q, %v", kp, err)
			}
			if v, err := tx.Setting("theme"); err != nil || string(v) != "dark" {
				t.Errorf("Setting after rollback = %q, %v", v, err)
			}
			if out, err := tx.Outbox(0); err != nil || len(out) != 1 {
				t.Errorf("Outbox after rollback = %+v, %v", out, err)
			}
			if _, err := tx.Contact("dave"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("contact added by a rolled back Update: %v", err)
			}
			if g, err := tx.GroupState(2); err != nil || string(g) != "mls state 2" {
				t.Errorf("conversation 2 after rollback: %q, %v", g, err)
			}
			return nil
		})
	}
	check(s)
	// The store still works, and the rolled back writes left no trace.
	Update(t, s, func(tx store.Tx) error {
		m := &store.Message{Conversation: 1, ID: MID(77), Text: "kept"}
		if added, err := tx.AddMessage(m); err != nil || !added || m.Seq != 4 {
			t.Errorf("AddMessage after rollback = %v, %v, seq %d; want seq 4", added, err, m.Seq)
		}
		return nil
	})
	check(s)
	s.Close()
	s = o.Open(t)
	if a := s.TrustAlarm(); a != nil {
		t.Errorf("TrustAlarm after rollbacks = %+v", a)
	}
	check(s)
	View(t, s, func(tx store.Tx) error {
		if ms, err := tx.Messages(1, 0, 0); err != nil || len(ms) != 4 || ms[3].Text != "kept" {
			t.Errorf("Messages after rollbacks and a reopen = %+v, %v", ms, err)
		}
		return nil
	})
}

// testViewRefusesWrites: every write fails in a View and changes nothing.
func testViewRefusesWrites(t *testing.T, o Opener) {
	s := o.Open(t)
	Fill(t, s)
	View(t, s, func(tx store.Tx) error {
		writes := map[string]func() error{
			"PutIdentity":      func() error { return tx.PutIdentity(&store.Identity{User: "eve"}) },
			"PutDevice":        func() error { return tx.PutDevice(&store.Device{ID: "dev9", User: "eve"}) },
			"DeleteDevice":     func() error { return tx.DeleteDevice("dev2") },
			"PutContact":       func() error { return tx.PutContact(&store.Contact{User: "eve"}) },
			"PutConversation":  func() error { return tx.PutConversation(&store.Conversation{ID: 9}) },
			"DeleteConv":       func() error { return tx.DeleteConversation(1) },
			"PutGroupState":    func() error { return tx.PutGroupState(1, []byte("x")) },
			"PutRatchetState":  func() error { return tx.PutRatchetState(1, []byte("x")) },
			"AddMessage":       func() error { _, err := tx.AddMessage(&store.Message{Conversation: 1, ID: MID(99)}); return err },
			"ExpireMessage":    func() error { _, err := tx.ExpireMessage(1, 1); return err },
			"UpdateMessage":    func() error { return tx.UpdateMessage(&store.Message{Conversation: 1, Seq: 1, ID: MID('f')}) },
			"SetCursor":        func() error { return tx.SetCursor(1, 99) },
			"Enqueue":          func() error { return tx.Enqueue(&store.Outgoing{Conversation: 1}) },
			"UpdateOutgoing":   func() error { return tx.UpdateOutgoing(&store.Outgoing{ID: 1, Conversation: 1}) },
			"Dequeue":          func() error { return tx.Dequeue(1) },
			"PutKeyPackage":    func() error { return tx.PutKeyPackage([]byte("r"), []byte("p")) },
			"DeleteKeyPackage": func() error { return tx.DeleteKeyPackage([]byte("ref1")) },
			"SetSetting":       func() error { return tx.SetSetting("theme", []byte("light")) },
		}
		for name, w := range writes {
			if err := w(); err == nil {
				t.Errorf("%s in a View succeeded", name)
			}
		}
		return nil
	})
	Check(t, s)
	View(t, s, func(tx store.Tx) error {
		if ms, err := tx.Messages(1, 0, 0); err != nil || len(ms) != 3 || ms[0].Text != "first" || ms[0].Expired {
			t.Errorf("Messages after refused writes = %+v, %v", ms, err)
		}
		if _, err := tx.RatchetState(1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RatchetState after a refused write: %v", err)
		}
		return nil
	})
}

// testRatchetState: a ratchet state is kept beside the full group state
// until the next full state, and goes with its conversation.
func testRatchetState(t *testing.T, o Opener) {
	s := o.Open(t)
	Update(t, s, func(tx store.Tx) error {
		if err := tx.PutGroupState(7, []byte("full 1")); err != nil {
			return err
		}
		if err := tx.PutRatchetState(7, []byte("ratchet a")); err != nil {
			return err
		}
		if err := tx.PutGroupState(8, []byte("full 8")); err != nil {
			return err
		}
		return tx.PutRatchetState(8, []byte("ratchet 8"))
	})
	Update(t, s, func(tx store.Tx) error { return tx.PutRatchetState(7, []byte("ratchet b")) })
	both := func(s store.Store) {
		t.Helper()
		View(t, s, func(tx store.Tx) error {
			if g, err := tx.GroupState(7); err != nil || string(g) != "full 1" {
				t.Errorf("GroupState = %q, %v", g, err)
			}
			if r, err := tx.RatchetState(7); err != nil || string(r) != "ratchet b" {
				t.Errorf("RatchetState = %q, %v", r, err)
			}
			if r, err := tx.RatchetState(9); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("RatchetState of an unknown conversation = %q, %v; want ErrNotFound", r, err)
			}
			return nil
		})
	}
	both(s)
	s.Close()
	s = o.Open(t)
	both(s)
	Update(t, s, func(tx store.Tx) error {
		if err := tx.PutGroupState(7, []byte("full 2")); err != nil {
			return err
		}
		return tx.DeleteConversation(8)
	})
	check := func(s store.Store) {
		t.Helper()
		View(t, s, func(tx store.Tx) error {
			if r, err := tx.RatchetState(7); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("RatchetState after a full state = %q, %v; want ErrNotFound", r, err)
			}
			if g, err := tx.GroupState(7); err != nil || string(g) != "full 2" {
				t.Errorf("GroupState after a full state = %q, %v", g, err)
			}
			if r, err := tx.RatchetState(8); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("RatchetState of a deleted conversation = %q, %v; want ErrNotFound", r, err)
			}
			if g, err := tx.GroupState(8); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GroupState of a deleted conversation = %q, %v; want ErrNotFound", g, err)
			}
			return nil
		})
	}
	check(s)
	s.Close()
	check(o.Open(t))
}

// testOutbox: queue ids grow and are never given again, also after a
// Dequeue and a reopen; Outbox filters by conversation in queue order;
// UpdateOutgoing of an unknown id is ErrNotFound; Dequeue of one is not
// an error.
func testOutbox(t *testing.T, o Opener) {
	s := o.Open(t)
	var ids []int64
	Update(t, s, func(tx store.Tx) error {
		for i, conv := range []protocol.ConversationID{1, 2, 1} {
			o := &store.Outgoing{Conversation: conv, MessageID: MID(byte(i)), Content: []byte{byte(i)}, Created: Now}
			if err := tx.Enqueue(o); err != nil {
				return err
			}
			ids = append(ids, o.ID)
		}
		return nil
	})
	if !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Fatalf("queue ids %v, want increasing", ids)
	}
	Update(t, s, func(tx store.Tx) error {
		if err := tx.Dequeue(ids[2]); err != nil {
			return err
		}
		if err := tx.Dequeue(ids[2] + 100); err != nil {
			t.Errorf("Dequeue of an unknown id: %v", err)
		}
		if err := tx.UpdateOutgoing(&store.Outgoing{ID: ids[2], Conversation: 1}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateOutgoing of a dequeued id: %v, want ErrNotFound", err)
		}
		return nil
	})
	s.Close()
	s = o.Open(t)
	Update(t, s, func(tx store.Tx) error {
		o := &store.Outgoing{Conversation: 1, MessageID: MID(3), Content: []byte{3}, Created: Now}
		if err := tx.Enqueue(o); err != nil {
			return err
		}
		if o.ID <= ids[2] {
			t.Errorf("queue id after a Dequeue and a reopen = %d, want above %d", o.ID, ids[2])
		}
		ids = append(ids, o.ID)
		// Moving a queued message to another conversation moves it.
		return tx.UpdateOutgoing(&store.Outgoing{ID: ids[1], Conversation: 3, MessageID: MID(1), Content: []byte{1}, Attempts: 2})
	})
	View(t, s, func(tx store.Tx) error {
		got := func(conv protocol.ConversationID) (out []int64) {
			q, err := tx.Outbox(conv)
			if err != nil {
				t.Errorf("Outbox(%d): %v", conv, err)
			}
			for _, o := range q {
				if o.Conversation != conv && conv != 0 {
					t.Errorf("Outbox(%d) holds %+v", conv, o)
				}
				out = append(out, o.ID)
			}
			return out
		}
		if all, one, two, three := got(0), got(1), got(2), got(3); len(all) != 3 || all[0] != ids[0] || all[1] != ids[1] || all[2] != ids[3] ||
			len(one) != 2 || one[0] != ids[0] || one[1] != ids[3] || len(two) != 0 || len(three) != 1 || three[0] != ids[1] {
			t.Errorf("Outbox(0), (1), (2), (3) = %v %v %v %v; ids %v", all, one, two, three, ids)
		}
		return nil
	})
}
