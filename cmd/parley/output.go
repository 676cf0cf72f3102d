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
	Epoch   uint64   `json:"epoch"`
	Unread  int      `json:"unread"`
	// Unsafe is set when this device rejected a membership change that
	// the server accepted: nothing more can be sent in the conversation.
	Unsafe *alarmJSON `json:"unsafe,omitempty"`
}

// alarmJSON describes the rejected membership change of an unsafe
// conversation (client.Alarm).
type alarmJSON struct {
	User   string    `json:"user,omitempty"`
	Device string    `json:"device,omitempty"`
	Reason string    `json:"reason"`
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
}

// messageJSON is one message of a history.
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
	// identity change awaits acceptance.
	PendingDigits string `json:"pending_digits,omitempty"`
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
		Members: members, Left: cv.Left, Epoch: cv.Epoch, Unread: unread,
	}
	if a := cv.Unsafe; a != nil {
		out.Unsafe = &alarmJSON{User: a.User, Device: string(a.Device), Reason: a.Reason, Seq: a.Seq, Time: a.Time.UTC()}
	}
	return out
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
// printable):
//
//	a1b2c3d4 15:04 alice: text (edited) ↩ 9f8e7d6c [👍 bob]
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
	switch m.State {
	case client.Pending:
		b.WriteString(" (not sent yet)")
	case client.Failed:
		b.WriteString(" (NOT DELIVERED)")
	}
	return b.String()
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
