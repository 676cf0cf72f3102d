package mls

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// ExtensionLastResort is the last_resort KeyPackage extension type
// (IANA "MLS Extension Types" 0x000A): the KeyPackage may be used more than
// once when a client's other KeyPackages are exhausted.
const ExtensionLastResort uint16 = 0x000A

// Capabilities are what a client announces it supports (RFC 9420 §7.2).
// Default extension and proposal types need not be listed.
type Capabilities struct {
	CipherSuites []CipherSuite
	Extensions   []uint16
	Proposals    []uint16
	Credentials  []CredentialType
}

// KeyPackageOptions are the choices for NewKeyPackage. The zero value is
// usable.
type KeyPackageOptions struct {
	// Lifetime is how long the KeyPackage is valid from now; its
	// not_before is KeyPackageClockSkew earlier. Zero means
	// DefaultKeyPackageLifetime, shortened to fit Config.MaxLeafLifetime;
	// a Lifetime that with the skew exceeds Config.MaxLeafLifetime is
	// refused (RFC 9420 §7.2).
	Lifetime time.Duration
	// Capabilities, if non-nil, replaces the default capabilities: the
	// KeyPackage's suite, no non-default extensions or proposals, and the
	// basic and x509 credential types (plus the credential's own type).
	Capabilities *Capabilities
	// Extensions are the KeyPackage's extensions (RFC 9420 §10).
	Extensions []Extension
	// LeafExtensions are the leaf node's extensions; their types are added
	// to the capabilities.
	LeafExtensions []Extension
	// LastResort marks the KeyPackage as a last-resort one.
	LastResort bool
}

// KeyPackageBundle is a KeyPackage with the private keys its owner needs to
// join with it. InitPrivateKey and EncryptionPrivateKey are secret: the
// caller stores them and deletes the init key once the KeyPackage is used
// (RFC 9420 §16.8), unless it is a last-resort KeyPackage.
type KeyPackageBundle struct {
	// KeyPackage is the encoded MLSMessage carrying the KeyPackage, to be
	// published.
	KeyPackage []byte
	// Ref is the KeyPackageRef (RFC 9420 §5.2).
	Ref []byte
	// InitPrivateKey is the HPKE private key of init_key.
	InitPrivateKey []byte
	// EncryptionPrivateKey is the HPKE private key of the leaf's
	// encryption_key.
	EncryptionPrivateKey []byte
	// Signer holds the leaf's signature key pair.
	Signer *Signer

	kp    *wire.KeyPackage
	suite *suite.Suite
}

