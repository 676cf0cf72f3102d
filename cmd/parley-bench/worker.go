package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-chat/parley/protocol"
)

// The worker protocol: the coordinator writes one JSON command per line
// on the worker's stdin; the worker answers each with one JSON reply line
// on stdout, in order. The worker exits when stdin ends, closing its
// connections.

// command is one instruction to a worker.
type command struct {
	Op string `json:"op"` // register, connect, run, ackall, await, close

	// register, connect: the worker's devices.
	Devices []int `json:"devices,omitempty"`
	// connect: the subscription cursors of each device (by index), and
	// the inbox seq each has processed already (its Welcome).
	Cursors map[int][]protocol.Cursor `json:"cursors,omitempty"`
	Inbox   map[int]uint64            `json:"inbox,omitempty"`
	// run: the load.
	Load *load `json:"load,omitempty"`
	// ackall: wait until the server processed each ack (a ping after it
	// is answered).
	Sync bool `json:"sync,omitempty"`
	// await: wait until each of Devices received entry Seq (or a later
	// one) of conversation Conv, at most Timeout.
	Conv    protocol.ConversationID `json:"conv,omitempty"`
	Seq     uint64                  `json:"seq,omitempty"`
	Timeout time.Duration           `json:"timeout,omitempty"`
}

// workerConfig is passed once, as the first line.
type workerConfig struct {
	Servers     []string `json:"servers"`
	ServerName  string   `json:"server_name"`
	Run         string   `json:"run"`
	Invite      string   `json:"invite,omitempty"`
	Insecure    bool     `json:"insecure,omitempty"`
	Concurrency int      `json:"concurrency"`
}

// load describes one measured run.
type load struct {
	// Start is when senders begin; the measurement window is
	// [Start+Warmup, Start+Warmup+Duration]; senders stop at the window's
	// end and receivers keep counting deliveries for Drain more.
	Start    time.Time     `json:"start"`
	Warmup   time.Duration `json:"warmup"`
	Duration time.Duration `json:"duration"`
	Drain    time.Duration `json:"drain"`
	// Open selects the open-loop schedule at Rate messages per second per
	// sender; otherwise each sender keeps Window sends outstanding.
	Open   bool    `json:"open,omitempty"`
	Rate   float64 `json:"rate,omitempty"`
	Window int     `json:"window,omitempty"`
	Size   int     `json:"size"`
	// AckEvery is the interval of cursor acknowledgements (0: none).
	AckEvery time.Duration `json:"ack_every,omitempty"`
	// Track records per-message receipt times (fan-out).
	Track bool `json:"track,omitempty"`
	// RecipientsFrom is the first device index counted as a recipient:
	// receipts by lower-numbered devices (other senders of the same
	// conversation) are counted apart and not timed.
	RecipientsFrom int      `json:"recipients_from,omitempty"`
	Senders        []sender `json:"senders,omitempty"`
}

// sender is one sending device of a run.
type sender struct {
	Device  int                     `json:"device"`
	Conv    protocol.ConversationID `json:"conv"`
	GroupID []byte                  `json:"group_id"`
	Epoch   uint64                  `json:"epoch"`
	// Count, when positive, bounds the messages sent.
	Count int `json:"count,omitempty"`
}

// reply answers a command.
type reply struct {
	Err       string        `json:"err,omitempty"`
	Took      time.Duration `json:"took"`
	Connected int           `json:"connected,omitempty"`
	Stats     *runStats     `json:"stats,omitempty"`
	// await: when the last of the devices received the entry (Unix
	// nanoseconds), and how many had not when the wait ended.
	Last    int64 `json:"last,omitempty"`
	Missing int   `json:"missing,omitempty"`
}

// msgTrack is the receipt record of one tracked message.
type msgTrack struct {
	Count int64 `json:"count"`
	First int64 `json:"first"` // First and Last are Unix nanoseconds.
	Last  int64 `json:"last"`
}

// runStats are a worker's results of a run.
type runStats struct {
	Sent      int64               `json:"sent"`      // send frames written
	Acked     int64               `json:"acked"`     // sent answers received in the window
	Delivered int64               `json:"delivered"` // entries from other devices received in the window
	Echoes    int64               `json:"echoes"`    // own entries received back
	Late      int64               `json:"late"`      // deliveries after the window
	Others    int64               `json:"others"`    // receipts by other senders (not recipients)
	Errors    map[string]int64    `json:"errors,omitempty"`
	Closed    int64               `json:"closed"` // connections that ended during the run
	Latency   *hist               `json:"latency"`
	AckLat    *hist               `json:"ack_latency"`
	Tracked   map[string]msgTrack `json:"tracked,omitempty"`
	SentAt    map[string]int64    `json:"sent_at,omitempty"`
	Behind    time.Duration       `json:"behind"` // open loop: the largest delay of a send after its schedule
}

