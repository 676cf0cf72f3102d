package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/store"
)

// testURL returns the NATS server of the tests (PARLEY_TEST_NATS, default
// the local service). It skips the test when the server is unreachable,
// and fails it under CI=true (testenv).
func testURL(t testing.TB) string {
	t.Helper()
	return testenv.NATS(t)
}

// testPrefix returns a fresh subject prefix, so concurrent runs on one
// NATS server do not see each other.
func testPrefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "parleytest." + hex.EncodeToString(b[:])
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// newNode starts a Notifier and closes it when the test ends.
func newNode(t testing.TB, url, prefix, id string, edit func(*Config)) *Notifier {
	t.Helper()
	cfg := NewConfig()
	cfg.URL, cfg.Prefix, cfg.NodeID, cfg.Logger = url, prefix, id, testLogger(t)
	cfg.ReconnectWait, cfg.MaxReconnectWait = 20*time.Millisecond, 200*time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// recorder is a Subscriber that records its events.
type recorder struct {
	mu     sync.Mutex
	events []delivery.Event
	wake   chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) Notify(e delivery.Event) {
	if e.Typing != nil { // keep a copy: the publisher owns its Typing
		t := *e.Typing
		e.Typing = &t
	}
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() []delivery.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery.Event(nil), r.events...)
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
}

// waitFor waits until the recorded events satisfy ok.
func (r *recorder) waitFor(t testing.TB, what string, ok func([]delivery.Event) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if ok(r.snapshot()) {
			return
		}
		select {
		case <-r.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; got %v", what, fmtEvents(r.snapshot()))
		}
	}
}

// waitEvent waits for an event equal to e.
func (r *recorder) waitEvent(t testing.TB, e delivery.Event) {
	t.Helper()
	r.waitFor(t, fmtEvent(e), func(es []delivery.Event) bool { return count(es, e) > 0 })
}

func count(es []delivery.Event, e delivery.Event) int {
	n := 0
	for _, x := range es {
		if reflect.DeepEqual(x, e) {
			n++
		}
	}
	return n
}

func fmtEvent(e delivery.Event) string {
	s := fmt.Sprintf("{conv %d device %q", e.Topic.Conversation, e.Topic.Device)
	if e.Typing != nil {
		s += fmt.Sprintf(" typing %q %v", e.Typing.Device, e.Typing.Typing)
	}
	return s + "}"
}

func fmtEvents(es []delivery.Event) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(fmtEvent(e))
	}
	return "[" + b.String() + "]"
}

// quiet is how long a test waits to conclude that nothing more arrives.
const quiet = 300 * time.Millisecond

func conv(id int64) delivery.Topic    { return delivery.Topic{Conversation: store.ConversationID(id)} }
func device(id string) delivery.Topic { return delivery.Topic{Device: store.DeviceID(id)} }

func TestCrossNode(t *testing.T) {
	u, p := testURL(t), testPrefix()
	a, b := newNode(t, u, p, "a", nil), newNode(t, u, p, "b", nil)
	ra, rb, rbOther, rbDev := newRecorder(), newRecorder(), newRecorder(), newRecorder()
	a.Subscribe(conv(7), ra)
	b.Subscribe(conv(7), rb)
	b.Subscribe(conv(8), rbOther)
	b.Subscribe(device("dev_B-1"), rbDev)

	e := delivery.Event{Topic: conv(7)}
	a.Publish(e)
	if got := ra.snapshot(); !reflect.DeepEqual(got, []delivery.Event{e}) {
		t.Fatalf("local subscriber after Publish returned: %v, want [%s]", fmtEvents(got), fmtEvent(e))
	}
	rb.waitEvent(t, e)
	d := delivery.Event{Topic: device("dev_B-1")}
	a.Publish(d)
	rbDev.waitEvent(t, d)

	time.Sleep(quiet)
	if got := ra.snapshot(); len(got) != 1 {
		t.Errorf("publishing node's subscriber got %v, want the event once", fmtEvents(got))
	}
	if got := rb.snapshot(); len(got) != 1 {
		t.Errorf("remote subscriber got %v, want the event once", fmtEvents(got))
	}
	if got := rbOther.snapshot(); len(got) != 0 {
		t.Errorf("subscriber of another topic got %v", fmtEvents(got))
	}
	if got := rbDev.snapshot(); len(got) != 1 {
		t.Errorf("device subscriber got %v, want one wake-up", fmtEvents(got))
	}
	// And back: B to A.
	f := delivery.Event{Topic: conv(7)}
	b.Publish(f)
	ra.waitFor(t, "the event from B", func(es []delivery.Event) bool { return len(es) == 2 })
	if sa, sb := a.Stats(), b.Stats(); sa.Received != 1 || sb.Received != 2 || sa.Invalid+sb.Invalid != 0 {
		t.Errorf("stats: a %+v, b %+v", sa, sb)
	}
}

