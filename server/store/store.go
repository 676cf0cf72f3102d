// Package store defines the persistence the Parley server core needs: the
// [Store] interface, its plain domain types and the sentinel errors callers
// branch on. Store is the composition of the roles its callers use:
// [Accounts], [KeyPackages], [Conversations], [Attachments], [Links]
// and [Maintenance]. Backends live in subpackages named after their
// dependency: sqlite (one file, for a single node) and postgres (shared by
// the nodes of a cluster). The SQL they have in common lives once in
// sqlstore, which each of them builds on; every backend passes the
// conformance suite in storetest.
//
// The store holds only routing metadata and opaque MLS bytes. It assigns
// user, conversation and invite ids and the sequence numbers of log and
// inbox entries. Every write is durable when its method returns without
// error, and every method documented as atomic is one transaction: it
// happens completely or not at all. The store takes no time from a clock:
// callers pass creation times and "now".
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Backends wrap them with the operation and the input
// (never secrets or message content); test with errors.Is.
var (
	// ErrNotFound: the user, device, conversation, session, challenge,
	// blob or invite does not exist (or has expired).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique value already exists: user name, device id,
	// device signature key, group id, KeyPackage ref, blob id.
	ErrConflict = errors.New("already exists")
	// ErrStaleEpoch: a handshake names an epoch other than the
	// conversation's current one. The error is a *StaleEpochError.
	ErrStaleEpoch = errors.New("stale epoch")
	// ErrStaleState: a handshake names the current epoch but the
	// follower state changed since the caller read it (another proposal
	// of the epoch was accepted, possibly on another node). The caller
	// reads the conversation again and revalidates.
	ErrStaleState = errors.New("stale follower state")
	// ErrNoKeyPackage: no active device of the user has a usable
	// KeyPackage of the cipher suite.
	ErrNoKeyPackage = errors.New("no key package")
	// ErrInviteInvalid: the invite is unknown, used up or expired.
	ErrInviteInvalid = errors.New("invite invalid")
	// ErrNotMember: the device is not a member of the conversation.
	ErrNotMember = errors.New("not a member")
	// ErrInvalid: an argument is out of range (such as an ack beyond the
	// log head, or an empty required field).
	ErrInvalid = errors.New("invalid argument")
	// ErrGone: what was asked for was stored once but no longer is (a
	// ratchet tree of an epoch older than the store keeps).
	ErrGone = errors.New("no longer stored")
	// ErrQuotaExceeded: a reservation of attachment quota does not fit in
	// what the owner's blobs and other reservations leave of the quota.
	ErrQuotaExceeded = errors.New("quota exceeded")
)

// StaleEpochError is returned when a compare-and-set on a conversation's
// epoch fails. errors.Is(err, ErrStaleEpoch) holds for it.
type StaleEpochError struct {
	// Conversation is the conversation.
	Conversation ConversationID
	// Expected is the epoch the caller named.
	Expected uint64
	// Current is the conversation's epoch.
	Current uint64
}

// Error describes the mismatch.
func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("stale epoch: conversation %d is at epoch %d, not %d", e.Conversation, e.Current, e.Expected)
}

// Is reports whether target is ErrStaleEpoch.
func (e *StaleEpochError) Is(target error) bool { return target == ErrStaleEpoch }

// CurrentEpoch returns the current epoch carried by a stale-epoch error in
// err's chain, and whether there is one.
func CurrentEpoch(err error) (uint64, bool) {
	var se *StaleEpochError
	if errors.As(err, &se) {
		return se.Current, true
	}
	return 0, false
}

// UserID is the store-assigned id of a user (positive).
type UserID int64

// DeviceID is a device id, chosen by the device and unique on the server
// (the protocol's DeviceID).
type DeviceID string

// ConversationID is the store-assigned id of a conversation (positive).
type ConversationID int64

// EntryKind is the kind of a log entry.
type EntryKind uint8

// The kinds of log entries.
const (
	// KindApplication is an MLS PrivateMessage.
	KindApplication EntryKind = 1
	// KindHandshake is an accepted MLS PublicMessage (commit or proposal).
	KindHandshake EntryKind = 2
)

// String returns "application" or "handshake".
func (k EntryKind) String() string {
	switch k {
	case KindApplication:
		return "application"
	case KindHandshake:
		return "handshake"
	}
	return fmt.Sprintf("EntryKind(%d)", uint8(k))
}

// User is an account.
type User struct {
	ID          UserID    // ID is assigned by the store.
	Name        string    // Name is unique.
	IdentityKey []byte    // IdentityKey is the Ed25519 identity public key.
	Admin       bool      // Admin marks administrators.
	Disabled    bool      // Disabled accounts cannot authenticate.
	Created     time.Time // Created is the registration time.
}

// Device is a device of a user.
type Device struct {
	ID           DeviceID  // ID is unique on the server.
	User         UserID    // User owns the device.
	Scheme       uint16    // Scheme is the signature scheme of SignatureKey.
	SignatureKey []byte    // SignatureKey is unique on the server.
	Certificate  []byte    // Certificate is the encoded device certificate.
	Created      time.Time // Created is the registration time.
	Revoked      time.Time // Revoked is when the user revoked it; zero if not.
	Disabled     bool      // Disabled is set by an admin.
	InboxHead    uint64    // InboxHead is the seq of the newest inbox entry ever assigned.
	LastSeen     time.Time // LastSeen is when it last created a session; zero if never.
	// SealedName is the device's name sealed by the account's devices
	// (opaque to the server); nil when none was set.
	SealedName []byte
}

