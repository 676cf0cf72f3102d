package client

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/parley-chat/parley/protocol"
)

// ackEvery is the least time between two acknowledgement frames of a
// connection. The first entry after a quiet spell is acknowledged at
// once; the entries that come within ackEvery of that frame share the
// next one. The protocol asks clients to acknowledge in batches (a
// server bounds the frames a connection may send per second, parleyd at
// 1,000 by default): a catch-up of thousands of entries, one frame each,
// could exceed it. An acknowledgement only lets the server delete its
// log sooner: the client resumes from its own stored positions, so one
// that never reaches the server (the connection dropped) costs nothing
// but entries sent again and skipped.
const ackEvery = 100 * time.Millisecond

// acker gathers the positions a connection's reader has applied and
// sends them, the highest per conversation and of the inbox, in one
// AckFrame at most every ackEvery.
type acker struct {
	w     *wsConn
	kick  chan struct{} // has a value when acknowledgements wait
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	convs map[protocol.ConversationID]uint64
	inbox uint64
}

// startAcker starts sending w's acknowledgements until stop.
func startAcker(ctx context.Context, w *wsConn) *acker {
	a := &acker{
		w:     w,
		kick:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		convs: make(map[protocol.ConversationID]uint64),
	}
	go a.run(ctx)
	return a
}

// entry records that the entry at seq of conv is applied.
func (a *acker) entry(conv protocol.ConversationID, seq uint64) {
	a.mu.Lock()
	a.convs[conv] = max(a.convs[conv], seq)
	a.mu.Unlock()
	a.wake()
}

// inboxEntry records that the inbox entry at seq is applied.
func (a *acker) inboxEntry(seq uint64) {
	a.mu.Lock()
	a.inbox = max(a.inbox, seq)
	a.mu.Unlock()
	a.wake()
}

func (a *acker) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// take returns the waiting acknowledgements as a frame and forgets
// them; nil if none wait. A frame holds at most protocol.MaxAckCursors
// cursors: more wait for the next one.
func (a *acker) take() *protocol.AckFrame {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.convs) == 0 && a.inbox == 0 {
		return nil
	}
	f := &protocol.AckFrame{Inbox: a.inbox}
	a.inbox = 0
	for _, conv := range slices.Sorted(maps.Keys(a.convs)) {
		if len(f.Cursors) == protocol.MaxAckCursors {
			a.wake()
			break
		}
		f.Cursors = append(f.Cursors, protocol.Cursor{Conversation: conv, Seq: a.convs[conv]})
		delete(a.convs, conv)
	}
	return f
}

func (a *acker) run(ctx context.Context) {
	defer close(a.done)
	for {
		select {
		case <-a.kick:
		case <-a.stop:
			return
		}
		if f := a.take(); f != nil {
			a.w.write(ctx, f) // a failed write ends the connection's reader too
		}
		select {
		case <-time.After(ackEvery):
		case <-a.stop:
			return
		}
	}
}

// close stops the acker and sends what still waits if the connection
// still takes it within a second: after an entry failed to apply, say;
// not when the read ended because the connection or ctx did.
func (a *acker) close(ctx context.Context) {
	close(a.stop)
	<-a.done
	if f := a.take(); f != nil {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		a.w.write(wctx, f)
	}
}
