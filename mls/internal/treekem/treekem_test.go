package treekem

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// checkGroup checks every tracked private state and the tree's parent
// hashes.
func checkGroup(t *testing.T, g *group) {
	t.Helper()
	if err := g.tr.VerifyParentHashes(); err != nil {
		t.Fatal(err)
	}
	for li, p := range g.priv {
		if err := p.Check(g.tr); err != nil {
			t.Fatalf("leaf %d: %v", li, err)
		}
	}
}

// TestCommitSequence runs a sequence of commits in every suite; every
// member follows each one to the same tree and commit secret.
func TestCommitSequence(t *testing.T) {
	for _, id := range suite.IDs() {
		t.Run(mustSuite(t, id).String(), func(t *testing.T) {
			s := mustSuite(t, id)
			n := 11
			if testing.Short() {
				n = 5
			}
			g := newGroup(t, s, n, uint64(id), true)
			for _, sender := range []treemath.LeafIndex{0, 7 % treemath.LeafIndex(n), 3, 4, 0} {
				g.commit(t, sender)
				checkGroup(t, g)
			}
			// After leaf 0's second commit every member holds the root key.
			for li, p := range g.priv {
				if _, ok := p.PrivateKey(g.tr.Root()); !ok {
					t.Errorf("leaf %d holds no root key", li)
				}
			}
		})
	}
}

// TestParallelEncryption checks that an UpdatePath whose encryptions were
// spread over goroutines is processed by every member.
func TestParallelEncryption(t *testing.T) {
	s := mustSuite(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	for _, workers := range []int{1, 2, 7} {
		g := newGroup(t, s, 33, 1, true)
		u, err := CreateUpdatePath(g.tr, 5, CreateParams{
			Leaf: g.tr.Leaf(5), SignaturePrivateKey: g.sig[5], GroupID: testGroupID,
			Context: g.context(), Workers: workers,
		})
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, nd := range u.Path.Nodes {
			total += len(nd.EncryptedPathSecret)
		}
		if total != 32 {
			t.Fatalf("workers=%d: %d ciphertexts, want 32 (one per other leaf)", workers, total)
		}
		for li, p := range g.priv {
			if li == 5 {
				continue
			}
			a, err := ApplyUpdatePath(g.tr, p, 5, u.Path, ApplyParams{GroupID: testGroupID, Context: g.context()})
			if err != nil {
				t.Fatalf("workers=%d: %v", workers, err)
			}
			if !bytes.Equal(a.CommitSecret, u.CommitSecret) {
				t.Fatalf("workers=%d: leaf %d: commit secret differs", workers, li)
			}
		}
	}
}

// TestExcludedNewMembers adds two members in the same commit: they get no
// ciphertext, the others process the path with the same exclusions, and
// the new members implant the path secret of their Welcome.
func TestExcludedNewMembers(t *testing.T) {
	s := mustSuite(t, suite.MLS128DHKEMP256AES128GCMSHA256P256)
	g := newGroup(t, s, 6, 2, true)
	g.commit(t, 1)
	g.commit(t, 4)

	// Two Adds: leaf 6 and 7.
	var added []treemath.LeafIndex
	newPriv := map[treemath.LeafIndex][]byte{}
	for i := range 2 {
		ln, sigPriv, encPriv := g.newMember(t, "new-"+string(rune('a'+i)))
		li, err := g.tr.AddLeaf(ln)
		if err != nil {
			t.Fatal(err)
		}
		g.sig[li], newPriv[li] = sigPriv, encPriv
		added = append(added, li)
	}
	u := g.create(t, 2, added...)
	path, copath, err := g.tr.FilteredDirectPath(2)
	if err != nil {
		t.Fatal(err)
	}
	for j, c := range copath {
		res := slices.DeleteFunc(g.tr.Resolution(c), func(x treemath.NodeIndex) bool {
			return x == added[0].Node() || x == added[1].Node()
		})
		if got := len(u.Path.Nodes[j].EncryptedPathSecret); got != len(res) {
			t.Errorf("node %d: %d ciphertexts, want %d", path[j], got, len(res))
		}
	}

	want, _ := u.Tree.TreeHash()
	for li, p := range g.priv {
		if li == 2 {
			continue
		}
		if _, err := ApplyUpdatePath(g.tr, p, 2, u.Path, ApplyParams{GroupID: testGroupID, Context: g.context()}); err == nil {
			t.Errorf("leaf %d: applied without the exclusions", li)
		}
		a, err := ApplyUpdatePath(g.tr, p, 2, u.Path, ApplyParams{GroupID: testGroupID, Context: g.context(), Exclude: added})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.CommitSecret, u.CommitSecret) {
			t.Errorf("leaf %d: commit secret differs", li)
		}
		if h, _ := a.Tree.TreeHash(); !bytes.Equal(h, want) {
			t.Errorf("leaf %d: tree differs", li)
		}
		if err := a.Private.Check(a.Tree); err != nil {
			t.Error(err)
		}
	}
	for _, li := range added {
		p, err := NewPrivate(s, li, newPriv[li])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ApplyUpdatePath(g.tr, p, 2, u.Path, ApplyParams{GroupID: testGroupID, Context: g.context(), Exclude: added}); err == nil {
			t.Errorf("excluded leaf %d processed the path", li)
		}
		x, ps, err := u.PathSecretFor(li)
		if err != nil {
			t.Fatal(err)
		}
		if x != treemath.CommonAncestor(li.Node(), treemath.LeafIndex(2).Node()) {
			t.Errorf("leaf %d: path secret for node %d", li, x)
		}
		if err := p.ImplantPathSecret(u.Tree, x, ps); err != nil {
			t.Fatal(err)
		}
		if err := p.Check(u.Tree); err != nil {
			t.Fatal(err)
		}
		if _, ok := p.PrivateKey(u.Tree.Root()); !ok {
			t.Errorf("leaf %d: no root key after the Welcome", li)
		}
		// A wrong secret is rejected and leaves the state unchanged.
		q, _ := NewPrivate(s, li, newPriv[li])
		bad := slices.Clone(ps)
		bad[0] ^= 1
		if err := q.ImplantPathSecret(u.Tree, x, bad); err == nil {
			t.Errorf("leaf %d: wrong path secret implanted", li)
		}
		if len(q.Nodes()) != 0 {
			t.Errorf("leaf %d: failed implant changed the state", li)
		}
	}
	if _, _, err := u.PathSecretFor(2); err == nil {
		t.Error("path secret for the sender itself")
	}
}

