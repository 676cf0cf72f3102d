package mls

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// Storing a follower's tree node by node.
//
// A PublicGroup's MarshalBinary holds the whole ratchet tree, which for a
// large group on a post-quantum suite is tens of megabytes, and a commit
// changes only O(log n) of its nodes. A Delivery Service can instead keep
// the tree as one record per node: MarshalState holds everything else,
// TreeNodes the nodes, and after each commit TreeChanges says which nodes
// to write or delete. LoadPublicGroupTree rebuilds the group, and
// EncodeRatchetTree gives joiners the ratchet_tree extension body straight
// from the stored nodes.

// TreeNode is one node of a ratchet tree stored on its own: Index is its
// index in the tree's array form (RFC 9420 Appendix C), Data its encoding
// as a Node (the present body of an optional<Node>), nil for a blank node.
type TreeNode struct {
	Index uint32
	Data  []byte
}

// TreeNodes returns every non-blank node of the group's tree, by index.
// The Data slices share one buffer and belong to the caller.
func (pg *PublicGroup) TreeNodes() ([]TreeNode, error) {
	t := pg.c.tree
	xs := make([]treemath.NodeIndex, 0, t.NodeCount()/2+1)
	for x := range t.NodeCount() {
		if !t.Blank(treemath.NodeIndex(x)) {
			xs = append(xs, treemath.NodeIndex(x))
		}
	}
	out, err := encodeTreeNodes(t, xs)
	if err != nil {
		return nil, opError("tree nodes", err)
	}
	return out, nil
}

// encodeTreeNodes encodes the nodes xs of t into one buffer; blank nodes
// get nil Data.
func encodeTreeNodes(t *tree.Tree, xs []treemath.NodeIndex) ([]TreeNode, error) {
	out := make([]TreeNode, len(xs))
	ends := make([]int, len(xs))
	var b codec.Builder
	for i, x := range xs {
		if nd := t.Node(x); nd != nil {
			nd.EncodeMLS(&b)
		}
		ends[i] = b.Len()
	}
	buf, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	start := 0
	for i, x := range xs {
		out[i].Index = uint32(x)
		if ends[i] > start {
			out[i].Data = buf[start:ends[i]:ends[i]]
		}
		start = ends[i]
	}
	return out, nil
}

// MarshalState encodes the group like MarshalBinary but without the ratchet
// tree: with TreeNodes, what LoadPublicGroupTree rebuilds the group from.
// Like MarshalBinary it holds the cached proposals of the epoch, and no
// commit that was processed but not merged. Its layout, version 1:
//
//	uint8 version = 1;  uint8 kind = 4;
//	uint16 cipher_suite;
//	opaque group_context<V>;
//	uint32 node_count;             // of the tree, 2^(d+1)-1 with padding
//	opaque interim_transcript_hash<V>;
//	struct { opaque ref<V>; Proposal proposal; Sender sender; } proposals<V>;
//
// The state is small (kilobytes) whatever the size of the group: store it
// after every Merge, with the nodes TreeChanges reports, and after every
// cached proposal.
func (pg *PublicGroup) MarshalState() ([]byte, error) {
	const op = "marshal public group state without tree"
	b := codec.NewBuilder(nil)
	b.AddUint8(stateVersion)
	b.AddUint8(stateKindPublicState)
	if err := encodeCore(b, pg.c, false, true); err != nil {
		return nil, opError(op, err)
	}
	out, err := b.Bytes()
	if err != nil {
		return nil, opError(op, err)
	}
	return out, nil
}

// LoadPublicGroupTree rebuilds a PublicGroup from MarshalState's bytes and
// the tree's non-blank nodes (any order; duplicates, indices beyond the
// tree, blank nodes (nil Data), nodes that do not decode or a last node
// that does not give the tree its size are errors). It checks that the
// tree's hash is the one in the group context (so a damaged or mixed-up
// store is refused with a clear error), not the full validation
// NewPublicGroup does: like LoadPublicGroup it trusts what the follower
// validated before storing it. The group keeps copies of the nodes' Data.
// Errors wrap ErrMalformed.
func LoadPublicGroupTree(cfg *Config, state []byte, nodes []TreeNode) (*PublicGroup, error) {
	return loadPublicState(cfg, "load public group state and tree nodes", state, &storedTree{nodes: nodes})
}

