package mls

// Refiller returns the member that sets again, with a path commit of its
// own, the parent nodes that a commit by the member at leaf committer
// left blank by removing the leaf removed, in a group whose members are
// then at leaves; false when no node with members under it stays blank.
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
func Refiller(removed, committer LeafIndex, leaves []LeafIndex) (LeafIndex, bool) {
	for k := 1; k < 32; k++ {
		block := removed >> k
		if committer>>k == block {
			return 0, false // the committer's path set this node and those above
		}
		found, best := false, LeafIndex(0)
		for _, l := range leaves {
			if l != removed && l>>k == block && (!found || l < best) {
				found, best = true, l
			}
		}
		if found {
			return best, true
		}
	}
	return 0, false
}
