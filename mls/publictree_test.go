package mls

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// TestPublicTreeStore runs the seeded simulation with a small group, so
// that the tree often grows and shrinks, and checks the follower's tree
// store at every epoch (sim.checkTreeStore): the nodes kept only from
// TreeChanges (adds, removes, updates, external joins and resyncs,
// commits with and without a path, computed before or after the Merge)
// are exactly TreeNodes, EncodeRatchetTree of them is RatchetTree, and
// LoadPublicGroupTree of MarshalState and the nodes gives the same group,
// which then follows the next epoch.
func TestPublicTreeStore(t *testing.T) {
	const epochs = 300
	for _, su := range largeSuites {
		t.Run(su.name, func(t *testing.T) {
			const seed = 7
			s := newSim(t, su.cs, seed, 6)
			for range epochs {
				s.epoch()
			}
			st := s.stats
			t.Logf("seed %d, %d epochs: %+v", seed, epochs, st)
			if st.PathlessCommits == 0 || st.TreeGrows == 0 || st.TreeShrinks == 0 || st.ExternalJoins == 0 || st.Resyncs == 0 || st.UpdateProposals == 0 || st.NodeDeletes == 0 {
				t.Fatalf("the simulation missed a kind of commit: %+v", st)
			}
		})
	}
}

// storeRoundTrip checks the follower's tree store APIs against its state.
func storeRoundTrip(t *testing.T, pg *PublicGroup) {
	t.Helper()
	nodes, err := pg.TreeNodes()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := pg.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	if enc, err := EncodeRatchetTree(nodes); err != nil || !bytes.Equal(enc, rt) {
		t.Fatalf("EncodeRatchetTree(TreeNodes) is not RatchetTree: %v", err)
	}
	state, err := pg.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	want, err := pg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(nodes)
	loaded, err := LoadPublicGroupTree(nil, state, nodes)
	if err != nil {
		t.Fatalf("LoadPublicGroupTree: %v", err)
	}
	if got, err := loaded.MarshalBinary(); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("loaded group marshals differently: %v", err)
	}
}

