package treekem

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// MergeUpdatePath checks the UpdatePath up received from the member at
// leaf sender and returns a new tree: t with up merged (RFC 9420 §7.5
// "merge UpdatePath into the tree"). t is not modified. The checks are:
//
//   - up's leaf node has leaf_node_source commit and a valid signature
//     over groupID and sender (§7.3, §12.4.2);
//   - its encryption_key differs from that of the sender's current leaf,
//     if the leaf is not blank (§12.4.2);
//   - up has one node per node of the sender's filtered direct path
//     (§7.6);
//   - none of the public keys in up appears in a node of t, nor twice in
//     up (§12.4.2);
//   - after the path's public keys are set (no unmerged leaves) and the
//     parent hashes computed top down, the leaf's parent_hash equals the
//     parent hash of the first node of the filtered direct path (§7.5
//     step 3, §7.9), which makes the whole path parent-hash valid.
//
// The rest of the leaf node validation of §7.3 (credential, capabilities,
// lifetime, signature key uniqueness) is the caller's. The returned tree
// shares the byte slices of up, which must not be modified afterwards. The number of
// ciphertexts per node depends on the leaves added by the Commit and is
// checked by ApplyUpdatePath.
func MergeUpdatePath(t *tree.Tree, sender treemath.LeafIndex, up *wire.UpdatePath, groupID []byte) (*tree.Tree, error) {
	nt, _, err := mergeUpdatePath(t, sender, up, groupID)
	if err != nil {
		return nil, fmt.Errorf("treekem: merge UpdatePath from leaf %d: %w", sender, err)
	}
	return nt, nil
}

// mergeUpdatePath is MergeUpdatePath; it also returns the sender's
// filtered direct path and copath.
func mergeUpdatePath(t *tree.Tree, sender treemath.LeafIndex, up *wire.UpdatePath, groupID []byte) (*tree.Tree, [2][]treemath.NodeIndex, error) {
	var fdp [2][]treemath.NodeIndex
	if t == nil || up == nil {
		return nil, fdp, errors.New("nil tree or UpdatePath")
	}
	path, copath, err := t.FilteredDirectPath(sender)
	if err != nil {
		return nil, fdp, err
	}
	fdp = [2][]treemath.NodeIndex{path, copath}
	s := t.Suite()
	leaf := up.LeafNode // a copy: the tree must own its node
	if leaf.Source != wire.LeafNodeSourceCommit {
		return nil, fdp, fmt.Errorf("leaf node: leaf_node_source %d, want commit (%d)", leaf.Source, wire.LeafNodeSourceCommit)
	}
	if err := leaf.Verify(s, groupID, uint32(sender)); err != nil {
		return nil, fdp, fmt.Errorf("leaf node: %w", err)
	}
	if old := t.Leaf(sender); old != nil && bytes.Equal(old.EncryptionKey, leaf.EncryptionKey) {
		return nil, fdp, errors.New("leaf node: encryption_key unchanged")
	}
	if len(up.Nodes) != len(path) {
		return nil, fdp, fmt.Errorf("%d path nodes, the filtered direct path has %d", len(up.Nodes), len(path))
	}
	pubs := make([][]byte, len(path))
	fresh := make(map[string]int, len(path)+1)
	fresh[string(leaf.EncryptionKey)] = -1
	for j := range up.Nodes {
		pubs[j] = up.Nodes[j].EncryptionKey
		if len(pubs[j]) == 0 {
			return nil, fdp, fmt.Errorf("node %d: empty encryption_key", path[j])
		}
		if _, dup := fresh[string(pubs[j])]; dup {
			return nil, fdp, fmt.Errorf("node %d: encryption_key appears twice in the UpdatePath", path[j])
		}
		fresh[string(pubs[j])] = j
	}
	// Through the tree's key index: O(log n) lookups, not a scan. The
	// lowest node using any of the path's keys is reported.
	used := -1
	for k := range fresh {
		if x, dup := t.EncryptionKeyNode([]byte(k)); dup && (used < 0 || int(x) < used) {
			used = int(x)
		}
	}
	if used >= 0 {
		return nil, fdp, fmt.Errorf("an encryption_key of the UpdatePath is already used by node %d", used)
	}
	nt := t.Clone()
	if err := mergePath(nt, sender, path, pubs, &leaf, func(ph []byte) error {
		if !bytes.Equal(ph, leaf.ParentHash) {
			return errors.New("leaf node: parent_hash does not match the parent hash of the filtered direct path")
		}
		return nil
	}); err != nil {
		return nil, fdp, err
	}
	return nt, fdp, nil
}