func TestUnsubscribe(t *testing.T) {
	u, p := testURL(t), testPrefix()
	a, b := newNode(t, u, p, "a", nil), newNode(t, u, p, "b", nil)
	ra, rb, control := newRecorder(), newRecorder(), newRecorder()
	unA := a.Subscribe(conv(1), ra)
	unB := b.Subscribe(conv(1), rb)
	b.Subscribe(conv(1), control)
	e := delivery.Event{Topic: conv(1)}
	a.Publish(e)
	rb.waitEvent(t, e)
	control.waitEvent(t, e)

	unA()
	unB()
	unB() // idempotent
	ra.reset()
	rb.reset()
	control.reset()
	a.Publish(e)
	control.waitEvent(t, e) // the event reached B ...
	time.Sleep(quiet)
	if got := rb.snapshot(); len(got) != 0 { // ... but not the unsubscribed
		t.Errorf("unsubscribed remote subscriber got %v", fmtEvents(got))
	}
	if got := ra.snapshot(); len(got) != 0 {
		t.Errorf("unsubscribed local subscriber got %v", fmtEvents(got))
	}
}

func TestTyping(t *testing.T) {
	u, p := testURL(t), testPrefix()
	a, b := newNode(t, u, p, "a", nil), newNode(t, u, p, "b", nil)
	ra, rb := newRecorder(), newRecorder()
	a.Subscribe(conv(9), ra)
	b.Subscribe(conv(9), rb)
	want := []delivery.Event{
		{Topic: conv(9), Typing: &delivery.Typing{Device: "alice-phone", Typing: true}},
		{Topic: conv(9), Typing: &delivery.Typing{Device: "alice-phone", Typing: false}},
		{Topic: conv(9), Typing: &delivery.Typing{Device: "bob_laptop", Typing: true}},
		{Topic: conv(9), Ephemeral: &delivery.Ephemeral{Device: "bob_laptop", Message: []byte("an MLS PrivateMessage")}},
	}
	for _, e := range want {
		a.Publish(e)
	}
	rb.waitFor(t, "three typing signals and an ephemeral message", func(es []delivery.Event) bool { return len(es) >= 4 })
	time.Sleep(quiet)
	if got := rb.snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("remote typing: got %v, want %v", fmtEvents(got), fmtEvents(want))
	}
	if got := ra.snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("local typing: got %v, want %v", fmtEvents(got), fmtEvents(want))
	}
}

