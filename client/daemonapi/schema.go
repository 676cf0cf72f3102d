package daemonapi

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/protocol"
)

// The JSON documents below are the stable schema of the parley CLI's
// --json output and of the daemon's API (docs/cli.md, docs/daemon.md):
// fields are added, never renamed or removed.

// Account is the output of register and whoami.
type Account struct {
	User        string `json:"user"`
	Address     string `json:"address"`
	Device      string `json:"device"`
	Server      string `json:"server"`
	ServerName  string `json:"server_name"`
	IdentityKey string `json:"identity_key"` // hex
	Fingerprint string `json:"fingerprint,omitempty"`
	Profile     string `json:"profile"` // the profile directory
}

// Conversation describes a conversation.
type Conversation struct {
	ID      int64    `json:"id"`
	Title   string   `json:"title"`
	Name    string   `json:"name,omitempty"`
	Topic   string   `json:"topic,omitempty"`
	Direct  bool     `json:"direct"`
	Members []string `json:"members"`
	Left    bool     `json:"left"`
	// RemovedBy names who removed this device, when it left not by its
	// user's own request.
	RemovedBy string `json:"removed_by,omitempty"`
	Epoch     uint64 `json:"epoch"`
	Unread    int    `json:"unread"`
	// Unsafe is set when this device rejected a membership change that
	// the server accepted, or cannot follow the conversation any more:
	// nothing more can be sent in the conversation.
	Unsafe *Alarm `json:"unsafe,omitempty"`
	// Unverified are the members whose identity keys were not verified
	// by comparing safety numbers (trusted on first use only, or changed
	// or lost since).
	Unverified []string `json:"unverified"`
	// Last is the latest history entry, absent when there is none.
	Last *Message `json:"last,omitempty"`
	// Muted is set when the conversation is muted on this device.
	Muted bool `json:"muted,omitempty"`
	// Channel is set for a channel: only admins post, members read and
	// react.
	Channel bool `json:"channel,omitempty"`
	// Admin is set when this profile's user may do what the policy
	// reserves to admins (always where there is no policy).
	Admin bool `json:"admin,omitempty"`
	// Timer is the disappearing-message timer in seconds (absent: off).
	Timer int64 `json:"timer,omitempty"`
}

// Alarm describes the rejected membership change of an unsafe
// conversation, or why it is unrecoverable (client.Alarm).
type Alarm struct {
	User          string    `json:"user,omitempty"`
	Device        string    `json:"device,omitempty"`
	Reason        string    `json:"reason"`
	Seq           uint64    `json:"seq"`
	Time          time.Time `json:"time"`
	Unrecoverable bool      `json:"unrecoverable,omitempty"`
	// Policy is set when the rejected change broke the conversation's
	// roles and policy.
	Policy bool `json:"policy,omitempty"`
}

// Message is one entry of a history: a message, or a system line (kind
// "system", with System).
type Message struct {
	Conversation int64       `json:"conversation"`
	Seq          int64       `json:"seq"`
	ID           string      `json:"id"`
	Sender       string      `json:"sender"`
	SenderDevice string      `json:"sender_device"`
	Sent         time.Time   `json:"sent"`
	Received     time.Time   `json:"received"`
	ServerSeq    uint64      `json:"server_seq"`
	Kind         string      `json:"kind"`
	Text         string      `json:"text"`
	ReplyTo      string      `json:"reply_to,omitempty"`
	Attachment   *Attachment `json:"attachment,omitempty"`
	Edited       bool        `json:"edited"`
	EditedAt     *time.Time  `json:"edited_at,omitempty"`
	Deleted      bool        `json:"deleted"`
	// Expires is when the message expires under the conversation's
	// disappearing-message timer; Expired marks the tombstone an
	// "expired" event carries (no text, attachment or reactions).
	Expires   *time.Time `json:"expires,omitempty"`
	Expired   bool       `json:"expired,omitempty"`
	Reactions []Reaction `json:"reactions"`
	ReadBy    []string   `json:"read_by"`
	State     string     `json:"state"`
	System    *System    `json:"system,omitempty"`
	// Mentions are the users the sender mentions (the content's field,
	// never derived from the text); MentionsMe says they include this
	// profile's user.
	Mentions   []string `json:"mentions,omitempty"`
	MentionsMe bool     `json:"mentions_me,omitempty"`
}

