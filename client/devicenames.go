package client

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/protocol"
)

// Device names shared by an account's devices (docs/protocol.md,
// "Device names"). A name is sealed with AES-256-GCM under a key derived
// with HKDF-SHA256 from the account's identity private key, which every
// device of the account holds and the server never sees, and stored at
// the server with the device (PUT /v1/devices/{device}/name). The
// additional data binds it to the server, the user and the device, so
// the server cannot move a name to another device or account; it can
// only serve an older name of the same device, or none. The name is
// padded to a fixed size, so its length does not show either.

// deviceNameVersion starts a sealed name.
const deviceNameVersion = 1

// deviceNamePadded is the size of a name's plaintext: its length (2
// bytes) and up to 64 characters of UTF-8, padded.
const deviceNamePadded = 2 + 4*64

const deviceNameLabel = "parley device names v1"

// deviceNameAEAD returns the AEAD of the account's device names.
func (c *Client) deviceNameAEAD() (cipher.AEAD, error) {
	seed := ed25519.PrivateKey(c.id.IdentityKey).Seed()
	key, err := hkdf.Key(sha256.New, seed, nil, deviceNameLabel+" "+c.serverName+" "+c.id.User, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// deviceNameAD is the additional data of a device's name.
func (c *Client) deviceNameAD(dev protocol.DeviceID) []byte {
	return fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s", deviceNameLabel, c.serverName, c.id.User, dev)
}

// sealDeviceName seals the name of one of the account's devices.
func (c *Client) sealDeviceName(dev protocol.DeviceID, name string) ([]byte, error) {
	if len(name) > deviceNamePadded-2 {
		return nil, fmt.Errorf("device name of %d bytes, more than %d", len(name), deviceNamePadded-2)
	}
	aead, err := c.deviceNameAEAD()
	if err != nil {
		return nil, err
	}
	pt := make([]byte, deviceNamePadded)
	binary.BigEndian.PutUint16(pt, uint16(len(name)))
	copy(pt[2:], name)
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(pt)+aead.Overhead())
	out[0] = deviceNameVersion
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], pt, c.deviceNameAD(dev)), nil
}

// errBadDeviceName is the error of a sealed name that does not open.
var errBadDeviceName = errors.New("the sealed device name does not open under the account's key")

// openDeviceName opens a device's sealed name from the server.
func (c *Client) openDeviceName(dev protocol.DeviceID, sealed []byte) (string, error) {
	aead, err := c.deviceNameAEAD()
	if err != nil {
		return "", err
	}
	n := aead.NonceSize()
	if len(sealed) != 1+n+deviceNamePadded+aead.Overhead() || sealed[0] != deviceNameVersion {
		return "", errBadDeviceName
	}
	pt, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], c.deviceNameAD(dev))
	if err != nil {
		return "", errBadDeviceName
	}
	size := int(binary.BigEndian.Uint16(pt))
	if size > len(pt)-2 {
		return "", errBadDeviceName
	}
	return cleanDeviceName(string(pt[2 : 2+size])), nil
}

// shareDeviceName stores a device's name, sealed, at the server. An
// empty name is sealed too, so that a name removed on one device is not
// shared again by another that still knows it.
func (c *Client) shareDeviceName(ctx context.Context, dev protocol.DeviceID, name string) error {
	sealed, err := c.sealDeviceName(dev, name)
	if err != nil {
		return err
	}
	return c.call(ctx, "PUT", "/v1/devices/"+string(dev)+"/name", true, protocol.SetDeviceNameRequest{SealedName: sealed}, nil)
}

// sharedDeviceName returns the name the server holds for a device of
// the account, or ok false when it holds none or one that does not open
// (which is logged: the server cannot make one).
func (c *Client) sharedDeviceName(d protocol.DeviceInfo) (name string, ok bool) {
	if len(d.SealedName) == 0 {
		return "", false
	}
	name, err := c.openDeviceName(d.ID, d.SealedName)
	if err != nil {
		c.log.Warn("device name ignored", "device", d.ID, "err", err)
		return "", false
	}
	return name, true
}
