package delivery_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlite"
)

// ackFailpoint is the SQLite store with two failpoints in AckBatch: a
// batch holding an acknowledgement of device hold waits for release (once),
// and a batch holding one of device poison fails as a whole, as a
// transaction does when the store cannot write one of its rows.
type ackFailpoint struct {
	*sqlite.Store
	hold, poison store.DeviceID
	entered      chan struct{}
	release      chan struct{}
	once         sync.Once
}

func (f *ackFailpoint) AckBatch(ctx context.Context, acks []store.Ack) ([]error, error) {
	for _, a := range acks {
		if a.Device == f.hold {
			f.once.Do(func() {
				close(f.entered)
				<-f.release
			})
		}
	}
	for _, a := range acks {
		if a.Device == f.poison {
			return nil, fmt.Errorf("failpoint: ack of device %q cannot be written", a.Device)
		}
	}
	return f.Store.AckBatch(ctx, acks)
}

// ackSetup is a running service on the failpoint store with three
// accounts, each the only member of its own conversation of two entries.
type ackSetup struct {
	svc   *delivery.Service
	st    *ackFailpoint
	sess  map[string]*delivery.Session
	convs map[string]protocol.ConversationID
}

func newAckSetup(t *testing.T) *ackSetup {
	t.Helper()
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, sqlite.NewConfig(filepath.Join(t.TempDir(), "d.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	st := &ackFailpoint{Store: sq, hold: "dev-c", poison: "dev-a", entered: make(chan struct{}), release: make(chan struct{})}
	cfg := delivery.DefaultConfig()
	cfg.AllowForeignCredentials = true // the fake follower reports no credentials
	svc, err := delivery.New(cfg, st, nopBlobs{}, fakeFollower{}, delivery.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { svc.Run(runCtx); close(done) }()
	t.Cleanup(func() {
		select { // never hold the loop after the test
		case <-st.release:
		default:
			close(st.release)
		}
		stop()
		<-done
	})
	s := &ackSetup{svc: svc, st: st, sess: map[string]*delivery.Session{}, convs: map[string]protocol.ConversationID{}}
	for _, name := range []string{"a", "b", "c"} {
		key := []byte("key-" + name)
		_, dev, err := sq.CreateUser(ctx, store.NewUser{Name: name, IdentityKey: make([]byte, 32), Created: time.Now(),
			Device: store.Device{ID: store.DeviceID("dev-" + name), Scheme: 0x0807, SignatureKey: key, Created: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		sess := &delivery.Session{Device: dev.ID, User: dev.User, UserName: name}
		gid := []byte{name[0] - 'a' + 'A'}
		conv, err := svc.CreateConversation(ctx, sess, protocol.CreateConversationRequest{GroupID: gid, CipherSuite: 1, GroupInfo: gid, RatchetTree: key})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if _, err := svc.Send(ctx, sess, conv.ID, protocol.SendRequest{Message: []byte{gid[0], 0, byte(i)}}); err != nil {
				t.Fatal(err)
			}
		}
		s.sess[name], s.convs[name] = sess, conv.ID
	}
	return s
}

// cursor returns the stored cursor of a device in its conversation.
func (s *ackSetup) cursor(t *testing.T, name string) uint64 {
	t.Helper()
	ms, err := s.st.Conversations(context.Background(), s.sess[name].Device)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Conversation == store.ConversationID(s.convs[name]) {
			return m.Cursor
		}
	}
	t.Fatalf("device of %s is not a member of its conversation", name)
	return 0
}

// An acknowledgement the store cannot write fails alone: another
// account's acknowledgement that shares its batch is written.
func TestAckBatchIsolatesFailure(t *testing.T) {
	ctx := context.Background()
	s := newAckSetup(t)
	conns := map[string]*delivery.Conn{}
	for name, sess := range s.sess {
		conns[name] = s.svc.Attach(sess, 16)
		defer conns[name].Close()
	}
	ack := func(name string, seq uint64) {
		t.Helper()
		if err := conns[name].Ack(ctx, &protocol.AckFrame{Cursors: []protocol.Cursor{{Conversation: s.convs[name], Seq: seq}}}); err != nil {
			t.Fatalf("ack of %s: %v", name, err)
		}
	}
	// Hold the ack loop in a batch of c's, so that the acknowledgements
	// of a and b (queued when Conn.Ack returns) share the next batch.
	ack("c", 1)
	<-s.st.entered
	ack("a", 2)
	ack("b", 2)
	close(s.st.release)
	// Subscribe waits until every acknowledgement queued before it is
	// written (or failed).
	if err := conns["b"].Subscribe(ctx, &protocol.SubscribeFrame{}); err != nil {
		t.Fatal(err)
	}
	if got := s.cursor(t, "b"); got != 2 {
		t.Errorf("b's cursor is %d after its acknowledgement shared a batch with a failing one, want 2", got)
	}
	if got := s.cursor(t, "c"); got != 1 {
		t.Errorf("c's cursor is %d, want 1", got)
	}
	if got := s.cursor(t, "a"); got != 0 {
		t.Errorf("a's cursor is %d although its acknowledgement cannot be written, want 0", got)
	}
	// A waiting acknowledgement of b alongside a failing one of a: only
	// a's caller gets the error.
	var wg sync.WaitGroup
	errs := map[string]error{}
	var mu sync.Mutex
	for _, name := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.svc.Ack(ctx, s.sess[name], []protocol.Cursor{{Conversation: s.convs[name], Seq: 1}}, 0)
			mu.Lock()
			errs[name] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	if errs["b"] != nil {
		t.Errorf("b's acknowledgement: %v", errs["b"])
	}
	if _, ok := delivery.AsProtocolError(errs["a"]); errs["a"] == nil || ok {
		t.Errorf("a's acknowledgement: %v, want an internal error", errs["a"])
	}
}

// Out-of-range acknowledgements are refused with bad_request before they
// are batched with anyone else's.
func TestAckOutOfRange(t *testing.T) {
	ctx := context.Background()
	s := newAckSetup(t)
	close(s.st.release)
	b := s.sess["b"]
	for _, tc := range []struct {
		name    string
		cursors []protocol.Cursor
		inbox   uint64
	}{
		{"seq 2^63", []protocol.Cursor{{Conversation: s.convs["b"], Seq: 1 << 63}}, 0},
		{"max uint64", []protocol.Cursor{{Conversation: s.convs["b"], Seq: 1}, {Conversation: s.convs["b"], Seq: ^uint64(0)}}, 0},
		{"conversation 0", []protocol.Cursor{{Conversation: 0, Seq: 1}}, 0},
		{"inbox 2^63", nil, 1 << 63},
	} {
		err := s.svc.Ack(ctx, b, tc.cursors, tc.inbox)
		if pe, ok := delivery.AsProtocolError(err); !ok || pe.Code != protocol.CodeBadRequest {
			t.Errorf("%s: %v, want bad_request", tc.name, err)
		}
		c := s.svc.Attach(b, 4)
		err = c.Ack(ctx, &protocol.AckFrame{Cursors: tc.cursors, Inbox: tc.inbox})
		c.Close()
		if pe, ok := delivery.AsProtocolError(err); !ok || pe.Code != protocol.CodeBadRequest {
			t.Errorf("%s over a connection: %v, want bad_request", tc.name, err)
		}
	}
	if got := s.cursor(t, "b"); got != 0 {
		t.Errorf("b's cursor moved to %d by refused acknowledgements", got)
	}
	if err := s.svc.Ack(ctx, b, []protocol.Cursor{{Conversation: s.convs["b"], Seq: 2}}, 0); err != nil {
		t.Fatal(err)
	}
	if got := s.cursor(t, "b"); got != 2 {
		t.Errorf("b's cursor is %d, want 2", got)
	}
}
