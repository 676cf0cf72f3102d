package delivery

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// maxGroupID bounds an MLS group id.
const maxGroupID = 255

// maxWelcomes bounds the Welcomes of one commit.
const maxWelcomes = 10000

// CreateConversation creates a conversation from the caller's epoch-0
// GroupInfo and ratchet tree, which the follower validates. The caller's
// device must be the group's only member.
func (s *Service) CreateConversation(ctx context.Context, sess *Session, req protocol.CreateConversationRequest) (protocol.ConversationInfo, error) {
	if len(req.GroupID) == 0 || len(req.GroupID) > maxGroupID {
		return protocol.ConversationInfo{}, perr(protocol.CodeBadRequest, "group id is %d bytes, want 1 to %d", len(req.GroupID), maxGroupID)
	}
	if !slices.Contains(s.cfg.CipherSuites, req.CipherSuite) {
		return protocol.ConversationInfo{}, perr(protocol.CodeUnsupported, "cipher suite %#04x is not accepted here", req.CipherSuite)
	}
	if int64(len(req.GroupInfo))+int64(len(req.RatchetTree)) > s.cfg.MaxGroupStateBytes {
		return protocol.ConversationInfo{}, perr(protocol.CodeTooLarge, "GroupInfo and ratchet tree are %d bytes, at most %d", len(req.GroupInfo)+len(req.RatchetTree), s.cfg.MaxGroupStateBytes)
	}
	gs, err := s.fol.Start(req.GroupInfo, req.RatchetTree)
	if err != nil {
		return protocol.ConversationInfo{}, perr(protocol.CodeBadMessage, "create conversation: %v", err)
	}
	switch {
	case !bytes.Equal(gs.GroupID, req.GroupID):
		return protocol.ConversationInfo{}, perr(protocol.CodeBadMessage, "create conversation: GroupInfo is for another group id")
	case gs.Suite != req.CipherSuite:
		return protocol.ConversationInfo{}, perr(protocol.CodeBadMessage, "create conversation: GroupInfo suite %#04x, request %#04x", gs.Suite, req.CipherSuite)
	case gs.Epoch != 0:
		return protocol.ConversationInfo{}, perr(protocol.CodeBadMessage, "create conversation: GroupInfo is for epoch %d, want 0", gs.Epoch)
	case len(gs.Members) != 1:
		return protocol.ConversationInfo{}, perr(protocol.CodeBadMessage, "create conversation: group has %d members, want only the creator", len(gs.Members))
	}
	d, err := s.st.Device(ctx, sess.Device)
	if err != nil {
		return protocol.ConversationInfo{}, internal("create conversation: device", err)
	}
	if !bytes.Equal(gs.Members[0].SignatureKey, d.SignatureKey) {
		return protocol.ConversationInfo{}, perr(protocol.CodeBadMessage, "create conversation: the member's signature key is not the caller device's key")
	}
	if err := s.checkLeafCredential(ctx, "create conversation", gs.Members[0], d, true); err != nil {
		return protocol.ConversationInfo{}, err
	}
	c, err := s.st.CreateConversation(ctx, store.NewConversation{GroupID: req.GroupID, Suite: req.CipherSuite, Epoch: 0,
		GroupInfo: req.GroupInfo, Tree: gs.Tree, FollowerState: gs.State, Creator: d.ID, Created: s.now().UTC(), Timer: gs.Timer})
	if errors.Is(err, store.ErrConflict) {
		return protocol.ConversationInfo{}, perr(protocol.CodeConflict, "group id already used")
	} else if err != nil {
		return protocol.ConversationInfo{}, internal("create conversation", err)
	}
	s.log.Info("conversation created", "conversation", c.ID, "device", d.ID)
	s.notify.Publish(Event{Topic: Topic{Device: d.ID}})
	return protocol.ConversationInfo{ID: protocol.ConversationID(c.ID), GroupID: c.GroupID, CipherSuite: c.Suite, Epoch: c.Epoch,
		Head: c.Head, Members: []protocol.DeviceID{protocol.DeviceID(d.ID)}, Created: c.Created.UTC()}, nil
}

// conversation returns a conversation or not_found.
func (s *Service) conversation(ctx context.Context, id store.ConversationID) (store.Conversation, error) {
	c, err := s.st.Conversation(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return c, perr(protocol.CodeNotFound, "no conversation %d", id)
	} else if err != nil {
		return c, internal(fmt.Sprintf("conversation %d", id), err)
	}
	if c.LegacyTree {
		return s.moveLegacyTree(ctx, c)
	}
	return c, nil
}

