package treekem

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// updatePathLabel is the EncryptWithLabel label of RFC 9420 §7.6.
const updatePathLabel = "UpdatePathNode"

// CreateParams are the inputs of CreateUpdatePath besides the tree and
// the committer's leaf index.
type CreateParams struct {
	// Leaf is the template of the committer's new LeafNode. Its
	// signature_key, credential, capabilities and extensions are used as
	// they are; encryption_key, leaf_node_source (commit), lifetime
	// (none), parent_hash and signature are set by CreateUpdatePath. The
	// template itself is not modified, but the slices inside it are shared
	// with the returned tree and UpdatePath, so the caller must not modify
	// them afterwards.
	Leaf *wire.LeafNode

	// SignaturePrivateKey is the private key of Leaf.SignatureKey, used to
	// re-sign the leaf (secret; not retained).
	SignaturePrivateKey []byte

	// GroupID is the group's group_id, part of the leaf's signed content
	// (RFC 9420 §7.2 LeafNodeTBS).
	GroupID []byte

	// Exclude lists the leaves added by the same Commit: they get no
	// ciphertext (RFC 9420 §7.5, §7.6) and learn their path secret from
	// the Welcome instead (Update.PathSecretFor). Order does not matter.
	Exclude []treemath.LeafIndex

	// Context serializes the provisional GroupContext for the tree hash of
	// the new tree (RFC 9420 §12.4.2). It is called once, after the path
	// has been merged and the leaf re-signed. Required.
	Context ContextFunc

	// Rand is the source of the fresh leaf secret; nil means crypto/rand.
	// (HPKE encryption always draws its own randomness from crypto/rand.)
	Rand io.Reader

	// Workers bounds the goroutines encrypting path secrets; zero means
	// runtime.GOMAXPROCS(0). The UpdatePath does not depend on it.
	Workers int
}

// Update is the result of CreateUpdatePath. Its fields are owned by the
// caller; CommitSecret and the path secrets behind PathSecretFor are
// secret and are wiped by Zero.
type Update struct {
	// Path is the UpdatePath to send in the Commit (RFC 9420 §7.6).
	Path *wire.UpdatePath

	// Tree is a new tree: the input tree with the path merged, as every
	// recipient will compute it. The input tree is not modified.
	Tree *tree.Tree

	// Private is the committer's new private state for Tree: the fresh
	// leaf key and the keys of its filtered direct path. It shares no
	// secrets with anything else.
	Private *Private

	// CommitSecret is path_secret[n+1] (RFC 9420 §12.4.2), the input of
	// the next epoch's key schedule.
	CommitSecret schedule.CommitSecret

	sender  treemath.LeafIndex
	path    []treemath.NodeIndex // the filtered direct path
	secrets []PathSecret         // path secret of each node of path
}

// PathSecretFor returns the path secret a new member at leaf j receives in
// its Welcome (RFC 9420 §12.4.3.1): that of the lowest common ancestor x
// of j and the committer's leaf, which lies on the committer's filtered
// direct path whenever j is a non-blank leaf. The secret is a fresh copy
// owned by the caller.
func (u *Update) PathSecretFor(j treemath.LeafIndex) (x treemath.NodeIndex, ps PathSecret, err error) {
	if j == u.sender || !u.Tree.LeafCount().HasLeaf(j) {
		return 0, nil, fmt.Errorf("treekem: path secret for leaf %d: not another leaf of the tree (sender %d, %d leaves)", j, u.sender, u.Tree.LeafCount())
	}
	x = treemath.CommonAncestor(u.sender.Node(), j.Node())
	i := slices.Index(u.path, x)
	if i < 0 {
		return 0, nil, fmt.Errorf("treekem: path secret for leaf %d: common ancestor %d is not on the filtered direct path of leaf %d", j, x, u.sender)
	}
	return x, slices.Clone(u.secrets[i]), nil
}

// Zero wipes the commit secret and the path secrets kept for
// PathSecretFor. It does not touch Private, which the caller may have
// adopted.
func (u *Update) Zero() {
	clear(u.CommitSecret)
	for _, ps := range u.secrets {
		clear(ps)
	}
	u.secrets = nil
}

