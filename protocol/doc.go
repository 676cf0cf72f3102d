// Package protocol defines Parley's public client↔server wire format,
// version 1: the JSON bodies of the HTTP API, the WebSocket frames, the
// error body with its stable codes, the device certificate that binds a
// device's signature key to its user's identity key on one server, the
// proof of possession a device gives when it is registered, and the
// device revocation by which the identity key revokes a device.
//
// It is the contract any client implements. MLS messages (KeyPackages,
// PublicMessage, PrivateMessage, Welcome, GroupInfo, ratchet trees) travel
// inside it as opaque bytes; every []byte field is encoded as standard
// base64 (with padding) in JSON. Times are RFC 3339 strings in UTC.
// Sequence numbers, epochs and conversation ids are JSON numbers:
// sequence numbers and epochs are at most 2^63-1 ([MaxSeq]) and
// conversation ids are positive, and a request or client frame with an
// integer out of range is refused with bad_request (see [Validator]).
// The server decodes request bodies strictly and rejects unknown fields
// (so a client learns at once that the server is older); clients ignore
// unknown fields in responses and frames, and the server ignores them in
// frames, so that fields can be added within a version; removing or
// changing a field needs a new version.
// The package depends only on the standard library.
//
// # Transport
//
// All endpoints are under the prefix /v1 (see [Version] and [PathPrefix])
// and served over HTTPS. Requests and responses are JSON
// (Content-Type: application/json) except the attachment bodies, which are
// raw bytes (application/octet-stream). Authenticated endpoints need the
// header "Authorization: Bearer <token>" with a session token from
// POST /v1/auth/session. A failed request answers with a 4xx or 5xx status
// and an [Error] body.
//
// # Endpoints
//
// Unauthenticated:
//
//	GET    /v1/info                                    → ServerInfo
//	POST   /v1/register           RegisterRequest      → RegisterResponse
//	POST   /v1/auth/challenge     ChallengeRequest     → ChallengeResponse
//	POST   /v1/auth/session       SessionRequest       → SessionResponse
//	POST   /v1/link               CreateLinkRequest    → CreateLinkResponse (a device being linked)
//
// Link mailboxes, by the device being linked (with the mailbox token in
// the LinkTokenHeader header) or a device of an account (its session):
//
//	POST   /v1/link/{id}          PostLinkRequest      → PostLinkResponse
//	GET    /v1/link/{id}?after=SEQ&wait=SECONDS        → LinkMessages
//	DELETE /v1/link/{id}                               → 204
//
// Authenticated (any active device):
//
//	DELETE /v1/auth/session                            → 204 (logs this session out)
//	GET    /v1/users/{name}                            → UserInfo
//	POST   /v1/devices            AddDeviceRequest     → DeviceInfo     (a device of the caller's user)
//	DELETE /v1/devices/{device} RevokeDeviceRequest    → 204            (revoke a device of the caller's user)
//	GET    /v1/revocations                             → RevokedDevices (revoked or disabled devices in the caller's conversations)
//	POST   /v1/keypackages        UploadKeyPackagesRequest → UploadKeyPackagesResponse
//	GET    /v1/keypackages/count                       → KeyPackageCount (the caller's device pool)
//	POST   /v1/keypackages/claim  ClaimKeyPackagesRequest → ClaimKeyPackagesResponse
//	GET    /v1/conversations                           → ConversationList (the caller's device)
//	POST   /v1/conversations      CreateConversationRequest → ConversationInfo
//	GET    /v1/conversations/{id}                      → ConversationInfo
//	GET    /v1/conversations/{id}/groupinfo            → GroupInfoResponse
//	POST   /v1/conversations/{id}/handshake  HandshakeRequest → HandshakeResponse
//	POST   /v1/conversations/{id}/messages   SendRequest      → SendResponse
//	GET    /v1/conversations/{id}/entries?after=SEQ&limit=N   → EntriesResponse
//	POST   /v1/ack                AckRequest           → 204
//	GET    /v1/inbox?after=SEQ&limit=N                 → InboxResponse
//	POST   /v1/attachments?ttl_seconds=N (raw bytes)   → AttachmentInfo
//	GET    /v1/attachments/{id}                        → raw bytes
//	GET    /v1/ws                                      → WebSocket (see below)
//
// Administrative (the caller's user must be an admin):
//
//	POST   /v1/admin/invites      CreateInviteRequest  → InviteInfo (with the code, shown once)
//	GET    /v1/admin/invites                           → InviteList
//	DELETE /v1/admin/invites/{id}                      → 204
//	GET    /v1/admin/users                             → UserList
//	POST   /v1/admin/users/{name} AdminUserUpdate      → UserInfo (disable/enable, admin flag)
//	POST   /v1/admin/devices/{device} AdminDeviceUpdate → DeviceInfo (disable/enable)
//	GET    /v1/admin/stats                             → Stats
//
// {id} of a conversation is its server-assigned [ConversationID] in
// decimal; {device} is a [DeviceID]; {name} a user name (see [ValidUserName]).
//
// # WebSocket
//
// GET /v1/ws upgrades to a WebSocket (authenticated like any other
// endpoint; browsers may pass the token as the "token" query parameter
// instead). Every WebSocket message is one text frame holding one JSON
// [Frame]: an object with a "type" and the fields of that type. The server
// sends nothing until the client sends "subscribe".
//
// Client → server: "subscribe" (cursors to resume from), "ack",
// "send" (an application message; answered by "sent" once durable, or by
// "error" with the same client id), "typing", "ephemeral" (an encrypted
// message relayed to connected members, never stored), "ping".
//
// Server → client: "entry" (a log entry of a conversation), "inbox"
// (a Welcome), "sent", "typing", "ephemeral", "error", "pong", and "revoked" (revoked
// or disabled devices still in the device's conversations, only for a
// client that subscribed with Revocations set).
//
// Delivery is at least once in order per conversation: after any
// reconnection the client subscribes again with the highest seq it has
// processed per conversation (and in its inbox), and receives every entry
// after it, then new ones as they are appended. Acknowledging advances the
// device's cursor on the server, which lets it delete the log once every
// member device has acknowledged. The server also sends WebSocket pings;
// "ping"/"pong" frames exist for clients (browsers) that cannot observe them.
//
// # Limits
//
// The server announces its limits in [ServerInfo]: request body, WebSocket
// frame, message and attachment sizes, KeyPackages per upload and entries
// per page. Exceeding one gives the code [CodeTooLarge]. A server may also
// bound the frames a client sends on one WebSocket per second: a
// connection exceeding it receives an "error" frame with
// [CodeRateLimited] and is closed with status 1008 (policy violation), so
// clients should acknowledge in batches rather than one frame per entry.
package protocol

// Version is the protocol version this package describes.
const Version = 1

// PathPrefix is the prefix of every HTTP path of this version.
const PathPrefix = "/v1"
