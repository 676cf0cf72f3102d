package schedule

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/treemath"
)

// This file persists the state of a secret tree and restores an Epoch, for
// the mls package's state encoding. Secrets are written as they are: the
// caller protects the encoding at rest.

// RestoreEpoch returns an Epoch of suite s holding the secrets of e (which
// it takes over, not copied), as a stored state recorded them. Every
// non-nil secret must be Nh bytes long; nil secrets (those not kept, such
// as JoinerSecret and WelcomeSecret once the epoch started) stay nil.
func RestoreEpoch(s *suite.Suite, e Epoch) (*Epoch, error) {
	const op = "restore epoch"
	if s == nil {
		return nil, fmt.Errorf("schedule: %s: nil cipher suite", op)
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{"joiner_secret", e.JoinerSecret}, {"welcome_secret", e.WelcomeSecret},
		{"sender_data_secret", e.SenderDataSecret}, {"encryption_secret", e.EncryptionSecret},
		{"exporter_secret", e.ExporterSecret}, {"external_secret", e.ExternalSecret},
		{"confirmation_key", e.ConfirmationKey}, {"membership_key", e.MembershipKey},
		{"resumption_psk", e.ResumptionPSK}, {"epoch_authenticator", e.EpochAuthenticator},
		{"init_secret", e.InitSecret},
	} {
		if f.b != nil {
			if err := checkLen(s, op, f.name, f.b); err != nil {
				return nil, err
			}
		}
	}
	e.suite = s
	return &e, nil
}

// EncodeState appends the tree's state (RFC 9420 §9.2: what is left of it)
// to b, deterministically:
//
//	struct {
//	    uint32 leaf_count;
//	    struct { uint32 node; opaque secret<V>; } nodes<V>;   // increasing node
//	    struct {
//	        uint32 leaf;
//	        Ratchet handshake;
//	        Ratchet application;
//	    } leaves<V>;                                          // increasing leaf
//	} SecretTreeState;
//
//	struct {
//	    optional<opaque secret<V>>;   // absent once exhausted
//	    uint64 next;                  // next generation not yet derived
//	    struct { uint32 generation; opaque key<V>; opaque nonce<V>; } kept<V>;  // increasing
//	} Ratchet;
//
// The encoding holds every secret the tree still holds and nothing it has
// deleted, so a restored tree can never derive a consumed key again.
func (t *SecretTree) EncodeState(b *codec.Builder) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b.AddUint32(uint32(t.n))
	b.AddVector(func(b *codec.Builder) {
		for _, x := range slices.Sorted(maps.Keys(t.nodes)) {
			b.AddUint32(uint32(x))
			b.AddOpaque(t.nodes[x])
		}
	})
	b.AddVector(func(b *codec.Builder) {
		for _, l := range slices.Sorted(maps.Keys(t.leaves)) {
			lr := t.leaves[l]
			b.AddUint32(uint32(l))
			lr.handshake.encode(b)
			lr.application.encode(b)
		}
	})
}

func (r *ratchet) encode(b *codec.Builder) {
	b.AddOptional(r.secret != nil, func(b *codec.Builder) { b.AddOpaque(r.secret) })
	b.AddUint64(r.next)
	b.AddVector(func(b *codec.Builder) {
		for _, g := range slices.Sorted(maps.Keys(r.skipped)) {
			kn := r.skipped[g]
			b.AddUint32(g)
			b.AddOpaque(kn.Key)
			b.AddOpaque(kn.Nonce)
		}
	})
}

