package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/client/internal/padding"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// StoreFile is the name of the encrypted store inside the profile
// directory.
const StoreFile = "parley.db"

// DefaultCipherSuites are the MLS cipher suites this client supports, in
// order of preference: X-Wing (TBD1, post-quantum hybrid) first, then suite
// 1. New conversations use the first one the server accepts.
var DefaultCipherSuites = []mls.CipherSuite{
	mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519,
	mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519,
}

// Config holds the choices of a Client. Zero fields take their defaults.
type Config struct {
	// ProfileDir is the directory of the profile (created with mode 0700).
	ProfileDir string
	// Passphrase derives the store key with Argon2id; or set KeyFile.
	Passphrase []byte
	// KeyFile is the path of the 32-byte store key file (created with
	// mode 0600 for a new profile when missing).
	KeyFile string
	// KDF are the Argon2id parameters of a new store; zero means
	// store.DefaultKDFParams (tests lower them).
	KDF store.KDFParams
	// Store, if set, is an open store the client uses instead of the
	// SQLite store in ProfileDir (the web client's IndexedDB store);
	// Passphrase, KeyFile and KDF are then unused, and ProfileDir may be
	// empty: the profile directory is then not locked (the store's owner
	// keeps it to one client) and the MarkShown positions are kept in
	// memory only. Close closes the store.
	Store store.Store

	// ServerURL overrides the server URL stored in the profile. Like
	// Register's, it must be https, or plain http of a loopback host.
	ServerURL string
	// TLSFingerprint pins the server's certificate by the hex SHA-256 of
	// its DER encoding (as parleyd prints it), for self-signed servers.
	// When set, the usual chain verification is replaced by the pin. It
	// is stored in the profile (by Register, or by Open for a registered
	// profile): a later Open without it uses the stored pin.
	TLSFingerprint string
	// netConfig holds, natively (not in the browser), TLSConfig, the base
	// TLS configuration (root CAs for a private CA), and HTTPClient,
	// which if set is used as is (TLSFingerprint and TLSConfig are then
	// ignored). Set them as fields: cfg.HTTPClient = hc.
	netConfig

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxLeafLifetime bounds the total lifetime of the KeyPackages and
	// leaves this client accepts and sets that of those it creates
	// (mls.Config.MaxLeafLifetime, RFC 9420 §7.2); zero means
	// mls.DefaultMaxLeafLifetime, which parleyd's Delivery Service uses
	// too, negative no bound.
	MaxLeafLifetime time.Duration
	// Logger receives diagnostics; it never receives content or secrets.
	// Nil discards them.
	Logger *slog.Logger

	// CipherSuites are the supported suites in order of preference;
	// nil means DefaultCipherSuites.
	CipherSuites []mls.CipherSuite
	// KeyPackageBatch is how many one-time KeyPackages are uploaded at a
	// time (default 20); KeyPackageLowWater is the pool size below which
	// the pool is replenished (default 10). KeyPackageCheckInterval is
	// how often a connected client checks its pool (default 10 minutes;
	// negative: only on connecting, after a Welcome and on Sync). The
	// server hands out a device's one-time packages at a bounded rate
	// (docs/protocol.md, "KeyPackage claims"): the defaults keep the
	// pool of a connected client from ever running empty at the
	// server's default rate.
	KeyPackageBatch         int
	KeyPackageLowWater      int
	KeyPackageCheckInterval time.Duration
	// RevocationCheckInterval is how often a connected client asks the
	// server for revoked and disabled devices still in its conversations,
	// to remove them (default 10 minutes; negative: only when the server
	// tells it, after connecting and on Sync). The server tells connected
	// members at once of a revocation or a disable it handles; this check
	// catches a device that an administrator disabled on the server's
	// host (parleyd admin devices disable), which the running server does
	// not learn of.
	RevocationCheckInterval time.Duration
	// SelfUpdateMessages and SelfUpdateInterval trigger a self-update
	// commit in a conversation (post-compromise security) after this
	// device sent that many messages in it, or that long after its last
	// update (defaults 100 messages, 7 days; negative disables).
	SelfUpdateMessages int
	SelfUpdateInterval time.Duration
	// DisableTyping turns typing indicators off both ways: SendTyping
	// sends nothing, and the connection does not ask the server for the
	// other members' (no EventTyping), as a user who does not show that
	// they type does not see others type. parley sets it from
	// PARLEY_TYPING=off (docs/cli.md).
	DisableTyping bool
	// MinBackoff and MaxBackoff bound the reconnect delay (defaults
	// 500 ms and 30 s); the delay doubles after each failure, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// CommitRetries bounds the automatic retries of a refused commit
	// (default 10).
	CommitRetries int
	// ResyncLimit and ResyncWindow bound how often this device rejoins a
	// conversation by external commit because it could not process a
	// commit the server accepted, or missed one (docs/protocol.md,
	// "Recovery from bad commits"): at most ResyncLimit times, failed
	// attempts included, per ResyncWindow (defaults 5 and 24 hours).
	// Beyond that the conversation is marked unrecoverable
	// (Alarm.Unrecoverable) and must be recreated, so that a member who
	// keeps sending bad commits cannot keep the others rejoining.
	ResyncLimit  int
	ResyncWindow time.Duration
	// EventBuffer bounds the events waiting to be read from Events
	// (default DefaultEventBuffer); beyond it they are replaced by one
	// EventOverflow (see Client.Events).
	EventBuffer int
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.CipherSuites) == 0 {
		cfg.CipherSuites = DefaultCipherSuites
	}
	if cfg.KeyPackageBatch <= 0 {
		cfg.KeyPackageBatch = 20
	}
	if cfg.KeyPackageLowWater <= 0 {
		cfg.KeyPackageLowWater = 10
	}
	if cfg.KeyPackageCheckInterval == 0 {
		cfg.KeyPackageCheckInterval = 10 * time.Minute
	}
	if cfg.RevocationCheckInterval == 0 {
		cfg.RevocationCheckInterval = 10 * time.Minute
	}
	if cfg.SelfUpdateMessages == 0 {
		cfg.SelfUpdateMessages = 100
	}
	if cfg.SelfUpdateInterval == 0 {
		cfg.SelfUpdateInterval = 7 * 24 * time.Hour
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.CommitRetries <= 0 {
		cfg.CommitRetries = 10
	}
	if cfg.ResyncLimit <= 0 {
		cfg.ResyncLimit = 5
	}
	if cfg.ResyncWindow <= 0 {
		cfg.ResyncWindow = 24 * time.Hour
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = DefaultEventBuffer
	}
	return cfg
}

