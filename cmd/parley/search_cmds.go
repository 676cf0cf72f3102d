package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// searchResultJSON is one line of the output of search and read
// --mentions: a message with the title of its conversation.
type searchResultJSON struct {
	ConversationTitle string       `json:"conversation_title"`
	Message           *messageJSON `json:"message"`
}

func cmdSearch(ctx context.Context, e *env, args []string) error {
	fs := e.flags("search", "QUERY [--from USER] [--in CONV] [--after DATE] [--before DATE] [--limit N]")
	from := fs.String("from", "", "only messages of `USER`")
	in := fs.String("in", "", "only messages of the conversation `CONV`")
	after := fs.String("after", "", "only messages sent at or after `DATE` (2006-01-02, local time, or RFC 3339)")
	before := fs.String("before", "", "only messages sent before `DATE` (2006-01-02: before that day starts)")
	limit := fs.Int("limit", client.DefaultSearchLimit, "show at most `N` messages")
	pos, err := parse(fs, args, 0, -1)
	if err != nil {
		return err
	}
	q := client.SearchQuery{Text: strings.Join(pos, " "), From: strings.TrimPrefix(*from, "@"), Limit: *limit}
	if strings.TrimSpace(q.Text) == "" && q.From == "" && *in == "" && *after == "" && *before == "" {
		return usagef("search: give words to find, or --from, --in, --after or --before")
	}
	if *limit < 1 || *limit > client.MaxSearchLimit {
		return usagef("search: --limit %d: want 1 to %d", *limit, client.MaxSearchLimit)
	}
	if q.After, err = parseDate("--after", *after); err != nil {
		return err
	}
	if q.Before, err = parseDate("--before", *before); err != nil {
		return err
	}
	// Synced first, so that what the server holds for this device is
	// found too; offline, what the profile holds.
	s, err := e.openSyncedOrOffline(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	if *in != "" {
		cv, err := s.resolveConv(ctx, *in)
		if err != nil {
			return err
		}
		q.In = cv.ID
	}
	return s.printSearch(ctx, q, "no messages found")
}

// parseDate parses a --after or --before value: a date (local midnight)
// or an RFC 3339 time; "" is the zero time.
func parseDate(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", v, time.Local); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usagef("search: %s %q: want a date (2006-01-02) or an RFC 3339 time (2006-01-02T15:04:05Z)", flag, v)
	}
	return t, nil
}

// printSearch runs a search and prints the messages found, newest first,
// each with the title of its conversation; none says so.
func (s *session) printSearch(ctx context.Context, q client.SearchQuery, none string) error {
	ms, err := s.api.Search(ctx, q)
	if err != nil {
		return err
	}
	self := s.self()
	titles := map[protocol.ConversationID]string{}
	if convs, err := s.api.Conversations(ctx); err == nil {
		for i := range convs {
			titles[convs[i].ID] = title(&convs[i], self)
		}
	}
	titleOf := func(id protocol.ConversationID) string {
		if t, ok := titles[id]; ok {
			return t
		}
		return fmt.Sprint(id)
	}
	if s.e.json {
		out := struct {
			Results []searchResultJSON `json:"results"`
		}{[]searchResultJSON{}}
		for _, m := range ms {
			out.Results = append(out.Results, searchResultJSON{ConversationTitle: titleOf(m.Conversation), Message: toMessageJSON(m)})
		}
		return writeJSON(s.e.stdout, out)
	}
	if len(ms) == 0 {
		fmt.Fprintln(s.e.stdout, none)
		return nil
	}
	for _, m := range ms {
		fmt.Fprintf(s.e.stdout, "[%s] %s\n", printable(titleOf(m.Conversation)), messageLine(m))
	}
	return nil
}

func cmdMute(ctx context.Context, e *env, args []string) error {
	fs := e.flags("mute", "CONV [--off]")
	off := fs.Bool("off", false, "unmute")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	s, err := e.open(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	cv, err := s.resolveConv(ctx, pos[0])
	if err != nil {
		return err
	}
	if err := s.api.SetMuted(ctx, cv.ID, !*off); err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, struct {
			Conversation int64 `json:"conversation"`
			Muted        bool  `json:"muted"`
		}{int64(cv.ID), !*off})
	}
	state := "muted"
	if *off {
		state = "unmuted"
	}
	fmt.Fprintf(e.stdout, "%s %s (conversation %d)", state, title(cv, s.self()), cv.ID)
	if !*off {
		fmt.Fprint(e.stdout, ": parley listen prints only the messages that mention you")
	}
	fmt.Fprintln(e.stdout)
	return nil
}
