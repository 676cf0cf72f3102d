package schedule

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/treemath"
)

// encodeTree returns t's SecretTreeState.
func encodeTree(t testing.TB, tree *SecretTree) []byte {
	t.Helper()
	b := codec.NewBuilder(nil)
	tree.EncodeState(b)
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decodeTree restores a tree from encodeTree's output.
func decodeTree(t testing.TB, tree []byte, cfg Config) *SecretTree {
	t.Helper()
	s := newSuite(t, 1)
	r := codec.NewReader(tree)
	st := DecodeSecretTree(s, cfg, r)
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	return st
}

// availability lists, for every leaf, ratchet and generation below gens,
// the key Peek returns, or nothing if Peek fails: what the tree can still
// decrypt. Peek changes nothing.
func availability(tree *SecretTree, gens uint32) map[string]string {
	out := map[string]string{}
	for l := range treemath.LeafIndex(tree.LeafCount()) {
		for _, kind := range []ContentKind{Handshake, Application} {
			for g := range gens {
				kn, err := tree.Peek(l, kind, g)
				if err == nil {
					out[fmt.Sprintf("%d/%s/%d", l, kind, g)] = fmt.Sprintf("%x/%x", kn.Key, kn.Nonce)
				}
			}
		}
	}
	return out
}

// TestCheckNotBehindFirstUse is the unit case of the bug: the first use of
// a leaf splits node secrets down to it, and a state saved before still
// holds their ancestor.
func TestCheckNotBehindFirstUse(t *testing.T) {
	s := newSuite(t, 1)
	cfg := DefaultConfig()
	tree, _ := newTree(t, s, 4, cfg)
	before := encodeTree(t, tree)
	if _, _, err := tree.Next(0, Application); err != nil {
		t.Fatal(err)
	}
	after := encodeTree(t, tree)
	earlier, later := decodeTree(t, before, cfg), decodeTree(t, after, cfg)
	if err := later.CheckNotBehind(earlier); err != nil {
		t.Fatalf("state after the first use applied to the state before: %v", err)
	}
	if err := earlier.CheckNotBehind(later); !errors.Is(err, ErrBehind) {
		t.Fatalf("state before the first use applied to the state after: err = %v, want ErrBehind", err)
	}
	// Another leaf's first use splits further down the other side.
	if _, err := tree.Key(3, Handshake, 2); err != nil {
		t.Fatal(err)
	}
	latest := decodeTree(t, encodeTree(t, tree), cfg)
	for _, cur := range []*SecretTree{earlier, later} {
		if err := latest.CheckNotBehind(cur); err != nil {
			t.Fatalf("latest state: %v", err)
		}
		if err := cur.CheckNotBehind(latest); !errors.Is(err, ErrBehind) {
			t.Fatalf("older state applied to the latest: err = %v, want ErrBehind", err)
		}
	}
}

// TestCheckNotBehindCrafted checks states that no tree reaches by its own
// operations: states of another tree, or that lost secrets the current
// state can still derive, are refused as inconsistent rather than behind;
// a state that derives what a current state without secrets cannot is
// refused as behind.
func TestCheckNotBehindCrafted(t *testing.T) {
	s := newSuite(t, 1)
	cfg := DefaultConfig()
	// empty is a tree of n leaves that holds nothing and started no leaf.
	empty := func(n uint32) *SecretTree {
		b := codec.NewBuilder(nil)
		b.AddUint32(n)
		b.AddVector(func(*codec.Builder) {})
		b.AddVector(func(*codec.Builder) {})
		state, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return decodeTree(t, state, cfg)
	}
	fresh, _ := newTree(t, s, 4, cfg)
	other, _ := newTree(t, s, 8, cfg)
	for name, err := range map[string]error{
		"other leaf count": other.CheckNotBehind(fresh),
		"lost secrets":     empty(4).CheckNotBehind(fresh),
	} {
		if err == nil || errors.Is(err, ErrBehind) {
			t.Errorf("%s: err = %v, want an error not wrapping ErrBehind", name, err)
		}
	}
	// A one-leaf tree whose leaf started holds no node secret: only its
	// started leaf shows it derives more than a tree without secrets.
	single, _ := newTree(t, s, 1, cfg)
	if _, _, err := single.Next(0, Application); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"node secret onto a tree without secrets":  fresh.CheckNotBehind(empty(4)),
		"started leaf onto a tree without secrets": single.CheckNotBehind(empty(1)),
	} {
		if !errors.Is(err, ErrBehind) {
			t.Errorf("%s: err = %v, want ErrBehind", name, err)
		}
	}
}

