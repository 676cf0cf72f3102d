package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parley-chat/parley/mls"
)

// PolicyExtensionType is the MLS GroupContext extension type (RFC 9420
// §13, private-use range 0xF000–0xFFFF) that carries a conversation's
// [Policy]. Every Parley leaf lists it in its capabilities, and a group
// created with a policy lists it in its required_capabilities (§12.1.7),
// so a device that could not enforce it cannot join. See
// docs/protocol.md, "Roles and policy".
const PolicyExtensionType uint16 = 0xF050

// PolicyVersion is the first byte of an encoded Policy. Version 2 added
// ActionTimer and the disappearing-message timer; version 1 was never
// deployed and is refused.
const PolicyVersion = 2

// The disappearing-message timer's bounds: a Policy's Timer is 0 (off)
// or from MinTimer to MaxTimer, in whole seconds.
const (
	MinTimer = 5 * time.Minute
	MaxTimer = 4 * 7 * 24 * time.Hour
)

// MaxPolicyAdmins is the most admins a Policy names.
const MaxPolicyAdmins = 10000

// Action is something the policy permits to admins only or to every
// member.
type Action uint8

// The actions, in their encoding order.
const (
	ActionAdd    Action = 1 // ActionAdd: add another user.
	ActionRemove Action = 2 // ActionRemove: remove another user's device.
	ActionRename Action = 3 // ActionRename: change the conversation's name.
	ActionTopic  Action = 4 // ActionTopic: change the topic.
	ActionRoles  Action = 5 // ActionRoles: change admins and the policy (any GroupContext extension).
	ActionPost   Action = 6 // ActionPost: post messages (channels: enforced by members, see client/channel.go).
	ActionTimer  Action = 7 // ActionTimer: change only the disappearing-message timer.
)

// actionNames are the names of the actions, by number.
var actionNames = [...]string{ActionAdd: "add", ActionRemove: "remove", ActionRename: "rename", ActionTopic: "topic", ActionRoles: "roles", ActionPost: "post", ActionTimer: "timer"}

// numActions is the number of actions.
const numActions = len(actionNames) - 1

