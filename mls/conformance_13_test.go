package mls

import (
	"testing"

	"github.com/parley-chat/parley/mls/internal/wire"
)

// TestConformance_13_4 covers the receiver-side rules of RFC 9420 §13.4,
// "Extensions". Lists received on their own (KeyPackage, LeafNode and
// ReInit extensions in proposals) are in TestProposalRefusedOnReceipt,
// the path leaf in TestConformance_12_4_2, GroupInfo and GroupContext
// extensions of a Welcome in TestConformance_12_4_3_1.
func TestConformance_13_4(t *testing.T) {
	twice := func(typ wire.ExtensionType) wire.Extensions {
		return wire.Extensions{{Type: typ, Data: []byte("a")}, {Type: typ, Data: []byte("b")}}
	}
	gce := func(es wire.Extensions) *wire.Proposal {
		return &wire.Proposal{Type: wire.ProposalTypeGroupContextExtensions, GroupContextExtensions: &wire.GroupContextExtensions{Extensions: es}}
	}
	// "Any field containing a list of extensions MUST NOT have more than
	// one extension of any given type."
	t.Run("GroupContextExtensions with a type twice", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		p := gce(twice(wire.ExtensionApplicationID))
		r := refusal{sentinel: ErrInvalidProposal, rule: "§13.4", detail: "extension type 0x0001 appears twice"}
		refuseProposal(t, w, "mallory", p, r)
		refuseByValue(t, w, "mallory", r, p)
		goesOn(t, w, "bob")
	})
	t.Run("KeyPackage extensions with a type twice, by value", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) { kp.Extensions = twice(0x000a) })
		refuseByValue(t, w, "mallory", refusal{sentinel: ErrInvalidKeyPackage, rule: "§13.4", detail: "extension type 0x000a appears twice"}, p)
		goesOn(t, w, "bob")
	})
	t.Run("KeyPackage leaf extensions with a type twice, by value", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) { kp.LeafNode.Extensions = twice(wire.ExtensionApplicationID) })
		refuseByValue(t, w, "mallory", refusal{sentinel: ErrInvalidKeyPackage, rule: "§13.4", detail: "extension type 0x0001 appears twice"}, p)
		goesOn(t, w, "bob")
	})
	t.Run("ReInit extensions with a type twice, by value", func(t *testing.T) {
		w, _, _, mallory := floodWorld(t)
		p := &wire.Proposal{Type: wire.ProposalTypeReInit, ReInit: &wire.ReInit{GroupID: []byte("next"), Version: wire.ProtocolVersionMLS10, CipherSuite: w.cs, Extensions: twice(wire.ExtensionApplicationID)}}
		mustRefuse(t, w, "mallory", forgeCommit(t, mallory, &wire.Commit{Proposals: []wire.ProposalOrRef{byValue(p)}}), refusal{sentinel: ErrInvalidProposal, rule: "§13.4", detail: "extension type 0x0001 appears twice"})
		goesOn(t, w, "bob")
	})
	// "A client adding a new member to a group MUST verify that the
	// LeafNode for the new member is compatible with the group's
	// extensions. The capabilities field MUST indicate support for each
	// extension in the GroupContext."
	t.Run("Add leaf not supporting a GroupContext extension", func(t *testing.T) {
		caps := &Capabilities{CipherSuites: []CipherSuite{MLS128DHKEMX25519AES128GCMSHA256Ed25519}, Extensions: []uint16{0xff30}, Credentials: []CredentialType{CredentialBasic}}
		w, _, _, _ := capsWorld(t, caps, []Extension{{Type: 0xff30, Data: []byte("in use")}}, nil)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(*wire.KeyPackage) {})
		r := refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "group context extension type 0xff30 not in capabilities"}
		refuseByValue(t, w, "mallory", r, p)
		refuseByReference(t, w, "bob", "mallory", p, r)
		goesOn(t, w, "bob")
	})
	// "... an extension in use by the group MUST be supported by all
	// members of the group": a GroupContextExtensions proposal adding one
	// that a member does not support (§12.1.7).
	t.Run("GroupContextExtensions with an extension a member does not support", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		p := gce(wire.Extensions{{Type: 0xff30, Data: []byte{}}})
		r := refusal{sentinel: ErrInvalidProposal, rule: "§12.1.7", detail: "group context extension type 0xff30 not in capabilities"}
		refuseByValue(t, w, "mallory", r, p)
		refuseByReference(t, w, "bob", "mallory", p, r)
		goesOn(t, w, "bob")
	})
}