// System says what a system line records: its kind (client.SystemKind)
// and the actors: who made the change (actor) and whom it concerns
// (users, devices); name, topic or timer ("off", "5m", "1d", ...) for a
// new name, topic or disappearing-message timer, with the one it
// replaced (previous).
type System struct {
	Kind        string   `json:"kind"`
	Actor       string   `json:"actor"`
	ActorDevice string   `json:"actor_device,omitempty"`
	Users       []string `json:"users"`
	Devices     []string `json:"devices,omitempty"`
	Name        *string  `json:"name,omitempty"`
	Topic       *string  `json:"topic,omitempty"`
	Timer       *string  `json:"timer,omitempty"`
	Previous    *string  `json:"previous,omitempty"`
}

// Attachment describes the file of a message.
type Attachment struct {
	ID        string `json:"id"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type,omitempty"`
	FileName  string `json:"file_name,omitempty"`
}

// Reaction is one user's reaction to a message.
type Reaction struct {
	User  string `json:"user"`
	Emoji string `json:"emoji"`
}

// Member is one device of a conversation.
type Member struct {
	User            string `json:"user"`
	Device          string `json:"device"`
	Self            bool   `json:"self"`
	Verified        bool   `json:"verified"`
	IdentityChanged bool   `json:"identity_changed"`
}

// Event is one line of parley listen --json, and the params of the
// daemon's "event" notification.
type Event struct {
	Event        string    `json:"event"`
	Time         time.Time `json:"time"`
	Conversation int64     `json:"conversation,omitempty"`
	Message      *Message  `json:"message,omitempty"`
	User         string    `json:"user,omitempty"`
	Device       string    `json:"device,omitempty"`
	Connection   string    `json:"connection,omitempty"`
	Error        string    `json:"error,omitempty"`
	// Seq and Recovery describe a bad_commit: the entry that held the
	// commit and what this device did (client.Recovery).
	Seq      uint64 `json:"seq,omitempty"`
	Recovery string `json:"recovery,omitempty"`
	// Reason says why a device_revoked event removed the device.
	Reason string `json:"reason,omitempty"`
	// Typing is true when a typing event says that User started typing
	// (absent: stopped).
	Typing bool `json:"typing,omitempty"`
	// Muted is set on the events of a conversation muted on this device:
	// a notifier shows only the messages with mentions_me there.
	Muted bool `json:"muted,omitempty"`
}

