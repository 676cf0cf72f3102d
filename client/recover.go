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

// Recovery from commits this device cannot process. The server checks
// only the public parts of a commit, so a member (buggy or hostile) can
// get one accepted whose encrypted path secrets, confirmation tag or
// GroupInfo no other member can use. A device that cannot process an
// accepted commit, or that finds an entry of an epoch newer than its own
// (it missed one), rejoins the conversation's current epoch by an external
// commit that replaces its own leaf (resyncLocked; rule (a) of the
// membership rules), and reports who sent the commit (EventBadCommit).
// Rejoining is bounded per conversation (Config.ResyncLimit per
// Config.ResyncWindow, failed attempts included): beyond it the
// conversation gets an alarm (Alarm.Unrecoverable) and must be recreated.
// A member that merged a commit also checks, once per commit, that the
// GroupInfo the server stored with it carries the epoch's external_pub;
// if not, it names the committer and replaces the GroupInfo with a
// self-update (checkGroupInfoAfter). docs/protocol.md, "Recovery from bad
// commits", states the behaviour.

// Recovery says what this device did about a bad commit.
type Recovery int

// The outcomes of a bad commit.
const (
	// RecoveryResynced: this device rejoined the conversation's current
	// epoch by external commit. Messages sent between the bad commit and
	// the rejoin cannot be read on this device.
	RecoveryResynced Recovery = iota + 1
	// RecoveryGaveUp: this device cannot rejoin (it rejoined too often
	// lately, or rejoining kept failing): the conversation is marked
	// unrecoverable (EventConversationUnsafe follows) and must be
	// recreated.
	RecoveryGaveUp
	// RecoveryReplacedGroupInfo: the commit's GroupInfo carried an
	// external_pub that no device can rejoin from; this device replaced
	// it with a self-update.
	RecoveryReplacedGroupInfo
	// RecoveryNone: this device did not replace the bad GroupInfo (a
	// commit came first, or the self-update failed); the next commit of
	// any member replaces it.
	RecoveryNone
)

var recoveryNames = map[Recovery]string{
	RecoveryResynced: "resynced", RecoveryGaveUp: "gave_up",
	RecoveryReplacedGroupInfo: "replaced_group_info", RecoveryNone: "none",
}

// String names the outcome ("resynced", "gave_up", …).
func (r Recovery) String() string {
	if s, ok := recoveryNames[r]; ok {
		return s
	}
	return "unknown"
}

// MarshalText encodes the outcome by name.
func (r Recovery) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// BadCommitError describes a commit the server accepted that this device
// could not use, and what it did about it: the error of an
// EventBadCommit.
type BadCommitError struct {
	Conversation protocol.ConversationID
	// Seq is the server's entry that held the commit, or, with Missed,
	// the first entry of an epoch this device does not have.
	Seq uint64
	// User and Device name the commit's sender: the device the server
	// names as the entry's sender, and its user as the group's
	// credentials know it ("" when the device is not a member).
	User   string
	Device protocol.DeviceID
	// Missed is set when this device found an entry of a newer epoch
	// than its own: it missed a commit, whose sender it cannot name.
	Missed bool
	// Err says what was wrong with the commit.
	Err error
	// Recovery is what this device did.
	Recovery Recovery
}

// who names the commit's sender for messages.
func (e *BadCommitError) who() string {
	switch {
	case e.User != "":
		return fmt.Sprintf("%s (device %s)", e.User, e.Device)
	case e.Device != "":
		return "device " + string(e.Device)
	}
	return "an unknown device"
}

// Error says what happened and what this device did.
func (e *BadCommitError) Error() string {
	var what string
	switch {
	case e.Missed:
		what = fmt.Sprintf("conversation %d: this device missed a commit (entry %d: %v)", e.Conversation, e.Seq, e.Err)
	case e.Recovery == RecoveryReplacedGroupInfo || e.Recovery == RecoveryNone:
		what = fmt.Sprintf("conversation %d: the commit that %s sent in entry %d came with a bad GroupInfo (%v)", e.Conversation, e.who(), e.Seq, e.Err)
	default:
		what = fmt.Sprintf("conversation %d: this device could not process the commit that %s sent in entry %d (%v)", e.Conversation, e.who(), e.Seq, e.Err)
	}
	switch e.Recovery {
	case RecoveryResynced:
		return what + "; it rejoined the conversation by external commit (messages sent between that commit and the rejoin cannot be read here)"
	case RecoveryGaveUp:
		return what + "; it cannot rejoin the conversation: recreate it"
	case RecoveryReplacedGroupInfo:
		return what + "; this device replaced the GroupInfo with a self-update"
	case RecoveryNone:
		return what + "; this device did not replace it (the next commit of any member does)"
	}
	return what
}