// runState is the live state of a run, shared by readers and senders.
type runState struct {
	l                  *load
	winStart, winEnd   int64
	sent, acked, deliv atomic.Int64
	echoes, late       atomic.Int64
	others             atomic.Int64
	closed             atomic.Int64
	behind             atomic.Int64
	lat, ackLat        shardedHist
	mu                 sync.Mutex
	errors             map[string]int64
	tracked            map[uint64]*msgTrack
	sentAt             map[uint64]int64
}

// wdev is a worker's device.
type wdev struct {
	id    *ident
	node  int
	token string
	c     *websocket.Conn
	pong  chan struct{}
	slots chan struct{} // slots bounds outstanding sends (closed loop)

	mu      sync.Mutex
	seqs    map[protocol.ConversationID]uint64
	ackSent map[protocol.ConversationID]uint64
	// seqAt is when seqs last moved forward (Unix nanoseconds).
	seqAt map[protocol.ConversationID]int64
}

// worker is the state of a worker process.
type worker struct {
	cfg     workerConfig
	hc      *http.Client
	devs    map[int]*wdev
	cur     atomic.Pointer[runState]
	watch   atomic.Pointer[seqWatch]
	closing atomic.Bool
	ctx     context.Context
}

// runWorker serves commands from in until it ends.
func runWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	if !sc.Scan() {
		return errors.New("worker: no configuration")
	}
	w := &worker{devs: map[int]*wdev{}, ctx: ctx}
	if err := json.Unmarshal(sc.Bytes(), &w.cfg); err != nil {
		return fmt.Errorf("worker: configuration: %v", err)
	}
	w.hc = newHTTPClient(w.cfg.Insecure, max(w.cfg.Concurrency, 16))
	enc := json.NewEncoder(out)
	defer w.closeAll()
	for sc.Scan() {
		var cmd command
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			return fmt.Errorf("worker: command: %v", err)
		}
		start := time.Now()
		var r reply
		var err error
		switch cmd.Op {
		case "register":
			err = w.register(ctx, cmd.Devices)
		case "connect":
			r.Connected, err = w.connect(ctx, cmd.Devices, cmd.Cursors, cmd.Inbox)
		case "run":
			r.Stats, err = w.run(ctx, cmd.Load)
		case "ackall":
			err = w.ackAll(ctx, cmd.Sync)
		case "await":
			r.Last, r.Missing, err = w.await(ctx, cmd.Devices, cmd.Conv, cmd.Seq, cmd.Timeout)
		case "close":
			w.closeAll()
		default:
			err = fmt.Errorf("unknown command %q", cmd.Op)
		}
		if err != nil {
			r.Err = err.Error()
		}
		r.Took = time.Since(start)
		if err := enc.Encode(&r); err != nil {
			return err
		}
	}
	return sc.Err()
}

