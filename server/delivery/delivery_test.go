package delivery_test

import (
	"context"
	"errors"
	"fmt"
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

// fakeFollower accepts any group state; a "PrivateMessage" is the group id
// byte followed by the epoch byte.
type fakeFollower struct{}

func (fakeFollower) Start(gi, tree []byte) (*delivery.GroupState, error) {
	return &delivery.GroupState{GroupID: gi, Suite: 1, Members: []delivery.Leaf{{SignatureKey: tree}}, State: []byte{1}}, nil
}
func (fakeFollower) Process(delivery.FollowedGroup, []byte, delivery.NextState) (*delivery.Change, error) {
	return nil, errors.New("not supported")
}
func (fakeFollower) Forget(delivery.FollowedGroup, *delivery.Change) {}
func (fakeFollower) PeekPrivate(msg []byte) (delivery.PrivateHeader, error) {
	if len(msg) < 2 {
		return delivery.PrivateHeader{}, errors.New("short")
	}
	return delivery.PrivateHeader{GroupID: msg[:1], Epoch: uint64(msg[1]), ContentType: 1}, nil
}
func (fakeFollower) CheckWelcome([]byte, uint16) error { return nil }
func (fakeFollower) EncodeTree([]store.TreeNode) ([]byte, error) {
	return nil, errors.New("not supported")
}
func (fakeFollower) SplitLegacyState([]byte) ([]byte, []store.TreeNode, error) {
	return nil, nil, errors.New("not supported")
}
func (fakeFollower) ValidateKeyPackage([]byte, time.Time) (*delivery.KeyPackageInfo, error) {
	return nil, errors.New("not supported")
}

type nopBlobs struct{ delivery.BlobStore }

func (nopBlobs) Delete(context.Context, string) error { return nil }

func TestConfig(t *testing.T) {
	if err := delivery.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := delivery.DefaultConfig()
	c.MaxBatch, c.ServerName = 0, ""
	if err := c.Validate(); err == nil {
		t.Fatal("invalid config accepted")
	}
}

// Concurrent submissions are grouped into few transactions, each
// answered only after its commit, with gapless seqs.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.NewConfig(filepath.Join(t.TempDir(), "d.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	cfg := delivery.DefaultConfig()
	cfg.MaxBatch = 64
	cfg.AllowForeignCredentials = true // the fake follower reports no credentials
	svc, err := delivery.New(cfg, st, nopBlobs{}, fakeFollower{}, delivery.Options{Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	_, dev, err := st.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: make([]byte, 32), Created: time.Now(), Device: store.Device{ID: "d1", Scheme: 0x0807, SignatureKey: key, Created: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	sess := &delivery.Session{Device: dev.ID, User: dev.User, UserName: "a"}
	conv, err := svc.CreateConversation(ctx, sess, protocol.CreateConversationRequest{GroupID: []byte("G"), CipherSuite: 1, GroupInfo: []byte("G"), RatchetTree: key})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { svc.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	const n = 500
	seqs := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := svc.Send(ctx, sess, conv.ID, protocol.SendRequest{ClientID: fmt.Sprint(i), Message: []byte{'G', 0, byte(i)}})
			if err != nil {
				t.Error(err)
				return
			}
			// Durable before the answer: the entry is readable now, with
			// the time the answer gave (a live subscriber gets that time
			// too; the store keeps microseconds).
			es, err := st.Entries(ctx, store.ConversationID(conv.ID), r.Seq-1, 1)
			if err != nil || len(es) != 1 || es[0].Data[2] != byte(i) {
				t.Errorf("entry %d not durable at answer: %v", r.Seq, err)
			} else if !es[0].Created.Equal(r.Time) {
				t.Errorf("entry %d: answered with time %v, stored %v", r.Seq, r.Time, es[0].Created)
			}
			seqs[i] = r.Seq
		}()
	}
	wg.Wait()
	seen := make(map[uint64]bool)
	for _, s := range seqs {
		if s < 1 || s > n || seen[s] {
			t.Fatalf("seq %d out of range or duplicated", s)
		}
		seen[s] = true
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "parley_append_batch_entries" {
			h := mf.GetMetric()[0].GetHistogram()
			t.Logf("%d entries in %d transactions", n, h.GetSampleCount())
			if h.GetSampleCount() >= n {
				t.Errorf("no batching: %d transactions for %d entries", h.GetSampleCount(), n)
			}
		}
	}
	// Wrong group, future and stale epochs are refused before the writer.
	for _, msg := range [][]byte{{'X', 0, 0}, {'G', 1, 0}} {
		_, err := svc.Send(ctx, sess, conv.ID, protocol.SendRequest{Message: msg})
		if pe, ok := delivery.AsProtocolError(err); !ok || pe.Code != protocol.CodeBadMessage {
			t.Errorf("message %q: %v", msg, err)
		}
	}
}

// A connection whose answers overflow its queue is closed.
func TestSlowConsumer(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.NewConfig(filepath.Join(t.TempDir(), "d.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := delivery.New(delivery.DefaultConfig(), st, nopBlobs{}, fakeFollower{}, delivery.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := svc.Attach(&delivery.Session{Device: "d1", User: 1}, 2)
	defer c.Close()
	for range 3 {
		c.Ping(&protocol.PingFrame{Nonce: "x"})
	}
	_, err = c.Next(ctx)
	var pe *protocol.Error
	if !errors.Is(err, delivery.ErrConnClosed) || !errors.As(err, &pe) || pe.Code != protocol.CodeUnavailable {
		t.Fatalf("overflowing connection: %v", err)
	}
	t.Log(err)
}

type recorder struct {
	mu sync.Mutex
	es []delivery.Event
}

func (r *recorder) Notify(e delivery.Event) {
	r.mu.Lock()
	r.es = append(r.es, e)
	r.mu.Unlock()
}

func TestHub(t *testing.T) {
	h := delivery.NewHub()
	var a, b recorder
	ta, tb := delivery.Topic{Conversation: 1}, delivery.Topic{Device: "d"}
	ua := h.Subscribe(ta, &a)
	h.Subscribe(tb, &b)
	h.Publish(delivery.Event{Topic: ta})
	h.Publish(delivery.Event{Topic: tb})
	ua()
	ua()
	h.Publish(delivery.Event{Topic: ta})
	if len(a.es) != 1 || len(b.es) != 1 {
		t.Fatalf("a got %d, b got %d events", len(a.es), len(b.es))
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := delivery.NewLimiter(1, 2, func() time.Time { return now })
	for i := range 2 {
		if ok, _ := l.Allow("k"); !ok {
			t.Fatalf("event %d refused", i)
		}
	}
	if ok, wait := l.Allow("k"); ok || wait <= 0 {
		t.Fatalf("third event: %v %v", ok, wait)
	}
	if ok, _ := l.Allow("other"); !ok {
		t.Fatal("other key limited")
	}
	now = now.Add(time.Second)
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("refused after refill")
	}
}

// changeFollower answers every handshake with a copy of its Change.
type changeFollower struct {
	fakeFollower
	ch delivery.Change
}

func (f *changeFollower) Process(delivery.FollowedGroup, []byte, delivery.NextState) (*delivery.Change, error) {
	ch := f.ch
	ch.State = []byte{2}
	return &ch, nil
}

// An external commit by a member device is a resync that must remove the
// device's own old leaf; an external commit may remove no other leaf.
func TestExternalCommitRules(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.NewConfig(filepath.Join(t.TempDir(), "d.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := &changeFollower{}
	cfg := delivery.DefaultConfig()
	cfg.AllowForeignCredentials = true // the fake follower reports no credentials
	svc, err := delivery.New(cfg, st, nopBlobs{}, f, delivery.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := []byte("k1"), []byte("k2")
	_, d1, err := st.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: make([]byte, 32), Created: time.Now(), Device: store.Device{ID: "d1", Scheme: 0x0807, SignatureKey: k1, Created: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := st.AddDevice(ctx, store.Device{ID: "d2", User: d1.User, Scheme: 0x0807, SignatureKey: k2, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	s1 := &delivery.Session{Device: d1.ID, User: d1.User, UserName: "a"}
	s2 := &delivery.Session{Device: d2.ID, User: d2.User, UserName: "a"}
	conv, err := svc.CreateConversation(ctx, s1, protocol.CreateConversationRequest{GroupID: []byte("G"), CipherSuite: 1, GroupInfo: []byte("G"), RatchetTree: k1})
	if err != nil {
		t.Fatal(err)
	}
	external := func(sess *delivery.Session, key []byte, removed ...[]byte) error {
		f.ch = delivery.Change{Commit: true, Sender: delivery.SenderNewMember, SenderKey: key, Epoch: 1, Added: []delivery.Leaf{{Index: 0, SignatureKey: key}}}
		for i, k := range removed {
			f.ch.Removed = append(f.ch.Removed, delivery.Leaf{Index: uint32(i), SignatureKey: k})
		}
		info, err := svc.Conversation(ctx, s1, conv.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Handshake(ctx, sess, conv.ID, protocol.HandshakeRequest{Epoch: info.Epoch, Message: []byte(fmt.Sprint("commit", key, removed)), GroupInfo: []byte("gi")})
		return err
	}
	wantCode := func(what string, err error, code protocol.ErrorCode) {
		t.Helper()
		if pe, ok := delivery.AsProtocolError(err); !ok || pe.Code != code {
			t.Errorf("%s: %v, want %s", what, err, code)
		} else {
			t.Logf("%s: %s", what, pe.Message)
		}
	}
	wantCode("member joining again", external(s1, k1), protocol.CodeBadMessage)
	wantCode("joiner removing another device", external(s2, k2, k1), protocol.CodeBadMessage)
	wantCode("resync removing another leaf too", external(s1, k1, k1, []byte("k3")), protocol.CodeBadMessage)
	if err := external(s1, k1, k1); err != nil {
		t.Fatalf("resync: %v", err)
	}
	info, err := svc.Conversation(ctx, s1, conv.ID)
	if err != nil || info.Epoch != 1 || len(info.Members) != 1 || info.Members[0] != "d1" {
		t.Fatalf("after resync %+v %v", info, err)
	}
	if err := external(s2, k2); err != nil {
		t.Fatalf("external join of another device: %v", err)
	}
}
