package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parley-chat/parley/client"
)

// The JSON documents below are the CLI's stable output (docs/cli.md):
// fields are added, never renamed or removed.

// accountJSON is the output of register and whoami.
type accountJSON struct {
	User        string `json:"user"`
	Address     string `json:"address"`
	Device      string `json:"device"`
	Server      string `json:"server"`
	ServerName  string `json:"server_name"`
	IdentityKey string `json:"identity_key"` // hex
	Fingerprint string `json:"fingerprint,omitempty"`
	Profile     string `json:"profile"` // the profile directory
}

// conversationJSON describes a conversation.
type conversationJSON struct {
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
	Unsafe *alarmJSON `json:"unsafe,omitempty"`
	// Unverified are the members whose identity keys were not verified
	// by comparing safety numbers (trusted on first use only, or changed
	// or lost since).
	Unverified []string `json:"unverified"`
}

// alarmJSON describes the rejected membership change of an unsafe
// conversation, or why it is unrecoverable (client.Alarm).
type alarmJSON struct {
	User          string    `json:"user,omitempty"`
	Device        string    `json:"device,omitempty"`
	Reason        string    `json:"reason"`
	Seq           uint64    `json:"seq"`
	Time          time.Time `json:"time"`
	Unrecoverable bool      `json:"unrecoverable,omitempty"`
}

// messageJSON is one entry of a history: a message, or a system line
// (kind "system", with System).
type messageJSON struct {
	Conversation int64           `json:"conversation"`
	Seq          int64           `json:"seq"`
	ID           string          `json:"id"`
	Sender       string          `json:"sender"`
	SenderDevice string          `json:"sender_device"`
	Sent         time.Time       `json:"sent"`
	Received     time.Time       `json:"received"`
	ServerSeq    uint64          `json:"server_seq"`
	Kind         string          `json:"kind"`
	Text         string          `json:"text"`
	ReplyTo      string          `json:"reply_to,omitempty"`
	Attachment   *attachmentJSON `json:"attachment,omitempty"`
	Edited       bool            `json:"edited"`
	EditedAt     *time.Time      `json:"edited_at,omitempty"`
	Deleted      bool            `json:"deleted"`
	Reactions    []reactionJSON  `json:"reactions"`
	ReadBy       []string        `json:"read_by"`
	State        string          `json:"state"`
	System       *systemJSON     `json:"system,omitempty"`
}

// systemJSON says what a system line records: its kind (client.SystemKind)
// and the actors: who made the change (actor) and whom it concerns
// (users, devices); name or topic for a new name or topic, with the one
// it replaced (previous).
type systemJSON struct {
	Kind        string   `json:"kind"`
	Actor       string   `json:"actor"`
	ActorDevice string   `json:"actor_device,omitempty"`
	Users       []string `json:"users"`
	Devices     []string `json:"devices,omitempty"`
	Name        *string  `json:"name,omitempty"`
	Topic       *string  `json:"topic,omitempty"`
	Previous    *string  `json:"previous,omitempty"`
}

type attachmentJSON struct {
	ID        string `json:"id"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type,omitempty"`
	FileName  string `json:"file_name,omitempty"`
}

type reactionJSON struct {
	User  string `json:"user"`
	Emoji string `json:"emoji"`
}

// memberJSON is one device of a conversation.
type memberJSON struct {
	User            string `json:"user"`
	Device          string `json:"device"`
	Self            bool   `json:"self"`
	Verified        bool   `json:"verified"`
	IdentityChanged bool   `json:"identity_changed"`
}