// TestPublicTreeRoundTrip checks the store round trip and the tree changes
// on trees of chosen shapes, on several suites: blank leaves inside the
// tree, trailing blank leaves, a cached proposal in the state, a tree
// grown by one commit and one shrunk by a remove.
func TestPublicTreeRoundTrip(t *testing.T) {
	for _, cs := range []CipherSuite{
		MLS128DHKEMX25519AES128GCMSHA256Ed25519,
		MLS128DHKEMP256AES128GCMSHA256P256,
		MLS256DHKEMX448AES256GCMSHA512Ed448,
		MLS128MLKEM768X25519AES128GCMSHA256Ed25519,
	} {
		t.Run(fmt.Sprintf("%#04x", uint16(cs)), func(t *testing.T) {
			w := newWorld(t, cs)
			signer, err := GenerateSigner(cs)
			if err != nil {
				t.Fatal(err)
			}
			alice, err := CreateGroup(w.cfg, cs, []byte("tree-store"), signer, BasicCredential([]byte("alice")), CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			w.members["alice"] = alice
			gi, err := alice.GroupInfo(GroupInfoOptions{InlineRatchetTree: true})
			if err != nil {
				t.Fatal(err)
			}
			if w.pg, err = NewPublicGroup(w.cfg, gi, nil); err != nil {
				t.Fatal(err)
			}
			storeRoundTrip(t, w.pg)
			nodes := storeOf(t, w.pg)
			// base is a follower of epoch 0 loaded from the store, and
			// since the changes of every commit after it, merged: at each
			// epoch, base with them gives that epoch's group.
			state0, err := w.pg.MarshalState()
			if err != nil {
				t.Fatal(err)
			}
			ns0, _ := w.pg.TreeNodes()
			base, err := LoadPublicGroupTree(w.cfg, state0, ns0)
			if err != nil {
				t.Fatal(err)
			}
			since := map[uint32][]byte{}
			// step runs a commit through a follower kept apart from the
			// world's and applies its tree changes to nodes.
			step := func(committer string, opts CommitOptions) *PendingCommit {
				t.Helper()
				g := w.members[committer]
				pc, err := g.Commit(opts)
				if err != nil {
					t.Fatal(err)
				}
				ch, err := w.pg.Process(pc.Message)
				if err != nil {
					t.Fatal(err)
				}
				changes, err := ch.TreeChanges()
				if err != nil {
					t.Fatal(err)
				}
				pg := w.pg
				w.pg = nil
				w.deliver(committer, pc.Message)
				w.pg = pg
				if err := pg.Merge(ch); err != nil {
					t.Fatal(err)
				}
				if err := g.MergePendingCommit(pc); err != nil {
					t.Fatal(err)
				}
				w.check()
				applyChanges(nodes, changes)
				checkStore(t, pg, nodes)
				storeRoundTrip(t, pg)
				for _, n := range changes {
					since[n.Index] = n.Data
				}
				checkLoadChanges(t, base, since, pg)
				return pc
			}
			// Six joiners at once, without a path: 7 of 8 leaves.
			var add [][]byte
			kps := map[string]*KeyPackageBundle{}
			for i := range 6 {
				name := fmt.Sprintf("m%d", i+1)
				kps[name] = w.kp(name)
				add = append(add, kps[name].KeyPackage)
			}
			pc := step("alice", CommitOptions{Add: add, InlineRatchetTree: true})
			for name, kp := range kps {
				g, err := JoinFromWelcome(w.cfg, pc.Welcome, kp, JoinOptions{})
				if err != nil {
					t.Fatal(err)
				}
				w.members[name] = g
			}
			// Paths set parent nodes; blank leaves 2 and 3 inside the tree.
			step("m6", CommitOptions{ForcePath: true})
			step("m1", CommitOptions{Remove: []LeafIndex{w.members["m2"].OwnLeaf(), w.members["m3"].OwnLeaf()}})
			delete(w.members, "m2")
			delete(w.members, "m3")
			// A cached proposal is part of the state.
			prop, err := w.members["m4"].ProposeUpdate()
			if err != nil {
				t.Fatal(err)
			}
			w.deliver("m4", prop)
			storeRoundTrip(t, w.pg)
			// Shrink: the right half (leaves 4-7) loses every member.
			var right []LeafIndex
			for name, g := range w.members {
				if g.OwnLeaf() >= 4 {
					right = append(right, g.OwnLeaf())
					delete(w.members, name)
				}
			}
			before := w.pg.c.tree.NodeCount()
			step("alice", CommitOptions{Remove: right, IncludePending: false})
			if after := w.pg.c.tree.NodeCount(); after >= before {
				t.Fatalf("tree of %d nodes did not shrink (%d)", before, after)
			}
			// Grow: two joiners past the end of a full tree.
			kp1, kp2 := w.kp("n1"), w.kp("n2")
			before = w.pg.c.tree.NodeCount()
			step("m1", CommitOptions{Add: [][]byte{kp1.KeyPackage, kp2.KeyPackage}, ForcePath: true})
			if after := w.pg.c.tree.NodeCount(); after <= before {
				t.Fatalf("tree of %d nodes did not grow (%d)", before, after)
			}
			// base itself is still epoch 0's group.
			if !bytes.Equal(mustMarshalState(t, base), state0) {
				t.Fatal("LoadPublicGroupChanges changed the group it started from")
			}
			checkStore(t, base, storeMap(ns0))
		})
	}
}

// TestLoadPublicGroupChangesRefuses checks that changes that do not make
// the state's tree, or do not fit the tree, are refused, naming the
// fault.
func TestLoadPublicGroupChangesRefuses(t *testing.T) {
	fx := newTreeStoreFixture(t)
	prev, err := LoadPublicGroupTree(nil, fx.prevState, fx.prevNodes)
	if err != nil {
		t.Fatal(err)
	}
	// The changes: every node that differs, nil Data for one now blank.
	was, is := storeMap(fx.prevNodes), storeMap(fx.nodes)
	var changes []TreeNode
	var leaf, parent int = -1, -1
	for _, n := range fx.nodes {
		if !bytes.Equal(was[n.Index], n.Data) {
			if n.Index%2 == 0 && leaf < 0 {
				leaf = len(changes)
			} else if n.Index%2 == 1 && parent < 0 {
				parent = len(changes)
			}
			changes = append(changes, n)
		}
	}
	for x := range was {
		if _, ok := is[x]; !ok {
			changes = append(changes, TreeNode{Index: x})
		}
	}
	if leaf < 0 || parent < 0 {
		t.Fatalf("fixture commit changed no leaf or no parent: %d changes", len(changes))
	}
	if _, err := LoadPublicGroupChanges(nil, prev, fx.state, changes); err != nil {
		t.Fatalf("good changes refused: %v", err)
	}
	edit := func(f func(ns []TreeNode) []TreeNode) []TreeNode {
		return f(slices.Clone(changes))
	}
	signer, err := GenerateSigner(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	other, err := CreateGroup(nil, MLS128DHKEMX25519AES128GCMSHA256Ed25519, []byte("another group"), signer, BasicCredential([]byte("x")), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gi, _ := other.GroupInfo(GroupInfoOptions{InlineRatchetTree: true})
	otherPG, err := NewPublicGroup(nil, gi, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		prev    *PublicGroup
		state   []byte
		changes []TreeNode
		want    string
	}{
		{"a change left out", prev, fx.state, edit(func(ns []TreeNode) []TreeNode { return slices.Delete(ns, leaf, leaf+1) }), "tree hash"},
		{"no changes", prev, fx.state, nil, "tree hash"},
		{"the previous state", prev, fx.prevState, changes, "beyond the tree"},
		{"duplicate", prev, fx.state, append(slices.Clone(changes), changes[0]), "twice"},
		{"beyond the tree", prev, fx.state, append(slices.Clone(changes), TreeNode{Index: 1 << 20, Data: changes[leaf].Data}), "beyond the tree"},
		{"leaf at a parent's place", prev, fx.state, edit(func(ns []TreeNode) []TreeNode { ns[parent].Data = ns[leaf].Data; return ns }), "parent position"},
		{"undecodable", prev, fx.state, edit(func(ns []TreeNode) []TreeNode { ns[leaf].Data = []byte{1, 2, 3}; return ns }), fmt.Sprintf("node %d", changes[leaf].Index)},
		{"another group", otherPG, fx.state, changes, "the state is of group"},
		{"truncated state", prev, fx.state[:len(fx.state)-1], changes, "decode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadPublicGroupChanges(nil, c.prev, c.state, c.changes)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want one containing %q wrapping ErrMalformed", err, c.want)
			}
		})
	}
	if _, err := LoadPublicGroupChanges(nil, nil, fx.state, changes); err == nil {
		t.Fatal("no previous group accepted")
	}
	// prev is still the previous epoch's group.
	checkStore(t, prev, was)
}

