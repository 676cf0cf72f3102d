// Package treemath implements the index arithmetic of the array
// representation of MLS ratchet trees (RFC 9420 §4.1, §7.7, Appendix C).
//
// In RFC 9420 a ratchet tree is always full: its number of leaves is a power
// of two (§7.7 extends and truncates by doubling and halving). Leaf i sits at
// node 2i; parent nodes occupy the odd indices; a node's level is the number
// of trailing one bits of its index. The mapping to the RFC is:
//
//   - NodeWidth, Root, Level, Left, Right, Parent, Sibling: Appendix C
//     node_width, root, level, left, right, parent, sibling.
//   - DirectPath, Copath: §4.1.2 "Paths through a Ratchet Tree" and Appendix C
//     direct_path, copath (ordered from the leaf towards the root).
//   - CommonAncestor: Appendix C common_ancestor_direct.
//   - InSubtree, SubtreeLeaves: the subtree relation used by resolutions,
//     tree hashes and parent hashes (§4.1.1, §7.8, §7.9).
//
// Every function is total: where the RFC raises an exception (a leaf has no
// children, the root has no parent) or an index lies outside the tree, the
// function reports ok == false instead of panicking. A LeafCount is valid
// when it is a power of two no larger than MaxLeaves. The scalar functions
// run in O(1) and the path functions in O(log n); none of the scalar
// functions allocate.
package treemath

import "math/bits"

// LeafIndex is the index of a leaf among the leaves of a tree (RFC 9420
// Appendix C): leaf i is node 2i.
type LeafIndex uint32

// NodeIndex is the index of a node in the array representation of a tree
// (RFC 9420 Appendix C).
type NodeIndex uint32

// LeafCount is the number of leaves of a tree, a power of two in RFC 9420.
type LeafCount uint32

// MaxLeaves is the largest valid LeafCount: with 2^31 leaves the node
// indices 0..2^32-2 still fit a NodeIndex.
const MaxLeaves LeafCount = 1 << 31

// Valid reports whether n is a valid leaf count: a power of two between 1
// and MaxLeaves.
func (n LeafCount) Valid() bool {
	return n != 0 && n&(n-1) == 0 && n <= MaxLeaves
}

// HasLeaf reports whether l is a leaf of a valid tree with n leaves.
func (n LeafCount) HasLeaf(l LeafIndex) bool {
	return n.Valid() && uint32(l) < uint32(n)
}

// HasNode reports whether x is a node of a valid tree with n leaves.
func (n LeafCount) HasNode(x NodeIndex) bool {
	return n.Valid() && uint32(x) < NodeWidth(n)
}

// NodeWidth returns the number of nodes in a tree with n leaves, 2n-1
// (Appendix C node_width). It returns 0 for n == 0 and for n > MaxLeaves,
// whose width does not fit a NodeIndex.
func NodeWidth(n LeafCount) uint32 {
	if n == 0 || n > MaxLeaves {
		return 0
	}
	return 2*uint32(n) - 1
}

// Root returns the root of a tree with n leaves (Appendix C root). ok is
// false if n is not a valid leaf count.
func Root(n LeafCount) (root NodeIndex, ok bool) {
	if !n.Valid() {
		return 0, false
	}
	// For a power of two n the root is n-1: the node with level log2(n).
	return NodeIndex(n - 1), true
}

// Level returns the level of x: 0 for leaves, the level of its children
// plus one for parents (Appendix C level).
func Level(x NodeIndex) uint32 {
	return uint32(bits.TrailingZeros32(^uint32(x)))
}

// Left returns the left child of x (Appendix C left). ok is false if x is a
// leaf, which has no children, or if x is 2^32-1, which no tree contains.
func Left(x NodeIndex) (NodeIndex, bool) {
	k := Level(x)
	if k == 0 || k >= 32 {
		return 0, false
	}
	return x ^ NodeIndex(1)<<(k-1), true
}

// Right returns the right child of x (Appendix C right). ok is false if x
// is a leaf, which has no children, or if x is 2^32-1, which no tree
// contains.
func Right(x NodeIndex) (NodeIndex, bool) {
	k := Level(x)
	if k == 0 || k >= 32 {
		return 0, false
	}
	return x ^ NodeIndex(3)<<(k-1), true
}

// Parent returns the parent of x in a tree with n leaves (Appendix C
// parent). ok is false if n is invalid, x is outside the tree, or x is the
// root, which has no parent.
func Parent(x NodeIndex, n LeafCount) (NodeIndex, bool) {
	if !n.HasNode(x) || NodeIndex(n-1) == x {
		return 0, false
	}
	return parent(x), true
}