// ApplyParams are the inputs of ApplyUpdatePath besides the tree, the
// private state and the UpdatePath.
type ApplyParams struct {
	// GroupID is the group's group_id (the leaf signature's context).
	GroupID []byte

	// Exclude lists the leaves added by the same Commit, as the committer
	// passed them to CreateUpdatePath (RFC 9420 §7.6): they have no
	// ciphertext, which shifts the positions of the others.
	Exclude []treemath.LeafIndex

	// Context serializes the provisional GroupContext for the tree hash
	// of the merged tree (RFC 9420 §12.4.2). Required.
	Context ContextFunc

	// Workers bounds the goroutines deriving node key pairs; zero means
	// runtime.GOMAXPROCS(0). The result does not depend on it.
	Workers int
}

// Applied is the result of ApplyUpdatePath. Its fields are owned by the
// caller; PathSecret and CommitSecret are secret and are wiped by Zero.
type Applied struct {
	// Tree is the input tree with the UpdatePath merged.
	Tree *tree.Tree

	// Private is the member's new private state for Tree: the old state
	// without the keys of the sender's direct path and of nodes blank in
	// Tree, plus the keys derived from the decrypted path secret. It shares
	// no secrets with the old state.
	Private *Private

	// Node is the node of the sender's filtered direct path whose path
	// secret was decrypted: the lowest common ancestor of the member's
	// and the sender's leaves. PathSecret is that secret.
	Node       treemath.NodeIndex
	PathSecret PathSecret

	// CommitSecret is path_secret[n+1] (RFC 9420 §12.4.2).
	CommitSecret schedule.CommitSecret
}

// Zero wipes PathSecret and CommitSecret. It does not touch Private,
// which the caller may have adopted.
func (a *Applied) Zero() {
	clear(a.PathSecret)
	clear(a.CommitSecret)
}

