// Package follower adapts mls.PublicGroup to the delivery core's Follower
// interface: it validates the public group state of new conversations and
// the handshake messages of their epochs, checks the GroupInfo each commit
// comes with against the state the commit produces, peeks at the clear
// header of PrivateMessages and Welcomes, and validates KeyPackages. Every
// MLS decoding is the mls package's (mls.PeekPrivateMessage,
// mls.PeekWelcome, mls.PeekWireFormat); this package parses nothing itself.
//
// A conversation's whole ratchet tree is validated once, when it starts
// (mls.NewPublicGroup). A commit is validated incrementally by
// mls.PublicGroup.Process, and the new epoch's GroupInfo by
// mls.PublicChange.VerifyGroupInfo: no per-commit work proportional to the
// group.
//
// # What is stored
//
// The follower state stored with a conversation is
// mls.PublicGroup.MarshalState as of the start of the current epoch:
// the group without its ratchet tree and without proposals, written when
// the conversation starts and by each accepted commit. The tree is
// stored node by node (mls.PublicGroup.TreeNodes when the conversation
// starts, then each commit's mls.PublicChange.TreeChanges), so that what
// a commit writes grows with the nodes it changed — O(log n) — not with
// the group; a group is rebuilt from the state and the nodes with
// mls.LoadPublicGroupTree, which checks the nodes against the tree hash
// the state holds. Each accepted proposal of the epoch is stored on its
// own, as the message received, with the time it was validated at; the
// group as it is now is that state with the stored proposals processed
// again, in order. A commit may therefore include by reference any
// proposal of its epoch accepted before, on this node or another, before
// or after a restart.
//
// The state is not rewritten with each proposal: it grows with every
// cached proposal (an Update is a whole leaf node), so rewriting it made
// the n-th proposal of an epoch write all n, quadratic in the epoch's
// proposals. Storing each proposal once makes what a proposal writes
// independent of how many are pending; the service also caps them per
// epoch. Processing a stored proposal again at the time it was accepted
// gives the result it gave then (its checks depend only on the epoch's
// state and the clock); one that the rules refuse now, say after a
// configuration change, is left out, so a commit that references it is
// refused rather than the conversation wedged.
//
// # The cache
//
// An in-memory cache keeps the PublicGroups of recently used
// conversations, with their pending proposals, keyed by the SHA-256 of
// the stored state and the digest of the pending proposals: a hash chain
// over the SHA-256 of each proposal message, in order, that the service
// stores with each proposal (delivery.Change.ProposalsDigest). The caller
// always passes the stored state and digest, and a cached group is used
// only when it was built from exactly those bytes and proposals; a group
// rebuilt from the store is checked against the digest. The cache saves
// decoding and processing; it never decides what the state is. In the
// common case (one node, no restart) accepting a proposal decodes
// nothing but the new message.
//
// On a cluster, the commits of a conversation are accepted by whichever
// node its committers reach, and a node's cached group falls behind the
// store. When the stored state is not in the cache but the group of an
// earlier epoch is, the follower loads the tree nodes changed since
// (delivery.FollowedGroup.LoadTreeChanges) and builds the stored epoch
// from the cached tree (mls.LoadPublicGroupChanges, which checks the
// result's tree hash against the stored state's): work that grows with
// the nodes the commits changed, not with the group. Anything that does
// not fit is told to FollowedGroup.CatchUpFailed and falls back to
// loading the whole tree.
package follower

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/store"
)

// DefaultCacheSize is the number of PublicGroups kept in memory, and
// DefaultCacheBytes the size of their encoded states and trees: a group
// of 10,000 members on X-Wing is about 26 MB, so the cache holds several
// large groups or hundreds of small ones, and evicts the least recently
// used beyond either bound.
const (
	DefaultCacheSize  = 256
	DefaultCacheBytes = 256 << 20
)

// Follower implements delivery.Follower on mls.PublicGroup. It is safe for
// concurrent use.
type Follower struct {
	cfg      mls.Config
	size     int
	maxBytes int

	mu    sync.Mutex
	lru   *list.List // of *cached, most recent first
	index map[stateHash]*list.Element
	bytes int // the cached groups' sizes
}

type cached struct {
	key stateHash
	grp *group
}

