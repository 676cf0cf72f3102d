package mls

// Refiller returns the member that sets again, with a path commit of its
// own, the parent nodes that a commit by the member at leaf committer
// left blank by removing the leaf removed; false when no node with
// members under it stays blank. Call it on the group with the commit
// merged.
//
// Removing a leaf blanks the parent nodes of its direct path. The
// committer's path sets again those it shares with the removed leaf,
// from their lowest common ancestor up; those below it that still have
// members under them stay blank, and every later path commit whose
// copath meets one encrypts to each member under it instead of to one
// key. The leftmost member under the lowest of those nodes sets them
// all again with a self-update (its direct path holds every one of
// them); nodes lower down have no member under them and cost nothing
// blank. Every member computes the same answer from the tree.
func (g *Group) Refiller(removed, committer LeafIndex) (LeafIndex, bool) {
	t := g.c.tree
	return refiller(removed, committer, LeafIndex(t.LeafCount()), func(l LeafIndex) bool { return t.Leaf(l) != nil })
}

// MemberCount returns the number of members (non-blank leaves).
func (g *Group) MemberCount() int { return g.c.tree.MemberCount() }

// refiller is Refiller over a tree of width leaves whose occupied leaves
// member reports. It looks only at the leaves under the removed leaf's
// ancestors up to the first that holds another member.
func refiller(removed, committer, width LeafIndex, member func(LeafIndex) bool) (LeafIndex, bool) {
	for k := 1; k < 32; k++ {
		block := removed >> k
		if committer>>k == block {
			return 0, false // the committer's path set this node and those above
		}
		lo := block << k
		hi := min(lo+1<<k, width)
		for l := lo; l < hi; l++ {
			if l != removed && member(l) {
				return l, true
			}
		}
	}
	return 0, false
}
