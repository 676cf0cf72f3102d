package protocol

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"
)

func TestDeviceRevocation(t *testing.T) {
	id := testKey(1)
	pub := id.Public().(ed25519.PublicKey)
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	data, err := NewDeviceRevocation(id, "example.org", "alice", "dev1", at)
	if err != nil {
		t.Fatal(err)
	}
	r, err := VerifyDeviceRevocation(data, pub, "example.org", "alice", "dev1")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Revoked.Equal(at.Truncate(time.Second)) || r.Server != "example.org" || r.User != "alice" || r.Device != "dev1" {
		t.Errorf("decoded %+v", r)
	}
	if re, _ := r.Marshal(); !bytes.Equal(re, data) {
		t.Errorf("re-encoding differs")
	}
	for _, tc := range []struct {
		what                 string
		key                  ed25519.PublicKey
		server, user, device string
	}{
		{"the wrong identity key", testKey(3).Public().(ed25519.PublicKey), "example.org", "alice", "dev1"},
		{"the wrong server", pub, "other.org", "alice", "dev1"},
		{"the wrong user", pub, "example.org", "bob", "dev1"},
		{"the wrong device", pub, "example.org", "alice", "dev2"},
		{"a short key", pub[:31], "example.org", "alice", "dev1"},
	} {
		if _, err := VerifyDeviceRevocation(data, tc.key, tc.server, tc.user, DeviceID(tc.device)); err == nil {
			t.Errorf("verified with %s", tc.what)
		}
	}
	// A device certificate is no revocation, even with the same fields.
	cert, _ := NewDeviceCertificate(id, "example.org", "alice", "dev1", SchemeEd25519, testKey(2).Public().(ed25519.PublicKey), at)
	if _, err := VerifyDeviceRevocation(cert, pub, "example.org", "alice", "dev1"); err == nil {
		t.Error("a device certificate verified as a revocation")
	}
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x40
		if _, err := VerifyDeviceRevocation(bad, pub, "example.org", "alice", "dev1"); err == nil {
			t.Errorf("verified with byte %d flipped", i)
		}
	}
	for n := range len(data) {
		if _, err := ParseDeviceRevocation(data[:n]); err == nil {
			t.Errorf("parsed a revocation truncated to %d bytes", n)
		}
	}
	if _, err := ParseDeviceRevocation(append(bytes.Clone(data), 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("trailing byte: %v", err)
	}
	bad := bytes.Clone(data)
	bad[0] = 2
	if _, err := ParseDeviceRevocation(bad); err == nil || !strings.Contains(err.Error(), "unknown version 2") {
		t.Errorf("version 2: %v", err)
	}
	if _, err := NewDeviceRevocation(id, strings.Repeat("x", maxField+1), "alice", "dev1", at); err == nil {
		t.Error("created a revocation with an oversized field")
	}
}

func FuzzParseDeviceRevocation(f *testing.F) {
	data, _ := NewDeviceRevocation(testKey(1), "example.org", "alice", "dev1", time.Unix(1700000000, 0))
	f.Add(data)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseDeviceRevocation(b)
		if err != nil {
			return
		}
		re, err := r.Marshal()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs: %x vs %x (%v)", re, b, err)
		}
	})
}