// parallel runs f for every item with at most n at once and returns the
// first error.
func parallel[T any](ctx context.Context, n int, items []T, f func(context.Context, T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  atomic.Int64
	)
	for range max(1, min(n, len(items))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) || ctx.Err() != nil {
					return
				}
				if err := f(ctx, items[i]); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// register registers and logs in the devices.
func (w *worker) register(ctx context.Context, devices []int) error {
	return parallel(ctx, w.cfg.Concurrency, devices, func(ctx context.Context, i int) error {
		d := &wdev{id: newIdent(w.cfg.Run, i), node: i % len(w.cfg.Servers), pong: make(chan struct{}, 1),
			seqs: map[protocol.ConversationID]uint64{}, ackSent: map[protocol.ConversationID]uint64{}, seqAt: map[protocol.ConversationID]int64{}}
		a := &api{base: w.cfg.Servers[d.node], hc: w.hc}
		if err := a.register(ctx, w.cfg.ServerName, d.id, w.cfg.Invite); err != nil {
			return fmt.Errorf("register device %d: %v", i, err)
		}
		tok, err := a.login(ctx, w.cfg.ServerName, d.id)
		if err != nil {
			return fmt.Errorf("log in device %d: %v", i, err)
		}
		d.token = tok
		w.setDev(i, d)
		return nil
	})
}

var devMu sync.Mutex

func (w *worker) setDev(i int, d *wdev) {
	devMu.Lock()
	w.devs[i] = d
	devMu.Unlock()
}

func (w *worker) dev(i int) *wdev {
	devMu.Lock()
	defer devMu.Unlock()
	return w.devs[i]
}

// connect opens the devices' WebSockets, subscribes them at the given
// cursors and waits until the server processed each subscription (a ping
// after it is answered).
func (w *worker) connect(ctx context.Context, devices []int, cursors map[int][]protocol.Cursor, inbox map[int]uint64) (int, error) {
	var n atomic.Int64
	err := parallel(ctx, min(w.cfg.Concurrency, 64), devices, func(ctx context.Context, i int) error {
		d := w.dev(i)
		if d == nil {
			return fmt.Errorf("device %d is not registered in this worker", i)
		}
		if d.c != nil {
			n.Add(1)
			return nil
		}
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		c, _, err := websocket.Dial(dctx, wsURL(w.cfg.Servers[d.node]), &websocket.DialOptions{
			HTTPClient: w.hc, HTTPHeader: http.Header{"Authorization": {"Bearer " + d.token}}})
		if err != nil {
			return fmt.Errorf("connect device %d: %v", i, err)
		}
		c.SetReadLimit(64 << 20)
		d.c = c
		for _, cur := range cursors[i] {
			d.seqs[cur.Conversation] = cur.Seq
			d.ackSent[cur.Conversation] = cur.Seq
		}
		go w.readLoop(d)
		sub, err := protocol.MarshalFrame(&protocol.SubscribeFrame{Cursors: cursors[i], Inbox: inbox[i], Binary: true})
		if err != nil {
			return err
		}
		ping, _ := protocol.MarshalFrame(&protocol.PingFrame{Nonce: "subscribed"})
		if err := c.Write(dctx, websocket.MessageText, sub); err != nil {
			return fmt.Errorf("subscribe device %d: %v", i, err)
		}
		if err := c.Write(dctx, websocket.MessageText, ping); err != nil {
			return fmt.Errorf("subscribe device %d: %v", i, err)
		}
		select {
		case <-d.pong:
		case <-dctx.Done():
			return fmt.Errorf("subscribe device %d: no answer", i)
		}
		n.Add(1)
		return nil
	})
	return int(n.Load()), err
}

// Frame prefixes (protocol.MarshalFrame writes "type" first).
var (
	prefixEntry = []byte(`{"type":"entry"`)
	prefixSent  = []byte(`{"type":"sent"`)
	prefixPong  = []byte(`{"type":"pong"`)
	kindApp     = []byte(`"kind":"application"`)
)

// jsonUint returns the unsigned number after key (such as `"seq":`).
func jsonUint(b []byte, key string) (uint64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	var v uint64
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + uint64(b[n]-'0')
		n++
	}
	return v, n > 0
}

// jsonStr returns the string value after key (such as `"data":"`),
// assuming it has no escapes (base64 and decimal ids have none).
func jsonStr(b []byte, key string) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	b = b[i+len(key):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return nil, false
	}
	return b[:j], true
}

// frameHead is how much of a frame is read before deciding whether the
// rest is looked at.
const frameHead = 4 << 10

// frameBufs holds the buffers frames are read into. A frame is looked
// at and dropped before its reader waits again, so the buffers go round
// the devices reading at the moment.
var frameBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, frameHead)
	return &b
}}