// NewMessage converts a message of the SDK.
func NewMessage(m *client.Message) *Message {
	out := &Message{
		Conversation: int64(m.Conversation), Seq: m.Seq, ID: m.ID.String(),
		Sender: m.Sender, SenderDevice: string(m.SenderDevice),
		Sent: m.Sent.UTC(), Received: m.Received.UTC(), ServerSeq: m.ServerSeq,
		Kind: m.Kind.String(), Text: m.Text, Deleted: m.Deleted,
		Reactions: []Reaction{}, ReadBy: []string{}, State: m.State.String(),
		Mentions: m.Mentions, MentionsMe: m.MentionsMe,
	}
	if !m.ReplyTo.IsZero() {
		out.ReplyTo = m.ReplyTo.String()
	}
	if !m.Expires.IsZero() {
		t := m.Expires.UTC()
		out.Expires = &t
	}
	out.Expired = m.Expired
	if a := m.Attachment; a != nil {
		out.Attachment = &Attachment{ID: a.ID, Size: a.Size, MediaType: a.MediaType, FileName: a.FileName}
	}
	if !m.Edited.IsZero() {
		t := m.Edited.UTC()
		out.Edited, out.EditedAt = true, &t
	}
	for _, r := range m.Reactions {
		out.Reactions = append(out.Reactions, Reaction{User: r.User, Emoji: r.Emoji})
	}
	if m.ReadBy != nil {
		out.ReadBy = append(out.ReadBy, m.ReadBy...)
	}
	if sys := m.System; sys != nil {
		out.Kind, out.Text = "system", SystemText(m, "")
		out.System = &System{Kind: string(sys.Kind), Actor: m.Sender, ActorDevice: string(m.SenderDevice), Users: append([]string{}, sys.Users...)}
		for _, d := range sys.Devices {
			out.System.Devices = append(out.System.Devices, string(d))
		}
		value, previous := sys.Value, sys.Previous
		switch sys.Kind {
		case client.SystemRenamed:
			out.System.Name, out.System.Previous = &value, &previous
		case client.SystemTimerChanged:
			out.System.Timer, out.System.Previous = &value, &previous
		case client.SystemTopicChanged:
			out.System.Topic, out.System.Previous = &value, &previous
		}
	}
	return out
}

// SDK converts the message back to the SDK's type. What the schema does
// not carry (the text of a system line, which SystemText derives) is
// left zero.
func (m *Message) SDK() (*client.Message, error) {
	out := &client.Message{
		Conversation: protocol.ConversationID(m.Conversation), Seq: m.Seq,
		Sender: m.Sender, SenderDevice: protocol.DeviceID(m.SenderDevice),
		Sent: m.Sent, Received: m.Received, ServerSeq: m.ServerSeq,
		Text: m.Text, Deleted: m.Deleted, ReadBy: m.ReadBy,
		Mentions: m.Mentions, MentionsMe: m.MentionsMe, Expired: m.Expired,
	}
	if m.Expires != nil {
		out.Expires = *m.Expires
	}
	var err error
	if out.ID, err = content.ParseMessageID(m.ID); err != nil {
		return nil, fmt.Errorf("message id %q: %w", m.ID, err)
	}
	if m.ReplyTo != "" {
		if out.ReplyTo, err = content.ParseMessageID(m.ReplyTo); err != nil {
			return nil, fmt.Errorf("reply_to %q: %w", m.ReplyTo, err)
		}
	}
	if out.State, err = parseState(m.State); err != nil {
		return nil, err
	}
	if m.EditedAt != nil {
		out.Edited = *m.EditedAt
	}
	if a := m.Attachment; a != nil {
		out.Attachment = &client.Attachment{ID: a.ID, Size: a.Size, MediaType: a.MediaType, FileName: a.FileName}
	}
	for _, r := range m.Reactions {
		out.Reactions = append(out.Reactions, client.Reaction{User: r.User, Emoji: r.Emoji})
	}
	if sys := m.System; sys != nil {
		out.Text = ""
		s := &client.System{Kind: client.SystemKind(sys.Kind), Users: sys.Users}
		for _, d := range sys.Devices {
			s.Devices = append(s.Devices, protocol.DeviceID(d))
		}
		for _, v := range []*string{sys.Name, sys.Topic, sys.Timer} {
			if v != nil {
				s.Value = *v
			}
		}
		if sys.Previous != nil {
			s.Previous = *sys.Previous
		}
		out.System = s
		return out, nil
	}
	if err := out.Kind.UnmarshalText([]byte(m.Kind)); err != nil {
		return nil, fmt.Errorf("message kind %q: %w", m.Kind, err)
	}
	return out, nil
}

// parseState is the delivery state named s.
func parseState(s string) (client.DeliveryState, error) {
	for st := client.DeliveryState(0); st < 32; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown delivery state %q", s)
}

