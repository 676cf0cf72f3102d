package client

import (
	"context"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// Channels. A channel is a group conversation whose policy reserves
// posting to admins (protocol.ActionPost = admins). The server cannot
// tell a post from a reaction (both are encrypted application messages),
// so members enforce it: each client refuses to send a post where its
// user may not (postAllowedLocked), and drops, without showing or
// counting it, a post it receives from a member who may not
// (postRefused). What a post is:
//
//   - text, attachments and edits need the post rule;
//   - reactions are open to every member and shown to every member, as
//     channels show reaction counts;
//   - deleting one's own message is always allowed (a demoted admin may
//     take back what they posted);
//   - read receipts are sent and applied only by those who may post, so
//     a channel's thousands of readers do not each send one per read;
//   - typing indicators likewise;
//   - renames and topic changes follow their own rules (metadataAllowed).
//
// docs/protocol.md, "Roles and policy" (Channels), and docs/content.md.

// channelPolicy returns the policy of a new channel whose creator is
// user: its only admin, and every action reserved to admins.
func channelPolicy(user string) *protocol.Policy {
	p := &protocol.Policy{Admins: []string{user}}
	for _, a := range protocol.Actions() {
		p.Rules[a-1] = protocol.WhoAdmins
	}
	return p
}

// isChannel reports whether a policy makes its conversation a channel.
func isChannel(p *protocol.Policy) bool {
	return p != nil && p.Rule(protocol.ActionPost) == protocol.WhoAdmins
}

// NewChannel creates a channel named title with the given members (all
// their devices, and this user's other devices): a group conversation
// where only admins post, add, remove, rename, change the topic and
// change roles, this user its only admin. Members read and react; see
// SetPolicy to relax a rule.
func (c *Client) NewChannel(ctx context.Context, title string, members ...string) (protocol.ConversationID, error) {
	if c.id == nil {
		return 0, ErrNotRegistered
	}
	conv, err := c.create(ctx, false, title, members, channelPolicy(c.id.User))
	if err != nil {
		return 0, fmt.Errorf("client: new channel %q: %w", title, err)
	}
	return conv, nil
}

// postKind reports whether content of kind k is a post, which the post
// rule governs, and whether it is sent and applied only by those who may
// post (read receipts, typing).
func postKind(k content.Kind) (post, postersOnly bool) {
	switch k {
	case content.KindText, content.KindAttachment, content.KindEdit:
		return true, false
	case content.KindReadReceipt, content.KindTyping:
		return false, true
	}
	return false, false
}

// mayPost reports whether user, a member of g, may post under g's
// policy. It lists the members' users only when user is not a listed
// admin (the rule for admins who left needs them), so a channel's
// admins post without a pass over thousands of leaves.
func mayPost(g *mls.Group, user, server string) bool {
	p, err := policyOf(g.Extensions())
	if err != nil {
		return false
	}
	if !isChannel(p) {
		return true
	}
	if _, listed := slices.BinarySearch(p.Admins, user); listed {
		return true // user is a member: the group has an admin among its members
	}
	return p.IsAdmin(user, leafUsers(g.Members(), server))
}

// postRefused reports whether content m from user must be dropped in
// conv: a post, read receipt or typing indicator in a channel by a
// member who may not post. c.mu is held.
func (c *Client) postRefused(conv protocol.ConversationID, m *content.Message, user string) bool {
	post, postersOnly := postKind(m.Kind)
	if !post && !postersOnly {
		return false
	}
	g := c.groups[conv]
	return g != nil && !mayPost(g, user, c.serverName)
}

// checkPostLocked refuses to send content m where this user may not
// post: a post returns a *protocol.PolicyError (matching
// protocol.ErrPolicyViolation). c.mu is held.
func (c *Client) checkPostLocked(conv protocol.ConversationID, m *content.Message) error {
	if c.skipPostCheck {
		return nil
	}
	if post, _ := postKind(m.Kind); !post || !c.postRefused(conv, m, c.id.User) {
		return nil
	}
	return &protocol.PolicyError{User: c.id.User, Reason: fmt.Sprintf("%s may not post in this channel: only admins may (post=admins)", c.id.User)}
}

// channelRole returns whether a conversation of g is a channel and
// whether user (this device's, sorted members the users of g) is admin
// there. It reads the leftmost leaf only when no listed admin is a
// member.
func channelRole(g *mls.Group, user string, members []string, server string) (channel, admin bool) {
	p, err := policyOf(g.Extensions())
	if err != nil || p == nil {
		return false, err == nil
	}
	for _, a := range p.Admins {
		if _, ok := slices.BinarySearch(members, a); ok {
			_, listed := slices.BinarySearch(p.Admins, user)
			return isChannel(p), listed
		}
	}
	first := ""
	if ms := g.Members(); len(ms) > 0 {
		first = userAt(g, ms[0].Leaf, server)
	}
	return isChannel(p), first == user
}
