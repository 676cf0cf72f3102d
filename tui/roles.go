package tui

import (
	"context"
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/protocol"
)

// The commands of roles and channels: /role, /policy and /channel. The
// member panel marks the admins of a conversation that has a policy.

// policyMsg is the policy of a conversation (nil: none, everyone equal).
type policyMsg struct {
	conv   protocol.ConversationID
	policy *protocol.Policy
	err    error
}

// loadPolicy loads the policy of conversation id.
func (m *Model) loadPolicy(id protocol.ConversationID) tea.Cmd {
	b, ctx := m.b, m.ctx
	return func() tea.Msg {
		p, err := b.Policy(ctx, id)
		return policyMsg{id, p, err}
	}
}

// applyPolicy keeps the policy of the open conversation for the member
// panel; show puts it in the status line (/policy).
func (m *Model) applyPolicy(msg policyMsg, show bool) {
	if msg.err != nil {
		m.setError("policy: %v", msg.err)
		return
	}
	if m.conv == nil || m.conv.id != msg.conv {
		return
	}
	m.conv.policy, m.conv.policyKnown = msg.policy, true
	if show {
		m.setStatus("%s", policyText(msg.policy))
	}
}

// policyText describes a policy in one line.
func policyText(p *protocol.Policy) string {
	if p == nil {
		return "no roles: every member may do everything"
	}
	return p.String()
}

// adminMark marks user in the member panel when the open conversation's
// policy lists them as an admin ("" otherwise, and without a policy).
func (m *Model) adminMark(user string) string {
	if m.conv == nil || m.conv.policy == nil {
		return ""
	}
	for _, a := range m.conv.policy.Admins {
		if a == user {
			return "  admin"
		}
	}
	return ""
}

func cmdRole(m *Model, args []string, _ string) tea.Cmd {
	user, role := strings.TrimPrefix(args[0], "@"), args[1]
	if role != "admin" && role != "member" {
		m.setError("usage: /role USER admin|member")
		return nil
	}
	return m.convCall(fmt.Sprintf("%s is now %s", user, role), func(ctx context.Context, conv protocol.ConversationID) error {
		return wrapErr("role "+user, m.b.SetRole(ctx, conv, user, role == "admin"))
	})
}

func cmdPolicy(m *Model, _ []string, _ string) tea.Cmd {
	b, ctx, id := m.b, m.ctx, m.conv.id
	return func() tea.Msg {
		p, err := b.Policy(ctx, id)
		return shownPolicyMsg{policyMsg{id, p, err}}
	}
}

// shownPolicyMsg is a policy that /policy asked for, to show.
type shownPolicyMsg struct{ policyMsg }

func cmdChannel(m *Model, args []string, _ string) tea.Cmd {
	title, users := args[0], args[1:]
	return m.opened(func(ctx context.Context) (protocol.ConversationID, error) {
		id, err := m.b.NewChannel(ctx, title, users...)
		if err != nil {
			return 0, fmt.Errorf("channel %s: %w", title, err)
		}
		return id, nil
	})
}