// Client is one device's view of a Parley account. It is safe for
// concurrent use.
type Client struct {
	cfg  Config
	st   store.Store
	lock *os.File // the profile's lock (see LockFile)
	// shown holds the MarkShown positions (see shownLog).
	shown *shownLog
	log   *slog.Logger
	net   transport

	// skipPostCheck makes this client send posts its channel's policy
	// forbids, as a modified client could (tests only, channel.go).
	skipPostCheck bool

	// life is cancelled by Close; background work derives from it.
	life   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu serializes every operation on MLS state, cursors and history.
	mu         sync.Mutex
	id         *store.Identity
	serverURL  string
	serverName string
	suites     []mls.CipherSuite // accepted by the server, our preference order
	groups     map[protocol.ConversationID]*mls.Group
	blocked    map[protocol.ConversationID]string // conversation → user whose identity changed
	unusable   map[protocol.ConversationID]error  // conversations refused: see markUnusable
	unsafe     map[protocol.ConversationID]*Alarm // conversations with a rejected membership change
	// current holds the conversations caught up with the server since
	// Open, stale those whose store proved older than the log (stale.go).
	current   map[protocol.ConversationID]bool
	stale     map[protocol.ConversationID]bool
	rejoining map[protocol.ConversationID]bool // conversations rejoinLocked applies entries of (nil until then)
	mlsCfg    *mls.Config

	tokMu    sync.Mutex
	token    string
	tokenExp time.Time

	// signers keeps this device's signer per suite (see signer), with
	// the device key it was made from.
	signersMu sync.Mutex
	signers   map[mls.CipherSuite]cachedSigner

	ev *eventQueue

	// self is the account's user name once known (selfUser); muted the
	// muted conversations; idx the search index (search.go).
	self  atomic.Pointer[string]
	muted mutedSet
	idx   searchIndex
	// expiryWake tells the expiry loop (expiry.go) to recompute when
	// the next message expires.
	expiryWake chan struct{}

	wsMu sync.Mutex
	ws   *wsConn // the live connection of Run, for acks

	// historyMu serializes imports of a history received at link time
	// (linkhistory.go).
	historyMu sync.Mutex

	// lastResortUsed are the suites whose last-resort KeyPackage a
	// Welcome used: the next replenishment replaces it.
	lrMu           sync.Mutex
	lastResortUsed map[mls.CipherSuite]bool

	fill fillState // fills of the ratchet tree running (fill.go)
	// kpMu makes replenishments one at a time, so that concurrent ones
	// (after a join, on connect, on a sync) do not upload twice.
	kpMu sync.Mutex
	// legacyKeyPackages makes KeyPackages as clients did before
	// keyPackageCaps (tests only, see export_test.go).
	legacyKeyPackages atomic.Bool
	// replaceUnsupported is set when the server refused an upload with
	// replace (a server older than it): the pool is only topped up.
	replaceUnsupported atomic.Bool
	// retention is the server's retention once asked (serverRetention),
	// nil before.
	retention atomic.Pointer[time.Duration]
}