// NewKeyPackage creates and signs a KeyPackage (RFC 9420 §10) for
// credential and signer in cipher suite cs.
func NewKeyPackage(cfg *Config, cs CipherSuite, signer *Signer, credential Credential, opts KeyPackageOptions) (*KeyPackageBundle, error) {
	const op = "new KeyPackage"
	c, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	if signer == nil || signer.suite.ID() != cs {
		return nil, fmt.Errorf("mls: %s: signer is not for cipher suite %#04x", op, uint16(cs))
	}
	s := signer.suite
	initPriv, initPub, err := s.GenerateHPKEKey()
	if err != nil {
		return nil, opError(op, err)
	}
	encPriv, encPub, err := s.GenerateHPKEKey()
	if err != nil {
		return nil, opError(op, err)
	}
	lifetime, err := c.keyPackageLifetime(opts.Lifetime)
	if err != nil {
		return nil, opError(op, err)
	}
	now := c.Now()
	nb := now.Add(-KeyPackageClockSkew).Unix()
	if nb < 0 {
		nb = 0
	}
	leaf := wire.LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  signer.pub,
		Credential:    credential.wire(),
		Capabilities:  buildCapabilities(cs, credential.Type, opts),
		Source:        wire.LeafNodeSourceKeyPackage,
		Lifetime:      &wire.Lifetime{NotBefore: uint64(nb), NotAfter: uint64(now.Add(lifetime).Unix())},
		Extensions:    extsToWire(opts.LeafExtensions),
	}
	var grease uint16
	if !c.DisableGREASE {
		grease = addGREASE(&leaf.Capabilities)
		leaf.Extensions = append(leaf.Extensions, greaseExtension(grease))
	}
	if err := leaf.Sign(s, signer.priv, nil, 0); err != nil {
		return nil, opError(op, err)
	}
	kpExts := extsToWire(opts.Extensions)
	if !c.DisableGREASE {
		kpExts = append(kpExts, greaseExtension(grease))
	}
	if opts.LastResort && kpExts.Find(wire.ExtensionType(ExtensionLastResort)) == nil {
		kpExts = append(kpExts, wire.Extension{Type: wire.ExtensionType(ExtensionLastResort), Data: []byte{}})
	}
	if err := checkUniqueExtensions(leaf.Extensions); err != nil {
		return nil, causeError(op, "§13.4", ErrInvalidKeyPackage, err, "leaf extensions")
	}
	if err := checkUniqueExtensions(kpExts); err != nil {
		return nil, causeError(op, "§13.4", ErrInvalidKeyPackage, err, "extensions")
	}
	kp := &wire.KeyPackage{
		Version:     wire.ProtocolVersionMLS10,
		CipherSuite: cs,
		InitKey:     initPub,
		LeafNode:    leaf,
		Extensions:  kpExts,
	}
	if err := kp.Sign(s, signer.priv); err != nil {
		return nil, opError(op, err)
	}
	return bundleFrom(s, kp, signer, initPriv, encPriv)
}

// keyPackageLifetime returns the lifetime of a new KeyPackage: want, or
// by default DefaultKeyPackageLifetime, such that with the clock skew it
// stays within c.MaxLeafLifetime (RFC 9420 §7.2).
func (c *Config) keyPackageLifetime(want time.Duration) (time.Duration, error) {
	if c.MaxLeafLifetime < 0 {
		if want > 0 {
			return want, nil
		}
		return DefaultKeyPackageLifetime, nil
	}
	room := c.MaxLeafLifetime - KeyPackageClockSkew
	if want > 0 {
		if want > room {
			return 0, fmt.Errorf("§7.2: lifetime %v plus %v of clock skew exceeds Config.MaxLeafLifetime %v", want, KeyPackageClockSkew, c.MaxLeafLifetime)
		}
		return want, nil
	}
	if room < time.Second {
		return 0, fmt.Errorf("§7.2: Config.MaxLeafLifetime %v leaves no lifetime after %v of clock skew", c.MaxLeafLifetime, KeyPackageClockSkew)
	}
	return min(DefaultKeyPackageLifetime, room), nil
}

func buildCapabilities(cs CipherSuite, ct CredentialType, opts KeyPackageOptions) wire.Capabilities {
	caps := wire.Capabilities{Versions: []wire.ProtocolVersion{wire.ProtocolVersionMLS10}}
	if opts.Capabilities != nil {
		caps.CipherSuites = append(caps.CipherSuites, opts.Capabilities.CipherSuites...)
		// Default proposal and extension types "MUST NOT be listed"
		// (RFC 9420 §7.2): they are left out whatever the caller asks.
		for _, e := range opts.Capabilities.Extensions {
			if !defaultExtension(wire.ExtensionType(e)) {
				caps.Extensions = append(caps.Extensions, wire.ExtensionType(e))
			}
		}
		for _, p := range opts.Capabilities.Proposals {
			if !defaultProposal(wire.ProposalType(p)) {
				caps.Proposals = append(caps.Proposals, wire.ProposalType(p))
			}
		}
		caps.Credentials = append(caps.Credentials, opts.Capabilities.Credentials...)
	} else {
		caps.Credentials = []wire.CredentialType{wire.CredentialBasic, wire.CredentialX509}
	}
	if !slices.Contains(caps.CipherSuites, cs) {
		caps.CipherSuites = append(caps.CipherSuites, cs)
	}
	if !slices.Contains(caps.Credentials, ct) {
		caps.Credentials = append(caps.Credentials, ct)
	}
	for _, e := range opts.LeafExtensions {
		if !slices.Contains(caps.Extensions, wire.ExtensionType(e.Type)) && !defaultExtension(wire.ExtensionType(e.Type)) {
			caps.Extensions = append(caps.Extensions, wire.ExtensionType(e.Type))
		}
	}
	if opts.LastResort && !slices.Contains(caps.Extensions, wire.ExtensionType(ExtensionLastResort)) {
		caps.Extensions = append(caps.Extensions, wire.ExtensionType(ExtensionLastResort))
	}
	return caps
}

