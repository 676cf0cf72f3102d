package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// Internal outcomes of applying an entry.
var (
	// errUnjoined: an entry of a conversation whose Welcome was not
	// processed yet.
	errUnjoined = errors.New("conversation not joined yet")
	// errBlocked: the conversation waits for an identity acknowledgement,
	// or is refused for an unusable state (Client.unusable).
	errBlocked = errors.New("conversation held back")
)

// cursor returns the stored cursor of a conversation (or the inbox).
func (c *Client) cursor(ctx context.Context, conv protocol.ConversationID) (uint64, error) {
	var cur uint64
	err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		cur, err = tx.Cursor(conv)
		return err
	})
	return cur, err
}

// applyEntryLocked applies one log entry in seq order: it processes the
// MLS message and writes the group state, the message's effect on the
// history and the cursor in one transaction. Entries at or below the
// cursor are skipped. c.mu is held. It returns errUnjoined or errBlocked
// when the entry must be applied later; other errors are store failures
// (the entry is not applied and the group is reloaded).
func (c *Client) applyEntryLocked(ctx context.Context, e protocol.Entry) error {
	conv := e.Conversation
	if _, ok := c.blocked[conv]; ok {
		return errBlocked
	}
	if _, ok := c.unusable[conv]; ok {
		return errBlocked
	}
	g := c.groups[conv]
	if g == nil {
		return errUnjoined
	}
	cur, err := c.cursor(ctx, conv)
	if err != nil {
		return err
	}
	if e.Seq <= cur {
		return nil
	}
	var (
		events  []Event
		write   stateWrite // what of the group state changed and must be written
		applied bool       // an application message was decrypted: remember its ciphertext
		apply   func(tx store.Tx) error
		after   func()
		alarm   *Alarm // a membership change rejected (see checkCommit)
	)
	// In an unsafe conversation this device stays in the epoch before the
	// rejected change: it still reads the messages of that epoch, and
	// skips quietly what belongs to the epochs it refused.
	unsafe := c.unsafe[conv] != nil
	reject := func(a *Alarm) {
		a.Seq, a.Epoch, a.Time = e.Seq, g.Epoch(), c.cfg.Now()
		alarm = a
		apply = func(tx store.Tx) error { return putAlarm(tx, conv, a) }
	}
	fail := func(err error) {
		c.log.Warn("entry not applied", "conversation", conv, "seq", e.Seq, "kind", e.Kind, "err", err)
		events = append(events, Event{Kind: EventError, Conversation: conv,
			Err: fmt.Errorf("conversation %d entry %d: %w", conv, e.Seq, err)})
	}
	switch e.Kind {
	case protocol.KindApplication:
		if len(e.Data) == 0 {
			// The server emptied it: the message expired under the
			// conversation's disappearing-message timer.
			c.log.Debug("expired entry skipped", "conversation", conv, "seq", e.Seq)
			break
		}
		if e.Sender == c.id.Device {
			// Our own message, in the history since it was sent; if it
			// is still queued, the server stored it without our
			// learning it: it leaves the outbox, not to be sent twice.
			// One the store does not know at all was sent from a newer
			// copy of this profile: this state is stale (stale.go).
			apply = func(tx store.Tx) error {
				m, known, err := ownEntryKnown(tx, e)
				if m != nil {
					events = append(events, Event{Kind: EventDelivered, Conversation: conv, Message: m})
				}
				if err == nil && !known && !c.stale[conv] {
					c.log.Warn("this device's state is older than its messages in the log", "conversation", conv, "seq", e.Seq)
					c.stale[conv] = true
				}
				return err
			}
			break
		}
		p, err := g.Process(e.Data)
		if errors.Is(err, mls.ErrReplay) {
			first, same, lerr := c.appliedBefore(ctx, conv, e.Data)
			if lerr != nil {
				return fmt.Errorf("client: entry %d of conversation %d: %w", e.Seq, conv, lerr)
			}
			if same {
				// The same ciphertext posted twice (a sender that
				// crashed before learning its post succeeded): shown
				// once.
				c.log.Debug("replayed message ignored", "conversation", conv, "seq", e.Seq, "first_seq", first)
				break
			}
			// Another ciphertext under a key already used: the sender
			// reused a message key, or the entry is forged.
			c.log.Warn("message key used twice", "conversation", conv, "seq", e.Seq, "sender_device", e.Sender)
			events = append(events, Event{Kind: EventError, Conversation: conv,
				Err: fmt.Errorf("conversation %d entry %d from device %s: its key decrypted another message already: %w", conv, e.Seq, e.Sender, ErrKeyReused)})
			break
		}
		var ee *mls.EpochError
		if err != nil && unsafe && errors.As(err, &ee) && ee.MessageEpoch > ee.GroupEpoch {
			c.log.Debug("message of a rejected epoch skipped", "conversation", conv, "seq", e.Seq, "epoch", ee.MessageEpoch)
			break
		}
		if err != nil && c.recoverable(g, e, err) {
			return c.recoverLocked(ctx, g, e, err)
		}
		if err != nil {
			fail(err)
			break
		}
		if p.Kind != mls.KindApplication {
			fail(errors.New("application entry holds a handshake message"))
			write = writeFull
			break
		}
		write, applied = messageWrite(), true
		m, err := content.Decode(p.ApplicationData)
		if err != nil {
			fail(err)
			break
		}
		cred, err := c.memberCredential(g, p.Sender.Leaf)
		if err != nil {
			fail(err)
			break
		}
		apply = func(tx store.Tx) error {
			evs, err := c.applyContent(tx, conv, m, cred.User(), cred.Device(), e.Seq, e.Time)
			events = append(events, evs...)
			return err
		}
	case protocol.KindHandshake:
		if unsafe {
			c.log.Debug("handshake skipped in an unsafe conversation", "conversation", conv, "seq", e.Seq)
			break
		}
		p, err := g.Process(e.Data)
		var ee *mls.EpochError
		switch {
		case errors.As(err, &ee) && ee.MessageEpoch < ee.GroupEpoch:
			// A commit or proposal of an epoch this member left already:
			// its own commit coming back, or a proposal no one committed.
		case errors.Is(err, mls.ErrOwnCommit):
			// This device's commit was accepted, but the device stopped
			// before merging it: rejoin by external commit.
			if rerr := c.resyncLocked(ctx, conv); rerr != nil {
				fail(fmt.Errorf("resynchronize after an own commit that was not merged: %w", rerr))
				break
			}
			return nil
		case errors.Is(err, ErrIdentityChanged):
			c.blocked[conv] = identityChangedUser(err)
			return errBlocked
		case errors.Is(err, ErrForgedDevice), errors.Is(err, errCredentialReplaced), errors.Is(err, errCertificateRefused):
			// The server accepted a leaf that no member may accept (its
			// own checks refuse it too): rejected, like a forbidden join.
			reject(&Alarm{Reason: fmt.Sprintf("a handshake message with a refused credential: %v", err)})
		case err != nil && passingError(ctx, err):
			// A check that needed the server (a member's identity key)
			// could not reach it: the entry waits for the next try.
			return fmt.Errorf("client: entry %d of conversation %d: %w", e.Seq, conv, err)
		case err != nil && c.recoverable(g, e, err):
			// A commit this device cannot process, or one it missed.
			return c.recoverLocked(ctx, g, e, err)
		case err != nil:
			fail(err)
		case p.Kind == mls.KindProposal:
			a := checkProposal(p.Proposal)
			if a == nil {
				a = checkPolicyProposal(g, p.Proposal, c.serverName)
			}
			if a != nil {
				// Drop the cached proposal: the group is read again from
				// the store, which does not hold it.
				c.reloadGroupLocked(ctx, conv)
				if g = c.groups[conv]; g == nil {
					return fmt.Errorf("client: reject proposal in entry %d of conversation %d: %w", e.Seq, conv, c.missingGroup(conv))
				}
				reject(a)
				break
			}
			write = writeFull
			if c.shouldCommitPending(g) {
				after = func() { c.goCommitPending(conv) }
			}
		case p.Kind == mls.KindCommit:
			sc := p.Commit
			a, cerr := c.checkCommit(ctx, conv, g, sc)
			if cerr != nil {
				g.DiscardStagedCommit(sc)
				return fmt.Errorf("client: check commit in entry %d of conversation %d: %w", e.Seq, conv, cerr)
			}
			if a != nil {
				// Rejected before the merge: this device stays in the
				// old epoch, whose secrets the joiner never had.
				g.DiscardStagedCommit(sc)
				reject(a)
				break
			}
			ch := c.describeCommit(conv, g, sc.Committer, sc.Added, sc.Removed, sc.SelfRemoved)
			evs := ch.events
			before, actor := g.Extensions(), committerCredential(g, sc.Committer, sc.Added)
			if err := g.MergeStagedCommit(sc); err != nil {
				fail(err)
				break
			}
			if sc.ExtensionsChanged && actor != nil {
				ch.lines = append(ch.lines, policyChangeLines(before, g.Extensions(), actor.User(), actor.Device())...)
			}
			write = writeFull
			events = append(events, evs...)
			if sc.SelfRemoved {
				events = append(events, Event{Kind: EventConversationLeft, Conversation: conv})
			} else if c.leaving(ctx, conv) {
				after = func() { c.goLeave(conv) }
			}
			after = c.checkGroupInfoAfter(after, g, sc, e)
			after = c.fillAfter(after, conv, g)
			apply = func(tx store.Tx) error {
				lines, err := c.putMembershipChange(tx, conv, g, ch, e.Seq, e.Time)
				events = append(events, lines...)
				return err
			}
		}
	default:
		fail(fmt.Errorf("unknown entry kind %q", e.Kind))
	}
	put, err := groupWriter(g, conv, write)
	if err != nil {
		return err
	}
	err = c.st.Update(ctx, func(tx store.Tx) error {
		if err := put(tx); err != nil {
			return err
		}
		if applied {
			if err := recordApplied(tx, conv, e.Seq, e.Data); err != nil {
				return err
			}
		}
		if apply != nil {
			if err := apply(tx); err != nil {
				return err
			}
		}
		return tx.SetCursor(conv, e.Seq)
	})
	if err != nil {
		c.reloadGroupLocked(ctx, conv)
		return fmt.Errorf("client: store entry %d of conversation %d: %w", e.Seq, conv, err)
	}
	if alarm != nil {
		events = append(events, c.raiseAlarmLocked(conv, alarm))
	}
	for _, ev := range events {
		c.ev.push(ev)
	}
	if after != nil {
		after()
	}
	return nil
}

