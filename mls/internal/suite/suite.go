// Package suite implements the MLS cipher suites of RFC 9420 §5.1 and the
// labelled operations built on them (§5.1.2 ExpandWithLabel/DeriveSecret,
// §5.1.3 EncryptWithLabel, §5.1.2 SignWithLabel, §5.2 RefHash, §9.1
// DeriveTreeSecret).
//
// A Suite is immutable and safe for concurrent use. Keys cross this API as
// byte strings in the encodings MLS puts on the wire: HPKE public keys as
// SerializePublicKey, HPKE private keys as SerializePrivateKey, signature
// public keys as the scheme's native encoding (uncompressed points for
// ECDSA, FIPS 204 pkEncode for ML-DSA), signature private keys as the
// Ed25519/Ed448 seed, the ECDSA scalar (big-endian, padded to the field
// size) or the 32-byte ML-DSA seed ξ.
//
// Internally a Suite is assembled from four algorithm pieces, one table entry
// per suite (see table below):
//
//   - kdf.go: the hash, HMAC and HKDF (RFC 9420 §5.1, RFC 5869);
//   - aead.go: the AEAD (AES-GCM, ChaCha20-Poly1305);
//   - kem.go: HPKE base mode (RFC 9180) with its KEM, including the
//     deterministic DeriveKeyPair of RFC 9180 §7.1.3 that TreeKEM
//     (RFC 9420 §7.4) needs; crypto/hpke for X25519, the NIST curves and
//     ML-KEM (alone or hybrid), circl for X448;
//   - sign.go: the signature scheme (Ed25519, ECDSA over P-256/P-384/P-521
//     with DER signatures, Ed448 via circl); mldsa.go adds ML-DSA-44/65/87
//     (FIPS 204, via circl).
//
// labels.go encodes the labelled structs (KDFLabel, SignContent,
// EncryptContext, RefHashInput); ops.go implements the RFC 9420 operations
// over them. New suites are new table entries; pq.go adds the post-quantum
// suites of draft-ietf-mls-pq-ciphersuites (ML-KEM and hybrid KEMs from
// crypto/hpke, and for TBD9-TBD11 ML-DSA signatures) at private-use
// codepoints.
//
// Private keys given to this package are normalised only in one way: ECDSA
// and NIST-curve HPKE scalars shorter than the field size (encoders that drop
// leading zero bytes, e.g. 65-byte P-521 keys) are left-padded with zeros.
// Over-long keys and scalars out of range are rejected.
package suite

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/hpke"
	"errors"
	"fmt"

	circlhpke "github.com/cloudflare/circl/hpke"
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

// ErrUnsupported is wrapped by New's error for an id this package does not
// implement, so callers can tell an unknown suite from other failures.
var ErrUnsupported = errors.New("unsupported cipher suite")

// Suite bundles the hash, KDF, AEAD, HPKE and signature algorithms of one
// cipher suite. Obtain one from New; the zero Suite is not usable.
type Suite struct {
	id   ID
	name string
	kdf  *kdf
	aead *aead
	kem  kem
	sig  signer
	pq   bool // the KEM is ML-KEM or an ML-KEM hybrid (pq.go)
}