func bundleFrom(s *suite.Suite, kp *wire.KeyPackage, signer *Signer, initPriv, encPriv []byte) (*KeyPackageBundle, error) {
	msg, err := wire.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatKeyPackage, KeyPackage: kp})
	if err != nil {
		return nil, opError("encode KeyPackage", err)
	}
	ref, err := kp.Ref(s)
	if err != nil {
		return nil, opError("KeyPackage ref", err)
	}
	return &KeyPackageBundle{KeyPackage: msg, Ref: ref, InitPrivateKey: initPriv, EncryptionPrivateKey: encPriv, Signer: signer, kp: kp, suite: s}, nil
}

// NewKeyPackageBundle rebuilds a KeyPackageBundle from a stored KeyPackage
// (an MLSMessage or a bare KeyPackage encoding) and its private keys, which
// are copied. It checks that the keys match the KeyPackage's init_key,
// encryption_key and signature_key.
func NewKeyPackageBundle(keyPackage []byte, signer *Signer, initPriv, encPriv []byte) (*KeyPackageBundle, error) {
	const op = "new KeyPackage bundle"
	kp, err := decodeKeyPackage(keyPackage)
	if err != nil {
		return nil, opError(op, err)
	}
	s, err := suite.New(kp.CipherSuite)
	if err != nil {
		return nil, opError(op, err)
	}
	if signer == nil || signer.suite.ID() != kp.CipherSuite || !bytes.Equal(signer.pub, kp.LeafNode.SignatureKey) {
		return nil, fmt.Errorf("mls: %s: signer does not match signature_key", op)
	}
	if pub, err := s.HPKEPublicKey(initPriv); err != nil || !bytes.Equal(pub, kp.InitKey) {
		return nil, fmt.Errorf("mls: %s: init private key does not match init_key", op)
	}
	if pub, err := s.HPKEPublicKey(encPriv); err != nil || !bytes.Equal(pub, kp.LeafNode.EncryptionKey) {
		return nil, fmt.Errorf("mls: %s: encryption private key does not match encryption_key", op)
	}
	return bundleFrom(s, kp, signer, slices.Clone(initPriv), slices.Clone(encPriv))
}

// decodeKeyPackage accepts an MLSMessage(KeyPackage) or a bare KeyPackage.
func decodeKeyPackage(data []byte) (*wire.KeyPackage, error) {
	var m wire.MLSMessage
	if err := wire.Unmarshal(data, &m); err == nil {
		if m.WireFormat != wire.WireFormatKeyPackage || m.KeyPackage == nil {
			return nil, fmt.Errorf("message is not a KeyPackage (wire format %d): %w", m.WireFormat, ErrMalformed)
		}
		if m.Version != wire.ProtocolVersionMLS10 {
			return nil, fmt.Errorf("§6: MLSMessage version %d is not mls10: %w", m.Version, ErrMalformed)
		}
		return m.KeyPackage, nil
	}
	var kp wire.KeyPackage
	if err := wire.Unmarshal(data, &kp); err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrMalformed)
	}
	return &kp, nil
}

