package suite

import (
	"crypto/rand"
	"encoding/binary"
)

// ExpandWithLabel is RFC 9420 §5.1.2 (key schedule, §8) ExpandWithLabel:
// KDF.Expand(secret, KDFLabel{length, "MLS 1.0 " + label, context}, length).
// length must be in 0..min(65535, 255*Nh).
func (s *Suite) ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > 0xffff {
		return nil, s.errorf("ExpandWithLabel", "label %q: length %d does not fit KDFLabel.length (uint16)", label, length)
	}
	n, err := labeledLen(labelPrefix, label, context)
	if err != nil {
		return nil, s.errorf("ExpandWithLabel", "label %q: %v", label, err)
	}
	// KDFLabel, then one spare byte for the HKDF block counter.
	info := make([]byte, 2, 2+n+1)
	binary.BigEndian.PutUint16(info, uint16(length))
	info = appendLabeled(info, labelPrefix, label, context)
	out, err := s.kdf.expandCounter(secret, info[:len(info)+1], length)
	if err != nil {
		return nil, s.errorf("ExpandWithLabel", "label %q: %v", label, err)
	}
	return out, nil
}

// AppendHash appends the suite's hash of data to dst and returns the
// extended slice: Hash without an allocation when dst has room.
func (s *Suite) AppendHash(dst, data []byte) []byte { return s.kdf.appendSum(dst, data) }

// DeriveSecret is RFC 9420 §5.1.2 DeriveSecret: ExpandWithLabel(secret,
// label, "", Nh).
func (s *Suite) DeriveSecret(secret []byte, label string) ([]byte, error) {
	return s.ExpandWithLabel(secret, label, nil, s.kdf.size)
}

// DeriveTreeSecret is RFC 9420 §9.1 DeriveTreeSecret: ExpandWithLabel with
// the generation as a uint32 context.
func (s *Suite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error) {
	var ctx [4]byte
	binary.BigEndian.PutUint32(ctx[:], generation)
	return s.ExpandWithLabel(secret, label, ctx[:], length)
}

// RefHash is RFC 9420 §5.2 RefHash(label, value): the hash of RefHashInput
// {label, value}. label is used as given (callers pass the full
// "MLS 1.0 ... Reference" string). It returns nil only if label or value is
// longer than 2^30-1 bytes, which no MLS structure can be.
func (s *Suite) RefHash(label string, value []byte) []byte {
	if _, err := labeledLen("", label, value); err != nil {
		return nil
	}
	var hdr [4]byte
	h := s.kdf.newHash()
	h.Write(appendVarint(hdr[:0], len(label)))
	h.Write([]byte(label))
	h.Write(appendVarint(hdr[:0], len(value)))
	h.Write(value)
	return h.Sum(make([]byte, 0, s.kdf.size))
}

// DeriveKeyPair is the HPKE KEM's DeriveKeyPair(ikm) (RFC 9180 §7.1.3): it
// returns the serialized private and public keys. It is deterministic. For
// X25519 and X448 the private key is the derived sk as RFC 9180's own test
// vectors show it (not clamped); both forms deserialize to the same key.
// For the post-quantum suites it is draft-ietf-hpke-pq's DeriveKeyPair and
// the private key is the KEM's seed (32 bytes for the hybrids, 64 for
// ML-KEM; see pq.go).
func (s *Suite) DeriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	priv, pub, err = s.kem.deriveKeyPair(ikm)
	if err != nil {
		return nil, nil, s.errorf("DeriveKeyPair", "%d-byte ikm: %v", len(ikm), err)
	}
	return priv, pub, nil
}

// GenerateHPKEKey returns a fresh HPKE key pair (serialized private and
// public key), derived with DeriveKeyPair from Nh bytes of crypto/rand.
func (s *Suite) GenerateHPKEKey() (priv, pub []byte, err error) {
	ikm := make([]byte, s.kdf.size)
	if _, err := rand.Read(ikm); err != nil {
		return nil, nil, s.errorf("GenerateHPKEKey", "%v", err)
	}
	return s.DeriveKeyPair(ikm)
}

