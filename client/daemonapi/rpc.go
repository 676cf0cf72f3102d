package daemonapi

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// SocketFile is the name of the daemon's socket in the profile directory.
const SocketFile = "daemon.sock"

// MaxLine is the longest request line a server reads; a longer one ends
// the connection.
const MaxLine = 1 << 20

// Request is a JSON-RPC 2.0 request (a notification without ID).
type Request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

// Response is a JSON-RPC 2.0 response: Result or Error.
type Response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// Notification is what the server sends unasked: the events of a
// subscription (method "event", params an Event).
type Notification struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// The JSON-RPC 2.0 error codes, and the code of the SDK's errors (whose
// kind ErrorData.Kind names).
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	CodeFailure        = -32000
)

// Error is a JSON-RPC error. Data names the kind of an SDK error; on the
// client side, errors.Is matches the SDK's sentinel of that kind (such
// as client.ErrUnknownConversation), so callers handle a daemon's
// errors as they would the SDK's.
type Error struct {
	Code    int        `json:"code"`
	Message string     `json:"message"`
	Data    *ErrorData `json:"data,omitempty"`
}

// ErrorData says what kind of failure an error is (see Kinds), with the
// details of the SDK's error types that callers act on: an error that
// the Parley server answered (client.ServerError) carries its HTTP status
// and the server's error; identity_changed and trust_rolled_back the
// user (client.IdentityChangedError, client.TrustRollbackError);
// conversation_unsafe the conversation and its alarm
// (client.UnsafeError).
type ErrorData struct {
	Kind         string          `json:"kind"`
	Status       int             `json:"status,omitempty"`
	Server       *protocol.Error `json:"server,omitempty"`
	User         string          `json:"user,omitempty"`
	Conversation int64           `json:"conversation,omitempty"`
	Alarm        *Alarm          `json:"alarm,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the SDK's sentinel error of the kind, if any, and the
// SDK's error value that the details rebuild: a *client.ServerError,
// *client.IdentityChangedError, *client.TrustRollbackError or
// *client.UnsafeError, for errors.As.
func (e *Error) Unwrap() []error {
	d := e.Data
	if d == nil {
		return nil
	}
	var out []error
	for _, k := range kinds {
		if k.name == d.Kind {
			out = append(out, k.err)
			break
		}
	}
	if d.Server != nil {
		out = append(out, &client.ServerError{Status: d.Status, Err: *d.Server})
	}
	switch {
	case d.User != "" && d.Kind == "identity_changed":
		out = append(out, &client.IdentityChangedError{User: d.User})
	case d.User != "" && d.Kind == "trust_rolled_back":
		out = append(out, &client.TrustRollbackError{User: d.User})
	case d.Alarm != nil && d.Kind == "conversation_unsafe":
		a := d.Alarm
		out = append(out, &client.UnsafeError{Conversation: protocol.ConversationID(d.Conversation), Alarm: client.Alarm{
			User: a.User, Device: protocol.DeviceID(a.Device), Reason: a.Reason, Seq: a.Seq, Time: a.Time, Unrecoverable: a.Unrecoverable}})
	}
	return out
}

// kinds maps the SDK's sentinel errors to stable names, most specific
// first (an identity change lost by rollback is trust_rolled_back).
var kinds = []struct {
	name string
	err  error
}{
	{"certificate_mismatch", client.ErrCertificateMismatch},
	{"trust_rolled_back", client.ErrTrustRollback},
	{"identity_changed", client.ErrIdentityChanged},
	{"forged_device", client.ErrForgedDevice},
	{"conversation_unsafe", client.ErrConversationUnsafe},
	{"unknown_user", client.ErrUnknownUser},
	{"not_member", client.ErrNotMember},
	{"unknown_conversation", client.ErrUnknownConversation},
	{"unknown_message", client.ErrUnknownMessage},
	{"unknown_attachment", client.ErrUnknownAttachment},
	{"roles_unsupported", client.ErrRolesUnsupported},
	{"server_unreachable", client.ErrServerUnreachable},
	{"not_registered", client.ErrNotRegistered},
	{"already_registered", client.ErrAlreadyRegistered},
	{"wrong_key", store.ErrWrongKey},
	{"profile_busy", client.ErrProfileBusy},
	{"file_exists", fs.ErrExist},
	{"not_permitted", protocol.ErrPolicyViolation},
	{"link_refused", client.ErrLinkRefused},
	{"link_tampered", client.ErrLinkTampered},
	{"link_in_progress", ErrLinkInProgress},
}

// Kinds lists the names of the SDK's error kinds an Error may carry
// (file_exists is a download's destination that exists: fs.ErrExist),
// besides "failure" for any other error.
func Kinds() []string {
	var out []string
	for _, k := range kinds {
		out = append(out, k.name)
	}
	return out
}

// kindOf names the kind of an SDK error.
func kindOf(err error) string {
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "failure"
}

// ErrorOf converts an error of the SDK to the error the server answers
// for it: Data.Kind names its kind (docs/daemon.md, "Errors"). It serves
// bridges that offer the SDK with the same errors outside JSON-RPC.
func ErrorOf(err error) *Error { return toError(err) }

// toError converts an error of a method to a JSON-RPC error.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	out := &Error{Code: CodeFailure, Message: err.Error(), Data: &ErrorData{Kind: kindOf(err)}}
	var se *client.ServerError
	if errors.As(err, &se) {
		serr := se.Err
		out.Data.Status, out.Data.Server = se.Status, &serr
	}
	var changed *client.IdentityChangedError
	var lost *client.TrustRollbackError
	var unsafe *client.UnsafeError
	switch {
	case out.Data.Kind == "identity_changed" && errors.As(err, &changed):
		out.Data.User = changed.User
	case out.Data.Kind == "trust_rolled_back" && errors.As(err, &lost):
		out.Data.User = lost.User
	case out.Data.Kind == "conversation_unsafe" && errors.As(err, &unsafe):
		a := unsafe.Alarm
		out.Data.Conversation = int64(unsafe.Conversation)
		out.Data.Alarm = &Alarm{User: a.User, Device: string(a.Device), Reason: a.Reason, Seq: a.Seq, Time: a.Time.UTC(), Unrecoverable: a.Unrecoverable}
	}
	return out
}

// invalidParams is the error of params that do not fit a method.
func invalidParams(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidParams, Message: "invalid params: " + fmt.Sprintf(format, args...)}
}

// The params and results of the methods (docs/daemon.md).
type (
	// ConversationParams names a conversation.
	ConversationParams struct {
		Conversation int64 `json:"conversation"`
	}
	// HistoryParams select entries of a conversation: those after seq
	// After, the last Last of them (0: all).
	HistoryParams struct {
		Conversation int64 `json:"conversation"`
		After        int64 `json:"after,omitempty"`
		Last         int   `json:"last,omitempty"`
	}
	// SendParams is a text message, optionally answering ReplyTo (a
	// full message id).
	SendParams struct {
		Conversation int64  `json:"conversation"`
		Text         string `json:"text"`
		ReplyTo      string `json:"reply_to,omitempty"`
		// Mentions, when present, are the users mentioned instead of
		// the members that the text's "@name" words name
		// (client.SendOptions.Mentions); [] mentions no one.
		Mentions *[]string `json:"mentions,omitempty"`
	}
	// SendResult is the message sent. Queued is set when the server
	// could not be reached: the message waits in the outbox (state
	// "pending") and the daemon sends it when it reconnects.
	SendResult struct {
		Message *Message `json:"message"`
		Queued  *Error   `json:"queued,omitempty"`
	}
	// TypingParams says whether this user types in a conversation.
	TypingParams struct {
		Conversation int64 `json:"conversation"`
		Typing       bool  `json:"typing"`
	}
	// MarkParams is a position in a conversation's history.
	MarkParams struct {
		Conversation int64 `json:"conversation"`
		Seq          int64 `json:"seq"`
	}
	// ConversationsResult lists conversations.
	ConversationsResult struct {
		Conversations []*Conversation `json:"conversations"`
	}
	// MessagesResult lists entries of a history.
	MessagesResult struct {
		Messages []*Message `json:"messages"`
	}
	// MembersResult lists the devices of a conversation.
	MembersResult struct {
		Members []Member `json:"members"`
	}
	// EventsResult lists events (method unseen).
	EventsResult struct {
		Events []*Event `json:"events"`
	}
	// OK is the result of a method that returns nothing else.
	OK struct {
		OK bool `json:"ok"`
	}
)

// The params and results of the methods that change conversations.
type (
	// NewDirectParams names the other user of a 1:1 conversation.
	NewDirectParams struct {
		User string `json:"user"`
	}
	// NewGroupParams is a group's title ("" for none) and the users to
	// add.
	NewGroupParams struct {
		Title   string   `json:"title,omitempty"`
		Members []string `json:"members"`
	}
	// NewConversationResult is the conversation opened or created.
	NewConversationResult struct {
		Conversation int64 `json:"conversation"`
	}
	// UserParams names a user of a conversation (add, remove), or the
	// users to add (add: users instead of user, any number).
	UserParams struct {
		Conversation int64    `json:"conversation"`
		User         string   `json:"user,omitempty"`
		Users        []string `json:"users,omitempty"`
	}
	// TextParams is a conversation's new name or topic.
	TextParams struct {
		Conversation int64  `json:"conversation"`
		Text         string `json:"text"`
	}
	// TargetParams names a message (a full id) of a conversation, with
	// the new text of an edit or the emoji of a reaction.
	TargetParams struct {
		Conversation int64  `json:"conversation"`
		Message      string `json:"message"`
		Text         string `json:"text,omitempty"`
		Emoji        string `json:"emoji,omitempty"`
		Remove       bool   `json:"remove,omitempty"`
	}
)

// The params and results of the methods of safety numbers and identity
// keys (parley verify).
type (
	// IdentityParams names another user.
	IdentityParams struct {
		User string `json:"user"`
	}
	// AcknowledgeParams is a user's new identity key to accept, named
	// by the digits of its safety number (SafetyNumberPending).
	AcknowledgeParams struct {
		User   string `json:"user"`
		Digits string `json:"digits"`
	}
	// SafetyNumber is the safety number of the profile's account and
	// another user: its 60 digits, in 12 groups of 5, the QR code
	// rendered for a terminal and its payload (hex), and whether the
	// user was marked verified.
	SafetyNumber struct {
		User      string   `json:"user"`
		Digits    string   `json:"digits"`
		Groups    []string `json:"groups"`
		QR        string   `json:"qr"`
		QRPayload string   `json:"qr_payload"`
		Verified  bool     `json:"verified"`
	}
	// IdentityChangedResult says whether a user's identity key changed
	// and awaits acknowledgement.
	IdentityChangedResult struct {
		Changed bool `json:"changed"`
	}
	// TrustRolledBackResult says whether the profile lost the identity
	// key it had pinned for a user (client.ErrTrustRollback).
	TrustRolledBackResult struct {
		RolledBack bool `json:"rolled_back"`
	}
)

// The params and results of the methods of files, recreated
// conversations and invites.
type (
	// SendFileParams is a file to send, by its absolute path on the
	// daemon's machine (the daemon reads it), with an optional caption,
	// media type (else guessed from the name) and message answered.
	SendFileParams struct {
		Conversation int64  `json:"conversation"`
		Path         string `json:"path"`
		Caption      string `json:"caption,omitempty"`
		MediaType    string `json:"media_type,omitempty"`
		ReplyTo      string `json:"reply_to,omitempty"`
	}
	// DownloadParams names an attachment (its full id) and where to
	// write it: an absolute path of a file or a directory. Force
	// replaces a file that exists.
	DownloadParams struct {
		Attachment string `json:"attachment"`
		Dst        string `json:"dst"`
		Force      bool   `json:"force,omitempty"`
	}
	// DownloadResult is the path written.
	DownloadResult struct {
		Path string `json:"path"`
	}
	// CreateInviteParams is the number of registrations an invite
	// allows and its lifetime in seconds.
	CreateInviteParams struct {
		Uses       int   `json:"uses"`
		TTLSeconds int64 `json:"ttl_seconds"`
	}
)

// NewSafetyNumber converts a safety number of the SDK.
func NewSafetyNumber(sn *client.SafetyNumber) *SafetyNumber {
	return &SafetyNumber{User: sn.User, Digits: sn.Digits, Groups: append([]string{}, sn.Groups...),
		QR: sn.QR, QRPayload: hex.EncodeToString(sn.QRPayload), Verified: sn.Verified}
}

// SDK converts the safety number back to the SDK's type, without its
// Number (which needs both identity keys): compare a scanned code with
// QRPayload.
func (sn *SafetyNumber) SDK() (*client.SafetyNumber, error) {
	payload, err := hex.DecodeString(sn.QRPayload)
	if err != nil {
		return nil, fmt.Errorf("qr_payload: %w", err)
	}
	return &client.SafetyNumber{User: sn.User, Digits: sn.Digits, Groups: sn.Groups, QR: sn.QR, QRPayload: payload, Verified: sn.Verified}, nil
}

// quoteStart quotes the start of a line for an error message: at most
// 80 bytes, so that a long line does not flood it.
func quoteStart(b []byte) string {
	const most = 80
	if len(b) > most {
		return strconv.Quote(string(b[:most])) + "…"
	}
	return strconv.Quote(string(b))
}
