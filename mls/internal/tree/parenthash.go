package tree

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// ParentHash returns the parent hash of parent node p with copath child
// whose original tree hash is originalSiblingTreeHash (RFC 9420 §7.9): the
// hash of ParentHashInput{p.encryption_key, p.parent_hash,
// original_sibling_tree_hash}.
func (t *Tree) ParentHash(p *wire.ParentNode, originalSiblingTreeHash []byte) ([]byte, error) {
	if p == nil {
		return nil, errors.New("tree: parent hash: blank parent node")
	}
	if t.suite == nil {
		return nil, fmt.Errorf("tree: parent hash: %w", errEmpty)
	}
	in, err := t.parentHashInput(p, originalSiblingTreeHash)
	if err != nil {
		return nil, fmt.Errorf("tree: parent hash: %w", err)
	}
	return t.newHash(in), nil
}

// parentHashInput encodes ParentHashInput into t's encoding buffer; the
// result is valid until the next hash input is encoded.
func (t *Tree) parentHashInput(p *wire.ParentNode, originalSiblingTreeHash []byte) ([]byte, error) {
	b := &t.enc
	b.Reset()
	b.AddOpaque(p.EncryptionKey)
	b.AddOpaque(p.ParentHash)
	b.AddOpaque(originalSiblingTreeHash)
	return b.Bytes()
}

// OriginalSiblingTreeHash returns original_sibling_tree_hash for the
// non-blank parent p and its child s (RFC 9420 §7.9): the tree hash of s
// after blanking every leaf in p's unmerged_leaves and removing them from
// the unmerged_leaves of all parent nodes. When none of those leaves lies
// below s this is s's cached tree hash.
func (t *Tree) OriginalSiblingTreeHash(p, s treemath.NodeIndex) ([]byte, error) {
	pn := t.ParentNode(p)
	if pn == nil {
		return nil, fmt.Errorf("tree: original sibling tree hash: node %d is not a non-blank parent node", p)
	}
	l, _ := treemath.Left(p)
	r, _ := treemath.Right(p)
	if s != l && s != r {
		return nil, fmt.Errorf("tree: original sibling tree hash: node %d is not a child of node %d", s, p)
	}
	h, err := t.hashExcluding(s, unmergedBelow(pn.UnmergedLeaves, s))
	if err != nil {
		return nil, fmt.Errorf("tree: original sibling tree hash: %w", err)
	}
	return h, nil
}

// unmergedBelow returns the sub-slice of the sorted leaf list um that lies
// below node x.
func unmergedBelow(um []uint32, x treemath.NodeIndex) []uint32 {
	first, count, ok := treemath.SubtreeLeaves(x)
	if !ok {
		return nil
	}
	lo, _ := slices.BinarySearch(um, uint32(first))
	hi, _ := slices.BinarySearch(um, uint32(first)+count)
	if hi < lo {
		return nil
	}
	return um[lo:hi]
}

// SetParentHashes sets the parent_hash field of every node on the
// filtered direct path of leaf i, top down, as a committer does after
// merging an UpdatePath (RFC 9420 §7.9, §7.5 step 3): the topmost node gets
// an empty parent hash and each other node the parent hash of the next node
// up the filtered direct path. It returns the parent hash that leaf i's
// LeafNode must carry. Every node on the filtered direct path must be
// non-blank (TreeKEM sets them first); the nodes are replaced, not
// modified.
func (t *Tree) SetParentHashes(i treemath.LeafIndex) ([]byte, error) {
	path, copath, err := t.FilteredDirectPath(i)
	if err != nil {
		return nil, fmt.Errorf("tree: set parent hashes: %w", err)
	}
	ph := []byte{}
	for j := len(path) - 1; j >= 0; j-- {
		p := t.ParentNode(path[j])
		if p == nil {
			return nil, fmt.Errorf("tree: set parent hashes: leaf %d: node %d on the filtered direct path is blank", i, path[j])
		}
		if !bytes.Equal(p.ParentHash, ph) {
			np := *p
			np.ParentHash = ph
			t.set(path[j], &wire.Node{Type: wire.NodeTypeParent, Parent: &np})
			p = &np
		}
		osth, err := t.OriginalSiblingTreeHash(path[j], copath[j])
		if err != nil {
			return nil, fmt.Errorf("tree: set parent hashes: leaf %d: %w", i, err)
		}
		if ph, err = t.ParentHash(p, osth); err != nil {
			return nil, fmt.Errorf("tree: set parent hashes: leaf %d: %w", i, err)
		}
	}
	return ph, nil
}

