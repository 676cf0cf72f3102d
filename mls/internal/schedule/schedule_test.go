package schedule

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/treemath"
)

func testSecret(s *suite.Suite, b byte) []byte {
	return bytes.Repeat([]byte{b}, s.HashSize())
}

// referenceKey derives the key of (leaf, kind, gen) statelessly, straight
// from RFC 9420 §9 and §9.1: the inspection path the stateful tree is
// checked against.
func referenceKey(t testing.TB, s *suite.Suite, enc []byte, n treemath.LeafCount, leaf treemath.LeafIndex, kind ContentKind, gen uint32) KeyNonce {
	t.Helper()
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	nh := s.HashSize()
	x := leaf.Node()
	node, _ := treemath.Root(n)
	secret := enc
	for node != x {
		l, _ := treemath.Left(node)
		r, _ := treemath.Right(node)
		if treemath.InSubtree(x, l) {
			secret, node = must(s.ExpandWithLabel(secret, "tree", []byte("left"), nh)), l
		} else {
			secret, node = must(s.ExpandWithLabel(secret, "tree", []byte("right"), nh)), r
		}
	}
	secret = must(s.ExpandWithLabel(secret, kind.String(), nil, nh))
	for g := range gen {
		secret = must(s.DeriveTreeSecret(secret, "secret", g, nh))
	}
	return KeyNonce{
		Key:   must(s.DeriveTreeSecret(secret, "key", gen, s.AEADKeySize())),
		Nonce: must(s.DeriveTreeSecret(secret, "nonce", gen, s.AEADNonceSize())),
	}
}

func newTree(t testing.TB, s *suite.Suite, n treemath.LeafCount, cfg Config) (*SecretTree, []byte) {
	t.Helper()
	enc := testSecret(s, 0x42)
	tree, err := NewSecretTree(s, enc, n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tree, enc
}

func TestSecretTreeReplay(t *testing.T) {
	s := newSuite(t, 1)
	tree, enc := newTree(t, s, 4, DefaultConfig())
	kn, err := tree.Key(2, Application, 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceKey(t, s, enc, 4, 2, Application, 5); !bytes.Equal(kn.Key, want.Key) || !bytes.Equal(kn.Nonce, want.Nonce) {
		t.Fatal("key differs from the reference derivation")
	}
	if _, err := tree.Key(2, Application, 5); !errors.Is(err, ErrGenerationUsed) {
		t.Fatalf("replay of generation 5: err = %v, want ErrGenerationUsed", err)
	}
	// A skipped generation is served once, then counts as used.
	if _, err := tree.Key(2, Application, 3); err != nil {
		t.Fatalf("skipped generation 3: %v", err)
	}
	if _, err := tree.Key(2, Application, 3); !errors.Is(err, ErrGenerationUsed) {
		t.Fatalf("replay of generation 3: err = %v, want ErrGenerationUsed", err)
	}
	// The other ratchet and other leaves are independent.
	if _, err := tree.Key(2, Handshake, 5); err != nil {
		t.Fatalf("handshake generation 5: %v", err)
	}
	if _, err := tree.Key(1, Application, 5); err != nil {
		t.Fatalf("leaf 1 generation 5: %v", err)
	}
}

func TestSecretTreeWindow(t *testing.T) {
	s := newSuite(t, 1)
	cfg := Config{Window: 10, MaxForward: 100}
	tree, enc := newTree(t, s, 2, cfg)
	if _, err := tree.Key(0, Application, 20); err != nil {
		t.Fatal(err)
	}
	// next = 21: generations 11..20 lie in the window; 11..19 were kept.
	for g := uint32(0); g <= 10; g++ {
		if _, err := tree.Key(0, Application, g); !errors.Is(err, ErrGenerationExpired) {
			t.Fatalf("generation %d: err = %v, want ErrGenerationExpired", g, err)
		}
	}
	kn, err := tree.Key(0, Application, 11)
	if err != nil {
		t.Fatalf("generation 11 (oldest in window): %v", err)
	}
	if want := referenceKey(t, s, enc, 2, 0, Application, 11); !bytes.Equal(kn.Key, want.Key) {
		t.Fatal("kept key differs from the reference derivation")
	}
	r := tree.leaves[0].application
	if len(r.skipped) != 8 {
		t.Fatalf("%d skipped keys kept, want 8 (12..19)", len(r.skipped))
	}
	// next = 26: the window is 16..25, so 12..15 are evicted.
	if _, err := tree.Key(0, Application, 25); err != nil {
		t.Fatal(err)
	}
	for g := uint32(12); g <= 15; g++ {
		if _, err := tree.Key(0, Application, g); !errors.Is(err, ErrGenerationExpired) {
			t.Fatalf("generation %d after eviction: err = %v, want ErrGenerationExpired", g, err)
		}
	}
	for g := uint32(16); g <= 24; g++ {
		if g == 20 {
			continue
		}
		if _, err := tree.Key(0, Application, g); err != nil {
			t.Fatalf("generation %d in window: %v", g, err)
		}
	}
	if n := len(tree.leaves[0].application.skipped); n != 0 {
		t.Fatalf("%d skipped keys left, want 0", n)
	}
	// With a zero window nothing behind is kept.
	strict, _ := newTree(t, s, 2, Config{MaxForward: 100})
	if _, err := strict.Key(1, Handshake, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Key(1, Handshake, 2); !errors.Is(err, ErrGenerationExpired) {
		t.Fatalf("zero window: err = %v, want ErrGenerationExpired", err)
	}
}

func TestSecretTreeForwardCap(t *testing.T) {
	s := newSuite(t, 1)
	tree, _ := newTree(t, s, 2, Config{Window: 10, MaxForward: 50})
	if _, err := tree.Key(0, Handshake, 51); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("51 ahead: err = %v, want ErrGenerationTooFar", err)
	}
	if _, err := tree.Key(0, Handshake, 50); err != nil {
		t.Fatalf("50 ahead: %v", err)
	}
	// The cap counts from the next unused generation (51).
	if _, err := tree.Key(0, Handshake, 101); err != nil {
		t.Fatalf("50 ahead of 51: %v", err)
	}
	if _, err := tree.Key(0, Handshake, 153); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("51 ahead of 102: err = %v, want ErrGenerationTooFar", err)
	}
	// The default cap rejects a jump to the last generation.
	def, _ := newTree(t, s, 2, DefaultConfig())
	if _, err := def.Key(1, Application, 1<<32-1); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("jump to 2^32-1: err = %v, want ErrGenerationTooFar", err)
	}
}