// KeyPackageInfo describes a KeyPackage that passed ValidateKeyPackage.
type KeyPackageInfo struct {
	CipherSuite  CipherSuite
	Ref          []byte
	Credential   Credential
	SignatureKey []byte
	InitKey      []byte
	NotBefore    time.Time
	NotAfter     time.Time
	LastResort   bool
	// Capabilities are the leaf node's capabilities (RFC 9420 §7.2): a
	// group whose required_capabilities, or whose non-default
	// GroupContext extensions, are not among them cannot add the
	// KeyPackage (§11.1). Default types are not listed; the lists may
	// hold GREASE values (§13.5).
	Capabilities Capabilities
}

// ValidateKeyPackage checks a received KeyPackage (an MLSMessage or a bare
// KeyPackage) as RFC 9420 §10.1 requires, as a Delivery Service or a member
// about to add it would: version mls10, the cipher suite cs (any supported
// suite if cs is zero), the leaf node rules of §7.3 for a KeyPackage
// (leaf_node_source key_package, lifetime against cfg.Now and no longer
// than cfg.MaxLeafLifetime (§7.2), the leaf's
// extensions listed in its capabilities, its own suite and credential type
// supported, leaf signature), the credential hook, the KeyPackage signature,
// and init_key different from encryption_key.
func ValidateKeyPackage(cfg *Config, cs CipherSuite, keyPackage []byte) (*KeyPackageInfo, error) {
	const op = "validate KeyPackage"
	c, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	kp, err := decodeKeyPackage(keyPackage)
	if err != nil {
		return nil, causeError(op, "", ErrInvalidKeyPackage, err, "decode")
	}
	if cs != 0 && kp.CipherSuite != cs {
		return nil, ruleError(op, "§10.1", ErrInvalidKeyPackage, "cipher suite %#04x, want %#04x", uint16(kp.CipherSuite), uint16(cs))
	}
	s, err := suite.New(kp.CipherSuite)
	if err != nil {
		return nil, causeError(op, "§10.1", ErrInvalidKeyPackage, err, "cipher suite")
	}
	if err := checkKeyPackage(c, s, kp, op); err != nil {
		return nil, err
	}
	if err := c.checkCredential(CredentialInfo{Credential: credentialFromWire(&kp.LeafNode.Credential), SignatureKey: kp.LeafNode.SignatureKey, Reason: ReasonKeyPackage}); err != nil {
		return nil, opError(op, err)
	}
	ref, err := kp.Ref(s)
	if err != nil {
		return nil, opError(op, err)
	}
	return &KeyPackageInfo{
		CipherSuite:  kp.CipherSuite,
		Ref:          ref,
		Credential:   credentialFromWire(&kp.LeafNode.Credential),
		SignatureKey: kp.LeafNode.SignatureKey,
		InitKey:      kp.InitKey,
		NotBefore:    time.Unix(int64(min(kp.LeafNode.Lifetime.NotBefore, 1<<62)), 0),
		NotAfter:     time.Unix(int64(min(kp.LeafNode.Lifetime.NotAfter, 1<<62)), 0),
		LastResort:   kp.Extensions.Find(wire.ExtensionType(ExtensionLastResort)) != nil,
		Capabilities: capabilitiesFromWire(&kp.LeafNode.Capabilities),
	}, nil
}

// capabilitiesFromWire copies a leaf's capabilities.
func capabilitiesFromWire(c *wire.Capabilities) Capabilities {
	out := Capabilities{CipherSuites: slices.Clone(c.CipherSuites), Credentials: slices.Clone(c.Credentials)}
	for _, e := range c.Extensions {
		out.Extensions = append(out.Extensions, uint16(e))
	}
	for _, p := range c.Proposals {
		out.Proposals = append(out.Proposals, uint16(p))
	}
	return out
}