// checkLoadChanges checks that prev with the changed nodes (nil: blank)
// loads as want's group, and that the changes with one left out, or want's
// state on another group, are refused.
func checkLoadChanges(t *testing.T, prev *PublicGroup, changed map[uint32][]byte, want *PublicGroup) {
	t.Helper()
	state := mustMarshalState(t, want)
	var changes []TreeNode
	for x, d := range changed {
		changes = append(changes, TreeNode{Index: x, Data: d})
	}
	got, err := LoadPublicGroupChanges(nil, prev, state, changes)
	if err != nil {
		t.Fatalf("epoch %d from epoch %d and %d changed nodes: %v", want.Epoch(), prev.Epoch(), len(changes), err)
	}
	if !bytes.Equal(mustMarshalState(t, got), state) || !bytes.Equal(got.TreeHash(), want.TreeHash()) {
		t.Fatalf("epoch %d from epoch %d: another group", want.Epoch(), prev.Epoch())
	}
	checkStore(t, got, storeOf(t, want))
	// A change that matters (a node prev does not hold) left out.
	had := storeOf(t, prev)
	for i, c := range changes {
		if c.Data == nil || bytes.Equal(had[c.Index], c.Data) {
			continue
		}
		less := slices.Delete(slices.Clone(changes), i, i+1)
		if _, err := LoadPublicGroupChanges(nil, prev, state, less); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "tree hash") {
			t.Fatalf("epoch %d from epoch %d with the change of node %d left out: %v", want.Epoch(), prev.Epoch(), c.Index, err)
		}
		break
	}
}