// Active reports whether the device may authenticate and receive
// KeyPackage claims.
func (d Device) Active() bool { return d.Revoked.IsZero() && !d.Disabled }

// Revocation is the statement by which a user revoked a device
// (Store.Revocations).
type Revocation struct {
	Device    DeviceID // Device is the revoked device.
	Statement []byte   // Statement is the encoded protocol.DeviceRevocation.
}

// InactiveMember is a revoked or disabled device that is still a member of
// a conversation (Store.InactiveMembers).
type InactiveMember struct {
	Conversation ConversationID // Conversation is the conversation.
	Device       DeviceID       // Device is the inactive member device.
	UserName     string         // UserName is the name of the device's user.
	Revoked      time.Time      // Revoked is when the user revoked it; zero if not.
	Revocation   []byte         // Revocation is the user's statement; nil if none.
	Disabled     bool           // Disabled is set by an admin.
}

// NewUser is the input of CreateUser.
type NewUser struct {
	Name        string
	IdentityKey []byte
	Admin       bool
	Created     time.Time
	// InviteHash is the hash of the invite code to consume; nil when
	// registration is open.
	InviteHash []byte
	// Device is the first device; its User field is ignored.
	Device Device
}

// Invite allows a number of registrations until it expires. Only a hash
// of the code is stored.
type Invite struct {
	ID       int64     // ID is assigned by the store.
	CodeHash []byte    // CodeHash is the hash of the secret code; unique.
	UsesLeft int       // UsesLeft counts remaining registrations.
	Expires  time.Time // Expires ends the invite.
	Created  time.Time // Created is the creation time.
}

// Session is an authenticated session of a device. Only a hash of the
// bearer token is stored.
type Session struct {
	TokenHash []byte    // TokenHash is the hash of the token; unique.
	Device    DeviceID  // Device is the authenticated device.
	User      UserID    // User owns Device.
	Created   time.Time // Created is the creation time.
	Expires   time.Time // Expires ends the session.
}

// Challenge is a single-use authentication challenge for a device.
type Challenge struct {
	Nonce   []byte    // Nonce is the random challenge; unique.
	Device  DeviceID  // Device must sign it.
	Expires time.Time // Expires ends it.
}

// KeyPackage is a one-time (or last-resort) MLS KeyPackage of a device.
type KeyPackage struct {
	Ref        []byte    // Ref is the KeyPackageRef; unique on the server.
	Device     DeviceID  // Device uploaded it.
	Suite      uint16    // Suite is its MLS cipher suite.
	Data       []byte    // Data is the MLSMessage-framed KeyPackage.
	LastResort bool      // LastResort packages are returned when the pool is empty and kept.
	Expires    time.Time // Expires is the end of its lifetime (not_after).
	Created    time.Time // Created is the upload time.
}

// KeyPackageCount is the pool of a device.
type KeyPackageCount struct {
	Available  int  // Available counts unexpired one-time packages.
	LastResort bool // LastResort is true when an unexpired last-resort package exists.
	// LastResortClaimed is true when that last-resort package has been
	// returned by a claim at least once: its owner should replace it
	// (RFC 9420 §16.8, "KeyPackage Reuse").
	LastResortClaimed bool
}

// UserClaim is what a batched claim (ClaimKeyPackagesBatch) handed out
// for one user.
type UserClaim struct {
	User        UserID       // User is the claimed user.
	KeyPackages []KeyPackage // KeyPackages are the claimed packages, by device id.
	Missing     []DeviceID   // Missing are the active devices that had no package, by id.
}

// ClaimBudget limits how fast one-time KeyPackages of one device are
// handed out, whoever claims them: a token bucket of Burst tokens that
// gains one token every Interval. It is kept in the store, so it holds
// across every node of a cluster. The zero value is no limit.
type ClaimBudget struct {
	Burst    int           // Burst is the bucket's size (0: no limit).
	Interval time.Duration // Interval is the time to gain one token.
}

// Tokens returns the tokens of a bucket at now that held tokens at
// updated (a device without a bucket yet holds Burst). A clock that went
// back adds nothing.
func (b ClaimBudget) Tokens(tokens float64, updated, now time.Time) float64 {
	if el := now.Sub(updated); el > 0 && b.Interval > 0 {
		tokens += float64(el) / float64(b.Interval)
	}
	return min(tokens, float64(b.Burst))
}

