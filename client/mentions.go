package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// Mentions
//
// A sender mentions users by writing "@name" in a text: Send resolves
// those words against the conversation's members and lists the members
// it found in the content's mentions field (docs/content.md). A receiver
// trusts that field only, never the text: "@carol" in a text mentions no
// one unless the sender's client listed carol. Message.MentionsMe says
// that a message lists this user.
//
// Muting
//
// A conversation can be muted on this device (SetMuted): a local
// setting, never sent. Events of a muted conversation carry Event.Muted,
// so that a notifier stays quiet about them except for messages that
// mention this user (Message.MentionsMe), which notify even there.

// mentionsIn returns the members of conv (other than this user) that
// text mentions with "@name", sorted. A word "@name" counts when '@'
// starts the text or follows a character that is not a letter, digit or
// '@' (so that "a@b" is an address, not a mention), and name, in lower
// case and without trailing '.', '-' or '_', is a member's user name.
func mentionsIn(text string, members []string, self string) []string {
	var out []string
	for i := 0; i < len(text); i++ {
		if text[i] != '@' {
			continue
		}
		if i > 0 {
			r, _ := utf8.DecodeLastRuneInString(text[:i])
			if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '@' || r == '.' || r == '_' || r == '-' {
				continue
			}
		}
		j := i + 1
		for j < len(text) && isNameByte(text[j]) {
			j++
		}
		name := strings.TrimRight(strings.ToLower(text[i+1:j]), ".-_")
		if name != "" && name != self && slices.Contains(members, name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
		i = j - 1
	}
	slices.Sort(out)
	return out
}

// resolveMentions returns the mentions of a message with text sent in
// conv: the members that explicit names when it is not nil, else those
// that text's "@name" words name. A conversation whose members cannot be
// read gets none (sending to it fails with its own error).
func (c *Client) resolveMentions(ctx context.Context, conv protocol.ConversationID, text string, explicit []string) []string {
	if explicit == nil && !strings.Contains(text, "@") || explicit != nil && len(explicit) == 0 {
		return nil
	}
	c.mu.Lock()
	members, err := c.conversationMembersLocked(ctx, conv)
	c.mu.Unlock()
	if err != nil {
		return nil
	}
	if explicit != nil {
		return pickMentions(explicit, members, c.selfUser())
	}
	return mentionsIn(text, members, c.selfUser())
}

// pickMentions keeps the users of want that are members other than
// self, sorted and without repeats.
func pickMentions(want, members []string, self string) []string {
	var out []string
	for _, u := range want {
		if u != self && slices.Contains(members, u) && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

// isNameByte reports whether b may be part of a user name written in a
// text (protocol.ValidUserName, in either case).
func isNameByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-'
}

// conversationMembersLocked returns the member users of conv: those of its
// MLS group, or those stored. c.mu is held.
func (c *Client) conversationMembersLocked(ctx context.Context, conv protocol.ConversationID) ([]string, error) {
	if g := c.groups[conv]; g != nil && g.Active() {
		return memberUsers(g), nil
	}
	var members []string
	err := c.st.View(ctx, func(tx store.Tx) error {
		cv, err := tx.Conversation(conv)
		if errors.Is(err, store.ErrNotFound) {
			return ErrUnknownConversation
		}
		if err == nil {
			members = cv.Members
		}
		return err
	})
	return members, err
}

// setMentionsMe sets m.MentionsMe from m.Mentions for user self.
func setMentionsMe(m *Message, self string) {
	if m != nil && self != "" {
		_, m.MentionsMe = slices.BinarySearch(m.Mentions, self)
	}
}

// selfUser is this profile's user name, "" before registration. It takes
// no lock that event delivery may hold.
func (c *Client) selfUser() string {
	if p := c.self.Load(); p != nil {
		return *p
	}
	return ""
}

// setSelf records the profile's user name for selfUser.
func (c *Client) setSelf(user string) { c.self.Store(&user) }

// mutedPrefix starts the names of the settings that mute conversations.
const mutedPrefix = "muted/"

func mutedSetting(conv protocol.ConversationID) string { return fmt.Sprintf(mutedPrefix+"%d", conv) }

// mutedSet is the set of muted conversations, loaded at Open and kept by
// SetMuted, read by event delivery without touching the store.
type mutedSet struct {
	mu  sync.Mutex
	set map[protocol.ConversationID]bool
}

func (s *mutedSet) has(conv protocol.ConversationID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set[conv]
}

func (s *mutedSet) put(conv protocol.ConversationID, muted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[protocol.ConversationID]bool{}
	}
	if muted {
		s.set[conv] = true
	} else {
		delete(s.set, conv)
	}
}

// loadMuted reads the muted conversations from the settings.
func (c *Client) loadMuted(tx store.Tx) error {
	all, err := tx.Settings(mutedPrefix)
	if err != nil {
		return err
	}
	for name, v := range all {
		var conv protocol.ConversationID
		if _, err := fmt.Sscanf(name, mutedPrefix+"%d", &conv); err != nil || string(v) != "1" {
			continue
		}
		c.muted.put(conv, true)
	}
	return nil
}

// SetMuted mutes (or with muted false, unmutes) a conversation on this
// device: its events carry Event.Muted, and Conversation.Muted says so.
// Messages that mention this user still notify (see Message.MentionsMe).
// Nothing is sent: the other members do not learn it.
func (c *Client) SetMuted(ctx context.Context, conv protocol.ConversationID, muted bool) error {
	err := c.st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Conversation(conv); errors.Is(err, store.ErrNotFound) {
			return ErrUnknownConversation
		} else if err != nil {
			return err
		}
		v := []byte("0")
		if muted {
			v = []byte("1")
		}
		return tx.SetSetting(mutedSetting(conv), v)
	})
	if err != nil {
		return fmt.Errorf("client: mute conversation %d: %w", conv, err)
	}
	c.muted.put(conv, muted)
	return nil
}

// observe completes an event before it is queued, and keeps the search
// index up to date with the messages it reports. It runs in whichever
// goroutine pushes the event, possibly with c.mu held: it reads no store
// and takes only its own locks.
func (c *Client) observe(ev *Event) {
	if ev.Message != nil {
		setMentionsMe(ev.Message, c.selfUser())
	}
	if ev.Conversation != 0 {
		ev.Muted = c.muted.has(ev.Conversation)
	}
	switch ev.Kind {
	case EventMessage, EventEdited, EventDeleted, EventDelivered, EventExpired:
		c.idx.update(ev.Message)
	}
	if ev.Kind == EventMessage && !ev.Message.Expires.IsZero() {
		c.wakeExpiry()
	}
}