// table lists every supported suite. Entries are read-only descriptors and
// hold no keys.
var table = []Suite{
	{
		id: MLS128DHKEMX25519AES128GCMSHA256Ed25519, name: "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
		kdf: kdfSHA256, aead: aeadAES128GCM,
		kem: &stdKEM{kem: hpke.DHKEM(ecdh.X25519()), kdf: hpke.HKDFSHA256(), aead: hpke.AES128GCM(), name: "DHKEM(X25519, HKDF-SHA256)", xDerive: x25519Derive},
		sig: ed25519Signer{},
	},
	{
		id: MLS128DHKEMP256AES128GCMSHA256P256, name: "MLS_128_DHKEMP256_AES128GCM_SHA256_P256",
		kdf: kdfSHA256, aead: aeadAES128GCM,
		kem: &stdKEM{kem: hpke.DHKEM(ecdh.P256()), kdf: hpke.HKDFSHA256(), aead: hpke.AES128GCM(), name: "DHKEM(P-256, HKDF-SHA256)", scalarSize: 32},
		sig: &ecdsaSigner{name: "ecdsa_secp256r1_sha256", curve: elliptic.P256(), size: 32, hash: kdfSHA256},
	},
	{
		id: MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519, name: "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
		kdf: kdfSHA256, aead: aeadChaCha20,
		kem: &stdKEM{kem: hpke.DHKEM(ecdh.X25519()), kdf: hpke.HKDFSHA256(), aead: hpke.ChaCha20Poly1305(), name: "DHKEM(X25519, HKDF-SHA256)", xDerive: x25519Derive},
		sig: ed25519Signer{},
	},
	{
		id: MLS256DHKEMX448AES256GCMSHA512Ed448, name: "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448",
		kdf: kdfSHA512, aead: aeadAES256GCM,
		kem: newX448KEM(circlhpke.AEAD_AES256GCM),
		sig: ed448Signer{},
	},
	{
		id: MLS256DHKEMP521AES256GCMSHA512P521, name: "MLS_256_DHKEMP521_AES256GCM_SHA512_P521",
		kdf: kdfSHA512, aead: aeadAES256GCM,
		kem: &stdKEM{kem: hpke.DHKEM(ecdh.P521()), kdf: hpke.HKDFSHA512(), aead: hpke.AES256GCM(), name: "DHKEM(P-521, HKDF-SHA512)", scalarSize: 66},
		sig: &ecdsaSigner{name: "ecdsa_secp521r1_sha512", curve: elliptic.P521(), size: 66, hash: kdfSHA512},
	},
	{
		id: MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448, name: "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448",
		kdf: kdfSHA512, aead: aeadChaCha20,
		kem: newX448KEM(circlhpke.AEAD_ChaCha20Poly1305),
		sig: ed448Signer{},
	},
	{
		id: MLS256DHKEMP384AES256GCMSHA384P384, name: "MLS_256_DHKEMP384_AES256GCM_SHA384_P384",
		kdf: kdfSHA384, aead: aeadAES256GCM,
		kem: &stdKEM{kem: hpke.DHKEM(ecdh.P384()), kdf: hpke.HKDFSHA384(), aead: hpke.AES256GCM(), name: "DHKEM(P-384, HKDF-SHA384)", scalarSize: 48},
		sig: &ecdsaSigner{name: "ecdsa_secp384r1_sha384", curve: elliptic.P384(), size: 48, hash: kdfSHA384},
	},

	// Post-quantum suites of draft-ietf-mls-pq-ciphersuites-06 at
	// private-use codepoints; see pq.go for the codepoints, the KEMs and
	// their key formats. TBD1-TBD8 sign classically.
	{
		id: MLS128MLKEM768X25519AES128GCMSHA256Ed25519, name: "MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519",
		kdf: kdfSHA256, aead: aeadAES128GCM, pq: true,
		kem: pqKEM(hpke.MLKEM768X25519(), hpke.HKDFSHA256(), hpke.AES128GCM(), "MLKEM768-X25519"),
		sig: ed25519Signer{},
	},
	{
		id: MLS128MLKEM768X25519AES256GCMSHA384Ed25519, name: "MLS_128_MLKEM768X25519_AES256GCM_SHA384_Ed25519",
		kdf: kdfSHA384, aead: aeadAES256GCM, pq: true,
		kem: pqKEM(hpke.MLKEM768X25519(), hpke.HKDFSHA384(), hpke.AES256GCM(), "MLKEM768-X25519"),
		sig: ed25519Signer{},
	},
	{
		id: MLS128MLKEM768P256AES128GCMSHA256P256, name: "MLS_128_MLKEM768P256_AES128GCM_SHA256_P256",
		kdf: kdfSHA256, aead: aeadAES128GCM, pq: true,
		kem: pqKEM(hpke.MLKEM768P256(), hpke.HKDFSHA256(), hpke.AES128GCM(), "MLKEM768-P256"),
		sig: &ecdsaSigner{name: "ecdsa_secp256r1_sha256", curve: elliptic.P256(), size: 32, hash: kdfSHA256},
	},
	{
		id: MLS128MLKEM768P256AES256GCMSHA384P256, name: "MLS_128_MLKEM768P256_AES256GCM_SHA384_P256",
		kdf: kdfSHA384, aead: aeadAES256GCM, pq: true,
		kem: pqKEM(hpke.MLKEM768P256(), hpke.HKDFSHA384(), hpke.AES256GCM(), "MLKEM768-P256"),
		// ecdsa_secp256r1_sha256 hashes with SHA-256 whatever the suite's hash.
		sig: &ecdsaSigner{name: "ecdsa_secp256r1_sha256", curve: elliptic.P256(), size: 32, hash: kdfSHA256},
	},
	{
		id: MLS192MLKEM1024P384AES256GCMSHA384P384, name: "MLS_192_MLKEM1024P384_AES256GCM_SHA384_P384",
		kdf: kdfSHA384, aead: aeadAES256GCM, pq: true,
		kem: pqKEM(hpke.MLKEM1024P384(), hpke.HKDFSHA384(), hpke.AES256GCM(), "MLKEM1024-P384"),
		sig: &ecdsaSigner{name: "ecdsa_secp384r1_sha384", curve: elliptic.P384(), size: 48, hash: kdfSHA384},
	},
	{
		id: MLS128MLKEM768AES256GCMSHA384Ed25519, name: "MLS_128_MLKEM768_AES256GCM_SHA384_Ed25519",
		kdf: kdfSHA384, aead: aeadAES256GCM, pq: true,
		kem: pqKEM(hpke.MLKEM768(), hpke.HKDFSHA384(), hpke.AES256GCM(), "ML-KEM-768"),
		sig: ed25519Signer{},
	},
	{
		id: MLS128MLKEM768AES256GCMSHA384P256, name: "MLS_128_MLKEM768_AES256GCM_SHA384_P256",
		kdf: kdfSHA384, aead: aeadAES256GCM, pq: true,
		kem: pqKEM(hpke.MLKEM768(), hpke.HKDFSHA384(), hpke.AES256GCM(), "ML-KEM-768"),
		sig: &ecdsaSigner{name: "ecdsa_secp256r1_sha256", curve: elliptic.P256(), size: 32, hash: kdfSHA256},
	},
	{
		id: MLS192MLKEM1024AES256GCMSHA384P384, name: "MLS_192_MLKEM1024_AES256GCM_SHA384_P384",
		kdf: kdfSHA384, aead: aeadAES256GCM, pq: true,
		kem: pqKEM(hpke.MLKEM1024(), hpke.HKDFSHA384(), hpke.AES256GCM(), "ML-KEM-1024"),
		sig: &ecdsaSigner{name: "ecdsa_secp384r1_sha384", curve: elliptic.P384(), size: 48, hash: kdfSHA384},
	},

	// Fully post-quantum suites: ML-KEM or X-Wing with ML-DSA signatures
	// (mldsa.go).
	{
		id: MLS128MLKEM768X25519ChaCha20Poly1305SHA384MLDSA44, name: "MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA384_MLDSA44",
		kdf: kdfSHA384, aead: aeadChaCha20, pq: true,
		kem: pqKEM(hpke.MLKEM768X25519(), hpke.HKDFSHA384(), hpke.ChaCha20Poly1305(), "MLKEM768-X25519"),
		sig: mldsa44Signer,
	},
	{
		id: MLS192MLKEM768AES256GCMSHA384MLDSA65, name: "MLS_192_MLKEM768_AES256GCM_SHA384_MLDSA65",
		kdf: kdfSHA384, aead: aeadAES256GCM, pq: true,
		kem: pqKEM(hpke.MLKEM768(), hpke.HKDFSHA384(), hpke.AES256GCM(), "ML-KEM-768"),
		sig: mldsa65Signer,
	},
	{
		id: MLS256MLKEM1024AES256GCMSHA384MLDSA87, name: "MLS_256_MLKEM1024_AES256GCM_SHA384_MLDSA87",
		kdf: kdfSHA384, aead: aeadAES256GCM, pq: true,
		kem: pqKEM(hpke.MLKEM1024(), hpke.HKDFSHA384(), hpke.AES256GCM(), "ML-KEM-1024"),
		sig: mldsa87Signer,
	},
}