// identityChangedUser extracts the user from a credential error: its
// *IdentityChangedError, or the text "… identity of NAME changed …".
func identityChangedUser(err error) string {
	if u := changedUserOf(err); u != "" {
		return u
	}
	s := err.Error()
	if i := strings.Index(s, "identity of "); i >= 0 {
		s = s[i+len("identity of "):]
		if j := strings.IndexByte(s, ' '); j >= 0 {
			return s[:j]
		}
	}
	return ""
}

// stateWrite says which part of a group's state an operation changed; the
// zero value says nothing did.
type stateWrite int

const (
	// writeRatchet: only the secret trees changed (an application message
	// was encrypted or decrypted; see messageWrite).
	writeRatchet stateWrite = iota + 1
	// writeFull: the group changed otherwise (a merge, a proposal).
	writeFull
)

// groupWriter encodes the part of g's state that w names and returns the
// function that stores it in a transaction, following the rule of the
// mls package: the small ratchet state after application messages, the
// full state (which drops the ratchet state) after merges and proposals.
func groupWriter(g *mls.Group, conv protocol.ConversationID, w stateWrite) (func(store.Tx) error, error) {
	switch w {
	case writeRatchet:
		state, err := g.RatchetState()
		if err != nil {
			return nil, fmt.Errorf("marshal ratchet state of conversation %d: %v", conv, err)
		}
		return func(tx store.Tx) error { return tx.PutRatchetState(conv, state) }, nil
	case writeFull:
		state, err := g.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("marshal group of conversation %d: %v", conv, err)
		}
		return func(tx store.Tx) error { return tx.PutGroupState(conv, state) }, nil
	}
	return func(store.Tx) error { return nil }, nil
}