// group is a PublicGroup with the clock it validates with and the pending
// proposals it holds: the first n of its epoch, of the digest.
type group struct {
	pg     *mls.PublicGroup
	clk    *clock
	n      uint64
	digest []byte
	// nodes are the encoded sizes of the tree's nodes, by index, and
	// size their sum with the state's: what the group counts against
	// the cache's bytes.
	nodes []int32
	size  int
	// users are the users of the leaves, once a handshake in a group
	// with a policy needed them (nil until then).
	users leafUserIndex
}

// leafUsers returns the users of the group's leaves.
func (g *group) leafUsers() leafUserIndex {
	if g.users == nil {
		g.users = newLeafUsers(g.pg)
	}
	return g.users
}

// setTree records the sizes of a whole tree's nodes.
func (g *group) setTree(state []byte, nodes []mls.TreeNode) {
	g.nodes, g.size = nil, len(state)
	g.applyTree(nodes)
}

// applyTree records the sizes of changed nodes (nil Data: blank).
func (g *group) applyTree(nodes []mls.TreeNode) {
	for _, n := range nodes {
		if int(n.Index) >= len(g.nodes) {
			if n.Data == nil {
				continue
			}
			g.nodes = append(g.nodes, make([]int32, int(n.Index)+1-len(g.nodes))...)
		}
		g.size += len(n.Data) - int(g.nodes[n.Index])
		g.nodes[n.Index] = int32(len(n.Data))
	}
}

// clock is a PublicGroup's mls.Config.Now: the time of the message being
// validated, or the follower's clock when it is zero. It is set only by
// the goroutine that holds the group.
type clock struct {
	base func() time.Time
	at   time.Time
}

func (c *clock) now() time.Time {
	if c.at.IsZero() {
		return c.base()
	}
	return c.at
}

// proposalsDigest chains the digest of the pending proposals with the next
// proposal message: SHA-256(digest || SHA-256(msg)), from a nil digest.
func proposalsDigest(digest, msg []byte) []byte {
	m := sha256.Sum256(msg)
	h := sha256.New()
	h.Write(digest)
	h.Write(m[:])
	return h.Sum(nil)
}

var _ delivery.Follower = (*Follower)(nil)

// New returns a Follower using cfg for MLS validation (nil: the defaults,
// among them mls.DefaultMaxLeafLifetime, the bound on leaf lifetimes that
// Parley's clients use too; cfg.Now is replaced per call for KeyPackage
// lifetimes).
func New(cfg *mls.Config) delivery.Follower {
	f := &Follower{size: DefaultCacheSize, maxBytes: DefaultCacheBytes, lru: list.New(), index: map[stateHash]*list.Element{}}
	if cfg != nil {
		f.cfg = *cfg
	}
	return f
}

// stateHash is the SHA-256 of a stored state.
type stateHash [sha256.Size]byte

// take removes and returns the cached group of a stored state.
func (f *Follower) take(k stateHash) *group {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.index[k]
	if e == nil {
		return nil
	}
	f.lru.Remove(e)
	delete(f.index, k)
	grp := e.Value.(*cached).grp
	f.bytes -= grp.size
	return grp
}

// Forget implements delivery.Follower: it drops the cached group of a
// Change that was not stored.
func (f *Follower) Forget(g delivery.FollowedGroup, ch *delivery.Change) {
	switch {
	case ch == nil:
	case ch.Commit:
		f.take(sha256.Sum256(ch.State))
	default:
		// The cached group holds the proposal that was not stored.
		f.take(sha256.Sum256(g.State))
	}
}

// put caches a group under its stored state.
func (f *Follower) put(k stateHash, grp *group) {
	grp.clk.at = time.Time{}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.index[k]; e != nil {
		f.lru.Remove(e)
		f.bytes -= e.Value.(*cached).grp.size
	}
	f.index[k] = f.lru.PushFront(&cached{key: k, grp: grp})
	f.bytes += grp.size
	for f.lru.Len() > f.size || (f.bytes > f.maxBytes && f.lru.Len() > 1) {
		e := f.lru.Back()
		f.lru.Remove(e)
		c := e.Value.(*cached)
		delete(f.index, c.key)
		f.bytes -= c.grp.size
	}
}

