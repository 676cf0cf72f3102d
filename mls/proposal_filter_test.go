package mls

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/mls/internal/wire"
)

// floodWorld is a group of alice (leaf 0), bob (leaf 1) and mallory (leaf
// 2), followed by a PublicGroup.
func floodWorld(t *testing.T) (w *world, alice, bob, mallory *Group) {
	t.Helper()
	w, alice, bob = twoMembers(t)
	kp := w.kp("mallory")
	pc := w.commit("alice", CommitOptions{Add: [][]byte{kp.KeyPackage}, InlineRatchetTree: true})
	mallory, err := JoinFromWelcome(w.cfg, pc.Welcome, kp, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mallory.OwnLeaf() != 2 {
		t.Fatalf("mallory at leaf %d, want 2", mallory.OwnLeaf())
	}
	w.members["mallory"] = mallory
	w.check()
	return w, alice, bob, mallory
}

// forgeProposal has g sign and send p without the checks Group.propose
// runs and without caching it: what a modified client can send.
func forgeProposal(t *testing.T, g *Group, p *wire.Proposal) []byte {
	t.Helper()
	content := &wire.FramedContent{
		GroupID: g.c.gc.GroupID, Epoch: g.c.gc.Epoch, Sender: g.ownSender(),
		AuthenticatedData: []byte{}, ContentType: wire.ContentTypeProposal, Proposal: p,
	}
	msg, _, err := g.protect(content, nil)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// forgeUpdate returns an Update of g's leaf with a fresh encryption key,
// changed by f and signed by g.
func forgeUpdate(t *testing.T, g *Group, f func(*wire.LeafNode)) *wire.Proposal {
	t.Helper()
	ln := *g.c.tree.Leaf(g.OwnLeaf())
	ln.Capabilities.Versions = slices.Clone(ln.Capabilities.Versions)
	ln.Capabilities.CipherSuites = slices.Clone(ln.Capabilities.CipherSuites)
	ln.Extensions = slices.Clone(ln.Extensions)
	_, pub, err := g.c.cs.GenerateHPKEKey()
	if err != nil {
		t.Fatal(err)
	}
	ln.EncryptionKey, ln.Source, ln.Lifetime, ln.ParentHash = pub, wire.LeafNodeSourceUpdate, nil, nil
	f(&ln)
	if err := ln.Sign(g.c.cs, g.signer.priv, g.GroupID(), uint32(g.OwnLeaf())); err != nil {
		t.Fatal(err)
	}
	return &wire.Proposal{Type: wire.ProposalTypeUpdate, Update: &wire.Update{LeafNode: ln}}
}

// forgeAdd returns an Add of a KeyPackage of signer, changed by f and
// signed by signer.
func forgeAdd(t *testing.T, w *world, signer *Signer, f func(*wire.KeyPackage)) *wire.Proposal {
	t.Helper()
	b, err := NewKeyPackage(w.cfg, w.cs, signer, BasicCredential([]byte("forged")), KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kp := *b.kp
	kp.Extensions = slices.Clone(kp.Extensions)
	kp.LeafNode.Extensions = slices.Clone(kp.LeafNode.Extensions)
	f(&kp)
	if err := kp.LeafNode.Sign(b.suite, signer.priv, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := kp.Sign(b.suite, signer.priv); err != nil {
		t.Fatal(err)
	}
	return &wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: kp}}
}

// cacheSizes returns the number of cached proposals of each member and of
// the follower, and their epochs.
func cacheSizes(w *world) map[string][2]int {
	out := map[string][2]int{"follower": {len(w.pg.c.cache), int(w.pg.Epoch())}}
	for name, g := range w.members {
		out[name] = [2]int{len(g.c.cache), int(g.Epoch())}
	}
	return out
}

// refuseEverywhere checks that the follower and every member but from
// refuse msg with ErrInvalidProposal naming rule and detail, and cache
// nothing.
func refuseEverywhere(t *testing.T, w *world, from string, msg []byte, rule, detail string) {
	t.Helper()
	before := cacheSizes(w)
	check := func(who string, err error) {
		t.Helper()
		if !errors.Is(err, ErrInvalidProposal) || !strings.Contains(err.Error(), rule) || !strings.Contains(err.Error(), detail) {
			t.Errorf("%s: err = %v, want %v naming %q and %q", who, err, ErrInvalidProposal, rule, detail)
		}
	}
	_, err := w.pg.Process(msg)
	check("follower", err)
	for name, g := range w.members {
		if name != from {
			_, err := g.Process(msg)
			check(name, err)
		}
	}
	if after := cacheSizes(w); !mapsEqual(before, after) {
		t.Errorf("state changed by a refused proposal: %v, then %v", before, after)
	}
}

func mapsEqual(a, b map[string][2]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestProposalRefusedOnReceipt sends, from a modified client, one proposal
// per case that can never be part of a valid Commit in the current epoch:
// the members and the follower refuse it alike (RFC 9420 §7.2, §7.3,
// §12.1, §13.4) and cache nothing.
func TestProposalRefusedOnReceipt(t *testing.T) {
	cases := []struct {
		name         string
		proposal     func(t *testing.T, w *world, alice, mallory *Group) *wire.Proposal
		rule, detail string
	}{
		{"Add with a member's signature key", func(t *testing.T, w *world, _, mallory *Group) *wire.Proposal {
			return forgeAdd(t, w, mallory.signer, func(*wire.KeyPackage) {})
		}, "§7.3", "Add with the signature_key of leaf 2"},
		{"Add with a member's encryption key", func(t *testing.T, w *world, alice, _ *Group) *wire.Proposal {
			s, _ := GenerateSigner(w.cs)
			return forgeAdd(t, w, s, func(kp *wire.KeyPackage) {
				kp.LeafNode.EncryptionKey = alice.c.tree.Leaf(0).EncryptionKey
			})
		}, "§7.3", "encryption_key of node 0"},
		{"Update with a member's encryption key", func(t *testing.T, _ *world, alice, mallory *Group) *wire.Proposal {
			return forgeUpdate(t, mallory, func(ln *wire.LeafNode) { ln.EncryptionKey = alice.c.tree.Leaf(0).EncryptionKey })
		}, "§7.3", "encryption_key of node 0"},
		{"Update without the group's cipher suite", func(t *testing.T, _ *world, _, mallory *Group) *wire.Proposal {
			return forgeUpdate(t, mallory, func(ln *wire.LeafNode) {
				ln.Capabilities.CipherSuites = []CipherSuite{MLS128DHKEMP256AES128GCMSHA256P256}
			})
		}, "§7.2", "cipher suite 0x0001"},
		{"Update without the group's version", func(t *testing.T, _ *world, _, mallory *Group) *wire.Proposal {
			return forgeUpdate(t, mallory, func(ln *wire.LeafNode) { ln.Capabilities.Versions = []wire.ProtocolVersion{} })
		}, "§7.2", "version 1"},
		{"Update with an extension type twice", func(t *testing.T, _ *world, _, mallory *Group) *wire.Proposal {
			return forgeUpdate(t, mallory, func(ln *wire.LeafNode) {
				ln.Extensions = append(ln.Extensions, wire.Extension{Type: wire.ExtensionApplicationID, Data: []byte("a")}, wire.Extension{Type: wire.ExtensionApplicationID, Data: []byte("b")})
			})
		}, "§13.4", "extension type 0x0001 appears twice"},
		{"Add whose leaf has an extension type twice", func(t *testing.T, w *world, _, _ *Group) *wire.Proposal {
			s, _ := GenerateSigner(w.cs)
			return forgeAdd(t, w, s, func(kp *wire.KeyPackage) {
				kp.LeafNode.Extensions = append(kp.LeafNode.Extensions, wire.Extension{Type: wire.ExtensionApplicationID, Data: []byte("a")}, wire.Extension{Type: wire.ExtensionApplicationID, Data: []byte("b")})
			})
		}, "§13.4", "extension type 0x0001 appears twice"},
		{"Add whose KeyPackage has an extension type twice", func(t *testing.T, w *world, _, _ *Group) *wire.Proposal {
			s, _ := GenerateSigner(w.cs)
			return forgeAdd(t, w, s, func(kp *wire.KeyPackage) {
				kp.Extensions = append(kp.Extensions, wire.Extension{Type: 0x000a, Data: []byte{}}, wire.Extension{Type: 0x000a, Data: []byte{}})
			})
		}, "§13.4", "extension type 0x000a appears twice"},
		{"ReInit with an extension type twice", func(t *testing.T, w *world, _, _ *Group) *wire.Proposal {
			return &wire.Proposal{Type: wire.ProposalTypeReInit, ReInit: &wire.ReInit{
				GroupID: []byte("next"), Version: wire.ProtocolVersionMLS10, CipherSuite: w.cs,
				Extensions: wire.Extensions{{Type: wire.ExtensionApplicationID, Data: []byte("a")}, {Type: wire.ExtensionApplicationID, Data: []byte("b")}},
			}}
		}, "§13.4", "extension type 0x0001 appears twice"},
		{"Remove of a blank leaf", func(t *testing.T, _ *world, _, _ *Group) *wire.Proposal {
			return &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: 3}}
		}, "§12.1.3", "Remove of blank leaf 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, alice, _, mallory := floodWorld(t)
			p := c.proposal(t, w, alice, mallory)
			refuseEverywhere(t, w, "mallory", forgeProposal(t, mallory, p), c.rule, c.detail)
			// The sender's own client refuses to propose it as well.
			if _, err := mallory.propose(p, nil, "propose"); !errors.Is(err, ErrInvalidProposal) {
				t.Errorf("mallory propose: err = %v, want %v", err, ErrInvalidProposal)
			}
			// The group goes on.
			w.commit("bob", CommitOptions{IncludePending: true})
		})
	}
}

