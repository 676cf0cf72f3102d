package delivery_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlite"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// drain returns the ephemeral frames a connection has to write now
// (Publish notifies the connections of this node before it returns).
func drain(t *testing.T, c *delivery.Conn) []*protocol.EphemeralFrame {
	t.Helper()
	var out []*protocol.EphemeralFrame
	for {
		f, err := c.Poll(context.Background())
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if f == nil {
			return out
		}
		if e, ok := f.(*protocol.EphemeralFrame); ok {
			out = append(out, e)
		}
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// Ephemeral messages reach the conversation's other connected members that
// asked for them, never the sender, a non-member or the store; the
// sender must be a member, the message a PrivateMessage of the group
// within the size limit, and each device is rate-limited.
func TestEphemeralRelay(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.NewConfig(filepath.Join(t.TempDir(), "d.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := &fakeClock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	cfg := delivery.DefaultConfig()
	cfg.AllowForeignCredentials = true // the fake follower reports no credentials
	svc, err := delivery.New(cfg, st, nopBlobs{}, fakeFollower{}, delivery.Options{Metrics: reg, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { svc.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	sess := map[string]*delivery.Session{}
	for _, name := range []string{"a", "b", "c"} {
		_, dev, err := st.CreateUser(ctx, store.NewUser{Name: name, IdentityKey: make([]byte, 32), Created: clock.Now(),
			Device: store.Device{ID: store.DeviceID("dev-" + name), Scheme: 0x0807, SignatureKey: []byte("key-" + name), Created: clock.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		sess[name] = &delivery.Session{Device: dev.ID, User: dev.User, UserName: name}
	}
	conv, err := svc.CreateConversation(ctx, sess["a"], protocol.CreateConversationRequest{GroupID: []byte("G"), CipherSuite: 1, GroupInfo: []byte("G"), RatchetTree: []byte("key-a")})
	if err != nil {
		t.Fatal(err)
	}
	// b joins by a commit (epoch 0 → 1); c stays outside.
	if _, err := st.Commit(ctx, store.Commit{Conversation: store.ConversationID(conv.ID), Epoch: 0, Sender: "dev-a", Data: []byte("commit"),
		GroupInfo: []byte("G"), FollowerState: []byte{1}, Add: []store.DeviceID{"dev-b"}, Created: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	attach := func(name string, want bool) *delivery.Conn {
		c := svc.AttachWake(sess[name], 16, func() {})
		t.Cleanup(c.Close)
		if err := c.Subscribe(ctx, &protocol.SubscribeFrame{Ephemeral: want}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, cb, cc := attach("a", true), attach("b", true), attach("c", true)
	cbQuiet := attach("b", false) // b's second connection did not ask
	drain(t, ca)
	drain(t, cb)
	head := func() int {
		es, err := st.Entries(ctx, store.ConversationID(conv.ID), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	before := head()

	msg := []byte{'G', 1, 0xee}
	if err := ca.Ephemeral(ctx, &protocol.EphemeralFrame{Conversation: conv.ID, Message: msg}); err != nil {
		t.Fatalf("ephemeral from a member: %v", err)
	}
	got := drain(t, cb)
	if len(got) != 1 || got[0].Device != "dev-a" || got[0].Conversation != conv.ID || !bytes.Equal(got[0].Message, msg) {
		t.Fatalf("b got %+v, want one ephemeral frame from dev-a", got)
	}
	if got := drain(t, ca); len(got) != 0 {
		t.Errorf("the sender got its own ephemeral message back: %+v", got)
	}
	if got := drain(t, cc); len(got) != 0 {
		t.Errorf("a non-member got an ephemeral message: %+v", got)
	}
	if got := drain(t, cbQuiet); len(got) != 0 {
		t.Errorf("a connection that did not ask got an ephemeral message: %+v", got)
	}
	if h := head(); h != before {
		t.Errorf("the log held %d entries, now %d: an ephemeral message was stored", before, h)
	}

	refused := func(what string, c *delivery.Conn, f *protocol.EphemeralFrame, code protocol.ErrorCode) {
		t.Helper()
		err := c.Ephemeral(ctx, f)
		if pe, ok := delivery.AsProtocolError(err); !ok || pe.Code != code {
			t.Errorf("%s: %v, want %s", what, err, code)
		}
		if got := drain(t, cb); len(got) != 0 {
			t.Errorf("%s: relayed %+v", what, got)
		}
	}
	refused("non-member", cc, &protocol.EphemeralFrame{Conversation: conv.ID, Message: msg}, protocol.CodeNotMember)
	refused("too large", ca, &protocol.EphemeralFrame{Conversation: conv.ID, Message: append([]byte{'G', 1}, make([]byte, protocol.MaxEphemeralBytes)...)}, protocol.CodeTooLarge)
	refused("another group", ca, &protocol.EphemeralFrame{Conversation: conv.ID, Message: []byte{'X', 1, 0}}, protocol.CodeBadMessage)

	// The first message and the one for another group took tokens of
	// the bucket (burst 3; the earlier refusals come before the limiter):
	// use up the rest, then one more is refused until time passes.
	for drained := false; !drained; {
		err := ca.Ephemeral(ctx, &protocol.EphemeralFrame{Conversation: conv.ID, Message: msg})
		if pe, ok := delivery.AsProtocolError(err); ok && pe.Code == protocol.CodeRateLimited {
			drained = true
		} else if err != nil {
			t.Fatal(err)
		}
	}
	relayed := len(drain(t, cb))
	if n := counter(t, reg, "parley_ephemeral_total", "relayed"); int(n) != 1+relayed || 1+relayed > delivery.DefaultEphemeralBurst {
		t.Errorf("relayed %d (metric %v) before the limit, want at most the burst %d", 1+relayed, n, delivery.DefaultEphemeralBurst)
	}
	refused("over the rate", ca, &protocol.EphemeralFrame{Conversation: conv.ID, Message: msg}, protocol.CodeRateLimited)
	clock.Add(time.Second)
	if err := ca.Ephemeral(ctx, &protocol.EphemeralFrame{Conversation: conv.ID, Message: msg}); err != nil {
		t.Errorf("a second later: %v", err)
	}
	if got := drain(t, cb); len(got) != 1 {
		t.Errorf("a second later b got %d frames, want 1", len(got))
	}
	for _, code := range []protocol.ErrorCode{protocol.CodeNotMember, protocol.CodeTooLarge, protocol.CodeBadMessage, protocol.CodeRateLimited} {
		if counter(t, reg, "parley_ephemeral_total", string(code)) == 0 {
			t.Errorf("parley_ephemeral_total{result=%q} not counted", code)
		}
	}
	if h := head(); h != before {
		t.Errorf("the log held %d entries, now %d", before, h)
	}
}