func leaves(ms []mls.Member) []delivery.Leaf {
	out := make([]delivery.Leaf, 0, len(ms))
	for _, m := range ms {
		out = append(out, delivery.Leaf{Index: uint32(m.Leaf), SignatureKey: bytes.Clone(m.SignatureKey), Identity: identity(m.Credential)})
	}
	return out
}

// identity returns the identity of a basic credential (never nil), or nil
// for other credential types.
func identity(c mls.Credential) []byte {
	if c.Type != mls.CredentialBasic {
		return nil
	}
	if c.Identity == nil {
		return []byte{}
	}
	return bytes.Clone(c.Identity)
}

// Start implements delivery.Follower.
func (f *Follower) Start(groupInfo, tree []byte) (*delivery.GroupState, error) {
	if wf, err := mls.PeekWireFormat(groupInfo); err != nil {
		return nil, err
	} else if wf != mls.WireFormatGroupInfo {
		return nil, fmt.Errorf("follower: wire format %d, want a GroupInfo", wf)
	}
	clk, cfg := f.clock()
	pg, err := mls.NewPublicGroup(cfg, groupInfo, tree)
	if err != nil {
		return nil, err
	}
	p, err := policyOf(pg.Extensions())
	if err != nil {
		return nil, fmt.Errorf("follower: the group's policy extension: %v", err)
	}
	st, err := pg.MarshalState()
	if err != nil {
		return nil, fmt.Errorf("follower: %v", err)
	}
	nodes, err := pg.TreeNodes()
	if err != nil {
		return nil, fmt.Errorf("follower: %v", err)
	}
	gs := &delivery.GroupState{GroupID: bytes.Clone(pg.GroupID()), Suite: uint16(pg.CipherSuite()), Epoch: pg.Epoch(), Members: leaves(pg.Members()),
		State: st, Tree: storeNodes(nodes)}
	if p != nil {
		gs.Timer = p.Timer
	}
	grp := &group{pg: pg, clk: clk}
	grp.setTree(st, nodes)
	f.put(sha256.Sum256(st), grp)
	return gs, nil
}

// clock returns a new group clock and the configuration that uses it.
func (f *Follower) clock() (*clock, *mls.Config) {
	base := f.cfg.Now
	if base == nil {
		base = time.Now
	}
	clk := &clock{base: base}
	cfg := f.cfg
	cfg.Now = clk.now
	return clk, &cfg
}

// open returns the group of a stored epoch with its pending proposals,
// and the hash of the stored state; the caller owns the group until it
// puts it back. A cached group is used as it is when it holds exactly the
// pending proposals, and caught up when it holds fewer (another node
// accepted the others); otherwise the group is rebuilt from the store.
func (f *Follower) open(g delivery.FollowedGroup) (*group, stateHash, error) {
	h := stateHash(sha256.Sum256(g.State))
	if grp := f.take(h); grp != nil && grp.n <= g.Proposals {
		err := catchUp(grp, g)
		if err == nil {
			return grp, h, nil
		} else if !errors.Is(err, errDigest) {
			return nil, h, err
		}
		// The cached proposals are not the stored ones: rebuild.
	}
	if grp := f.advance(g); grp != nil {
		if err := catchUp(grp, g); err != nil {
			return nil, h, err
		}
		return grp, h, nil
	}
	if g.LoadTree == nil {
		return nil, h, fmt.Errorf("follower: the group of epoch %d is not in memory and there is no way to load its stored tree", g.Epoch)
	}
	stored, err := g.LoadTree()
	if err != nil {
		return nil, h, fmt.Errorf("follower: load the stored tree of epoch %d: %w", g.Epoch, err)
	}
	nodes := mlsNodes(stored)
	clk, cfg := f.clock()
	pg, err := mls.LoadPublicGroupTree(cfg, g.State, nodes)
	if err != nil {
		return nil, h, fmt.Errorf("follower: stored group state: %v", err)
	}
	if pg.Epoch() != g.Epoch || !bytes.Equal(pg.GroupID(), g.GroupID) {
		return nil, h, fmt.Errorf("follower: stored state is for epoch %d, conversation at %d", pg.Epoch(), g.Epoch)
	}
	grp := &group{pg: pg, clk: clk}
	grp.setTree(g.State, nodes)
	if err := catchUp(grp, g); err != nil {
		return nil, h, err
	}
	return grp, h, nil
}

