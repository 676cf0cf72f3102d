package mls

import (
	"bytes"
	"fmt"
	"time"

	"github.com/parley-chat/parley/mls/internal/schedule"
)

// Defaults of Config.
const (
	// DefaultOutOfOrderWindow is the default number of generations behind
	// a sender's newest message whose keys are kept for late messages.
	DefaultOutOfOrderWindow = 1000
	// DefaultMaxForward is the default limit on how far one message may
	// advance a sender's ratchet.
	DefaultMaxForward = 10000
	// DefaultMaxPastEpochs is the default number of past epochs whose keys
	// are kept for late application messages.
	DefaultMaxPastEpochs = 3
	// DefaultKeyPackageLifetime is the default lifetime of a KeyPackage.
	DefaultKeyPackageLifetime = 90 * 24 * time.Hour
)

// CredentialReason says why a credential is presented to
// Config.ValidateCredential.
type CredentialReason uint8

// The reasons a credential is validated.
const (
	// ReasonKeyPackage: a KeyPackage validated with ValidateKeyPackage or
	// added by an Add proposal.
	ReasonKeyPackage CredentialReason = iota + 1
	// ReasonUpdate: a member's Update proposal replaces its leaf.
	ReasonUpdate
	// ReasonCommit: a committer's UpdatePath replaces its leaf.
	ReasonCommit
	// ReasonExternalJoin: an external joiner's leaf.
	ReasonExternalJoin
	// ReasonWelcomeTree: a leaf of the tree received when joining.
	ReasonWelcomeTree
	// ReasonExternalSender: an entry of the external_senders extension.
	ReasonExternalSender
)

