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
// group beyond encoding the new tree for storage.
//
// The follower state stored with a conversation is
// mls.PublicGroup.MarshalBinary of the current epoch with the proposals
// cached in it, written by each accepted commit and each accepted
// proposal. A commit may therefore include by reference any proposal of
// its epoch accepted before, on this node or another, before or after a
// restart.
//
// An in-memory cache keeps the PublicGroups of recently used
// conversations, keyed by the SHA-256 of the state they are equal to: the
// caller always passes the stored state, and a cached group is used only
// when it was built from, or marshals to, exactly those bytes. The cache
// saves decoding; it never decides what the state is.
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
)

// DefaultCacheSize is the number of PublicGroups kept in memory.
const DefaultCacheSize = 256

// Follower implements delivery.Follower on mls.PublicGroup. It is safe for
// concurrent use.
type Follower struct {
	cfg  mls.Config
	size int

	mu    sync.Mutex
	lru   *list.List // of *cached, most recent first
	index map[string]*list.Element
}

type cached struct {
	key string
	pg  *mls.PublicGroup
}

var _ delivery.Follower = (*Follower)(nil)

// New returns a Follower using cfg for MLS validation (nil: the defaults;
// cfg.Now is replaced per call for KeyPackage lifetimes).
func New(cfg *mls.Config) delivery.Follower {
	f := &Follower{size: DefaultCacheSize, lru: list.New(), index: map[string]*list.Element{}}
	if cfg != nil {
		f.cfg = *cfg
	}
	return f
}

// keyOf returns the cache key of a stored state.
func keyOf(state []byte) string {
	h := sha256.Sum256(state)
	return string(h[:])
}

// take removes and returns the cached group of a state.
func (f *Follower) take(state []byte) *mls.PublicGroup {
	k := keyOf(state)
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.index[k]
	if e == nil {
		return nil
	}
	f.lru.Remove(e)
	delete(f.index, k)
	return e.Value.(*cached).pg
}

// Forget implements delivery.Follower: it drops the cached group of a
// state that was not stored.
func (f *Follower) Forget(state []byte) { f.take(state) }

// put caches a group under a state.
func (f *Follower) put(state []byte, pg *mls.PublicGroup) {
	k := keyOf(state)
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.index[k]; e != nil {
		f.lru.Remove(e)
	}
	f.index[k] = f.lru.PushFront(&cached{key: k, pg: pg})
	for f.lru.Len() > f.size {
		e := f.lru.Back()
		f.lru.Remove(e)
		delete(f.index, e.Value.(*cached).key)
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
	pg, err := mls.NewPublicGroup(&f.cfg, groupInfo, tree)
	if err != nil {
		return nil, err
	}
	st, err := pg.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("follower: %v", err)
	}
	gs := &delivery.GroupState{GroupID: bytes.Clone(pg.GroupID()), Suite: uint16(pg.CipherSuite()), Epoch: pg.Epoch(), Members: leaves(pg.Members()), State: st}
	f.put(st, pg)
	return gs, nil
}

// open returns the PublicGroup of a stored epoch, from the cache or
// rebuilt; the caller owns it until it puts it back.
func (f *Follower) open(g delivery.FollowedGroup) (*mls.PublicGroup, error) {
	if pg := f.take(g.State); pg != nil {
		return pg, nil
	}
	pg, err := mls.LoadPublicGroup(&f.cfg, g.State)
	if err != nil {
		return nil, fmt.Errorf("follower: stored group state: %v", err)
	}
	if pg.Epoch() != g.Epoch || !bytes.Equal(pg.GroupID(), g.GroupID) {
		return nil, fmt.Errorf("follower: stored state is for epoch %d, conversation at %d", pg.Epoch(), g.Epoch)
	}
	return pg, nil
}

// Process implements delivery.Follower. A commit is accepted only with a
// GroupInfo of the epoch it starts that VerifyGroupInfo accepts (signed by
// the committer, its GroupContext the one the commit produces, any
// external_pub well-formed, any inline tree the commit's tree), and an
// out-of-band tree, if given, equal to the commit's tree.
func (f *Follower) Process(g delivery.FollowedGroup, msg []byte, next delivery.NextState) (*delivery.Change, error) {
	pg, err := f.open(g)
	if err != nil {
		return nil, err
	}
	// The keys of the leaves a message concerns, before it: the sender's
	// and those of updated leaves (looked up per leaf, not per member).
	oldKey := func(l mls.LeafIndex) ([]byte, bool) {
		m, ok := pg.Member(l)
		return m.SignatureKey, ok
	}
	var senderKey []byte
	ch, err := pg.Process(msg)
	if err != nil {
		f.put(g.State, pg)
		return nil, err
	}
	out := &delivery.Change{}
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
		// pg now caches the proposal: its state is the one to store with
		// the proposal.
		if out.State, err = pg.MarshalBinary(); err != nil {
			return nil, fmt.Errorf("follower: %v", err)
		}
		f.put(out.State, pg)
		return out, nil
	}
	out.Commit, out.Epoch, out.ReInit = true, ch.Epoch, ch.ReInit
	if len(next.GroupInfo) == 0 {
		f.put(g.State, pg)
		return nil, errors.New("follower: a commit needs the GroupInfo of the new epoch")
	}
	if err := ch.VerifyGroupInfo(next.GroupInfo); err != nil {
		f.put(g.State, pg)
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
	if err := pg.Merge(ch); err != nil {
		return nil, fmt.Errorf("follower: merge: %v", err)
	}
	tree, err := pg.RatchetTree()
	if err != nil {
		return nil, fmt.Errorf("follower: encode tree: %v", err)
	}
	if len(next.Tree) > 0 && !bytes.Equal(next.Tree, tree) {
		// pg is dropped, not cached: the stored state is rebuilt next time.
		return nil, errors.New("follower: the ratchet tree does not match the tree the commit produces")
	}
	out.Tree = tree
	if out.State, err = pg.MarshalBinary(); err != nil {
		return nil, fmt.Errorf("follower: %v", err)
	}
	f.put(out.State, pg)
	return out, nil
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
