package schedule

import (
	"errors"
	"fmt"
	"sync"

	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/treemath"
)

// ContentKind selects one of a leaf's two hash ratchets (RFC 9420 §9):
// handshake messages (Proposal, Commit) or application messages.
type ContentKind uint8

// The ratchets of a leaf.
const (
	Handshake   ContentKind = 1
	Application ContentKind = 2
)

// String returns the ratchet's RFC label.
func (k ContentKind) String() string {
	switch k {
	case Handshake:
		return "handshake"
	case Application:
		return "application"
	default:
		return fmt.Sprintf("ContentKind(%d)", uint8(k))
	}
}

// KeyNonce is an AEAD key and nonce. The caller owns both slices and
// should Zero them after use.
type KeyNonce struct {
	Key   []byte
	Nonce []byte
}

// Zero overwrites the key and nonce with zeros.
func (kn *KeyNonce) Zero() {
	clear(kn.Key)
	clear(kn.Nonce)
}

// Defaults and limits of Config.
const (
	// DefaultWindow is the default number of generations behind a
	// ratchet's newest one whose unused keys are kept for out-of-order
	// messages.
	DefaultWindow = 1000
	// DefaultMaxForward is the default limit on how many generations one
	// message may move a ratchet forward.
	DefaultMaxForward = 10000
	// MaxWindow is the largest Window that Validate accepts; it bounds the
	// memory one sender can make a receiver hold per ratchet.
	MaxWindow = 1 << 16
)

// Config bounds the work and memory a secret tree spends on out-of-order
// and far-future generations (RFC 9420 §9.2, §15.3 "Delayed and Reordered
// Application Messages"). The zero Config allows in-order delivery only.
type Config struct {
	// Window is how many generations behind the newest one reached on a
	// ratchet still have their unused keys kept (at most MaxWindow).
	// Older unused keys are deleted.
	Window uint32
	// MaxForward is the largest distance, in generations, that one Key
	// call may advance a ratchet beyond its next unused generation.
	MaxForward uint32
}

// DefaultConfig returns the default Config: a window of DefaultWindow and
// a forward limit of DefaultMaxForward.
func DefaultConfig() Config {
	return Config{Window: DefaultWindow, MaxForward: DefaultMaxForward}
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if c.Window > MaxWindow {
		return fmt.Errorf("schedule: secret tree config: window %d exceeds %d", c.Window, MaxWindow)
	}
	return nil
}

// Errors of SecretTree.Key that callers may branch on; the returned errors
// wrap them with the leaf, ratchet and generation.
var (
	// ErrGenerationUsed reports a generation whose key was already
	// consumed: a replayed message.
	ErrGenerationUsed = errors.New("schedule: generation already used")
	// ErrGenerationExpired reports a generation older than the window,
	// whose key was deleted unused.
	ErrGenerationExpired = errors.New("schedule: generation outside the out-of-order window")
	// ErrGenerationTooFar reports a generation further ahead than
	// Config.MaxForward.
	ErrGenerationTooFar = errors.New("schedule: generation too far ahead")
)

// SecretTree is the secret tree of one epoch (RFC 9420 §9) with the hash
// ratchets of its leaves (§9.1). It derives node secrets lazily from the
// encryption_secret, only along the paths to leaves that are used, and
// deletes every secret once consumed (§9.2): a parent once both children
// are derived, a leaf once its ratchets start, a ratchet secret once the
// next is derived, a key once returned. A SecretTree is safe for
// concurrent use.
type SecretTree struct {
	mu    sync.Mutex
	suite *suite.Suite
	n     treemath.LeafCount
	cfg   Config
	// nodes holds the tree secrets not yet consumed.
	nodes map[treemath.NodeIndex][]byte
	// leaves holds the ratchets of the leaves used so far.
	leaves map[treemath.LeafIndex]*leafRatchets
}

type leafRatchets struct {
	handshake, application ratchet
}

// ratchet is one hash ratchet of §9.1.
type ratchet struct {
	// secret is ratchet_secret_[next]; nil once the ratchet is exhausted.
	secret []byte
	// next is the next generation whose key has not been derived.
	next uint64
	// skipped holds the unused keys of generations in [next-Window, next).
	skipped map[uint32]KeyNonce
	// oldest is at most the smallest generation in skipped.
	oldest uint32
}

