package treekem

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treemath"
)

// PathSecret is a path secret of RFC 9420 §7.4: the secret from which a
// node's key pair and the path secret of the next node up are derived. It
// is secret; Nh bytes long (the suite's hash size).
type PathSecret []byte

// nodeKey is what a member knows about one parent node on its direct path.
type nodeKey struct {
	pathSecret PathSecret
	priv       []byte // HPKE private key, secret
	pub        []byte // HPKE public key
}

func (k *nodeKey) zero() {
	clear(k.pathSecret)
	clear(k.priv)
}

// deriveNodeKey derives the key pair of a node from its path secret (RFC
// 9420 §7.4): node_secret = DeriveSecret(path_secret, "node"),
// (node_priv, node_pub) = KEM.DeriveKeyPair(node_secret). The returned
// nodeKey owns a copy of ps.
func deriveNodeKey(s *suite.Suite, ps PathSecret) (*nodeKey, error) {
	if len(ps) != s.HashSize() {
		return nil, fmt.Errorf("path secret is %d bytes, want %d", len(ps), s.HashSize())
	}
	ns, err := s.DeriveSecret(ps, "node")
	if err != nil {
		return nil, err
	}
	priv, pub, err := s.DeriveKeyPair(ns)
	clear(ns)
	if err != nil {
		return nil, err
	}
	return &nodeKey{pathSecret: slices.Clone(ps), priv: priv, pub: pub}, nil
}

// nextPathSecret is RFC 9420 §7.4 path_secret[n+1] =
// DeriveSecret(path_secret[n], "path"); also the commit secret after the
// last node (§12.4.2).
func nextPathSecret(s *suite.Suite, ps PathSecret) (PathSecret, error) {
	return s.DeriveSecret(ps, "path")
}

// Private is the private TreeKEM state of one member (RFC 9420 §4 tree
// invariant): its leaf index, the HPKE private key of its leaf and, for
// the nodes on its direct path whose private key it knows, their path
// secrets and key pairs. All of these are secret.
//
// A Private owns its secrets: setters copy their inputs, a secret that is
// replaced or dropped is zeroed, and Zero wipes everything. Slices returned
// by accessors are owned by the Private and must not be modified or used
// after it is zeroed. A Private is not safe for concurrent use.
type Private struct {
	suite   *suite.Suite
	leaf    treemath.LeafIndex
	leafKey []byte
	leafPub []byte
	nodes   map[treemath.NodeIndex]*nodeKey
}

// NewPrivate returns the private state of the member at leaf whose leaf
// HPKE private key is leafPriv (copied), knowing no path secrets yet. It
// fails if leafPriv is not a valid private key of the suite.
func NewPrivate(s *suite.Suite, leaf treemath.LeafIndex, leafPriv []byte) (*Private, error) {
	if s == nil {
		return nil, errors.New("treekem: new private state: nil suite")
	}
	pub, err := s.HPKEPublicKey(leafPriv)
	if err != nil {
		return nil, fmt.Errorf("treekem: new private state for leaf %d: leaf private key: %w", leaf, err)
	}
	return &Private{
		suite:   s,
		leaf:    leaf,
		leafKey: slices.Clone(leafPriv),
		leafPub: pub,
		nodes:   map[treemath.NodeIndex]*nodeKey{},
	}, nil
}

// Suite returns the cipher suite of the state.
func (p *Private) Suite() *suite.Suite { return p.suite }

// Leaf returns the member's leaf index.
func (p *Private) Leaf() treemath.LeafIndex { return p.leaf }

// LeafPublicKey returns the HPKE public key of the member's leaf private
// key, the encryption_key its LeafNode must carry.
func (p *Private) LeafPublicKey() []byte { return p.leafPub }

// PrivateKey returns the HPKE private key the member holds for node x: the
// leaf key for its own leaf node, or the key of a node on its direct path.
// ok is false if the member holds no key for x. The key is secret and owned
// by p.
func (p *Private) PrivateKey(x treemath.NodeIndex) (priv []byte, ok bool) {
	if x == p.leaf.Node() {
		return p.leafKey, true
	}
	if k := p.nodes[x]; k != nil {
		return k.priv, true
	}
	return nil, false
}

// holds reports whether p holds the private key of node x whose public
// key is pub.
func (p *Private) holds(x treemath.NodeIndex, pub []byte) bool {
	if pub == nil {
		return false
	}
	if x == p.leaf.Node() {
		return bytes.Equal(p.leafPub, pub)
	}
	k := p.nodes[x]
	return k != nil && bytes.Equal(k.pub, pub)
}

// PathSecret returns the path secret the member holds for parent node x.
// ok is false if it holds none. The secret is owned by p.
func (p *Private) PathSecret(x treemath.NodeIndex) (ps PathSecret, ok bool) {
	if k := p.nodes[x]; k != nil {
		return k.pathSecret, true
	}
	return nil, false
}

// Nodes returns the parent nodes the member holds keys for, in increasing
// node index order. The slice is fresh.
func (p *Private) Nodes() []treemath.NodeIndex {
	return slices.Sorted(maps.Keys(p.nodes))
}