func mustMarshalState(t *testing.T, pg *PublicGroup) []byte {
	t.Helper()
	b, err := pg.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storeMap is the nodes as storeOf gives them.
func storeMap(ns []TreeNode) map[uint32][]byte {
	m := map[uint32][]byte{}
	for _, n := range ns {
		m[n.Index] = n.Data
	}
	return m
}

func storeOf(t *testing.T, pg *PublicGroup) map[uint32][]byte {
	t.Helper()
	ns, err := pg.TreeNodes()
	if err != nil {
		t.Fatal(err)
	}
	m := map[uint32][]byte{}
	for _, n := range ns {
		m[n.Index] = n.Data
	}
	return m
}

func applyChanges(m map[uint32][]byte, changes []TreeNode) {
	for _, n := range changes {
		if n.Data == nil {
			delete(m, n.Index)
		} else {
			m[n.Index] = n.Data
		}
	}
}

func checkStore(t *testing.T, pg *PublicGroup, m map[uint32][]byte) {
	t.Helper()
	want := storeOf(t, pg)
	if len(want) != len(m) {
		t.Fatalf("store holds %d nodes, tree has %d", len(m), len(want))
	}
	for x, d := range want {
		if !bytes.Equal(m[x], d) {
			t.Fatalf("stored node %d differs from the tree's", x)
		}
	}
}

// treeStoreFixture is a follower of a five-member group after a commit,
// its stored form, and the nodes of the epoch before.
type treeStoreFixture struct {
	pg        *PublicGroup
	state     []byte
	nodes     []TreeNode
	prevNodes []TreeNode
	prevState []byte
}

func newTreeStoreFixture(t testing.TB) *treeStoreFixture {
	t.Helper()
	tt, ok := t.(*testing.T)
	if !ok {
		tt = &testing.T{}
	}
	w, _ := stateWorld(tt, MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	fx := &treeStoreFixture{}
	var err error
	if fx.prevNodes, err = w.pg.TreeNodes(); err != nil {
		t.Fatal(err)
	}
	if fx.prevState, err = w.pg.MarshalState(); err != nil {
		t.Fatal(err)
	}
	w.commit("bob", CommitOptions{Add: [][]byte{w.kp("dave").KeyPackage, w.kp("erin").KeyPackage}, ForcePath: true})
	fx.pg = w.pg
	if fx.state, err = w.pg.MarshalState(); err != nil {
		t.Fatal(err)
	}
	if fx.nodes, err = w.pg.TreeNodes(); err != nil {
		t.Fatal(err)
	}
	return fx
}

// TestLoadPublicGroupTreeRefuses checks that a damaged or mixed-up store
// is refused, naming the fault, and that a good one loads.
func TestLoadPublicGroupTreeRefuses(t *testing.T) {
	fx := newTreeStoreFixture(t)
	if _, err := LoadPublicGroupTree(nil, fx.state, fx.nodes); err != nil {
		t.Fatalf("good store refused: %v", err)
	}
	// Two leaves and two parents, for swaps.
	var leaves, parents []int
	for i, n := range fx.nodes {
		if n.Index%2 == 0 {
			leaves = append(leaves, i)
		} else {
			parents = append(parents, i)
		}
	}
	if len(leaves) < 3 || len(parents) < 2 {
		t.Fatalf("fixture tree too small: %d leaves, %d parents", len(leaves), len(parents))
	}
	edit := func(f func(ns []TreeNode) []TreeNode) []TreeNode {
		return f(slices.Clone(fx.nodes))
	}
	swap := func(i, j int) []TreeNode {
		return edit(func(ns []TreeNode) []TreeNode {
			ns[i].Data, ns[j].Data = ns[j].Data, ns[i].Data
			return ns
		})
	}
	damagedLeaf := edit(func(ns []TreeNode) []TreeNode {
		d := bytes.Clone(ns[leaves[0]].Data)
		d[len(d)-1] ^= 1 // the signature's last byte
		ns[leaves[0]].Data = d
		return ns
	})
	const hashErr = "tree hash"
	cases := []struct {
		name  string
		state []byte
		nodes []TreeNode
		want  string
	}{
		{"missing leaf", fx.state, edit(func(ns []TreeNode) []TreeNode { return slices.Delete(ns, leaves[1], leaves[1]+1) }), hashErr},
		{"missing parent", fx.state, edit(func(ns []TreeNode) []TreeNode { return slices.Delete(ns, parents[0], parents[0]+1) }), hashErr},
		{"swapped leaves", fx.state, swap(leaves[0], leaves[1]), hashErr},
		{"swapped parents", fx.state, swap(parents[0], parents[1]), hashErr},
		{"damaged leaf", fx.state, damagedLeaf, hashErr},
		{"nodes of the previous epoch", fx.state, fx.prevNodes, "last nodes missing"},
		{"no nodes", fx.state, nil, "no nodes"},
		{"blank node", fx.state, append(slices.Clone(fx.nodes), TreeNode{Index: fx.nodes[0].Index}), "blank"},
		{"duplicate", fx.state, append(slices.Clone(fx.nodes), fx.nodes[0]), "twice"},
		{"beyond the tree", fx.state, append(slices.Clone(fx.nodes), TreeNode{Index: 1 << 20, Data: fx.nodes[0].Data}), "beyond the tree"},
		{"leaf at a parent's place", fx.state, edit(func(ns []TreeNode) []TreeNode { ns[parents[0]].Data = ns[leaves[0]].Data; return ns }), "parent position"},
		{"undecodable", fx.state, edit(func(ns []TreeNode) []TreeNode { ns[leaves[1]].Data = []byte{1, 2, 3}; return ns }), fmt.Sprintf("node %d", fx.nodes[leaves[1]].Index)},
		{"trailing bytes", fx.state, edit(func(ns []TreeNode) []TreeNode {
			ns[leaves[1]].Data = append(bytes.Clone(ns[leaves[1]].Data), 0)
			return ns
		}), fmt.Sprintf("node %d", fx.nodes[leaves[1]].Index)},
		{"full state instead", mustMarshalPublic(t, fx.pg), fx.nodes, "kind"},
		{"truncated state", fx.state[:len(fx.state)-1], fx.nodes, "decode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadPublicGroupTree(nil, c.state, c.nodes)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want one containing %q wrapping ErrMalformed", err, c.want)
			}
		})
	}
	// Nodes of the previous epoch, completed with the current last node
	// so that the shape fits: only the tree hash tells.
	mixed := append(slices.Clone(fx.prevNodes), fx.nodes[len(fx.nodes)-1])
	if _, err := LoadPublicGroupTree(nil, fx.state, mixed); err == nil || !strings.Contains(err.Error(), hashErr) {
		t.Fatalf("mixed epochs: %v", err)
	}
}

