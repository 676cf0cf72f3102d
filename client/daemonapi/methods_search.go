package daemonapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

func init() {
	for name, m := range map[string]method{
		"search":    search,
		"set_muted": setMuted,
	} {
		methods[name] = m
	}
}

// SearchParams are the params of search (client.SearchQuery): every
// field set narrows the result. After and Before are RFC 3339 times.
type SearchParams struct {
	Text         string     `json:"text,omitempty"`
	From         string     `json:"from,omitempty"`
	Conversation int64      `json:"conversation,omitempty"`
	After        *time.Time `json:"after,omitempty"`
	Before       *time.Time `json:"before,omitempty"`
	MentionsMe   bool       `json:"mentions_me,omitempty"`
	Limit        int        `json:"limit,omitempty"`
}

// MutedParams are the params of set_muted.
type MutedParams struct {
	Conversation int64 `json:"conversation"`
	Muted        bool  `json:"muted"`
}

// search finds messages across the profile's conversations, newest
// first. The daemon builds the index in the background when it starts,
// so that the first search does not wait for it.
func search(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p SearchParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	q := client.SearchQuery{Text: p.Text, From: p.From, MentionsMe: p.MentionsMe, Limit: p.Limit}
	if p.Conversation != 0 {
		id, err := conversationID(p.Conversation)
		if err != nil {
			return nil, err
		}
		q.In = id
	}
	if p.After != nil {
		q.After = *p.After
	}
	if p.Before != nil {
		q.Before = *p.Before
	}
	if p.Limit < 0 || p.Limit > client.MaxSearchLimit {
		return nil, invalidParams("limit: want 0 (the default, %d) to %d", client.DefaultSearchLimit, client.MaxSearchLimit)
	}
	ms, err := s.c.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	out := MessagesResult{Messages: []*Message{}}
	for _, m := range ms {
		out.Messages = append(out.Messages, NewMessage(m))
	}
	return out, nil
}

func setMuted(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p MutedParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	id, err := conversationID(p.Conversation)
	if err != nil {
		return nil, err
	}
	if err := s.c.SetMuted(ctx, id, p.Muted); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

// Search finds messages across the profile's conversations (client.Client.Search).
func (c *Client) Search(ctx context.Context, q client.SearchQuery) ([]*client.Message, error) {
	p := SearchParams{Text: q.Text, From: q.From, Conversation: int64(q.In), MentionsMe: q.MentionsMe, Limit: q.Limit}
	if !q.After.IsZero() {
		p.After = &q.After
	}
	if !q.Before.IsZero() {
		p.Before = &q.Before
	}
	var r MessagesResult
	if err := c.Call(ctx, "search", p, &r); err != nil {
		return nil, err
	}
	return sdkMessages("search", r.Messages)
}

// SetMuted mutes or unmutes a conversation on this device.
func (c *Client) SetMuted(ctx context.Context, conv protocol.ConversationID, muted bool) error {
	return c.Call(ctx, "set_muted", MutedParams{Conversation: int64(conv), Muted: muted}, nil)
}
