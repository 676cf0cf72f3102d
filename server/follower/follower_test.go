package follower

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/store"
)

const cs = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

func newGroup(t testing.TB) (*mls.Group, *mls.Signer) {
	s, err := mls.GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	g, err := mls.CreateGroup(nil, cs, []byte("group"), s, mls.BasicCredential([]byte("a")), mls.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return g, s
}

// loadTree returns a FollowedGroup.LoadTree of stored nodes.
func loadTree(nodes []store.TreeNode) func() ([]store.TreeNode, error) {
	return func() ([]store.TreeNode, error) { return nodes, nil }
}

// nodeStore is a conversation's tree as the store keeps it: the nodes by
// index, changed by each commit's TreeChanges.
type nodeStore map[uint32][]byte

func (ns nodeStore) apply(changes []store.TreeNode) {
	for _, c := range changes {
		if c.Data == nil {
			delete(ns, c.Index)
		} else {
			ns[c.Index] = c.Data
		}
	}
}

func (ns nodeStore) nodes() []store.TreeNode {
	out := make([]store.TreeNode, 0, len(ns))
	for i, d := range ns {
		out = append(out, store.TreeNode{Index: i, Data: d})
	}
	slices.SortFunc(out, func(a, b store.TreeNode) int { return cmp.Compare(a.Index, b.Index) })
	return out
}

// TestNodeStorage: a conversation lives through commits that add, update
// and remove members, each validated by a follower that holds nothing in
// memory, from the stored state and the tree nodes each earlier commit's
// TreeChanges left; what a commit stores is a few nodes, not the tree,
// and the stored nodes encode to the members' tree. A node changed behind
// the follower's back is refused.
func TestNodeStorage(t *testing.T) {
	g, _ := newGroup(t)
	gi, _ := g.GroupInfo(mls.GroupInfoOptions{})
	tree, _ := g.RatchetTree()
	gs, err := New(nil).Start(gi, tree)
	if err != nil {
		t.Fatal(err)
	}
	stored := nodeStore{}
	stored.apply(gs.Tree)
	state := gs.State
	var added []mls.LeafIndex
	commit := func(opts mls.CommitOptions) *delivery.Change {
		t.Helper()
		pc, err := g.Commit(opts)
		if err != nil {
			t.Fatal(err)
		}
		fg := delivery.FollowedGroup{GroupID: []byte("group"), Suite: uint16(cs), Epoch: g.Epoch(), GroupInfo: gi, State: state, LoadTree: loadTree(stored.nodes())}
		ch, err := New(nil).Process(fg, pc.Message, delivery.NextState{GroupInfo: pc.GroupInfo})
		if err != nil {
			t.Fatalf("commit at epoch %d from stored nodes: %v", g.Epoch(), err)
		}
		if err := g.MergePendingCommit(pc); err != nil {
			t.Fatal(err)
		}
		stored.apply(ch.TreeChanges)
		state, gi = ch.State, pc.GroupInfo
		want, _ := g.RatchetTree()
		got, err := New(nil).EncodeTree(stored.nodes())
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("stored nodes after epoch %d encode to another tree (%v)", g.Epoch(), err)
		}
		return ch
	}
	for i := range 12 {
		s, _ := mls.GenerateSigner(cs)
		kp, _ := mls.NewKeyPackage(nil, cs, s, mls.BasicCredential(fmt.Appendf(nil, "m%d", i)), mls.KeyPackageOptions{})
		ch := commit(mls.CommitOptions{Add: [][]byte{kp.KeyPackage}})
		added = append(added, mls.LeafIndex(ch.Added[0].Index))
	}
	ch := commit(mls.CommitOptions{ForcePath: true})
	if len(ch.TreeChanges) == 0 || len(ch.TreeChanges) > 6 {
		t.Errorf("an update of a 13-member tree changed %d nodes", len(ch.TreeChanges))
	}
	commit(mls.CommitOptions{Remove: added[len(added)-3:]}) // the tree shrinks
	commit(mls.CommitOptions{Remove: added[2:4]})

	// A node changed in the store is refused.
	pc, _ := g.Commit(mls.CommitOptions{ForcePath: true})
	bad := stored.nodes()
	bad[0].Data = bad[len(bad)-1].Data
	fg := delivery.FollowedGroup{GroupID: []byte("group"), Suite: uint16(cs), Epoch: g.Epoch(), GroupInfo: gi, State: state, LoadTree: loadTree(bad)}
	if _, err := New(nil).Process(fg, pc.Message, delivery.NextState{GroupInfo: pc.GroupInfo}); err == nil {
		t.Fatal("a commit validated against a damaged stored tree")
	}
}

