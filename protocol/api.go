package protocol

import (
	"fmt"
	"time"
)

// DeviceID names a device. The device chooses it (conventionally 16 random
// bytes in lowercase hex) before it is certified, because the device
// certificate binds it; it is unique across the server. See [ValidDeviceID].
type DeviceID string

// ConversationID is the server-assigned number of a conversation. The
// conversation's MLS group id is carried separately in [ConversationInfo].
type ConversationID int64

// EntryKind says what a conversation log entry holds.
type EntryKind string

// The kinds of log entries.
const (
	// KindApplication is an MLS PrivateMessage carrying application data.
	KindApplication EntryKind = "application"
	// KindHandshake is an accepted MLS PublicMessage: a commit or a proposal.
	KindHandshake EntryKind = "handshake"
)

// Limits are the sizes and counts a server accepts. Zero means the server
// states no limit.
type Limits struct {
	// MaxRequestBytes bounds every JSON request body.
	MaxRequestBytes int64 `json:"max_request_bytes"`
	// MaxFrameBytes bounds every WebSocket message a client sends.
	MaxFrameBytes int64 `json:"max_frame_bytes"`
	// MaxMessageBytes bounds the MLS message of one log entry.
	MaxMessageBytes int64 `json:"max_message_bytes"`
	// MaxAttachmentBytes bounds one attachment.
	MaxAttachmentBytes int64 `json:"max_attachment_bytes"`
	// AttachmentQuotaBytes bounds the attachments one user stores.
	AttachmentQuotaBytes int64 `json:"attachment_quota_bytes"`
	// MaxKeyPackagesPerUpload bounds one KeyPackage upload.
	MaxKeyPackagesPerUpload int `json:"max_key_packages_per_upload"`
	// MaxPageEntries bounds the entries of one page (entries, inbox).
	MaxPageEntries int `json:"max_page_entries"`
	// RetentionSeconds is how long log entries, inbox entries and
	// attachments are kept at most.
	RetentionSeconds int64 `json:"retention_seconds"`
}

// ServerInfo is the answer of GET /v1/info.
type ServerInfo struct {
	// Name is the server's domain: accounts are name@Name.
	Name string `json:"name"`
	// Version is the server software version (informational).
	Version string `json:"version"`
	// Protocols lists the protocol versions served, such as [1].
	Protocols []int `json:"protocols"`
	// CipherSuites lists the MLS cipher suite ids accepted for new
	// conversations and KeyPackages, preferred first.
	CipherSuites []uint16 `json:"cipher_suites"`
	// OpenRegistration is true when registration needs no invite.
	OpenRegistration bool `json:"open_registration"`
	// Limits are the server's limits.
	Limits Limits `json:"limits"`
}

// RegisterRequest creates an account with its first device
// (POST /v1/register). The certificate must be signed by IdentityKey and
// name the server, Name, the device and its key, and the device must
// prove that it holds the key (NewDevice.Proof).
type RegisterRequest struct {
	// Name is the account name (see [ValidUserName]).
	Name string `json:"name"`
	// Invite is the invite code; empty when registration is open.
	Invite string `json:"invite,omitempty"`
	// IdentityKey is the user's Ed25519 identity public key (32 bytes).
	IdentityKey []byte `json:"identity_key"`
	// Device is the first device.
	Device NewDevice `json:"device"`
}

// NewDevice describes a device being registered.
type NewDevice struct {
	// ID is the device id (see [ValidDeviceID]).
	ID DeviceID `json:"id"`
	// Scheme is the signature scheme of SignatureKey; the certificate
	// binds it too.
	Scheme SignatureScheme `json:"scheme"`
	// SignatureKey is the device's MLS signature public key, in the
	// encoding of the scheme.
	SignatureKey []byte `json:"signature_key"`
	// Certificate is the encoded [DeviceCertificate].
	Certificate []byte `json:"certificate"`
	// Proof proves that the device holds the private key of
	// SignatureKey: its signature, in the encoding of the scheme, over
	// [DeviceProofSignedData] of the server name, the user name, ID and
	// Certificate.
	Proof []byte `json:"proof"`
}

