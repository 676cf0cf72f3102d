package wire

import (
	"errors"
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
)

// NodeType distinguishes leaf from parent nodes (RFC 9420 §7.8).
type NodeType uint8

// The node types of RFC 9420 §7.8.
const (
	NodeTypeLeaf   NodeType = 1
	NodeTypeParent NodeType = 2
)

// ParentNode is RFC 9420 §7.1 ParentNode. UnmergedLeaves are leaf indices;
// their ordering is a semantic rule checked by the tree, not here.
type ParentNode struct {
	EncryptionKey  []byte
	ParentHash     []byte
	UnmergedLeaves []uint32
}

// EncodeMLS appends the ParentNode's encoding.
func (p *ParentNode) EncodeMLS(b *codec.Builder) {
	b.AddOpaque(p.EncryptionKey)
	b.AddOpaque(p.ParentHash)
	b.AddVector(func(b *codec.Builder) {
		for _, l := range p.UnmergedLeaves {
			b.AddUint32(l)
		}
	})
}

// DecodeMLS reads a ParentNode.
func (p *ParentNode) DecodeMLS(r *codec.Reader) {
	p.EncryptionKey = r.Opaque()
	p.ParentHash = r.Opaque()
	p.UnmergedLeaves = []uint32{}
	r.VectorFunc(func(r *codec.Reader) {
		p.UnmergedLeaves = append(p.UnmergedLeaves, r.Uint32())
	})
}

// Node is a node of the ratchet tree (RFC 9420 §12.4.3.3): Leaf is set
// for leaf nodes, Parent for parent nodes.
type Node struct {
	Type   NodeType
	Leaf   *LeafNode
	Parent *ParentNode
}

// EncryptionKey returns the HPKE public key of a non-blank node; nil for
// a blank node (n nil or empty).
func (n *Node) EncryptionKey() []byte {
	switch {
	case n == nil:
		return nil
	case n.Leaf != nil:
		return n.Leaf.EncryptionKey
	case n.Parent != nil:
		return n.Parent.EncryptionKey
	}
	return nil
}

// EncodeMLS appends the Node's encoding.
func (n *Node) EncodeMLS(b *codec.Builder) {
	b.AddUint8(uint8(n.Type))
	switch n.Type {
	case NodeTypeLeaf:
		if n.Leaf == nil {
			b.Fail(errors.New("wire: encode Node: node_type leaf without leaf node"))
			return
		}
		n.Leaf.EncodeMLS(b)
	case NodeTypeParent:
		if n.Parent == nil {
			b.Fail(errors.New("wire: encode Node: node_type parent without parent node"))
			return
		}
		n.Parent.EncodeMLS(b)
	default:
		b.Fail(fmt.Errorf("wire: encode Node: unknown node_type %d", n.Type))
	}
}

// DecodeMLS reads a Node; an unknown node_type is an error.
func (n *Node) DecodeMLS(r *codec.Reader) {
	*n = Node{Type: NodeType(r.Uint8())}
	if r.Err() != nil {
		return
	}
	switch n.Type {
	case NodeTypeLeaf:
		n.Leaf = new(LeafNode)
		n.Leaf.DecodeMLS(r)
	case NodeTypeParent:
		n.Parent = new(ParentNode)
		n.Parent.DecodeMLS(r)
	default:
		r.Failf("wire: decode Node: unknown node_type %d", n.Type)
	}
}

// leafBox and parentBox hold a decoded Node together with its LeafNode
// (and Lifetime) or ParentNode, so that decoding a tree allocates once per
// node instead of two or three times. The box lives as long as any of the
// pointers into it.
type (
	leafBox struct {
		node     Node
		leaf     LeafNode
		lifetime Lifetime
	}
	parentBox struct {
		node   Node
		parent ParentNode
	}
)

// decodeNode reads a Node as DecodeMLS does, into one allocation.
func decodeNode(r *codec.Reader) *Node {
	typ := NodeType(r.Uint8())
	if r.Err() != nil {
		return nil
	}
	switch typ {
	case NodeTypeLeaf:
		b := new(leafBox)
		b.node = Node{Type: typ, Leaf: &b.leaf}
		b.leaf.decode(r, &b.lifetime)
		return &b.node
	case NodeTypeParent:
		b := new(parentBox)
		b.node = Node{Type: typ, Parent: &b.parent}
		b.parent.DecodeMLS(r)
		return &b.node
	default:
		r.Failf("wire: decode Node: unknown node_type %d", typ)
		return nil
	}
}

// RatchetTree is the ratchet_tree extension's content (RFC 9420
// §12.4.3.3), optional<Node> ratchet_tree<V>: the tree's nodes in
// array (in-order) order, nil for a blank node. Decoding checks syntax
// only; the tree's shape (non-empty, odd length, last node non-blank) is
// the tree's to validate.
type RatchetTree []*Node

// EncodeMLS appends the tree's encoding.
func (t RatchetTree) EncodeMLS(b *codec.Builder) {
	b.AddVector(func(b *codec.Builder) {
		for _, n := range t {
			b.AddOptional(n != nil, n.EncodeMLS)
		}
	})
}

// DecodeMLS reads a ratchet tree.
func (t *RatchetTree) DecodeMLS(r *codec.Reader) {
	out := RatchetTree{}
	r.VectorFunc(func(r *codec.Reader) {
		var n *Node
		if r.Optional() {
			n = decodeNode(r)
		}
		out = append(out, n)
	})
	*t = out
}

// UnmarshalNodeAliasing decodes one Node that fills data, in one
// allocation as a ratchet tree's nodes are; its byte slices alias data,
// which the caller hands over to the node.
func UnmarshalNodeAliasing(data []byte) (*Node, error) {
	r := codec.NewAliasingReader(data)
	n := decodeNode(r)
	if err := r.Finish(); err != nil {
		return nil, err
	}
	return n, nil
}
