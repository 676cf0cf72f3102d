package mls

import (
	"bytes"
	"testing"

	"github.com/parley-chat/parley/mls/internal/wire"
)

// TestConformance_12_2 covers RFC 9420 §12.2, "Proposal List Validation",
// for regular commits from the receiver's side: "A group member ...
// processing a Commit MUST verify that the list of committed proposals is
// valid ... If the list of proposals is invalid, then the Commit message
// MUST be rejected as invalid." Mallory (leaf 2), a modified client,
// commits each list; alice, bob and the follower refuse it and keep their
// state. The external-commit rules of §12.2 are in TestConformance_12_4_3_2.
func TestConformance_12_2(t *testing.T) {
	type tc struct {
		name string
		// commit returns mallory's Commit; it may deliver proposals first.
		commit func(t *testing.T, w *world, alice, bob, mallory *Group) *wire.Commit
		want   refusal
	}
	path := func(t *testing.T, g *Group, ps ...wire.ProposalOrRef) *wire.Commit {
		return &wire.Commit{Proposals: ps, Path: validPath(t, g)}
	}
	psk := func(w *world, nonce []byte) *wire.Proposal {
		return &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKTypeExternal, ID: []byte("psk1"), Nonce: nonce}}}
	}
	remove := func(li LeafIndex) *wire.Proposal {
		return &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: uint32(li)}}
	}
	addOf := func(t *testing.T, w *world, name string) *wire.Proposal {
		b := w.kp(name)
		return &wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *b.kp}}
	}
	gce := func(exts ...wire.Extension) *wire.Proposal {
		return &wire.Proposal{Type: wire.ProposalTypeGroupContextExtensions, GroupContextExtensions: &wire.GroupContextExtensions{Extensions: exts}}
	}
	appID := func(b byte) wire.Extension { return wire.Extension{Type: wire.ExtensionApplicationID, Data: []byte{b}} }
	// proposeBy has g send p and delivers it; it returns p's reference.
	proposeBy := func(t *testing.T, w *world, name string, p *wire.Proposal) []byte {
		g := w.members[name]
		msg, err := g.propose(p, nil, "test")
		if err != nil {
			t.Fatal(err)
		}
		w.deliver(name, msg)
		return g.c.cache[len(g.c.cache)-1].ref
	}
	cases := []tc{
		// "It contains an individual proposal that is invalid as specified
		// in Section 12.1."
		{"individual invalid: Add with a KeyPackage signed by another key", func(t *testing.T, w *world, _, _, mallory *Group) *wire.Commit {
			other, _ := GenerateSigner(w.cs)
			p := forgeAdd(t, w, other, func(*wire.KeyPackage) {})
			kps, _ := GenerateSigner(w.cs)
			p.Add.KeyPackage.LeafNode.SignatureKey = kps.PublicKey() // signature no longer verifies
			return &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(p)}}
		}, refusal{sentinel: ErrInvalidKeyPackage, rule: "§7.3", detail: "leaf node signature"}},
		{"individual invalid: Remove of a blank leaf", func(t *testing.T, _ *world, _, _, mallory *Group) *wire.Commit {
			return path(t, mallory, byValue(remove(5)))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.1.3", detail: "Remove of blank leaf 5"}},
		{"individual invalid: psk_nonce not of length KDF.Nh", func(t *testing.T, w *world, _, _, _ *Group) *wire.Commit {
			return &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(psk(w, make([]byte, 16)))}}
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.1.4", detail: "psk_nonce of 16 bytes, want 32"}},
		{"individual invalid: resumption PSK with usage reinit", func(t *testing.T, w *world, alice, _, _ *Group) *wire.Commit {
			p := &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageReInit, GroupID: alice.GroupID(), Epoch: 1, Nonce: make([]byte, 32)}}}
			return &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(p)}}
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.1.4", detail: "resumption PSK with usage 2"}},
		{"individual invalid: resumption PSK with usage branch", func(t *testing.T, w *world, alice, _, _ *Group) *wire.Commit {
			p := &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageBranch, GroupID: alice.GroupID(), Epoch: 1, Nonce: make([]byte, 32)}}}
			return &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(p)}}
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.1.4", detail: "resumption PSK with usage 3"}},
		{"individual invalid: ReInit version below the group's", func(t *testing.T, w *world, _, _, _ *Group) *wire.Commit {
			p := &wire.Proposal{Type: wire.ProposalTypeReInit, ReInit: &wire.ReInit{GroupID: []byte("next"), Version: 0, CipherSuite: w.cs, Extensions: wire.Extensions{}}}
			return &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(p)}}
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.1.5", detail: "ReInit version below the group's"}},
		{"individual invalid: GroupContextExtensions requiring what members lack", func(t *testing.T, _ *world, _, _, mallory *Group) *wire.Commit {
			req := RequiredCapabilitiesExtension([]uint16{0xff30}, nil, nil)
			return path(t, mallory, byValue(gce(wire.Extension{Type: wire.ExtensionType(req.Type), Data: req.Data})))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.1.7", detail: "required extension type 0xff30 not in capabilities"}},

		// "It contains an Update proposal generated by the committer."
		{"Update by the committer, by value", func(t *testing.T, _ *world, _, _, mallory *Group) *wire.Commit {
			return path(t, mallory, byValue(forgeUpdate(t, mallory, func(*wire.LeafNode) {})))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "Update by the committer (proposal 0)"}},
		{"Update by the committer, by reference", func(t *testing.T, w *world, _, _, mallory *Group) *wire.Commit {
			msg, err := mallory.ProposeUpdate()
			if err != nil {
				t.Fatal(err)
			}
			w.deliver("mallory", msg)
			return path(t, mallory, byRef(cachedRef(t, mallory, wire.ProposalTypeUpdate)))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "Update by the committer (leaf 2)"}},

		// "It contains a Remove proposal that removes the committer."
		{"Remove of the committer", func(t *testing.T, _ *world, _, _, mallory *Group) *wire.Commit {
			return path(t, mallory, byValue(remove(2)))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "Remove of the committer (leaf 2)"}},

		// "It contains multiple Update and/or Remove proposals that apply
		// to the same leaf."
		{"Update and Remove of the same leaf", func(t *testing.T, w *world, _, bob, _ *Group) *wire.Commit {
			ref := proposeBy(t, w, "bob", forgeUpdate(t, bob, func(*wire.LeafNode) {}))
			return path(t, w.members["mallory"], byRef(ref), byValue(remove(1)))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "Remove and proposal type 2 for the same leaf 1"}},
		{"two Updates of the same leaf", func(t *testing.T, w *world, _, bob, _ *Group) *wire.Commit {
			r1 := proposeBy(t, w, "bob", forgeUpdate(t, bob, func(*wire.LeafNode) {}))
			r2 := proposeBy(t, w, "bob", forgeUpdate(t, bob, func(*wire.LeafNode) {}))
			return path(t, w.members["mallory"], byRef(r1), byRef(r2))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "Update and proposal type 2 for the same leaf 1"}},
		{"two Removes of the same leaf", func(t *testing.T, _ *world, _, _, mallory *Group) *wire.Commit {
			return path(t, mallory, byValue(remove(1)), byValue(remove(1)))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "Remove and proposal type 3 for the same leaf 1"}},

		// "It contains multiple Add proposals that contain KeyPackages that
		// represent the same client."
		{"two Adds of the same KeyPackage", func(t *testing.T, w *world, _, _, _ *Group) *wire.Commit {
			p := addOf(t, w, "carol")
			return &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(p), byValue(p)}}
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "duplicate Add for KeyPackage"}},
		{"two Adds of one client (one signature key)", func(t *testing.T, w *world, _, _, _ *Group) *wire.Commit {
			s, _ := GenerateSigner(w.cs)
			return &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(forgeAdd(t, w, s, func(*wire.KeyPackage) {})), byValue(forgeAdd(t, w, s, func(*wire.KeyPackage) {}))}}
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "signature_key of leaf 4 already used by leaf 3"}},

		// "It contains an Add proposal with a KeyPackage that represents a
		// client already in the group ..., unless there is a Remove
		// proposal in the list removing the matching client."
		{"Add of a client already in the group", func(t *testing.T, w *world, _, bob, _ *Group) *wire.Commit {
			return &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(forgeAdd(t, w, bob.signer, func(*wire.KeyPackage) {}))}}
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "signature_key of leaf 3 already used by leaf 1"}},

		// "It contains multiple PreSharedKey proposals that reference the
		// same PreSharedKeyID."
		{"two PreSharedKey proposals with one PreSharedKeyID", func(t *testing.T, w *world, _, _, _ *Group) *wire.Commit {
			nonce := bytes.Repeat([]byte{9}, 32)
			return &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(psk(w, nonce)), byValue(psk(w, nonce))}}
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "PreSharedKeyID 70736b31 included twice"}},

		// "It contains multiple GroupContextExtensions proposals."
		{"two GroupContextExtensions", func(t *testing.T, _ *world, _, _, mallory *Group) *wire.Commit {
			return path(t, mallory, byValue(gce(appID(1))), byValue(gce(appID(2))))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "more than one GroupContextExtensions"}},
		{"two GroupContextExtensions, by reference", func(t *testing.T, w *world, _, _, _ *Group) *wire.Commit {
			r1 := proposeBy(t, w, "bob", gce(appID(1)))
			r2 := proposeBy(t, w, "alice", gce(appID(2)))
			return path(t, w.members["mallory"], byRef(r1), byRef(r2))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "more than one GroupContextExtensions"}},

		// "It contains a ReInit proposal together with any other proposal."
		{"ReInit with another proposal", func(t *testing.T, w *world, _, _, mallory *Group) *wire.Commit {
			ri := &wire.Proposal{Type: wire.ProposalTypeReInit, ReInit: &wire.ReInit{GroupID: []byte("next"), Version: wire.ProtocolVersionMLS10, CipherSuite: w.cs, Extensions: wire.Extensions{}}}
			return path(t, mallory, byValue(ri), byValue(remove(1)))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "ReInit together with 1 other proposals"}},

		// "It contains an ExternalInit proposal."
		{"ExternalInit in a regular commit", func(t *testing.T, w *world, _, _, mallory *Group) *wire.Commit {
			_, pub, _ := mallory.c.cs.GenerateHPKEKey()
			kemOut, _, err := mallory.c.cs.ExportSender(pub, nil, []byte(externalInitLabel), mallory.c.cs.HashSize())
			if err != nil {
				t.Fatal(err)
			}
			return path(t, mallory, byValue(&wire.Proposal{Type: wire.ProposalTypeExternalInit, ExternalInit: &wire.ExternalInit{KEMOutput: kemOut}}))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "ExternalInit in a regular commit"}},

		// "It contains a Proposal with a non-default proposal type that is
		// not supported by some members of the group."
		{"non-default proposal type not supported by a member", func(t *testing.T, _ *world, _, _, mallory *Group) *wire.Commit {
			return path(t, mallory, byValue(&wire.Proposal{Type: 0xff31, Unknown: []byte{}}))
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.2", detail: "proposal type 0xff31 not supported by leaf 0"}},

		// "After processing the Commit the ratchet tree is invalid, in
		// particular, if it contains any leaf node that is invalid
		// according to Section 7.3."
		{"resulting tree invalid: Add with a member's encryption key", func(t *testing.T, w *world, alice, _, _ *Group) *wire.Commit {
			s, _ := GenerateSigner(w.cs)
			p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) { kp.LeafNode.EncryptionKey = alice.c.tree.Leaf(0).EncryptionKey })
			return &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(p)}}
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "encryption_key already used in the tree (node 0)"}},
		{"resulting tree invalid: two Adds with one encryption key", func(t *testing.T, w *world, _, _, _ *Group) *wire.Commit {
			s1, _ := GenerateSigner(w.cs)
			s2, _ := GenerateSigner(w.cs)
			p1 := forgeAdd(t, w, s1, func(*wire.KeyPackage) {})
			p2 := forgeAdd(t, w, s2, func(kp *wire.KeyPackage) { kp.LeafNode.EncryptionKey = p1.Add.KeyPackage.LeafNode.EncryptionKey })
			return &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(p1), byValue(p2)}}
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "set by this commit"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, alice, bob, mallory := floodWorld(t)
			cm := c.commit(t, w, alice, bob, mallory)
			mustRefuse(t, w, "mallory", forgeCommit(t, mallory, cm), c.want)
			goesOn(t, w, "bob")
		})
	}
}