// requireMember returns not_found for an unknown conversation and
// not_member when the caller's device is not a member.
func (s *Service) requireMember(ctx context.Context, sess *Session, id store.ConversationID) error {
	ok, err := s.st.IsMember(ctx, id, sess.Device)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return internal("membership", err)
	}
	if !ok {
		if _, err := s.conversation(ctx, id); err != nil {
			return err
		}
		return perr(protocol.CodeNotMember, "device %q is not a member of conversation %d", sess.Device, id)
	}
	return nil
}

// Conversations lists the caller device's conversations.
func (s *Service) Conversations(ctx context.Context, sess *Session) (protocol.ConversationList, error) {
	s.ackBarrier(ctx) // cursors include the caller's acknowledgements so far
	ms, err := s.st.Conversations(ctx, sess.Device)
	if err != nil {
		return protocol.ConversationList{}, internal("list conversations", err)
	}
	out := protocol.ConversationList{Conversations: []protocol.ConversationInfo{}}
	for _, m := range ms {
		if m.Left != 0 {
			continue // departed: readable up to the removing commit, but not a member
		}
		c, err := s.st.Conversation(ctx, m.Conversation)
		if err != nil {
			continue
		}
		out.Conversations = append(out.Conversations, protocol.ConversationInfo{ID: protocol.ConversationID(c.ID), GroupID: c.GroupID,
			CipherSuite: c.Suite, Epoch: c.Epoch, Head: c.Head, Cursor: m.Cursor, Created: c.Created.UTC()})
	}
	d, err := s.st.Device(ctx, sess.Device)
	if err != nil {
		return protocol.ConversationList{}, internal("list conversations: device", err)
	}
	out.InboxHead = d.InboxHead
	return out, nil
}

