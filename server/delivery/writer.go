package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// submission is one application message waiting for the group-commit
// writer. done is called from the writer goroutine once the transaction
// committed (or failed); it must not block.
type submission struct {
	entry store.NewEntry
	done  func(store.Entry, error)
}

// convMeta caches what application-message checks need.
type convMeta struct {
	groupID []byte
	epoch   uint64
}

// meta returns the group id and epoch of a conversation, from the cache
// unless refresh is set.
func (s *Service) meta(ctx context.Context, id store.ConversationID, refresh bool) (convMeta, error) {
	if !refresh {
		if v, ok := s.metaCache.Load(id); ok {
			return v.(convMeta), nil
		}
	}
	c, err := s.conversation(ctx, id)
	if err != nil {
		return convMeta{}, err
	}
	m := convMeta{groupID: c.GroupID, epoch: c.Epoch}
	s.metaCache.Store(id, m)
	return m, nil
}

// setEpoch records a conversation's new epoch after an accepted commit.
func (s *Service) setEpoch(id store.ConversationID, groupID []byte, epoch uint64) {
	s.metaCache.Store(id, convMeta{groupID: groupID, epoch: epoch})
}

// checkApplication checks an application message for a conversation: an
// MLSMessage-framed PrivateMessage carrying application data, of the
// conversation's group, of its current epoch or one of the PastEpochs
// before it.
func (s *Service) checkApplication(ctx context.Context, id store.ConversationID, msg []byte) error {
	if len(msg) == 0 {
		return perr(protocol.CodeBadRequest, "send to conversation %d: empty message", id)
	}
	if int64(len(msg)) > s.cfg.MaxMessageBytes {
		return perr(protocol.CodeTooLarge, "send to conversation %d: message is %d bytes, at most %d", id, len(msg), s.cfg.MaxMessageBytes)
	}
	h, err := s.fol.PeekPrivate(msg)
	if err != nil {
		return perr(protocol.CodeBadMessage, "send to conversation %d: %v", id, err)
	}
	if h.ContentType != 1 {
		return perr(protocol.CodeBadMessage, "send to conversation %d: PrivateMessage content type %d; handshakes go to the handshake endpoint as PublicMessage", id, h.ContentType)
	}
	m, err := s.meta(ctx, id, false)
	if err != nil {
		return err
	}
	if h.Epoch > m.epoch { // another node may have accepted a commit
		if m, err = s.meta(ctx, id, true); err != nil {
			return err
		}
	}
	if !bytes.Equal(h.GroupID, m.groupID) {
		return perr(protocol.CodeBadMessage, "send to conversation %d: message is for another group", id)
	}
	if h.Epoch > m.epoch || h.Epoch+s.cfg.PastEpochs < m.epoch {
		return perr(protocol.CodeBadMessage, "send to conversation %d: message is for epoch %d, the conversation is at %d", id, h.Epoch, m.epoch)
	}
	return nil
}

// Send appends an application message from the caller device to a
// conversation and returns once it is durable.
func (s *Service) Send(ctx context.Context, sess *Session, id protocol.ConversationID, req protocol.SendRequest) (protocol.SendResponse, error) {
	if len(req.ClientID) > 64 {
		return protocol.SendResponse{}, perr(protocol.CodeBadRequest, "client id is %d bytes, at most 64", len(req.ClientID))
	}
	cid := store.ConversationID(id)
	if err := s.requireMember(ctx, sess, cid); err != nil {
		return protocol.SendResponse{}, err
	}
	type result struct {
		e   store.Entry
		err error
	}
	ch := make(chan result, 1)
	err := s.submitApp(ctx, sess.Device, cid, req.Message, func(e store.Entry, err error) { ch <- result{e, err} })
	if err != nil {
		return protocol.SendResponse{}, err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return protocol.SendResponse{}, r.err
		}
		return protocol.SendResponse{ClientID: req.ClientID, Seq: r.e.Seq, Time: r.e.Created.UTC()}, nil
	case <-ctx.Done():
		// The entry may still be stored; the client sees it in the log.
		return protocol.SendResponse{}, perr(protocol.CodeUnavailable, "send to conversation %d: cancelled before the entry was durable", id)
	}
}

