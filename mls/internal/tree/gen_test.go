package tree

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// genGroupID is the group id of generated trees.
var genGroupID = []byte("parley tree benchmark group")

// generator builds valid trees of members leaves 0..members-1 as if every
// parent had last been set by a commit of the leftmost leaf below it: a
// parent is non-blank iff its right subtree holds a member, its parent hash
// chain runs down its left spine to that leftmost leaf, and leaves that
// head no chain are key_package leaves. HPKE keys are DeriveKeyPair of a
// counter, so the tree's shape and encryption keys are deterministic;
// signature keys come from GenerateSignatureKey.
type generator struct {
	s       *suite.Suite
	t       *Tree
	members uint32
	ctr     uint64
	sigPriv [][]byte // signature private key of each member
}

func (g *generator) hpkeKey(tb testing.TB) []byte {
	g.ctr++
	var ikm [8]byte
	binary.BigEndian.PutUint64(ikm[:], g.ctr)
	seed := sha256.Sum256(append([]byte("parley tree gen"), ikm[:]...))
	_, pub, err := g.s.DeriveKeyPair(seed[:])
	if err != nil {
		tb.Fatal(err)
	}
	return pub
}

// build fills the subtree under x; ph is the parent hash its top node must
// carry (nil if it heads no chain).
func (g *generator) build(tb testing.TB, x treemath.NodeIndex, ph []byte) {
	if li, ok := x.Leaf(); ok {
		if uint32(li) >= g.members {
			return
		}
		priv, pub, err := g.s.GenerateSignatureKey()
		if err != nil {
			tb.Fatal(err)
		}
		ln := &wire.LeafNode{
			EncryptionKey: g.hpkeKey(tb),
			SignatureKey:  pub,
			Credential:    wire.Credential{Type: wire.CredentialBasic, Identity: fmt.Appendf(nil, "member-%d", li)},
			Capabilities: wire.Capabilities{
				Versions:     []wire.ProtocolVersion{1},
				CipherSuites: []suite.ID{g.s.ID()},
				Extensions:   []wire.ExtensionType{},
				Proposals:    []wire.ProposalType{},
				Credentials:  []wire.CredentialType{wire.CredentialBasic},
			},
			Extensions: wire.Extensions{},
		}
		if ph != nil {
			ln.Source = wire.LeafNodeSourceCommit
			ln.ParentHash = ph
		} else {
			ln.Source = wire.LeafNodeSourceKeyPackage
			ln.Lifetime = &wire.Lifetime{NotBefore: 0, NotAfter: math.MaxUint64}
		}
		if err := ln.Sign(g.s, priv, genGroupID, uint32(li)); err != nil {
			tb.Fatal(err)
		}
		g.sigPriv[li] = priv
		g.t.poke(x, &wire.Node{Type: wire.NodeTypeLeaf, Leaf: ln})
		return
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	if first, _, _ := treemath.SubtreeLeaves(r); uint32(first) >= g.members {
		g.build(tb, l, ph) // right side empty: x stays blank
		return
	}
	if ph == nil {
		ph = []byte{}
	}
	p := &wire.ParentNode{EncryptionKey: g.hpkeKey(tb), ParentHash: ph, UnmergedLeaves: []uint32{}}
	g.t.poke(x, &wire.Node{Type: wire.NodeTypeParent, Parent: p})
	g.build(tb, r, nil)
	osth, err := g.t.hash(r)
	if err != nil {
		tb.Fatal(err)
	}
	mine, err := g.t.ParentHash(p, osth)
	if err != nil {
		tb.Fatal(err)
	}
	g.build(tb, l, mine)
}

// generateTree returns a valid tree of members members and their
// signature private keys.
func generateTree(tb testing.TB, s *suite.Suite, members int) (*Tree, [][]byte) {
	tb.Helper()
	lc := treemath.LeafCount(1)
	for int(lc) < members {
		lc *= 2
	}
	w := treemath.NodeWidth(lc)
	g := &generator{
		s:       s,
		t:       blankTree(s, int(w)),
		members: uint32(members),
		sigPriv: make([][]byte, members),
	}
	root, _ := treemath.Root(lc)
	g.build(tb, root, nil)
	return g.t, g.sigPriv
}

type genKey struct {
	id      suite.ID
	members int
}

type genTree struct {
	t    *Tree
	priv [][]byte
}

var (
	genMu    sync.Mutex
	genCache = map[genKey]genTree{}
)

// cachedTree returns a clone of the generated tree for (suite 1, members),
// generating it once per test binary.
func cachedTree(tb testing.TB, members int) (*Tree, [][]byte) {
	tb.Helper()
	s := suite1(tb)
	genMu.Lock()
	defer genMu.Unlock()
	k := genKey{s.ID(), members}
	g, ok := genCache[k]
	if !ok {
		t, priv := generateTree(tb, s, members)
		g = genTree{t, priv}
		genCache[k] = g
	}
	return g.t.Clone(), g.priv
}

func suite1(tb testing.TB) *suite.Suite {
	tb.Helper()
	s, err := suite.New(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestGeneratedTreeValid(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 7, 8, 13, 33, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			tr, _ := generateTree(t, suite1(t), n)
			if err := tr.Validate(ValidateOptions{GroupID: genGroupID}); err != nil {
				t.Fatal(err)
			}
			// Survives an encode/decode round trip.
			enc, err := tr.Encode()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Decode(tr.Suite(), enc)
			if err != nil {
				t.Fatal(err)
			}
			if err := back.Validate(ValidateOptions{GroupID: genGroupID}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// blankTree returns a tree of n blank nodes, for generators that fill it
// with poke.
func blankTree(s *suite.Suite, n int) *Tree {
	t := &Tree{suite: s, own: new(owner)}
	t.resize(n)
	t.keys = newKeyIndex(t)
	return t
}

// poke stores nd at x without invalidating cached hashes (tests build or
// tamper with trees through it); the key index follows.
func (t *Tree) poke(x treemath.NodeIndex, nd *wire.Node) {
	c := t.writable(x)
	old := c.nodes[x&chunkMask]
	c.nodes[x&chunkMask] = nd
	t.keys.update(t, x, old, nd)
}
