package client

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// System lines. Besides its messages, a conversation's history records
// the changes of its membership, name and topic as system lines: store
// records (store.Message with System set) written in the
// transaction that applies the change. Like a message, a system line
// takes a local position (Seq) and the server log position of the entry
// that made the change (ServerSeq), so History returns both in the order
// of the log, which every member shares. A system line never leaves the
// device: its id is this device's own, and no message can refer to it.

// SystemKind says what a system line records.
type SystemKind string

// The kinds of system lines. The line's Message.Sender (and SenderDevice)
// is the actor: who made the change.
const (
	// SystemJoined: this device joined the conversation (from a
	// Welcome, which does not say who added it: the actor is this
	// device).
	SystemJoined SystemKind = "joined"
	// SystemAdded: the actor added Users.
	SystemAdded SystemKind = "added"
	// SystemLeft: the actor left: the user's devices were removed at the
	// request of one of them.
	SystemLeft SystemKind = "left"
	// SystemRemoved: the actor removed Users.
	SystemRemoved SystemKind = "removed"
	// SystemDeviceAdded: Devices of Users[0], a member already, were
	// added (by a commit of the actor; for a device that joined by
	// itself, the actor is its user).
	SystemDeviceAdded SystemKind = "device_added"
	// SystemDeviceRemoved: Devices of Users[0] were removed; the user
	// stays a member with other devices.
	SystemDeviceRemoved SystemKind = "device_removed"
	// SystemRenamed: the actor set the conversation's name to Value (""
	// removes it); Previous is the name before.
	SystemRenamed SystemKind = "renamed"
	// SystemTopicChanged: the actor set the topic to Value ("" clears
	// it); Previous is the topic before.
	SystemTopicChanged SystemKind = "topic_changed"
	// SystemRoleChanged: the actor made Users[0] Value ("admin" or
	// "member"); Previous is the role before.
	SystemRoleChanged SystemKind = "role_changed"
	// SystemPolicyChanged: the actor set the policy's rules to Value
	// ("add=members remove=admins ..."); Previous are the rules before
	// ("" where the conversation had no policy).
	SystemPolicyChanged SystemKind = "policy_changed"
	// SystemTimerChanged: the actor set the disappearing-message timer
	// to Value ("off", "5m", "1d", ...); Previous is the timer before.
	SystemTimerChanged SystemKind = "timer_changed"
	// SystemChangeIgnored: the actor's rename or topic change (Value
	// "rename" or "topic") was not applied: the policy does not allow
	// them.
	SystemChangeIgnored SystemKind = "change_ignored"
	// SystemNoRoles: the actor created the group without a policy (no
	// admins; every member may do everything, as in groups made before
	// policies) because the clients of Users do not support roles yet.
	SystemNoRoles SystemKind = "no_roles"
)

// System is what a system line of a history records (Message.System).
// Users, Devices, Value and Previous are set as the Kind says.
type System struct {
	Kind     SystemKind          `json:"kind"`
	Users    []string            `json:"users,omitempty"`
	Devices  []protocol.DeviceID `json:"devices,omitempty"`
	Value    string              `json:"value,omitempty"`
	Previous string              `json:"previous,omitempty"`
}

// viewSystem converts a stored system line.
func viewSystem(s *store.SystemEvent) *System {
	if s == nil {
		return nil
	}
	return &System{Kind: SystemKind(s.Kind), Users: slices.Clone(s.Users), Devices: slices.Clone(s.Devices), Value: s.Value, Previous: s.Previous}
}

// systemLine is a system line to write: the change and its actor.
type systemLine struct {
	user   string
	device protocol.DeviceID
	ev     store.SystemEvent
}

// putSystemLine appends a system line to conv's history and returns the
// event that reports it. The line takes the given id (a fresh one when
// zero), the position of the log entry that made the change (serverSeq,
// 0 while this device's own change is not stored by the server), and the
// time the change was made.
func putSystemLine(tx store.Tx, conv protocol.ConversationID, id [16]byte, l systemLine, serverSeq uint64, at, now time.Time, state DeliveryState) ([]Event, error) {
	if id == ([16]byte{}) {
		id = content.NewMessageID()
	}
	ev := l.ev
	sm := &store.Message{
		Conversation: conv, ID: id, Sender: l.user, SenderDevice: l.device,
		Sent: at, Received: now, ServerSeq: serverSeq, State: state, System: &ev,
	}
	added, err := tx.AddMessage(sm)
	if err != nil || !added {
		return nil, err
	}
	return []Event{{Kind: EventSystem, Conversation: conv, Message: viewMessage(sm), User: l.user, Device: l.device}}, nil
}

