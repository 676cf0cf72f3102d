package mls

import (
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// LeafIndex is the position of a member in the ratchet tree (RFC 9420
// Appendix C): leaf i.
type LeafIndex = treemath.LeafIndex

// CredentialType identifies a credential format (RFC 9420 §5.3).
type CredentialType = wire.CredentialType

// The credential types of RFC 9420.
const (
	CredentialBasic = wire.CredentialBasic
	CredentialX509  = wire.CredentialX509
)

// Credential is an MLS credential (RFC 9420 §5.3). Exactly one content field
// is meaningful, chosen by Type. Credentials returned by this package alias
// group state and must not be modified.
type Credential struct {
	Type CredentialType
	// Identity is the identity of a basic credential.
	Identity []byte
	// Certificates is the DER chain of an x509 credential, end entity first.
	Certificates [][]byte
	// Opaque is the body of a credential of any other type.
	Opaque []byte
}

// BasicCredential returns a basic credential with the given identity
// (which is not copied).
func BasicCredential(identity []byte) Credential {
	return Credential{Type: CredentialBasic, Identity: identity}
}

// X509Credential returns an x509 credential with the given DER chain, end
// entity first (not copied). The chain is not checked here: that is the
// job of Config.ValidateCredential.
func X509Credential(chain [][]byte) Credential {
	return Credential{Type: CredentialX509, Certificates: chain}
}

func (c Credential) wire() wire.Credential {
	return wire.Credential{Type: c.Type, Identity: c.Identity, Certificates: c.Certificates, Opaque: c.Opaque}
}

func credentialFromWire(w *wire.Credential) Credential {
	return Credential{Type: w.Type, Identity: w.Identity, Certificates: w.Certificates, Opaque: w.Opaque}
}

func encodeCredential(c Credential) []byte {
	w := c.wire()
	b, _ := codec.Marshal(&w)
	return b
}

// Extension is one extension entry (RFC 9420 §13): a type and its encoded
// content.
type Extension struct {
	Type uint16
	Data []byte
}

// Well-known extension types (RFC 9420 §17.3).
const (
	ExtensionApplicationID        uint16 = 0x0001
	ExtensionRatchetTree          uint16 = 0x0002
	ExtensionRequiredCapabilities uint16 = 0x0003
	ExtensionExternalPub          uint16 = 0x0004
	ExtensionExternalSenders      uint16 = 0x0005
)

func extsToWire(es []Extension) wire.Extensions {
	out := make(wire.Extensions, 0, len(es))
	for _, e := range es {
		out = append(out, wire.Extension{Type: wire.ExtensionType(e.Type), Data: e.Data})
	}
	return out
}

func extsFromWire(es wire.Extensions) []Extension {
	out := make([]Extension, 0, len(es))
	for _, e := range es {
		out = append(out, Extension{Type: uint16(e.Type), Data: e.Data})
	}
	return out
}

// RequiredCapabilitiesExtension returns a required_capabilities extension
// (RFC 9420 §11.1) listing the given extension, proposal and credential
// types.
func RequiredCapabilitiesExtension(extensions, proposals, credentials []uint16) Extension {
	rc := wire.RequiredCapabilities{}
	for _, e := range extensions {
		rc.Extensions = append(rc.Extensions, wire.ExtensionType(e))
	}
	for _, p := range proposals {
		rc.Proposals = append(rc.Proposals, wire.ProposalType(p))
	}
	for _, c := range credentials {
		rc.Credentials = append(rc.Credentials, wire.CredentialType(c))
	}
	b, _ := codec.Marshal(&rc)
	return Extension{Type: ExtensionRequiredCapabilities, Data: b}
}

// ExternalSender is an entry of the external_senders extension (RFC 9420
// §12.1.8.1): a party allowed to send proposals from outside the group.
type ExternalSender struct {
	SignatureKey []byte
	Credential   Credential
}

// MarshalBinary encodes the ExternalSender as in the external_senders
// extension (RFC 9420 §12.1.8.1).
func (e ExternalSender) MarshalBinary() ([]byte, error) {
	w := wire.ExternalSender{SignatureKey: e.SignatureKey, Credential: e.Credential.wire()}
	b, err := codec.Marshal(&w)
	if err != nil {
		return nil, opError("encode external sender", err)
	}
	return b, nil
}

// UnmarshalBinary decodes one ExternalSender (RFC 9420 §12.1.8.1) from b,
// which it must consume exactly. The result does not alias b.
func (e *ExternalSender) UnmarshalBinary(b []byte) error {
	var w wire.ExternalSender
	if err := wire.Unmarshal(b, &w); err != nil {
		return causeError("decode external sender", "§12.1.8.1", ErrMalformed, err, "ExternalSender")
	}
	*e = externalSenderFromWire(&w)
	return nil
}

// ParseExternalSenders decodes the data of an external_senders extension
// (RFC 9420 §12.1.8.1; Extension.Data of type ExtensionExternalSenders): the
// external senders in order, whose index is an external sender's
// sender_index. The whole input must decode. The result does not alias
// data.
func ParseExternalSenders(data []byte) ([]ExternalSender, error) {
	var ws wire.ExternalSenders
	if err := wire.Unmarshal(data, &ws); err != nil {
		return nil, causeError("parse external senders", "§12.1.8.1", ErrMalformed, err, "external_senders")
	}
	out := make([]ExternalSender, len(ws))
	for i := range ws {
		out[i] = externalSenderFromWire(&ws[i])
	}
	return out, nil
}

func externalSenderFromWire(w *wire.ExternalSender) ExternalSender {
	c := credentialFromWire(&w.Credential)
	c.Identity = slices.Clone(c.Identity)
	c.Opaque = slices.Clone(c.Opaque)
	c.Certificates = slices.Clone(c.Certificates)
	for i := range c.Certificates {
		c.Certificates[i] = slices.Clone(c.Certificates[i])
	}
	return ExternalSender{SignatureKey: slices.Clone(w.SignatureKey), Credential: c}
}

// ExternalSendersExtension returns an external_senders extension.
func ExternalSendersExtension(senders []ExternalSender) Extension {
	es := make(wire.ExternalSenders, 0, len(senders))
	for _, s := range senders {
		es = append(es, wire.ExternalSender{SignatureKey: s.SignatureKey, Credential: s.Credential.wire()})
	}
	b, _ := codec.Marshal(es)
	return Extension{Type: ExtensionExternalSenders, Data: b}
}

// Signer holds a member's signature key pair for one cipher suite. The
// private key is secret; a Signer is immutable and safe for concurrent use.
type Signer struct {
	suite *suite.Suite
	priv  []byte
	pub   []byte
}

// GenerateSigner returns a Signer with a fresh key pair for cs.
func GenerateSigner(cs CipherSuite) (*Signer, error) {
	s, err := suite.New(cs)
	if err != nil {
		return nil, fmt.Errorf("mls: generate signer: %w", err)
	}
	priv, pub, err := s.GenerateSignatureKey()
	if err != nil {
		return nil, fmt.Errorf("mls: generate signer: %w", err)
	}
	return &Signer{suite: s, priv: priv, pub: pub}, nil
}

// NewSigner returns a Signer for the private key priv of cs (in the encoding
// of the suite's signature scheme: the Ed25519/Ed448 seed or the ECDSA
// scalar). priv is copied.
func NewSigner(cs CipherSuite, priv []byte) (*Signer, error) {
	s, err := suite.New(cs)
	if err != nil {
		return nil, fmt.Errorf("mls: new signer: %w", err)
	}
	pub, err := s.SignaturePublicKey(priv)
	if err != nil {
		return nil, fmt.Errorf("mls: new signer: %w", err)
	}
	return &Signer{suite: s, priv: append([]byte(nil), priv...), pub: pub}, nil
}

// CipherSuite returns the signer's cipher suite.
func (s *Signer) CipherSuite() CipherSuite { return s.suite.ID() }

// PublicKey returns the signature public key (a copy).
func (s *Signer) PublicKey() []byte { return append([]byte(nil), s.pub...) }

// PrivateKey returns a copy of the private key, for storage. It is secret.
func (s *Signer) PrivateKey() []byte { return append([]byte(nil), s.priv...) }
