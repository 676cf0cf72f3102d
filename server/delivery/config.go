package delivery

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config holds the Delivery Service's choices. Start from DefaultConfig;
// every field has a usable default.
type Config struct {
	// ServerName is the server's domain: accounts are name@ServerName, and
	// authentication signatures bind it.
	ServerName string
	// OpenRegistration lets anyone register without an invite.
	OpenRegistration bool
	// SessionTTL is the lifetime of a session token.
	SessionTTL time.Duration
	// ChallengeTTL is the lifetime of an authentication challenge.
	ChallengeTTL time.Duration
	// Retention is how long log entries, inbox entries and attachments are
	// kept at most; zero keeps them until acknowledged by every member.
	Retention time.Duration
	// PruneInterval is how often Run prunes the store.
	PruneInterval time.Duration
	// MaxBatch bounds the entries of one group-commit transaction.
	MaxBatch int
	// MaxBatchDelay is how long the writer waits for more submissions after
	// the first one of a batch; zero batches whatever is queued at once
	// (submissions still accumulate while a transaction commits).
	MaxBatchDelay time.Duration
	// SubmitQueue bounds the submissions waiting for the writer; a full
	// queue makes submitters wait.
	SubmitQueue int
	// ClaimRate is the sustained number of KeyPackage claims per second
	// one user may make for one target user.
	ClaimRate float64
	// ClaimBurst is the burst of claims per (claimer, target).
	ClaimBurst int
	// CipherSuites are the MLS cipher suites accepted for conversations
	// and KeyPackages, preferred first (ServerInfo lists them in this
	// order). The default prefers X-Wing (0xF001, post-quantum hybrid
	// KEM), then suite 1, and accepts suites 3, 2, 5 and 7.
	CipherSuites []uint16
	// AllowForeignCredentials accepts KeyPackages and group leaves whose
	// credential is not a Parley credential (protocol.DecodeCredential
	// fails, or not a basic credential). A Parley credential is always
	// checked: this server's name, the device's user and id, the device's
	// registered key, and a certificate that verifies under the user's
	// identity key.
	AllowForeignCredentials bool
	// MaxMessageBytes bounds one MLS message (application or handshake).
	MaxMessageBytes int64
	// MaxGroupStateBytes bounds a GroupInfo plus ratchet tree, and one
	// Welcome (which may carry the tree).
	MaxGroupStateBytes int64
	// MaxKeyPackagesPerUpload bounds one KeyPackage upload.
	MaxKeyPackagesPerUpload int
	// MaxPageEntries bounds one page of entries or inbox entries.
	MaxPageEntries int
	// PastEpochs is how many epochs behind the current one an application
	// message may be (late messages after a commit).
	PastEpochs uint64
	// Version is the server software version shown in ServerInfo.
	Version string
}

// suiteXWing is MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519 (TBD1 of
// draft-ietf-mls-pq-ciphersuites) at Parley's private-use codepoint,
// mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519.
const suiteXWing = 0xF001

// DefaultConfig returns the default configuration for server "localhost".
func DefaultConfig() Config {
	return Config{
		ServerName:              "localhost",
		SessionTTL:              24 * time.Hour,
		ChallengeTTL:            2 * time.Minute,
		Retention:               30 * 24 * time.Hour,
		PruneInterval:           10 * time.Minute,
		MaxBatch:                1024,
		MaxBatchDelay:           0,
		SubmitQueue:             4096,
		ClaimRate:               1,
		ClaimBurst:              10,
		CipherSuites:            []uint16{suiteXWing, 1, 3, 2, 5, 7},
		MaxMessageBytes:         1 << 20,
		MaxGroupStateBytes:      6 << 20,
		MaxKeyPackagesPerUpload: 100,
		MaxPageEntries:          500,
		PastEpochs:              3,
		Version:                 "dev",
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("delivery: config: "+format, args...))
	}
	if c.ServerName == "" || len(c.ServerName) > 253 {
		bad("server name %q must be 1 to 253 bytes", c.ServerName)
	}
	if c.SessionTTL <= 0 {
		bad("session TTL %v must be positive", c.SessionTTL)
	}
	if c.ChallengeTTL <= 0 {
		bad("challenge TTL %v must be positive", c.ChallengeTTL)
	}
	if c.Retention < 0 {
		bad("retention %v must not be negative", c.Retention)
	}
	if c.PruneInterval <= 0 {
		bad("prune interval %v must be positive", c.PruneInterval)
	}
	if c.MaxBatch < 1 {
		bad("max batch %d must be at least 1", c.MaxBatch)
	}
	if c.MaxBatchDelay < 0 {
		bad("max batch delay %v must not be negative", c.MaxBatchDelay)
	}
	if c.SubmitQueue < 1 {
		bad("submit queue %d must be at least 1", c.SubmitQueue)
	}
	if c.ClaimRate <= 0 || c.ClaimBurst < 1 {
		bad("claim rate %v/s burst %d must be positive", c.ClaimRate, c.ClaimBurst)
	}
	if len(c.CipherSuites) == 0 {
		bad("no cipher suites")
	}
	if c.MaxMessageBytes < 64 {
		bad("max message bytes %d must be at least 64", c.MaxMessageBytes)
	}
	if c.MaxGroupStateBytes < 64 {
		bad("max group state bytes %d must be at least 64", c.MaxGroupStateBytes)
	}
	if c.MaxKeyPackagesPerUpload < 1 {
		bad("max KeyPackages per upload %d must be at least 1", c.MaxKeyPackagesPerUpload)
	}
	if c.MaxPageEntries < 1 {
		bad("max page entries %d must be at least 1", c.MaxPageEntries)
	}
	return errors.Join(errs...)
}

// Options are the service's dependencies besides its configuration. Zero
// fields take defaults: time.Now, a discarding logger, crypto/rand, no
// metrics, an in-process Hub.
type Options struct {
	// Now is the clock.
	Now func() time.Time
	// Logger receives structured logs; they never contain message
	// content, tokens, keys or invite codes.
	Logger *slog.Logger
	// Rand is the source of challenges, tokens and invite codes.
	Rand io.Reader
	// Metrics registers the service's collectors.
	Metrics prometheus.Registerer
	// Notifier carries "new entries" wake-ups between the writer and the
	// connections; nil means a new in-process Hub.
	Notifier Notifier
}
