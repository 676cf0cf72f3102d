package wire

import (
	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
)

// GroupSecrets is RFC 9420 §12.4.3.1 GroupSecrets, the plaintext of
// EncryptedGroupSecrets. PathSecret is nil when absent; a present but empty
// path secret decodes as a non-nil empty slice.
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   []byte
	PSKs         []PreSharedKeyID
}

// EncodeMLS appends the GroupSecrets' encoding.
func (g *GroupSecrets) EncodeMLS(b *codec.Builder) {
	b.AddOpaque(g.JoinerSecret)
	b.AddOptional(g.PathSecret != nil, func(b *codec.Builder) { b.AddOpaque(g.PathSecret) })
	b.AddVector(func(b *codec.Builder) {
		for i := range g.PSKs {
			g.PSKs[i].EncodeMLS(b)
		}
	})
}

// DecodeMLS reads a GroupSecrets.
func (g *GroupSecrets) DecodeMLS(r *codec.Reader) {
	*g = GroupSecrets{JoinerSecret: r.Opaque()}
	if r.Optional() {
		g.PathSecret = r.Opaque()
	}
	g.PSKs = []PreSharedKeyID{}
	r.VectorFunc(func(r *codec.Reader) {
		var p PreSharedKeyID
		p.DecodeMLS(r)
		g.PSKs = append(g.PSKs, p)
	})
}

// EncryptedGroupSecrets is RFC 9420 §12.4.3.1 EncryptedGroupSecrets:
// NewMember is the KeyPackageRef of the recipient.
type EncryptedGroupSecrets struct {
	NewMember             []byte
	EncryptedGroupSecrets HPKECiphertext
}

// EncodeMLS appends the EncryptedGroupSecrets' encoding.
func (e *EncryptedGroupSecrets) EncodeMLS(b *codec.Builder) {
	b.AddOpaque(e.NewMember)
	e.EncryptedGroupSecrets.EncodeMLS(b)
}

// DecodeMLS reads an EncryptedGroupSecrets.
func (e *EncryptedGroupSecrets) DecodeMLS(r *codec.Reader) {
	e.NewMember = r.Opaque()
	e.EncryptedGroupSecrets.DecodeMLS(r)
}

// Welcome is RFC 9420 §12.4.3.1 Welcome.
type Welcome struct {
	CipherSuite        suite.ID
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

// EncodeMLS appends the Welcome's encoding.
func (w *Welcome) EncodeMLS(b *codec.Builder) {
	b.AddUint16(uint16(w.CipherSuite))
	b.AddVector(func(b *codec.Builder) {
		for i := range w.Secrets {
			w.Secrets[i].EncodeMLS(b)
		}
	})
	b.AddOpaque(w.EncryptedGroupInfo)
}

// DecodeMLS reads a Welcome. The cipher suite is kept verbatim.
func (w *Welcome) DecodeMLS(r *codec.Reader) {
	w.CipherSuite = suite.ID(r.Uint16())
	w.Secrets = []EncryptedGroupSecrets{}
	r.VectorFunc(func(r *codec.Reader) {
		var e EncryptedGroupSecrets
		e.DecodeMLS(r)
		w.Secrets = append(w.Secrets, e)
	})
	w.EncryptedGroupInfo = r.Opaque()
}

// Find returns the entry addressed to the KeyPackageRef ref, or nil. The
// comparison is not constant-time: refs are public.
func (w *Welcome) Find(ref []byte) *EncryptedGroupSecrets {
	for i := range w.Secrets {
		if string(w.Secrets[i].NewMember) == string(ref) {
			return &w.Secrets[i]
		}
	}
	return nil
}