// TestProposalFloodCommitters has a member flood the group with proposals
// that are valid one by one but cannot all be committed together: two
// dozen GroupContextExtensions, one that no member supports, Updates of
// one leaf, two Adds of one client, a PSK nobody holds, a ReInit. The
// other members keep committing with IncludePending, each dropping and
// reporting what does not fit, and remove the flooder; the follower
// accepts every commit.
func TestProposalFloodCommitters(t *testing.T) {
	w, alice, bob, mallory := floodWorld(t)
	flood := func() (nGCE int) {
		t.Helper()
		send := func(msg []byte, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			w.deliver("mallory", msg)
		}
		send(mallory.ProposeGroupContextExtensions([]Extension{RequiredCapabilitiesExtension([]uint16{0xff10}, nil, nil)}))
		for i := range 24 {
			send(mallory.ProposeGroupContextExtensions([]Extension{{Type: ExtensionApplicationID, Data: []byte{byte(i)}}}))
		}
		for range 3 {
			send(mallory.ProposeUpdate())
		}
		carol, _ := GenerateSigner(w.cs)
		for range 2 {
			kp, err := NewKeyPackage(w.cfg, w.cs, carol, BasicCredential([]byte("carol")), KeyPackageOptions{})
			if err != nil {
				t.Fatal(err)
			}
			send(mallory.ProposeAdd(kp.KeyPackage))
		}
		send(mallory.ProposeExternalPSK([]byte("nobody holds this")))
		send(mallory.ProposeReInit(ReInitParams{GroupID: []byte("elsewhere"), CipherSuite: w.cs}))
		return 25
	}
	reasons := func(pc *PendingCommit) map[uint16]int {
		out := map[uint16]int{}
		for _, d := range pc.Dropped {
			if d.Reason == nil {
				t.Fatalf("dropped %+v without a reason", d.Proposal)
			}
			out[d.Proposal.Type]++
		}
		return out
	}

	// Epoch 2: bob commits what fits. The GroupContextExtensions nobody
	// supports is dropped, the first of the others is committed.
	nGCE := flood()
	if n := len(bob.CachedProposals()); n != nGCE+3+2+2 {
		t.Fatalf("bob cached %d proposals, want %d", n, nGCE+7)
	}
	// The choice depends only on the cache: alice would drop the same.
	apc, err := alice.Commit(CommitOptions{IncludePending: true})
	if err != nil {
		t.Fatal(err)
	}
	alice.DiscardPendingCommit(apc)
	pc := w.commit("bob", CommitOptions{IncludePending: true})
	if !slices.EqualFunc(apc.Dropped, pc.Dropped, func(x, y DroppedProposal) bool { return bytes.Equal(x.Proposal.Ref, y.Proposal.Ref) }) {
		t.Fatalf("alice and bob drop different proposals from the same cache")
	}
	got := reasons(pc)
	want := map[uint16]int{
		uint16(wire.ProposalTypeGroupContextExtensions): nGCE - 1,
		uint16(wire.ProposalTypeUpdate):                 2,
		uint16(wire.ProposalTypeAdd):                    1,
		uint16(wire.ProposalTypePSK):                    1,
		uint16(wire.ProposalTypeReInit):                 1,
	}
	if !maps16Equal(got, want) || len(pc.Added) != 1 || len(pc.Updated) != 1 || pc.Updated[0].Leaf != mallory.OwnLeaf() {
		t.Fatalf("dropped %v, added %d, updated %v; want dropped %v, one Add, mallory's latest Update", got, len(pc.Added), pc.Updated, want)
	}
	for _, d := range pc.Dropped {
		if d.Proposal.Type == uint16(wire.ProposalTypePSK) && !errors.Is(d.Reason, ErrMissingPSK) {
			t.Errorf("PSK dropped for %v, want %v", d.Reason, ErrMissingPSK)
		}
	}
	if exts := alice.Extensions(); len(exts) != 1 || exts[0].Type != ExtensionApplicationID || !bytes.Equal(exts[0].Data, []byte{0}) {
		t.Fatalf("extensions after the commit: %+v, want the first committable proposal's", exts)
	}

	// Epoch 3: mallory floods again; bob proposes its removal, alice
	// commits with IncludePending and removes it: the Remove wins over
	// mallory's Updates.
	flood()
	msg, err := bob.ProposeRemove(mallory.OwnLeaf())
	if err != nil {
		t.Fatal(err)
	}
	w.deliver("bob", msg)
	pc = w.commit("alice", CommitOptions{IncludePending: true})
	if len(pc.Removed) != 1 || pc.Removed[0].Leaf != 2 || len(pc.Updated) != 0 {
		t.Fatalf("removed %v, updated %v; want mallory removed", pc.Removed, pc.Updated)
	}
	if got := reasons(pc)[uint16(wire.ProposalTypeUpdate)]; got != 3 {
		t.Fatalf("%d Updates dropped, want 3", got)
	}
	if _, ok := w.members["mallory"]; ok {
		t.Fatal("mallory was not removed")
	}
	if len(w.pg.Members()) != 4 { // alice, bob and the two carols flood added
		t.Fatalf("follower has %d members, want 4", len(w.pg.Members()))
	}
	// The group goes on.
	w.commit("bob", CommitOptions{IncludePending: true})
	w.commit("alice", CommitOptions{IncludePending: true})
}