// loadPublicState decodes MarshalState's bytes with the tree built from
// stored.
func loadPublicState(cfg *Config, op string, state []byte, stored *storedTree) (*PublicGroup, error) {
	c, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	r := codec.NewReader(state)
	if err := readStateHeader(r, stateKindPublicState); err != nil {
		return nil, causeError(op, "", ErrMalformed, err, "header")
	}
	co, err := decodeCore(c, r, false, stored)
	if err == nil {
		err = r.Finish()
	}
	if err != nil {
		return nil, causeError(op, "", ErrMalformed, err, "decode")
	}
	return &PublicGroup{c: co}, nil
}

// LoadPublicGroupChanges is LoadPublicGroupTree for a later epoch of
// prev's group, given as MarshalState's bytes of that epoch and the nodes
// that differ between prev's tree and that epoch's (TreeChanges' form:
// nil Data for a node now blank; over several commits, the latest of
// each node). prev's tree is shared copy-on-write and the tree hash is
// recomputed only along the changed paths, so the cost grows with the
// changed nodes, not with the group: a follower that holds an epoch in
// memory catches up on commits another follower accepted. The checks are
// LoadPublicGroupTree's (the result's tree hash must be the one in the
// state's group context) plus the group id; prev is not changed. Errors
// wrap ErrMalformed.
func LoadPublicGroupChanges(cfg *Config, prev *PublicGroup, state []byte, changes []TreeNode) (*PublicGroup, error) {
	const op = "load public group state and tree changes"
	if prev == nil {
		return nil, fmt.Errorf("mls: %s: no previous group", op)
	}
	return loadPublicState(cfg, op, state, &storedTree{nodes: changes, base: prev.c.tree, groupID: prev.c.gc.GroupID})
}

// storedTree is the tree of a state written without it: its nodes, given
// apart (LoadPublicGroupTree), or a tree of an earlier epoch and the nodes
// changed since (LoadPublicGroupChanges).
type storedTree struct {
	nodes []TreeNode
	// base and groupID are the earlier epoch's tree and group id.
	base    *tree.Tree
	groupID []byte
}

// patch builds the tree of width nodes from a clone of st.base with
// st.nodes applied; every index is checked against width and every
// non-blank node decoded before the clone is made.
func (st *storedTree) patch(s *suite.Suite, width uint32) (*tree.Tree, error) {
	if st.base.Suite().ID() != s.ID() {
		return nil, fmt.Errorf("the earlier tree is of cipher suite %d, the state of %d", st.base.Suite().ID(), s.ID())
	}
	xs := make([]treemath.NodeIndex, len(st.nodes))
	nds := make([]*wire.Node, len(st.nodes))
	seen := make(map[uint32]bool, len(st.nodes))
	for i, n := range st.nodes {
		if seen[n.Index] {
			return nil, fmt.Errorf("node %d given twice", n.Index)
		}
		seen[n.Index] = true
		xs[i] = treemath.NodeIndex(n.Index)
		if n.Data == nil {
			continue
		}
		nd, err := wire.UnmarshalNodeAliasing(bytes.Clone(n.Data))
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", n.Index, err)
		}
		nds[i] = nd
	}
	t := st.base.Clone()
	if err := t.Patch(int(width), xs, nds); err != nil {
		return nil, err
	}
	return t, nil
}

