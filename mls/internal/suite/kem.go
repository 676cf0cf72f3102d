package suite

import (
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"

	circlhpke "github.com/cloudflare/circl/hpke"
	circlkem "github.com/cloudflare/circl/kem"
)

// kem is the HPKE piece of a cipher suite: a KEM together with the HPKE
// KDF and AEAD it is used with in base mode (RFC 9180 §5.1.1). Keys are
// serialized with SerializePrivateKey/SerializePublicKey (RFC 9180 §7.1).
type kem interface {
	// deriveKeyPair is RFC 9180 §7.1.3 DeriveKeyPair.
	deriveKeyPair(ikm []byte) (priv, pub []byte, err error)
	// publicKey returns the public key of a serialized private key.
	publicKey(priv []byte) ([]byte, error)
	// seal is SealBase(pub, info, aad="", plaintext).
	seal(pub, info, plaintext []byte) (enc, ct []byte, err error)
	// open is OpenBase(enc, priv, info, aad="", ct).
	open(priv, info, enc, ct []byte) ([]byte, error)
	// exportSender is SetupBaseS(pub, info) followed by
	// context.Export(exporterContext, length).
	exportSender(pub, info, exporterContext []byte, length int) (enc, secret []byte, err error)
	// exportRecipient is SetupBaseR(enc, priv, info) followed by
	// context.Export(exporterContext, length).
	exportRecipient(priv, info, enc, exporterContext []byte, length int) ([]byte, error)
}

// stdKEM is a KEM from crypto/hpke: DHKEM over X25519 and the NIST curves,
// and the ML-KEM and hybrid ML-KEM KEMs of draft-ietf-hpke-pq (pq.go), whose
// serialized private keys are seeds that round-trip through NewPrivateKey.
type stdKEM struct {
	name       string
	kem        hpke.KEM
	kdf        hpke.KDF
	aead       hpke.AEAD
	scalarSize int // NIST curves: field size in bytes for padding short scalars; 0 otherwise
	// xDerive, for X25519, derives private keys as RFC 9180 §7.1.3 does
	// and returns them unclamped, as the RFC 9180 test vectors and other
	// MLS implementations do; crypto/hpke would return them clamped.
	xDerive *xDeriver
}

// privateKey parses a serialized private key, left-padding short NIST
// scalars (see the package doc).
func (k *stdKEM) privateKey(priv []byte) (hpke.PrivateKey, error) {
	if k.scalarSize > 0 {
		var err error
		if priv, err = padScalar(priv, k.scalarSize); err != nil {
			return nil, fmt.Errorf("%s private key: %v", k.name, err)
		}
	}
	sk, err := k.kem.NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid %d-byte private key", k.name, len(priv))
	}
	return sk, nil
}

func (k *stdKEM) deriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	if k.xDerive != nil {
		priv, err := k.xDerive.derive(ikm)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", k.name, err)
		}
		pub, err := k.publicKey(priv)
		if err != nil {
			return nil, nil, err
		}
		return priv, pub, nil
	}
	sk, err := k.kem.DeriveKeyPair(ikm)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", k.name, err)
	}
	priv, err = sk.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", k.name, err)
	}
	return priv, sk.PublicKey().Bytes(), nil
}

func (k *stdKEM) publicKey(priv []byte) ([]byte, error) {
	sk, err := k.privateKey(priv)
	if err != nil {
		return nil, err
	}
	return sk.PublicKey().Bytes(), nil
}

func (k *stdKEM) seal(pub, info, plaintext []byte) (enc, ct []byte, err error) {
	pk, err := k.kem.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: invalid %d-byte public key", k.name, len(pub))
	}
	enc, sender, err := hpke.NewSender(pk, k.kdf, k.aead, info)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: encapsulation failed: %v", k.name, err)
	}
	ct, err = sender.Seal(nil, plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", k.name, err)
	}
	return enc, ct, nil
}