// String returns the action's name ("add", "remove", ...).
func (a Action) String() string {
	if a >= 1 && int(a) <= numActions {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Actions returns every action, in order.
func Actions() []Action {
	out := make([]Action, numActions)
	for i := range out {
		out[i] = Action(i + 1)
	}
	return out
}

// ParseAction returns the action named s.
func ParseAction(s string) (Action, error) {
	for _, a := range Actions() {
		if a.String() == s {
			return a, nil
		}
	}
	return 0, fmt.Errorf("protocol: parse action %q: want one of add, remove, rename, topic, roles, post, timer", s)
}

// Who says who may do an action.
type Who uint8

// The values of Who.
const (
	WhoAdmins  Who = 1 // WhoAdmins: admins only.
	WhoMembers Who = 2 // WhoMembers: every member.
)

// String returns "admins" or "members".
func (w Who) String() string {
	switch w {
	case WhoAdmins:
		return "admins"
	case WhoMembers:
		return "members"
	}
	return fmt.Sprintf("who(%d)", uint8(w))
}

// ParseWho returns the Who named s ("admins" or "members").
func ParseWho(s string) (Who, error) {
	switch s {
	case "admins":
		return WhoAdmins, nil
	case "members":
		return WhoMembers, nil
	}
	return 0, fmt.Errorf("protocol: parse role %q: want admins or members", s)
}

// Policy is a conversation's roles and rules: the admins, by user name,
// and for each action who may do it. It travels inside the MLS group
// state as the GroupContext extension [PolicyExtensionType], encoded as
//
//	uint8  version (2)
//	uint8  rule count (7), then per rule: uint8 action, uint8 who
//	       (actions 1..7 in increasing order; who 1 = admins, 2 = members)
//	uint32 timer in seconds (0 = off, or 300..2419200)
//	uint16 admin count (1..10000), then per admin: uint16 len, user name
//	       (valid user names, strictly increasing byte order)
//
// big-endian, nothing after. A conversation without the extension (one
// created before policies existed) lets every member do everything.
type Policy struct {
	// Admins are the admins' user names, sorted and unique.
	Admins []string
	// Rules says, per action (index Action-1), who may do it.
	Rules [numActions]Who
	// Timer is the disappearing-message timer: 0 (off) or a whole number
	// of seconds from MinTimer to MaxTimer. A message expires Timer after
	// it was sent (docs/content.md, "Disappearing messages").
	Timer time.Duration
}

// DefaultPolicy returns the policy of a new group conversation, with
// creator its only admin: every member may add, rename and change the
// topic, post and change the timer; only admins remove others and change
// roles. The timer is off.
func DefaultPolicy(creator string) *Policy {
	p := &Policy{Admins: []string{creator}}
	for _, a := range Actions() {
		p.Rules[a-1] = WhoMembers
	}
	p.Rules[ActionRemove-1] = WhoAdmins
	p.Rules[ActionRoles-1] = WhoAdmins
	return p
}

// Rule returns who may do a.
func (p *Policy) Rule(a Action) Who {
	if a < 1 || int(a) > numActions {
		return WhoAdmins
	}
	return p.Rules[a-1]
}

// IsAdmin reports whether user is an admin among members, the users of
// the group's leaves in leaf order (duplicates allowed). When no admin of
// the policy is a member any more, the user of the first leaf is admin:
// the group always has one. A nil policy makes everyone admin.
func (p *Policy) IsAdmin(user string, members []string) bool {
	if p == nil {
		return true
	}
	for _, m := range members {
		if p.listed(m) {
			return p.listed(user) && slices.Contains(members, user)
		}
	}
	return len(members) > 0 && members[0] == user
}

// listed reports whether user is in Admins.
func (p *Policy) listed(user string) bool {
	_, ok := slices.BinarySearch(p.Admins, user)
	return ok
}

// Allows reports whether user, a member, may do a in a group whose
// members are the users of its leaves in leaf order. A nil policy (no
// extension) allows everything. Client and server decide with it alone.
func (p *Policy) Allows(user string, a Action, members []string) bool {
	if p == nil || p.Rule(a) == WhoMembers {
		return true
	}
	return p.IsAdmin(user, members)
}

// Clone returns a copy of p.
func (p *Policy) Clone() *Policy {
	return &Policy{Admins: slices.Clone(p.Admins), Rules: p.Rules, Timer: p.Timer}
}

// WithTimer returns a copy of p with the timer set to d.
func (p *Policy) WithTimer(d time.Duration) *Policy {
	q := p.Clone()
	q.Timer = d
	return q
}

// CheckTimer reports whether d is a valid timer: 0 (off) or whole
// seconds from MinTimer to MaxTimer.
func CheckTimer(d time.Duration) error {
	if d == 0 || (d >= MinTimer && d <= MaxTimer && d%time.Second == 0) {
		return nil
	}
	return fmt.Errorf("timer %v: want off (0) or whole seconds from %v to %v", d, MinTimer, MaxTimer)
}

// FormatTimer writes a timer for people: "off", "5m", "1h", "1d",
// "1w", or seconds as Go writes durations when none fits.
func FormatTimer(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "off"
	case d%(7*day) == 0:
		return fmt.Sprintf("%dw", d/(7*day))
	case d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// ParseTimer reads a timer: "off", or a number followed by s, m, h, d
// (days) or w (weeks), or a Go duration ("90m"); the result must pass
// CheckTimer.
func ParseTimer(s string) (time.Duration, error) {
	if s == "off" || s == "0" {
		return 0, nil
	}
	var d time.Duration
	var n int64
	var unit string
	if k, err := fmt.Sscanf(s, "%d%s", &n, &unit); err == nil && k == 2 && (unit == "d" || unit == "w") && n > 0 && n <= 365 {
		d = time.Duration(n) * 24 * time.Hour
		if unit == "w" {
			d *= 7
		}
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("protocol: parse timer %q: want off or a duration such as 5m, 1h, 1d, 1w", s)
	}
	if err := CheckTimer(d); err != nil {
		return 0, fmt.Errorf("protocol: parse timer %q: %v", s, err)
	}
	return d, nil
}

// WithAdmin returns a copy of p with user made admin (admin true) or
// member.
func (p *Policy) WithAdmin(user string, admin bool) *Policy {
	q := p.Clone()
	i, found := slices.BinarySearch(q.Admins, user)
	switch {
	case admin && !found:
		q.Admins = slices.Insert(q.Admins, i, user)
	case !admin && found:
		q.Admins = slices.Delete(q.Admins, i, i+1)
	}
	return q
}

// String describes the policy on one line: "admins=alice,bob add=members
// remove=admins ...".
func (p *Policy) String() string {
	var b strings.Builder
	b.WriteString("admins=" + strings.Join(p.Admins, ","))
	for _, a := range Actions() {
		fmt.Fprintf(&b, " %s=%s", a, p.Rule(a))
	}
	b.WriteString(" expire=" + FormatTimer(p.Timer))
	return b.String()
}

// check reports the first rule p breaks.
func (p *Policy) check() error {
	for _, a := range Actions() {
		if w := p.Rule(a); w != WhoAdmins && w != WhoMembers {
			return fmt.Errorf("rule of %s: unknown value %d", a, w)
		}
	}
	if err := CheckTimer(p.Timer); err != nil {
		return err
	}
	if len(p.Admins) == 0 || len(p.Admins) > MaxPolicyAdmins {
		return fmt.Errorf("%d admins, want 1 to %d", len(p.Admins), MaxPolicyAdmins)
	}
	for i, u := range p.Admins {
		if !ValidUserName(u) {
			return fmt.Errorf("admin %q is not a valid user name", u)
		}
		if i > 0 && p.Admins[i-1] >= u {
			return fmt.Errorf("admins not sorted and unique at %q", u)
		}
	}
	return nil
}

// MarshalBinary encodes the policy (the extension's data).
func (p *Policy) MarshalBinary() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("protocol: encode policy: %v", err)
	}
	b := []byte{PolicyVersion, byte(numActions)}
	for _, a := range Actions() {
		b = append(b, byte(a), byte(p.Rule(a)))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(p.Timer/time.Second))
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.Admins)))
	for _, u := range p.Admins {
		b = appendField(b, []byte(u))
	}
	return b, nil
}