func maps16Equal(a, b map[uint16]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestProposalConflictsCommittedAlone checks that proposals only
// incompatible with each other stay valid on receipt and that each one
// can still be committed on its own by reference, while naming two of
// them fails exactly as a receiver would reject the list (RFC 9420 §12.2).
func TestProposalConflictsCommittedAlone(t *testing.T) {
	w, alice, bob, mallory := floodWorld(t)
	var refs [][]byte
	for i := range 2 {
		msg, err := mallory.ProposeGroupContextExtensions([]Extension{{Type: ExtensionApplicationID, Data: []byte{byte(i)}}})
		if err != nil {
			t.Fatal(err)
		}
		w.deliver("mallory", msg)
		refs = append(refs, bob.CachedProposals()[i].Ref)
	}
	_, err := alice.Commit(CommitOptions{References: refs})
	wantRule(t, err, ErrInvalidProposal, "§12.2: more than one GroupContextExtensions")
	// By value, the committer's own GroupContextExtensions wins over the
	// cached ones, which are dropped.
	pc := w.commit("alice", CommitOptions{IncludePending: true, SetExtensions: true, GroupContextExtensions: []Extension{{Type: ExtensionApplicationID, Data: []byte("alice")}}})
	if len(pc.Dropped) != 2 || !bytes.Equal(bob.Extensions()[0].Data, []byte("alice")) {
		t.Fatalf("dropped %d, extensions %+v; want the committer's", len(pc.Dropped), bob.Extensions())
	}
	// The committer's own Remove wins over a cached Update of that leaf.
	msg, err := mallory.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	w.deliver("mallory", msg)
	pc = w.commit("alice", CommitOptions{IncludePending: true, Remove: []LeafIndex{2}})
	if len(pc.Dropped) != 1 || pc.Dropped[0].Proposal.Type != uint16(wire.ProposalTypeUpdate) || len(pc.Removed) != 1 {
		t.Fatalf("dropped %+v, removed %v", pc.Dropped, pc.Removed)
	}
}

// TestDuplicateExtensionsRefused covers RFC 9420 §13.4 beyond received
// proposals: KeyPackage validation and creation, and a committer's own
// ReInit.
func TestDuplicateExtensionsRefused(t *testing.T) {
	w, alice, _ := twoMembers(t)
	dup := []Extension{{Type: 0xff20, Data: []byte("a")}, {Type: 0xff20, Data: []byte("b")}}
	s, _ := GenerateSigner(w.cs)
	_, err := NewKeyPackage(w.cfg, w.cs, s, BasicCredential([]byte("x")), KeyPackageOptions{Extensions: dup})
	wantRule(t, err, ErrInvalidKeyPackage, "§13.4")
	_, err = NewKeyPackage(w.cfg, w.cs, s, BasicCredential([]byte("x")), KeyPackageOptions{LeafExtensions: dup})
	wantRule(t, err, ErrInvalidKeyPackage, "§13.4")
	for _, f := range []func(*wire.KeyPackage){
		func(kp *wire.KeyPackage) { kp.Extensions = append(kp.Extensions, kp.Extensions...) },
		func(kp *wire.KeyPackage) {
			kp.LeafNode.Extensions = append(kp.LeafNode.Extensions, wire.Extension{Type: 1, Data: []byte{}}, wire.Extension{Type: 1, Data: []byte{}})
		},
	} {
		p := forgeAdd(t, w, s, f)
		b, err := wire.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatKeyPackage, KeyPackage: &p.Add.KeyPackage})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ValidateKeyPackage(w.cfg, w.cs, b)
		wantRule(t, err, ErrInvalidKeyPackage, "§13.4")
		_, err = alice.Commit(CommitOptions{Add: [][]byte{b}})
		wantRule(t, err, ErrInvalidProposal, "§13.4")
	}
	_, err = alice.Commit(CommitOptions{ReInit: &ReInitParams{GroupID: []byte("next"), CipherSuite: w.cs, Extensions: dup}})
	wantRule(t, err, ErrInvalidProposal, "§13.4")
	_, err = alice.ProposeReInit(ReInitParams{GroupID: []byte("next"), CipherSuite: w.cs, Extensions: dup})
	wantRule(t, err, ErrInvalidProposal, "§13.4")
}

