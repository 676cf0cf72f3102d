package delivery

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// Service is the Delivery Service core. Create it with New, run its
// background work with Run, and call its methods from any goroutine.
type Service struct {
	cfg     Config
	st      store.Store
	blobs   BlobStore
	fol     Follower
	now     func() time.Time
	log     *slog.Logger
	rand    io.Reader
	notify  Notifier
	metrics *metrics

	claims         *Limiter
	ephemeralLimit *Limiter // ephemeral messages per device

	submit    chan *submission
	snapshots chan store.ConversationID // conversations for the snapshot loop
	acks      *acker
	tails     tails
	done      chan struct{} // closed when Run returns

	convLocks [64]sync.Mutex
	seed      maphash.Seed

	conns     atomic.Int64
	metaCache sync.Map // store.ConversationID → convMeta
	trees     treeCache
	notes     handshakeNotes
	links     linkWaiters
}

// New returns a Service on the store, blob store and follower.
func New(cfg Config, st store.Store, blobs BlobStore, f Follower, opts Options) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil || blobs == nil || f == nil {
		return nil, errors.New("delivery: new: store, blob store and follower are required")
	}
	s := &Service{
		cfg: cfg, st: st, blobs: blobs, fol: f,
		now: opts.Now, log: opts.Logger, rand: opts.Rand, notify: opts.Notifier,
		submit:    make(chan *submission, cfg.SubmitQueue),
		snapshots: make(chan store.ConversationID, snapshotQueue),
		acks:      newAcker(),
		done:      make(chan struct{}),
		seed:      maphash.MakeSeed(),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.notify == nil {
		s.notify = NewHub()
	}
	s.claims = NewLimiter(cfg.ClaimRate, cfg.ClaimBurst, s.now)
	er, eb := cfg.EphemeralRate, cfg.EphemeralBurst
	if er == 0 {
		er = DefaultEphemeralRate
	}
	if eb == 0 {
		eb = DefaultEphemeralBurst
	}
	s.ephemeralLimit = NewLimiter(er, eb, s.now)
	m, err := newMetrics(opts.Metrics, s)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Logger returns the service's logger.
func (s *Service) Logger() *slog.Logger { return s.log }

// Now returns the service clock's time.
func (s *Service) Now() time.Time { return s.now() }

// stamp returns the time to record on an entry: the clock's time in UTC
// at the stores' precision (microseconds), so that an entry delivered as
// it is accepted carries the same time as when it is read back.
func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Run does the background work until ctx ends: the group-commit writers
// of entries and of acknowledgements, periodic pruning and the snapshots
// of ratchet trees. Submissions made while Run is not running wait.
// It returns ctx's error.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		s.pruneLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		s.snapshotLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		s.ackLoop(ctx)
	}()
	s.writeLoop(ctx)
	wg.Wait()
	return ctx.Err()
}

// Ready reports whether the store answers, for /readyz.
func (s *Service) Ready(ctx context.Context) error {
	// A lookup of a user id that never exists: cheap, and it reaches the
	// database.
	if _, err := s.st.User(ctx, -1); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delivery: ready: store: %v", err)
	}
	return nil
}

// pruneLoop prunes the store every PruneInterval.
func (s *Service) pruneLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Prune(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("prune failed", "err", err)
			}
		}
	}
}

// Prune removes acknowledged and expired entries, expired sessions,
// challenges, KeyPackages, link mailboxes and invites, and attachments older than the
// retention or whose lifetime ended, with their content.
func (s *Service) Prune(ctx context.Context) (store.PruneResult, error) {
	r, err := s.st.Prune(ctx, store.PruneOptions{Now: s.now(), Retention: s.cfg.Retention})
	s.tails.reset()
	for _, id := range r.Blobs {
		if derr := s.blobs.Delete(ctx, id); derr != nil {
			s.log.Warn("delete pruned attachment", "attachment", id, "err", derr)
		}
	}
	if err != nil {
		return r, fmt.Errorf("delivery: prune: %w", err)
	}
	s.log.Debug("pruned", "entries", r.Entries, "inbox", r.Inbox, "sessions", r.Sessions, "key_packages", r.KeyPackages, "attachments", len(r.Blobs), "link_mailboxes", r.LinkMailboxes)
	return r, nil
}

