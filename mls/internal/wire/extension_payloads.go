package wire

import "github.com/parley-chat/parley/mls/internal/codec"

// ApplicationID is the content of the application_id extension (RFC 9420
// §5.3.3): opaque application_id<V>, an application-defined identifier of
// the leaf's client.
type ApplicationID []byte

// EncodeMLS appends the ApplicationID's encoding.
func (a ApplicationID) EncodeMLS(b *codec.Builder) { b.AddOpaque(a) }

// DecodeMLS reads an ApplicationID.
func (a *ApplicationID) DecodeMLS(r *codec.Reader) { *a = r.Opaque() }

// RequiredCapabilities is the content of the required_capabilities
// extension (RFC 9420 §11.1).
type RequiredCapabilities struct {
	Extensions  []ExtensionType
	Proposals   []ProposalType
	Credentials []CredentialType
}

// EncodeMLS appends the RequiredCapabilities' encoding.
func (c *RequiredCapabilities) EncodeMLS(b *codec.Builder) {
	encodeUint16s(b, c.Extensions)
	encodeUint16s(b, c.Proposals)
	encodeUint16s(b, c.Credentials)
}

// DecodeMLS reads RequiredCapabilities.
func (c *RequiredCapabilities) DecodeMLS(r *codec.Reader) {
	c.Extensions = decodeUint16s[ExtensionType](r)
	c.Proposals = decodeUint16s[ProposalType](r)
	c.Credentials = decodeUint16s[CredentialType](r)
}

// ExternalPub is the content of the external_pub extension (RFC 9420
// §12.4.3.2): the HPKE public key for external commits.
type ExternalPub struct {
	PublicKey []byte
}

// EncodeMLS appends the ExternalPub's encoding.
func (e *ExternalPub) EncodeMLS(b *codec.Builder) { b.AddOpaque(e.PublicKey) }

// DecodeMLS reads an ExternalPub.
func (e *ExternalPub) DecodeMLS(r *codec.Reader) { e.PublicKey = r.Opaque() }

// ExternalSender is one entry of the external_senders extension (RFC 9420
// §12.1.8.1).
type ExternalSender struct {
	SignatureKey []byte
	Credential   Credential
}

// EncodeMLS appends the ExternalSender's encoding.
func (e *ExternalSender) EncodeMLS(b *codec.Builder) {
	b.AddOpaque(e.SignatureKey)
	e.Credential.EncodeMLS(b)
}

// DecodeMLS reads an ExternalSender.
func (e *ExternalSender) DecodeMLS(r *codec.Reader) {
	e.SignatureKey = r.Opaque()
	e.Credential.DecodeMLS(r)
}

// ExternalSenders is the content of the external_senders extension,
// ExternalSender external_senders<V>; Sender.SenderIndex indexes it.
type ExternalSenders []ExternalSender

// EncodeMLS appends the list as a vector.
func (es ExternalSenders) EncodeMLS(b *codec.Builder) {
	b.AddVector(func(b *codec.Builder) {
		for i := range es {
			es[i].EncodeMLS(b)
		}
	})
}

// DecodeMLS reads the list.
func (es *ExternalSenders) DecodeMLS(r *codec.Reader) {
	out := ExternalSenders{}
	r.VectorFunc(func(r *codec.Reader) {
		var e ExternalSender
		e.DecodeMLS(r)
		out = append(out, e)
	})
	*es = out
}