// String names the reason.
func (r CredentialReason) String() string {
	switch r {
	case ReasonKeyPackage:
		return "key package"
	case ReasonUpdate:
		return "update"
	case ReasonCommit:
		return "commit"
	case ReasonExternalJoin:
		return "external join"
	case ReasonWelcomeTree:
		return "welcome tree"
	case ReasonExternalSender:
		return "external sender"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// CredentialInfo is what Config.ValidateCredential is given. Its slices
// alias the group's state and must not be modified or retained.
type CredentialInfo struct {
	// Credential is the credential presented.
	Credential Credential
	// SignatureKey is the signature public key bound to it.
	SignatureKey []byte
	// Leaf is the leaf index the credential will occupy (meaningless for
	// ReasonKeyPackage outside a commit and for ReasonExternalSender).
	Leaf LeafIndex
	// Reason says why the credential is validated.
	Reason CredentialReason
	// Previous is the credential being replaced (Update, a commit's path,
	// a resync external join), or nil. When ValidateCredential is set it
	// decides whether Credential may replace Previous (RFC 9420 §12.1.2:
	// the same client); without it, the identity must be unchanged.
	Previous *Credential
}

// Config holds the application's choices for a group. The zero Config is
// usable: every zero field takes its default. A Config is copied by the
// functions that take it; functions in it must be safe to call from the
// goroutine that uses the group.
type Config struct {
	// Now is the clock used for lifetime checks (RFC 9420 §7.3); nil
	// means time.Now.
	Now func() time.Time

	// ValidateCredential, if non-nil, is called for every new or replaced
	// credential (RFC 9420 §5.3.1) before it is accepted: KeyPackages
	// added, Update proposals, commit paths, external joins, every leaf
	// of a tree received when joining. A non-nil error rejects the
	// message, with ErrCredentialRejected. When it is nil every
	// credential is accepted, except that a replaced credential must keep
	// its identity (basic: the same identity bytes; other types: the same
	// encoding).
	ValidateCredential func(CredentialInfo) error

	// OutOfOrderWindow is how many generations behind a sender's newest
	// message keys are kept for late messages (RFC 9420 §15.3); zero means
	// DefaultOutOfOrderWindow, at most 65536.
	OutOfOrderWindow uint32

	// MaxForward caps how far one message may advance a sender's ratchet;
	// zero means DefaultMaxForward.
	MaxForward uint32

	// MaxPastEpochs is the number of past epochs whose message keys (and
	// sender view) are kept for late application messages; zero means
	// DefaultMaxPastEpochs, negative keeps none.
	MaxPastEpochs int

	// PaddingBlock, above 1, pads PrivateMessage contents to a multiple of
	// this many bytes (RFC 9420 §6.3.1).
	PaddingBlock int

	// EncryptHandshake sends proposals and commits as PrivateMessage;
	// the default, false, sends them as PublicMessage so that the Delivery
	// Service can validate them (RFC 9750).
	EncryptHandshake bool

	// PSKs holds the external pre-shared keys the client knows (RFC 9420
	// §8.4); nil means none.
	PSKs PSKStore

	// DisableGREASE leaves out the random GREASE values (RFC 9420 §13.5)
	// that the capabilities, leaf nodes, KeyPackages and GroupInfos this
	// client creates otherwise carry to keep peers tolerant of unknown
	// values. GREASE values from others are ignored either way.
	DisableGREASE bool

	// Workers bounds the goroutines used for path encryption and tree
	// validation; zero means GOMAXPROCS.
	Workers int
}

// normalized returns a copy of c with defaults filled in, or an error.
func (c *Config) normalized() (*Config, error) {
	var n Config
	if c != nil {
		n = *c
	}
	if n.Now == nil {
		n.Now = time.Now
	}
	if n.OutOfOrderWindow == 0 {
		n.OutOfOrderWindow = DefaultOutOfOrderWindow
	}
	if n.MaxForward == 0 {
		n.MaxForward = DefaultMaxForward
	}
	if n.MaxPastEpochs == 0 {
		n.MaxPastEpochs = DefaultMaxPastEpochs
	}
	if n.MaxPastEpochs < 0 {
		n.MaxPastEpochs = 0
	}
	if err := n.secretTreeConfig().Validate(); err != nil {
		return nil, fmt.Errorf("mls: config: %w", err)
	}
	return &n, nil
}

func (c *Config) secretTreeConfig() schedule.Config {
	return schedule.Config{Window: c.OutOfOrderWindow, MaxForward: c.MaxForward}
}

// now returns the current Unix time in seconds (0 before 1970).
func (c *Config) now() uint64 {
	u := c.Now().Unix()
	if u < 0 {
		return 0
	}
	return uint64(u)
}

// checkCredential runs the credential hook, or the default continuity
// rule when there is none.
func (c *Config) checkCredential(info CredentialInfo) error {
	if c.ValidateCredential != nil {
		if err := c.ValidateCredential(info); err != nil {
			return fmt.Errorf("%s credential at leaf %d: %w: %w", info.Reason, info.Leaf, err, ErrCredentialRejected)
		}
		return nil
	}
	if info.Previous != nil && !sameIdentity(*info.Previous, info.Credential) {
		return fmt.Errorf("%s credential at leaf %d changes the identity: %w", info.Reason, info.Leaf, ErrCredentialRejected)
	}
	return nil
}

// sameIdentity is the default identity comparison.
func sameIdentity(a, b Credential) bool {
	if a.Type != b.Type {
		return false
	}
	if a.Type == CredentialBasic {
		return bytes.Equal(a.Identity, b.Identity)
	}
	return bytes.Equal(encodeCredential(a), encodeCredential(b))
}

// PSKStore gives a group access to pre-shared keys (RFC 9420 §8.4).
// Returned secrets are copied by the caller and never modified.
type PSKStore interface {
	// ExternalPSK returns the external PSK with the given id.
	ExternalPSK(id []byte) (secret []byte, ok bool)
	// ResumptionPSK returns the resumption_psk of the given group and
	// epoch (RFC 9420 §8.6).
	ResumptionPSK(groupID []byte, epoch uint64) (secret []byte, ok bool)
}

// PSKs is a simple PSKStore: a map of external PSKs by id and the groups
// whose resumption PSKs may be used (for ReInit and branch joiners).
type PSKs struct {
	// External maps string(psk_id) to the PSK.
	External map[string][]byte
	// Groups are consulted for resumption PSKs.
	Groups []*Group
}

// ExternalPSK implements PSKStore.
func (p *PSKs) ExternalPSK(id []byte) ([]byte, bool) {
	if p == nil {
		return nil, false
	}
	s, ok := p.External[string(id)]
	return s, ok
}

// ResumptionPSK implements PSKStore.
func (p *PSKs) ResumptionPSK(groupID []byte, epoch uint64) ([]byte, bool) {
	if p == nil {
		return nil, false
	}
	for _, g := range p.Groups {
		if s, ok := g.ResumptionPSK(groupID, epoch); ok {
			return s, true
		}
	}
	return nil, false
}
