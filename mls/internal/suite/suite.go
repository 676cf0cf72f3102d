// Package suite implements the MLS cipher suites of RFC 9420 §5.1 and the
// labelled operations built on them (§5.1.2 ExpandWithLabel/DeriveSecret,
// §5.1.3 EncryptWithLabel, §5.1.2 SignWithLabel, §5.2 RefHash, §9.1
// DeriveTreeSecret).
//
// A Suite is immutable and safe for concurrent use. Keys cross this API as
// byte strings in the encodings MLS puts on the wire: HPKE public keys as
// SerializePublicKey, HPKE private keys as SerializePrivateKey, signature
// public keys as the scheme's native encoding (uncompressed points for
// ECDSA), signature private keys as the Ed25519/Ed448 seed or the ECDSA
// scalar (big-endian, padded to the field size).
package suite

import (
	"errors"
	"fmt"
)

// ID identifies a cipher suite (RFC 9420 §17.1).
type ID uint16

// The cipher suites of RFC 9420.
const (
	MLS128DHKEMX25519AES128GCMSHA256Ed25519        ID = 0x0001
	MLS128DHKEMP256AES128GCMSHA256P256             ID = 0x0002
	MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519 ID = 0x0003
	MLS256DHKEMX448AES256GCMSHA512Ed448            ID = 0x0004
	MLS256DHKEMP521AES256GCMSHA512P521             ID = 0x0005
	MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448     ID = 0x0006
	MLS256DHKEMP384AES256GCMSHA384P384             ID = 0x0007
)

var errNotImplemented = errors.New("suite: not implemented")

// Suite bundles the hash, KDF, AEAD, HPKE and signature algorithms of one
// cipher suite.
type Suite struct {
	id ID
}

// New returns the Suite for id, or an error naming an unsupported id.
func New(id ID) (*Suite, error) {
	return nil, fmt.Errorf("suite: unsupported cipher suite %#04x", uint16(id))
}

// ID returns the suite's identifier.
func (s *Suite) ID() ID { return s.id }

// String returns the suite's RFC name.
func (s *Suite) String() string { return fmt.Sprintf("suite(%#04x)", uint16(s.id)) }

// HashSize returns Nh, the output size of the suite's hash and KDF.
func (s *Suite) HashSize() int { return 0 }

// Hash returns the suite's hash of data.
func (s *Suite) Hash(data []byte) []byte { return nil }

// Extract is KDF.Extract (HKDF-Extract) with the given salt and ikm.
func (s *Suite) Extract(salt, ikm []byte) []byte { return nil }

// Expand is KDF.Expand (HKDF-Expand) of prk with info to length bytes.
func (s *Suite) Expand(prk, info []byte, length int) ([]byte, error) {
	return nil, errNotImplemented
}

// ExpandWithLabel is RFC 9420 §5.1.2 ExpandWithLabel.
func (s *Suite) ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error) {
	return nil, errNotImplemented
}

// DeriveSecret is RFC 9420 §5.1.2 DeriveSecret: ExpandWithLabel(secret,
// label, "", Nh).
func (s *Suite) DeriveSecret(secret []byte, label string) ([]byte, error) {
	return nil, errNotImplemented
}

// DeriveTreeSecret is RFC 9420 §9.1 DeriveTreeSecret: ExpandWithLabel with
// the generation as a uint32 context.
func (s *Suite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error) {
	return nil, errNotImplemented
}

// RefHash is RFC 9420 §5.2 RefHash(label, value).
func (s *Suite) RefHash(label string, value []byte) []byte { return nil }

// MAC returns the suite's HMAC of data under key.
func (s *Suite) MAC(key, data []byte) []byte { return nil }

// VerifyMAC reports, in constant time, whether tag is the MAC of data.
func (s *Suite) VerifyMAC(key, data, tag []byte) bool { return false }

// AEADKeySize returns Nk, the AEAD key size.
func (s *Suite) AEADKeySize() int { return 0 }

// AEADNonceSize returns Nn, the AEAD nonce size.
func (s *Suite) AEADNonceSize() int { return 0 }

// Seal encrypts and authenticates plaintext with the suite's AEAD.
func (s *Suite) Seal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	return nil, errNotImplemented
}

// Open decrypts and authenticates ciphertext with the suite's AEAD.
func (s *Suite) Open(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	return nil, errNotImplemented
}

// DeriveKeyPair is the HPKE KEM's DeriveKeyPair(ikm): it returns the
// serialized private and public keys.
func (s *Suite) DeriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	return nil, nil, errNotImplemented
}

// HPKEPublicKey returns the serialized public key of a serialized HPKE
// private key.
func (s *Suite) HPKEPublicKey(priv []byte) ([]byte, error) { return nil, errNotImplemented }

// EncryptWithLabel is RFC 9420 §5.1.3 EncryptWithLabel: HPKE base-mode
// SealBase to pub with info EncryptContext{label, context}. Randomness comes
// from crypto/rand.
func (s *Suite) EncryptWithLabel(pub []byte, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	return nil, nil, errNotImplemented
}

// DecryptWithLabel is RFC 9420 §5.1.3 DecryptWithLabel.
func (s *Suite) DecryptWithLabel(priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	return nil, errNotImplemented
}

// GenerateSignatureKey returns a fresh signature key pair.
func (s *Suite) GenerateSignatureKey() (priv, pub []byte, err error) {
	return nil, nil, errNotImplemented
}

// SignaturePublicKey returns the public key of a signature private key.
func (s *Suite) SignaturePublicKey(priv []byte) ([]byte, error) { return nil, errNotImplemented }

// SignWithLabel is RFC 9420 §5.1.2 SignWithLabel over SignContent{label,
// content}.
func (s *Suite) SignWithLabel(priv []byte, label string, content []byte) ([]byte, error) {
	return nil, errNotImplemented
}

// VerifyWithLabel is RFC 9420 §5.1.2 VerifyWithLabel; it returns nil only
// for a valid signature.
func (s *Suite) VerifyWithLabel(pub []byte, label string, content, signature []byte) error {
	return errNotImplemented
}
