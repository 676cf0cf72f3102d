package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/protocol"
)

func cmdRegister(ctx context.Context, e *env, args []string) error {
	fs := e.flags("register", "--server URL [--invite CODE] [--fingerprint SHA256] NAME | --link LINK NAME")
	server := fs.String("server", "", "server `URL`, such as https://chat.example.org")
	invite := fs.String("invite", "", "invite `CODE` (parleyd admin invite create)")
	fingerprint := fs.String("fingerprint", "", "pin the server's self-signed certificate by its `SHA256` fingerprint, as parleyd prints it")
	link := fs.String("link", "", "invite `LINK` carrying the server, its fingerprint and the invite (parleyd admin invite create, parley invite create)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := applyInviteLink(*link, server, invite, fingerprint); err != nil {
		return err
	}
	if *server == "" {
		return usagef("register: --server URL is required")
	}
	s, dir, release, err := e.openUnbound(ctx, *fingerprint)
	if err != nil {
		return err
	}
	acct, err := s.c.Register(ctx, *server, *invite, strings.TrimPrefix(pos[0], "@"))
	release()
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, toAccountJSON(acct, dir))
	}
	fmt.Fprintf(e.stdout, "registered %s (device %s) on %s\nprofile: %s\n", acct.Address, acct.Device, acct.Server, dir)
	if s.keyFile {
		fmt.Fprintf(e.stdout, "the profile's store key is in %s (mode 0600)\n", filepath.Join(dir, keyFileName))
	}
	return nil
}

// openUnbound opens the profile that register and link bind to an
// account, creating it if needed. release closes it and, when this
// command created the profile and it is still bound to no account (the
// binding failed), removes it: nothing of it is worth keeping, and a new
// attempt starts clean.
func (e *env) openUnbound(ctx context.Context, fingerprint string) (s *session, dir string, release func(), err error) {
	if dir, err = e.profileDir(); err != nil {
		return nil, "", nil, err
	}
	_, statErr := os.Stat(dir)
	created := errors.Is(statErr, os.ErrNotExist)
	if s, err = e.open(ctx, openOptions{create: true, fingerprint: strings.ToLower(fingerprint)}); err != nil {
		if created {
			os.RemoveAll(dir)
		}
		return nil, "", nil, err
	}
	release = func() {
		_, unbound := s.c.Whoami()
		s.close()
		if created && unbound != nil {
			os.RemoveAll(dir)
		}
	}
	return s, dir, release, nil
}

func cmdWhoami(ctx context.Context, e *env, args []string) error {
	fs := e.flags("whoami", "")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	s, err := e.open(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	acct, err := s.api.Whoami()
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, toAccountJSON(acct, s.dir))
	}
	fmt.Fprintf(e.stdout, "%s\ndevice:  %s\nserver:  %s\nprofile: %s\n", acct.Address, acct.Device, acct.Server, s.dir)
	return nil
}

// openSynced opens the profile and syncs with the server, through the
// profile's daemon when one runs: the command uses session.api only.
func (e *env) openSynced(ctx context.Context) (*session, error) {
	return e.openSyncedWith(ctx, openOptions{routed: true})
}