// TestHubModel runs random subscriptions and publications on two nodes and
// on a delivery.Hub, the model: local subscribers must see exactly what
// the Hub's see; remote subscribers the same typing signals in the same
// order and a wake-up for each topic the Hub woke (wake-ups may coalesce).
func TestHubModel(t *testing.T) {
	u, p := testURL(t), testPrefix()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(uint64(seed), 0))
	a, b := newNode(t, u, p, "a", nil), newNode(t, u, p, "b", nil)
	hub := delivery.NewHub()

	topics := []delivery.Topic{conv(1), conv(2), conv(3), conv(1 << 40), device("d1"), device("d-2"), device("D_3")}
	type sub struct {
		local, remote, model *recorder
		unsubs               []func()
	}
	subs := make([]*sub, 20)
	for i := range subs {
		s := &sub{local: newRecorder(), remote: newRecorder(), model: newRecorder()}
		for _, t := range topics {
			if rng.IntN(3) == 0 {
				s.unsubs = append(s.unsubs, a.Subscribe(t, s.local), b.Subscribe(t, s.remote), hub.Subscribe(t, s.model))
			}
		}
		if rng.IntN(4) == 0 { // some unsubscribe before anything is published
			for _, u := range s.unsubs {
				u()
			}
		}
		subs[i] = s
	}
	const publishes = 500
	for i := range publishes {
		e := delivery.Event{Topic: topics[rng.IntN(len(topics))]}
		if e.Topic.Device == "" && rng.IntN(2) == 0 {
			e.Typing = &delivery.Typing{Device: store.DeviceID("dev" + strconv.Itoa(i)), Typing: rng.IntN(2) == 0}
		}
		a.Publish(e)
		hub.Publish(e)
	}
	total := 0
	for i, s := range subs {
		want := s.model.snapshot()
		total += len(want)
		if got := s.local.snapshot(); !reflect.DeepEqual(got, want) {
			t.Errorf("subscriber %d on the publishing node: got %d events, the Hub %d", i, len(got), len(want))
		}
		var wantTyping []delivery.Event
		wantWoken := map[delivery.Topic]bool{}
		for _, e := range want {
			if e.Typing != nil {
				wantTyping = append(wantTyping, e)
			} else {
				wantWoken[e.Topic] = true
			}
		}
		split := func(es []delivery.Event) (typing []delivery.Event, woken map[delivery.Topic]bool) {
			woken = map[delivery.Topic]bool{}
			for _, e := range es {
				if e.Typing != nil {
					typing = append(typing, e)
				} else {
					woken[e.Topic] = true
				}
			}
			return typing, woken
		}
		s.remote.waitFor(t, fmt.Sprintf("subscriber %d on the other node to match the Hub", i), func(es []delivery.Event) bool {
			typing, woken := split(es)
			return len(typing) >= len(wantTyping) && len(woken) >= len(wantWoken)
		})
		typing, woken := split(s.remote.snapshot())
		if !reflect.DeepEqual(typing, wantTyping) {
			t.Errorf("subscriber %d on the other node: typing %v, the Hub %v", i, fmtEvents(typing), fmtEvents(wantTyping))
		}
		if !reflect.DeepEqual(woken, wantWoken) {
			t.Errorf("subscriber %d on the other node: woken %v, the Hub %v", i, woken, wantWoken)
		}
	}
	st := a.Stats()
	t.Logf("%d events for %d subscribers; publisher %+v; receiver %+v", total, len(subs), st, b.Stats())
	if total == 0 {
		t.Error("the model delivered nothing: the test tests nothing")
	}
	if st.DroppedWakeups+st.DroppedTyping != 0 {
		t.Errorf("publisher dropped events while connected: %+v", st)
	}
}

// server is a private nats-server for outage tests.
type server struct {
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd.Wait returned
}

func startServer(t *testing.T, port int) *server {
	t.Helper()
	testURL(t) // the same skip/fail rule as the shared server
	bin := "/usr/sbin/nats-server"
	if p, err := exec.LookPath("nats-server"); err == nil {
		bin = p
	} else if _, err := os.Stat(bin); err != nil {
		testenv.Unavailable(t, testenv.NeedNATSBinary, err)
	}
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	s := &server{port: port}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.cmd = exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port))
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("start nats-server: %v", err)
		}
		exited := make(chan struct{})
		s.exited = exited
		go func() { s.cmd.Wait(); close(exited) }()
		for time.Now().Before(deadline) {
			if c, err := net.DialTimeout("tcp", s.addr(), 100*time.Millisecond); err == nil {
				c.Close()
				t.Cleanup(s.kill)
				return s
			}
			select {
			case <-exited: // port not free yet: try again
			case <-time.After(20 * time.Millisecond):
				continue
			}
			break
		}
		s.cmd.Process.Kill()
		<-exited
		if time.Now().After(deadline) {
			t.Fatalf("nats-server on port %d did not start", port)
		}
	}
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }
func (s *server) url() string  { return "nats://" + s.addr() }

