package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// world tracks the members of one group and a Delivery Service follower.
type world struct {
	t       *testing.T
	cs      CipherSuite
	cfg     *Config
	members map[string]*Group
	pg      *PublicGroup
}

func newWorld(t *testing.T, cs CipherSuite) *world {
	cfg := &Config{PSKs: &PSKs{External: map[string][]byte{"psk1": bytes.Repeat([]byte{7}, 32)}}}
	return &world{t: t, cs: cs, cfg: cfg, members: map[string]*Group{}}
}

func (w *world) kp(name string) *KeyPackageBundle {
	w.t.Helper()
	s, err := GenerateSigner(w.cs)
	if err != nil {
		w.t.Fatal(err)
	}
	b, err := NewKeyPackage(w.cfg, w.cs, s, BasicCredential([]byte(name)), KeyPackageOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// commit has committer create a commit, routes it through the follower and
// all other members, then merges everywhere.
func (w *world) commit(committer string, opts CommitOptions) *PendingCommit {
	w.t.Helper()
	g := w.members[committer]
	pc, err := g.Commit(opts)
	if err != nil {
		w.t.Fatalf("%s commit: %v", committer, err)
	}
	w.deliver(committer, pc.Message)
	if err := g.MergePendingCommit(pc); err != nil {
		w.t.Fatal(err)
	}
	w.check()
	return pc
}

// deliver processes a handshake message at the follower and every member
// but from; commits are merged.
func (w *world) deliver(from string, msg []byte) {
	w.t.Helper()
	if w.pg != nil {
		ch, err := w.pg.Process(msg)
		if err != nil {
			w.t.Fatalf("follower: %v", err)
		}
		if ch.Kind == KindCommit {
			if err := w.pg.Merge(ch); err != nil {
				w.t.Fatal(err)
			}
		}
	}
	for name, g := range w.members {
		if name == from {
			continue
		}
		p, err := g.Process(msg)
		if err != nil {
			w.t.Fatalf("%s process from %s: %v", name, from, err)
		}
		if p.Kind == KindCommit {
			if err := g.MergeStagedCommit(p.Commit); err != nil {
				w.t.Fatal(err)
			}
			if p.Commit.SelfRemoved {
				delete(w.members, name)
			}
		}
	}
}

// check asserts that every member and the follower agree.
func (w *world) check() {
	w.t.Helper()
	var ref *Group
	for name, g := range w.members {
		if ref == nil {
			ref = g
			continue
		}
		if g.Epoch() != ref.Epoch() || !bytes.Equal(g.EpochAuthenticator(), ref.EpochAuthenticator()) || !bytes.Equal(g.TreeHash(), ref.TreeHash()) {
			w.t.Fatalf("%s disagrees at epoch %d/%d", name, g.Epoch(), ref.Epoch())
		}
		e1, _ := g.Export("test", nil, 16)
		e2, _ := ref.Export("test", nil, 16)
		if !bytes.Equal(e1, e2) {
			w.t.Fatalf("%s exporter disagrees", name)
		}
	}
	if w.pg != nil && ref != nil {
		if w.pg.Epoch() != ref.Epoch() || !bytes.Equal(w.pg.TreeHash(), ref.TreeHash()) {
			w.t.Fatalf("follower disagrees: epoch %d vs %d", w.pg.Epoch(), ref.Epoch())
		}
		if len(w.pg.Members()) != len(ref.Members()) {
			w.t.Fatalf("follower member count %d vs %d", len(w.pg.Members()), len(ref.Members()))
		}
	}
}

// message sends an application message from one member to all others.
func (w *world) message(from string) {
	w.t.Helper()
	data := []byte("hello from " + from)
	ct, err := w.members[from].Encrypt(data, []byte("ad"))
	if err != nil {
		w.t.Fatal(err)
	}
	for name, g := range w.members {
		if name == from {
			continue
		}
		p, err := g.Process(ct)
		if err != nil {
			w.t.Fatalf("%s decrypt from %s: %v", name, from, err)
		}
		if p.Kind != KindApplication || !bytes.Equal(p.ApplicationData, data) || p.Sender.Leaf != w.members[from].OwnLeaf() {
			w.t.Fatalf("%s got wrong message", name)
		}
	}
}

// lifecycleSuites are the suites the end-to-end tests run on: suite 1, the
// X-Wing suite TBD1 (post-quantum KEM, Ed25519) and the fully post-quantum
// TBD9-TBD11 (ML-KEM or X-Wing with ML-DSA-44/65/87 signatures).
var lifecycleSuites = []CipherSuite{
	MLS128DHKEMX25519AES128GCMSHA256Ed25519,
	MLS128MLKEM768X25519AES128GCMSHA256Ed25519,
	MLS128MLKEM768X25519ChaCha20Poly1305SHA384MLDSA44,
	MLS192MLKEM768AES256GCMSHA384MLDSA65,
	MLS256MLKEM1024AES256GCMSHA384MLDSA87,
}

func TestLifecycle(t *testing.T) {
	for _, cs := range lifecycleSuites {
		t.Run(fmt.Sprintf("%#04x", uint16(cs)), func(t *testing.T) { testLifecycle(t, cs) })
	}
}

func testLifecycle(t *testing.T, cs CipherSuite) {
	w := newWorld(t, cs)
	aliceSigner, _ := GenerateSigner(cs)
	alice, err := CreateGroup(w.cfg, cs, []byte("group-1"), aliceSigner, BasicCredential([]byte("alice")), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.members["alice"] = alice
	gi, err := alice.GroupInfo(GroupInfoOptions{InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if w.pg, err = NewPublicGroup(w.cfg, gi, nil); err != nil {
		t.Fatal(err)
	}

	// Add bob with the tree inline.
	bobKP := w.kp("bob")
	pc := w.commit("alice", CommitOptions{Add: [][]byte{bobKP.KeyPackage}, InlineRatchetTree: true})
	bob, err := JoinFromWelcome(w.cfg, pc.Welcome, bobKP, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.members["bob"] = bob
	w.check()

	// Add carol by proposal (by reference), tree out of band.
	carolKP := w.kp("carol")
	prop, err := bob.ProposeAdd(carolKP.KeyPackage)
	if err != nil {
		t.Fatal(err)
	}
	w.deliver("bob", prop)
	pc = w.commit("alice", CommitOptions{IncludePending: true})
	rt, _ := alice.RatchetTree()
	if _, err := JoinFromWelcome(w.cfg, pc.Welcome, carolKP, JoinOptions{}); err == nil {
		t.Fatal("join without tree succeeded")
	}
	carol, err := JoinFromWelcome(w.cfg, pc.Welcome, carolKP, JoinOptions{RatchetTree: rt})
	if err != nil {
		t.Fatal(err)
	}
	w.members["carol"] = carol
	w.check()
	w.message("alice")
	w.message("carol")

	// Update by proposal, committed by another member; then a path update.
	up, err := carol.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	w.deliver("carol", up)
	w.commit("bob", CommitOptions{IncludePending: true})
	w.commit("carol", CommitOptions{ForcePath: true})
	w.message("bob")

	// PSK and GCE.
	w.commit("alice", CommitOptions{ExternalPSKs: [][]byte{[]byte("psk1")}, ResumptionPSKs: []uint64{alice.Epoch() - 1}})
	w.commit("bob", CommitOptions{SetExtensions: true, GroupContextExtensions: []Extension{RequiredCapabilitiesExtension(nil, nil, []uint16{uint16(CredentialBasic)})}})

	// Remove carol: she cannot decrypt the next epoch.
	carolOld := carol
	w.commit("alice", CommitOptions{Remove: []LeafIndex{carol.OwnLeaf()}})
	if _, ok := w.members["carol"]; ok {
		t.Fatal("carol still a member")
	}
	ct, _ := alice.Encrypt([]byte("secret"), nil)
	if _, err := carolOld.Process(ct); err == nil {
		t.Fatal("removed member decrypted a later message")
	}
	if _, err := bob.Process(ct); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Process(ct); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}

	// External join, without and with resync.
	gi, _ = bob.GroupInfo(GroupInfoOptions{ExternalPub: true, InlineRatchetTree: true})
	daveSigner, _ := GenerateSigner(cs)
	dave, dpc, err := JoinExternal(w.cfg, gi, daveSigner, BasicCredential([]byte("dave")), ExternalJoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.deliver("dave", dpc.Message)
	if err := dave.MergePendingCommit(dpc); err != nil {
		t.Fatal(err)
	}
	w.members["dave"] = dave
	w.check()
	w.message("dave")

	gi, _ = alice.GroupInfo(GroupInfoOptions{ExternalPub: true})
	rt, _ = alice.RatchetTree()
	leaf := dave.OwnLeaf()
	dave2, dpc, err := JoinExternal(w.cfg, gi, daveSigner, BasicCredential([]byte("dave")), ExternalJoinOptions{RatchetTree: rt, ResyncLeaf: &leaf})
	if err != nil {
		t.Fatal(err)
	}
	delete(w.members, "dave")
	w.deliver("dave", dpc.Message)
	if err := dave2.MergePendingCommit(dpc); err != nil {
		t.Fatal(err)
	}
	w.members["dave"] = dave2
	w.check()
	w.message("dave")

	// Resync under another identity is refused.
	gi, _ = alice.GroupInfo(GroupInfoOptions{ExternalPub: true, InlineRatchetTree: true})
	leaf = dave2.OwnLeaf()
	eveSigner, _ := GenerateSigner(cs)
	if _, _, err := JoinExternal(w.cfg, gi, eveSigner, BasicCredential([]byte("eve")), ExternalJoinOptions{ResyncLeaf: &leaf}); !errors.Is(err, ErrCredentialRejected) {
		t.Fatalf("resync with another identity: %v", err)
	}

	// Self-remove: bob leaves, dave commits it.
	leave, err := bob.ProposeSelfRemove()
	if err != nil {
		t.Fatal(err)
	}
	w.deliver("bob", leave)
	w.commit("dave", CommitOptions{IncludePending: true})
	if bob.Active() {
		t.Fatal("bob still active after leaving")
	}
	w.message("alice")
	if len(alice.Members()) != 2 {
		t.Fatalf("members: %d", len(alice.Members()))
	}

	// A discarded commit leaves no trace.
	before := alice.EpochAuthenticator()
	pc2, err := alice.Commit(CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	alice.DiscardPendingCommit(pc2)
	if !bytes.Equal(before, alice.EpochAuthenticator()) {
		t.Fatal("discard changed the group")
	}
	if err := alice.MergePendingCommit(pc2); !errors.Is(err, ErrStale) {
		t.Fatalf("merge after discard: %v", err)
	}
	w.commit("alice", CommitOptions{})
}

func TestReInitAndBranch(t *testing.T) {
	w, alice, bob := twoMembers(t)
	// Branch: alice creates a subgroup with a fresh KeyPackage of bob.
	bobKP2 := w.kp("bob")
	bobKP2.Signer = bob.signer
	sub, pc, err := alice.Branch(w.cfg, []byte("sub"), [][]byte{bobKP2.KeyPackage}, BranchOptions{Commit: CommitOptions{InlineRatchetTree: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	bobSub, err := JoinFromWelcome(w.cfg, pc.Welcome, bobKP2, JoinOptions{PSKs: &PSKs{Groups: []*Group{bob}}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bobSub.EpochAuthenticator(), sub.EpochAuthenticator()) {
		t.Fatal("branch disagrees")
	}
	if _, err := JoinFromWelcome(w.cfg, pc.Welcome, bobKP2, JoinOptions{}); !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("branch join without the old group: %v", err)
	}

	// ReInit to the X-Wing suite.
	newCS := MLS128MLKEM768X25519AES128GCMSHA256Ed25519
	w.commit("alice", CommitOptions{ReInit: &ReInitParams{GroupID: []byte("neg-2"), CipherSuite: newCS}})
	if alice.Active() || bob.Active() || bob.ReInit() == nil {
		t.Fatal("group still active after ReInit")
	}
	if _, err := alice.Encrypt([]byte("x"), nil); !errors.Is(err, ErrRemoved) {
		t.Fatalf("encrypt after reinit: %v", err)
	}
	w.cs = newCS
	bobKP3 := w.kp("bob")
	aliceSigner, _ := GenerateSigner(newCS)
	ng, pc, err := alice.ReInitGroup(w.cfg, aliceSigner, BasicCredential([]byte("alice")), [][]byte{bobKP3.KeyPackage}, CommitOptions{InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ng.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	bobNew, err := JoinFromWelcome(w.cfg, pc.Welcome, bobKP3, JoinOptions{PSKs: &PSKs{Groups: []*Group{bob}}})
	if err != nil {
		t.Fatal(err)
	}
	if bobNew.CipherSuite() != newCS || !bytes.Equal(bobNew.EpochAuthenticator(), ng.EpochAuthenticator()) {
		t.Fatal("reinit group disagrees")
	}
}
