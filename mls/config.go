package mls

import (
	"bytes"
	"fmt"
	"time"

	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/wire"
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
	// KeyPackageClockSkew is how far NewKeyPackage sets a KeyPackage's
	// not_before into the past, for peers whose clocks run behind.
	KeyPackageClockSkew = time.Hour
	// DefaultMaxLeafLifetime is the default of Config.MaxLeafLifetime:
	// the total lifetime of a default KeyPackage (DefaultKeyPackageLifetime
	// plus KeyPackageClockSkew), as OpenMLS bounds leaf lifetimes by its
	// own default KeyPackage lifetime and skew margin (84 days plus an
	// hour).
	DefaultMaxLeafLifetime = DefaultKeyPackageLifetime + KeyPackageClockSkew
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

// ExternalProposalInfo is what Config.AuthorizeExternalProposal is given.
// Its slices alias group state and must not be modified or retained.
type ExternalProposalInfo struct {
	// GroupID and Epoch are the group's and the current epoch.
	GroupID []byte
	Epoch   uint64
	// Proposal describes the proposal; Proposal.Sender says whether it
	// comes from an external sender (with its index) or a new member.
	Proposal ProposalInfo
	// Credential and SignatureKey are the sender's: the external_senders
	// entry of an external sender, the KeyPackage's leaf of a new member.
	Credential   Credential
	SignatureKey []byte
}

// Config holds the application's choices for a group. The zero Config is
// usable: every zero field takes its default. A Config is copied by the
// functions that take it; functions in it must be safe to call from the
// goroutine that uses the group.
type Config struct {
	// Now is the clock used for lifetime checks (RFC 9420 §7.3); nil
	// means time.Now.
	Now func() time.Time

	// MaxLeafLifetime is the longest total lifetime (not_after minus
	// not_before) accepted for a LeafNode that carries one, that is a
	// KeyPackage's (RFC 9420 §7.2: "Applications MUST define a maximum
	// total lifetime that is acceptable for a LeafNode, and reject any
	// LeafNode where the total lifetime is longer"). It is checked
	// wherever a leaf's lifetime is: by ValidateKeyPackage (§10.1), for
	// every Add proposal received, committed or sent (§12.1.1, §12.2), and
	// for every leaf of a tree received when joining or following a group
	// (§7.3, §12.4.3.1: JoinFromWelcome, JoinExternal, NewPublicGroup).
	// NewKeyPackage keeps its KeyPackages within it. Zero means
	// DefaultMaxLeafLifetime. Negative means no bound, for an application
	// that bounds lifetimes otherwise (the official test vectors have
	// leaves valid from 0 to 2^64-1 seconds, beyond any time.Duration).
	// Every member and the Delivery Service must use the same bound, or a
	// KeyPackage one accepts another refuses.
	MaxLeafLifetime time.Duration

	// ValidateCredential, if non-nil, is called for every new or replaced
	// credential (RFC 9420 §5.3.1) before it is accepted: KeyPackages
	// added, Update proposals, commit paths, external joins, every leaf
	// of a tree received when joining. A non-nil error rejects the
	// message, with ErrCredentialRejected. When it is nil every
	// credential is accepted, except that a replaced credential must keep
	// its identity (basic: the same identity bytes; other types: the same
	// encoding).
	ValidateCredential func(CredentialInfo) error

	// AuthorizeExternalProposal, if non-nil, is called for every proposal
	// from outside the group (an external sender's, RFC 9420 §12.1.8.1,
	// or a new_member_proposal Add) that passed the protocol's checks,
	// before a member or a PublicGroup caches it: a non-nil error refuses
	// it with ErrInvalidProposal ("External proposals that are not
	// authorized are considered invalid", §12.1.8). nil accepts every
	// such proposal; the application then decides when it commits.
	AuthorizeExternalProposal func(ExternalProposalInfo) error

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

	// Padding, when set, is the padding policy for every PrivateMessage
	// this client sends, application messages and (with EncryptHandshake)
	// proposals and commits alike. It is called with the length of the
	// encoded PrivateMessageContent (content, signature and, for a commit,
	// confirmation tag) and returns the length to pad it to with zero
	// bytes inside the encryption (RFC 9420 §6.3.1), so that the Delivery
	// Service sees only a few message sizes (§15.1). It must return at
	// least its argument, or sending fails. Receivers need no setting:
	// they strip zero padding and refuse any other (§6.3.1). nil pads
	// nothing beyond PaddingBlock.
	//
	// A bucket policy (a few fixed sizes for short messages, then a
	// coarse function such as Padmé for long ones) hides what a message
	// is (a read receipt, a reaction, a short text) at a bounded cost.
	Padding func(contentLen int) int

	// PaddingBlock, above 1, pads PrivateMessage contents, after Padding,
	// to a multiple of this many bytes (RFC 9420 §6.3.1).
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
	if n.MaxLeafLifetime == 0 {
		n.MaxLeafLifetime = DefaultMaxLeafLifetime
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

// lifetimeWithin reports whether a leaf's lifetime is well formed and no
// longer than c.MaxLeafLifetime (RFC 9420 §7.2); a negative
// MaxLeafLifetime is no bound.
func (c *Config) lifetimeWithin(lt *wire.Lifetime) bool {
	if c.MaxLeafLifetime < 0 {
		return lt != nil && lt.NotBefore <= lt.NotAfter
	}
	return tree.LifetimeWithin(lt, c.MaxLeafLifetime)
}

// maxTreeLifetime is c.MaxLeafLifetime for tree.ValidateOptions, where
// zero is no bound.
func (c *Config) maxTreeLifetime() time.Duration { return max(c.MaxLeafLifetime, 0) }

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
	// Groups are consulted for resumption PSKs, and by JoinFromWelcome
	// for the old group of a ReInit or branch Welcome when
	// JoinOptions.OldGroup is nil (a store of another type must be
	// accompanied by JoinOptions.OldGroup). Their ids should be distinct.
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