func (s *server) kill() {
	s.cmd.Process.Kill() // an error only says it has exited already
	<-s.exited
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOutage(t *testing.T) {
	srv := startServer(t, 0)
	p := testPrefix()
	a, b := newNode(t, srv.url(), p, "a", nil), newNode(t, srv.url(), p, "b", nil)
	ra, rb, rbDev := newRecorder(), newRecorder(), newRecorder()
	a.Subscribe(conv(1), ra)
	b.Subscribe(conv(1), rb)
	b.Subscribe(device("dev-b"), rbDev)
	e := delivery.Event{Topic: conv(1)}
	a.Publish(e)
	rb.waitEvent(t, e)

	srv.kill()
	waitUntil(t, "both nodes notice the outage", func() bool { return a.Healthy() != nil && b.Healthy() != nil })
	t.Logf("during the outage: a %v; b %v", a.Healthy(), b.Healthy())
	ra.reset()
	rb.reset()
	rbDev.reset()
	a.Publish(e)
	if got := ra.snapshot(); !reflect.DeepEqual(got, []delivery.Event{e}) {
		t.Fatalf("local delivery during the outage: got %v", fmtEvents(got))
	}
	waitUntil(t, "the remote copy is dropped", func() bool { return a.Stats().DroppedWakeups > 0 })
	a.Publish(delivery.Event{Topic: conv(1), Typing: &delivery.Typing{Device: "dev-a", Typing: true}})
	time.Sleep(quiet)
	if got := rb.snapshot(); len(got) != 0 {
		t.Fatalf("remote subscriber got %v while NATS was down", fmtEvents(got))
	}

	startServer(t, srv.port)
	waitUntil(t, "both nodes reconnect", func() bool { return a.Healthy() == nil && b.Healthy() == nil })
	rb.waitEvent(t, e)                                         // the resync wake-up ...
	rbDev.waitEvent(t, delivery.Event{Topic: device("dev-b")}) // ... for every topic
	ra.waitFor(t, "the resync on the publishing node", func(es []delivery.Event) bool { return len(es) >= 2 })
	time.Sleep(quiet)
	for _, ev := range rb.snapshot() {
		if ev.Typing != nil {
			t.Errorf("a typing signal of the outage arrived after it: %s", fmtEvent(ev))
		}
	}
	sa, sb := a.Stats(), b.Stats()
	t.Logf("after the outage: a %+v; b %+v", sa, sb)
	if sa.Reconnects != 1 || sb.Reconnects != 1 || sa.Resyncs == 0 || sb.Resyncs == 0 || sa.ResyncRequestsSent == 0 {
		t.Errorf("stats after the outage: a %+v; b %+v", sa, sb)
	}

	// Back to normal.
	rb.reset()
	a.Publish(e)
	rb.waitEvent(t, e)
}

// TestNewUnreachable checks that New gives up when its context ends.
func TestNewUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	cfg := NewConfig()
	cfg.URL, cfg.Prefix, cfg.NodeID = "nats://"+addr, testPrefix(), "a"
	if n, err := New(ctx, cfg); err == nil {
		n.Close()
		t.Fatal("New succeeded without a server")
	} else {
		t.Log(err)
	}
	checkGoroutines(t, before)
}

func TestCloseNoLeak(t *testing.T) {
	u, p := testURL(t), testPrefix()
	before := runtime.NumGoroutine()
	for range 3 {
		a, b := newNode(t, u, p, "a", nil), newNode(t, u, p, "b", nil)
		r := newRecorder()
		b.Subscribe(conv(1), r)
		a.Publish(delivery.Event{Topic: conv(1)})
		r.waitEvent(t, delivery.Event{Topic: conv(1)})
		a.Close()
		b.Close()
		b.Close()
		if err := a.Healthy(); err == nil {
			t.Error("Healthy after Close: nil")
		}
		a.Publish(delivery.Event{Topic: conv(1)}) // local only, no panic
	}
	checkGoroutines(t, before)
}

// checkGoroutines waits until no more goroutines run than before.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := NewConfig()
	ok.URL, ok.Prefix, ok.NodeID = "nats://127.0.0.1:4222", "parley.acme-1", "node_1"
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(*Config)
	}{
		{"no URL", func(c *Config) { c.URL = "" }},
		{"empty prefix", func(c *Config) { c.Prefix = "" }},
		{"wildcard prefix", func(c *Config) { c.Prefix = "parley.*" }},
		{"empty token", func(c *Config) { c.Prefix = "parley..acme" }},
		{"trailing dot", func(c *Config) { c.Prefix = "parley." }},
		{"space", func(c *Config) { c.Prefix = "par ley" }},
		{"no node", func(c *Config) { c.NodeID = "" }},
		{"node with space", func(c *Config) { c.NodeID = "a b" }},
		{"negative queue", func(c *Config) { c.MaxPending = -1 }},
		{"backoff", func(c *Config) { c.ReconnectWait, c.MaxReconnectWait = time.Second, time.Millisecond }},
	} {
		c2 := ok
		c.edit(&c2)
		if err := c2.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", c.name, c2)
		}
	}
}