// membershipChange is what one commit changes in a conversation's
// membership, worked out before the commit is merged, while the group
// still holds the removed members and the proposals the commit includes.
type membershipChange struct {
	// events are the member_joined and member_left events.
	events []Event
	// lines are the system lines for the history.
	lines []systemLine
	// members are the member users after the commit.
	members []string
	// selfRemoved says the commit removes this device; removedBy then
	// names who removed it, "" when its user left.
	selfRemoved bool
	removedBy   string
}

// describeCommit works out the membership change of a commit by
// committer that adds and removes the given leaves of g (still in the
// epoch before the commit). A removal is attributed to the member who
// proposed it, when g holds that proposal (a member that leaves proposes
// its own removal, which another member commits), else to the committer;
// a user whose removal its own device proposed left. A device that
// replaces its own leaf (a resynchronization) changes nothing that a
// line would show.
func (c *Client) describeCommit(conv protocol.ConversationID, g *mls.Group, committer mls.Sender, added, removed []mls.Member, selfRemoved bool) *membershipChange {
	ch := &membershipChange{events: c.membershipEvents(conv, added, removed), selfRemoved: selfRemoved}
	after, _, err := usersAfter(g, c.serverName, removed, added)
	if err != nil {
		after = map[string]bool{}
		for _, u := range memberUsers(g) {
			after[u] = true
		}
	}
	ch.members = slices.Sorted(maps.Keys(after))
	// A device both removed and added replaced its own leaf.
	_, addedDevices := userSet(added, c.serverName)
	_, removedDevices := userSet(removed, c.serverName)
	resync := func(d protocol.DeviceID) bool { return addedDevices[d] && removedDevices[d] }
	by := committerCredential(g, committer, added)
	c.removalLines(ch, g, by, removed, after, resync)
	additionLines(ch, g, c.serverName, by, added, resync)
	return ch
}

// removalLines adds to ch the lines of the removed leaves that resync
// does not exclude: a user whose last device left or was removed, or
// devices of a user who stays (after holds the users after the commit).
// by is the committer; it sets ch.removedBy for this device's removal.
func (c *Client) removalLines(ch *membershipChange, g *mls.Group, by *Credential, removed []mls.Member, after map[string]bool, resync func(protocol.DeviceID) bool) {
	proposers := removeProposers(g)
	gone := map[string][]protocol.DeviceID{}
	goneBy := map[string]*Credential{}
	for _, m := range removed {
		cr, err := credentialOf(m.Credential)
		if err != nil || resync(cr.Device()) {
			continue
		}
		gone[cr.User()] = append(gone[cr.User()], cr.Device())
		if goneBy[cr.User()] == nil {
			goneBy[cr.User()] = cmp.Or(proposers[m.Leaf], by)
		}
	}
	removedUsers := map[string][]string{} // actor → users removed
	var actors []*Credential
	for _, user := range slices.Sorted(maps.Keys(gone)) {
		actor := goneBy[user]
		switch {
		case after[user]:
			ch.lines = append(ch.lines, lineBy(actor, store.SystemEvent{Kind: string(SystemDeviceRemoved), Users: []string{user}, Devices: gone[user]}))
		case actor != nil && actor.User() == user:
			ch.lines = append(ch.lines, lineBy(actor, store.SystemEvent{Kind: string(SystemLeft), Users: []string{user}}))
		default:
			name := actorName(actor)
			if _, ok := removedUsers[name]; !ok {
				actors = append(actors, actor)
			}
			removedUsers[name] = append(removedUsers[name], user)
		}
		if user == c.id.User && ch.selfRemoved && actor != nil && actor.User() != user {
			ch.removedBy = actor.User()
		}
	}
	for _, actor := range actors {
		ch.lines = append(ch.lines, lineBy(actor, store.SystemEvent{Kind: string(SystemRemoved), Users: removedUsers[actorName(actor)]}))
	}
}