func mustMarshalPublic(t *testing.T, pg *PublicGroup) []byte {
	t.Helper()
	b, err := pg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncodeRatchetTreeRefuses checks the input rules of EncodeRatchetTree.
func TestEncodeRatchetTreeRefuses(t *testing.T) {
	leaf := []byte{1, 2}
	cases := []struct {
		name  string
		nodes []TreeNode
	}{
		{"empty", nil},
		{"last is a parent", []TreeNode{{0, leaf}, {1, leaf}}},
		{"last is blank", []TreeNode{{0, leaf}, {2, nil}}},
		{"unsorted", []TreeNode{{2, leaf}, {0, leaf}, {4, leaf}}},
		{"duplicate", []TreeNode{{0, leaf}, {0, leaf}, {2, leaf}}},
		{"longer than a vector", []TreeNode{{1 << 30, leaf}}},
	}
	for _, c := range cases {
		if out, err := EncodeRatchetTree(c.nodes); err == nil {
			t.Errorf("%s: accepted: %x", c.name, out)
		}
	}
	// Gaps are blanks: three nodes, the middle one blank.
	out, err := EncodeRatchetTree([]TreeNode{{0, leaf}, {2, leaf}})
	if err != nil || !bytes.Equal(out, []byte{7, 1, 1, 2, 0, 1, 1, 2}) {
		t.Fatalf("EncodeRatchetTree = %x, %v", out, err)
	}
}

// nodesFromBlob parses fuzz input into tree nodes: uint32 index, uint16
// length (0xffff: nil Data), data. Indices are kept below 2^16: both
// functions fuzzed allocate for the tree's size, which the indices give.
// FuzzLoadPublicGroupChanges feeds a stored state and changed nodes to a
// follower of the fixture's previous epoch: whatever it accepts re-marshals
// to the same state, and the earlier group is not changed.
func FuzzLoadPublicGroupChanges(f *testing.F) {
	fx := newTreeStoreFixture(f)
	prev, err := LoadPublicGroupTree(nil, fx.prevState, fx.prevNodes)
	if err != nil {
		f.Fatal(err)
	}
	was, err := prev.TreeNodes()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fx.state, nodesToBlob(fx.nodes))
	f.Add(fx.prevState, nodesToBlob(fx.prevNodes))
	f.Add(fx.state, nodesToBlob(append(slices.Clone(fx.nodes), TreeNode{Index: 3})))
	f.Fuzz(func(t *testing.T, state, blob []byte) {
		pg, err := LoadPublicGroupChanges(nil, prev, state, nodesFromBlob(blob))
		if err == nil {
			if out, err := pg.MarshalState(); err != nil || !bytes.Equal(out, state) {
				t.Fatalf("accepted state re-marshals differently: %v", err)
			}
			if _, err := pg.TreeNodes(); err != nil {
				t.Fatal(err)
			}
		}
		now, err := prev.TreeNodes()
		if err != nil || !slices.EqualFunc(now, was, func(a, b TreeNode) bool { return a.Index == b.Index && bytes.Equal(a.Data, b.Data) }) {
			t.Fatalf("the earlier group changed (%v)", err)
		}
	})
}