func (k *stdKEM) open(priv, info, enc, ct []byte) ([]byte, error) {
	sk, err := k.privateKey(priv)
	if err != nil {
		return nil, err
	}
	r, err := hpke.NewRecipient(enc, sk, k.kdf, k.aead, info)
	if err != nil {
		return nil, fmt.Errorf("%s: decapsulation of %d-byte kem_output failed", k.name, len(enc))
	}
	pt, err := r.Open(nil, ct)
	if err != nil {
		return nil, fmt.Errorf("%s: %d-byte ciphertext: authentication failed", k.name, len(ct))
	}
	return pt, nil
}

func (k *stdKEM) exportSender(pub, info, exporterContext []byte, length int) (enc, secret []byte, err error) {
	pk, err := k.kem.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: invalid %d-byte public key", k.name, len(pub))
	}
	enc, sender, err := hpke.NewSender(pk, k.kdf, k.aead, info)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: encapsulation failed: %v", k.name, err)
	}
	secret, err = sender.Export(string(exporterContext), length)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: export: %v", k.name, err)
	}
	return enc, secret, nil
}

func (k *stdKEM) exportRecipient(priv, info, enc, exporterContext []byte, length int) ([]byte, error) {
	sk, err := k.privateKey(priv)
	if err != nil {
		return nil, err
	}
	r, err := hpke.NewRecipient(enc, sk, k.kdf, k.aead, info)
	if err != nil {
		return nil, fmt.Errorf("%s: decapsulation of %d-byte kem_output failed", k.name, len(enc))
	}
	secret, err := r.Export(string(exporterContext), length)
	if err != nil {
		return nil, fmt.Errorf("%s: export: %v", k.name, err)
	}
	return secret, nil
}

// x448KEM is DHKEM(X448, HKDF-SHA512) from circl, whose HPKE implements the
// rest of base mode. DeriveKeyPair is implemented here because circl's
// accepts only 56-byte ikm while MLS feeds it Nh = 64 bytes.
type x448KEM struct {
	suite  circlhpke.Suite
	scheme circlkem.Scheme
}

const x448KeySize = 56

func newX448KEM(aead circlhpke.AEAD) *x448KEM {
	return &x448KEM{
		suite:  circlhpke.NewSuite(circlhpke.KEM_X448_HKDF_SHA512, circlhpke.KDF_HKDF_SHA512, aead),
		scheme: circlhpke.KEM_X448_HKDF_SHA512.Scheme(),
	}
}

const x448Name = "DHKEM(X448, HKDF-SHA512)"

func (k *x448KEM) deriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	priv, err = x448Derive.derive(ikm)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", x448Name, err)
	}
	pub, err = k.publicKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return priv, pub, nil
}

func (k *x448KEM) privateKey(priv []byte) (circlkem.PrivateKey, error) {
	if len(priv) != x448KeySize {
		return nil, fmt.Errorf("%s: private key is %d bytes, want %d", x448Name, len(priv), x448KeySize)
	}
	sk, err := k.scheme.UnmarshalBinaryPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%s: invalid private key: %v", x448Name, err)
	}
	return sk, nil
}

func (k *x448KEM) publicKey(priv []byte) ([]byte, error) {
	sk, err := k.privateKey(priv)
	if err != nil {
		return nil, err
	}
	pub, err := sk.Public().MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", x448Name, err)
	}
	return pub, nil
}

// setupSender encapsulates to pub: HPKE SetupBaseS(pub, info).
func (k *x448KEM) setupSender(pub, info []byte) (enc []byte, sealer circlhpke.Sealer, err error) {
	if len(pub) != x448KeySize {
		return nil, nil, fmt.Errorf("%s: public key is %d bytes, want %d", x448Name, len(pub), x448KeySize)
	}
	pk, err := k.scheme.UnmarshalBinaryPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: invalid public key: %v", x448Name, err)
	}
	sender, err := k.suite.NewSender(pk, info)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", x448Name, err)
	}
	enc, sealer, err = sender.Setup(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: encapsulation failed: %v", x448Name, err)
	}
	return enc, sealer, nil
}

func (k *x448KEM) seal(pub, info, plaintext []byte) (enc, ct []byte, err error) {
	enc, sealer, err := k.setupSender(pub, info)
	if err != nil {
		return nil, nil, err
	}
	ct, err = sealer.Seal(plaintext, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", x448Name, err)
	}
	return enc, ct, nil
}

