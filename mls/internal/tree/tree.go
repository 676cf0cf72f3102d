package tree

import (
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// Tree is the public ratchet tree of one group (RFC 9420 §4, §7) in the
// array representation of Appendix C: node i of a tree with n leaves, for
// n a power of two, with blank nodes stored as nil. See the package doc for
// the ownership rules of nodes.
type Tree struct {
	suite *suite.Suite
	// n is the number of nodes; chunks hold them (see store.go), with
	// their cached tree hashes: nil if it must be recomputed. Invariant:
	// if the hash of node i is nil so is that of every ancestor of i, so
	// invalidation can stop at the first nil entry.
	n      int
	chunks []*chunk
	own    *owner
	keys   keyIndex
	// enc encodes hash inputs; its storage is reused from one hash to
	// the next, so hashing allocates only the hashes (see newHash).
	enc codec.Builder
	// arena holds hashes computed by this Tree back to back, and
	// arenaHint is the number of hashes the next arena should have room
	// for (see newHash); neither is shared with clones.
	arena     []byte
	arenaHint int
}

// New returns a one-leaf tree holding leaf, the tree a creator starts a
// group with (RFC 9420 §11). The Tree takes ownership of leaf.
func New(s *suite.Suite, leaf *wire.LeafNode) (*Tree, error) {
	if s == nil {
		return nil, errors.New("tree: new: nil suite")
	}
	if leaf == nil {
		return nil, errors.New("tree: new: nil leaf node")
	}
	t := &Tree{suite: s, own: new(owner)}
	t.resize(1)
	t.keys = newKeyIndex(t)
	t.set(0, &wire.Node{Type: wire.NodeTypeLeaf, Leaf: leaf})
	return t, nil
}

// Decode decodes a ratchet_tree extension body (RFC 9420 §12.4.3.3,
// optional<Node> ratchet_tree<V>) and builds a Tree from it with FromWire.
// Every byte of data must be consumed. The nodes hold copies of data's
// bytes: the caller keeps data.
func Decode(s *suite.Suite, data []byte) (*Tree, error) {
	var rt wire.RatchetTree
	if err := codec.Unmarshal(data, &rt); err != nil {
		return nil, fmt.Errorf("tree: decode: %w", err)
	}
	return FromWire(s, rt)
}

// DecodeAliasing is Decode without copying: the nodes' byte slices (keys,
// credentials, signatures) alias data, which the caller hands over to the
// Tree and must not modify afterwards. Decoding a tree then allocates only
// the node structures. data stays in memory as long as any node decoded
// from it is held by this Tree or its clones, even once the others have
// been replaced: at most the size of the tree as decoded.
func DecodeAliasing(s *suite.Suite, data []byte) (*Tree, error) {
	var rt wire.RatchetTree
	if err := codec.UnmarshalAliasing(data, &rt); err != nil {
		return nil, fmt.Errorf("tree: decode: %w", err)
	}
	return FromWire(s, rt)
}

// FromWire builds a Tree from the nodes of a ratchet_tree extension (RFC
// 9420 §12.4.3.3) and checks its shape: at least one node, the last node
// non-blank (trailing blanks must be omitted), an odd number of nodes, leaf
// nodes at even and parent nodes at odd indices, and each parent's
// unmerged_leaves strictly increasing, in range and below that parent. The
// tree is padded with blank nodes to 2^(d+1)-1 nodes. The Tree takes
// ownership of the nodes of rt. FromWire does not check signatures, hashes
// or keys; see Validate.
func FromWire(s *suite.Suite, rt wire.RatchetTree) (*Tree, error) {
	if s == nil {
		return nil, errors.New("tree: from wire: nil suite")
	}
	n := len(rt)
	if n == 0 {
		return nil, errors.New("tree: from wire: empty ratchet tree")
	}
	if rt[n-1] == nil {
		return nil, fmt.Errorf("tree: from wire: last node %d is blank (trailing blank nodes must be omitted)", n-1)
	}
	if n%2 == 0 {
		return nil, fmt.Errorf("tree: from wire: even number of nodes %d (the last node must be a leaf)", n)
	}
	if uint64(n) > uint64(treemath.NodeWidth(treemath.MaxLeaves)) {
		return nil, fmt.Errorf("tree: from wire: %d nodes exceed the largest tree", n)
	}
	lc := treemath.LeafCount(1)
	for treemath.NodeWidth(lc) < uint32(n) {
		lc *= 2
	}
	t := &Tree{suite: s, own: new(owner)}
	t.resize(int(treemath.NodeWidth(lc)))
	for i, nd := range rt {
		if err := t.checkNode(treemath.NodeIndex(i), nd); err != nil {
			return nil, fmt.Errorf("tree: from wire: %w", err)
		}
		t.chunks[i>>chunkShift].nodes[i&chunkMask] = nd
	}
	t.keys = newKeyIndex(t)
	t.arenaHint = t.n // one tree hash per node (see newHash)
	return t, nil
}

// errEmpty reports use of a Tree not built by New, Decode or FromWire.
var errEmpty = errors.New("tree has no nodes or no suite (not built by New, Decode or FromWire)")

// ready returns errEmpty for a zero Tree.
func (t *Tree) ready() error {
	if t == nil || t.suite == nil || t.n == 0 {
		return errEmpty
	}
	return nil
}

// checkNode checks that nd may sit at x: its type matches the position and,
// for a parent, its unmerged leaves are increasing and below x.
func (t *Tree) checkNode(x treemath.NodeIndex, nd *wire.Node) error {
	if nd == nil {
		return nil
	}
	if x.IsLeaf() {
		if nd.Type != wire.NodeTypeLeaf || nd.Leaf == nil || nd.Parent != nil {
			return fmt.Errorf("node %d: leaf position holds node_type %d, want a leaf node", x, nd.Type)
		}
		return nil
	}
	if nd.Type != wire.NodeTypeParent || nd.Parent == nil || nd.Leaf != nil {
		return fmt.Errorf("node %d: parent position holds node_type %d, want a parent node", x, nd.Type)
	}
	lc := t.LeafCount()
	first, count, _ := treemath.SubtreeLeaves(x)
	for j, u := range nd.Parent.UnmergedLeaves {
		if !lc.HasLeaf(treemath.LeafIndex(u)) {
			return fmt.Errorf("node %d: unmerged leaf %d out of range (%d leaves)", x, u, lc)
		}
		if u < uint32(first) || u-uint32(first) >= count {
			return fmt.Errorf("node %d: unmerged leaf %d is not below the node", x, u)
		}
		if j > 0 && nd.Parent.UnmergedLeaves[j-1] >= u {
			return fmt.Errorf("node %d: unmerged leaves not strictly increasing at %d", x, u)
		}
	}
	return nil
}

// Wire returns the tree as the nodes of a ratchet_tree extension (RFC 9420
// §12.4.3.3): all nodes up to the last non-blank one, blank nodes as nil.
// The slice is fresh; the nodes are shared and must not be modified.
func (t *Tree) Wire() wire.RatchetTree {
	end := t.n
	for end > 0 && t.at(treemath.NodeIndex(end-1)) == nil {
		end--
	}
	rt := make(wire.RatchetTree, end)
	for i := 0; i < end; i += chunkSize {
		copy(rt[i:], t.chunks[i>>chunkShift].nodes[:min(chunkSize, end-i)])
	}
	return rt
}

// Encode returns the encoded ratchet_tree extension body of the tree.
func (t *Tree) Encode() ([]byte, error) {
	b, err := codec.Marshal(t.Wire())
	if err != nil {
		return nil, fmt.Errorf("tree: encode: %w", err)
	}
	return b, nil
}

// Suite returns the tree's cipher suite.
func (t *Tree) Suite() *suite.Suite { return t.suite }

// LeafCount returns the number of leaves, blank or not: a power of two.
func (t *Tree) LeafCount() treemath.LeafCount {
	return treemath.LeafCount((t.n + 1) / 2)
}

// NodeCount returns the number of nodes, 2*LeafCount()-1.
func (t *Tree) NodeCount() int { return t.n }

// Root returns the index of the root node.
func (t *Tree) Root() treemath.NodeIndex { return treemath.NodeIndex(t.n / 2) }

// Node returns node x, or nil if it is blank or outside the tree.
func (t *Tree) Node(x treemath.NodeIndex) *wire.Node {
	if uint64(x) >= uint64(t.n) {
		return nil
	}
	return t.at(x)
}

// Blank reports whether node x is blank (or outside the tree).
func (t *Tree) Blank(x treemath.NodeIndex) bool { return t.Node(x) == nil }

// Leaf returns the leaf node of leaf i, or nil if it is blank or outside
// the tree.
func (t *Tree) Leaf(i treemath.LeafIndex) *wire.LeafNode {
	if !t.LeafCount().HasLeaf(i) {
		return nil
	}
	if nd := t.at(i.Node()); nd != nil {
		return nd.Leaf
	}
	return nil
}

// ParentNode returns the parent node at x, or nil if x is blank, a leaf or
// outside the tree.
func (t *Tree) ParentNode(x treemath.NodeIndex) *wire.ParentNode {
	if x.IsLeaf() {
		return nil
	}
	if nd := t.Node(x); nd != nil {
		return nd.Parent
	}
	return nil
}

// Members yields the non-blank leaves in increasing leaf index order.
func (t *Tree) Members() iter.Seq2[treemath.LeafIndex, *wire.LeafNode] {
	return func(yield func(treemath.LeafIndex, *wire.LeafNode) bool) {
		for x := 0; x < t.n; x += 2 {
			if nd := t.at(treemath.NodeIndex(x)); nd != nil {
				if !yield(treemath.LeafIndex(x/2), nd.Leaf) {
					return
				}
			}
		}
	}
}

// MemberCount returns the number of non-blank leaves.
func (t *Tree) MemberCount() int {
	c := 0
	for x := 0; x < t.n; x += 2 {
		if t.at(treemath.NodeIndex(x)) != nil {
			c++
		}
	}
	return c
}

// Clone returns an independent copy of the tree: changes to either do not
// show in the other. Nodes are immutable and shared; node storage, cached
// hashes and the key index are shared copy-on-write (see store.go), so
// Clone costs O(n/32) pointer copies and a later change to one direct path
// copies O(log n) small blocks. Clone gives t a new write token, so it
// counts as a write to t (see the package doc on concurrency).
func (t *Tree) Clone() *Tree {
	t.own = new(owner)
	c := &Tree{
		suite:  t.suite,
		n:      t.n,
		chunks: slices.Clone(t.chunks),
		own:    new(owner),
		keys:   t.keys.clone(),
	}
	return c
}

// Patch makes t the tree of a later epoch from the nodes that differ
// between the two: it resizes t to width nodes (2^(d+1)-1), then stores
// nds[i] at xs[i] (nil: blank), dropping the cached hashes above each
// changed node, so that the next TreeHash recomputes only the changed
// paths. A blank at an index beyond width is a node the tree lost when it
// shrank and is skipped. Each node is checked against its position as
// FromWire checks it; the Tree takes ownership of the nodes. On an error
// t is left partly patched: patch a Clone. Whether the result is the later
// epoch's tree is the caller's to check, by its tree hash.
func (t *Tree) Patch(width int, xs []treemath.NodeIndex, nds []*wire.Node) error {
	if err := t.ready(); err != nil {
		return fmt.Errorf("tree: patch: %w", err)
	}
	if len(xs) != len(nds) {
		return fmt.Errorf("tree: patch: %d indices for %d nodes", len(xs), len(nds))
	}
	if w := uint64(width) + 1; w < 2 || w&(w-1) != 0 || uint64(width) > uint64(treemath.NodeWidth(treemath.MaxLeaves)) {
		return fmt.Errorf("tree: patch: %d nodes is not the size of a ratchet tree", width)
	}
	if width != t.n {
		t.resize(width)
	}
	for i, x := range xs {
		nd := nds[i]
		if int(x) >= width {
			if nd != nil {
				return fmt.Errorf("tree: patch: node %d beyond the tree of %d nodes", x, width)
			}
			continue
		}
		if err := t.checkNode(x, nd); err != nil {
			return fmt.Errorf("tree: patch: %w", err)
		}
		t.set(x, nd)
	}
	return nil
}

// invalidate drops the cached tree hashes of x and its ancestors.
func (t *Tree) invalidate(x treemath.NodeIndex) {
	lc := t.LeafCount()
	for {
		if t.hashAt(x) == nil {
			return // every ancestor is already stale
		}
		t.setHash(x, nil)
		p, ok := treemath.Parent(x, lc)
		if !ok {
			return
		}
		x = p
	}
}

// set stores nd at x and invalidates the cached hashes above it.
// The key index follows.
func (t *Tree) set(x treemath.NodeIndex, nd *wire.Node) {
	c := t.writable(x)
	old := c.nodes[x&chunkMask]
	c.nodes[x&chunkMask] = nd
	if old != nil || nd != nil {
		t.keys.update(t, x, old, nd)
	}
	t.invalidate(x)
}

// SetLeaf sets leaf i to leaf, or blanks it if leaf is nil, without
// touching any other node (TreeKEM blanks or sets the direct path itself).
// The Tree takes ownership of leaf.
func (t *Tree) SetLeaf(i treemath.LeafIndex, leaf *wire.LeafNode) error {
	if !t.LeafCount().HasLeaf(i) {
		return fmt.Errorf("tree: set leaf: leaf %d out of range (%d leaves)", i, t.LeafCount())
	}
	if leaf == nil {
		t.set(i.Node(), nil)
		return nil
	}
	t.set(i.Node(), &wire.Node{Type: wire.NodeTypeLeaf, Leaf: leaf})
	return nil
}

// SetParent sets parent node x to p, or blanks it if p is nil. x must be a
// parent position of the tree; p's unmerged leaves must satisfy the rules
// FromWire checks. The Tree takes ownership of p.
func (t *Tree) SetParent(x treemath.NodeIndex, p *wire.ParentNode) error {
	if x.IsLeaf() || uint64(x) >= uint64(t.n) {
		return fmt.Errorf("tree: set parent: node %d is not a parent node of the tree (%d nodes)", x, t.n)
	}
	if p == nil {
		t.set(x, nil)
		return nil
	}
	nd := &wire.Node{Type: wire.NodeTypeParent, Parent: p}
	if err := t.checkNode(x, nd); err != nil {
		return fmt.Errorf("tree: set parent: %w", err)
	}
	t.set(x, nd)
	return nil
}

// BlankPath blanks every node on the direct path of leaf i (RFC 9420 §7.4,
// §12.1.2, §12.1.3); the leaf itself is left as it is.
func (t *Tree) BlankPath(i treemath.LeafIndex) error {
	if !t.LeafCount().HasLeaf(i) {
		return fmt.Errorf("tree: blank path: leaf %d out of range (%d leaves)", i, t.LeafCount())
	}
	path, _ := treemath.DirectPath(i.Node(), t.LeafCount())
	for _, x := range path {
		if t.at(x) != nil {
			t.set(x, nil)
		}
	}
	return nil
}

// AddLeaf adds leaf as RFC 9420 §12.1.1 Add does: it takes the leftmost
// blank leaf, or extends the tree to the right (§7.7) if there is none,
// adds the new leaf index to unmerged_leaves of every non-blank parent on
// its direct path, and stores leaf there. It returns the new leaf's index.
// The Tree takes ownership of leaf.
func (t *Tree) AddLeaf(leaf *wire.LeafNode) (treemath.LeafIndex, error) {
	if leaf == nil {
		return 0, errors.New("tree: add leaf: nil leaf node")
	}
	if err := t.ready(); err != nil {
		return 0, fmt.Errorf("tree: add leaf: %w", err)
	}
	x := -1
	if li, ok := t.FirstBlankLeaf(); ok {
		x = int(li.Node())
	} else {
		if err := t.extend(); err != nil {
			return 0, fmt.Errorf("tree: add leaf: %w", err)
		}
		x = t.n/2 + 1
	}
	li := treemath.LeafIndex(x / 2)
	path, _ := treemath.DirectPath(treemath.NodeIndex(x), t.LeafCount())
	for _, p := range path {
		nd := t.at(p)
		if nd == nil {
			continue
		}
		old := nd.Parent.UnmergedLeaves
		pos, found := slices.BinarySearch(old, uint32(li))
		if found {
			continue
		}
		um := make([]uint32, 0, len(old)+1)
		um = append(append(append(um, old[:pos]...), uint32(li)), old[pos:]...)
		np := *nd.Parent
		np.UnmergedLeaves = um
		t.set(p, &wire.Node{Type: wire.NodeTypeParent, Parent: &np})
	}
	t.set(treemath.NodeIndex(x), &wire.Node{Type: wire.NodeTypeLeaf, Leaf: leaf})
	return li, nil
}

// FirstBlankLeaf returns the leftmost blank leaf, and false if every leaf
// is non-blank. Whole chunks without a blank leaf are skipped cheaply.
func (t *Tree) FirstBlankLeaf() (treemath.LeafIndex, bool) {
	for ci, c := range t.chunks {
		base := ci << chunkShift
		for j := 0; j < chunkSize && base+j < t.n; j += 2 {
			if c.nodes[j] == nil {
				return treemath.LeafIndex((base + j) / 2), true
			}
		}
	}
	return 0, false
}

// extend doubles the tree (RFC 9420 §7.7): the old tree becomes the left
// subtree of a new blank root, with an all-blank right subtree.
func (t *Tree) extend() error {
	lc := t.LeafCount()
	if lc >= treemath.MaxLeaves {
		return fmt.Errorf("tree is full (%d leaves)", lc)
	}
	t.resize(int(treemath.NodeWidth(2 * lc)))
	return nil
}

// UpdateLeaf replaces the non-blank leaf i with leaf and blanks its direct
// path, as RFC 9420 §12.1.2 Update does. The Tree takes ownership of leaf.
func (t *Tree) UpdateLeaf(i treemath.LeafIndex, leaf *wire.LeafNode) error {
	if leaf == nil {
		return fmt.Errorf("tree: update leaf %d: nil leaf node", i)
	}
	if t.Leaf(i) == nil {
		return fmt.Errorf("tree: update leaf %d: leaf is blank or out of range (%d leaves)", i, t.LeafCount())
	}
	t.set(i.Node(), &wire.Node{Type: wire.NodeTypeLeaf, Leaf: leaf})
	return t.BlankPath(i)
}

// RemoveLeaf removes the member at leaf i as RFC 9420 §12.1.3 Remove does:
// it blanks the leaf and its direct path, then truncates the tree (§7.7),
// halving it while its right half holds no non-blank leaf. Removing the
// last member leaves a single blank leaf.
func (t *Tree) RemoveLeaf(i treemath.LeafIndex) error {
	if t.Leaf(i) == nil {
		return fmt.Errorf("tree: remove leaf %d: leaf is blank or out of range (%d leaves)", i, t.LeafCount())
	}
	if err := t.BlankPath(i); err != nil {
		return err
	}
	t.set(i.Node(), nil)
	t.truncate()
	return nil
}

// truncate shrinks the tree to the smallest power of two of leaves that
// holds every non-blank leaf (at least one leaf).
func (t *Tree) truncate() {
	last := -1
	for x := t.n - 1; x >= 0; x -= 2 {
		if t.at(treemath.NodeIndex(x)) != nil {
			last = x / 2
			break
		}
	}
	lc := treemath.LeafCount(1)
	for int(lc) <= last {
		lc *= 2
	}
	w := int(treemath.NodeWidth(lc))
	if w == t.n {
		return
	}
	t.resize(w) // every dropped node is blank
	// Hashes of the remaining nodes describe unchanged subtrees and stay.
}

// Apply applies one Add, Update or Remove proposal (RFC 9420 §12.1.1-
// §12.1.3) sent by the member at leaf sender. Other proposal types do not
// change the tree and are an error here. It returns the leaf index the
// proposal added, updated or removed. The Tree takes ownership of the
// leaf node inside p. Apply does not validate the proposal (signatures,
// capabilities, key uniqueness); see Validate and the proposal validation
// of RFC 9420 §12.2.
func (t *Tree) Apply(p *wire.Proposal, sender treemath.LeafIndex) (treemath.LeafIndex, error) {
	if p == nil {
		return 0, errors.New("tree: apply: nil proposal")
	}
	switch {
	case p.Type == wire.ProposalTypeAdd && p.Add != nil:
		return t.AddLeaf(&p.Add.KeyPackage.LeafNode)
	case p.Type == wire.ProposalTypeUpdate && p.Update != nil:
		return sender, t.UpdateLeaf(sender, &p.Update.LeafNode)
	case p.Type == wire.ProposalTypeRemove && p.Remove != nil:
		li := treemath.LeafIndex(p.Remove.Removed)
		return li, t.RemoveLeaf(li)
	}
	return 0, fmt.Errorf("tree: apply: proposal type %d does not change the tree", p.Type)
}
