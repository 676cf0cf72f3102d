package treemath

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/parley-chat/parley/mls/internal/vectors"
)

type treeMathVector struct {
	NLeaves uint32    `json:"n_leaves"`
	NNodes  uint32    `json:"n_nodes"`
	Root    uint32    `json:"root"`
	Left    []*uint32 `json:"left"`
	Right   []*uint32 `json:"right"`
	Parent  []*uint32 `json:"parent"`
	Sibling []*uint32 `json:"sibling"`
}

// checkOpt compares an (index, ok) result with an optional<uint32> value.
func checkOpt(t *testing.T, what string, i int, got NodeIndex, ok bool, want *uint32) {
	t.Helper()
	switch {
	case want == nil && ok:
		t.Errorf("%s[%d] = %d, want none", what, i, got)
	case want != nil && !ok:
		t.Errorf("%s[%d] = none, want %d", what, i, *want)
	case want != nil && uint32(got) != *want:
		t.Errorf("%s[%d] = %d, want %d", what, i, got, *want)
	}
}

func TestVectorsTreeMath(t *testing.T) {
	var tests []treeMathVector
	vectors.Load(t, "tree-math.json", &tests)
	c := vectors.NewCounter("tree-math.json")
	for _, tc := range tests {
		c.Run(t, fmt.Sprintf("n_leaves=%d", tc.NLeaves), func(t *testing.T) {
			n := LeafCount(tc.NLeaves)
			if w := NodeWidth(n); w != tc.NNodes {
				t.Fatalf("NodeWidth(%d) = %d, want %d", n, w, tc.NNodes)
			}
			if r, ok := Root(n); !ok || uint32(r) != tc.Root {
				t.Fatalf("Root(%d) = %d, %v, want %d", n, r, ok, tc.Root)
			}
			for _, l := range [][]*uint32{tc.Left, tc.Right, tc.Parent, tc.Sibling} {
				if len(l) != int(tc.NNodes) {
					t.Fatalf("vector arrays have %d entries, want n_nodes=%d", len(l), tc.NNodes)
				}
			}
			for i := range int(tc.NNodes) {
				x := NodeIndex(i)
				got, ok := Left(x)
				checkOpt(t, "left", i, got, ok, tc.Left[i])
				got, ok = Right(x)
				checkOpt(t, "right", i, got, ok, tc.Right[i])
				got, ok = Parent(x, n)
				checkOpt(t, "parent", i, got, ok, tc.Parent[i])
				got, ok = Sibling(x, n)
				checkOpt(t, "sibling", i, got, ok, tc.Sibling[i])
			}
		})
	}
	c.Report(t)
}

// The five-member example tree of RFC 9420 §4.1.2 (Figure "A Complete Tree
// with Five Members"): A=0, B=2, E=8, F=10, G=12 with T=1, U=3, V=5, W=7,
// X=9, Y=11, Z=13.
func TestPathsRFCExample(t *testing.T) {
	const n = LeafCount(8)
	cases := []struct {
		leaf           NodeIndex
		direct, copath []NodeIndex
	}{
		{0, []NodeIndex{1, 3, 7}, []NodeIndex{2, 5, 11}},    // A
		{2, []NodeIndex{1, 3, 7}, []NodeIndex{0, 5, 11}},    // B
		{8, []NodeIndex{9, 11, 7}, []NodeIndex{10, 13, 3}},  // E
		{10, []NodeIndex{9, 11, 7}, []NodeIndex{8, 13, 3}},  // F
		{12, []NodeIndex{13, 11, 7}, []NodeIndex{14, 9, 3}}, // G
	}
	for _, tc := range cases {
		d, ok := DirectPath(tc.leaf, n)
		if !ok || !slices.Equal(d, tc.direct) {
			t.Errorf("DirectPath(%d) = %v, %v, want %v", tc.leaf, d, ok, tc.direct)
		}
		cp, ok := Copath(tc.leaf, n)
		if !ok || !slices.Equal(cp, tc.copath) {
			t.Errorf("Copath(%d) = %v, %v, want %v", tc.leaf, cp, ok, tc.copath)
		}
	}
	if d, ok := DirectPath(7, n); !ok || len(d) != 0 {
		t.Errorf("DirectPath(root) = %v, %v, want empty", d, ok)
	}
	if d, ok := Copath(7, n); !ok || len(d) != 0 {
		t.Errorf("Copath(root) = %v, %v, want empty", d, ok)
	}
}

// semanticAncestor is Appendix C common_ancestor_semantic.
func semanticAncestor(a, b NodeIndex, n LeafCount) NodeIndex {
	da, _ := DirectPath(a, n)
	db, _ := DirectPath(b, n)
	da = append([]NodeIndex{a}, da...)
	db = append([]NodeIndex{b}, db...)
	for _, x := range da {
		if slices.Contains(db, x) {
			return x // da is ordered by increasing level
		}
	}
	panic("no common ancestor")
}