// Unwrap returns Err.
func (e *BadCommitError) Unwrap() error { return e.Err }

// event is the EventBadCommit that reports e.
func (e *BadCommitError) event() Event {
	return Event{Kind: EventBadCommit, Conversation: e.Conversation, User: e.User, Device: e.Device, Seq: e.Seq, Err: e}
}

// recoverable reports whether an entry that failed with err should make
// this device rejoin the conversation (recoverLocked): an entry of a newer
// epoch than the group's, or a commit of the current epoch that could not
// be processed. The cases applyEntryLocked handles on purpose (older
// epochs, its own commit, identity changes, refused credentials, unsafe
// conversations) never get here. No recovery while rejoinLocked applies
// the entries before a Welcome (that Welcome replaces the group), nor
// when this device is no member.
func (c *Client) recoverable(g *mls.Group, e protocol.Entry, err error) bool {
	if c.rejoining[e.Conversation] || !g.Active() {
		return false
	}
	var ee *mls.EpochError
	if errors.As(err, &ee) {
		return ee.MessageEpoch > ee.GroupEpoch
	}
	if e.Kind != protocol.KindHandshake {
		return false
	}
	_, _, ct, _, perr := mls.PeekPublicMessage(e.Data)
	return perr == nil && ct == mls.ContentCommit
}

// recoverLocked deals with entry e that this device cannot apply (cause)
// for applyEntryLocked (see recoverable). Within the conversation's
// budget it rejoins the current epoch by external commit (resyncLocked,
// which moves the cursor to the rejoin commit, past e) and reports the
// bad commit; otherwise it marks the conversation unrecoverable. c.mu is
// held.
func (c *Client) recoverLocked(ctx context.Context, g *mls.Group, e protocol.Entry, cause error) error {
	conv := e.Conversation
	bad := describeBadCommit(g, e, cause)
	recent, err := c.recentResyncs(ctx, conv)
	if err != nil {
		return fmt.Errorf("client: recover conversation %d at entry %d: %w", conv, e.Seq, err)
	}
	if len(recent) >= c.cfg.ResyncLimit {
		why := fmt.Sprintf("this device tried to rejoin it %d times in the last %s already", len(recent), c.cfg.ResyncWindow)
		return c.markUnrecoverableLocked(ctx, g, e, bad, why)
	}
	c.log.Warn("commit not processable: rejoining by external commit", "conversation", conv, "seq", e.Seq, "sender_device", e.Sender, "missed", bad.Missed, "err", cause)
	var rerr error
	if failpoint != nil && failpoint("rejoin") {
		rerr = errFailpoint // tests: the rejoin fails for good
	} else {
		rerr = c.resyncLocked(ctx, conv)
	}
	if rerr != nil {
		return c.rejoinFailedLocked(ctx, g, e, bad, recent, rerr)
	}
	if err := c.noteResync(ctx, conv, recent); err != nil {
		c.log.Warn("record rejoin", "conversation", conv, "err", err)
	}
	bad.Recovery = RecoveryResynced
	c.ev.push(bad.event())
	return nil
}

// rejoinFailedLocked handles a failed rejoin (rerr) after entry e, given
// the recent rejoins. A failure that may pass (the server unreachable, a
// race for the epoch lost too often) returns the error: e stays
// unapplied, to be retried with the next sync or connection. A member's
// changed identity key holds the conversation back, as it would hold e.
// Any other failure counts against the budget and returns its error too,
// until the budget is spent: then the conversation is marked
// unrecoverable. c.mu is held.
func (c *Client) rejoinFailedLocked(ctx context.Context, g *mls.Group, e protocol.Entry, bad *BadCommitError, recent []time.Time, rerr error) error {
	conv := e.Conversation
	switch {
	case errors.Is(rerr, ErrIdentityChanged):
		c.blocked[conv] = identityChangedUser(rerr)
		return errBlocked
	case passingError(ctx, rerr):
		return fmt.Errorf("client: conversation %d: rejoin after entry %d: %w", conv, e.Seq, rerr)
	}
	if err := c.noteResync(ctx, conv, recent); err != nil {
		return fmt.Errorf("client: recover conversation %d at entry %d: %w", conv, e.Seq, err)
	}
	if len(recent)+1 >= c.cfg.ResyncLimit {
		return c.markUnrecoverableLocked(ctx, g, e, bad, fmt.Sprintf("rejoining failed: %v", rerr))
	}
	return fmt.Errorf("client: conversation %d: rejoin after entry %d: %w", conv, e.Seq, rerr)
}

