package mls

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treekem"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// fullGroupPair builds an n-member group whose tree is full (every parent
// node non-blank, as after every member has committed) and returns the
// states of two members, leaf 0 and leaf n-1, that agree on the epoch.
// Parent hashes are not set: processing a commit does not re-check them
// outside the new path.
func fullGroupPair(tb testing.TB, cs CipherSuite, n int) (*Group, *Group) {
	s, _ := suite.New(cs)
	cfg, _ := (&Config{}).normalized()
	sigs := make([]*Signer, n)
	encPrivs := make([][]byte, n)
	var t *tree.Tree
	for i := range n {
		sg, _ := GenerateSigner(cs)
		sigs[i] = sg
		ep, pub, _ := s.GenerateHPKEKey()
		encPrivs[i] = ep
		ln := &wire.LeafNode{
			EncryptionKey: pub, SignatureKey: sg.pub, Credential: BasicCredential([]byte(fmt.Sprint(i))).wire(),
			Capabilities: buildCapabilities(cs, CredentialBasic, KeyPackageOptions{}),
			Source:       wire.LeafNodeSourceKeyPackage, Lifetime: &wire.Lifetime{NotBefore: 0, NotAfter: 1 << 62},
		}
		if err := ln.Sign(s, sg.priv, nil, 0); err != nil {
			tb.Fatal(err)
		}
		if i == 0 {
			t, _ = tree.New(s, ln)
		} else if _, err := t.AddLeaf(ln); err != nil {
			tb.Fatal(err)
		}
	}
	secrets := map[treemath.NodeIndex][]byte{}
	for x := 1; x < t.NodeCount(); x += 2 {
		ps := make([]byte, s.HashSize())
		rand.Read(ps)
		ns, _ := s.DeriveSecret(ps, "node")
		_, pub, _ := s.DeriveKeyPair(ns)
		if err := t.SetParent(treemath.NodeIndex(x), &wire.ParentNode{EncryptionKey: pub, ParentHash: []byte{}, UnmergedLeaves: []uint32{}}); err != nil {
			tb.Fatal(err)
		}
		secrets[treemath.NodeIndex(x)] = ps
	}
	th, _ := t.TreeHash()
	gc := wire.GroupContext{Version: wire.ProtocolVersionMLS10, CipherSuite: cs, GroupID: []byte("bench"), Epoch: 5, TreeHash: th, ConfirmedTranscriptHash: make([]byte, s.HashSize()), Extensions: wire.Extensions{}}
	es := make([]byte, s.HashSize())
	rand.Read(es)
	mk := func(leaf LeafIndex) *Group {
		priv, err := treekem.NewPrivate(s, leaf, encPrivs[leaf])
		if err != nil {
			tb.Fatal(err)
		}
		dp, _ := treemath.DirectPath(leaf.Node(), t.LeafCount())
		for _, x := range dp {
			if x < treemath.NodeIndex(t.NodeCount()) {
				if err := priv.SetPathSecret(x, secrets[x]); err != nil {
					tb.Fatal(err)
				}
			}
		}
		co, err := newCore(cfg, s, gc, t.Clone(), make([]byte, s.HashSize()))
		if err != nil {
			tb.Fatal(err)
		}
		sched, _ := schedule.FromEpochSecret(s, schedule.EpochSecret(es))
		g := &Group{cfg: cfg, signer: sigs[leaf]}
		if err := g.install(co, sched, priv); err != nil {
			tb.Fatal(err)
		}
		return g
	}
	return mk(0), mk(LeafIndex(n - 1))
}

func BenchmarkSelfUpdateFullTree(b *testing.B) {
	for _, cs := range []CipherSuite{MLS128DHKEMX25519AES128GCMSHA256Ed25519, MLS128MLKEM768X25519AES128GCMSHA256Ed25519} {
		for _, n := range []int{2, 10, 100, 1000, 10000} {
			a, r := fullGroupPair(b, cs, n)
			pc, err := a.Commit(CommitOptions{ForcePath: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("suite=%#04x/n=%d/create", uint16(cs), n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					pc, err := a.Commit(CommitOptions{ForcePath: true})
					if err != nil {
						b.Fatal(err)
					}
					a.DiscardPendingCommit(pc)
				}
			})
			b.Run(fmt.Sprintf("suite=%#04x/n=%d/process", uint16(cs), n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					p, err := r.Process(pc.Message)
					if err != nil {
						b.Fatal(err)
					}
					_ = p
				}
			})
			// Sanity: the staged commit merges and both agree.
			p, err := r.Process(pc.Message)
			if err != nil {
				b.Fatal(err)
			}
			if err := r.MergeStagedCommit(p.Commit); err != nil {
				b.Fatal(err)
			}
			if err := a.MergePendingCommit(pc); err != nil {
				b.Fatal(err)
			}
			if !equalBytes(a.EpochAuthenticator(), r.EpochAuthenticator()) {
				b.Fatal("disagree")
			}
		}
	}
}