// messageWrite says what to store after an application message was
// encrypted or decrypted: the ratchet state. It is enough whatever the
// message did to the secret tree, the first message of a sender in an
// epoch included (it splits node secrets down to the sender's leaf):
// mls.Group.ApplyRatchetState accepts any ratchet state written after the
// full state it is applied to.
func messageWrite() stateWrite { return writeRatchet }

// appliedSlots is how many entries of a conversation, by seq, are
// remembered with the digest of the application message they held, to
// tell a ciphertext posted twice from a message key used twice (see
// appliedBefore): far more entries than arrive while a crashed sender
// restarts and posts its queued message again. A duplicate of an older
// entry is reported as a key reuse.
const appliedSlots = 1024

// appliedSetting names the setting that remembers the application
// message of entry seq (slot seq mod appliedSlots).
func appliedSetting(conv protocol.ConversationID, seq uint64) string {
	return fmt.Sprintf("applied/%d/%d", conv, seq%appliedSlots)
}

// recordApplied remembers, in the transaction that applies it, that
// entry seq of conv held the application message data: the entry's seq
// (8 bytes, big endian) and the SHA-256 of data.
func recordApplied(tx store.Tx, conv protocol.ConversationID, seq uint64, data []byte) error {
	d := sha256.Sum256(data)
	return tx.SetSetting(appliedSetting(conv, seq), append(binary.BigEndian.AppendUint64(nil, seq), d[:]...))
}

// appliedBefore reports whether the application message data was applied
// already in one of the last appliedSlots entries of conv, and at which
// seq. It reads every slot: it runs only for a message refused as a
// replay.
func (c *Client) appliedBefore(ctx context.Context, conv protocol.ConversationID, data []byte) (seq uint64, ok bool, err error) {
	d := sha256.Sum256(data)
	err = c.st.View(ctx, func(tx store.Tx) error {
		for i := range uint64(appliedSlots) {
			v, err := tx.Setting(appliedSetting(conv, i))
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if len(v) == 8+sha256.Size && bytes.Equal(v[8:], d[:]) {
				seq, ok = binary.BigEndian.Uint64(v), true
				return nil
			}
		}
		return nil
	})
	return seq, ok, err
}