// RegisterResponse answers a successful registration. The device then
// authenticates with the challenge flow to get a session.
type RegisterResponse struct {
	// User is the new account.
	User UserInfo `json:"user"`
}

// ChallengeRequest asks for an authentication challenge for a device
// (POST /v1/auth/challenge).
type ChallengeRequest struct {
	// User is the account name.
	User string `json:"user"`
	// Device is the device that will sign the challenge.
	Device DeviceID `json:"device"`
}

// ChallengeResponse carries a single-use challenge. The server answers
// with a challenge even for unknown users and devices, so the endpoint does
// not reveal which exist.
type ChallengeResponse struct {
	// Challenge is the random nonce to sign (see [SessionSignedData]).
	Challenge []byte `json:"challenge"`
	// Expires is when the challenge stops being accepted.
	Expires time.Time `json:"expires"`
}

// SessionRequest proves possession of the device key
// (POST /v1/auth/session).
type SessionRequest struct {
	// User is the account name.
	User string `json:"user"`
	// Device is the signing device.
	Device DeviceID `json:"device"`
	// Challenge is the challenge received.
	Challenge []byte `json:"challenge"`
	// Signature signs [SessionSignedData] with the device signature key.
	Signature []byte `json:"signature"`
}

// SessionResponse carries a bearer token. The server stores only its hash.
type SessionResponse struct {
	// Token is the bearer token for the Authorization header. Secret.
	Token string `json:"token"`
	// Expires is when the token stops being accepted.
	Expires time.Time `json:"expires"`
}

// DeviceInfo is the public record of a device.
type DeviceInfo struct {
	// ID is the device id.
	ID DeviceID `json:"id"`
	// SignatureKey is the device's MLS signature public key.
	SignatureKey []byte `json:"signature_key"`
	// Certificate is the encoded [DeviceCertificate].
	Certificate []byte `json:"certificate"`
	// Created is when the server registered the device.
	Created time.Time `json:"created"`
	// Revoked is set when the device was revoked by its user.
	Revoked *time.Time `json:"revoked,omitempty"`
	// Revocation is the encoded [DeviceRevocation] by which the user
	// revoked the device, signed by the user's identity key (absent for
	// a device revoked before servers kept the statement).
	Revocation []byte `json:"revocation,omitempty"`
	// Disabled is true when an admin disabled the device.
	Disabled bool `json:"disabled,omitempty"`
	// LastSeen is when the device last signed in (created a session).
	// Only the devices of its own account are told; absent otherwise,
	// and for a device that never signed in.
	LastSeen *time.Time `json:"last_seen,omitempty"`
	// SealedName is the device's name as the account's devices share
	// it, sealed under a key that only they hold (docs/protocol.md,
	// "Device names"); opaque to the server. Only the devices of its own
	// account are told; absent when none was set.
	SealedName []byte `json:"sealed_name,omitempty"`
}

// MaxSealedDeviceNameBytes bounds a device's sealed name.
const MaxSealedDeviceNameBytes = 512

// SetDeviceNameRequest sets the sealed name of one of the caller user's
// devices (PUT /v1/devices/{device}/name); empty removes it.
type SetDeviceNameRequest struct {
	SealedName []byte `json:"sealed_name"`
}

// RevokeDeviceRequest revokes one of the caller user's devices
// (DELETE /v1/devices/{device}).
type RevokeDeviceRequest struct {
	// Revocation is the encoded [DeviceRevocation] of the device, signed
	// by the user's identity key and naming this server, the user and
	// the device of the path.
	Revocation []byte `json:"revocation"`
}

// RevokedDevice is a device that its user revoked or an administrator
// disabled but that is still a member of some of the caller device's
// conversations: any member should commit the removal of its leaves.
type RevokedDevice struct {
	// User owns the device.
	User string `json:"user"`
	// Device is the device.
	Device DeviceID `json:"device"`
	// Revoked is when the user revoked it; nil when it was not revoked.
	Revoked *time.Time `json:"revoked,omitempty"`
	// Revocation is the user's signed [DeviceRevocation], when the user
	// revoked it. Members remove the device on its strength only once it
	// verifies under the user's identity key.
	Revocation []byte `json:"revocation,omitempty"`
	// Disabled is true when an administrator disabled the device: there
	// is no statement to check, members take the server's word.
	Disabled bool `json:"disabled,omitempty"`
	// Conversations are the conversations of the caller device that the
	// device is still a member of, by id.
	Conversations []ConversationID `json:"conversations"`
}

