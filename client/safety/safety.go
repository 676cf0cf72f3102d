// Package safety computes Parley's safety numbers: a fingerprint of two
// users' identity keys that both users see identically and compare, read
// aloud or by scanning a QR code, to detect a server (or anyone else) that
// substituted a key.
//
// The construction is Signal's numeric fingerprint (libsignal
// NumericFingerprintGenerator, version 1) applied to Parley identities:
// for each user,
//
//	h = uint16(0) || key || name
//	repeat 5200 times: h = SHA-512(h || key)
//
// where key is the 32-byte Ed25519 identity public key and name the
// account name ("alice@example.org"). The first 30 bytes of h give 30
// digits: six 5-byte big-endian integers, each modulo 100000, written as
// five digits. The safety number is the two users' 30 digits, the smaller
// string first, so it does not depend on who computes it: 60 digits,
// shown as 12 groups of 5.
//
// The QR payload is one version byte ([QRVersion]) followed by the first
// 32 bytes of the local user's h and then of the remote user's h. A
// scanned payload matches when it is the other side's view: its first
// fingerprint is our remote one and its second our local one.
package safety

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/skip2/go-qrcode"
)

// Iterations is the number of SHA-512 iterations, as in Signal.
const Iterations = 5200

// fingerprintVersion is the uint16 that starts the hash input.
const fingerprintVersion = 0

// QRVersion is the first byte of a QR payload.
const QRVersion = 1

// qrFingerprintSize is the size of each fingerprint in a QR payload.
const qrFingerprintSize = 32

// QRPayloadSize is the size of a QR payload.
const QRPayloadSize = 1 + 2*qrFingerprintSize

// Errors of [Number.CompareScanned]; callers branch on them to tell the
// user what happened.
var (
	// ErrMismatch means the scanned code belongs to other keys: the
	// conversation may be intercepted, or one side has an old key.
	ErrMismatch = errors.New("safety: scanned code does not match: identity keys differ")
	// ErrOwnCode means the scanned code is the one this side shows.
	ErrOwnCode = errors.New("safety: scanned code is this device's own code")
	// ErrBadPayload means the scanned bytes are not a safety number code
	// of a version this package knows.
	ErrBadPayload = errors.New("safety: scanned code is not a Parley safety number")
)

// Identity is a user's long-term identity: account name and Ed25519
// identity public key.
type Identity struct {
	// Name is the account name, conventionally "name@server"; both sides
	// must use the same form.
	Name string
	// Key is the Ed25519 identity public key.
	Key ed25519.PublicKey
}

// Number is the safety number of a local and a remote identity.
type Number struct {
	local, remote []byte // the 64-byte iterated hashes
	digits        string
}

// fingerprint returns the iterated hash of one identity.
func fingerprint(version uint16, key, name []byte, iterations int) []byte {
	h := binary.BigEndian.AppendUint16(nil, version)
	h = append(h, key...)
	h = append(h, name...)
	d := sha512.New()
	for range iterations {
		d.Reset()
		d.Write(h)
		d.Write(key)
		h = d.Sum(h[:0])
	}
	return h
}

// digits returns the 30 displayable digits of a fingerprint.
func digits(fp []byte) string {
	var sb strings.Builder
	for i := 0; i < 30; i += 5 {
		var b [8]byte
		copy(b[3:], fp[i:i+5])
		fmt.Fprintf(&sb, "%05d", binary.BigEndian.Uint64(b[:])%100000)
	}
	return sb.String()
}

// combine returns the order-independent 60 digits of two fingerprints.
func combine(local, remote []byte) string {
	l, r := digits(local), digits(remote)
	if l <= r {
		return l + r
	}
	return r + l
}

