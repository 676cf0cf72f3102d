package delivery

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"sync"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// Link mailboxes: the rendezvous of device linking (docs/protocol.md,
// "Linking a device"). The device being linked creates a mailbox without
// a session and is known by the mailbox's token; a device of an account
// writes to it with its session, and its first message claims the
// mailbox for its account. Each side reads the other's messages, waiting
// for them in a long poll. The messages are opaque: the devices encrypt
// them with keys the server cannot derive.

// linkPoll is how often a waiting reader looks at the store again, for
// messages written through another node of a cluster (a write through
// this node wakes it at once).
const linkPoll = time.Second

// LinkParty is who calls a link endpoint: the device being linked, by the
// mailbox's token, or a device of an account, by its session.
type LinkParty struct {
	// Token is the mailbox token of the device being linked.
	Token string
	// Session is the session of a device of an account.
	Session *Session
}

// side returns the store's side of the party.
func (p LinkParty) side() uint8 {
	if p.Session != nil {
		return store.LinkExisting
	}
	return store.LinkNew
}

// linkWaiters wakes the readers waiting on a mailbox of this node.
type linkWaiters struct {
	mu sync.Mutex
	w  map[string]*linkWaiter
}

type linkWaiter struct {
	ch chan struct{}
	n  int // readers holding ch
}

// wait returns a channel closed at the next message to the mailbox, and
// the function to call when the reader no longer waits.
func (w *linkWaiters) wait(id string) (<-chan struct{}, func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		w.w = map[string]*linkWaiter{}
	}
	lw, ok := w.w[id]
	if !ok {
		lw = &linkWaiter{ch: make(chan struct{})}
		w.w[id] = lw
	}
	lw.n++
	return lw.ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if lw.n--; lw.n == 0 && w.w[id] == lw {
			delete(w.w, id)
		}
	}
}

// wake wakes the readers of the mailbox.
func (w *linkWaiters) wake(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if lw, ok := w.w[id]; ok {
		close(lw.ch)
		delete(w.w, id)
	}
}

var linkIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// CreateLink creates a link mailbox holding the new device's first
// message, with a fresh id and token; it lives protocol.LinkTTL.
func (s *Service) CreateLink(ctx context.Context, req protocol.CreateLinkRequest) (protocol.CreateLinkResponse, error) {
	if err := req.Validate(); err != nil {
		return protocol.CreateLinkResponse{}, err
	}
	now := s.now().UTC()
	token := make([]byte, 32)
	if _, err := s.rand.Read(token); err != nil {
		return protocol.CreateLinkResponse{}, internal("create link: token", err)
	}
	tok := linkIDEncoding.EncodeToString(token)
	hash := sha256.Sum256([]byte(tok))
	for range 5 { // ids are 40 random bits: a collision is rare, two in a row rarer
		raw := make([]byte, 5)
		if _, err := s.rand.Read(raw); err != nil {
			return protocol.CreateLinkResponse{}, internal("create link: id", err)
		}
		m := store.LinkMailbox{ID: linkIDEncoding.EncodeToString(raw), TokenHash: hash[:], Created: now, Expires: now.Add(protocol.LinkTTL)}
		err := s.st.CreateLinkMailbox(ctx, m, store.LinkMessage{From: store.LinkNew, Data: req.Message, Created: now})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return protocol.CreateLinkResponse{}, internal("create link", err)
		}
		s.log.Debug("link mailbox created", "link", m.ID)
		return protocol.CreateLinkResponse{ID: m.ID, Token: tok, Expires: m.Expires}, nil
	}
	return protocol.CreateLinkResponse{}, perr(protocol.CodeUnavailable, "no free link mailbox id; retry")
}

// errNoLink answers for a mailbox that is missing, expired, or not the
// caller's: they are not told apart.
func errNoLink(id string) error {
	return perr(protocol.CodeNotFound, "no link mailbox %.20q (it may have expired after %v)", id, protocol.LinkTTL)
}

