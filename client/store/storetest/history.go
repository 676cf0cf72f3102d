package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// testExpiry: messages with an expiry are listed when due, in order of
// expiry; ExpireMessage erases one to a tombstone that still refuses a
// replay of its id; DeleteConversation forgets the expiries.
func testExpiry(t *testing.T, o Opener) {
	s := o.Open(t)
	at := time.Unix(1_800_000_000, 0)
	Update(t, s, func(tx store.Tx) error {
		for i, m := range []*store.Message{
			{Conversation: 1, ID: MID(1), Text: "late", Content: []byte("c1"), Expires: at.Add(time.Hour)},
			{Conversation: 1, ID: MID(2), Text: "keeps"},
			{Conversation: 2, ID: MID(3), Text: "soon", Content: []byte("c3"), Reactions: []store.Reaction{{User: "bob", Emoji: "👍"}}, ReadBy: []string{"bob"}, Expires: at.Add(time.Minute + time.Millisecond)},
		} {
			if _, err := tx.AddMessage(m); err != nil {
				t.Fatalf("add %d: %v", i, err)
			}
		}
		return nil
	})
	due := func(s store.Store) {
		t.Helper()
		View(t, s, func(tx store.Tx) error {
			return dueCheck(t, tx, at)
		})
	}
	due(s)
	s.Close()
	s = o.Open(t)
	due(s)
	Update(t, s, func(tx store.Tx) error {
		m, err := tx.ExpireMessage(2, 1)
		if err != nil || m == nil || !m.Expired || m.Text != "" || m.Content != nil || m.Reactions != nil || m.ReadBy != nil {
			t.Fatalf("ExpireMessage = %+v, %v; want an empty tombstone", m, err)
		}
		if again, err := tx.ExpireMessage(2, 1); err != nil || again != nil {
			t.Errorf("ExpireMessage again = %+v, %v; want nothing", again, err)
		}
		if gone, err := tx.ExpireMessage(5, 1); err != nil || gone != nil {
			t.Errorf("ExpireMessage of a missing message = %+v, %v; want nothing", gone, err)
		}
		if added, err := tx.AddMessage(&store.Message{Conversation: 2, ID: MID(3), Text: "soon"}); err != nil || added {
			t.Errorf("replay of an expired message added = %v, %v; want false", added, err)
		}
		stored, err := tx.MessageByID(2, MID(3))
		if err != nil || !stored.Expired || stored.Text != "" {
			t.Errorf("stored tombstone %+v, %v", stored, err)
		}
		due, err := tx.ExpiredBy(at.Add(2 * time.Hour))
		if err != nil || len(due) != 1 || due[0] != [2]int64{1, 1} {
			t.Errorf("ExpiredBy after expiring 2/1 = %v, %v; want 1/1", due, err)
		}
		return tx.DeleteConversation(1)
	})
	check := func(s store.Store) {
		t.Helper()
		View(t, s, func(tx store.Tx) error {
			if _, ok, err := tx.NextExpiry(); err != nil || ok {
				t.Errorf("NextExpiry after expiring and deleting: %v, %v; want none", ok, err)
			}
			if due, err := tx.ExpiredBy(at.Add(2 * time.Hour)); err != nil || len(due) != 0 {
				t.Errorf("ExpiredBy after expiring and deleting = %v, %v", due, err)
			}
			stored, err := tx.MessageByID(2, MID(3))
			if err != nil || !stored.Expired || stored.Text != "" {
				t.Errorf("stored tombstone %+v, %v", stored, err)
			}
			return nil
		})
	}
	check(s)
	s.Close()
	check(o.Open(t))
}

// dueCheck checks the expiries that testExpiry wrote.
func dueCheck(t *testing.T, tx store.Tx, at time.Time) error {
	t.Helper()
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
}

