package mls

import (
	"errors"
	"slices"
	"testing"

	"github.com/parley-chat/parley/mls/internal/wire"
)

// TestConformance_7_2 covers the receiver-side rules of RFC 9420 §7.2,
// "Leaf Node Contents", on leaves that Add proposals (by reference on
// receipt and by value in a Commit) and Update proposals bring; the path
// leaf of a Commit is in TestConformance_12_4_2.
func TestConformance_7_2(t *testing.T) {
	// "the credential type used in the LeafNode MUST be included in the
	// credentials field of the capabilities field."
	t.Run("Add leaf without its credential type in its capabilities", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) {
			kp.LeafNode.Capabilities.Credentials = []wire.CredentialType{CredentialX509}
		})
		r := refusal{sentinel: ErrInvalidKeyPackage, rule: "§7.3", detail: "credential type basic not in capabilities"}
		refuseProposal(t, w, "mallory", p, r)
		refuseByValue(t, w, "mallory", r, p)
		goesOn(t, w, "bob")
	})
	t.Run("Update leaf without its credential type in its capabilities", func(t *testing.T) {
		w, _, _, mallory := floodWorld(t)
		p := forgeUpdate(t, mallory, func(ln *wire.LeafNode) { ln.Capabilities.Credentials = []wire.CredentialType{CredentialX509} })
		refuseProposal(t, w, "mallory", p, refusal{sentinel: ErrInvalidProposal, rule: "§7.3", detail: "credential type basic not in capabilities"})
		goesOn(t, w, "bob")
	})
	// "The types of any non-default extensions that appear in the
	// extensions field of a LeafNode MUST be included in the extensions
	// field of the capabilities field."
	t.Run("Add leaf with an extension not in its capabilities", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) {
			kp.LeafNode.Extensions = append(kp.LeafNode.Extensions, wire.Extension{Type: 0xff20, Data: []byte{}})
		})
		r := refusal{sentinel: ErrInvalidKeyPackage, rule: "§7.3", detail: "extension type 0xff20 not in capabilities"}
		refuseProposal(t, w, "mallory", p, r)
		refuseByValue(t, w, "mallory", r, p)
		goesOn(t, w, "bob")
	})
	t.Run("Update leaf with an extension not in its capabilities", func(t *testing.T) {
		w, _, _, mallory := floodWorld(t)
		p := forgeUpdate(t, mallory, func(ln *wire.LeafNode) {
			ln.Extensions = append(ln.Extensions, wire.Extension{Type: 0xff20, Data: []byte{}})
		})
		refuseProposal(t, w, "mallory", p, refusal{sentinel: ErrInvalidProposal, rule: "§7.3", detail: "extension type 0xff20 not in capabilities"})
		goesOn(t, w, "bob")
	})
	// §7.2 with §12.1.2: a leaf must keep supporting the group's version
	// and cipher suite (the capabilities list what the client supports).
	t.Run("Add leaf without the group's cipher suite", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) {
			kp.LeafNode.Capabilities.CipherSuites = []CipherSuite{MLS128DHKEMP256AES128GCMSHA256P256}
		})
		r := refusal{sentinel: ErrInvalidKeyPackage, rule: "§7.2", detail: "capabilities do not list the cipher suite 0x0001"}
		refuseProposal(t, w, "mallory", p, r)
		refuseByValue(t, w, "mallory", r, p)
		goesOn(t, w, "bob")
	})
	t.Run("Add leaf without mls10", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) { kp.LeafNode.Capabilities.Versions = []wire.ProtocolVersion{} })
		r := refusal{sentinel: ErrInvalidKeyPackage, rule: "§7.2", detail: "capabilities do not list mls10"}
		refuseProposal(t, w, "mallory", p, r)
		refuseByValue(t, w, "mallory", r, p)
		goesOn(t, w, "bob")
	})
}

