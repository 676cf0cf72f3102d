package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// Roles and policy. A group conversation carries its protocol.Policy in
// the MLS GroupContext (extension protocol.PolicyExtensionType, listed in
// required_capabilities): its admins and who may add, remove, rename,
// change the topic and change roles. Every member checks every proposal
// and commit against the policy of the epoch it is made in
// (checkPolicyCommit, checkPolicyProposal) and rejects a violation like a
// forbidden membership change; renames and topic changes by members the
// policy does not allow are ignored (metadataAllowed). The server checks
// the same with protocol.PolicyHandshake. docs/protocol.md, "Roles and
// policy".

// createWithoutPolicy makes new groups without a policy, as before
// policies existed (tests only, see export_test.go).
var createWithoutPolicy bool

// leafCapabilities are the capabilities of every leaf this device makes:
// the defaults plus the policy extension.
func leafCapabilities() *mls.Capabilities {
	return &mls.Capabilities{
		Extensions:  []uint16{protocol.PolicyExtensionType},
		Credentials: []mls.CredentialType{mls.CredentialBasic, mls.CredentialX509},
	}
}

// policyExtensions returns the GroupContext extensions of a new group
// conversation with policy p: the policy, required of every member.
func policyExtensions(p *protocol.Policy) ([]mls.Extension, error) {
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return []mls.Extension{
		mls.RequiredCapabilitiesExtension([]uint16{protocol.PolicyExtensionType}, nil, nil),
		{Type: protocol.PolicyExtensionType, Data: b},
	}, nil
}

// usersWithoutRoles returns, in order and once each, the users of the
// candidates whose clients do not support roles (nil when every one does).
func usersWithoutRoles(cands []candidate) []string {
	var out []string
	for _, cd := range cands {
		if !cd.roles && !slices.Contains(out, cd.user) {
			out = append(out, cd.user)
		}
	}
	return out
}

// noRolesLineLocked records in conv's history that this device created
// it without a policy because the clients of users do not support roles
// (SystemNoRoles), and reports it. The line takes the log's first
// position, after the lines of the commit that added the members there,
// so that it stays at the start of the history.
func (c *Client) noRolesLineLocked(ctx context.Context, conv protocol.ConversationID, users []string) {
	l := systemLine{user: c.id.User, device: c.id.Device, ev: store.SystemEvent{Kind: string(SystemNoRoles), Users: users}}
	now := c.cfg.Now()
	var evs []Event
	err := c.st.Update(ctx, func(tx store.Tx) error {
		var err error
		evs, err = putSystemLine(tx, conv, [16]byte{}, l, 1, now, now, Received)
		return err
	})
	if err != nil {
		c.log.Warn("record a group without roles", "conversation", conv, "err", err)
		return
	}
	c.log.Info("group created without roles: a member's client does not support them", "conversation", conv, "users", users)
	for _, ev := range evs {
		c.ev.push(ev)
	}
}

// policyOf returns the policy among GroupContext extensions, nil when
// there is none.
func policyOf(exts []mls.Extension) (*protocol.Policy, error) {
	for _, e := range exts {
		if e.Type == protocol.PolicyExtensionType {
			return protocol.ParsePolicy(e.Data)
		}
	}
	return nil, nil
}

// leafUsers returns the users of members in leaf order ("" for a leaf
// without a credential of the server).
func leafUsers(members []mls.Member, server string) []string {
	out := make([]string, 0, len(members))
	for _, m := range members {
		user := ""
		if cr, err := serverCredentialOf(m.Credential, server); err == nil {
			user = cr.User()
		}
		out = append(out, user)
	}
	return out
}

// userAt returns the user of the leaf of g, "" if unknown.
func userAt(g *mls.Group, leaf mls.LeafIndex, server string) string {
	if m, ok := g.Member(leaf); ok {
		return leafUsers([]mls.Member{m}, server)[0]
	}
	return ""
}

