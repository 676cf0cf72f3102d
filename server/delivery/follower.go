package delivery

import (
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// Follower validates MLS handshake messages against a conversation's
// public group state (RFC 9750 §5: the Delivery Service may check commits
// before it orders them). It is implemented by server/follower on
// mls.PublicGroup; the core only sees signature keys, epochs and opaque
// state bytes. Implementations are safe for concurrent use; the service
// never processes two messages of one conversation at once.
type Follower interface {
	// Start validates the GroupInfo (MLSMessage) and ratchet tree of a new
	// conversation and returns its public state, with the tree as nodes.
	Start(groupInfo, tree []byte) (*GroupState, error)
	// Process validates a handshake message (an MLSMessage-framed
	// PublicMessage carrying a proposal or a commit) of the group's current
	// epoch. For a commit, next carries the GroupInfo and ratchet tree the
	// committer claims for the new epoch; they must match the state the
	// commit produces. Process depends only on g (the stored state of the
	// epoch's start and the proposals of the epoch accepted so far) and
	// changes nothing the caller can observe: the returned Change
	// describes the outcome and what to store with the message — for a
	// proposal, the message itself and the new ProposalsDigest, so that a
	// later commit may include it by reference; for a commit, the new
	// epoch's state.
	Process(g FollowedGroup, msg []byte, next NextState) (*Change, error)
	// Forget drops anything kept in memory for a Change that Process
	// returned for g and the service did not store (an optimisation only).
	Forget(g FollowedGroup, ch *Change)
	// PeekPrivate decodes the unencrypted header of an MLSMessage-framed
	// PrivateMessage.
	PeekPrivate(msg []byte) (PrivateHeader, error)
	// CheckWelcome checks that data is an MLSMessage-framed Welcome of
	// the cipher suite.
	CheckWelcome(data []byte, suite uint16) error
	// EncodeTree assembles the encoded ratchet tree (the ratchet_tree
	// extension body) from a tree's non-blank nodes, by index.
	EncodeTree(nodes []store.TreeNode) ([]byte, error)
	// SplitLegacyState splits a follower state that holds the whole tree
	// (a conversation stored before trees were stored node by node) into
	// the state without the tree and the tree's non-blank nodes.
	SplitLegacyState(state []byte) ([]byte, []store.TreeNode, error)
	// ValidateKeyPackage checks an MLSMessage-framed KeyPackage as RFC
	// 9420 §10.1 requires (signatures, lifetime at now, suite, leaf rules)
	// and describes it.
	ValidateKeyPackage(data []byte, now time.Time) (*KeyPackageInfo, error)
}

// KeyPackageInfo describes a valid KeyPackage.
type KeyPackageInfo struct {
	Suite        uint16    // Suite is its cipher suite.
	Ref          []byte    // Ref is its KeyPackageRef.
	SignatureKey []byte    // SignatureKey is its leaf's signature key.
	NotAfter     time.Time // NotAfter ends its lifetime.
	LastResort   bool      // LastResort is true with the last_resort extension.
	// Identity is the identity of the leaf's basic credential; nil for
	// other credential types.
	Identity []byte
}

// FollowedGroup is the stored public state of a conversation: the
// follower's state as of the start of the current epoch and the proposals
// of the epoch accepted since, each stored once as it was received.
type FollowedGroup struct {
	GroupID   []byte // GroupID is the MLS group id.
	Suite     uint16 // Suite is the cipher suite.
	Epoch     uint64 // Epoch is the current epoch.
	GroupInfo []byte // GroupInfo of the current epoch.
	// State is the follower's opaque state as of the start of the epoch,
	// without the ratchet tree: GroupState.State, or the Change.State of
	// the commit that started it.
	State []byte
	// LoadTree returns the non-blank nodes of the epoch's ratchet tree.
	// The follower calls it only when it does not hold the epoch's group
	// in memory; the tree's hash must be the one State names.
	LoadTree func() ([]store.TreeNode, error)
	// LoadTreeChanges returns the nodes of the epoch's tree that commits
	// after epoch since changed (store.Store.TreeChanges). The follower
	// calls it when it holds the group of an earlier epoch in memory
	// (another node accepted the commits since), to catch up without
	// loading the whole tree; on an error it loads the tree. May be nil.
	LoadTreeChanges func(since uint64) ([]store.TreeNode, error)
	// CatchUpFailed, if not nil, is told why catching up from an earlier
	// epoch failed (a store error from LoadTreeChanges, wrapped, or
	// changes that do not give State); the follower loads the whole
	// tree instead.
	CatchUpFailed func(err error)
	// Proposals counts the proposals of the epoch accepted since.
	Proposals uint64
	// ProposalsDigest is the Change.ProposalsDigest of the last of them;
	// nil when there is none.
	ProposalsDigest []byte
	// LoadProposals returns those proposals from index from (counting
	// from 0) to the last, in the order they were accepted. The follower
	// calls it only when it does not hold them all in memory (after a
	// restart, or when another node accepted some); it checks them
	// against ProposalsDigest.
	LoadProposals func(from uint64) ([]StoredProposal, error)
	// Now is the time of the validation (lifetimes of the KeyPackages a
	// message adds); zero means the follower's clock.
	Now time.Time
}

// StoredProposal is a proposal accepted in the current epoch.
type StoredProposal struct {
	// Message is the MLSMessage as accepted.
	Message []byte
	// Accepted is the FollowedGroup.Now it was validated at.
	Accepted time.Time
}

// NextState is what a committer claims for the epoch its commit starts.
type NextState struct {
	GroupInfo []byte
	Tree      []byte
}

// Leaf is a member of a group as the server sees it: a leaf index, the
// signature key that identifies the device, and the credential the leaf
// carries.
type Leaf struct {
	Index        uint32
	SignatureKey []byte
	// Identity is the identity of the leaf's basic credential; nil for
	// other credential types.
	Identity []byte
}

// GroupState is a validated public group state.
type GroupState struct {
	GroupID []byte // GroupID is the MLS group id.
	Suite   uint16 // Suite is the cipher suite.
	Epoch   uint64 // Epoch is the epoch.
	Members []Leaf // Members are the leaves in index order.
	State   []byte // State is the follower's opaque state to store, without the tree.
	// Tree is the non-blank nodes of the ratchet tree, stored apart.
	Tree []store.TreeNode
	// Timer is the disappearing-message timer of the group's policy
	// (protocol.Policy.Timer; 0 when off or without a policy).
	Timer time.Duration
}

// SenderKind says who sent a handshake message.
type SenderKind uint8

// The kinds of senders of RFC 9420 §6.
const (
	SenderMember    SenderKind = 1 // SenderMember: a member, by leaf.
	SenderExternal  SenderKind = 2 // SenderExternal: an external sender.
	SenderNewMember SenderKind = 3 // SenderNewMember: a new member (external join or its proposal).
)

// Change is a validated handshake message.
type Change struct {
	// Commit is true for a commit, false for a proposal.
	Commit bool
	// Sender is the kind of sender.
	Sender SenderKind
	// SenderKey is the signature key of the sender's leaf: the member's
	// current leaf, or for an external commit the joiner's new leaf.
	SenderKey []byte
	// Epoch is the epoch a commit starts.
	Epoch uint64
	// Added and Removed describe a commit's membership change; Removed
	// carries the keys the leaves had.
	Added, Removed []Leaf
	// Updated are the leaves of existing members whose leaf node a commit
	// replaced (update proposals, the committer's path), as they are
	// after it.
	Updated []Leaf
	// KeyChanged is true when an update replaced a leaf's signature key.
	KeyChanged bool
	// ReInit is true when the commit ends the group.
	ReInit bool
	// TreeChanges are, for a commit, the nodes of the new epoch's tree
	// that differ from the current epoch's (nil Data: now blank): what to
	// store of the tree, which grows with the nodes the commit changed.
	TreeChanges []store.TreeNode
	// State is the follower's state to store with a commit: the new
	// epoch's, without proposals and without the tree. It is nil for a
	// proposal.
	State []byte
	// Policy describes the message for the conversation's roles and
	// policy (protocol.PolicyHandshake.Check): who proposes what, and the
	// policy of the epoch it is made in.
	Policy *protocol.PolicyHandshake
	// Timer is, for a commit, the new epoch's disappearing-message timer
	// (see GroupState.Timer).
	Timer time.Duration
	// ProposalsDigest is, for a proposal, the digest of the epoch's
	// proposals up to and including it: the FollowedGroup.ProposalsDigest
	// to store with it. It is nil for a commit.
	ProposalsDigest []byte
}

// PrivateHeader is the unencrypted header of a PrivateMessage.
type PrivateHeader struct {
	GroupID     []byte
	Epoch       uint64
	ContentType uint8 // ContentType is 1 for application data.
}
