package client

import (
	"testing"

	"github.com/parley-chat/parley/protocol"
)

// TestAckerTake: the acker keeps the highest seq per conversation and of
// the inbox, and splits what waits into frames of at most
// protocol.MaxAckCursors cursors, asking for another round while some
// are left.
func TestAckerTake(t *testing.T) {
	a := &acker{kick: make(chan struct{}, 1), convs: map[protocol.ConversationID]uint64{}}
	n := protocol.MaxAckCursors + 5
	for conv := 1; conv <= n; conv++ {
		a.entry(protocol.ConversationID(conv), 7)
		a.entry(protocol.ConversationID(conv), 9)
		a.entry(protocol.ConversationID(conv), 8)
	}
	a.inboxEntry(4)
	a.inboxEntry(3)
	<-a.kick
	f := a.take()
	if len(f.Cursors) != protocol.MaxAckCursors || f.Inbox != 4 {
		t.Fatalf("first frame: %d cursors, inbox %d; want %d and 4", len(f.Cursors), f.Inbox, protocol.MaxAckCursors)
	}
	for i, c := range f.Cursors {
		if c.Conversation != protocol.ConversationID(i+1) || c.Seq != 9 {
			t.Fatalf("first frame, cursor %d: %+v; want conversation %d at 9", i, c, i+1)
		}
	}
	select {
	case <-a.kick:
	default:
		t.Fatal("cursors left, but no round asked for")
	}
	f = a.take()
	if len(f.Cursors) != 5 || f.Inbox != 0 || f.Cursors[0].Conversation != protocol.MaxAckCursors+1 {
		t.Fatalf("second frame: %+v; want the 5 cursors left and no inbox", f)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if f := a.take(); f != nil {
		t.Fatalf("third frame %+v, want none", f)
	}
}
