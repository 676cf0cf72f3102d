package tui

import (
	"context"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/protocol"
)

// Backend is what the terminal client uses of a profile: the daemon's
// client (*daemonapi.Client) in parley tui, a fake in tests. Its methods
// have the SDK's types and errors.
type Backend interface {
	Whoami() (*client.Account, error)
	Conversations(ctx context.Context) ([]client.Conversation, error)
	Conversation(ctx context.Context, conv protocol.ConversationID) (*client.Conversation, error)
	// History returns the last entries (last > 0), or every entry after
	// local position after.
	History(ctx context.Context, conv protocol.ConversationID, after int64, last int) ([]*client.Message, error)
	Members(ctx context.Context, conv protocol.ConversationID) ([]client.Member, error)
	Send(ctx context.Context, conv protocol.ConversationID, text string, opts client.SendOptions) (*client.Message, error)
	SendFile(ctx context.Context, conv protocol.ConversationID, path string, opts client.SendOptions) (*client.Message, error)
	Download(ctx context.Context, attachmentID, dst string) (string, error)
	React(ctx context.Context, conv protocol.ConversationID, target content.MessageID, emoji string, remove bool) error
	Edit(ctx context.Context, conv protocol.ConversationID, target content.MessageID, text string) error
	Delete(ctx context.Context, conv protocol.ConversationID, target content.MessageID) error
	MarkRead(ctx context.Context, conv protocol.ConversationID) error
	MarkReadUpTo(ctx context.Context, conv protocol.ConversationID, upTo int64) error
	NewDirect(ctx context.Context, user string) (protocol.ConversationID, error)
	NewGroup(ctx context.Context, title string, members ...string) (protocol.ConversationID, error)
	Add(ctx context.Context, conv protocol.ConversationID, user string) error
	Remove(ctx context.Context, conv protocol.ConversationID, user string) error
	Leave(ctx context.Context, conv protocol.ConversationID) error
	SetName(ctx context.Context, conv protocol.ConversationID, name string) error
	SetTopic(ctx context.Context, conv protocol.ConversationID, topic string) error
	// SetTimer sets the disappearing-message timer (0: off).
	SetTimer(ctx context.Context, conv protocol.ConversationID, d time.Duration) error
	SafetyNumber(ctx context.Context, user string) (*client.SafetyNumber, error)
	MarkVerified(ctx context.Context, user string) error
	// SendTyping tells the conversation's other members that this user
	// started or stopped typing (best effort).
	SendTyping(ctx context.Context, conv protocol.ConversationID, typing bool) error
	// Search returns the messages of every conversation that match q,
	// newest first (client.Client.Search).
	Search(ctx context.Context, q client.SearchQuery) ([]*client.Message, error)
	// SetMuted mutes or unmutes a conversation on this device.
	SetMuted(ctx context.Context, conv protocol.ConversationID, muted bool) error
	// Policy returns a conversation's roles (nil: none); SetRole makes a
	// user an admin or a plain member; NewChannel creates a channel.
	Policy(ctx context.Context, conv protocol.ConversationID) (*protocol.Policy, error)
	SetRole(ctx context.Context, conv protocol.ConversationID, user string, admin bool) error
	NewChannel(ctx context.Context, title string, members ...string) (protocol.ConversationID, error)
	// Devices lists the account's devices; RevokeOwnDevice revokes one
	// (the account's last active one only with force).
	Devices(ctx context.Context) ([]client.OwnDevice, error)
	RevokeOwnDevice(ctx context.Context, device protocol.DeviceID, force bool) error
	// StartLinkDevice opens the linking channel with the new device that
	// shows code and returns what to ask the user; AnswerLinkDevice
	// gives the answer, with the conversations whose history the new
	// device receives, and returns the device linked (declined: an error
	// matching client.ErrLinkRefused).
	StartLinkDevice(ctx context.Context, code string) (*daemonapi.LinkQuestion, error)
	AnswerLinkDevice(ctx context.Context, link string, accept bool, history []protocol.ConversationID) (*client.LinkedDevice, error)
	// Subscribe starts the events that NextEvent returns, in order.
	Subscribe(ctx context.Context) error
	NextEvent(ctx context.Context) (*daemonapi.Event, error)
}