// HPKEPublicKey returns the serialized public key of a serialized HPKE
// private key.
func (s *Suite) HPKEPublicKey(priv []byte) ([]byte, error) {
	pub, err := s.kem.publicKey(priv)
	if err != nil {
		return nil, s.errorf("HPKEPublicKey", "%v", err)
	}
	return pub, nil
}

// EncryptWithLabel is RFC 9420 §5.1.3 EncryptWithLabel: HPKE base-mode
// SealBase to pub with info EncryptContext{label, context}. Randomness comes
// from crypto/rand.
func (s *Suite) EncryptWithLabel(pub []byte, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	info, err := labeled(labelPrefix, label, context, 0)
	if err != nil {
		return nil, nil, s.errorf("EncryptWithLabel", "label %q: %v", label, err)
	}
	kemOutput, ciphertext, err = s.kem.seal(pub, info, plaintext)
	if err != nil {
		return nil, nil, s.errorf("EncryptWithLabel", "label %q: %v", label, err)
	}
	return kemOutput, ciphertext, nil
}

// DecryptWithLabel is RFC 9420 §5.1.3 DecryptWithLabel: HPKE base-mode
// OpenBase. It returns an error, and no plaintext, for a malformed key or
// KEM output or a ciphertext that does not authenticate.
func (s *Suite) DecryptWithLabel(priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	info, err := labeled(labelPrefix, label, context, 0)
	return s.decryptLabeled(priv, label, info, err, kemOutput, ciphertext)
}

// decryptLabeled opens an HPKE ciphertext under the EncryptContext info
// built for label, or reports infoErr, the error of building it.
func (s *Suite) decryptLabeled(priv []byte, label string, info []byte, infoErr error, kemOutput, ciphertext []byte) ([]byte, error) {
	if infoErr != nil {
		return nil, s.errorf("DecryptWithLabel", "label %q: %v", label, infoErr)
	}
	pt, err := s.kem.open(priv, info, kemOutput, ciphertext)
	if err != nil {
		return nil, s.errorf("DecryptWithLabel", "label %q: %v", label, err)
	}
	return pt, nil
}

// DecryptWithLabelHeadroom is DecryptWithLabel with context buf[off:],
// where the off bytes before it (at least LabelHeadroom(label)) are
// scratch space for the EncryptContext header, so that a large context (a
// Welcome's encrypted_group_info) is not copied. It overwrites the end of
// buf[:off] and leaves buf[off:] unchanged.
func (s *Suite) DecryptWithLabelHeadroom(priv []byte, label string, buf []byte, off int, kemOutput, ciphertext []byte) ([]byte, error) {
	info, err := labeledAt(labelPrefix, label, buf, off)
	return s.decryptLabeled(priv, label, info, err, kemOutput, ciphertext)
}

// OpenInPlace is Open decrypting ciphertext into its own storage: it
// returns the plaintext as a prefix of ciphertext. On failure the contents
// of ciphertext are unspecified (AES-GCM clears them).
func (s *Suite) OpenInPlace(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	return s.openTo(ciphertext[:0], key, nonce, aad, ciphertext)
}

// openTo is Open appending the plaintext to dst.
func (s *Suite) openTo(dst, key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := s.aead.new(key)
	if err != nil {
		return nil, s.errorf("Open", "%v", err)
	}
	if err := s.aead.checkNonce(nonce); err != nil {
		return nil, s.errorf("Open", "%v", err)
	}
	pt, err := a.Open(dst, nonce, ciphertext, aad)
	if err != nil {
		return nil, s.errorf("Open", "%d-byte ciphertext: authentication failed", len(ciphertext))
	}
	return pt, nil
}