func TestSecretTreeInvalidInputs(t *testing.T) {
	s := newSuite(t, 1)
	tree, _ := newTree(t, s, 4, DefaultConfig())
	if _, err := tree.Key(4, Application, 0); err == nil {
		t.Error("leaf 4 of 4: no error")
	}
	if _, _, err := tree.Next(1<<31, Handshake); err == nil {
		t.Error("leaf 2^31 of 4: no error")
	}
	if _, err := tree.Key(0, ContentKind(0), 0); err == nil {
		t.Error("content kind 0: no error")
	}
	for _, n := range []treemath.LeafCount{0, 3, 6, 1<<31 + 1} {
		if _, err := NewSecretTree(s, testSecret(s, 1), n, DefaultConfig()); err == nil {
			t.Errorf("NewSecretTree with %d leaves: no error", n)
		}
	}
	if _, err := NewSecretTree(s, []byte{1, 2, 3}, 4, DefaultConfig()); err == nil {
		t.Error("NewSecretTree with a 3-byte secret: no error")
	}
	if _, err := NewSecretTree(s, testSecret(s, 1), 4, Config{Window: MaxWindow + 1}); err == nil {
		t.Error("NewSecretTree with an oversized window: no error")
	}
	if _, err := NewSecretTree(nil, testSecret(s, 1), 4, DefaultConfig()); err == nil {
		t.Error("NewSecretTree with a nil suite: no error")
	}
	var nilTree *SecretTree
	if _, err := nilTree.Key(0, Handshake, 0); err == nil {
		t.Error("nil tree: no error")
	}
	tree.Zero()
	if _, err := tree.Key(0, Handshake, 0); err == nil {
		t.Error("zeroed tree: no error")
	}
}

