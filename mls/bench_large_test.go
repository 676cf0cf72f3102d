package mls

import (
	"bytes"
	"fmt"
	"math/bits"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls/internal/treekem"
	"github.com/parley-chat/parley/mls/internal/treemath"
)

// Large-group benchmarks (issue 3): groups of 2 to 10,000 members, with a
// bare tree (one creator added everyone, every parent blank) and a full tree
// (every parent that can be non-blank was set by a real commit), on suite 1
// and on X-Wing (TBD1).
//
//	go test -run '^$' -bench LargeGroup -benchtime 10x ./mls/
//	go test -run '^$' -bench 'LargeGroup/suite1/n=10000/full' -benchtime 10x -cpuprofile cpu.out ./mls/
//
// Each group is built once per process and cached. -short skips 10,000.

var largeSizes = []int{2, 10, 100, 1000, 10000}

var largeSuites = []struct {
	name string
	cs   CipherSuite
}{
	{"suite1", MLS128DHKEMX25519AES128GCMSHA256Ed25519},
	{"xwing", MLS128MLKEM768X25519AES128GCMSHA256Ed25519},
}

// largeGroup is a built group: the states a benchmark needs.
type largeGroup struct {
	cfg *Config
	// committer is the member at the last leaf, n-1; processor is the
	// creator at leaf 0, as far from the committer as the tree allows.
	committer, processor *Group
	build                time.Duration
	commits              int // commits needed to build
}

type largeKey struct {
	cs   CipherSuite
	n    int
	full bool
}

var (
	largeMu    sync.Mutex
	largeCache = map[largeKey]*largeGroup{}
)

// getLargeGroup builds (once per process) or returns the cached group.
func getLargeGroup(tb testing.TB, cs CipherSuite, n int, full bool) *largeGroup {
	tb.Helper()
	largeMu.Lock()
	defer largeMu.Unlock()
	k := largeKey{cs, n, full}
	if lg := largeCache[k]; lg != nil {
		return lg
	}
	start := time.Now()
	lg := buildLargeGroup(tb, cs, n, full)
	lg.build = time.Since(start)
	tb.Logf("built %d-member group (suite %#04x, full=%v) with %d commits in %v", n, uint16(cs), full, lg.commits, lg.build)
	largeCache[k] = lg
	return lg
}

