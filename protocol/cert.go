package protocol

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// DeviceCertificateLabel is the domain separation label at the start of
// the signed content of a device certificate.
const DeviceCertificateLabel = "parley device certificate v2"

// DeviceProofLabel is the domain separation label at the start of the
// content a new device signs to prove that it holds its signature key
// (see [DeviceProofSignedData]).
const DeviceProofLabel = "parley device proof v1"

// SessionLabel is the domain separation label at the start of the signed
// content of an authentication challenge (see [SessionSignedData]).
const SessionLabel = "parley session v1"

// deviceCertificateVersion is the first byte of an encoded certificate;
// outdatedCertificateVersion is that of certificates that named no
// server.
const (
	deviceCertificateVersion   = 2
	outdatedCertificateVersion = 1
)

// MaxCertificateAge is how long after its creation a device certificate
// may bring a device into use: registering it, uploading KeyPackages,
// being added to a group or joining one. Certificates are not renewed: a
// device whose certificate is older must be registered again.
const MaxCertificateAge = 2 * 365 * 24 * time.Hour

// CertificateClockSkew is how far in the future a certificate's creation
// time may lie, for clocks that differ. It is the clock skew MLS
// KeyPackage lifetimes allow (mls.KeyPackageClockSkew).
const CertificateClockSkew = time.Hour

// ErrCertificateOutdated means a device certificate is of version 1,
// which named no server: it is refused everywhere, and the device must
// be registered again.
var ErrCertificateOutdated = errors.New("device certificate of version 1, which names no server, is no longer accepted: register the device again")

// SignatureScheme identifies a signature algorithm by its TLS 1.3
// SignatureScheme value, as MLS cipher suites do.
type SignatureScheme uint16

// The signature schemes of the MLS cipher suites.
const (
	SchemeEd25519         SignatureScheme = 0x0807 // SchemeEd25519 is Ed25519 (suites 1, 3).
	SchemeEd448           SignatureScheme = 0x0808 // SchemeEd448 is Ed448 (suites 4, 6).
	SchemeECDSAP256SHA256 SignatureScheme = 0x0403 // SchemeECDSAP256SHA256 is ECDSA P-256 (suite 2).
	SchemeECDSAP384SHA384 SignatureScheme = 0x0503 // SchemeECDSAP384SHA384 is ECDSA P-384 (suite 7).
	SchemeECDSAP521SHA512 SignatureScheme = 0x0603 // SchemeECDSAP521SHA512 is ECDSA P-521 (suite 5).
)

// maxField bounds every length-prefixed field of a certificate.
const maxField = 1 << 12

// DeviceCertificate binds a device's MLS signature key to a user of one
// server: the user's Ed25519 identity key signs the server name, the user
// name, the device id, the device's signature scheme and key, and the
// creation time. The MLS credential of the device's leaves carries the
// encoded certificate, so that every member can check that a leaf belongs
// to the user it claims, on the server it claims: a certificate made for
// one server does not verify for another ([VerifyDeviceCertificate]).
//
// The encoding (version 2) is binary and canonical:
//
//	uint8  version (2)
//	uint16 len, bytes  server name (ServerInfo.name)
//	uint16 len, bytes  user name
//	uint16 len, bytes  device id
//	uint16             signature scheme
//	uint16 len, bytes  device signature public key
//	int64              created, Unix seconds
//	uint16 len, bytes  signature (64 bytes of Ed25519)
//
// with big-endian integers. The signature covers [DeviceCertificate.SignedData]:
// the same fields after the length-prefixed label [DeviceCertificateLabel]
// instead of the version. Version 1, which had no server name, is refused
// with [ErrCertificateOutdated].
//
// A certificate brings a device into use (registration, KeyPackages,
// joining or being added to a group) only from its creation time, less
// [CertificateClockSkew], until [MaxCertificateAge] after it
// ([DeviceCertificate.CheckTime]).
type DeviceCertificate struct {
	// Server is the name of the server the account is on.
	Server string
	// User is the account name (without "@server").
	User string
	// Device is the device id.
	Device DeviceID
	// Scheme is the signature scheme of DeviceKey.
	Scheme SignatureScheme
	// DeviceKey is the device's signature public key.
	DeviceKey []byte
	// Created is when the certificate was made, to the second.
	Created time.Time
	// Signature is the identity key's Ed25519 signature over SignedData.
	Signature []byte
}

