package client

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/parley-chat/parley/protocol"
)

// The linking channel (docs/protocol.md, "Linking a device"): an
// end-to-end encrypted, mutually authenticated channel between the device
// being linked (the new device) and a device of the account (the existing
// device), carried by a mailbox at the server. The link code gives the
// existing device the mailbox id and a secret of linkSecretBytes that the
// server never sees. Both devices exchange ephemeral X25519 keys through
// the mailbox, and derive every key with HKDF from the X25519 shared
// secret, salted with the code's secret, bound to the transcript (the
// mailbox id and both public keys). Each side proves it derived the same
// keys with an HMAC of the transcript before it sends anything else, so a
// server that substitutes either public key fails the check: it would
// need the secret, and 80 random bits cannot be guessed within a
// mailbox's life, which is why no PAKE is needed.

// linkSecretBytes is the size of the code's secret: 80 bits.
const linkSecretBytes = 10

// linkLabel prefixes every derivation of the channel.
const linkLabel = "parley link v1"

// linkQRPrefix starts the QR payload of a link code.
const linkQRPrefix = "parley-link:1:"

var linkCodeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrLinkTampered means that the linking channel's key confirmation
// failed: the other side does not hold the code's secret, or the server
// substituted a key. Nothing was certified.
var ErrLinkTampered = errors.New("the linking channel failed its check: the code is wrong, or the server tampered with the exchange; nothing was linked")

// linkCode is what the new device shows: the mailbox id and the secret,
// and in the QR code also its ephemeral public key.
type linkCode struct {
	id     string
	secret []byte
	key    []byte // optional: the new device's ephemeral public key (QR)
}

// String formats the typed code: the id and the secret in base32 (24
// characters) in groups of four.
func (lc linkCode) String() string {
	raw := lc.id + linkCodeEncoding.EncodeToString(lc.secret)
	var b strings.Builder
	for i := 0; i < len(raw); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(raw[i:min(i+4, len(raw))])
	}
	return b.String()
}

// qrPayload is the content of the QR code: the code and the key.
func (lc linkCode) qrPayload() string {
	return linkQRPrefix + strings.ReplaceAll(lc.String(), "-", "") + ":" + base64.RawURLEncoding.EncodeToString(lc.key)
}

// parseLinkCode reads a typed code (case, spaces and dashes do not
// matter) or a QR payload.
func parseLinkCode(s string) (linkCode, error) {
	var lc linkCode
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, linkQRPrefix); ok {
		code, key, ok := strings.Cut(rest, ":")
		k, err := base64.RawURLEncoding.DecodeString(key)
		switch {
		case !ok:
			return lc, errors.New("link code: QR payload without the device's key")
		case err != nil:
			return lc, fmt.Errorf("link code: QR payload's key: %v", err)
		case len(k) != 32:
			return lc, fmt.Errorf("link code: QR payload's key is %d bytes, want 32", len(k))
		}
		lc.key, s = k, code
	}
	norm := strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t':
			return -1
		}
		return r
	}, strings.ToUpper(s))
	n := protocol.LinkIDLength + linkCodeEncoding.EncodedLen(linkSecretBytes)
	if len(norm) != n {
		return lc, fmt.Errorf("link code %.40q: want %d letters and digits", s, n)
	}
	lc.id = norm[:protocol.LinkIDLength]
	secret, err := linkCodeEncoding.DecodeString(norm[protocol.LinkIDLength:])
	if err != nil || !protocol.ValidLinkID(lc.id) {
		return lc, fmt.Errorf("link code %.40q: not a link code (letters A–Z and digits 2–7)", s)
	}
	lc.secret = secret
	return lc, nil
}

// linkKeys are the keys of one linking channel, the same on both sides.
type linkKeys struct {
	transcript   []byte // SHA-256 of the label, the mailbox id and both public keys
	macNew       []byte // the new device's key confirmation key
	macExisting  []byte
	sealNew      cipher.AEAD // what the new device sends
	sealExisting cipher.AEAD
	confirmation string // what both sides show
}

// deriveLinkKeys derives the channel's keys from own's X25519 exchange
// with peer, the code's secret and the transcript of mailbox id, the new
// device's public key and the existing device's.
func deriveLinkKeys(own *ecdh.PrivateKey, peer []byte, secret []byte, id string, newKey, existingKey []byte) (*linkKeys, error) {
	pub, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, fmt.Errorf("link: peer key: %v", err)
	}
	shared, err := own.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("link: X25519: %v", err)
	}
	h := sha256.New()
	for _, f := range [][]byte{[]byte(linkLabel), []byte(id), newKey, existingKey} {
		binary.Write(h, binary.BigEndian, uint16(len(f)))
		h.Write(f)
	}
	th := h.Sum(nil)
	prk, err := hkdf.Extract(sha256.New, shared, secret)
	if err != nil {
		return nil, err
	}
	expand := func(label string) []byte {
		k, _ := hkdf.Expand(sha256.New, prk, linkLabel+" "+label+string(th), 32)
		return k
	}
	aead := func(label string) cipher.AEAD {
		b, _ := aes.NewCipher(expand(label))
		a, _ := cipher.NewGCM(b)
		return a
	}
	k := &linkKeys{transcript: th, macNew: expand("mac new"), macExisting: expand("mac existing"),
		sealNew: aead("seal new"), sealExisting: aead("seal existing")}
	c := expand("confirmation")
	n := binary.BigEndian.Uint32(c) % 1_000_000
	k.confirmation = fmt.Sprintf("%03d %03d", n/1000, n%1000)
	return k, nil
}

// mac returns the key confirmation of a side: an HMAC of the transcript.
func (k *linkKeys) mac(existing bool) []byte {
	key := k.macNew
	if existing {
		key = k.macExisting
	}
	m := hmac.New(sha256.New, key)
	m.Write(k.transcript)
	return m.Sum(nil)
}

// checkMAC checks the other side's key confirmation.
func (k *linkKeys) checkMAC(existing bool, got []byte) error {
	if !hmac.Equal(k.mac(existing), got) {
		return ErrLinkTampered
	}
	return nil
}

// seal encrypts the n-th message (from 0) a side sends; the transcript is
// the associated data, and each side has its own key, so a message cannot
// be replayed to its sender or moved within the stream.
func (k *linkKeys) seal(existing bool, n uint32, plaintext []byte) []byte {
	a := k.sealNew
	if existing {
		a = k.sealExisting
	}
	nonce := make([]byte, a.NonceSize())
	binary.BigEndian.PutUint32(nonce[len(nonce)-4:], n)
	return a.Seal(nil, nonce, plaintext, k.transcript)
}

// open decrypts the n-th message of a side.
func (k *linkKeys) open(existing bool, n uint32, box []byte) ([]byte, error) {
	a := k.sealNew
	if existing {
		a = k.sealExisting
	}
	nonce := make([]byte, a.NonceSize())
	binary.BigEndian.PutUint32(nonce[len(nonce)-4:], n)
	pt, err := a.Open(nil, nonce, box, k.transcript)
	if err != nil {
		return nil, ErrLinkTampered
	}
	return pt, nil
}

// newLinkSecret returns a fresh code secret.
func newLinkSecret() []byte {
	b := make([]byte, linkSecretBytes)
	rand.Read(b)
	return b
}