// New computes the safety number of the local user's identity and a
// remote user's identity.
func New(local, remote Identity) (*Number, error) {
	for _, id := range []Identity{local, remote} {
		if len(id.Key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("safety: compute safety number: identity key of %q is %d bytes, want %d", id.Name, len(id.Key), ed25519.PublicKeySize)
		}
		if id.Name == "" {
			return nil, errors.New("safety: compute safety number: empty user name")
		}
	}
	n := &Number{
		local:  fingerprint(fingerprintVersion, local.Key, []byte(local.Name), Iterations),
		remote: fingerprint(fingerprintVersion, remote.Key, []byte(remote.Name), Iterations),
	}
	n.digits = combine(n.local, n.remote)
	return n, nil
}

// Digits returns the 60 digits of the safety number.
func (n *Number) Digits() string { return n.digits }

// Groups returns the 60 digits as 12 groups of 5.
func (n *Number) Groups() []string {
	g := make([]string, 12)
	for i := range g {
		g[i] = n.digits[5*i : 5*i+5]
	}
	return g
}

// String returns the 12 groups separated by spaces.
func (n *Number) String() string { return strings.Join(n.Groups(), " ") }

// Lines returns the groups in three lines of four, the usual display.
func (n *Number) Lines() []string {
	g := n.Groups()
	return []string{strings.Join(g[0:4], " "), strings.Join(g[4:8], " "), strings.Join(g[8:12], " ")}
}

// QRPayload returns the bytes to show as a QR code for the other side to
// scan: version, local fingerprint, remote fingerprint.
func (n *Number) QRPayload() []byte {
	p := make([]byte, 0, QRPayloadSize)
	p = append(p, QRVersion)
	p = append(p, n.local[:qrFingerprintSize]...)
	return append(p, n.remote[:qrFingerprintSize]...)
}

// CompareScanned checks a payload scanned from the other side's screen. It
// returns nil when it holds the same two fingerprints as this number, in
// the other side's order; otherwise [ErrBadPayload], [ErrOwnCode] or
// [ErrMismatch].
func (n *Number) CompareScanned(payload []byte) error {
	if len(payload) != QRPayloadSize || payload[0] != QRVersion {
		return ErrBadPayload
	}
	theirLocal, theirRemote := payload[1:1+qrFingerprintSize], payload[1+qrFingerprintSize:]
	if subtle.ConstantTimeCompare(theirLocal, n.remote[:qrFingerprintSize]) == 1 &&
		subtle.ConstantTimeCompare(theirRemote, n.local[:qrFingerprintSize]) == 1 {
		return nil
	}
	if bytes.Equal(payload, n.QRPayload()) {
		return ErrOwnCode
	}
	return ErrMismatch
}

// QR returns the QR code of the payload rendered for a terminal (see
// [RenderQR]).
func (n *Number) QR(invert bool) (string, error) {
	return RenderQR(n.QRPayload(), invert)
}

// RenderQR encodes data as a QR code (error correction level M) and renders
// it with Unicode half blocks, two modules per character cell, with the
// standard quiet zone. Light modules are drawn as blocks, which suits a
// light-on-dark terminal; invert draws dark modules as blocks instead, for
// a dark-on-light terminal. Every line ends with a newline.
func RenderQR(data []byte, invert bool) (string, error) {
	q, err := qrcode.New(string(data), qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("safety: render QR code of %d bytes: %v", len(data), err)
	}
	return renderBitmap(q.Bitmap(), invert), nil
}

// renderBitmap renders a module matrix (true = dark) with half blocks.
func renderBitmap(bm [][]bool, invert bool) string {
	ink := func(y, x int) bool {
		if y >= len(bm) {
			return !invert // below the last row: light background
		}
		return bm[y][x] == invert
	}
	var sb strings.Builder
	for y := 0; y < len(bm); y += 2 {
		for x := range bm[y] {
			switch top, bottom := ink(y, x), ink(y+1, x); {
			case top && bottom:
				sb.WriteRune('█')
			case top:
				sb.WriteRune('▀')
			case bottom:
				sb.WriteRune('▄')
			default:
				sb.WriteByte(' ')
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}
