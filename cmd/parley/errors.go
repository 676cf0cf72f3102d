package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/backup"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// Exit codes. They are part of the CLI's contract (docs/cli.md).
const (
	exitOK              = 0
	exitFailure         = 1
	exitUsage           = 2
	exitUnreachable     = 3
	exitUnknownUser     = 4
	exitNotMember       = 5
	exitIdentityChanged = 6
	exitNotFound        = 7
	exitProfile         = 8
	exitForgedDevice    = 9
	exitUnsafe          = 10
	exitCertificate     = 11
	exitQueued          = 12
	exitNotPermitted    = 13
	exitBackup          = 14
)

// usageError is a mistake in the command line; it exits with 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// queuedError is the outcome of a send whose message is stored in the
// profile's outbox but not delivered yet (the server is unreachable); it
// exits with 12.
type queuedError struct {
	id  string // the message id, short
	err error  // why it was not delivered
}

func (e *queuedError) Error() string {
	return fmt.Sprintf("message %s queued, not delivered yet: %v", e.id, e.err)
}

func (e *queuedError) Unwrap() error { return e.err }

// errUsagePrinted is a usage error whose message the flag package already
// printed.
var errUsagePrinted = &usageError{}

// hintError adds advice to an error: what the user should do next.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, format string, args ...any) error {
	return &hintError{err: err, hint: fmt.Sprintf(format, args...)}
}

// Profile errors that are the CLI's own.
var (
	errNoPassphrase = errors.New("passphrase required")
)

// classify returns the exit code and the stable error code of err.
func classify(err error) (int, string) {
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage, "usage"
	case errors.As(err, new(*queuedError)):
		return exitQueued, "queued"
	case errors.Is(err, client.ErrCertificateMismatch):
		return exitCertificate, "certificate_mismatch"
	case errors.Is(err, client.ErrTrustRollback):
		return exitIdentityChanged, "trust_rolled_back"
	case errors.Is(err, client.ErrIdentityChanged):
		return exitIdentityChanged, "identity_changed"
	case errors.Is(err, client.ErrForgedDevice):
		return exitForgedDevice, "forged_device"
	case errors.Is(err, client.ErrConversationUnsafe):
		return exitUnsafe, "conversation_unsafe"
	case errors.Is(err, protocol.ErrPolicyViolation):
		return exitNotPermitted, "not_permitted"
	case errors.Is(err, client.ErrUnknownUser):
		return exitUnknownUser, "unknown_user"
	case errors.Is(err, client.ErrNotMember):
		return exitNotMember, "not_member"
	case errors.Is(err, client.ErrUnknownConversation):
		return exitNotFound, "unknown_conversation"
	case errors.Is(err, client.ErrUnknownMessage):
		return exitNotFound, "unknown_message"
	case errors.Is(err, client.ErrUnknownAttachment):
		return exitNotFound, "unknown_attachment"
	case errors.Is(err, client.ErrRolesUnsupported):
		return exitFailure, "roles_unsupported"
	case errors.Is(err, client.ErrServerUnreachable):
		return exitUnreachable, "server_unreachable"
	case errors.Is(err, client.ErrNotRegistered):
		return exitProfile, "not_registered"
	case errors.Is(err, client.ErrAlreadyRegistered):
		return exitProfile, "already_registered"
	case errors.Is(err, store.ErrWrongKey):
		return exitProfile, "wrong_key"
	case errors.Is(err, client.ErrProfileBusy):
		return exitProfile, "profile_busy"
	case errors.Is(err, errNoPassphrase):
		return exitProfile, "passphrase_required"
	case errors.Is(err, client.ErrLinkRefused):
		return exitFailure, "link_refused"
	case errors.Is(err, client.ErrLinkTampered):
		return exitFailure, "link_tampered"
	case errors.Is(err, daemonapi.ErrLinkInProgress):
		return exitFailure, "link_in_progress"
	case errors.Is(err, backup.ErrWrongKey):
		return exitBackup, "backup_wrong_key"
	case errors.Is(err, backup.ErrRecoveryKeyInvalid):
		return exitBackup, "recovery_key_invalid"
	case errors.Is(err, backup.ErrCorrupt):
		return exitBackup, "backup_corrupt"
	case errors.Is(err, backup.ErrNotBackup):
		return exitBackup, "not_a_backup"
	case errors.Is(err, backup.ErrUnsupportedVersion):
		return exitBackup, "backup_version"
	}
	return exitFailure, "failure"
}

