package follower

import (
	"bytes"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/server/delivery"
)

const cs = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

func newGroup(t testing.TB) (*mls.Group, *mls.Signer) {
	s, err := mls.GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	g, err := mls.CreateGroup(nil, cs, []byte("group"), s, mls.BasicCredential([]byte("a")), mls.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return g, s
}

func TestFollow(t *testing.T) {
	g, s := newGroup(t)
	gi, _ := g.GroupInfo(mls.GroupInfoOptions{})
	tree, _ := g.RatchetTree()
	f := New(nil).(*Follower)
	gs, err := f.Start(gi, tree)
	if err != nil {
		t.Fatal(err)
	}
	if gs.Suite != uint16(cs) || gs.Epoch != 0 || len(gs.Members) != 1 || !bytes.Equal(gs.Members[0].SignatureKey, s.PublicKey()) {
		t.Fatalf("state %+v", gs)
	}
	bs, _ := mls.GenerateSigner(cs)
	kp, _ := mls.NewKeyPackage(nil, cs, bs, mls.BasicCredential([]byte("b")), mls.KeyPackageOptions{})
	info, err := f.ValidateKeyPackage(kp.KeyPackage, time.Now())
	if err != nil || !bytes.Equal(info.SignatureKey, bs.PublicKey()) || info.Suite != uint16(cs) {
		t.Fatalf("key package %+v %v", info, err)
	}
	if _, err := f.ValidateKeyPackage(kp.KeyPackage, time.Now().Add(200*24*time.Hour)); err == nil {
		t.Fatal("expired KeyPackage accepted")
	}
	pc, err := g.Commit(mls.CommitOptions{Add: [][]byte{kp.KeyPackage}, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	fg := delivery.FollowedGroup{GroupID: []byte("group"), Suite: uint16(cs), Epoch: 0, GroupInfo: gi, Tree: tree, State: gs.State}
	ch, err := f.Process(fg, pc.Message, delivery.NextState{GroupInfo: pc.GroupInfo})
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Commit || ch.Epoch != 1 || len(ch.Added) != 1 || !bytes.Equal(ch.Added[0].SignatureKey, bs.PublicKey()) || !bytes.Equal(ch.SenderKey, s.PublicKey()) {
		t.Fatalf("change %+v", ch)
	}
	if err := f.CheckWelcome(pc.Welcome, uint16(cs)); err != nil {
		t.Fatal(err)
	}
	if err := f.CheckWelcome(pc.Welcome, 2); err == nil {
		t.Fatal("Welcome of another suite accepted")
	}
	g.MergePendingCommit(pc)
	// The same state, processed again from the stored bytes (cache miss).
	f2 := New(nil).(*Follower)
	if _, err := f2.Process(fg, pc.Message, delivery.NextState{GroupInfo: pc.GroupInfo}); err != nil {
		t.Fatalf("from stored state: %v", err)
	}
	msg, _ := g.Encrypt([]byte("hi"), []byte("ad"))
	h, err := f.PeekPrivate(msg)
	if err != nil || h.Epoch != 1 || string(h.GroupID) != "group" || h.ContentType != 1 {
		t.Fatalf("peek %+v %v", h, err)
	}
	for i := range msg {
		if _, err := f.PeekPrivate(msg[:i]); err == nil {
			t.Fatalf("truncated PrivateMessage (%d of %d bytes) accepted", i, len(msg))
		}
	}
	if _, err := f.PeekPrivate(pc.Message); err == nil {
		t.Fatal("PublicMessage accepted as PrivateMessage")
	}
}

func FuzzPeekPrivate(f *testing.F) {
	g, _ := newGroup(f)
	msg, _ := g.Encrypt([]byte("hello"), nil)
	f.Add(msg)
	f.Add([]byte{0, 1, 0, 2, 0x40, 1, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := peekPrivate(data)
		if err == nil && len(h.GroupID) > len(data) {
			t.Fatal("group id longer than the input")
		}
	})
}

func FuzzCheckWelcome(f *testing.F) {
	f.Add([]byte{0, 1, 0, 3, 0, 1, 1, 0, 1, 0})
	fo := New(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		fo.CheckWelcome(data, 1)
		fo.Start(data, nil)
	})
}

// FuzzProcess feeds arbitrary handshake messages to a follower: no panic,
// and a refused message leaves the follower usable.
func FuzzProcess(f *testing.F) {
	g, _ := newGroup(f)
	gi, _ := g.GroupInfo(mls.GroupInfoOptions{})
	tree, _ := g.RatchetTree()
	fo := New(nil)
	gs, err := fo.Start(gi, tree)
	if err != nil {
		f.Fatal(err)
	}
	pc, _ := g.Commit(mls.CommitOptions{ForcePath: true, InlineRatchetTree: true})
	f.Add(pc.Message, pc.GroupInfo)
	fg := delivery.FollowedGroup{GroupID: []byte("group"), Suite: uint16(cs), GroupInfo: gi, Tree: tree, State: gs.State}
	f.Fuzz(func(t *testing.T, msg, next []byte) {
		fo.Process(fg, msg, delivery.NextState{GroupInfo: next})
		fo.ValidateKeyPackage(msg, time.Now())
	})
}
