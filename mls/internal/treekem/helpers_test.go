package treekem

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// testGroupID is the group id of generated groups.
var testGroupID = []byte("parley treekem test group")

// group is a generated group: a public tree, the members' signature keys
// and the private TreeKEM states of the members it tracks. All key
// material comes from a ChaCha8 stream seeded by the caller, except the
// randomness inside HPKE encryption (and ECDSA signatures), so a group's
// shape and keys are reproducible.
type group struct {
	s     *suite.Suite
	tr    *tree.Tree
	rng   *rand.ChaCha8
	sig   map[treemath.LeafIndex][]byte
	priv  map[treemath.LeafIndex]*Private
	epoch uint64
}

func mustSuite(tb testing.TB, id suite.ID) *suite.Suite {
	tb.Helper()
	s, err := suite.New(id)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// bytes returns n bytes of the group's stream.
func (g *group) bytes(n int) []byte {
	b := make([]byte, n)
	g.rng.Read(b)
	return b
}

// newMember returns a key_package leaf node for a new member with its
// signature and leaf private keys.
func (g *group) newMember(tb testing.TB, name string) (ln *wire.LeafNode, sigPriv, encPriv []byte) {
	tb.Helper()
	var sigPub []byte
	var err error
	switch g.s.ID() {
	case suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519, suite.MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519:
		sigPriv = g.bytes(32) // an Ed25519 seed
		sigPub, err = g.s.SignaturePublicKey(sigPriv)
	default:
		sigPriv, sigPub, err = g.s.GenerateSignatureKey()
	}
	if err != nil {
		tb.Fatal(err)
	}
	encPriv, encPub, err := g.s.DeriveKeyPair(g.bytes(g.s.HashSize()))
	if err != nil {
		tb.Fatal(err)
	}
	ln = &wire.LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  sigPub,
		Credential:    wire.Credential{Type: wire.CredentialBasic, Identity: []byte(name)},
		Capabilities: wire.Capabilities{
			Versions:     []wire.ProtocolVersion{wire.ProtocolVersionMLS10},
			CipherSuites: []suite.ID{g.s.ID()},
			Extensions:   []wire.ExtensionType{},
			Proposals:    []wire.ProposalType{},
			Credentials:  []wire.CredentialType{wire.CredentialBasic},
		},
		Source:     wire.LeafNodeSourceKeyPackage,
		Lifetime:   &wire.Lifetime{NotBefore: 0, NotAfter: 1 << 62},
		Extensions: wire.Extensions{},
	}
	if err := ln.Sign(g.s, sigPriv, testGroupID, 0); err != nil {
		tb.Fatal(err)
	}
	return ln, sigPriv, encPriv
}

// newGroup returns a group of n members created by leaf 0 adding everyone
// else without committing a path: every parent node is blank. The private
// states of all members are tracked if track is set.
func newGroup(tb testing.TB, s *suite.Suite, n int, seed uint64, track bool) *group {
	tb.Helper()
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	g := &group{
		s:    s,
		rng:  rand.NewChaCha8(key),
		sig:  map[treemath.LeafIndex][]byte{},
		priv: map[treemath.LeafIndex]*Private{},
	}
	for i := range n {
		ln, sigPriv, encPriv := g.newMember(tb, fmt.Sprintf("member-%d", i))
		var li treemath.LeafIndex
		var err error
		if i == 0 {
			g.tr, err = tree.New(s, ln)
		} else {
			li, err = g.tr.AddLeaf(ln)
		}
		if err != nil {
			tb.Fatal(err)
		}
		g.sig[li] = sigPriv
		if track {
			if g.priv[li], err = NewPrivate(s, li, encPriv); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return g
}

// context returns the ContextFunc of the group's next epoch.
func (g *group) context() ContextFunc {
	return GroupContext(&wire.GroupContext{
		Version:                 wire.ProtocolVersionMLS10,
		CipherSuite:             g.s.ID(),
		GroupID:                 testGroupID,
		Epoch:                   g.epoch + 1,
		ConfirmedTranscriptHash: bytes.Repeat([]byte{0xc7}, g.s.HashSize()),
		Extensions:              wire.Extensions{},
	})
}

// create makes an UpdatePath from sender with the given excluded leaves.
func (g *group) create(tb testing.TB, sender treemath.LeafIndex, exclude ...treemath.LeafIndex) *Update {
	tb.Helper()
	u, err := CreateUpdatePath(g.tr, sender, CreateParams{
		Leaf:                g.tr.Leaf(sender),
		SignaturePrivateKey: g.sig[sender],
		GroupID:             testGroupID,
		Exclude:             exclude,
		Context:             g.context(),
		Rand:                g.rng,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// commit makes sender commit an UpdatePath; every other tracked member
// processes it and must reach the same tree and commit secret. The group
// moves to the new epoch and the sender's new private state is tracked.
func (g *group) commit(tb testing.TB, sender treemath.LeafIndex) *Update {
	tb.Helper()
	u := g.create(tb, sender)
	want, err := u.Tree.TreeHash()
	if err != nil {
		tb.Fatal(err)
	}
	for li, p := range g.priv {
		if li == sender {
			continue
		}
		a, err := ApplyUpdatePath(g.tr, p, sender, u.Path, ApplyParams{GroupID: testGroupID, Context: g.context()})
		if err != nil {
			tb.Fatal(err)
		}
		if !bytes.Equal(a.CommitSecret, u.CommitSecret) {
			tb.Fatalf("commit by %d: leaf %d got another commit secret", sender, li)
		}
		if h, _ := a.Tree.TreeHash(); !bytes.Equal(h, want) {
			tb.Fatalf("commit by %d: leaf %d got another tree", sender, li)
		}
		p.Zero()
		g.priv[li] = a.Private
	}
	if old := g.priv[sender]; old != nil {
		old.Zero()
	}
	g.priv[sender] = u.Private
	g.tr = u.Tree
	g.epoch++
	return u
}

// bitReverse returns i with its low bits bits reversed.
func bitReverse(i, bits int) int {
	r := 0
	for range bits {
		r = r<<1 | i&1
		i >>= 1
	}
	return r
}

// newFullGroup returns a group of n = 2^k members in which every member
// has committed once, in bit-reversed leaf order (which keeps each
// resolution small while the tree fills): every parent node is non-blank,
// has no unmerged leaves and is parent-hash valid. Only the private state
// of the last committer, leaf n-1, is kept (the others do not process the
// commits, which would cost n^2 decryptions).
func newFullGroup(tb testing.TB, s *suite.Suite, n int, seed uint64) *group {
	tb.Helper()
	g := newGroup(tb, s, n, seed, false)
	k := 0
	for 1<<k < n {
		k++
	}
	for i := range n {
		sender := treemath.LeafIndex(bitReverse(i, k))
		u := g.create(tb, sender)
		if i == n-1 {
			g.priv[sender] = u.Private
		} else {
			u.Private.Zero()
		}
		u.Zero()
		g.tr = u.Tree
		g.epoch++
	}
	return g
}