// reloadGroupLocked restores a conversation's group from the store after
// a failed write, so memory never runs ahead of the store. The failed
// write is often a cancelled ctx, so the reload does not depend on it. If
// the group cannot be read, it is dropped from memory (the conversation
// is unknown until the store is opened again) rather than used ahead of
// the store. c.mu is held.
func (c *Client) reloadGroupLocked(ctx context.Context, conv protocol.ConversationID) {
	var g *mls.Group
	err := c.st.View(context.WithoutCancel(ctx), func(tx store.Tx) error {
		var err error
		g, err = c.readGroup(tx, conv)
		return err
	})
	switch {
	case errors.Is(err, ErrStateUnusable):
		c.markUnusable(conv, err)
		return
	case err != nil:
		if !errors.Is(err, store.ErrNotFound) {
			c.log.Warn("group dropped from memory: reload failed", "conversation", conv, "err", err)
		}
		delete(c.groups, conv)
		return
	}
	c.groups[conv] = g
}

// memberCredential decodes the credential of a member of g.
func (c *Client) memberCredential(g *mls.Group, leaf mls.LeafIndex) (*Credential, error) {
	m, ok := g.Member(leaf)
	if !ok {
		return nil, fmt.Errorf("sender leaf %d is not a member", leaf)
	}
	return credentialOf(m.Credential)
}

// membershipEvents describes added and removed leaves.
func (c *Client) membershipEvents(conv protocol.ConversationID, added, removed []mls.Member) []Event {
	var evs []Event
	for _, m := range added {
		if cr, err := credentialOf(m.Credential); err == nil {
			evs = append(evs, Event{Kind: EventMemberJoined, Conversation: conv, User: cr.User(), Device: cr.Device()})
		}
	}
	for _, m := range removed {
		if cr, err := credentialOf(m.Credential); err == nil {
			evs = append(evs, Event{Kind: EventMemberLeft, Conversation: conv, User: cr.User(), Device: cr.Device()})
		}
	}
	return evs
}

// memberUsers returns the users with a leaf in g, sorted.
func memberUsers(g *mls.Group) []string {
	var users []string
	for _, m := range g.Members() {
		if cr, err := credentialOf(m.Credential); err == nil {
			users = append(users, cr.User())
		}
	}
	// Sorted then compacted, not checked one by one: a channel has
	// thousands of members.
	slices.Sort(users)
	return slices.Compact(users)
}

// putConversationMembers records the member users of a conversation.
func (c *Client) putConversationMembers(tx store.Tx, conv protocol.ConversationID, g *mls.Group, left bool) error {
	cv, err := tx.Conversation(conv)
	if err != nil {
		return err
	}
	cv.Members = memberUsers(g)
	if left {
		cv.Left = true
	}
	return tx.PutConversation(cv)
}

