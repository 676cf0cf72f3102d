package tree

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

var storeSeed = flag.Uint64("tree.seed", 0, "seed of TestCopyOnWriteRandom (0: random)")

// model is a tree under test next to the plain node array it must equal.
type model struct {
	t     *Tree
	nodes []*wire.Node
}

// checkTree checks every invariant of the copy-on-write storage and the key
// index of t against the plain node array want:
//   - the nodes are want, and the chunks past the end are blank;
//   - a nil cached hash has nil cached hashes above it, and every cached
//     hash equals the hash of a cold tree with the same nodes;
//   - the key index holds exactly one entry per non-blank node (encryption
//     key) and leaf (signature key), in the right bucket, sorted; lookups
//     return the lowest node with the key; duplicate detection agrees with
//     a brute-force scan.
func checkTree(t *testing.T, tr *Tree, want []*wire.Node) {
	t.Helper()
	if tr.NodeCount() != len(want) {
		t.Fatalf("node count %d, want %d", tr.NodeCount(), len(want))
	}
	for x := range want {
		if got := tr.Node(treemath.NodeIndex(x)); got != want[x] {
			t.Fatalf("node %d differs from the model", x)
		}
	}
	if len(tr.chunks) != chunksFor(tr.n) {
		t.Fatalf("%d chunks for %d nodes", len(tr.chunks), tr.n)
	}
	last := tr.chunks[len(tr.chunks)-1]
	for j := tr.n & chunkMask; tr.n&chunkMask != 0 && j < chunkSize; j++ {
		if last.nodes[j] != nil || last.hashes[j] != nil {
			t.Fatalf("slot %d past the end of the last chunk is not blank", j)
		}
	}
	// Hash cache.
	cold := blankTree(tr.suite, len(want))
	for x, nd := range want {
		cold.poke(treemath.NodeIndex(x), nd)
	}
	lc := tr.LeafCount()
	for x := range tr.n {
		h := tr.hashAt(treemath.NodeIndex(x))
		if h == nil {
			if p, ok := treemath.Parent(treemath.NodeIndex(x), lc); ok && tr.hashAt(p) != nil {
				t.Fatalf("node %d has no cached hash but its parent %d has one", x, p)
			}
			continue
		}
		ch, err := cold.hash(treemath.NodeIndex(x))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h, ch) {
			t.Fatalf("cached hash of node %d is stale", x)
		}
	}
	th, err := tr.TreeHash()
	if err != nil {
		t.Fatal(err)
	}
	cth, _ := cold.TreeHash()
	if !bytes.Equal(th, cth) {
		t.Fatal("tree hash differs from a cold tree's")
	}
	// Key index.
	encs, sigs := map[string][]treemath.NodeIndex{}, map[string][]treemath.NodeIndex{}
	for x, nd := range want {
		if nd == nil {
			continue
		}
		encs[string(nd.EncryptionKey())] = append(encs[string(nd.EncryptionKey())], treemath.NodeIndex(x))
		if nd.Leaf != nil {
			sigs[string(nd.Leaf.SignatureKey)] = append(sigs[string(nd.Leaf.SignatureKey)], treemath.NodeIndex(x))
		}
	}
	checkTable(t, tr, &tr.keys.enc, "enc", (*wire.Node).EncryptionKey)
	checkTable(t, tr, &tr.keys.sig, "sig", func(nd *wire.Node) []byte {
		if nd.Leaf == nil {
			return nil
		}
		return nd.Leaf.SignatureKey
	})
	const none = treemath.NodeIndex(math.MaxUint32)
	wantEncDup, wantSigDup := none, none
	for k, xs := range encs {
		x, ok := tr.EncryptionKeyNode([]byte(k))
		if !ok || x != xs[0] {
			t.Fatalf("EncryptionKeyNode = %d, %v; want %d", x, ok, xs[0])
		}
		if len(xs) > 1 && xs[1] < wantEncDup {
			wantEncDup = xs[1]
		}
	}
	for k, xs := range sigs {
		li, ok := tr.SignatureKeyLeaf([]byte(k))
		if !ok || li.Node() != xs[0] {
			t.Fatalf("SignatureKeyLeaf = %d, %v; want leaf at node %d", li, ok, xs[0])
		}
		if len(xs) > 1 && xs[1] < wantSigDup {
			wantSigDup = xs[1]
		}
	}
	if _, ok := tr.EncryptionKeyNode([]byte("absent key")); ok {
		t.Fatal("absent encryption key found")
	}
	if _, ok := tr.SignatureKeyLeaf([]byte("absent key")); ok {
		t.Fatal("absent signature key found")
	}
	_, second, ok := tr.duplicateEncryptionKey()
	if ok != (wantEncDup != none) || ok && second != wantEncDup {
		t.Fatalf("duplicateEncryptionKey = %d, %v; want %d", second, ok, wantEncDup)
	}
	_, second, ok = tr.duplicateSignatureKey()
	if ok != (wantSigDup != none) || ok && second != wantSigDup {
		t.Fatalf("duplicateSignatureKey = %d, %v; want %d", second, ok, wantSigDup)
	}
}