// privSnapshot copies a private state's secrets for comparison.
func privSnapshot(p *Private) map[treemath.NodeIndex]string {
	m := map[treemath.NodeIndex]string{}
	k, _ := p.PrivateKey(p.Leaf().Node())
	m[p.Leaf().Node()] = string(k)
	for _, x := range p.Nodes() {
		ps, _ := p.PathSecret(x)
		m[x] = string(ps)
	}
	return m
}

// TestApplyRejects feeds malformed UpdatePaths to a member: each must be
// an error that names the package and leaves tree and state unchanged.
func TestApplyRejects(t *testing.T) {
	s := mustSuite(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	g := newGroup(t, s, 8, 3, true)
	g.commit(t, 6)
	g.commit(t, 0)
	const sender, me = treemath.LeafIndex(1), treemath.LeafIndex(2)
	u := g.create(t, sender)
	ctx := g.context()
	gcBytes, err := ctx(mustHash(t, u.Tree))
	if err != nil {
		t.Fatal(err)
	}
	// The copath node above me, and the node of its resolution whose key
	// I hold (the first: no unmerged leaves here).
	_, copath, _ := g.tr.FilteredDirectPath(sender)
	at := slices.IndexFunc(copath, func(c treemath.NodeIndex) bool { return treemath.InSubtree(me.Node(), c) })
	resolution := g.tr.Resolution(copath[at])
	myNode := resolution[0]
	myPub := nodeEncryptionKey(g.tr, myNode)

	resign := func(up *wire.UpdatePath) {
		if err := up.LeafNode.Sign(s, g.sig[sender], testGroupID, uint32(sender)); err != nil {
			t.Fatal(err)
		}
	}
	encrypt := func(secret []byte) wire.HPKECiphertext {
		kem, ct, err := s.EncryptWithLabel(myPub, updatePathLabel, gcBytes, secret)
		if err != nil {
			t.Fatal(err)
		}
		return wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
	}
	type mutation struct {
		name   string
		sender treemath.LeafIndex
		ctx    ContextFunc
		mut    func(up *wire.UpdatePath)
		want   string
	}
	cases := []mutation{
		{name: "valid", want: ""},
		{name: "sender out of range", sender: 99, want: "out of range"},
		{name: "sender is me", sender: me, want: "own UpdatePath"},
		{name: "no nodes", mut: func(up *wire.UpdatePath) { up.Nodes = nil }, want: "path nodes"},
		{name: "extra node", mut: func(up *wire.UpdatePath) { up.Nodes = append(up.Nodes, up.Nodes[0]) }, want: "path nodes"},
		{name: "missing ciphertext", mut: func(up *wire.UpdatePath) {
			up.Nodes[at].EncryptedPathSecret = up.Nodes[at].EncryptedPathSecret[:0]
		}, want: "ciphertexts"},
		{name: "extra ciphertext", mut: func(up *wire.UpdatePath) {
			up.Nodes[0].EncryptedPathSecret = append(up.Nodes[0].EncryptedPathSecret, wire.HPKECiphertext{})
		}, want: "ciphertexts"},
		{name: "bad signature", mut: func(up *wire.UpdatePath) { up.LeafNode.Signature[0] ^= 1 }, want: "signature"},
		{name: "source update", mut: func(up *wire.UpdatePath) {
			up.LeafNode.Source = wire.LeafNodeSourceUpdate
			resign(up)
		}, want: "leaf_node_source"},
		{name: "leaf parent hash", mut: func(up *wire.UpdatePath) {
			up.LeafNode.ParentHash[0] ^= 1
			resign(up)
		}, want: "parent_hash"},
		{name: "node key changed", mut: func(up *wire.UpdatePath) {
			up.Nodes[len(up.Nodes)-1].EncryptionKey = u.Path.Nodes[0].EncryptionKey[:31:31]
		}, want: "parent_hash"},
		{name: "duplicate path key", mut: func(up *wire.UpdatePath) {
			up.Nodes[1].EncryptionKey = up.Nodes[0].EncryptionKey
		}, want: "twice"},
		{name: "key reused from tree", mut: func(up *wire.UpdatePath) {
			up.Nodes[0].EncryptionKey = myPub
		}, want: "already used"},
		{name: "leaf key unchanged", mut: func(up *wire.UpdatePath) {
			up.LeafNode.EncryptionKey = g.tr.Leaf(sender).EncryptionKey
			resign(up)
		}, want: "unchanged"},
		{name: "empty node key", mut: func(up *wire.UpdatePath) { up.Nodes[0].EncryptionKey = nil }, want: "empty"},
		{name: "garbage kem output", mut: func(up *wire.UpdatePath) {
			up.Nodes[at].EncryptedPathSecret[0].KEMOutput = []byte{1, 2, 3}
		}, want: "decrypt"},
		{name: "tampered ciphertext", mut: func(up *wire.UpdatePath) {
			up.Nodes[at].EncryptedPathSecret[0].Ciphertext[0] ^= 1
		}, want: "decrypt"},
		{name: "wrong group context", ctx: GroupContext(&wire.GroupContext{GroupID: []byte("other")}), want: "decrypt"},
		{name: "failing group context", ctx: func([]byte) ([]byte, error) { return nil, errFake }, want: "fake"},
		{name: "path secret of wrong length", mut: func(up *wire.UpdatePath) {
			up.Nodes[at].EncryptedPathSecret[0] = encrypt(make([]byte, 7))
		}, want: "bytes"},
		{name: "path secret mismatching the keys", mut: func(up *wire.UpdatePath) {
			up.Nodes[at].EncryptedPathSecret[0] = encrypt(bytes.Repeat([]byte{9}, s.HashSize()))
		}, want: "does not match the UpdatePath"},
	}
	p := g.priv[me]
	before := privSnapshot(p)
	treeBefore := mustHash(t, g.tr)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := clonePath(t, u.Path)
			if tc.mut != nil {
				tc.mut(up)
			}
			snd := sender
			if tc.sender != 0 {
				snd = tc.sender
			}
			c := ctx
			if tc.ctx != nil {
				c = tc.ctx
			}
			a, err := ApplyUpdatePath(g.tr, p, snd, up, ApplyParams{GroupID: testGroupID, Context: c})
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want == "":
				if !bytes.Equal(a.CommitSecret, u.CommitSecret) {
					t.Fatal("commit secret differs")
				}
			case err == nil:
				t.Fatalf("accepted, want error containing %q", tc.want)
			case !strings.HasPrefix(err.Error(), "treekem: apply UpdatePath from leaf") || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want one containing %q", err, tc.want)
			}
			if !maps.Equal(privSnapshot(p), before) {
				t.Fatal("private state changed")
			}
			if !bytes.Equal(mustHash(t, g.tr), treeBefore) {
				t.Fatal("tree changed")
			}
		})
	}
}