// applyInboxLocked joins the conversation of a Welcome from the inbox.
// c.mu is held.
func (c *Client) applyInboxLocked(ctx context.Context, ie protocol.InboxEntry) error {
	cur, err := c.cursor(ctx, store.InboxCursor)
	if err != nil {
		return err
	}
	if ie.Seq <= cur {
		return nil
	}
	conv := ie.Conversation
	skip := func(why error) error {
		if why != nil {
			c.log.Warn("Welcome not used", "conversation", conv, "seq", ie.Seq, "err", why)
			c.ev.push(Event{Kind: EventError, Conversation: conv, Err: fmt.Errorf("join conversation %d: %w", conv, why)})
		}
		return c.st.Update(ctx, func(tx store.Tx) error { return tx.SetCursor(store.InboxCursor, ie.Seq) })
	}
	// A Welcome for a conversation whose group is still active is either
	// one already used, or a re-add: this device was removed and added
	// again while it was not following (see rejoinLocked).
	old := c.groups[conv]
	active := old != nil && old.Active()
	refs, cs, err := welcomeRefs(ie.Data)
	if err != nil {
		return skip(err)
	}
	var ref []byte
	var sec keyPackageSecret
	c.st.View(ctx, func(tx store.Tx) error {
		for _, r := range refs {
			if b, err := tx.KeyPackage(r); err == nil && json.Unmarshal(b, &sec) == nil {
				ref = r
				return nil
			}
		}
		return nil
	})
	if ref == nil {
		if active {
			return skip(nil) // used already
		}
		return skip(errors.New("the Welcome is for none of this device's KeyPackages"))
	}
	signer, err := c.signer(cs)
	if err != nil {
		return skip(err)
	}
	bundle, err := mls.NewKeyPackageBundle(sec.KeyPackage, signer, sec.Init, sec.Enc)
	if err != nil {
		return skip(err)
	}
	// The tree travels out of band: the server's tree of the Welcome's
	// epoch, checked against the tree hash the Welcome's GroupInfo names.
	g, err := mls.JoinFromWelcome(c.mlsCfg, ie.Data, bundle, mls.JoinOptions{
		FetchRatchetTree: func(epoch uint64) ([]byte, error) { return c.fetchTree(ctx, conv, epoch) },
	})
	if failpoint != nil && failpoint("welcome-unreachable") {
		err = fmt.Errorf("look up a member: %w: failpoint", ErrServerUnreachable)
	}
	var rejoined uint64 // the seq of the external commit that joined instead
	if _, gone := isCode(err, protocol.CodeGone); gone && !active {
		// The Welcome waited longer than the server keeps its epoch's
		// tree: this device's leaf is in the group, and it takes it over
		// by external commit. The entries before that commit are lost.
		c.log.Warn("Welcome too old for its tree; joining by external commit", "conversation", conv, "err", err)
		g, rejoined, err = c.externalRejoin(ctx, conv, c.leafOf)
	}
	if errors.Is(err, ErrIdentityChanged) {
		return errBlocked // kept in the inbox until acknowledged
	}
	if err != nil && passingError(ctx, err) {
		// The server or the network failed the join (a member's
		// lookup, the tree), not the Welcome: it stays in the inbox
		// for the next sync.
		return fmt.Errorf("client: join conversation %d: %w", conv, err)
	}
	if err != nil {
		return skip(err)
	}
	var info protocol.ConversationInfo
	if err := c.call(ctx, "GET", fmt.Sprintf("/v1/conversations/%d", conv), true, nil, &info); err != nil {
		if _, gone := isCode(err, protocol.CodeNotMember); gone {
			// Removed again before this device fetched the Welcome.
			return skip(fmt.Errorf("this device was removed from conversation %d before it joined", conv))
		}
		return err
	}
	if string(info.GroupID) != string(g.GroupID()) {
		return skip(fmt.Errorf("server's group id for conversation %d differs from the Welcome's", conv))
	}
	// A conversation keeps its MLS group for life: a Welcome into another
	// group under the id of one this device knows (and left) would graft
	// that group onto the old one's name, history and 1:1 flag.
	if known, err := c.storedGroupID(ctx, conv); err != nil {
		return err
	} else if known != nil && string(known) != string(g.GroupID()) {
		return skip(fmt.Errorf("the Welcome is for another MLS group than conversation %d has on this device: refused", conv))
	}
	if active {
		if g.Epoch() <= old.Epoch() || string(g.GroupID()) != string(old.GroupID()) {
			return skip(nil) // used already
		}
		if err := c.rejoinLocked(ctx, conv, info.Cursor); err != nil {
			return err
		}
	}
	if rejoined > 0 {
		info.Cursor = rejoined
	}
	state, err := g.MarshalBinary()
	if err != nil {
		return err
	}
	users := memberUsers(g)
	var joined []Event
	err = c.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutGroupState(conv, state); err != nil {
			return err
		}
		cv := &store.Conversation{ID: conv, GroupID: g.GroupID(), Members: users, Created: c.cfg.Now()}
		if old, err := tx.Conversation(conv); err == nil && string(old.GroupID) == string(g.GroupID()) {
			cv.Name, cv.Topic, cv.Direct = old.Name, old.Topic, old.Direct
		}
		if err := tx.PutConversation(cv); err != nil {
			return err
		}
		if err := tx.SetCursor(conv, info.Cursor); err != nil {
			return err
		}
		var err error
		if joined, err = c.putJoined(tx, conv, info.Cursor); err != nil {
			return err
		}
		if !sec.LastResort {
			if err := tx.DeleteKeyPackage(ref); err != nil {
				return err
			}
		}
		return tx.SetCursor(store.InboxCursor, ie.Seq)
	})
	if err != nil {
		return fmt.Errorf("client: store joined conversation %d: %w", conv, err)
	}
	c.groups[conv] = g
	delete(c.unusable, conv) // added again: the Welcome's group is whole
	if sec.LastResort {
		c.markLastResortUsed(cs) // replaced by the replenishment below
	}
	c.fillIfNamed(conv, g)
	c.ev.push(Event{Kind: EventConversationJoined, Conversation: conv})
	for _, ev := range joined {
		c.ev.push(ev)
	}
	c.background(func(ctx context.Context) {
		if err := c.replenishKeyPackages(ctx); err != nil {
			c.log.Warn("replenish KeyPackages", "err", err)
		}
	})
	return nil
}