// Open opens the profile in cfg.ProfileDir, creating the directory and an
// empty store (mode 0600) if needed. A profile without an account must be
// registered with Register before anything else. The profile stays locked
// until Close: while it is open, another Open of it fails with an error
// matching ErrProfileBusy (a *ProfileBusyError).
func Open(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if cfg.Store != nil {
		return openWith(ctx, cfg, cfg.Store, nil)
	}
	if cfg.ProfileDir == "" {
		return nil, errors.New("client: open: no profile directory")
	}
	return openProfile(ctx, cfg)
}

// openWith makes the Client of an open store; lock is the profile's
// lock, nil for a store given in Config.Store. On error the caller
// closes the store and releases the lock.
func openWith(ctx context.Context, cfg Config, st store.Store, lock *os.File) (*Client, error) {
	life, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg: cfg, st: st, log: cfg.Logger, lock: lock,
		life: life, cancel: cancel,
		groups:     map[protocol.ConversationID]*mls.Group{},
		expiryWake: make(chan struct{}, 1),
		blocked:    map[protocol.ConversationID]string{},
		unusable:   map[protocol.ConversationID]error{},
		unsafe:     map[protocol.ConversationID]*Alarm{},
		current:    map[protocol.ConversationID]bool{},
		stale:      map[protocol.ConversationID]bool{},
		ev:         newEventQueue(cfg.EventBuffer),
	}
	c.ev.observe = c.observe
	// Padding hides from the server what a message is: receipts,
	// reactions and short texts all travel as one size (docs/content.md).
	c.mlsCfg = &mls.Config{Now: cfg.Now, MaxLeafLifetime: cfg.MaxLeafLifetime, ValidateCredential: c.validateCredential, Padding: padding.Message}
	if err := c.pinnedFingerprint(ctx); err != nil {
		cancel()
		return nil, err
	}
	var err error
	if c.net, err = c.cfg.newTransport(); err != nil {
		cancel()
		return nil, err
	}
	if err := c.load(ctx); err != nil {
		cancel()
		return nil, err
	}
	c.shown = memoryShownLog()
	if cfg.ProfileDir != "" {
		if c.shown, err = openShownLog(cfg.ProfileDir); err != nil {
			cancel()
			return nil, err
		}
	}
	c.reportTrustAlarm()
	return c, nil
}

// settingFingerprint is the setting holding the server certificate's
// pinned fingerprint (Config.TLSFingerprint).
const settingFingerprint = "tls_fingerprint"

// pinnedFingerprint makes Config.TLSFingerprint persistent: one given to
// Open is stored in a registered profile (replacing the one stored); when
// none is given, the stored one is used.
func (c *Client) pinnedFingerprint(ctx context.Context) error {
	if c.cfg.TLSFingerprint != "" {
		fp := strings.ToLower(c.cfg.TLSFingerprint)
		return c.st.Update(ctx, func(tx store.Tx) error {
			if _, err := tx.Identity(); err != nil {
				return nil // stored by Register
			}
			if old, err := tx.Setting(settingFingerprint); err == nil && string(old) == fp {
				return nil
			}
			return tx.SetSetting(settingFingerprint, []byte(fp))
		})
	}
	return c.st.View(ctx, func(tx store.Tx) error {
		if b, err := tx.Setting(settingFingerprint); err == nil {
			c.cfg.TLSFingerprint = string(b)
		}
		return nil
	})
}

