package client

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// Conversation is the local view of a conversation.
type Conversation struct {
	// ID is the server's conversation number.
	ID protocol.ConversationID `json:"id"`
	// Name and Topic come from encrypted metadata messages.
	Name  string `json:"name,omitempty"`
	Topic string `json:"topic,omitempty"`
	// Direct is set for a 1:1 conversation: one of exactly two users
	// (Members) that is marked 1:1 or has no name.
	Direct bool `json:"direct,omitempty"`
	// Members are the member users, sorted: those of the MLS group while
	// this device is a member, else those at its removal (without this
	// user, unless another of its devices stays).
	Members []string `json:"members"`
	// Left is set once this device left or was removed.
	Left bool `json:"left,omitempty"`
	// RemovedBy names the user who removed this device from the
	// conversation, when Left and this user did not leave (by Leave, on
	// this or another of its devices).
	RemovedBy string `json:"removed_by,omitempty"`
	// Epoch is the MLS epoch this device is in.
	Epoch uint64 `json:"epoch"`
	// CipherSuite is the group's MLS cipher suite.
	CipherSuite uint16 `json:"cipher_suite"`
	// Created is when this device created or joined it.
	Created time.Time `json:"created"`
	// Unread counts the messages of other users (not deleted) after the
	// read position, which MarkRead and MarkReadUpTo advance.
	Unread int `json:"unread"`
	// Unsafe is set when the server accepted a membership change that
	// this device rejected, or when this device cannot follow the
	// conversation any more (Alarm.Unrecoverable, see EventBadCommit);
	// EventConversationUnsafe reported it. Nothing more is sent in the
	// conversation; Recreate starts a new one with the same members.
	Unsafe *Alarm `json:"unsafe,omitempty"`
	// Unverified are the Members (other users) whose identity key was
	// not verified by comparing safety numbers: trusted on first use
	// only, or changed or lost since. Sorted.
	Unverified []string `json:"unverified,omitempty"`
	// Last is the conversation's latest history entry (message or system
	// line, deleted ones included, expired ones not), for a list's
	// preview and its order by activity; nil when the history is empty.
	// It is the entry this device recorded last that is shown, the
	// highest such local position (Message.Seq): the one
	// History(ctx, ID, 0, 1) returns.
	Last *Message `json:"last,omitempty"`
	// Muted is set when the conversation is muted on this device
	// (SetMuted).
	Muted bool `json:"muted,omitempty"`
	// Channel is set for a channel: a group whose policy lets only
	// admins post (protocol.ActionPost = admins; NewChannel). Members
	// read and react.
	Channel bool `json:"channel,omitempty"`
	// Admin is set when this user may do what the conversation's policy
	// reserves to admins (post in a channel, ...): always in a
	// conversation without a policy. It is false once this device left.
	Admin bool `json:"admin,omitempty"`
	// Timer is the disappearing-message timer of the current epoch (0:
	// off; see SetTimer).
	Timer time.Duration `json:"timer,omitempty"`
}

// Member is one device of a conversation.
type Member struct {
	// User and Device name the leaf.
	User   string            `json:"user"`
	Device protocol.DeviceID `json:"device"`
	// Self marks this device.
	Self bool `json:"self,omitempty"`
	// Verified is set when the safety number with User was compared
	// (always for this account's own devices).
	Verified bool `json:"verified"`
	// IdentityChanged is set while User's new identity key is not
	// acknowledged, or while the key pinned for User is lost and the one
	// presented now is not accepted (ErrTrustRollback).
	IdentityChanged bool `json:"identity_changed,omitempty"`
}

