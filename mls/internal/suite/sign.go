package suite

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/sign/ed448"
)

// signer is the signature piece of a cipher suite (RFC 9420 §5.1.2). It
// signs and verifies whole messages; SignContent is built by the caller.
type signer interface {
	generate() (priv, pub []byte, err error)
	publicKey(priv []byte) ([]byte, error)
	sign(priv, msg []byte) ([]byte, error)
	// verify returns nil only for a valid signature.
	verify(pub, msg, sig []byte) error
}

var errBadSignature = errors.New("signature invalid")

// ed25519Signer is Ed25519 (RFC 8032, pure); private keys are 32-byte seeds.
type ed25519Signer struct{}

func (ed25519Signer) generate() (priv, pub []byte, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ed25519: %v", err)
	}
	return sk.Seed(), pk, nil
}

func (ed25519Signer) key(priv []byte) (ed25519.PrivateKey, error) {
	if len(priv) != ed25519.SeedSize {
		return nil, fmt.Errorf("ed25519: private key is %d bytes, want %d", len(priv), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(priv), nil
}

func (e ed25519Signer) publicKey(priv []byte) ([]byte, error) {
	sk, err := e.key(priv)
	if err != nil {
		return nil, err
	}
	return sk[ed25519.SeedSize:], nil
}

func (e ed25519Signer) sign(priv, msg []byte) ([]byte, error) {
	sk, err := e.key(priv)
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(sk, msg), nil
}

func (ed25519Signer) verify(pub, msg, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("ed25519: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("ed25519: signature is %d bytes, want %d", len(sig), ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("ed25519: %w", errBadSignature)
	}
	return nil
}

// ed448Signer is Ed448 (RFC 8032, pure, empty context) from circl; private
// keys are 57-byte seeds.
type ed448Signer struct{}

func (ed448Signer) generate() (priv, pub []byte, err error) {
	pk, sk, err := ed448.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ed448: %v", err)
	}
	return sk.Seed(), pk, nil
}

func (ed448Signer) key(priv []byte) (ed448.PrivateKey, error) {
	if len(priv) != ed448.SeedSize {
		return nil, fmt.Errorf("ed448: private key is %d bytes, want %d", len(priv), ed448.SeedSize)
	}
	return ed448.NewKeyFromSeed(priv), nil
}

func (e ed448Signer) publicKey(priv []byte) ([]byte, error) {
	sk, err := e.key(priv)
	if err != nil {
		return nil, err
	}
	return sk[ed448.SeedSize:], nil
}

func (e ed448Signer) sign(priv, msg []byte) ([]byte, error) {
	sk, err := e.key(priv)
	if err != nil {
		return nil, err
	}
	return ed448.Sign(sk, msg, ""), nil
}

func (ed448Signer) verify(pub, msg, sig []byte) error {
	if len(pub) != ed448.PublicKeySize {
		return fmt.Errorf("ed448: public key is %d bytes, want %d", len(pub), ed448.PublicKeySize)
	}
	if len(sig) != ed448.SignatureSize {
		return fmt.Errorf("ed448: signature is %d bytes, want %d", len(sig), ed448.SignatureSize)
	}
	if !ed448.Verify(pub, msg, sig, "") {
		return fmt.Errorf("ed448: %w", errBadSignature)
	}
	return nil
}

// ecdsaSigner is ECDSA over a NIST curve with the suite's hash; signatures
// are ASN.1 DER (RFC 8446 §4.2.3), public keys uncompressed points, private
// keys big-endian scalars of size bytes.
type ecdsaSigner struct {
	name  string
	curve elliptic.Curve
	size  int
	hash  *kdf
}

func (e *ecdsaSigner) generate() (priv, pub []byte, err error) {
	sk, err := ecdsa.GenerateKey(e.curve, rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", e.name, err)
	}
	if priv, err = sk.Bytes(); err != nil {
		return nil, nil, fmt.Errorf("%s: %v", e.name, err)
	}
	if pub, err = sk.PublicKey.Bytes(); err != nil {
		return nil, nil, fmt.Errorf("%s: %v", e.name, err)
	}
	return priv, pub, nil
}

func (e *ecdsaSigner) key(priv []byte) (*ecdsa.PrivateKey, error) {
	priv, err := padScalar(priv, e.size)
	if err != nil {
		return nil, fmt.Errorf("%s private key: %v", e.name, err)
	}
	sk, err := ecdsa.ParseRawPrivateKey(e.curve, priv)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid private key: %v", e.name, err)
	}
	return sk, nil
}

func (e *ecdsaSigner) publicKey(priv []byte) ([]byte, error) {
	sk, err := e.key(priv)
	if err != nil {
		return nil, err
	}
	pub, err := sk.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", e.name, err)
	}
	return pub, nil
}

func (e *ecdsaSigner) sign(priv, msg []byte) ([]byte, error) {
	sk, err := e.key(priv)
	if err != nil {
		return nil, err
	}
	sig, err := ecdsa.SignASN1(rand.Reader, sk, e.hash.sum(msg))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", e.name, err)
	}
	return sig, nil
}

func (e *ecdsaSigner) verify(pub, msg, sig []byte) error {
	pk, err := ecdsa.ParseUncompressedPublicKey(e.curve, pub)
	if err != nil {
		return fmt.Errorf("%s: invalid %d-byte public key", e.name, len(pub))
	}
	if !ecdsa.VerifyASN1(pk, e.hash.sum(msg), sig) {
		return fmt.Errorf("%s: %w", e.name, errBadSignature)
	}
	return nil
}
