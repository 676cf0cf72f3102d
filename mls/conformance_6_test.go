package mls

import (
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// sealWithPadding encrypts an application message of g's as a
// PrivateMessage whose PrivateMessageContent is followed by padding, as
// given (RFC 9420 §6.3.1): what framing.SealPrivate does, except that it
// writes only zero padding. The content key and nonce are the next of g's
// application ratchet in its secret tree; the reuse guard is zero.
func sealWithPadding(t *testing.T, g *Group, data, padding []byte) []byte {
	t.Helper()
	s := g.c.cs
	fc := &wire.FramedContent{GroupID: g.GroupID(), Epoch: g.Epoch(), Sender: g.ownSender(), AuthenticatedData: []byte{}, ContentType: wire.ContentTypeApplication, ApplicationData: data}
	ac, err := framing.SignContent(g.c.ctx, wire.WireFormatPrivateMessage, fc, g.signer.priv)
	if err != nil {
		t.Fatal(err)
	}
	pmc := wire.PrivateMessageContent{ApplicationData: fc.ApplicationData, Auth: ac.Auth}
	plaintext, err := pmc.Marshal(fc.ContentType, 0)
	if err != nil {
		t.Fatal(err)
	}
	plaintext = append(plaintext, padding...)
	leaf := treemath.LeafIndex(g.OwnLeaf())
	gen, kn, err := g.keys.secrets.Next(leaf, schedule.Application)
	if err != nil {
		t.Fatal(err)
	}
	// A zero reuse guard leaves the nonce as it is (§6.3.1).
	ciphertext, err := s.Seal(kn.Key, kn.Nonce, wire.PrivateContentAAD(fc.GroupID, fc.Epoch, fc.ContentType, fc.AuthenticatedData), plaintext)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := codec.Marshal(&wire.SenderData{LeafIndex: uint32(leaf), Generation: gen})
	if err != nil {
		t.Fatal(err)
	}
	sdkn, err := schedule.SenderDataKeyNonce(s, g.keys.sched.SenderDataSecret, ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	esd, err := s.Seal(sdkn.Key, sdkn.Nonce, wire.SenderDataAAD(fc.GroupID, fc.Epoch, fc.ContentType), sd)
	if err != nil {
		t.Fatal(err)
	}
	pm := &wire.PrivateMessage{GroupID: fc.GroupID, Epoch: fc.Epoch, ContentType: fc.ContentType, AuthenticatedData: fc.AuthenticatedData, EncryptedSenderData: esd, Ciphertext: ciphertext}
	b, err := encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: pm})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance_6 covers the receiver-side rules of RFC 9420 §6.1-§6.3
// on messages from members: mallory sends a proposal or an application
// message that breaks one rule; the other members (and the follower for
// PublicMessages) refuse it and keep their state. Commits are in
// TestConformance_12_4_2, senders from outside the group in
// TestConformance_12_1_8.
func TestConformance_6(t *testing.T) {
	// removeBob is a valid proposal of mallory's.
	removeBob := &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: 1}}
	cases := []struct {
		name string
		msg  func(t *testing.T, w *world, alice, mallory *Group) []byte
		want refusal
	}{
		// §6: "Applications MUST use PrivateMessage to encrypt
		// application messages."
		{"application data in a PublicMessage", func(t *testing.T, _ *world, _, mallory *Group) []byte {
			fc := &wire.FramedContent{GroupID: mallory.GroupID(), Epoch: mallory.Epoch(), Sender: mallory.ownSender(), AuthenticatedData: []byte{}, ContentType: wire.ContentTypeApplication, ApplicationData: []byte("in the clear")}
			sig, err := signAs(mallory, fc)
			if err != nil {
				t.Fatal(err)
			}
			pm := &wire.PublicMessage{Content: *fc, Auth: wire.FramedContentAuthData{Signature: sig}}
			retag(mallory, pm)
			return encodePublic(t, pm)
		}, refusal{sentinel: ErrMalformed, rule: "§6.2", detail: "application data"}},
		// §6: a message for another group.
		{"group_id of another group", func(t *testing.T, _ *world, _, mallory *Group) []byte {
			pm := decodePublic(t, forgeProposal(t, mallory, removeBob))
			pm.Content.GroupID = []byte("other")
			return encodePublic(t, pm)
		}, refusal{sentinel: ErrWrongGroup, rule: "§6", detail: "group_id 6f74686572"}},
		// §6.2: "the application MUST check membership_tag".
		{"membership tag invalid", func(t *testing.T, _ *world, _, mallory *Group) []byte {
			pm := decodePublic(t, forgeProposal(t, mallory, removeBob))
			pm.MembershipTag[0] ^= 1
			return encodePublic(t, pm)
		}, refusal{sentinel: ErrMalformed, rule: "§6.2", detail: "membership tag", memberOnly: true}},
		// §6.2: "... and MUST check that the FramedContentAuthData is
		// valid"; §6.1: "Recipients of an MLSMessage MUST verify the
		// signature with the key depending on the sender_type."
		{"PublicMessage signature invalid", func(t *testing.T, _ *world, _, mallory *Group) []byte {
			pm := decodePublic(t, forgeProposal(t, mallory, removeBob))
			pm.Auth.Signature[0] ^= 1
			retag(mallory, pm)
			return encodePublic(t, pm)
		}, refusal{sentinel: ErrMalformed, rule: "§6.2", followerRule: "§6.1", detail: "signature of member leaf 2 invalid"}},
		{"PublicMessage from a leaf outside the tree", func(t *testing.T, _ *world, _, mallory *Group) []byte {
			pm := decodePublic(t, forgeProposal(t, mallory, removeBob))
			pm.Content.Sender.LeafIndex = 7
			return resealPublic(t, mallory, &pm.Content, nil)
		}, refusal{sentinel: ErrNotMember, rule: "§6.", detail: "leaf 7"}},
		// §6.3: "When decoding a PrivateMessageContent, the application
		// MUST check that the FramedContentAuthData is valid."
		{"PrivateMessage signature invalid", func(t *testing.T, w *world, _, mallory *Group) []byte {
			fc := &wire.FramedContent{GroupID: mallory.GroupID(), Epoch: mallory.Epoch(), Sender: mallory.ownSender(), AuthenticatedData: []byte{}, ContentType: wire.ContentTypeApplication, ApplicationData: []byte("x")}
			other, _ := GenerateSigner(w.cs)
			ac, err := framing.SignContent(mallory.c.ctx, wire.WireFormatPrivateMessage, fc, other.priv)
			if err != nil {
				t.Fatal(err)
			}
			pm, err := framing.SealPrivate(mallory.c.ctx, ac, mallory.keys.sched.SenderDataSecret, mallory.keys.secrets, framing.PrivateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: pm})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, refusal{sentinel: ErrMalformed, rule: "§6.3", detail: "signature", memberOnly: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, alice, _, mallory := floodWorld(t)
			mustRefuse(t, w, "mallory", c.msg(t, w, alice, mallory), c.want)
			goesOn(t, w, "bob")
		})
	}

	// §6.3.2: "the recipient MUST verify that the leaf index indicated
	// in the leaf_index field identifies a non-blank node."
	t.Run("PrivateMessage from a blank leaf", func(t *testing.T) {
		w, alice, bob, _ := floodWorld(t)
		w.commit("alice", CommitOptions{Remove: []LeafIndex{1}})
		// Bob, removed, seals a message as leaf 1 with the keys of the
		// new epoch (taken from alice: what a member colluding with him
		// could hand him).
		fc := &wire.FramedContent{GroupID: alice.GroupID(), Epoch: alice.Epoch(), Sender: wire.Sender{Type: wire.SenderTypeMember, LeafIndex: 1}, AuthenticatedData: []byte{}, ContentType: wire.ContentTypeApplication, ApplicationData: []byte("x")}
		ac, err := framing.SignContent(alice.c.ctx, wire.WireFormatPrivateMessage, fc, bob.signer.priv)
		if err != nil {
			t.Fatal(err)
		}
		pm, err := framing.SealPrivate(alice.c.ctx, ac, alice.keys.sched.SenderDataSecret, alice.keys.secrets, framing.PrivateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		msg, err := encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: pm})
		if err != nil {
			t.Fatal(err)
		}
		mustRefuse(t, w, "alice", msg, refusal{sentinel: ErrNotMember, rule: "§6.3", detail: "leaf 1", memberOnly: true})
		goesOn(t, w, "alice")
	})
	// §6.3.1: "A receiver MUST verify that there are no non-zero bytes in
	// the padding field, and if this check fails, the enclosing
	// PrivateMessage MUST be rejected as malformed."
	t.Run("control: zero padding accepted", func(t *testing.T) {
		w, _, _, mallory := floodWorld(t)
		msg := sealWithPadding(t, mallory, []byte("padded"), make([]byte, 40))
		for _, name := range []string{"alice", "bob"} {
			p, err := w.members[name].Process(msg)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if string(p.ApplicationData) != "padded" {
				t.Fatalf("%s: application data %q", name, p.ApplicationData)
			}
		}
	})
	for _, c := range []struct {
		name    string
		padding []byte
		detail  string
	}{
		{"PrivateMessage padding not zero: first byte", []byte{1}, "padding byte 0 of 1 is 0x01, not zero"},
		{"PrivateMessage padding not zero: last byte", []byte{0, 0, 0, 0x80}, "padding byte 3 of 4 is 0x80, not zero"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, _, _, mallory := floodWorld(t)
			msg := sealWithPadding(t, mallory, []byte("padded"), c.padding)
			mustRefuse(t, w, "mallory", msg, refusal{sentinel: ErrMalformed, rule: "§6.3", detail: c.detail, memberOnly: true})
			goesOn(t, w, "bob")
		})
	}
}