// AccountConversations lists the conversations of which any device of
// the caller's user is a member (revoked devices that were not removed
// yet included, as for GroupInfo): those a new device of the account may
// join by external commit. Cursor is the caller device's for the
// conversations it is a member of, else 0.
func (s *Service) AccountConversations(ctx context.Context, sess *Session) (protocol.ConversationList, error) {
	out, err := s.Conversations(ctx, sess)
	if err != nil {
		return protocol.ConversationList{}, err
	}
	seen := map[protocol.ConversationID]bool{}
	for _, c := range out.Conversations {
		seen[c.ID] = true
	}
	ds, err := s.st.Devices(ctx, sess.User)
	if err != nil {
		return protocol.ConversationList{}, internal("list the account's conversations: devices", err)
	}
	for _, d := range ds {
		if d.ID == sess.Device {
			continue
		}
		ms, err := s.st.Conversations(ctx, d.ID)
		if err != nil {
			return protocol.ConversationList{}, internal("list the account's conversations", err)
		}
		for _, m := range ms {
			id := protocol.ConversationID(m.Conversation)
			if m.Left != 0 || seen[id] {
				continue
			}
			c, err := s.st.Conversation(ctx, m.Conversation)
			if err != nil {
				continue
			}
			seen[id] = true
			out.Conversations = append(out.Conversations, protocol.ConversationInfo{ID: id, GroupID: c.GroupID,
				CipherSuite: c.Suite, Epoch: c.Epoch, Head: c.Head, Created: c.Created.UTC()})
		}
	}
	slices.SortFunc(out.Conversations, func(a, b protocol.ConversationInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Conversation describes one of the caller device's conversations with its
// members.
func (s *Service) Conversation(ctx context.Context, sess *Session, id protocol.ConversationID) (protocol.ConversationInfo, error) {
	cid := store.ConversationID(id)
	if err := s.requireMember(ctx, sess, cid); err != nil {
		return protocol.ConversationInfo{}, err
	}
	s.ackBarrier(ctx) // the cursor includes the caller's acknowledgements so far
	c, err := s.conversation(ctx, cid)
	if err != nil {
		return protocol.ConversationInfo{}, err
	}
	members, err := s.st.Members(ctx, cid)
	if err != nil {
		return protocol.ConversationInfo{}, internal("members", err)
	}
	info := protocol.ConversationInfo{ID: id, GroupID: c.GroupID, CipherSuite: c.Suite, Epoch: c.Epoch, Head: c.Head, Created: c.Created.UTC()}
	for _, m := range members {
		info.Members = append(info.Members, protocol.DeviceID(m))
	}
	if ms, err := s.st.Conversations(ctx, sess.Device); err == nil {
		for _, m := range ms {
			if m.Conversation == cid {
				info.Cursor = m.Cursor
			}
		}
	}
	return info, nil
}

// userIsMember reports whether any device of the user is a member.
func (s *Service) userIsMember(ctx context.Context, id store.ConversationID, user store.UserID) (bool, error) {
	return s.st.UserIsMember(ctx, id, user)
}

// GroupInfo returns the current GroupInfo, and with withTree the ratchet
// tree of its epoch, to member devices and to the other devices of
// member users (for external joins). Without the tree the answer stays
// small however large the group; Tree returns the tree of any kept epoch.
func (s *Service) GroupInfo(ctx context.Context, sess *Session, id protocol.ConversationID, withTree bool) (protocol.GroupInfoResponse, error) {
	cid := store.ConversationID(id)
	c, err := s.conversation(ctx, cid)
	if err != nil {
		return protocol.GroupInfoResponse{}, err
	}
	if err := s.requireMemberUser(ctx, sess, cid, "group info"); err != nil {
		return protocol.GroupInfoResponse{}, err
	}
	res := protocol.GroupInfoResponse{Epoch: c.Epoch, GroupInfo: c.GroupInfo}
	if withTree {
		if res.RatchetTree, err = s.encodedTree(ctx, cid, c.Epoch); err != nil {
			return protocol.GroupInfoResponse{}, err
		}
	}
	return res, nil
}

// Handshake validates and accepts a proposal or commit of the current
// epoch. Authorization: the message's sender leaf must carry the caller
// device's signature key, and the caller must be a member device, or, for
// an external commit (new_member_commit), a device of a user with a member
// device. Proposals from external senders and new members are refused.
// A commit's added leaves must be registered active devices; its Welcomes
// go to the added devices' inboxes in the same transaction. The follower
// state of the epoch's start and the epoch's pending proposals are the
// store's for every handshake: an accepted proposal is stored once, as
// the epoch's next pending proposal (the follower state is not
// rewritten), so commits may include proposals by reference across
// restarts and nodes. An epoch keeps at most MaxPendingProposals
// proposals of at most MaxPendingProposalBytes in all; further proposals
// are refused with too_many_proposals until a commit. A message the caller device already got
// accepted (same bytes, by SHA-256) is answered with the original seq and
// epoch and changes nothing. A member device may join externally only to
// resynchronize (RFC 9420 §12.4.3.2): the commit must remove its old leaf,
// which carries the same registered signature key as the new one; the
// device stays a member with its cursor.
func (s *Service) Handshake(ctx context.Context, sess *Session, id protocol.ConversationID, req protocol.HandshakeRequest) (protocol.HandshakeResponse, error) {
	res, err := s.handshake(ctx, sess, store.ConversationID(id), req)
	result := "accepted"
	if err != nil {
		result = "refused"
		if pe, ok := AsProtocolError(err); ok {
			result = string(pe.Code)
		}
	}
	s.metrics.handshakes.WithLabelValues(result).Inc()
	return res, err
}

// welcomeCount counts the devices the Welcomes name; an entry naming
// none counts once.
func welcomeCount(ws []protocol.Welcome) int {
	n := 0
	for _, w := range ws {
		n += max(1, len(w.Devices))
	}
	return n
}

// maxHandshakeAttempts bounds how often a handshake is revalidated when
// the conversation's follower state changes under it (another proposal
// accepted concurrently, on this or another node).
const maxHandshakeAttempts = 4

// errRaced marks a handshake that lost a race on the follower state
// version; it is revalidated against the new state.
var errRaced = errors.New("delivery: follower state changed concurrently")

func (s *Service) handshake(ctx context.Context, sess *Session, cid store.ConversationID, req protocol.HandshakeRequest) (protocol.HandshakeResponse, error) {
	var zero protocol.HandshakeResponse
	if len(req.Message) == 0 {
		return zero, perr(protocol.CodeBadRequest, "handshake: empty message")
	}
	if int64(len(req.Message)) > s.cfg.MaxMessageBytes {
		return zero, perr(protocol.CodeTooLarge, "handshake: message is %d bytes, at most %d", len(req.Message), s.cfg.MaxMessageBytes)
	}
	if int64(len(req.GroupInfo))+int64(len(req.RatchetTree)) > s.cfg.MaxGroupStateBytes {
		return zero, perr(protocol.CodeTooLarge, "handshake: GroupInfo and ratchet tree are %d bytes, at most %d", len(req.GroupInfo)+len(req.RatchetTree), s.cfg.MaxGroupStateBytes)
	}
	if n := welcomeCount(req.Welcomes); n > maxWelcomes {
		return zero, perr(protocol.CodeTooLarge, "handshake: Welcomes for %d devices, at most %d", n, maxWelcomes)
	}
	hash := sha256.Sum256(req.Message)
	mu := s.convLock(cid)
	mu.Lock()
	defer mu.Unlock()
	for attempt := 1; ; attempt++ {
		res, err := s.handshakeOnce(ctx, sess, cid, req, hash[:])
		if !errors.Is(err, errRaced) {
			return res, err
		}
		if attempt == maxHandshakeAttempts {
			return zero, perr(protocol.CodeUnavailable, "handshake: conversation %d changed concurrently %d times; retry", cid, attempt)
		}
	}
}

// handshakeAttempt is one attempt at a handshake: the request and what
// the attempt read about the conversation and the caller.
type handshakeAttempt struct {
	sess   *Session
	cid    store.ConversationID
	req    protocol.HandshakeRequest
	hash   []byte             // SHA-256 of req.Message
	c      store.Conversation // the conversation as read by this attempt
	member bool               // the calling device is a member
	now    time.Time
}

// handshakeOnce validates and stores a handshake against the stored state
// of the conversation, read afresh: the follower state is always the
// store's, so proposals accepted before a restart or on another node are
// known. It returns errRaced when the store's compare-and-set finds the
// follower state changed since it was read.
//
// The steps: authorize the caller (or answer a retry), let the follower
// process the message, check that its sender is the caller, then accept
// the proposal, or build the commit and store and publish it.
func (s *Service) handshakeOnce(ctx context.Context, sess *Session, cid store.ConversationID, req protocol.HandshakeRequest, hash []byte) (protocol.HandshakeResponse, error) {
	h := &handshakeAttempt{sess: sess, cid: cid, req: req, hash: hash}
	if res, retried, err := s.authorizeHandshake(ctx, h); retried || err != nil {
		return res, err
	}
	fg, ch, err := s.followHandshake(ctx, h)
	if err != nil {
		return protocol.HandshakeResponse{}, err
	}
	// A refused message must not stay in the follower's group.
	accepted := false
	defer func() {
		if !accepted {
			s.fol.Forget(fg, ch)
		}
	}()
	if err := s.checkHandshakeSender(ctx, h, ch); err != nil {
		return protocol.HandshakeResponse{}, err
	}
	if err := s.checkPolicy(h, ch); err != nil {
		return protocol.HandshakeResponse{}, err
	}
	var res protocol.HandshakeResponse
	if !ch.Commit {
		res, err = s.acceptProposal(ctx, h, ch)
	} else {
		var cm store.Commit
		if cm, err = s.buildCommit(ctx, h, ch); err == nil {
			res, err = s.storeCommit(ctx, h, cm)
		}
	}
	accepted = err == nil
	return res, err
}

// authorizeHandshake reads the conversation and refuses what needs no
// validation: a caller that is not a member (nor a device of a member
// user), a stale epoch, a message accepted from another device, and a
// proposal beyond the pending limits. A refusal after the follower
// processed a proposal costs it the group it holds in memory (the group
// would hold the refused proposal), so these come first. A retry of a
// handshake this device already got accepted (the answer was lost) gets
// the original answer, with retried set.
func (s *Service) authorizeHandshake(ctx context.Context, h *handshakeAttempt) (res protocol.HandshakeResponse, retried bool, err error) {
	if h.c, err = s.conversation(ctx, h.cid); err != nil {
		return res, false, err
	}
	if h.member, err = s.st.IsMember(ctx, h.cid, h.sess.Device); err != nil {
		return res, false, internal("handshake: membership", err)
	}
	if !h.member {
		ok, err := s.userIsMember(ctx, h.cid, h.sess.User)
		if err != nil {
			return res, false, internal("handshake: members", err)
		}
		if !ok && !s.cfg.UnsafeSkipMembershipChecks {
			return res, false, perr(protocol.CodeNotMember, "device %q is not a member of conversation %d", h.sess.Device, h.cid)
		}
	}
	prev, err := s.st.HandshakeByHash(ctx, h.cid, h.hash)
	acceptedBefore := err == nil
	switch {
	case err == nil && prev.Sender == h.sess.Device:
		s.log.Debug("handshake retried", "conversation", h.cid, "device", h.sess.Device, "seq", prev.Seq)
		return protocol.HandshakeResponse{Seq: prev.Seq, Epoch: prev.Epoch}, true, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return res, false, internal("handshake: earlier acceptance", err)
	}
	if h.req.Epoch != h.c.Epoch {
		return res, false, protocol.StaleEpoch(h.c.Epoch)
	}
	if acceptedBefore {
		// Signed by the leaf of the device that got it accepted.
		return res, false, perr(protocol.CodeForbidden, "handshake: the message was accepted from another device")
	}
	if len(h.req.GroupInfo) == 0 {
		// Without a GroupInfo only a proposal can be accepted.
		if err := s.checkPending(h.cid, h.c, len(h.req.Message)); err != nil {
			return res, false, err
		}
	}
	return res, false, nil
}

// followHandshake has the follower process the message against the
// conversation's stored state and pending proposals. It returns errRaced
// when a commit ended the epoch since the conversation was read.
func (s *Service) followHandshake(ctx context.Context, h *handshakeAttempt) (FollowedGroup, *Change, error) {
	c := h.c
	h.now = s.stamp()
	fg := FollowedGroup{GroupID: c.GroupID, Suite: c.Suite, Epoch: c.Epoch, GroupInfo: c.GroupInfo, State: c.FollowerState,
		Proposals: c.Proposals, ProposalsDigest: c.ProposalsDigest, Now: h.now}
	var loadErr error
	fg.LoadTree = func() ([]store.TreeNode, error) {
		s.metrics.treeLoads.WithLabelValues("whole").Inc()
		ns, err := s.st.Tree(ctx, h.cid, c.Epoch)
		if err != nil {
			loadErr = err
		}
		return ns, err
	}
	fg.LoadTreeChanges = func(since uint64) ([]store.TreeNode, error) {
		s.metrics.treeLoads.WithLabelValues("changes").Inc()
		return s.st.TreeChanges(ctx, h.cid, since, c.Epoch)
	}
	fg.CatchUpFailed = func(err error) {
		if !errors.Is(err, store.ErrGone) && ctx.Err() == nil { // gone: the node held an epoch older than the history
			s.log.Warn("catching up on commits from the tree changes failed; loading the whole tree", "conversation", h.cid, "epoch", c.Epoch, "err", err)
		}
	}
	fg.LoadProposals = func(from uint64) ([]StoredProposal, error) {
		ps, err := s.st.PendingProposals(ctx, h.cid, c.Epoch, from, c.Proposals)
		if err != nil {
			loadErr = err
			return nil, err
		}
		out := make([]StoredProposal, len(ps))
		for i, p := range ps {
			out[i] = StoredProposal{Message: p.Data, Accepted: p.Created}
		}
		return out, nil
	}
	ch, err := s.fol.Process(fg, h.req.Message, NextState{GroupInfo: h.req.GroupInfo, Tree: h.req.RatchetTree})
	if _, ok := store.CurrentEpoch(loadErr); ok || errors.Is(loadErr, store.ErrGone) {
		// A commit ended the epoch since the conversation was read.
		return fg, nil, fmt.Errorf("%w: %v", errRaced, loadErr)
	} else if loadErr != nil {
		return fg, nil, internal(fmt.Sprintf("handshake: stored state of conversation %d", h.cid), loadErr)
	} else if err != nil {
		return fg, nil, perr(protocol.CodeBadMessage, "handshake for conversation %d: %v", h.cid, err)
	}
	return fg, ch, nil
}

// checkPolicy refuses a handshake that breaks the conversation's roles
// and policy, before anything is stored (docs/protocol.md, "Roles and
// policy"); members check the same.
func (s *Service) checkPolicy(h *handshakeAttempt, ch *Change) error {
	if ch.Policy == nil || s.cfg.UnsafeSkipPolicyChecks {
		return nil
	}
	if err := ch.Policy.Check(); err != nil {
		return perr(protocol.CodePolicyViolation, "handshake for conversation %d: %v", h.cid, err)
	}
	return nil
}

// checkHandshakeSender checks that the message's sender is the calling
// device and may send it: a member's message needs a member device; an
// external commit (RFC 9420 §12.4.3.2) may remove only the joiner's own
// old leaf, and a member device must resync that way so that it stays in
// the group once; other outside senders are refused.
func (s *Service) checkHandshakeSender(ctx context.Context, h *handshakeAttempt, ch *Change) error {
	caller, err := s.st.Device(ctx, h.sess.Device)
	if err != nil {
		return internal("handshake: device", err)
	}
	if !bytes.Equal(ch.SenderKey, caller.SignatureKey) {
		return perr(protocol.CodeForbidden, "handshake: the sender's leaf is not the calling device")
	}
	switch {
	case ch.Sender == SenderMember && !h.member:
		return perr(protocol.CodeNotMember, "device %q is not a member of conversation %d", h.sess.Device, h.cid)
	case ch.Sender == SenderMember:
		return nil
	case ch.Sender == SenderNewMember && ch.Commit:
		resync := false
		for _, l := range ch.Removed {
			if !bytes.Equal(l.SignatureKey, caller.SignatureKey) {
				return perr(protocol.CodeBadMessage, "handshake: an external commit by device %q removes leaf %d, which is not its own", h.sess.Device, l.Index)
			}
			resync = true
		}
		if h.member && !resync {
			return perr(protocol.CodeBadMessage, "handshake: device %q is already a member; its external commit must remove its old leaf (resync)", h.sess.Device)
		}
		return nil
	default:
		return perr(protocol.CodeForbidden, "handshake: proposals from external senders or new members are not accepted")
	}
}

// acceptProposal stores a proposal as the epoch's next pending one and
// publishes it.
func (s *Service) acceptProposal(ctx context.Context, h *handshakeAttempt, ch *Change) (protocol.HandshakeResponse, error) {
	var zero protocol.HandshakeResponse
	if len(h.req.GroupInfo) != 0 || len(h.req.RatchetTree) != 0 || len(h.req.Welcomes) != 0 {
		return zero, perr(protocol.CodeBadRequest, "handshake: a proposal comes without GroupInfo, ratchet tree or Welcomes")
	}
	if err := s.checkPending(h.cid, h.c, len(h.req.Message)); err != nil {
		return zero, err
	}
	e, err := s.st.Propose(ctx, store.Proposal{Conversation: h.cid, Epoch: h.c.Epoch, Proposals: h.c.Proposals, Digest: ch.ProposalsDigest,
		Sender: h.sess.Device, Data: h.req.Message, Hash: h.hash, Created: h.now})
	if err != nil {
		return zero, handshakeStoreError(fmt.Sprintf("proposal to conversation %d", h.cid), err)
	}
	s.notes.note(h.cid, e.Seq, nil)
	s.tails.add(h.cid, []*entryFrame{newEntryFrame(e)})
	s.publishSoon(Event{Topic: Topic{Conversation: h.cid}, Head: e.Seq})
	return protocol.HandshakeResponse{Seq: e.Seq, Epoch: h.c.Epoch}, nil
}

// buildCommit checks a commit's leaves against the registered devices and
// returns what to store: the devices it adds and removes, and the
// Welcomes to deliver.
func (s *Service) buildCommit(ctx context.Context, h *handshakeAttempt, ch *Change) (store.Commit, error) {
	cm := store.Commit{Conversation: h.cid, Epoch: h.c.Epoch, Proposals: h.c.Proposals, Sender: h.sess.Device, Data: h.req.Message, GroupInfo: h.req.GroupInfo,
		Tree: ch.TreeChanges, TreeHistory: s.cfg.TreeHistoryEpochs, FollowerState: ch.State, Hash: h.hash, Created: h.now, Timer: ch.Timer}
	if ch.KeyChanged {
		return cm, perr(protocol.CodeBadMessage, "handshake: a leaf changed its signature key; devices keep one key")
	}
	for _, l := range ch.Updated {
		d, err := s.st.DeviceByKey(ctx, l.SignatureKey)
		if errors.Is(err, store.ErrNotFound) {
			return cm, perr(protocol.CodeBadMessage, "handshake: updated leaf %d is not a registered device", l.Index)
		} else if err != nil {
			return cm, internal("handshake: updated device", err)
		}
		if err := s.checkLeafCredential(ctx, fmt.Sprintf("handshake: updated leaf %d", l.Index), l, d, false); err != nil {
			return cm, err
		}
	}
	adding := map[store.DeviceID]bool{}
	for _, l := range ch.Added {
		d, err := s.st.DeviceByKey(ctx, l.SignatureKey)
		if errors.Is(err, store.ErrNotFound) {
			return cm, perr(protocol.CodeBadMessage, "handshake: added leaf %d is not a registered device", l.Index)
		} else if err != nil {
			return cm, internal("handshake: added device", err)
		}
		if !d.Active() {
			return cm, perr(protocol.CodeBadMessage, "handshake: added leaf %d is device %q, which is revoked or disabled", l.Index, d.ID)
		}
		if err := s.checkLeafCredential(ctx, fmt.Sprintf("handshake: added leaf %d", l.Index), l, d, true); err != nil {
			return cm, err
		}
		if !adding[d.ID] {
			adding[d.ID] = true
			cm.Add = append(cm.Add, d.ID)
		}
	}
	if ch.Sender == SenderNewMember && !adding[h.sess.Device] {
		// An external commit adds the joiner.
		adding[h.sess.Device] = true
		cm.Add = append(cm.Add, h.sess.Device)
	}
	for _, l := range ch.Removed {
		d, err := s.st.DeviceByKey(ctx, l.SignatureKey)
		if err != nil {
			continue // a leaf of no registered device was never a member
		}
		if !adding[d.ID] {
			cm.Remove = append(cm.Remove, d.ID)
		}
	}
	var err error
	cm.Welcomes, err = s.commitWelcomes(h, adding)
	return cm, err
}

// storedBytes is what a commit stores: the message, the GroupInfo, the
// follower state, the changed tree nodes and the Welcomes (each once per
// device it goes to).
func storedBytes(cm store.Commit) int {
	n := len(cm.Data) + len(cm.GroupInfo) + len(cm.FollowerState)
	for _, nd := range cm.Tree {
		n += len(nd.Data)
	}
	for _, w := range cm.Welcomes {
		n += len(w.Data)
	}
	return n
}

// commitWelcomes checks the request's Welcomes: each is checked once and
// goes to the inbox of every device it names, each a device the commit
// adds and named at most once.
func (s *Service) commitWelcomes(h *handshakeAttempt, adding map[store.DeviceID]bool) ([]store.Welcome, error) {
	var out []store.Welcome
	welcomed := map[protocol.DeviceID]bool{}
	for i, w := range h.req.Welcomes {
		if w.Device != "" && len(w.Devices) != 0 {
			return nil, perr(protocol.CodeBadRequest, "handshake: Welcome %d names both device and devices", i)
		}
		to := w.Recipients()
		if len(to) == 0 {
			return nil, perr(protocol.CodeBadRequest, "handshake: Welcome %d names no device", i)
		}
		for _, d := range to {
			if !adding[store.DeviceID(d)] {
				return nil, perr(protocol.CodeBadRequest, "handshake: Welcome %d is for device %.70q, which the commit does not add", i, string(d))
			}
			if welcomed[d] {
				return nil, perr(protocol.CodeBadRequest, "handshake: Welcome %d names device %.70q, which has a Welcome already", i, string(d))
			}
			welcomed[d] = true
		}
		if int64(len(w.Data)) > s.cfg.MaxGroupStateBytes {
			return nil, perr(protocol.CodeTooLarge, "handshake: Welcome %d is %d bytes, at most %d", i, len(w.Data), s.cfg.MaxGroupStateBytes)
		}
		if err := s.fol.CheckWelcome(w.Data, h.c.Suite); err != nil {
			return nil, perr(protocol.CodeBadMessage, "handshake: Welcome %d: %v", i, err)
		}
		for _, d := range to {
			out = append(out, store.Welcome{Device: store.DeviceID(d), Data: w.Data})
		}
	}
	return out, nil
}

// storeCommit stores a commit, which ends the epoch, and publishes it to
// the conversation and to the devices it adds and removes.
func (s *Service) storeCommit(ctx context.Context, h *handshakeAttempt, cm store.Commit) (protocol.HandshakeResponse, error) {
	e, err := s.st.Commit(ctx, cm)
	if err != nil {
		return protocol.HandshakeResponse{}, handshakeStoreError(fmt.Sprintf("commit to conversation %d", h.cid), err)
	}
	c := h.c
	s.log.Info("commit accepted", "conversation", h.cid, "epoch", c.Epoch+1, "device", h.sess.Device, "added", len(cm.Add), "removed", len(cm.Remove))
	s.setEpoch(h.cid, c.GroupID, c.Epoch+1)
	// The tail first, then the wake-up: every member reads the commit
	// from the tail, encoded once, not from the store.
	s.metrics.commitBytes.Observe(float64(storedBytes(cm)))
	s.notes.note(h.cid, e.Seq, cm.Remove)
	s.tails.add(h.cid, []*entryFrame{newEntryFrame(e)})
	es := []Event{{Topic: Topic{Conversation: h.cid}, Head: e.Seq}}
	for _, d := range cm.Add {
		es = append(es, Event{Topic: Topic{Device: d}})
	}
	for _, d := range cm.Remove {
		es = append(es, Event{Topic: Topic{Device: d}})
	}
	s.publishSoon(es...)
	s.snapshotSoon(h.cid)
	return protocol.HandshakeResponse{Seq: e.Seq, Epoch: c.Epoch + 1}, nil
}

// publishSoon publishes es, in order, from a goroutine of its own, so
// that a handshake's answer does not wait for them. A publish wakes the
// writer of every connection that follows the conversation, 10,000
// goroutines in a large one, and the handler's goroutine, preempted
// among them, answered a commit only once most of its fan-out was
// written (0.16–0.3 s at 10,000 members). Connections read the entries
// from the tail in seq order whichever wake-up comes first.
func (s *Service) publishSoon(es ...Event) {
	go func() {
		for _, e := range es {
			s.notify.Publish(e)
		}
	}()
}

// handshakeStoreError maps the error of storing a proposal or commit (op
// names it): a stale epoch is answered with the current one, a lost
// compare-and-set is errRaced (the attempt is revalidated), an invalid
// argument is the caller's bad request, and anything else is internal.
func handshakeStoreError(op string, err error) error {
	if cur, ok := store.CurrentEpoch(err); ok {
		return protocol.StaleEpoch(cur)
	} else if errors.Is(err, store.ErrStaleState) || errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w: %v", errRaced, err)
	} else if errors.Is(err, store.ErrInvalid) {
		return perr(protocol.CodeBadRequest, "handshake: %v", err)
	}
	return internal(op, err)
}

// checkPending refuses a proposal of n bytes that would take the pending
// proposals of the conversation's epoch beyond MaxPendingProposals or
// MaxPendingProposalBytes. The counts are those of the version (epoch,
// proposals) the proposal is stored against, so the limits hold across
// nodes.
func (s *Service) checkPending(cid store.ConversationID, c store.Conversation, n int) error {
	if c.Proposals >= uint64(s.cfg.MaxPendingProposals) {
		return perr(protocol.CodeTooManyProposals, "handshake: conversation %d has %d proposals pending in epoch %d, at most %d; commit them first",
			cid, c.Proposals, c.Epoch, s.cfg.MaxPendingProposals)
	}
	if c.ProposalBytes+int64(n) > s.cfg.MaxPendingProposalBytes {
		return perr(protocol.CodeTooManyProposals, "handshake: a proposal of %d bytes would take the pending proposals of conversation %d in epoch %d to %d bytes, at most %d; commit them first",
			n, cid, c.Epoch, c.ProposalBytes+int64(n), s.cfg.MaxPendingProposalBytes)
	}
	return nil
}

// page clamps a requested page size.
func (s *Service) page(limit int) int {
	if limit <= 0 || limit > s.cfg.MaxPageEntries {
		return s.cfg.MaxPageEntries
	}
	return limit
}

// Entries returns a page of a conversation's log after a seq, to member
// devices, and to departed devices up to the commit that removed them;
// never entries up to the commit that added the device (store.Membership
// Joined) nor of the time a re-added device was out (its gap), whatever
// seq the caller names.
func (s *Service) Entries(ctx context.Context, sess *Session, id protocol.ConversationID, after uint64, limit int) (protocol.EntriesResponse, error) {
	cid := store.ConversationID(id)
	m, err := s.st.Membership(ctx, cid, sess.Device)
	if errors.Is(err, store.ErrNotMember) {
		if _, err := s.conversation(ctx, cid); err != nil {
			return protocol.EntriesResponse{}, err
		}
		return protocol.EntriesResponse{}, perr(protocol.CodeNotMember, "device %q is not a member of conversation %d", sess.Device, cid)
	} else if err != nil {
		return protocol.EntriesResponse{}, internal(fmt.Sprintf("entries of conversation %d: membership", cid), err)
	}
	n := s.page(limit)
	es, more, err := s.readable(ctx, m, after, n)
	if err != nil {
		return protocol.EntriesResponse{}, internal(fmt.Sprintf("entries of conversation %d", cid), err)
	}
	out := protocol.EntriesResponse{Entries: make([]protocol.Entry, 0, len(es)), More: more}
	for _, e := range es {
		out.Entries = append(out.Entries, entry(e))
	}
	return out, nil
}

// readable returns up to n entries after a seq that membership m may read,
// and whether more may follow: never up to m.Joined, nor inside m's gap,
// nor after m.Left for a departed device.
func (s *Service) readable(ctx context.Context, m store.Membership, after uint64, n int) ([]store.Entry, bool, error) {
	after = m.NextReadable(after)
	es, err := s.st.Entries(ctx, m.Conversation, after, n+1)
	if err != nil {
		return nil, false, err
	}
	if m.GapTo != 0 && after < m.GapFrom {
		i := 0
		for i < len(es) && es[i].Seq <= m.GapFrom {
			i++
		}
		switch {
		case i == 0 && len(es) > 0:
			// Nothing readable is left before the gap: read after it.
			if es, err = s.st.Entries(ctx, m.Conversation, m.GapTo, n+1); err != nil {
				return nil, false, err
			}
		case i < len(es):
			// The page ends where the gap begins; the next starts after it.
			return es[:i], true, nil
		}
	}
	more := len(es) > n
	if more {
		es = es[:n]
	}
	if m.Left != 0 {
		for i, e := range es {
			if e.Seq > m.Left {
				return es[:i], false, nil
			}
		}
	}
	return es, more, nil
}

func entry(e store.Entry) protocol.Entry {
	return protocol.Entry{Conversation: protocol.ConversationID(e.Conversation), Seq: e.Seq, Kind: protocol.EntryKind(e.Kind.String()),
		Sender: protocol.DeviceID(e.Sender), Data: e.Data, Time: e.Created.UTC()}
}

func inboxEntry(e store.InboxEntry) protocol.InboxEntry {
	return protocol.InboxEntry{Seq: e.Seq, Conversation: protocol.ConversationID(e.Conversation), Data: e.Data, Time: e.Created.UTC()}
}

// Inbox returns a page of the caller device's inbox after a seq.
func (s *Service) Inbox(ctx context.Context, sess *Session, after uint64, limit int) (protocol.InboxResponse, error) {
	n := s.page(limit)
	es, err := s.st.Inbox(ctx, sess.Device, after, n+1)
	if err != nil {
		return protocol.InboxResponse{}, internal("inbox", err)
	}
	out := protocol.InboxResponse{Entries: make([]protocol.InboxEntry, 0, min(len(es), n))}
	if len(es) > n {
		es, out.More = es[:n], true
	}
	for _, e := range es {
		out.Entries = append(out.Entries, inboxEntry(e))
	}
	return out, nil
}
