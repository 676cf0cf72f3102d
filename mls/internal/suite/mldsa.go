package suite

import (
	"crypto/rand"
	"fmt"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
)

// ML-DSA signatures (FIPS 204) for the fully post-quantum suites TBD9-TBD11
// of draft-ietf-mls-pq-ciphersuites, which names the TLS signature schemes
// mldsa44, mldsa65 and mldsa87 of draft-ietf-tls-mldsa. The implementation
// is circl's.
//
// What the drafts fix, and what this file decides where they are silent:
//
//   - Pure ML-DSA (FIPS 204 Algorithms 2 and 3), not HashML-DSA, with the
//     context string ctx empty, as draft-ietf-tls-mldsa requires. The
//     message is SignContent (RFC 9420 §5.1.2), whose label already
//     separates MLS signatures from other uses of the key.
//   - Signing is hedged: FIPS 204's default, with 32 fresh bytes of
//     crypto/rand as rnd. draft-ietf-tls-mldsa defers this choice to FIPS
//     204 §3.4, which recommends hedging against fault and side-channel
//     attacks. Verification is the same for hedged and deterministic
//     signatures, so peers that sign deterministically interoperate. Unlike
//     Ed25519, two signatures of the same content therefore differ.
//   - Public keys and signatures are FIPS 204's pkEncode and sigEncode
//     (1312/1952/2592 and 2420/3309/4627 bytes); both are checked for their
//     exact length before use.
//   - Private keys are the 32-byte seed ξ of ML-DSA.KeyGen (FIPS 204
//     Algorithm 6), the "seed" form of RFC 9881, not the expanded
//     2560/4032/4896-byte skEncode: like the Ed25519 and Ed448 seeds of
//     this package, it is small and every key derived from it is valid.
//     MLS itself never transmits signature private keys; the format only
//     matters to storage and test vectors. The public key is
//     ML-DSA.KeyGen_internal(ξ), so it is a deterministic function of the
//     seed.
//
// Every operation expands the seed into the full private key (matrix A,
// s1, s2, t0), which is part of the cost of each signature
// (docs/performance.md); nothing secret is cached.

const mldsaSeedSize = 32 // ξ of FIPS 204 Algorithm 6

// mldsaSigner is one ML-DSA parameter set. Its fields are set only by the
// three variables below.
type mldsaSigner struct {
	name   string      // draft-ietf-tls-mldsa SignatureScheme name: mldsa44, mldsa65, mldsa87
	scheme sign.Scheme // key derivation, public key parsing and verification
	// signTo is the parameter set's hedged ML-DSA.Sign with an empty
	// context, writing scheme.SignatureSize() bytes into sig. sk comes
	// from scheme.DeriveKey.
	signTo func(sk sign.PrivateKey, msg, sig []byte) error
}

var (
	mldsa44Signer = &mldsaSigner{name: "mldsa44", scheme: mldsa44.Scheme(),
		signTo: func(sk sign.PrivateKey, msg, sig []byte) error {
			k, ok := sk.(*mldsa44.PrivateKey)
			if !ok {
				return fmt.Errorf("private key is %T", sk)
			}
			return mldsa44.SignTo(k, msg, nil, true, sig)
		}}
	mldsa65Signer = &mldsaSigner{name: "mldsa65", scheme: mldsa65.Scheme(),
		signTo: func(sk sign.PrivateKey, msg, sig []byte) error {
			k, ok := sk.(*mldsa65.PrivateKey)
			if !ok {
				return fmt.Errorf("private key is %T", sk)
			}
			return mldsa65.SignTo(k, msg, nil, true, sig)
		}}
	mldsa87Signer = &mldsaSigner{name: "mldsa87", scheme: mldsa87.Scheme(),
		signTo: func(sk sign.PrivateKey, msg, sig []byte) error {
			k, ok := sk.(*mldsa87.PrivateKey)
			if !ok {
				return fmt.Errorf("private key is %T", sk)
			}
			return mldsa87.SignTo(k, msg, nil, true, sig)
		}}
)

func (m *mldsaSigner) generate() (priv, pub []byte, err error) {
	seed := make([]byte, mldsaSeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, nil, fmt.Errorf("%s: %v", m.name, err)
	}
	pub, err = m.publicKey(seed)
	if err != nil {
		return nil, nil, err
	}
	return seed, pub, nil
}

// key expands a seed into the key pair, rejecting seeds of the wrong length
// (scheme.DeriveKey would panic on them).
func (m *mldsaSigner) key(priv []byte) (sign.PublicKey, sign.PrivateKey, error) {
	if len(priv) != mldsaSeedSize {
		return nil, nil, fmt.Errorf("%s: private key is %d bytes, want the %d-byte seed", m.name, len(priv), mldsaSeedSize)
	}
	pk, sk := m.scheme.DeriveKey(priv)
	return pk, sk, nil
}

func (m *mldsaSigner) publicKey(priv []byte) ([]byte, error) {
	pk, _, err := m.key(priv)
	if err != nil {
		return nil, err
	}
	pub, err := pk.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", m.name, err)
	}
	return pub, nil
}

func (m *mldsaSigner) sign(priv, msg []byte) ([]byte, error) {
	_, sk, err := m.key(priv)
	if err != nil {
		return nil, err
	}
	sig := make([]byte, m.scheme.SignatureSize())
	if err := m.signTo(sk, msg, sig); err != nil {
		return nil, fmt.Errorf("%s: %v", m.name, err)
	}
	return sig, nil
}

func (m *mldsaSigner) verify(pub, msg, sig []byte) error {
	if len(pub) != m.scheme.PublicKeySize() {
		return fmt.Errorf("%s: public key is %d bytes, want %d", m.name, len(pub), m.scheme.PublicKeySize())
	}
	if len(sig) != m.scheme.SignatureSize() {
		return fmt.Errorf("%s: signature is %d bytes, want %d", m.name, len(sig), m.scheme.SignatureSize())
	}
	pk, err := m.scheme.UnmarshalBinaryPublicKey(pub)
	if err != nil {
		return fmt.Errorf("%s: invalid %d-byte public key", m.name, len(pub))
	}
	// A nil SignatureOpts is the empty context string.
	if !m.scheme.Verify(pk, msg, sig, nil) {
		return fmt.Errorf("%s: %w", m.name, errBadSignature)
	}
	return nil
}
