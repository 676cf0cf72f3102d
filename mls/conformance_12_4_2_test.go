package mls

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/treekem"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// reencryptPath replaces every encrypted path secret of up, an UpdatePath
// of an empty commit by g, with a fresh random secret encrypted to the same
// recipient node under the provisional GroupContext (RFC 9420 §12.4.1:
// the next epoch, the tree hash after the path is merged), as a modified
// committer could: each recipient decrypts a secret from which the path's
// public keys do not derive.
func reencryptPath(t *testing.T, g *Group, up *wire.UpdatePath) {
	t.Helper()
	s := g.c.cs
	leaf := treemath.LeafIndex(g.OwnLeaf())
	nt, err := treekem.MergeUpdatePath(g.c.tree, leaf, up, g.GroupID())
	if err != nil {
		t.Fatal(err)
	}
	th, err := nt.TreeHash()
	if err != nil {
		t.Fatal(err)
	}
	prov := g.c.gc
	prov.Epoch++
	prov.TreeHash = th
	gc, err := codec.Marshal(&prov)
	if err != nil {
		t.Fatal(err)
	}
	path, copath, err := nt.FilteredDirectPath(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if len(path) != len(up.Nodes) {
		t.Fatalf("filtered direct path of %d nodes, UpdatePath of %d", len(path), len(up.Nodes))
	}
	sent := 0
	for j, c := range copath {
		res := nt.Resolution(c)
		if len(res) != len(up.Nodes[j].EncryptedPathSecret) {
			t.Fatalf("node %d: %d ciphertexts for a resolution of %d", path[j], len(up.Nodes[j].EncryptedPathSecret), len(res))
		}
		for i, x := range res {
			ps := bytes.Repeat([]byte{byte(0x40 + i)}, s.HashSize())
			kem, ct, err := s.EncryptWithLabel(nt.Node(x).EncryptionKey(), "UpdatePathNode", gc, ps)
			if err != nil {
				t.Fatal(err)
			}
			up.Nodes[j].EncryptedPathSecret[i] = wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
			sent++
		}
	}
	if sent == 0 {
		t.Fatal("the UpdatePath has no ciphertexts to replace")
	}
}

// retag recomputes the membership tag of pm as g (RFC 9420 §6.2) after a
// test changed its content or auth without re-signing.
func retag(g *Group, pm *wire.PublicMessage) {
	tbm := wire.AuthenticatedContentTBM(wire.WireFormatPublicMessage, &pm.Content, &pm.Auth, g.c.encodedContext())
	pm.MembershipTag = g.c.cs.MAC(g.keys.sched.MembershipKey, tbm)
}

// TestConformance_12_4_2 covers RFC 9420 §12.4.2, "Processing a Commit",
// with the rules of §6.1-§6.2 and §7.3/§7.9 it invokes: mallory (leaf 2),
// a modified client, sends a Commit that breaks one step; alice, bob and
// the follower (where the step needs no secret) refuse it and keep their
// state.
func TestConformance_12_4_2(t *testing.T) {
	type tc struct {
		name string
		// msg returns mallory's message.
		msg  func(t *testing.T, w *world, alice, bob, mallory *Group) []byte
		want refusal
	}
	// changePathLeaf returns an empty commit by mallory whose path leaf f
	// changed, re-signed by priv (mallory's key if nil).
	changePathLeaf := func(t *testing.T, mallory *Group, priv []byte, f func(ln *wire.LeafNode)) []byte {
		cm := validCommit(t, mallory, CommitOptions{ForcePath: true})
		ln := cloneLeaf(&cm.Path.LeafNode)
		f(&ln)
		if priv == nil {
			priv = mallory.signer.priv
		}
		resignLeaf(t, mallory, &ln, mallory.OwnLeaf(), priv)
		cm.Path.LeafNode = ln
		return forgeCommit(t, mallory, cm)
	}
	// valid returns the PublicMessage of a valid commit by g.
	valid := func(t *testing.T, g *Group, opts CommitOptions) *wire.PublicMessage {
		pc, err := g.Commit(opts)
		if err != nil {
			t.Fatal(err)
		}
		g.DiscardPendingCommit(pc)
		return decodePublic(t, pc.Message)
	}
	cases := []tc{
		// "Verify that the epoch field of the enclosing FramedContent is
		// equal to the epoch field of the current GroupContext object."
		{"epoch is not the group's", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			pm := valid(t, mallory, CommitOptions{ForcePath: true})
			pm.Content.Epoch++
			return encodePublic(t, pm)
		}, refusal{sentinel: ErrWrongEpoch, detail: "message for epoch 3, group is at epoch 2"}},
		// "If the message is encoded as PublicMessage, verify the
		// membership MAC using the membership_key."
		{"membership tag invalid", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			pm := valid(t, mallory, CommitOptions{ForcePath: true})
			pm.MembershipTag[0] ^= 1
			return encodePublic(t, pm)
		}, refusal{sentinel: ErrMalformed, rule: "§6.2", detail: "membership tag", memberOnly: true}},
		// "Verify the signature on the FramedContent message as described
		// in Section 6.1."
		{"signature invalid", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			pm := valid(t, mallory, CommitOptions{ForcePath: true})
			pm.Auth.Signature[0] ^= 1
			retag(mallory, pm)
			return encodePublic(t, pm)
		}, refusal{sentinel: ErrMalformed, rule: "§6.2", followerRule: "§6.1", detail: "signature"}},
		{"signed by another member's key", func(t *testing.T, _ *world, alice, _, mallory *Group) []byte {
			pm := valid(t, mallory, CommitOptions{ForcePath: true})
			sig, err := signAs(alice, &pm.Content)
			if err != nil {
				t.Fatal(err)
			}
			pm.Auth.Signature = sig
			retag(mallory, pm)
			return encodePublic(t, pm)
		}, refusal{sentinel: ErrMalformed, rule: "§6.2", followerRule: "§6.1", detail: "signature"}},
		{"committer leaf outside the tree", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			pm := valid(t, mallory, CommitOptions{ForcePath: true})
			pm.Content.Sender.LeafIndex = 5
			return resealPublic(t, mallory, &pm.Content, pm.Auth.ConfirmationTag)
		}, refusal{sentinel: ErrNotMember, rule: "§6.", detail: "leaf 5"}},
		// "Verify that all PreSharedKey proposals in the proposals vector
		// are available."
		{"PSK not available", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			p := &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKTypeExternal, ID: []byte("nobody"), Nonce: make([]byte, 32)}}}
			return forgeCommit(t, mallory, &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(p)}})
		}, refusal{sentinel: ErrMissingPSK, rule: "§8.4", detail: "6e6f626f6479", memberOnly: true}},
		// "Verify that the path value is populated if the proposals vector
		// contains any Update or Remove proposals, or if it's empty."
		{"no path with a Remove", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			return forgeCommit(t, mallory, &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(&wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: 1}})}})
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4", detail: "path required but absent"}},
		{"no path with an Update", func(t *testing.T, w *world, _, bob, mallory *Group) []byte {
			msg, err := bob.ProposeUpdate()
			if err != nil {
				t.Fatal(err)
			}
			w.deliver("bob", msg)
			return forgeCommit(t, mallory, &wire.Commit{Proposals: []wire.ProposalOrRef{byRef(cachedRef(t, mallory, wire.ProposalTypeUpdate))}})
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4", detail: "path required but absent"}},
		{"no path in an empty commit", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			return forgeCommit(t, mallory, &wire.Commit{Proposals: []wire.ProposalOrRef{}})
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4", detail: "path required but absent"}},
		// References must name cached proposals (§12.4).
		{"unknown proposal reference", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			return forgeCommit(t, mallory, &wire.Commit{Proposals: []wire.ProposalOrRef{byRef(bytes.Repeat([]byte{1}, 32))}, Path: validPath(t, mallory)})
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4", detail: "unknown proposal reference"}},
		{"proposal reference twice", func(t *testing.T, w *world, _, _, mallory *Group) []byte {
			msg, err := w.members["bob"].ProposeRemove(0)
			if err != nil {
				t.Fatal(err)
			}
			w.deliver("bob", msg)
			ref := cachedRef(t, mallory, wire.ProposalTypeRemove)
			return forgeCommit(t, mallory, &wire.Commit{Proposals: []wire.ProposalOrRef{byRef(ref), byRef(ref)}, Path: validPath(t, mallory)})
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4", detail: "included twice"}},
		// "Validate the LeafNode as specified in Section 7.3. The
		// leaf_node_source field MUST be set to commit."
		{"path leaf_node_source update", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			return changePathLeaf(t, mallory, nil, func(ln *wire.LeafNode) { ln.Source, ln.ParentHash = wire.LeafNodeSourceUpdate, nil })
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "path leaf_node_source 2, want commit"}},
		{"path leaf signature invalid", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			cm := validCommit(t, mallory, CommitOptions{ForcePath: true})
			cm.Path.LeafNode.Signature[0] ^= 1
			return forgeCommit(t, mallory, cm)
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4.2", detail: "leaf node: "}},
		{"path leaf with another member's signature_key", func(t *testing.T, _ *world, alice, _, mallory *Group) []byte {
			return changePathLeaf(t, mallory, alice.signer.priv, func(ln *wire.LeafNode) { ln.SignatureKey = alice.signer.pub })
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "signature_key of leaf 2 already used by leaf 0"}},
		{"path leaf with an extension not in its capabilities", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			return changePathLeaf(t, mallory, nil, func(ln *wire.LeafNode) {
				ln.Extensions = append(ln.Extensions, wire.Extension{Type: 0xff20, Data: []byte{}})
			})
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "extension type 0xff20 not in capabilities"}},
		{"path leaf without its credential type in its capabilities", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			return changePathLeaf(t, mallory, nil, func(ln *wire.LeafNode) { ln.Capabilities.Credentials = []wire.CredentialType{CredentialX509} })
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "credential type basic not in capabilities"}},
		{"path leaf without the group's cipher suite", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			return changePathLeaf(t, mallory, nil, func(ln *wire.LeafNode) {
				ln.Capabilities.CipherSuites = []CipherSuite{MLS128DHKEMP256AES128GCMSHA256P256}
			})
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.2", detail: "cipher suite 0x0001"}},
		{"path leaf with an extension type twice", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			return changePathLeaf(t, mallory, nil, func(ln *wire.LeafNode) {
				ln.Extensions = append(ln.Extensions, wire.Extension{Type: wire.ExtensionApplicationID, Data: []byte("a")}, wire.Extension{Type: wire.ExtensionApplicationID, Data: []byte("b")})
			})
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§13.4", detail: "appears twice"}},
		{"path leaf changes the identity", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			return changePathLeaf(t, mallory, nil, func(ln *wire.LeafNode) { ln.Credential = BasicCredential([]byte("eve")).wire() })
		}, refusal{sentinel: ErrCredentialRejected, rule: "", detail: "changes the identity"}},
		// "Verify that the encryption_key value in the LeafNode is
		// different from the committer's current leaf node."
		{"path leaf keeps the committer's encryption_key", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			return changePathLeaf(t, mallory, nil, func(ln *wire.LeafNode) { ln.EncryptionKey = mallory.c.tree.Leaf(2).EncryptionKey })
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "reuses the encryption_key of node 4"}},
		// "Verify that none of the public keys in the UpdatePath appear in
		// any node of the new ratchet tree."
		{"path leaf with a member's encryption_key", func(t *testing.T, _ *world, alice, _, mallory *Group) []byte {
			return changePathLeaf(t, mallory, nil, func(ln *wire.LeafNode) { ln.EncryptionKey = alice.c.tree.Leaf(0).EncryptionKey })
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "reuses the encryption_key of node 0"}},
		{"path node with a member's encryption_key", func(t *testing.T, _ *world, alice, _, mallory *Group) []byte {
			cm := validCommit(t, mallory, CommitOptions{ForcePath: true})
			cm.Path.Nodes[0].EncryptionKey = alice.c.tree.Leaf(0).EncryptionKey
			return forgeCommit(t, mallory, cm)
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4.2", detail: "reuses the encryption_key of node 0"}},
		{"path with one encryption_key twice", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			cm := validCommit(t, mallory, CommitOptions{ForcePath: true})
			cm.Path.Nodes[0].EncryptionKey = cm.Path.LeafNode.EncryptionKey
			return forgeCommit(t, mallory, cm)
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4.2", detail: "appears twice in the UpdatePath"}},
		// §7.9.2: "clients MUST recompute the expected value of
		// parent_hash for the committer's new leaf and verify that it
		// matches the parent_hash value in the supplied leaf_node."
		{"path leaf parent_hash wrong", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			return changePathLeaf(t, mallory, nil, func(ln *wire.LeafNode) {
				ln.ParentHash = bytes.Clone(ln.ParentHash)
				ln.ParentHash[0] ^= 1
			})
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4.2", detail: "parent_hash does not match"}},
		{"path node changed under a valid leaf", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			cm := validCommit(t, mallory, CommitOptions{ForcePath: true})
			_, pub, _ := mallory.c.cs.GenerateHPKEKey()
			cm.Path.Nodes[len(cm.Path.Nodes)-1].EncryptionKey = pub
			return forgeCommit(t, mallory, cm)
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4.2", detail: "parent_hash does not match"}},
		// "Decrypt the path secrets for UpdatePath.nodes ... Verify that the
		// public keys derived from the path secrets match the public keys
		// in the UpdatePath" (§12.4.2 with §7.5): mallory's path keeps its
		// node keys, so the parent hashes hold, but every copath
		// recipient is sent another path secret, encrypted correctly to
		// its node under the provisional GroupContext. Only members can
		// decrypt, so the follower, which cannot tell, is not asked.
		{"path secret does not derive the path's keys", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			cm := validCommit(t, mallory, CommitOptions{ForcePath: true})
			reencryptPath(t, mallory, cm.Path)
			return forgeCommit(t, mallory, cm)
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4.2", detail: "public key derived from the path secret does not match the UpdatePath", memberOnly: true}},
		// "Use the confirmation_key for the new epoch to compute the
		// confirmation tag for this message ... and verify that it is the
		// same as the confirmation_tag field."
		{"confirmation tag wrong", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			pm := valid(t, mallory, CommitOptions{ForcePath: true})
			pm.Auth.ConfirmationTag[0] ^= 1
			retag(mallory, pm)
			return encodePublic(t, pm)
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4.2", detail: "confirmation tag", memberOnly: true}},
		// §6.1: a Commit carries a confirmation_tag.
		{"confirmation tag missing", func(t *testing.T, _ *world, _, _, mallory *Group) []byte {
			pm := valid(t, mallory, CommitOptions{ForcePath: true})
			pm.Auth.ConfirmationTag = []byte{}
			retag(mallory, pm)
			return encodePublic(t, pm)
		}, refusal{sentinel: ErrInvalidCommit, rule: "§6.1", detail: "missing confirmation tag"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, alice, bob, mallory := floodWorld(t)
			mustRefuse(t, w, "mallory", c.msg(t, w, alice, bob, mallory), c.want)
			goesOn(t, w, "bob")
		})
	}
}

// TestConformance_12_4_2_ReInit covers "If the Commit included a ReInit
// proposal, the client MUST NOT use the group to send messages anymore":
// after merging such a Commit, a member can no longer encrypt, propose or
// commit, and the follower too sees the group end.
func TestConformance_12_4_2_ReInit(t *testing.T) {
	w, _, bob, _ := floodWorld(t)
	pc := w.commit("alice", CommitOptions{ReInit: &ReInitParams{GroupID: []byte("next"), CipherSuite: w.cs}})
	if pc.reinit == nil {
		t.Fatal("commit has no ReInit")
	}
	if _, err := bob.Encrypt([]byte("x"), nil); !errors.Is(err, ErrRemoved) {
		t.Errorf("encrypt after ReInit: %v, want %v", err, ErrRemoved)
	}
	if _, err := bob.ProposeUpdate(); !errors.Is(err, ErrRemoved) {
		t.Errorf("propose after ReInit: %v, want %v", err, ErrRemoved)
	}
	if _, err := bob.Commit(CommitOptions{}); !errors.Is(err, ErrRemoved) {
		t.Errorf("commit after ReInit: %v, want %v", err, ErrRemoved)
	}
	if bob.Active() || bob.ReInit() == nil {
		t.Errorf("bob active %v, ReInit %+v after a ReInit commit", bob.Active(), bob.ReInit())
	}
}