func (k *x448KEM) open(priv, info, enc, ct []byte) ([]byte, error) {
	sk, err := k.privateKey(priv)
	if err != nil {
		return nil, err
	}
	if len(enc) != x448KeySize {
		return nil, fmt.Errorf("%s: kem_output is %d bytes, want %d", x448Name, len(enc), x448KeySize)
	}
	recv, err := k.suite.NewReceiver(sk, info)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", x448Name, err)
	}
	opener, err := recv.Setup(enc)
	if err != nil {
		return nil, fmt.Errorf("%s: decapsulation failed: %v", x448Name, err)
	}
	pt, err := opener.Open(ct, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %d-byte ciphertext: authentication failed", x448Name, len(ct))
	}
	return pt, nil
}

func (k *x448KEM) exportSender(pub, info, exporterContext []byte, length int) (enc, secret []byte, err error) {
	if length < 0 || length > 0xFFFF {
		return nil, nil, fmt.Errorf("%s: export length %d, want 0 to 65535", x448Name, length)
	}
	enc, sealer, err := k.setupSender(pub, info)
	if err != nil {
		return nil, nil, err
	}
	return enc, sealer.Export(exporterContext, uint(length)), nil
}

func (k *x448KEM) exportRecipient(priv, info, enc, exporterContext []byte, length int) ([]byte, error) {
	sk, err := k.privateKey(priv)
	if err != nil {
		return nil, err
	}
	if len(enc) != x448KeySize || length < 0 || length > 0xFFFF {
		return nil, fmt.Errorf("%s: invalid kem_output or export length", x448Name)
	}
	recv, err := k.suite.NewReceiver(sk, info)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", x448Name, err)
	}
	opener, err := recv.Setup(enc)
	if err != nil {
		return nil, fmt.Errorf("%s: decapsulation failed: %v", x448Name, err)
	}
	return opener.Export(exporterContext, uint(length)), nil
}

var errScalarLength = errors.New("scalar length")

// padScalar returns priv left-padded with zeros to size bytes. It rejects
// empty and over-long input; range checks are left to the curve.
func padScalar(priv []byte, size int) ([]byte, error) {
	switch {
	case len(priv) == size:
		return priv, nil
	case len(priv) == 0 || len(priv) > size:
		return nil, fmt.Errorf("%w: %d bytes, want 1..%d", errScalarLength, len(priv), size)
	}
	out := make([]byte, size)
	copy(out[size-len(priv):], priv)
	return out, nil
}

// xDeriver is RFC 9180 §7.1.3 DeriveKeyPair for the Montgomery-curve
// DHKEMs, whose private keys are any Nsk bytes:
//
//	dkp_prk = LabeledExtract("", "dkp_prk", ikm)
//	sk = LabeledExpand(dkp_prk, "sk", "", Nsk)
//
// with suite_id = "KEM" || I2OSP(kem_id, 2) (RFC 9180 §4.1, §4).
type xDeriver struct {
	kdf     *kdf
	suiteID [5]byte
	nsk     int
}

const hpkeVersion = "HPKE-v1"

var (
	x25519Derive = &xDeriver{kdf: kdfSHA256, suiteID: [5]byte{'K', 'E', 'M', 0x00, 0x20}, nsk: 32}
	x448Derive   = &xDeriver{kdf: kdfSHA512, suiteID: [5]byte{'K', 'E', 'M', 0x00, 0x21}, nsk: x448KeySize}
)

func (x *xDeriver) derive(ikm []byte) ([]byte, error) {
	prk := x.kdf.extractParts(nil, []byte(hpkeVersion), x.suiteID[:], []byte("dkp_prk"), ikm)
	// labeled_info = I2OSP(L, 2) || "HPKE-v1" || suite_id || "sk" || "",
	// plus one spare byte for the HKDF block counter.
	info := make([]byte, 0, 2+len(hpkeVersion)+len(x.suiteID)+2+1)
	info = append(info, byte(x.nsk>>8), byte(x.nsk))
	info = append(info, hpkeVersion...)
	info = append(info, x.suiteID[:]...)
	info = append(info, "sk"...)
	return x.kdf.expandCounter(prk, info[:len(info)+1], x.nsk)
}
