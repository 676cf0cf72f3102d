package protocol

import (
	"fmt"
)

// ErrorCode is a stable, machine-readable error code. Clients branch on the
// code, never on the message.
type ErrorCode string

// The error codes of version 1.
const (
	CodeBadRequest     ErrorCode = "bad_request"     // CodeBadRequest: malformed JSON, missing or invalid field.
	CodeUnauthorized   ErrorCode = "unauthorized"    // CodeUnauthorized: no, expired or invalid session token, or a bad signature.
	CodeForbidden      ErrorCode = "forbidden"       // CodeForbidden: authenticated but not allowed (not admin, other user's device, disabled).
	CodeNotFound       ErrorCode = "not_found"       // CodeNotFound: no such endpoint, conversation or attachment.
	CodeUnknownUser    ErrorCode = "unknown_user"    // CodeUnknownUser: no such user.
	CodeUnknownDevice  ErrorCode = "unknown_device"  // CodeUnknownDevice: no such device.
	CodeNotMember      ErrorCode = "not_member"      // CodeNotMember: the device is not a member of the conversation.
	CodeStaleEpoch     ErrorCode = "stale_epoch"     // CodeStaleEpoch: the handshake is not for the current epoch; see CurrentEpoch.
	CodeConflict       ErrorCode = "conflict"        // CodeConflict: the name, device id, key, group id or KeyPackage already exists.
	CodeInviteInvalid  ErrorCode = "invite_invalid"  // CodeInviteInvalid: the invite is unknown, used up or expired.
	CodeNoKeyPackage   ErrorCode = "no_key_package"  // CodeNoKeyPackage: no device of the user has a KeyPackage of the suite.
	CodeBadKeyPackage  ErrorCode = "bad_key_package" // CodeBadKeyPackage: a KeyPackage failed validation; see Index.
	CodeBadMessage     ErrorCode = "bad_message"     // CodeBadMessage: an MLS message is malformed or fails validation.
	CodeBadCertificate ErrorCode = "bad_certificate" // CodeBadCertificate: a device certificate or a device's proof of possession is refused.
	CodeUnsupported    ErrorCode = "unsupported"     // CodeUnsupported: cipher suite, signature scheme or protocol version not supported.
	CodeTooLarge       ErrorCode = "too_large"       // CodeTooLarge: a body, frame, message or batch exceeds a limit.
	CodeQuotaExceeded  ErrorCode = "quota_exceeded"  // CodeQuotaExceeded: the user's attachment quota is used up.
	CodeRateLimited    ErrorCode = "rate_limited"    // CodeRateLimited: too many requests; retry later (Retry-After header).
	CodeInternal       ErrorCode = "internal"        // CodeInternal: a server fault; retry later.
	CodeUnavailable    ErrorCode = "unavailable"     // CodeUnavailable: the server is starting or shutting down.
	// CodeTooManyProposals: the conversation's epoch has as many pending
	// proposals (or bytes of them) as the server keeps; a commit must
	// include or drop them before more are accepted.
	CodeTooManyProposals ErrorCode = "too_many_proposals"
	// CodePolicyViolation: the handshake breaks the conversation's roles
	// and policy (docs/protocol.md, "Roles and policy"): a non-admin's
	// removal of another user, a role change by a non-admin, ...
	CodePolicyViolation ErrorCode = "policy_violation"
	// CodeGone: what was asked for is no longer kept, such as the ratchet
	// tree of an epoch older than the server keeps; a joiner then joins by
	// external commit instead.
	CodeGone ErrorCode = "gone"
)

// HTTPStatus returns the HTTP status the server answers with for the code.
// (The statuses are numbers here: the browser's client, compiled to
// WebAssembly, imports this package and must not carry net/http.)
func (c ErrorCode) HTTPStatus() int {
	switch c {
	case CodeBadRequest, CodeBadKeyPackage, CodeBadMessage, CodeBadCertificate, CodeUnsupported:
		return 400 // BadRequest
	case CodeUnauthorized:
		return 401 // Unauthorized
	case CodeForbidden, CodeNotMember, CodeInviteInvalid, CodePolicyViolation:
		return 403 // Forbidden
	case CodeNotFound, CodeUnknownUser, CodeUnknownDevice, CodeNoKeyPackage:
		return 404 // NotFound
	case CodeStaleEpoch, CodeConflict, CodeTooManyProposals:
		return 409 // Conflict
	case CodeGone:
		return 410 // Gone
	case CodeTooLarge:
		return 413 // RequestEntityTooLarge
	case CodeQuotaExceeded:
		return 507 // InsufficientStorage
	case CodeRateLimited:
		return 429 // TooManyRequests
	case CodeUnavailable:
		return 503 // ServiceUnavailable
	default:
		return 500 // InternalServerError
	}
}

// Error is the JSON body of every failed request, and the payload of the
// WebSocket "error" frame. Message is for humans and never contains
// secrets or message content.
type Error struct {
	// Code is the stable error code.
	Code ErrorCode `json:"code"`
	// Message explains the error in English.
	Message string `json:"message"`
	// CurrentEpoch is the conversation's epoch, with CodeStaleEpoch.
	CurrentEpoch *uint64 `json:"current_epoch,omitempty"`
	// Index is the position of the offending item in a batch (such as the
	// KeyPackage with CodeBadKeyPackage).
	Index *int `json:"index,omitempty"`
}

// Error formats the error as "protocol: CODE: MESSAGE".
func (e *Error) Error() string {
	s := fmt.Sprintf("protocol: %s: %s", e.Code, e.Message)
	if e.CurrentEpoch != nil {
		s += fmt.Sprintf(" (current epoch %d)", *e.CurrentEpoch)
	}
	return s
}

// NewError returns an Error with the code and a formatted message.
func NewError(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// StaleEpoch returns the CodeStaleEpoch error carrying the current epoch.
func StaleEpoch(current uint64) *Error {
	return &Error{Code: CodeStaleEpoch, Message: fmt.Sprintf("conversation is at epoch %d", current), CurrentEpoch: &current}
}