// buildLargeGroup creates the group bare: the creator adds everyone in
// batches of commits without a path, so every parent node is blank. For a
// full tree, one member under every level-1 parent then commits with a path,
// in bit-reversed order so that the high nodes fill first and each commit's
// copath resolutions stay small; the member at leaf n-1 commits last. Every
// commit is a real Commit processed with full validation by the creator.
//
// A member needs only the group's public state, the epoch's init secret and
// its own leaf key to create a commit, so each filling committer borrows the
// creator's current epoch state with its own leaf key and signer (what it
// would hold had it processed every commit since it was added), instead of
// keeping 5,000 members in step: that would be quadratic. The resulting tree
// is checked to be full and, by the join benchmark, to pass full validation.
func buildLargeGroup(tb testing.TB, cs CipherSuite, n int, full bool) *largeGroup {
	cfg := &Config{}
	signer, err := GenerateSigner(cs)
	if err != nil {
		tb.Fatal(err)
	}
	creator, err := CreateGroup(cfg, cs, []byte(fmt.Sprintf("large-%d-%v", n, full)), signer, BasicCredential([]byte("m0")), CreateOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	lg := &largeGroup{cfg: cfg, processor: creator}
	kps := make([]*KeyPackageBundle, n)
	for i := 1; i < n; i++ {
		kps[i] = largeKP(tb, cfg, cs, fmt.Sprintf("m%d", i))
	}
	const batch = 1000
	var lastWelcome []byte
	for i := 1; i < n; i += batch {
		var add [][]byte
		for j := i; j < min(i+batch, n); j++ {
			add = append(add, kps[j].KeyPackage)
		}
		last := i+batch >= n
		pc, err := creator.Commit(CommitOptions{Add: add, InlineRatchetTree: last && !full})
		if err != nil {
			tb.Fatal(err)
		}
		if err := creator.MergePendingCommit(pc); err != nil {
			tb.Fatal(err)
		}
		lg.commits++
		lastWelcome = pc.Welcome
	}
	if !full {
		lg.committer, err = JoinFromWelcome(cfg, lastWelcome, kps[n-1], JoinOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		checkLargePair(tb, lg)
		return lg
	}

	// Fill: one committer per pair of leaves (2k, 2k+1); the last pair's
	// committer is leaf n-1 and goes last.
	pairs := (n + 1) / 2
	width := 1 << bits.Len(uint(pairs-1))
	var order []int
	for r := range width {
		k := int(bits.Reverse(uint(r)) >> (bits.UintSize - bits.Len(uint(width-1))))
		if width == 1 {
			k = 0
		}
		if k < pairs-1 {
			order = append(order, k)
		}
	}
	order = append(order, pairs-1)
	for _, k := range order {
		leaf := LeafIndex(2 * k)
		if k == pairs-1 {
			leaf = LeafIndex(n - 1)
		}
		if leaf == 0 {
			pc, err := creator.Commit(CommitOptions{ForcePath: true})
			if err != nil {
				tb.Fatal(err)
			}
			if err := creator.MergePendingCommit(pc); err != nil {
				tb.Fatal(err)
			}
			lg.commits++
			continue
		}
		m := borrowState(tb, creator, leaf, kps[leaf])
		pc, err := m.Commit(CommitOptions{ForcePath: true})
		if err != nil {
			tb.Fatalf("fill commit by leaf %d: %v", leaf, err)
		}
		p, err := creator.Process(pc.Message)
		if err != nil {
			tb.Fatalf("process fill commit by leaf %d: %v", leaf, err)
		}
		if err := creator.MergeStagedCommit(p.Commit); err != nil {
			tb.Fatal(err)
		}
		lg.commits++
		if leaf == LeafIndex(n-1) {
			// The last committer keeps its state: merging its own
			// commit gives it the whole new path's secrets.
			if err := m.MergePendingCommit(pc); err != nil {
				tb.Fatal(err)
			}
			lg.committer = m
		}
	}
	checkFull(tb, creator)
	checkLargePair(tb, lg)
	return lg
}

// borrowState returns a Group for the member at leaf, at the creator's
// current epoch, holding only its own leaf key. The epoch keys are shared
// with the creator: the creator must process the borrowed member's commit
// before the member merges it.
func borrowState(tb testing.TB, creator *Group, leaf LeafIndex, kp *KeyPackageBundle) *Group {
	tb.Helper()
	priv, err := treekem.NewPrivate(creator.c.cs, leaf, kp.EncryptionPrivateKey)
	if err != nil {
		tb.Fatal(err)
	}
	return &Group{cfg: creator.cfg, c: creator.c, signer: kp.Signer, priv: priv, keys: creator.keys}
}

// checkFull asserts that every parent node that a commit can set (both
// children's subtrees hold a member) is non-blank.
func checkFull(tb testing.TB, g *Group) {
	tb.Helper()
	t := g.c.tree
	for x := 1; x < t.NodeCount(); x += 2 {
		nx := treemath.NodeIndex(x)
		if !t.Blank(nx) {
			continue
		}
		l, _ := treemath.Left(nx)
		r, _ := treemath.Right(nx)
		if int(r) < t.NodeCount() && len(t.Resolution(l)) > 0 && len(t.Resolution(r)) > 0 {
			tb.Fatalf("parent node %d is blank in the full tree", x)
		}
	}
}

func checkLargePair(tb testing.TB, lg *largeGroup) {
	tb.Helper()
	c, p := lg.committer, lg.processor
	if c.Epoch() != p.Epoch() || !bytes.Equal(c.EpochAuthenticator(), p.EpochAuthenticator()) || !bytes.Equal(c.TreeHash(), p.TreeHash()) {
		tb.Fatalf("committer (leaf %d) and processor (leaf %d) disagree at epoch %d/%d", c.OwnLeaf(), p.OwnLeaf(), c.Epoch(), p.Epoch())
	}
}

func largeKP(tb testing.TB, cfg *Config, cs CipherSuite, name string) *KeyPackageBundle {
	tb.Helper()
	s, err := GenerateSigner(cs)
	if err != nil {
		tb.Fatal(err)
	}
	kp, err := NewKeyPackage(cfg, cs, s, BasicCredential([]byte(name)), KeyPackageOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return kp
}

// BenchmarkLargeGroup measures commit creation (self-update, add one,
// remove one), their processing by the member farthest from the committer,
// the Welcome's size and joining from it (full tree validation included).
func BenchmarkLargeGroup(b *testing.B) {
	for _, su := range largeSuites {
		b.Run(su.name, func(b *testing.B) {
			for _, n := range largeSizes {
				b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
					if n >= 10000 && testing.Short() {
						b.Skip("10,000 members skipped under -short")
					}
					for _, full := range []bool{true, false} {
						shape := "bare"
						if full {
							shape = "full"
						}
						b.Run(shape, func(b *testing.B) {
							benchLarge(b, getLargeGroup(b, su.cs, n, full), su.cs, n)
						})
					}
				})
			}
		})
	}
}

func benchLarge(b *testing.B, lg *largeGroup, cs CipherSuite, n int) {
	c, p := lg.committer, lg.processor
	newKP := largeKP(b, lg.cfg, cs, "newcomer")
	victim := LeafIndex((n - 1) / 2)
	kinds := []struct {
		name string
		opts CommitOptions
	}{
		{"update", CommitOptions{ForcePath: true}},
		{"add", CommitOptions{Add: [][]byte{newKP.KeyPackage}, InlineRatchetTree: true}},
		{"remove", CommitOptions{Remove: []LeafIndex{victim}}},
	}
	var welcome []byte
	for _, k := range kinds {
		b.Run("create-"+k.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pc, err := c.Commit(k.opts)
				if err != nil {
					b.Fatal(err)
				}
				c.DiscardPendingCommit(pc)
			}
		})
		pc, err := c.Commit(k.opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("process-"+k.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pr, err := p.Process(pc.Message)
				if err != nil {
					b.Fatal(err)
				}
				if pr.Kind != KindCommit {
					b.Fatal("not a commit")
				}
			}
		})
		if k.name == "add" {
			welcome = pc.Welcome
		}
		c.DiscardPendingCommit(pc)
	}
	rt, err := c.RatchetTree()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("join", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g, err := JoinFromWelcome(lg.cfg, welcome, newKP, JoinOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if g.Epoch() != c.Epoch()+1 {
				b.Fatal("joined the wrong epoch")
			}
		}
		b.ReportMetric(float64(len(welcome)), "welcome-B")
		b.ReportMetric(float64(len(rt)), "tree-B")
	})
}

// BenchmarkCommitAddBatch creates a commit adding k members at once to a
// one-member group. Its cost per added member should be flat: each
// KeyPackageRef is computed once and duplicates found through a set (the
// duplicate-Add check of RFC 9420 §12.2), and key uniqueness is checked
// through the trees' key indexes.
func BenchmarkCommitAddBatch(b *testing.B) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	cfg := &Config{}
	for _, k := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("adds=%d", k), func(b *testing.B) {
			signer, _ := GenerateSigner(cs)
			g, err := CreateGroup(cfg, cs, []byte("batch"), signer, BasicCredential([]byte("m0")), CreateOptions{})
			if err != nil {
				b.Fatal(err)
			}
			var add [][]byte
			for i := range k {
				add = append(add, largeKP(b, cfg, cs, fmt.Sprintf("m%d", i+1)).KeyPackage)
			}
			b.ReportAllocs()
			for b.Loop() {
				pc, err := g.Commit(CommitOptions{Add: add})
				if err != nil {
					b.Fatal(err)
				}
				g.DiscardPendingCommit(pc)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(k), "ns/add")
		})
	}
}
