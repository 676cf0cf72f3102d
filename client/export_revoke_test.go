package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// LinkDeviceForTest binds the fresh (unregistered) profile of c to the
// account of primary as a new device, as device linking will: primary
// certifies a new device key with the account's identity key and
// registers it (POST /v1/devices); c gets the identity, authenticates
// and uploads KeyPackages. It returns the new device's id.
func LinkDeviceForTest(ctx context.Context, primary, c *Client) (protocol.DeviceID, error) {
	primary.mu.Lock()
	pid, serverURL, serverName, suites := primary.id, primary.serverURL, primary.serverName, primary.suites
	primary.mu.Unlock()
	signer, err := mls.GenerateSigner(suites[0])
	if err != nil {
		return "", err
	}
	raw := make([]byte, 16)
	rand.Read(raw)
	dev := protocol.DeviceID(hex.EncodeToString(raw))
	now := c.cfg.Now()
	nd, err := newDevice(ed25519.PrivateKey(pid.IdentityKey), signer, serverName, pid.User, dev, now)
	if err != nil {
		return "", err
	}
	cert := nd.Certificate
	if err := primary.call(ctx, "POST", "/v1/devices", true, protocol.AddDeviceRequest{Device: nd}, nil); err != nil {
		return "", fmt.Errorf("link device: %w", err)
	}
	id := &store.Identity{
		Server: serverURL, User: pid.User, Device: dev, IdentityKey: append([]byte(nil), pid.IdentityKey...),
		DeviceScheme: protocol.SchemeEd25519, DeviceKey: signer.PrivateKey(), Certificate: cert, Created: now,
	}
	err = c.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutIdentity(id); err != nil {
			return err
		}
		if err := tx.SetSetting(settingServerName, []byte(serverName)); err != nil {
			return err
		}
		if fp := c.cfg.TLSFingerprint; fp != "" {
			if err := tx.SetSetting(settingFingerprint, []byte(strings.ToLower(fp))); err != nil {
				return err
			}
		}
		return tx.SetSetting(settingSuites, encodeSuites(suites))
	})
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.id, c.serverURL, c.serverName, c.suites = id, serverURL, serverName, suites
	c.mu.Unlock()
	if _, err := c.sessionToken(ctx); err != nil {
		return "", err
	}
	return dev, c.replenishKeyPackages(ctx)
}

// ProcessForTest processes an MLS message with c's group of conv as
// restored from the store, in memory only.
func ProcessForTest(c *Client, conv protocol.ConversationID, msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[conv]
	if g == nil {
		return c.missingGroup(conv)
	}
	_, err := g.Process(msg)
	return err
}

// HandleRevokedForTest handles a list of revoked devices as if the server
// had sent it in a "revoked" frame, and returns how many removals c
// committed.
func HandleRevokedForTest(ctx context.Context, c *Client, list protocol.RevokedDevices) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.removeRevokedLocked(ctx, &list)
}