// submitApp checks an application message and queues it for the writer;
// done is called from the writer once it is durable or refused. Membership
// is checked by the store in the same transaction.
func (s *Service) submitApp(ctx context.Context, device store.DeviceID, id store.ConversationID, msg []byte, done func(store.Entry, error)) error {
	if err := s.checkApplication(ctx, id, msg); err != nil {
		s.metrics.refused.WithLabelValues(codeOf(err)).Inc()
		return err
	}
	sub := &submission{entry: store.NewEntry{Conversation: id, Sender: device, Data: msg}, done: done}
	select {
	case s.submit <- sub:
		return nil
	case <-ctx.Done():
		return perr(protocol.CodeUnavailable, "send to conversation %d: cancelled while queued", id)
	case <-s.done:
		return perr(protocol.CodeUnavailable, "server is shutting down")
	}
}

func codeOf(err error) string {
	pe, _ := AsProtocolError(err)
	return string(pe.Code)
}

// writeLoop is the group-commit writer: it gathers up to MaxBatch
// submissions (waiting up to MaxBatchDelay after the first) and appends
// them in one transaction. It returns when ctx ends, refusing what is
// still queued.
func (s *Service) writeLoop(ctx context.Context) {
	defer close(s.done)
	batch := make([]*submission, 0, s.cfg.MaxBatch)
	var timer *time.Timer
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			s.drain()
			return
		case sub := <-s.submit:
			batch = append(batch, sub)
		}
		if s.cfg.MaxBatchDelay > 0 {
			if timer == nil {
				timer = time.NewTimer(s.cfg.MaxBatchDelay)
			} else {
				timer.Reset(s.cfg.MaxBatchDelay)
			}
		gather:
			for len(batch) < s.cfg.MaxBatch {
				select {
				case sub := <-s.submit:
					batch = append(batch, sub)
				case <-timer.C:
					break gather
				case <-ctx.Done():
					break gather
				}
			}
			timer.Stop()
		} else {
		greedy:
			for len(batch) < s.cfg.MaxBatch {
				select {
				case sub := <-s.submit:
					batch = append(batch, sub)
				default:
					break greedy
				}
			}
		}
		s.flush(ctx, batch)
	}
}

// drain refuses every queued submission.
func (s *Service) drain() {
	for {
		select {
		case sub := <-s.submit:
			sub.done(store.Entry{}, perr(protocol.CodeUnavailable, "server is shutting down"))
		default:
			return
		}
	}
}

// flush appends a batch in one transaction and answers every submission.
func (s *Service) flush(ctx context.Context, batch []*submission) {
	now := s.stamp()
	entries := make([]store.NewEntry, len(batch))
	for i, sub := range batch {
		entries[i] = sub.entry
		entries[i].Created = now
	}
	start := time.Now()
	res, err := s.st.AppendEntries(ctx, entries)
	s.metrics.batchTime.Observe(time.Since(start).Seconds())
	s.metrics.batchSize.Observe(float64(len(batch)))
	if err != nil {
		s.log.Error("append batch failed", "entries", len(batch), "err", err)
		for _, sub := range batch {
			s.metrics.refused.WithLabelValues(string(protocol.CodeInternal)).Inc()
			sub.done(store.Entry{}, internal(fmt.Sprintf("append to conversation %d", sub.entry.Conversation), err))
		}
		return
	}
	var touched []store.ConversationID
	var frames map[store.ConversationID][]*entryFrame
	for i, sub := range batch {
		r := res[i]
		switch {
		case r.Err == nil:
			s.metrics.appended.Inc()
			if frames == nil {
				frames = make(map[store.ConversationID][]*entryFrame)
			}
			c := r.Entry.Conversation
			if _, ok := frames[c]; !ok {
				touched = append(touched, c)
			}
			frames[c] = append(frames[c], newEntryFrame(r.Entry))
			sub.done(r.Entry, nil)
		case errors.Is(r.Err, store.ErrNotMember):
			s.metrics.refused.WithLabelValues(string(protocol.CodeNotMember)).Inc()
			sub.done(store.Entry{}, perr(protocol.CodeNotMember, "device %q is not a member of conversation %d", sub.entry.Sender, sub.entry.Conversation))
		case errors.Is(r.Err, store.ErrNotFound):
			s.metrics.refused.WithLabelValues(string(protocol.CodeNotFound)).Inc()
			sub.done(store.Entry{}, perr(protocol.CodeNotFound, "no conversation %d", sub.entry.Conversation))
		default:
			s.metrics.refused.WithLabelValues(string(protocol.CodeInternal)).Inc()
			sub.done(store.Entry{}, internal("append", r.Err))
		}
	}
	// The tails first, then the wake-ups: a woken connection finds the new
	// entries in the tail.
	for _, c := range touched {
		fs := frames[c]
		s.tails.add(c, fs)
		s.notify.Publish(Event{Topic: Topic{Conversation: c}, Head: fs[len(fs)-1].e.Seq})
	}
}
