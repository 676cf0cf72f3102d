package mls

import (
	"bytes"
	"testing"

	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// welcomeWorld is a group of alice (leaf 0) and bob (leaf 1) whose tree
// has a non-blank parent node (bob committed a path), a follower, and a
// KeyPackage for carol, whom alice's forged Welcomes add at leaf 2.
func welcomeWorld(t *testing.T) (*world, *Group, *Group, *KeyPackageBundle) {
	t.Helper()
	w, alice, bob := twoMembers(t)
	w.commit("bob", CommitOptions{ForcePath: true})
	return w, alice, bob, w.kp("carol")
}

// TestConformance_12_4_3_1 covers RFC 9420 §12.4.3 and §12.4.3.1,
// "Joining via Welcome Message", with the tree rules of §7.3, §7.9 and
// §13.4 a joiner applies: alice, a modified committer, sends carol a
// Welcome that is consistent (signed, with the confirmation tag of the
// GroupContext it carries) except for one broken rule. Carol refuses to
// join; a follower refuses to start from the same GroupInfo where the
// rule concerns the GroupInfo or the tree.
func TestConformance_12_4_3_1(t *testing.T) {
	add := func(kp *KeyPackageBundle) CommitOptions { return CommitOptions{Add: [][]byte{kp.KeyPackage}} }
	withPath := func(kp *KeyPackageBundle) CommitOptions {
		return CommitOptions{Add: [][]byte{kp.KeyPackage}, ForcePath: true}
	}

	t.Run("control: the forged Welcome without a change is accepted", func(t *testing.T) {
		w, alice, _, kp := welcomeWorld(t)
		welcome, gi := forgeWelcome(t, alice, kp, add(kp), welcomeForge{})
		g, err := JoinFromWelcome(w.cfg, welcome, kp, JoinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if g.Epoch() != alice.Epoch()+1 || g.OwnLeaf() != 2 {
			t.Fatalf("joined at epoch %d leaf %d", g.Epoch(), g.OwnLeaf())
		}
		if _, err := NewPublicGroup(w.cfg, gi, nil); err != nil {
			t.Fatal(err)
		}
	})

	type tc struct {
		name string
		// forge returns the Welcome and the GroupInfo a follower is given
		// (nil when the rule concerns only the joiner).
		forge    func(t *testing.T, w *world, alice, bob *Group, kp *KeyPackageBundle) (welcome, gi []byte)
		join     JoinOptions
		sentinel error
		rule     string
		detail   string
		// followerDetail replaces detail for the follower, which has no
		// KeyPackage to compare with.
		followerDetail string
	}
	cases := []tc{
		// "If it is sent otherwise ..., then the client MUST download the
		// tree before processing the Welcome."
		{name: "no ratchet tree in the Welcome and none given", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			w, _ := forgeWelcome(t, alice, kp, add(kp), welcomeForge{outOfBand: true})
			return w, nil
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "no ratchet tree"},
		// "Identify an entry in the secrets array where the new_member
		// value corresponds to one of this client's KeyPackages ... If no
		// such field exists, ... return an error."
		{name: "no entry for the KeyPackage", forge: func(t *testing.T, w *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			other := w.kp("dave")
			wm, _ := forgeWelcome(t, alice, other, add(other), welcomeForge{})
			return wm, nil
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "no secrets for key package"},
		// "... or if the cipher suite indicated in the KeyPackage does not
		// match the one in the Welcome message, return an error."
		{name: "Welcome cipher suite is not the KeyPackage's", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			wm, _ := forgeWelcome(t, alice, kp, add(kp), welcomeForge{})
			var m wire.MLSMessage
			if err := wire.Unmarshal(wm, &m); err != nil {
				t.Fatal(err)
			}
			m.Welcome.CipherSuite = MLS128DHKEMP256AES128GCMSHA256P256
			b, err := encodeMessage(&m)
			if err != nil {
				t.Fatal(err)
			}
			return b, nil
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "cipher suite 0x0002 does not match"},
		// "Verify that the cipher_suite in the GroupInfo matches the
		// cipher_suite in the KeyPackage."
		{name: "GroupInfo cipher suite is not the KeyPackage's", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{gi: func(gi *wire.GroupInfo) {
				gi.GroupContext.CipherSuite = MLS128DHKEMP256AES128GCMSHA256P256
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "group info cipher suite 0x0002", followerDetail: "signature of signer 0 invalid"},
		// "Verify the signature on the GroupInfo object ... If the node is
		// blank or if signature verification fails, return an error."
		{name: "GroupInfo signature invalid", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{noSign: true, gi: func(gi *wire.GroupInfo) {
				gi.Extensions = append(gi.Extensions, wire.Extension{Type: 0xff60, Data: []byte("unsigned")})
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "signature"},
		{name: "GroupInfo signed by another member", forge: func(t *testing.T, _ *world, alice, bob *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{gi: func(gi *wire.GroupInfo) { gi.Signer = uint32(bob.OwnLeaf()) }})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "signature"},
		{name: "GroupInfo signer is a blank leaf", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{gi: func(gi *wire.GroupInfo) { gi.Signer = 3 }})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3", detail: "signer 3 is a blank leaf"},
		// "Verify that the tree hash of the ratchet tree matches the
		// tree_hash field in GroupInfo."
		{name: "tree hash mismatch", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{gi: func(gi *wire.GroupInfo) {
				gi.GroupContext.TreeHash = bytes.Repeat([]byte{1}, len(gi.GroupContext.TreeHash))
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "tree hash"},
		// "For each non-empty parent node, verify that it is
		// 'parent-hash valid'" (§7.9.2: "the new member MUST authenticate
		// that each non-blank parent node P is parent-hash valid").
		{name: "parent node not parent-hash valid", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{tree: func(tr *tree.Tree) {
				p := *tr.ParentNode(1)
				_, pub, _ := alice.c.cs.GenerateHPKEKey()
				p.EncryptionKey = pub
				if err := tr.SetParent(1, &p); err != nil {
					t.Fatal(err)
				}
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "node 1: not parent-hash valid"},
		// "For each non-empty leaf node, validate the LeafNode as
		// described in Section 7.3."
		{name: "leaf signature invalid", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{tree: func(tr *tree.Tree) {
				ln := cloneLeaf(tr.Leaf(1))
				ln.Signature = bytes.Clone(ln.Signature)
				ln.Signature[0] ^= 1
				if err := tr.SetLeaf(1, &ln); err != nil {
					t.Fatal(err)
				}
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "leaf 1: signature invalid"},
		{name: "leaf with an extension not in its capabilities", forge: func(t *testing.T, _ *world, alice, bob *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{tree: func(tr *tree.Tree) {
				ln := cloneLeaf(tr.Leaf(1))
				ln.Extensions = append(ln.Extensions, wire.Extension{Type: 0xff20, Data: []byte{}})
				resignLeaf(t, bob, &ln, 1, bob.signer.priv)
				if err := tr.SetLeaf(1, &ln); err != nil {
					t.Fatal(err)
				}
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "0xff20"},
		{name: "two leaves with one signature key", forge: func(t *testing.T, _ *world, alice, bob *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{tree: func(tr *tree.Tree) {
				ln := cloneLeaf(tr.Leaf(1))
				ln.SignatureKey = alice.signer.pub
				resignLeaf(t, bob, &ln, 1, alice.signer.priv)
				if err := tr.SetLeaf(1, &ln); err != nil {
					t.Fatal(err)
				}
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "signature key duplicates that of leaf 0"},
		// "For each non-empty parent node and each entry in the node's
		// unmerged_leaves field: Verify that the entry represents a
		// non-blank leaf node that is a descendant of the parent node."
		{name: "unmerged leaf not a descendant", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{rawTree: func(rt wire.RatchetTree) {
				p := *rt[1].Parent
				p.UnmergedLeaves = append(append([]uint32(nil), p.UnmergedLeaves...), 2)
				rt[1] = &wire.Node{Type: rt[1].Type, Parent: &p}
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "unmerged leaf 2 is not below the node"},
		// "... Verify that every non-blank intermediate node between the
		// leaf node and the parent node also has an entry for the leaf
		// node." Alice's path sets nodes 1 and 3 (the root); the root then
		// lists bob's leaf 1 as unmerged, node 1 between them does not.
		// The root is then not parent-hash valid either (§7.9.2 asks the
		// root's unmerged leaves under node 1 to be node 1's), but the
		// unmerged_leaves check runs first and its error names it.
		{name: "unmerged leaf missing from an intermediate node", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, withPath(kp), welcomeForge{tree: func(tr *tree.Tree) {
				if tr.ParentNode(1) == nil || tr.ParentNode(3) == nil {
					t.Fatal("alice's path did not set nodes 1 and 3")
				}
				p := *tr.ParentNode(3)
				p.UnmergedLeaves = []uint32{1}
				if err := tr.SetParent(3, &p); err != nil {
					t.Fatal(err)
				}
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "unmerged leaf 1 missing from unmerged_leaves of intermediate node 1"},
		// "... verify that the encryption key in the parent node does not
		// appear in any other node of the tree" (§7.3, §7.9). Alice's leaf
		// takes the key of node 1, her path's parent, and she re-signs
		// it: her leaf's parent_hash covers node 1 and bob's subtree,
		// neither changed, so the tree stays parent-hash valid.
		{name: "parent encryption key also in a leaf", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, withPath(kp), welcomeForge{tree: func(tr *tree.Tree) {
				ln := cloneLeaf(tr.Leaf(0))
				ln.EncryptionKey = tr.ParentNode(1).EncryptionKey
				resignLeaf(t, alice, &ln, 0, alice.signer.priv)
				if err := tr.SetLeaf(0, &ln); err != nil {
					t.Fatal(err)
				}
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "node 1: encryption key duplicates that of node 0"},
		// "Identify a leaf whose LeafNode is identical to the one in the
		// KeyPackage. If no such field exists, return an error."
		{name: "own leaf differs from the KeyPackage's", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			wm, _ := forgeWelcome(t, alice, kp, add(kp), welcomeForge{tree: func(tr *tree.Tree) {
				ln := cloneLeaf(tr.Leaf(2))
				ln.Capabilities.Proposals = append(ln.Capabilities.Proposals, 0xff70)
				if err := ln.Sign(alice.c.cs, kp.Signer.priv, nil, 0); err != nil {
					t.Fatal(err)
				}
				if err := tr.SetLeaf(2, &ln); err != nil {
					t.Fatal(err)
				}
			}})
			return wm, nil
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "own leaf"},
		// "The private key MUST be the private key that corresponds to the
		// public key in the node."
		{name: "path secret does not match the tree", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			wm, _ := forgeWelcome(t, alice, kp, withPath(kp), welcomeForge{secrets: func(gs *wire.GroupSecrets) {
				gs.PathSecret = bytes.Repeat([]byte{5}, 32)
			}})
			return wm, nil
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "derived public key does not match the tree"},
		// "Verify the confirmation tag in the GroupInfo using the derived
		// confirmation key and the confirmed_transcript_hash."
		{name: "confirmation tag wrong", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			wm, _ := forgeWelcome(t, alice, kp, add(kp), welcomeForge{noTag: true, gi: func(gi *wire.GroupInfo) { gi.ConfirmationTag[0] ^= 1 }})
			return wm, nil
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "confirmation"},
		// "If a PreSharedKeyID is part of the GroupSecrets and the client
		// is not in possession of the corresponding PSK, return an error."
		{name: "PSK not held", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			pc, err := alice.Commit(CommitOptions{Add: [][]byte{kp.KeyPackage}, ExternalPSKs: [][]byte{[]byte("psk1")}, InlineRatchetTree: true})
			if err != nil {
				t.Fatal(err)
			}
			alice.DiscardPendingCommit(pc)
			return pc.Welcome, nil
		}, join: JoinOptions{PSKs: &PSKs{}}, sentinel: ErrMissingPSK, rule: "§12.4.3.1", detail: "70736b31"},
		// "Additionally, if a PreSharedKeyID has type resumption with
		// usage reinit or branch, verify that it is the only such PSK."
		{name: "two resumption PSKs of usage branch", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			wm, _ := forgeWelcome(t, alice, kp, add(kp), welcomeForge{secrets: func(gs *wire.GroupSecrets) {
				for i := range 2 {
					gs.PSKs = append(gs.PSKs, wire.PreSharedKeyID{Type: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageBranch, GroupID: alice.GroupID(), Epoch: uint64(i + 1), Nonce: bytes.Repeat([]byte{byte(i)}, 32)})
				}
			}})
			return wm, nil
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "more than one resumption PSK"},
		// §12.4.3: "Extensions in GroupInfo.group_context.extensions ...
		// MUST be supported by the new joiner"; §13.4: "A client joining
		// a group MUST verify that it supports every extension in the
		// GroupContext for the group."
		{name: "GroupContext extension the joiner does not support", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{gi: func(gi *wire.GroupInfo) {
				gi.GroupContext.Extensions = append(gi.GroupContext.Extensions, wire.Extension{Type: 0xff50, Data: []byte{}})
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§12.4.3.1", detail: "group context extension type 0xff50 not in capabilities"},
		// §13.4: "Any field containing a list of extensions MUST NOT have
		// more than one extension of any given type."
		{name: "GroupContext extensions with a type twice", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{gi: func(gi *wire.GroupInfo) {
				gi.GroupContext.Extensions = append(gi.GroupContext.Extensions, wire.Extension{Type: wire.ExtensionApplicationID, Data: []byte("a")}, wire.Extension{Type: wire.ExtensionApplicationID, Data: []byte("b")})
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§13.4", detail: "appears twice"},
		{name: "GroupInfo extensions with a type twice", forge: func(t *testing.T, _ *world, alice, _ *Group, kp *KeyPackageBundle) ([]byte, []byte) {
			return forgeWelcome(t, alice, kp, add(kp), welcomeForge{gi: func(gi *wire.GroupInfo) {
				gi.Extensions = append(gi.Extensions, wire.Extension{Type: 0xff60, Data: []byte("a")}, wire.Extension{Type: 0xff60, Data: []byte("b")})
			}})
		}, sentinel: ErrInvalidWelcome, rule: "§13.4", detail: "appears twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, alice, bob, kp := welcomeWorld(t)
			wm, gi := c.forge(t, w, alice, bob, kp)
			mustRefuseJoin(t, w, wm, gi, kp, c.join, c.sentinel, c.rule, c.detail, c.followerDetail)
		})
	}
}