// appendField appends a uint16 length-prefixed field.
func appendField(b, f []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
	return append(b, f...)
}

// check returns an error when a field is too long to encode.
func (c *DeviceCertificate) check() error {
	if len(c.Server) > maxField || len(c.User) > maxField || len(c.Device) > maxField || len(c.DeviceKey) > maxField || len(c.Signature) > maxField {
		return errors.New("field longer than 4096 bytes")
	}
	return nil
}

// SignedData returns the bytes the identity key signs.
func (c *DeviceCertificate) SignedData() []byte {
	b := appendField(nil, []byte(DeviceCertificateLabel))
	return c.appendBody(b)
}

// appendBody appends the fields from the server name to the creation time.
func (c *DeviceCertificate) appendBody(b []byte) []byte {
	b = appendField(b, []byte(c.Server))
	b = appendField(b, []byte(c.User))
	b = appendField(b, []byte(c.Device))
	b = binary.BigEndian.AppendUint16(b, uint16(c.Scheme))
	b = appendField(b, c.DeviceKey)
	return binary.BigEndian.AppendUint64(b, uint64(c.Created.Unix()))
}

// Marshal encodes the certificate.
func (c *DeviceCertificate) Marshal() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("protocol: encode device certificate: %v", err)
	}
	b := []byte{deviceCertificateVersion}
	b = c.appendBody(b)
	return appendField(b, c.Signature), nil
}

// certReader is a bounded reader over a certificate.
type certReader struct {
	b   []byte
	err error
}

func (r *certReader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("%s truncated", what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *certReader) uint16(what string) uint16 {
	v := r.bytes(2, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint16(v)
}

func (r *certReader) field(what string) []byte {
	n := r.uint16(what + " length")
	return r.bytes(int(n), what)
}

// ParseDeviceCertificate decodes a certificate, rejecting unknown versions,
// truncated fields and trailing bytes. A certificate of version 1 is
// refused with an error matching [ErrCertificateOutdated]. It does not
// verify the signature.
func ParseDeviceCertificate(data []byte) (*DeviceCertificate, error) {
	const op = "protocol: decode device certificate"
	r := &certReader{b: data}
	v := r.bytes(1, "version")
	switch {
	case r.err != nil:
	case v[0] == outdatedCertificateVersion:
		return nil, fmt.Errorf("%s: %w", op, ErrCertificateOutdated)
	case v[0] != deviceCertificateVersion:
		return nil, fmt.Errorf("%s: unknown version %d", op, v[0])
	}
	c := &DeviceCertificate{}
	c.Server = string(r.field("server name"))
	c.User = string(r.field("user name"))
	c.Device = DeviceID(r.field("device id"))
	c.Scheme = SignatureScheme(r.uint16("signature scheme"))
	c.DeviceKey = append([]byte(nil), r.field("device key")...)
	if t := r.bytes(8, "created"); t != nil {
		c.Created = time.Unix(int64(binary.BigEndian.Uint64(t)), 0).UTC()
	}
	c.Signature = append([]byte(nil), r.field("signature")...)
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("%s: %v", op, r.err)
	}
	return c, nil
}

// NewDeviceCertificate creates and signs, with the user's identity
// private key, the certificate of a device of user on the server named
// server, and returns its encoding.
func NewDeviceCertificate(identity ed25519.PrivateKey, server, user string, device DeviceID, scheme SignatureScheme, deviceKey []byte, created time.Time) ([]byte, error) {
	c := &DeviceCertificate{Server: server, User: user, Device: device, Scheme: scheme, DeviceKey: deviceKey, Created: created.Truncate(time.Second)}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("protocol: create device certificate: %v", err)
	}
	c.Signature = ed25519.Sign(identity, c.SignedData())
	return c.Marshal()
}

// Verify checks the certificate's signature with the identity public key.
func (c *DeviceCertificate) Verify(identityKey []byte) error {
	if len(identityKey) != ed25519.PublicKeySize {
		return fmt.Errorf("protocol: verify device certificate of %q: identity key is %d bytes, want %d", c.Device, len(identityKey), ed25519.PublicKeySize)
	}
	if !ed25519.Verify(ed25519.PublicKey(identityKey), c.SignedData(), c.Signature) {
		return fmt.Errorf("protocol: verify device certificate of %q: signature invalid", c.Device)
	}
	return nil
}