// CreateUpdatePath updates the direct path of the member at leaf sender
// (RFC 9420 §7.4) and encrypts the new path secrets to the group (§7.5,
// §7.6), in this order:
//
//  1. a fresh leaf secret gives the leaf key pair (DeriveSecret(leaf_secret,
//     "node")) and path_secret[0] = DeriveSecret(leaf_secret, "path"); each
//     next path secret is DeriveSecret(previous, "path");
//  2. on a clone of t the sender's direct path is blanked and each node of
//     its filtered direct path gets its new public key and no unmerged
//     leaves; the parent hashes are set top down (§7.9);
//  3. the new leaf (source commit, the leaf parent hash) is signed and set;
//  4. the GroupContext is serialized with the new tree hash (p.Context);
//  5. each path secret is encrypted to every node of the resolution of the
//     corresponding copath child, minus the excluded leaves, in
//     resolution order, spread over p.Workers goroutines.
//
// t and the inputs are not modified. The sender's leaf may be blank (an
// external commit, §12.4.3.2, assigns the joiner a blank leaf first).
func CreateUpdatePath(t *tree.Tree, sender treemath.LeafIndex, p CreateParams) (*Update, error) {
	if t == nil {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: nil tree", sender)
	}
	if p.Leaf == nil || p.Context == nil {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: leaf template and context function are required", sender)
	}
	lc := t.LeafCount()
	if !lc.HasLeaf(sender) {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: leaf out of range (%d leaves)", sender, lc)
	}
	excl := newExclusion(p.Exclude)
	if excl.has(sender.Node()) {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: the sender is in the excluded leaves", sender)
	}
	s := t.Suite()
	if sigPub, err := s.SignaturePublicKey(p.SignaturePrivateKey); err != nil {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: %w", sender, err)
	} else if !bytes.Equal(sigPub, p.Leaf.SignatureKey) {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: signature private key does not match the leaf's signature_key", sender)
	}
	rnd := p.Rand
	if rnd == nil {
		rnd = rand.Reader
	}

	path, copath, err := t.FilteredDirectPath(sender)
	if err != nil {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: %w", sender, err)
	}

	// Step 1: key material. Every secret not handed out is wiped on return.
	u := &Update{sender: sender, path: path, secrets: make([]PathSecret, len(path))}
	ok := false
	keys := make([]*nodeKey, 0, len(path)+1)
	leafSecret := make([]byte, s.HashSize())
	defer func() {
		clear(leafSecret)
		if !ok {
			u.Zero()
			for _, k := range keys {
				k.zero()
			}
		}
	}()
	if _, err := io.ReadFull(rnd, leafSecret); err != nil {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: leaf secret: %w", sender, err)
	}
	leafKey, err := deriveNodeKey(s, leafSecret)
	if err != nil {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: leaf key: %w", sender, err)
	}
	keys = append(keys, leafKey)
	ps0, err := nextPathSecret(s, leafSecret)
	if err != nil {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: %w", sender, err)
	}
	pathKeys, commit, err := derivePath(s, ps0, len(path), p.Workers)
	clear(ps0)
	if err != nil {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: path keys: %w", sender, err)
	}
	keys = append(keys, pathKeys...)
	for j, k := range pathKeys {
		u.secrets[j] = slices.Clone(k.pathSecret)
	}
	u.CommitSecret = schedule.CommitSecret(commit)

	// Steps 2 and 3: merge into a clone of the tree.
	nt := t.Clone()
	pubs := make([][]byte, len(path))
	for j := range path {
		pubs[j] = keys[j+1].pub
	}
	leaf := *p.Leaf
	leaf.EncryptionKey = leafKey.pub
	leaf.Source = wire.LeafNodeSourceCommit
	leaf.Lifetime = nil
	leaf.Signature = nil
	if err := mergePath(nt, sender, path, pubs, &leaf, func(ph []byte) error {
		leaf.ParentHash = ph
		return leaf.Sign(s, p.SignaturePrivateKey, p.GroupID, uint32(sender))
	}); err != nil {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: %w", sender, err)
	}

	// Step 4: the provisional GroupContext.
	th, err := nt.TreeHash()
	if err != nil {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: %w", sender, err)
	}
	gc, err := p.Context(th)
	if err != nil {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: group context: %w", sender, err)
	}

	// Step 5: encrypt.
	up := &wire.UpdatePath{LeafNode: leaf, Nodes: make([]wire.UpdatePathNode, len(path))}
	var jobs []encJob
	var res []treemath.NodeIndex
	for j := range path {
		res = excl.filter(nt.AppendResolution(res[:0], copath[j]))
		cts := make([]wire.HPKECiphertext, len(res))
		up.Nodes[j] = wire.UpdatePathNode{EncryptionKey: pubs[j], EncryptedPathSecret: cts}
		for k, x := range res {
			pub := nodeEncryptionKey(nt, x)
			if pub == nil {
				return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: node %d: resolution node %d is blank", sender, path[j], x)
			}
			jobs = append(jobs, encJob{node: path[j], to: x, pub: pub, secret: u.secrets[j], out: &cts[k]})
		}
	}
	if err := encryptAll(s, gc, jobs, p.Workers); err != nil {
		return nil, fmt.Errorf("treekem: create UpdatePath for leaf %d: %w", sender, err)
	}

	priv := &Private{
		suite:   s,
		leaf:    sender,
		leafKey: leafKey.priv,
		leafPub: leafKey.pub,
		nodes:   make(map[treemath.NodeIndex]*nodeKey, len(path)),
	}
	for j, x := range path {
		priv.nodes[x] = keys[j+1]
	}
	clear(leafKey.pathSecret) // the leaf secret is not kept
	u.Path, u.Tree, u.Private = up, nt, priv
	ok = true
	return u, nil
}