// twoFollowers returns a new group, its GroupInfo, two followers (two
// nodes) and the state the first started the conversation with.
func twoFollowers(t *testing.T) (*mls.Group, []byte, []*Follower, *delivery.GroupState) {
	t.Helper()
	g, _ := newGroup(t)
	gi, _ := g.GroupInfo(mls.GroupInfoOptions{})
	tree, _ := g.RatchetTree()
	nodes := []*Follower{New(nil).(*Follower), New(nil).(*Follower)}
	gs, err := nodes[0].Start(gi, tree)
	if err != nil {
		t.Fatal(err)
	}
	return g, gi, nodes, gs
}

// TestCatchUpCommits: two followers (two nodes of a cluster) take turns
// accepting commits, each holding in memory the group of the last epoch
// it saw: a follower behind by one or more commits (adds that grow the
// tree, removals that shrink it, updates) catches up from the tree nodes
// those commits changed and never loads the whole tree again. Changes
// that do not give the stored state (a node left out) make it load the
// whole tree instead, and still accept the commit.
func TestCatchUpCommits(t *testing.T) {
	g, gi, nodes, gs := twoFollowers(t)
	stored := nodeStore{}
	stored.apply(gs.Tree)
	state := gs.State
	// changed[e] are the nodes the commit that started epoch e changed.
	changed := map[uint64][]store.TreeNode{}
	var whole, partial int // calls of LoadTree and LoadTreeChanges
	var failures []error   // what CatchUpFailed was told
	drop := false          // LoadTreeChanges leaves a changed node out
	var members []mls.LeafIndex
	commit := func(on int, opts mls.CommitOptions) *delivery.Change {
		t.Helper()
		pc, err := g.Commit(opts)
		if err != nil {
			t.Fatal(err)
		}
		epoch := g.Epoch()
		fg := delivery.FollowedGroup{GroupID: []byte("group"), Suite: uint16(cs), Epoch: epoch, GroupInfo: gi, State: state,
			LoadTree: func() ([]store.TreeNode, error) { whole++; return stored.nodes(), nil }}
		fg.LoadTreeChanges = func(since uint64) ([]store.TreeNode, error) {
			partial++
			merged := nodeStore{}
			for e := since + 1; e <= epoch; e++ {
				for _, n := range changed[e] {
					merged[n.Index] = n.Data
				}
			}
			out := merged.nodes()
			if drop {
				for i, n := range out {
					if n.Data != nil {
						return slices.Delete(out, i, i+1), nil
					}
				}
			}
			return out, nil
		}
		fg.CatchUpFailed = func(err error) { failures = append(failures, err) }
		ch, err := nodes[on].Process(fg, pc.Message, delivery.NextState{GroupInfo: pc.GroupInfo})
		if err != nil {
			t.Fatalf("commit at epoch %d on node %d: %v", epoch, on, err)
		}
		if err := g.MergePendingCommit(pc); err != nil {
			t.Fatal(err)
		}
		stored.apply(ch.TreeChanges)
		changed[g.Epoch()] = ch.TreeChanges
		state, gi = ch.State, pc.GroupInfo
		return ch
	}
	add := func(on, n int) {
		t.Helper()
		var kps [][]byte
		for i := range n {
			s, _ := mls.GenerateSigner(cs)
			kp, _ := mls.NewKeyPackage(nil, cs, s, mls.BasicCredential(fmt.Appendf(nil, "m%d-%d", g.Epoch(), i)), mls.KeyPackageOptions{})
			kps = append(kps, kp.KeyPackage)
		}
		for _, a := range commit(on, mls.CommitOptions{Add: kps}).Added {
			members = append(members, mls.LeafIndex(a.Index))
		}
	}
	add(0, 6)                                     // epoch 1, node 0 (from Start)
	add(1, 2)                                     // epoch 2, node 1: nothing in memory, loads the tree
	commit(0, mls.CommitOptions{ForcePath: true}) // epoch 3, node 0: one commit behind
	if whole != 1 || partial != 1 {
		t.Fatalf("after a commit on each node: %d whole trees and %d changes loaded, want 1 and 1", whole, partial)
	}
	add(0, 9)                                                                        // epoch 4: the tree grows to 32 leaves
	commit(0, mls.CommitOptions{Remove: members[len(members)-10:], ForcePath: true}) // epoch 5: shrinks back
	commit(1, mls.CommitOptions{ForcePath: true})                                    // epoch 6, node 1: three commits behind
	add(0, 1)                                                                        // epoch 7, node 0: one behind
	if whole != 1 || partial != 3 {
		t.Fatalf("after catching up on three commits: %d whole trees and %d changes loaded, want 1 and 3", whole, partial)
	}
	// Changes that do not give the stored state: the whole tree.
	drop = true
	commit(1, mls.CommitOptions{ForcePath: true}) // epoch 8, node 1: one behind
	if whole != 2 || partial != 4 {
		t.Fatalf("with a changed node left out: %d whole trees and %d changes loaded, want 2 and 4", whole, partial)
	}
	if len(failures) != 1 || !strings.Contains(failures[0].Error(), "tree hash") || !strings.Contains(failures[0].Error(), "epoch 7 from epoch 6") {
		t.Fatalf("catch-up failures reported: %v; want the one of epoch 7 from epoch 6, naming the tree hash", failures)
	}
	drop = false
	commit(0, mls.CommitOptions{ForcePath: true}) // epoch 9, node 0: one behind
	if whole != 2 || partial != 5 {
		t.Fatalf("at the end: %d whole trees and %d changes loaded, want 2 and 5", whole, partial)
	}
}

