package mls

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/parley-chat/parley/mls/internal/wire"
)

func twoMembers(t *testing.T) (*world, *Group, *Group) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w := newWorld(t, cs)
	s, _ := GenerateSigner(cs)
	alice, err := CreateGroup(w.cfg, cs, []byte("neg"), s, BasicCredential([]byte("alice")), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.members["alice"] = alice
	gi, _ := alice.GroupInfo(GroupInfoOptions{InlineRatchetTree: true})
	if w.pg, err = NewPublicGroup(w.cfg, gi, nil); err != nil {
		t.Fatal(err)
	}
	bobKP := w.kp("bob")
	pc := w.commit("alice", CommitOptions{Add: [][]byte{bobKP.KeyPackage}, InlineRatchetTree: true})
	bob, err := JoinFromWelcome(w.cfg, pc.Welcome, bobKP, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.members["bob"] = bob
	return w, alice, bob
}

func wantRule(t *testing.T, err error, sentinel error, rule string) {
	t.Helper()
	if err == nil || !errors.Is(err, sentinel) || !strings.Contains(err.Error(), rule) {
		t.Fatalf("got %v, want %v naming %q", err, sentinel, rule)
	}
}

func TestNegativeProposalLists(t *testing.T) {
	w, alice, _ := twoMembers(t)
	kp := w.kp("carol")
	_, err := alice.Commit(CommitOptions{Add: [][]byte{kp.KeyPackage, kp.KeyPackage}})
	wantRule(t, err, ErrInvalidProposal, "§12.2: duplicate Add for KeyPackage")
	_, err = alice.Commit(CommitOptions{Remove: []LeafIndex{5}})
	wantRule(t, err, ErrInvalidProposal, "§12.1.3")
	_, err = alice.Commit(CommitOptions{Remove: []LeafIndex{alice.OwnLeaf()}})
	wantRule(t, err, ErrInvalidProposal, "§12.2")
	_, err = alice.Commit(CommitOptions{Remove: []LeafIndex{1, 1}})
	wantRule(t, err, ErrInvalidProposal, "§12.2")
	_, err = alice.Commit(CommitOptions{ReInit: &ReInitParams{GroupID: []byte("x"), CipherSuite: 1}, Remove: []LeafIndex{1}})
	wantRule(t, err, ErrInvalidProposal, "§12.2: ReInit together")
	_, err = alice.ProposeExternalPSK([]byte("unknown"))
	if err != nil {
		t.Fatal(err)
	}
	// Named, the proposal fails the commit; offered by IncludePending, it
	// is dropped and reported.
	_, err = alice.Commit(CommitOptions{References: [][]byte{cachedRef(t, alice, wire.ProposalTypePSK)}})
	if !errors.Is(err, ErrMissingPSK) {
		t.Fatalf("missing PSK: %v", err)
	}
	pc, err := alice.Commit(CommitOptions{IncludePending: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(pc.Dropped) != 1 || pc.Dropped[0].Proposal.Type != uint16(wire.ProposalTypePSK) || !errors.Is(pc.Dropped[0].Reason, ErrMissingPSK) {
		t.Fatalf("dropped %+v, want the PSK proposal for a missing PSK", pc.Dropped)
	}
	alice.DiscardPendingCommit(pc)
}

func TestNegativeUpdateIdentity(t *testing.T) {
	w, alice, bob := twoMembers(t)
	// Bob forges an Update with another identity.
	old := bob.c.tree.Leaf(bob.OwnLeaf())
	ln := *old
	_, pub, _ := bob.c.cs.GenerateHPKEKey()
	ln.EncryptionKey, ln.Source, ln.Lifetime = pub, wire.LeafNodeSourceUpdate, nil
	ln.Credential = BasicCredential([]byte("mallory")).wire()
	if err := ln.Sign(bob.c.cs, bob.signer.priv, bob.GroupID(), uint32(bob.OwnLeaf())); err != nil {
		t.Fatal(err)
	}
	msg, err := bob.propose(&wire.Proposal{Type: wire.ProposalTypeUpdate, Update: &wire.Update{LeafNode: ln}}, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Process(msg); err != nil {
		t.Fatal(err)
	}
	_, err = alice.Commit(CommitOptions{References: [][]byte{cachedRef(t, alice, wire.ProposalTypeUpdate)}})
	wantRule(t, err, ErrCredentialRejected, "identity")
	pc, err := alice.Commit(CommitOptions{IncludePending: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(pc.Dropped) != 1 || !errors.Is(pc.Dropped[0].Reason, ErrCredentialRejected) || len(pc.Updated) != 0 {
		t.Fatalf("dropped %+v, updated %v: want the forged Update dropped", pc.Dropped, pc.Updated)
	}
	alice.DiscardPendingCommit(pc)
	_ = w
}

func TestNegativeMessages(t *testing.T) {
	w, alice, bob := twoMembers(t)
	w.cfg.MaxForward = 10
	ct, _ := alice.Encrypt([]byte("x"), nil)
	if _, err := bob.Process(ct); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Process(ct); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// A generation far beyond the cap.
	for range 20 {
		ct, _ = alice.Encrypt([]byte("x"), nil)
	}
	b2 := *bob.cfg
	b2.MaxForward = 10
	// Restore bob with the small cap: his secret trees are rebuilt with it.
	bob, err := withConfig(bob, &b2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Process(ct); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("far generation: %v", err)
	}
	// A message of an unknown epoch.
	pc, _ := alice.Commit(CommitOptions{ForcePath: true})
	_ = alice.MergePendingCommit(pc)
	ct, _ = alice.Encrypt([]byte("x"), nil)
	var ee *EpochError
	if _, err := bob.Process(ct); !errors.As(err, &ee) || ee.MessageEpoch != alice.Epoch() {
		t.Fatalf("wrong epoch: %v", err)
	}
}

func TestNegativeWelcomeTamperedTree(t *testing.T) {
	w, alice, _ := twoMembers(t)
	kp := w.kp("carol")
	pc, err := alice.Commit(CommitOptions{Add: [][]byte{kp.KeyPackage}})
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := alice.RatchetTree() // the old epoch's tree: wrong tree hash
	_, err = JoinFromWelcome(w.cfg, pc.Welcome, kp, JoinOptions{RatchetTree: rt})
	wantRule(t, err, ErrInvalidWelcome, "§12.4.3.1")
}

func TestNegativePathMismatch(t *testing.T) {
	w, alice, bob := twoMembers(t)
	pc, err := alice.Commit(CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	var m wire.MLSMessage
	if err := wire.Unmarshal(pc.Message, &m); err != nil {
		t.Fatal(err)
	}
	// Swap in a different node key: the path no longer matches.
	_, pub, _ := alice.c.cs.GenerateHPKEKey()
	m.PublicMessage.Content.Commit.Path.Nodes[0].EncryptionKey = pub
	// Re-sign so that only the path is wrong.
	ac, _ := signAs(alice, &m.PublicMessage.Content)
	m.PublicMessage.Auth.Signature = ac
	bad, _ := encodeMessage(&m)
	if _, err := w.pg.Process(bad); err == nil {
		t.Fatal("follower accepted a mismatched path")
	}
	if _, err := bob.Process(bad); err == nil {
		t.Fatal("member accepted a mismatched path")
	}
}

// A staged commit the application discards wipes the new epoch's secrets
// and can no longer be merged; the group stays in its epoch and still
// processes the same commit afresh.
func TestDiscardStagedCommit(t *testing.T) {
	_, alice, bob := twoMembers(t)
	pc, err := alice.Commit(CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	epoch := bob.Epoch()
	p, err := bob.Process(pc.Message)
	if err != nil || p.Commit == nil {
		t.Fatalf("process: %+v %v", p, err)
	}
	secret := p.Commit.sched.EpochAuthenticator
	bob.DiscardStagedCommit(p.Commit)
	if !isZero(secret) {
		t.Error("discarded staged commit kept its epoch authenticator")
	}
	if err := bob.MergeStagedCommit(p.Commit); !errors.Is(err, ErrStale) {
		t.Fatalf("merge after discard: %v, want ErrStale", err)
	}
	if bob.Epoch() != epoch {
		t.Fatalf("bob at epoch %d after a discarded commit, want %d", bob.Epoch(), epoch)
	}
	p, err = bob.Process(pc.Message)
	if err != nil {
		t.Fatalf("process again: %v", err)
	}
	if err := bob.MergeStagedCommit(p.Commit); err != nil {
		t.Fatal(err)
	}
	if err := alice.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(alice.EpochAuthenticator(), bob.EpochAuthenticator()) {
		t.Fatal("alice and bob disagree after the commit merged")
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return len(b) > 0
}
