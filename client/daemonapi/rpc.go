package daemonapi

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/sqlitestore"
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

// ErrorData says what kind of failure an error is (see Kinds).
type ErrorData struct {
	Kind string `json:"kind"`
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the SDK's sentinel error of the kind, if any.
func (e *Error) Unwrap() error {
	if e.Data == nil {
		return nil
	}
	for _, k := range kinds {
		if k.name == e.Data.Kind {
			return k.err
		}
	}
	return nil
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
	{"server_unreachable", client.ErrServerUnreachable},
	{"not_registered", client.ErrNotRegistered},
	{"already_registered", client.ErrAlreadyRegistered},
	{"wrong_key", sqlitestore.ErrWrongKey},
	{"profile_busy", client.ErrProfileBusy},
}

// Kinds lists the names of the SDK's error kinds an Error may carry,
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

// toError converts an error of a method to a JSON-RPC error.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeFailure, Message: err.Error(), Data: &ErrorData{Kind: kindOf(err)}}
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
	}
	// SendResult is the message sent. Queued is set when the server
	// could not be reached: the message waits in the outbox (state
	// "pending") and the daemon sends it when it reconnects.
	SendResult struct {
		Message *Message `json:"message"`
		Queued  *Error   `json:"queued,omitempty"`
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
	// UserParams names a user of a conversation (add, remove).
	UserParams struct {
		Conversation int64  `json:"conversation"`
		User         string `json:"user"`
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