// policyProposal describes p, made in g, for the policy. joiner is the
// user of an external commit's joiner, whose by-value proposals are its.
func policyProposal(g *mls.Group, p *mls.ProposalInfo, server, joiner string) protocol.PolicyProposal {
	pp := protocol.PolicyProposal{}
	switch p.Sender.Type {
	case mls.SenderMember:
		pp.Proposer = userAt(g, p.Sender.Leaf, server)
	case mls.SenderNewMemberCommit:
		pp.Proposer = joiner
	}
	switch p.Type {
	case proposalAdd:
		pp.Kind = protocol.ProposalAdd
		pp.Target = leafUsers([]mls.Member{{Credential: p.Credential}}, server)[0]
	case proposalRemove:
		pp.Kind, pp.Target = protocol.ProposalRemove, userAt(g, p.Leaf, server)
	case proposalGroupContextExtensions:
		pp.Kind = protocol.ProposalExtensions
	}
	return pp
}

// proposalGroupContextExtensions is the GroupContextExtensions proposal
// type (RFC 9420 §12.1.7).
const proposalGroupContextExtensions = 7

// policyAlarm turns a policy violation into an alarm.
func policyAlarm(err error) *Alarm {
	a := &Alarm{Reason: err.Error(), Policy: true}
	var pe *protocol.PolicyError
	if errors.As(err, &pe) {
		a.User = pe.User
	}
	return a
}

// checkPolicyCommit checks a commit staged in g (still in the epoch
// before it) against the epoch's policy.
func checkPolicyCommit(g *mls.Group, sc *mls.StagedCommit, server string) *Alarm {
	p, err := policyOf(g.Extensions())
	if err != nil {
		return &Alarm{Reason: fmt.Sprintf("the conversation's policy is unreadable: %v", err), Policy: true}
	}
	h := &protocol.PolicyHandshake{Policy: p, Members: leafUsers(g.Members(), server), Commit: true}
	joiner := ""
	if sc.Committer.Type == mls.SenderNewMemberCommit {
		for _, m := range sc.Added {
			if m.Leaf == sc.Committer.Leaf {
				joiner = leafUsers([]mls.Member{m}, server)[0]
			}
		}
	}
	for i := range sc.Proposals {
		h.Proposals = append(h.Proposals, policyProposal(g, &sc.Proposals[i], server, joiner))
	}
	if sc.ExtensionsChanged {
		h.NewPolicy, h.NewPolicyErr = policyOf(sc.Extensions)
		h.MembersAfter = usersAfterCommit(h.Members, g, sc, server)
		h.OtherExtensionsChanged = protocol.OtherExtensionsChanged(g.Extensions(), sc.Extensions)
	}
	if err := h.Check(); err != nil {
		return policyAlarm(err)
	}
	return nil
}

// usersAfterCommit returns the users of g's leaves after a commit (in no
// particular order).
func usersAfterCommit(before []string, g *mls.Group, sc *mls.StagedCommit, server string) []string {
	gone := map[mls.LeafIndex]bool{}
	for _, m := range sc.Removed {
		gone[m.Leaf] = true
	}
	var out []string
	for i, m := range g.Members() {
		if !gone[m.Leaf] {
			out = append(out, before[i])
		}
	}
	return append(out, leafUsers(sc.Added, server)...)
}

// checkPolicyProposal checks a received proposal against the policy of
// g's epoch.
func checkPolicyProposal(g *mls.Group, p *mls.ProposalInfo, server string) *Alarm {
	if p == nil {
		return nil
	}
	pol, err := policyOf(g.Extensions())
	if err != nil {
		return &Alarm{Reason: fmt.Sprintf("the conversation's policy is unreadable: %v", err), Policy: true}
	}
	h := &protocol.PolicyHandshake{Policy: pol, Members: leafUsers(g.Members(), server), Proposals: []protocol.PolicyProposal{policyProposal(g, p, server, "")}}
	if err := h.Check(); err != nil {
		return policyAlarm(err)
	}
	return nil
}

