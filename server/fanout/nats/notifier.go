package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
)

// Notifier is a [delivery.Notifier] shared by the nodes of one prefix
// through NATS. Publish and Subscribe are safe for concurrent use. A
// Subscriber's Notify is called from the publisher's goroutine for local
// events and from the notifier's goroutines for remote events and
// resyncs, possibly concurrently; like with the Hub, it must not block and
// must not call Subscribe or an unsubscribe function.
type Notifier struct {
	cfg    Config
	log    *slog.Logger
	origin string // NodeID#random: this instance's events
	prefix string // cfg.Prefix + "."
	wakeup []byte // the record of every wake-up from this node
	nc     *natsgo.Conn
	sub    *natsgo.Subscription

	mu   sync.RWMutex
	subs map[delivery.Topic]map[delivery.Subscriber]struct{}

	outMu   sync.Mutex
	pending map[delivery.Topic]struct{} // wake-ups to publish
	spare   map[delivery.Topic]struct{}
	typing  []delivery.Event // typing signals to publish
	lost    bool             // a wake-up was dropped: publish a resync request
	outWake chan struct{}

	resyncReq  chan struct{}
	flushFirst atomic.Bool // confirm the subscription with the server before the next resync

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closed   atomic.Bool
	ncClosed chan struct{}
	once     sync.Once

	st stats
}

// stats are the counters behind [Stats].
type stats struct {
	published, received, coalesced, droppedWakeups, droppedTyping,
	unroutable, invalid, resyncRequestsSent, resyncRequestsReceived,
	resyncs, reconnects, disconnects, slowConsumer atomic.Uint64
}

// Stats are a Notifier's counters since New.
type Stats struct {
	Published              uint64 // Published counts records published to NATS (wake-ups, typing, resync requests).
	Received               uint64 // Received counts remote events dispatched to local subscribers.
	Coalesced              uint64 // Coalesced counts wake-ups merged into one already waiting for NATS.
	DroppedWakeups         uint64 // DroppedWakeups counts wake-ups not published (queue full, NATS unreachable); each leads to a resync request.
	DroppedTyping          uint64 // DroppedTyping counts typing signals not published (queue full, NATS unreachable).
	DroppedReceived        uint64 // DroppedReceived counts remote records the NATS client dropped because this node fell behind.
	Unroutable             uint64 // Unroutable counts events delivered locally only: a device id that is not a subject token.
	Invalid                uint64 // Invalid counts malformed records received.
	ResyncRequestsSent     uint64 // ResyncRequestsSent counts p.resync records published.
	ResyncRequestsReceived uint64 // ResyncRequestsReceived counts p.resync records received from other nodes.
	Resyncs                uint64 // Resyncs counts passes that woke every local subscriber.
	Reconnects             uint64 // Reconnects counts reconnections to NATS.
	Disconnects            uint64 // Disconnects counts lost connections to NATS.
}

var _ delivery.Notifier = (*Notifier)(nil)

