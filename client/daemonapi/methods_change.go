package daemonapi

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/protocol"
)

func init() {
	for name, m := range map[string]method{
		"new_direct":  newDirect,
		"new_group":   newGroup,
		"new_channel": newChannel,
		"add":         addMember,
		"remove":      removeMember,
		"leave":       leave,
		"set_name":    setName,
		"set_topic":   setTopic,
		"react":       react,
		"edit":        edit,
		"delete":      deleteMessage,
		"recreate":    recreate,
	} {
		methods[name] = m
	}
}

// user checks a user name param.
func user(name string) (string, error) {
	if name = strings.TrimPrefix(name, "@"); name == "" {
		return "", invalidParams("user: want a user name")
	}
	return name, nil
}

func newDirect(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p NewDirectParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	u, err := user(p.User)
	if err != nil {
		return nil, err
	}
	conv, err := s.c.NewDirect(ctx, u)
	if err != nil {
		return nil, err
	}
	return NewConversationResult{Conversation: int64(conv)}, nil
}

func newGroup(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return create(ctx, params, s.c.NewGroup)
}

// newChannel takes the params of new_group.
func newChannel(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return create(ctx, params, s.c.NewChannel)
}

// create is new_group and new_channel: a title and members.
func create(ctx context.Context, params json.RawMessage, do func(context.Context, string, ...string) (protocol.ConversationID, error)) (any, error) {
	var p NewGroupParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	var users []string
	for _, name := range p.Members {
		u, err := user(name)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	conv, err := do(ctx, p.Title, users...)
	if err != nil {
		return nil, err
	}
	return NewConversationResult{Conversation: int64(conv)}, nil
}

// membership is add and remove: a user of a conversation.
func membership(ctx context.Context, params json.RawMessage, do func(context.Context, protocol.ConversationID, string) error) (any, error) {
	var p UserParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	if len(p.Users) > 0 {
		return nil, invalidParams("users: this method takes one user")
	}
	id, err := conversationID(p.Conversation)
	if err != nil {
		return nil, err
	}
	u, err := user(p.User)
	if err != nil {
		return nil, err
	}
	if err := do(ctx, id, u); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

// addMember adds a user, or with users several (client.AddUsers).
func addMember(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p UserParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	if len(p.Users) == 0 {
		return membership(ctx, params, s.c.Add)
	}
	if p.User != "" {
		return nil, invalidParams("user and users: give one of them")
	}
	id, err := conversationID(p.Conversation)
	if err != nil {
		return nil, err
	}
	users := make([]string, len(p.Users))
	for i, name := range p.Users {
		if users[i], err = user(name); err != nil {
			return nil, err
		}
	}
	if err := s.c.AddUsers(ctx, id, users...); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

func removeMember(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return membership(ctx, params, s.c.Remove)
}

func leave(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return conversationOp(ctx, params, s.c.Leave)
}

// metadata is set_name and set_topic.
func metadata(ctx context.Context, params json.RawMessage, set func(context.Context, protocol.ConversationID, string) error) (any, error) {
	var p TextParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	id, err := conversationID(p.Conversation)
	if err != nil {
		return nil, err
	}
	if err := set(ctx, id, p.Text); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

func setName(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return metadata(ctx, params, s.c.SetName)
}

func setTopic(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return metadata(ctx, params, s.c.SetTopic)
}

// target decodes the params of react, edit and delete.
func target(params json.RawMessage) (TargetParams, protocol.ConversationID, content.MessageID, error) {
	var p TargetParams
	if err := decode(params, &p); err != nil {
		return p, 0, content.MessageID{}, err
	}
	conv, err := conversationID(p.Conversation)
	if err != nil {
		return p, 0, content.MessageID{}, err
	}
	id, err := content.ParseMessageID(p.Message)
	if err != nil {
		return p, 0, content.MessageID{}, invalidParams("message %q: want a full message id (32 hex digits)", p.Message)
	}
	return p, conv, id, nil
}

func react(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	p, conv, id, err := target(params)
	if err != nil {
		return nil, err
	}
	if p.Emoji == "" || p.Text != "" {
		return nil, invalidParams("react: want an emoji (and no text)")
	}
	if err := s.c.React(ctx, conv, id, p.Emoji, p.Remove); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

func edit(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	p, conv, id, err := target(params)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(p.Text) == "" || p.Emoji != "" || p.Remove {
		return nil, invalidParams("edit: want the new text (delete deletes a message)")
	}
	if err := s.c.Edit(ctx, conv, id, p.Text); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

func deleteMessage(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	p, conv, id, err := target(params)
	if err != nil {
		return nil, err
	}
	if p.Text != "" || p.Emoji != "" || p.Remove {
		return nil, invalidParams("delete: want only a conversation and a message")
	}
	if err := s.c.Delete(ctx, conv, id); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

// recreate starts a new conversation with the members of an unsafe one.
func recreate(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	id, err := decodeConversation(params)
	if err != nil {
		return nil, err
	}
	conv, err := s.c.Recreate(ctx, id)
	if err != nil {
		return nil, err
	}
	return NewConversationResult{Conversation: int64(conv)}, nil
}