// DecodeSecretTree reads a SecretTreeState written by EncodeState and
// returns the tree it describes, for suite s with the limits of cfg. It
// records an error in r for any inconsistency: a leaf count that is not a
// power of two, indices out of range or not strictly increasing, secrets
// or keys of the wrong size, a node secret held below another held node
// or a started leaf, kept generations at or past the ratchet's next one.
// Kept keys beyond cfg.Window are deleted at the ratchet's next advance.
// On error the result is nil.
func DecodeSecretTree(s *suite.Suite, cfg Config, r *codec.Reader) *SecretTree {
	if err := cfg.Validate(); err != nil {
		r.Fail(err)
		return nil
	}
	n := treemath.LeafCount(r.Uint32())
	if r.Err() != nil {
		return nil
	}
	if !n.Valid() {
		r.Failf("schedule: decode secret tree: leaf count %d is not a power of two in 1..%d", n, treemath.MaxLeaves)
		return nil
	}
	nh := s.HashSize()
	t := &SecretTree{suite: s, n: n, cfg: cfg, nodes: map[treemath.NodeIndex][]byte{}, leaves: map[treemath.LeafIndex]*leafRatchets{}}
	first, last := true, treemath.NodeIndex(0)
	r.VectorFunc(func(r *codec.Reader) {
		x := treemath.NodeIndex(r.Uint32())
		secret := r.Opaque()
		switch {
		case r.Err() != nil:
			return
		case !n.HasNode(x):
			r.Failf("schedule: decode secret tree: node %d out of range for %d leaves", x, n)
		case !first && x <= last:
			r.Failf("schedule: decode secret tree: node %d not after node %d", x, last)
		case len(secret) != nh:
			r.Failf("schedule: decode secret tree: node %d secret is %d bytes, want %d", x, len(secret), nh)
		default:
			t.nodes[x] = secret
			first, last = false, x
		}
	})
	firstLeaf, lastLeaf := true, treemath.LeafIndex(0)
	r.VectorFunc(func(r *codec.Reader) {
		l := treemath.LeafIndex(r.Uint32())
		var lr leafRatchets
		lr.handshake.decode(s, r)
		lr.application.decode(s, r)
		switch {
		case r.Err() != nil:
			return
		case !n.HasLeaf(l):
			r.Failf("schedule: decode secret tree: leaf %d out of range for %d leaves", l, n)
		case !firstLeaf && l <= lastLeaf:
			r.Failf("schedule: decode secret tree: leaf %d not after leaf %d", l, lastLeaf)
		default:
			t.leaves[l] = &lr
			firstLeaf, lastLeaf = false, l
		}
	})
	if r.Err() != nil {
		return nil
	}
	// A held secret has no held ancestor, and a started leaf neither holds
	// its own secret nor has a held ancestor (§9.2: deleted once used).
	for x := range t.nodes {
		if a, ok := t.heldStrictAncestor(x); ok {
			r.Failf("schedule: decode secret tree: node %d held below held node %d", x, a)
			return nil
		}
	}
	for l := range t.leaves {
		if _, held := t.nodes[l.Node()]; held {
			r.Failf("schedule: decode secret tree: started leaf %d still holds its tree secret", l)
			return nil
		}
		if a, ok := t.heldStrictAncestor(l.Node()); ok {
			r.Failf("schedule: decode secret tree: started leaf %d below held node %d", l, a)
			return nil
		}
	}
	return t
}

// heldStrictAncestor returns a proper ancestor of x whose secret is held.
func (t *SecretTree) heldStrictAncestor(x treemath.NodeIndex) (treemath.NodeIndex, bool) {
	for a, ok := treemath.Parent(x, t.n); ok; a, ok = treemath.Parent(a, t.n) {
		if _, held := t.nodes[a]; held {
			return a, true
		}
	}
	return 0, false
}

func (rt *ratchet) decode(s *suite.Suite, r *codec.Reader) {
	if r.Optional() {
		rt.secret = r.Opaque()
		if r.Err() == nil && len(rt.secret) != s.HashSize() {
			r.Failf("schedule: decode ratchet: secret is %d bytes, want %d", len(rt.secret), s.HashSize())
		}
	}
	rt.next = r.Uint64()
	if r.Err() != nil {
		return
	}
	if rt.next > 1<<32 || (rt.secret == nil) != (rt.next == 1<<32) {
		r.Failf("schedule: decode ratchet: next generation %d inconsistent with the secret's presence", rt.next)
		return
	}
	first, last := true, uint32(0)
	r.VectorFunc(func(r *codec.Reader) {
		g := r.Uint32()
		key, nonce := r.Opaque(), r.Opaque()
		switch {
		case r.Err() != nil:
			return
		case uint64(g) >= rt.next:
			r.Failf("schedule: decode ratchet: kept generation %d not below the next %d", g, rt.next)
		case !first && g <= last:
			r.Failf("schedule: decode ratchet: kept generation %d not after %d", g, last)
		case len(key) != s.AEADKeySize() || len(nonce) != s.AEADNonceSize():
			r.Failf("schedule: decode ratchet: generation %d key or nonce of the wrong size", g)
		default:
			if rt.skipped == nil {
				rt.skipped = map[uint32]KeyNonce{}
				rt.oldest = g
			}
			rt.skipped[g] = KeyNonce{Key: key, Nonce: nonce}
			first, last = false, g
		}
	})
}

// ErrBehind reports a secret tree state older than the one it would
// replace: restoring it could bring back a consumed key.
var ErrBehind = errors.New("schedule: secret tree state is behind")

