package daemonapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/protocol"
)

// method is one method of the API: it decodes its params and calls the
// client.
type method func(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error)

// methods are the API's methods by name (docs/daemon.md).
var methods map[string]method

func init() {
	methods = map[string]method{
		"whoami":          whoami,
		"conversations":   conversations,
		"conversation":    conversation,
		"history":         history,
		"messages":        messages,
		"members":         members,
		"send":            send,
		"sync":            syncMethod,
		"mark_read":       markRead,
		"mark_read_up_to": markReadUpTo,
		"mark_shown":      markShown,
		"send_typing":     sendTyping,
		"unseen":          unseen,
		"subscribe":       subscribe,
	}
}

// call runs the method of a request.
func (s *Server) call(ctx context.Context, c *conn, req *Request) (any, error) {
	m, ok := methods[req.Method]
	if !ok {
		return nil, &Error{Code: CodeMethodNotFound, Message: fmt.Sprintf("method not found: %q", req.Method)}
	}
	if req.ID != nil {
		// Methods that add many users report how far they came.
		id := req.ID
		ctx = client.WithProgress(ctx, func(p client.Progress) {
			params, err := json.Marshal(NewProgress(id, p))
			if err != nil {
				return
			}
			c.write(&Notification{JSONRPC: "2.0", Method: "progress", Params: params})
		})
	}
	return m(ctx, s, c, req.Params)
}

// decode decodes params into v, refusing unknown fields and positional
// params; absent params decode as {}.
func decode(params json.RawMessage, v any) error {
	params = bytes.TrimSpace(params)
	if len(params) == 0 || bytes.Equal(params, []byte("null")) {
		params = []byte("{}")
	}
	if params[0] != '{' {
		return invalidParams("params must be an object")
	}
	d := json.NewDecoder(bytes.NewReader(params))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return invalidParams("%v", err)
	}
	return nil
}

// conversationID checks a conversation param.
func conversationID(id int64) (protocol.ConversationID, error) {
	if id <= 0 {
		return 0, invalidParams("conversation: want a conversation id (a positive number)")
	}
	return protocol.ConversationID(id), nil
}

// self is the profile's user name.
func (s *Server) self() string {
	if a, err := s.c.Whoami(); err == nil {
		return a.User
	}
	return ""
}

func whoami(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	if err := decode(params, &struct{}{}); err != nil {
		return nil, err
	}
	a, err := s.c.Whoami()
	if err != nil {
		return nil, err
	}
	return NewAccount(a, s.dir), nil
}

func conversations(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	if err := decode(params, &struct{}{}); err != nil {
		return nil, err
	}
	convs, err := s.c.Conversations(ctx)
	if err != nil {
		return nil, err
	}
	self := s.self()
	out := ConversationsResult{Conversations: []*Conversation{}}
	for i := range convs {
		out.Conversations = append(out.Conversations, NewConversation(&convs[i], self, convs[i].Unread))
	}
	return out, nil
}

func conversation(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	id, err := decodeConversation(params)
	if err != nil {
		return nil, err
	}
	cv, err := s.c.Conversation(ctx, id)
	if err != nil {
		return nil, err
	}
	return NewConversation(cv, s.self(), cv.Unread), nil
}

// decodeConversation decodes the params of a method that names one
// conversation (ConversationParams).
func decodeConversation(params json.RawMessage) (protocol.ConversationID, error) {
	var p ConversationParams
	if err := decode(params, &p); err != nil {
		return 0, err
	}
	return conversationID(p.Conversation)
}

// conversationOp runs a method that names one conversation and answers
// OK: op is the client's method.
func conversationOp(ctx context.Context, params json.RawMessage, op func(context.Context, protocol.ConversationID) error) (any, error) {
	id, err := decodeConversation(params)
	if err != nil {
		return nil, err
	}
	if err := op(ctx, id); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

// entries is history and messages: list with the client's method.
func entries(ctx context.Context, params json.RawMessage, list func(context.Context, protocol.ConversationID, int64, int) ([]*client.Message, error)) (any, error) {
	var p HistoryParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	id, err := conversationID(p.Conversation)
	if err != nil {
		return nil, err
	}
	if p.After < 0 || p.Last < 0 {
		return nil, invalidParams("after and last must not be negative")
	}
	ms, err := list(ctx, id, p.After, p.Last)
	if err != nil {
		return nil, err
	}
	out := MessagesResult{Messages: []*Message{}}
	for _, m := range ms {
		out.Messages = append(out.Messages, NewMessage(m))
	}
	return out, nil
}

func history(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return entries(ctx, params, s.c.History)
}

func messages(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return entries(ctx, params, s.c.Messages)
}

func members(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	id, err := decodeConversation(params)
	if err != nil {
		return nil, err
	}
	ms, err := s.c.Members(ctx, id)
	if err != nil {
		return nil, err
	}
	out := MembersResult{Members: []Member{}}
	for _, m := range ms {
		out.Members = append(out.Members, NewMember(m))
	}
	return out, nil
}

func send(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p SendParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	id, err := conversationID(p.Conversation)
	if err != nil {
		return nil, err
	}
	if p.Text == "" {
		return nil, invalidParams("text: the message is empty")
	}
	var opts client.SendOptions
	if p.Mentions != nil {
		opts.Mentions = append([]string{}, *p.Mentions...)
	}
	if p.ReplyTo != "" {
		if opts.ReplyTo, err = content.ParseMessageID(p.ReplyTo); err != nil {
			return nil, invalidParams("reply_to %q: want a full message id (32 hex digits)", p.ReplyTo)
		}
	}
	return sendResult(s.c.Send(ctx, id, p.Text, opts))
}

func syncMethod(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	if err := decode(params, &struct{}{}); err != nil {
		return nil, err
	}
	if err := s.c.Sync(ctx); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

func markRead(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return conversationOp(ctx, params, s.c.MarkRead)
}

// sendTyping tells the conversation's other members that this user
// started or stopped typing (best effort; nothing when typing indicators
// are off).
func sendTyping(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p TypingParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	id, err := conversationID(p.Conversation)
	if err != nil {
		return nil, err
	}
	if err := s.c.SendTyping(ctx, id, p.Typing); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

// marked is mark_read_up_to and mark_shown: a position in a history.
func marked(ctx context.Context, params json.RawMessage, mark func(context.Context, protocol.ConversationID, int64) error) (any, error) {
	var p MarkParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	id, err := conversationID(p.Conversation)
	if err != nil {
		return nil, err
	}
	if p.Seq <= 0 {
		return nil, invalidParams("seq: want a position in the history (a positive number)")
	}
	if err := mark(ctx, id, p.Seq); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

func markReadUpTo(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return marked(ctx, params, s.c.MarkReadUpTo)
}

func markShown(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return marked(ctx, params, s.c.MarkShown)
}

func unseen(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	if err := decode(params, &struct{}{}); err != nil {
		return nil, err
	}
	evs, err := s.c.Unseen(ctx)
	if err != nil {
		return nil, err
	}
	out := EventsResult{Events: []*Event{}}
	for _, ev := range evs {
		out.Events = append(out.Events, NewEvent(ev))
	}
	return out, nil
}

// subscribe starts the "event" notifications on this connection; the
// events of the client from now on follow (unseen lists the messages
// stored before and not shown yet).
func subscribe(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	if err := decode(params, &struct{}{}); err != nil {
		return nil, err
	}
	s.subscribe(ctx, c)
	return OK{true}, nil
}