// Conversation is an MLS group as the server follows it.
type Conversation struct {
	ID        ConversationID // ID is assigned by the store.
	GroupID   []byte         // GroupID is the MLS group id; unique.
	Suite     uint16         // Suite is the group's cipher suite.
	Epoch     uint64         // Epoch is the current accepted epoch.
	GroupInfo []byte         // GroupInfo of the current epoch.
	// FollowerState is the public-group follower's opaque state as of
	// the start of the current epoch, without the ratchet tree: written
	// by CreateConversation and Commit, never by Propose. The tree is
	// stored apart (Tree); the proposals accepted since are
	// stored one by one (PendingProposals).
	FollowerState []byte
	// LegacyTree is set for a conversation stored before trees were
	// stored apart: its FollowerState still holds the whole tree, and it
	// has no stored tree until MoveTree moves it.
	LegacyTree bool
	// Proposals counts the proposals accepted in the current epoch since
	// FollowerState was written. The pair (Epoch, Proposals) is the
	// version of the follower state with its pending proposals: every
	// accepted proposal increments Proposals, every accepted commit
	// increments Epoch and resets Proposals to 0.
	Proposals uint64
	// ProposalBytes is the total size of the Data of those proposals.
	ProposalBytes int64
	// ProposalsDigest is the Digest of the last of those proposals; nil
	// when there is none.
	ProposalsDigest []byte
	Head            uint64    // Head is the seq of the newest entry ever appended (0 if none).
	Created         time.Time // Created is the creation time.
	// Timer is the disappearing-message timer of the current epoch's
	// policy (whole seconds; 0 = off): Prune empties the application
	// entries older than it.
	Timer time.Duration
}

// TreeNode is one node of a conversation's ratchet tree, stored on its
// own: Index is its index in the tree's array form (RFC 9420 Appendix C),
// Data its encoding, opaque to the store; nil Data is a blank node.
type TreeNode struct {
	Index uint32
	Data  []byte
}

// NewConversation is the input of CreateConversation; the creator device
// becomes the only member.
type NewConversation struct {
	GroupID   []byte
	Suite     uint16
	Epoch     uint64
	GroupInfo []byte
	// Tree is the non-blank nodes of the tree of Epoch.
	Tree          []TreeNode
	FollowerState []byte
	Creator       DeviceID
	Created       time.Time
	Timer         time.Duration // Timer is the group's disappearing-message timer (see Conversation.Timer).
}

// Membership is a device's view of one of its conversations.
//
// A device removed by a commit keeps a departed membership (Left is the
// commit's seq): it may read and acknowledge the log up to and including
// that commit, so that it learns it was removed, and nothing after it. The
// departed membership ends when the device acknowledges Left, or when a
// later commit adds the device again: its cursor then restarts at that
// commit, and it keeps its Joined, so that it may still read the rest of
// its old membership, but never the entries of the time it was out (Gap).
// A device never reads the log before the commit that added it (Joined):
// history from before it joined, or from while it was out, even as
// ciphertext, is not its business. A departed device is not a member: it is not listed by Members,
// IsMember is false for it, and it cannot append.
type Membership struct {
	Conversation ConversationID // Conversation is the conversation.
	Cursor       uint64         // Cursor is the device's acknowledged seq.
	Head         uint64         // Head is the conversation's newest seq.
	Epoch        uint64         // Epoch is the conversation's epoch.
	Left         uint64         // Left is 0 for a member, else the seq of the commit that removed the device: the last seq it may read.
	Joined       uint64         // Joined is the seq of the commit that added the device (0 for the creator): the device may read only entries after it. A departed device added again keeps it.
	// GapFrom and GapTo are zero, or the seqs of the commit that removed
	// the device and of the commit that added it again before it had
	// acknowledged its removal: it may not read the entries after GapFrom
	// up to and including GapTo. A membership keeps one gap: when a device
	// is added again a second time, its Joined moves to the end of the
	// older gap, so the part of its membership before that is no longer
	// readable.
	GapFrom, GapTo uint64
}

// NextReadable returns the seq after which the device may read next when
// it has read up to after: after itself, or the end of the part of the
// log it may not read (before Joined, or inside the gap) that after falls
// in.
func (m Membership) NextReadable(after uint64) uint64 {
	after = max(after, m.Joined)
	if m.GapTo != 0 && after >= m.GapFrom && after < m.GapTo {
		after = m.GapTo
	}
	return after
}

// Readable returns the newest seq the device may read: Left for a
// departed device, else the head.
func (m Membership) Readable() uint64 {
	if m.Left != 0 {
		return m.Left
	}
	return m.Head
}

// Entry is one entry of a conversation log.
type Entry struct {
	Conversation ConversationID // Conversation is the log.
	Seq          uint64         // Seq is assigned by the store: 1, 2, … without gaps.
	Kind         EntryKind      // Kind is application or handshake.
	Sender       DeviceID       // Sender posted it.
	Data         []byte         // Data is the opaque MLS message.
	Created      time.Time      // Created is when it was accepted.
}

// HandshakeEntry is an accepted handshake as Store.HandshakeByHash finds
// it: the log entry and the conversation's epoch after it (the epoch a
// commit started, or the epoch of a proposal).
type HandshakeEntry struct {
	Entry
	Epoch uint64
}

// NewEntry is an application message to append.
type NewEntry struct {
	Conversation ConversationID
	Sender       DeviceID
	Data         []byte
	Created      time.Time
}

// AppendResult is the outcome of one NewEntry in AppendEntries: the stored
// entry, or the reason it was refused (ErrNotFound for an unknown
// conversation, ErrNotMember when the sender is not a member).
type AppendResult struct {
	Entry Entry
	Err   error
}

// Ack is one acknowledgement of AckBatch: Device has read Conversation up
// to Seq.
type Ack struct {
	Device       DeviceID
	Conversation ConversationID
	Seq          uint64
}

// InboxEntry is a Welcome waiting in a device's inbox.
type InboxEntry struct {
	Device       DeviceID       // Device is the recipient.
	Seq          uint64         // Seq is assigned by the store per device.
	Conversation ConversationID // Conversation is the conversation joined.
	Data         []byte         // Data is the opaque Welcome.
	Created      time.Time      // Created is when it was stored.
}