func TestSecretTreeNextAndExhaustion(t *testing.T) {
	s := newSuite(t, 1)
	tree, enc := newTree(t, s, 8, DefaultConfig())
	for want := range uint32(3) {
		g, kn, err := tree.Next(5, Handshake)
		if err != nil || g != want {
			t.Fatalf("Next = %d, %v, want generation %d", g, err, want)
		}
		if ref := referenceKey(t, s, enc, 8, 5, Handshake, g); !bytes.Equal(kn.Key, ref.Key) {
			t.Fatalf("Next key %d differs from the reference derivation", g)
		}
	}
	// White box: put the ratchet just before its last generation.
	r := &tree.leaves[5].application
	r.next = 1<<32 - 2
	if _, err := tree.Key(5, Application, 1<<32-1); err != nil {
		t.Fatalf("last generation: %v", err)
	}
	if r.secret != nil {
		t.Error("ratchet secret kept after the last generation")
	}
	if _, _, err := tree.Next(5, Application); err == nil {
		t.Error("Next on an exhausted ratchet: no error")
	}
	if _, err := tree.Key(5, Application, 1<<32-2); err != nil {
		t.Errorf("kept generation 2^32-2: %v", err)
	}
}

// TestSecretTreeDeletion checks the deletion schedule of RFC 9420 §9.2:
// consumed tree secrets are zeroed and dropped, unneeded ones are kept.
func TestSecretTreeDeletion(t *testing.T) {
	s := newSuite(t, 1)
	tree, _ := newTree(t, s, 4, DefaultConfig())
	root := tree.nodes[3]
	if _, err := tree.Key(3, Application, 1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root, make([]byte, len(root))) {
		t.Error("root secret not zeroed after use")
	}
	// Leaf 3 (node 6) used: the root (3) and node 5 consumed, leaf 3 turned
	// into ratchets; nodes 1 and 4 remain for the other leaves.
	if len(tree.nodes) != 2 || tree.nodes[1] == nil || tree.nodes[4] == nil {
		t.Errorf("tree holds nodes %v, want 1 and 4", keys(tree.nodes))
	}
	for l := range treemath.LeafIndex(4) {
		if _, err := tree.Key(l, Handshake, 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(tree.nodes) != 0 {
		t.Errorf("tree holds nodes %v after all leaves started, want none", keys(tree.nodes))
	}
	kept := tree.leaves[3].application.skipped[0]
	tree.Zero()
	if !bytes.Equal(kept.Key, make([]byte, len(kept.Key))) {
		t.Error("kept key not zeroed by Zero")
	}
}

func keys(m map[treemath.NodeIndex][]byte) []treemath.NodeIndex {
	var out []treemath.NodeIndex
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSecretTreeRandom drives a tree with random requests and checks each
// answer against a simple model and the stateless reference derivation.
func TestSecretTreeRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	s := newSuite(t, 1)
	cfg := Config{Window: 8, MaxForward: 16}
	const n = 4
	tree, enc := newTree(t, s, n, cfg)
	type key struct {
		leaf treemath.LeafIndex
		kind ContentKind
	}
	next := map[key]uint64{}
	used := map[key]map[uint32]bool{}
	for range 500 {
		k := key{treemath.LeafIndex(rng.IntN(n)), ContentKind(1 + rng.IntN(2))}
		if used[k] == nil {
			used[k] = map[uint32]bool{}
		}
		g := uint32(max(0, int(next[k])-12+rng.IntN(32)))
		kn, err := tree.Key(k.leaf, k.kind, g)
		var want error
		switch {
		case uint64(g) >= next[k] && uint64(g)-next[k] > uint64(cfg.MaxForward):
			want = ErrGenerationTooFar
		case uint64(g) < next[k] && next[k]-uint64(g) > uint64(cfg.Window):
			want = ErrGenerationExpired
		case used[k][g]:
			want = ErrGenerationUsed
		}
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Fatalf("seed %d: Key(%d, %s, %d) with next %d: err = %v, want %v", seed, k.leaf, k.kind, g, next[k], err, want)
		}
		if err != nil {
			continue
		}
		used[k][g] = true
		next[k] = max(next[k], uint64(g)+1)
		if ref := referenceKey(t, s, enc, n, k.leaf, k.kind, g); !bytes.Equal(kn.Key, ref.Key) || !bytes.Equal(kn.Nonce, ref.Nonce) {
			t.Fatalf("seed %d: Key(%d, %s, %d) differs from the reference", seed, k.leaf, k.kind, g)
		}
	}
	for k, lr := range tree.leaves {
		for _, r := range []*ratchet{&lr.handshake, &lr.application} {
			if len(r.skipped) > int(cfg.Window) {
				t.Fatalf("leaf %d keeps %d skipped keys, window %d", k, len(r.skipped), cfg.Window)
			}
		}
	}
}

func TestSenderDataSample(t *testing.T) {
	s := newSuite(t, 1)
	secret := SenderDataSecret(testSecret(s, 7))
	long := bytes.Repeat([]byte{9}, 100)
	a, err := SenderDataKeyNonce(s, secret, long)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SenderDataKeyNonce(s, secret, long[:s.HashSize()])
	if !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Nonce, b.Nonce) {
		t.Error("sample is not the first Nh bytes")
	}
	short, err := SenderDataKeyNonce(s, secret, long[:5])
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.ExpandWithLabel(secret, "key", long[:5], s.AEADKeySize())
	if !bytes.Equal(short.Key, want) {
		t.Error("short ciphertext not used whole")
	}
	if _, err := SenderDataKeyNonce(s, secret[:3], long); err == nil {
		t.Error("3-byte sender_data_secret: no error")
	}
}