// SetPathSecret sets the path secret of node x, a proper ancestor of the
// member's leaf, and derives its key pair (RFC 9420 §7.4). ps is copied; a
// previously held secret for x is zeroed. SetPathSecret does not check the
// key against a tree; see Check.
func (p *Private) SetPathSecret(x treemath.NodeIndex, ps PathSecret) error {
	if x.IsLeaf() || !treemath.InSubtree(p.leaf.Node(), x) {
		return fmt.Errorf("treekem: set path secret of node %d: not on the direct path of leaf %d", x, p.leaf)
	}
	k, err := deriveNodeKey(p.suite, ps)
	if err != nil {
		return fmt.Errorf("treekem: set path secret of node %d: %w", x, err)
	}
	p.put(x, k)
	return nil
}

// put stores k for x, zeroing a replaced key.
func (p *Private) put(x treemath.NodeIndex, k *nodeKey) {
	if old := p.nodes[x]; old != nil {
		old.zero()
	}
	p.nodes[x] = k
}

// drop zeroes and forgets the key of x, if held.
func (p *Private) drop(x treemath.NodeIndex) {
	if old := p.nodes[x]; old != nil {
		old.zero()
		delete(p.nodes, x)
	}
}

// Check reports whether the state is consistent with the public tree t
// (test-vectors.md §TreeKEM, RFC 9420 §4 tree invariant): the member's
// leaf is non-blank and carries the public key of the leaf private key,
// and every node the member holds a key for is a non-blank parent on its
// direct path carrying the matching public key.
func (p *Private) Check(t *tree.Tree) error {
	if t.Suite().ID() != p.suite.ID() {
		return fmt.Errorf("treekem: check private state of leaf %d: suite %v, tree has %v", p.leaf, p.suite, t.Suite())
	}
	leaf := t.Leaf(p.leaf)
	if leaf == nil {
		return fmt.Errorf("treekem: check private state of leaf %d: leaf is blank or outside the tree", p.leaf)
	}
	if !bytes.Equal(leaf.EncryptionKey, p.leafPub) {
		return fmt.Errorf("treekem: check private state of leaf %d: leaf private key does not match the leaf's encryption key", p.leaf)
	}
	for _, x := range p.Nodes() {
		pn := t.ParentNode(x)
		if pn == nil {
			return fmt.Errorf("treekem: check private state of leaf %d: node %d is blank or not a parent node", p.leaf, x)
		}
		if !bytes.Equal(pn.EncryptionKey, p.nodes[x].pub) {
			return fmt.Errorf("treekem: check private state of leaf %d: node %d: private key does not match the node's encryption key", p.leaf, x)
		}
	}
	return nil
}

// Clone returns an independent deep copy of p; each holds its own copies
// of the secrets.
func (p *Private) Clone() *Private {
	c := &Private{
		suite:   p.suite,
		leaf:    p.leaf,
		leafKey: slices.Clone(p.leafKey),
		leafPub: p.leafPub,
		nodes:   make(map[treemath.NodeIndex]*nodeKey, len(p.nodes)),
	}
	for x, k := range p.nodes {
		c.nodes[x] = &nodeKey{pathSecret: slices.Clone(k.pathSecret), priv: slices.Clone(k.priv), pub: k.pub}
	}
	return c
}

// Zero wipes every secret of p and forgets all node keys. p must not be
// used afterwards.
func (p *Private) Zero() {
	clear(p.leafKey)
	for x := range p.nodes {
		p.drop(x)
	}
}

// ImplantPathSecret installs the path secret a new member receives in
// its Welcome (RFC 9420 §12.4.3.1): ps is the path secret of node x, the
// lowest common ancestor of the member's leaf and the committer's, in
// the tree t of the new epoch. Path secrets are derived for x and each
// non-blank ancestor of x up to the root (the committer's filtered direct
// path above x, whose other nodes the commit blanked), and every derived
// public key must equal the node's key in t. On error p is unchanged.
func (p *Private) ImplantPathSecret(t *tree.Tree, x treemath.NodeIndex, ps PathSecret) error {
	lc := t.LeafCount()
	if x.IsLeaf() || !lc.HasNode(x) || !treemath.InSubtree(p.leaf.Node(), x) {
		return fmt.Errorf("treekem: implant path secret at node %d: not on the direct path of leaf %d (%d leaves)", x, p.leaf, lc)
	}
	var (
		nodes []treemath.NodeIndex
		keys  []*nodeKey
	)
	defer func() {
		for _, k := range keys {
			k.zero()
		}
	}()
	cur := PathSecret(slices.Clone(ps))
	defer func() { clear(cur) }()
	for y, ok := x, true; ok; y, ok = treemath.Parent(y, lc) {
		pn := t.ParentNode(y)
		if pn == nil {
			if y == x {
				return fmt.Errorf("treekem: implant path secret at node %d: node is blank", x)
			}
			continue
		}
		if len(nodes) > 0 {
			next, err := nextPathSecret(p.suite, cur)
			if err != nil {
				return fmt.Errorf("treekem: implant path secret at node %d: node %d: %w", x, y, err)
			}
			clear(cur)
			cur = next
		}
		k, err := deriveNodeKey(p.suite, cur)
		if err != nil {
			return fmt.Errorf("treekem: implant path secret at node %d: node %d: %w", x, y, err)
		}
		nodes, keys = append(nodes, y), append(keys, k)
		if !bytes.Equal(k.pub, pn.EncryptionKey) {
			return fmt.Errorf("treekem: implant path secret at node %d: node %d: derived public key does not match the tree", x, y)
		}
	}
	for i, y := range nodes {
		p.put(y, keys[i])
	}
	keys = nil
	return nil
}