// New returns the Suite for id, or an error wrapping ErrUnsupported naming
// an unsupported id. Callers should create a Suite once and share it.
func New(id ID) (*Suite, error) {
	for i := range table {
		if table[i].id == id {
			s := table[i] // a copy, so that no caller can alter the table
			return &s, nil
		}
	}
	return nil, fmt.Errorf("suite: %w %#04x", ErrUnsupported, uint16(id))
}

// IDs returns every supported suite id in ascending order: the RFC 9420
// suites, then the post-quantum ones (PostQuantumIDs) at their private-use
// codepoints.
func IDs() []ID {
	ids := make([]ID, len(table))
	for i := range table {
		ids[i] = table[i].id
	}
	return ids
}

// ID returns the suite's identifier.
func (s *Suite) ID() ID { return s.id }

// String returns the suite's name as registered by RFC 9420 or, for the
// post-quantum suites, as requested by draft-ietf-mls-pq-ciphersuites.
func (s *Suite) String() string { return s.name }

// errorf formats an error naming the package, operation and suite.
func (s *Suite) errorf(op, format string, args ...any) error {
	return fmt.Errorf("suite: %s (%#04x): %s", op, uint16(s.id), fmt.Sprintf(format, args...))
}

// HashSize returns Nh, the output size of the suite's hash and KDF.
func (s *Suite) HashSize() int { return s.kdf.size }

