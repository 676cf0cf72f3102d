package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// Membership rules. The server delivers every commit, and an honest server
// checks who may join; but a server that skips its checks could add an
// account it controls to any conversation by external commit (every
// GroupInfo carries external_pub, RFC 9420 §12.4.3.2). So every member's
// client judges every membership change itself, before it merges the
// commit, and rejects one it does not allow: it stays in the old epoch,
// whose secrets the joiner never had, raises an alarm and stops sending in
// the conversation. docs/protocol.md, "Membership rules", states the rules;
// checkCommit and checkProposal enforce them.

// ErrConversationUnsafe means the server accepted a membership change of
// the conversation that this device rejected (see Alarm): nothing more is
// sent in it. Errors of refused operations are *UnsafeError.
var ErrConversationUnsafe = errors.New("conversation unsafe")

// Alarm describes a membership change that the server accepted and this
// device rejected, or (Unrecoverable) why this device cannot follow the
// conversation any more: a conversation with an alarm is unsafe. It is
// kept in the store and shown in Conversation.Unsafe.
type Alarm struct {
	// User and Device name whom the change would have added, or, with
	// Unrecoverable, who sent the commit this device could not process;
	// when known.
	User   string            `json:"user,omitempty"`
	Device protocol.DeviceID `json:"device,omitempty"`
	// Reason says which rule the change broke.
	Reason string `json:"reason"`
	// Seq is the server's entry that carried the change; Epoch is the
	// epoch this device stays in.
	Seq   uint64 `json:"seq"`
	Epoch uint64 `json:"epoch"`
	// Time is when this device rejected it.
	Time time.Time `json:"time"`
	// Unrecoverable is set when the alarm is not about a membership
	// change but about a conversation this device cannot follow any
	// more: it could not process a commit (sent by User's Device, when
	// known) and could not rejoin by external commit (docs/protocol.md,
	// "Recovery from bad commits"). The way forward is the same:
	// recreate it.
	Unrecoverable bool `json:"unrecoverable,omitempty"`
	// Policy is set when the change broke the conversation's roles and
	// policy (docs/protocol.md, "Roles and policy"): User is who made it.
	Policy bool `json:"policy,omitempty"`
}

// who names the user the alarm is about, for messages.
func (a *Alarm) who() string {
	switch {
	case a.User != "" && a.Device != "":
		return fmt.Sprintf("%s (device %s)", a.User, a.Device)
	case a.User != "":
		return a.User
	}
	return "a device"
}

// UnsafeError is the error of an operation refused in an unsafe
// conversation, and of the EventConversationUnsafe that raised the alarm.
// It matches ErrConversationUnsafe.
type UnsafeError struct {
	Conversation protocol.ConversationID
	Alarm        Alarm
}

// Error says what happened and what to do.
func (e *UnsafeError) Error() string {
	if e.Alarm.Unrecoverable {
		return fmt.Sprintf("conversation %d cannot be followed any more: %s; this device sends nothing more in it: recreate it with the same members",
			e.Conversation, e.Alarm.Reason)
	}
	if e.Alarm.Policy {
		return fmt.Sprintf("conversation %d is unsafe: the server accepted a change that its policy forbids (%s); this device rejected the change and sends nothing more in it: recreate it with the same members",
			e.Conversation, e.Alarm.Reason)
	}
	return fmt.Sprintf("conversation %d is unsafe: the server tried to add %s to it (%s); this device rejected the change and sends nothing more in it: recreate it with the same members",
		e.Conversation, e.Alarm.who(), e.Alarm.Reason)
}

// Is matches ErrConversationUnsafe.
func (e *UnsafeError) Is(target error) bool { return target == ErrConversationUnsafe }

// unsafeSetting names the setting holding the Alarm of a conversation.
func unsafeSetting(conv protocol.ConversationID) string { return fmt.Sprintf("unsafe/%d", conv) }

// loadAlarms reads the alarms of the conversations into c.unsafe (while
// the Client is being opened).
func (c *Client) loadAlarms(tx store.Tx, convs []store.Conversation) error {
	for _, cv := range convs {
		b, err := tx.Setting(unsafeSetting(cv.ID))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("client: open: read alarm of conversation %d: %w", cv.ID, err)
		}
		var a Alarm
		if err := json.Unmarshal(b, &a); err != nil {
			// Still unsafe: a damaged record must not make it safe.
			a = Alarm{Reason: fmt.Sprintf("stored alarm unreadable: %v", err)}
		}
		c.unsafe[cv.ID] = &a
	}
	return nil
}