// linkMailbox returns the live mailbox id if the party may use it: the
// holder of its token, or a device of an account when the mailbox is
// unclaimed or claimed by that account.
func (s *Service) linkMailbox(ctx context.Context, id string, p LinkParty) (store.LinkMailbox, error) {
	if !protocol.ValidLinkID(id) {
		return store.LinkMailbox{}, perr(protocol.CodeBadRequest, "%.20q is not a link mailbox id", id)
	}
	m, err := s.st.LinkMailbox(ctx, id, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return store.LinkMailbox{}, errNoLink(id)
	} else if err != nil {
		return store.LinkMailbox{}, internal("link mailbox", err)
	}
	if p.Session != nil {
		if m.User != 0 && m.User != p.Session.User {
			return store.LinkMailbox{}, errNoLink(id)
		}
		return m, nil
	}
	hash := sha256.Sum256([]byte(p.Token))
	if p.Token == "" || subtle.ConstantTimeCompare(hash[:], m.TokenHash) != 1 {
		return store.LinkMailbox{}, errNoLink(id)
	}
	return m, nil
}

// PostLink appends the party's message to the mailbox and wakes its
// readers. A full mailbox (protocol.MaxLinkMessages) is too_large.
func (s *Service) PostLink(ctx context.Context, id string, p LinkParty, req protocol.PostLinkRequest) (protocol.PostLinkResponse, error) {
	if err := req.Validate(); err != nil {
		return protocol.PostLinkResponse{}, err
	}
	if _, err := s.linkMailbox(ctx, id, p); err != nil {
		return protocol.PostLinkResponse{}, err
	}
	var user store.UserID
	if p.Session != nil {
		user = p.Session.User
	}
	seq, err := s.st.AppendLinkMessage(ctx, id, user, store.LinkMessage{From: p.side(), Data: req.Message, Created: s.now().UTC()}, protocol.MaxLinkMessages)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return protocol.PostLinkResponse{}, errNoLink(id)
	case errors.Is(err, store.ErrQuotaExceeded):
		return protocol.PostLinkResponse{}, perr(protocol.CodeTooLarge, "link mailbox %s holds %d messages already", id, protocol.MaxLinkMessages)
	case err != nil:
		return protocol.PostLinkResponse{}, internal("post link message", err)
	}
	s.links.wake(id)
	return protocol.PostLinkResponse{Seq: seq}, nil
}

// LinkMessages returns the messages of the other side with seq above
// after, waiting up to wait (at most protocol.MaxLinkWait) while there
// is none.
func (s *Service) LinkMessages(ctx context.Context, id string, p LinkParty, after uint64, wait time.Duration) (protocol.LinkMessages, error) {
	wait = min(max(wait, 0), protocol.MaxLinkWait)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(linkPoll)
	defer tick.Stop()
	other := store.LinkExisting
	if p.Session != nil {
		other = store.LinkNew
	}
	for {
		out, woken, done, err := s.readLink(ctx, id, p, other, after)
		if err != nil || len(out.Messages) > 0 || wait == 0 {
			done()
			return out, err
		}
		select {
		case <-woken:
		case <-tick.C:
		case <-deadline.C:
			done()
			return out, nil
		case <-ctx.Done():
			done()
			return protocol.LinkMessages{}, ctx.Err()
		}
		done()
	}
}

// readLink returns the messages from side other with seq above after, and
// a channel closed at the next message (released by done), taken before
// the read so that no message is missed.
func (s *Service) readLink(ctx context.Context, id string, p LinkParty, other uint8, after uint64) (out protocol.LinkMessages, woken <-chan struct{}, done func(), err error) {
	woken, done = s.links.wait(id)
	m, err := s.linkMailbox(ctx, id, p)
	if err != nil {
		return out, woken, done, err
	}
	msgs, err := s.st.LinkMessages(ctx, id, after)
	if err != nil {
		return out, woken, done, internal("link messages", err)
	}
	out = protocol.LinkMessages{Messages: []protocol.LinkMessage{}, Expires: m.Expires}
	for _, x := range msgs {
		if x.From != other {
			continue
		}
		from := protocol.LinkSideNew
		if x.From == store.LinkExisting {
			from = protocol.LinkSideExisting
		}
		out.Messages = append(out.Messages, protocol.LinkMessage{Seq: x.Seq, From: from, Message: x.Data})
	}
	return out, woken, done, nil
}

// DeleteLink deletes the mailbox (either side, when done or cancelled;
// a device of an account only once its account claimed it).
func (s *Service) DeleteLink(ctx context.Context, id string, p LinkParty) error {
	m, err := s.linkMailbox(ctx, id, p)
	if err != nil {
		return err
	}
	if p.Session != nil && m.User != p.Session.User {
		return errNoLink(id)
	}
	if err := s.st.DeleteLinkMailbox(ctx, id); err != nil {
		return internal("delete link mailbox", err)
	}
	s.links.wake(id)
	return nil
}