// RevokedDevices lists the revoked and disabled devices still in the
// caller device's conversations (GET /v1/revocations, and the WebSocket
// "revoked" frame). The list holds at most [MaxRevokedPairs] pairs of a
// device and a conversation; Truncated is set when more remain, which
// the server lists again once members removed these.
type RevokedDevices struct {
	// Devices are the devices, by id.
	Devices []RevokedDevice `json:"devices"`
	// Truncated is true when the list was cut at MaxRevokedPairs.
	Truncated bool `json:"truncated,omitempty"`
}

// MaxRevokedPairs bounds the (device, conversation) pairs of one
// [RevokedDevices] list.
const MaxRevokedPairs = 1000

// UserInfo is the public record of a user (GET /v1/users/{name}). Clients
// must verify every device certificate against IdentityKey themselves.
type UserInfo struct {
	// Name is the account name.
	Name string `json:"name"`
	// IdentityKey is the Ed25519 identity public key.
	IdentityKey []byte `json:"identity_key"`
	// Devices lists the user's devices, revoked ones included.
	Devices []DeviceInfo `json:"devices"`
	// Admin is true for administrators (shown to admins only).
	Admin bool `json:"admin,omitempty"`
	// Disabled is true for a disabled account.
	Disabled bool `json:"disabled,omitempty"`
	// Created is when the account was registered.
	Created time.Time `json:"created"`
}

// AddDeviceRequest registers another device of the caller's user
// (POST /v1/devices). The certificate is produced by an existing device
// holding the identity key (device linking); the proof by the new device.
type AddDeviceRequest struct {
	// Device is the new device.
	Device NewDevice `json:"device"`
}

// RecoverDeviceRequest registers a device of User without a session
// (POST /v1/devices/recover): a device restored from a backup, when no
// device of the account is at hand. The certificate is the
// authorization: it must verify under User's stored identity key, name
// the server, User, the device and its key, and be at most
// [MaxRecoveryCertificateAge] old; the device proves possession of its
// key as for registration.
type RecoverDeviceRequest struct {
	// User is the account name.
	User string `json:"user"`
	// Device is the new device.
	Device NewDevice `json:"device"`
}

// MaxRecoveryCertificateAge bounds how long before a recovery
// (POST /v1/devices/recover) its certificate may have been made: a
// restoring device certifies its key just before it registers.
const MaxRecoveryCertificateAge = time.Hour

// KeyPackageUpload is one KeyPackage in an upload.
type KeyPackageUpload struct {
	// Data is the MLSMessage-framed KeyPackage.
	Data []byte `json:"data"`
	// LastResort marks the package returned when the pool is empty; it is
	// kept after a claim. A new last-resort package replaces the old one
	// of the same cipher suite.
	LastResort bool `json:"last_resort,omitempty"`
}

// UploadKeyPackagesRequest uploads a batch of the caller device's
// KeyPackages (POST /v1/keypackages). The batch is accepted or refused as
// a whole; a refusal names the index of the first bad package.
type UploadKeyPackagesRequest struct {
	// KeyPackages are the packages.
	KeyPackages []KeyPackageUpload `json:"key_packages"`
	// Replace deletes the caller device's unclaimed one-time packages of
	// every cipher suite in the batch before storing it, in the same
	// transaction: the batch becomes the device's whole pool of those
	// suites (its last-resort package too when the batch carries one). A
	// client replaces its pool when its packages' capabilities change
	// (docs/protocol.md, "KeyPackage directory"). Nothing is deleted when
	// the batch is refused.
	Replace bool `json:"replace,omitempty"`
}

// UploadKeyPackagesResponse answers an upload with the new pool size.
type UploadKeyPackagesResponse struct {
	// Count is the pool after the upload.
	Count KeyPackageCount `json:"count"`
}