// VerifyParentHashes checks that every non-blank parent node is
// parent-hash valid (RFC 9420 §7.9.2): covered by exactly one chain of
// parent-hash links up from a leaf. It also runs the unmerged-leaves checks
// of §12.4.3.1 (see CheckUnmergedLeaves), on which the link test relies.
//
// The check is bottom-up and linear in the number of nodes. A link from
// node D to P can only be valid if P is D's nearest non-blank ancestor
// (a non-blank node between them would stand in the resolution of P's
// child C in place of D), so each non-blank node is tested against exactly
// one candidate. Given the unmerged-leaves checks, "resolution(C) minus D
// equals P.unmerged_leaves below C" reduces to comparing the size of C's
// resolution, precomputed for all nodes in one pass, with one plus the
// number of P's unmerged leaves below C. Each parent's two possible parent
// hashes (one per copath child) are computed at most once.
func (t *Tree) VerifyParentHashes() error {
	if err := t.ready(); err != nil {
		return fmt.Errorf("tree: verify parent hashes: %w", err)
	}
	if err := t.CheckUnmergedLeaves(); err != nil {
		return err
	}
	if _, err := t.hash(t.Root()); err != nil {
		return fmt.Errorf("tree: verify parent hashes: %w", err)
	}
	n := t.n
	// resSize[x] is the length of the resolution of x.
	resSize := make([]uint32, n)
	for lvl := uint32(0); (uint64(1) << lvl) <= uint64(n); lvl++ {
		step := uint64(1) << (lvl + 1)
		for x := uint64(1)<<lvl - 1; x < uint64(n); x += step {
			nd := t.at(treemath.NodeIndex(x))
			switch {
			case nd != nil && nd.Parent != nil:
				resSize[x] = 1 + uint32(len(nd.Parent.UnmergedLeaves))
			case nd != nil:
				resSize[x] = 1
			case lvl > 0:
				l, _ := treemath.Left(treemath.NodeIndex(x))
				r, _ := treemath.Right(treemath.NodeIndex(x))
				resSize[x] = resSize[l] + resSize[r]
			}
		}
	}
	size := t.suite.HashSize()
	v := phVerifier{t: t, resSize: resSize, covered: make([]uint8, n), size: size, ph: make([]byte, n*size), have: make([]bool, n)}
	if err := v.walk(t.Root(), -1); err != nil {
		return err
	}
	for x := 1; x < n; x += 2 {
		if t.at(treemath.NodeIndex(x)) == nil {
			continue
		}
		switch v.covered[x] {
		case 1:
		case 0:
			return fmt.Errorf("tree: verify parent hashes: node %d: not parent-hash valid (no chain from below)", x)
		default:
			return fmt.Errorf("tree: verify parent hashes: node %d: covered by %d parent-hash chains, want exactly one", x, v.covered[x])
		}
	}
	return nil
}

type phVerifier struct {
	t       *Tree
	resSize []uint32
	covered []uint8
	// ph caches the parent hash of each parent P with each copath child
	// S, in the slot phSlot(P, S) of size bytes; have marks the slots
	// computed.
	size int
	ph   []byte
	have []bool
}

// phSlot returns the cache slot of parent p (odd) with child s: p itself
// for its left child, p-1 (an even index, so no other parent's slot) for
// its right child.
func phSlot(p, s treemath.NodeIndex) int {
	if s < p {
		return int(p)
	}
	return int(p) - 1
}

