package tree

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// sim drives a tree through random Add, Update, Remove and Commit
// operations, keeping each member's signature key.
type sim struct {
	g    *generator // source of fresh HPKE keys
	tr   *Tree
	priv map[treemath.LeafIndex][]byte
}

func (m *sim) newLeaf(t *testing.T, src wire.LeafNodeSource, pub []byte) *wire.LeafNode {
	ln := &wire.LeafNode{
		EncryptionKey: m.g.hpkeKey(t),
		SignatureKey:  pub,
		Credential:    wire.Credential{Type: wire.CredentialBasic, Identity: []byte(fmt.Sprint("sim-", m.g.ctr))},
		Capabilities: wire.Capabilities{
			Versions: []wire.ProtocolVersion{1}, CipherSuites: []suite.ID{m.tr.Suite().ID()},
			Credentials: []wire.CredentialType{wire.CredentialBasic},
		},
		Source:     src,
		Extensions: wire.Extensions{},
	}
	if src == wire.LeafNodeSourceKeyPackage {
		ln.Lifetime = &wire.Lifetime{NotAfter: math.MaxUint64}
	}
	return ln
}

func (m *sim) add(t *testing.T) treemath.LeafIndex {
	priv, pub, err := m.tr.Suite().GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	ln := m.newLeaf(t, wire.LeafNodeSourceKeyPackage, pub)
	if err := ln.Sign(m.tr.Suite(), priv, nil, 0); err != nil {
		t.Fatal(err)
	}
	li, err := m.tr.AddLeaf(ln)
	if err != nil {
		t.Fatal(err)
	}
	m.priv[li] = priv
	return li
}

func (m *sim) update(t *testing.T, li treemath.LeafIndex) {
	old := m.tr.Leaf(li)
	ln := m.newLeaf(t, wire.LeafNodeSourceUpdate, old.SignatureKey)
	if err := ln.Sign(m.tr.Suite(), m.priv[li], genGroupID, uint32(li)); err != nil {
		t.Fatal(err)
	}
	if err := m.tr.UpdateLeaf(li, ln); err != nil {
		t.Fatal(err)
	}
}

// commit applies a full UpdatePath from li as TreeKEM would: blank the
// direct path, set fresh keys on the filtered direct path, set parent
// hashes, and re-sign the leaf with the resulting parent hash.
func (m *sim) commit(t *testing.T, li treemath.LeafIndex) {
	if err := m.tr.BlankPath(li); err != nil {
		t.Fatal(err)
	}
	path, _, err := m.tr.FilteredDirectPath(li)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range path {
		if err := m.tr.SetParent(x, &wire.ParentNode{EncryptionKey: m.g.hpkeKey(t), UnmergedLeaves: []uint32{}}); err != nil {
			t.Fatal(err)
		}
	}
	ph, err := m.tr.SetParentHashes(li)
	if err != nil {
		t.Fatal(err)
	}
	ln := m.newLeaf(t, wire.LeafNodeSourceCommit, m.tr.Leaf(li).SignatureKey)
	ln.ParentHash = ph
	if err := ln.Sign(m.tr.Suite(), m.priv[li], genGroupID, uint32(li)); err != nil {
		t.Fatal(err)
	}
	if err := m.tr.SetLeaf(li, ln); err != nil {
		t.Fatal(err)
	}
}

func (m *sim) randomMember(rng *rand.Rand) treemath.LeafIndex {
	var ms []treemath.LeafIndex
	for li := range m.tr.Members() {
		ms = append(ms, li)
	}
	return ms[rng.IntN(len(ms))]
}

// check asserts the invariants: the tree validates, and its incrementally
// maintained tree hash equals that of a fresh decode of its encoding.
func (m *sim) check(t *testing.T, step int, op string) {
	t.Helper()
	if err := m.tr.Validate(ValidateOptions{GroupID: genGroupID}); err != nil {
		t.Fatalf("step %d (%s): %v", step, op, err)
	}
	enc, err := m.tr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := Decode(m.tr.Suite(), enc)
	if err != nil {
		t.Fatalf("step %d (%s): decode own encoding: %v", step, op, err)
	}
	h1, _ := m.tr.TreeHash()
	h2, _ := fresh.TreeHash()
	if !bytes.Equal(h1, h2) {
		t.Fatalf("step %d (%s): cached tree hash %x, fresh %x", step, op, h1, h2)
	}
}

func TestRandomOperations(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	s := suite1(t)
	tr, priv := generateTree(t, s, 5)
	m := &sim{g: &generator{s: s, ctr: 1 << 40}, tr: tr, priv: map[treemath.LeafIndex][]byte{}}
	for i, p := range priv {
		m.priv[treemath.LeafIndex(i)] = p
	}
	m.check(t, 0, "generated")
	for step := 1; step <= 300; step++ {
		var op string
		switch r := rng.IntN(10); {
		case r < 4 || m.tr.MemberCount() < 2:
			op = fmt.Sprintf("add %d", m.add(t))
		case r < 6:
			li := m.randomMember(rng)
			op = fmt.Sprintf("remove %d", li)
			if err := m.tr.RemoveLeaf(li); err != nil {
				t.Fatal(err)
			}
			delete(m.priv, li)
		case r < 7:
			li := m.randomMember(rng)
			op = fmt.Sprintf("update %d", li)
			m.update(t, li)
		default:
			li := m.randomMember(rng)
			op = fmt.Sprintf("commit %d", li)
			m.commit(t, li)
		}
		m.check(t, step, op)
	}
}

