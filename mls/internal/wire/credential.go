package wire

import (
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
)

// CredentialType identifies a credential format (RFC 9420 §5.3, "MLS
// Credential Types" registry).
type CredentialType uint16

// The credential types of RFC 9420 §17.5.
const (
	CredentialBasic CredentialType = 0x0001
	CredentialX509  CredentialType = 0x0002
)

// Credential is RFC 9420 §5.3 Credential. Exactly one content field is
// meaningful, chosen by Type: Identity for basic, Certificates (DER, end
// entity first) for x509, and Opaque for any other type, whose body this
// package carries as opaque<V> without interpreting it.
type Credential struct {
	Type         CredentialType
	Identity     []byte
	Certificates [][]byte
	Opaque       []byte
}

// EncodeMLS appends the Credential's encoding.
func (c *Credential) EncodeMLS(b *codec.Builder) {
	b.AddUint16(uint16(c.Type))
	switch c.Type {
	case CredentialBasic:
		b.AddOpaque(c.Identity)
	case CredentialX509:
		b.AddVector(func(b *codec.Builder) {
			for _, cert := range c.Certificates {
				b.AddOpaque(cert)
			}
		})
	default:
		b.AddOpaque(c.Opaque)
	}
}

// DecodeMLS reads a Credential.
func (c *Credential) DecodeMLS(r *codec.Reader) {
	*c = Credential{Type: CredentialType(r.Uint16())}
	switch c.Type {
	case CredentialBasic:
		c.Identity = r.Opaque()
	case CredentialX509:
		c.Certificates = [][]byte{}
		r.VectorFunc(func(r *codec.Reader) {
			c.Certificates = append(c.Certificates, r.Opaque())
		})
	default:
		c.Opaque = r.Opaque()
	}
}

// String describes the credential type for diagnostics.
func (t CredentialType) String() string {
	switch t {
	case CredentialBasic:
		return "basic"
	case CredentialX509:
		return "x509"
	}
	return fmt.Sprintf("credential_type(%#04x)", uint16(t))
}
