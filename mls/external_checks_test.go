package mls

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/treekem"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// externalCommitFrom builds an external commit (RFC 9420 §12.4.3.2) the
// way JoinExternal does, but with the leaf secret drawn from rnd and
// without JoinExternal's own check of its path, as a misbehaving joiner
// would send it. resync, if non-nil, is the joiner's old leaf to remove.
func externalCommitFrom(t *testing.T, groupInfo []byte, signer *Signer, credential Credential, resync *LeafIndex, rnd *rand.ChaCha8) []byte {
	t.Helper()
	const op = "test external commit"
	c, err := (&Config{}).normalized()
	if err != nil {
		t.Fatal(err)
	}
	gi, tr, err := openGroupInfo(c, groupInfo, nil, op)
	if err != nil {
		t.Fatal(err)
	}
	s := tr.Suite()
	var ep wire.ExternalPub
	if err := wire.Unmarshal(gi.Extensions.Find(wire.ExtensionExternalPub).Data, &ep); err != nil {
		t.Fatal(err)
	}
	interim, err := framing.InterimTranscriptHash(s, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		t.Fatal(err)
	}
	co, err := newCore(c, s, gi.GroupContext, tr, interim)
	if err != nil {
		t.Fatal(err)
	}
	kemOut, initSecret, err := s.ExportSender(ep.PublicKey, nil, []byte(externalInitLabel), s.HashSize())
	if err != nil {
		t.Fatal(err)
	}
	sender := wire.Sender{Type: wire.SenderTypeNewMemberCommit}
	es := []entry{{p: &wire.Proposal{Type: wire.ProposalTypeExternalInit, ExternalInit: &wire.ExternalInit{KEMOutput: kemOut}}, sender: sender}}
	if resync != nil {
		es = append(es, entry{p: &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: uint32(*resync)}}, sender: sender})
	}
	a, err := co.applyProposals(es, sender, true, applyOpts{self: -1}, op)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &wire.LeafNode{SignatureKey: signer.pub, Credential: credential.wire(), Capabilities: buildCapabilities(s.ID(), credential.Type, KeyPackageOptions{})}
	prov := co.provisional(a)
	up, err := treekem.CreateUpdatePath(a.tree, a.committer, treekem.CreateParams{
		Leaf: tmpl, SignaturePrivateKey: signer.priv, GroupID: gi.GroupContext.GroupID,
		Context: treekem.GroupContext(&prov), Rand: rnd,
	})
	if err != nil {
		t.Fatal(err)
	}
	cm := &wire.Commit{Path: up.Path}
	for _, e := range es {
		cm.Proposals = append(cm.Proposals, wire.ProposalOrRef{Type: wire.ProposalOrRefProposal, Proposal: e.p})
	}
	content := &wire.FramedContent{GroupID: gi.GroupContext.GroupID, Epoch: gi.GroupContext.Epoch, Sender: sender, AuthenticatedData: []byte{}, ContentType: wire.ContentTypeCommit, Commit: cm}
	ac, err := framing.SignContent(co.ctx, wire.WireFormatPublicMessage, content, signer.priv)
	if err != nil {
		t.Fatal(err)
	}
	psks := func(ids []wire.PreSharedKeyID) (schedule.CombinedPSK, error) { return resolvePSKs(s, ids, nil, nil) }
	_, sched, err := co.deriveNext(a, up.Tree, ac, schedule.InitSecret(initSecret), up.CommitSecret, psks, nil)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = sched.confirmationTag
	pm, err := framing.SealPublic(co.ctx, ac, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestExternalRejoinReusingEncryptionKey checks RFC 9420 §7.3 and
// §12.4.2 for a resync: a joiner that removes its old leaf by external
// commit may not take back that leaf's encryption key. carol joins by
// external commit with her leaf secret from a seeded source, then resyncs
// with the same seed, which gives her new leaf the old leaf's key: members
// and the follower refuse the commit and stay as they were.
func TestExternalRejoinReusingEncryptionKey(t *testing.T) {
	w, alice, _ := twoMembers(t)
	seed := [32]byte{1, 2, 3}
	t.Logf("seed %x", seed)
	carolSigner, _ := GenerateSigner(w.cs)
	carol := BasicCredential([]byte("carol"))
	groupInfo := func() []byte {
		gi, err := alice.GroupInfo(GroupInfoOptions{InlineRatchetTree: true, ExternalPub: true})
		if err != nil {
			t.Fatal(err)
		}
		return gi
	}
	w.deliver("nobody", externalCommitFrom(t, groupInfo(), carolSigner, carol, nil, rand.NewChaCha8(seed)))
	w.check()
	var carolLeaf LeafIndex
	var carolKey []byte
	for _, m := range alice.Members() {
		if bytes.Equal(m.SignatureKey, carolSigner.PublicKey()) {
			carolLeaf, carolKey = m.Leaf, m.EncryptionKey
		}
	}
	if carolKey == nil {
		t.Fatal("carol did not join")
	}

	msg := externalCommitFrom(t, groupInfo(), carolSigner, carol, &carolLeaf, rand.NewChaCha8(seed))
	pgState, _ := w.pg.MarshalBinary()
	if _, err := w.pg.Process(msg); !errors.Is(err, ErrInvalidLeafNode) {
		t.Fatalf("follower: resync reusing the removed leaf's encryption_key: err = %v, want ErrInvalidLeafNode", err)
	}
	if st, _ := w.pg.MarshalBinary(); !bytes.Equal(st, pgState) {
		t.Fatal("the refused commit changed the follower")
	}
	for name, g := range w.members {
		before := mustState(t, g)
		if _, err := g.Process(msg); !errors.Is(err, ErrInvalidLeafNode) {
			t.Fatalf("%s: resync reusing the removed leaf's encryption_key: err = %v, want ErrInvalidLeafNode", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
		if !bytes.Equal(before, mustState(t, g)) {
			t.Fatalf("the refused commit changed %s's group", name)
		}
	}

	// A resync with a fresh leaf secret is accepted.
	seed[0]++
	w.deliver("nobody", externalCommitFrom(t, groupInfo(), carolSigner, carol, &carolLeaf, rand.NewChaCha8(seed)))
	w.check()
	for _, m := range alice.Members() {
		if bytes.Equal(m.EncryptionKey, carolKey) {
			t.Fatal("carol's old key is still in the tree")
		}
	}
}

// TestAuthorizeExternalProposal checks Config.AuthorizeExternalProposal:
// members and the follower ask it about every proposal from an external
// sender or a new member before caching it (RFC 9420 §12.1.8), and refuse
// with ErrInvalidProposal what it refuses, leaving the group unchanged.
func TestAuthorizeExternalProposal(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w, ds := externalWorld(t, cs)
	errNo := fmt.Errorf("removals by the delivery service are not allowed here")
	var seen []ExternalProposalInfo
	hooked := *w.cfg
	hooked.AuthorizeExternalProposal = func(info ExternalProposalInfo) error {
		seen = append(seen, info)
		if info.Proposal.Type == uint16(wire.ProposalTypeRemove) && string(info.Credential.Identity) == "delivery-service" {
			return errNo
		}
		return nil
	}
	for name, g := range w.members {
		h, err := withConfig(g, &hooked)
		if err != nil {
			t.Fatal(err)
		}
		w.members[name] = h
	}
	st, err := w.pg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if w.pg, err = LoadPublicGroup(&hooked, st); err != nil {
		t.Fatal(err)
	}
	alice := w.members["alice"]
	gid, epoch := alice.GroupID(), alice.Epoch()

	bobLeaf := w.members["bob"].OwnLeaf()
	msg, err := NewExternalProposal(w.cfg, cs, gid, epoch, ds, 0, ExternalProposal{Remove: &bobLeaf})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string][]byte{}
	for name, g := range w.members {
		states[name] = mustState(t, g)
	}
	rejectEverywhere(t, w, msg, ErrInvalidProposal)
	if _, err := alice.Process(msg); !errors.Is(err, errNo) {
		t.Fatalf("the hook's error is not wrapped: %v", err)
	}
	for name, g := range w.members {
		if !bytes.Equal(states[name], mustState(t, g)) {
			t.Fatalf("the refused proposal changed %s's group", name)
		}
	}
	if len(seen) == 0 || seen[0].Proposal.Sender.Type != SenderExternal || seen[0].Proposal.Leaf != bobLeaf || !bytes.Equal(seen[0].SignatureKey, ds.PublicKey()) || seen[0].Epoch != epoch || !bytes.Equal(seen[0].GroupID, gid) {
		t.Fatalf("hook saw %+v", seen)
	}

	// An Add by the same sender, and a new member's own Add, pass.
	seen = nil
	daveKP := w.kp("dave")
	msg, err = NewExternalProposal(w.cfg, cs, gid, epoch, ds, 0, ExternalProposal{Add: daveKP.KeyPackage})
	if err != nil {
		t.Fatal(err)
	}
	deliverProposal(t, w, msg, SenderExternal)
	erinKP := w.kp("erin")
	gi, err := alice.GroupInfo(GroupInfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err = NewMemberAddProposal(gi, erinKP)
	if err != nil {
		t.Fatal(err)
	}
	deliverProposal(t, w, msg, SenderNewMemberProposal)
	last := seen[len(seen)-1]
	if last.Proposal.Sender.Type != SenderNewMemberProposal || !bytes.Equal(last.SignatureKey, erinKP.Signer.PublicKey()) || string(last.Credential.Identity) != "erin" {
		t.Fatalf("hook saw %+v for the new member's Add", last)
	}
	pc := w.commit("bob", CommitOptions{IncludePending: true})
	if len(pc.Added) != 2 || len(pc.Removed) != 0 {
		t.Fatalf("committed %d adds, %d removes; want 2 and 0", len(pc.Added), len(pc.Removed))
	}
}
