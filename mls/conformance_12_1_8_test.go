package mls

import (
	"bytes"
	"testing"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// TestConformance_12_1_8 covers RFC 9420 §12.1.8, "External Proposals",
// and the sender rules of §6.1 for senders outside the group: the
// external sender ds (index 0 of external_senders) or a would-be member
// sends a proposal that breaks one rule; alice, bob, carol and the
// follower refuse it and cache nothing. TestExternalSenderRejections
// covers some of these with looser checks.
func TestConformance_12_1_8(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	type tc struct {
		name string
		msg  func(t *testing.T, w *world, ds *Signer) []byte
		want refusal
	}
	outside := func(t *testing.T, w *world, s *Signer, sender wire.Sender, p *wire.Proposal) []byte {
		alice := w.members["alice"]
		msg, err := outsideProposal(s, alice.GroupID(), alice.Epoch(), sender, p, "test")
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	external := wire.Sender{Type: wire.SenderTypeExternal}
	newMember := wire.Sender{Type: wire.SenderTypeNewMemberProposal}
	cases := []tc{
		// "Messages from external senders containing proposal types other
		// than the above MUST be rejected as malformed."
		{"Update from an external sender", func(t *testing.T, w *world, ds *Signer) []byte {
			ln := cloneLeaf(w.members["alice"].c.tree.Leaf(1))
			ln.Source, ln.Lifetime = wire.LeafNodeSourceUpdate, nil
			return outside(t, w, ds, external, &wire.Proposal{Type: wire.ProposalTypeUpdate, Update: &wire.Update{LeafNode: ln}})
		}, refusal{sentinel: ErrMalformed, rule: "§12.1.8", detail: "proposal type 2, which external senders may not send"}},
		{"ExternalInit from an external sender", func(t *testing.T, w *world, ds *Signer) []byte {
			return outside(t, w, ds, external, &wire.Proposal{Type: wire.ProposalTypeExternalInit, ExternalInit: &wire.ExternalInit{KEMOutput: bytes.Repeat([]byte{1}, 32)}})
		}, refusal{sentinel: ErrMalformed, rule: "§12.1.8", detail: "proposal type 6, which external senders may not send"}},
		// "The external SenderType ... can only be used if the
		// external_senders extension is present": sender_index must name
		// an entry.
		{"sender_index beyond external_senders", func(t *testing.T, w *world, ds *Signer) []byte {
			bob := w.members["bob"].OwnLeaf()
			msg, err := NewExternalProposal(w.cfg, cs, w.members["alice"].GroupID(), w.members["alice"].Epoch(), ds, 1, ExternalProposal{Remove: &bob})
			if err != nil {
				t.Fatal(err)
			}
			return msg
		}, refusal{sentinel: ErrNotMember, rule: "§12.1.8.1", detail: "external sender 1 not in external_senders"}},
		// §6.1: "Recipients of an MLSMessage MUST verify the signature with
		// the key depending on the sender_type" (for external: the
		// signature_key of external_senders[sender_index]).
		{"external proposal signed by another key", func(t *testing.T, w *world, _ *Signer) []byte {
			other, _ := GenerateSigner(cs)
			bob := LeafIndex(1)
			return outside(t, w, other, external, &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: uint32(bob)}})
		}, refusal{sentinel: ErrMalformed, rule: "§6.", detail: "signature of external sender 0 invalid"}},
		// §6.1: "external: ... The content_type of the message MUST be
		// proposal".
		{"commit from an external sender", func(t *testing.T, w *world, ds *Signer) []byte {
			alice := w.members["alice"]
			ac, err := framing.SignContent(alice.c.ctx, wire.WireFormatPublicMessage, &wire.FramedContent{
				GroupID: alice.GroupID(), Epoch: alice.Epoch(), Sender: external, AuthenticatedData: []byte{},
				ContentType: wire.ContentTypeCommit, Commit: &wire.Commit{Proposals: []wire.ProposalOrRef{}},
			}, ds.priv)
			if err != nil {
				t.Fatal(err)
			}
			ac.Auth.ConfirmationTag = make([]byte, 32)
			return encodePublic(t, &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth})
		}, refusal{sentinel: ErrMalformed, rule: "§6.1", detail: "may only send proposals"}},
		// §6.1: "new_member_proposal: ... The content_type of the message
		// MUST be proposal and the proposal_type of the Proposal MUST be
		// add."
		{"new_member_proposal with a Remove", func(t *testing.T, w *world, ds *Signer) []byte {
			alice := w.members["alice"]
			ac, err := framing.SignContent(alice.c.ctx, wire.WireFormatPublicMessage, &wire.FramedContent{
				GroupID: alice.GroupID(), Epoch: alice.Epoch(), Sender: newMember, AuthenticatedData: []byte{},
				ContentType: wire.ContentTypeProposal, Proposal: &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: 1}},
			}, ds.priv)
			if err != nil {
				t.Fatal(err)
			}
			return encodePublic(t, &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth})
		}, refusal{sentinel: ErrMalformed, rule: "§6.1", detail: "new_member_proposal"}},
		// §6.1: "new_member_proposal: The signature key in the LeafNode in
		// the KeyPackage embedded in an external Add proposal."
		{"new_member_proposal signed by a key other than the KeyPackage's", func(t *testing.T, w *world, _ *Signer) []byte {
			kp := w.kp("erin")
			other, _ := GenerateSigner(cs)
			return outside(t, w, other, newMember, addProposal(kp.kp))
		}, refusal{sentinel: ErrMalformed, rule: "§6.", detail: "signature of new_member_proposal sender invalid"}},
		// An external Add is an Add: its KeyPackage is validated (§12.1.1,
		// §10.1).
		{"new_member_proposal with an invalid KeyPackage", func(t *testing.T, w *world, _ *Signer) []byte {
			s, _ := GenerateSigner(cs)
			p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) { kp.InitKey = kp.LeafNode.EncryptionKey })
			return outside(t, w, s, newMember, p)
		}, refusal{sentinel: ErrInvalidKeyPackage, rule: "§10.1", detail: "init_key equals the leaf's encryption_key"}},
		{"external Add with an invalid KeyPackage", func(t *testing.T, w *world, ds *Signer) []byte {
			s, _ := GenerateSigner(cs)
			return outside(t, w, ds, external, forgeAdd(t, w, s, func(kp *wire.KeyPackage) { kp.InitKey = kp.LeafNode.EncryptionKey }))
		}, refusal{sentinel: ErrInvalidKeyPackage, rule: "§10.1", detail: "init_key equals the leaf's encryption_key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, ds := externalWorld(t, cs)
			mustRefuse(t, w, "", c.msg(t, w, ds), c.want)
			goesOn(t, w, "bob")
		})
	}
	// "The external SenderType ... can only be used if the
	// external_senders extension is present in the group's GroupContext."
	t.Run("external proposal to a group without external_senders", func(t *testing.T) {
		w, alice, _, _ := floodWorld(t)
		ds, _ := GenerateSigner(cs)
		bob := LeafIndex(1)
		msg, err := NewExternalProposal(w.cfg, cs, alice.GroupID(), alice.Epoch(), ds, 0, ExternalProposal{Remove: &bob})
		if err != nil {
			t.Fatal(err)
		}
		mustRefuse(t, w, "", msg, refusal{sentinel: ErrNotMember, rule: "§12.1.8.1", detail: "0 entries"})
		goesOn(t, w, "bob")
	})
}
