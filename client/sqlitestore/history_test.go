package sqlitestore

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/parley-chat/parley/protocol"
)

// TestSystemLineRecords: a system line is a history record like a
// message (its position, its id, its delivery state), keeps its change
// across a reopen, and a message written before system lines existed
// reads as a message; a conversation keeps who removed this device.
func TestSystemLineRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := openStore(t, path, passOpts("pw"))
	sys := &SystemEvent{Kind: "device_removed", Users: []string{"bob"}, Devices: []protocol.DeviceID{"d1", "d2"}}
	rename := &SystemEvent{Kind: "renamed", Value: "crew", Previous: "team"}
	update(t, s, func(tx *Tx) error {
		if err := tx.PutConversation(&Conversation{ID: 3, Members: []string{"alice", "bob"}, Left: true, RemovedBy: "alice", Created: now}); err != nil {
			return err
		}
		for _, m := range []*Message{
			{Conversation: 3, ID: mid(1), Sender: "alice", Sent: now, Received: now, ServerSeq: 4, Text: "hi", State: Sent},
			{Conversation: 3, ID: mid(2), Sender: "alice", SenderDevice: "da", Sent: now, Received: now, ServerSeq: 5, System: sys},
			{Conversation: 3, ID: mid(3), Sender: "bob", Sent: now, Received: now, State: Pending, System: rename},
		} {
			if added, err := tx.AddMessage(m); err != nil || !added {
				t.Fatalf("add %x: %v, %v", m.ID, added, err)
			}
		}
		m, err := tx.MessageByID(3, mid(3))
		if err != nil {
			return err
		}
		m.ServerSeq, m.State = 6, Sent
		return tx.UpdateMessage(m)
	})
	s.Close()

	s = openStore(t, path, passOpts("pw"))
	view(t, s, func(tx *Tx) error {
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
		if !reflect.DeepEqual(ms[2].System, rename) || ms[2].ServerSeq != 6 || ms[2].State != Sent {
			t.Errorf("updated system line read as %+v (%+v)", ms[2], ms[2].System)
		}
		return nil
	})
}