// storedGroupID returns the MLS group id that the store records for conv
// (a non-nil empty slice for a record without one), or nil if the
// conversation is unknown.
func (c *Client) storedGroupID(ctx context.Context, conv protocol.ConversationID) ([]byte, error) {
	var gid []byte
	err := c.st.View(ctx, func(tx store.Tx) error {
		cv, err := tx.Conversation(conv)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		gid = append([]byte{}, cv.GroupID...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: read conversation %d: %w", conv, err)
	}
	return gid, nil
}

// background runs f in a goroutine bound to the Client's life.
func (c *Client) background(f func(ctx context.Context)) {
	if c.life.Err() != nil {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f(c.life)
	}()
}

// pullInboxLocked fetches and applies the inbox over HTTP, then
// acknowledges it.
func (c *Client) pullInboxLocked(ctx context.Context) error {
	for {
		cur, err := c.cursor(ctx, store.InboxCursor)
		if err != nil {
			return err
		}
		var in protocol.InboxResponse
		if err := c.call(ctx, "GET", fmt.Sprintf("/v1/inbox?after=%d", cur), true, nil, &in); err != nil {
			return fmt.Errorf("client: fetch inbox: %w", err)
		}
		for _, ie := range in.Entries {
			if err := c.applyInboxLocked(ctx, ie); err != nil && !errors.Is(err, errBlocked) {
				return err
			}
		}
		if n, err := c.cursor(ctx, store.InboxCursor); err == nil && n > 0 {
			c.ackHTTP(ctx, nil, n)
		}
		if !in.More {
			return nil
		}
	}
}

// catchUpLocked fetches the entries of a conversation after its cursor
// over HTTP and applies them in order, then acknowledges them.
func (c *Client) catchUpLocked(ctx context.Context, conv protocol.ConversationID) error {
	for {
		cur, err := c.cursor(ctx, conv)
		if err != nil {
			return err
		}
		var page protocol.EntriesResponse
		if err := c.call(ctx, "GET", fmt.Sprintf("/v1/conversations/%d/entries?after=%d", conv, cur), true, nil, &page); err != nil {
			return fmt.Errorf("client: fetch entries of conversation %d: %w", conv, err)
		}
		for _, e := range page.Entries {
			if err := c.applyEntryLocked(ctx, e); err != nil {
				if errors.Is(err, errBlocked) {
					if uerr := c.unusable[conv]; uerr != nil {
						return fmt.Errorf("client: catch up: %w", uerr)
					}
					return fmt.Errorf("client: catch up conversation %d: %w", conv, ErrIdentityChanged)
				}
				return err
			}
		}
		if n, err := c.cursor(ctx, conv); err == nil && n > cur {
			c.ackHTTP(ctx, []protocol.Cursor{{Conversation: conv, Seq: n}}, 0)
		}
		if !page.More || len(page.Entries) == 0 {
			return c.afterCatchUpLocked(ctx, conv)
		}
	}
}

// ackHTTP acknowledges cursors over HTTP; failures only delay pruning.
func (c *Client) ackHTTP(ctx context.Context, cursors []protocol.Cursor, inbox uint64) {
	if err := c.call(ctx, "POST", "/v1/ack", true, protocol.AckRequest{Cursors: cursors, Inbox: inbox}, nil); err != nil {
		c.log.Debug("ack", "err", err)
	}
}

// Sync fetches and applies everything pending over HTTP, once: Welcomes,
// then the entries of every conversation; it removes the revoked and
// disabled devices still in them (see RevokeDevice); then it sends queued
// outgoing messages and tops up KeyPackages. Tools that do not stay
// connected call it before reading history.
func (c *Client) Sync(ctx context.Context) error {
	if c.id == nil {
		return fmt.Errorf("client: sync: %w", ErrNotRegistered)
	}
	// A history received at link time comes before anything else.
	if err := c.resumeHistory(ctx); err != nil {
		return fmt.Errorf("client: sync: %w", err)
	}
	c.mu.Lock()
	err := c.pullInboxLocked(ctx)
	if err == nil {
		for _, conv := range c.activeConversations() {
			if err = c.catchUpLocked(ctx, conv); err != nil && !errors.Is(err, ErrIdentityChanged) {
				break
			}
			err = nil
		}
	}
	if err == nil {
		err = c.checkRevocationsLocked(ctx)
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("client: sync: %w", err)
	}
	if err := c.flushOutbox(ctx); err != nil {
		return fmt.Errorf("client: sync: %w", err)
	}
	if err := c.replenishKeyPackages(ctx); err != nil {
		return fmt.Errorf("client: sync: %w", err)
	}
	return nil
}

// activeConversations lists conversations whose group is active, by id.
func (c *Client) activeConversations() []protocol.ConversationID {
	var ids []protocol.ConversationID
	for id, g := range c.groups {
		if g.Active() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// wsConn is the live WebSocket of Run.
type wsConn struct {
	s  socket
	mu sync.Mutex // serializes writes
}

func (w *wsConn) write(ctx context.Context, f protocol.Frame) error {
	b, err := protocol.MarshalFrame(f)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return w.s.write(ctx, b)
}

// Run keeps one WebSocket to the server and applies what it pushes until
// ctx is cancelled (then it returns ctx's error) or the Client is closed.
// After any disconnect it reconnects with exponential backoff and jitter
// and resumes from the stored cursors. Connection changes are reported as
// EventConnection.
func (c *Client) Run(ctx context.Context) error {
	if c.id == nil {
		return fmt.Errorf("client: run: %w", ErrNotRegistered)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.life, cancel)
	defer stop()
	expiring := make(chan struct{})
	go func() {
		defer close(expiring)
		c.runExpiry(ctx)
	}()
	defer func() {
		cancel()
		<-expiring
	}()
	delay := c.cfg.MinBackoff
	for {
		start := time.Now()
		err := c.runOnce(ctx)
		c.ev.push(Event{Kind: EventConnection, Connection: Disconnected, Err: err})
		if ctx.Err() != nil {
			if c.life.Err() != nil {
				return ErrClosed
			}
			return ctx.Err()
		}
		c.log.Info("disconnected", "err", err)
		if time.Since(start) > 4*c.cfg.MaxBackoff {
			delay = c.cfg.MinBackoff
		}
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
			continue
		case <-time.After(wait):
		}
		delay = min(2*delay, c.cfg.MaxBackoff)
	}
}

// runOnce runs one connection until it fails.
func (c *Client) runOnce(ctx context.Context) error {
	c.ev.push(Event{Kind: EventConnection, Connection: Connecting})
	tok, err := c.sessionToken(ctx)
	if err != nil {
		return err
	}
	u := "ws" + strings.TrimPrefix(c.serverURL, "http") + "/v1/ws"
	conn, err := c.dialWS(ctx, u, tok)
	if err != nil {
		return err
	}
	defer conn.closeNow()
	w := &wsConn{s: conn}

	// A history received at link time comes before anything else; then
	// Welcomes, so that entries of new conversations find their group.
	if err := c.resumeHistory(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	err = c.pullInboxLocked(ctx)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	sub := protocol.SubscribeFrame{Revocations: true, Ephemeral: !c.cfg.DisableTyping, Binary: true}
	err = c.st.View(ctx, func(tx store.Tx) error {
		var err error
		if sub.Cursors, err = tx.Cursors(); err != nil {
			return err
		}
		sub.Inbox, err = tx.Cursor(store.InboxCursor)
		return err
	})
	if err != nil {
		return err
	}
	if err := w.write(ctx, &sub); err != nil {
		return fmt.Errorf("%w: subscribe: %v", ErrServerUnreachable, err)
	}
	c.wsMu.Lock()
	c.ws = w
	c.wsMu.Unlock()
	defer func() {
		c.wsMu.Lock()
		c.ws = nil
		c.wsMu.Unlock()
	}()
	c.ev.push(Event{Kind: EventConnection, Connection: Connected})
	c.background(func(bctx context.Context) {
		if err := c.flushOutbox(ctx); err != nil {
			c.log.Warn("flush outbox", "err", err)
		}
		if err := c.replenishKeyPackages(ctx); err != nil {
			c.log.Warn("replenish KeyPackages", "err", err)
		}
	})
	// Claims by others consume the pool without telling this device:
	// check it now and then while connected.
	stopChecks := c.every(ctx, c.cfg.KeyPackageCheckInterval, func(ctx context.Context) {
		if err := c.replenishKeyPackages(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("replenish KeyPackages", "err", err)
		}
	})
	defer stopChecks()
	// A device disabled on the server's host is not announced.
	stopRevocations := c.every(ctx, c.cfg.RevocationCheckInterval, func(ctx context.Context) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := c.checkRevocationsLocked(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("check revoked devices", "err", err)
		}
	})
	defer stopRevocations()
	acks := startAcker(ctx, w)
	defer acks.close(ctx)
	for {
		data, err := conn.read(ctx)
		if err != nil {
			return fmt.Errorf("%w: read: %v", ErrServerUnreachable, err)
		}
		f, err := protocol.UnmarshalServerFrame(data)
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *protocol.EntryFrame:
			c.mu.Lock()
			err := c.applyEntryLocked(ctx, f.Entry)
			if errors.Is(err, errUnjoined) {
				if err = c.pullInboxLocked(ctx); err == nil {
					err = c.applyEntryLocked(ctx, f.Entry)
				}
			}
			c.mu.Unlock()
			switch {
			case err == nil:
				acks.entry(f.Conversation, f.Seq)
			case errors.Is(err, errUnjoined), errors.Is(err, errBlocked):
				// Applied later (next subscription or acknowledgement).
			default:
				return err
			}
		case *protocol.InboxFrame:
			c.mu.Lock()
			err := c.applyInboxLocked(ctx, f.InboxEntry)
			c.mu.Unlock()
			if err != nil && !errors.Is(err, errBlocked) {
				return err
			}
			if err == nil {
				acks.inboxEntry(f.Seq)
			}
		case *protocol.RevokedFrame:
			// Removals commit and may catch up over HTTP: not in the
			// reader loop.
			c.background(func(context.Context) {
				c.mu.Lock()
				defer c.mu.Unlock()
				if n := c.removeRevokedLocked(ctx, &f.RevokedDevices); n > 0 && f.Truncated {
					if err := c.checkRevocationsLocked(ctx); err != nil && ctx.Err() == nil {
						c.log.Warn("check revoked devices", "err", err)
					}
				}
			})
		case *protocol.EphemeralFrame:
			c.receiveEphemeral(ctx, f)
		case *protocol.ErrorFrame:
			if f.ClientID == "" {
				return &ServerError{Err: f.Error}
			}
		}
	}
}

// every runs f every interval in the background while ctx lasts (and
// the Client is open), until the returned function is called. A
// non-positive interval runs nothing.
func (c *Client) every(ctx context.Context, interval time.Duration, f func(ctx context.Context)) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	cctx, cancel := context.WithCancel(ctx)
	c.background(func(bctx context.Context) {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-bctx.Done():
				return
			case <-t.C:
				f(cctx)
			}
		}
	})
	return cancel
}