// advance returns the group of g's epoch built from the cached group of
// an earlier epoch and the tree nodes changed since (another node
// accepted the commits between), or nil when there is none or it does
// not give g's stored state (told to g.CatchUpFailed), which is then
// loaded whole. The earlier group leaves the cache either way: its epoch
// is over.
func (f *Follower) advance(g delivery.FollowedGroup) *group {
	if g.LoadTreeChanges == nil {
		return nil
	}
	old := f.takeEarlier(g.GroupID, g.Epoch)
	if old == nil {
		return nil
	}
	failed := func(err error) *group {
		if g.CatchUpFailed != nil {
			g.CatchUpFailed(err)
		}
		return nil
	}
	stored, err := g.LoadTreeChanges(old.pg.Epoch())
	if err != nil {
		return failed(fmt.Errorf("follower: load the tree changes from epoch %d to %d: %w", old.pg.Epoch(), g.Epoch, err))
	}
	changes := mlsNodes(stored)
	clk, cfg := f.clock()
	pg, err := mls.LoadPublicGroupChanges(cfg, old.pg, g.State, changes)
	if err != nil {
		return failed(fmt.Errorf("follower: epoch %d from epoch %d and %d changed nodes: %w", g.Epoch, old.pg.Epoch(), len(changes), err))
	}
	if pg.Epoch() != g.Epoch {
		return failed(fmt.Errorf("follower: the stored state is of epoch %d, the conversation at %d", pg.Epoch(), g.Epoch))
	}
	grp := &group{pg: pg, clk: clk, nodes: old.nodes}
	grp.applyTree(changes)
	grp.size = len(g.State)
	for _, n := range grp.nodes {
		grp.size += int(n)
	}
	if old.users != nil {
		grp.users = old.users.applyLeaves(pg, changes)
	}
	return grp
}

// takeEarlier removes and returns the cached group of groupID at the
// latest epoch before epoch, if any.
func (f *Follower) takeEarlier(groupID []byte, epoch uint64) *group {
	f.mu.Lock()
	defer f.mu.Unlock()
	var found *list.Element
	for e := f.lru.Front(); e != nil; e = e.Next() {
		pg := e.Value.(*cached).grp.pg
		if pg.Epoch() < epoch && bytes.Equal(pg.GroupID(), groupID) &&
			(found == nil || pg.Epoch() > found.Value.(*cached).grp.pg.Epoch()) {
			found = e
		}
	}
	if found == nil {
		return nil
	}
	c := found.Value.(*cached)
	f.lru.Remove(found)
	delete(f.index, c.key)
	f.bytes -= c.grp.size
	return c.grp
}

// errDigest: stored proposals do not match the digest they are stored with.
var errDigest = errors.New("follower: the pending proposals do not match their digest")

// catchUp processes the stored pending proposals of g that grp does not
// hold yet, each at the time it was accepted, after checking that grp's
// and the loaded ones chain to g.ProposalsDigest. A proposal the rules
// refuse now is left out (see the package doc).
func catchUp(grp *group, g delivery.FollowedGroup) error {
	if grp.n == g.Proposals {
		if !bytes.Equal(grp.digest, g.ProposalsDigest) {
			return fmt.Errorf("%w (%d of epoch %d)", errDigest, g.Proposals, g.Epoch)
		}
		return nil
	}
	if g.LoadProposals == nil {
		return fmt.Errorf("follower: %d pending proposals of epoch %d, but no way to load them", g.Proposals, g.Epoch)
	}
	ps, err := g.LoadProposals(grp.n)
	if err != nil {
		return fmt.Errorf("follower: load the pending proposals %d to %d of epoch %d: %w", grp.n, g.Proposals, g.Epoch, err)
	}
	if uint64(len(ps)) != g.Proposals-grp.n {
		return fmt.Errorf("follower: %d pending proposals of epoch %d loaded from %d, want %d", len(ps), g.Epoch, grp.n, g.Proposals-grp.n)
	}
	digest := grp.digest
	for _, p := range ps {
		digest = proposalsDigest(digest, p.Message)
	}
	if !bytes.Equal(digest, g.ProposalsDigest) {
		return fmt.Errorf("%w (%d of epoch %d)", errDigest, g.Proposals, g.Epoch)
	}
	for _, p := range ps {
		grp.clk.at = p.Accepted
		grp.pg.Process(p.Message) // a commit is not merged; a refused proposal is left out
	}
	grp.clk.at = time.Time{}
	grp.n, grp.digest = g.Proposals, digest
	return nil
}

