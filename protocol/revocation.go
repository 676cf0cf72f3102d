package protocol

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// DeviceRevocationLabel is the domain separation label at the start of
// the signed content of a device revocation.
const DeviceRevocationLabel = "parley device revocation v1"

// deviceRevocationVersion is the first byte of an encoded revocation.
const deviceRevocationVersion = 1

// DeviceRevocation is a user's signed statement that one of its devices is
// revoked: the user's Ed25519 identity key signs the server name, the user
// name, the device id and the time of the revocation. The revoking client
// sends it with DELETE /v1/devices/{device}; the server checks it, keeps
// it and serves it with the device (DeviceInfo.Revocation, and the
// "revoked" notices), so that every member of a conversation the device
// is in can check that its owner revoked it before removing its leaves.
// The server name keeps a statement from being replayed on another server
// where the same user name and identity key exist.
//
// The encoding is binary and canonical, like [DeviceCertificate]'s:
//
//	uint8  version (1)
//	uint16 len, bytes  server name
//	uint16 len, bytes  user name
//	uint16 len, bytes  device id
//	int64              revoked, Unix seconds
//	uint16 len, bytes  signature (64 bytes of Ed25519)
//
// with big-endian integers. The signature covers [DeviceRevocation.SignedData]:
// the same fields after the length-prefixed label [DeviceRevocationLabel]
// instead of the version.
type DeviceRevocation struct {
	// Server is the server's name (ServerInfo.Name).
	Server string
	// User is the account name (without "@server").
	User string
	// Device is the revoked device's id.
	Device DeviceID
	// Revoked is when the user revoked the device, to the second, by the
	// revoking client's clock (informational: nothing depends on it).
	Revoked time.Time
	// Signature is the identity key's Ed25519 signature over SignedData.
	Signature []byte
}

// check returns an error when a field is too long to encode.
func (r *DeviceRevocation) check() error {
	if len(r.Server) > maxField || len(r.User) > maxField || len(r.Device) > maxField || len(r.Signature) > maxField {
		return errors.New("field longer than 4096 bytes")
	}
	return nil
}

// SignedData returns the bytes the identity key signs.
func (r *DeviceRevocation) SignedData() []byte {
	b := appendField(nil, []byte(DeviceRevocationLabel))
	return r.appendBody(b)
}

// appendBody appends the fields from the server name to the time.
func (r *DeviceRevocation) appendBody(b []byte) []byte {
	b = appendField(b, []byte(r.Server))
	b = appendField(b, []byte(r.User))
	b = appendField(b, []byte(r.Device))
	return binary.BigEndian.AppendUint64(b, uint64(r.Revoked.Unix()))
}

// Marshal encodes the revocation.
func (r *DeviceRevocation) Marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("protocol: encode device revocation: %v", err)
	}
	b := []byte{deviceRevocationVersion}
	b = r.appendBody(b)
	return appendField(b, r.Signature), nil
}

// ParseDeviceRevocation decodes a revocation, rejecting unknown versions,
// truncated fields and trailing bytes. It does not verify the signature.
func ParseDeviceRevocation(data []byte) (*DeviceRevocation, error) {
	rd := &certReader{b: data}
	v := rd.bytes(1, "version")
	if rd.err == nil && v[0] != deviceRevocationVersion {
		return nil, fmt.Errorf("protocol: decode device revocation: unknown version %d", v[0])
	}
	r := &DeviceRevocation{}
	r.Server = string(rd.field("server name"))
	r.User = string(rd.field("user name"))
	r.Device = DeviceID(rd.field("device id"))
	if t := rd.bytes(8, "revoked"); t != nil {
		r.Revoked = time.Unix(int64(binary.BigEndian.Uint64(t)), 0).UTC()
	}
	r.Signature = append([]byte(nil), rd.field("signature")...)
	if rd.err == nil && len(rd.b) != 0 {
		rd.err = fmt.Errorf("%d trailing bytes", len(rd.b))
	}
	if rd.err != nil {
		return nil, fmt.Errorf("protocol: decode device revocation: %v", rd.err)
	}
	return r, nil
}

// NewDeviceRevocation creates and signs the revocation of a device of user
// on server with the user's identity private key and returns its encoding.
func NewDeviceRevocation(identity ed25519.PrivateKey, server, user string, device DeviceID, revoked time.Time) ([]byte, error) {
	r := &DeviceRevocation{Server: server, User: user, Device: device, Revoked: revoked.Truncate(time.Second)}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("protocol: create device revocation: %v", err)
	}
	r.Signature = ed25519.Sign(identity, r.SignedData())
	return r.Marshal()
}

// Verify checks the revocation's signature with the identity public key.
func (r *DeviceRevocation) Verify(identityKey []byte) error {
	if len(identityKey) != ed25519.PublicKeySize {
		return fmt.Errorf("protocol: verify revocation of device %q: identity key is %d bytes, want %d", r.Device, len(identityKey), ed25519.PublicKeySize)
	}
	if !ed25519.Verify(ed25519.PublicKey(identityKey), r.SignedData(), r.Signature) {
		return fmt.Errorf("protocol: verify revocation of device %q: signature invalid", r.Device)
	}
	return nil
}

// VerifyDeviceRevocation decodes a revocation, checks that it names
// exactly the given server, user and device, and checks its signature
// with the user's identity key. It returns the decoded revocation.
func VerifyDeviceRevocation(data, identityKey []byte, server, user string, device DeviceID) (*DeviceRevocation, error) {
	r, err := ParseDeviceRevocation(data)
	if err != nil {
		return nil, err
	}
	switch {
	case r.Server != server:
		return nil, fmt.Errorf("protocol: verify revocation of device %q: names server %.70q, want %q", device, r.Server, server)
	case r.User != user:
		return nil, fmt.Errorf("protocol: verify revocation of device %q: names user %.70q, want %q", device, r.User, user)
	case r.Device != device:
		return nil, fmt.Errorf("protocol: verify revocation of device %q: names device %.70q", device, r.Device)
	}
	if err := r.Verify(identityKey); err != nil {
		return nil, err
	}
	return r, nil
}
