package tree

import (
	"fmt"

	"github.com/parley-chat/parley/mls/internal/treemath"
)

// Resolution returns the resolution of node x (RFC 9420 §4.1.1): the
// non-blank nodes covering every non-blank descendant of x, depth-first and
// left-first, where a non-blank parent contributes itself followed by its
// unmerged leaves (as node indices, leaf u at node 2u). It returns nil if x
// is outside the tree. The slice is freshly allocated.
func (t *Tree) Resolution(x treemath.NodeIndex) []treemath.NodeIndex {
	return t.AppendResolution(nil, x)
}

// AppendResolution appends the resolution of node x to dst and returns the
// extended slice; see Resolution.
func (t *Tree) AppendResolution(dst []treemath.NodeIndex, x treemath.NodeIndex) []treemath.NodeIndex {
	if uint64(x) >= uint64(t.n) {
		return dst
	}
	nd := t.at(x)
	if nd != nil {
		dst = append(dst, x)
		if nd.Parent != nil {
			for _, u := range nd.Parent.UnmergedLeaves {
				dst = append(dst, treemath.LeafIndex(u).Node())
			}
		}
		return dst
	}
	l, ok := treemath.Left(x)
	if !ok {
		return dst // blank leaf
	}
	r, _ := treemath.Right(x)
	dst = t.AppendResolution(dst, l)
	return t.AppendResolution(dst, r)
}

// subtreeBlank reports whether every node of the subtree under x is blank,
// that is whether the resolution of x is empty. The subtree occupies a
// contiguous range of the node array, scanned until the first non-blank
// node.
func (t *Tree) subtreeBlank(x treemath.NodeIndex) bool {
	k := treemath.Level(x)
	lo := uint64(x) - (uint64(1)<<k - 1)
	hi := uint64(x) + (uint64(1)<<k - 1)
	for i := lo; i <= hi && i < uint64(t.n); i++ {
		if t.at(treemath.NodeIndex(i)) != nil {
			return false
		}
	}
	return true
}

// FilteredDirectPath returns the filtered direct path of leaf i (RFC 9420
// §4.1.2), ordered from the leaf towards the root, and alongside it the
// copath child of each of its nodes: path[j] is kept because copath[j],
// its child not on the leaf's direct path, has a non-empty resolution.
// The slices are freshly allocated.
func (t *Tree) FilteredDirectPath(i treemath.LeafIndex) (path, copath []treemath.NodeIndex, err error) {
	lc := t.LeafCount()
	if !lc.HasLeaf(i) {
		return nil, nil, fmt.Errorf("tree: filtered direct path: leaf %d out of range (%d leaves)", i, lc)
	}
	dp, _ := treemath.DirectPath(i.Node(), lc)
	cp, _ := treemath.Copath(i.Node(), lc)
	for j, p := range dp {
		if !t.subtreeBlank(cp[j]) {
			path = append(path, p)
			copath = append(copath, cp[j])
		}
	}
	return path, copath, nil
}