// additionLines adds to ch the lines of the added leaves that resync
// does not exclude, made by by: the users who were not members, and the
// new devices of users who were.
func additionLines(ch *membershipChange, g *mls.Group, server string, by *Credential, added []mls.Member, resync func(protocol.DeviceID) bool) {
	before, _ := userSet(g.Members(), server)
	newDevices := map[string][]protocol.DeviceID{}
	for _, m := range added {
		cr, err := credentialOf(m.Credential)
		if err != nil || resync(cr.Device()) {
			continue
		}
		newDevices[cr.User()] = append(newDevices[cr.User()], cr.Device())
	}
	var newUsers []string
	for _, user := range slices.Sorted(maps.Keys(newDevices)) {
		if !before[user] {
			newUsers = append(newUsers, user)
			continue
		}
		ch.lines = append(ch.lines, lineBy(by, store.SystemEvent{Kind: string(SystemDeviceAdded), Users: []string{user}, Devices: newDevices[user]}))
	}
	if len(newUsers) > 0 {
		ch.lines = append(ch.lines, lineBy(by, store.SystemEvent{Kind: string(SystemAdded), Users: newUsers}))
	}
}

// removeProposers maps the leaves that cached Remove proposals of g
// remove to the credentials of the members who proposed it.
func removeProposers(g *mls.Group) map[mls.LeafIndex]*Credential {
	out := map[mls.LeafIndex]*Credential{}
	for _, p := range g.CachedProposals() {
		if p.Type != proposalRemove || p.Sender.Type != mls.SenderMember {
			continue
		}
		if cr, err := memberCredentialOf(g, p.Sender.Leaf); err == nil && out[p.Leaf] == nil {
			out[p.Leaf] = cr
		}
	}
	return out
}

// proposalRemove is the Remove proposal type (RFC 9420 §12.1.3).
const proposalRemove = 3

// committerCredential returns the credential of a commit's sender: a
// member of g, or for an external commit the joiner among added.
func committerCredential(g *mls.Group, committer mls.Sender, added []mls.Member) *Credential {
	if committer.Type == mls.SenderNewMemberCommit {
		for _, m := range added {
			if m.Leaf == committer.Leaf {
				cr, _ := credentialOf(m.Credential)
				return cr
			}
		}
		return nil
	}
	cr, _ := memberCredentialOf(g, committer.Leaf)
	return cr
}

// actorName is the user of a credential, "" if unknown.
func actorName(cr *Credential) string {
	if cr == nil {
		return ""
	}
	return cr.User()
}

// lineBy makes a system line whose actor is cr (unknown when nil).
func lineBy(cr *Credential, ev store.SystemEvent) systemLine {
	if cr == nil {
		return systemLine{ev: ev}
	}
	return systemLine{user: cr.User(), device: cr.Device(), ev: ev}
}