// policyLines returns the system lines of a change of policy by user's
// device: one per user promoted or demoted, one for changed rules.
func policyLines(before, after *protocol.Policy, user string, device protocol.DeviceID) []systemLine {
	if after == nil {
		return nil
	}
	var was []string
	if before != nil {
		was = before.Admins
	}
	var lines []systemLine
	line := func(kind SystemKind, users []string, value, previous string) {
		lines = append(lines, systemLine{user: user, device: device, ev: store.SystemEvent{Kind: string(kind), Users: users, Value: value, Previous: previous}})
	}
	for _, u := range after.Admins {
		if !slices.Contains(was, u) {
			line(SystemRoleChanged, []string{u}, "admin", "member")
		}
	}
	for _, u := range was {
		if !slices.Contains(after.Admins, u) {
			line(SystemRoleChanged, []string{u}, "member", "admin")
		}
	}
	if (before == nil && after.Timer != 0) || (before != nil && before.Timer != after.Timer) {
		prev := "off"
		if before != nil {
			prev = protocol.FormatTimer(before.Timer)
		}
		line(SystemTimerChanged, nil, protocol.FormatTimer(after.Timer), prev)
	}
	if before == nil || before.Rules != after.Rules {
		prev := ""
		if before != nil {
			prev = rulesText(before)
		}
		line(SystemPolicyChanged, nil, rulesText(after), prev)
	}
	return lines
}

// rulesText lists a policy's rules: "add=members remove=admins ...".
func rulesText(p *protocol.Policy) string {
	s := ""
	for i, a := range protocol.Actions() {
		if i > 0 {
			s += " "
		}
		s += a.String() + "=" + p.Rule(a).String()
	}
	return s
}

// Policy returns the policy of a conversation: nil for one without (a
// 1:1 conversation, or a group created before policies existed, where
// every member may do everything).
func (c *Client) Policy(ctx context.Context, conv protocol.ConversationID) (*protocol.Policy, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[conv]
	if g == nil {
		return nil, fmt.Errorf("client: policy of conversation %d: %w", conv, c.missingGroup(conv))
	}
	p, err := policyOf(g.Extensions())
	if err != nil {
		return nil, fmt.Errorf("client: policy of conversation %d: %w", conv, err)
	}
	return p, nil
}

// SetRole makes user an admin of a conversation (admin true) or a plain
// member. Only admins may (the policy's roles rule); the last admin who
// is a member cannot be demoted. In a conversation without a policy, the
// first SetRole or SetPolicy adds the default policy with this user as
// its admin.
func (c *Client) SetRole(ctx context.Context, conv protocol.ConversationID, user string, admin bool) error {
	if !protocol.ValidUserName(user) {
		return fmt.Errorf("client: set role of %q in conversation %d: not a valid user name", user, conv)
	}
	err := c.changePolicy(ctx, conv, func(p *protocol.Policy) *protocol.Policy { return p.WithAdmin(user, admin) })
	if err != nil {
		return fmt.Errorf("client: set role of %s in conversation %d: %w", user, conv, err)
	}
	return nil
}

// SetPolicy changes who may do the given actions in a conversation (see
// SetRole for who may).
func (c *Client) SetPolicy(ctx context.Context, conv protocol.ConversationID, rules map[protocol.Action]protocol.Who) error {
	err := c.changePolicy(ctx, conv, func(p *protocol.Policy) *protocol.Policy {
		q := p.Clone()
		for a, w := range rules {
			if a >= 1 && int(a) <= len(q.Rules) {
				q.Rules[a-1] = w
			}
		}
		return q
	})
	if err != nil {
		return fmt.Errorf("client: set policy of conversation %d: %w", conv, err)
	}
	return nil
}

// errPolicyUnchanged ends changePolicy when the change changes nothing.
var errPolicyUnchanged = errors.New("policy unchanged")

// changePolicy commits the policy that change makes of the current one
// (the default policy with this user as admin where there is none). A
// 1:1 conversation has no roles: it refuses.
func (c *Client) changePolicy(ctx context.Context, conv protocol.ConversationID, change func(*protocol.Policy) *protocol.Policy) error {
	return c.commitPolicy(ctx, conv, false, change)
}

