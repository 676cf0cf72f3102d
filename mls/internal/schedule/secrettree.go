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
	// MaxForward is the largest distance, in generations, that one Key,
	// Peek or Consume call may reach beyond a ratchet's next unused
	// generation.
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

// Errors of SecretTree.Peek, Consume and Key that callers may branch on; the returned errors
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
// next is derived, a key once consumed. Receivers take a key with Peek,
// which changes nothing, and Consume it once the message authenticated
// under it; Key and Next take and consume in one step. A SecretTree is
// safe for concurrent use.
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

// Peek returns the key and nonce of generation gen of the kind ratchet of
// leaf, for trying to decrypt a message from that leaf (RFC 9420 §9.1),
// without consuming them or changing the tree in any way: a generation
// ahead of the ratchet is derived on copies of the ratchet secret (of the
// tree secrets, if the leaf has not been used yet), a generation kept in
// the window is returned as a copy. The caller owns the result and should
// Zero it; once the message has been authenticated with it, the caller
// calls Consume for the same generation. Peek fails like Key: with
// ErrGenerationUsed for a consumed generation, ErrGenerationExpired
// beyond the window, ErrGenerationTooFar beyond Config.MaxForward.
//
// Peek and Consume are two calls: another caller may consume the
// generation in between, and Consume then fails with ErrGenerationUsed.
func (t *SecretTree) Peek(leaf treemath.LeafIndex, kind ContentKind, gen uint32) (KeyNonce, error) {
	if t == nil {
		return KeyNonce{}, errors.New("schedule: secret tree peek: nil tree")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.check("peek", leaf, kind); err != nil {
		return KeyNonce{}, err
	}
	r := t.started(leaf, kind)
	if r == nil {
		// An unused leaf: its ratchet would start at generation 0 with
		// this secret.
		secret, err := t.peekRatchetSecret(leaf, kind)
		if err != nil {
			return KeyNonce{}, fmt.Errorf("schedule: secret tree peek: leaf %d: %w", leaf, err)
		}
		defer clear(secret)
		r = &ratchet{secret: secret}
	}
	kn, err := t.peek(r, gen)
	if err != nil {
		return KeyNonce{}, fmt.Errorf("schedule: secret tree peek: leaf %d %s generation %d: %w", leaf, kind, gen, err)
	}
	return kn, nil
}

// Consume marks generation gen of the kind ratchet of leaf as used (RFC
// 9420 §9.2), after its key, taken with Peek, decrypted a message: the
// key is deleted, a generation ahead moves the ratchet past it (keeping
// the unused keys passed over, within the window, as Key does) and a
// second Peek, Consume or Key for it fails with ErrGenerationUsed.
// Consume fails with the errors of Peek, and changes nothing then.
func (t *SecretTree) Consume(leaf treemath.LeafIndex, kind ContentKind, gen uint32) error {
	if t == nil {
		return errors.New("schedule: secret tree consume: nil tree")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	const op = "consume"
	if err := t.check(op, leaf, kind); err != nil {
		return err
	}
	if t.started(leaf, kind) == nil {
		// Refuse before starting the leaf, so that a failing call leaves
		// the tree secrets alone: a fresh ratchet is at generation 0 with
		// nothing kept.
		if _, err := t.checkGen(&ratchet{secret: []byte{}}, gen); err != nil {
			return fmt.Errorf("schedule: secret tree %s: leaf %d %s generation %d: %w", op, leaf, kind, gen, err)
		}
	}
	r, err := t.ratchet(op, leaf, kind)
	if err != nil {
		return err
	}
	if _, err := t.advance(r, gen, false); err != nil {
		return fmt.Errorf("schedule: secret tree %s: leaf %d %s generation %d: %w", op, leaf, kind, gen, err)
	}
	return nil
}

// Key returns the key and nonce of generation gen of the kind ratchet of
// leaf and consumes them in one step, as Peek followed by Consume would
// but atomically. Receivers should prefer Peek and Consume, so that a
// message altered in transit cannot use up its generation before
// decryption fails. Generations below the ratchet's newest are served
// from the window of kept keys (ErrGenerationExpired beyond it);
// generations ahead are reached by advancing the ratchet, keeping the keys
// passed over, but by no more than Config.MaxForward
// (ErrGenerationTooFar); a consumed generation fails with
// ErrGenerationUsed. An out-of-range leaf or unknown kind is an error.
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
	kn, err := t.advance(r, gen, true)
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
	kn, err := t.advance(r, gen, true)
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

// check validates leaf and kind for operation op.
func (t *SecretTree) check(op string, leaf treemath.LeafIndex, kind ContentKind) error {
	if !t.n.HasLeaf(leaf) {
		return fmt.Errorf("schedule: secret tree %s: leaf %d out of range for %d leaves", op, leaf, t.n)
	}
	if kind != Handshake && kind != Application {
		return fmt.Errorf("schedule: secret tree %s: leaf %d: unknown content kind %d", op, leaf, uint8(kind))
	}
	return nil
}

// started returns the ratchet of kind for leaf, or nil if the leaf has
// not been used yet.
func (t *SecretTree) started(leaf treemath.LeafIndex, kind ContentKind) *ratchet {
	lr := t.leaves[leaf]
	switch {
	case lr == nil:
		return nil
	case kind == Handshake:
		return &lr.handshake
	default:
		return &lr.application
	}
}

// ratchet returns the ratchet of kind for leaf, starting it on first use.
func (t *SecretTree) ratchet(op string, leaf treemath.LeafIndex, kind ContentKind) (*ratchet, error) {
	if err := t.check(op, leaf, kind); err != nil {
		return nil, err
	}
	if r := t.started(leaf, kind); r != nil {
		return r, nil
	}
	lr, err := t.startLeaf(leaf)
	if err != nil {
		return nil, fmt.Errorf("schedule: secret tree %s: leaf %d: %w", op, leaf, err)
	}
	t.leaves[leaf] = lr
	return t.started(leaf, kind), nil
}

// heldAncestor returns the lowest ancestor of node x (or x itself) whose
// tree secret the tree still holds.
func (t *SecretTree) heldAncestor(x treemath.NodeIndex) (treemath.NodeIndex, error) {
	a := x
	for t.nodes[a] == nil {
		p, ok := treemath.Parent(a, t.n)
		if !ok {
			return 0, errors.New("tree secrets deleted")
		}
		a = p
	}
	return a, nil
}

// peekRatchetSecret returns ratchet_secret_[0] of kind for an unused leaf,
// derived on copies from the lowest tree secret held: only the secrets on
// the path down are computed, and the tree is left unchanged. The caller
// zeroes the result.
func (t *SecretTree) peekRatchetSecret(leaf treemath.LeafIndex, kind ContentKind) ([]byte, error) {
	s, nh := t.suite, t.suite.HashSize()
	x := leaf.Node()
	a, err := t.heldAncestor(x)
	if err != nil {
		return nil, err
	}
	secret := append([]byte(nil), t.nodes[a]...)
	for a != x {
		l, _ := treemath.Left(a)
		r, _ := treemath.Right(a)
		side := []byte("right")
		a = r
		if treemath.InSubtree(x, l) {
			side, a = []byte("left"), l
		}
		child, err := s.ExpandWithLabel(secret, "tree", side, nh)
		clear(secret)
		if err != nil {
			return nil, fmt.Errorf("derive node %d: %w", a, err)
		}
		secret = child
	}
	rs, err := s.ExpandWithLabel(secret, kind.String(), nil, nh)
	clear(secret)
	if err != nil {
		return nil, fmt.Errorf("derive %s ratchet: %w", kind, err)
	}
	return rs, nil
}

// startLeaf derives the leaf's tree secret down from its lowest ancestor
// still held, deleting each parent once both children exist, and turns it
// into the two ratchet roots (§9).
func (t *SecretTree) startLeaf(leaf treemath.LeafIndex) (*leafRatchets, error) {
	s, nh := t.suite, t.suite.HashSize()
	x := leaf.Node()
	a, err := t.heldAncestor(x)
	if err != nil {
		return nil, err
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

// checkGen reports whether generation gen of r can still be used: it is
// kept in the window (kept true) or at most MaxForward ahead.
func (t *SecretTree) checkGen(r *ratchet, gen uint32) (kept bool, err error) {
	g := uint64(gen)
	if g < r.next {
		if _, ok := r.skipped[gen]; ok {
			return true, nil
		}
		if r.next-g > uint64(t.cfg.Window) {
			return false, ErrGenerationExpired
		}
		return false, ErrGenerationUsed
	}
	if d := g - r.next; d > uint64(t.cfg.MaxForward) {
		return false, fmt.Errorf("%w: %d generations past the next (%d), limit %d", ErrGenerationTooFar, d, r.next, t.cfg.MaxForward)
	}
	if r.secret == nil {
		return false, errors.New("ratchet exhausted")
	}
	return false, nil
}

// peek returns a copy of the key of generation gen of r, leaving r
// unchanged.
func (t *SecretTree) peek(r *ratchet, gen uint32) (KeyNonce, error) {
	kept, err := t.checkGen(r, gen)
	if err != nil {
		return KeyNonce{}, err
	}
	if kept {
		kn := r.skipped[gen]
		return KeyNonce{Key: append([]byte(nil), kn.Key...), Nonce: append([]byte(nil), kn.Nonce...)}, nil
	}
	secret := append([]byte(nil), r.secret...)
	defer func() { clear(secret) }()
	for cur := r.next; cur < uint64(gen); cur++ {
		next, err := t.nextSecret(secret, uint32(cur))
		if err != nil {
			return KeyNonce{}, err
		}
		clear(secret)
		secret = next
	}
	return t.keyNonce(secret, gen)
}

// advance consumes generation gen of r: a kept key is deleted, a
// generation ahead moves the ratchet past it, keeping the keys passed
// over that stay within the window. If want is set it returns gen's key,
// which the caller then owns; otherwise the key is not kept anywhere.
func (t *SecretTree) advance(r *ratchet, gen uint32, want bool) (KeyNonce, error) {
	kept, err := t.checkGen(r, gen)
	if err != nil {
		return KeyNonce{}, err
	}
	if kept {
		kn := r.skipped[gen]
		delete(r.skipped, gen)
		if !want {
			kn.Zero()
			kn = KeyNonce{}
		}
		return kn, nil
	}
	g := uint64(gen)
	var out KeyNonce
	for r.next <= g {
		cur := uint32(r.next)
		keep := cur != gen && g+1-uint64(cur) <= uint64(t.cfg.Window)
		if keep || (cur == gen && want) {
			kn, err := t.keyNonce(r.secret, cur)
			if err != nil {
				out.Zero()
				return KeyNonce{}, err
			}
			if keep {
				if r.skipped == nil {
					r.skipped = make(map[uint32]KeyNonce)
				}
				if len(r.skipped) == 0 || cur < r.oldest {
					r.oldest = cur
				}
				r.skipped[cur] = kn
			} else {
				out = kn
			}
		}
		if cur == 1<<32-1 {
			// Generation 2^32-1 was the last one: nothing further to
			// derive.
			clear(r.secret)
			r.secret, r.next = nil, r.next+1
			break
		}
		next, err := t.nextSecret(r.secret, cur)
		if err != nil {
			out.Zero()
			return KeyNonce{}, err
		}
		clear(r.secret)
		r.secret, r.next = next, r.next+1
	}
	r.prune(t.cfg.Window)
	return out, nil
}

// keyNonce derives the key and nonce of generation gen from
// ratchet_secret_[gen] (§9.1).
func (t *SecretTree) keyNonce(secret []byte, gen uint32) (KeyNonce, error) {
	s := t.suite
	key, err := s.DeriveTreeSecret(secret, "key", gen, s.AEADKeySize())
	if err != nil {
		return KeyNonce{}, err
	}
	nonce, err := s.DeriveTreeSecret(secret, "nonce", gen, s.AEADNonceSize())
	if err != nil {
		clear(key)
		return KeyNonce{}, err
	}
	return KeyNonce{Key: key, Nonce: nonce}, nil
}

// nextSecret derives ratchet_secret_[gen+1] from ratchet_secret_[gen]
// (§9.1).
func (t *SecretTree) nextSecret(secret []byte, gen uint32) ([]byte, error) {
	s := t.suite
	return s.DeriveTreeSecret(secret, "secret", gen, s.HashSize())
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