// Welcome is a Welcome for an added device, part of a Commit.
type Welcome struct {
	Device DeviceID
	Data   []byte
}

// Commit is an accepted commit: the input of the compare-and-set in
// Store.Commit.
type Commit struct {
	Conversation  ConversationID
	Epoch         uint64 // Epoch is the expected current epoch; the new one is Epoch+1.
	Sender        DeviceID
	Data          []byte // Data is the PublicMessage, appended as a handshake entry.
	GroupInfo     []byte // GroupInfo of the new epoch.
	FollowerState []byte // FollowerState of the new epoch.
	// Tree is the nodes of the new epoch's tree that differ from the
	// current epoch's, with nil Data for nodes that became blank: what
	// the commit writes of the tree grows with the nodes it changed,
	// not with the tree.
	Tree []TreeNode
	// TreeHistory is how many epochs before the new one keep their
	// trees readable (Tree), for Welcomes still waiting in inboxes; what
	// only older epochs need is deleted.
	TreeHistory uint64
	Add         []DeviceID
	Remove      []DeviceID
	Welcomes    []Welcome // Welcomes go to the inboxes of added devices.
	// Proposals is the expected number of proposals of the epoch: with
	// Epoch, the version of the follower state the commit was validated
	// against.
	Proposals uint64
	// Hash identifies Data for idempotent retries (HandshakeByHash); nil
	// stores none.
	Hash    []byte
	Created time.Time
	// Timer is the new epoch's disappearing-message timer (see
	// Conversation.Timer); when it changes, Created is when it was set.
	Timer time.Duration
}

// Proposal is a handshake message that does not change the epoch but
// joins the epoch's pending proposals, which a commit of the epoch may
// include by reference. It is stored once, with its size: the follower
// state is not rewritten.
type Proposal struct {
	Conversation ConversationID
	Epoch        uint64 // Epoch must be the current epoch.
	// Proposals is the expected number of proposals of the epoch; with
	// Epoch, the version of the follower state the proposal was
	// validated against. The proposal is stored as the epoch's pending
	// proposal number Proposals (counting from 0).
	Proposals uint64
	// Digest becomes the conversation's ProposalsDigest: the caller's
	// digest of the pending proposals up to and including this one.
	Digest []byte
	Sender DeviceID
	// Data is the PublicMessage, appended as a handshake entry and kept
	// as a pending proposal until the epoch ends.
	Data []byte
	// Hash identifies Data for idempotent retries (HandshakeByHash); nil
	// stores none.
	Hash    []byte
	Created time.Time
}

// PendingProposal is a proposal accepted in a conversation's current
// epoch, as Store.PendingProposals returns it.
type PendingProposal struct {
	Data    []byte    // Data is the Proposal's Data.
	Created time.Time // Created is the Proposal's Created.
}

// Blob is the metadata of an attachment; its bytes live outside the store.
type Blob struct {
	ID      string    // ID is the hex SHA-256 of the content; unique.
	Owner   UserID    // Owner uploaded it.
	Size    int64     // Size in bytes.
	SHA256  []byte    // SHA256 of the content.
	Created time.Time // Created is the upload time.
	// Expires ends the blob's lifetime, which its uploader asked for
	// (zero: none; it goes with the retention). It must be after
	// Created. From then on the blob is expired: Prune deletes it, and
	// it no longer counts against its owner's quota.
	Expires time.Time
}

// ExpiredAt reports whether b's lifetime has ended at now.
func (b Blob) ExpiredAt(now time.Time) bool {
	return !b.Expires.IsZero() && !now.Before(b.Expires)
}

// BlobReservation is attachment quota held for an upload in progress: it
// counts against its owner's quota until it is committed into a blob
// record, released, or expires (a crashed upload's reservation thus frees
// itself; Prune deletes expired ones).
type BlobReservation struct {
	ID      int64     // ID is assigned by the store.
	Owner   UserID    // Owner is the uploading user.
	Bytes   int64     // Bytes is the size reserved.
	Created time.Time // Created is the reservation time (the "now" of the quota check).
	Expires time.Time // Expires ends the reservation; it must be after Created.
}

// CheckReserve checks the arguments of Store.ReserveBlobQuota, the same for
// every backend: at least min (≥ 1) bytes wanted, a positive quota and an
// expiry after the creation time. A refusal wraps ErrInvalid and names the
// input.
func (r BlobReservation) CheckReserve(min, quota int64) error {
	if min < 1 || r.Bytes < min || quota < 1 || !r.Expires.After(r.Created) {
		return fmt.Errorf("reserve %d bytes (at least %d) of user %d's quota of %d from %v until %v: %w", r.Bytes, min, r.Owner, quota, r.Created, r.Expires, ErrInvalid)
	}
	return nil
}

// PruneOptions say what Prune removes.
type PruneOptions struct {
	// Now is the current time.
	Now time.Time
	// Retention is the longest time log entries, inbox entries and blobs
	// are kept; zero keeps them regardless of age.
	Retention time.Duration
}

// Prune also empties the Data of every application entry older than its
// conversation's Timer (at Now), keeping the entry so that the log stays
// contiguous and its handshakes stay for the devices that have not read
// them: the ciphertext of an expired message is gone for every device.