// defaultHint is the advice for an error that carries none.
func defaultHint(err error) string {
	var unsafe *client.UnsafeError
	var lost *client.TrustRollbackError
	switch {
	case errors.As(err, &lost):
		return lostKeyAdvice(lost.User)
	case errors.As(err, new(*queuedError)):
		return "the message is kept in this profile and will be sent by the next parley command that reaches the server (or by parley listen)"
	case errors.Is(err, client.ErrCertificateMismatch):
		return "do not use this server until you know why: someone may be intercepting the connection. If its administrator replaced the certificate, compare the new fingerprint (parleyd prints it at start) with them over a channel you trust"
	case errors.As(err, &unsafe) && unsafe.Alarm.Unrecoverable:
		return fmt.Sprintf("this device cannot follow this conversation any more (it could not process a member's commits, and rejoining did not help): start a new conversation with the same members with 'parley chat recreate %d'", unsafe.Conversation)
	case errors.As(err, &unsafe):
		return fmt.Sprintf("the server tried to add someone to this conversation and its members refused: start a new conversation with the same members with 'parley chat recreate %d'", unsafe.Conversation)
	case errors.Is(err, client.ErrServerUnreachable) && strings.Contains(err.Error(), "certificate"):
		return "the server's TLS certificate is not trusted: pass the fingerprint parleyd prints at start (parley register --fingerprint SHA256)"
	case errors.Is(err, client.ErrServerUnreachable):
		return "check that parleyd runs and that the server URL is right (parley whoami shows it)"
	case errors.Is(err, client.ErrNotRegistered):
		return "register first: parley register --server URL --invite CODE NAME (or choose another --profile)"
	case errors.Is(err, protocol.ErrPolicyViolation):
		return "the conversation's policy reserves this to its admins (in a channel, only admins post; members react): parley policy CONV shows who they are"
	case errors.Is(err, client.ErrUnknownUser):
		return "unknown user: the server has no account of that name"
	case errors.Is(err, client.ErrNotMember):
		return "not a member: this account is not (or no longer) in that conversation"
	case errors.Is(err, client.ErrRolesUnsupported):
		return "that user's Parley is older than roles and policies: they must update it before they can be added to this conversation (a new group with them is created without admins)"
	case errors.Is(err, client.ErrUnknownConversation):
		return "parley read lists your conversations"
	case errors.Is(err, fs.ErrExist):
		return "nothing was overwritten: pass --force to replace the file, or choose another -o PATH"
	case errors.Is(err, store.ErrWrongKey):
		return "the passphrase (PARLEY_PASSPHRASE) or key file does not open this profile"
	case errors.Is(err, backup.ErrWrongKey):
		return "this recovery key or passphrase does not open the backup; nothing was restored"
	case errors.Is(err, backup.ErrRecoveryKeyInvalid):
		return "type the recovery key as 'parley backup create' showed it: 32 characters in groups of four"
	case errors.Is(err, backup.ErrCorrupt):
		return "the backup file is damaged or was altered; nothing was restored: use another copy"
	}
	return ""
}

// exitCode prints err to stderr (as JSON with --json) and returns the exit
// code for it.
func exitCode(err error, e *env) int {
	if err == nil || errors.Is(err, errHelpShown) {
		return exitOK
	}
	code, name := classify(err)
	if err == errUsagePrinted {
		return code
	}
	hint := defaultHint(err)
	var he *hintError
	if errors.As(err, &he) {
		hint = he.hint
	}
	if e.json {
		out := struct {
			Error    string `json:"error"`
			Code     string `json:"code"`
			ExitCode int    `json:"exit_code"`
			Hint     string `json:"hint,omitempty"`
		}{err.Error(), name, code, hint}
		b, _ := json.Marshal(out)
		fmt.Fprintf(e.stderr, "%s\n", b)
		return code
	}
	fmt.Fprintf(e.stderr, "parley: %v\n", err)
	if hint != "" {
		fmt.Fprintf(e.stderr, "parley: %s\n", hint)
	}
	if code == exitUsage {
		fmt.Fprintln(e.stderr, "parley: run 'parley help' for usage")
	}
	return code
}

// lostKeyAdvice says what a lost pinned key (client.ErrTrustRollback) of
// user means and what to do.
func lostKeyAdvice(user string) string {
	return fmt.Sprintf("this profile lost the identity key it had pinned for %[1]s (its record was deleted or replaced by an older copy), "+
		"so %[1]s's key is not trusted again on first use: compare safety numbers with 'parley verify %[1]s' (in person or over a trusted call), "+
		"then accept the key with 'parley verify --accept %[1]s DIGITS' and the digits you compared", printable(user))
}
