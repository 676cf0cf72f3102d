package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/internal/testserver"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	serverstore "github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlite"
)

// server is a parleyd core on a real SQLite file behind a loopback TLS
// server with a self-signed certificate.
type server struct {
	srv         *httptest.Server
	url         string
	fingerprint string
	name        string
	st          *sqlite.Store     // st is the server's store, for checks
	svc         *delivery.Service // svc is the server's core, for administration
}

func newServer(t testing.TB) *server {
	t.Helper()
	return newServerWith(t, nil)
}

// newServerWith is newServer with the delivery configuration changed by
// configure (if not nil).
func newServerWith(t testing.TB, configure func(*delivery.Config)) *server {
	t.Helper()
	ts := testserver.Start(t, configure)
	return &server{srv: ts.HTTP, url: ts.URL, fingerprint: ts.Fingerprint, name: ts.Name, st: ts.Store, svc: ts.Service}
}

// device is one client profile in a test.
type device struct {
	t    testing.TB
	name string
	dir  string
	url  string
	fp   string
	c    *client.Client
	logs *logBuffer

	mu     sync.Mutex
	events []client.Event
	cond   *sync.Cond
	// tap, if set, sees every event with the time it was read from
	// Events (benchmarks); keep reports whether to keep it in events.
	tap    func(at time.Time, ev client.Event) (keep bool)
	cancel context.CancelFunc
	done   chan struct{}
}

// fastKDF keeps Argon2id cheap in tests.
var fastKDF = store.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}

// openDevice opens (or reopens) a profile.
func openDevice(t testing.TB, s *server, dir, name string) *device {
	t.Helper()
	return openDeviceURL(t, s.url, s.fingerprint, dir, name)
}

func openDeviceURL(t testing.TB, url, fp, dir, name string) *device {
	t.Helper()
	return openDeviceConfig(t, url, fp, dir, name, nil)
}

// openDeviceConfig is openDeviceURL with the client configuration changed
// by configure (if not nil).
func openDeviceConfig(t testing.TB, url, fp, dir, name string, configure func(*client.Config)) *device {
	t.Helper()
	logs := &logBuffer{}
	cfg := client.Config{
		ProfileDir: dir, Passphrase: []byte("correct horse " + name), KDF: fastKDF,
		ServerURL: url, TLSFingerprint: fp,
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		SelfUpdateMessages: -1, SelfUpdateInterval: -1,
	}
	if configure != nil {
		configure(&cfg)
	}
	c, err := client.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	d := &device{t: t, name: name, dir: dir, url: url, fp: fp, c: c, logs: logs}
	d.cond = sync.NewCond(&d.mu)
	go func() {
		for ev := range c.Events() {
			at := time.Now()
			d.mu.Lock()
			if d.tap == nil || d.tap(at, ev) {
				d.events = append(d.events, ev)
			}
			d.cond.Broadcast()
			d.mu.Unlock()
		}
	}()
	t.Cleanup(func() { d.close() })
	return d
}

// register creates a user on the server with a fresh profile.
func register(t testing.TB, s *server, name string) *device {
	t.Helper()
	d := openDevice(t, s, t.TempDir(), name)
	if _, err := d.c.Register(context.Background(), s.url, "", name); err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return d
}

// start runs the sync loop in the background.
func (d *device) start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.done = make(chan struct{})
	go func() {
		defer close(d.done)
		d.c.Run(ctx)
	}()
}

// stop ends the sync loop.
func (d *device) stop() {
	if d.cancel != nil {
		d.cancel()
		<-d.done
		d.cancel = nil
	}
}

func (d *device) close() {
	if d.c == nil {
		return
	}
	d.stop()
	d.c.Close()
	d.c = nil
}

// waitEvent waits for an event matching f (seen at any time).
func (d *device) waitEvent(what string, f func(client.Event) bool) client.Event {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	timer := time.AfterFunc(20*time.Second, func() {
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	defer timer.Stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		for _, ev := range d.events {
			if f(ev) {
				return ev
			}
		}
		if time.Now().After(deadline) {
			var kinds []string
			for _, ev := range d.events {
				kinds = append(kinds, fmt.Sprintf("%s(%d %s %s)", ev.Kind, ev.Conversation, ev.User, ev.Error))
			}
			d.t.Fatalf("%s: no event %s; events: %s", d.name, what, strings.Join(kinds, ", "))
		}
		d.cond.Wait()
	}
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connections counts d's EventConnection events of state so far.
func (d *device) connections(state client.ConnState) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, ev := range d.events {
		if ev.Kind == client.EventConnection && ev.Connection == state {
			n++
		}
	}
	return n
}

// waitAcked waits until the server has d's acknowledgement of conv up to
// seq (its cursor there).
func waitAcked(t testing.TB, s *server, d *device, conv protocol.ConversationID, seq uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s's acknowledgement of seq %d", d.name, seq), func() bool {
		ms, err := s.st.Conversations(context.Background(), serverstore.DeviceID(d.deviceID()))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Conversation == serverstore.ConversationID(conv) {
				return m.Cursor >= seq
			}
		}
		return false
	})
}

// lastSeq returns the seq of the last entry of conv in the server's log
// (0 if it holds none).
func lastSeq(t testing.TB, s *server, conv protocol.ConversationID) uint64 {
	t.Helper()
	es, err := s.st.Entries(context.Background(), serverstore.ConversationID(conv), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		return 0
	}
	return es[len(es)-1].Seq
}

// texts returns the texts of a conversation's history.
func (d *device) texts(conv protocol.ConversationID) []string {
	d.t.Helper()
	ms, err := d.c.Messages(context.Background(), conv, 0, 0)
	if err != nil && !errors.Is(err, client.ErrUnknownConversation) {
		d.t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}

// waitTexts waits until the history of conv has exactly want.
func (d *device) waitTexts(conv protocol.ConversationID, want ...string) {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := d.texts(conv)
		if strings.Join(got, "\x00") == strings.Join(want, "\x00") {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: history of %d is %q, want %q", d.name, conv, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deviceID returns the device's id.
func (d *device) deviceID() protocol.DeviceID {
	d.t.Helper()
	a, err := d.c.Whoami()
	if err != nil {
		d.t.Fatal(err)
	}
	return a.Device
}

// epoch returns the device's epoch in conv.
func (d *device) epoch(conv protocol.ConversationID) uint64 {
	d.t.Helper()
	cv, err := d.c.Conversation(context.Background(), conv)
	if err != nil {
		return 0
	}
	return cv.Epoch
}

// logBuffer collects a client's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// directPair registers and starts alice and bob on s and opens a 1:1 chat
// from alice, returning once bob has joined it.
func directPair(t testing.TB, s *server) (alice, bob *device, conv protocol.ConversationID) {
	t.Helper()
	alice = register(t, s, "alice")
	bob = register(t, s, "bob")
	alice.start()
	bob.start()
	conv, err := alice.c.NewDirect(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("joined", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == conv
	})
	return alice, bob, conv
}