// Hash returns the suite's hash of data.
func (s *Suite) Hash(data []byte) []byte { return s.kdf.sum(data) }

// Extract is KDF.Extract (HKDF-Extract) with the given salt and ikm. It
// returns Nh bytes; an empty salt means Nh zero bytes.
func (s *Suite) Extract(salt, ikm []byte) []byte { return s.kdf.extract(salt, ikm) }

// Expand is KDF.Expand (HKDF-Expand) of prk with info to length bytes. It
// fails if length is negative or above 255*Nh.
func (s *Suite) Expand(prk, info []byte, length int) ([]byte, error) {
	out, err := s.kdf.expand(prk, info, length)
	if err != nil {
		return nil, s.errorf("Expand", "%v", err)
	}
	return out, nil
}

// MAC returns the suite's HMAC of data under key (Nh bytes).
func (s *Suite) MAC(key, data []byte) []byte { return s.kdf.mac(key, data) }

// VerifyMAC reports, in constant time, whether tag is the MAC of data.
func (s *Suite) VerifyMAC(key, data, tag []byte) bool { return s.kdf.verifyMAC(key, data, tag) }

// AEADKeySize returns Nk, the AEAD key size.
func (s *Suite) AEADKeySize() int { return s.aead.keySize }

// AEADNonceSize returns Nn, the AEAD nonce size.
func (s *Suite) AEADNonceSize() int { return s.aead.nonceSize }

// AEAD returns the suite's AEAD keyed with key, for callers that seal or
// open many messages under one key. It fails unless len(key) is Nk. The
// returned cipher.AEAD panics on nonces that are not Nn bytes, as every
// cipher.AEAD does; Seal and Open check instead.
func (s *Suite) AEAD(key []byte) (cipher.AEAD, error) {
	a, err := s.aead.new(key)
	if err != nil {
		return nil, s.errorf("AEAD", "%v", err)
	}
	return a, nil
}

// Seal encrypts and authenticates plaintext with the suite's AEAD. key must
// be Nk and nonce Nn bytes. The result is a fresh slice: ciphertext || tag.
func (s *Suite) Seal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := s.aead.new(key)
	if err != nil {
		return nil, s.errorf("Seal", "%v", err)
	}
	if err := s.aead.checkNonce(nonce); err != nil {
		return nil, s.errorf("Seal", "%v", err)
	}
	return a.Seal(nil, nonce, plaintext, aad), nil
}

// Open decrypts and authenticates ciphertext with the suite's AEAD. It
// returns an error, and no plaintext, if authentication fails.
func (s *Suite) Open(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	return s.openTo(nil, key, nonce, aad, ciphertext)
}