// describeBadCommit names the sender of entry e, which failed with cause,
// from the server's sender device and g's credentials.
func describeBadCommit(g *mls.Group, e protocol.Entry, cause error) *BadCommitError {
	bad := &BadCommitError{Conversation: e.Conversation, Seq: e.Seq, Err: cause}
	var ee *mls.EpochError
	if errors.As(cause, &ee) && ee.MessageEpoch > ee.GroupEpoch {
		bad.Missed = true
		return bad
	}
	bad.Device = e.Sender
	for _, m := range g.Members() {
		if cr, err := credentialOf(m.Credential); err == nil && cr.Device() == e.Sender {
			bad.User = cr.User()
			break
		}
	}
	return bad
}

// passingError reports whether a failure that needed the server may pass
// by itself, so that it is retried later (a rejoin, without counting
// against the budget): the server unreachable or busy, the epoch taken
// by other commits CommitRetries times, ctx ended.
func passingError(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrServerUnreachable) {
		return true
	}
	for _, code := range []protocol.ErrorCode{protocol.CodeStaleEpoch, protocol.CodeRateLimited, protocol.CodeInternal, protocol.CodeUnavailable} {
		if _, ok := isCode(err, code); ok {
			return true
		}
	}
	return false
}

// markUnrecoverableLocked marks a conversation unrecoverable at entry e: the alarm
// (the bad commit's sender, why) is stored with the cursor past e, and
// the bad commit and the alarm are reported. The conversation then
// behaves as an unsafe one (see checkCommit): read-only, to be recreated.
// c.mu is held.
func (c *Client) markUnrecoverableLocked(ctx context.Context, g *mls.Group, e protocol.Entry, bad *BadCommitError, why string) error {
	conv := e.Conversation
	bad.Recovery = RecoveryGaveUp
	a := &Alarm{User: bad.User, Device: bad.Device, Unrecoverable: true, Seq: e.Seq, Epoch: g.Epoch(), Time: c.cfg.Now(),
		Reason: fmt.Sprintf("this device could not process the commit that %s sent in entry %d, and %s", bad.who(), e.Seq, why)}
	if bad.Missed {
		a.Reason = fmt.Sprintf("this device missed a commit before entry %d, and %s", e.Seq, why)
	}
	err := c.st.Update(ctx, func(tx store.Tx) error {
		if err := putAlarm(tx, conv, a); err != nil {
			return err
		}
		return tx.SetCursor(conv, e.Seq)
	})
	if err != nil {
		return fmt.Errorf("client: mark conversation %d unrecoverable at entry %d: %w", conv, e.Seq, err)
	}
	c.ev.push(bad.event())
	c.ev.push(c.raiseAlarmLocked(conv, a))
	return nil
}

// resyncSetting names the setting holding the times this device rejoined
// a conversation (or failed to) after a bad commit, within ResyncWindow.
func resyncSetting(conv protocol.ConversationID) string { return fmt.Sprintf("resyncs/%d", conv) }