func TestKeyScheduleInputs(t *testing.T) {
	s := newSuite(t, 1)
	init, commit, gc := InitSecret(testSecret(s, 1)), CommitSecret(testSecret(s, 2)), []byte("group context")
	if _, err := DeriveEpoch(s, init[:5], commit, nil, gc); err == nil {
		t.Error("short init_secret: no error")
	}
	if _, err := DeriveEpoch(s, init, commit[:5], nil, gc); err == nil {
		t.Error("short commit_secret: no error")
	}
	if _, err := DeriveEpoch(s, init, commit, CombinedPSK{1}, gc); err == nil {
		t.Error("short psk_secret: no error")
	}
	if _, err := DeriveEpoch(nil, init, commit, nil, gc); err == nil {
		t.Error("nil suite: no error")
	}
	// An empty psk_secret is the zero vector.
	zero, _ := PSKSecret(s, nil)
	a, err := DeriveEpoch(s, init, commit, nil, gc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := DeriveEpoch(s, init, commit, zero, gc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.EpochAuthenticator, b.EpochAuthenticator) {
		t.Error("empty psk_secret differs from the zero vector")
	}
	// FromEpochSecret agrees with the full schedule at epoch_secret.
	member := s.Extract(a.JoinerSecret, zero)
	epoch, _ := s.ExpandWithLabel(member, "epoch", gc, s.HashSize())
	c, err := FromEpochSecret(s, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.InitSecret, a.InitSecret) || !bytes.Equal(c.ConfirmationKey, a.ConfirmationKey) {
		t.Error("FromEpochSecret disagrees with DeriveEpoch")
	}
	// The Welcome key and nonce follow §12.4.3.1.
	kn, err := WelcomeKeyNonce(s, a.WelcomeSecret)
	if err != nil {
		t.Fatal(err)
	}
	wantNonce, _ := s.ExpandWithLabel(a.WelcomeSecret, "nonce", nil, s.AEADNonceSize())
	if len(kn.Key) != s.AEADKeySize() || !bytes.Equal(kn.Nonce, wantNonce) {
		t.Error("welcome key/nonce wrong")
	}
	if _, err := a.Export("x", nil, 1<<16); err == nil {
		t.Error("export length 2^16: no error")
	}
	a.Zero()
	if !bytes.Equal(a.ExporterSecret, make([]byte, s.HashSize())) {
		t.Error("Zero left exporter_secret")
	}
	var nilEpoch *Epoch
	if _, err := nilEpoch.Export("x", nil, 1); err == nil {
		t.Error("nil epoch export: no error")
	}
}

func TestTranscriptHashes(t *testing.T) {
	s := newSuite(t, 1)
	input := []byte("ConfirmedTranscriptHashInput")
	confirmed0, err := ConfirmedTranscriptHash(s, nil, input)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(confirmed0, s.Hash(input)) {
		t.Error("first confirmed hash is not Hash(input)")
	}
	tag := []byte{0x20, 1, 2, 3}
	interim, err := InterimTranscriptHash(s, confirmed0, tag)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(interim, s.Hash(append(append([]byte(nil), confirmed0...), tag...))) {
		t.Error("interim hash is not Hash(confirmed || input)")
	}
	confirmed1, err := ConfirmedTranscriptHash(s, interim, input)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(confirmed1, s.Hash(append(append([]byte(nil), interim...), input...))) {
		t.Error("confirmed hash is not Hash(interim || input)")
	}
	if _, err := ConfirmedTranscriptHash(s, []byte{1, 2}, input); err == nil {
		t.Error("2-byte interim hash: no error")
	}
	if _, err := InterimTranscriptHash(nil, confirmed0, tag); err == nil {
		t.Error("nil suite: no error")
	}
	// Group creation (RFC 9420 §11): interim from the empty confirmed hash.
	if _, err := InterimTranscriptHash(s, nil, tag); err != nil {
		t.Errorf("interim from empty confirmed hash: %v", err)
	}
}

func TestPSKSecretInputs(t *testing.T) {
	s := newSuite(t, 1)
	if _, err := PSKSecret(s, []PSK{{Secret: []byte{1}}}); err == nil {
		t.Error("empty PreSharedKeyID: no error")
	}
	if _, err := PSKSecret(nil, nil); err == nil {
		t.Error("nil suite: no error")
	}
	z, err := PSKSecret(s, nil)
	if err != nil || !bytes.Equal(z, make([]byte, s.HashSize())) {
		t.Errorf("no PSKs = %x, %v; want Nh zero bytes", z, err)
	}
}

// snapshot renders every secret and counter the tree holds, so that tests
// can check that an operation changed nothing.
func snapshot(t *SecretTree) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "n=%d\n", t.n)
	for _, x := range slices.Sorted(maps.Keys(t.nodes)) {
		fmt.Fprintf(&b, "node %d %x\n", x, t.nodes[x])
	}
	for _, l := range slices.Sorted(maps.Keys(t.leaves)) {
		lr := t.leaves[l]
		for _, r := range []*ratchet{&lr.handshake, &lr.application} {
			fmt.Fprintf(&b, "leaf %d secret %x next %d oldest %d\n", l, r.secret, r.next, r.oldest)
			for _, g := range slices.Sorted(maps.Keys(r.skipped)) {
				fmt.Fprintf(&b, "  kept %d %x %x\n", g, r.skipped[g].Key, r.skipped[g].Nonce)
			}
		}
	}
	return b.String()
}

