package daemonapi

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/parley-chat/parley/protocol"
)

func init() {
	methods["policy"] = policy
	methods["set_role"] = setRole
	methods["set_policy"] = setPolicy
	methods["set_timer"] = setTimer
}

// Policy is a conversation's roles and rules (protocol.Policy): the
// admins and, per action ("add", "remove", "rename", "topic", "roles",
// "post", "timer"), who may do it ("admins" or "members"), and the
// disappearing-message timer in seconds (0 = off).
type Policy struct {
	Admins []string          `json:"admins"`
	Rules  map[string]string `json:"rules"`
	Timer  int64             `json:"timer"`
}

// NewPolicy converts a policy; nil stays nil.
func NewPolicy(p *protocol.Policy) *Policy {
	if p == nil {
		return nil
	}
	out := &Policy{Admins: append([]string{}, p.Admins...), Rules: map[string]string{}, Timer: int64(p.Timer / time.Second)}
	for _, a := range protocol.Actions() {
		out.Rules[a.String()] = p.Rule(a).String()
	}
	return out
}

// SDK converts the policy back to protocol.Policy.
func (p *Policy) SDK() (*protocol.Policy, error) {
	if p == nil {
		return nil, nil
	}
	out := &protocol.Policy{Admins: append([]string{}, p.Admins...), Timer: time.Duration(p.Timer) * time.Second}
	sort.Strings(out.Admins)
	rules, err := ParseRules(p.Rules)
	if err != nil {
		return nil, err
	}
	for a, w := range rules {
		out.Rules[a-1] = w
	}
	return out, nil
}

// ParseRules converts rules by name ("add": "admins") to the protocol's.
func ParseRules(rules map[string]string) (map[protocol.Action]protocol.Who, error) {
	out := map[protocol.Action]protocol.Who{}
	for name, who := range rules {
		a, err := protocol.ParseAction(name)
		if err != nil {
			return nil, invalidParams("%v", err)
		}
		w, err := protocol.ParseWho(who)
		if err != nil {
			return nil, invalidParams("%v", err)
		}
		out[a] = w
	}
	return out, nil
}

type (
	// PolicyResult is a conversation's policy; null for a conversation
	// without one (1:1, or created before policies: everyone may do
	// everything).
	PolicyResult struct {
		Policy *Policy `json:"policy"`
	}
	// RoleParams makes User of a conversation "admin" or "member".
	RoleParams struct {
		Conversation int64  `json:"conversation"`
		User         string `json:"user"`
		Role         string `json:"role"`
	}
	// PolicyParams changes who may do the actions named in Rules.
	PolicyParams struct {
		Conversation int64             `json:"conversation"`
		Rules        map[string]string `json:"rules"`
	}
	// TimerParams sets a conversation's disappearing-message timer, in
	// seconds: 0 turns it off, otherwise 300 to 2419200.
	TimerParams struct {
		Conversation int64 `json:"conversation"`
		Timer        int64 `json:"timer"`
	}
)

func setTimer(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p TimerParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	id, err := conversationID(p.Conversation)
	if err != nil {
		return nil, err
	}
	if p.Timer < 0 || p.Timer > int64(protocol.MaxTimer/time.Second) {
		return nil, invalidParams("timer %d: want 0 (off) or 300 to 2419200 seconds", p.Timer)
	}
	d := time.Duration(p.Timer) * time.Second
	if err := protocol.CheckTimer(d); err != nil {
		return nil, invalidParams("%v", err)
	}
	if err := s.c.SetTimer(ctx, id, d); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

// SetTimer sets a conversation's disappearing-message timer (0: off).
func (c *Client) SetTimer(ctx context.Context, conv protocol.ConversationID, d time.Duration) error {
	return c.Call(ctx, "set_timer", TimerParams{Conversation: int64(conv), Timer: int64(d / time.Second)}, nil)
}

func policy(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	id, err := decodeConversation(params)
	if err != nil {
		return nil, err
	}
	p, err := s.c.Policy(ctx, id)
	if err != nil {
		return nil, err
	}
	return PolicyResult{Policy: NewPolicy(p)}, nil
}

func setRole(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p RoleParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	id, err := conversationID(p.Conversation)
	if err != nil {
		return nil, err
	}
	u, err := user(p.User)
	if err != nil {
		return nil, err
	}
	if p.Role != "admin" && p.Role != "member" {
		return nil, invalidParams("role %q: want admin or member", p.Role)
	}
	if err := s.c.SetRole(ctx, id, u, p.Role == "admin"); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

func setPolicy(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p PolicyParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	id, err := conversationID(p.Conversation)
	if err != nil {
		return nil, err
	}
	rules, err := ParseRules(p.Rules)
	if err != nil {
		return nil, err
	}
	if len(rules) == 0 {
		return nil, invalidParams("set_policy: want at least one rule")
	}
	if err := s.c.SetPolicy(ctx, id, rules); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

// Policy returns a conversation's policy, nil when it has none.
func (c *Client) Policy(ctx context.Context, conv protocol.ConversationID) (*protocol.Policy, error) {
	var r PolicyResult
	if err := c.Call(ctx, "policy", ConversationParams{Conversation: int64(conv)}, &r); err != nil {
		return nil, err
	}
	return r.Policy.SDK()
}

// SetRole makes user an admin of a conversation, or a plain member.
func (c *Client) SetRole(ctx context.Context, conv protocol.ConversationID, user string, admin bool) error {
	role := "member"
	if admin {
		role = "admin"
	}
	return c.Call(ctx, "set_role", RoleParams{Conversation: int64(conv), User: user, Role: role}, nil)
}

// SetPolicy changes who may do the given actions in a conversation.
func (c *Client) SetPolicy(ctx context.Context, conv protocol.ConversationID, rules map[protocol.Action]protocol.Who) error {
	byName := map[string]string{}
	for a, w := range rules {
		byName[a.String()] = w.String()
	}
	return c.Call(ctx, "set_policy", PolicyParams{Conversation: int64(conv), Rules: byName}, nil)
}