// readFrame reads the next message of c into *buf. Of a handshake entry
// only the head is kept (its conversation and seq, all the worker looks
// at) and the rest is read and dropped: a simulated device receiving a
// 50 KB commit reads every byte of it from its connection but keeps
// none, so 10,000 of them make no garbage for the worker to collect
// (collecting it took most of the workers' CPU, on the cores parleyd
// shares with them, and made fan-out look slower than parleyd was).
func readFrame(ctx context.Context, c *websocket.Conn, buf *[]byte) error {
	_, r, err := c.Reader(ctx)
	if err != nil {
		return err
	}
	b := (*buf)[:frameHead]
	n, err := io.ReadFull(r, b)
	b = b[:n]
	*buf = b
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return nil // the whole frame fitted in the head
	case err != nil:
		return err
	case (bytes.HasPrefix(b, prefixEntry) || protocol.IsBinaryEntry(b)) && !bytes.Contains(b, kindApp):
		return drain(r)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		*buf = b
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// sinks holds the buffers the rest of a handshake entry is read into
// and dropped: large enough that a 50 KB frame takes a few reads (each
// read of a frame's payload costs the websocket package an allocation).
var sinks = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// drain reads r to its end and drops what it read.
func drain(r io.Reader) error {
	sink := sinks.Get().(*[]byte)
	defer sinks.Put(sink)
	for {
		if _, err := r.Read(*sink); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// readLoop reads a device's frames until the connection ends.
func (w *worker) readLoop(d *wdev) {
	for {
		buf := frameBufs.Get().(*[]byte)
		err := readFrame(w.ctx, d.c, buf)
		data := *buf
		if err != nil {
			frameBufs.Put(buf)
			if !w.closing.Load() {
				if rs := w.cur.Load(); rs != nil {
					rs.closed.Add(1)
					rs.addError("closed: " + err.Error())
				}
			}
			return
		}
		w.onFrame(d, data)
		frameBufs.Put(buf)
	}
}

// onFrame handles one frame a device read; data is only valid during
// the call.
func (w *worker) onFrame(d *wdev, data []byte) {
	now := time.Now().UnixNano()
	rs := w.cur.Load()
	switch {
	case protocol.IsBinaryEntry(data):
		head, payload, err := protocol.SplitBinaryEntry(data)
		if err != nil {
			rs.addError("undecodable binary entry frame")
			return
		}
		w.onEntry(d, head, payload, now, rs)
	case bytes.HasPrefix(data, prefixEntry):
		w.onEntry(d, data, nil, now, rs)
	case bytes.HasPrefix(data, prefixSent):
		if rs == nil {
			return
		}
		if at, ok := jsonStr(data, `"client_id":"`); ok {
			if t, err := strconv.ParseInt(string(at), 10, 64); err == nil {
				if now >= rs.winStart && now <= rs.winEnd {
					rs.acked.Add(1)
					rs.ackLat.add(d.id.index, time.Duration(now-t))
				}
			}
		}
		release(d)
	case bytes.HasPrefix(data, prefixPong):
		select {
		case d.pong <- struct{}{}:
		default:
		}
	default:
		f, err := protocol.UnmarshalFrame(data)
		ef, ok := f.(*protocol.ErrorFrame)
		switch {
		case err != nil:
			rs.addError("undecodable frame")
		case ok:
			rs.addError(string(ef.Code))
			if ef.ClientID != "" {
				release(d)
			}
		}
	}
}

// release frees an outstanding-send slot.
func release(d *wdev) {
	select {
	case <-d.slots:
	default:
	}
}

// addError counts an error by its code.
func (rs *runState) addError(code string) {
	if rs == nil {
		return
	}
	rs.mu.Lock()
	rs.errors[code]++
	rs.mu.Unlock()
}

// onEntry records a delivered entry: data is its frame's JSON (of a
// binary frame, the JSON part, with payload its data; payload is nil for
// a JSON frame).
func (w *worker) onEntry(d *wdev, data, payload []byte, now int64, rs *runState) {
	conv, ok1 := jsonUint(data, `"conversation":`)
	seq, ok2 := jsonUint(data, `"seq":`)
	if ok1 && ok2 {
		cid := protocol.ConversationID(conv)
		d.mu.Lock()
		if seq > d.seqs[cid] {
			d.seqs[cid] = seq
			d.seqAt[cid] = now
		}
		d.mu.Unlock()
		if wt := w.watch.Load(); wt != nil && wt.conv == cid && seq >= wt.seq {
			wt.note(d.id.index, now)
		}
	}
	if rs == nil || !bytes.Contains(data, kindApp) {
		return
	}
	msg := payload
	if msg == nil { // a JSON entry frame: its data in base64
		b64, ok := jsonStr(data, `"data":"`)
		if !ok {
			return
		}
		msg = make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
		n, err := base64.StdEncoding.Decode(msg, b64)
		if err != nil {
			rs.addError("bad entry data")
			return
		}
		msg = msg[:n]
	}
	st, ok := readStamp(msg)
	if !ok {
		return
	}
	if int(st.sender) == d.id.index {
		rs.echoes.Add(1)
		return
	}
	if d.id.index < rs.l.RecipientsFrom {
		rs.others.Add(1)
		return
	}
	switch {
	case now < rs.winStart:
	case now <= rs.winEnd:
		rs.deliv.Add(1)
	default:
		rs.late.Add(1)
	}
	if st.at >= rs.winStart && st.at <= rs.winEnd {
		rs.lat.add(d.id.index, time.Duration(now-st.at))
	}
	if rs.l.Track {
		rs.mu.Lock()
		t := rs.tracked[st.id]
		if t == nil {
			t = &msgTrack{First: now}
			rs.tracked[st.id] = t
		}
		t.Count++
		t.Last = max(t.Last, now)
		t.First = min(t.First, now)
		rs.mu.Unlock()
	}
}

// run runs a load and returns the worker's results.
func (w *worker) run(ctx context.Context, l *load) (*runStats, error) {
	if l == nil {
		return nil, errors.New("run without load")
	}
	rs := &runState{l: l, errors: map[string]int64{}, tracked: map[uint64]*msgTrack{}, sentAt: map[uint64]int64{}}
	rs.winStart = l.Start.Add(l.Warmup).UnixNano()
	rs.winEnd = l.Start.Add(l.Warmup + l.Duration).UnixNano()
	w.cur.Store(rs)
	end := l.Start.Add(l.Warmup + l.Duration)
	rctx, cancel := context.WithDeadline(ctx, end.Add(l.Drain+30*time.Second))
	defer cancel()

	var wg sync.WaitGroup
	for _, s := range l.Senders {
		d := w.dev(s.Device)
		if d == nil || d.c == nil {
			return nil, fmt.Errorf("sender %d is not connected in this worker", s.Device)
		}
		if !l.Open {
			d.slots = make(chan struct{}, max(l.Window, 1))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.send(rctx, d, s, rs, end)
		}()
	}
	var ackWG sync.WaitGroup
	ackCtx, stopAcks := context.WithCancel(rctx)
	if l.AckEvery > 0 {
		ackWG.Add(1)
		go func() {
			defer ackWG.Done()
			t := time.NewTicker(l.AckEvery)
			defer t.Stop()
			for {
				select {
				case <-ackCtx.Done():
					return
				case <-t.C:
					w.ackAll(ackCtx, false)
				}
			}
		}()
	}
	wg.Wait()
	if t := time.Until(end.Add(l.Drain)); t > 0 {
		select {
		case <-time.After(t):
		case <-ctx.Done():
		}
	}
	stopAcks()
	ackWG.Wait()
	w.cur.Store(nil)

	st := &runStats{Sent: rs.sent.Load(), Acked: rs.acked.Load(), Delivered: rs.deliv.Load(), Echoes: rs.echoes.Load(),
		Late: rs.late.Load(), Others: rs.others.Load(), Closed: rs.closed.Load(), Latency: rs.lat.total(), AckLat: rs.ackLat.total(),
		Behind: time.Duration(rs.behind.Load())}
	rs.mu.Lock()
	st.Errors = rs.errors
	if l.Track {
		st.Tracked = map[string]msgTrack{}
		for id, t := range rs.tracked {
			st.Tracked[strconv.FormatUint(id, 10)] = *t
		}
		st.SentAt = map[string]int64{}
		for id, t := range rs.sentAt {
			st.SentAt[strconv.FormatUint(id, 10)] = t
		}
	}
	rs.mu.Unlock()
	return st, nil
}

// send is one sender's loop: open loop on a fixed schedule, or closed
// loop with a window of outstanding sends, until end (or Count).
func (w *worker) send(ctx context.Context, d *wdev, s sender, rs *runState, end time.Time) {
	l := rs.l
	var interval time.Duration
	var phase time.Duration
	if l.Open {
		interval = time.Duration(float64(time.Second) / l.Rate)
		phase = time.Duration(rand.Int64N(int64(max(interval, 1))))
	}
	if t := time.Until(l.Start); t > 0 {
		select {
		case <-time.After(t):
		case <-ctx.Done():
			return
		}
	}
	for k := 0; s.Count <= 0 || k < s.Count; k++ {
		var at time.Time
		if l.Open {
			at = l.Start.Add(phase + time.Duration(k)*interval)
			if at.After(end) {
				return
			}
			if t := time.Until(at); t > 0 {
				select {
				case <-time.After(t):
				case <-ctx.Done():
					return
				}
			} else if -t > time.Duration(rs.behind.Load()) {
				rs.behind.Store(int64(-t))
			}
		} else {
			select {
			case d.slots <- struct{}{}:
			case <-ctx.Done():
				return
			case <-time.After(time.Until(end)):
				return
			}
			at = time.Now()
			if at.After(end) {
				return
			}
		}
		id := uint64(d.id.index)<<32 | uint64(k)
		msg := appMessage(s.GroupID, s.Epoch, l.Size, stamp{at: at.UnixNano(), id: id, sender: uint32(d.id.index)})
		f := make([]byte, 0, len(msg)*4/3+128)
		f = append(f, `{"type":"send","client_id":"`...)
		f = strconv.AppendInt(f, at.UnixNano(), 10)
		f = append(f, `","conversation":`...)
		f = strconv.AppendInt(f, int64(s.Conv), 10)
		f = append(f, `,"message":"`...)
		f = base64.StdEncoding.AppendEncode(f, msg)
		f = append(f, `"}`...)
		if l.Track {
			rs.mu.Lock()
			rs.sentAt[id] = time.Now().UnixNano()
			rs.mu.Unlock()
		}
		if err := d.c.Write(ctx, websocket.MessageText, f); err != nil {
			rs.addError("write: " + err.Error())
			return
		}
		rs.sent.Add(1)
	}
}

// ackAll acknowledges every device's newest received seqs.
func (w *worker) ackAll(ctx context.Context, sync bool) error {
	devMu.Lock()
	devs := make([]*wdev, 0, len(w.devs))
	for _, d := range w.devs {
		if d.c != nil {
			devs = append(devs, d)
		}
	}
	devMu.Unlock()
	return parallel(ctx, 64, devs, func(ctx context.Context, d *wdev) error {
		var cs []protocol.Cursor
		d.mu.Lock()
		for c, s := range d.seqs {
			if s > d.ackSent[c] {
				cs = append(cs, protocol.Cursor{Conversation: c, Seq: s})
				d.ackSent[c] = s
			}
		}
		d.mu.Unlock()
		if len(cs) == 0 {
			return nil
		}
		f, err := protocol.MarshalFrame(&protocol.AckFrame{Cursors: cs})
		if err != nil {
			return err
		}
		// A websocket write whose context ends mid-write closes the
		// connection, so stopping the periodic acks at the end of a run
		// must not reach a write in flight: the write has its own deadline.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := d.c.Write(wctx, websocket.MessageText, f); err != nil || !sync {
			return nil // a failed ack is seen as a closed connection
		}
		select {
		case <-d.pong:
		default:
		}
		ping, _ := protocol.MarshalFrame(&protocol.PingFrame{Nonce: "acked"})
		if err := d.c.Write(wctx, websocket.MessageText, ping); err != nil {
			return nil
		}
		select {
		case <-d.pong:
			return nil
		case <-wctx.Done():
			return fmt.Errorf("ack of device %d: no answer within 10 s", d.id.index)
		}
	})
}

// closeAll closes every connection.
func (w *worker) closeAll() {
	w.closing.Store(true)
	devMu.Lock()
	defer devMu.Unlock()
	for _, d := range w.devs {
		if d.c != nil {
			d.c.CloseNow()
			d.c = nil
		}
	}
}

// seqWatch waits until a set of devices received one entry.
type seqWatch struct {
	conv    protocol.ConversationID
	seq     uint64
	mu      sync.Mutex
	pending map[int]bool
	last    int64
	done    chan struct{}
}

// note records that device i received the entry at t (Unix
// nanoseconds); the first note of each device counts.
func (s *seqWatch) note(i int, t int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pending[i] {
		return
	}
	delete(s.pending, i)
	s.last = max(s.last, t)
	if len(s.pending) == 0 {
		close(s.done)
	}
}

// await waits until each of the devices received entry seq (or a later
// one) of conv, for at most timeout, and returns when the last one did
// and how many had not.
func (w *worker) await(ctx context.Context, devices []int, conv protocol.ConversationID, seq uint64, timeout time.Duration) (int64, int, error) {
	s := &seqWatch{conv: conv, seq: seq, pending: map[int]bool{}, done: make(chan struct{})}
	for _, i := range devices {
		if d := w.dev(i); d == nil || d.c == nil {
			return 0, 0, fmt.Errorf("await: device %d is not connected in this worker", i)
		}
		s.pending[i] = true
	}
	if len(s.pending) == 0 {
		return 0, 0, nil
	}
	w.watch.Store(s)
	defer w.watch.Store(nil)
	// Entries that arrived before the watch was set.
	for _, i := range devices {
		d := w.dev(i)
		d.mu.Lock()
		got, at := d.seqs[conv], d.seqAt[conv]
		d.mu.Unlock()
		if got >= seq {
			s.note(i, at)
		}
	}
	t := time.NewTimer(max(timeout, time.Second))
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, len(s.pending), nil
}