// ExportSender is HPKE base-mode SetupBaseS(pub, info) followed by
// context.Export(exporterContext, length) (RFC 9180 §5.3), as an external
// joiner derives init_secret (RFC 9420 §8.3: info "", exporter context
// "MLS 1.0 external init secret", length Nh). It returns the KEM output and
// the exported secret, which is secret and owned by the caller.
func (s *Suite) ExportSender(pub, info, exporterContext []byte, length int) (kemOutput, secret []byte, err error) {
	kemOutput, secret, err = s.kem.exportSender(pub, info, exporterContext, length)
	if err != nil {
		return nil, nil, s.errorf("ExportSender", "%v", err)
	}
	return kemOutput, secret, nil
}

// ExportRecipient is HPKE base-mode SetupBaseR(kemOutput, priv, info)
// followed by context.Export(exporterContext, length) (RFC 9180 §5.3), the
// receiving side of ExportSender. It fails for a malformed key or KEM output.
func (s *Suite) ExportRecipient(priv, info, kemOutput, exporterContext []byte, length int) ([]byte, error) {
	secret, err := s.kem.exportRecipient(priv, info, kemOutput, exporterContext, length)
	if err != nil {
		return nil, s.errorf("ExportRecipient", "%v", err)
	}
	return secret, nil
}

// GenerateSignatureKey returns a fresh signature key pair from crypto/rand.
func (s *Suite) GenerateSignatureKey() (priv, pub []byte, err error) {
	priv, pub, err = s.sig.generate()
	if err != nil {
		return nil, nil, s.errorf("GenerateSignatureKey", "%v", err)
	}
	return priv, pub, nil
}

// SignaturePublicKey returns the public key of a signature private key.
func (s *Suite) SignaturePublicKey(priv []byte) ([]byte, error) {
	pub, err := s.sig.publicKey(priv)
	if err != nil {
		return nil, s.errorf("SignaturePublicKey", "%v", err)
	}
	return pub, nil
}

// signContent encodes SignContent{"MLS 1.0 " + label, content}.
func signContent(label string, content []byte) ([]byte, error) {
	return labeled(labelPrefix, label, content, 0)
}

// SignWithLabel is RFC 9420 §5.1.2 SignWithLabel over SignContent{label,
// content}. ECDSA signatures are DER-encoded and randomized; EdDSA ones are
// deterministic; ML-DSA ones are hedged (randomized, see mldsa.go).
func (s *Suite) SignWithLabel(priv []byte, label string, content []byte) ([]byte, error) {
	msg, err := signContent(label, content)
	if err != nil {
		return nil, s.errorf("SignWithLabel", "label %q: %v", label, err)
	}
	sig, err := s.sig.sign(priv, msg)
	if err != nil {
		return nil, s.errorf("SignWithLabel", "label %q: %v", label, err)
	}
	return sig, nil
}

// VerifyWithLabel is RFC 9420 §5.1.2 VerifyWithLabel; it returns nil only
// for a valid signature. Malformed keys and signatures yield an error.
func (s *Suite) VerifyWithLabel(pub []byte, label string, content, signature []byte) error {
	msg, err := signContent(label, content)
	if err != nil {
		return s.errorf("VerifyWithLabel", "label %q: %v", label, err)
	}
	if err := s.sig.verify(pub, msg, signature); err != nil {
		return s.errorf("VerifyWithLabel", "label %q: %v", label, err)
	}
	return nil
}

// VerifyWithLabelHeadroom is VerifyWithLabel with content buf[off:], where
// the off bytes before it (at least LabelHeadroom(label)) are scratch space
// for the SignContent header, so that the content is not copied. It
// overwrites the end of buf[:off] and leaves buf[off:] unchanged.
func (s *Suite) VerifyWithLabelHeadroom(pub []byte, label string, buf []byte, off int, signature []byte) error {
	msg, err := labeledAt(labelPrefix, label, buf, off)
	if err != nil {
		return s.errorf("VerifyWithLabel", "label %q: %v", label, err)
	}
	if err := s.sig.verify(pub, msg, signature); err != nil {
		return s.errorf("VerifyWithLabel", "label %q: %v", label, err)
	}
	return nil
}