// CheckNotBehind reports whether t may replace cur, the same epoch's tree
// in another state (as restored from a full state saved earlier). A tree
// only moves forward: a held node secret is split into its children's
// (§9.2, lazily, along the paths to the leaves used), a leaf's secret into
// its two ratchets, a ratchet advances and its kept keys are consumed.
// So t is not behind cur when
//
//   - every node secret t holds is held by cur or lies below one cur holds
//     (t has split further), never one cur has consumed;
//   - every leaf t has started is started in cur or lies below a node
//     secret cur holds;
//   - every leaf cur has started is started in t, each ratchet of t at a
//     generation at least cur's, keeping no key below cur's generation
//     that cur no longer keeps.
//
// A tree that passes never yields a key cur could not. Failing these, the
// error wraps ErrBehind. CheckNotBehind also checks that t is a state of
// the same tree that has lost nothing cur can still derive: the same suite
// and leaf count, and every node secret cur holds is held in t or split
// into secrets t holds and leaves t has started. Failing that, t is
// inconsistent with cur, not older, and the error does not wrap ErrBehind.
func (t *SecretTree) CheckNotBehind(cur *SecretTree) error {
	if t == cur {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur.mu.Lock()
	defer cur.mu.Unlock()
	if t.suite.ID() != cur.suite.ID() || t.n != cur.n {
		return fmt.Errorf("secret tree of %d leaves (suite %v) for one of %d leaves (suite %v)", t.n, t.suite, cur.n, cur.suite)
	}
	for _, x := range slices.Sorted(maps.Keys(t.nodes)) {
		if !cur.holdsAtOrAbove(x) {
			return fmt.Errorf("node %d secret already used: %w", x, ErrBehind)
		}
	}
	for _, l := range slices.Sorted(maps.Keys(t.leaves)) {
		if cur.leaves[l] == nil && !cur.holdsAtOrAbove(l.Node()) {
			return fmt.Errorf("leaf %d tree secret already used: %w", l, ErrBehind)
		}
	}
	for _, l := range slices.Sorted(maps.Keys(cur.leaves)) {
		clr := cur.leaves[l]
		tlr := t.leaves[l]
		if tlr == nil {
			return fmt.Errorf("leaf %d not started: %w", l, ErrBehind)
		}
		for _, p := range []struct {
			kind   ContentKind
			tr, cr *ratchet
		}{{Handshake, &tlr.handshake, &clr.handshake}, {Application, &tlr.application, &clr.application}} {
			if p.tr.next < p.cr.next {
				return fmt.Errorf("leaf %d %s ratchet at generation %d, want at least %d: %w", l, p.kind, p.tr.next, p.cr.next, ErrBehind)
			}
			for _, g := range slices.Sorted(maps.Keys(p.tr.skipped)) {
				if uint64(g) < p.cr.next {
					if _, ok := p.cr.skipped[g]; !ok {
						return fmt.Errorf("leaf %d %s generation %d already used: %w", l, p.kind, g, ErrBehind)
					}
				}
			}
		}
	}
	for _, x := range slices.Sorted(maps.Keys(cur.nodes)) {
		if y, ok := t.uncovered(x); ok {
			return fmt.Errorf("node %d secret lost: neither held nor split down to node %d", x, y)
		}
	}
	return nil
}

// holdsAtOrAbove reports whether the tree holds the secret of node x or
// of one of its ancestors: whether it can still derive x's secret.
func (t *SecretTree) holdsAtOrAbove(x treemath.NodeIndex) bool {
	if _, held := t.nodes[x]; held {
		return true
	}
	_, ok := t.heldStrictAncestor(x)
	return ok
}

// uncovered returns a node in the subtree of x that the tree neither holds
// nor has split into held secrets and started leaves, if there is one:
// the tree lost the secrets of that node. It visits only the nodes on the
// paths from x down to what the tree holds, and one path down to the node
// it returns.
func (t *SecretTree) uncovered(x treemath.NodeIndex) (treemath.NodeIndex, bool) {
	if _, held := t.nodes[x]; held {
		return 0, false
	}
	if l, isLeaf := x.Leaf(); isLeaf {
		return x, t.leaves[l] == nil
	}
	for _, child := range []func(treemath.NodeIndex) (treemath.NodeIndex, bool){treemath.Left, treemath.Right} {
		c, _ := child(x)
		if y, ok := t.uncovered(c); ok {
			return y, true
		}
	}
	return 0, false
}