// New connects to NATS and returns a Notifier. It returns when the
// connection and the node's subscription are established, or with an error
// when ctx is done first; ctx bounds only the connect, Close ends the
// Notifier.
func New(ctx context.Context, cfg Config) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var rnd [8]byte
	if _, err := cryptoRand(rnd[:]); err != nil {
		return nil, fmt.Errorf("fanout/nats: new: %v", err)
	}
	n := &Notifier{
		cfg:       cfg,
		log:       cfg.Logger.With("node", cfg.NodeID),
		origin:    cfg.NodeID + "#" + hex.EncodeToString(rnd[:]),
		prefix:    cfg.Prefix + ".",
		subs:      make(map[delivery.Topic]map[delivery.Subscriber]struct{}),
		pending:   make(map[delivery.Topic]struct{}),
		spare:     make(map[delivery.Topic]struct{}),
		outWake:   make(chan struct{}, 1),
		resyncReq: make(chan struct{}, 1),
		ncClosed:  make(chan struct{}),
	}
	n.wakeup = appendRecord(nil, record{origin: n.origin})
	n.ctx, n.cancel = context.WithCancel(context.Background())

	opts := []natsgo.Option{
		natsgo.Name("parleyd " + cfg.NodeID),
		natsgo.NoEcho(),
		natsgo.RetryOnFailedConnect(true),
		natsgo.MaxReconnects(-1),
		natsgo.CustomReconnectDelay(n.reconnectDelay),
		natsgo.ReconnectBufSize(-1), // a publish while away is dropped and replaced by a resync
		natsgo.PingInterval(cfg.PingInterval),
		natsgo.MaxPingsOutstanding(2),
		natsgo.ConnectHandler(n.onConnect),
		natsgo.DisconnectErrHandler(n.onDisconnect),
		natsgo.ReconnectHandler(n.onReconnect),
		natsgo.ClosedHandler(func(*natsgo.Conn) { close(n.ncClosed) }),
		natsgo.ErrorHandler(n.onError),
	}
	nc, err := natsgo.Connect(cfg.URL, append(opts, cfg.Options...)...)
	if err != nil {
		n.cancel()
		return nil, fmt.Errorf("fanout/nats: connect: %v", err)
	}
	n.nc = nc
	fail := func(err error) (*Notifier, error) {
		n.cancel()
		nc.Close()
		<-n.ncClosed
		return nil, err
	}
	n.sub, err = nc.Subscribe(n.prefix+">", n.receive)
	if err != nil {
		return fail(fmt.Errorf("fanout/nats: subscribe %s>: %v", n.prefix, err))
	}
	if err := n.sub.SetPendingLimits(cfg.ReceiveQueue, -1); err != nil {
		return fail(fmt.Errorf("fanout/nats: subscribe: %v", err))
	}
	// FlushWithContext fails at once while the first connect is still
	// being retried, so wait for the connection first.
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("fanout/nats: connect: not connected to NATS: %v", ctx.Err()))
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		return fail(fmt.Errorf("fanout/nats: connect: confirm subscription: %v", err))
	}
	n.wg.Add(2)
	go n.sendLoop()
	go n.resyncLoop()
	n.log.Info("fanout/nats: connected", "url", nc.ConnectedUrlRedacted(), "prefix", cfg.Prefix)
	if cfg.Registerer != nil {
		if err := n.register(cfg.Registerer); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// cryptoRand is crypto/rand.Read; a variable only to keep the import names
// apart from math/rand/v2.
var cryptoRand = rand.Read

// reconnectDelay is the exponential backoff with jitter between reconnect
// attempts (attempts counts passes over the server list).
func (n *Notifier) reconnectDelay(attempts int) time.Duration {
	d := n.cfg.ReconnectWait
	for i := 1; i < attempts && d < n.cfg.MaxReconnectWait; i++ {
		d *= 2
	}
	d = min(d, n.cfg.MaxReconnectWait)
	return d + time.Duration(mrand.Int64N(int64(d)/2+1))
}

// Publish calls Notify of every local subscriber of the event's topic, then
// queues the event for the other nodes. It never blocks on NATS: a full
// queue or an unreachable NATS drops and counts the remote copy, and a
// dropped wake-up is replaced by a resync request once NATS is reachable.
func (n *Notifier) Publish(e delivery.Event) {
	n.dispatch(e)
	if n.closed.Load() {
		return
	}
	if e.Topic.Device != "" && !validToken(string(e.Topic.Device)) || e.Typing != nil && (e.Typing.Device == "" || len(e.Typing.Device) > 255) ||
		e.Ephemeral != nil && (e.Topic.Conversation == 0 || e.Ephemeral.Device == "" || len(e.Ephemeral.Device) > 255 || len(e.Ephemeral.Message) == 0 || len(e.Ephemeral.Message) > protocol.MaxEphemeralBytes) {
		n.st.unroutable.Add(1)
		return
	}
	n.outMu.Lock()
	switch {
	case e.Typing != nil:
		if len(n.typing) >= n.cfg.TypingQueue {
			n.outMu.Unlock()
			n.st.droppedTyping.Add(1)
			return
		}
		t := *e.Typing
		n.typing = append(n.typing, delivery.Event{Topic: e.Topic, Typing: &t})
	case e.Ephemeral != nil: // queued, dropped and counted like typing signals
		if len(n.typing) >= n.cfg.TypingQueue {
			n.outMu.Unlock()
			n.st.droppedTyping.Add(1)
			return
		}
		m := *e.Ephemeral
		n.typing = append(n.typing, delivery.Event{Topic: e.Topic, Ephemeral: &m})
	default:
		if _, ok := n.pending[e.Topic]; ok {
			n.outMu.Unlock()
			n.st.coalesced.Add(1)
			return
		}
		if len(n.pending) >= n.cfg.MaxPending {
			n.lost = true
			n.outMu.Unlock()
			n.st.droppedWakeups.Add(1)
			n.kickSender()
			return
		}
		n.pending[e.Topic] = struct{}{}
	}
	n.outMu.Unlock()
	n.kickSender()
}

// dispatch calls the local subscribers of e's topic.
func (n *Notifier) dispatch(e delivery.Event) {
	n.mu.RLock()
	for s := range n.subs[e.Topic] {
		s.Notify(e)
	}
	n.mu.RUnlock()
}

// Subscribe registers s for the topic's events from every node until the
// returned function is called. It does not touch NATS.
func (n *Notifier) Subscribe(t delivery.Topic, s delivery.Subscriber) func() {
	n.mu.Lock()
	m := n.subs[t]
	if m == nil {
		m = make(map[delivery.Subscriber]struct{}, 1)
		n.subs[t] = m
	}
	m[s] = struct{}{}
	n.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			n.mu.Lock()
			if m := n.subs[t]; m != nil {
				delete(m, s)
				if len(m) == 0 {
					delete(n.subs, t)
				}
			}
			n.mu.Unlock()
		})
	}
}