// KeyPackageCount is the size of a device's KeyPackage pool
// (GET /v1/keypackages/count).
type KeyPackageCount struct {
	// Available counts unexpired one-time packages.
	Available int `json:"available"`
	// LastResort is true when an unexpired last-resort package exists
	// that no claim has returned yet. A client uploads a new last-resort
	// package when it is false: the one it had is missing, or was handed
	// out and should be replaced.
	LastResort bool `json:"last_resort"`
}

// MaxBatchUsers bounds the users of one batched claim
// (ClaimKeyPackagesRequest.Users) and one batched lookup
// (LookupUsersRequest): a batch of more is refused with [CodeTooLarge].
// It keeps the answers well within what clients read: a claim of 500
// users of up to 4 devices each is 2,000 X-Wing KeyPackages of about
// 2.9 KB, about 8 MB in JSON (base64); a lookup lists well under 1 KB
// per device. Adding 10,000 users takes 20 batches of each.
const MaxBatchUsers = 500

// ClaimKeyPackagesRequest claims one KeyPackage for every active device of
// a user, or of each of a batch of users (POST /v1/keypackages/claim).
// Exactly one of User and Users is set. Claims are rate-limited per
// claimed user: a batch costs as many claims as it names users.
type ClaimKeyPackagesRequest struct {
	// User is the account name (a claim of one user).
	User string `json:"user,omitempty"`
	// Users are the account names of a batched claim: at most
	// [MaxBatchUsers], each once. The answer has one
	// ClaimKeyPackagesResponse.Users entry per name, in this order.
	Users []string `json:"users,omitempty"`
	// CipherSuite is the suite of the group the devices will join.
	CipherSuite uint16 `json:"cipher_suite"`
}

// Validate checks that exactly one of User and Users is set and that
// Users names at most [MaxBatchUsers] users, each once (the names
// themselves are checked by the server, per user).
func (r *ClaimKeyPackagesRequest) Validate() error {
	if err := checkBatchUsers("claim", r.Users); err != nil {
		return err
	}
	if (r.User == "") == (len(r.Users) == 0) {
		return badField("claim", "user", "or users must be set, not both")
	}
	return nil
}

// checkBatchUsers checks the names of a batch: at most MaxBatchUsers,
// none twice.
func checkBatchUsers(msg string, users []string) error {
	if len(users) > MaxBatchUsers {
		return NewError(CodeTooLarge, "%s: %d users in one batch, at most %d", msg, len(users), MaxBatchUsers)
	}
	seen := make(map[string]bool, len(users))
	for i, u := range users {
		if seen[u] {
			return badField(msg, fmt.Sprintf("users[%d]", i), "%.70q appears twice", u)
		}
		seen[u] = true
	}
	return nil
}

// ClaimedKeyPackage is a KeyPackage handed out by a claim.
type ClaimedKeyPackage struct {
	// Device is the device the package belongs to.
	Device DeviceID `json:"device"`
	// Data is the MLSMessage-framed KeyPackage.
	Data []byte `json:"data"`
	// LastResort is true when the device's pool was empty.
	LastResort bool `json:"last_resort,omitempty"`
}

// ClaimKeyPackagesResponse lists the claimed packages. Devices without any
// package of the suite are listed in Missing; the claim of one user fails
// with [CodeNoKeyPackage] when no device has one. A batched claim answers
// in Users instead, one entry per user of the request.
type ClaimKeyPackagesResponse struct {
	// KeyPackages are the claimed packages, one per device.
	KeyPackages []ClaimedKeyPackage `json:"key_packages"`
	// Missing lists the active devices that had no package.
	Missing []DeviceID `json:"missing,omitempty"`
	// Users answers a batched claim, in the order of the request.
	Users []ClaimedUser `json:"users,omitempty"`
}

// ClaimedUser is the part of a batched claim's answer for one user.
type ClaimedUser struct {
	// User is the account name.
	User string `json:"user"`
	// KeyPackages are the claimed packages, one per device.
	KeyPackages []ClaimedKeyPackage `json:"key_packages"`
	// Missing lists the active devices that had no package.
	Missing []DeviceID `json:"missing,omitempty"`
	// Error is set when nothing was claimed for the user: an invalid
	// name ([CodeBadRequest]), no such user ([CodeUnknownUser]), no
	// device with a package ([CodeNoKeyPackage]), or too many claims of
	// this user by the caller ([CodeRateLimited]; retry it later).
	Error *Error `json:"error,omitempty"`
}