// PruneResult counts what Prune removed.
type PruneResult struct {
	Entries int64
	// Expired counts the application entries whose ciphertext was
	// emptied by their conversation's timer.
	Expired     int64
	Inbox       int64
	Sessions    int64
	Challenges  int64
	Invites     int64
	KeyPackages int64
	// LinkMailboxes counts the expired link mailboxes removed with their
	// messages.
	LinkMailboxes int64
	// Blobs are the ids of removed blob records, older than the
	// retention or expired; the caller deletes their content.
	Blobs []string
}

// Link sides: who wrote a message of a link mailbox.
const (
	// LinkNew is the device being linked, which created the mailbox.
	LinkNew uint8 = 1
	// LinkExisting is a device of the account that links it.
	LinkExisting uint8 = 2
)

// LinkMailbox is a rendezvous mailbox through which two devices of an
// account set up their linking channel. Its messages are opaque to the
// store (the devices encrypt them).
type LinkMailbox struct {
	// ID is the short public id, unique while the mailbox lives.
	ID string
	// TokenHash is the SHA-256 of the token of the device being linked.
	TokenHash []byte
	// User is the account whose device claimed the mailbox by writing to
	// it first (0 until then).
	User UserID
	// Created and Expires bound its life; it is gone after Expires.
	Created, Expires time.Time
}

// LinkMessage is one message of a link mailbox.
type LinkMessage struct {
	// Seq numbers the mailbox's messages 1, 2, 3… (assigned by the store).
	Seq uint64
	// From is LinkNew or LinkExisting.
	From uint8
	// Data is the message, opaque.
	Data    []byte
	Created time.Time
}

// Stats are counts for administrators.
type Stats struct {
	Users, Devices, Conversations, Entries, InboxEntries, KeyPackages, Blobs, BlobBytes int64
}

// Store is the server's persistence: every role below, as one backend
// provides them. Implementations are safe for concurrent use. Every method
// takes a context first; cancelling it ends the work, and a cancelled
// write leaves nothing behind.
type Store interface {
	Accounts
	KeyPackages
	Conversations
	Attachments
	Links
	Maintenance
}

// Accounts is the store's part for users, devices, invites and
// authentication (challenges and sessions).
type Accounts interface {
	// CreateUser atomically creates the user, its first device and, when
	// u.InviteHash is set, consumes one use of that invite. It fails with
	// ErrInviteInvalid for an unknown, used-up or expired invite (relative
	// to u.Created) and ErrConflict for a taken name, device id or key.
	CreateUser(ctx context.Context, u NewUser) (User, Device, error)
	// User returns a user by id.
	User(ctx context.Context, id UserID) (User, error)
	// UserByName returns a user by name.
	UserByName(ctx context.Context, name string) (User, error)
	// Users lists all users by name.
	Users(ctx context.Context) ([]User, error)
	// SetUserDisabled disables or enables a user; disabling deletes its
	// sessions.
	SetUserDisabled(ctx context.Context, id UserID, disabled bool) error
	// SetUserAdmin grants or removes administration.
	SetUserAdmin(ctx context.Context, id UserID, admin bool) error

	// AddDevice adds a device to an existing user (ErrNotFound otherwise);
	// ErrConflict for a taken id or signature key.
	AddDevice(ctx context.Context, d Device) (Device, error)
	// Device returns a device by id.
	Device(ctx context.Context, id DeviceID) (Device, error)
	// DeviceByKey returns the device with the signature key.
	DeviceByKey(ctx context.Context, key []byte) (Device, error)
	// Devices lists a user's devices, revoked ones included, by creation.
	Devices(ctx context.Context, user UserID) ([]Device, error)
	// RevokeDevice marks a device revoked at the time, keeps revocation
	// (the user's signed statement, opaque to the store) and deletes its
	// sessions, challenges and KeyPackages. Its memberships stay until
	// commits remove it. Revoking again keeps the first time, and the
	// first non-empty statement.
	RevokeDevice(ctx context.Context, id DeviceID, at time.Time, revocation []byte) error
	// SetDeviceDisabled disables or enables a device; disabling deletes
	// its sessions.
	SetDeviceDisabled(ctx context.Context, id DeviceID, disabled bool) error
	// SetDeviceName replaces a device's sealed name (opaque; empty
	// removes it).
	SetDeviceName(ctx context.Context, id DeviceID, sealed []byte) error

	// Device revocations (each backend's revocations.go).

	// Revocations returns the stored revocation statements of the user's
	// devices that have one, by device id.
	Revocations(ctx context.Context, user UserID) ([]Revocation, error)
	// InactiveMembers lists the revoked or disabled devices (other than
	// device) that are members (not departed) of conversations device is a
	// member of, up to limit (≥ 1, else ErrInvalid) pairs of a device and
	// a conversation, by device id then conversation id.
	InactiveMembers(ctx context.Context, device DeviceID, limit int) ([]InactiveMember, error)

	// CreateInvite stores an invite and returns it with its id.
	CreateInvite(ctx context.Context, inv Invite) (Invite, error)
	// Invites lists invites by id.
	Invites(ctx context.Context) ([]Invite, error)
	// DeleteInvite deletes an invite by id.
	DeleteInvite(ctx context.Context, id int64) error

	// CreateChallenge stores a challenge.
	CreateChallenge(ctx context.Context, c Challenge) error
	// ConsumeChallenge atomically deletes and returns the challenge with
	// the nonce for the device. ErrNotFound when there is none, it is for
	// another device, or it expired before now; a challenge is returned at
	// most once.
	ConsumeChallenge(ctx context.Context, nonce []byte, device DeviceID, now time.Time) (Challenge, error)
	// CreateSession stores a session and records its creation as the
	// device's LastSeen (which only moves forward).
	CreateSession(ctx context.Context, s Session) error
	// Session returns the session with the token hash. ErrNotFound when
	// there is none, it expired before now, or its device is revoked or
	// disabled, or its user disabled.
	Session(ctx context.Context, tokenHash []byte, now time.Time) (Session, error)
	// DeleteSession deletes a session (logout).
	DeleteSession(ctx context.Context, tokenHash []byte) error
}

