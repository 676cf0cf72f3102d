package mls

import (
	"errors"
	"fmt"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/schedule"
)

// Sentinel errors that callers branch on. Returned errors wrap them after the
// operation and the RFC rule: "mls: process commit: §12.2: duplicate Add for
// KeyPackage 0a1b...: invalid proposal".
var (
	// ErrWrongEpoch reports a message for an epoch the group is not in and
	// keeps no keys for. Errors wrapping it are *EpochError values, which
	// carry the message's epoch.
	ErrWrongEpoch = errors.New("message for another epoch")
	// ErrWrongGroup reports a message for another group.
	ErrWrongGroup = framing.ErrWrongGroup
	// ErrReplay reports a PrivateMessage whose key was already used (RFC
	// 9420 §9.2): a replay.
	ErrReplay = schedule.ErrGenerationUsed
	// ErrGenerationExpired reports a PrivateMessage older than the
	// out-of-order window (Config.OutOfOrderWindow).
	ErrGenerationExpired = schedule.ErrGenerationExpired
	// ErrGenerationTooFar reports a PrivateMessage whose generation lies
	// further ahead than Config.MaxForward.
	ErrGenerationTooFar = schedule.ErrGenerationTooFar
	// ErrNotMember reports a sender or leaf that is not a member.
	ErrNotMember = errors.New("not a member")
	// ErrRemoved reports an operation on a group this client was removed
	// from (or that ended with a ReInit).
	ErrRemoved = errors.New("removed from the group")
	// ErrInvalidCommit reports a Commit that violates RFC 9420 §12.4.
	ErrInvalidCommit = errors.New("invalid commit")
	// ErrInvalidProposal reports a proposal or proposal list that violates
	// RFC 9420 §12.1-§12.2.
	ErrInvalidProposal = errors.New("invalid proposal")
	// ErrInvalidKeyPackage reports a KeyPackage that violates RFC 9420 §10.1.
	ErrInvalidKeyPackage = errors.New("invalid KeyPackage")
	// ErrInvalidLeafNode reports a LeafNode that violates RFC 9420 §7.3.
	ErrInvalidLeafNode = errors.New("invalid leaf node")
	// ErrInvalidWelcome reports a Welcome or GroupInfo that violates RFC
	// 9420 §12.4.3.
	ErrInvalidWelcome = errors.New("invalid welcome")
	// ErrCredentialRejected reports a credential refused by
	// Config.ValidateCredential or by the credential continuity rule.
	ErrCredentialRejected = errors.New("credential rejected")
	// ErrMissingPSK reports a pre-shared key the client does not hold
	// (RFC 9420 §8.4, §12.4.2).
	ErrMissingPSK = errors.New("missing pre-shared key")
	// ErrStale reports a PendingCommit or StagedCommit whose group has moved
	// on (another commit was merged) or that was already used.
	ErrStale = errors.New("stale pending or staged commit")
	// ErrOwnCommit reports a received Commit that this client created: the
	// application merges its PendingCommit instead.
	ErrOwnCommit = errors.New("own commit")
	// ErrMalformed reports input that does not decode.
	ErrMalformed = errors.New("malformed message")
)

// EpochError is returned, wrapping ErrWrongEpoch, for a message of an epoch
// the group does not (or no longer) hold keys for.
type EpochError struct {
	// Op is the operation that failed.
	Op string
	// MessageEpoch is the epoch named by the message.
	MessageEpoch uint64
	// GroupEpoch is the group's current epoch.
	GroupEpoch uint64
}

// Error implements error.
func (e *EpochError) Error() string {
	return fmt.Sprintf("mls: %s: message for epoch %d, group is at epoch %d", e.Op, e.MessageEpoch, e.GroupEpoch)
}

// Unwrap returns ErrWrongEpoch.
func (e *EpochError) Unwrap() error { return ErrWrongEpoch }

// ruleError builds "mls: <op>: <rule>: <detail>: <sentinel>".
func ruleError(op, rule string, sentinel error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if rule != "" {
		return fmt.Errorf("mls: %s: %s: %s: %w", op, rule, msg, sentinel)
	}
	return fmt.Errorf("mls: %s: %s: %w", op, msg, sentinel)
}

// opError prefixes err with the operation.
func opError(op string, err error) error {
	return fmt.Errorf("mls: %s: %w", op, err)
}

// causeError is ruleError with an underlying cause that is also wrapped.
func causeError(op, rule string, sentinel, cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if rule != "" {
		return fmt.Errorf("mls: %s: %s: %s: %w: %w", op, rule, msg, cause, sentinel)
	}
	return fmt.Errorf("mls: %s: %s: %w: %w", op, msg, cause, sentinel)
}