// LookupUsersRequest reads the public records of a batch of users
// (POST /v1/users/lookup), as GET /v1/users/{name} reads one.
type LookupUsersRequest struct {
	// Users are the account names: at most [MaxBatchUsers], each once.
	Users []string `json:"users"`
}

// Validate checks that Users names 1 to [MaxBatchUsers] users, each once.
func (r *LookupUsersRequest) Validate() error {
	if len(r.Users) == 0 {
		return badField("lookup", "users", "is empty")
	}
	return checkBatchUsers("lookup", r.Users)
}

// LookupUsersResponse answers a batched lookup. Clients must verify every
// device certificate against the user's IdentityKey themselves.
type LookupUsersResponse struct {
	// Users are the records of the users that exist, in the order of the
	// request.
	Users []UserInfo `json:"users"`
	// Unknown lists the names of the request that name no user (invalid
	// names included), in the order of the request.
	Unknown []string `json:"unknown,omitempty"`
}

// CreateConversationRequest creates a conversation whose only member is the
// caller's device (POST /v1/conversations). Members are added by commits.
type CreateConversationRequest struct {
	// GroupID is the MLS group id; unique on the server.
	GroupID []byte `json:"group_id"`
	// CipherSuite is the group's MLS cipher suite.
	CipherSuite uint16 `json:"cipher_suite"`
	// GroupInfo is the MLSMessage-framed GroupInfo of epoch 0, with the
	// external_pub extension if external joins are wanted.
	GroupInfo []byte `json:"group_info"`
	// RatchetTree is the encoded ratchet tree (the ratchet_tree extension
	// data) of epoch 0.
	RatchetTree []byte `json:"ratchet_tree"`
}

// ConversationInfo describes a conversation to one of its member devices.
type ConversationInfo struct {
	// ID is the server-assigned conversation id.
	ID ConversationID `json:"id"`
	// GroupID is the MLS group id.
	GroupID []byte `json:"group_id"`
	// CipherSuite is the group's cipher suite.
	CipherSuite uint16 `json:"cipher_suite"`
	// Epoch is the current epoch accepted by the server.
	Epoch uint64 `json:"epoch"`
	// Head is the seq of the newest log entry (0 when empty).
	Head uint64 `json:"head"`
	// Cursor is the caller device's acknowledged seq.
	Cursor uint64 `json:"cursor"`
	// Members lists the member devices (only in GET /v1/conversations/{id}).
	Members []DeviceID `json:"members,omitempty"`
	// Created is when the conversation was created.
	Created time.Time `json:"created"`
}

// ConversationList lists the caller device's conversations.
type ConversationList struct {
	// Conversations are the conversations, by id.
	Conversations []ConversationInfo `json:"conversations"`
	// InboxHead is the seq of the newest inbox entry of the device.
	InboxHead uint64 `json:"inbox_head"`
}

// GroupInfoResponse carries the public group state for joiners and
// external commits (GET /v1/conversations/{id}/groupinfo). Members and
// devices of member users may read it.
type GroupInfoResponse struct {
	// Epoch is the epoch the GroupInfo belongs to.
	Epoch uint64 `json:"epoch"`
	// GroupInfo is the MLSMessage-framed GroupInfo.
	GroupInfo []byte `json:"group_info"`
	// RatchetTree is the encoded ratchet tree of the epoch.
	RatchetTree []byte `json:"ratchet_tree"`
}

// Welcome is a Welcome message for devices a commit adds. It names either
// one device with Device or several with Devices, never both: one Welcome
// carries the secrets of every device it was made for, so a commit sends
// its Welcome once for all of them. Each named device gets Data in its
// inbox.
type Welcome struct {
	// Device is the one device the Welcome is for (the single form).
	Device DeviceID `json:"device,omitempty"`
	// Devices are the devices the Welcome is for (the list form).
	Devices []DeviceID `json:"devices,omitempty"`
	// Data is the MLSMessage-framed Welcome.
	Data []byte `json:"data"`
}