// Process implements delivery.Follower. A commit is accepted only with a
// GroupInfo of the epoch it starts that VerifyGroupInfo accepts (signed by
// the committer, its GroupContext the one the commit produces, any
// external_pub well-formed, any inline tree the commit's tree), and an
// out-of-band tree, if given, equal to the commit's tree.
func (f *Follower) Process(g delivery.FollowedGroup, msg []byte, next delivery.NextState) (*delivery.Change, error) {
	grp, h, err := f.open(g)
	if err != nil {
		return nil, err
	}
	pg := grp.pg
	grp.clk.at = g.Now
	// The keys of the leaves a message concerns, before it: the sender's
	// and those of updated leaves (looked up per leaf, not per member).
	oldKey := func(l mls.LeafIndex) ([]byte, bool) {
		m, ok := pg.Member(l)
		return m.SignatureKey, ok
	}
	var senderKey []byte
	ch, err := pg.Process(msg)
	if err != nil {
		f.put(h, grp)
		return nil, err
	}
	out := &delivery.Change{Policy: policyHandshake(pg, ch, grp.leafUsers)}
	switch ch.Sender.Type {
	case mls.SenderMember:
		out.Sender = delivery.SenderMember
		senderKey, _ = oldKey(ch.Sender.Leaf)
		out.SenderKey = bytes.Clone(senderKey)
	case mls.SenderNewMemberCommit, mls.SenderNewMemberProposal:
		out.Sender = delivery.SenderNewMember
	default:
		out.Sender = delivery.SenderExternal
	}
	if ch.Kind != mls.KindCommit {
		// pg now caches the proposal: it is the group with the proposals
		// up to and including this one.
		out.ProposalsDigest = proposalsDigest(g.ProposalsDigest, msg)
		grp.n, grp.digest = g.Proposals+1, out.ProposalsDigest
		f.put(h, grp)
		return out, nil
	}
	out.Commit, out.Epoch, out.ReInit = true, ch.Epoch, ch.ReInit
	if len(next.GroupInfo) == 0 {
		f.put(h, grp)
		return nil, errors.New("follower: a commit needs the GroupInfo of the new epoch")
	}
	if err := ch.VerifyGroupInfo(next.GroupInfo); err != nil {
		f.put(h, grp)
		return nil, fmt.Errorf("follower: GroupInfo of the new epoch: %v", err)
	}
	out.Added, out.Removed, out.Updated = leaves(ch.Added), leaves(ch.Removed), leaves(ch.Updated)
	if out.Sender == delivery.SenderNewMember {
		// The external joiner is reported in Added at its leaf.
		for _, m := range ch.Added {
			if m.Leaf == ch.Sender.Leaf {
				out.SenderKey = bytes.Clone(m.SignatureKey)
			}
		}
	}
	for _, u := range ch.Updated {
		if k, ok := oldKey(u.Leaf); ok && !bytes.Equal(k, u.SignatureKey) {
			out.KeyChanged = true
		}
	}
	changes, err := ch.TreeChanges()
	if err != nil {
		f.put(h, grp)
		return nil, fmt.Errorf("follower: the commit's tree changes: %v", err)
	}
	if err := pg.Merge(ch); err != nil {
		return nil, fmt.Errorf("follower: merge: %v", err)
	}
	// From here on pg is the new epoch's: on an error it is dropped, not
	// cached, and the stored state is rebuilt next time.
	if len(next.Tree) > 0 {
		// A committer that sends the whole tree costs its encoding.
		tree, err := pg.RatchetTree()
		if err != nil {
			return nil, fmt.Errorf("follower: encode tree: %v", err)
		}
		if !bytes.Equal(next.Tree, tree) {
			return nil, errors.New("follower: the ratchet tree does not match the tree the commit produces")
		}
	}
	out.TreeChanges = storeNodes(changes)
	if p, err := policyOf(pg.Extensions()); err == nil && p != nil {
		out.Timer = p.Timer
	}
	if out.State, err = pg.MarshalState(); err != nil {
		return nil, fmt.Errorf("follower: %v", err)
	}
	grp.n, grp.digest = 0, nil
	if grp.users != nil {
		grp.users = grp.users.apply(ch)
	}
	grp.size += len(out.State) - len(g.State)
	grp.applyTree(changes)
	f.put(sha256.Sum256(out.State), grp)
	return out, nil
}

