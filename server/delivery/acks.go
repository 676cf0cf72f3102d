package delivery

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// Acknowledgements are group-committed like appends: they are coalesced
// per (device, conversation) in memory, keeping the highest seq, and the
// ack loop writes everything pending in one transaction (Store.AckBatch)
// while the next acks accumulate. A WebSocket ack is not answered, so it
// is not waited for: one may be lost in a crash, and the device then
// receives those entries again after reconnecting and drops them by seq
// (as after any disconnect before an ack). POST /v1/ack answers only once
// its batch committed.
//
// One device's acknowledgement must never fail another's: cursors are
// range-checked before they are batched, and a batch whose transaction
// fails as a whole is retried in halves so that only the failing items'
// callers get the error (commitAcks).

// ackKey identifies one cursor.
type ackKey struct {
	device store.DeviceID
	conv   store.ConversationID
}

// ackPending is the highest unwritten acknowledgement of one cursor and
// the callers waiting for it.
type ackPending struct {
	seq     uint64
	waiters []func(error)
}

// acker coalesces acknowledgements for the ack loop.
type acker struct {
	mu       sync.Mutex
	pending  map[ackKey]*ackPending
	inflight bool
	barriers []chan struct{}
	wake     chan struct{}
}

func newAcker() *acker {
	return &acker{pending: make(map[ackKey]*ackPending), wake: make(chan struct{}, 1)}
}

func (a *acker) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// queueAck records an acknowledgement; done, if not nil, is called from
// the ack loop with its outcome once the batch holding it committed (or
// failed). done must not block.
func (s *Service) queueAck(device store.DeviceID, conv store.ConversationID, seq uint64, done func(error)) {
	if seq > protocol.MaxSeq || conv < 1 {
		// Callers validate first; whatever slips through fails alone here
		// rather than the transaction shared with other devices.
		if done != nil {
			done(fmt.Errorf("ack conversation %d to seq %d: out of range: %w", conv, seq, store.ErrInvalid))
		}
		return
	}
	a := s.acks
	k := ackKey{device, conv}
	a.mu.Lock()
	p := a.pending[k]
	if p == nil {
		p = &ackPending{seq: seq}
		a.pending[k] = p
	} else if seq > p.seq {
		p.seq = seq
	}
	if done != nil {
		p.waiters = append(p.waiters, done)
	}
	a.mu.Unlock()
	a.signal()
}

// ackBarrier returns once every acknowledgement queued before the call is
// written (or failed), or when ctx ends.
func (s *Service) ackBarrier(ctx context.Context) error {
	a := s.acks
	a.mu.Lock()
	if len(a.pending) == 0 && !a.inflight {
		a.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	a.barriers = append(a.barriers, ch)
	a.mu.Unlock()
	a.signal()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return nil
	}
}

// ackLoop writes pending acknowledgements, one transaction per round,
// until ctx ends; what is pending then is written with a short grace.
func (s *Service) ackLoop(ctx context.Context) {
	a := s.acks
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.flushAcks(fctx)
			cancel()
			return
		case <-a.wake:
		}
		s.flushAcks(ctx)
	}
}

// flushAcks writes what is pending in one transaction and releases the
// waiters and the barriers registered before it started.
func (s *Service) flushAcks(ctx context.Context) {
	a := s.acks
	a.mu.Lock()
	take, bars := a.pending, a.barriers
	n := len(take)
	if n > 0 {
		a.pending = make(map[ackKey]*ackPending, n)
	} else {
		take = nil // still a.pending: not ours to read after unlocking
	}
	a.barriers = nil
	a.inflight = n > 0
	a.mu.Unlock()
	if n > 0 {
		batch := make([]store.Ack, 0, n)
		waits := make([][]func(error), 0, n)
		for k, p := range take {
			batch = append(batch, store.Ack{Device: k.device, Conversation: k.conv, Seq: p.seq})
			waits = append(waits, p.waiters)
		}
		errs := s.commitAcks(ctx, batch)
		for i, ws := range waits {
			for _, w := range ws {
				w(errs[i])
			}
		}
		a.mu.Lock()
		a.inflight = false
		if len(a.pending) > 0 || len(a.barriers) > 0 {
			a.signal()
		}
		a.mu.Unlock()
	}
	for _, ch := range bars {
		close(ch)
	}
}