// Recipients returns the devices the Welcome names: Devices, or Device
// alone. It is empty when neither is set.
func (w Welcome) Recipients() []DeviceID {
	if len(w.Devices) != 0 || w.Device == "" {
		return w.Devices
	}
	return []DeviceID{w.Device}
}

// HandshakeRequest posts a handshake message for the conversation's current
// epoch (POST /v1/conversations/{id}/handshake). A commit must come with the
// GroupInfo and ratchet tree of the new epoch and, when it adds devices,
// Welcomes naming each added device once; a proposal comes alone. The server validates it with
// the public group state and accepts at most one commit per epoch; a commit
// for another epoch is refused with [CodeStaleEpoch] and the current epoch.
type HandshakeRequest struct {
	// Epoch is the epoch the message was created in.
	Epoch uint64 `json:"epoch"`
	// Message is the MLSMessage-framed PublicMessage (commit or proposal).
	Message []byte `json:"message"`
	// GroupInfo is the MLSMessage-framed GroupInfo of the new epoch
	// (commits only).
	GroupInfo []byte `json:"group_info,omitempty"`
	// RatchetTree is the ratchet tree of the new epoch (commits only).
	RatchetTree []byte `json:"ratchet_tree,omitempty"`
	// Welcomes are the Welcomes of the added devices (commits only),
	// usually one entry naming all of them.
	Welcomes []Welcome `json:"welcomes,omitempty"`
}

// HandshakeResponse answers an accepted handshake message once durable.
type HandshakeResponse struct {
	// Seq is the log seq of the handshake entry.
	Seq uint64 `json:"seq"`
	// Epoch is the conversation's epoch after the message.
	Epoch uint64 `json:"epoch"`
}

// SendRequest posts an application message over HTTP
// (POST /v1/conversations/{id}/messages); the WebSocket "send" frame does
// the same.
type SendRequest struct {
	// ClientID is an opaque id chosen by the client (at most 64 bytes),
	// echoed in the answer.
	ClientID string `json:"client_id,omitempty"`
	// Message is the MLSMessage-framed PrivateMessage.
	Message []byte `json:"message"`
}

// SendResponse answers a stored application message once durable.
type SendResponse struct {
	// ClientID echoes the request's client id.
	ClientID string `json:"client_id,omitempty"`
	// Seq is the log seq of the entry.
	Seq uint64 `json:"seq"`
	// Time is when the server stored it.
	Time time.Time `json:"time"`
}

// Entry is one entry of a conversation log.
type Entry struct {
	// Conversation is the conversation.
	Conversation ConversationID `json:"conversation"`
	// Seq numbers the entry in its conversation, from 1, without gaps.
	Seq uint64 `json:"seq"`
	// Kind is application or handshake.
	Kind EntryKind `json:"kind"`
	// Sender is the device that posted it.
	Sender DeviceID `json:"sender"`
	// Data is the MLSMessage-framed message.
	Data []byte `json:"data"`
	// Time is when the server stored it.
	Time time.Time `json:"time"`
}

// EntriesResponse is a page of a conversation log
// (GET /v1/conversations/{id}/entries). More is true when entries after
// the last one exist.
type EntriesResponse struct {
	// Entries are in seq order.
	Entries []Entry `json:"entries"`
	// More is true when the page was cut by the limit.
	More bool `json:"more"`
}

// InboxEntry is a Welcome in a device's inbox.
type InboxEntry struct {
	// Seq numbers the entry in the device's inbox, from 1.
	Seq uint64 `json:"seq"`
	// Conversation is the conversation the Welcome joins.
	Conversation ConversationID `json:"conversation"`
	// Data is the MLSMessage-framed Welcome.
	Data []byte `json:"data"`
	// Time is when the server stored it.
	Time time.Time `json:"time"`
}

// InboxResponse is a page of the caller device's inbox (GET /v1/inbox).
type InboxResponse struct {
	// Entries are in seq order.
	Entries []InboxEntry `json:"entries"`
	// More is true when the page was cut by the limit.
	More bool `json:"more"`
}

