package mls

import (
	"fmt"
	"math/bits"
	"testing"

	"github.com/parley-chat/parley/mls/internal/treemath"
)

// fillFixture is a group grown by Adds alone, as a creator that adds
// members in batches leaves it, with every member's KeyPackage kept so
// that any member can commit through borrowState.
type fillFixture struct {
	creator *Group
	kps     []*KeyPackageBundle
}

func newFillFixture(t *testing.T, n, batch int) *fillFixture {
	t.Helper()
	cfg := &Config{}
	signer, err := GenerateSigner(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	creator, err := CreateGroup(cfg, MLS128DHKEMX25519AES128GCMSHA256Ed25519, []byte(fmt.Sprintf("fill-%d", n)), signer, BasicCredential([]byte("m0")), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fillFixture{creator: creator, kps: make([]*KeyPackageBundle, n)}
	for i := 1; i < n; i++ {
		f.kps[i] = largeKP(t, cfg, MLS128DHKEMX25519AES128GCMSHA256Ed25519, fmt.Sprintf("m%d", i))
	}
	for i := 1; i < n; i += batch {
		var add [][]byte
		for j := i; j < min(i+batch, n); j++ {
			add = append(add, f.kps[j].KeyPackage)
		}
		f.commit(t, 0, CommitOptions{Add: add})
	}
	return f
}

// commit has the member at leaf l commit opts, processed by the creator.
func (f *fillFixture) commit(t *testing.T, l LeafIndex, opts CommitOptions) int {
	t.Helper()
	if l == 0 {
		pc, err := f.creator.Commit(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.creator.MergePendingCommit(pc); err != nil {
			t.Fatal(err)
		}
		return len(pc.Message)
	}
	m := borrowState(t, f.creator, l, f.kps[l])
	pc, err := m.Commit(opts)
	if err != nil {
		t.Fatalf("commit by leaf %d: %v", l, err)
	}
	p, err := f.creator.Process(pc.Message)
	if err != nil {
		t.Fatalf("process the commit of leaf %d: %v", l, err)
	}
	if err := f.creator.MergeStagedCommit(p.Commit); err != nil {
		t.Fatal(err)
	}
	return len(pc.Message)
}

// fill has TreeFillers self-update, each on the tree its predecessors
// left, until none is named; it returns the self-updates.
func (f *fillFixture) fill(t *testing.T) int {
	t.Helper()
	n := 0
	for round := 0; ; round++ {
		fillers := f.creator.TreeFillers()
		if len(fillers) == 0 {
			return n
		}
		if round > 2 {
			t.Fatalf("still fillers after %d rounds: %v", round, fillers)
		}
		for _, l := range fillers {
			if !f.creator.TreeFiller(l) {
				t.Fatalf("leaf %d was named a filler, then no longer is after the others' self-updates", l)
			}
			f.commit(t, l, CommitOptions{ForcePath: true})
			if f.creator.TreeFiller(l) {
				t.Fatalf("leaf %d is still a filler after its self-update", l)
			}
			n++
		}
	}
}

// checkFilled fails if a parent node of height FillHeight or more is
// blank while both its children have members under them: the nodes a
// path commit from under it would set.
func checkFilled(t *testing.T, g *Group) {
	t.Helper()
	tr := g.c.tree
	for x := treemath.NodeIndex(1); int(x) < tr.NodeCount(); x += 2 {
		if treemath.Level(x) < FillHeight || !tr.Blank(x) {
			continue
		}
		l, _ := treemath.Left(x)
		r, _ := treemath.Right(x)
		if len(tr.Resolution(l)) > 0 && len(tr.Resolution(r)) > 0 {
			t.Fatalf("parent node %d (height %d) is blank with members under both children", x, treemath.Level(x))
		}
	}
}

func TestTreeFillers(t *testing.T) {
	const n, batch = 300, 40
	f := newFillFixture(t, n, batch)
	if f.creator.MemberCount() != n {
		t.Fatalf("%d members, want %d", f.creator.MemberCount(), n)
	}
	// A member far from the creator commits across blank subtrees: its
	// copath holds nodes of height up to 7 with every member under them.
	far := LeafIndex(200)
	before := f.commit(t, far, CommitOptions{ForcePath: true})

	fills := f.fill(t)
	checkFilled(t, f.creator)
	// One self-update per blank region of 2^FillHeight leaves and per
	// level above: not one per member.
	if limit := n>>FillHeight + bits.Len(uint(n)); fills > limit {
		t.Errorf("%d self-updates filled a %d-member tree, want at most %d", fills, n, limit)
	}
	after := f.commit(t, far+7, CommitOptions{ForcePath: true})
	t.Logf("%d members: %d self-updates filled the tree; a far member's commit %d bytes before, %d after", n, fills, before, after)
	if after*3 > before {
		t.Errorf("a far member's commit is %d bytes after the fill, %d before: want a third or less", after, before)
	}
	if got := f.creator.TreeFillers(); len(got) != 0 {
		t.Errorf("fillers after the fill: %v", got)
	}

	// A removal far from the creator blanks the removed leaf's path below
	// the creator's: the leftmost member under the lowest such node of
	// height FillHeight or more sets it again, and only it.
	f.commit(t, 0, CommitOptions{Remove: []LeafIndex{250}})
	fillers := f.creator.TreeFillers()
	if len(fillers) != 1 || fillers[0] != 248 {
		t.Errorf("fillers after removing leaf 250: %v, want [248] (leftmost under the height-3 node of leaves 248-255)", fillers)
	}
	f.fill(t)
	checkFilled(t, f.creator)

	// Blank leaves and members that are not leftmost are never fillers.
	for _, l := range []LeafIndex{250, 1, 249, n + 5} {
		if f.creator.TreeFiller(l) {
			t.Errorf("TreeFiller(%d) = true", l)
		}
	}
}

// TestTreeFillerSmallTree: below height FillHeight nothing is named,
// however blank the tree.
func TestTreeFillerSmallTree(t *testing.T) {
	f := newFillFixture(t, 4, 4)
	if got := f.creator.TreeFillers(); len(got) != 0 {
		t.Errorf("fillers in a 4-leaf tree: %v", got)
	}
	f = newFillFixture(t, 9, 8)
	if got := f.creator.TreeFillers(); len(got) != 1 || got[0] != 0 {
		t.Errorf("fillers in a 9-member tree grown by Adds: %v, want [0] (the creator, under the new root)", got)
	}
}

// TestTreeFillCost: in a tree the rule filled, a member's path commit
// encrypts to one node per level of its filtered direct path, and to at
// most 2^FillHeight - 1 more nodes for the blank ones below FillHeight.
func TestTreeFillCost(t *testing.T) {
	const n = 600
	f := newFillFixture(t, n, 150)
	f.fill(t)
	tr := f.creator.c.tree
	total, most := 0, 0
	for l := LeafIndex(0); l < n; l++ {
		path, copath, err := tr.FilteredDirectPath(l)
		if err != nil {
			t.Fatal(err)
		}
		c := 0
		for _, x := range copath {
			c += len(tr.Resolution(x))
		}
		if extra := c - len(path); extra > 1<<FillHeight-1 {
			t.Errorf("leaf %d: %d path secrets for %d path nodes", l, c, len(path))
		}
		total += c
		most = max(most, c)
	}
	t.Logf("%d members, filled: %.1f path secrets per commit on average, %d at most", n, float64(total)/n, most)
}