// recentResyncs returns the times of the rejoins counted against the
// conversation's budget: those within the last ResyncWindow. An
// unreadable record counts as a spent budget, so that damage cannot make
// a device loop.
func (c *Client) recentResyncs(ctx context.Context, conv protocol.ConversationID) ([]time.Time, error) {
	var times []time.Time
	err := c.st.View(ctx, func(tx store.Tx) error {
		b, err := tx.Setting(resyncSetting(conv))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if json.Unmarshal(b, &times) != nil {
			times = make([]time.Time, c.cfg.ResyncLimit)
			for i := range times {
				times[i] = c.cfg.Now()
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read rejoins of conversation %d: %w", conv, err)
	}
	since := c.cfg.Now().Add(-c.cfg.ResyncWindow)
	recent := times[:0]
	for _, t := range times {
		if t.After(since) {
			recent = append(recent, t)
		}
	}
	return recent, nil
}

// noteResync records one more rejoin (or failed attempt) now, after the
// recent ones.
func (c *Client) noteResync(ctx context.Context, conv protocol.ConversationID, recent []time.Time) error {
	b, err := json.Marshal(append(recent, c.cfg.Now()))
	if err != nil {
		return err
	}
	return c.st.Update(ctx, func(tx store.Tx) error { return tx.SetSetting(resyncSetting(conv), b) })
}

// maxGroupInfoCheckMembers bounds the groups whose GroupInfo a member
// checks after each commit: the check fetches the ratchet tree too, which
// grows with the group.
const maxGroupInfoCheckMembers = 64

// checkGroupInfoAfter returns the work to do after a merged commit sc,
// entry e of the conversation: after, and, when this device is the one
// member that checks this commit's GroupInfo, the check
// (goCheckGroupInfo). The checker is the member with the lowest leaf
// other than the committer, in groups of at most maxGroupInfoCheckMembers
// leaves. g is the group after the merge.
func (c *Client) checkGroupInfoAfter(after func(), g *mls.Group, sc *mls.StagedCommit, e protocol.Entry) func() {
	if sc.SelfRemoved || !g.Active() {
		return after
	}
	members := g.Members()
	if len(members) > maxGroupInfoCheckMembers {
		return after
	}
	for _, m := range members {
		if m.Leaf == sc.Committer.Leaf {
			continue
		}
		if m.Leaf != g.OwnLeaf() {
			return after
		}
		break
	}
	// The GroupInfo will be checked to be signed by the committer's
	// leaf: name the committer by that leaf's credential.
	bad := &BadCommitError{Conversation: e.Conversation, Seq: e.Seq, Device: e.Sender}
	if cr, err := memberCredentialOf(g, sc.Committer.Leaf); err == nil {
		bad.User, bad.Device = cr.User(), cr.Device()
	}
	epoch, committer := g.Epoch(), sc.Committer.Leaf
	return func() {
		if after != nil {
			after()
		}
		c.goCheckGroupInfo(epoch, committer, bad)
	}
}

// errBadExternalPub is the fault goCheckGroupInfo finds.
var errBadExternalPub = errors.New("its external_pub is not the epoch's external public key, so no device can rejoin or join from it")

// goCheckGroupInfo checks, in the background, the GroupInfo the server
// stored for epoch (the commit bad describes, by the member at leaf
// committer) with this device's secrets of that epoch, if the
// conversation is still in it. A GroupInfo whose external_pub is wrong is
// replaced by a self-update, and the committer named (EventBadCommit). A
// GroupInfo that does not verify at all is the server's fault, not the
// committer's: it is logged.
func (c *Client) goCheckGroupInfo(epoch uint64, committer mls.LeafIndex, bad *BadCommitError) {
	conv := bad.Conversation
	c.background(func(ctx context.Context) {
		var gi protocol.GroupInfoResponse
		if err := c.call(ctx, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo?tree=0", conv), true, nil, &gi); err != nil {
			c.log.Debug("check GroupInfo: fetch", "conversation", conv, "err", err)
			return
		}
		if gi.Epoch != epoch {
			return // replaced by a later commit's
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		g := c.groups[conv]
		if g == nil || g.Epoch() != epoch || c.unsafe[conv] != nil {
			return
		}
		ok, err := g.CheckGroupInfoExternalPub(gi.GroupInfo, committer)
		if err != nil {
			c.log.Warn("the server's GroupInfo does not verify", "conversation", conv, "epoch", epoch, "err", err)
			return
		}
		if ok {
			return
		}
		bad.Err = errBadExternalPub
		c.log.Warn("GroupInfo with a bad external_pub: replacing it", "conversation", conv, "epoch", epoch, "sender_device", bad.Device)
		err = c.commitLocked(ctx, conv, func(g *mls.Group) (*commitPlan, error) {
			if g.Epoch() != epoch {
				return nil, errNothingToCommit // replaced meanwhile
			}
			return &commitPlan{opts: mls.CommitOptions{ForcePath: true, IncludePending: true, ExternalPub: true}}, nil
		})
		bad.Recovery = RecoveryReplacedGroupInfo
		if err != nil {
			if !errors.Is(err, errNothingToCommit) {
				c.log.Warn("replace GroupInfo", "conversation", conv, "err", err)
			}
			bad.Recovery = RecoveryNone
		}
		c.ev.push(bad.event())
	})
}
