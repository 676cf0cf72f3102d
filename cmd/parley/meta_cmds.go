package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/internal/buildinfo"
	"github.com/parley-chat/parley/protocol"
)

// cmdInvite creates an invite on the profile's server (administrators
// only) and prints its link for 'parley register --link'.
func cmdInvite(ctx context.Context, e *env, args []string) error {
	fs := e.flags("invite", "create [--uses N] [--ttl DURATION]")
	uses := fs.Int("uses", 1, "number of registrations the invite allows")
	ttlFlag := fs.String("ttl", "7d", "lifetime of the invite (such as 24h or 7d)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if pos[0] != "create" {
		return usagef("invite: unknown subcommand %q (want: parley invite create [--uses N] [--ttl DURATION])", pos[0])
	}
	if *uses < 1 {
		return usagef("invite create: --uses %d: want at least 1", *uses)
	}
	ttl, err := parseTTL(*ttlFlag)
	if err != nil {
		return usagef("invite create: --ttl %q: want a duration of at least 1s, such as 24h or 7d", *ttlFlag)
	}
	s, err := e.open(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	info, err := s.api.CreateInvite(ctx, *uses, ttl)
	if err != nil {
		var se *client.ServerError
		if errors.As(err, &se) && se.Err.Code == protocol.CodeForbidden {
			return withHint(err, "only an administrator may create invites: ask one, or run 'parleyd admin invite create' on the server")
		}
		return err
	}
	link, err := s.api.InviteLink(info.Code)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, inviteJSON{InviteInfo: *info, Link: link.String()})
	}
	fmt.Fprintf(e.stdout, "%s\n", link)
	fmt.Fprintf(e.stderr, "parley: invite %d: %d use(s), expires %s; the link is shown only once: give it to the invitee, who runs 'parley register --link LINK NAME'\n",
		info.ID, info.UsesLeft, info.Expires.Local().Format(time.RFC3339))
	return nil
}

// inviteJSON is the JSON of parley invite create: the invite with its
// code, and its link.
type inviteJSON struct {
	protocol.InviteInfo
	Link string `json:"link"`
}

// parseTTL parses a positive duration of at least a second: Go's
// syntax (90m, 24h) or a number of days (7d).
func parseTTL(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > 3650 {
			return 0, fmt.Errorf("ttl %q: want 1d to 3650d", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, err
		}
	}
	if d < time.Second {
		return 0, fmt.Errorf("ttl %q: want at least 1s", s)
	}
	return d, nil
}

// applyInviteLink fills register's --server, --invite and --fingerprint
// from --link, which excludes them.
func applyInviteLink(link string, server, invite, fingerprint *string) error {
	if link == "" {
		return nil
	}
	if *server != "" || *invite != "" || *fingerprint != "" {
		return usagef("register: --link carries the server, invite and fingerprint: give it without --server, --invite and --fingerprint")
	}
	l, err := protocol.ParseInviteLink(link)
	if err != nil {
		return usagef("register: --link: %v", err)
	}
	*server, *invite, *fingerprint = l.Server, l.Code, l.Fingerprint
	return nil
}

func cmdRename(ctx context.Context, e *env, args []string) error {
	fs := e.flags("rename", "CONV TITLE")
	pos, err := parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	if strings.TrimSpace(pos[1]) == "" {
		return usagef("rename: the title is empty: give the new TITLE")
	}
	return setMetadata(ctx, e, pos[0], "renamed", func(s *session, conv protocol.ConversationID) error {
		return s.api.SetName(ctx, conv, pos[1])
	})
}

func cmdTopic(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic", "CONV TEXT")
	pos, err := parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	return setMetadata(ctx, e, pos[0], "set the topic of", func(s *session, conv protocol.ConversationID) error {
		return s.api.SetTopic(ctx, conv, pos[1])
	})
}

// setMetadata changes a conversation's name or topic with set and prints
// the conversation.
func setMetadata(ctx context.Context, e *env, arg, verb string, set func(s *session, conv protocol.ConversationID) error) error {
	s, err := e.openSynced(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	cv, err := s.resolveConv(ctx, arg)
	if err != nil {
		return err
	}
	if err := set(s, cv.ID); err != nil {
		return s.explain(ctx, cv.ID, err)
	}
	if e.json || verb == "renamed" {
		return s.printConversation(ctx, cv.ID, verb)
	}
	after, err := s.api.Conversation(ctx, cv.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s conversation %d (%s): %s\n", verb, after.ID, printable(title(after, s.self())), printable(after.Topic))
	return nil
}

func cmdVersion(ctx context.Context, e *env, args []string) error {
	fs := e.flags("version", "")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, struct {
			Version string `json:"version"`
			Build   string `json:"build"`
		}{buildinfo.Version(), buildinfo.String("parley")})
	}
	fmt.Fprint(e.stdout, buildinfo.String("parley"))
	return nil
}

// readMessage reads the text of 'send CONV -' from r: at most
// content.MaxTextSize bytes of UTF-8, without its final line breaks.
func readMessage(r io.Reader) (string, error) {
	if r == nil {
		return "", usagef("send: no standard input to read the message from")
	}
	b, err := io.ReadAll(io.LimitReader(r, content.MaxTextSize+3))
	if err != nil {
		return "", fmt.Errorf("send: read the message from standard input: %v", err)
	}
	text := strings.TrimRight(string(b), "\r\n")
	if len(text) > content.MaxTextSize {
		return "", usagef("send: the message on standard input is longer than %d bytes (send a long text as a file: --file PATH)", content.MaxTextSize)
	}
	if !utf8.ValidString(text) {
		return "", usagef("send: the message on standard input is not UTF-8 text (send binary data as a file: --file PATH)")
	}
	return text, nil
}

// timeNow is the clock of stamp (tests set it).
var timeNow = time.Now

// stamp formats a message's time in the local zone: the time of day for
// today's messages, with the date for older (or future) ones:
//
//	15:04 | Jan 2 15:04 (this year) | 2006-01-02 15:04
func stamp(t time.Time) string {
	t = t.Local()
	now := timeNow().Local()
	y, m, d := t.Date()
	ny, nm, nd := now.Date()
	switch {
	case y == ny && m == nm && d == nd:
		return t.Format("15:04")
	case y == ny:
		return t.Format("Jan 2 15:04")
	}
	return t.Format("2006-01-02 15:04")
}

// askPassphrase returns the store's passphrase from $PARLEY_PASSPHRASE,
// else asks it on the terminal (e.readPassword, nil when there is none).
// ok is false when neither gives one.
func (e *env) askPassphrase(dir string) (pass []byte, ok bool, err error) {
	if p := e.getenv("PARLEY_PASSPHRASE"); p != "" {
		return []byte(p), true, nil
	}
	if e.readPassword == nil {
		return nil, false, nil
	}
	p, err := e.readPassword(fmt.Sprintf("passphrase of profile %s: ", dir))
	if err != nil {
		return nil, false, fmt.Errorf("profile %s: read the passphrase from the terminal: %v", dir, err)
	}
	if len(p) == 0 {
		return nil, false, nil
	}
	return p, true, nil
}
