package client

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/parley-chat/parley/client/store"
)

// namesClient is a client of user on server with a fixed identity key.
func namesClient(server, user string, seed byte) *Client {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return &Client{id: &store.Identity{User: user, IdentityKey: key}, serverName: server}
}

// TestDeviceNameSealing: a sealed name opens for its device and account
// only, has one size whatever the name, and any change to it, its
// device, its account or its server makes it refused.
func TestDeviceNameSealing(t *testing.T) {
	t.Parallel()
	c := namesClient("chat.example", "alice", 1)
	a, err := c.sealDeviceName("d1", "my phone")
	if err != nil {
		t.Fatal(err)
	}
	long, err := c.sealDeviceName("d1", strings.Repeat("é", 64))
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(long) {
		t.Errorf("sealed names of %d and %d bytes: the length shows", len(a), len(long))
	}
	if name, err := c.openDeviceName("d1", a); err != nil || name != "my phone" {
		t.Errorf("open = %q, %v", name, err)
	}
	for what, open := range map[string]func() (string, error){
		"another device":  func() (string, error) { return c.openDeviceName("d2", a) },
		"another account": func() (string, error) { return namesClient("chat.example", "alice", 2).openDeviceName("d1", a) },
		"another user":    func() (string, error) { return namesClient("chat.example", "bob", 1).openDeviceName("d1", a) },
		"another server":  func() (string, error) { return namesClient("other.example", "alice", 1).openDeviceName("d1", a) },
		"a flipped bit": func() (string, error) {
			b := bytes.Clone(a)
			b[len(b)/2] ^= 1
			return c.openDeviceName("d1", b)
		},
		"another version": func() (string, error) {
			b := bytes.Clone(a)
			b[0] = 2
			return c.openDeviceName("d1", b)
		},
		"truncated": func() (string, error) { return c.openDeviceName("d1", a[:len(a)-1]) },
		"empty":     func() (string, error) { return c.openDeviceName("d1", nil) },
	} {
		if name, err := open(); err == nil {
			t.Errorf("%s: opened as %q", what, name)
		}
	}
	if _, err := c.sealDeviceName("d1", strings.Repeat("x", deviceNamePadded)); err == nil {
		t.Error("an oversized name was sealed")
	}
}