// CheckServer returns an error naming both servers unless the
// certificate is for the server named server.
func (c *DeviceCertificate) CheckServer(server string) error {
	if c.Server != server {
		return fmt.Errorf("protocol: device certificate of %s device %q is for server %q, not this server %q", c.User, c.Device, c.Server, server)
	}
	return nil
}

// Expires returns the time after which the certificate no longer brings
// its device into use: MaxCertificateAge after its creation.
func (c *DeviceCertificate) Expires() time.Time { return c.Created.Add(MaxCertificateAge) }

// CheckTime applies the expiry policy at now: a certificate created more
// than CertificateClockSkew after now, or more than MaxCertificateAge
// before it, is refused. It is checked wherever a certificate brings its
// device into use (registration, KeyPackages, joins and adds); a member
// already in a group keeps its leaf.
func (c *DeviceCertificate) CheckTime(now time.Time) error {
	switch {
	case c.Created.After(now.Add(CertificateClockSkew)):
		return fmt.Errorf("protocol: device certificate of %s device %q: created %s, in the future (now %s; clocks may differ by %v at most)",
			c.User, c.Device, c.Created.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), CertificateClockSkew)
	case now.After(c.Expires()):
		return fmt.Errorf("protocol: device certificate of %s device %q: expired %s (created %s, valid for %d days): register the device again",
			c.User, c.Device, c.Expires().UTC().Format(time.RFC3339), c.Created.UTC().Format(time.RFC3339), MaxCertificateAge/(24*time.Hour))
	}
	return nil
}

// VerifyDeviceCertificate decodes a certificate, checks its signature with
// the identity key and checks that it binds exactly the given server,
// user, device and device key. It returns the decoded certificate. It
// does not apply the expiry policy (see [DeviceCertificate.CheckTime]).
func VerifyDeviceCertificate(data, identityKey []byte, server, user string, device DeviceID, deviceKey []byte) (*DeviceCertificate, error) {
	c, err := ParseDeviceCertificate(data)
	if err != nil {
		return nil, err
	}
	if err := c.CheckServer(server); err != nil {
		return nil, err
	}
	switch {
	case c.User != user:
		return nil, fmt.Errorf("protocol: verify device certificate of %q: names user %q, want %q", device, c.User, user)
	case c.Device != device:
		return nil, fmt.Errorf("protocol: verify device certificate of %q: names device %q", device, c.Device)
	case string(c.DeviceKey) != string(deviceKey):
		return nil, fmt.Errorf("protocol: verify device certificate of %q: device key differs", device)
	}
	if err := c.Verify(identityKey); err != nil {
		return nil, err
	}
	return c, nil
}

// DeviceProofSignedData returns the bytes a device being registered
// (NewDevice.Proof) signs with its signature key to prove that it holds
// the key: the uint16-length-prefixed [DeviceProofLabel], server name,
// user name, device id and encoded certificate. The certificate binds the
// scheme and the key; the server name keeps a proof from being used on
// another server. A proof cannot be replayed on its server either: it
// names one device id and (through the certificate) one key, and a server
// registers a device id and a key once, ever (revoked devices keep
// theirs), so a second use of the same proof is refused as a conflict.
// Each field must be shorter than 64 KiB (a parsed certificate is).
func DeviceProofSignedData(server, user string, device DeviceID, certificate []byte) []byte {
	b := appendField(nil, []byte(DeviceProofLabel))
	b = appendField(b, []byte(server))
	b = appendField(b, []byte(user))
	b = appendField(b, []byte(device))
	return appendField(b, certificate)
}

// SessionSignedData returns the bytes a device signs with its signature key
// to answer an authentication challenge: the length-prefixed
// [SessionLabel], server name, user name, device id and challenge.
// Binding the server name keeps a signature from being replayed on another
// server.
func SessionSignedData(server, user string, device DeviceID, challenge []byte) []byte {
	b := appendField(nil, []byte(SessionLabel))
	b = appendField(b, []byte(server))
	b = appendField(b, []byte(user))
	b = appendField(b, []byte(device))
	return appendField(b, challenge)
}

// ValidUserName reports whether s is a valid account name: 1 to 64 bytes
// of lowercase ASCII letters, digits, '.', '_' and '-', starting with a
// letter or digit.
func ValidUserName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidDeviceID reports whether id is a valid device id: 1 to 64 bytes of
// ASCII letters, digits, '_' and '-'.
func ValidDeviceID(id DeviceID) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