// KeyPackages is the store's part for the devices' KeyPackage pools.
type KeyPackages interface {
	// AddKeyPackages atomically stores a batch of KeyPackages. Every
	// package's device must exist and be active (ErrNotFound); refs are
	// unique (ErrConflict). A last-resort package replaces the device's
	// previous last-resort package of the same suite.
	AddKeyPackages(ctx context.Context, kps []KeyPackage) error
	// ReplaceKeyPackages is AddKeyPackages that first deletes, in the
	// same transaction, the one-time packages of every (device, suite)
	// pair of the batch; a last-resort package of the batch replaces the
	// previous one as in AddKeyPackages, and one the batch does not
	// replace is kept. Packages of other devices or suites are kept. When
	// the batch is refused nothing is deleted.
	ReplaceKeyPackages(ctx context.Context, kps []KeyPackage) error
	// CountKeyPackages returns the device's pool of the suite at now.
	CountKeyPackages(ctx context.Context, device DeviceID, suite uint16, now time.Time) (KeyPackageCount, error)
	// ClaimKeyPackages atomically claims one unexpired KeyPackage of the
	// suite for every active device of the user: the oldest one-time
	// package, deleted on claim; else the newest last-resort package, kept.
	// No one-time package is ever returned twice, even under concurrent
	// claims. Devices without a package are skipped; ErrNoKeyPackage when
	// no device has one. The result is ordered by device id.
	ClaimKeyPackages(ctx context.Context, user UserID, suite uint16, now time.Time) ([]KeyPackage, error)
	// ClaimKeyPackagesBudgeted is ClaimKeyPackages under a per-device
	// budget: a device's one-time package is handed out only when the
	// device's ClaimBudget bucket holds a token at now (one is taken);
	// otherwise, as when its pool is empty, its last-resort package is
	// returned. Buckets start full and are shared by every claimer and
	// every node. A zero budget is ClaimKeyPackages. Every claim that
	// returns a last-resort package marks it claimed (KeyPackageCount).
	ClaimKeyPackagesBudgeted(ctx context.Context, user UserID, suite uint16, now time.Time, b ClaimBudget) ([]KeyPackage, error)
	// ClaimKeyPackagesBatch is ClaimKeyPackagesBudgeted for several
	// users in one transaction: it answers one UserClaim per user, in the
	// order of users (each once; ErrInvalid otherwise). A user without any
	// package, or unknown, gets a UserClaim without KeyPackages instead
	// of an error. Devices are claimed in device id order across the
	// batch, so concurrent batches take their locks in one order.
	ClaimKeyPackagesBatch(ctx context.Context, users []UserID, suite uint16, now time.Time, b ClaimBudget) ([]UserClaim, error)
}

// TreeFloor is the oldest epoch whose tree stays readable once c is
// accepted: TreeHistory epochs before the new one.
func (c Commit) TreeFloor() uint64 {
	if next := c.Epoch + 1; next > c.TreeHistory {
		return next - c.TreeHistory
	}
	return 0
}