// commitAcks writes batch and returns each acknowledgement's outcome.
// When the transaction fails as a whole (rather than refusing single
// acknowledgements), it is retried in halves, so that an acknowledgement
// the store cannot write fails only its own callers and not the other
// devices' acknowledgements that happened to share its batch. The retries
// are bounded (a few per bit of the batch size: enough to isolate a few
// failing items, few enough not to stall the loop when the store is
// down); past the budget, or once ctx ended, a failing half shares the
// error.
func (s *Service) commitAcks(ctx context.Context, batch []store.Ack) []error {
	out := make([]error, len(batch))
	budget := 4*bits.Len(uint(len(batch))) + 4
	var write func(part []store.Ack, res []error)
	write = func(part []store.Ack, res []error) {
		start := time.Now()
		errs, err := s.st.AckBatch(ctx, part)
		s.metrics.ackBatchTime.Observe(time.Since(start).Seconds())
		s.metrics.ackBatchSize.Observe(float64(len(part)))
		if err == nil {
			copy(res, errs)
			for i, e := range errs[:min(len(errs), len(part))] {
				if e != nil {
					s.log.Debug("ack refused", "device", part[i].Device, "conversation", part[i].Conversation, "seq", part[i].Seq, "err", e)
				}
			}
			return
		}
		if len(part) > 1 && budget >= 2 && ctx.Err() == nil {
			budget -= 2
			half := len(part) / 2
			write(part[:half], res[:half])
			write(part[half:], res[half:])
			return
		}
		if len(part) == 1 {
			s.log.Error("ack failed", "device", part[0].Device, "conversation", part[0].Conversation, "seq", part[0].Seq, "err", err)
		} else {
			s.log.Error("ack batch failed", "acks", len(part), "err", err)
		}
		for i := range res {
			res[i] = err
		}
	}
	write(batch, out)
	return out
}

// ackError maps the store's outcome of one acknowledgement to the
// protocol's.
func ackError(sess *Session, c protocol.Cursor, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotMember), errors.Is(err, store.ErrNotFound):
		return perr(protocol.CodeNotMember, "ack: device %q is not a member of conversation %d", sess.Device, c.Conversation)
	case errors.Is(err, store.ErrInvalid):
		return perr(protocol.CodeBadRequest, "ack: seq %d is beyond what device %q may read of conversation %d", c.Seq, sess.Device, c.Conversation)
	}
	return internal(fmt.Sprintf("ack conversation %d", c.Conversation), err)
}

// Ack advances the caller device's cursors and deletes its inbox entries
// up to inbox. Older seqs are ignored. It returns once the cursors are
// durable (group-committed with other devices' acknowledgements).
func (s *Service) Ack(ctx context.Context, sess *Session, cursors []protocol.Cursor, inbox uint64) error {
	if len(cursors) > protocol.MaxAckCursors {
		return perr(protocol.CodeTooLarge, "ack: %d cursors, at most %d", len(cursors), protocol.MaxAckCursors)
	}
	// Validated before anything is batched with other devices' acks.
	if err := (&protocol.AckRequest{Cursors: cursors, Inbox: inbox}).Validate(); err != nil {
		return err
	}
	if len(cursors) > 0 {
		errs := make(chan error, len(cursors))
		for _, c := range cursors {
			s.queueAck(sess.Device, store.ConversationID(c.Conversation), c.Seq, func(err error) { errs <- ackError(sess, c, err) })
		}
		var first error
		for range cursors {
			select {
			case err := <-errs:
				if first == nil {
					first = err
				}
			case <-ctx.Done():
				return perr(protocol.CodeUnavailable, "ack: cancelled before the cursors were durable")
			case <-s.done:
				return perr(protocol.CodeUnavailable, "server is shutting down")
			}
		}
		if first != nil {
			return first
		}
	}
	if inbox > 0 {
		if err := s.st.AckInbox(ctx, sess.Device, inbox); err != nil {
			return internal("ack inbox", err)
		}
	}
	return nil
}

// ackAsync queues the cursors of a WebSocket ack (validated by Conn.Ack)
// without waiting: a refused one closes the connection with the reason.
func (c *Conn) ackAsync(cursors []protocol.Cursor) error {
	if len(cursors) > protocol.MaxAckCursors {
		return perr(protocol.CodeTooLarge, "ack: %d cursors, at most %d", len(cursors), protocol.MaxAckCursors)
	}
	for _, cur := range cursors {
		c.s.queueAck(c.sess.Device, store.ConversationID(cur.Conversation), cur.Seq, func(err error) {
			if err == nil {
				return
			}
			pe, ok := AsProtocolError(ackError(&c.sess, cur, err))
			if ok {
				c.Fail(pe)
			} // an internal failure is logged by the ack loop; the ack is lost
		})
	}
	return nil
}
