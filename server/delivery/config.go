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
	// DeviceClaimRate and DeviceClaimBurst bound how fast the one-time
	// KeyPackages of one device are handed out, whoever claims them and
	// on whichever node (the budget is kept in the store): past it, a
	// claim gets the device's last-resort package instead, so no number
	// of accounts can drain a pool faster than its client replenishes
	// it, and nobody can make claims of the device fail (docs/protocol.md
	// has the arithmetic).
	DeviceClaimRate  float64
	DeviceClaimBurst int
	// EphemeralRate and EphemeralBurst bound how many ephemeral messages
	// (typing indicators) one device may have relayed, per second and in
	// a burst, on each node; the excess is dropped. Zero means the
	// default: 1 per second, burst 3.
	EphemeralRate  float64
	EphemeralBurst int
	// BlobReservationTTL bounds one attachment upload: the quota it
	// reserved is released then even if the upload's process died, and
	// an upload still running is cut off.
	BlobReservationTTL time.Duration
	// CipherSuites are the MLS cipher suites accepted for conversations
	// and KeyPackages, preferred first (ServerInfo lists them in this
	// order). The default prefers X-Wing (0xF001, post-quantum hybrid
	// KEM), then suite 1, and accepts suites 3, 2, 5 and 7.
	CipherSuites []uint16
	// AllowForeignCredentials accepts KeyPackages and group leaves whose
	// credential is not a Parley credential (protocol.DecodeCredential
	// fails, or not a basic credential). A Parley credential is always
	// checked: this server's name, the device's user and id, the device's
	// registered key, and a certificate for this server that verifies
	// under the user's identity key (and is valid now, for a leaf that
	// enters a group). One with a certificate of the outdated version 1
	// is always refused.
	AllowForeignCredentials bool
	// MaxMessageBytes bounds one MLS message (application or handshake).
	MaxMessageBytes int64
	// MaxGroupStateBytes bounds a GroupInfo plus ratchet tree, and one
	// Welcome (which may carry the tree).
	MaxGroupStateBytes int64
	// MaxPendingProposals bounds the proposals of one epoch of a
	// conversation that wait for a commit to include them by reference:
	// beyond it proposals are refused with too_many_proposals until a
	// commit starts the next epoch. A commit's own proposals (its adds,
	// however many, are by value) do not count.
	MaxPendingProposals int
	// MaxPendingProposalBytes bounds the total size of those proposals.
	MaxPendingProposalBytes int64
	// MaxKeyPackagesPerUpload bounds one KeyPackage upload.
	MaxKeyPackagesPerUpload int
	// MaxPageEntries bounds one page of entries or inbox entries.
	MaxPageEntries int
	// TreeHistoryEpochs is how many epochs before the current one keep
	// their ratchet trees readable (GET .../tree?epoch=E), for devices
	// joining by a Welcome of an older epoch; they cost the node versions
	// those epochs' commits changed. A joiner whose epoch is older joins
	// by external commit instead.
	TreeHistoryEpochs uint64
	// PastEpochs is how many epochs behind the current one an application
	// message may be (late messages after a commit).
	PastEpochs uint64
	// Version is the server software version shown in ServerInfo.
	Version string

	// UnsafeSkipMembershipChecks is for tests only: it makes the service
	// behave like a malicious server that skips its own membership
	// checks, so that any device may fetch any conversation's GroupInfo
	// and join it by external commit. Tests use it to show that clients,
	// not the server, decide who joins (docs/protocol.md, "Membership
	// rules"). parleyd never sets it and its configuration has no key
	// for it.
	UnsafeSkipMembershipChecks bool
	// UnsafeSkipPolicyChecks is for tests only: the service accepts
	// handshakes that break a conversation's roles and policy, like a
	// malicious server, so that tests show that every member rejects
	// them (docs/protocol.md, "Roles and policy"). parleyd never sets it
	// and its configuration has no key for it.
	UnsafeSkipPolicyChecks bool
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
		DeviceClaimRate:         0.004,
		DeviceClaimBurst:        5,
		EphemeralRate:           DefaultEphemeralRate,
		EphemeralBurst:          DefaultEphemeralBurst,
		BlobReservationTTL:      time.Hour,
		CipherSuites:            []uint16{suiteXWing, 1, 3, 2, 5, 7},
		MaxMessageBytes:         1 << 20,
		MaxGroupStateBytes:      6 << 20,
		MaxPendingProposals:     1000,
		MaxPendingProposalBytes: 4 << 20,
		MaxKeyPackagesPerUpload: 100,
		MaxPageEntries:          500,
		PastEpochs:              3,
		TreeHistoryEpochs:       1000,
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
	if !(c.DeviceClaimRate > 0) || c.DeviceClaimRate > 1e6 || c.DeviceClaimBurst < 1 {
		bad("device claim rate %v/s burst %d must be positive (rate at most 1e6/s)", c.DeviceClaimRate, c.DeviceClaimBurst)
	}
	if c.EphemeralRate < 0 || c.EphemeralRate > 1e6 || c.EphemeralBurst < 0 {
		bad("ephemeral rate %v/s burst %d must not be negative (rate at most 1e6/s)", c.EphemeralRate, c.EphemeralBurst)
	}
	if c.BlobReservationTTL < time.Second {
		bad("blob reservation TTL %v must be at least a second", c.BlobReservationTTL)
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
	if c.MaxPendingProposals < 1 {
		bad("max pending proposals %d must be at least 1", c.MaxPendingProposals)
	}
	if c.MaxPendingProposalBytes < 64 {
		bad("max pending proposal bytes %d must be at least 64", c.MaxPendingProposalBytes)
	}
	if c.MaxKeyPackagesPerUpload < 1 {
		bad("max KeyPackages per upload %d must be at least 1", c.MaxKeyPackagesPerUpload)
	}
	if c.MaxPageEntries < 1 {
		bad("max page entries %d must be at least 1", c.MaxPageEntries)
	}
	return errors.Join(errs...)
}

// The default limits of ephemeral messages per device (Config).
const (
	DefaultEphemeralRate  = 1.0
	DefaultEphemeralBurst = 3
)

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