// resyncLocked rejoins a conversation this device is a member of by an
// external commit that replaces its own leaf (RFC 9420 §12.4.3.2), from
// the server's current GroupInfo. It is the way out when the device
// cannot follow the group any more (its own accepted commit was lost in a
// crash). Entries before the rejoin are skipped: messages sent in the
// epochs in between cannot be read. c.mu is held.
func (c *Client) resyncLocked(ctx context.Context, conv protocol.ConversationID) error {
	old := c.groups[conv]
	if old == nil {
		return ErrUnknownConversation
	}
	own := old.OwnLeaf()
	g, seq, err := c.externalRejoin(ctx, conv, func(*mls.PublicGroup) (mls.LeafIndex, error) { return own, nil })
	if err != nil {
		return err
	}
	state, err := g.MarshalBinary()
	if err != nil {
		return err
	}
	err = c.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutGroupState(conv, state); err != nil {
			return err
		}
		if err := c.putConversationMembers(tx, conv, g, false); err != nil {
			return err
		}
		return tx.SetCursor(conv, seq)
	})
	if err != nil {
		return err
	}
	c.groups[conv] = g
	c.log.Warn("rejoined conversation by external commit", "conversation", conv, "epoch", g.Epoch())
	return nil
}

// externalRejoin replaces this device's leaf in a conversation by an
// external commit (RFC 9420 §12.4.3.2) on the server's current GroupInfo
// and tree, retried on a stale epoch; own names the leaf in the group as
// the server has it. It returns the group and the commit's seq.
func (c *Client) externalRejoin(ctx context.Context, conv protocol.ConversationID, own func(*mls.PublicGroup) (mls.LeafIndex, error)) (*mls.Group, uint64, error) {
	return c.externalCommit(ctx, conv, func(pg *mls.PublicGroup) (*mls.LeafIndex, error) {
		leaf, err := own(pg)
		if err != nil {
			return nil, err
		}
		return &leaf, nil
	})
}