func TestSecretTreePeekConsume(t *testing.T) {
	s := newSuite(t, 1)
	tree, enc := newTree(t, s, 4, Config{Window: 10, MaxForward: 50})
	before := snapshot(tree)

	// Peek on an unused leaf derives on copies: the leaf is not started
	// and no tree secret is consumed.
	kn, err := tree.Peek(2, Application, 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceKey(t, s, enc, 4, 2, Application, 5); !bytes.Equal(kn.Key, want.Key) || !bytes.Equal(kn.Nonce, want.Nonce) {
		t.Fatal("peeked key differs from the reference derivation")
	}
	kn.Zero()
	if got := snapshot(tree); got != before {
		t.Fatalf("Peek changed the tree:\nbefore\n%s\nafter\n%s", before, got)
	}
	// Consume without a key in hand, then the generation is used.
	if err := tree.Consume(2, Application, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Peek(2, Application, 5); !errors.Is(err, ErrGenerationUsed) {
		t.Fatalf("Peek after Consume: err = %v, want ErrGenerationUsed", err)
	}
	if err := tree.Consume(2, Application, 5); !errors.Is(err, ErrGenerationUsed) {
		t.Fatalf("second Consume: err = %v, want ErrGenerationUsed", err)
	}
	if _, err := tree.Key(2, Application, 5); !errors.Is(err, ErrGenerationUsed) {
		t.Fatalf("Key after Consume: err = %v, want ErrGenerationUsed", err)
	}
	// Consume kept the skipped keys 0..4, and their Peek is a copy.
	r := &tree.leaves[2].application
	if len(r.skipped) != 5 || r.next != 6 {
		t.Fatalf("after Consume: %d kept keys, next %d; want 5 and 6", len(r.skipped), r.next)
	}
	kept := r.skipped[3]
	kn, err = tree.Peek(2, Application, 3)
	if err != nil {
		t.Fatal(err)
	}
	if &kn.Key[0] == &kept.Key[0] || &kn.Nonce[0] == &kept.Nonce[0] {
		t.Fatal("Peek returned the kept key itself, not a copy")
	}
	kn.Zero()
	kn, err = tree.Key(2, Application, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceKey(t, s, enc, 4, 2, Application, 3); !bytes.Equal(kn.Key, want.Key) {
		t.Fatal("kept key damaged by zeroing a peeked copy")
	}
	// A kept key consumed with Consume is zeroed and deleted.
	kept = r.skipped[4]
	if err := tree.Consume(2, Application, 4); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.skipped[4]; ok || !bytes.Equal(kept.Key, make([]byte, len(kept.Key))) {
		t.Error("consumed kept key not deleted and zeroed")
	}
	// Peek and Consume report the errors of Key; a failing Consume
	// changes nothing.
	before = snapshot(tree)
	for _, tc := range []struct {
		gen  uint32
		want error
	}{{57, ErrGenerationTooFar}, {4, ErrGenerationUsed}} {
		if _, err := tree.Peek(2, Application, tc.gen); !errors.Is(err, tc.want) {
			t.Errorf("Peek generation %d: err = %v, want %v", tc.gen, err, tc.want)
		}
		if err := tree.Consume(2, Application, tc.gen); !errors.Is(err, tc.want) {
			t.Errorf("Consume generation %d: err = %v, want %v", tc.gen, err, tc.want)
		}
	}
	if got := snapshot(tree); got != before {
		t.Fatalf("failed calls changed the tree:\nbefore\n%s\nafter\n%s", before, got)
	}
	if err := tree.Consume(2, Application, 20); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Peek(2, Application, 2); !errors.Is(err, ErrGenerationExpired) {
		t.Errorf("Peek outside the window: err = %v, want ErrGenerationExpired", err)
	}
	if err := tree.Consume(2, Application, 2); !errors.Is(err, ErrGenerationExpired) {
		t.Errorf("Consume outside the window: err = %v, want ErrGenerationExpired", err)
	}
	// Between Peek and Consume another caller may take the key.
	if _, err := tree.Peek(1, Handshake, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tree.Next(1, Handshake); err != nil {
		t.Fatal(err)
	}
	if err := tree.Consume(1, Handshake, 0); !errors.Is(err, ErrGenerationUsed) {
		t.Errorf("Consume after a concurrent Next: err = %v, want ErrGenerationUsed", err)
	}
	// Invalid inputs.
	if _, err := tree.Peek(4, Application, 0); err == nil {
		t.Error("Peek leaf 4 of 4: no error")
	}
	if err := tree.Consume(4, Application, 0); err == nil {
		t.Error("Consume leaf 4 of 4: no error")
	}
	if _, err := tree.Peek(0, ContentKind(3), 0); err == nil {
		t.Error("Peek content kind 3: no error")
	}
	if err := tree.Consume(0, ContentKind(3), 0); err == nil {
		t.Error("Consume content kind 3: no error")
	}
	var nilTree *SecretTree
	if _, err := nilTree.Peek(0, Handshake, 0); err == nil {
		t.Error("Peek on a nil tree: no error")
	}
	if err := nilTree.Consume(0, Handshake, 0); err == nil {
		t.Error("Consume on a nil tree: no error")
	}
	tree.Zero()
	if _, err := tree.Peek(0, Handshake, 0); err == nil {
		t.Error("Peek on a zeroed tree: no error")
	}
	if err := tree.Consume(0, Handshake, 0); err == nil {
		t.Error("Consume on a zeroed tree: no error")
	}
}

// TestSecretTreePeekExhaustion checks Peek and Consume at the last
// generation of a ratchet.
func TestSecretTreePeekExhaustion(t *testing.T) {
	s := newSuite(t, 1)
	tree, _ := newTree(t, s, 2, DefaultConfig())
	if _, _, err := tree.Next(0, Application); err != nil {
		t.Fatal(err)
	}
	r := &tree.leaves[0].application
	r.next = 1<<32 - 3 // white box, as in TestSecretTreeNextAndExhaustion
	if _, err := tree.Peek(0, Application, 1<<32-1); err != nil {
		t.Fatal(err)
	}
	if err := tree.Consume(0, Application, 1<<32-1); err != nil {
		t.Fatal(err)
	}
	if r.secret != nil || r.next != 1<<32 {
		t.Errorf("after the last generation: secret %x, next %d", r.secret, r.next)
	}
	if _, err := tree.Peek(0, Application, 1<<32-2); err != nil {
		t.Errorf("kept generation 2^32-2: %v", err)
	}
	if _, err := tree.Peek(0, Application, 1<<32-1); !errors.Is(err, ErrGenerationUsed) {
		t.Errorf("last generation again: err = %v, want ErrGenerationUsed", err)
	}
}

// TestSecretTreePeekRandom drives a tree with random Peek, Consume, Key
// and Next calls and checks that Peek never changes the tree, that every
// answer agrees with a simple model, and that every key agrees with the
// stateless reference derivation.
func TestSecretTreePeekRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	s := newSuite(t, 1)
	cfg := Config{Window: 8, MaxForward: 16}
	const n = 8
	tree, enc := newTree(t, s, n, cfg)
	type key struct {
		leaf treemath.LeafIndex
		kind ContentKind
	}
	next := map[key]uint64{}
	used := map[key]map[uint32]bool{}
	expect := func(k key, g uint32) error {
		switch {
		case uint64(g) >= next[k] && uint64(g)-next[k] > uint64(cfg.MaxForward):
			return ErrGenerationTooFar
		case uint64(g) < next[k] && next[k]-uint64(g) > uint64(cfg.Window):
			return ErrGenerationExpired
		case used[k][g]:
			return ErrGenerationUsed
		}
		return nil
	}
	checkKey := func(op string, k key, g uint32, kn KeyNonce) {
		t.Helper()
		if ref := referenceKey(t, s, enc, n, k.leaf, k.kind, g); !bytes.Equal(kn.Key, ref.Key) || !bytes.Equal(kn.Nonce, ref.Nonce) {
			t.Fatalf("seed %d: %s(%d, %s, %d) differs from the reference", seed, op, k.leaf, k.kind, g)
		}
	}
	for i := range 1000 {
		k := key{treemath.LeafIndex(rng.IntN(n)), ContentKind(1 + rng.IntN(2))}
		if used[k] == nil {
			used[k] = map[uint32]bool{}
		}
		g := uint32(max(0, int(next[k])-12+rng.IntN(32)))
		want := expect(k, g)
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, want) || (want == nil) != (err == nil) {
				t.Fatalf("seed %d step %d: %s(%d, %s, %d) with next %d: err = %v, want %v", seed, i, op, k.leaf, k.kind, g, next[k], err, want)
			}
		}
		switch op := rng.IntN(10); {
		case op < 6:
			before := snapshot(tree)
			kn, err := tree.Peek(k.leaf, k.kind, g)
			check("Peek", err)
			if err == nil {
				checkKey("Peek", k, g, kn)
				kn.Zero() // the caller's copy: zeroing it must not reach the tree
			}
			if after := snapshot(tree); after != before {
				t.Fatalf("seed %d step %d: Peek(%d, %s, %d) changed the tree:\nbefore\n%s\nafter\n%s", seed, i, k.leaf, k.kind, g, before, after)
			}
			continue
		case op < 8:
			before := snapshot(tree)
			err := tree.Consume(k.leaf, k.kind, g)
			check("Consume", err)
			if err != nil {
				if after := snapshot(tree); after != before {
					t.Fatalf("seed %d step %d: failed Consume changed the tree", seed, i)
				}
				continue
			}
		case op < 9:
			kn, err := tree.Key(k.leaf, k.kind, g)
			check("Key", err)
			if err != nil {
				continue
			}
			checkKey("Key", k, g, kn)
		default:
			got, kn, err := tree.Next(k.leaf, k.kind)
			if err != nil || uint64(got) != next[k] {
				t.Fatalf("seed %d step %d: Next(%d, %s) = %d, %v; want generation %d", seed, i, k.leaf, k.kind, got, err, next[k])
			}
			checkKey("Next", k, got, kn)
			g = got
		}
		used[k][g] = true
		next[k] = max(next[k], uint64(g)+1)
	}
	for l, lr := range tree.leaves {
		for _, r := range []*ratchet{&lr.handshake, &lr.application} {
			if len(r.skipped) > int(cfg.Window) {
				t.Fatalf("seed %d: leaf %d keeps %d skipped keys, window %d", seed, l, len(r.skipped), cfg.Window)
			}
		}
	}
}