func TestAddRemoveShape(t *testing.T) {
	s := suite1(t)
	tr, priv := generateTree(t, s, 4)
	m := &sim{g: &generator{s: s, ctr: 1 << 40}, tr: tr, priv: map[treemath.LeafIndex][]byte{}}
	for i, p := range priv {
		m.priv[treemath.LeafIndex(i)] = p
	}
	snapshot := tr.Clone()
	h0, _ := snapshot.TreeHash()
	// A full tree doubles on Add; the new leaf is unmerged at the root.
	if li := m.add(t); li != 4 || tr.LeafCount() != 8 {
		t.Fatalf("add to full tree: leaf %d, %d leaves", li, tr.LeafCount())
	}
	if p := tr.ParentNode(tr.Root()); p != nil {
		t.Fatalf("new root should be blank")
	}
	if um := tr.ParentNode(3).UnmergedLeaves; len(um) != 0 {
		t.Fatalf("node 3 is not on leaf 4's path, has unmerged %v", um)
	}
	// Removing leaf 1 leaves a hole that the next Add fills.
	if err := tr.RemoveLeaf(1); err != nil {
		t.Fatal(err)
	}
	if li := m.add(t); li != 1 {
		t.Fatalf("add after remove took leaf %d, want 1", li)
	}
	if got := tr.ParentNode(3); got != nil {
		t.Fatalf("node 3 should have been blanked by the remove")
	}
	// Removing the rightmost member halves the tree.
	if err := tr.RemoveLeaf(4); err != nil {
		t.Fatal(err)
	}
	if tr.LeafCount() != 4 {
		t.Fatalf("after removing leaf 4: %d leaves, want 4", tr.LeafCount())
	}
	for _, li := range []treemath.LeafIndex{3, 2, 1} {
		if err := tr.RemoveLeaf(li); err != nil {
			t.Fatal(err)
		}
	}
	if tr.LeafCount() != 1 || tr.MemberCount() != 1 {
		t.Fatalf("one member left: %d leaves, %d members", tr.LeafCount(), tr.MemberCount())
	}
	// Errors name the operation and input.
	wantErr(t, tr.RemoveLeaf(3), "tree: remove leaf 3: leaf is blank or out of range")
	wantErr(t, tr.UpdateLeaf(9, tr.Leaf(0)), "tree: update leaf 9:")
	_, err := tr.Apply(&wire.Proposal{Type: wire.ProposalTypePSK}, 0)
	wantErr(t, err, "tree: apply: proposal type 4")
	// The clone is untouched.
	if h, _ := snapshot.TreeHash(); !bytes.Equal(h, h0) || snapshot.LeafCount() != 4 {
		t.Fatalf("clone changed")
	}
}

func TestFilteredDirectPathRFCExample(t *testing.T) {
	// RFC 9420 §4.1.2, Figure "A Complete Tree with Five Members": leaves
	// A B _ _ E F G _ with T, X non-blank, others blank.
	s := suite1(t)
	src, _ := cachedTree(t, 8)
	rt := make(wire.RatchetTree, 15)
	for _, li := range []int{0, 1, 4, 5, 6} {
		rt[2*li] = src.Node(treemath.NodeIndex(2 * li))
	}
	for _, x := range []int{1, 9} {
		rt[x] = &wire.Node{Type: wire.NodeTypeParent, Parent: &wire.ParentNode{EncryptionKey: []byte{byte(x)}, ParentHash: []byte{}, UnmergedLeaves: []uint32{}}}
	}
	tr, err := FromWire(s, rt[:13])
	if err != nil {
		t.Fatal(err)
	}
	want := map[treemath.LeafIndex][]treemath.NodeIndex{
		0: {1, 7}, 1: {1, 7}, 4: {9, 11, 7}, 5: {9, 11, 7}, 6: {11, 7},
	}
	for li, w := range want {
		got, _, err := tr.FilteredDirectPath(li)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("filtered direct path of leaf %d = %v, want %v", li, got, w)
		}
	}
}

func TestZeroTree(t *testing.T) {
	var z Tree
	_, err := z.TreeHash()
	wantErr(t, err, "tree: tree hash: tree has no nodes")
	wantErr(t, z.VerifyParentHashes(), "tree: verify parent hashes: tree has no nodes")
	wantErr(t, z.Validate(ValidateOptions{}), "tree: validate: tree has no nodes")
	if z.Resolution(0) != nil || z.Leaf(0) != nil || z.MemberCount() != 0 {
		t.Fatal("zero tree reports content")
	}
	_, err = z.AddLeaf(nil)
	wantErr(t, err, "tree: add leaf: nil leaf node")
	_, err = z.AddLeaf(&wire.LeafNode{})
	wantErr(t, err, "tree: add leaf: tree has no nodes")
	wantErr(t, z.RemoveLeaf(0), "tree: remove leaf 0")
	wantErr(t, z.SetParent(1, nil), "tree: set parent: node 1")
	_, err = z.SetParentHashes(0)
	wantErr(t, err, "tree: set parent hashes")
}