// externalCommit joins a conversation by an external commit (RFC 9420
// §12.4.3.2) on the server's current GroupInfo and tree, retried on a
// stale epoch. resync, given the server's group, returns this device's
// old leaf, which the commit replaces, or nil for a new leaf (a new
// device of a member user), or an error to commit nothing. It returns
// the group and the commit's seq.
func (c *Client) externalCommit(ctx context.Context, conv protocol.ConversationID, resync func(*mls.PublicGroup) (*mls.LeafIndex, error)) (*mls.Group, uint64, error) {
	cred, err := c.ownCredential()
	if err != nil {
		return nil, 0, err
	}
	for attempt := 0; ; attempt++ {
		gi, tree, err := c.groupInfoAndTree(ctx, conv)
		if err != nil {
			return nil, 0, err
		}
		pg, err := mls.NewPublicGroup(c.mlsCfg, gi.GroupInfo, tree)
		if err != nil {
			return nil, 0, fmt.Errorf("the server's group state of conversation %d: %w", conv, err)
		}
		signer, err := c.signer(pg.CipherSuite())
		if err != nil {
			return nil, 0, err
		}
		leaf, err := resync(pg)
		if err != nil {
			return nil, 0, err
		}
		g, pc, err := mls.JoinExternal(c.mlsCfg, gi.GroupInfo, signer, cred, mls.ExternalJoinOptions{
			RatchetTree: tree, ResyncLeaf: leaf, ExternalPub: true, Capabilities: leafCapabilities(),
		})
		if err != nil {
			where := "a new leaf"
			if leaf != nil {
				where = fmt.Sprintf("leaf %d", *leaf)
			}
			return nil, 0, fmt.Errorf("external commit into conversation %d at epoch %d, %s: %w", conv, gi.Epoch, where, err)
		}
		var res protocol.HandshakeResponse
		err = c.call(ctx, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", conv), true,
			protocol.HandshakeRequest{Epoch: gi.Epoch, Message: pc.Message, GroupInfo: pc.GroupInfo}, &res)
		if _, stale := isCode(err, protocol.CodeStaleEpoch); stale && attempt < c.cfg.CommitRetries {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if err := g.MergePendingCommit(pc); err != nil {
			return nil, 0, err
		}
		return g, res.Seq, nil
	}
}

// leafOf returns the leaf of pg that carries this device's signature key
// for the suite.
func (c *Client) leafOf(pg *mls.PublicGroup) (mls.LeafIndex, error) {
	signer, err := c.signer(pg.CipherSuite())
	if err != nil {
		return 0, err
	}
	for _, m := range pg.Members() {
		if bytes.Equal(m.SignatureKey, signer.PublicKey()) {
			return m.Leaf, nil
		}
	}
	return 0, fmt.Errorf("this device has no leaf in the group at epoch %d", pg.Epoch())
}
