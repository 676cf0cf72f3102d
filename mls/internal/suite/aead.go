package suite

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// aead is the AEAD piece of a cipher suite (RFC 5116 algorithms with the
// sizes RFC 9180 §7.3 lists).
type aead struct {
	name      string
	keySize   int // Nk
	nonceSize int // Nn
	newAEAD   func(key []byte) (cipher.AEAD, error)
}

func newAESGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

var (
	aeadAES128GCM = &aead{name: "AES128GCM", keySize: 16, nonceSize: 12, newAEAD: newAESGCM}
	aeadAES256GCM = &aead{name: "AES256GCM", keySize: 32, nonceSize: 12, newAEAD: newAESGCM}
	aeadChaCha20  = &aead{name: "CHACHA20POLY1305", keySize: chacha20poly1305.KeySize,
		nonceSize: chacha20poly1305.NonceSize, newAEAD: chacha20poly1305.New}
)

// new returns the AEAD keyed with key, rejecting keys of the wrong size
// (AES would otherwise silently accept a key of another AES variant).
func (a *aead) new(key []byte) (cipher.AEAD, error) {
	if len(key) != a.keySize {
		return nil, fmt.Errorf("%s key is %d bytes, want %d", a.name, len(key), a.keySize)
	}
	return a.newAEAD(key)
}

// checkNonce rejects nonces cipher.AEAD would panic on.
func (a *aead) checkNonce(nonce []byte) error {
	if len(nonce) != a.nonceSize {
		return fmt.Errorf("%s nonce is %d bytes, want %d", a.name, len(nonce), a.nonceSize)
	}
	return nil
}
