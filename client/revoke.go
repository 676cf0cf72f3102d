package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/url"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// Revoked devices. A device that its user revoked, or that the server's
// administrator disabled, keeps its leaves in every MLS group it was in
// until a member commits their removal: the server holds no group secret
// and cannot remove it. So every member's client that learns of such a
// device removes it from the conversations they share. It learns from
// the server: a "revoked" frame while connected (the server sends one
// when a member device is revoked or disabled, and after each subscribe
// while some remain), GET /v1/revocations on Sync and every
// Config.RevocationCheckInterval. It believes a revocation only when the
// user's signed statement (protocol.DeviceRevocation) verifies under the
// user's pinned identity key; an administrator's disable carries no
// statement, and the client takes the server's word for it (a server
// can cut a device off anyway). Several members may commit the removal
// at once: the server accepts one commit per epoch, and the others find
// the device gone when they retry (commitLocked) and commit nothing.
//
// A revocation that verified is kept in the store: the membership rules
// then refuse any later commit that adds the device again, and no
// KeyPackage of it is used, whatever the server says (a revoked device
// never comes back; an administrator may enable a disabled one again, so
// a disable is not kept).

// maxRevocationRounds bounds how often one check asks the server again
// when its list was truncated and this device removed some of it.
const maxRevocationRounds = 10

// RevokeDevice revokes device, one of this account's devices (this one
// included): it signs the revocation with the account's identity key and
// sends it to the server, which ends the device's sessions, deletes its
// KeyPackages, keeps the signed statement and tells the members of the
// device's conversations. Unless the revoked device is this one, this
// device then removes it from every conversation they share; the other
// members do the same when they learn of it. A removed device reads
// nothing sent after the commit that removed it. An error after the
// server accepted the revocation says so: calling RevokeDevice again
// retries the removals.
func (c *Client) RevokeDevice(ctx context.Context, device protocol.DeviceID) error {
	op := fmt.Sprintf("client: revoke device %.70q", string(device))
	if c.id == nil {
		return fmt.Errorf("%s: %w", op, ErrNotRegistered)
	}
	if !protocol.ValidDeviceID(device) {
		return fmt.Errorf("%s: not a device id", op)
	}
	statement, err := protocol.NewDeviceRevocation(ed25519.PrivateKey(c.id.IdentityKey), c.serverName, c.id.User, device, c.cfg.Now())
	if err != nil {
		return fmt.Errorf("%s: %v", op, err)
	}
	req := protocol.RevokeDeviceRequest{Revocation: statement}
	if err := c.call(ctx, "DELETE", "/v1/devices/"+url.PathEscape(string(device)), true, req, nil); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	c.log.Info("device revoked", "device", device)
	if device == c.id.Device {
		return nil // this device's session ended with it: the others remove it
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkRevocationsLocked(ctx); err != nil {
		return fmt.Errorf("%s: revoked, but not removed from this device's conversations: %w", op, err)
	}
	return nil
}

// checkRevocationsLocked asks the server for the revoked and disabled
// devices still in this device's conversations and removes them
// (removeRevokedLocked). It fails only when the server cannot be asked;
// a server without the endpoint has nothing to tell. c.mu is held.
func (c *Client) checkRevocationsLocked(ctx context.Context) error {
	for range maxRevocationRounds {
		var list protocol.RevokedDevices
		err := c.call(ctx, "GET", "/v1/revocations", true, nil, &list)
		if _, old := isCode(err, protocol.CodeNotFound); old {
			return nil
		}
		if err != nil {
			return fmt.Errorf("check revoked devices: %w", err)
		}
		if n := c.removeRevokedLocked(ctx, &list); n == 0 || !list.Truncated {
			return nil
		}
	}
	return nil
}

// removeRevokedLocked removes from this device's conversations the
// devices of list whose revocation it believes (revocationReason), and
// returns how many removals it committed. Failures are logged and
// reported as EventError: the device is removed later, by this member or
// another. c.mu is held.
func (c *Client) removeRevokedLocked(ctx context.Context, list *protocol.RevokedDevices) int {
	n := 0
	for _, rd := range list.Devices {
		if rd.Device == c.id.Device {
			continue // this device cannot remove itself; it is no longer served anyway
		}
		reason, signed, err := c.revocationReason(ctx, rd)
		if err != nil {
			c.log.Warn("revoked device not removed", "user", rd.User, "device", rd.Device, "err", err)
			c.ev.push(Event{Kind: EventError, User: rd.User, Device: rd.Device, Err: err})
			continue
		}
		if signed {
			if err := c.rememberRevoked(ctx, rd.Device, rd.Revocation); err != nil {
				c.log.Warn("revocation not kept", "user", rd.User, "device", rd.Device, "err", err)
			}
		}
		for _, conv := range rd.Conversations {
			removed, err := c.removeDeviceLocked(ctx, conv, rd.User, rd.Device)
			if err != nil {
				c.log.Warn("revoked device not removed", "conversation", conv, "user", rd.User, "device", rd.Device, "err", err)
				c.ev.push(Event{Kind: EventError, Conversation: conv, User: rd.User, Device: rd.Device,
					Err: fmt.Errorf("remove %s device %s (%s) from conversation %d: %w", rd.User, rd.Device, reason, conv, err)})
				continue
			}
			if removed {
				n++
				c.log.Info("revoked device removed", "conversation", conv, "user", rd.User, "device", rd.Device, "reason", reason)
				c.ev.push(Event{Kind: EventDeviceRevoked, Conversation: conv, User: rd.User, Device: rd.Device, Reason: reason})
			}
		}
	}
	return n
}

// revocationReason says why rd must leave: its user's revocation, which
// must verify under the user's pinned identity key (signed is then true),
// or an administrator's disable, on the server's word. A revocation that
// does not verify is refused (ErrBadRevocation) unless the device is also
// disabled.
func (c *Client) revocationReason(ctx context.Context, rd protocol.RevokedDevice) (reason string, signed bool, err error) {
	const disabled = "disabled by the server's administrator"
	if !protocol.ValidUserName(rd.User) || !protocol.ValidDeviceID(rd.Device) {
		return "", false, fmt.Errorf("revoked device %.70q of %.70q: invalid user name or device id", string(rd.Device), rd.User)
	}
	if len(rd.Revocation) == 0 {
		switch {
		case rd.Disabled:
			return disabled, false, nil
		case rd.Revoked != nil:
			// Revoked before servers kept the statement.
			return "revoked by " + rd.User + " (unsigned, on the server's word)", false, nil
		}
		return "", false, fmt.Errorf("device %s of %s: listed as neither revoked nor disabled", rd.Device, rd.User)
	}
	key, err := c.identityKey(ctx, rd.User)
	if err != nil {
		return "", false, err
	}
	if _, err := protocol.VerifyDeviceRevocation(rd.Revocation, key, c.serverName, rd.User, rd.Device); err != nil {
		if rd.Disabled {
			return disabled, false, nil
		}
		return "", false, fmt.Errorf("device %s of %s: %v: %w", rd.Device, rd.User, err, ErrBadRevocation)
	}
	return "revoked by " + rd.User, true, nil
}

// revokedSetting names the setting that keeps the verified revocation of
// a device.
func revokedSetting(device protocol.DeviceID) string { return "revoked/" + string(device) }

// rememberRevoked keeps the verified revocation statement of a device.
func (c *Client) rememberRevoked(ctx context.Context, device protocol.DeviceID, statement []byte) error {
	return c.st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Setting(revokedSetting(device)); err == nil {
			return nil
		}
		return tx.SetSetting(revokedSetting(device), statement)
	})
}