// transportError wraps the error of a failed request or dial: a pinned
// certificate mismatch as itself, anything else as ErrServerUnreachable.
func transportError(op string, err error) error {
	var cm *CertificateMismatchError
	if errors.As(err, &cm) {
		return fmt.Errorf("%s: %w", op, cm)
	}
	return fmt.Errorf("%s: %w: %v", op, ErrServerUnreachable, err)
}

// Settings keys of the store.
const (
	settingServerName = "server_name"
	settingSuites     = "cipher_suites"
	// settingKeyPackageCaps is the capability generation of the pool of
	// KeyPackages this device uploaded (keyPackageCaps); none is
	// generation 1.
	settingKeyPackageCaps = "keypackages/caps"
)

// load reads the identity and the groups of a registered profile.
func (c *Client) load(ctx context.Context) error {
	return c.st.View(ctx, func(tx store.Tx) error {
		id, err := tx.Identity()
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("client: open: read identity: %w", err)
		}
		c.id = id
		c.setSelf(id.User)
		if err := c.loadMuted(tx); err != nil {
			return fmt.Errorf("client: open: read muted conversations: %w", err)
		}
		c.serverURL = strings.TrimRight(id.Server, "/")
		if c.cfg.ServerURL != "" {
			if err := checkServerURL(c.cfg.ServerURL); err != nil {
				return fmt.Errorf("client: open: %w", err)
			}
			c.serverURL = strings.TrimRight(c.cfg.ServerURL, "/")
		}
		name, err := tx.Setting(settingServerName)
		if err != nil {
			return fmt.Errorf("client: open: read server name: %w", err)
		}
		c.serverName = string(name)
		if b, err := tx.Setting(settingSuites); err == nil {
			c.suites = decodeSuites(b)
		}
		convs, err := tx.Conversations()
		if err != nil {
			return fmt.Errorf("client: open: list conversations: %w", err)
		}
		if err := c.loadAlarms(tx, convs); err != nil {
			return err
		}
		for _, cv := range convs {
			g, err := c.readGroup(tx, cv.ID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				continue
			case errors.Is(err, ErrStateUnusable):
				c.markUnusable(cv.ID, err)
				continue
			case err != nil:
				return fmt.Errorf("client: open: load group of conversation %d: %w", cv.ID, err)
			}
			c.groups[cv.ID] = g
		}
		return nil
	})
}

// readGroup restores the group of a conversation from the store: the
// full state with the ratchet state written after it applied (the rule
// of mls.Group.RatchetState). A stored ratchet state is always newer than
// the full state (writing a full state deletes it), so one that does not
// apply — mls.ErrStale, mls.ErrMalformed or any other refusal — means the
// store is damaged: the full state alone could encrypt again with keys
// already used, so readGroup fails with an error wrapping
// ErrStateUnusable rather than fall back to it. It returns an error
// wrapping store.ErrNotFound if the conversation has no group state.
func (c *Client) readGroup(tx store.Tx, conv protocol.ConversationID) (*mls.Group, error) {
	state, err := tx.GroupState(conv)
	if err != nil {
		return nil, err
	}
	g, err := c.loadGroup(state)
	if err != nil {
		return nil, fmt.Errorf("load group state: %v", err)
	}
	r, err := tx.RatchetState(conv)
	if errors.Is(err, store.ErrNotFound) {
		return g, nil
	}
	if err != nil {
		return nil, err
	}
	if err := g.ApplyRatchetState(r); err != nil {
		return nil, fmt.Errorf("the stored ratchet state does not apply to the stored group state (%v), "+
			"so the message keys already used are unknown: %w", err, ErrStateUnusable)
	}
	return g, nil
}

// markUnusable refuses a conversation whose stored state cannot be
// restored safely (err wraps ErrStateUnusable): its group stays out of
// memory, so that nothing is encrypted or decrypted in it, its entries
// wait on the server, and operations on it fail with err. A UI learns it
// from an EventError. Only a Welcome that adds this device again clears
// it. c.mu is held (or the Client is being opened).
func (c *Client) markUnusable(conv protocol.ConversationID, err error) {
	err = fmt.Errorf("conversation %d: %w", conv, err)
	c.unusable[conv] = err
	delete(c.groups, conv)
	c.log.Error("conversation refused: stored state unusable", "conversation", conv, "err", err)
	c.ev.push(Event{Kind: EventError, Conversation: conv, Err: err})
}

