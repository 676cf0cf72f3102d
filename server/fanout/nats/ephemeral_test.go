package nats

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlite"
)

// headerFollower accepts any group state; a "PrivateMessage" is the group
// id byte followed by the epoch byte.
type headerFollower struct{}

func (headerFollower) Start(gi, tree []byte) (*delivery.GroupState, error) {
	return &delivery.GroupState{GroupID: gi, Suite: 1, Members: []delivery.Leaf{{SignatureKey: tree}}, State: []byte{1}}, nil
}
func (headerFollower) Process(delivery.FollowedGroup, []byte, delivery.NextState) (*delivery.Change, error) {
	return nil, errors.New("not supported")
}
func (headerFollower) Forget(delivery.FollowedGroup, *delivery.Change) {}
func (headerFollower) PeekPrivate(msg []byte) (delivery.PrivateHeader, error) {
	if len(msg) < 2 {
		return delivery.PrivateHeader{}, errors.New("short")
	}
	return delivery.PrivateHeader{GroupID: msg[:1], Epoch: uint64(msg[1]), ContentType: 1}, nil
}
func (headerFollower) CheckWelcome([]byte, uint16) error { return nil }
func (headerFollower) EncodeTree([]store.TreeNode) ([]byte, error) {
	return nil, errors.New("not supported")
}
func (headerFollower) SplitLegacyState([]byte) ([]byte, []store.TreeNode, error) {
	return nil, nil, errors.New("not supported")
}
func (headerFollower) ValidateKeyPackage([]byte, time.Time) (*delivery.KeyPackageInfo, error) {
	return nil, errors.New("not supported")
}

type noBlobs struct{ delivery.BlobStore }

// An ephemeral message sent to one node reaches a member connected to
// another, through NATS, and is stored by neither.
func TestEphemeralAcrossNodes(t *testing.T) {
	u, p := testURL(t), testPrefix()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.NewConfig(filepath.Join(t.TempDir(), "d.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := delivery.DefaultConfig()
	cfg.AllowForeignCredentials = true // the fake follower reports no credentials
	node := func(id string) *delivery.Service {
		svc, err := delivery.New(cfg, st, noBlobs{}, headerFollower{}, delivery.Options{Notifier: newNode(t, u, p, id, nil)})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { svc.Run(runCtx); close(done) }()
		t.Cleanup(func() { stop(); <-done })
		return svc
	}
	a, b := node("a"), node("b")
	sess := map[string]*delivery.Session{}
	for _, name := range []string{"alice", "bob"} {
		_, dev, err := st.CreateUser(ctx, store.NewUser{Name: name, IdentityKey: make([]byte, 32), Created: time.Now(),
			Device: store.Device{ID: store.DeviceID("dev-" + name), Scheme: 0x0807, SignatureKey: []byte("key-" + name), Created: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		sess[name] = &delivery.Session{Device: dev.ID, User: dev.User, UserName: name}
	}
	conv, err := a.CreateConversation(ctx, sess["alice"], protocol.CreateConversationRequest{GroupID: []byte("G"), CipherSuite: 1, GroupInfo: []byte("G"), RatchetTree: []byte("key-alice")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(ctx, store.Commit{Conversation: store.ConversationID(conv.ID), Epoch: 0, Sender: "dev-alice", Data: []byte("commit"),
		GroupInfo: []byte("G"), FollowerState: []byte{1}, Add: []store.DeviceID{"dev-bob"}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ca := a.Attach(sess["alice"], 16)
	defer ca.Close()
	cb := b.Attach(sess["bob"], 16)
	defer cb.Close()
	for _, c := range []*delivery.Conn{ca, cb} {
		if err := c.Subscribe(ctx, &protocol.SubscribeFrame{Ephemeral: true}); err != nil {
			t.Fatal(err)
		}
	}
	msg := []byte{'G', 1, 0xee}
	if err := ca.Ephemeral(ctx, &protocol.EphemeralFrame{Conversation: conv.ID, Message: msg}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second) // a failure guard
	defer cancel()
	for {
		f, err := cb.Next(wctx)
		if err != nil {
			t.Fatalf("bob on node b: no ephemeral frame: %v", err)
		}
		if e, ok := f.(*protocol.EphemeralFrame); ok {
			if e.Device != "dev-alice" || e.Conversation != conv.ID || !bytes.Equal(e.Message, msg) {
				t.Fatalf("bob got %+v", e)
			}
			break
		}
	}
	es, err := st.Entries(ctx, store.ConversationID(conv.ID), 0, 100)
	if err != nil || len(es) != 1 {
		t.Errorf("the log holds %d entries (%v), want only the commit", len(es), err)
	}
}