type fakeError struct{}

func (fakeError) Error() string { return "fake failure" }

var errFake error = fakeError{}

func mustHash(t testing.TB, tr *tree.Tree) []byte {
	t.Helper()
	h, err := tr.TreeHash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// clonePath deep-copies an UpdatePath through its encoding.
func clonePath(t testing.TB, up *wire.UpdatePath) *wire.UpdatePath {
	t.Helper()
	b, err := codec.Marshal(up)
	if err != nil {
		t.Fatal(err)
	}
	var c wire.UpdatePath
	if err := codec.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestPrivateState covers the private state's own checks.
func TestPrivateState(t *testing.T) {
	s := mustSuite(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	g := newGroup(t, s, 4, 4, true)
	g.commit(t, 0)
	p := g.priv[1]
	if err := p.SetPathSecret(5, make(PathSecret, 32)); err == nil {
		t.Error("set path secret off the direct path")
	}
	if err := p.SetPathSecret(2, make(PathSecret, 32)); err == nil {
		t.Error("set path secret of a leaf")
	}
	if err := p.SetPathSecret(1, make(PathSecret, 31)); err == nil {
		t.Error("set short path secret")
	}
	// Replacing a secret zeroes the old one, and Check notices the wrong key.
	q := p.Clone()
	old, _ := q.PathSecret(1)
	if err := q.SetPathSecret(1, bytes.Repeat([]byte{1}, 32)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, make([]byte, 32)) {
		t.Error("replaced path secret not zeroed")
	}
	if err := q.Check(g.tr); err == nil {
		t.Error("check accepted a wrong node key")
	}
	if err := p.Check(g.tr); err != nil {
		t.Errorf("clone shares state: %v", err)
	}
	q.Zero()
	if k, _ := q.PrivateKey(2); !bytes.Equal(k, make([]byte, len(k))) || len(q.Nodes()) != 0 {
		t.Error("Zero left secrets")
	}
	if _, err := NewPrivate(s, 0, []byte{1, 2}); err == nil {
		t.Error("accepted a malformed leaf key")
	}
}

// FuzzApplyUpdatePath processes arbitrary UpdatePaths: no panic, and on
// error the input state is untouched.
func FuzzApplyUpdatePath(f *testing.F) {
	s := mustSuite(f, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	g := newGroup(f, s, 5, 5, true)
	g.commit(f, 4)
	u := g.create(f, 1)
	seed, err := codec.Marshal(u.Path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed, uint8(1))
	f.Add(seed[:len(seed)/2], uint8(3))
	p := g.priv[0]
	before := privSnapshot(p)
	treeBefore := mustHash(f, g.tr)
	ctx := g.context()
	f.Fuzz(func(t *testing.T, data []byte, sender uint8) {
		var up wire.UpdatePath
		if codec.Unmarshal(data, &up) != nil {
			return
		}
		_, _ = MergeUpdatePath(g.tr, treemath.LeafIndex(sender), &up, testGroupID)
		a, err := ApplyUpdatePath(g.tr, p, treemath.LeafIndex(sender), &up, ApplyParams{GroupID: testGroupID, Context: ctx})
		if err == nil {
			a.Zero()
		}
		if !maps.Equal(privSnapshot(p), before) || !bytes.Equal(mustHash(t, g.tr), treeBefore) {
			t.Fatal("input state changed")
		}
	})
}

// TestCreateRejects checks CreateUpdatePath's input checks.
func TestCreateRejects(t *testing.T) {
	s := mustSuite(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	g := newGroup(t, s, 4, 6, true)
	ok := CreateParams{Leaf: g.tr.Leaf(1), SignaturePrivateKey: g.sig[1], GroupID: testGroupID, Context: g.context()}
	for _, tc := range []struct {
		name   string
		sender treemath.LeafIndex
		mut    func(p *CreateParams)
		want   string
	}{
		{"sender out of range", 4, nil, "out of range"},
		{"no leaf template", 1, func(p *CreateParams) { p.Leaf = nil }, "required"},
		{"no context", 1, func(p *CreateParams) { p.Context = nil }, "required"},
		{"wrong signature key", 1, func(p *CreateParams) { p.SignaturePrivateKey = g.sig[2] }, "signature_key"},
		{"sender excluded", 1, func(p *CreateParams) { p.Exclude = []treemath.LeafIndex{3, 1} }, "excluded"},
		{"failing context", 1, func(p *CreateParams) {
			p.Context = func([]byte) ([]byte, error) { return nil, errFake }
		}, "fake"},
		{"failing randomness", 1, func(p *CreateParams) { p.Rand = bytes.NewReader(nil) }, "leaf secret"},
	} {
		p := ok
		if tc.mut != nil {
			tc.mut(&p)
		}
		before := mustHash(t, g.tr)
		_, err := CreateUpdatePath(g.tr, tc.sender, p)
		if err == nil || !strings.HasPrefix(err.Error(), "treekem: create UpdatePath for leaf") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		if !bytes.Equal(mustHash(t, g.tr), before) {
			t.Errorf("%s: tree changed", tc.name)
		}
	}
}

// TestBlankSenderLeaf covers a commit from a blank leaf (as in an
// external commit, RFC 9420 §12.4.3.2) after a Remove blanked it: the
// members' keys for the blanked path are pruned.
func TestBlankSenderLeaf(t *testing.T) {
	s := mustSuite(t, suite.MLS256DHKEMP384AES256GCMSHA384P384)
	g := newGroup(t, s, 6, 8, true)
	g.commit(t, 1)
	if err := g.tr.RemoveLeaf(1); err != nil {
		t.Fatal(err)
	}
	delete(g.priv, 1)
	ln, sigPriv, _ := g.newMember(t, "joiner")
	g.sig[1] = sigPriv
	u, err := CreateUpdatePath(g.tr, 1, CreateParams{Leaf: ln, SignaturePrivateKey: sigPriv, GroupID: testGroupID, Context: g.context()})
	if err != nil {
		t.Fatal(err)
	}
	for li, p := range g.priv {
		a, err := ApplyUpdatePath(g.tr, p, 1, u.Path, ApplyParams{GroupID: testGroupID, Context: g.context()})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.CommitSecret, u.CommitSecret) {
			t.Errorf("leaf %d: commit secret differs", li)
		}
		if err := a.Private.Check(a.Tree); err != nil {
			t.Errorf("leaf %d: %v", li, err)
		}
	}
}