// walk visits the subtree under x top down; anc is x's nearest non-blank
// proper ancestor, or -1.
func (v *phVerifier) walk(x treemath.NodeIndex, anc int64) error {
	nd := v.t.at(x)
	if nd != nil {
		if anc >= 0 {
			if err := v.link(x, nd, treemath.NodeIndex(anc)); err != nil {
				return err
			}
		}
		anc = int64(x)
	}
	l, ok := treemath.Left(x)
	if !ok {
		return nil
	}
	r, _ := treemath.Right(x)
	if err := v.walk(l, anc); err != nil {
		return err
	}
	return v.walk(r, anc)
}

// link tests whether D (node d) is parent-hash valid with respect to P,
// its nearest non-blank ancestor, and counts a valid link towards P.
func (v *phVerifier) link(d treemath.NodeIndex, nd *wire.Node, p treemath.NodeIndex) error {
	var dph []byte
	switch {
	case nd.Parent != nil:
		dph = nd.Parent.ParentHash
	case nd.Leaf != nil && nd.Leaf.Source == wire.LeafNodeSourceCommit:
		dph = nd.Leaf.ParentHash
	default:
		return nil // key_package and update leaves carry no parent hash
	}
	pn := v.t.at(p).Parent
	l, _ := treemath.Left(p)
	r, _ := treemath.Right(p)
	c, s := l, r
	if !treemath.InSubtree(d, l) {
		c, s = r, l
	}
	if li, ok := d.Leaf(); ok {
		if _, found := slices.BinarySearch(pn.UnmergedLeaves, uint32(li)); found {
			return nil // D cannot be both the chain's node and unmerged at P
		}
	}
	if uint64(v.resSize[c]) != 1+uint64(len(unmergedBelow(pn.UnmergedLeaves, c))) {
		return nil
	}
	slot := phSlot(p, s)
	want := v.ph[slot*v.size : (slot+1)*v.size]
	if !v.have[slot] {
		osth, err := v.t.hashExcluding(s, unmergedBelow(pn.UnmergedLeaves, s))
		if err != nil {
			return fmt.Errorf("tree: verify parent hashes: %w", err)
		}
		in, err := v.t.parentHashInput(pn, osth)
		if err != nil {
			return fmt.Errorf("tree: verify parent hashes: node %d: %w", p, err)
		}
		v.t.suite.AppendHash(want[:0], in) // fills want in place
		v.have[slot] = true
	}
	if bytes.Equal(dph, want) && v.covered[p] < 255 {
		v.covered[p]++
	}
	return nil
}

// CheckUnmergedLeaves checks the unmerged_leaves rules of RFC 9420
// §12.4.3.1 for every non-blank parent P and each leaf L in its list: L is
// a non-blank leaf below P (with the list sorted, checked on insertion),
// and every non-blank node between L and P also lists L.
func (t *Tree) CheckUnmergedLeaves() error {
	lc := t.LeafCount()
	for x := 1; x < t.n; x += 2 {
		p := t.ParentNode(treemath.NodeIndex(x))
		if p == nil {
			continue
		}
		if err := t.checkNode(treemath.NodeIndex(x), t.at(treemath.NodeIndex(x))); err != nil {
			return fmt.Errorf("tree: check unmerged leaves: %w", err)
		}
		for _, u := range p.UnmergedLeaves {
			li := treemath.LeafIndex(u)
			if t.Leaf(li) == nil {
				return fmt.Errorf("tree: check unmerged leaves: node %d: unmerged leaf %d is blank", x, u)
			}
			for y, _ := treemath.Parent(li.Node(), lc); y != treemath.NodeIndex(x); y, _ = treemath.Parent(y, lc) {
				q := t.ParentNode(y)
				if q == nil {
					continue
				}
				if _, found := slices.BinarySearch(q.UnmergedLeaves, u); !found {
					return fmt.Errorf("tree: check unmerged leaves: node %d: unmerged leaf %d missing from unmerged_leaves of intermediate node %d", x, u, y)
				}
			}
		}
	}
	return nil
}