// TestConformance_7_3 covers RFC 9420 §7.3, "Leaf Node Validation", for
// leaves received in Add and Update proposals, on receipt and when a
// modified member commits them; the path leaf of a Commit is in
// TestConformance_12_4_2 and the leaves of a joiner's tree in
// TestConformance_12_4_3_1.
func TestConformance_7_3(t *testing.T) {
	// "Verify that the credential in the LeafNode is valid, as described
	// in Section 5.3.1."
	t.Run("credential rejected by the application", func(t *testing.T) {
		hook := func(ci CredentialInfo) error {
			if string(ci.Credential.Identity) == "rejected" {
				return errors.New("not in the directory")
			}
			return nil
		}
		w, _, _, _ := capsWorld(t, nil, nil, hook)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) { kp.LeafNode.Credential = BasicCredential([]byte("rejected")).wire() })
		refuseByValue(t, w, "mallory", refusal{sentinel: ErrCredentialRejected, detail: "not in the directory"}, p)
		goesOn(t, w, "bob")
	})
	t.Run("Update that changes the identity", func(t *testing.T) {
		w, _, _, mallory := floodWorld(t)
		p := forgeUpdate(t, mallory, func(ln *wire.LeafNode) { ln.Credential = BasicCredential([]byte("eve")).wire() })
		refuseByReference(t, w, "mallory", "bob", p, refusal{sentinel: ErrCredentialRejected, detail: "changes the identity"})
		goesOn(t, w, "bob")
	})
	// "Verify that the signature on the LeafNode is valid using
	// signature_key."
	t.Run("Add leaf signature invalid", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(*wire.KeyPackage) {})
		p.Add.KeyPackage.LeafNode.Capabilities.Proposals = append(p.Add.KeyPackage.LeafNode.Capabilities.Proposals, 0xff70)
		if err := p.Add.KeyPackage.Sign(w.members["alice"].c.cs, s.priv); err != nil { // the KeyPackage signature stays valid
			t.Fatal(err)
		}
		r := refusal{sentinel: ErrInvalidKeyPackage, rule: "§7.3", detail: "leaf node signature"}
		refuseProposal(t, w, "mallory", p, r)
		refuseByValue(t, w, "mallory", r, p)
		goesOn(t, w, "bob")
	})
	t.Run("Update leaf signature invalid", func(t *testing.T) {
		w, _, _, mallory := floodWorld(t)
		p := forgeUpdate(t, mallory, func(*wire.LeafNode) {})
		p.Update.LeafNode.Capabilities.Proposals = append(p.Update.LeafNode.Capabilities.Proposals, 0xff70)
		refuseProposal(t, w, "mallory", p, refusal{sentinel: ErrInvalidProposal, rule: "§7.3", detail: "Update leaf signature"})
		goesOn(t, w, "bob")
	})
	// "If the GroupContext has a required_capabilities extension, then
	// the required extensions, proposals, and credential types MUST be
	// listed in the LeafNode's capabilities field."
	t.Run("Add leaf without a required capability", func(t *testing.T) {
		caps := &Capabilities{CipherSuites: []CipherSuite{MLS128DHKEMX25519AES128GCMSHA256Ed25519}, Extensions: []uint16{0xff30}, Credentials: []CredentialType{CredentialBasic}}
		w, _, _, _ := capsWorld(t, caps, []Extension{RequiredCapabilitiesExtension([]uint16{0xff30}, nil, nil)}, nil)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(*wire.KeyPackage) {})
		r := refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "required extension type 0xff30 not in capabilities"}
		refuseByValue(t, w, "mallory", r, p)
		refuseByReference(t, w, "bob", "mallory", p, r)
		goesOn(t, w, "bob")
	})
	t.Run("Update leaf without a required capability", func(t *testing.T) {
		caps := &Capabilities{CipherSuites: []CipherSuite{MLS128DHKEMX25519AES128GCMSHA256Ed25519}, Extensions: []uint16{0xff30}, Credentials: []CredentialType{CredentialBasic}}
		w, _, _, mallory := capsWorld(t, caps, []Extension{RequiredCapabilitiesExtension([]uint16{0xff30}, nil, nil)}, nil)
		p := forgeUpdate(t, mallory, func(ln *wire.LeafNode) {
			ln.Capabilities.Extensions = slices.DeleteFunc(ln.Capabilities.Extensions, func(e wire.ExtensionType) bool { return e == 0xff30 })
		})
		refuseByReference(t, w, "mallory", "bob", p, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "required extension type 0xff30 not in capabilities"})
		goesOn(t, w, "bob")
	})
	// "Verify that the credential type is supported by all members of
	// the group ... and that the capabilities field of this LeafNode
	// indicates support for all the credential types currently in use by
	// other members."
	t.Run("Add leaf with a credential type a member does not support", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) {
			kp.LeafNode.Credential = wire.Credential{Type: 0xff32, Opaque: []byte("token")}
			kp.LeafNode.Capabilities.Credentials = append(kp.LeafNode.Capabilities.Credentials, 0xff32)
		})
		refuseByValue(t, w, "mallory", refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "not supported by leaf 0"}, p)
		goesOn(t, w, "bob")
	})
	t.Run("Add leaf not supporting a credential type in use", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) {
			kp.LeafNode.Credential = X509Credential([][]byte{[]byte("not checked without a hook")}).wire()
			kp.LeafNode.Capabilities.Credentials = []wire.CredentialType{CredentialX509}
		})
		refuseByValue(t, w, "mallory", refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "credential type basic of leaf 0 not in capabilities"}, p)
		goesOn(t, w, "bob")
	})
	// Lifetime: RECOMMENDED for received leaves; the library checks it
	// for KeyPackages (§10.1), on receipt and in a Commit.
	t.Run("Add of an expired KeyPackage", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) { kp.LeafNode.Lifetime = &wire.Lifetime{NotBefore: 1, NotAfter: 2} })
		r := refusal{sentinel: ErrInvalidKeyPackage, rule: "§7.3", detail: "lifetime [1, 2] does not contain the current time"}
		refuseProposal(t, w, "mallory", p, r)
		refuseByValue(t, w, "mallory", r, p)
		goesOn(t, w, "bob")
	})
	// "Verify the leaf_node_source field: If the LeafNode appears in a
	// KeyPackage, verify that leaf_node_source is set to key_package. If
	// the LeafNode appears in an Update proposal, verify that
	// leaf_node_source is set to update and that encryption_key
	// represents a different public key than the encryption_key in the
	// leaf node being replaced."
	t.Run("KeyPackage leaf with source update", func(t *testing.T) {
		w, _, _, _ := floodWorld(t)
		s, _ := GenerateSigner(w.cs)
		p := forgeAdd(t, w, s, func(kp *wire.KeyPackage) { kp.LeafNode.Source, kp.LeafNode.Lifetime = wire.LeafNodeSourceUpdate, nil })
		r := refusal{sentinel: ErrInvalidKeyPackage, rule: "§7.3", detail: "leaf_node_source 2, want key_package"}
		refuseProposal(t, w, "mallory", p, r)
		refuseByValue(t, w, "mallory", r, p)
		goesOn(t, w, "bob")
	})
	t.Run("Update leaf with source commit", func(t *testing.T) {
		w, _, _, mallory := floodWorld(t)
		p := forgeUpdate(t, mallory, func(ln *wire.LeafNode) {
			ln.Source, ln.ParentHash = wire.LeafNodeSourceCommit, make([]byte, 32)
		})
		refuseProposal(t, w, "mallory", p, refusal{sentinel: ErrInvalidProposal, rule: "§7.3", detail: "Update leaf_node_source 3, want update"})
		goesOn(t, w, "bob")
	})
	t.Run("Update keeping the encryption_key", func(t *testing.T) {
		w, _, _, mallory := floodWorld(t)
		p := forgeUpdate(t, mallory, func(ln *wire.LeafNode) { ln.EncryptionKey = mallory.c.tree.Leaf(2).EncryptionKey })
		refuseProposal(t, w, "mallory", p, refusal{sentinel: ErrInvalidProposal, rule: "§7.3", detail: "does not change the encryption_key of leaf 2"})
		goesOn(t, w, "bob")
	})
	// "Verify that the following fields are unique among the members of
	// the group: signature_key, encryption_key." (Adds with a member's
	// keys: TestProposalRefusedOnReceipt and TestConformance_12_2.)
	t.Run("Update with another member's signature_key", func(t *testing.T) {
		w, alice, _, mallory := floodWorld(t)
		p := forgeUpdate(t, mallory, func(ln *wire.LeafNode) { ln.SignatureKey = alice.signer.pub })
		// Signed with that key, so that only the uniqueness breaks.
		if err := p.Update.LeafNode.Sign(mallory.c.cs, alice.signer.priv, mallory.GroupID(), 2); err != nil {
			t.Fatal(err)
		}
		refuseProposal(t, w, "mallory", p, refusal{sentinel: ErrInvalidProposal, rule: "§7.3", detail: "Update of leaf 2 with the signature_key of leaf 0"})
		goesOn(t, w, "bob")
	})
}