func (n *Notifier) kickSender() {
	select {
	case n.outWake <- struct{}{}:
	default:
	}
}

// sendLoop publishes the queued events; it is the only NATS publisher.
func (n *Notifier) sendLoop() {
	defer n.wg.Done()
	var typing []delivery.Event
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.outWake:
		}
		n.outMu.Lock()
		batch := n.pending
		n.pending, n.spare = n.spare, nil
		typing, n.typing = n.typing, typing[:0]
		lost := n.lost
		n.lost = false
		n.outMu.Unlock()

		lost = n.send(lost, batch, typing)
		clear(batch)
		clear(typing) // drop the *Typing references
		n.outMu.Lock()
		n.spare = batch
		n.lost = n.lost || lost
		n.outMu.Unlock()
	}
}

// send publishes a resync request (when lost), the wake-ups and the typing
// signals. It reports whether a wake-up was dropped (the request must be
// sent later).
func (n *Notifier) send(lost bool, batch map[delivery.Topic]struct{}, typing []delivery.Event) bool {
	if !n.nc.IsConnected() {
		if len(batch) > 0 {
			n.st.droppedWakeups.Add(uint64(len(batch)))
			lost = true
		}
		n.st.droppedTyping.Add(uint64(len(typing)))
		return lost
	}
	if lost {
		if err := n.nc.Publish(n.prefix+kindResync, n.wakeup); err != nil {
			return n.dropAll(batch, typing)
		}
		n.st.resyncRequestsSent.Add(1)
		n.st.published.Add(1)
		lost = false
	}
	for t := range batch {
		subj, _ := subject(n.prefix, t)
		if err := n.nc.Publish(subj, n.wakeup); err != nil {
			n.st.droppedWakeups.Add(1)
			lost = true
			continue
		}
		n.st.published.Add(1)
	}
	var buf []byte
	for _, e := range typing {
		subj, _ := subject(n.prefix, e.Topic)
		buf = appendRecord(buf[:0], record{origin: n.origin, typing: e.Typing, ephemeral: e.Ephemeral})
		if err := n.nc.Publish(subj, buf); err != nil {
			n.st.droppedTyping.Add(1)
			continue
		}
		n.st.published.Add(1)
	}
	return lost
}

func (n *Notifier) dropAll(batch map[delivery.Topic]struct{}, typing []delivery.Event) bool {
	n.st.droppedWakeups.Add(uint64(len(batch)))
	n.st.droppedTyping.Add(uint64(len(typing)))
	return true
}

// receive dispatches a remote record; it runs in the subscription's
// goroutine.
func (n *Notifier) receive(m *natsgo.Msg) {
	rest, ok := cutPrefix(m.Subject, n.prefix)
	if !ok {
		n.st.invalid.Add(1)
		return
	}
	t, resync, err := parseSubject(rest)
	if err != nil {
		n.st.invalid.Add(1)
		return
	}
	r, err := parseRecord(m.Data)
	signal := r.typing != nil || r.ephemeral != nil
	if err != nil || resync && signal || t.Device != "" && signal {
		n.st.invalid.Add(1)
		return
	}
	if r.origin == n.origin {
		return // NoEcho should have kept it away
	}
	if resync {
		n.st.resyncRequestsReceived.Add(1)
		n.requestResync(false)
		return
	}
	n.st.received.Add(1)
	n.dispatch(delivery.Event{Topic: t, Typing: r.typing, Ephemeral: r.ephemeral})
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) < len(p) || s[:len(p)] != p {
		return "", false
	}
	return s[len(p):], true
}

// requestResync asks resyncLoop for a pass; flush first confirms the
// subscription with the server so that no event falls between the
// subscription and the pass.
func (n *Notifier) requestResync(flush bool) {
	if flush {
		n.flushFirst.Store(true)
	}
	select {
	case n.resyncReq <- struct{}{}:
	default:
	}
}

// resyncLoop runs the resync passes, one at a time; requests during a pass
// coalesce into one more pass.
func (n *Notifier) resyncLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.resyncReq:
		}
		if n.flushFirst.Swap(false) {
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			if err := n.nc.FlushWithContext(ctx); err != nil {
				n.log.Warn("fanout/nats: resync: subscription not confirmed", "err", err)
			}
			cancel()
		}
		if !n.resync() {
			return
		}
	}
}