// TestSplitLegacyState: a state stored whole, tree included, splits into
// the state and nodes a follower rebuilds the group from.
func TestSplitLegacyState(t *testing.T) {
	g, _ := newGroup(t)
	s, _ := mls.GenerateSigner(cs)
	kp, _ := mls.NewKeyPackage(nil, cs, s, mls.BasicCredential([]byte("b")), mls.KeyPackageOptions{})
	pc, _ := g.Commit(mls.CommitOptions{Add: [][]byte{kp.KeyPackage}})
	g.MergePendingCommit(pc)
	gi, _ := g.GroupInfo(mls.GroupInfoOptions{})
	tree, _ := g.RatchetTree()
	pg, err := mls.NewPublicGroup(nil, gi, tree)
	if err != nil {
		t.Fatal(err)
	}
	legacy, _ := pg.MarshalBinary()
	f := New(nil)
	state, nodes, err := f.SplitLegacyState(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if enc, err := f.EncodeTree(nodes); err != nil || !bytes.Equal(enc, tree) {
		t.Fatalf("split nodes encode to another tree (%v)", err)
	}
	next, _ := g.Commit(mls.CommitOptions{ForcePath: true})
	fg := delivery.FollowedGroup{GroupID: []byte("group"), Suite: uint16(cs), Epoch: 1, GroupInfo: gi, State: state, LoadTree: loadTree(nodes)}
	if _, err := f.Process(fg, next.Message, delivery.NextState{GroupInfo: next.GroupInfo}); err != nil {
		t.Fatalf("commit on the split state: %v", err)
	}
	if _, _, err := f.SplitLegacyState(legacy[:len(legacy)/2]); err == nil {
		t.Fatal("a truncated state split")
	}
}

func TestFollow(t *testing.T) {
	g, s := newGroup(t)
	gi, _ := g.GroupInfo(mls.GroupInfoOptions{})
	tree, _ := g.RatchetTree()
	f := New(nil).(*Follower)
	gs, err := f.Start(gi, tree)
	if err != nil {
		t.Fatal(err)
	}
	if gs.Suite != uint16(cs) || gs.Epoch != 0 || len(gs.Members) != 1 || !bytes.Equal(gs.Members[0].SignatureKey, s.PublicKey()) {
		t.Fatalf("state %+v", gs)
	}
	bs, _ := mls.GenerateSigner(cs)
	kp, _ := mls.NewKeyPackage(nil, cs, bs, mls.BasicCredential([]byte("b")), mls.KeyPackageOptions{})
	info, err := f.ValidateKeyPackage(kp.KeyPackage, time.Now())
	if err != nil || !bytes.Equal(info.SignatureKey, bs.PublicKey()) || info.Suite != uint16(cs) {
		t.Fatalf("key package %+v %v", info, err)
	}
	if _, err := f.ValidateKeyPackage(kp.KeyPackage, time.Now().Add(200*24*time.Hour)); err == nil {
		t.Fatal("expired KeyPackage accepted")
	}
	pc, err := g.Commit(mls.CommitOptions{Add: [][]byte{kp.KeyPackage}, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	fg := delivery.FollowedGroup{GroupID: []byte("group"), Suite: uint16(cs), Epoch: 0, GroupInfo: gi, State: gs.State, LoadTree: loadTree(gs.Tree)}
	ch, err := f.Process(fg, pc.Message, delivery.NextState{GroupInfo: pc.GroupInfo})
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Commit || ch.Epoch != 1 || len(ch.Added) != 1 || !bytes.Equal(ch.Added[0].SignatureKey, bs.PublicKey()) || !bytes.Equal(ch.SenderKey, s.PublicKey()) {
		t.Fatalf("change %+v", ch)
	}
	if err := f.CheckWelcome(pc.Welcome, uint16(cs)); err != nil {
		t.Fatal(err)
	}
	if err := f.CheckWelcome(pc.Welcome, 2); err == nil {
		t.Fatal("Welcome of another suite accepted")
	}
	g.MergePendingCommit(pc)
	// The same state, processed again from the stored bytes (cache miss).
	f2 := New(nil).(*Follower)
	if _, err := f2.Process(fg, pc.Message, delivery.NextState{GroupInfo: pc.GroupInfo}); err != nil {
		t.Fatalf("from stored state: %v", err)
	}
	msg, _ := g.Encrypt([]byte("hi"), []byte("ad"))
	h, err := f.PeekPrivate(msg)
	if err != nil || h.Epoch != 1 || string(h.GroupID) != "group" || h.ContentType != 1 {
		t.Fatalf("peek %+v %v", h, err)
	}
	for i := range msg {
		if _, err := f.PeekPrivate(msg[:i]); err == nil {
			t.Fatalf("truncated PrivateMessage (%d of %d bytes) accepted", i, len(msg))
		}
	}
	if _, err := f.PeekPrivate(pc.Message); err == nil {
		t.Fatal("PublicMessage accepted as PrivateMessage")
	}
}

// A follower that did not see the proposals of the epoch (a restart, or
// another node) rebuilds the group from the stored state and the stored
// proposals, each processed at the time it was accepted: a commit by
// reference of an Add whose KeyPackage has expired since still validates.
// Stored proposals that do not match their digest are refused.
func TestRebuildPendingProposals(t *testing.T) {
	g, _ := newGroup(t)
	gi, _ := g.GroupInfo(mls.GroupInfoOptions{})
	tree, _ := g.RatchetTree()
	f := New(nil).(*Follower)
	gs, err := f.Start(gi, tree)
	if err != nil {
		t.Fatal(err)
	}
	accepted := time.Now()
	bs, _ := mls.GenerateSigner(cs)
	kp, err := mls.NewKeyPackage(nil, cs, bs, mls.BasicCredential([]byte("b")), mls.KeyPackageOptions{Lifetime: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	add, err := g.ProposeAdd(kp.KeyPackage)
	if err != nil {
		t.Fatal(err)
	}
	fg := delivery.FollowedGroup{GroupID: []byte("group"), Suite: uint16(cs), GroupInfo: gi, State: gs.State, LoadTree: loadTree(gs.Tree), Now: accepted}
	ch, err := f.Process(fg, add, delivery.NextState{})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Commit || ch.State != nil || len(ch.ProposalsDigest) == 0 {
		t.Fatalf("proposal change %+v", ch)
	}
	stored := []delivery.StoredProposal{{Message: add, Accepted: accepted}}
	fg.Proposals, fg.ProposalsDigest, fg.Now = 1, ch.ProposalsDigest, accepted.Add(24*time.Hour)
	fg.LoadProposals = func(from uint64) ([]delivery.StoredProposal, error) { return stored[from:], nil }
	pc, err := g.Commit(mls.CommitOptions{IncludePending: true, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	// The stored bytes changed behind the follower's back: refused.
	stored = []delivery.StoredProposal{{Message: append([]byte{}, pc.Message...), Accepted: accepted}}
	if _, err := New(nil).Process(fg, pc.Message, delivery.NextState{GroupInfo: pc.GroupInfo}); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("stored proposals not matching their digest: %v", err)
	}
	stored = []delivery.StoredProposal{{Message: add, Accepted: accepted}}
	loads := 0
	fg.LoadProposals = func(from uint64) ([]delivery.StoredProposal, error) { loads++; return stored[from:], nil }
	// A new follower, a day later: the KeyPackage has expired.
	later := &mls.Config{Now: func() time.Time { return fg.Now }}
	cm, err := New(later).Process(fg, pc.Message, delivery.NextState{GroupInfo: pc.GroupInfo})
	if err != nil {
		t.Fatalf("commit by reference after a rebuild: %v", err)
	}
	if loads != 1 || !cm.Commit || len(cm.Added) != 1 || !bytes.Equal(cm.Added[0].SignatureKey, bs.PublicKey()) {
		t.Fatalf("commit %+v after %d loads", cm, loads)
	}
	// The follower that accepted the proposal has the group in memory.
	if _, err := f.Process(fg, pc.Message, delivery.NextState{GroupInfo: pc.GroupInfo}); err != nil || loads != 1 {
		t.Fatalf("commit on the follower that accepted the proposal: %v (%d loads)", err, loads)
	}
}

// Two followers (two nodes) take turns accepting proposals of one epoch:
// each catches up on the proposals the other accepted, loading only those.
func TestCatchUpPendingProposals(t *testing.T) {
	g, gi, nodes, gs := twoFollowers(t)
	fg := delivery.FollowedGroup{GroupID: []byte("group"), Suite: uint16(cs), GroupInfo: gi, State: gs.State, LoadTree: loadTree(gs.Tree)}
	var stored []delivery.StoredProposal
	var loaded []uint64
	fg.LoadProposals = func(from uint64) ([]delivery.StoredProposal, error) {
		loaded = append(loaded, from)
		return stored[from:], nil
	}
	for i := range 6 {
		msg, err := g.ProposeUpdate()
		if err != nil {
			t.Fatal(err)
		}
		ch, err := nodes[i/2%2].Process(fg, msg, delivery.NextState{}) // proposals 1, 2 on node 0; 3, 4 on node 1; 5, 6 on node 0
		if err != nil {
			t.Fatalf("proposal %d: %v", i+1, err)
		}
		stored = append(stored, delivery.StoredProposal{Message: msg})
		fg.Proposals, fg.ProposalsDigest = fg.Proposals+1, ch.ProposalsDigest
	}
	// Node 1 rebuilt from the state and proposals 1, 2; node 0 caught up
	// on 3, 4.
	if fmt.Sprint(loaded) != "[0 2]" {
		t.Fatalf("loads from %v, want [0 2]", loaded)
	}
}

func FuzzPeekPrivate(f *testing.F) {
	g, _ := newGroup(f)
	msg, _ := g.Encrypt([]byte("hello"), nil)
	f.Add(msg)
	f.Add([]byte{0, 1, 0, 2, 0x40, 1, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := peekPrivate(data)
		if err == nil && len(h.GroupID) > len(data) {
			t.Fatal("group id longer than the input")
		}
	})
}

func FuzzCheckWelcome(f *testing.F) {
	f.Add([]byte{0, 1, 0, 3, 0, 1, 1, 0, 1, 0})
	fo := New(nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		fo.CheckWelcome(data, 1)
		fo.Start(data, nil)
	})
}

// FuzzProcess feeds arbitrary handshake messages to a follower: no panic,
// and a refused message leaves the follower usable.
func FuzzProcess(f *testing.F) {
	g, _ := newGroup(f)
	gi, _ := g.GroupInfo(mls.GroupInfoOptions{})
	tree, _ := g.RatchetTree()
	fo := New(nil)
	gs, err := fo.Start(gi, tree)
	if err != nil {
		f.Fatal(err)
	}
	pc, _ := g.Commit(mls.CommitOptions{ForcePath: true, InlineRatchetTree: true})
	f.Add(pc.Message, pc.GroupInfo)
	fg := delivery.FollowedGroup{GroupID: []byte("group"), Suite: uint16(cs), GroupInfo: gi, State: gs.State, LoadTree: loadTree(gs.Tree)}
	f.Fuzz(func(t *testing.T, msg, next []byte) {
		fo.Process(fg, msg, delivery.NextState{GroupInfo: next})
		fo.ValidateKeyPackage(msg, time.Now())
	})
}