// build builds the tree of width nodes (blank padding included) from the
// stored nodes. It checks every index against width before it allocates
// anything, then decodes every node, checks the tree's shape (tree.FromWire)
// and its size; the tree hash is the caller's.
func (st *storedTree) build(s *suite.Suite, width uint32) (*tree.Tree, error) {
	if st.base != nil {
		return st.patch(s, width)
	}
	if w := uint64(width) + 1; w < 2 || w&(w-1) != 0 {
		return nil, fmt.Errorf("%d nodes is not the size of a ratchet tree", width)
	}
	if uint64(len(st.nodes)) > uint64(width) {
		return nil, fmt.Errorf("%d nodes for a tree of %d", len(st.nodes), width)
	}
	total, last := 0, -1
	for _, n := range st.nodes {
		if n.Index >= width {
			return nil, fmt.Errorf("node %d beyond the tree of %d nodes", n.Index, width)
		}
		if n.Data == nil {
			return nil, fmt.Errorf("node %d is blank (only non-blank nodes are stored)", n.Index)
		}
		last = max(last, int(n.Index))
		total += len(n.Data)
	}
	if last < 0 {
		return nil, errors.New("no nodes")
	}
	// One copy of all the nodes, which the decoded nodes alias.
	buf := make([]byte, 0, total)
	rt := make(wire.RatchetTree, last+1)
	for _, n := range st.nodes {
		if rt[n.Index] != nil {
			return nil, fmt.Errorf("node %d given twice", n.Index)
		}
		start := len(buf)
		buf = append(buf, n.Data...)
		nd, err := wire.UnmarshalNodeAliasing(buf[start:len(buf):len(buf)])
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", n.Index, err)
		}
		rt[n.Index] = nd
	}
	t, err := tree.FromWire(s, rt)
	if err != nil {
		return nil, err
	}
	if t.NodeCount() != int(width) {
		return nil, fmt.Errorf("the stored nodes end at node %d, which makes a tree of %d nodes, not %d (last nodes missing)", last, t.NodeCount(), width)
	}
	return t, nil
}

// TreeChanges returns, for a commit processed by PublicGroup.Process, the
// nodes of the new epoch's tree that differ from the current epoch's tree,
// by index: changed or new nodes with their encoding, and nodes that
// became blank — including nodes cut off when the tree shrinks — with nil
// Data. Applied to the current epoch's TreeNodes (set Data, delete on
// nil), they give the new epoch's. Valid before or after Merge. Its cost
// grows with the number of changed nodes (times log n at most: it compares
// the cached tree hashes of both epochs from the root down), not with the
// size of the tree, except that a commit that doubles or halves the tree
// also scans the nodes added or cut, as the resize itself does. For a
// proposal it returns nil.
func (ch *PublicChange) TreeChanges() ([]TreeNode, error) {
	const op = "public commit tree changes"
	if ch == nil || ch.Kind != KindCommit || ch.prev == nil || ch.next == nil {
		return nil, nil
	}
	xs, err := ch.next.tree.ChangedSince(ch.prev.tree)
	if err != nil {
		return nil, opError(op, err)
	}
	out, err := encodeTreeNodes(ch.next.tree, xs)
	if err != nil {
		return nil, opError(op, err)
	}
	return out, nil
}

// EncodeRatchetTree assembles the ratchet_tree extension body (RFC 9420
// §12.4.3.3) from a tree's non-blank nodes, sorted by index without
// duplicates: blanks fill the gaps (a node with nil Data is blank too). It
// does not decode the nodes; its cost is linear in its output. A last node that is not a leaf (odd index), or
// that is blank (nil Data), is an error (the encoding ends with a non-blank
// leaf), as is an empty list.
func EncodeRatchetTree(nodes []TreeNode) ([]byte, error) {
	const op = "encode ratchet tree"
	if len(nodes) == 0 {
		return nil, fmt.Errorf("mls: %s: no nodes", op)
	}
	lastNode := nodes[len(nodes)-1]
	if lastNode.Index%2 != 0 || lastNode.Data == nil {
		return nil, fmt.Errorf("mls: %s: last node %d is not a non-blank leaf", op, lastNode.Index)
	}
	// Size: one presence octet per node up to the last, plus the data.
	size := uint64(lastNode.Index) + 1
	for i, n := range nodes {
		if i > 0 && n.Index <= nodes[i-1].Index {
			return nil, fmt.Errorf("mls: %s: node %d after node %d (want increasing indices)", op, n.Index, nodes[i-1].Index)
		}
		size += uint64(len(n.Data))
	}
	if size > codec.MaxVarint {
		return nil, fmt.Errorf("mls: %s: %d bytes exceed the largest vector", op, size)
	}
	out := make([]byte, 0, codec.VarintLen(size)+int(size))
	out, err := codec.AppendVarint(out, size)
	if err != nil {
		return nil, opError(op, err)
	}
	next := uint32(0)
	for _, n := range nodes {
		for ; next < n.Index; next++ {
			out = append(out, 0)
		}
		if n.Data == nil {
			out = append(out, 0)
		} else {
			out = append(append(out, 1), n.Data...)
		}
		next++
	}
	return out, nil
}