// testSystemLineRecords: a system line is a history record like a
// message (its position, its id, its delivery state), keeps its change
// across a reopen, and a message written before system lines existed
// reads as a message; a conversation keeps who removed this device.
func testSystemLineRecords(t *testing.T, o Opener) {
	s := o.Open(t)
	sys := &store.SystemEvent{Kind: "device_removed", Users: []string{"bob"}, Devices: []protocol.DeviceID{"d1", "d2"}}
	rename := &store.SystemEvent{Kind: "renamed", Value: "crew", Previous: "team"}
	Update(t, s, func(tx store.Tx) error {
		if err := tx.PutConversation(&store.Conversation{ID: 3, Members: []string{"alice", "bob"}, Left: true, RemovedBy: "alice", Created: Now}); err != nil {
			return err
		}
		for _, m := range []*store.Message{
			{Conversation: 3, ID: MID(1), Sender: "alice", Sent: Now, Received: Now, ServerSeq: 4, Text: "hi", State: store.Sent},
			{Conversation: 3, ID: MID(2), Sender: "alice", SenderDevice: "da", Sent: Now, Received: Now, ServerSeq: 5, System: sys},
			{Conversation: 3, ID: MID(3), Sender: "bob", Sent: Now, Received: Now, State: store.Pending, System: rename},
		} {
			if added, err := tx.AddMessage(m); err != nil || !added {
				t.Fatalf("add %x: %v, %v", m.ID, added, err)
			}
		}
		m, err := tx.MessageByID(3, MID(3))
		if err != nil {
			return err
		}
		m.ServerSeq, m.State = 6, store.Sent
		return tx.UpdateMessage(m)
	})
	s.Close()

	s = o.Open(t)
	View(t, s, func(tx store.Tx) error {
		cv, err := tx.Conversation(3)
		if err != nil {
			return err
		}
		if cv.RemovedBy != "alice" || !cv.Left {
			t.Errorf("conversation after reopen: %+v", cv)
		}
		ms, err := tx.Messages(3, 0, 0)
		if err != nil {
			return err
		}
		if len(ms) != 3 {
			t.Fatalf("%d records, want 3", len(ms))
		}
		if ms[0].System != nil || ms[0].Text != "hi" {
			t.Errorf("message read as %+v", ms[0])
		}
		if !reflect.DeepEqual(ms[1].System, sys) || ms[1].Seq != 2 || ms[1].SenderDevice != "da" {
			t.Errorf("system line read as %+v (%+v), want %+v at 2", ms[1], ms[1].System, sys)
		}
		if !reflect.DeepEqual(ms[2].System, rename) || ms[2].ServerSeq != 6 || ms[2].State != store.Sent {
			t.Errorf("updated system line read as %+v (%+v)", ms[2], ms[2].System)
		}
		return nil
	})
}

