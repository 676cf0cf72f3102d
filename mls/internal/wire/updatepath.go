package wire

import "github.com/parley-chat/parley/mls/internal/codec"

// HPKECiphertext is RFC 9420 §7.6 HPKECiphertext: the KEM output and AEAD
// ciphertext of one HPKE encryption.
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

// EncodeMLS appends the HPKECiphertext's encoding.
func (c *HPKECiphertext) EncodeMLS(b *codec.Builder) {
	b.AddOpaque(c.KEMOutput)
	b.AddOpaque(c.Ciphertext)
}

// DecodeMLS reads an HPKECiphertext.
func (c *HPKECiphertext) DecodeMLS(r *codec.Reader) {
	c.KEMOutput = r.Opaque()
	c.Ciphertext = r.Opaque()
}

// UpdatePathNode is RFC 9420 §7.6 UpdatePathNode: a node's new public key
// and its path secret encrypted to each resolution member of the copath
// child.
type UpdatePathNode struct {
	EncryptionKey       []byte
	EncryptedPathSecret []HPKECiphertext
}

// EncodeMLS appends the UpdatePathNode's encoding.
func (n *UpdatePathNode) EncodeMLS(b *codec.Builder) {
	b.AddOpaque(n.EncryptionKey)
	b.AddVector(func(b *codec.Builder) {
		for i := range n.EncryptedPathSecret {
			n.EncryptedPathSecret[i].EncodeMLS(b)
		}
	})
}

// DecodeMLS reads an UpdatePathNode.
func (n *UpdatePathNode) DecodeMLS(r *codec.Reader) {
	n.EncryptionKey = r.Opaque()
	n.EncryptedPathSecret = []HPKECiphertext{}
	r.VectorFunc(func(r *codec.Reader) {
		var c HPKECiphertext
		c.DecodeMLS(r)
		n.EncryptedPathSecret = append(n.EncryptedPathSecret, c)
	})
}

// UpdatePath is RFC 9420 §7.6 UpdatePath: the committer's new leaf node and
// one UpdatePathNode per node of its filtered direct path.
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

// EncodeMLS appends the UpdatePath's encoding.
func (p *UpdatePath) EncodeMLS(b *codec.Builder) {
	p.LeafNode.EncodeMLS(b)
	b.AddVector(func(b *codec.Builder) {
		for i := range p.Nodes {
			p.Nodes[i].EncodeMLS(b)
		}
	})
}

// DecodeMLS reads an UpdatePath.
func (p *UpdatePath) DecodeMLS(r *codec.Reader) {
	p.LeafNode.DecodeMLS(r)
	p.Nodes = []UpdatePathNode{}
	r.VectorFunc(func(r *codec.Reader) {
		var n UpdatePathNode
		n.DecodeMLS(r)
		p.Nodes = append(p.Nodes, n)
	})
}
