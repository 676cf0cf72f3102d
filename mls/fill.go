package mls

import (
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treemath"
)

// Keeping a large group's tree filled. A path commit encrypts one path
// secret to each node in the resolution of each copath node: one when
// that node holds a key, every member under it when it is blank. Parent
// nodes are set only by path commits, along the committer's filtered
// direct path, so a group grown by Adds (which commit no path) or
// thinned by Removes (which blank the removed leaf's path) has blank
// parents, and a member whose copath meets a blank node of height k
// commits up to 2^k ciphertexts for it: in a 10,000-member group on
// X-Wing, a commit of megabytes, past the server's message limit.
//
// The rule below names, from the tree alone, the members that set those
// nodes again with a self-update, so that every member computes the same
// answer. Call a node fillable when it is a blank parent of height
// FillHeight or more with members under both its children: exactly the
// blank nodes that a path commit from under it sets. For each fillable
// node with no fillable node below it, the leftmost member under it
// fills: its direct path holds that node and every fillable node above
// it, so once the named members have committed no node is fillable, and
// nested blank nodes (a removal far from its committer leaves a chain of
// them) cost one self-update, not one per node. Nodes below FillHeight
// may stay blank: they cost a commit at most 2^FillHeight - 1 = 7 more
// ciphertexts (about 2 on average), while filling them would cost the
// group one more path commit per 2 or 4 members instead of per 8. (Height
// 4 halves the fills and adds about 6 ciphertexts to every commit: at
// 2,000 members, grown in batches of 150 and filled, a commit encrypts
// 13.2 path secrets on average at height 3, 17.6 at height 4 and 11.5 at
// height 2, against a full tree's 11. TestTreeFillCost checks the bound.)

// FillHeight is the lowest height of the parent nodes that TreeFiller
// keeps set.
const FillHeight = 3

// TreeFiller reports whether the member at leaf l fills the tree (see
// the rule above): whether the lowest fillable node on l's filtered
// direct path has no fillable node below it and l as the leftmost member
// under it. It is false for a blank leaf.
func (g *Group) TreeFiller(l LeafIndex) bool {
	return treeFiller(g.c.tree, l)
}

// TreeFillers returns, left to right, the members for which TreeFiller
// holds: those whose self-updates leave no blank parent node of height
// FillHeight or more with members under both its children.
func (g *Group) TreeFillers() []LeafIndex {
	t := g.c.tree
	var out []LeafIndex
	seen := map[LeafIndex]bool{}
	step := treemath.NodeIndex(1) << FillHeight
	for x := step - 1; uint32(x) < uint32(t.NodeCount()); x += step {
		if !fillable(t, x) {
			continue
		}
		l, ok := leftmostMember(t, x)
		if !ok || seen[l] {
			continue
		}
		seen[l] = true
		if treeFiller(t, l) {
			out = append(out, l)
		}
	}
	// Nodes are visited left to right, and a member is the leftmost
	// under nodes to its right only: out is in leaf order already.
	return out
}

// MemberCount returns the number of members (non-blank leaves).
func (g *Group) MemberCount() int { return g.c.tree.MemberCount() }

// treeFiller is TreeFiller on tree t.
func treeFiller(t *tree.Tree, l LeafIndex) bool {
	if !t.LeafCount().HasLeaf(l) || t.Leaf(l) == nil {
		return false
	}
	path, _, err := t.FilteredDirectPath(l)
	if err != nil {
		return false
	}
	for _, p := range path {
		// A blank node of the filtered direct path has members under
		// both children: l under one, the copath child's under the other.
		if treemath.Level(p) < FillHeight || !t.Blank(p) {
			continue
		}
		m, ok := leftmostMember(t, p)
		return ok && m == l && !fillableBelow(t, p)
	}
	return false
}

// fillable reports whether x is a fillable node: a blank parent of
// height FillHeight or more with members under both children.
func fillable(t *tree.Tree, x treemath.NodeIndex) bool {
	if treemath.Level(x) < FillHeight || !t.Blank(x) {
		return false
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	_, okL := leftmostMember(t, l)
	_, okR := leftmostMember(t, r)
	return okL && okR
}

// fillableBelow reports whether a fillable node lies under x. Nodes of
// height FillHeight or more are those whose index ends in FillHeight one
// bits.
func fillableBelow(t *tree.Tree, x treemath.NodeIndex) bool {
	k := treemath.Level(x)
	lo := uint64(x) - (uint64(1)<<k - 1)
	hi := uint64(x) + (uint64(1)<<k - 1)
	step := uint64(1) << FillHeight
	for y := lo + step - 1; y <= hi && y < uint64(t.NodeCount()); y += step {
		if y != uint64(x) && fillable(t, treemath.NodeIndex(y)) {
			return true
		}
	}
	return false
}

// leftmostMember returns the first non-blank leaf under node x.
func leftmostMember(t *tree.Tree, x treemath.NodeIndex) (treemath.LeafIndex, bool) {
	first, n, ok := treemath.SubtreeLeaves(x)
	if !ok {
		return 0, false
	}
	lc := t.LeafCount()
	for l := first; l < first+treemath.LeafIndex(n) && lc.HasLeaf(l); l++ {
		if t.Leaf(l) != nil {
			return l, true
		}
	}
	return 0, false
}
