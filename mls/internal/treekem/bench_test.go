package treekem

import (
	"bytes"
	"sync"
	"testing"

	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/treemath"
)

const benchLeaves = 1024

// The benchmark groups take a while to build (the full one runs 1,024
// commits), so each is built once per test binary.
var (
	benchFullOnce, benchBareOnce sync.Once
	benchFull, benchBare         *group
)

func fullGroup(b *testing.B) *group {
	benchFullOnce.Do(func() {
		benchFull = newFullGroup(b, mustSuite(b, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519), benchLeaves, 1024)
	})
	if benchFull == nil {
		b.Fatal("full group not built")
	}
	return benchFull
}

func bareGroup(b *testing.B) *group {
	benchBareOnce.Do(func() {
		benchBare = newGroup(b, mustSuite(b, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519), benchLeaves, 1025, false)
	})
	if benchBare == nil {
		b.Fatal("bare group not built")
	}
	return benchBare
}

// BenchmarkCreateUpdatePath creates an UpdatePath from leaf 0 of a
// 1,024-member group (suite 1). full: every parent node is non-blank, so
// each copath resolution is one node (10 encryptions). bare: every
// parent is blank, so the resolutions are the other 1,023 leaves; the
// encryptions use every core (GOMAXPROCS), or one in bare-1024-serial.
func BenchmarkCreateUpdatePath(b *testing.B) {
	for _, bc := range []struct {
		name    string
		group   func(*testing.B) *group
		cts     int
		workers int
	}{
		{"full-1024", fullGroup, 10, 0},
		{"bare-1024", bareGroup, benchLeaves - 1, 0},
		{"bare-1024-serial", bareGroup, benchLeaves - 1, 1}, // for comparison
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := bc.group(b)
			p := CreateParams{
				Leaf:                g.tr.Leaf(0),
				SignaturePrivateKey: g.sig[0],
				GroupID:             testGroupID,
				Context:             g.context(),
				Workers:             bc.workers,
			}
			b.ReportAllocs()
			for b.Loop() {
				u, err := CreateUpdatePath(g.tr, 0, p)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for _, nd := range u.Path.Nodes {
					n += len(nd.EncryptedPathSecret)
				}
				if n != bc.cts {
					b.Fatalf("%d ciphertexts, want %d", n, bc.cts)
				}
				u.Zero()
			}
		})
	}
}

// BenchmarkApplyUpdatePath processes, in the full 1,024-member group, an
// UpdatePath of leaf 1022 at its sibling leaf 1023: the worst case for a
// recipient, which decrypts at the lowest node and derives all 10 node
// key pairs up to the root.
func BenchmarkApplyUpdatePath(b *testing.B) {
	b.Run("full-1024", func(b *testing.B) {
		g := fullGroup(b)
		const sender, me = treemath.LeafIndex(benchLeaves - 2), treemath.LeafIndex(benchLeaves - 1)
		u := g.create(b, sender)
		p := g.priv[me]
		params := ApplyParams{GroupID: testGroupID, Context: g.context()}
		b.ReportAllocs()
		for b.Loop() {
			a, err := ApplyUpdatePath(g.tr, p, sender, u.Path, params)
			if err != nil {
				b.Fatal(err)
			}
			if !bytes.Equal(a.CommitSecret, u.CommitSecret) {
				b.Fatal("commit secret differs")
			}
			a.Zero()
		}
	})
}

// TestFullGroup checks the benchmark's full tree: every parent non-blank,
// without unmerged leaves, parent-hash valid; and the tracked state.
func TestFullGroup(t *testing.T) {
	n := 64
	if testing.Short() {
		n = 16
	}
	g := newFullGroup(t, mustSuite(t, suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519), n, 7)
	for x := 1; x < g.tr.NodeCount(); x += 2 {
		p := g.tr.ParentNode(treemath.NodeIndex(x))
		if p == nil || len(p.UnmergedLeaves) != 0 {
			t.Fatalf("node %d: %+v", x, p)
		}
	}
	checkGroup(t, g)
}