// TestConformance_12_2_Controls checks that the forged lists of
// TestConformance_12_2 fail for the rule they break: the same lists
// without the break (or with the Remove that §12.2 allows) pass the
// follower, which checks everything but the confirmation tag.
func TestConformance_12_2_Controls(t *testing.T) {
	t.Run("Add of a member's client with a Remove of it", func(t *testing.T) {
		// The library itself builds this list, and everyone accepts it.
		w, _, bob, _ := floodWorld(t)
		add := forgeAdd(t, w, bob.signer, func(*wire.KeyPackage) {})
		w.commit("alice", CommitOptions{Remove: []LeafIndex{1}, Add: [][]byte{kpMessage(t, &add.Add.KeyPackage)}})
	})
	t.Run("one PreSharedKey proposal", func(t *testing.T) {
		w, _, _, mallory := floodWorld(t)
		p := &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKTypeExternal, ID: []byte("psk1"), Nonce: bytes.Repeat([]byte{9}, 32)}}}
		if _, err := w.pg.Process(forgeCommit(t, mallory, &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(p)}})); err != nil {
			t.Fatalf("follower refused one PSK: %v", err)
		}
	})
}

// TestConformance_12_2_CustomProposalSupport covers the parenthesis of the
// §12.2 rule on non-default proposal types: they must be supported by
// "members of the group that will process the Commit (i.e., members being
// added or removed by the Commit do not need to support the proposal
// type)". Alice, bob and mallory list proposal type 0xff31; a commit of
// one such proposal with an Add of a client, or a Remove of a member, that
// does not list it is valid, and everyone processes it; one with an Add
// while bob does not list it is refused.
func TestConformance_12_2_CustomProposalSupport(t *testing.T) {
	const custom = 0xff31
	customProposal := func() entry {
		return entry{p: &wire.Proposal{Type: custom, Unknown: []byte("custom")}}
	}
	// commitEntries has g commit es by value, as a client that knows the
	// custom type would, and delivers the commit to everyone.
	commitEntries := func(t *testing.T, w *world, name string, es ...entry) *PendingCommit {
		t.Helper()
		g := w.members[name]
		for i := range es {
			es[i].sender = g.ownSender()
		}
		a, err := g.c.applyProposals(es, g.ownSender(), true, applyOpts{self: int64(g.OwnLeaf())}, "commit")
		if err != nil {
			t.Fatalf("%s commit: %v", name, err)
		}
		pc, err := g.finishCommit(a, CommitOptions{InlineRatchetTree: true}, true, "commit")
		if err != nil {
			t.Fatal(err)
		}
		w.deliver(name, pc.Message)
		if err := g.MergePendingCommit(pc); err != nil {
			t.Fatal(err)
		}
		w.check()
		return pc
	}
	addEntry := func(kp *KeyPackageBundle) entry {
		return entry{p: addProposal(kp.kp)}
	}
	caps := &Capabilities{Proposals: []uint16{custom}}

	t.Run("with an Add of a client that does not list it", func(t *testing.T) {
		w, _, _, _ := capsWorld(t, caps, nil, nil)
		dave := w.kp("dave")
		pc := commitEntries(t, w, "alice", customProposal(), addEntry(dave))
		g, err := JoinFromWelcome(w.cfg, pc.Welcome, dave, JoinOptions{})
		if err != nil {
			t.Fatalf("dave join: %v", err)
		}
		w.members["dave"] = g
		w.check()
		goesOn(t, w, "dave")
	})
	t.Run("with a Remove of a member that does not list it", func(t *testing.T) {
		w, _, _, _ := capsWorld(t, caps, nil, nil)
		dave := w.kp("dave")
		pc := w.commit("alice", CommitOptions{Add: [][]byte{dave.KeyPackage}, InlineRatchetTree: true})
		g, err := JoinFromWelcome(w.cfg, pc.Welcome, dave, JoinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.members["dave"] = g
		commitEntries(t, w, "alice", customProposal(), entry{p: &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: uint32(g.OwnLeaf())}}})
		if _, still := w.members["dave"]; still {
			t.Fatal("dave still a member")
		}
		goesOn(t, w, "bob")
	})
	t.Run("refused while a member that stays does not list it", func(t *testing.T) {
		w, alice, _, _ := capsWorld(t, nil, nil, nil)
		es := []entry{customProposal(), addEntry(w.kp("dave"))}
		for i := range es {
			es[i].sender = alice.ownSender()
		}
		_, err := alice.c.applyProposals(es, alice.ownSender(), true, applyOpts{self: int64(alice.OwnLeaf())}, "commit")
		wantRefusal(t, "alice", err, ErrInvalidProposal, "§12.2", "proposal type 0xff31 not supported by leaf 0")
	})
}