// putAlarm stores the alarm of a conversation.
func putAlarm(tx store.Tx, conv protocol.ConversationID, a *Alarm) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return tx.SetSetting(unsafeSetting(conv), b)
}

// unsafeError returns the error for operations in conv if it is unsafe,
// else nil. c.mu is held.
func (c *Client) unsafeError(conv protocol.ConversationID) error {
	if a := c.unsafe[conv]; a != nil {
		return &UnsafeError{Conversation: conv, Alarm: *a}
	}
	return nil
}

// isDirect reports whether the store marks conv as a 1:1 conversation
// (content.Message.Direct, which travels inside MLS).
func (c *Client) isDirect(ctx context.Context, conv protocol.ConversationID) (bool, error) {
	var direct bool
	err := c.st.View(ctx, func(tx store.Tx) error {
		cv, err := tx.Conversation(conv)
		if err != nil {
			return err
		}
		direct = cv.Direct
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("read conversation %d: %w", conv, err)
	}
	return direct, nil
}

// maxDirectUsers is how many users a 1:1 conversation may have.
const maxDirectUsers = 2

// userSet returns the users of members with a credential of the server
// and whether each device is present.
func userSet(members []mls.Member, server string) (users map[string]bool, devices map[protocol.DeviceID]bool) {
	users, devices = map[string]bool{}, map[protocol.DeviceID]bool{}
	for _, m := range members {
		if cr, err := serverCredentialOf(m.Credential, server); err == nil {
			users[cr.User()] = true
			devices[cr.Device()] = true
		}
	}
	return users, devices
}

// checkCommit applies the membership rules to a commit staged in g (still
// in the epoch before it), returning the alarm if the commit must be
// rejected. Credentials were checked already (validateCredential): every
// added or replaced leaf carries a device certificate that verifies under
// the pinned identity key of the user it names, on our server. Here too a
// leaf counts only with a credential of our server: users of another
// server with the same name are other users.
//
//   - An external commit (RFC 9420 §12.4.3.2) adds exactly its joiner,
//     and is accepted only if (a) it resynchronizes a member device: it
//     removes exactly one leaf, which belongs to the joiner's user and
//     device; or (b) the joiner is a new device of a user who is a member
//     already (device linking). (c) Joining through a group invite is not
//     possible yet: any other external join is rejected.
//   - A member's commit may add anyone (members add people), except that
//     a 1:1 conversation never has more than two users.
//   - A member's commit may remove any leaf: that is how members remove
//     devices their users revoked (see RevokeDevice).
//   - No commit adds a device whose revocation by its user this device
//     verified and kept.
func (c *Client) checkCommit(ctx context.Context, conv protocol.ConversationID, g *mls.Group, sc *mls.StagedCommit) (*Alarm, error) {
	if cr, err := c.revokedAmong(ctx, sc.Added); err != nil || cr != nil {
		if err != nil {
			return nil, err
		}
		return &Alarm{User: cr.User(), Device: cr.Device(), Reason: fmt.Sprintf("a commit adds device %s of %s, which %s revoked", cr.Device(), cr.User(), cr.User())}, nil
	}
	if a := checkPolicyCommit(g, sc, c.serverName); a != nil {
		return a, nil
	}
	users, devices := userSet(g.Members(), c.serverName)
	if sc.Committer.Type == mls.SenderNewMemberCommit {
		return checkExternalCommit(sc, c.serverName, users, devices), nil
	}
	if len(sc.Added) == 0 {
		return nil, nil
	}
	direct, err := c.isDirect(ctx, conv)
	if err != nil || !direct {
		return nil, err
	}
	after, first, err := usersAfter(g, c.serverName, sc.Removed, sc.Added)
	if err != nil {
		return &Alarm{Reason: err.Error()}, nil
	}
	if len(after) > maxDirectUsers {
		committer := fmt.Sprintf("leaf %d", sc.Committer.Leaf)
		if cr, err := memberCredentialOf(g, sc.Committer.Leaf); err == nil {
			committer = cr.User()
		}
		a := &Alarm{Reason: fmt.Sprintf("a commit by %s makes this 1:1 conversation one of %d users", committer, len(after))}
		if first != nil {
			a.User, a.Device = first.User(), first.Device()
		}
		return a, nil
	}
	return nil, nil
}

// usersAfter returns the users of g after a commit that removes and adds
// the given leaves, and the credential of the first added leaf whose user
// was not a member. Every added leaf must have a credential of the server.
func usersAfter(g *mls.Group, server string, removed, added []mls.Member) (map[string]bool, *Credential, error) {
	after := map[string]bool{}
	gone := map[mls.LeafIndex]bool{}
	for _, m := range removed {
		gone[m.Leaf] = true
	}
	for _, m := range g.Members() {
		if cr, err := serverCredentialOf(m.Credential, server); err == nil && !gone[m.Leaf] {
			after[cr.User()] = true
		}
	}
	var first *Credential
	for _, m := range added {
		cr, err := serverCredentialOf(m.Credential, server)
		if err != nil {
			return nil, nil, fmt.Errorf("a commit adds leaf %d without a Parley credential of this server: %v", m.Leaf, err)
		}
		if !after[cr.User()] && first == nil {
			first = cr
		}
		after[cr.User()] = true
	}
	return after, first, nil
}

// memberCredentialOf decodes the credential of the member at leaf.
func memberCredentialOf(g *mls.Group, leaf mls.LeafIndex) (*Credential, error) {
	m, ok := g.Member(leaf)
	if !ok {
		return nil, fmt.Errorf("leaf %d is not a member", leaf)
	}
	return credentialOf(m.Credential)
}

// checkExternalCommit applies rules (a) and (b) of checkCommit to an
// external commit, given the users and devices of the group before it
// and our server's name.
func checkExternalCommit(sc *mls.StagedCommit, server string, users map[string]bool, devices map[protocol.DeviceID]bool) *Alarm {
	var joiner *mls.Member
	for i := range sc.Added {
		if sc.Added[i].Leaf != sc.Committer.Leaf {
			return &Alarm{Reason: fmt.Sprintf("an external commit adds leaf %d besides its joiner", sc.Added[i].Leaf)}
		}
		joiner = &sc.Added[i]
	}
	if joiner == nil {
		return &Alarm{Reason: "an external commit without a joiner"}
	}
	cr, err := serverCredentialOf(joiner.Credential, server)
	if err != nil {
		return &Alarm{Reason: fmt.Sprintf("the joiner of an external commit has no Parley credential of this server: %v", err)}
	}
	a := &Alarm{User: cr.User(), Device: cr.Device()}
	switch {
	case len(sc.Removed) > 1:
		a.Reason = fmt.Sprintf("an external join by %s that removes %d members", cr.User(), len(sc.Removed))
		return a
	case len(sc.Removed) == 1:
		// (a) A resync replaces the joiner's own old leaf.
		old, err := serverCredentialOf(sc.Removed[0].Credential, server)
		if err != nil || old.User() != cr.User() || old.Device() != cr.Device() {
			a.Reason = fmt.Sprintf("an external join by %s that removes another device's leaf %d", cr.User(), sc.Removed[0].Leaf)
			return a
		}
		return nil
	case devices[cr.Device()]:
		a.Reason = fmt.Sprintf("an external join by device %s of %s, which is a member already, that does not replace its old leaf", cr.Device(), cr.User())
		return a
	case users[cr.User()]:
		// (b) A new device of a member user, certified by its identity
		// key (validateCredential checked it).
		return nil
	}
	// (c) would be a group invite; there are none yet.
	a.Reason = fmt.Sprintf("an external join by %s, who is not a member, without an invite", cr.User())
	return a
}

// proposalAdd is the Add proposal type (RFC 9420 §12.1.1).
const proposalAdd = 1

// checkProposal applies the membership rules to a received proposal: an
// Add is accepted only from a member (its adds are checked again with the
// commit that includes it). An Add by a new member (new_member_proposal,
// RFC 9420 §12.1.8) or an external sender is rejected: Parley's server
// accepts neither, and a device joins by external commit (checkCommit).
func checkProposal(p *mls.ProposalInfo) *Alarm {
	if p == nil || p.Type != proposalAdd || p.Sender.Type == mls.SenderMember {
		return nil
	}
	kind := "an external sender"
	if p.Sender.Type == mls.SenderNewMemberProposal {
		kind = "a device that is not a member (new_member_proposal)"
	}
	return &Alarm{Reason: fmt.Sprintf("an Add proposal from %s", kind)}
}

// checkOwnCommit refuses a commit this device built that breaks the rule
// for 1:1 conversations or adds a device known to be revoked (a member's
// Add proposal included by reference may try either). c.mu is held.
func (c *Client) checkOwnCommit(ctx context.Context, conv protocol.ConversationID, g *mls.Group, pc *mls.PendingCommit) error {
	if len(pc.Added) == 0 {
		return nil
	}
	if cr, err := c.revokedAmong(ctx, pc.Added); err != nil || cr != nil {
		if err != nil {
			return err
		}
		return fmt.Errorf("adding device %s of %s, which %s revoked: a revoked device is never added again", cr.Device(), cr.User(), cr.User())
	}
	direct, err := c.isDirect(ctx, conv)
	if err != nil || !direct {
		return err
	}
	after, first, err := usersAfter(g, c.serverName, pc.Removed, pc.Added)
	if err != nil {
		return err
	}
	if len(after) > maxDirectUsers {
		who := "a third user"
		if first != nil {
			who = first.User()
		}
		return fmt.Errorf("adding %s to a 1:1 conversation: a 1:1 conversation has two users; start a group instead", who)
	}
	return nil
}

// raiseAlarmLocked makes the alarm of conv effective (the caller stored
// it with putAlarm, in the transaction that applied the entry) and returns
// the event that reports it. c.mu is held.
func (c *Client) raiseAlarmLocked(conv protocol.ConversationID, a *Alarm) Event {
	c.unsafe[conv] = a
	err := &UnsafeError{Conversation: conv, Alarm: *a}
	c.log.Error("membership change rejected: conversation unsafe", "conversation", conv, "seq", a.Seq, "user", a.User, "device", a.Device, "reason", a.Reason)
	return Event{Kind: EventConversationUnsafe, Conversation: conv, User: a.User, Device: a.Device, Err: err}
}

// Recreate starts a new conversation with the members of an unsafe one
// (as this device knows them: the rejected joiner is not among them), its
// name and topic; a 1:1 conversation gets a new 1:1 conversation. The
// unsafe conversation stays, read-only, with its history.
func (c *Client) Recreate(ctx context.Context, conv protocol.ConversationID) (protocol.ConversationID, error) {
	if c.id == nil {
		return 0, ErrNotRegistered
	}
	c.mu.Lock()
	g := c.groups[conv]
	var cv *store.Conversation
	err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		cv, err = tx.Conversation(conv)
		return err
	})
	c.mu.Unlock()
	if errors.Is(err, store.ErrNotFound) || (err == nil && g == nil) {
		err = ErrUnknownConversation
	}
	if err != nil {
		return 0, fmt.Errorf("client: recreate conversation %d: %w", conv, err)
	}
	var others []string
	for _, u := range memberUsers(g) {
		if u != c.id.User {
			others = append(others, u)
		}
	}
	if len(others) == 0 {
		return 0, fmt.Errorf("client: recreate conversation %d: no other member: %w", conv, ErrNotMember)
	}
	var id protocol.ConversationID
	if cv.Direct && len(others) == 1 {
		id, err = c.create(ctx, true, "", others, nil)
	} else {
		// A channel stays a channel, with this user as its admin.
		policy := protocol.DefaultPolicy(c.id.User)
		if channel, _ := channelRole(g, c.id.User, nil, c.serverName); channel {
			policy = channelPolicy(c.id.User)
		}
		id, err = c.create(ctx, false, cv.Name, others, policy)
		if err == nil && cv.Topic != "" {
			err = c.SetTopic(ctx, id, cv.Topic)
		}
	}
	if err != nil {
		return id, fmt.Errorf("client: recreate conversation %d: %w", conv, err)
	}
	return id, nil
}
