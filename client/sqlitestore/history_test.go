package sqlitestore

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// TestSystemLineRecords: a system line is a history record like a
// message (its position, its id, its delivery state), keeps its change
// across a reopen, and a message written before system lines existed
// reads as a message; a conversation keeps who removed this device.
func TestSystemLineRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := openStore(t, path, passOpts("pw"))
	sys := &store.SystemEvent{Kind: "device_removed", Users: []string{"bob"}, Devices: []protocol.DeviceID{"d1", "d2"}}
	rename := &store.SystemEvent{Kind: "renamed", Value: "crew", Previous: "team"}
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutConversation(&store.Conversation{ID: 3, Members: []string{"alice", "bob"}, Left: true, RemovedBy: "alice", Created: now}); err != nil {
			return err
		}
		for _, m := range []*store.Message{
			{Conversation: 3, ID: mid(1), Sender: "alice", Sent: now, Received: now, ServerSeq: 4, Text: "hi", State: store.Sent},
			{Conversation: 3, ID: mid(2), Sender: "alice", SenderDevice: "da", Sent: now, Received: now, ServerSeq: 5, System: sys},
			{Conversation: 3, ID: mid(3), Sender: "bob", Sent: now, Received: now, State: store.Pending, System: rename},
		} {
			if added, err := tx.AddMessage(m); err != nil || !added {
				t.Fatalf("add %x: %v, %v", m.ID, added, err)
			}
		}
		m, err := tx.MessageByID(3, mid(3))
		if err != nil {
			return err
		}
		m.ServerSeq, m.State = 6, store.Sent
		return tx.UpdateMessage(m)
	})
	s.Close()

	s = openStore(t, path, passOpts("pw"))
	view(t, s, func(tx store.Tx) error {
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

// TestLatestAndAfter: LatestMessages gives the last entry of every
// conversation with a history (after an update too, and none for an
// empty one); MessageHeadsAfter gives the entries after each conversation's
// position (their heads); Settings gives the settings of a prefix and no other.
func TestLatestAndAfter(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "s.db"), passOpts("pw"))
	update(t, s, func(tx store.Tx) error {
		for conv := range protocol.ConversationID(4) {
			if err := tx.PutConversation(&store.Conversation{ID: conv + 1, Created: now}); err != nil {
				return err
			}
		}
		// Conversation 1 has 3 entries, 2 none, 3 one (a system line), 4 five.
		for conv, n := range map[protocol.ConversationID]int{1: 3, 3: 1, 4: 5} {
			for i := range n {
				m := &store.Message{Conversation: conv, ID: mid(byte(10*conv) + byte(i)), Sender: "bob", Sent: now, Received: now, Text: fmt.Sprintf("%d.%d", conv, i+1)}
				if conv == 3 {
					m.Text, m.System = "", &store.SystemEvent{Kind: "joined", Users: []string{"alice"}}
				}
				if _, err := tx.AddMessage(m); err != nil {
					return err
				}
			}
		}
		m, err := tx.MessageByID(4, mid(44))
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
	view(t, s, func(tx store.Tx) error {
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

		settings, err := tx.Settings("read/")
		if err != nil {
			return err
		}
		if want := map[string][]byte{"read/": []byte("x"), "read/1": []byte("2"), "read/4": []byte("9")}; !reflect.DeepEqual(settings, want) {
			t.Errorf("settings read/*: %q, want %q", settings, want)
		}
		return nil
	})
}

// TestMessageTexts: MessageTexts gives every entry of one conversation in
// order, with its sender, time, text, content and whether it is deleted
// or a system line.
func TestMessageTexts(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "s.db"), passOpts("pw"))
	update(t, s, func(tx store.Tx) error {
		for conv := range protocol.ConversationID(2) {
			if err := tx.PutConversation(&store.Conversation{ID: conv + 1, Created: now}); err != nil {
				return err
			}
		}
		msgs := []*store.Message{
			{Conversation: 1, ID: mid(1), Sender: "alice", Sent: now, System: &store.SystemEvent{Kind: "joined"}},
			{Conversation: 1, ID: mid(2), Sender: "bob", Sent: now.Add(time.Minute), Text: "hello", Content: []byte{1, 2}},
			{Conversation: 2, ID: mid(3), Sender: "carol", Sent: now, Text: "other"},
			{Conversation: 1, ID: mid(4), Sender: "bob", Sent: now, Deleted: true},
		}
		for _, m := range msgs {
			if _, err := tx.AddMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx store.Tx) error {
		var got []string
		err := tx.MessageTexts(1, func(m *store.MessageText) error {
			got = append(got, fmt.Sprintf("%d/%d:%s:%s:%s:%x:%v:%v", m.Conversation, m.Seq, m.Sender, m.Sent.Sub(now), m.Text, m.Content, m.Deleted, m.System))
			return nil
		})
		if want := []string{"1/1:alice:0s:::false:true", "1/2:bob:1m0s:hello:0102:false:false", "1/3:bob:0s:::true:false"}; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("MessageTexts(1) = %q, %v; want %q", got, err, want)
		}
		return nil
	})
}
