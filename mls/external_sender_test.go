package mls

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// externalWorld is a group of alice, bob and carol whose external_senders
// extension lists ds at index 0, with a follower.
func externalWorld(t *testing.T, cs CipherSuite) (*world, *Signer) {
	t.Helper()
	w := newWorld(t, cs)
	ds, err := GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	aliceSigner, _ := GenerateSigner(cs)
	ext := ExternalSendersExtension([]ExternalSender{{SignatureKey: ds.PublicKey(), Credential: BasicCredential([]byte("delivery-service"))}})
	alice, err := CreateGroup(w.cfg, cs, []byte("external-senders"), aliceSigner, BasicCredential([]byte("alice")), CreateOptions{Extensions: []Extension{ext}})
	if err != nil {
		t.Fatal(err)
	}
	w.members["alice"] = alice
	gi, _ := alice.GroupInfo(GroupInfoOptions{InlineRatchetTree: true})
	if w.pg, err = NewPublicGroup(w.cfg, gi, nil); err != nil {
		t.Fatal(err)
	}
	bob, carol := w.kp("bob"), w.kp("carol")
	pc := w.commit("alice", CommitOptions{Add: [][]byte{bob.KeyPackage, carol.KeyPackage}, InlineRatchetTree: true})
	for name, kp := range map[string]*KeyPackageBundle{"bob": bob, "carol": carol} {
		g, err := JoinFromWelcome(w.cfg, pc.Welcome, kp, JoinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.members[name] = g
	}
	w.check()
	return w, ds
}

// deliverProposal delivers a proposal from outside the group to the
// follower and every member and checks they cached it from sender.
func deliverProposal(t *testing.T, w *world, msg []byte, sender SenderType) {
	t.Helper()
	ch, err := w.pg.Process(msg)
	if err != nil {
		t.Fatalf("follower: %v", err)
	}
	if ch.Kind != KindProposal || ch.Sender.Type != sender {
		t.Fatalf("follower: kind %d sender %d", ch.Kind, ch.Sender.Type)
	}
	for name, g := range w.members {
		p, err := g.Process(msg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Kind != KindProposal || p.Sender.Type != sender || p.Proposal == nil {
			t.Fatalf("%s: kind %d sender %d", name, p.Kind, p.Sender.Type)
		}
	}
}

// rejectEverywhere checks that the follower and every member refuse msg
// with an error wrapping one of want.
func rejectEverywhere(t *testing.T, w *world, msg []byte, want ...error) {
	t.Helper()
	is := func(err error) bool {
		for _, e := range want {
			if errors.Is(err, e) {
				return true
			}
		}
		return false
	}
	if _, err := w.pg.Process(msg); !is(err) {
		t.Errorf("follower: err = %v, want %v", err, want)
	}
	for name, g := range w.members {
		if _, err := g.Process(msg); !is(err) {
			t.Errorf("%s: err = %v, want %v", name, err, want)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestExternalSenderProposals(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w, ds := externalWorld(t, cs)
	alice := w.members["alice"]
	gid := alice.GroupID()

	// The Delivery Service removes carol.
	carolLeaf := w.members["carol"].OwnLeaf()
	msg, err := NewExternalProposal(w.cfg, cs, gid, alice.Epoch(), ds, 0, ExternalProposal{Remove: &carolLeaf})
	if err != nil {
		t.Fatal(err)
	}
	deliverProposal(t, w, msg, SenderExternal)
	pc := w.commit("bob", CommitOptions{IncludePending: true})
	if len(pc.Removed) != 1 || pc.Removed[0].Leaf != carolLeaf {
		t.Fatalf("removed %v", pc.Removed)
	}
	if _, ok := w.members["carol"]; ok {
		t.Fatal("carol still a member")
	}

	// The Delivery Service adds dave.
	daveKP := w.kp("dave")
	msg, err = NewExternalProposal(w.cfg, cs, gid, alice.Epoch(), ds, 0, ExternalProposal{Add: daveKP.KeyPackage})
	if err != nil {
		t.Fatal(err)
	}
	deliverProposal(t, w, msg, SenderExternal)
	pc = w.commit("alice", CommitOptions{IncludePending: true, InlineRatchetTree: true})
	dave, err := JoinFromWelcome(w.cfg, pc.Welcome, daveKP, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.members["dave"] = dave
	w.check()

	// Erin asks to join herself (new_member_proposal).
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
	pc = w.commit("dave", CommitOptions{IncludePending: true, InlineRatchetTree: true})
	erin, err := JoinFromWelcome(w.cfg, pc.Welcome, erinKP, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.members["erin"] = erin
	w.check()
	w.message("erin")

	// A group context extensions change by the external sender, keeping
	// itself listed.
	msg, err = NewExternalProposal(w.cfg, cs, gid, alice.Epoch(), ds, 0, ExternalProposal{SetExtensions: true, GroupContextExtensions: alice.Extensions()})
	if err != nil {
		t.Fatal(err)
	}
	deliverProposal(t, w, msg, SenderExternal)
	w.commit("erin", CommitOptions{IncludePending: true})
}

func TestExternalSenderRejections(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w, ds := externalWorld(t, cs)
	alice := w.members["alice"]
	gid, epoch := alice.GroupID(), alice.Epoch()
	bobLeaf := w.members["bob"].OwnLeaf()

	// Unknown sender index.
	msg, err := NewExternalProposal(w.cfg, cs, gid, epoch, ds, 1, ExternalProposal{Remove: &bobLeaf})
	if err != nil {
		t.Fatal(err)
	}
	rejectEverywhere(t, w, msg, ErrNotMember)

	// A signer that is not the listed one.
	other, _ := GenerateSigner(cs)
	msg, _ = NewExternalProposal(w.cfg, cs, gid, epoch, other, 0, ExternalProposal{Remove: &bobLeaf})
	rejectEverywhere(t, w, msg, ErrMalformed)

	// A proposal type external senders may not send (Update, §12.1.8:
	// "MUST be rejected as malformed").
	ln := *alice.c.tree.Leaf(bobLeaf)
	ln.Source = wire.LeafNodeSourceUpdate
	ln.Lifetime = nil
	msg, err = outsideProposal(ds, gid, epoch, wire.Sender{Type: wire.SenderTypeExternal}, &wire.Proposal{Type: wire.ProposalTypeUpdate, Update: &wire.Update{LeafNode: ln}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	rejectEverywhere(t, w, msg, ErrMalformed)

	// A new_member_proposal sender with a Remove.
	// Our framing refuses to seal it, so build the message by hand.
	ctx := alice.c.ctx
	ac, err := framing.SignContent(ctx, wire.WireFormatPublicMessage, &wire.FramedContent{
		GroupID: gid, Epoch: epoch, Sender: wire.Sender{Type: wire.SenderTypeNewMemberProposal}, AuthenticatedData: []byte{},
		ContentType: wire.ContentTypeProposal, Proposal: &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: uint32(bobLeaf)}},
	}, ds.priv)
	if err != nil {
		t.Fatal(err)
	}
	msg, err = wire.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPublicMessage, PublicMessage: &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth}})
	if err != nil {
		t.Fatal(err)
	}
	// Members and the follower report the same class: the §6.1 sender
	// and content rule (RFC 9420 treats such messages as malformed), not
	// a missing member.
	rejectEverywhere(t, w, msg, ErrMalformed)
	if _, err := w.pg.Process(msg); errors.Is(err, ErrNotMember) {
		t.Errorf("follower: err = %v, must not be ErrNotMember", err)
	}
	for name, g := range w.members {
		if _, err := g.Process(msg); errors.Is(err, ErrNotMember) {
			t.Errorf("%s: err = %v, must not be ErrNotMember", name, err)
		}
	}

	// The API refuses zero or two kinds.
	if _, err := NewExternalProposal(w.cfg, cs, gid, epoch, ds, 0, ExternalProposal{}); err == nil {
		t.Error("empty external proposal created")
	}
	if _, err := NewExternalProposal(w.cfg, cs, gid, epoch, ds, 0, ExternalProposal{Remove: &bobLeaf, ExternalPSK: []byte("psk1")}); err == nil {
		t.Error("external proposal with two kinds created")
	}

	// Nothing was cached: a commit of everything pending has no proposal.
	pc, err := alice.Commit(CommitOptions{IncludePending: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(pc.Removed)+len(pc.Added) != 0 {
		t.Fatal("a rejected proposal was cached")
	}
	alice.DiscardPendingCommit(pc)

	// An external proposal for a group without external_senders.
	w2 := newWorld(t, cs)
	s, _ := GenerateSigner(cs)
	g, _ := CreateGroup(w2.cfg, cs, []byte("plain"), s, BasicCredential([]byte("x")), CreateOptions{})
	zero := LeafIndex(0)
	msg, _ = NewExternalProposal(w2.cfg, cs, []byte("plain"), 0, ds, 0, ExternalProposal{Remove: &zero})
	if _, err := g.Process(msg); !errors.Is(err, ErrNotMember) {
		t.Errorf("group without external_senders: err = %v", err)
	}
}

// TestGREASE checks RFC 9420 §13.5: our KeyPackages, leaves and GroupInfos
// carry GREASE values unless disabled, and members and the follower that
// send none accept those of others.
func TestGREASE(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	plain := &Config{DisableGREASE: true}
	greasy := &Config{}
	hasGREASE := func(kpb []byte) (caps, leafExt, kpExt bool) {
		kp, err := decodeKeyPackage(kpb)
		if err != nil {
			t.Fatal(err)
		}
		c := &kp.LeafNode.Capabilities
		caps = slices.ContainsFunc(c.CipherSuites, func(v CipherSuite) bool { return isGREASE(uint16(v)) }) &&
			slices.ContainsFunc(c.Extensions, func(v wire.ExtensionType) bool { return isGREASE(uint16(v)) }) &&
			slices.ContainsFunc(c.Proposals, func(v wire.ProposalType) bool { return isGREASE(uint16(v)) }) &&
			slices.ContainsFunc(c.Credentials, func(v wire.CredentialType) bool { return isGREASE(uint16(v)) })
		for _, e := range kp.LeafNode.Extensions {
			if isGREASE(uint16(e.Type)) && slices.Contains(c.Extensions, e.Type) {
				leafExt = true
			}
		}
		for _, e := range kp.Extensions {
			if isGREASE(uint16(e.Type)) && slices.Contains(c.Extensions, e.Type) {
				kpExt = true
			}
		}
		return
	}
	giHasGREASE := func(gi []byte) bool {
		var m wire.MLSMessage
		if err := wire.Unmarshal(gi, &m); err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(m.GroupInfo.Extensions, func(e wire.Extension) bool { return isGREASE(uint16(e.Type)) })
	}
	for v := uint16(0x0A0A); v <= 0xEAEA; v += 0x1010 {
		if !isGREASE(v) || isGREASE(v+1) || isGREASE(v+0x0100) {
			t.Fatalf("isGREASE wrong around %#04x", v)
		}
	}
	for range 100 {
		if v := greaseValue(); !isGREASE(v) {
			t.Fatalf("greaseValue %#04x", v)
		}
	}

	newKP := func(cfg *Config, name string) *KeyPackageBundle {
		s, _ := GenerateSigner(cs)
		kp, err := NewKeyPackage(cfg, cs, s, BasicCredential([]byte(name)), KeyPackageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	bobKP := newKP(greasy, "bob")
	if c, l, k := hasGREASE(bobKP.KeyPackage); !c || !l || !k {
		t.Fatalf("default KeyPackage GREASE: capabilities %v, leaf extension %v, KeyPackage extension %v", c, l, k)
	}
	if c, l, k := hasGREASE(newKP(plain, "x").KeyPackage); c || l || k {
		t.Fatal("GREASE with DisableGREASE")
	}
	if _, err := ValidateKeyPackage(plain, cs, bobKP.KeyPackage); err != nil {
		t.Fatalf("GREASE KeyPackage refused: %v", err)
	}

	// alice sends no GREASE; bob and carol do.
	as, _ := GenerateSigner(cs)
	alice, err := CreateGroup(plain, cs, []byte("grease"), as, BasicCredential([]byte("alice")), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gi, _ := alice.GroupInfo(GroupInfoOptions{InlineRatchetTree: true})
	if giHasGREASE(gi) {
		t.Fatal("GroupInfo GREASE with DisableGREASE")
	}
	pg, err := NewPublicGroup(plain, gi, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := alice.Commit(CommitOptions{Add: [][]byte{bobKP.KeyPackage}, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := pg.Process(pc.Message)
	if err != nil {
		t.Fatal(err)
	}
	_ = pg.Merge(ch)
	_ = alice.MergePendingCommit(pc)
	bob, err := JoinFromWelcome(greasy, pc.Welcome, bobKP, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// bob's commit with a path and a GREASE GroupInfo.
	pc, err = bob.Commit(CommitOptions{ForcePath: true, ExternalPub: true, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if !giHasGREASE(pc.GroupInfo) {
		t.Fatal("default GroupInfo without GREASE")
	}
	p, err := alice.Process(pc.Message)
	if err != nil {
		t.Fatalf("GREASE commit refused: %v", err)
	}
	_ = alice.MergeStagedCommit(p.Commit)
	if ch, err = pg.Process(pc.Message); err != nil {
		t.Fatalf("follower refused GREASE commit: %v", err)
	}
	_ = pg.Merge(ch)
	_ = bob.MergePendingCommit(pc)
	// A GREASE-free client follows and joins from bob's GREASE GroupInfo.
	if _, err := NewPublicGroup(plain, pc.GroupInfo, nil); err != nil {
		t.Fatalf("follower from GREASE GroupInfo: %v", err)
	}
	cs2, _ := GenerateSigner(cs)
	carol, epc, err := JoinExternal(plain, pc.GroupInfo, cs2, BasicCredential([]byte("carol")), ExternalJoinOptions{})
	if err != nil {
		t.Fatalf("external join from GREASE GroupInfo: %v", err)
	}
	for _, g := range []*Group{alice, bob} {
		p, err := g.Process(epc.Message)
		if err != nil {
			t.Fatal(err)
		}
		_ = g.MergeStagedCommit(p.Commit)
	}
	_ = carol.MergePendingCommit(epc)
	if !bytes.Equal(alice.EpochAuthenticator(), carol.EpochAuthenticator()) || !bytes.Equal(bob.EpochAuthenticator(), carol.EpochAuthenticator()) {
		t.Fatal("members disagree")
	}
}