// NewSecretTree returns the secret tree for an epoch with the given
// encryption_secret and number of leaves n (a power of two, RFC 9420
// §7.7). The tree keeps its own copy of enc; the caller should zero its
// copy (§9.2).
func NewSecretTree(s *suite.Suite, enc EncryptionSecret, n treemath.LeafCount, cfg Config) (*SecretTree, error) {
	const op = "new secret tree"
	if err := checkLen(s, op, "encryption_secret", enc); err != nil {
		return nil, err
	}
	if !n.Valid() {
		return nil, fmt.Errorf("schedule: %s: leaf count %d is not a power of two in 1..%d", op, n, treemath.MaxLeaves)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	root, _ := treemath.Root(n)
	return &SecretTree{
		suite:  s,
		n:      n,
		cfg:    cfg,
		nodes:  map[treemath.NodeIndex][]byte{root: append([]byte(nil), enc...)},
		leaves: make(map[treemath.LeafIndex]*leafRatchets),
	}, nil
}

// LeafCount returns the number of leaves of the tree.
func (t *SecretTree) LeafCount() treemath.LeafCount {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Key returns the key and nonce of generation gen of the kind ratchet of
// leaf, for decrypting a message from that leaf (RFC 9420 §9.1), and
// consumes them: a second call for the same generation fails with
// ErrGenerationUsed. Generations below the ratchet's newest are served
// from the window of kept keys (ErrGenerationExpired beyond it);
// generations ahead are reached by advancing the ratchet, keeping the keys
// passed over, but by no more than Config.MaxForward
// (ErrGenerationTooFar). An out-of-range leaf or unknown kind is an error.
func (t *SecretTree) Key(leaf treemath.LeafIndex, kind ContentKind, gen uint32) (KeyNonce, error) {
	if t == nil {
		return KeyNonce{}, errors.New("schedule: secret tree key: nil tree")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.ratchet("key", leaf, kind)
	if err != nil {
		return KeyNonce{}, err
	}
	kn, err := t.get(r, gen)
	if err != nil {
		return KeyNonce{}, fmt.Errorf("schedule: secret tree key: leaf %d %s generation %d: %w", leaf, kind, gen, err)
	}
	return kn, nil
}

// Next returns the key and nonce of the next unused generation of the kind
// ratchet of leaf, with that generation, for encrypting a message as that
// leaf (RFC 9420 §9.1), and consumes them.
func (t *SecretTree) Next(leaf treemath.LeafIndex, kind ContentKind) (uint32, KeyNonce, error) {
	if t == nil {
		return 0, KeyNonce{}, errors.New("schedule: secret tree next key: nil tree")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.ratchet("next key", leaf, kind)
	if err != nil {
		return 0, KeyNonce{}, err
	}
	if r.secret == nil {
		return 0, KeyNonce{}, fmt.Errorf("schedule: secret tree next key: leaf %d %s ratchet exhausted", leaf, kind)
	}
	gen := uint32(r.next)
	kn, err := t.get(r, gen)
	if err != nil {
		return 0, KeyNonce{}, fmt.Errorf("schedule: secret tree next key: leaf %d %s generation %d: %w", leaf, kind, gen, err)
	}
	return gen, kn, nil
}

// Zero deletes every secret the tree still holds; the tree is unusable
// afterwards. Call it when the epoch ends.
func (t *SecretTree) Zero() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for x, b := range t.nodes {
		clear(b)
		delete(t.nodes, x)
	}
	for l, lr := range t.leaves {
		lr.handshake.zero()
		lr.application.zero()
		delete(t.leaves, l)
	}
	t.n = 0
}

// ratchet returns the ratchet of kind for leaf, starting it on first use.
func (t *SecretTree) ratchet(op string, leaf treemath.LeafIndex, kind ContentKind) (*ratchet, error) {
	if !t.n.HasLeaf(leaf) {
		return nil, fmt.Errorf("schedule: secret tree %s: leaf %d out of range for %d leaves", op, leaf, t.n)
	}
	if kind != Handshake && kind != Application {
		return nil, fmt.Errorf("schedule: secret tree %s: leaf %d: unknown content kind %d", op, leaf, uint8(kind))
	}
	lr := t.leaves[leaf]
	if lr == nil {
		var err error
		if lr, err = t.startLeaf(leaf); err != nil {
			return nil, fmt.Errorf("schedule: secret tree %s: leaf %d: %w", op, leaf, err)
		}
		t.leaves[leaf] = lr
	}
	if kind == Handshake {
		return &lr.handshake, nil
	}
	return &lr.application, nil
}

// startLeaf derives the leaf's tree secret down from its lowest ancestor
// still held, deleting each parent once both children exist, and turns it
// into the two ratchet roots (§9).
func (t *SecretTree) startLeaf(leaf treemath.LeafIndex) (*leafRatchets, error) {
	s, nh := t.suite, t.suite.HashSize()
	x := leaf.Node()
	a := x
	for t.nodes[a] == nil {
		p, ok := treemath.Parent(a, t.n)
		if !ok {
			return nil, errors.New("tree secrets deleted")
		}
		a = p
	}
	for a != x {
		secret := t.nodes[a]
		l, _ := treemath.Left(a)
		r, _ := treemath.Right(a)
		ls, err := s.ExpandWithLabel(secret, "tree", []byte("left"), nh)
		if err != nil {
			return nil, fmt.Errorf("derive node %d: %w", l, err)
		}
		rs, err := s.ExpandWithLabel(secret, "tree", []byte("right"), nh)
		if err != nil {
			clear(ls)
			return nil, fmt.Errorf("derive node %d: %w", r, err)
		}
		t.nodes[l], t.nodes[r] = ls, rs
		clear(secret)
		delete(t.nodes, a)
		if treemath.InSubtree(x, l) {
			a = l
		} else {
			a = r
		}
	}
	secret := t.nodes[x]
	hs, err := s.ExpandWithLabel(secret, "handshake", nil, nh)
	if err != nil {
		return nil, fmt.Errorf("derive handshake ratchet: %w", err)
	}
	app, err := s.ExpandWithLabel(secret, "application", nil, nh)
	if err != nil {
		clear(hs)
		return nil, fmt.Errorf("derive application ratchet: %w", err)
	}
	clear(secret)
	delete(t.nodes, x)
	return &leafRatchets{handshake: ratchet{secret: hs}, application: ratchet{secret: app}}, nil
}

// get returns and consumes the key of generation gen of r.
func (t *SecretTree) get(r *ratchet, gen uint32) (KeyNonce, error) {
	g := uint64(gen)
	if g < r.next {
		if kn, ok := r.skipped[gen]; ok {
			delete(r.skipped, gen)
			return kn, nil
		}
		if r.next-g > uint64(t.cfg.Window) {
			return KeyNonce{}, ErrGenerationExpired
		}
		return KeyNonce{}, ErrGenerationUsed
	}
	if d := g - r.next; d > uint64(t.cfg.MaxForward) {
		return KeyNonce{}, fmt.Errorf("%w: %d generations past the next (%d), limit %d", ErrGenerationTooFar, d, r.next, t.cfg.MaxForward)
	}
	var out KeyNonce
	for r.next <= g {
		cur := uint32(r.next)
		kn, nextSecret, err := t.step(r.secret, cur)
		if err != nil {
			return KeyNonce{}, err
		}
		clear(r.secret)
		r.secret, r.next = nextSecret, r.next+1
		switch {
		case cur == gen:
			out = kn
		case g+1-uint64(cur) <= uint64(t.cfg.Window):
			if r.skipped == nil {
				r.skipped = make(map[uint32]KeyNonce)
			}
			if len(r.skipped) == 0 || cur < r.oldest {
				r.oldest = cur
			}
			r.skipped[cur] = kn
		default:
			kn.Zero()
		}
	}
	if r.next > 1<<32-1 {
		// Generation 2^32-1 was the last one: nothing further to derive.
		clear(r.secret)
		r.secret = nil
	}
	r.prune(t.cfg.Window)
	return out, nil
}

// step derives key, nonce and the next ratchet secret from
// ratchet_secret_[gen] (§9.1).
func (t *SecretTree) step(secret []byte, gen uint32) (KeyNonce, []byte, error) {
	s := t.suite
	if secret == nil {
		return KeyNonce{}, nil, errors.New("ratchet exhausted")
	}
	key, err := s.DeriveTreeSecret(secret, "key", gen, s.AEADKeySize())
	if err != nil {
		return KeyNonce{}, nil, err
	}
	nonce, err := s.DeriveTreeSecret(secret, "nonce", gen, s.AEADNonceSize())
	if err != nil {
		clear(key)
		return KeyNonce{}, nil, err
	}
	next, err := s.DeriveTreeSecret(secret, "secret", gen, s.HashSize())
	if err != nil {
		clear(key)
		clear(nonce)
		return KeyNonce{}, nil, err
	}
	return KeyNonce{Key: key, Nonce: nonce}, next, nil
}

// prune deletes the skipped keys that fell out of the window.
func (r *ratchet) prune(window uint32) {
	if len(r.skipped) == 0 || r.next-uint64(r.oldest) <= uint64(window) {
		return
	}
	oldest := uint32(0)
	first := true
	for g, kn := range r.skipped {
		if r.next-uint64(g) > uint64(window) {
			kn.Zero()
			delete(r.skipped, g)
			continue
		}
		if first || g < oldest {
			oldest, first = g, false
		}
	}
	r.oldest = oldest
}

func (r *ratchet) zero() {
	clear(r.secret)
	r.secret = nil
	for g, kn := range r.skipped {
		kn.Zero()
		delete(r.skipped, g)
	}
}

// SenderDataKeyNonce derives the AEAD key and nonce that protect a
// PrivateMessage's sender data (RFC 9420 §6.3.2): ExpandWithLabel(
// sender_data_secret, "key"/"nonce", ciphertext_sample, Nk/Nn), where the
// sample is the first Nh bytes of the content ciphertext, or all of it if
// shorter.
func SenderDataKeyNonce(s *suite.Suite, secret SenderDataSecret, ciphertext []byte) (KeyNonce, error) {
	const op = "derive sender data key"
	if err := checkLen(s, op, "sender_data_secret", secret); err != nil {
		return KeyNonce{}, err
	}
	sample := ciphertext[:min(len(ciphertext), s.HashSize())]
	key, err := s.ExpandWithLabel(secret, "key", sample, s.AEADKeySize())
	if err != nil {
		return KeyNonce{}, fmt.Errorf("schedule: %s: %w", op, err)
	}
	nonce, err := s.ExpandWithLabel(secret, "nonce", sample, s.AEADNonceSize())
	if err != nil {
		clear(key)
		return KeyNonce{}, fmt.Errorf("schedule: %s: %w", op, err)
	}
	return KeyNonce{Key: key, Nonce: nonce}, nil
}