// checkKeyPackage runs the group-independent rules of §10.1 and §7.3 for a
// KeyPackage of suite s. The credential hook is the caller's.
func checkKeyPackage(c *Config, s *suite.Suite, kp *wire.KeyPackage, op string) error {
	if kp.Version != wire.ProtocolVersionMLS10 {
		return ruleError(op, "§10.1", ErrInvalidKeyPackage, "version %d is not mls10", kp.Version)
	}
	if kp.CipherSuite != s.ID() {
		return ruleError(op, "§10.1", ErrInvalidKeyPackage, "cipher suite %#04x does not match the group's %#04x", uint16(kp.CipherSuite), uint16(s.ID()))
	}
	ln := &kp.LeafNode
	if ln.Source != wire.LeafNodeSourceKeyPackage || ln.Lifetime == nil {
		return ruleError(op, "§7.3", ErrInvalidKeyPackage, "leaf_node_source %d, want key_package", ln.Source)
	}
	now := c.now()
	if now < ln.Lifetime.NotBefore || now > ln.Lifetime.NotAfter {
		return ruleError(op, "§7.3", ErrInvalidKeyPackage, "lifetime [%d, %d] does not contain the current time %d", ln.Lifetime.NotBefore, ln.Lifetime.NotAfter, now)
	}
	if !c.lifetimeWithin(ln.Lifetime) {
		return ruleError(op, "§7.2", ErrInvalidKeyPackage, "lifetime [%d, %d] is longer than Config.MaxLeafLifetime %v", ln.Lifetime.NotBefore, ln.Lifetime.NotAfter, c.MaxLeafLifetime)
	}
	if err := checkLeafSelf(ln); err != nil {
		return causeError(op, "§7.3", ErrInvalidKeyPackage, err, "leaf node")
	}
	if err := checkUniqueExtensions(kp.Extensions); err != nil {
		return causeError(op, "§13.4", ErrInvalidKeyPackage, err, "extensions")
	}
	if !slices.Contains(ln.Capabilities.CipherSuites, s.ID()) {
		return ruleError(op, "§7.2", ErrInvalidKeyPackage, "capabilities do not list the cipher suite %#04x", uint16(s.ID()))
	}
	if !slices.Contains(ln.Capabilities.Versions, wire.ProtocolVersionMLS10) {
		return ruleError(op, "§7.2", ErrInvalidKeyPackage, "capabilities do not list mls10")
	}
	if err := ln.Verify(s, nil, 0); err != nil {
		return causeError(op, "§7.3", ErrInvalidKeyPackage, err, "leaf node signature")
	}
	if err := kp.Verify(s); err != nil {
		return causeError(op, "§10.1", ErrInvalidKeyPackage, err, "signature")
	}
	if bytes.Equal(kp.InitKey, ln.EncryptionKey) {
		return ruleError(op, "§10.1", ErrInvalidKeyPackage, "init_key equals the leaf's encryption_key")
	}
	return nil
}

// checkLeafSelf checks the rules of §7.3 that concern the leaf alone: no
// extension type twice (§13.4), its extensions are listed in its
// capabilities and it supports its own credential type.
func checkLeafSelf(ln *wire.LeafNode) error {
	if err := checkUniqueExtensions(ln.Extensions); err != nil {
		return err
	}
	for _, e := range ln.Extensions {
		if !defaultExtension(e.Type) && !slices.Contains(ln.Capabilities.Extensions, e.Type) {
			return fmt.Errorf("extension type %#04x not in capabilities", uint16(e.Type))
		}
	}
	if !slices.Contains(ln.Capabilities.Credentials, ln.Credential.Type) {
		return fmt.Errorf("credential type %v not in capabilities", ln.Credential.Type)
	}
	return nil
}

// defaultExtension reports whether e is a default extension type (RFC 9420
// §7.2) that needs no listing in capabilities.
func defaultExtension(e wire.ExtensionType) bool {
	return e >= wire.ExtensionApplicationID && e <= wire.ExtensionExternalSenders
}

// defaultProposal reports whether p is a default proposal type (§7.2).
func defaultProposal(p wire.ProposalType) bool {
	return p >= wire.ProposalTypeAdd && p <= wire.ProposalTypeGroupContextExtensions
}