// TestPathLeafKeepsGroupParams checks that the leaf of a commit's
// UpdatePath must keep listing the group's version and cipher suite and
// carry no extension type twice (RFC 9420 §7.2, §13.4), as members and
// the follower check through checkPathLeaf.
func TestPathLeafKeepsGroupParams(t *testing.T) {
	_, alice, bob := twoMembers(t)
	a, err := alice.c.applyProposals(nil, bob.ownSender(), true, applyOpts{self: -1}, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f      func(*wire.LeafNode)
		detail string
	}{
		{func(ln *wire.LeafNode) {
			ln.Capabilities.CipherSuites = []CipherSuite{MLS128DHKEMP256AES128GCMSHA256P256}
		}, "cipher suite 0x0001"},
		{func(ln *wire.LeafNode) { ln.Capabilities.Versions = nil }, "version 1"},
		{func(ln *wire.LeafNode) {
			ln.Extensions = wire.Extensions{{Type: 1, Data: []byte{}}, {Type: 1, Data: []byte{}}}
		}, "appears twice"},
	} {
		ln := *bob.c.tree.Leaf(1)
		ln.Source, ln.Lifetime = wire.LeafNodeSourceCommit, nil
		c.f(&ln)
		err := alice.c.checkPathLeaf(a, &wire.UpdatePath{LeafNode: ln}, "test")
		if !errors.Is(err, ErrInvalidLeafNode) || !strings.Contains(err.Error(), c.detail) {
			t.Errorf("err = %v, want %v naming %q", err, ErrInvalidLeafNode, c.detail)
		}
	}
}