func TestCommonAncestorAndSubtree(t *testing.T) {
	for _, n := range []LeafCount{1, 2, 4, 8, 16, 32} {
		w := NodeWidth(n)
		for a := range NodeIndex(w) {
			for b := range NodeIndex(w) {
				if got, want := CommonAncestor(a, b), semanticAncestor(a, b, n); got != want {
					t.Fatalf("n=%d: CommonAncestor(%d, %d) = %d, want %d", n, a, b, got, want)
				}
				da, _ := DirectPath(a, n)
				want := a == b || slices.Contains(da, b)
				if got := InSubtree(a, b); got != want {
					t.Fatalf("n=%d: InSubtree(%d, %d) = %v, want %v", n, a, b, got, want)
				}
			}
			first, count, ok := SubtreeLeaves(a)
			if !ok {
				t.Fatalf("SubtreeLeaves(%d) not ok", a)
			}
			for l := range LeafIndex(n) {
				in := l >= first && uint32(l-first) < count
				if in != InSubtree(l.Node(), a) {
					t.Fatalf("n=%d: SubtreeLeaves(%d) = %d+%d disagrees with InSubtree for leaf %d", n, a, first, count, l)
				}
			}
		}
	}
}

func TestInvalidInputs(t *testing.T) {
	for _, n := range []LeafCount{0, 3, 5, 6, 7, MaxLeaves + 1, math.MaxUint32} {
		if n.Valid() {
			t.Errorf("LeafCount(%d).Valid() = true", n)
		}
		if _, ok := Root(n); ok {
			t.Errorf("Root(%d) ok", n)
		}
		if _, ok := Parent(0, n); ok {
			t.Errorf("Parent(0, %d) ok", n)
		}
		if _, ok := DirectPath(0, n); ok {
			t.Errorf("DirectPath(0, %d) ok", n)
		}
	}
	if _, ok := Left(4); ok {
		t.Error("Left(leaf) ok")
	}
	if _, ok := Right(4); ok {
		t.Error("Right(leaf) ok")
	}
	if _, ok := Left(math.MaxUint32); ok {
		t.Error("Left(2^32-1) ok")
	}
	if _, ok := Parent(3, 4); ok {
		t.Error("Parent(root) ok")
	}
	if _, ok := Sibling(3, 4); ok {
		t.Error("Sibling(root) ok")
	}
	if _, ok := Parent(7, 4); ok {
		t.Error("Parent(out of range) ok")
	}
	if _, ok := Copath(7, 4); ok {
		t.Error("Copath(out of range) ok")
	}
	if _, ok := NodeIndex(3).Leaf(); ok {
		t.Error("NodeIndex(3).Leaf() ok")
	}
	if l, ok := NodeIndex(6).Leaf(); !ok || l != 3 {
		t.Errorf("NodeIndex(6).Leaf() = %d, %v", l, ok)
	}
	if LeafCount(4).HasLeaf(4) || !LeafCount(4).HasLeaf(3) {
		t.Error("HasLeaf wrong at the edge")
	}
	// The largest tree: every operation stays within 32 bits.
	n := MaxLeaves
	if w := NodeWidth(n); w != math.MaxUint32 {
		t.Errorf("NodeWidth(MaxLeaves) = %d", w)
	}
	last := NodeIndex(NodeWidth(n) - 1)
	d, ok := DirectPath(last, n)
	if !ok || len(d) != 31 || d[len(d)-1] != NodeIndex(n-1) {
		t.Errorf("DirectPath(last, MaxLeaves) = len %d, %v", len(d), ok)
	}
	r, _ := Root(n)
	if a := CommonAncestor(0, last); a != r {
		t.Errorf("CommonAncestor(0, last) = %d, want root %d", a, r)
	}
	if _, ok := Right(r); !ok {
		t.Error("Right(root of MaxLeaves) not ok")
	}
}

func TestNoAllocs(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = Parent(5, 8)
		_, _ = Sibling(5, 8)
		_, _ = Left(11)
		_, _ = Right(11)
		_ = CommonAncestor(2, 12)
		_ = InSubtree(2, 7)
	})
	if allocs != 0 {
		t.Errorf("tree math allocates %v times per run", allocs)
	}
}

func BenchmarkParent(b *testing.B) {
	b.ReportAllocs()
	x := NodeIndex(0)
	for b.Loop() {
		p, ok := Parent(x, 1<<20)
		if !ok {
			p = 0
		}
		x = p
	}
}

func BenchmarkDirectPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = DirectPath(0, 1<<20)
	}
}
