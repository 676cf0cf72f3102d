package tree

import (
	"bytes"
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// ChangedSince returns, in increasing order, the nodes at which t differs
// from old, an earlier version of the same group's tree (typically the tree
// t was cloned from and changed): nodes changed, set or blanked, nodes that
// exist only in t (non-blank ones, when t is larger) and nodes that exist
// only in old (non-blank ones, when t is smaller). A node outside a tree
// counts as blank.
//
// The nodes both trees hold form the subtree rooted at the smaller tree's
// root, at the same indices in both (RFC 9420 §7.7: extending and
// truncating the tree keep the left subtree in place). There the trees are
// compared from that root down, entering only subtrees whose tree hashes
// (RFC 9420 §7.8) differ: a subtree's hash commits to every node below it
// and to its position, so equal hashes mean equal subtrees. With the hashes
// cached, as they are for the trees of two epochs, this costs O(log n)
// hash comparisons per changed node, whatever the size of the trees. The
// nodes only one tree holds are scanned, which costs as much as the resize
// that added or cut them.
func (t *Tree) ChangedSince(old *Tree) ([]treemath.NodeIndex, error) {
	if err := t.ready(); err != nil {
		return nil, fmt.Errorf("tree: changed since: %w", err)
	}
	if err := old.ready(); err != nil {
		return nil, fmt.Errorf("tree: changed since: old tree: %w", err)
	}
	if t.suite.ID() != old.suite.ID() {
		return nil, fmt.Errorf("tree: changed since: cipher suite %#04x, old tree's %#04x", uint16(t.suite.ID()), uint16(old.suite.ID()))
	}
	d := differ{t: t, old: old}
	common := min(t.n, old.n)
	if err := d.walk(treemath.NodeIndex(common / 2)); err != nil {
		return nil, fmt.Errorf("tree: changed since: %w", err)
	}
	for x := common; x < t.n; x++ {
		if t.at(treemath.NodeIndex(x)) != nil {
			d.out = append(d.out, treemath.NodeIndex(x))
		}
	}
	for x := common; x < old.n; x++ {
		if old.at(treemath.NodeIndex(x)) != nil {
			d.out = append(d.out, treemath.NodeIndex(x))
		}
	}
	return d.out, nil
}

// differ holds the state of one ChangedSince.
type differ struct {
	t, old *Tree
	out    []treemath.NodeIndex
	a, b   codec.Builder
}

// walk appends, in order, the nodes of the subtree at x where t and old
// differ; x is in both trees.
func (d *differ) walk(x treemath.NodeIndex) error {
	h, err := d.t.hash(x)
	if err != nil {
		return err
	}
	oh, err := d.old.hash(x)
	if err != nil {
		return fmt.Errorf("old tree: %w", err)
	}
	if bytes.Equal(h, oh) {
		return nil
	}
	l, hasChildren := treemath.Left(x)
	if hasChildren {
		if err := d.walk(l); err != nil {
			return err
		}
	}
	same, err := d.sameNode(d.t.at(x), d.old.at(x))
	if err != nil {
		return fmt.Errorf("node %d: %w", x, err)
	}
	if !same {
		d.out = append(d.out, x)
	}
	if hasChildren {
		r, _ := treemath.Right(x)
		return d.walk(r)
	}
	return nil
}

// sameNode reports whether two nodes at the same position are equal: the
// same pointer (nodes are shared between versions of a tree), both blank,
// or the same encoding.
func (d *differ) sameNode(a, b *wire.Node) (bool, error) {
	switch {
	case a == b:
		return true, nil
	case a == nil || b == nil:
		return false, nil
	}
	d.a.Reset()
	d.b.Reset()
	a.EncodeMLS(&d.a)
	b.EncodeMLS(&d.b)
	ea, err := d.a.Bytes()
	if err != nil {
		return false, err
	}
	eb, err := d.b.Bytes()
	if err != nil {
		return false, fmt.Errorf("old tree: %w", err)
	}
	return bytes.Equal(ea, eb), nil
}
