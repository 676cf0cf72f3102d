package tree

import (
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// TreeHash returns the tree hash of the root (RFC 9420 §7.8), the value
// of GroupContext.tree_hash. Hashes are cached per node and recomputed
// only below nodes changed since the last call, so after one path change
// the cost is O(log n) hashes. The returned slice must not be modified.
func (t *Tree) TreeHash() ([]byte, error) {
	return t.NodeHash(t.Root())
}

// NodeHash returns the tree hash of node x (RFC 9420 §7.8): the hash of
// its TreeHashInput. It fails if x is outside the tree or a node cannot
// be encoded. The returned slice must not be modified.
func (t *Tree) NodeHash(x treemath.NodeIndex) ([]byte, error) {
	if err := t.ready(); err != nil {
		return nil, fmt.Errorf("tree: tree hash: %w", err)
	}
	if uint64(x) >= uint64(t.n) {
		return nil, fmt.Errorf("tree: tree hash: node %d outside the tree (%d nodes)", x, t.n)
	}
	h, err := t.hash(x)
	if err != nil {
		return nil, fmt.Errorf("tree: tree hash: %w", err)
	}
	return h, nil
}

// hash returns the tree hash of x, computing and caching what is stale.
func (t *Tree) hash(x treemath.NodeIndex) ([]byte, error) {
	if h := t.hashAt(x); h != nil {
		return h, nil
	}
	var h []byte
	var err error
	if li, ok := x.Leaf(); ok {
		h, err = t.leafHash(li, t.at(x))
	} else {
		l, _ := treemath.Left(x)
		r, _ := treemath.Right(x)
		var hl, hr []byte
		if hl, err = t.hash(l); err != nil {
			return nil, err
		}
		if hr, err = t.hash(r); err != nil {
			return nil, err
		}
		var p *wire.ParentNode
		if nd := t.at(x); nd != nil {
			p = nd.Parent
		}
		h, err = t.parentHashInputHash(x, p, hl, hr)
	}
	if err != nil {
		return nil, err
	}
	t.setHash(x, h)
	return h, nil
}

// leafHash hashes TreeHashInput{leaf, LeafNodeHashInput{li, nd}}.
func (t *Tree) leafHash(li treemath.LeafIndex, nd *wire.Node) ([]byte, error) {
	b := &t.enc
	b.Reset()
	b.AddUint8(uint8(wire.NodeTypeLeaf))
	b.AddUint32(uint32(li))
	if nd == nil {
		b.AddUint8(0)
	} else {
		b.AddUint8(1)
		nd.Leaf.EncodeMLS(b)
	}
	in, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("leaf %d: %w", li, err)
	}
	return t.newHash(in), nil
}

// parentHashInputHash hashes TreeHashInput{parent, ParentNodeHashInput{p,
// left, right}}; p nil is a blank node.
func (t *Tree) parentHashInputHash(x treemath.NodeIndex, p *wire.ParentNode, left, right []byte) ([]byte, error) {
	b := &t.enc
	b.Reset()
	b.AddUint8(uint8(wire.NodeTypeParent))
	if p == nil {
		b.AddUint8(0)
	} else {
		b.AddUint8(1)
		p.EncodeMLS(b)
	}
	b.AddOpaque(left)
	b.AddOpaque(right)
	in, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", x, err)
	}
	return t.newHash(in), nil
}

// newHash returns the hash of in. A tree built by FromWire has no hash
// cached, and its first full hashing (the tree hash, then the parent
// hashes a joiner verifies) computes one hash per node and more: those
// hashes are cut from one arena sized for them (arenaHint), instead of
// tens of thousands of small allocations. Once the arena is used up each
// hash is allocated alone, as for a tree changed along one path. The
// arena stays in memory while any hash cut from it is cached: at most the
// size of the hashes it was made for.
func (t *Tree) newHash(in []byte) []byte {
	size := t.suite.HashSize()
	if cap(t.arena)-len(t.arena) < size && t.arenaHint > 0 {
		t.arena = make([]byte, 0, t.arenaHint*size)
		t.arenaHint = 0
	}
	if cap(t.arena)-len(t.arena) < size {
		return t.suite.Hash(in)
	}
	start := len(t.arena)
	t.arena = t.suite.AppendHash(t.arena, in)
	return t.arena[start:len(t.arena):len(t.arena)]
}

// hashExcluding returns the tree hash of x in the tree modified as RFC
// 9420 §7.9 defines for original_sibling_tree_hash: every leaf in excl
// (sorted, all below x) is blanked and removed from the unmerged_leaves of
// every parent. Subtrees that contain no excluded leaf use the cache, so
// the cost is O(len(excl) * height) hashes.
func (t *Tree) hashExcluding(x treemath.NodeIndex, excl []uint32) ([]byte, error) {
	if len(excl) == 0 {
		return t.hash(x)
	}
	if li, ok := x.Leaf(); ok {
		return t.leafHash(li, nil)
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	// Leaves below r start at x+1 in node terms, at leaf (x+1)/2.
	split, _ := slices.BinarySearch(excl, uint32(x+1)/2)
	hl, err := t.hashExcluding(l, excl[:split])
	if err != nil {
		return nil, err
	}
	hr, err := t.hashExcluding(r, excl[split:])
	if err != nil {
		return nil, err
	}
	var p *wire.ParentNode
	if nd := t.at(x); nd != nil {
		p = nd.Parent
		if p != nil && len(p.UnmergedLeaves) > 0 {
			kept := make([]uint32, 0, len(p.UnmergedLeaves))
			for _, u := range p.UnmergedLeaves {
				if _, found := slices.BinarySearch(excl, u); !found {
					kept = append(kept, u)
				}
			}
			if len(kept) != len(p.UnmergedLeaves) {
				np := *p
				np.UnmergedLeaves = kept
				p = &np
			}
		}
	}
	return t.parentHashInputHash(x, p, hl, hr)
}