func nodesFromBlob(b []byte) []TreeNode {
	var ns []TreeNode
	for len(b) >= 6 {
		x, n := binary.BigEndian.Uint32(b)&0xffff, int(binary.BigEndian.Uint16(b[4:]))
		b = b[6:]
		if n == 0xffff {
			ns = append(ns, TreeNode{Index: x})
			continue
		}
		n = min(n, len(b))
		ns = append(ns, TreeNode{Index: x, Data: b[:n]})
		b = b[n:]
	}
	return ns
}

func nodesToBlob(ns []TreeNode) []byte {
	var b []byte
	for _, n := range ns {
		b = binary.BigEndian.AppendUint32(b, n.Index)
		if n.Data == nil {
			b = binary.BigEndian.AppendUint16(b, 0xffff)
			continue
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(n.Data)))
		b = append(b, n.Data...)
	}
	return b
}

// FuzzLoadPublicGroupTree feeds arbitrary states and nodes to
// LoadPublicGroupTree: no panic, and what loads marshals back to the same
// state and nodes.
func FuzzLoadPublicGroupTree(f *testing.F) {
	fx := newTreeStoreFixture(f)
	f.Add(fx.state, nodesToBlob(fx.nodes))
	f.Add(fx.state, nodesToBlob(fx.prevNodes))
	f.Fuzz(func(t *testing.T, state, blob []byte) {
		nodes := nodesFromBlob(blob)
		pg, err := LoadPublicGroupTree(nil, state, nodes)
		if err != nil {
			return
		}
		if out, err := pg.MarshalState(); err != nil || !bytes.Equal(out, state) {
			t.Fatalf("accepted state re-marshals differently: %v", err)
		}
		if _, err := pg.TreeNodes(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzEncodeRatchetTree feeds arbitrary nodes to EncodeRatchetTree: no
// panic, and what it encodes is a vector of one optional per node up to
// the last, with each node's data in place.
func FuzzEncodeRatchetTree(f *testing.F) {
	fx := newTreeStoreFixture(f)
	f.Add(nodesToBlob(fx.nodes))
	f.Add(nodesToBlob([]TreeNode{{0, []byte{1}}, {1, nil}, {4, []byte{2, 3}}}))
	f.Fuzz(func(t *testing.T, blob []byte) {
		nodes := nodesFromBlob(blob)
		out, err := EncodeRatchetTree(nodes)
		if err != nil {
			return
		}
		r := codec.NewReader(out)
		i, x := 0, uint32(0)
		r.VectorFunc(func(r *codec.Reader) {
			present := r.Uint8()
			if i < len(nodes) && nodes[i].Index == x {
				if d := nodes[i].Data; d != nil {
					if present != 1 || !bytes.Equal(r.Fixed(len(d)), d) {
						r.Failf("node %d not in place", x)
					}
				} else if present != 0 {
					r.Failf("node %d not blank", x)
				}
				i++
			} else if present != 0 {
				r.Failf("gap %d not blank", x)
			}
			x++
		})
		if err := r.Finish(); err != nil || i != len(nodes) {
			t.Fatalf("encoding does not hold the nodes: %v (%d of %d)", err, i, len(nodes))
		}
		// Real nodes give a tree that decodes.
		if bytes.Equal(blob, nodesToBlob(fx.nodes)) {
			var rt wire.RatchetTree
			if err := codec.Unmarshal(out, &rt); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestJoinFetchRatchetTree joins from a Welcome without an inline tree via
// JoinOptions.FetchRatchetTree, served from the follower's stored nodes; a
// wrong tree from the callback is refused and its error is returned
// wrapped.
func TestJoinFetchRatchetTree(t *testing.T) {
	w, _ := stateWorld(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	before, err := w.pg.TreeNodes()
	if err != nil {
		t.Fatal(err)
	}
	stale, err := EncodeRatchetTree(before)
	if err != nil {
		t.Fatal(err)
	}
	dave := w.kp("dave")
	pc := w.commit("alice", CommitOptions{Add: [][]byte{dave.KeyPackage}})
	nodes, err := w.pg.TreeNodes()
	if err != nil {
		t.Fatal(err)
	}
	var asked []uint64
	serve := func(tree []byte, err error) func(uint64) ([]byte, error) {
		return func(epoch uint64) ([]byte, error) {
			asked = append(asked, epoch)
			return tree, err
		}
	}
	if _, err := JoinFromWelcome(w.cfg, pc.Welcome, dave, JoinOptions{}); err == nil {
		t.Fatal("joined without a tree")
	}
	errStore := errors.New("tree store unavailable")
	if _, err := JoinFromWelcome(w.cfg, pc.Welcome, dave, JoinOptions{FetchRatchetTree: serve(nil, errStore)}); !errors.Is(err, errStore) || !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("callback error: %v", err)
	}
	if _, err := JoinFromWelcome(w.cfg, pc.Welcome, dave, JoinOptions{FetchRatchetTree: serve(stale, nil)}); !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("tree of the previous epoch: %v", err)
	}
	if _, err := JoinFromWelcome(w.cfg, pc.Welcome, dave, JoinOptions{FetchRatchetTree: serve(nil, nil)}); !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("no tree: %v", err)
	}
	tree, err := EncodeRatchetTree(nodes)
	if err != nil {
		t.Fatal(err)
	}
	asked = nil
	g, err := JoinFromWelcome(w.cfg, pc.Welcome, dave, JoinOptions{FetchRatchetTree: serve(tree, nil)})
	if err != nil {
		t.Fatalf("join with the fetched tree: %v", err)
	}
	if !slices.Equal(asked, []uint64{w.pg.Epoch()}) {
		t.Fatalf("fetched for epochs %v, want [%d]", asked, w.pg.Epoch())
	}
	if !bytes.Equal(g.TreeHash(), w.pg.TreeHash()) || g.Epoch() != w.pg.Epoch() {
		t.Fatal("joined a different epoch")
	}
	// An inline tree or RatchetTree takes precedence: no fetch.
	asked = nil
	if _, err := JoinFromWelcome(w.cfg, pc.Welcome, dave, JoinOptions{RatchetTree: tree, FetchRatchetTree: serve(nil, errStore)}); err != nil || len(asked) != 0 {
		t.Fatalf("RatchetTree given: %v, fetched %v", err, asked)
	}
}