// mergePath merges a path into t (RFC 9420 §7.5 "merge UpdatePath into the
// tree", steps 1-3, and §7.4 step 4): it blanks the direct path of sender,
// sets each node of the filtered direct path path to a parent node with
// public key pubs[j], no unmerged leaves and the parent hash of §7.9.1,
// calls finish with the parent hash the leaf must carry (the committer
// signs the leaf there, a recipient compares), then stores leaf. t is
// modified even on error; callers pass a clone.
func mergePath(t *tree.Tree, sender treemath.LeafIndex, path []treemath.NodeIndex, pubs [][]byte, leaf *wire.LeafNode, finish func(parentHash []byte) error) error {
	if err := t.BlankPath(sender); err != nil {
		return err
	}
	for j, x := range path {
		if err := t.SetParent(x, &wire.ParentNode{EncryptionKey: pubs[j], ParentHash: []byte{}, UnmergedLeaves: []uint32{}}); err != nil {
			return err
		}
	}
	ph, err := t.SetParentHashes(sender)
	if err != nil {
		return err
	}
	if err := finish(ph); err != nil {
		return err
	}
	return t.SetLeaf(sender, leaf)
}

// nodeEncryptionKey returns the HPKE public key of node x of t, or nil if x
// is blank.
func nodeEncryptionKey(t *tree.Tree, x treemath.NodeIndex) []byte {
	return t.Node(x).EncryptionKey()
}

// exclusion is a set of excluded leaves, as the node indices of the
// leaves, sorted.
type exclusion []treemath.NodeIndex

func newExclusion(leaves []treemath.LeafIndex) exclusion {
	if len(leaves) == 0 {
		return nil
	}
	e := make(exclusion, len(leaves))
	for i, l := range leaves {
		e[i] = l.Node()
	}
	slices.Sort(e)
	return slices.Compact(e)
}

func (e exclusion) has(x treemath.NodeIndex) bool {
	_, found := slices.BinarySearch(e, x)
	return found
}

// filter removes the excluded leaves from the resolution res in place.
func (e exclusion) filter(res []treemath.NodeIndex) []treemath.NodeIndex {
	if len(e) == 0 {
		return res
	}
	return slices.DeleteFunc(res, e.has)
}

// encJob is one HPKE encryption of a path secret to a resolution node.
type encJob struct {
	node, to treemath.NodeIndex // for error messages
	pub      []byte
	secret   []byte
	out      *wire.HPKECiphertext
}

// encryptAll runs the jobs on up to workers goroutines; see parallel.
func encryptAll(s *suite.Suite, gc []byte, jobs []encJob, workers int) error {
	return parallel(len(jobs), workers, func(i int) error {
		j := &jobs[i]
		kem, ct, err := s.EncryptWithLabel(j.pub, updatePathLabel, gc, j.secret)
		if err != nil {
			return fmt.Errorf("node %d: encrypt path secret to node %d: %w", j.node, j.to, err)
		}
		*j.out = wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
		return nil
	})
}

// derivePath derives the key pairs of n consecutive nodes of a filtered
// direct path whose first path secret is ps (RFC 9420 §7.4): keys[i] is
// derived from path_secret[i], path_secret[0] = ps, and commit is
// path_secret[n] (the commit secret when the path reaches the root,
// §12.4.2). The cheap path secret chain is computed first, the expensive
// key pairs then on up to workers goroutines. ps is not retained.
func derivePath(s *suite.Suite, ps PathSecret, n, workers int) (keys []*nodeKey, commit []byte, err error) {
	secrets := make([]PathSecret, n+1)
	defer func() {
		for _, x := range secrets[:n] {
			clear(x)
		}
	}()
	secrets[0] = slices.Clone(ps)
	for i := 1; i <= n; i++ {
		if secrets[i], err = nextPathSecret(s, secrets[i-1]); err != nil {
			return nil, nil, err
		}
	}
	keys = make([]*nodeKey, n)
	err = parallel(n, workers, func(i int) error {
		var err error
		keys[i], err = deriveNodeKey(s, secrets[i])
		return err
	})
	if err != nil {
		for _, k := range keys {
			if k != nil {
				k.zero()
			}
		}
		clear(secrets[n])
		return nil, nil, err
	}
	return keys, secrets[n], nil
}

// parallel calls f(0), ..., f(n-1) on up to workers goroutines (zero means
// GOMAXPROCS; calls are a few tens of microseconds of public-key work
// each, enough to pay for a goroutine). Each call must write only its own
// outputs, so results do not depend on scheduling. After a failure no new
// calls start, and the error of the lowest failed call is returned.
func parallel(n, workers int, f func(i int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	if workers <= 1 {
		for i := range n {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if errs[i] = f(i); errs[i] != nil {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