// commitPolicy is changePolicy; timer says the change is of the timer
// only, which a 1:1 conversation allows: its first policy then makes
// both users admins and lets them do everything (directPolicy).
func (c *Client) commitPolicy(ctx context.Context, conv protocol.ConversationID, timer bool, change func(*protocol.Policy) *protocol.Policy) error {
	if c.id == nil {
		return ErrNotRegistered
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	direct, err := c.isDirect(ctx, conv)
	if err != nil {
		return err
	}
	if direct && !timer {
		return errors.New("a 1:1 conversation has no roles")
	}
	err = c.commitLocked(ctx, conv, func(g *mls.Group) (*commitPlan, error) {
		fresh := func() *protocol.Policy { return protocol.DefaultPolicy(c.id.User) }
		if direct {
			fresh = func() *protocol.Policy { return directPolicy(leafUsers(g.Members(), c.serverName)) }
		}
		exts, err := changedExtensions(g.Extensions(), c.id.User, fresh, change)
		if err != nil {
			return nil, err
		}
		return &commitPlan{opts: mls.CommitOptions{GroupContextExtensions: exts, SetExtensions: true, ExternalPub: true}}, nil
	})
	if errors.Is(err, errPolicyUnchanged) {
		return nil
	}
	return err
}

// directPolicy returns the policy a 1:1 conversation gets with its first
// timer: the users of its leaves all admins, every action open to both.
func directPolicy(users []string) *protocol.Policy {
	p := &protocol.Policy{}
	for _, u := range users {
		if protocol.ValidUserName(u) && !slices.Contains(p.Admins, u) {
			p.Admins = append(p.Admins, u)
		}
	}
	slices.Sort(p.Admins)
	for _, a := range protocol.Actions() {
		p.Rules[a-1] = protocol.WhoMembers
	}
	return p
}

// SetTimer sets the disappearing-message timer of a conversation: 0 turns
// it off, otherwise whole seconds from protocol.MinTimer to
// protocol.MaxTimer. Those the policy's timer rule names may (members, by
// default); the change is a GroupContextExtensions commit that changes
// nothing but the timer. A 1:1 conversation, which has no policy, gets
// one with its first timer: both users admins, everything open to both.
// Messages sent from the next epoch on expire after d; those sent before
// keep the timer they were sent with.
func (c *Client) SetTimer(ctx context.Context, conv protocol.ConversationID, d time.Duration) error {
	if err := protocol.CheckTimer(d); err != nil {
		return fmt.Errorf("client: set timer of conversation %d: %v", conv, err)
	}
	if d == 0 {
		// Off where there is no policy is no change: no policy for it.
		if p, err := c.Policy(ctx, conv); err == nil && p == nil {
			return nil
		}
	}
	err := c.commitPolicy(ctx, conv, true, func(p *protocol.Policy) *protocol.Policy { return p.WithTimer(d) })
	if err != nil {
		return fmt.Errorf("client: set timer of conversation %d: %w", conv, err)
	}
	return nil
}

// changedExtensions returns exts with the policy replaced by what change
// makes of it (of fresh() where there is none), and the policy extension
// required of every member.
func changedExtensions(exts []mls.Extension, user string, fresh func() *protocol.Policy, change func(*protocol.Policy) *protocol.Policy) ([]mls.Extension, error) {
	old, err := policyOf(exts)
	if err != nil {
		return nil, err
	}
	cur := old
	if cur == nil {
		cur = fresh()
	}
	next := change(cur)
	if len(next.Admins) == 0 {
		return nil, &protocol.PolicyError{User: user, Reason: "the last admin cannot be demoted: promote another member first"}
	}
	if old != nil && next.Rules == old.Rules && next.Timer == old.Timer && slices.Equal(next.Admins, old.Admins) {
		return nil, errPolicyUnchanged
	}
	b, err := next.MarshalBinary()
	if err != nil {
		return nil, err
	}
	out := []mls.Extension{{Type: protocol.PolicyExtensionType, Data: b}}
	required := false
	for _, e := range exts {
		switch e.Type {
		case protocol.PolicyExtensionType:
		case mls.ExtensionRequiredCapabilities:
			required = true
			out = append(out, e)
		default:
			out = append(out, e)
		}
	}
	if !required {
		out = append(out, mls.RequiredCapabilitiesExtension([]uint16{protocol.PolicyExtensionType}, nil, nil))
	}
	return out, nil
}

// metadataAllowed reports, for a group-metadata message by user in conv,
// whether the policy lets them rename (when m sets a name that differs)
// and change the topic. c.mu is held.
func (c *Client) metadataAllowed(conv protocol.ConversationID, m *content.Message, old *store.Conversation, user string) (name, topic bool) {
	g := c.groups[conv]
	if g == nil {
		return true, true
	}
	p, err := policyOf(g.Extensions())
	if err != nil {
		return false, false
	}
	members := leafUsers(g.Members(), c.serverName)
	name = m.Name == nil || *m.Name == old.Name || p.Allows(user, protocol.ActionRename, members)
	topic = m.Topic == nil || *m.Topic == old.Topic || p.Allows(user, protocol.ActionTopic, members)
	return name, topic
}

// dropForbiddenMetadata clears the name and topic of a group-metadata
// message that the policy does not let user change, and records a
// system line for each. c.mu is held.
func (c *Client) dropForbiddenMetadata(tx store.Tx, conv protocol.ConversationID, m *content.Message, old *store.Conversation, user string, device protocol.DeviceID, serverSeq uint64) ([]Event, error) {
	name, topic := c.metadataAllowed(conv, m, old, user)
	var events []Event
	ignore := func(what string) error {
		c.log.Warn("change ignored: the conversation's policy does not allow it", "conversation", conv, "user", user, "change", what)
		l := systemLine{user: user, device: device, ev: store.SystemEvent{Kind: string(SystemChangeIgnored), Value: what}}
		evs, err := putSystemLine(tx, conv, [16]byte{}, l, serverSeq, m.Sent, c.cfg.Now(), Received)
		events = append(events, evs...)
		return err
	}
	if !name {
		m.Name = nil
		if err := ignore("rename"); err != nil {
			return nil, err
		}
	}
	if !topic {
		m.Topic = nil
		if err := ignore("topic"); err != nil {
			return nil, err
		}
	}
	return events, nil
}

// checkMetadataAllowed refuses a rename or topic change that the
// conversation's policy does not allow this user.
func (c *Client) checkMetadataAllowed(ctx context.Context, conv protocol.ConversationID, m *content.Message) error {
	if c.id == nil {
		return ErrNotRegistered
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var cv *store.Conversation
	err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		cv, err = tx.Conversation(conv)
		return err
	})
	if err != nil {
		return err
	}
	name, topic := c.metadataAllowed(conv, m, cv, c.id.User)
	switch {
	case !name:
		return &protocol.PolicyError{User: c.id.User, Reason: fmt.Sprintf("%s may not rename the conversation: only admins may (rename=admins)", c.id.User)}
	case !topic:
		return &protocol.PolicyError{User: c.id.User, Reason: fmt.Sprintf("%s may not change the topic: only admins may (topic=admins)", c.id.User)}
	}
	return nil
}

// policyChangeLines returns the system lines of a commit by user's device
// that replaced the extensions before with after.
func policyChangeLines(before, after []mls.Extension, user string, device protocol.DeviceID) []systemLine {
	was, _ := policyOf(before)
	now, err := policyOf(after)
	if err != nil {
		return nil
	}
	return policyLines(was, now, user, device)
}

// allowedLocked reports whether the policy of g lets this user do a.
func (c *Client) allowedLocked(g *mls.Group, a protocol.Action) bool {
	p, err := policyOf(g.Extensions())
	return err == nil && p.Allows(c.id.User, a, leafUsers(g.Members(), c.serverName))
}
