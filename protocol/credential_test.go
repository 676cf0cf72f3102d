package protocol

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"
)

func TestCredential(t *testing.T) {
	id := testKey(1)
	dev := testKey(2).Public().(ed25519.PublicKey)
	cert, err := NewDeviceCertificate(id, "example.org", "alice", "dev1", SchemeEd25519, dev, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeCredential("example.org", cert)
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCredential(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server != "example.org" || c.User() != "alice" || c.Device() != "dev1" || !bytes.Equal(c.Raw, cert) {
		t.Errorf("decoded %+v", c)
	}
	if re, _ := EncodeCredential(c.Server, c.Raw); !bytes.Equal(re, b) {
		t.Error("re-encoding differs")
	}
	idKey := id.Public().(ed25519.PublicKey)
	if err := c.Verify("example.org", idKey, "alice", "dev1", dev); err != nil {
		t.Errorf("verify: %v", err)
	}
	// A credential whose server differs from its certificate's is refused
	// for either server, naming both.
	cross, _ := EncodeCredential("other.org", cert)
	cc, err := DecodeCredential(cross)
	if err != nil {
		t.Fatal(err)
	}
	for _, server := range []string{"example.org", "other.org"} {
		err := cc.Verify(server, idKey, "alice", "dev1", dev)
		if err == nil || !strings.Contains(err.Error(), `"example.org"`) || !strings.Contains(err.Error(), `"other.org"`) {
			t.Errorf("credential for other.org with a certificate for example.org, verified for %s: %v", server, err)
		}
	}
	for _, tc := range []struct {
		name, server, user string
		device             DeviceID
		idKey, devKey      []byte
	}{
		{"server", "other.org", "alice", "dev1", idKey, dev},
		{"user", "example.org", "bob", "dev1", idKey, dev},
		{"device", "example.org", "alice", "dev2", idKey, dev},
		{"device key", "example.org", "alice", "dev1", idKey, testKey(3).Public().(ed25519.PublicKey)},
		{"identity key", "example.org", "alice", "dev1", testKey(3).Public().(ed25519.PublicKey), dev},
	} {
		if err := c.Verify(tc.server, tc.idKey, tc.user, tc.device, tc.devKey); err == nil {
			t.Errorf("verified with another %s", tc.name)
		}
	}
	for name, bad := range map[string][]byte{
		"empty":        nil,
		"version":      append([]byte{2}, b[1:]...),
		"truncated":    b[:len(b)-1],
		"trailing":     append(bytes.Clone(b), 0),
		"bad cert":     append([]byte{1, 0, 1, 'x', 0, 1}, 9),
		"short length": {1, 0},
	} {
		if _, err := DecodeCredential(bad); err == nil || !strings.HasPrefix(err.Error(), "protocol: decode credential:") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeCredential(f *testing.F) {
	cert, _ := NewDeviceCertificate(testKey(1), "example.org", "alice", "dev1", SchemeEd25519, testKey(2).Public().(ed25519.PublicKey), time.Unix(1700000000, 0))
	b, _ := EncodeCredential("example.org", cert)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCredential(data)
		if err != nil {
			return
		}
		re, err := EncodeCredential(c.Server, c.Raw)
		if err != nil || !bytes.Equal(re, data) {
			t.Fatalf("decode→encode: %x, want %x (%v)", re, data, err)
		}
	})
}
