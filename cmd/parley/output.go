package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
)

// The JSON documents of the CLI's --json output are the daemon API's
// schema (package daemonapi): fields are added, never renamed or removed.
type (
	accountJSON      = daemonapi.Account
	conversationJSON = daemonapi.Conversation
	messageJSON      = daemonapi.Message
	memberJSON       = daemonapi.Member
	eventJSON        = daemonapi.Event
	attachmentJSON   = daemonapi.Attachment
	reactionJSON     = daemonapi.Reaction
)

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

func toMessageJSON(m *client.Message) *messageJSON { return daemonapi.NewMessage(m) }

// title names a conversation for people (daemonapi.Title).
func title(cv *client.Conversation, self string) string { return daemonapi.Title(cv, self) }

func toConversationJSON(cv *client.Conversation, self string, unread int) *conversationJSON {
	return daemonapi.NewConversation(cv, self, unread)
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

func toAccountJSON(a *client.Account, dir string) *accountJSON { return daemonapi.NewAccount(a, dir) }

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

// printable makes text that other people chose safe to print on a
// terminal (daemonapi.Printable).
func printable(s string) string { return daemonapi.Printable(s) }

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
func systemText(m *client.Message, self string) string { return daemonapi.SystemText(m, self) }

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