// putMembershipChange records a merged commit's membership change in
// conv: the member users (for a device the commit removed: the members
// at its removal, and who removed it) and the system lines, at the
// position of the commit's entry (serverSeq) and its time. It returns the
// events of the lines.
func (c *Client) putMembershipChange(tx store.Tx, conv protocol.ConversationID, g *mls.Group, ch *membershipChange, serverSeq uint64, at time.Time) ([]Event, error) {
	cv, err := tx.Conversation(conv)
	if err != nil {
		return nil, err
	}
	if ch.selfRemoved {
		// The group stays in the epoch before the commit: its members
		// still include this device.
		cv.Members, cv.Left, cv.RemovedBy = ch.members, true, ch.removedBy
	} else {
		cv.Members = memberUsers(g)
	}
	if err := tx.PutConversation(cv); err != nil {
		return nil, err
	}
	var events []Event
	for _, l := range ch.lines {
		evs, err := putSystemLine(tx, conv, [16]byte{}, l, serverSeq, at, c.cfg.Now(), Received)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	return events, nil
}

// putJoined records that this device joined conv at the log position
// serverSeq (the commit that added it).
func (c *Client) putJoined(tx store.Tx, conv protocol.ConversationID, serverSeq uint64) ([]Event, error) {
	now := c.cfg.Now()
	l := systemLine{user: c.id.User, device: c.id.Device, ev: store.SystemEvent{Kind: string(SystemJoined), Users: []string{c.id.User}}}
	return putSystemLine(tx, conv, [16]byte{}, l, serverSeq, now, now, Received)
}

// putMetadataLines records the changes of a group metadata message m by
// user's device: a line for a new name and one for a new topic. A
// message that carries both is the one Add sends to tell new members
// what the conversation is called: it records a line only where it
// replaces a value this device had (not where it first tells a new
// member, nor where it repeats the current values). The first line takes
// m's id, so that the line of this
// device's own message gets the message's server position when the
// server stores it (markPosted) and its delivery state; a second line
// (never for this device's own changes: the SDK changes name and topic
// in separate messages) takes an id derived from it.
func putMetadataLines(tx store.Tx, conv protocol.ConversationID, m *content.Message, old *store.Conversation, user string, device protocol.DeviceID, serverSeq uint64, now time.Time, state DeliveryState) ([]Event, error) {
	reshare := m.Name != nil && m.Topic != nil
	changed := func(v *string, was string) bool { return v != nil && *v != was && (!reshare || was != "") }
	var lines []systemLine
	if changed(m.Name, old.Name) {
		lines = append(lines, systemLine{user: user, device: device, ev: store.SystemEvent{Kind: string(SystemRenamed), Value: *m.Name, Previous: old.Name}})
	}
	if changed(m.Topic, old.Topic) {
		lines = append(lines, systemLine{user: user, device: device, ev: store.SystemEvent{Kind: string(SystemTopicChanged), Value: *m.Topic, Previous: old.Topic}})
	}
	var events []Event
	for i, l := range lines {
		id := [16]byte(m.ID)
		if i > 0 {
			h := sha256.Sum256(append([]byte("parley system line\x00"), m.ID[:]...))
			id = [16]byte(h[:16])
		}
		evs, err := putSystemLine(tx, conv, id, l, serverSeq, m.Sent, now, state)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	return events, nil
}

// History returns the history of a conversation like Messages, with the
// system lines (Message.System: members added, removed or left, devices
// added or removed, the name or the topic changed) in their places: with
// last > 0 the last entries, otherwise every entry after local position
// after, in the order of the server's log; this device's messages that
// the server has not stored yet come last.
func (c *Client) History(ctx context.Context, conv protocol.ConversationID, after int64, last int) ([]*Message, error) {
	out, err := c.history(ctx, conv, after, last, true)
	if err != nil {
		return nil, fmt.Errorf("client: history of conversation %d: %w", conv, err)
	}
	return out, nil
}

// history reads the entries of Messages (system lines too with system),
// sorted in the order of the server's log.
func (c *Client) history(ctx context.Context, conv protocol.ConversationID, after int64, last int, system bool) ([]*Message, error) {
	keep := func(m *store.Message) bool { return (system || m.System == nil) && !m.Expired }
	var out []*Message
	err := c.st.View(ctx, func(tx store.Tx) error {
		if _, err := tx.Conversation(conv); errors.Is(err, store.ErrNotFound) {
			return ErrUnknownConversation
		}
		var ms []store.Message
		var err error
		if last > 0 {
			ms, err = lastRecords(tx, conv, last, keep)
		} else {
			ms, err = tx.Messages(conv, after, 0)
		}
		for i := range ms {
			if keep(&ms[i]) {
				m := viewMessage(&ms[i])
				setMentionsMe(m, c.selfUser())
				out = append(out, m)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	sortByLog(out)
	return out, nil
}

// lastRecords returns the last n records of conv's history that keep
// accepts, in local order. It reads ever larger windows from the end, so
// that records keep refuses do not shorten the result.
func lastRecords(tx store.Tx, conv protocol.ConversationID, n int, keep func(*store.Message) bool) ([]store.Message, error) {
	for window := n; ; window *= 2 {
		ms, err := tx.LastMessages(conv, window)
		if err != nil {
			return nil, err
		}
		all := len(ms) < window // the window holds the whole history
		kept := slices.DeleteFunc(ms, func(m store.Message) bool { return !keep(&m) })
		if len(kept) >= n || all || window > 1<<30 {
			return kept[max(0, len(kept)-n):], nil
		}
	}
}