// ApplyUpdatePath processes the UpdatePath up sent by the member at leaf
// sender, as the member whose private state is priv (RFC 9420 §7.5, §7.6,
// §12.4.2):
//
//  1. MergeUpdatePath checks up and merges it into a clone of t;
//  2. each node of up must carry one ciphertext per node of the resolution
//     of its copath child, minus the excluded leaves;
//  3. the GroupContext is serialized with the merged tree's hash;
//  4. the member finds the copath child above its leaf and, in that
//     child's resolution, the node it holds the private key of (matching
//     the node's public key), and decrypts the ciphertext at that
//     position;
//  5. path secrets are derived for the rest of the filtered direct path;
//     every derived public key must equal the one in up;
//  6. the commit secret is derived from the last path secret.
//
// t and priv are not modified, on success or failure; the caller adopts
// the returned tree and state when the whole Commit is accepted and then
// zeroes priv. The member must not be the sender nor an excluded leaf.
func ApplyUpdatePath(t *tree.Tree, priv *Private, sender treemath.LeafIndex, up *wire.UpdatePath, p ApplyParams) (*Applied, error) {
	if t == nil || priv == nil || up == nil || p.Context == nil {
		return nil, fmt.Errorf("treekem: apply UpdatePath from leaf %d: tree, private state, UpdatePath and context function are required", sender)
	}
	me := priv.leaf
	errorf := func(format string, args ...any) error {
		return fmt.Errorf("treekem: apply UpdatePath from leaf %d at leaf %d: %s", sender, me, fmt.Sprintf(format, args...))
	}
	if priv.suite.ID() != t.Suite().ID() {
		return nil, errorf("private state is for suite %v, tree for %v", priv.suite, t.Suite())
	}
	if me == sender {
		return nil, errorf("the sender cannot process its own UpdatePath")
	}
	excl := newExclusion(p.Exclude)
	if excl.has(me.Node()) {
		return nil, errorf("leaf is excluded (added by this Commit); it joins by Welcome")
	}
	if t.Leaf(me) == nil {
		return nil, errorf("own leaf is blank or outside the tree")
	}
	nt, fdp, err := mergeUpdatePath(t, sender, up, p.GroupID)
	if err != nil {
		return nil, errorf("%v", err)
	}
	path, copath := fdp[0], fdp[1]

	// Check the ciphertext counts and find the copath child above us.
	at, pos := -1, -1
	var res []treemath.NodeIndex
	for j, c := range copath {
		res = excl.filter(nt.AppendResolution(res[:0], c))
		if got := len(up.Nodes[j].EncryptedPathSecret); got != len(res) {
			return nil, errorf("node %d: %d ciphertexts, the resolution of copath node %d has %d nodes", path[j], got, c, len(res))
		}
		if at >= 0 || !treemath.InSubtree(me.Node(), c) {
			continue
		}
		at = j
		for k, x := range res {
			if priv.holds(x, nodeEncryptionKey(nt, x)) {
				pos = k
				break
			}
		}
	}
	if at < 0 {
		return nil, errorf("no node of the sender's filtered direct path covers the leaf")
	}
	if pos < 0 {
		return nil, errorf("node %d: no private key for any node in the resolution of copath node %d", path[at], copath[at])
	}

	th, err := nt.TreeHash()
	if err != nil {
		return nil, errorf("%v", err)
	}
	gc, err := p.Context(th)
	if err != nil {
		return nil, errorf("group context: %v", err)
	}
	s := t.Suite()
	res = excl.filter(nt.AppendResolution(res[:0], copath[at]))
	key, _ := priv.PrivateKey(res[pos])
	ct := &up.Nodes[at].EncryptedPathSecret[pos]
	ps, err := s.DecryptWithLabel(key, updatePathLabel, gc, ct.KEMOutput, ct.Ciphertext)
	if err != nil {
		return nil, errorf("node %d: decrypt path secret with the key of node %d: %v", path[at], res[pos], err)
	}
	if len(ps) != s.HashSize() {
		clear(ps)
		return nil, errorf("node %d: decrypted path secret is %d bytes, want %d", path[at], len(ps), s.HashSize())
	}

	// Derive and check the keys up to the root.
	keys, commit, err := derivePath(s, ps, len(path)-at, p.Workers)
	clear(ps)
	if err != nil {
		return nil, errorf("node %d: derive path keys: %v", path[at], err)
	}
	ok := false
	defer func() {
		if !ok {
			clear(commit)
			for _, k := range keys {
				k.zero()
			}
		}
	}()
	for i, k := range keys {
		if !bytes.Equal(k.pub, up.Nodes[at+i].EncryptionKey) {
			return nil, errorf("node %d: public key derived from the path secret does not match the UpdatePath", path[at+i])
		}
	}

	np := priv.Clone()
	dp, _ := treemath.DirectPath(sender.Node(), nt.LeafCount())
	for _, x := range dp {
		np.drop(x)
	}
	for x := range np.nodes {
		if nt.ParentNode(x) == nil {
			np.drop(x)
		}
	}
	for i, k := range keys {
		np.put(path[at+i], k)
	}
	ok = true
	return &Applied{
		Tree:         nt,
		Private:      np,
		Node:         path[at],
		PathSecret:   slices.Clone(keys[0].pathSecret),
		CommitSecret: schedule.CommitSecret(commit),
	}, nil
}
