package protocol

import (
	"bytes"
	"errors"
	"fmt"
)

// CredentialVersion is the first byte of a Parley credential.
const CredentialVersion = 1

// Credential is what a Parley MLS leaf claims: the account user@server and
// the device, with the device certificate that binds the device's signature
// key to the user's identity key.
//
// It travels as the identity of an MLS basic credential (RFC 9420 §5.3),
// encoded as
//
//	uint8  version (1)
//	uint16 len, bytes  server name (ServerInfo.name)
//	uint16 len, bytes  device certificate (DeviceCertificate)
//
// with big-endian lengths and nothing after. The user name and device id
// are those of the certificate; the server name must be the one the
// certificate signs ([Credential.Verify]). See docs/protocol.md,
// "Credentials".
type Credential struct {
	// Server is the server's name: the account is User@Server.
	Server string
	// Certificate is the decoded device certificate.
	Certificate *DeviceCertificate
	// Raw is the encoded certificate.
	Raw []byte
}

// User returns the account name.
func (c *Credential) User() string { return c.Certificate.User }

// Device returns the device id.
func (c *Credential) Device() DeviceID { return c.Certificate.Device }

// EncodeCredential returns the basic-credential identity of a device of
// the server with the given encoded certificate.
func EncodeCredential(server string, certificate []byte) ([]byte, error) {
	if len(server) > 0xffff || len(certificate) > 0xffff {
		return nil, errors.New("protocol: encode credential: field too long")
	}
	b := []byte{CredentialVersion}
	b = appendField(b, []byte(server))
	return appendField(b, certificate), nil
}

// DecodeCredential decodes a basic-credential identity written by
// EncodeCredential, certificate included. It rejects other versions,
// truncation and trailing bytes; a certificate of version 1 is refused
// with an error matching [ErrCertificateOutdated]. It does not verify the
// certificate's signature.
func DecodeCredential(identity []byte) (*Credential, error) {
	const op = "protocol: decode credential"
	r := &certReader{b: identity}
	if v := r.bytes(1, "version"); r.err == nil && v[0] != CredentialVersion {
		return nil, fmt.Errorf("%s: unknown version %d", op, v[0])
	}
	server := r.field("server name")
	cert := r.field("certificate")
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("%s: %v", op, r.err)
	}
	dc, err := ParseDeviceCertificate(cert)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return &Credential{Server: string(server), Certificate: dc, Raw: bytes.Clone(cert)}, nil
}

// Verify checks that the credential is one the server named server issues
// for the device: it names that server, and so does its certificate, which
// names the user and the device, binds deviceKey and verifies under the
// user's identity key. It does not apply the expiry policy
// ([DeviceCertificate.CheckTime]).
func (c *Credential) Verify(server string, identityKey []byte, user string, device DeviceID, deviceKey []byte) error {
	if err := c.CheckServer(server); err != nil {
		return err
	}
	if _, err := VerifyDeviceCertificate(c.Raw, identityKey, server, user, device, deviceKey); err != nil {
		return err
	}
	return nil
}

// CheckServer returns an error naming both servers unless the credential
// and its certificate both name the server named server.
func (c *Credential) CheckServer(server string) error {
	if c.Server != server {
		return fmt.Errorf("protocol: credential of %s device %q is for server %q, not this server %q", c.User(), c.Device(), c.Server, server)
	}
	return c.Certificate.CheckServer(server)
}
