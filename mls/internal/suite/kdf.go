package suite

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
)

// kdf is the hash/KDF piece of a cipher suite: a hash function, HMAC over it
// and HKDF (RFC 5869) over that HMAC. The three SHA-2 instances are the only
// values; they are built by the table in suite.go.
type kdf struct {
	name    string
	size    int // Nh: digest size and HKDF-Extract output size
	newHash func() hash.Hash
	sum     func(data []byte) []byte
	// appendSum appends the hash of data to dst.
	appendSum func(dst, data []byte) []byte
}

var (
	kdfSHA256 = &kdf{name: "SHA256", size: sha256.Size, newHash: sha256.New,
		sum:       func(d []byte) []byte { h := sha256.Sum256(d); return h[:] },
		appendSum: func(dst, d []byte) []byte { h := sha256.Sum256(d); return append(dst, h[:]...) }}
	kdfSHA384 = &kdf{name: "SHA384", size: sha512.Size384, newHash: sha512.New384,
		sum:       func(d []byte) []byte { h := sha512.Sum384(d); return h[:] },
		appendSum: func(dst, d []byte) []byte { h := sha512.Sum384(d); return append(dst, h[:]...) }}
	kdfSHA512 = &kdf{name: "SHA512", size: sha512.Size, newHash: sha512.New,
		sum:       func(d []byte) []byte { h := sha512.Sum512(d); return h[:] },
		appendSum: func(dst, d []byte) []byte { h := sha512.Sum512(d); return append(dst, h[:]...) }}
)

// mac returns HMAC(key, data).
func (k *kdf) mac(key, data []byte) []byte {
	m := hmac.New(k.newHash, key)
	m.Write(data)
	return m.Sum(make([]byte, 0, k.size))
}

// verifyMAC reports in constant time whether tag is HMAC(key, data).
func (k *kdf) verifyMAC(key, data, tag []byte) bool {
	want := k.mac(key, data)
	return subtle.ConstantTimeCompare(want, tag) == 1
}

// extract is HKDF-Extract(salt, ikm). An empty salt is the all-zero string of
// Nh bytes, which HMAC treats identically.
func (k *kdf) extract(salt, ikm []byte) []byte {
	return k.mac(salt, ikm)
}

// extractParts is HKDF-Extract(salt, parts[0] || parts[1] || ...) without
// concatenating the parts first.
func (k *kdf) extractParts(salt []byte, parts ...[]byte) []byte {
	m := hmac.New(k.newHash, salt)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(make([]byte, 0, k.size))
}

var errExpandLength = errors.New("length out of range")

// expandCounter is HKDF-Expand(prk, info, length) where infoCtr holds info
// followed by one spare byte, which expandCounter overwrites with the block
// counter so that each HMAC block is fed with two writes.
func (k *kdf) expandCounter(prk, infoCtr []byte, length int) ([]byte, error) {
	if length < 0 || length > 255*k.size {
		return nil, fmt.Errorf("%w: %d bytes, HKDF-%s allows 0..%d", errExpandLength, length, k.name, 255*k.size)
	}
	blocks := (length + k.size - 1) / k.size
	out := make([]byte, 0, blocks*k.size)
	m := hmac.New(k.newHash, prk)
	last := len(infoCtr) - 1
	var prev []byte
	for i := 1; i <= blocks; i++ {
		if i > 1 {
			m.Reset()
			m.Write(prev)
		}
		infoCtr[last] = byte(i)
		m.Write(infoCtr)
		n := len(out)
		out = m.Sum(out)
		prev = out[n:]
	}
	return out[:length:length], nil
}

// expand is HKDF-Expand(prk, info, length).
func (k *kdf) expand(prk, info []byte, length int) ([]byte, error) {
	infoCtr := make([]byte, len(info)+1)
	copy(infoCtr, info)
	return k.expandCounter(prk, infoCtr, length)
}
