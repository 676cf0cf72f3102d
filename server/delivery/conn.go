package delivery

import (
	"context"
	"errors"
	"sync"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// connPage is how many entries a connection reads from the store at once.
const connPage = 64

// Conn is the transport-agnostic state of one connected device (DERP's
// sclient): the adapter runs one reader loop that calls Subscribe, Ack,
// Send, Typing and Ping, and one writer loop that calls Next and writes
// what it returns (or, attached with AttachWake, a writer that polls only
// after a wake-up). Entries are not queued: Next reads them after the
// connection's cursors — from the service's tail cache of recent entries,
// else from the store — when a notification marks a conversation dirty,
// so a slow reader only lags and nothing is lost or duplicated. The
// bounded queue holds only answers (sent, error, pong) and typing signals;
// when it overflows the connection is closed (a slow consumer resumes from
// its cursors later).
//
// Membership changes only with handshake entries, so each handshake entry
// handed out is a barrier: the connection re-reads its membership of that
// conversation before it reads further. A device removed by a commit thus
// receives that commit (its departed membership allows reading up to it)
// and nothing after it, whatever the order of notifications.
type Conn struct {
	s      *Service
	sess   Session
	queue  int
	wake   chan struct{} // wake wakes a blocked Next; nil with a wake function
	onWake func()

	applyMu sync.Mutex // applyMu serializes membership reads and their application
	subMu   sync.Mutex // subMu guards unsubs; never held with mu while calling the notifier
	unsubs  map[store.ConversationID]func()
	unsubD  func()

	mu          sync.Mutex
	subscribed  bool
	gen         uint64
	sent        map[store.ConversationID]uint64    // sent is the highest seq handed out per followed conversation
	until       map[store.ConversationID]uint64    // until is the last readable seq of departed conversations
	gaps        map[store.ConversationID][2]uint64 // gaps are the unreadable seqs (from, to] of re-added devices (store.Membership.GapFrom, GapTo)
	recheck     map[store.ConversationID]struct{}  // recheck holds conversations whose membership is read again before more entries
	dirty       map[store.ConversationID]uint64    // dirty holds the conversations to read, with the head to read up to (or unknownHead)
	inboxSent   uint64
	inboxDirty  bool
	memberDirty bool
	revoked     revokedNotice // the "revoked" frames of a client that asked for them
	wantEph     bool          // the client asked for "ephemeral" frames
	control     []protocol.Frame
	pending     []protocol.Frame
	closed      *protocol.Error
}

// Attach returns the connection state of an authenticated device. queue
// bounds the answers and signals waiting to be written. Close it when the
// transport ends.
func (s *Service) Attach(sess *Session, queue int) *Conn {
	return s.attach(sess, queue, nil)
}

// AttachWake is Attach for an adapter without a dedicated writer
// goroutine: instead of blocking in Next, it calls Poll until Poll has
// nothing, and again after wake is called. wake is called from any
// goroutine whenever Poll may have something new; it must not block (it
// typically starts a writer goroutine if none runs). Once Poll returned
// an error, wake may still be called and should be ignored.
func (s *Service) AttachWake(sess *Session, queue int, wake func()) *Conn {
	return s.attach(sess, queue, wake)
}

func (s *Service) attach(sess *Session, queue int, wake func()) *Conn {
	if queue < 1 {
		queue = 1
	}
	c := &Conn{s: s, sess: *sess, queue: queue, onWake: wake, unsubs: make(map[store.ConversationID]func(), 1), sent: make(map[store.ConversationID]uint64, 1),
		until: map[store.ConversationID]uint64{}, gaps: map[store.ConversationID][2]uint64{}, recheck: map[store.ConversationID]struct{}{}}
	if wake == nil {
		c.wake = make(chan struct{}, 1)
	}
	c.unsubD = s.notify.Subscribe(Topic{Device: sess.Device}, c)
	s.conns.Add(1)
	return c
}

// Session returns the connection's session.
func (c *Conn) Session() *Session { return &c.sess }

// Notify implements Subscriber: it marks a topic dirty or queues a typing
// signal, and wakes the writer. It never blocks.
func (c *Conn) Notify(e Event) {
	c.mu.Lock()
	switch {
	case e.Typing != nil:
		if e.Typing.Device == c.sess.Device || !c.subscribed || len(c.control) >= c.queue {
			c.mu.Unlock()
			return // ephemeral: dropped rather than queued without bound
		}
		c.control = append(c.control, &protocol.TypingFrame{Conversation: protocol.ConversationID(e.Topic.Conversation), Device: protocol.DeviceID(e.Typing.Device), Typing: e.Typing.Typing})
	case e.Ephemeral != nil:
		if e.Ephemeral.Device == c.sess.Device {
			c.mu.Unlock()
			return // not back to the sender
		}
		if !c.subscribed || !c.wantEph {
			c.mu.Unlock()
			return // not asked for
		}
		if !c.memberLocked(e.Topic.Conversation) || len(c.control) >= c.queue {
			c.mu.Unlock()
			c.s.metrics.ephemeralOut.WithLabelValues("dropped").Inc()
			return // ephemeral: dropped rather than queued without bound
		}
		c.s.metrics.ephemeralOut.WithLabelValues("queued").Inc()
		c.control = append(c.control, &protocol.EphemeralFrame{Conversation: protocol.ConversationID(e.Topic.Conversation), Device: protocol.DeviceID(e.Ephemeral.Device), Message: e.Ephemeral.Message})
	case e.Topic.Device != "":
		c.inboxDirty, c.memberDirty = true, true
		c.revoked.dirty = c.revoked.wanted
	default:
		head := e.Head
		if head == 0 {
			head = unknownHead
		}
		c.markDirty(e.Topic.Conversation, head)
	}
	c.mu.Unlock()
	c.signal()
}

// markDirty records that a conversation has new entries up to head
// (unknownHead: up to what the store has). c.mu must be held.
func (c *Conn) markDirty(id store.ConversationID, head uint64) {
	if c.dirty == nil {
		c.dirty = make(map[store.ConversationID]uint64)
	}
	if head > c.dirty[id] {
		c.dirty[id] = head
	}
}

func (c *Conn) signal() {
	if c.onWake != nil {
		c.onWake()
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// enqueue queues an answer; a full queue closes the connection.
func (c *Conn) enqueue(f protocol.Frame) {
	c.mu.Lock()
	if len(c.control) >= c.queue {
		if c.closed == nil {
			c.closed = protocol.NewError(protocol.CodeUnavailable, "connection closed: the client reads too slowly")
		}
	} else {
		c.control = append(c.control, f)
	}
	c.mu.Unlock()
	c.signal()
}

// Fail closes the connection with the error: Next returns it.
func (c *Conn) Fail(e *protocol.Error) {
	c.mu.Lock()
	if c.closed == nil {
		c.closed = e
	}
	c.mu.Unlock()
	c.signal()
}

// ErrConnClosed wraps the reason Next ends.
var ErrConnClosed = errors.New("delivery: connection closed")

// Next blocks until there is a frame to write and returns it: an answer or
// typing signal, else the next entry or inbox entry in order. It returns
// an error wrapping a *protocol.Error when the connection must close, or
// ctx's error. It must be called from one goroutine at a time, and only on
// a connection made by Attach.
//
// A returned frame may implement EncodedFrame: its encoding is shared
// with other connections.
func (c *Conn) Next(ctx context.Context) (protocol.Frame, error) {
	return c.next(ctx, true)
}

// Poll is Next without waiting: it returns a nil frame and error when
// there is nothing to write now. It must be called from one goroutine at
// a time.
func (c *Conn) Poll(ctx context.Context) (protocol.Frame, error) {
	return c.next(ctx, false)
}

// next returns the next frame: one already queued, else one the first
// source with work produces (a membership reload, a membership recheck,
// the inbox, a conversation's entries), else it waits for a wake-up
// (wait set) or returns nothing. Each step takes c.mu itself and holds
// it only around the connection's state, never across the store.
func (c *Conn) next(ctx context.Context, wait bool) (protocol.Frame, error) {
	for {
		if f, err := c.queued(); f != nil || err != nil {
			return f, err
		}
		worked, err := c.produce(ctx)
		if err != nil {
			return nil, err
		}
		if worked {
			continue // what it queued (if anything) comes first
		}
		if !wait || c.wake == nil {
			return nil, ctx.Err()
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// produce runs the first source of frames that has work (a membership
// reload, a membership recheck, the revoked members, the inbox, a
// conversation's entries), in order of priority, and reports whether one
// had.
func (c *Conn) produce(ctx context.Context) (bool, error) {
	if did, err := c.reloadIfDirty(ctx); did || err != nil {
		return did, err
	}
	if did, err := c.recheckNext(ctx); did || err != nil {
		return did, err
	}
	if did, err := c.readRevoked(ctx); did || err != nil {
		return did, err
	}
	if did, err := c.readInbox(ctx); did || err != nil {
		return did, err
	}
	return c.readEntries(ctx)
}

// queued returns the reason the connection closed, else the next queued
// frame: answers and typing signals before entries already read; nil
// when nothing is queued.
func (c *Conn) queued() (protocol.Frame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed != nil {
		return nil, errors.Join(ErrConnClosed, c.closed)
	}
	if f := popFrame(&c.control); f != nil {
		return f, nil
	}
	return popFrame(&c.pending), nil
}

// popFrame removes and returns the first frame of q (nil if q is empty),
// dropping the backing array once q is empty.
func popFrame(q *[]protocol.Frame) protocol.Frame {
	if len(*q) == 0 {
		return nil
	}
	f := (*q)[0]
	(*q)[0] = nil
	*q = (*q)[1:]
	if len(*q) == 0 {
		*q = nil
	}
	return f
}

// reloadIfDirty re-reads the memberships after a device event. It reports
// whether it had work.
func (c *Conn) reloadIfDirty(ctx context.Context) (bool, error) {
	c.mu.Lock()
	due := c.subscribed && c.memberDirty
	if due {
		c.memberDirty = false
	}
	c.mu.Unlock()
	if !due {
		return false, nil
	}
	return true, c.reload(ctx)
}

// recheckNext re-reads the membership of one conversation whose handshake
// entry was handed out (a membership barrier). It reports whether it had
// work.
func (c *Conn) recheckNext(ctx context.Context) (bool, error) {
	c.mu.Lock()
	if !c.subscribed || len(c.recheck) == 0 {
		c.mu.Unlock()
		return false, nil
	}
	var id store.ConversationID
	for id = range c.recheck {
		break
	}
	delete(c.recheck, id)
	gen, seq := c.gen, c.sent[id]
	if c.s.notes.unchanged(id, seq, c.sess.Device) {
		// A handshake this node stored that leaves this device's
		// membership as it was: read on without asking the store.
		c.markDirty(id, c.knownHead(id))
		c.mu.Unlock()
		return true, nil
	}
	c.mu.Unlock()
	return true, c.recheckMembership(ctx, id, gen)
}

// knownHead returns the newest seq of a conversation the tail cache
// knows, if it is not behind what the connection has sent, else
// unknownHead (read the store).
func (c *Conn) knownHead(id store.ConversationID) uint64 {
	if last, ok := c.s.tails.last(id); ok && last >= c.sent[id] {
		return last
	}
	return unknownHead
}

// readInbox queues the next page of inbox entries after the last one
// handed out, unless a Subscribe restarted delivery meanwhile. It reports
// whether it had work.
func (c *Conn) readInbox(ctx context.Context) (bool, error) {
	c.mu.Lock()
	if !c.subscribed || !c.inboxDirty {
		c.mu.Unlock()
		return false, nil
	}
	c.inboxDirty = false
	gen, after := c.gen, c.inboxSent
	c.mu.Unlock()
	es, err := c.s.st.Inbox(ctx, c.sess.Device, after, connPage)
	if err != nil {
		return true, internal("connection inbox", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return true, nil
	}
	for _, e := range es {
		if e.Seq > c.inboxSent {
			c.inboxSent = e.Seq
			c.pending = append(c.pending, &protocol.InboxFrame{InboxEntry: inboxEntry(e)})
		}
	}
	if len(es) == connPage {
		c.inboxDirty = true
	}
	return true, nil
}

// readEntries reads the next page of one dirty conversation — from the
// service's tail cache (shared, encoded once), else from the store — and
// queues what the device may read of it. It reports whether it had work.
func (c *Conn) readEntries(ctx context.Context) (bool, error) {
	c.mu.Lock()
	if !c.subscribed || len(c.dirty) == 0 {
		c.mu.Unlock()
		return false, nil
	}
	var id store.ConversationID
	var head uint64
	for id, head = range c.dirty {
		break
	}
	delete(c.dirty, id)
	after, member := c.sent[id]
	until, departed := c.until[id]
	gen := c.gen
	c.mu.Unlock()
	if !member || departed && after >= until || head != unknownHead && after >= head {
		return true, nil // nothing to read there
	}
	fs, cached := c.s.tails.read(id, after, connPage)
	more := len(fs) == connPage
	if !cached {
		es, err := c.s.st.Entries(ctx, id, after, connPage)
		if err != nil {
			return true, internal("connection entries", err)
		}
		fs = make([]*entryFrame, len(es))
		for i, e := range es {
			fs[i] = newEntryFrame(e)
		}
		more = len(es) == connPage
	}
	c.queueEntries(id, gen, head, fs, cached, more)
	return true, nil
}

// queueEntries queues the entries fs of conversation id read after the
// page was picked at generation gen (head: the head it was dirty up to;
// cached: read from the tail; more: the page was full), stopping at the
// device's gap, its departure, or a membership barrier, and marks the
// conversation dirty again when there is more to read.
func (c *Conn) queueEntries(id store.ConversationID, gen, head uint64, fs []*entryFrame, cached, more bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.sent[id]
	if !ok || gen != c.gen {
		return // no longer followed, or a Subscribe restarted delivery
	}
	lim, departed := c.until[id]
	gap, hasGap := c.gaps[id]
	for _, f := range fs {
		e := &f.e
		if e.Seq <= cur {
			continue
		}
		if hasGap && e.Seq > gap[0] && e.Seq <= gap[1] {
			// The time a re-added device was out (its removal's
			// commit may be pruned, so no barrier stops here).
			cur = gap[1]
			continue
		}
		if departed && e.Seq > lim {
			more, head = false, 0
			break
		}
		cur = e.Seq
		c.pending = append(c.pending, f)
		if e.Kind == store.KindHandshake && !departed {
			// A membership barrier: read on only after the
			// membership is read again.
			c.recheck[id] = struct{}{}
			more = true
			break
		}
	}
	c.sent[id] = cur
	if cached && head > cur {
		// The tail ended before the known head (or the head is unknown):
		// read on, from the store if need be.
		more = true
	}
	if more {
		if head == 0 {
			head = unknownHead
		}
		c.markDirty(id, head)
	}
}

// recheckMembership re-reads the device's membership of one conversation
// after a handshake entry: a departed device reads on only up to the
// commit that removed it, and a device no longer a member stops.
func (c *Conn) recheckMembership(ctx context.Context, id store.ConversationID, gen uint64) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	m, err := c.s.st.Membership(ctx, id, c.sess.Device)
	gone := errors.Is(err, store.ErrNotMember)
	if err != nil && !gone {
		return internal("connection membership", err)
	}
	c.mu.Lock()
	if _, ok := c.sent[id]; !ok || gen != c.gen {
		c.mu.Unlock()
		return nil
	}
	if gone {
		delete(c.sent, id)
		delete(c.until, id)
		delete(c.gaps, id)
		delete(c.dirty, id)
		c.mu.Unlock()
		c.subMu.Lock()
		if un := c.unsubs[id]; un != nil {
			un()
			delete(c.unsubs, id)
		}
		c.subMu.Unlock()
		return nil
	}
	c.follow(id, m)
	c.markDirty(id, c.knownHead(id))
	c.mu.Unlock()
	return nil
}

// follow records the membership state m of a followed conversation:
// departed (read up to m.Left) or a member again (after being departed,
// reading restarts at the cursor of the commit that added it), never
// reading before m.Joined nor inside its gap. c.mu must be held.
func (c *Conn) follow(id store.ConversationID, m store.Membership) {
	prev, wasDeparted := c.until[id]
	if m.Left != 0 {
		c.until[id] = m.Left
	} else {
		delete(c.until, id)
	}
	if (wasDeparted && m.Left != prev) && c.sent[id] < m.Cursor {
		c.sent[id] = m.Cursor
	}
	if m.GapTo != 0 {
		c.gaps[id] = [2]uint64{m.GapFrom, m.GapTo}
	} else {
		delete(c.gaps, id)
	}
	// Nothing from before the commit that added the device, nor from the
	// time it was out, whatever cursor the client names. A read that
	// starts before the gap stops at the commit that removed the device
	// (a handshake entry, so the membership is read again here).
	c.sent[id] = m.NextReadable(c.sent[id])
}

// reload re-reads the device's memberships after a device event: new
// conversations start at the stored cursor, left ones stop. A revoked or
// disabled device is closed.
func (c *Conn) reload(ctx context.Context) error {
	if _, err := c.s.st.Session(ctx, c.sess.tokenHash, c.s.now()); errors.Is(err, store.ErrNotFound) {
		c.Fail(protocol.NewError(protocol.CodeUnauthorized, "session ended: device revoked or disabled, or logged out"))
		return nil
	} else if err != nil {
		return internal("connection session", err)
	}
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	ms, err := c.s.st.Conversations(ctx, c.sess.Device)
	if err != nil {
		return internal("connection memberships", err)
	}
	c.apply(ms, nil)
	return nil
}

// apply makes the connection follow exactly the memberships ms, departed
// ones up to their last readable seq: new ones start at
// from[conversation] if present, else at the stored cursor.
func (c *Conn) apply(ms []store.Membership, from map[store.ConversationID]uint64) {
	want := make(map[store.ConversationID]uint64, len(ms))
	byID := make(map[store.ConversationID]store.Membership, len(ms))
	for _, m := range ms {
		byID[m.Conversation] = m
		start := m.Cursor
		if v, ok := from[m.Conversation]; ok {
			start = v
		}
		want[m.Conversation] = start
	}
	c.subMu.Lock()
	for id, un := range c.unsubs {
		if _, ok := want[id]; !ok {
			un()
			delete(c.unsubs, id)
		}
	}
	for id := range want {
		if c.unsubs[id] == nil {
			c.unsubs[id] = c.s.notify.Subscribe(Topic{Conversation: id}, c)
		}
	}
	c.subMu.Unlock()
	c.mu.Lock()
	for id := range c.sent {
		if _, ok := want[id]; !ok {
			delete(c.sent, id)
			delete(c.until, id)
			delete(c.gaps, id)
			delete(c.dirty, id)
			delete(c.recheck, id)
		}
	}
	for id, start := range want {
		if _, ok := c.sent[id]; !ok || from != nil {
			c.sent[id] = start
			delete(c.until, id)
			delete(c.recheck, id)
		}
		c.follow(id, byID[id])
		c.markDirty(id, unknownHead)
	}
	c.mu.Unlock()
}

// Subscribe (re)starts delivery: every member conversation from the
// client's cursor (or the stored cursor when the client names none), the
// inbox after inbox, then new entries as they come.
func (c *Conn) Subscribe(ctx context.Context, f *protocol.SubscribeFrame) error {
	if len(f.Cursors) > 100000 {
		return perr(protocol.CodeTooLarge, "subscribe: %d cursors", len(f.Cursors))
	}
	if err := f.Validate(); err != nil {
		return err
	}
	// Conversations the frame does not name resume from the stored
	// cursors, which must include the acknowledgements sent so far.
	c.s.ackBarrier(ctx)
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	ms, err := c.s.st.Conversations(ctx, c.sess.Device)
	if err != nil {
		return internal("subscribe: memberships", err)
	}
	from := make(map[store.ConversationID]uint64, len(f.Cursors))
	for _, cur := range f.Cursors {
		from[store.ConversationID(cur.Conversation)] = cur.Seq
	}
	c.mu.Lock()
	c.gen++
	c.pending = nil
	c.subscribed = true
	c.inboxSent = f.Inbox
	c.inboxDirty = true
	c.revoked = revokedNotice{wanted: f.Revocations, dirty: f.Revocations}
	c.wantEph = f.Ephemeral
	c.mu.Unlock()
	c.apply(ms, from)
	c.signal()
	return nil
}

// Member reports whether the device was a member of the conversation (not
// departed) when the connection last looked.
func (c *Conn) Member(id protocol.ConversationID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.memberLocked(store.ConversationID(id))
}

// memberLocked is Member with c.mu held.
func (c *Conn) memberLocked(id store.ConversationID) bool {
	_, ok := c.sent[id]
	_, departed := c.until[id]
	return ok && !departed
}

// Ack acknowledges entries like Service.Ack but does not wait for the
// cursors to be written: a refused cursor closes the connection later
// (Next returns the reason). The inbox acknowledgement is written before
// Ack returns.
func (c *Conn) Ack(ctx context.Context, f *protocol.AckFrame) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if err := c.ackAsync(f.Cursors); err != nil {
		return err
	}
	if f.Inbox > 0 {
		if err := c.s.st.AckInbox(ctx, c.sess.Device, f.Inbox); err != nil {
			return internal("ack inbox", err)
		}
	}
	return nil
}

// Send queues an application message; the answer (sent or error with the
// client id) is written by the writer loop once the entry is durable.
// A returned error means the message was refused at once.
func (c *Conn) Send(ctx context.Context, f *protocol.SendFrame) error {
	if len(f.ClientID) > 64 {
		return perr(protocol.CodeBadRequest, "client id is %d bytes, at most 64", len(f.ClientID))
	}
	if !c.Member(f.Conversation) {
		if err := c.s.requireMember(ctx, &c.sess, store.ConversationID(f.Conversation)); err != nil {
			return err
		}
	}
	clientID, conv := f.ClientID, f.Conversation
	return c.s.submitApp(ctx, c.sess.Device, store.ConversationID(conv), f.Message, func(e store.Entry, err error) {
		if err != nil {
			pe, _ := AsProtocolError(err)
			c.enqueue(&protocol.ErrorFrame{ClientID: clientID, Error: *pe})
			return
		}
		c.enqueue(&protocol.SentFrame{ClientID: clientID, Conversation: conv, Seq: e.Seq, Time: e.Created.UTC()})
	})
}

// SendError queues an error answer to a send frame.
func (c *Conn) SendError(clientID string, e *protocol.Error) {
	c.enqueue(&protocol.ErrorFrame{ClientID: clientID, Error: *e})
}

// Typing relays a typing signal to the conversation's connected member
// devices; it is never stored.
func (c *Conn) Typing(ctx context.Context, f *protocol.TypingFrame) error {
	if !c.Member(f.Conversation) {
		return perr(protocol.CodeNotMember, "typing: device %q is not a member of conversation %d", c.sess.Device, f.Conversation)
	}
	c.s.notify.Publish(Event{Topic: Topic{Conversation: store.ConversationID(f.Conversation)}, Typing: &Typing{Device: c.sess.Device, Typing: f.Typing}})
	return nil
}

// Ephemeral relays an ephemeral application message (an encrypted typing
// indicator) to the conversation's other connected member devices, on
// this node and, through the notifier, on the others. It is never stored
// nor acknowledged, and devices that are not connected never get it. The
// sender must be a member; the message must be a PrivateMessage of the
// conversation's group in an epoch the server accepts for appends, at most
// protocol.MaxEphemeralBytes; each device may send Config.EphemeralRate
// per second with a burst of Config.EphemeralBurst. A refused message is
// dropped: the returned error says why (the adapter counts it and keeps
// the connection open), and every outcome is counted in
// parley_ephemeral_total.
func (c *Conn) Ephemeral(ctx context.Context, f *protocol.EphemeralFrame) error {
	err := c.relayEphemeral(ctx, f)
	result := "relayed"
	if err != nil {
		result = codeOf(err)
	}
	c.s.metrics.ephemeral.WithLabelValues(result).Inc()
	return err
}

func (c *Conn) relayEphemeral(ctx context.Context, f *protocol.EphemeralFrame) error {
	id := store.ConversationID(f.Conversation)
	if len(f.Message) > protocol.MaxEphemeralBytes {
		return perr(protocol.CodeTooLarge, "ephemeral message to conversation %d: %d bytes, at most %d", id, len(f.Message), protocol.MaxEphemeralBytes)
	}
	if !c.Member(f.Conversation) {
		if err := c.s.requireMember(ctx, &c.sess, id); err != nil {
			return err
		}
	}
	if ok, _ := c.s.ephemeralLimit.Allow(string(c.sess.Device)); !ok {
		return perr(protocol.CodeRateLimited, "ephemeral message to conversation %d: device %q sends too many", id, c.sess.Device)
	}
	if err := c.s.checkApplication(ctx, id, f.Message); err != nil {
		return err
	}
	msg := append([]byte(nil), f.Message...)
	c.s.notify.Publish(Event{Topic: Topic{Conversation: id}, Ephemeral: &Ephemeral{Device: c.sess.Device, Message: msg}})
	return nil
}

// Ping queues a pong with the nonce.
func (c *Conn) Ping(f *protocol.PingFrame) {
	if len(f.Nonce) > 64 {
		f.Nonce = f.Nonce[:64]
	}
	c.enqueue(&protocol.PongFrame{Nonce: f.Nonce})
}

// Close detaches the connection from the notifier.
func (c *Conn) Close() {
	c.subMu.Lock()
	for id, un := range c.unsubs {
		un()
		delete(c.unsubs, id)
	}
	if c.unsubD != nil {
		c.unsubD()
		c.unsubD = nil
		c.s.conns.Add(-1)
	}
	c.subMu.Unlock()
	c.Fail(protocol.NewError(protocol.CodeUnavailable, "connection closed"))
}