// Title names a conversation for people: for a 1:1 the other user (a
// name that a member set never stands for a user), else its name, or its
// members.
func Title(cv *client.Conversation, self string) string {
	if cv.Name != "" && !cv.Direct {
		return Printable(cv.Name)
	}
	var others []string
	for _, m := range cv.Members {
		if m != self {
			others = append(others, m)
		}
	}
	if len(others) == 0 {
		return self
	}
	return strings.Join(others, ", ")
}

// NewConversation converts a conversation of the SDK; self is this
// profile's user, unread its count of unread messages.
func NewConversation(cv *client.Conversation, self string, unread int) *Conversation {
	members := append([]string{}, cv.Members...)
	out := &Conversation{
		ID: int64(cv.ID), Title: Title(cv, self), Name: cv.Name, Topic: cv.Topic, Direct: cv.Direct,
		Members: members, Left: cv.Left, RemovedBy: cv.RemovedBy, Epoch: cv.Epoch, Unread: unread,
		Unverified: append([]string{}, cv.Unverified...), Muted: cv.Muted, Channel: cv.Channel, Admin: cv.Admin, Timer: int64(cv.Timer / time.Second),
	}
	if a := cv.Unsafe; a != nil {
		out.Unsafe = &Alarm{User: a.User, Device: string(a.Device), Reason: a.Reason, Seq: a.Seq, Time: a.Time.UTC(), Unrecoverable: a.Unrecoverable, Policy: a.Policy}
	}
	if cv.Last != nil {
		out.Last = NewMessage(cv.Last)
	}
	return out
}

// SDK converts the conversation back to the SDK's type (without what
// the schema does not carry: its cipher suite and creation time).
func (c *Conversation) SDK() *client.Conversation {
	out := &client.Conversation{
		ID: protocol.ConversationID(c.ID), Name: c.Name, Topic: c.Topic, Direct: c.Direct,
		Members: c.Members, Left: c.Left, RemovedBy: c.RemovedBy, Epoch: c.Epoch, Unread: c.Unread,
		Unverified: c.Unverified, Muted: c.Muted, Channel: c.Channel, Admin: c.Admin, Timer: time.Duration(c.Timer) * time.Second,
	}
	if a := c.Unsafe; a != nil {
		out.Unsafe = &client.Alarm{User: a.User, Device: protocol.DeviceID(a.Device), Reason: a.Reason, Seq: a.Seq, Time: a.Time, Unrecoverable: a.Unrecoverable, Policy: a.Policy}
	}
	if c.Last != nil {
		if m, err := c.Last.SDK(); err == nil {
			out.Last = m
		}
	}
	return out
}

// NewAccount converts an account of the SDK; dir is the profile
// directory.
func NewAccount(a *client.Account, dir string) *Account {
	return &Account{
		User: a.User, Address: a.Address, Device: string(a.Device), Server: a.Server,
		ServerName: a.ServerName, IdentityKey: hex.EncodeToString(a.IdentityKey),
		Fingerprint: a.TLSFingerprint, Profile: dir,
	}
}

// SDK converts the account back to the SDK's type.
func (a *Account) SDK() (*client.Account, error) {
	key, err := hex.DecodeString(a.IdentityKey)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	return &client.Account{User: a.User, Address: a.Address, Device: protocol.DeviceID(a.Device), Server: a.Server,
		ServerName: a.ServerName, IdentityKey: key, TLSFingerprint: a.Fingerprint}, nil
}

// NewMember converts a member of the SDK.
func NewMember(m client.Member) Member {
	return Member{User: m.User, Device: string(m.Device), Self: m.Self, Verified: m.Verified, IdentityChanged: m.IdentityChanged}
}

// SDK converts the member back to the SDK's type.
func (m Member) SDK() client.Member {
	return client.Member{User: m.User, Device: protocol.DeviceID(m.Device), Self: m.Self, Verified: m.Verified, IdentityChanged: m.IdentityChanged}
}

