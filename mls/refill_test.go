package mls

import (
	"slices"
	"testing"
)

func TestRefiller(t *testing.T) {
	leaves := func(ls ...LeafIndex) []LeafIndex { return ls }
	for _, tc := range []struct {
		name               string
		removed, committer LeafIndex
		leaves             []LeafIndex
		want               LeafIndex
		ok                 bool
	}{
		{"the sibling refills", 7, 0, leaves(0, 1, 2, 3, 4, 5, 6), 6, true},
		{"the committer is the sibling", 6, 7, leaves(0, 1, 2, 3, 4, 5, 7), 0, false},
		{"the sibling is blank: the leftmost a level up", 5, 0, leaves(0, 1, 2, 3, 6, 7), 6, true},
		{"the committer is under the lowest node with members", 3, 1, leaves(0, 1), 0, false},
		{"a resync at its own leaf", 9, 9, leaves(0, 1, 8, 9, 10), 0, false},
		{"no member under the removed leaf's blanked nodes", 12, 0, leaves(0, 1, 2), 0, false},
		{"the leftmost under the node", 20, 0, leaves(0, 17, 18, 19, 21, 23), 21, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			member := func(l LeafIndex) bool { return slices.Contains(tc.leaves, l) }
			got, ok := refiller(tc.removed, tc.committer, 32, member)
			if ok != tc.ok || got != tc.want {
				t.Errorf("refiller(%d, %d, %v) = %d, %v; want %d, %v", tc.removed, tc.committer, tc.leaves, got, ok, tc.want, tc.ok)
			}
		})
	}
}