// testLatestAndAfter: LatestMessages gives the last entry of every
// conversation with a history (after an update too, and none for an
// empty one); MessageHeadsAfter gives the entries after each conversation's
// position (their heads); Settings gives the settings of a prefix and no
// other; Messages pages by position and limit.
func testLatestAndAfter(t *testing.T, o Opener) {
	s := o.Open(t)
	Update(t, s, func(tx store.Tx) error {
		for conv := range protocol.ConversationID(4) {
			if err := tx.PutConversation(&store.Conversation{ID: conv + 1, Created: Now}); err != nil {
				return err
			}
		}
		// Conversation 1 has 3 entries, 2 none, 3 one (a system line), 4 five.
		for conv, n := range map[protocol.ConversationID]int{1: 3, 3: 1, 4: 5} {
			for i := range n {
				m := &store.Message{Conversation: conv, ID: MID(byte(10*conv) + byte(i)), Sender: "bob", Sent: Now, Received: Now, Text: fmt.Sprintf("%d.%d", conv, i+1)}
				if conv == 3 {
					m.Text, m.System = "", &store.SystemEvent{Kind: "joined", Users: []string{"alice"}}
				}
				if _, err := tx.AddMessage(m); err != nil {
					return err
				}
				if m.Seq != int64(i+1) {
					t.Errorf("AddMessage gave %d/%d, want seq %d", conv, m.Seq, i+1)
				}
			}
		}
		m, err := tx.MessageByID(4, MID(44))
		if err != nil {
			return err
		}
		m.Deleted, m.Text = true, ""
		if err := tx.UpdateMessage(m); err != nil {
			return err
		}
		for name, v := range map[string]string{"read/1": "2", "read/4": "9", "read/": "x", "reader": "y", "rea": "z", "self_update/1": "w"} {
			if err := tx.SetSetting(name, []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	check := func(s store.Store) {
		t.Helper()
		View(t, s, func(tx store.Tx) error {
			latest, err := tx.LatestMessages()
			if err != nil {
				return err
			}
			var got []string
			for _, m := range latest {
				got = append(got, fmt.Sprintf("%d/%d:%s:%v:%v", m.Conversation, m.Seq, m.Text, m.Deleted, m.System != nil))
			}
			if want := []string{"1/3:1.3:false:false", "3/1::false:true", "4/5::true:false"}; !reflect.DeepEqual(got, want) {
				t.Errorf("latest entries %q, want %q", got, want)
			}

			got = nil
			err = tx.MessageHeadsAfter(map[protocol.ConversationID]int64{1: 1, 2: 0, 3: 0, 4: 3}, func(m *store.MessageHead) error {
				got = append(got, fmt.Sprintf("%d/%d:%s:%v:%v", m.Conversation, m.Seq, m.Sender, m.Deleted, m.System))
				return nil
			})
			if err != nil {
				return err
			}
			slices.Sort(got)
			if want := []string{"1/2:bob:false:false", "1/3:bob:false:false", "3/1:bob:false:true", "4/4:bob:false:false", "4/5:bob:true:false"}; !reflect.DeepEqual(got, want) {
				t.Errorf("entries after the positions %q, want %q", got, want)
			}
			if err := tx.MessageHeadsAfter(nil, func(*store.MessageHead) error { t.Error("MessageHeadsAfter(nil) called each"); return nil }); err != nil {
				t.Errorf("MessageHeadsAfter(nil): %v", err)
			}

			settings, err := tx.Settings("read/")
			if err != nil {
				return err
			}
			if want := map[string][]byte{"read/": []byte("x"), "read/1": []byte("2"), "read/4": []byte("9")}; !reflect.DeepEqual(settings, want) {
				t.Errorf("settings read/*: %q, want %q", settings, want)
			}
			if all, err := tx.Settings(""); err != nil || len(all) != 6 {
				t.Errorf("Settings(\"\") = %q, %v; want all 6", all, err)
			}
			if _, err := tx.Setting("nothing"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Setting of an unknown name: %v, want ErrNotFound", err)
			}

			var texts []string
			page, err := tx.Messages(4, 1, 2)
			for _, m := range page {
				texts = append(texts, fmt.Sprintf("%d:%s", m.Seq, m.Text))
			}
			if want := []string{"2:4.2", "3:4.3"}; err != nil || !reflect.DeepEqual(texts, want) {
				t.Errorf("Messages(4, 1, 2) = %q, %v; want %q", texts, err, want)
			}
			if ms, err := tx.LastMessages(4, 10); err != nil || len(ms) != 5 || ms[0].Seq != 1 {
				t.Errorf("LastMessages(4, 10) = %d messages, %v", len(ms), err)
			}
			if ms, err := tx.Messages(2, 0, 0); err != nil || len(ms) != 0 {
				t.Errorf("Messages of an empty history = %+v, %v", ms, err)
			}
			return nil
		})
	}
	check(s)
	s.Close()
	check(o.Open(t))
}

// testMessageTexts: MessageTexts gives every entry of one conversation in
// order, with its sender, time, text, content and whether it is deleted
// or a system line.
func testMessageTexts(t *testing.T, o Opener) {
	s := o.Open(t)
	Update(t, s, func(tx store.Tx) error {
		for conv := range protocol.ConversationID(2) {
			if err := tx.PutConversation(&store.Conversation{ID: conv + 1, Created: Now}); err != nil {
				return err
			}
		}
		msgs := []*store.Message{
			{Conversation: 1, ID: MID(1), Sender: "alice", Sent: Now, System: &store.SystemEvent{Kind: "joined"}},
			{Conversation: 1, ID: MID(2), Sender: "bob", Sent: Now.Add(time.Minute), Text: "hello", Content: []byte{1, 2}},
			{Conversation: 2, ID: MID(3), Sender: "carol", Sent: Now, Text: "other"},
			{Conversation: 1, ID: MID(4), Sender: "bob", Sent: Now, Deleted: true},
		}
		for _, m := range msgs {
			if _, err := tx.AddMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
	texts := func(s store.Store) {
		t.Helper()
		View(t, s, func(tx store.Tx) error { return textsCheck(t, tx) })
	}
	texts(s)
	s.Close()
	texts(o.Open(t))
}

// textsCheck checks the texts that testMessageTexts wrote.
func textsCheck(t *testing.T, tx store.Tx) error {
	t.Helper()
	var got []string
	err := tx.MessageTexts(1, func(m *store.MessageText) error {
		got = append(got, fmt.Sprintf("%d/%d:%s:%s:%s:%x:%v:%v", m.Conversation, m.Seq, m.Sender, m.Sent.Sub(Now), m.Text, m.Content, m.Deleted, m.System))
		return nil
	})
	if want := []string{"1/1:alice:0s:::false:true", "1/2:bob:1m0s:hello:0102:false:false", "1/3:bob:0s:::true:false"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("MessageTexts(1) = %q, %v; want %q", got, err, want)
	}
	return nil
}