// Progress is the params of the daemon's "progress" notification: how
// far a request that adds users (add, new_group, new_channel) has come
// (client.Progress). It is sent only on the connection of the request,
// before its response.
type Progress struct {
	// ID is the id of the request.
	ID json.RawMessage `json:"id"`
	// Conversation is the conversation changed (absent while a new one is
	// not created yet).
	Conversation int64 `json:"conversation,omitempty"`
	// Stage is "lookup" (users looked up), "claim" (users whose
	// KeyPackages were claimed), "commit" (devices added) or "wait" (for
	// the server's rate limit, WaitSeconds long).
	Stage string `json:"stage"`
	// Done of Total users or devices are through the stage.
	Done  int `json:"done"`
	Total int `json:"total"`
	// WaitSeconds is the wait of the "wait" stage.
	WaitSeconds float64 `json:"wait_seconds,omitempty"`
}

// NewProgress converts the progress of the SDK for the request id.
func NewProgress(id json.RawMessage, p client.Progress) Progress {
	return Progress{ID: id, Conversation: int64(p.Conversation), Stage: p.Stage, Done: p.Done, Total: p.Total, WaitSeconds: p.Wait.Seconds()}
}

// SDK converts the progress back to the SDK's type.
func (p Progress) SDK() client.Progress {
	return client.Progress{Conversation: protocol.ConversationID(p.Conversation), Stage: p.Stage, Done: p.Done, Total: p.Total,
		Wait: time.Duration(p.WaitSeconds * float64(time.Second))}
}

// NewEvent converts an event of the SDK.
func NewEvent(ev client.Event) *Event {
	out := &Event{Event: ev.Kind.String(), Time: ev.Time.UTC(), Conversation: int64(ev.Conversation),
		User: ev.User, Device: string(ev.Device), Error: ev.Error, Reason: ev.Reason, Typing: ev.Typing, Muted: ev.Muted}
	if ev.Message != nil {
		out.Message = NewMessage(ev.Message)
	}
	if ev.Kind == client.EventConnection {
		out.Connection = ev.Connection.String()
	}
	var bc *client.BadCommitError
	if ev.Kind == client.EventBadCommit && errors.As(ev.Err, &bc) {
		out.Seq, out.Recovery = ev.Seq, bc.Recovery.String()
	}
	return out
}

// SDK converts the event back to the SDK's type. Its error is only the
// text of the original one (Err wraps nothing).
func (e *Event) SDK() (client.Event, error) {
	out := client.Event{Time: e.Time, Conversation: protocol.ConversationID(e.Conversation),
		User: e.User, Device: protocol.DeviceID(e.Device), Error: e.Error, Seq: e.Seq, Reason: e.Reason, Typing: e.Typing, Muted: e.Muted}
	kind, ok := parseEventKind(e.Event)
	if !ok {
		return out, fmt.Errorf("unknown event %q", e.Event)
	}
	out.Kind = kind
	if e.Error != "" {
		out.Err = errors.New(e.Error)
	}
	for _, st := range []client.ConnState{client.Disconnected, client.Connecting, client.Connected} {
		if e.Connection == st.String() {
			out.Connection = st
		}
	}
	if e.Message != nil {
		m, err := e.Message.SDK()
		if err != nil {
			return out, err
		}
		out.Message = m
	}
	return out, nil
}

// parseEventKind is the event kind named s.
func parseEventKind(s string) (client.EventKind, bool) {
	for k := client.EventKind(0); k < 256; k++ {
		if k.String() == s {
			return k, true
		}
	}
	return 0, false
}

// Printable makes text that other people chose (message text, file
// names, conversation names, reactions) safe to print on a terminal:
// control characters other than newline and tab, which could move the
// cursor, rewrite the screen or set the window title, and the invisible
// direction overrides and isolates, which make text read otherwise than
// it is (CVE-2021-42574), become U+FFFD. Other format characters, such
// as the zero-width joiner of emoji sequences, stay.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
			return '\uFFFD'
		case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return '\uFFFD'
		}
		return r
	}, s)
}
