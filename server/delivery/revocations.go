package delivery

import (
	"bytes"
	"context"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// Revoked and disabled devices leave their conversations by commits of
// the other members: the server keeps no MLS secret and cannot remove a
// leaf itself. It keeps the user's signed revocation, serves it, tells
// the connected members of the device's conversations (their connections
// send a "revoked" frame, see Conn.readRevoked) and answers
// GET /v1/revocations for members that come back later.

// maxRevocationBytes bounds an encoded revocation statement; a valid one
// is well under 500 bytes.
const maxRevocationBytes = 1024

// checkRevocation checks the revocation statement of device id sent by
// the session's user: it must name this server, the user and the device,
// and verify under the user's identity key.
func (s *Service) checkRevocation(ctx context.Context, sess *Session, id store.DeviceID, statement []byte) error {
	if len(statement) == 0 {
		return perr(protocol.CodeBadRequest, "revoke device %q: no revocation statement", id)
	}
	if len(statement) > maxRevocationBytes {
		return perr(protocol.CodeBadRequest, "revoke device %q: revocation statement is %d bytes, at most %d", id, len(statement), maxRevocationBytes)
	}
	u, err := s.st.User(ctx, sess.User)
	if err != nil {
		return internal("revoke device: user", err)
	}
	if _, err := protocol.VerifyDeviceRevocation(statement, u.IdentityKey, s.cfg.ServerName, u.Name, protocol.DeviceID(id)); err != nil {
		return perr(protocol.CodeBadCertificate, "revoke device %q: %v", id, err)
	}
	return nil
}

// notifyMembersOf wakes the connections of the devices that share a
// conversation with device (which was revoked or disabled), so that they
// look for revoked members again. Failures are logged: members also look
// when they connect and sync.
func (s *Service) notifyMembersOf(ctx context.Context, device store.DeviceID) {
	ms, err := s.st.Conversations(ctx, device)
	if err != nil {
		s.log.Warn("members of a revoked device not notified", "device", device, "err", err)
		return
	}
	seen := map[store.DeviceID]bool{device: true}
	for _, m := range ms {
		if m.Left != 0 {
			continue
		}
		ds, err := s.st.Members(ctx, m.Conversation)
		if err != nil {
			s.log.Warn("members of a revoked device not notified", "device", device, "conversation", m.Conversation, "err", err)
			continue
		}
		for _, d := range ds {
			if !seen[d] {
				seen[d] = true
				s.notify.Publish(Event{Topic: Topic{Device: d}})
			}
		}
	}
}

// Revocations lists the revoked and disabled devices still in the
// caller device's conversations.
func (s *Service) Revocations(ctx context.Context, sess *Session) (protocol.RevokedDevices, error) {
	return s.revokedDevices(ctx, sess.Device)
}

// revokedDevices lists the revoked and disabled devices still in the
// device's conversations, grouped by device, at most
// protocol.MaxRevokedPairs pairs.
func (s *Service) revokedDevices(ctx context.Context, device store.DeviceID) (protocol.RevokedDevices, error) {
	ims, err := s.st.InactiveMembers(ctx, device, protocol.MaxRevokedPairs+1)
	if err != nil {
		return protocol.RevokedDevices{}, internal("revoked members", err)
	}
	out := protocol.RevokedDevices{Devices: []protocol.RevokedDevice{}}
	if len(ims) > protocol.MaxRevokedPairs {
		ims, out.Truncated = ims[:protocol.MaxRevokedPairs], true
	}
	for _, im := range ims {
		n := len(out.Devices)
		if n == 0 || out.Devices[n-1].Device != protocol.DeviceID(im.Device) {
			rd := protocol.RevokedDevice{User: im.UserName, Device: protocol.DeviceID(im.Device), Revocation: im.Revocation, Disabled: im.Disabled}
			if !im.Revoked.IsZero() {
				rd.Revoked = utcPtr(im.Revoked)
			}
			out.Devices = append(out.Devices, rd)
			n++
		}
		out.Devices[n-1].Conversations = append(out.Devices[n-1].Conversations, protocol.ConversationID(im.Conversation))
	}
	return out, nil
}

// utcPtr returns a pointer to t in UTC.
func utcPtr(t time.Time) *time.Time {
	t = t.UTC()
	return &t
}

// withRevocations adds the stored revocation statements of u's devices to
// its public record.
func (s *Service) withRevocations(ctx context.Context, u store.User, ui *protocol.UserInfo) error {
	rs, err := s.st.Revocations(ctx, u.ID)
	if err != nil {
		return internal("revocations of "+u.Name, err)
	}
	byDevice := make(map[protocol.DeviceID][]byte, len(rs))
	for _, r := range rs {
		byDevice[protocol.DeviceID(r.Device)] = r.Statement
	}
	for i := range ui.Devices {
		ui.Devices[i].Revocation = byDevice[ui.Devices[i].ID]
	}
	return nil
}

// revokedNotice is a connection's state of "revoked" frames.
type revokedNotice struct {
	wanted bool   // wanted: the client subscribed with Revocations set
	dirty  bool   // dirty: the list must be read again (after a subscribe or a device event)
	sent   []byte // sent is the encoding of the last list sent, not to send it twice
}

// readRevoked reads the revoked and disabled devices still in the
// device's conversations after a subscribe or a device event, and queues
// a "revoked" frame when the list is not empty and differs from the last
// one sent since the subscribe. Any device event may stand for a
// revocation in one of the device's conversations (notifyMembersOf); the
// read is one query that starts from the few revoked and disabled
// devices. It reports whether it had work.
func (c *Conn) readRevoked(ctx context.Context) (bool, error) {
	c.mu.Lock()
	if !c.subscribed || !c.revoked.dirty {
		c.mu.Unlock()
		return false, nil
	}
	c.revoked.dirty = false
	gen := c.gen
	c.mu.Unlock()
	list, err := c.s.revokedDevices(ctx, c.sess.Device)
	if err != nil {
		return true, err
	}
	f := &protocol.RevokedFrame{RevokedDevices: list}
	enc, err := protocol.MarshalFrame(f)
	if err != nil {
		return true, internal("revoked frame", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case gen != c.gen || bytes.Equal(enc, c.revoked.sent):
		return true, nil
	case len(list.Devices) == 0:
		c.revoked.sent = nil // a list that comes back is sent again
		return true, nil
	}
	c.revoked.sent = enc
	c.pending = append(c.pending, f)
	return true, nil
}
