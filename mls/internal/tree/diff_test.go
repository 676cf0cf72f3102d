package tree

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// changedByScan is ChangedSince by brute force: every index of the larger
// tree, nodes compared by encoding.
func changedByScan(t *testing.T, tr, old *Tree) []treemath.NodeIndex {
	t.Helper()
	enc := func(nd *wire.Node) []byte {
		if nd == nil {
			return nil
		}
		b, err := codec.Marshal(nd)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var out []treemath.NodeIndex
	for x := range treemath.NodeIndex(max(tr.NodeCount(), old.NodeCount())) {
		if !bytes.Equal(enc(tr.Node(x)), enc(old.Node(x))) {
			out = append(out, x)
		}
	}
	return out
}

// TestChangedSinceRandom changes a tree in random steps of one to six
// operations (adds that grow it, possibly twice, removes that shrink it,
// updates, path commits, a node set to an equal copy) on a clone, as a
// commit does, and compares ChangedSince with a full scan.
func TestChangedSinceRandom(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	s := suite1(t)
	tr, priv := generateTree(t, s, 3)
	m := &sim{g: &generator{s: s, ctr: 1 << 41}, tr: tr, priv: map[treemath.LeafIndex][]byte{}}
	for i, p := range priv {
		m.priv[treemath.LeafIndex(i)] = p
	}
	var grew, shrank int
	for step := 1; step <= 200; step++ {
		old := m.tr
		if rng.IntN(4) > 0 {
			if _, err := old.TreeHash(); err != nil { // as for an epoch's tree
				t.Fatal(err)
			}
		}
		m.tr = old.Clone()
		var ops []string
		for range 1 + rng.IntN(6) {
			// Adds and removes balance around 6 members, so that the
			// tree often grows and shrinks.
			switch r := rng.IntN(10); {
			case m.tr.MemberCount() < 2 || (r < 4 && m.tr.MemberCount() < 9):
				ops = append(ops, fmt.Sprintf("add %d", m.add(t)))
			case r < 7 && m.tr.MemberCount() > 1:
				li := m.randomMember(rng)
				ops = append(ops, fmt.Sprintf("remove %d", li))
				if err := m.tr.RemoveLeaf(li); err != nil {
					t.Fatal(err)
				}
				delete(m.priv, li)
			case r < 8:
				li := m.randomMember(rng)
				ops = append(ops, fmt.Sprintf("update %d", li))
				m.update(t, li)
			case r < 9:
				li := m.randomMember(rng)
				ops = append(ops, fmt.Sprintf("commit %d", li))
				m.commit(t, li)
			default:
				// An equal node under a new pointer is no change.
				li := m.randomMember(rng)
				ln := *m.tr.Leaf(li)
				ops = append(ops, fmt.Sprintf("copy %d", li))
				if err := m.tr.SetLeaf(li, &ln); err != nil {
					t.Fatal(err)
				}
			}
		}
		if m.tr.NodeCount() > old.NodeCount() {
			grew++
		} else if m.tr.NodeCount() < old.NodeCount() {
			shrank++
		}
		got, err := m.tr.ChangedSince(old)
		if err != nil {
			t.Fatalf("step %d %v: %v", step, ops, err)
		}
		if want := changedByScan(t, m.tr, old); !slices.Equal(got, want) {
			t.Fatalf("step %d %v: changed %v, want %v", step, ops, got, want)
		}
	}
	if grew == 0 || shrank == 0 {
		t.Fatalf("the tree grew %d and shrank %d times; want both", grew, shrank)
	}
	t.Logf("grew %d, shrank %d times", grew, shrank)
}

func TestChangedSinceErrors(t *testing.T) {
	tr, _ := cachedTree(t, 3)
	if _, err := tr.ChangedSince(&Tree{}); err == nil {
		t.Fatal("zero old tree accepted")
	}
	if _, err := (&Tree{}).ChangedSince(tr); err == nil {
		t.Fatal("zero tree accepted")
	}
	if got, err := tr.ChangedSince(tr.Clone()); err != nil || len(got) != 0 {
		t.Fatalf("clone: %v, %v", got, err)
	}
}