// resync wakes every local subscriber of every topic, at most
// cfg.ResyncRate notifications per second. It returns false when the
// notifier closed.
func (n *Notifier) resync() bool {
	n.st.resyncs.Add(1)
	n.mu.RLock()
	topics := make([]delivery.Topic, 0, len(n.subs))
	for t := range n.subs {
		topics = append(topics, t)
	}
	n.mu.RUnlock()
	const tick = 10 * time.Millisecond
	budget := n.cfg.ResyncRate / int(time.Second/tick)
	if n.cfg.ResyncRate < 0 {
		budget = -1
	} else if budget < 1 {
		budget = 1
	}
	var ticker *time.Ticker
	used := 0
	for _, t := range topics {
		if budget >= 0 && used >= budget {
			if ticker == nil {
				ticker = time.NewTicker(tick)
				defer ticker.Stop()
			}
			select {
			case <-n.ctx.Done():
				return false
			case <-ticker.C:
			}
			used = 0
		}
		n.mu.RLock()
		for s := range n.subs[t] {
			s.Notify(delivery.Event{Topic: t})
			used++
		}
		n.mu.RUnlock()
	}
	return true
}

func (n *Notifier) onConnect(*natsgo.Conn) {
	n.kickSender()
}

func (n *Notifier) onDisconnect(_ *natsgo.Conn, err error) {
	if n.closed.Load() {
		return
	}
	n.st.disconnects.Add(1)
	n.log.Warn("fanout/nats: disconnected from NATS; delivering locally until reconnected", "err", err)
}

// onReconnect wakes every local subscriber (remote events may have been
// missed) and asks the other nodes to do the same (this node's events of
// the moment before the disconnect may have been lost in flight).
func (n *Notifier) onReconnect(nc *natsgo.Conn) {
	n.st.reconnects.Add(1)
	n.log.Info("fanout/nats: reconnected; resyncing", "url", nc.ConnectedUrlRedacted())
	n.outMu.Lock()
	n.lost = true
	n.outMu.Unlock()
	n.kickSender()
	n.requestResync(true)
}

func (n *Notifier) onError(_ *natsgo.Conn, sub *natsgo.Subscription, err error) {
	if errors.Is(err, natsgo.ErrSlowConsumer) && sub == n.sub {
		n.st.slowConsumer.Add(1)
		n.log.Warn("fanout/nats: this node falls behind NATS; remote events dropped, resyncing")
		n.requestResync(false)
		return
	}
	n.log.Warn("fanout/nats: NATS error", "err", err)
}

// Healthy reports whether the notifier is connected to NATS, for
// readiness. A node that is not connected still delivers locally.
func (n *Notifier) Healthy() error {
	if n.closed.Load() {
		return errors.New("fanout/nats: closed")
	}
	if st := n.nc.Status(); st != natsgo.CONNECTED {
		return fmt.Errorf("fanout/nats: not connected to NATS (%v)", st)
	}
	return nil
}

// Stats returns the notifier's counters.
func (n *Notifier) Stats() Stats {
	dropped, _ := n.sub.Dropped()
	return Stats{
		Published:              n.st.published.Load(),
		Received:               n.st.received.Load(),
		Coalesced:              n.st.coalesced.Load(),
		DroppedWakeups:         n.st.droppedWakeups.Load(),
		DroppedTyping:          n.st.droppedTyping.Load(),
		DroppedReceived:        uint64(max(dropped, 0)),
		Unroutable:             n.st.unroutable.Load(),
		Invalid:                n.st.invalid.Load(),
		ResyncRequestsSent:     n.st.resyncRequestsSent.Load(),
		ResyncRequestsReceived: n.st.resyncRequestsReceived.Load(),
		Resyncs:                n.st.resyncs.Load(),
		Reconnects:             n.st.reconnects.Load(),
		Disconnects:            n.st.disconnects.Load(),
	}
}

// Close publishes what is queued if NATS is reachable, closes the NATS
// connection and stops the notifier's goroutines; it returns when they
// have ended. Publish afterwards delivers locally only. Close is
// idempotent.
func (n *Notifier) Close() error {
	n.once.Do(func() {
		n.closed.Store(true)
		n.cancel()
		n.wg.Wait()
		n.outMu.Lock()
		batch, typing := n.pending, n.typing
		n.pending, n.typing = make(map[delivery.Topic]struct{}), nil // for a racing Publish
		n.outMu.Unlock()
		n.send(false, batch, typing)
		n.nc.Close() // flushes what send wrote
		<-n.ncClosed
		n.log.Info("fanout/nats: closed")
	})
	return nil
}