func checkTable(t *testing.T, tr *Tree, kt *keyTable, name string, key func(*wire.Node) []byte) {
	t.Helper()
	if len(kt.buckets) != 1<<kt.bits {
		t.Fatalf("%s: %d buckets for %d bits", name, len(kt.buckets), kt.bits)
	}
	n := 0
	for i, b := range kt.buckets {
		if !slices.IsSortedFunc(b.entries, keyEntry.cmp) {
			t.Fatalf("%s: bucket %d not sorted", name, i)
		}
		for _, e := range b.entries {
			if kt.bucketOf(e.h) != i {
				t.Fatalf("%s: entry of node %d in bucket %d, want %d", name, e.x, i, kt.bucketOf(e.h))
			}
			if int(e.x) >= tr.n || tr.at(e.x) == nil {
				t.Fatalf("%s: entry for blank or absent node %d", name, e.x)
			}
			k := key(tr.at(e.x))
			if k == nil || tr.keys.hash(k) != e.h {
				t.Fatalf("%s: entry hash does not match node %d's key", name, e.x)
			}
			n++
		}
	}
	want := 0
	for x := range tr.n {
		if nd := tr.at(treemath.NodeIndex(x)); nd != nil && key(nd) != nil {
			want++
		}
	}
	if n != want || kt.count != want {
		t.Fatalf("%s: %d entries (count %d), want %d", name, n, kt.count, want)
	}
}

// TestCopyOnWriteRandom runs random changes on a family of clones and
// checks after each that every live tree equals its own model: a change to
// one never shows in another, cached hashes stay correct, and the key index
// stays exact (keys are drawn from a small pool so that duplicates occur).
func TestCopyOnWriteRandom(t *testing.T) {
	seed := *storeSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (rerun with -tree.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	s := suite1(t)
	pool := make([][]byte, 40)
	for i := range pool {
		pool[i] = []byte(fmt.Sprintf("key-%02d", i))
	}
	pick := func() []byte { return pool[rng.IntN(len(pool))] }
	newLeaf := func() *wire.LeafNode {
		return &wire.LeafNode{
			EncryptionKey: pick(), SignatureKey: pick(),
			Credential:   wire.Credential{Type: wire.CredentialBasic, Identity: []byte("x")},
			Capabilities: wire.Capabilities{Versions: []wire.ProtocolVersion{1}, Credentials: []wire.CredentialType{wire.CredentialBasic}},
			Source:       wire.LeafNodeSourceUpdate, Extensions: wire.Extensions{},
		}
	}
	root, err := New(s, newLeaf())
	if err != nil {
		t.Fatal(err)
	}
	ms := []*model{{t: root, nodes: root.Wire()}}
	steps := 3000
	if testing.Short() {
		steps = 800
	}
	maxLeaves := 0
	defer func() { t.Logf("largest tree: %d leaves", maxLeaves) }()
	for step := range steps {
		m := ms[rng.IntN(len(ms))]
		tr := m.t
		lc := tr.LeafCount()
		li := treemath.LeafIndex(rng.IntN(int(lc)))
		var op string
		switch r := rng.IntN(100); {
		case r < 30:
			op = "add"
			if lc >= 200 {
				break
			}
			ln := newLeaf()
			got, err := tr.AddLeaf(ln)
			if err != nil {
				t.Fatal(err)
			}
			// Model: the leftmost blank leaf, or extend.
			at := -1
			for x := 0; x < len(m.nodes); x += 2 {
				if m.nodes[x] == nil {
					at = x
					break
				}
			}
			if at < 0 {
				m.nodes = append(m.nodes, make([]*wire.Node, len(m.nodes)+1)...)
				at = len(m.nodes)/2 + 1
			}
			if got.Node() != treemath.NodeIndex(at) {
				t.Fatalf("step %d: added at leaf %d, model says node %d", step, got, at)
			}
			path, _ := treemath.DirectPath(got.Node(), tr.LeafCount())
			for _, p := range path {
				m.nodes[p] = tr.Node(p) // unmerged_leaves were extended
			}
			m.nodes[at] = tr.Node(treemath.NodeIndex(at))
		case r < 45:
			op = "set parent"
			if lc < 2 {
				break
			}
			x := treemath.NodeIndex(2*rng.IntN(int(lc)-1) + 1)
			var p *wire.ParentNode
			if rng.IntN(4) > 0 {
				p = &wire.ParentNode{EncryptionKey: pick(), ParentHash: []byte{}, UnmergedLeaves: []uint32{}}
			}
			if err := tr.SetParent(x, p); err != nil {
				t.Fatal(err)
			}
			m.nodes[x] = tr.Node(x)
		case r < 60:
			op = "update"
			if tr.Leaf(li) == nil {
				break
			}
			if err := tr.UpdateLeaf(li, newLeaf()); err != nil {
				t.Fatal(err)
			}
			path, _ := treemath.DirectPath(li.Node(), lc)
			for _, p := range path {
				m.nodes[p] = nil
			}
			m.nodes[li.Node()] = tr.Node(li.Node())
		case r < 75:
			op = "remove"
			if tr.Leaf(li) == nil {
				break
			}
			if err := tr.RemoveLeaf(li); err != nil {
				t.Fatal(err)
			}
			path, _ := treemath.DirectPath(li.Node(), lc)
			for _, p := range path {
				m.nodes[p] = nil
			}
			m.nodes[li.Node()] = nil
			m.nodes = m.nodes[:tr.NodeCount()]
		case r < 85:
			op = "hash"
			if _, err := tr.TreeHash(); err != nil {
				t.Fatal(err)
			}
		default:
			op = "clone"
			c := tr.Clone()
			nm := &model{t: c, nodes: slices.Clone(m.nodes)}
			if len(ms) < 5 {
				ms = append(ms, nm)
			} else {
				ms[rng.IntN(len(ms))] = nm
			}
		}
		for i, m := range ms {
			func() {
				defer func() {
					if t.Failed() {
						t.Logf("after step %d (%s), tree %d of %d", step, op, i, len(ms))
					}
				}()
				checkTree(t, m.t, m.nodes)
			}()
		}
		maxLeaves = max(maxLeaves, int(tr.LeafCount()))
	}
}