// Conversations is the store's part for conversations: their state as the
// server follows it, membership, the ordered logs with their cursors, and
// the devices' inboxes of Welcomes.
type Conversations interface {
	// CreateConversation creates a conversation whose only member is the
	// creator (ErrNotFound for an unknown device, ErrConflict for a taken
	// group id).
	CreateConversation(ctx context.Context, c NewConversation) (Conversation, error)
	// Conversation returns a conversation by id.
	Conversation(ctx context.Context, id ConversationID) (Conversation, error)
	// ConversationByGroupID returns a conversation by MLS group id.
	ConversationByGroupID(ctx context.Context, groupID []byte) (Conversation, error)
	// Members lists a conversation's member devices by id (departed
	// devices are not members).
	Members(ctx context.Context, id ConversationID) ([]DeviceID, error)
	// UserIsMember reports whether any active membership of the
	// conversation is a device of the user (departed devices do not
	// count), in one query however many members there are.
	UserIsMember(ctx context.Context, id ConversationID, user UserID) (bool, error)
	// IsMember reports whether the device is a member of the conversation
	// (false for a departed device).
	IsMember(ctx context.Context, id ConversationID, device DeviceID) (bool, error)
	// Membership returns the device's membership of the conversation,
	// departed or not; ErrNotMember when there is none (or no such
	// conversation).
	Membership(ctx context.Context, id ConversationID, device DeviceID) (Membership, error)
	// Conversations lists the device's memberships by conversation id with
	// its cursors, departed ones included (Left > 0).
	Conversations(ctx context.Context, device DeviceID) ([]Membership, error)
	// Commit atomically accepts a commit with a compare-and-set on
	// (conversation, epoch, proposals): the epoch becomes c.Epoch+1 and the
	// proposal count 0; the handshake entry is appended (with c.Hash);
	// GroupInfo and follower state are replaced, the changed tree nodes
	// stored as the new epoch's changes (what only epochs more than
	// c.TreeHistory before it need dropped), and the old epoch's
	// pending proposals dropped (ProposalBytes 0, ProposalsDigest nil);
	// c.Remove then c.Add
	// change the membership (removed members become departed with Left at
	// the commit's seq, so they receive the commit and nothing after it;
	// added devices' cursors and Joined start at the commit's seq, so they
	// never receive it or anything before it; a departed device added
	// again keeps its Joined and records the time it was out as its gap
	// (see Membership); an added device that is already a member stays as
	// it is); and each Welcome goes to its device's inbox. A stale
	// epoch returns a *StaleEpochError with the current epoch; a stale
	// proposal count ErrStaleState; ErrNotFound for an unknown
	// conversation or added device; ErrInvalid for a Welcome to a device
	// not being added. On any error nothing changes.
	Commit(ctx context.Context, c Commit) (Entry, error)
	// Tree returns the non-blank nodes of the conversation's ratchet
	// tree as of epoch, by index. ErrNotFound for an unknown
	// conversation, ErrInvalid for an epoch after the current one,
	// ErrGone for one whose tree is no longer kept (Commit.TreeHistory)
	// or was never stored apart from the follower state.
	Tree(ctx context.Context, id ConversationID, epoch uint64) ([]TreeNode, error)
	// TreeChanges returns the nodes of the conversation's ratchet tree as
	// of epoch that commits after since changed, by index, nil Data for
	// a node blank at epoch: applied to the tree of since (set Data,
	// blank on nil), they give the tree of epoch. What it reads grows
	// with the nodes changed, not with the tree. ErrNotFound for an
	// unknown conversation, ErrInvalid for an epoch after the current
	// one or since after epoch, ErrGone when the tree of since is no
	// longer kept (Commit.TreeHistory) or was never stored apart from the
	// follower state.
	TreeChanges(ctx context.Context, id ConversationID, since, epoch uint64) ([]TreeNode, error)
	// SnapshotTree stores the conversation's current tree whole when the
	// nodes changed since the last such snapshot add up to its size, so
	// that a tree is read from a snapshot and the changes since (about
	// twice its size at most), and reports whether it stored one. It
	// reads the tree outside the store's write transaction: run it after
	// commits, outside them. A call with nothing due costs one read.
	SnapshotTree(ctx context.Context, id ConversationID) (bool, error)
	// MoveTree stores the tree of a LegacyTree conversation apart:
	// when the conversation is still at epoch with its tree in its
	// follower state, nodes become the epoch's tree and state its
	// follower state, atomically. ErrStaleState when it is not (another
	// node moved it first, or a commit came in between).
	MoveTree(ctx context.Context, id ConversationID, epoch uint64, state []byte, nodes []TreeNode) error
	// LegacyTrees lists the LegacyTree conversations.
	LegacyTrees(ctx context.Context) ([]ConversationID, error)
	// Propose atomically appends a handshake entry that does not change the
	// epoch and stores p.Data as the epoch's next pending proposal, with a
	// compare-and-set on (conversation, epoch, proposals): the proposal
	// count is incremented, ProposalBytes grows by len(p.Data) and
	// ProposalsDigest becomes p.Digest; the follower state is not
	// touched. A stale epoch returns a *StaleEpochError, a stale proposal
	// count ErrStaleState; on any error nothing changes.
	Propose(ctx context.Context, p Proposal) (Entry, error)
	// PendingProposals returns the pending proposals from index from up to
	// but not including index to (counting from 0) of the conversation's
	// epoch, in the order they were accepted: with from 0 and (epoch, to)
	// read from Conversation, exactly the proposals accepted since
	// FollowerState was written, even while later ones are added. A
	// conversation no longer at epoch returns a *StaleEpochError;
	// ErrNotFound for an unknown conversation; ErrInvalid when from > to
	// or fewer are stored.
	PendingProposals(ctx context.Context, id ConversationID, epoch, from, to uint64) ([]PendingProposal, error)
	// HandshakeByHash returns the handshake entry of the conversation
	// stored with the hash (Commit.Hash, Proposal.Hash), with the epoch
	// after it; ErrNotFound when there is none (never stored, or pruned).
	HandshakeByHash(ctx context.Context, id ConversationID, hash []byte) (HandshakeEntry, error)
	// AppendEntries appends a batch of application entries, of any
	// conversations, in one transaction (group commit). Entries of one
	// conversation get consecutive seqs in batch order. An entry whose
	// conversation does not exist or whose sender is not a member is
	// refused alone, in its AppendResult; the error return means the whole
	// batch failed and nothing was stored.
	AppendEntries(ctx context.Context, entries []NewEntry) ([]AppendResult, error)
	// Entries returns up to limit entries of the conversation with seq
	// greater than after, in seq order.
	Entries(ctx context.Context, id ConversationID, after uint64, limit int) ([]Entry, error)
	// Ack moves the device's cursor in the conversation to seq if seq is
	// greater; it never moves backwards. ErrNotMember for a non-member,
	// ErrInvalid beyond the head (for a departed device: beyond Left).
	// A departed device's acknowledgement of Left ends its membership.
	Ack(ctx context.Context, device DeviceID, id ConversationID, seq uint64) error
	// AckBatch applies acknowledgements in one transaction (group commit),
	// each exactly like Ack, in order. errs[i] is the outcome of acks[i]:
	// nil, or ErrNotMember or ErrInvalid (wrapped) when that one alone was
	// refused. The error return means the whole batch failed and nothing
	// changed.
	AckBatch(ctx context.Context, acks []Ack) (errs []error, err error)
	// Inbox returns up to limit inbox entries of the device with seq
	// greater than after, in seq order.
	Inbox(ctx context.Context, device DeviceID, after uint64, limit int) ([]InboxEntry, error)
	// AckInbox deletes the device's inbox entries up to seq.
	AckInbox(ctx context.Context, device DeviceID, seq uint64) error
}