// TestCheckNotBehindRandom drives secret trees with random Next, Key,
// Consume and Peek calls, takes snapshots of their state at random points
// (the full state and the ratchet state of the mls package carry the same
// SecretTreeState), forks some of them into histories of their own, and
// checks every pair of snapshots:
//
//   - a later state of the same history applied to an earlier one is
//     accepted and restores exactly the later state's keys;
//   - an earlier state applied to a later one that moved on is refused
//     with ErrBehind (an equal one is accepted);
//   - whatever is accepted never yields a key the current state could not.
func TestCheckNotBehindRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	s := newSuite(t, 1)
	const (
		n    = 8
		gens = 40 // generations checked for availability; ops stay below
	)
	// MaxForward covers every generation checked, so that availability
	// depends on what was consumed, not on how far a ratchet is.
	cfg := Config{Window: 6, MaxForward: gens}
	steps, maxSnaps := 400, 36
	if testing.Short() {
		steps, maxSnaps = 200, 20
	}
	type snap struct {
		id    int
		state []byte
		avail map[string]string // of the live tree when taken
		hist  map[int]bool      // snapshots this one follows, itself included
	}
	type branch struct {
		tree *SecretTree
		hist map[int]bool
	}
	root, _ := newTree(t, s, n, cfg)
	branches := []*branch{{tree: root, hist: map[int]bool{}}}
	var snaps []*snap
	take := func(b *branch) {
		id := len(snaps)
		b.hist[id] = true
		snaps = append(snaps, &snap{id: id, state: encodeTree(t, b.tree), avail: availability(b.tree, gens), hist: maps.Clone(b.hist)})
	}
	take(branches[0])
	for i := 0; i < steps && len(snaps) < maxSnaps; i++ {
		b := branches[rng.IntN(len(branches))]
		leaf, kind := treemath.LeafIndex(rng.IntN(n)), ContentKind(1+rng.IntN(2))
		var next uint64
		if r := b.tree.started(leaf, kind); r != nil {
			next = r.next
		}
		g := uint32(max(0, int(next)-8+rng.IntN(14)))
		switch op := rng.IntN(40); {
		case op < 12:
			if g < gens {
				_, _ = b.tree.Key(leaf, kind, g)
			}
		case op < 24:
			if g < gens {
				_ = b.tree.Consume(leaf, kind, g)
			}
		case op < 32:
			if next < gens {
				if _, _, err := b.tree.Next(leaf, kind); err != nil {
					t.Fatalf("seed %d: Next(%d, %s): %v", seed, leaf, kind, err)
				}
			}
		case op < 34:
			if g < gens {
				_, _ = b.tree.Peek(leaf, kind, g)
			}
		case op < 36:
			// A restart of this history: it goes on from its stored state.
			b.tree = decodeTree(t, encodeTree(t, b.tree), cfg)
		case op < 37:
			// A fork: another history from the same state.
			branches = append(branches, &branch{tree: decodeTree(t, encodeTree(t, b.tree), cfg), hist: maps.Clone(b.hist)})
		default:
			take(b)
		}
	}
	for _, b := range branches {
		take(b)
	}
	t.Logf("%d snapshots in %d histories", len(snaps), len(branches))

	trees := make([]*SecretTree, len(snaps))
	for i, sn := range snaps {
		trees[i] = decodeTree(t, sn.state, cfg)
		if got := availability(trees[i], gens); !maps.Equal(got, sn.avail) {
			t.Fatalf("seed %d: snapshot %d restored with other keys than the live tree had", seed, sn.id)
		}
	}
	var forward, backward int // pairs of one history that moved on
	for _, a := range snaps {
		for _, c := range snaps {
			// Apply a (the ratchet state) onto c (the full state).
			before := encodeTree(t, trees[c.id])
			err := trees[a.id].CheckNotBehind(trees[c.id])
			if after := encodeTree(t, trees[c.id]); !bytes.Equal(before, after) {
				t.Fatalf("seed %d: CheckNotBehind changed the current tree", seed)
			}
			if err != nil && !errors.Is(err, ErrBehind) {
				t.Fatalf("seed %d: snapshot %d onto %d: %v, want nil or ErrBehind", seed, a.id, c.id, err)
			}
			switch {
			case a.hist[c.id]:
				if err != nil {
					t.Fatalf("seed %d: later snapshot %d onto earlier %d: %v", seed, a.id, c.id, err)
				}
				if !bytes.Equal(a.state, c.state) {
					forward++
				}
			case c.hist[a.id]:
				if moved := !bytes.Equal(a.state, c.state); moved != (err != nil) {
					t.Fatalf("seed %d: earlier snapshot %d onto later %d (moved on: %v): err = %v", seed, a.id, c.id, moved, err)
				}
				if err != nil {
					backward++
				}
			}
			if err == nil {
				for k, v := range a.avail {
					if c.avail[k] != v {
						t.Fatalf("seed %d: snapshot %d accepted onto %d yields key %s that %d cannot", seed, a.id, c.id, k, c.id)
					}
				}
			}
		}
	}
	t.Logf("%d later states accepted onto earlier ones, %d earlier states refused", forward, backward)
	if forward == 0 || backward == 0 {
		t.Fatalf("seed %d: no history moved on between snapshots", seed)
	}
}