// convLock returns the mutex serializing handshakes of a conversation in
// this process (the store's compare-and-set orders them across processes).
func (s *Service) convLock(id store.ConversationID) *sync.Mutex {
	var h maphash.Hash
	h.SetSeed(s.seed)
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(id) >> (8 * i))
	}
	h.Write(b[:])
	return &s.convLocks[h.Sum64()%uint64(len(s.convLocks))]
}

// perr returns a protocol error.
func perr(code protocol.ErrorCode, format string, args ...any) error {
	return protocol.NewError(code, format, args...)
}

// internal wraps an unexpected store or backend error for op. The
// returned error is not a *protocol.Error: adapters answer "internal".
func internal(op string, err error) error {
	return fmt.Errorf("delivery: %s: %w", op, err)
}

// AsProtocolError returns the *protocol.Error in err's chain, or an
// "internal" error when there is none (the cause must then be logged, not
// shown).
func AsProtocolError(err error) (*protocol.Error, bool) {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe, true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return protocol.NewError(protocol.CodeUnavailable, "request cancelled or timed out"), false
	}
	return protocol.NewError(protocol.CodeInternal, "internal server error"), false
}

// randomBytes returns n random bytes.
func (s *Service) randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return nil, fmt.Errorf("delivery: read random: %v", err)
	}
	return b, nil
}

// hashSecret returns the SHA-256 of a secret (token or invite code); only
// hashes are stored and looked up, so no secret is compared directly.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// newSecret returns a random 32-byte secret as unpadded base64url.
func (s *Service) newSecret() (string, error) {
	b, err := s.randomBytes(32)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// checkKey checks that key is a valid public key of the scheme.
func checkKey(scheme protocol.SignatureScheme, key []byte) error {
	switch scheme {
	case protocol.SchemeEd25519:
		if len(key) != ed25519.PublicKeySize {
			return fmt.Errorf("Ed25519 key is %d bytes, want %d", len(key), ed25519.PublicKeySize)
		}
		return nil
	case protocol.SchemeECDSAP256SHA256, protocol.SchemeECDSAP384SHA384, protocol.SchemeECDSAP521SHA512:
		_, err := ecdsa.ParseUncompressedPublicKey(curveOf(scheme), key)
		if err != nil {
			return fmt.Errorf("ECDSA key: %v", err)
		}
		return nil
	}
	return fmt.Errorf("signature scheme %#04x not supported", uint16(scheme))
}

func curveOf(scheme protocol.SignatureScheme) elliptic.Curve {
	switch scheme {
	case protocol.SchemeECDSAP256SHA256:
		return elliptic.P256()
	case protocol.SchemeECDSAP384SHA384:
		return elliptic.P384()
	}
	return elliptic.P521()
}

// verifySignature checks a signature by key of the scheme over msg (for
// ECDSA, an ASN.1 DER signature over the scheme's hash of msg, as in MLS).
func verifySignature(scheme protocol.SignatureScheme, key, msg, sig []byte) bool {
	switch scheme {
	case protocol.SchemeEd25519:
		return len(key) == ed25519.PublicKeySize && ed25519.Verify(ed25519.PublicKey(key), msg, sig)
	case protocol.SchemeECDSAP256SHA256, protocol.SchemeECDSAP384SHA384, protocol.SchemeECDSAP521SHA512:
		pub, err := ecdsa.ParseUncompressedPublicKey(curveOf(scheme), key)
		if err != nil {
			return false
		}
		var digest []byte
		switch scheme {
		case protocol.SchemeECDSAP256SHA256:
			h := sha256.Sum256(msg)
			digest = h[:]
		case protocol.SchemeECDSAP384SHA384:
			h := sha512.Sum384(msg)
			digest = h[:]
		default:
			h := sha512.Sum512(msg)
			digest = h[:]
		}
		return ecdsa.VerifyASN1(pub, digest, sig)
	}
	return false
}