// Conversations lists the profile's conversations, by id.
func (c *Client) Conversations(ctx context.Context) ([]Conversation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Conversation
	err := c.st.View(ctx, func(tx store.Tx) error {
		cvs, err := tx.Conversations()
		if err != nil {
			return err
		}
		lasts, err := tx.LatestMessages()
		if err != nil {
			return err
		}
		latest := make(map[protocol.ConversationID]*store.Message, len(lasts))
		for i := range lasts {
			latest[lasts[i].Conversation] = &lasts[i]
		}
		unread, err := c.unreadCounts(tx, cvs, latest)
		if err != nil {
			return err
		}
		known := map[string]bool{}
		if len(cvs) > 0 {
			out = make([]Conversation, 0, len(cvs))
		}
		for _, cv := range cvs {
			v := c.viewConversation(&cv)
			v.Unverified = c.unverifiedUsers(tx, v.Members, known)
			v.Unread = unread[cv.ID]
			m, err := lastShown(tx, cv.ID, latest[cv.ID])
			if err != nil {
				return err
			}
			if m != nil {
				v.Last = viewMessage(m)
				setMentionsMe(v.Last, c.selfUser())
			}
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: list conversations: %w", err)
	}
	return out, nil
}

// Conversation returns one conversation.
func (c *Client) Conversation(ctx context.Context, conv protocol.ConversationID) (*Conversation, error) {
	if c.id == nil {
		return nil, fmt.Errorf("client: conversation %d: %w", conv, ErrNotRegistered)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out Conversation
	err := c.st.View(ctx, func(tx store.Tx) error {
		cv, err := tx.Conversation(conv)
		if errors.Is(err, store.ErrNotFound) {
			return ErrUnknownConversation
		}
		if err != nil {
			return err
		}
		out = c.viewConversation(cv)
		out.Unverified = c.unverifiedUsers(tx, out.Members, nil)
		ms, err := tx.LastMessages(conv, 1)
		if err != nil {
			return err
		}
		var last *store.Message
		if len(ms) == 1 {
			last = &ms[0]
			shown, err := lastShown(tx, conv, last)
			if err != nil {
				return err
			}
			if shown != nil {
				out.Last = viewMessage(shown)
			}
		}
		out.Unread, err = c.unread(tx, conv, last)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("client: conversation %d: %w", conv, err)
	}
	return &out, nil
}

// lastShown returns the latest entry of conv that History shows, given
// the latest of all (nil when the history is empty): the same unless it
// is an expired message's tombstone.
func lastShown(tx store.Tx, conv protocol.ConversationID, latest *store.Message) (*store.Message, error) {
	if latest == nil || !latest.Expired {
		return latest, nil
	}
	ms, err := lastRecords(tx, conv, 1, func(m *store.Message) bool { return !m.Expired })
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	return &ms[0], nil
}

func (c *Client) viewConversation(cv *store.Conversation) Conversation {
	v := Conversation{ID: cv.ID, Name: cv.Name, Topic: cv.Topic, Members: cv.Members, Left: cv.Left, RemovedBy: cv.RemovedBy, Created: cv.Created,
		Muted: c.muted.has(cv.ID)}
	if g := c.groups[cv.ID]; g != nil {
		v.Epoch, v.CipherSuite = g.Epoch(), uint16(g.CipherSuite())
		v.Timer = c.timerLocked(cv.ID)
		if !g.Active() {
			v.Left = true
		} else {
			v.Members = memberUsers(g)
		}
		v.Channel, v.Admin = channelRole(g, c.id.User, v.Members, c.serverName)
		v.Admin = v.Admin && !v.Left
	}
	// The direct flag travels in a metadata message that any member can
	// send: it counts only while the membership is that of a 1:1
	// conversation, two users. A conversation with a name is a group
	// unless it carries the flag.
	v.Direct = len(v.Members) == 2 && (cv.Direct || v.Name == "") && !v.Channel
	if a := c.unsafe[cv.ID]; a != nil {
		cp := *a
		v.Unsafe = &cp
	}
	return v
}

// Members lists the devices of a conversation with the verification state
// of their users. After this device was removed, it lists the devices of
// the members at the removal, without this device.
func (c *Client) Members(ctx context.Context, conv protocol.ConversationID) ([]Member, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[conv]
	if g == nil {
		return nil, fmt.Errorf("client: members of conversation %d: %w", conv, c.missingGroup(conv))
	}
	var out []Member
	err := c.st.View(ctx, func(tx store.Tx) error {
		stays, err := c.remainingUsers(tx, conv, g)
		if err != nil {
			return err
		}
		for _, m := range g.Members() {
			cr, err := credentialOf(m.Credential)
			if err != nil || (stays != nil && (m.Leaf == g.OwnLeaf() || !slices.Contains(stays, cr.User()))) {
				continue
			}
			mb := Member{User: cr.User(), Device: cr.Device(), Self: m.Leaf == g.OwnLeaf()}
			if cr.User() == c.id.User {
				mb.Verified = true
			} else if ct, err := tx.Contact(cr.User()); err == nil {
				mb.Verified = ct.Verified
				mb.IdentityChanged = len(ct.ChangedKey) != 0
			} else if errors.Is(err, store.ErrTrustRollback) {
				mb.IdentityChanged = true
			}
			out = append(out, mb)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: members of conversation %d: %w", conv, err)
	}
	return out, nil
}

// remainingUsers returns, for a group that removed this device, the
// member users at the removal: the group stays in the epoch before it,
// whose tree still holds this device and whoever the same commit removed.
// It returns nil for a group this device is a member of.
func (c *Client) remainingUsers(tx store.Tx, conv protocol.ConversationID, g *mls.Group) ([]string, error) {
	if g.Active() {
		return nil, nil
	}
	cv, err := tx.Conversation(conv)
	if err != nil {
		return nil, err
	}
	return append([]string{}, cv.Members...), nil
}

// NewGroup creates a conversation named title with the given members (all
// their devices, and this user's other devices). The name travels to the
// members inside MLS only.
func (c *Client) NewGroup(ctx context.Context, title string, members ...string) (protocol.ConversationID, error) {
	if c.id == nil {
		return 0, ErrNotRegistered
	}
	conv, err := c.create(ctx, false, title, members, protocol.DefaultPolicy(c.id.User))
	if err != nil {
		return 0, fmt.Errorf("client: new group %q: %w", title, err)
	}
	return conv, nil
}

// NewDirect returns the 1:1 conversation with user, creating it (a group
// of both users' devices) if none is active.
func (c *Client) NewDirect(ctx context.Context, user string) (protocol.ConversationID, error) {
	if c.id == nil {
		return 0, ErrNotRegistered
	}
	if user == c.id.User {
		return 0, fmt.Errorf("client: new direct conversation with %s: that is this account", user)
	}
	c.mu.Lock()
	var found protocol.ConversationID
	c.st.View(ctx, func(tx store.Tx) error {
		cvs, _ := tx.Conversations()
		for _, cv := range cvs {
			if g := c.groups[cv.ID]; cv.Direct && g != nil && g.Active() && c.unsafe[cv.ID] == nil && slices.Equal(memberUsers(g), sortedPair(c.id.User, user)) {
				found = cv.ID
			}
		}
		return nil
	})
	c.mu.Unlock()
	if found != 0 {
		return found, nil
	}
	conv, err := c.create(ctx, true, "", []string{user}, nil)
	if err != nil {
		return 0, fmt.Errorf("client: new direct conversation with %s: %w", user, err)
	}
	return conv, nil
}

func sortedPair(a, b string) []string {
	s := []string{a, b}
	slices.Sort(s)
	return s
}

// create makes a group with this device, registers it and adds members.
// A group conversation starts with policy (its creator as admin); a 1:1
// conversation has none.
func (c *Client) create(ctx context.Context, direct bool, title string, members []string, policy *protocol.Policy) (protocol.ConversationID, error) {
	if c.id == nil {
		return 0, ErrNotRegistered
	}
	for _, u := range members {
		if !protocol.ValidUserName(u) {
			return 0, fmt.Errorf("user %q: %w", u, ErrUnknownUser)
		}
	}
	// Check every member before anything is created.
	known, err := c.lookupUsers(ctx, members)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := c.suites[0]
	signer, err := c.signer(cs)
	if err != nil {
		return 0, err
	}
	cred, err := c.ownCredential()
	if err != nil {
		return 0, err
	}
	gid := make([]byte, 32)
	rand.Read(gid)
	opts := mls.CreateOptions{Capabilities: leafCapabilities()}
	if !direct && policy != nil && !createWithoutPolicy {
		// A group conversation starts with its policy, its creator as
		// admin; a 1:1 conversation has none (both are equal).
		if opts.Extensions, err = policyExtensions(policy); err != nil {
			return 0, err
		}
	}
	g, err := mls.CreateGroup(c.mlsCfg, cs, gid, signer, cred, opts)
	if err != nil {
		return 0, err
	}
	// The members' KeyPackages are claimed before the group is
	// registered: when a device's client does not support roles yet, the
	// group is made without its policy (as groups were before policies),
	// since such a device could not be added to a group that requires it.
	cands, addErr := c.claimUsers(ctx, g, append([]string{c.id.User}, members...), known)
	var noRoles []string
	if addErr == nil && opts.Extensions != nil {
		if noRoles = usersWithoutRoles(cands); noRoles != nil {
			opts.Extensions = nil
			if g, err = mls.CreateGroup(c.mlsCfg, cs, gid, signer, cred, opts); err != nil {
				return 0, err
			}
		}
	}
	gi, err := g.GroupInfo(mls.GroupInfoOptions{ExternalPub: true})
	if err != nil {
		return 0, err
	}
	tree, err := g.RatchetTree()
	if err != nil {
		return 0, err
	}
	var info protocol.ConversationInfo
	if err := c.call(ctx, "POST", "/v1/conversations", true, protocol.CreateConversationRequest{GroupID: gid, CipherSuite: uint16(cs), GroupInfo: gi, RatchetTree: tree}, &info); err != nil {
		return 0, err
	}
	state, err := g.MarshalBinary()
	if err != nil {
		return 0, err
	}
	conv := info.ID
	err = c.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutGroupState(conv, state); err != nil {
			return err
		}
		return tx.PutConversation(&store.Conversation{ID: conv, GroupID: gid, Direct: direct, Members: []string{c.id.User}, Created: c.cfg.Now()})
	})
	if err != nil {
		return 0, err
	}
	c.groups[conv] = g
	if addErr == nil {
		addErr = c.addCandidatesLocked(ctx, conv, cands)
	}
	if noRoles != nil {
		c.noRolesLineLocked(ctx, conv, noRoles)
	}
	if errors.Is(addErr, errNothingToCommit) {
		addErr = nil
	}
	// The nature (1:1 or group) and the title travel inside MLS, in the
	// first message after the commit that added the members; it names
	// the conversation here too (with its line in the history), also if
	// adding the members failed.
	if title != "" || direct {
		m := content.New(content.KindGroupMetadata, c.cfg.Now())
		if title != "" {
			m.Name = &title
		}
		m.Direct = direct
		if _, err := c.sendLocked(ctx, conv, m); err != nil && addErr == nil {
			return conv, err
		}
	}
	return conv, addErr
}

// errNothingToCommit means a commit's purpose was met meanwhile (for
// example by a concurrent commit).
var errNothingToCommit = errors.New("nothing to commit")

// commitPlan is what one commit attempt sends.
type commitPlan struct {
	opts     mls.CommitOptions
	welcomes []protocol.DeviceID // the devices opts.Add adds
}

// commitLocked creates a commit with build, posts it and merges it once
// the server accepted it. When the server refuses it for a stale epoch,
// the commit is discarded, the missed entries are applied and the commit
// is built again for the new epoch, up to Config.CommitRetries times.
// c.mu is held.
func (c *Client) commitLocked(ctx context.Context, conv protocol.ConversationID, build func(g *mls.Group) (*commitPlan, error)) error {
	for attempt := 0; ; attempt++ {
		g := c.groups[conv]
		if g == nil {
			return c.missingGroup(conv)
		}
		if !g.Active() {
			return ErrNotMember
		}
		if err := c.unsafeError(conv); err != nil {
			return err
		}
		plan, err := build(g)
		if err != nil {
			return err
		}
		pc, err := g.Commit(plan.opts)
		if err != nil {
			return err
		}
		if err := c.checkOwnCommit(ctx, conv, g, pc); err != nil {
			g.DiscardPendingCommit(pc)
			return err
		}
		if len(pc.Dropped) != 0 {
			// Cached proposals that could not be committed together with
			// the rest (mls.CommitOptions.IncludePending); their senders
			// may propose again in the next epoch.
			c.log.Debug("commit left out proposals", "conversation", conv, "epoch", g.Epoch(), "dropped", len(pc.Dropped), "first_reason", pc.Dropped[0].Reason)
		}
		req := protocol.HandshakeRequest{Epoch: g.Epoch(), Message: pc.Message, GroupInfo: pc.GroupInfo}
		if len(plan.welcomes) != 0 {
			// One Welcome serves every added device: it is sent once,
			// naming them all, to keep big adds within the request limit.
			req.Welcomes = []protocol.Welcome{{Devices: plan.welcomes, Data: pc.Welcome}}
		}
		var res protocol.HandshakeResponse
		err = c.call(ctx, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", conv), true, req, &res)
		if err != nil {
			g.DiscardPendingCommit(pc)
			if _, stale := isCode(err, protocol.CodeStaleEpoch); stale && attempt < c.cfg.CommitRetries {
				c.log.Debug("commit refused for a stale epoch; catching up", "conversation", conv, "epoch", req.Epoch)
				if err := c.catchUpLocked(ctx, conv); err != nil {
					return err
				}
				continue
			}
			return err
		}
		if failpoint != nil && failpoint("commit-accepted") {
			// Tests: the device stops before merging its accepted commit.
			g.DiscardPendingCommit(pc)
			return errFailpoint
		}
		ch := c.describeCommit(conv, g, mls.Sender{Type: mls.SenderMember, Leaf: g.OwnLeaf()}, pc.Added, pc.Removed, false)
		before := g.Extensions()
		if err := g.MergePendingCommit(pc); err != nil {
			return fmt.Errorf("merge accepted commit: %v", err)
		}
		// An Add may have made this device the one to give new
		// parent nodes keys.
		c.fillIfNamed(conv, g)
		if plan.opts.SetExtensions {
			ch.lines = append(ch.lines, policyChangeLines(before, g.Extensions(), c.id.User, c.id.Device)...)
		}
		state, err := g.MarshalBinary()
		if err != nil {
			return err
		}
		var lines []Event
		err = c.st.Update(ctx, func(tx store.Tx) error {
			if err := tx.PutGroupState(conv, state); err != nil {
				return err
			}
			var err error
			lines, err = c.putMembershipChange(tx, conv, g, ch, res.Seq, c.cfg.Now())
			return err
		})
		if err != nil {
			c.reloadGroupLocked(ctx, conv)
			return err
		}
		for _, ev := range append(ch.events, lines...) {
			c.ev.push(ev)
		}
		return nil
	}
}

// candidate is a validated KeyPackage of a device to add.
type candidate struct {
	device protocol.DeviceID
	user   string
	kp     []byte
	sigKey []byte
	// roles is set when the KeyPackage's capabilities list the policy
	// extension: its client supports roles and policies.
	roles bool
}

// claimUsers claims and validates a KeyPackage for every device of the
// users (except this device and devices already in g). known holds the
// devices of users looked up already (lookupUser); the others are looked
// up, in batches. The KeyPackages are claimed in batches too. A
// KeyPackage whose credential does not verify under the user's pinned
// identity key is refused (and reported as EventDeviceRejected). A
// failure for this user (whose other devices join later by themselves)
// is skipped; one for any other user fails the whole.
func (c *Client) claimUsers(ctx context.Context, g *mls.Group, users []string, known map[string][]protocol.DeviceInfo) ([]candidate, error) {
	users = uniqueNames(users)
	present := map[protocol.DeviceID]bool{}
	for _, m := range g.Members() {
		if cr, err := credentialOf(m.Credential); err == nil {
			present[cr.Device()] = true
		}
	}
	var missing []string
	for _, user := range users {
		if _, ok := known[user]; !ok {
			missing = append(missing, user)
		}
	}
	if len(missing) > 0 {
		more, err := c.lookupUsers(ctx, missing)
		if err != nil {
			return nil, err
		}
		if known == nil {
			known = more
		} else {
			for u, devs := range more {
				known[u] = devs
			}
		}
	}
	var claim []string
	for _, user := range users {
		devs := known[user]
		need := 0
		for _, d := range devs {
			if !present[d.ID] {
				need++
			}
		}
		if need == 0 {
			if user != c.id.User && len(devs) == 0 {
				return nil, fmt.Errorf("user %s has no device: %w", user, ErrNoKeyPackage)
			}
			continue
		}
		claim = append(claim, user)
	}
	if len(claim) == 0 {
		return nil, nil
	}
	got, err := c.claimKeyPackages(ctx, uint16(g.CipherSuite()), claim)
	if err != nil {
		if len(claim) == 1 && claim[0] == c.id.User {
			return nil, nil // our other devices join later by themselves
		}
		return nil, err
	}
	var out []candidate
	for _, user := range claim {
		r := got[user]
		if r.err != nil {
			if user == c.id.User {
				continue // our other devices join later by themselves
			}
			return nil, fmt.Errorf("claim KeyPackages of %s: %w", user, r.err)
		}
		n := 0
		for _, kp := range r.kps {
			cd, ok, err := c.checkClaimed(ctx, g, user, kp, present)
			if err != nil {
				return nil, err
			}
			if ok {
				present[kp.Device] = true
				out = append(out, cd)
				n++
			}
		}
		if n == 0 && user != c.id.User {
			return nil, fmt.Errorf("no usable KeyPackage of %s: %w", user, ErrNoKeyPackage)
		}
	}
	return out, nil
}

// checkClaimed validates a KeyPackage claimed for user: it must be of the
// group's suite and valid (mls.ValidateKeyPackage, which checks its
// credential against the pinned identity key), name the device it was
// claimed for, of that user, and that device must not be known revoked.
// A refused one is reported (EventDeviceRejected) and not used (false); a
// device already present or this device is skipped.
func (c *Client) checkClaimed(ctx context.Context, g *mls.Group, user string, kp protocol.ClaimedKeyPackage, present map[protocol.DeviceID]bool) (candidate, bool, error) {
	if present[kp.Device] || kp.Device == c.id.Device {
		return candidate{}, false, nil
	}
	info, err := mls.ValidateKeyPackage(c.mlsCfg, g.CipherSuite(), kp.Data)
	if err != nil {
		c.log.Warn("KeyPackage refused", "user", user, "device", kp.Device, "err", err)
		if !errors.Is(err, ErrForgedDevice) {
			c.ev.push(Event{Kind: EventDeviceRejected, User: user, Device: kp.Device, Err: fmt.Errorf("KeyPackage of %s device %s: %w", user, kp.Device, err)})
		}
		return candidate{}, false, nil
	}
	cr, err := credentialOf(info.Credential)
	if err != nil || cr.User() != user || cr.Device() != kp.Device {
		c.ev.push(Event{Kind: EventDeviceRejected, User: user, Device: kp.Device, Err: fmt.Errorf("KeyPackage of %s device %s names another device: %w", user, kp.Device, ErrForgedDevice)})
		return candidate{}, false, nil
	}
	if revoked, err := c.knownRevoked(ctx, kp.Device); err != nil {
		return candidate{}, false, err
	} else if revoked {
		c.ev.push(Event{Kind: EventDeviceRejected, User: user, Device: kp.Device, Err: fmt.Errorf("KeyPackage of %s device %s, which %s revoked", user, kp.Device, user)})
		return candidate{}, false, nil
	}
	return candidate{device: kp.Device, user: user, kp: kp.Data, sigKey: info.SignatureKey,
		roles: slices.Contains(info.Capabilities.Extensions, protocol.PolicyExtensionType)}, true, nil
}

// addUsersLocked adds every device of the users to a conversation.
func (c *Client) addUsersLocked(ctx context.Context, conv protocol.ConversationID, users []string) error {
	g := c.groups[conv]
	if g == nil {
		return c.missingGroup(conv)
	}
	cands, err := c.claimUsers(ctx, g, users, nil)
	if err != nil {
		return err
	}
	if p, err := policyOf(g.Extensions()); err == nil && p != nil {
		if old := usersWithoutRoles(cands); old != nil {
			return fmt.Errorf("%s's client does not support roles, which this conversation has: %s must update Parley first: %w", old[0], old[0], ErrRolesUnsupported)
		}
	}
	return c.addCandidatesLocked(ctx, conv, cands)
}

// addCandidatesLocked adds the claimed devices to a conversation, by
// commits of at most maxCommitAdds devices each (each retried on a stale
// epoch like every commit). When a commit fails after others were
// accepted, the devices those added stay members and the error says how
// many.
func (c *Client) addCandidatesLocked(ctx context.Context, conv protocol.ConversationID, cands []candidate) error {
	if len(cands) == 0 {
		return errNothingToCommit
	}
	committed := false
	for start := 0; start < len(cands); start += maxCommitAdds {
		end := min(start+maxCommitAdds, len(cands))
		err := c.commitLocked(ctx, conv, addPlan(cands[start:end]))
		if errors.Is(err, errNothingToCommit) {
			continue
		}
		if err != nil {
			if committed {
				return fmt.Errorf("%d of %d devices added: %w", start, len(cands), err)
			}
			return err
		}
		committed = true
		report(ctx, Progress{Conversation: conv, Stage: "commit", Done: end, Total: len(cands)})
	}
	if !committed {
		return errNothingToCommit
	}
	return nil
}

// addPlan builds a commit adding the candidates not in the group yet.
func addPlan(cands []candidate) func(g *mls.Group) (*commitPlan, error) {
	return func(g *mls.Group) (*commitPlan, error) {
		present := map[string]bool{}
		for _, m := range g.Members() {
			present[string(m.SignatureKey)] = true
		}
		// The Welcome leaves the tree out: joiners fetch it (tree.go).
		plan := &commitPlan{opts: mls.CommitOptions{ExternalPub: true, IncludePending: true}}
		for _, cd := range cands {
			if present[string(cd.sigKey)] {
				continue
			}
			plan.opts.Add = append(plan.opts.Add, cd.kp)
			plan.welcomes = append(plan.welcomes, cd.device)
		}
		if len(plan.opts.Add) == 0 {
			return nil, errNothingToCommit
		}
		return plan, nil
	}
}

// Add adds every device of user to a conversation, and shares the
// conversation's name and topic with them.
func (c *Client) Add(ctx context.Context, conv protocol.ConversationID, user string) error {
	if err := c.addUsers(ctx, conv, []string{user}); err != nil {
		return fmt.Errorf("client: add %s to conversation %d: %w", user, conv, err)
	}
	return nil
}

// AddUsers adds every device of each of the users to a conversation, and
// shares the conversation's name and topic with them. Any number of
// users may be added at once: they are looked up and claimed in batches
// and their devices added by several commits (see maxCommitAdds);
// WithProgress follows it. Every user is checked before anything is
// committed; when a later commit fails, the devices added before stay.
func (c *Client) AddUsers(ctx context.Context, conv protocol.ConversationID, users ...string) error {
	if err := c.addUsers(ctx, conv, users); err != nil {
		return fmt.Errorf("client: add %s to conversation %d: %w", describeUsers(users), conv, err)
	}
	return nil
}

// describeUsers names the users of an operation: all of a few, else the
// first and the count.
func describeUsers(users []string) string {
	if len(users) <= 3 {
		return strings.Join(users, ", ")
	}
	return fmt.Sprintf("%s and %d other users", users[0], len(users)-1)
}

func (c *Client) addUsers(ctx context.Context, conv protocol.ConversationID, users []string) error {
	if len(users) == 0 {
		return errors.New("no user to add")
	}
	for _, u := range users {
		if !protocol.ValidUserName(u) {
			return fmt.Errorf("user %q: %w", u, ErrUnknownUser)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkSendable(ctx, conv); err != nil {
		return err
	}
	if err := c.addUsersLocked(ctx, conv, users); err != nil {
		if errors.Is(err, errNothingToCommit) {
			return nil
		}
		return err
	}
	var cv *store.Conversation
	c.st.View(ctx, func(tx store.Tx) error {
		cv, _ = tx.Conversation(conv)
		return nil
	})
	if cv != nil && (cv.Name != "" || cv.Topic != "" || cv.Direct) {
		m := content.New(content.KindGroupMetadata, c.cfg.Now())
		m.Name, m.Topic, m.Direct = &cv.Name, &cv.Topic, cv.Direct
		if _, err := c.sendLocked(ctx, conv, m); err != nil {
			return fmt.Errorf("share name: %w", err)
		}
	}
	return nil
}

// leavesOf returns the leaves of user's devices in g.
func leavesOf(g *mls.Group, user string) []mls.LeafIndex {
	var out []mls.LeafIndex
	for _, m := range g.Members() {
		if cr, err := credentialOf(m.Credential); err == nil && cr.User() == user {
			out = append(out, m.Leaf)
		}
	}
	return out
}

// Remove removes every device of user from a conversation. The removed
// devices can read nothing sent after the commit.
func (c *Client) Remove(ctx context.Context, conv protocol.ConversationID, user string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[conv]
	if g == nil {
		return fmt.Errorf("client: remove %s from conversation %d: %w", user, conv, c.missingGroup(conv))
	}
	if user == c.id.User {
		return fmt.Errorf("client: remove %s from conversation %d: use Leave to leave", user, conv)
	}
	if len(leavesOf(g, user)) == 0 {
		return fmt.Errorf("client: remove %s from conversation %d: %s is %w", user, conv, user, ErrNotMember)
	}
	err := c.commitLocked(ctx, conv, func(g *mls.Group) (*commitPlan, error) {
		leaves := leavesOf(g, user)
		if len(leaves) == 0 {
			return nil, errNothingToCommit
		}
		return &commitPlan{opts: mls.CommitOptions{Remove: leaves, IncludePending: true, ExternalPub: true}}, nil
	})
	if err != nil && !errors.Is(err, errNothingToCommit) {
		return fmt.Errorf("client: remove %s from conversation %d: %w", user, conv, err)
	}
	return nil
}

// SelfUpdate commits a fresh leaf key for this device in a conversation
// (post-compromise security). It is also done automatically, see
// Config.SelfUpdateMessages and SelfUpdateInterval.
func (c *Client) SelfUpdate(ctx context.Context, conv protocol.ConversationID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.selfUpdateLocked(ctx, conv); err != nil {
		return fmt.Errorf("client: self-update in conversation %d: %w", conv, err)
	}
	return nil
}

func (c *Client) selfUpdateLocked(ctx context.Context, conv protocol.ConversationID) error {
	return c.selfUpdateWhen(ctx, conv, nil)
}

// selfUpdateWhen commits a self-update of conv; when is asked (if not
// nil) before each attempt, and the commit ends with errNothingToCommit
// once it says no.
func (c *Client) selfUpdateWhen(ctx context.Context, conv protocol.ConversationID, when func(*mls.Group) bool) error {
	start := uint64(0)
	if g := c.groups[conv]; g != nil {
		start = g.Epoch()
	}
	err := c.commitLocked(ctx, conv, func(g *mls.Group) (*commitPlan, error) {
		if when != nil && !when(g) {
			return nil, errNothingToCommit
		}
		return &commitPlan{opts: mls.CommitOptions{ForcePath: true, IncludePending: true, ExternalPub: true}}, nil
	})
	if err != nil {
		return err
	}
	c.log.Debug("self-update", "conversation", conv, "from_epoch", start)
	return c.st.Update(ctx, func(tx store.Tx) error {
		b, _ := json.Marshal(updateState{Last: c.cfg.Now()})
		return tx.SetSetting(updateSetting(conv), b)
	})
}

// updateState counts this device's messages since its last self-update.
type updateState struct {
	Sent int       `json:"sent"`
	Last time.Time `json:"last"`
}

func updateSetting(conv protocol.ConversationID) string { return fmt.Sprintf("self_update/%d", conv) }

// noteSentLocked counts a sent message and reports whether a self-update
// is due.
func (c *Client) noteSentLocked(tx store.Tx, conv protocol.ConversationID) (bool, error) {
	var us updateState
	if b, err := tx.Setting(updateSetting(conv)); err == nil {
		json.Unmarshal(b, &us)
	}
	if us.Last.IsZero() {
		us.Last = c.cfg.Now()
	}
	us.Sent++
	b, _ := json.Marshal(us)
	if err := tx.SetSetting(updateSetting(conv), b); err != nil {
		return false, err
	}
	due := (c.cfg.SelfUpdateMessages > 0 && us.Sent >= c.cfg.SelfUpdateMessages) ||
		(c.cfg.SelfUpdateInterval > 0 && c.cfg.Now().Sub(us.Last) >= c.cfg.SelfUpdateInterval)
	return due, nil
}

// shouldCommitPending reports whether this member should commit the
// proposals cached in g: the member with the lowest leaf that no cached
// proposal removes does it, so that one commit sweeps them.
func (c *Client) shouldCommitPending(g *mls.Group) bool {
	props := g.CachedProposals()
	if len(props) == 0 || !g.Active() {
		return false
	}
	removed := map[mls.LeafIndex]bool{}
	for _, p := range props {
		if p.Type == 3 { // remove
			removed[p.Leaf] = true
		}
	}
	for _, m := range g.Members() {
		if !removed[m.Leaf] {
			return m.Leaf == g.OwnLeaf()
		}
	}
	return false
}

// goCommitPending commits the cached proposals of a conversation in the
// background.
func (c *Client) goCommitPending(conv protocol.ConversationID) {
	c.background(func(ctx context.Context) {
		c.mu.Lock()
		defer c.mu.Unlock()
		err := c.commitLocked(ctx, conv, func(g *mls.Group) (*commitPlan, error) {
			if len(g.CachedProposals()) == 0 {
				return nil, errNothingToCommit
			}
			return &commitPlan{opts: mls.CommitOptions{IncludePending: true, ExternalPub: true}}, nil
		})
		if err != nil && !errors.Is(err, errNothingToCommit) {
			c.log.Warn("commit pending proposals", "conversation", conv, "err", err)
		}
	})
}

func leavingSetting(conv protocol.ConversationID) string { return fmt.Sprintf("leaving/%d", conv) }

// leaving reports whether this user asked to leave the conversation.
func (c *Client) leaving(ctx context.Context, conv protocol.ConversationID) bool {
	var ok bool
	c.st.View(ctx, func(tx store.Tx) error {
		_, err := tx.Setting(leavingSetting(conv))
		ok = err == nil
		return nil
	})
	return ok
}

// Leave makes this user leave a conversation: this device proposes the
// removal of every device of the user, which another member commits
// (a member cannot commit its own removal). Nothing more can be sent; the
// conversation is marked left when the removal is committed.
func (c *Client) Leave(ctx context.Context, conv protocol.ConversationID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[conv]
	if g == nil {
		return fmt.Errorf("client: leave conversation %d: %w", conv, c.missingGroup(conv))
	}
	err := c.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.SetSetting(leavingSetting(conv), []byte{1}); err != nil {
			return err
		}
		cv, err := tx.Conversation(conv)
		if err != nil {
			return err
		}
		cv.Left = true
		return tx.PutConversation(cv)
	})
	if err != nil {
		return fmt.Errorf("client: leave conversation %d: %w", conv, err)
	}
	if err := c.proposeLeaveLocked(ctx, conv); err != nil {
		return fmt.Errorf("client: leave conversation %d: %w", conv, err)
	}
	c.ev.push(Event{Kind: EventConversationLeft, Conversation: conv})
	return nil
}

// proposeLeaveLocked posts Remove proposals for this user's leaves,
// retrying on a stale epoch after catching up.
func (c *Client) proposeLeaveLocked(ctx context.Context, conv protocol.ConversationID) error {
	for attempt := 0; ; attempt++ {
		g := c.groups[conv]
		if g == nil || !g.Active() {
			return nil // already removed
		}
		if c.unsafe[conv] != nil {
			return nil // left for good: this device follows it no more
		}
		var stale bool
		for _, leaf := range leavesOf(g, c.id.User) {
			msg, err := g.ProposeRemove(leaf)
			if err != nil {
				return err
			}
			err = c.call(ctx, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", conv), true, protocol.HandshakeRequest{Epoch: g.Epoch(), Message: msg}, nil)
			if _, ok := isCode(err, protocol.CodeStaleEpoch); ok {
				stale = true
				break
			}
			if err != nil {
				return err
			}
		}
		if !stale {
			// Cached proposals are part of the state.
			state, err := g.MarshalBinary()
			if err != nil {
				return err
			}
			return c.st.Update(ctx, func(tx store.Tx) error { return tx.PutGroupState(conv, state) })
		}
		if attempt >= c.cfg.CommitRetries {
			return fmt.Errorf("proposal refused %d times for a stale epoch", attempt+1)
		}
		c.reloadGroupLocked(ctx, conv)
		if err := c.catchUpLocked(ctx, conv); err != nil {
			return err
		}
	}
}

// goLeave proposes the removal again after a commit that did not include
// it.
func (c *Client) goLeave(conv protocol.ConversationID) {
	c.background(func(ctx context.Context) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := c.proposeLeaveLocked(ctx, conv); err != nil {
			c.log.Warn("propose leave again", "conversation", conv, "err", err)
		}
	})
}

// checkSendable checks that this device may send to a conversation: its
// state was restored whole (see markUnusable), no membership change was
// rejected in it (see checkCommit), it is an active member, has not left,
// and no member's identity change awaits acknowledgement.
func (c *Client) checkSendable(ctx context.Context, conv protocol.ConversationID) error {
	g := c.groups[conv]
	if g == nil {
		return c.missingGroup(conv)
	}
	if err := c.unsafeError(conv); err != nil {
		return err
	}
	if !g.Active() || c.leaving(ctx, conv) {
		return fmt.Errorf("this device left the conversation: %w", ErrNotMember)
	}
	if err := c.trustBlock(ctx, memberUsers(g)); err != nil {
		return err
	}
	if u, ok := c.blocked[conv]; ok {
		return &IdentityChangedError{User: u}
	}
	return nil
}

// failpoint, set by tests, makes the named step fail when it returns true.
var failpoint func(name string) bool

// errFailpoint is returned by a step a failpoint stopped.
var errFailpoint = errors.New("failpoint")
