package mls

import (
	"slices"
	"testing"

	"github.com/parley-chat/parley/mls/internal/wire"
)

// TestCapabilitiesOmitDefaultTypes checks that NewKeyPackage never lists
// default proposal or extension types in the leaf's capabilities (RFC
// 9420 §7.2: they "MUST NOT be listed"), whatever the caller passes, and
// keeps the non-default ones it is given.
func TestCapabilitiesOmitDefaultTypes(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	s, err := GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	caps := &Capabilities{
		CipherSuites: []CipherSuite{cs},
		Extensions:   []uint16{0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0xff0a},
		Proposals:    []uint16{0x0001, 0x0003, 0x0007, 0xff0b},
		Credentials:  []CredentialType{CredentialBasic},
	}
	b, err := NewKeyPackage(nil, cs, s, BasicCredential([]byte("alice")), KeyPackageOptions{Capabilities: caps})
	if err != nil {
		t.Fatal(err)
	}
	var msg wire.MLSMessage
	if err := wire.Unmarshal(b.KeyPackage, &msg); err != nil {
		t.Fatal(err)
	}
	got := msg.KeyPackage.LeafNode.Capabilities
	for _, e := range got.Extensions {
		if defaultExtension(e) {
			t.Errorf("capabilities list default extension type %#04x", uint16(e))
		}
	}
	for _, p := range got.Proposals {
		if defaultProposal(p) {
			t.Errorf("capabilities list default proposal type %#04x", uint16(p))
		}
	}
	if !slices.Contains(got.Extensions, wire.ExtensionType(0xff0a)) || !slices.Contains(got.Proposals, wire.ProposalType(0xff0b)) {
		t.Errorf("capabilities %+v lost the non-default types given", got)
	}
	info, err := ValidateKeyPackage(nil, cs, b.KeyPackage)
	if err != nil {
		t.Fatalf("the KeyPackage does not validate: %v", err)
	}
	// ValidateKeyPackage reports the leaf's capabilities as they are.
	if !slices.Contains(info.Capabilities.Extensions, 0xff0a) || !slices.Contains(info.Capabilities.Proposals, 0xff0b) ||
		!slices.Contains(info.Capabilities.CipherSuites, cs) || !slices.Contains(info.Capabilities.Credentials, CredentialBasic) {
		t.Errorf("KeyPackageInfo.Capabilities %+v, want those of the leaf %+v", info.Capabilities, got)
	}
}
