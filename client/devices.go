package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// The account's own devices: the list the server keeps, checked against
// the identity key, with their names: shared by the account's devices,
// sealed at the server (devicenames.go), else the names this profile
// knows (set when a device is linked or renamed here, and carried to the
// devices linked later).

// OwnDevice is a device of this account.
type OwnDevice struct {
	ID protocol.DeviceID `json:"id"`
	// Name is its name: the one the account's devices share, else the
	// one this profile knows ("" when none).
	Name string `json:"name,omitempty"`
	// Created is when the server registered it; LastSeen when it last
	// signed in (zero when the server does not say).
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Revoked is when it was revoked (zero: active); Disabled is set
	// when the server's administrator disabled it.
	Revoked  time.Time `json:"revoked,omitzero"`
	Disabled bool      `json:"disabled,omitempty"`
	// This marks this device.
	This bool `json:"this,omitempty"`
	// Forged is set for a device the server lists whose certificate does
	// not verify under the account's identity key: no device of the
	// account certified it. Every client refuses it; show it as a
	// warning.
	Forged bool `json:"forged,omitempty"`
}

// ErrLastDevice means a revocation would leave the account without an
// active device: nothing could read or link anything afterwards.
var ErrLastDevice = errors.New("this is the account's last active device: revoking it locks the account for good (force it to revoke anyway)")

// Devices lists this account's devices as the server reports them, in
// order of registration, each checked against the identity key; a forged
// one is marked (and reported as EventDeviceRejected) but listed.
func (c *Client) Devices(ctx context.Context) ([]OwnDevice, error) {
	if c.id == nil {
		return nil, fmt.Errorf("client: devices: %w", ErrNotRegistered)
	}
	u, err := c.fetchUser(ctx, c.id.User)
	if err != nil {
		return nil, fmt.Errorf("client: devices: %w", err)
	}
	key := ed25519.PrivateKey(c.id.IdentityKey).Public().(ed25519.PublicKey)
	if !key.Equal(ed25519.PublicKey(u.IdentityKey)) {
		return nil, fmt.Errorf("client: devices: the server presents another identity key for this account: %w", &IdentityChangedError{User: c.id.User})
	}
	var names map[string][]byte
	err = c.st.View(ctx, func(tx store.Tx) error {
		names, err = tx.Settings(deviceNamePrefix)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("client: devices: %w", err)
	}
	out := make([]OwnDevice, 0, len(u.Devices))
	var unshared []OwnDevice // named here, not at the server
	learned := map[string][]byte{}
	for _, d := range u.Devices {
		od := OwnDevice{ID: d.ID, Name: string(names[deviceNamePrefix+string(d.ID)]), Created: d.Created, Disabled: d.Disabled, This: d.ID == c.id.Device}
		if name, ok := c.sharedDeviceName(d); ok {
			if name != od.Name {
				learned[deviceNamePrefix+string(d.ID)] = []byte(name)
			}
			od.Name = name
		} else if od.Name != "" && len(d.SealedName) == 0 && d.Revoked == nil {
			unshared = append(unshared, od)
		}
		if d.Revoked != nil {
			od.Revoked = *d.Revoked
		}
		if d.LastSeen != nil {
			od.LastSeen = *d.LastSeen
		}
		if err := c.checkListedDevice(c.id.User, key, d); err != nil {
			od.Forged = true
			c.ev.push(Event{Kind: EventDeviceRejected, User: c.id.User, Device: d.ID, Err: fmt.Errorf("device %s of %s: %w", d.ID, c.id.User, err)})
		}
		out = append(out, od)
	}
	c.syncDeviceNames(ctx, learned, unshared)
	return out, nil
}

// syncDeviceNames keeps the names learned from the server in this
// profile (they travel to the devices linked from here) and shares the
// names known only here (a device linked before names were shared, or
// while the server could not be reached). Both are best effort.
func (c *Client) syncDeviceNames(ctx context.Context, learned map[string][]byte, unshared []OwnDevice) {
	if len(learned) > 0 {
		err := c.st.Update(ctx, func(tx store.Tx) error {
			for k, v := range learned {
				if err := tx.SetSetting(k, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			c.log.Warn("device names not kept", "err", err)
		}
	}
	for _, d := range unshared {
		if d.Forged {
			continue
		}
		if err := c.shareDeviceName(ctx, d.ID, d.Name); err != nil {
			c.log.Warn("device name not shared", "device", d.ID, "err", err)
		}
	}
}

// RenameDevice names one of the account's devices for all of them: the
// name is kept in this profile (it travels to devices linked from here)
// and shared, sealed, at the server, where the account's other devices
// read it; "" removes the name. When the server cannot be reached the
// error says so, and the name is shared by a later Devices.
func (c *Client) RenameDevice(ctx context.Context, device protocol.DeviceID, name string) error {
	if c.id == nil {
		return fmt.Errorf("client: rename device: %w", ErrNotRegistered)
	}
	if !protocol.ValidDeviceID(device) {
		return fmt.Errorf("client: rename device %.70q: not a device id", string(device))
	}
	name = cleanDeviceName(name)
	err := c.st.Update(ctx, func(tx store.Tx) error {
		return tx.SetSetting(deviceNamePrefix+string(device), []byte(name))
	})
	if err != nil {
		return fmt.Errorf("client: rename device %s: %w", device, err)
	}
	if err := c.shareDeviceName(ctx, device, name); err != nil {
		return fmt.Errorf("client: rename device %s: named on this device, but not shared with your other devices: %w", device, err)
	}
	return nil
}

// RevokeOwnDevice is RevokeDevice that refuses, unless force, to revoke
// the account's last active device that verifies (ErrLastDevice), and
// one the server does not list for the account.
func (c *Client) RevokeOwnDevice(ctx context.Context, device protocol.DeviceID, force bool) error {
	devs, err := c.Devices(ctx)
	if err != nil {
		return err
	}
	found, others := false, 0
	for _, d := range devs {
		active := d.Revoked.IsZero() && !d.Disabled && !d.Forged
		if d.ID == device {
			found = true
		} else if active {
			others++
		}
	}
	if !found {
		return fmt.Errorf("client: revoke device %.70q: the server lists no such device of %s", string(device), c.id.User)
	}
	if others == 0 && !force {
		return fmt.Errorf("client: revoke device %s: %w", device, ErrLastDevice)
	}
	return c.RevokeDevice(ctx, device)
}