// openSyncedWith opens the profile as o says and syncs with the server.
func (e *env) openSyncedWith(ctx context.Context, o openOptions) (*session, error) {
	s, err := e.open(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := s.sync(ctx); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// printConversation prints a conversation after a change.
func (s *session) printConversation(ctx context.Context, conv protocol.ConversationID, verb string) error {
	cv, err := s.api.Conversation(ctx, conv)
	if err != nil {
		return err
	}
	self := s.self()
	if s.e.json {
		return writeJSON(s.e.stdout, toConversationJSON(cv, self, cv.Unread))
	}
	kind := "conversation"
	if cv.Channel {
		kind = "channel"
	}
	fmt.Fprintf(s.e.stdout, "%s %s %d: %s (members: %s)\n", verb, kind, cv.ID, title(cv, self), strings.Join(cv.Members, ", "))
	return nil
}

// printNoRoles prints why a group just created has no roles, if it has
// none because a member's client does not support them
// (client.SystemNoRoles): "bob's client does not support roles yet: this
// group has no admins".
func (s *session) printNoRoles(ctx context.Context, conv protocol.ConversationID) error {
	if s.e.json {
		return nil
	}
	ms, err := s.api.History(ctx, conv, 0, 0)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.System != nil && m.System.Kind == client.SystemNoRoles {
			fmt.Fprintln(s.e.stdout, systemText(m, s.self()))
		}
	}
	return nil
}

// self returns this profile's user name.
func (s *session) self() string {
	if a, err := s.api.Whoami(); err == nil {
		return a.User
	}
	return ""
}

func cmdChat(ctx context.Context, e *env, args []string) error {
	fs := e.flags("chat", "new USER... | recreate CONV")
	pos, err := parse(fs, args, 2, -1)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "new":
	case "recreate":
		return chatRecreate(ctx, e, pos[1:])
	default:
		return usagef("chat: unknown subcommand %q (want: parley chat new USER... or parley chat recreate CONV)", pos[0])
	}
	users := splitList(strings.Join(pos[1:], ","))
	s, err := e.openSynced(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	var conv protocol.ConversationID
	if len(users) == 1 {
		conv, err = s.api.NewDirect(ctx, users[0])
	} else {
		conv, err = s.api.NewGroup(ctx, "", users...)
	}
	if err != nil {
		return s.explain(ctx, 0, err)
	}
	if err := s.printConversation(ctx, conv, "opened"); err != nil {
		return err
	}
	return s.printNoRoles(ctx, conv)
}

// chatRecreate starts a new conversation with the members of an unsafe
// one (client.Client.Recreate).
func chatRecreate(ctx context.Context, e *env, args []string) error {
	if len(args) != 1 {
		return usagef("chat recreate: want one CONV")
	}
	s, err := e.openSyncedWith(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	cv, err := s.resolveConv(ctx, args[0])
	if err != nil {
		return err
	}
	conv, err := s.api.Recreate(ctx, cv.ID)
	if err != nil {
		return s.explain(ctx, cv.ID, err)
	}
	return s.printConversation(ctx, conv, "opened")
}

func cmdGroup(ctx context.Context, e *env, args []string) error {
	return createGroup(ctx, e, "group", args)
}

// cmdChannel creates a channel: a group where only admins post.
func cmdChannel(ctx context.Context, e *env, args []string) error {
	return createGroup(ctx, e, "channel", args)
}

// createGroup is "group create" and "channel create".
func createGroup(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "create TITLE [--members a,b] [--members-file FILE]")
	members := fs.String("members", "", "comma-separated `USERS` to add")
	membersFile := fs.String("members-file", "", "add the users of `FILE`, one name per line (- for standard input)")
	pos, err := parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	if pos[0] != "create" {
		return usagef("%s: unknown subcommand %q (want: parley %s create TITLE --members a,b)", name, pos[0], name)
	}
	users := splitList(*members)
	if *membersFile != "" {
		more, err := readMembersFile(e, *membersFile)
		if err != nil {
			return err
		}
		users = append(users, more...)
	}
	s, err := e.openSynced(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	create := s.api.NewGroup
	if name == "channel" {
		create = s.api.NewChannel
	}
	conv, err := create(e.withProgress(ctx), pos[1], users...)
	if err != nil {
		return s.explain(ctx, 0, err)
	}
	if err := s.printConversation(ctx, conv, "created"); err != nil {
		return err
	}
	return s.printNoRoles(ctx, conv)
}

// resolveConv finds the conversation named by arg, in this order: its id;
// for a user name (with or without "@") the 1:1 conversation whose
// membership is exactly this user and that one; then a group's name or
// the title shown for it. A name chosen by a member never shadows a user:
// "@user" matches users only, and a bare name that is a user known to
// this profile (a member of one of its conversations) without a 1:1
// conversation is ambiguous when a group carries it. Active
// conversations are preferred over ones this device left.
func (s *session) resolveConv(ctx context.Context, arg string) (*client.Conversation, error) {
	convs, err := s.api.Conversations(ctx)
	if err != nil {
		return nil, err
	}
	if id, err := strconv.ParseInt(arg, 10, 64); err == nil {
		for i := range convs {
			if int64(convs[i].ID) == id {
				return &convs[i], nil
			}
		}
	}
	self := s.self()
	match := func(f func(cv *client.Conversation) bool) ([]*client.Conversation, error) {
		var active, left []*client.Conversation
		for i := range convs {
			if f(&convs[i]) {
				if convs[i].Left {
					left = append(left, &convs[i])
				} else {
					active = append(active, &convs[i])
				}
			}
		}
		if len(active) == 0 {
			active = left
		}
		if len(active) > 1 {
			return nil, usagef("conversation %q is ambiguous: it names conversations %s; use the id", arg, convIDs(active))
		}
		return active, nil
	}
	user, isUser := strings.CutPrefix(arg, "@")
	pair := []string{self, user}
	slices.Sort(pair)
	pair = slices.Compact(pair)
	found, err := match(func(cv *client.Conversation) bool {
		return (cv.Direct || user == self) && slices.Equal(cv.Members, pair)
	})
	if err != nil {
		return nil, err
	}
	if len(found) == 1 {
		return found[0], nil
	}
	if isUser {
		return nil, withHint(fmt.Errorf("conversation with %s: %w", printable(user), client.ErrUnknownConversation),
			"open one with: parley chat new %s", printable(user))
	}
	found, err = match(func(cv *client.Conversation) bool {
		return !cv.Direct && (cv.Name == arg || strings.EqualFold(title(cv, self), arg))
	})
	if err != nil {
		return nil, err
	}
	if len(found) == 1 {
		if arg != self && knownUser(convs, arg) {
			return nil, usagef("conversation %q is ambiguous: you have no 1:1 conversation with user %s, and conversation %d is named so; use the id, or open the 1:1 with 'parley chat new %s'",
				printable(arg), printable(arg), found[0].ID, printable(arg))
		}
		return found[0], nil
	}
	return nil, fmt.Errorf("conversation %q: %w", printable(arg), client.ErrUnknownConversation)
}

// convIDs lists the ids of conversations, comma-separated.
func convIDs(cvs []*client.Conversation) string {
	var ids []string
	for _, cv := range cvs {
		ids = append(ids, strconv.FormatInt(int64(cv.ID), 10))
	}
	return strings.Join(ids, ", ")
}

// knownUser reports whether user is a member of one of convs.
func knownUser(convs []client.Conversation, user string) bool {
	for _, cv := range convs {
		if slices.Contains(cv.Members, user) {
			return true
		}
	}
	return false
}

// resolveMessage finds the message named by arg in a conversation: its
// full id or a unique prefix of at least 4 hex digits.
func (s *session) resolveMessage(ctx context.Context, conv protocol.ConversationID, arg string) (content.MessageID, error) {
	if id, err := content.ParseMessageID(arg); err == nil {
		return id, nil
	}
	arg = strings.ToLower(arg)
	if len(arg) < 4 {
		return content.MessageID{}, usagef("message id %q: give at least 4 hex digits", arg)
	}
	ms, err := s.api.Messages(ctx, conv, 0, 0)
	if err != nil {
		return content.MessageID{}, err
	}
	var found []content.MessageID
	for _, m := range ms {
		if strings.HasPrefix(m.ID.String(), arg) {
			found = append(found, m.ID)
		}
	}
	switch len(found) {
	case 0:
		return content.MessageID{}, fmt.Errorf("message %q in conversation %d: %w", arg, conv, client.ErrUnknownMessage)
	case 1:
		return found[0], nil
	}
	return content.MessageID{}, usagef("message id %q is ambiguous in conversation %d", arg, conv)
}

// explain adds advice to an error of an operation on a conversation (0
// for none): for an identity change, which users changed and what to do.
func (s *session) explain(ctx context.Context, conv protocol.ConversationID, err error) error {
	if !errors.Is(err, client.ErrIdentityChanged) || errors.Is(err, client.ErrTrustRollback) {
		return err // a lost key names its user: see defaultHint
	}
	var users []string
	convs := []protocol.ConversationID{conv}
	if conv == 0 {
		all, _ := s.api.Conversations(ctx)
		convs = nil
		for _, cv := range all {
			convs = append(convs, cv.ID)
		}
	}
	for _, id := range convs {
		ms, _ := s.api.Members(ctx, id)
		for _, m := range ms {
			if m.IdentityChanged && !slices.Contains(users, m.User) {
				users = append(users, m.User)
			}
		}
	}
	if len(users) == 0 {
		return withHint(err, "compare safety numbers with 'parley verify USER', then accept the new key with 'parley verify --accept USER DIGITS' and the digits you compared")
	}
	u := users[0]
	return withHint(err, "the identity key of %s changed (%s): compare safety numbers with 'parley verify %s' (in person or over a trusted call), then accept the new key with 'parley verify --accept %s DIGITS' and the digits you compared",
		strings.Join(users, ", "), "a new installation, or someone impersonating them", u, u)
}

func cmdSend(ctx context.Context, e *env, args []string) error {
	fs := e.flags("send", "CONV TEXT | CONV - | CONV --file PATH [CAPTION] [--reply ID]")
	file := fs.String("file", "", "send the file at `PATH` (encrypted, uploaded as an attachment); TEXT becomes its caption")
	reply := fs.String("reply", "", "answer the message with this `ID` (or unique prefix)")
	pos, err := parse(fs, args, 1, 2)
	if err != nil {
		return err
	}
	if len(pos) == 2 && pos[1] == "-" {
		// The text (or caption) is read from standard input.
		if pos[1], err = readMessage(e.stdin); err != nil {
			return err
		}
	}
	if *file == "" && len(pos) != 2 {
		return usagef("send: want CONV TEXT (or CONV --file PATH)")
	}
	if *file == "" && strings.TrimSpace(pos[1]) == "" {
		return usagef("send: the message is empty: give the TEXT to send")
	}
	if *file != "" {
		// A daemon that holds the profile reads the file: it does not
		// share this working directory.
		abs, err := filepath.Abs(*file)
		if err != nil {
			return fmt.Errorf("send --file %s: %v", *file, err)
		}
		*file = abs
	}
	// A text message is encrypted with what the profile knows when the
	// server cannot be reached, and queued (exit code 12).
	s, err := e.openSyncedOrOffline(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	cv, err := s.resolveConv(ctx, pos[0])
	if err != nil {
		return err
	}
	var opts client.SendOptions
	if *reply != "" {
		if opts.ReplyTo, err = s.resolveMessage(ctx, cv.ID, *reply); err != nil {
			return err
		}
	}
	text := ""
	if len(pos) == 2 {
		text = pos[1]
	}
	var msg *client.Message
	if *file != "" {
		opts.Caption = text
		msg, err = s.api.SendFile(ctx, cv.ID, *file, opts)
	} else {
		msg, err = s.api.Send(ctx, cv.ID, text, opts)
	}
	queued := err != nil && msg != nil && msg.State == client.Pending && errors.Is(err, client.ErrServerUnreachable)
	if err != nil && !queued {
		return s.explain(ctx, cv.ID, err)
	}
	if e.json {
		if werr := writeJSON(e.stdout, toMessageJSON(msg)); werr != nil {
			return werr
		}
	} else if queued {
		fmt.Fprintf(e.stdout, "queued %s for %s (conversation %d): not delivered yet\n", shortID(msg.ID.String()), title(cv, s.self()), cv.ID)
	} else {
		fmt.Fprintf(e.stdout, "sent %s to %s (conversation %d)\n", shortID(msg.ID.String()), title(cv, s.self()), cv.ID)
	}
	if queued {
		return &queuedError{id: shortID(msg.ID.String()), err: err}
	}
	return nil
}

// openForReading opens the profile for a command that reads: as it is
// with offline (--offline), else synced first, or as it is when the
// server cannot be reached.
func (e *env) openForReading(ctx context.Context, offline bool) (*session, error) {
	if offline {
		return e.open(ctx, openOptions{routed: true})
	}
	return e.openSyncedOrOffline(ctx, openOptions{routed: true})
}

// openSyncedOrOffline opens the profile and syncs with the server; if the
// server cannot be reached, it says so on stderr and goes on with what
// the profile holds.
func (e *env) openSyncedOrOffline(ctx context.Context, o openOptions) (*session, error) {
	s, err := e.open(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := s.sync(ctx); err != nil {
		if !errors.Is(err, client.ErrServerUnreachable) {
			s.close()
			return nil, err
		}
		s.offline = true
		s.notice("offline", fmt.Sprintf("working offline: %v", err))
	}
	return s, nil
}

func cmdRead(ctx context.Context, e *env, args []string) error {
	fs := e.flags("read", "[CONV] [--last N] [--offline] [--no-receipt] | --mentions [--last N]")
	last := fs.Int("last", 0, "show only the last `N` messages")
	offline := fs.Bool("offline", false, "do not contact the server; show what this profile has")
	noReceipt := fs.Bool("no-receipt", false, "do not send a read receipt")
	mentions := fs.Bool("mentions", false, "list the messages that mention you, in every conversation, newest first")
	pos, err := parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if *mentions {
		return readMentions(ctx, e, pos, *last, *offline)
	}
	s, err := e.openForReading(ctx, *offline)
	if err != nil {
		return err
	}
	defer s.close()
	*offline = *offline || s.offline
	self := s.self()
	if len(pos) == 0 {
		return s.listConversations(ctx, self)
	}
	cv, err := s.resolveConv(ctx, pos[0])
	if err != nil {
		return err
	}
	ms, err := s.api.History(ctx, cv.ID, 0, *last)
	if err != nil {
		return err
	}
	if e.json {
		out := struct {
			Conversation *conversationJSON `json:"conversation"`
			Messages     []*messageJSON    `json:"messages"`
		}{toConversationJSON(cv, self, cv.Unread), []*messageJSON{}}
		for _, m := range ms {
			out.Messages = append(out.Messages, toMessageJSON(m))
		}
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "# %s (conversation %d; members: %s)\n", title(cv, self), cv.ID, strings.Join(cv.Members, ", "))
		if len(cv.Unverified) > 0 {
			fmt.Fprintf(e.stdout, "# %s\n", unverifiedHint(cv.Unverified))
		}
		if a := cv.Unsafe; a != nil {
			fmt.Fprintf(e.stdout, "# *** %s ***\n", unsafeLine(cv.ID, (&client.UnsafeError{Conversation: cv.ID, Alarm: *a}).Error(), a.Unrecoverable))
		}
		if cv.Left {
			fmt.Fprintf(e.stdout, "# you are no longer a member: %s\n", leftLabel(cv.RemovedBy))
		}
		if cv.Timer > 0 {
			fmt.Fprintf(e.stdout, "# disappearing messages: %s\n", protocol.FormatTimer(cv.Timer))
		}
		for _, m := range ms {
			fmt.Fprintln(e.stdout, historyLine(m, self))
		}
	}
	if len(ms) == 0 {
		return nil
	}
	// What was printed is shown (parley listen does not print it again)
	// and read; the read receipt tells the other members.
	newest := slices.MaxFunc(ms, func(a, b *client.Message) int { return cmp.Compare(a.Seq, b.Seq) }).Seq
	if err := s.api.MarkShown(ctx, cv.ID, newest); err != nil {
		return err
	}
	if cv.Unread > 0 && !*noReceipt && !*offline && !cv.Left && cv.Unsafe == nil {
		if err := s.api.MarkRead(ctx, cv.ID); err != nil {
			fmt.Fprintf(e.stderr, "parley: read receipt not sent: %v\n", err)
		}
		return nil
	}
	return s.api.MarkReadUpTo(ctx, cv.ID, newest)
}

// readMentions is read --mentions: the messages that mention this user,
// newest first, with their conversations' titles (at most last, or
// client.DefaultSearchLimit).
func readMentions(ctx context.Context, e *env, pos []string, last int, offline bool) error {
	if len(pos) > 0 {
		return usagef("read --mentions: lists the mentions of every conversation; give no CONV")
	}
	if last < 0 || last > client.MaxSearchLimit {
		return usagef("read --mentions: --last %d: want 1 to %d", last, client.MaxSearchLimit)
	}
	s, err := e.openForReading(ctx, offline)
	if err != nil {
		return err
	}
	defer s.close()
	return s.printSearch(ctx, client.SearchQuery{MentionsMe: true, Limit: last}, "no messages mention you")
}

// leftLabel says how this device left a conversation: removed by whom,
// or by its user's own request.
func leftLabel(removedBy string) string {
	if removedBy != "" {
		return "removed by " + printable(removedBy)
	}
	return "you left"
}

// listConversations prints the conversations with their unread counts.
func (s *session) listConversations(ctx context.Context, self string) error {
	convs, err := s.api.Conversations(ctx)
	if err != nil {
		return err
	}
	out := []*conversationJSON{}
	for i := range convs {
		out = append(out, toConversationJSON(&convs[i], self, convs[i].Unread))
	}
	if s.e.json {
		return writeJSON(s.e.stdout, struct {
			Conversations []*conversationJSON `json:"conversations"`
		}{out})
	}
	if len(out) == 0 {
		fmt.Fprintln(s.e.stdout, "no conversations yet: parley chat new USER")
		return nil
	}
	tw := tabwriter.NewWriter(s.e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTITLE\tUNREAD\tMEMBERS")
	var unverified []string
	for _, cv := range out {
		t := cv.Title
		if cv.Left {
			t += " (" + leftLabel(cv.RemovedBy) + ")"
		}
		switch {
		case cv.Unsafe != nil && cv.Unsafe.Unrecoverable:
			t += " (BROKEN: parley chat recreate " + strconv.FormatInt(cv.ID, 10) + ")"
		case cv.Unsafe != nil:
			t += " (UNSAFE: parley chat recreate " + strconv.FormatInt(cv.ID, 10) + ")"
		}
		if cv.Channel {
			t += " (channel)"
		}
		if cv.Muted {
			t += " (muted)"
		}
		members := strings.Join(cv.Members, ", ")
		if len(cv.Unverified) > 0 {
			members += "  (unverified)"
			unverified = append(unverified, cv.Unverified...)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", cv.ID, t, cv.Unread, members)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(unverified) > 0 {
		slices.Sort(unverified)
		fmt.Fprintln(s.e.stdout, unverifiedHint(slices.Compact(unverified)))
	}
	return nil
}

func cmdMembers(ctx context.Context, e *env, args []string) error {
	fs := e.flags("members", "CONV")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	s, err := e.openSyncedWith(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	cv, err := s.resolveConv(ctx, pos[0])
	if err != nil {
		return err
	}
	ms, err := s.api.Members(ctx, cv.ID)
	if err != nil {
		return err
	}
	if e.json {
		out := []memberJSON{}
		for _, m := range ms {
			out = append(out, memberJSON{User: m.User, Device: string(m.Device), Self: m.Self, Verified: m.Verified, IdentityChanged: m.IdentityChanged})
		}
		return writeJSON(e.stdout, struct {
			Conversation int64        `json:"conversation"`
			Members      []memberJSON `json:"members"`
		}{int64(cv.ID), out})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tDEVICE\tSTATE")
	for _, m := range ms {
		state := "not verified (parley verify " + m.User + ")"
		switch {
		case m.IdentityChanged:
			state = "IDENTITY CHANGED (parley verify " + m.User + ")"
		case m.Self:
			state = "this device"
		case m.Verified:
			state = "verified"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.User, m.Device, state)
	}
	return tw.Flush()
}

// membership runs add, remove and leave.
func membership(ctx context.Context, e *env, args []string, name string) error {
	synopsis := "CONV USER"
	lo, hi := 2, 2
	switch name {
	case "leave":
		synopsis, lo, hi = "CONV", 1, 1
	case "add":
		synopsis, lo, hi = "CONV USER... [--members-file FILE]", 1, -1
	}
	fs := e.flags(name, synopsis)
	var membersFile *string
	if name == "add" {
		membersFile = fs.String("members-file", "", "add the users of `FILE` too, one name per line (- for standard input)")
	}
	pos, err := parse(fs, args, lo, hi)
	if err != nil {
		return err
	}
	if name == "add" {
		return addUsers(ctx, e, pos[0], pos[1:], *membersFile)
	}
	s, err := e.openSynced(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	cv, err := s.resolveConv(ctx, pos[0])
	if err != nil {
		return err
	}
	var verb string
	switch name {
	case "remove":
		err, verb = s.api.Remove(ctx, cv.ID, strings.TrimPrefix(pos[1], "@")), "removed "+pos[1]+" from"
	case "leave":
		err, verb = s.api.Leave(ctx, cv.ID), "left"
	}
	if err != nil {
		return s.explain(ctx, cv.ID, err)
	}
	return s.printConversation(ctx, cv.ID, verb)
}

// addUsers is add: the users named, and those of the members file.
func addUsers(ctx context.Context, e *env, conv string, names []string, membersFile string) error {
	users := splitList(strings.Join(names, ","))
	if membersFile != "" {
		more, err := readMembersFile(e, membersFile)
		if err != nil {
			return err
		}
		users = append(users, more...)
	}
	if len(users) == 0 {
		return usagef("add: want at least one USER (or --members-file FILE)")
	}
	s, err := e.openSynced(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	cv, err := s.resolveConv(ctx, conv)
	if err != nil {
		return err
	}
	verb := "added " + users[0] + " to"
	if len(users) == 1 {
		err = s.api.Add(ctx, cv.ID, users[0])
	} else {
		err = s.api.AddUsers(e.withProgress(ctx), cv.ID, users...)
		verb = fmt.Sprintf("added %d users to", len(users))
	}
	if err != nil {
		return s.explain(ctx, cv.ID, err)
	}
	return s.printConversation(ctx, cv.ID, verb)
}

// maxMembersFile bounds a members file: 10,000 names take about 200 KB.
const maxMembersFile = 16 << 20

// readMembersFile reads the user names of a members file (- is standard
// input): one per line, with or without "@"; blank lines and lines
// starting with # are skipped.
func readMembersFile(e *env, path string) ([]string, error) {
	var r io.Reader
	if path == "-" {
		if e.stdin == nil {
			return nil, usagef("--members-file -: no standard input")
		}
		r = e.stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("members file: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxMembersFile+1))
	if err != nil {
		return nil, fmt.Errorf("members file %s: %w", path, err)
	}
	if len(b) > maxMembersFile {
		return nil, fmt.Errorf("members file %s: larger than %d bytes", path, maxMembersFile)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.TrimPrefix(line, "@"))
	}
	return out, nil
}

// progressShown is the smallest number of users or devices whose
// progress add and create print.
const progressShown = 100

// withProgress makes an operation that adds users print its progress on
// stderr when it adds many (client.WithProgress), and every wait for the
// server's rate limit.
func (e *env) withProgress(ctx context.Context) context.Context {
	return client.WithProgress(ctx, func(p client.Progress) {
		what := map[string]string{"lookup": "users looked up", "claim": "users' KeyPackages claimed", "commit": "devices added"}[p.Stage]
		switch {
		case p.Stage == "wait":
			fmt.Fprintf(e.stderr, "parley: waiting %v for the server's rate limit\n", p.Wait.Round(time.Second))
		case what != "" && p.Total >= progressShown:
			fmt.Fprintf(e.stderr, "parley: %d of %d %s\n", p.Done, p.Total, what)
		}
	})
}

func cmdAdd(ctx context.Context, e *env, args []string) error {
	return membership(ctx, e, args, "add")
}

func cmdRemove(ctx context.Context, e *env, args []string) error {
	return membership(ctx, e, args, "remove")
}

func cmdLeave(ctx context.Context, e *env, args []string) error {
	return membership(ctx, e, args, "leave")
}

// targeted runs react, edit and delete: commands on one message.
func targeted(ctx context.Context, e *env, args []string, name, synopsis string, n int, do func(s *session, conv protocol.ConversationID, id content.MessageID, rest []string) error) error {
	fs := e.flags(name, synopsis)
	remove := false
	if name == "react" {
		fs.BoolVar(&remove, "remove", false, "remove the reaction instead")
	}
	pos, err := parse(fs, args, n, n)
	if err != nil {
		return err
	}
	s, err := e.openSynced(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	cv, err := s.resolveConv(ctx, pos[0])
	if err != nil {
		return err
	}
	id, err := s.resolveMessage(ctx, cv.ID, pos[1])
	if err != nil {
		return err
	}
	if remove {
		pos = append(pos, "--remove")
	}
	if err := do(s, cv.ID, id, pos[2:]); err != nil {
		return s.explain(ctx, cv.ID, err)
	}
	if e.json {
		return writeJSON(e.stdout, struct {
			Conversation int64  `json:"conversation"`
			Message      string `json:"message"`
		}{int64(cv.ID), id.String()})
	}
	fmt.Fprintf(e.stdout, "%s %s in %s (conversation %d)\n", name, shortID(id.String()), title(cv, s.self()), cv.ID)
	return nil
}

func cmdReact(ctx context.Context, e *env, args []string) error {
	return targeted(ctx, e, args, "react", "CONV ID EMOJI [--remove]", 3, func(s *session, conv protocol.ConversationID, id content.MessageID, rest []string) error {
		return s.api.React(ctx, conv, id, rest[0], len(rest) > 1)
	})
}

func cmdEdit(ctx context.Context, e *env, args []string) error {
	return targeted(ctx, e, args, "edit", "CONV ID TEXT", 3, func(s *session, conv protocol.ConversationID, id content.MessageID, rest []string) error {
		if strings.TrimSpace(rest[0]) == "" {
			return usagef("edit: the new text is empty (parley delete CONV ID deletes a message)")
		}
		return s.api.Edit(ctx, conv, id, rest[0])
	})
}

func cmdDelete(ctx context.Context, e *env, args []string) error {
	return targeted(ctx, e, args, "delete", "CONV ID", 2, func(s *session, conv protocol.ConversationID, id content.MessageID, rest []string) error {
		return s.api.Delete(ctx, conv, id)
	})
}

func cmdVerify(ctx context.Context, e *env, args []string) error {
	fs := e.flags("verify", "USER [--mark] [--no-qr] | --accept USER DIGITS")
	mark := fs.Bool("mark", false, "record that you compared the safety number and it matched")
	accept := fs.Bool("accept", false, "accept the user's new identity key whose safety number 'parley verify USER' showed, given as DIGITS (unverified until --mark)")
	noQR := fs.Bool("no-qr", false, "do not print the QR code")
	pos, err := parse(fs, args, 1, -1)
	if err != nil {
		return err
	}
	user := strings.TrimPrefix(pos[0], "@")
	digits := strings.Join(pos[1:], "")
	switch {
	case *accept && digits == "":
		return usagef("verify --accept %s: give the new safety number that 'parley verify %s' showed: parley verify --accept %s DIGITS", printable(user), printable(user), printable(user))
	case !*accept && digits != "":
		return usagef("verify: want one USER (safety number digits go with --accept)")
	}
	s, err := e.open(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	acct, err := s.api.Whoami()
	if err != nil {
		return err
	}
	if user == acct.User {
		return usagef("verify: %s is this profile's own account", user)
	}
	// A sync surfaces identity changes; the safety number itself needs the
	// server only for a user never seen before.
	if err := s.sync(ctx); err != nil && !errors.Is(err, client.ErrServerUnreachable) {
		return err
	}
	if *accept {
		if err := s.api.AcknowledgeIdentity(ctx, user, digits); err != nil {
			return withHint(err, "accept only the key whose safety number you compared: run 'parley verify %s' and compare again", printable(user))
		}
	}
	if lost, err := s.api.TrustRolledBack(ctx, user); err != nil {
		return err
	} else if lost && *mark {
		return withHint(fmt.Errorf("verify %s: %w", user, &client.TrustRollbackError{User: user}),
			"compare the safety number that 'parley verify %[1]s' shows, accept the key with 'parley verify --accept %[1]s DIGITS', then mark it", user)
	} else if lost {
		return s.printLostKey(ctx, user)
	}
	changed, err := s.api.IdentityChanged(ctx, user)
	if err != nil {
		return err
	}
	sn, err := s.api.SafetyNumber(ctx, user)
	if err != nil {
		return err
	}
	var pending *client.SafetyNumber
	if changed {
		if pending, err = s.api.SafetyNumberPending(ctx, user); err != nil {
			return err
		}
	}
	if *mark {
		if changed {
			return withHint(fmt.Errorf("verify %s: %w", user, client.ErrIdentityChanged),
				"the identity key of %[1]s changed since it was pinned: compare the new safety number ('parley verify %[1]s' shows it), accept it with 'parley verify --accept %[1]s DIGITS', then mark it", user)
		}
		if err := s.api.MarkVerified(ctx, user); err != nil {
			return err
		}
		sn.Verified = true
	}
	if e.json {
		out := safetyJSON{User: user, Digits: sn.Digits, Groups: sn.Groups,
			QRPayload: fmt.Sprintf("%x", sn.QRPayload), Verified: sn.Verified, IdentityChanged: changed}
		if pending != nil {
			out.PendingDigits = pending.Digits
		}
		return writeJSON(e.stdout, out)
	}
	w := e.stdout
	if changed {
		fmt.Fprintf(w, "WARNING: %s now presents a NEW identity key. The number below is for the key pinned before.\nThe new key's safety number is:\n\n", user)
		for i := 0; i < len(pending.Groups); i += 4 {
			fmt.Fprintf(w, "    %s\n", strings.Join(pending.Groups[i:min(i+4, len(pending.Groups))], " "))
		}
		fmt.Fprintf(w, "\nCompare it with %s in person or over a call you trust; if it matches, accept this key (and no other) with:\n    parley verify --accept %s %s\n\n", user, user, strings.Join(pending.Groups, " "))
	}
	fmt.Fprintf(w, "Safety number of %s and %s@%s:\n\n", acct.Address, user, acct.ServerName)
	for i := 0; i < len(sn.Groups); i += 4 {
		fmt.Fprintf(w, "    %s\n", strings.Join(sn.Groups[i:min(i+4, len(sn.Groups))], " "))
	}
	fmt.Fprintln(w)
	if !*noQR {
		fmt.Fprintln(w, sn.QR)
	}
	switch {
	case *mark:
		fmt.Fprintf(w, "%s is now marked verified.\n", user)
	case sn.Verified:
		fmt.Fprintf(w, "%s is verified.\n", user)
	default:
		fmt.Fprintf(w, "%s is not verified. Compare these digits with %s in person or over a call you trust;\nif they match on both sides, run: parley verify --mark %s\n", user, user, user)
	}
	return nil
}

// printLostKey shows, for a user whose pinned identity key this profile
// lost (client.ErrTrustRollback), the safety number of the key the server
// presents now and how to accept it.
func (s *session) printLostKey(ctx context.Context, user string) error {
	pending, err := s.api.SafetyNumberPending(ctx, user)
	if err != nil {
		return err
	}
	if s.e.json {
		return writeJSON(s.e.stdout, safetyJSON{User: user, Groups: []string{}, IdentityChanged: true,
			PendingDigits: pending.Digits, TrustRolledBack: true})
	}
	w := s.e.stdout
	fmt.Fprintf(w, "WARNING: this profile lost the identity key it had pinned for %[1]s: its record was deleted or replaced by an\n"+
		"older copy (by someone with access to this disk, or a backup put back). The key the server presents for %[1]s now\n"+
		"is not trusted until you compare it. Its safety number is:\n\n", user)
	for i := 0; i < len(pending.Groups); i += 4 {
		fmt.Fprintf(w, "    %s\n", strings.Join(pending.Groups[i:min(i+4, len(pending.Groups))], " "))
	}
	fmt.Fprintf(w, "\nCompare it with %s in person or over a call you trust; if it matches, accept this key (and no other) with:\n    parley verify --accept %s %s\n",
		user, user, strings.Join(pending.Groups, " "))
	return nil
}

func cmdGet(ctx context.Context, e *env, args []string) error {
	fs := e.flags("get", "ID -o PATH [--force]")
	out := fs.String("o", ".", "write the file to `PATH` (a directory: under the sender's file name, made safe)")
	force := fs.Bool("force", false, "replace a file that exists at PATH")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	dst, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	s, err := e.openSyncedWith(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	att, err := s.resolveAttachment(ctx, pos[0])
	if err != nil {
		return err
	}
	path, err := s.api.DownloadWith(ctx, att, dst, client.DownloadOptions{Force: *force})
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("get %s: %s was not written", pos[0], path)
	}
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, struct {
			Attachment string `json:"attachment"`
			Path       string `json:"path"`
			Size       int64  `json:"size"`
		}{att, path, fi.Size()})
	}
	fmt.Fprintf(e.stdout, "saved %s (%s)\n", path, size(fi.Size()))
	return nil
}

// resolveAttachment finds the attachment named by arg: its id (64 hex
// digits) or a unique prefix of it, or the id or a unique prefix of the
// message that carries it, at least 4 hex digits.
func (s *session) resolveAttachment(ctx context.Context, arg string) (string, error) {
	ref := strings.ToLower(arg)
	if len(ref) < 4 || strings.Trim(ref, "0123456789abcdef") != "" {
		return "", usagef("get: %q is not an attachment or message id: give at least 4 hex digits", arg)
	}
	convs, err := s.api.Conversations(ctx)
	if err != nil {
		return "", err
	}
	var found []string
	for _, cv := range convs {
		ms, err := s.api.Messages(ctx, cv.ID, 0, 0)
		if err != nil {
			return "", err
		}
		for _, m := range ms {
			if a := m.Attachment; a != nil && !m.Deleted && (strings.HasPrefix(a.ID, ref) || strings.HasPrefix(m.ID.String(), ref)) && !slices.Contains(found, a.ID) {
				found = append(found, a.ID)
			}
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("attachment %q: %w", arg, client.ErrUnknownAttachment)
	case 1:
		return found[0], nil
	}
	return "", usagef("get: %q names %d attachments; give more digits", arg, len(found))
}