// Cursor is a position in a conversation log.
type Cursor struct {
	// Conversation is the conversation.
	Conversation ConversationID `json:"conversation"`
	// Seq is the last seq processed.
	Seq uint64 `json:"seq"`
}

// MaxAckCursors is the most cursors one acknowledgement (AckRequest,
// AckFrame) may hold.
const MaxAckCursors = 10000

// AckRequest acknowledges entries up to and including the given seqs
// (POST /v1/ack). Cursors only move forward: an older seq is ignored.
// Inbox entries up to Inbox are deleted.
type AckRequest struct {
	// Cursors are the acknowledged positions.
	Cursors []Cursor `json:"cursors,omitempty"`
	// Inbox is the acknowledged inbox seq; 0 acknowledges nothing.
	Inbox uint64 `json:"inbox,omitempty"`
}

// AttachmentInfo answers an attachment upload (POST /v1/attachments). The
// body is the already encrypted blob; the id is the lowercase hex SHA-256
// of it, so uploads are content-addressed and the client can check a
// download.
type AttachmentInfo struct {
	// ID is the attachment id: hex SHA-256 of the content.
	ID string `json:"id"`
	// Size is the size in bytes.
	Size int64 `json:"size"`
	// Created is when the server stored it.
	Created time.Time `json:"created"`
	// Expires is when the server deletes it, as its uploaders asked
	// (POST /v1/attachments?ttl_seconds=N); absent when none did (it
	// then goes with the retention).
	Expires time.Time `json:"expires,omitzero"`
}

// CreateInviteRequest creates an invite (POST /v1/admin/invites).
type CreateInviteRequest struct {
	// Uses is how many registrations the invite allows (at least 1).
	Uses int `json:"uses"`
	// TTLSeconds is the invite's lifetime.
	TTLSeconds int64 `json:"ttl_seconds"`
}

// InviteInfo describes an invite. The server stores only a hash of the
// code, so Code is set only in the answer to its creation.
type InviteInfo struct {
	// ID identifies the invite for listing and deletion.
	ID int64 `json:"id"`
	// Code is the secret code to hand to the invitee (creation only).
	Code string `json:"code,omitempty"`
	// UsesLeft is how many registrations remain.
	UsesLeft int `json:"uses_left"`
	// Expires is when the invite stops being accepted.
	Expires time.Time `json:"expires"`
	// Created is when the invite was created.
	Created time.Time `json:"created"`
}

// InviteList lists invites (GET /v1/admin/invites).
type InviteList struct {
	// Invites are the invites.
	Invites []InviteInfo `json:"invites"`
}

// UserList lists users (GET /v1/admin/users).
type UserList struct {
	// Users are the users, by name.
	Users []UserInfo `json:"users"`
}

// AdminUserUpdate changes a user (POST /v1/admin/users/{name}). Nil fields
// are left unchanged. Disabling a user ends its sessions.
type AdminUserUpdate struct {
	// Disabled disables or enables the account.
	Disabled *bool `json:"disabled,omitempty"`
	// Admin grants or removes administration.
	Admin *bool `json:"admin,omitempty"`
}

// AdminDeviceUpdate changes a device (POST /v1/admin/devices/{device}).
type AdminDeviceUpdate struct {
	// Disabled disables or enables the device.
	Disabled *bool `json:"disabled,omitempty"`
}

// Stats are server-wide counts (GET /v1/admin/stats). They contain no
// content.
type Stats struct {
	Users           int64 `json:"users"`            // Users counts accounts.
	Devices         int64 `json:"devices"`          // Devices counts active devices.
	Conversations   int64 `json:"conversations"`    // Conversations counts conversations.
	Entries         int64 `json:"entries"`          // Entries counts stored log entries.
	InboxEntries    int64 `json:"inbox_entries"`    // InboxEntries counts stored Welcomes.
	KeyPackages     int64 `json:"key_packages"`     // KeyPackages counts stored KeyPackages.
	Attachments     int64 `json:"attachments"`      // Attachments counts stored blobs.
	AttachmentBytes int64 `json:"attachment_bytes"` // AttachmentBytes sums blob sizes.
	Connections     int64 `json:"connections"`      // Connections counts open WebSockets.
}
