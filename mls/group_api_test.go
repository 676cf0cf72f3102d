package mls

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// cachedRef returns the ref of the only cached proposal of type typ at g.
func cachedRef(t *testing.T, g *Group, typ wire.ProposalType) []byte {
	t.Helper()
	var refs [][]byte
	for _, p := range g.CachedProposals() {
		if p.Type == uint16(typ) {
			refs = append(refs, p.Ref)
		}
	}
	if len(refs) != 1 {
		t.Fatalf("%d cached proposals of type %d, want 1", len(refs), typ)
	}
	return refs[0]
}

// TestCommitReferencesReInitByOther commits, by reference, a ReInit that
// another member proposed: every member and the follower end the group
// with its parameters.
func TestCommitReferencesReInitByOther(t *testing.T) {
	w, _ := externalWorld(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	alice, bob := w.members["alice"], w.members["bob"]
	params := ReInitParams{GroupID: []byte("reinit-by-bob"), CipherSuite: MLS128MLKEM768X25519AES128GCMSHA256Ed25519}
	msg, err := bob.ProposeReInit(params)
	if err != nil {
		t.Fatal(err)
	}
	w.deliver("bob", msg)
	ref := cachedRef(t, alice, wire.ProposalTypeReInit)
	info := alice.CachedProposals()[0]
	if info.Sender.Type != SenderMember || info.Sender.Leaf != bob.OwnLeaf() {
		t.Fatalf("cached ReInit sender %+v, want bob's leaf %d", info.Sender, bob.OwnLeaf())
	}

	// IncludePending still leaves a cached ReInit out.
	pc, err := alice.Commit(CommitOptions{IncludePending: true})
	if err != nil {
		t.Fatal(err)
	}
	if pc.reinit != nil {
		t.Fatal("IncludePending committed a cached ReInit")
	}
	alice.DiscardPendingCommit(pc)

	w.commit("alice", CommitOptions{References: [][]byte{ref}})
	for name, g := range w.members {
		ri := g.ReInit()
		if g.Active() || ri == nil || !bytes.Equal(ri.GroupID, params.GroupID) || ri.CipherSuite != params.CipherSuite {
			t.Fatalf("%s: active %v, ReInit %+v", name, g.Active(), ri)
		}
	}
}

// TestCommitReferencesExternalReInit commits an external sender's ReInit
// by reference.
func TestCommitReferencesExternalReInit(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w, ds := externalWorld(t, cs)
	alice := w.members["alice"]
	params := ReInitParams{GroupID: []byte("reinit-by-ds"), CipherSuite: cs, Extensions: []Extension{RequiredCapabilitiesExtension(nil, nil, nil)}}
	msg, err := NewExternalProposal(w.cfg, cs, alice.GroupID(), alice.Epoch(), ds, 0, ExternalProposal{ReInit: &params})
	if err != nil {
		t.Fatal(err)
	}
	deliverProposal(t, w, msg, SenderExternal)
	ref := cachedRef(t, alice, wire.ProposalTypeReInit)
	// A ReInit stands alone (§12.2): with a by-value proposal it fails.
	_, err = alice.Commit(CommitOptions{References: [][]byte{ref}, Remove: []LeafIndex{w.members["bob"].OwnLeaf()}})
	wantRule(t, err, ErrInvalidProposal, "§12.2")
	w.commit("alice", CommitOptions{References: [][]byte{ref}, ForcePath: true})
	for name, g := range w.members {
		if ri := g.ReInit(); ri == nil || !bytes.Equal(ri.GroupID, params.GroupID) || len(ri.Extensions) != 1 {
			t.Fatalf("%s: ReInit %+v", name, ri)
		}
	}
}

// TestCommitReferencesExactly checks that References commits exactly the
// named proposals, in their order, and refuses bad references without
// changing the group.
func TestCommitReferencesExactly(t *testing.T) {
	w, _ := externalWorld(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	alice, bob, carol := w.members["alice"], w.members["bob"], w.members["carol"]
	dave := w.kp("dave")
	addMsg, err := bob.ProposeAdd(dave.KeyPackage)
	if err != nil {
		t.Fatal(err)
	}
	w.deliver("bob", addMsg)
	rmMsg, err := bob.ProposeRemove(carol.OwnLeaf())
	if err != nil {
		t.Fatal(err)
	}
	w.deliver("bob", rmMsg)
	upMsg, err := alice.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	w.deliver("alice", upMsg)
	addRef := cachedRef(t, alice, wire.ProposalTypeAdd)
	upRef := cachedRef(t, alice, wire.ProposalTypeUpdate)

	epoch := alice.Epoch()
	for _, tc := range []struct {
		name string
		opts CommitOptions
		want error
		rule string
	}{
		{"unknown", CommitOptions{References: [][]byte{bytes.Repeat([]byte{1}, 32)}}, ErrInvalidProposal, "§12.4"},
		{"twice", CommitOptions{References: [][]byte{addRef, addRef}}, ErrInvalidProposal, "§12.4"},
		{"own update", CommitOptions{References: [][]byte{upRef}}, ErrInvalidProposal, "§12.2"},
		{"with IncludePending", CommitOptions{References: [][]byte{addRef}, IncludePending: true}, nil, "exclusive"},
	} {
		_, err := alice.Commit(tc.opts)
		if tc.want != nil {
			wantRule(t, err, tc.want, tc.rule)
		} else if err == nil {
			t.Fatalf("%s: commit created", tc.name)
		}
		if alice.Epoch() != epoch {
			t.Fatalf("%s: the group changed", tc.name)
		}
	}

	pc := w.commit("alice", CommitOptions{References: [][]byte{addRef}, InlineRatchetTree: true})
	if len(pc.Added) != 1 || len(pc.Removed) != 0 {
		t.Fatalf("added %d, removed %d: want exactly the Add", len(pc.Added), len(pc.Removed))
	}
	if _, ok := w.members["carol"]; !ok {
		t.Fatal("carol was removed by a proposal not referenced")
	}
	var m wire.MLSMessage
	if err := wire.Unmarshal(pc.Message, &m); err != nil {
		t.Fatal(err)
	}
	props := m.PublicMessage.Content.Commit.Proposals
	if len(props) != 1 || props[0].Type != wire.ProposalOrRefReference || !bytes.Equal(props[0].Reference, addRef) {
		t.Fatalf("commit proposals %+v, want the Add by reference", props)
	}
}

// TestExternalResumptionPSK checks an external sender's resumption PSK
// proposal (RFC 9420 §12.1.4, §12.1.8.1): cached by members and the
// follower, committed by reference, injected by everyone.
func TestExternalResumptionPSK(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w, ds := externalWorld(t, cs)
	alice := w.members["alice"]
	w.commit("alice", CommitOptions{ForcePath: true})
	past := alice.Epoch() - 1

	msg, err := NewExternalProposal(w.cfg, cs, alice.GroupID(), alice.Epoch(), ds, 0, ExternalProposal{ResumptionPSK: &ResumptionPSKID{Epoch: past}})
	if err != nil {
		t.Fatal(err)
	}
	deliverProposal(t, w, msg, SenderExternal)
	var m wire.MLSMessage
	if err := wire.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	id := m.PublicMessage.Content.Proposal.PreSharedKey.PSK
	if id.Type != wire.PSKTypeResumption || id.Usage != wire.ResumptionPSKUsageApplication || !bytes.Equal(id.GroupID, alice.GroupID()) || id.Epoch != past || len(id.Nonce) != 32 {
		t.Fatalf("PreSharedKeyID %+v", id)
	}
	ref := cachedRef(t, alice, wire.ProposalTypePSK)
	pc, err := alice.Commit(CommitOptions{References: [][]byte{ref}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.members["bob"].Process(pc.Message)
	if err != nil {
		t.Fatal(err)
	}
	if p.Commit.PSKs != 1 {
		t.Fatalf("staged commit injects %d PSKs, want 1", p.Commit.PSKs)
	}
	// The staged commit is dropped; bob processes the commit again below.
	w.deliver("alice", pc.Message)
	if err := alice.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	w.check()

	// A resumption PSK nobody holds: cached, but no commit can inject it.
	msg, err = NewExternalProposal(w.cfg, cs, alice.GroupID(), alice.Epoch(), ds, 0, ExternalProposal{ResumptionPSK: &ResumptionPSKID{GroupID: alice.GroupID(), Epoch: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	deliverProposal(t, w, msg, SenderExternal)
	_, err = alice.Commit(CommitOptions{References: [][]byte{cachedRef(t, alice, wire.ProposalTypePSK)}})
	if !errors.Is(err, ErrMissingPSK) {
		t.Fatalf("commit of an unknown resumption PSK: %v, want ErrMissingPSK", err)
	}
	// Two kinds at once are refused.
	if _, err := NewExternalProposal(w.cfg, cs, alice.GroupID(), alice.Epoch(), ds, 0, ExternalProposal{ResumptionPSK: &ResumptionPSKID{Epoch: past}, ExternalPSK: []byte("psk1")}); err == nil {
		t.Fatal("external proposal with two kinds created")
	}
}

// TestPendingCommitRatchetTree delivers a commit's new tree out of band.
func TestPendingCommitRatchetTree(t *testing.T) {
	w, alice, _ := twoMembers(t)
	carol := w.kp("carol")
	old, _ := alice.RatchetTree()
	pc, err := alice.Commit(CommitOptions{Add: [][]byte{carol.KeyPackage}})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := pc.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(rt, old) {
		t.Fatal("pending commit's tree is the current one")
	}
	if _, err := JoinFromWelcome(w.cfg, pc.Welcome, carol, JoinOptions{}); err == nil {
		t.Fatal("joined without the tree")
	}
	w.deliver("alice", pc.Message)
	if err := alice.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	now, _ := alice.RatchetTree()
	if !bytes.Equal(rt, now) {
		t.Fatal("pending commit's tree differs from the merged one")
	}
	g, err := JoinFromWelcome(w.cfg, pc.Welcome, carol, JoinOptions{RatchetTree: rt})
	if err != nil {
		t.Fatal(err)
	}
	w.members["carol"] = g
	w.check()
	if w.pg.CipherSuite() != w.cs || alice.CipherSuite() != w.cs {
		t.Fatalf("cipher suite %#04x, want %#04x", uint16(w.pg.CipherSuite()), uint16(w.cs))
	}
}

// TestExternalSendersAccess checks ParseExternalSenders, the accessors and
// the encoding of one ExternalSender.
func TestExternalSendersAccess(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w, ds := externalWorld(t, cs)
	alice := w.members["alice"]
	want := ExternalSender{SignatureKey: ds.PublicKey(), Credential: BasicCredential([]byte("delivery-service"))}
	same := func(a, b ExternalSender) bool {
		return bytes.Equal(a.SignatureKey, b.SignatureKey) && a.Credential.Type == b.Credential.Type && bytes.Equal(a.Credential.Identity, b.Credential.Identity)
	}
	for name, got := range map[string][]ExternalSender{"group": alice.ExternalSenders(), "follower": w.pg.ExternalSenders()} {
		if len(got) != 1 || !same(got[0], want) {
			t.Fatalf("%s: external senders %+v", name, got)
		}
	}
	x509 := ExternalSender{SignatureKey: []byte("k2"), Credential: Credential{Type: CredentialX509, Certificates: [][]byte{[]byte("leaf"), []byte("ca")}}}
	ext := ExternalSendersExtension([]ExternalSender{want, x509})
	got, err := ParseExternalSenders(ext.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !same(got[0], want) || got[1].Credential.Type != CredentialX509 || len(got[1].Credential.Certificates) != 2 || !bytes.Equal(got[1].Credential.Certificates[1], []byte("ca")) {
		t.Fatalf("parsed %+v", got)
	}
	// The result does not alias the input.
	data := slices.Clone(ext.Data)
	got, _ = ParseExternalSenders(data)
	clear(data)
	if !same(got[0], want) {
		t.Fatal("parsed senders alias the input")
	}
	for _, bad := range [][]byte{append(slices.Clone(ext.Data), 0), ext.Data[:len(ext.Data)-1], {0x40}} {
		if _, err := ParseExternalSenders(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseExternalSenders(%x): %v, want ErrMalformed", bad, err)
		}
	}
	one, err := want.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back ExternalSender
	if err := back.UnmarshalBinary(one); err != nil || !same(back, want) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	if err := back.UnmarshalBinary(append(one, 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
	// A group without the extension has none.
	_, plain, _ := twoMembers(t)
	if plain.ExternalSenders() != nil {
		t.Fatal("external senders without the extension")
	}
}

// TestBranchExtensions creates subgroups with the parent's, other and no
// extensions.
func TestBranchExtensions(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w, _ := externalWorld(t, cs)
	alice, bob := w.members["alice"], w.members["bob"]
	other := []Extension{RequiredCapabilitiesExtension(nil, nil, []uint16{uint16(CredentialBasic)})}
	for _, tc := range []struct {
		name string
		opts BranchOptions
		want []Extension
	}{
		{"parent's", BranchOptions{}, alice.Extensions()},
		{"other", BranchOptions{Extensions: other, SetExtensions: true}, other},
		{"none", BranchOptions{SetExtensions: true}, nil},
	} {
		kp2 := w.kp("bob")
		tc.opts.Commit.InlineRatchetTree = true
		sub, pc, err := alice.Branch(w.cfg, []byte("sub-"+tc.name), [][]byte{kp2.KeyPackage}, tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := sub.MergePendingCommit(pc); err != nil {
			t.Fatal(err)
		}
		joined, err := JoinFromWelcome(w.cfg, pc.Welcome, kp2, JoinOptions{PSKs: &PSKs{Groups: []*Group{bob}}})
		if err != nil {
			t.Fatalf("%s: join: %v", tc.name, err)
		}
		for who, g := range map[string]*Group{"creator": sub, "joiner": joined} {
			if !extsSame(g.Extensions(), tc.want) {
				t.Fatalf("%s: %s has extensions %+v, want %+v", tc.name, who, g.Extensions(), tc.want)
			}
		}
		if !bytes.Equal(sub.EpochAuthenticator(), joined.EpochAuthenticator()) {
			t.Fatalf("%s: subgroup members disagree", tc.name)
		}
	}
}

func extsSame(a, b []Extension) bool {
	return slices.EqualFunc(a, b, func(x, y Extension) bool { return x.Type == y.Type && bytes.Equal(x.Data, y.Data) })
}

// TestEncryptionSecretDeleted checks RFC 9420 §9.2: once the secret tree of
// an epoch exists, the group keeps no copy of its encryption_secret.
func TestEncryptionSecretDeleted(t *testing.T) {
	w, alice, bob := twoMembers(t)
	deleted := func(step string, gs ...*Group) {
		t.Helper()
		for _, g := range gs {
			if g.keys.sched.EncryptionSecret != nil {
				t.Fatalf("%s: encryption_secret kept", step)
			}
		}
	}
	deleted("create and welcome", alice, bob)

	pc, err := alice.Commit(CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	enc := pc.sched.EncryptionSecret
	if len(enc) == 0 {
		t.Fatal("pending commit without encryption_secret")
	}
	w.deliver("alice", pc.Message)
	if err := alice.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, make([]byte, len(enc))) {
		t.Fatal("encryption_secret not zeroed")
	}
	deleted("merge pending and staged", alice, bob)

	gi, _ := alice.GroupInfo(GroupInfoOptions{InlineRatchetTree: true, ExternalPub: true})
	s, _ := GenerateSigner(w.cs)
	carol, epc, err := JoinExternal(w.cfg, gi, s, BasicCredential([]byte("carol")), ExternalJoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.deliver("carol", epc.Message)
	if err := carol.MergePendingCommit(epc); err != nil {
		t.Fatal(err)
	}
	w.members["carol"] = carol
	deleted("external join", carol)

	st, err := bob.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadGroup(w.cfg, st, bob.signer)
	if err != nil {
		t.Fatal(err)
	}
	deleted("load", loaded)
	w.members["bob"] = loaded
	w.check()
	// The secret trees still serve every member.
	w.message("alice")
	w.message("bob")
	w.message("carol")
}

// TestNewMemberCommitWithoutPath checks that members and the follower
// refuse a new_member_commit without a path alike: its signature key would
// be in the path (RFC 9420 §6.1), so the message is malformed.
func TestNewMemberCommitWithoutPath(t *testing.T) {
	w, alice, _ := twoMembers(t)
	s, _ := GenerateSigner(w.cs)
	ac, err := framing.SignContent(alice.c.ctx, wire.WireFormatPublicMessage, &wire.FramedContent{
		GroupID: alice.GroupID(), Epoch: alice.Epoch(), Sender: wire.Sender{Type: wire.SenderTypeNewMemberCommit}, AuthenticatedData: []byte{},
		ContentType: wire.ContentTypeCommit, Commit: &wire.Commit{Proposals: []wire.ProposalOrRef{}},
	}, s.priv)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = make([]byte, 32)
	msg, err := wire.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPublicMessage, PublicMessage: &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth}})
	if err != nil {
		t.Fatal(err)
	}
	rejectEverywhere(t, w, msg, ErrMalformed)
}