// EncodeTree implements delivery.Follower with mls.EncodeRatchetTree.
func (f *Follower) EncodeTree(nodes []store.TreeNode) ([]byte, error) {
	return mls.EncodeRatchetTree(mlsNodes(nodes))
}

// SplitLegacyState implements delivery.Follower: state is
// mls.PublicGroup.MarshalBinary's, as stored before trees were stored
// node by node.
func (f *Follower) SplitLegacyState(state []byte) ([]byte, []store.TreeNode, error) {
	_, cfg := f.clock()
	pg, err := mls.LoadPublicGroup(cfg, state)
	if err != nil {
		return nil, nil, fmt.Errorf("follower: stored group state: %v", err)
	}
	st, err := pg.MarshalState()
	if err != nil {
		return nil, nil, fmt.Errorf("follower: %v", err)
	}
	nodes, err := pg.TreeNodes()
	if err != nil {
		return nil, nil, fmt.Errorf("follower: %v", err)
	}
	return st, storeNodes(nodes), nil
}

// storeNodes and mlsNodes convert tree nodes between the mls package's
// type and the store's; the data is shared, not copied.
func storeNodes(ns []mls.TreeNode) []store.TreeNode {
	out := make([]store.TreeNode, len(ns))
	for i, n := range ns {
		out[i] = store.TreeNode{Index: n.Index, Data: n.Data}
	}
	return out
}

func mlsNodes(ns []store.TreeNode) []mls.TreeNode {
	out := make([]mls.TreeNode, len(ns))
	for i, n := range ns {
		out[i] = mls.TreeNode{Index: n.Index, Data: n.Data}
	}
	return out
}

// ValidateKeyPackage implements delivery.Follower.
func (f *Follower) ValidateKeyPackage(data []byte, now time.Time) (*delivery.KeyPackageInfo, error) {
	if wf, err := mls.PeekWireFormat(data); err != nil {
		return nil, err
	} else if wf != mls.WireFormatKeyPackage {
		return nil, fmt.Errorf("follower: wire format %d, want a KeyPackage", wf)
	}
	cfg := f.cfg
	cfg.Now = func() time.Time { return now }
	info, err := mls.ValidateKeyPackage(&cfg, 0, data)
	if err != nil {
		return nil, err
	}
	out := &delivery.KeyPackageInfo{Suite: uint16(info.CipherSuite), Ref: info.Ref, SignatureKey: info.SignatureKey, NotAfter: info.NotAfter, LastResort: info.LastResort}
	out.Identity = identity(info.Credential)
	return out, nil
}

// PeekPrivate implements delivery.Follower with mls.PeekPrivateMessage.
func (f *Follower) PeekPrivate(msg []byte) (delivery.PrivateHeader, error) {
	return peekPrivate(msg)
}

func peekPrivate(msg []byte) (delivery.PrivateHeader, error) {
	groupID, epoch, ct, err := mls.PeekPrivateMessage(msg)
	if err != nil {
		return delivery.PrivateHeader{}, err
	}
	return delivery.PrivateHeader{GroupID: groupID, Epoch: epoch, ContentType: uint8(ct)}, nil
}

// CheckWelcome implements delivery.Follower with mls.PeekWelcome: data must
// be an MLSMessage carrying a Welcome (RFC 9420 §12.4.3.1) of the suite,
// with secrets for at least one new member.
func (f *Follower) CheckWelcome(data []byte, suite uint16) error {
	cs, refs, err := mls.PeekWelcome(data)
	if err != nil {
		return err
	}
	if uint16(cs) != suite {
		return fmt.Errorf("follower: Welcome of cipher suite %#04x, the group's is %#04x", uint16(cs), suite)
	}
	if len(refs) == 0 {
		return errors.New("follower: Welcome without secrets")
	}
	return nil
}
