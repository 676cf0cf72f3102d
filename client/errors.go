package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/parley-chat/parley/protocol"
)

// Sentinel errors that callers (the CLI) branch on with errors.Is. Returned
// errors wrap them after the operation and its input:
// "client: send to conversation 4: identity of bob changed: identity changed".
var (
	// ErrNotRegistered means the profile has no account yet.
	ErrNotRegistered = errors.New("profile not registered")
	// ErrAlreadyRegistered means Register was called on a registered profile.
	ErrAlreadyRegistered = errors.New("profile already registered")
	// ErrUnknownUser means the server has no such user.
	ErrUnknownUser = errors.New("unknown user")
	// ErrUnknownConversation means the profile has no such conversation.
	ErrUnknownConversation = errors.New("unknown conversation")
	// ErrNotMember means this device, or the named user, is not a member of
	// the conversation (or the device left or was removed).
	ErrNotMember = errors.New("not a member")
	// ErrServerUnreachable means the server could not be reached, or
	// answered with a server fault.
	ErrServerUnreachable = errors.New("server unreachable")
	// ErrIdentityChanged means a user's identity key differs from the one
	// pinned: sending to conversations with that user is blocked until
	// Client.AcknowledgeIdentity.
	ErrIdentityChanged = errors.New("identity changed")
	// ErrTrustRollback means the identity key pinned for a user is lost:
	// the profile's store found the user's record deleted or replaced by
	// an older copy, or all such records rolled back together
	// (store.TrustAlarm). The key the server presents is not pinned
	// on first use again. Errors that match it are *TrustRollbackError
	// and also match ErrIdentityChanged: the user is blocked the same way,
	// and unblocked the same way, by Client.AcknowledgeIdentity.
	ErrTrustRollback = errors.New("pinned identity key lost")
	// ErrForgedDevice means a device certificate does not verify under the
	// user's identity key: the server (or someone) tried to add a device
	// the user did not certify.
	ErrForgedDevice = errors.New("device not certified by the user's identity key")
	// ErrBadRevocation means the server presented a device revocation
	// that does not verify under the user's pinned identity key: the
	// device is not removed on its strength. It is reported in an
	// EventError.
	ErrBadRevocation = errors.New("device revocation not signed by the user's identity key")
	// ErrNoKeyPackage means a user has no device that can be added now.
	ErrNoKeyPackage = errors.New("no KeyPackage available")
	// ErrRolesUnsupported means a user's client (one of the user's
	// devices) does not support roles and policies (its KeyPackage lacks
	// the policy extension): it cannot be added to a conversation that
	// has a policy until the user updates Parley. The error names the
	// user.
	ErrRolesUnsupported = errors.New("client does not support roles")
	// ErrUnknownMessage means the conversation has no message with the id.
	ErrUnknownMessage = errors.New("unknown message")
	// ErrUnknownAttachment means no message in the local history carries
	// the attachment.
	ErrUnknownAttachment = errors.New("unknown attachment")
	// ErrStateUnusable means the stored MLS state of a conversation cannot
	// be restored without risking the reuse of message keys (its ratchet
	// state does not apply to its group state): the conversation is
	// refused — nothing is sent or received in it — until this device is
	// added to it again.
	ErrStateUnusable = errors.New("stored conversation state unusable")
	// ErrKeyReused means a received message used the key of a message
	// already received with another ciphertext: the sender reused a
	// message key (RFC 9420 §9.2 forbids it), or someone forged the
	// entry. It is reported in an EventError; UIs must show it loudly.
	ErrKeyReused = errors.New("message key used twice")
	// ErrStaleState means this device's state of a conversation is older
	// than the messages it already sent there (the profile was restored
	// from a copy) and rejoining with fresh keys failed: nothing is
	// encrypted in the conversation until a rejoin succeeds (see
	// EventStateRestored).
	ErrStaleState = errors.New("this device's state is older than the server's (restored profile) and rejoining failed")
	// ErrClosed means the Client was closed.
	ErrClosed = errors.New("client closed")
	// ErrCertificateMismatch means the server presented a TLS certificate
	// whose fingerprint differs from the pinned one: the connection may
	// be intercepted. It does not wrap ErrServerUnreachable: nothing was
	// sent. The error is a *CertificateMismatchError.
	ErrCertificateMismatch = errors.New("server certificate does not match the pinned fingerprint")
	// ErrNotDelivered means a queued message was given up: the server
	// refused it for good (this device left the conversation, or its
	// ciphertext cannot be made acceptable). The message stays in the
	// history in state Failed and is reported in an EventError.
	ErrNotDelivered = errors.New("message not delivered")
)

// CertificateMismatchError reports a server certificate that does not
// match the pinned fingerprint (Config.TLSFingerprint). Both fingerprints
// are 64 lowercase hex digits.
type CertificateMismatchError struct {
	// Pinned is the fingerprint pinned in the profile.
	Pinned string
	// Got is the fingerprint of the certificate the server presented.
	Got string
}

// Error names both fingerprints.
func (e *CertificateMismatchError) Error() string {
	return fmt.Sprintf("the server's TLS certificate has fingerprint %s, not the pinned %s; the connection may be intercepted", e.Got, e.Pinned)
}

// Unwrap returns ErrCertificateMismatch.
func (e *CertificateMismatchError) Unwrap() error { return ErrCertificateMismatch }

// ServerError is a refusal by the server, with its stable code. It wraps
// the sentinel that matches the code when there is one (ErrUnknownUser,
// ErrNotMember, ErrNoKeyPackage, ErrServerUnreachable,
// protocol.ErrPolicyViolation).
type ServerError struct {
	// Status is the HTTP status.
	Status int
	// Err is the server's error body.
	Err protocol.Error
	// RetryAfter is the wait the server asked for (its Retry-After
	// header) with a rate_limited refusal; zero when it named none.
	RetryAfter time.Duration
}

// Error formats the error as the server's code and message.
func (e *ServerError) Error() string {
	return fmt.Sprintf("server refused (%d %s): %s", e.Status, e.Err.Code, e.Err.Message)
}

// Unwrap returns the sentinel matching the code, if any.
func (e *ServerError) Unwrap() error {
	switch e.Err.Code {
	case protocol.CodeUnknownUser:
		return ErrUnknownUser
	case protocol.CodeNotMember:
		return ErrNotMember
	case protocol.CodeNoKeyPackage:
		return ErrNoKeyPackage
	case protocol.CodeInternal, protocol.CodeUnavailable:
		return ErrServerUnreachable
	case protocol.CodePolicyViolation:
		return protocol.ErrPolicyViolation
	}
	return nil
}

// isCode reports whether err is a ServerError with the code.
func isCode(err error, code protocol.ErrorCode) (*ServerError, bool) {
	var se *ServerError
	if errors.As(err, &se) && se.Err.Code == code {
		return se, true
	}
	return nil, false
}