// ParsePolicy decodes a policy written by MarshalBinary. It rejects other
// versions, unknown or missing actions, unknown values, admins that are
// not valid user names or not sorted and unique, no admin, truncation and
// trailing bytes.
func ParsePolicy(data []byte) (*Policy, error) {
	p, err := parsePolicy(&certReader{b: data})
	if err != nil {
		return nil, fmt.Errorf("protocol: decode policy: %v", err)
	}
	return p, nil
}

func parsePolicy(r *certReader) (*Policy, error) {
	if v := r.bytes(1, "version"); r.err == nil && v[0] != PolicyVersion {
		return nil, fmt.Errorf("unknown version %d", v[0])
	}
	if n := r.bytes(1, "rule count"); r.err == nil && int(n[0]) != numActions {
		return nil, fmt.Errorf("%d rules, want %d", n[0], numActions)
	}
	p := &Policy{}
	for _, a := range Actions() {
		rule := r.bytes(2, "rule")
		if r.err != nil {
			return nil, r.err
		}
		if Action(rule[0]) != a {
			return nil, fmt.Errorf("rule %d is for action %d, want %d", a, rule[0], a)
		}
		p.Rules[a-1] = Who(rule[1])
	}
	if t := r.bytes(4, "timer"); r.err == nil {
		p.Timer = time.Duration(binary.BigEndian.Uint32(t)) * time.Second
	}
	n := int(r.uint16("admin count"))
	if r.err == nil && n > MaxPolicyAdmins {
		return nil, fmt.Errorf("%d admins, more than %d", n, MaxPolicyAdmins)
	}
	for i := 0; i < n && r.err == nil; i++ {
		if u := r.field("admin"); r.err == nil {
			p.Admins = append(p.Admins, string(u))
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return p, p.check()
}

// ErrPolicyViolation is matched by a *PolicyError.
var ErrPolicyViolation = errors.New("policy violation")

// PolicyError says which rule of a conversation's policy a handshake
// breaks. It matches ErrPolicyViolation.
type PolicyError struct {
	// User is the proposer whose proposal breaks it ("" when unknown).
	User string
	// Reason says what was refused and why.
	Reason string
}

// Error returns "policy violation: REASON".
func (e *PolicyError) Error() string { return "policy violation: " + e.Reason }

// Is matches ErrPolicyViolation.
func (e *PolicyError) Is(target error) bool { return target == ErrPolicyViolation }

// ProposalKind is the kind of a proposal, as the policy sees it.
type ProposalKind uint8

// The kinds of proposals the policy rules.
const (
	ProposalOther      ProposalKind = iota // ProposalOther: not ruled (Update, PSK, ...).
	ProposalAdd                            // ProposalAdd: adds a device of Target.
	ProposalRemove                         // ProposalRemove: removes a device of Target.
	ProposalExtensions                     // ProposalExtensions: replaces the GroupContext extensions.
)

// PolicyProposal describes a proposal, alone or in a commit, in the terms
// of the policy.
type PolicyProposal struct {
	Kind ProposalKind
	// Proposer is the user of the proposal's sender: for a proposal by
	// value, the committer (for an external commit, the joiner's user).
	// It is "" for a sender that is not a member.
	Proposer string
	// Target is the user of the device an Add adds or a Remove removes.
	Target string
}

// PolicyHandshake describes a proposal or a commit in the terms of the
// policy, as of the epoch it is made in.
type PolicyHandshake struct {
	// Policy is the epoch's policy; nil when the group has no policy
	// extension (everything is allowed).
	Policy *Policy
	// Members are the users of the epoch's leaves in leaf order.
	Members []string
	// Proposals are the proposal, or the proposals a commit applies.
	Proposals []PolicyProposal
	// Commit says Proposals are those of a commit, and Extensions the
	// GroupContext extensions it leaves: NewPolicy the policy they carry
	// (nil when none) and NewPolicyErr why it could not be decoded.
	Commit       bool
	NewPolicy    *Policy
	NewPolicyErr error
	// MembersAfter are the users of the new epoch's leaves, for a commit
	// that changes the extensions.
	MembersAfter []string
	// OtherExtensionsChanged says a commit that changes the extensions
	// changes more than the policy extension's data.
	OtherExtensionsChanged bool
}

// Check applies the policy: an Add of a user who is not a member needs
// ActionAdd, a Remove of another user's device ActionRemove (removing
// one's own devices, leaving, is always allowed), a GroupContextExtensions
// proposal ActionRoles, or ActionTimer when it is in a commit that changes
// nothing but the policy's timer (see TimerOnly). A commit that changes the extensions must leave a
// valid policy when the group had one, and that policy must keep an admin
// who is a member after the commit. It returns a *PolicyError.
func (h *PolicyHandshake) Check() error {
	for _, pp := range h.Proposals {
		if err := h.checkProposal(pp); err != nil {
			return err
		}
	}
	if h.Commit && h.extensionsChanged() {
		return h.checkNewPolicy()
	}
	return nil
}

// TimerOnly reports whether h is a commit whose only change to the
// extensions is a different timer in the policy (admins and rules kept).
func (h *PolicyHandshake) TimerOnly() bool {
	return h.Commit && h.Policy != nil && h.NewPolicy != nil && h.NewPolicyErr == nil && !h.OtherExtensionsChanged &&
		h.NewPolicy.Timer != h.Policy.Timer && h.NewPolicy.Rules == h.Policy.Rules && slices.Equal(h.NewPolicy.Admins, h.Policy.Admins)
}

// extensionsChanged reports whether a proposal replaces the extensions.
func (h *PolicyHandshake) extensionsChanged() bool {
	return slices.ContainsFunc(h.Proposals, func(pp PolicyProposal) bool { return pp.Kind == ProposalExtensions })
}

// checkProposal checks one proposal against the epoch's policy.
func (h *PolicyHandshake) checkProposal(pp PolicyProposal) error {
	if h.Policy == nil || pp.Kind == ProposalOther {
		return nil
	}
	var a Action
	switch {
	case pp.Kind == ProposalAdd && !slices.Contains(h.Members, pp.Target):
		a = ActionAdd
	case pp.Kind == ProposalRemove && pp.Target != pp.Proposer:
		a = ActionRemove
	case pp.Kind == ProposalExtensions && h.TimerOnly():
		a = ActionTimer
	case pp.Kind == ProposalExtensions:
		a = ActionRoles
	default:
		return nil
	}
	if pp.Proposer != "" && h.Policy.Allows(pp.Proposer, a, h.Members) {
		return nil
	}
	what := map[Action]string{ActionAdd: "add " + pp.Target, ActionRemove: "remove " + pp.Target, ActionRoles: "change roles or the policy", ActionTimer: "change the disappearing-message timer"}[a]
	if pp.Proposer == "" {
		return &PolicyError{Reason: fmt.Sprintf("a sender that is not a member may not %s", what)}
	}
	return &PolicyError{User: pp.Proposer, Reason: fmt.Sprintf("%s may not %s: only admins may (%s=admins)", pp.Proposer, what, a)}
}

// checkNewPolicy checks the policy a commit that changes the extensions
// leaves.
func (h *PolicyHandshake) checkNewPolicy() error {
	switch {
	case h.NewPolicyErr != nil:
		return &PolicyError{Reason: fmt.Sprintf("the new policy is invalid: %v", h.NewPolicyErr)}
	case h.NewPolicy == nil && h.Policy != nil:
		return &PolicyError{Reason: "a commit drops the conversation's policy"}
	case h.NewPolicy == nil:
		return nil
	}
	for _, u := range h.NewPolicy.Admins {
		if slices.Contains(h.MembersAfter, u) {
			return nil
		}
	}
	return &PolicyError{Reason: "the new policy leaves no admin among the members: the last admin cannot be demoted"}
}

// OtherExtensionsChanged reports whether the GroupContext extensions
// after a commit differ from those before in more than the policy
// extension's data (compared in order, as the GroupContext holds them):
// PolicyHandshake.OtherExtensionsChanged, computed alike by clients and
// the server's follower.
func OtherExtensionsChanged(before, after []mls.Extension) bool {
	others := func(exts []mls.Extension) []mls.Extension {
		var out []mls.Extension
		for _, e := range exts {
			if e.Type != PolicyExtensionType {
				out = append(out, e)
			}
		}
		return out
	}
	return !slices.EqualFunc(others(before), others(after), func(a, b mls.Extension) bool {
		return a.Type == b.Type && bytes.Equal(a.Data, b.Data)
	})
}
