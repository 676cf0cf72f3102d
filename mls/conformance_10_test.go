package mls

import (
	"testing"

	"github.com/parley-chat/parley/mls/internal/wire"
)

// TestConformance_10_1 covers RFC 9420 §10.1, "KeyPackage Validation",
// for KeyPackages "received by a group member in an Add message": on
// receipt of the Add proposal and in a Commit that carries it by value,
// members and the follower refuse a KeyPackage that breaks one step. The
// leaf node rules the second step invokes are in TestConformance_7_3.
func TestConformance_10_1(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, w *world, s *Signer) *wire.Proposal
		detail string
		rule   string
	}{
		// "Verify that the cipher suite and protocol version of the
		// KeyPackage match those in the GroupContext."
		{"cipher suite is not the group's", func(t *testing.T, w *world, _ *Signer) *wire.Proposal {
			s, _ := GenerateSigner(MLS128DHKEMP256AES128GCMSHA256P256)
			b, err := NewKeyPackage(w.cfg, MLS128DHKEMP256AES128GCMSHA256P256, s, BasicCredential([]byte("p256")), KeyPackageOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return addProposal(b.kp)
		}, "cipher suite 0x0002", "§10.1"},
		{"protocol version is not the group's", func(t *testing.T, w *world, s *Signer) *wire.Proposal {
			return forgeAdd(t, w, s, func(kp *wire.KeyPackage) { kp.Version = 0 })
		}, "version 0 is not mls10", "§10.1"},
		// "Verify that the signature on the KeyPackage is valid using the
		// public key in leaf_node.credential."
		{"KeyPackage signature invalid", func(t *testing.T, w *world, s *Signer) *wire.Proposal {
			p := forgeAdd(t, w, s, func(*wire.KeyPackage) {})
			p.Add.KeyPackage.Extensions = append(p.Add.KeyPackage.Extensions, wire.Extension{Type: 0xff60, Data: []byte("unsigned")})
			return p
		}, "signature", "§10.1"},
		{"KeyPackage signed by another key", func(t *testing.T, w *world, s *Signer) *wire.Proposal {
			p := forgeAdd(t, w, s, func(*wire.KeyPackage) {})
			other, _ := GenerateSigner(w.cs)
			if err := p.Add.KeyPackage.Sign(w.members["alice"].c.cs, other.priv); err != nil {
				t.Fatal(err)
			}
			return p
		}, "signature", "§10.1"},
		// "Verify that the value of leaf_node.encryption_key is different
		// from the value of the init_key field."
		{"init_key equals encryption_key", func(t *testing.T, w *world, s *Signer) *wire.Proposal {
			return forgeAdd(t, w, s, func(kp *wire.KeyPackage) { kp.InitKey = kp.LeafNode.EncryptionKey })
		}, "init_key equals the leaf's encryption_key", "§10.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, _, _, _ := floodWorld(t)
			s, _ := GenerateSigner(w.cs)
			p := c.change(t, w, s)
			r := refusal{sentinel: ErrInvalidKeyPackage, rule: c.rule, detail: c.detail}
			refuseProposal(t, w, "mallory", p, r)
			refuseByValue(t, w, "mallory", r, p)
			// ValidateKeyPackage, for a Delivery Service or a member
			// about to add it, refuses it the same way.
			_, err := ValidateKeyPackage(w.cfg, w.cs, kpMessage(t, &p.Add.KeyPackage))
			wantRefusal(t, "ValidateKeyPackage", err, ErrInvalidKeyPackage, c.rule, c.detail)
			goesOn(t, w, "bob")
		})
	}
}