// knownRevoked reports whether this device keeps a verified revocation
// of device.
func (c *Client) knownRevoked(ctx context.Context, device protocol.DeviceID) (bool, error) {
	var known bool
	err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		known, err = knownRevokedTx(tx, device)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read revocation of device %s: %w", device, err)
	}
	return known, nil
}

// knownRevokedTx is knownRevoked in a transaction.
func knownRevokedTx(tx store.Tx, device protocol.DeviceID) (bool, error) {
	_, err := tx.Setting(revokedSetting(device))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, err
}

// revokedAmong returns the credential of the first of the members that
// is a device this device knows to be revoked, or nil.
func (c *Client) revokedAmong(ctx context.Context, members []mls.Member) (*Credential, error) {
	if len(members) == 0 {
		return nil, nil
	}
	var found *Credential
	err := c.st.View(ctx, func(tx store.Tx) error {
		for _, m := range members {
			cr, err := credentialOf(m.Credential)
			if err != nil {
				continue
			}
			revoked, err := knownRevokedTx(tx, cr.Device())
			if err != nil {
				return err
			}
			if revoked {
				found = cr
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	return found, nil
}

// removeDeviceLocked commits the removal of the leaves of user's device
// from a conversation, and reports whether this device's commit removed
// them. It does nothing where this device is no active member, where the
// conversation is unsafe or held back, or where the device has no leaf
// (any more: a concurrent commit may have removed it). c.mu is held.
func (c *Client) removeDeviceLocked(ctx context.Context, conv protocol.ConversationID, user string, device protocol.DeviceID) (bool, error) {
	g := c.groups[conv]
	if g == nil || !g.Active() || c.unsafe[conv] != nil || len(deviceLeaves(g, user, device)) == 0 {
		return false, nil
	}
	if _, held := c.blocked[conv]; held {
		return false, nil // after the identity change is acknowledged
	}
	if user != c.id.User && !c.allowedLocked(g, protocol.ActionRemove) {
		return false, nil // an admin removes it (docs/protocol.md, "Roles and policy")
	}
	err := c.commitLocked(ctx, conv, func(g *mls.Group) (*commitPlan, error) {
		leaves := deviceLeaves(g, user, device)
		if len(leaves) == 0 {
			return nil, errNothingToCommit
		}
		return &commitPlan{opts: mls.CommitOptions{Remove: leaves, IncludePending: true, ExternalPub: true}}, nil
	})
	switch {
	case errors.Is(err, errNothingToCommit), errors.Is(err, ErrNotMember):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// deviceLeaves returns the leaves of g whose credential names device of
// user.
func deviceLeaves(g *mls.Group, user string, device protocol.DeviceID) []mls.LeafIndex {
	var out []mls.LeafIndex
	for _, m := range g.Members() {
		if cr, err := credentialOf(m.Credential); err == nil && cr.User() == user && cr.Device() == device {
			out = append(out, m.Leaf)
		}
	}
	return out
}