// eventJSON is one line of parley listen --json.
type eventJSON struct {
	Event        string       `json:"event"`
	Time         time.Time    `json:"time"`
	Conversation int64        `json:"conversation,omitempty"`
	Message      *messageJSON `json:"message,omitempty"`
	User         string       `json:"user,omitempty"`
	Device       string       `json:"device,omitempty"`
	Connection   string       `json:"connection,omitempty"`
	Error        string       `json:"error,omitempty"`
	// Seq and Recovery describe a bad_commit: the entry that held the
	// commit and what this device did (client.Recovery).
	Seq      uint64 `json:"seq,omitempty"`
	Recovery string `json:"recovery,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// safetyJSON is the output of verify.
type safetyJSON struct {
	User            string   `json:"user"`
	Digits          string   `json:"digits"`
	Groups          []string `json:"groups"`
	QRPayload       string   `json:"qr_payload"` // hex
	Verified        bool     `json:"verified"`
	IdentityChanged bool     `json:"identity_changed"`
	// PendingDigits is the safety number of the new identity key while an
	// identity change awaits acceptance, or of the key presented now when
	// the pinned one is lost.
	PendingDigits string `json:"pending_digits,omitempty"`
	// TrustRolledBack is set when the profile lost the key it pinned for
	// the user (client.ErrTrustRollback); Digits are then empty.
	TrustRolledBack bool `json:"trust_rolled_back,omitempty"`
}

func toMessageJSON(m *client.Message) *messageJSON {
	out := &messageJSON{
		Conversation: int64(m.Conversation), Seq: m.Seq, ID: m.ID.String(),
		Sender: m.Sender, SenderDevice: string(m.SenderDevice),
		Sent: m.Sent.UTC(), Received: m.Received.UTC(), ServerSeq: m.ServerSeq,
		Kind: m.Kind.String(), Text: m.Text, Deleted: m.Deleted,
		Reactions: []reactionJSON{}, ReadBy: []string{}, State: m.State.String(),
	}
	if !m.ReplyTo.IsZero() {
		out.ReplyTo = m.ReplyTo.String()
	}
	if a := m.Attachment; a != nil {
		out.Attachment = &attachmentJSON{ID: a.ID, Size: a.Size, MediaType: a.MediaType, FileName: a.FileName}
	}
	if !m.Edited.IsZero() {
		t := m.Edited.UTC()
		out.Edited, out.EditedAt = true, &t
	}
	for _, r := range m.Reactions {
		out.Reactions = append(out.Reactions, reactionJSON{User: r.User, Emoji: r.Emoji})
	}
	if m.ReadBy != nil {
		out.ReadBy = append(out.ReadBy, m.ReadBy...)
	}
	if sys := m.System; sys != nil {
		out.Kind, out.Text = "system", systemText(m, "")
		out.System = &systemJSON{Kind: string(sys.Kind), Actor: m.Sender, ActorDevice: string(m.SenderDevice), Users: append([]string{}, sys.Users...)}
		for _, d := range sys.Devices {
			out.System.Devices = append(out.System.Devices, string(d))
		}
		value, previous := sys.Value, sys.Previous
		switch sys.Kind {
		case client.SystemRenamed:
			out.System.Name, out.System.Previous = &value, &previous
		case client.SystemTopicChanged:
			out.System.Topic, out.System.Previous = &value, &previous
		}
	}
	return out
}

// title names a conversation for people: for a 1:1 the other user (a
// name that a member set never stands for a user), else its name, or its
// members.
func title(cv *client.Conversation, self string) string {
	if cv.Name != "" && !cv.Direct {
		return printable(cv.Name)
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

func toConversationJSON(cv *client.Conversation, self string, unread int) *conversationJSON {
	members := append([]string{}, cv.Members...)
	out := &conversationJSON{
		ID: int64(cv.ID), Title: title(cv, self), Name: cv.Name, Topic: cv.Topic, Direct: cv.Direct,
		Members: members, Left: cv.Left, RemovedBy: cv.RemovedBy, Epoch: cv.Epoch, Unread: unread,
		Unverified: append([]string{}, cv.Unverified...),
	}
	if a := cv.Unsafe; a != nil {
		out.Unsafe = &alarmJSON{User: a.User, Device: string(a.Device), Reason: a.Reason, Seq: a.Seq, Time: a.Time.UTC(), Unrecoverable: a.Unrecoverable}
	}
	return out
}

// unverifiedHint is the one-line hint shown with conversations whose
// members include users not verified yet.
func unverifiedHint(users []string) string {
	verify := "parley verify USER"
	if len(users) == 1 {
		verify = "parley verify " + users[0]
	}
	return printable(fmt.Sprintf("not verified: %s; compare safety numbers with '%s'", strings.Join(users, ", "), verify))
}

func toAccountJSON(a *client.Account, dir string) *accountJSON {
	return &accountJSON{
		User: a.User, Address: a.Address, Device: string(a.Device), Server: a.Server,
		ServerName: a.ServerName, IdentityKey: hex.EncodeToString(a.IdentityKey),
		Fingerprint: a.TLSFingerprint, Profile: dir,
	}
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// shortID is the prefix of a message id shown to people.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// printable makes text that other people chose (message text, file
// names, conversation names, reactions) safe to print on a terminal:
// control characters other than newline and tab, which could move the
// cursor, rewrite the screen or set the window title, and the invisible
// direction overrides and isolates, which make text read otherwise than
// it is (CVE-2021-42574), become U+FFFD. Other format characters, such
// as the zero-width joiner of emoji sequences, stay.
func printable(s string) string {
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

// messageLine formats a message for people (text from others made
// printable), with the state marker of the user's own messages:
//
//	a1b2c3d4 15:04 alice: text (edited) ↩ 9f8e7d6c [👍 bob]  ✓✓ read by bob
//
// The time shows the date too when the message is not from today (stamp).
func messageLine(m *client.Message) string {
	return printable(rawMessageLine(m))
}

// rawMessageLine is messageLine before printable.
func rawMessageLine(m *client.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s: ", shortID(m.ID.String()), stamp(m.Sent), m.Sender)
	switch {
	case m.Deleted:
		b.WriteString("(deleted)")
	case m.Attachment != nil:
		a := m.Attachment
		name := a.FileName
		if name == "" {
			name = "file"
		}
		fmt.Fprintf(&b, "[file %s, %s, id %s]", name, size(a.Size), a.ID)
		if m.Text != "" {
			b.WriteString(" " + m.Text)
		}
	default:
		b.WriteString(m.Text)
	}
	if !m.Edited.IsZero() && !m.Deleted {
		b.WriteString(" (edited)")
	}
	if !m.ReplyTo.IsZero() {
		fmt.Fprintf(&b, " ↩ %s", shortID(m.ReplyTo.String()))
	}
	if len(m.Reactions) > 0 {
		var rs []string
		for _, r := range m.Reactions {
			rs = append(rs, r.Emoji+" "+r.User)
		}
		fmt.Fprintf(&b, " [%s]", strings.Join(rs, ", "))
	}
	if mark := stateMark(m); mark != "" && !m.Deleted {
		b.WriteString("  " + mark)
	}
	return b.String()
}

// stateMark is the marker that ends a line of the user's own message:
//
//	… queued                in the outbox, not accepted by the server yet
//	✓ sent                  stored by the server, for every member
//	✓✓ read by bob, carol   read receipts came from these members
//	✗ NOT DELIVERED         given up: it reached no one
//
// Other users' messages (state received) have none.
func stateMark(m *client.Message) string {
	switch m.State {
	case client.Pending:
		return "… queued"
	case client.Sent:
		return "✓ sent"
	case client.Read:
		if len(m.ReadBy) == 0 {
			return "✓✓ read"
		}
		return "✓✓ read by " + strings.Join(m.ReadBy, ", ")
	case client.Failed:
		return "✗ NOT DELIVERED"
	}
	return ""
}

// historyLine formats an entry of a history for people: a message
// (messageLine) or a system line (systemLine).
func historyLine(m *client.Message, self string) string {
	if m.System != nil {
		return systemLine(m, self)
	}
	return messageLine(m)
}

// systemLine formats a system line for people, made printable (names,
// titles and topics are chosen by other people):
//
//	-- 15:04 alice removed bob
//
// A change of this user's own that the server has not stored yet ends
// with the state marker of a message (… queued, ✗ NOT DELIVERED).
func systemLine(m *client.Message, self string) string {
	line := "-- " + stamp(m.Sent) + " " + systemText(m, self)
	if m.State == client.Pending || m.State == client.Failed {
		line += "  " + stateMark(m)
	}
	return printable(line)
}

// systemText says what a system line records, in words; self ("" for
// none) is called "you".
func systemText(m *client.Message, self string) string {
	sys := m.System
	who := func(user string) string {
		switch {
		case user == "":
			return "someone"
		case user == self:
			return "you"
		}
		return user
	}
	var users []string
	for _, u := range sys.Users {
		users = append(users, who(u))
	}
	actor := who(m.Sender)
	switch sys.Kind {
	case client.SystemJoined:
		return actor + " joined"
	case client.SystemAdded:
		return actor + " added " + strings.Join(users, ", ")
	case client.SystemLeft:
		return actor + " left"
	case client.SystemRemoved:
		return actor + " removed " + strings.Join(users, ", ")
	case client.SystemDeviceAdded:
		return actor + " added " + devicesOf(m, self)
	case client.SystemDeviceRemoved:
		return actor + " removed " + devicesOf(m, self)
	case client.SystemRenamed:
		switch {
		case sys.Value == "":
			return actor + " removed the conversation's name"
		case sys.Previous == "":
			return actor + ` named the conversation "` + sys.Value + `"`
		}
		return actor + ` renamed the conversation to "` + sys.Value + `"`
	case client.SystemTopicChanged:
		switch {
		case sys.Value == "":
			return actor + " cleared the topic"
		case sys.Previous == "":
			return actor + ` set the topic to "` + sys.Value + `"`
		}
		return actor + ` changed the topic to "` + sys.Value + `"`
	}
	return actor + " changed the conversation (" + string(sys.Kind) + ")"
}

// devicesOf names the devices of a device_added or device_removed line:
// "a device (ID)" when the actor's own, else "a device of bob (ID)",
// and "2 devices" for more.
func devicesOf(m *client.Message, self string) string {
	sys := m.System
	what := "a device"
	if len(sys.Devices) != 1 {
		what = fmt.Sprintf("%d devices", len(sys.Devices))
	}
	if len(sys.Users) > 0 && sys.Users[0] != m.Sender {
		owner := sys.Users[0]
		if owner == self {
			owner = "yours"
		}
		what += " of " + owner
	}
	var ids []string
	for _, d := range sys.Devices {
		ids = append(ids, string(d))
	}
	if len(ids) == 0 {
		return what
	}
	return what + " (" + strings.Join(ids, ", ") + ")"
}

// size formats a byte count.
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