// Attachments is the store's part for attachment metadata and quota.
type Attachments interface {
	// CreateBlob stores blob metadata: ErrConflict for an id taken by a
	// blob unexpired at b.Created (an expired one is replaced),
	// ErrInvalid for an Expires not after Created.
	CreateBlob(ctx context.Context, b Blob) error
	// Blob returns blob metadata by id.
	Blob(ctx context.Context, id string) (Blob, error)
	// DeleteBlob deletes blob metadata.
	DeleteBlob(ctx context.Context, id string) error
	// ExtendBlob keeps a blob at least until expires (zero: for as long
	// as the retention allows): its Expires becomes the later of its own
	// and expires, zero being the latest. It returns the record as it is
	// then; ErrNotFound for a missing blob.
	ExtendBlob(ctx context.Context, id string, expires time.Time) (Blob, error)
	// BlobUsage returns the number and total size of a user's blobs,
	// expired or not (until Prune deletes them).
	BlobUsage(ctx context.Context, owner UserID) (count, bytes int64, err error)
	// ReserveBlobQuota atomically reserves quota for an upload: the
	// reservation gets min(r.Bytes, quota - used - reserved) bytes, where
	// used is the size of r.Owner's blobs unexpired at r.Created and
	// reserved the bytes of its reservations unexpired then, provided that is at least min
	// (min ≥ 1, r.Bytes ≥ min); else it fails with ErrQuotaExceeded.
	// Concurrent reservations, on any number of nodes, never together
	// exceed the quota. ErrNotFound for an unknown owner, ErrInvalid for
	// bad sizes or an Expires not after Created.
	ReserveBlobQuota(ctx context.Context, r BlobReservation, min, quota int64) (BlobReservation, error)
	// CommitBlobReservation atomically replaces the reservation with the
	// blob record b: b.Owner must be the reservation's owner and b.Size at
	// most its bytes (ErrInvalid); the unused rest of the reservation is
	// given back. ErrNotFound when the reservation does not exist or
	// expired before b.Created, ErrConflict for a taken blob id (as
	// CreateBlob), ErrInvalid for a bad Expires; on any error nothing
	// changes.
	CommitBlobReservation(ctx context.Context, id int64, b Blob) error
	// ReleaseBlobReservation deletes a reservation; releasing a missing
	// one is not an error.
	ReleaseBlobReservation(ctx context.Context, id int64) error
}

// Links is the store's part for the rendezvous mailboxes of device
// linking (docs/protocol.md, "Linking a device").
type Links interface {
	// CreateLinkMailbox stores a new, unclaimed mailbox with its first
	// message (from LinkNew); ErrConflict when the id is taken.
	CreateLinkMailbox(ctx context.Context, m LinkMailbox, first LinkMessage) error
	// LinkMailbox returns the mailbox with the id; ErrNotFound when there
	// is none or it expired at now.
	LinkMailbox(ctx context.Context, id string, now time.Time) (LinkMailbox, error)
	// AppendLinkMessage atomically appends m to the live mailbox id and
	// returns its seq. A message from LinkExisting names its user: the
	// first one claims an unclaimed mailbox for the user, and a mailbox
	// claimed by another user answers ErrNotFound, as a missing or
	// expired one does. A mailbox holding limit messages already refuses
	// with ErrQuotaExceeded.
	AppendLinkMessage(ctx context.Context, id string, user UserID, m LinkMessage, limit int) (uint64, error)
	// LinkMessages returns the messages of mailbox id with seq above
	// after, in order (none for a missing mailbox).
	LinkMessages(ctx context.Context, id string, after uint64) ([]LinkMessage, error)
	// DeleteLinkMailbox deletes a mailbox and its messages; deleting a
	// missing one is not an error.
	DeleteLinkMailbox(ctx context.Context, id string) error
}

// Maintenance is the store's part for administration: pruning, counts,
// backup and closing.
type Maintenance interface {
	// Prune removes log entries acknowledged by every member device and
	// every departed device (a prefix of each log), log and inbox entries and blob records older
	// than the retention, blob records whose lifetime ended (Blob.Expires
	// at or before Now), and expired sessions, challenges, KeyPackages,
	// blob reservations, link mailboxes and invites (expired or used up).
	Prune(ctx context.Context, o PruneOptions) (PruneResult, error)
	// Stats returns counts.
	Stats(ctx context.Context) (Stats, error)
	// Backup writes an online, consistent copy of the store to path, which
	// must not exist.
	Backup(ctx context.Context, path string) error
	// Close releases the store.
	Close() error
}