// missingGroup is the error of an operation on a conversation without a
// group in memory: the reason it was refused, or ErrUnknownConversation.
// c.mu is held.
func (c *Client) missingGroup(conv protocol.ConversationID) error {
	if err := c.unusable[conv]; err != nil {
		return err
	}
	return ErrUnknownConversation
}

// loadGroup restores a group from its stored state.
func (c *Client) loadGroup(state []byte) (*mls.Group, error) {
	if len(state) < 4 {
		return nil, errors.New("state too short")
	}
	// The suite is bytes 2-3 of the state (version, kind, cipher_suite).
	cs := mls.CipherSuite(uint16(state[2])<<8 | uint16(state[3]))
	s, err := c.signer(cs)
	if err != nil {
		return nil, err
	}
	return mls.LoadGroup(c.mlsCfg, state, s)
}

// signer returns this device's signer for a suite: the device key is one
// Ed25519 key, usable in every suite with Ed25519 signatures. A signer
// is made once per suite and device key: making one derives the public
// key, a scalar multiplication, which Open would otherwise repeat for
// every group it loads (slow in the browser's WebAssembly).
func (c *Client) signer(cs mls.CipherSuite) (*mls.Signer, error) {
	if c.id == nil {
		return nil, ErrNotRegistered
	}
	key := c.id.DeviceKey
	c.signersMu.Lock()
	defer c.signersMu.Unlock()
	if cached, ok := c.signers[cs]; ok && bytes.Equal(cached.key, key) {
		return cached.signer, nil
	}
	s, err := mls.NewSigner(cs, key)
	if err != nil {
		return nil, err
	}
	if c.signers == nil {
		c.signers = map[mls.CipherSuite]cachedSigner{}
	}
	c.signers[cs] = cachedSigner{key: key, signer: s}
	return s, nil
}

// cachedSigner is a signer kept by Client.signer with its device key.
type cachedSigner struct {
	key    []byte
	signer *mls.Signer
}

// Close stops background work and closes the store. Events is closed.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	c.ev.close()
	err := errors.Join(c.shown.close(), c.st.Close())
	unlockProfile(c.lock)
	c.lock = nil
	return err
}

// Account describes the profile's account.
type Account struct {
	// User is the account name; Address is "name@server".
	User    string `json:"user"`
	Address string `json:"address"`
	// Device is this device's id.
	Device protocol.DeviceID `json:"device"`
	// Server is the server's URL; ServerName its domain.
	Server     string `json:"server"`
	ServerName string `json:"server_name"`
	// IdentityKey is the Ed25519 identity public key.
	IdentityKey []byte `json:"identity_key"`
	// TLSFingerprint is the server certificate's pinned fingerprint
	// (Config.TLSFingerprint, as stored in the profile), if any.
	TLSFingerprint string `json:"tls_fingerprint,omitempty"`
}

// Whoami returns the profile's account, or ErrNotRegistered.
func (c *Client) Whoami() (*Account, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id == nil {
		return nil, fmt.Errorf("client: whoami: %w", ErrNotRegistered)
	}
	return &Account{
		User: c.id.User, Address: c.id.User + "@" + c.serverName, Device: c.id.Device,
		Server: c.serverURL, ServerName: c.serverName,
		IdentityKey:    ed25519.PrivateKey(c.id.IdentityKey).Public().(ed25519.PublicKey),
		TLSFingerprint: strings.ToLower(c.cfg.TLSFingerprint),
	}, nil
}

// encodeSuites and decodeSuites store the suite list as a setting.
func encodeSuites(s []mls.CipherSuite) []byte {
	var b []byte
	for _, cs := range s {
		b = append(b, byte(cs>>8), byte(cs))
	}
	return b
}

func decodeSuites(b []byte) []mls.CipherSuite {
	var s []mls.CipherSuite
	for i := 0; i+1 < len(b); i += 2 {
		s = append(s, mls.CipherSuite(uint16(b[i])<<8|uint16(b[i+1])))
	}
	return s
}
