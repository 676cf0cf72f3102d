package mls

import (
	"fmt"
	"testing"
)

// BenchmarkPublicTreeStore measures the Delivery Service follower's work per
// accepted commit in large groups (the groups of BenchmarkLargeGroup, full
// trees), storing the tree node by node against storing the whole state:
//
//   - nodes-<kind>: Process + Merge + TreeChanges + MarshalState, what a
//     follower that stores the tree per node does;
//   - whole-<kind>: Process + Merge + RatchetTree + MarshalBinary, what a
//     follower that stores the whole state and tree does;
//   - changes-<kind>: TreeChanges + MarshalState alone;
//
// with write-B the bytes each writes; load-changes-<kind>, the new epoch
// loaded by a follower that holds the epoch before in memory, from the
// stored state and the changed nodes (LoadPublicGroupChanges); and loading
// the follower from either store (load-nodes, load-whole) and
// EncodeRatchetTree of the stored nodes.
//
//	go test -run '^$' -bench PublicTreeStore/xwing/n=10000 -benchtime 20x ./mls/
//
// -short skips 10,000 members.
func BenchmarkPublicTreeStore(b *testing.B) {
	for _, su := range largeSuites {
		b.Run(su.name, func(b *testing.B) {
			for _, n := range []int{100, 1000, 10000} {
				b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
					if n >= 10000 && testing.Short() {
						b.Skip("10,000 members skipped under -short")
					}
					benchTreeStore(b, getLargeGroup(b, su.cs, n, true), su.cs, n)
				})
			}
		})
	}
}

func benchTreeStore(b *testing.B, lg *largeGroup, cs CipherSuite, n int) {
	gi, err := lg.processor.GroupInfo(GroupInfoOptions{InlineRatchetTree: true})
	if err != nil {
		b.Fatal(err)
	}
	pg, err := NewPublicGroup(lg.cfg, gi, nil)
	if err != nil {
		b.Fatal(err)
	}
	base := pg.c
	c := lg.committer
	newKP := largeKP(b, lg.cfg, cs, "newcomer")
	kinds := []struct {
		name string
		opts CommitOptions
	}{
		{"update", CommitOptions{ForcePath: true}},
		{"add", CommitOptions{Add: [][]byte{newKP.KeyPackage}}},
		{"remove", CommitOptions{Remove: []LeafIndex{LeafIndex((n - 1) / 2)}}},
	}
	for _, k := range kinds {
		pc, err := c.Commit(k.opts)
		if err != nil {
			b.Fatal(err)
		}
		// commit processes and merges the commit at the follower, from
		// the same epoch every time.
		commit := func(b *testing.B) *PublicChange {
			pg.c = base
			ch, err := pg.Process(pc.Message)
			if err != nil {
				b.Fatal(err)
			}
			if err := pg.Merge(ch); err != nil {
				b.Fatal(err)
			}
			return ch
		}
		b.Run("nodes-"+k.name, func(b *testing.B) {
			b.ReportAllocs()
			written := 0
			for b.Loop() {
				ch := commit(b)
				changes, err := ch.TreeChanges()
				if err != nil {
					b.Fatal(err)
				}
				st, err := pg.MarshalState()
				if err != nil {
					b.Fatal(err)
				}
				written = len(st)
				for _, nd := range changes {
					written += 4 + len(nd.Data)
				}
			}
			b.ReportMetric(float64(written), "write-B")
		})
		b.Run("whole-"+k.name, func(b *testing.B) {
			b.ReportAllocs()
			written := 0
			for b.Loop() {
				commit(b)
				rt, err := pg.RatchetTree()
				if err != nil {
					b.Fatal(err)
				}
				st, err := pg.MarshalBinary()
				if err != nil {
					b.Fatal(err)
				}
				written = len(rt) + len(st)
			}
			b.ReportMetric(float64(written), "write-B")
		})
		ch := commit(b)
		b.Run("changes-"+k.name, func(b *testing.B) {
			b.ReportAllocs()
			nodes := 0
			for b.Loop() {
				changes, err := ch.TreeChanges()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := pg.MarshalState(); err != nil {
					b.Fatal(err)
				}
				nodes = len(changes)
			}
			b.ReportMetric(float64(nodes), "nodes")
		})
		// A follower that holds the epoch before in memory (another
		// node accepted the commit) loads the new epoch from its stored
		// state and the changed nodes.
		changes, err := ch.TreeChanges()
		if err != nil {
			b.Fatal(err)
		}
		next, err := pg.MarshalState()
		if err != nil {
			b.Fatal(err)
		}
		b.Run("load-changes-"+k.name, func(b *testing.B) {
			b.ReportAllocs()
			prev := &PublicGroup{c: base}
			for b.Loop() {
				if _, err := LoadPublicGroupChanges(lg.cfg, prev, next, changes); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(changes)), "nodes")
		})
		c.DiscardPendingCommit(pc)
	}
	pg.c = base
	state, err := pg.MarshalState()
	if err != nil {
		b.Fatal(err)
	}
	nodes, err := pg.TreeNodes()
	if err != nil {
		b.Fatal(err)
	}
	whole, err := pg.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("load-nodes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := LoadPublicGroupTree(lg.cfg, state, nodes); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(nodes)), "nodes")
	})
	b.Run("load-whole", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := LoadPublicGroup(lg.cfg, whole); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-tree", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeRatchetTree(nodes); err != nil {
				b.Fatal(err)
			}
		}
	})
}