// parent is Appendix C parent for a non-root node of a full tree; its level
// is then at most 30, so the shifts stay inside 32 bits.
func parent(x NodeIndex) NodeIndex {
	k := Level(x)
	b := (x >> (k + 1)) & 1
	return (x | 1<<k) ^ (b << (k + 1))
}

// Sibling returns the other child of x's parent in a tree with n leaves
// (Appendix C sibling). ok is false where Parent's is.
func Sibling(x NodeIndex, n LeafCount) (NodeIndex, bool) {
	p, ok := Parent(x, n)
	if !ok {
		return 0, false
	}
	return sibling(x, p), true
}

// sibling returns the child of p that is not x.
func sibling(x, p NodeIndex) NodeIndex {
	d := NodeIndex(1) << (Level(p) - 1)
	if x < p {
		return p + d // right child
	}
	return p - d // left child
}

// Node returns the node index of leaf l, 2l. Leaf indices of valid trees
// are below 2^31; larger values wrap, so check them with HasLeaf first.
func (l LeafIndex) Node() NodeIndex { return NodeIndex(2 * uint32(l)) }

// IsLeaf reports whether x is a leaf node (an even index).
func (x NodeIndex) IsLeaf() bool { return x&1 == 0 }

// Leaf returns the leaf index of x. ok is false if x is a parent node.
func (x NodeIndex) Leaf() (LeafIndex, bool) {
	if !x.IsLeaf() {
		return 0, false
	}
	return LeafIndex(x >> 1), true
}

// depth returns the number of nodes on the direct path of a node of level
// k in a tree with n leaves: log2(n) - k.
func depth(x NodeIndex, n LeafCount) int {
	return bits.TrailingZeros32(uint32(n)) - int(Level(x))
}

// DirectPath returns the direct path of x in a tree with n leaves, ordered
// from x's parent to the root (§4.1.2); the root's direct path is empty. ok
// is false if n is invalid or x is outside the tree. The slice is freshly
// allocated, with exactly its length as capacity.
func DirectPath(x NodeIndex, n LeafCount) ([]NodeIndex, bool) {
	if !n.HasNode(x) {
		return nil, false
	}
	path := make([]NodeIndex, 0, depth(x, n))
	for r := NodeIndex(n - 1); x != r; {
		x = parent(x)
		path = append(path, x)
	}
	return path, true
}

// Copath returns the copath of x in a tree with n leaves: the sibling of x
// and of each node on its direct path below the root, ordered from the
// leaf side to the root side (§4.1.2). The root's copath is empty. ok is
// false if n is invalid or x is outside the tree.
func Copath(x NodeIndex, n LeafCount) ([]NodeIndex, bool) {
	if !n.HasNode(x) {
		return nil, false
	}
	path := make([]NodeIndex, 0, depth(x, n))
	for r := NodeIndex(n - 1); x != r; {
		p := parent(x)
		path = append(path, sibling(x, p))
		x = p
	}
	return path, true
}

// CommonAncestor returns the lowest node that is a or an ancestor of a
// and also b or an ancestor of b (Appendix C common_ancestor_direct).
// For two nodes of the same tree the result lies in that tree.
func CommonAncestor(a, b NodeIndex) NodeIndex {
	if InSubtree(a, b) {
		return b
	}
	if InSubtree(b, a) {
		return a
	}
	// Strip the bits below the highest differing bit; the ancestor keeps
	// the common prefix, followed by a zero and then all ones.
	k := uint32(bits.Len32(uint32(a ^ b)))
	return NodeIndex(uint64(a)>>k<<k | (uint64(1)<<(k-1) - 1))
}

// InSubtree reports whether x lies in the subtree rooted at r, that is
// whether x is r or a descendant of r.
func InSubtree(x, r NodeIndex) bool {
	k := Level(r)
	if Level(x) > k {
		return false
	}
	return uint64(x)>>(k+1) == uint64(r)>>(k+1)
}

// SubtreeLeaves returns the leaves under r: the first leaf and their
// number, which is 2^Level(r). ok is false for r == 2^32-1, which no tree
// contains.
func SubtreeLeaves(r NodeIndex) (first LeafIndex, count uint32, ok bool) {
	k := Level(r)
	if k >= 32 {
		return 0, 0, false
	}
	// The leftmost node of the subtree is r - (2^k - 1).
	left := uint32(r) - (uint32(1)<<k - 1)
	return LeafIndex(left >> 1), uint32(1) << k, true
}
