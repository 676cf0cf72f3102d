package mls

import (
	"bytes"
	"strings"
	"testing"
)

// roundUp256 is a padding policy: the next multiple of 256 bytes.
func roundUp256(n int) int { return (n + 255) / 256 * 256 }

// privateCiphertextLen returns the length of the ciphertext of the
// PrivateMessage msg.
func privateCiphertextLen(t *testing.T, msg []byte) int {
	t.Helper()
	m, err := decodeMessage(msg, WireFormatPrivateMessage, "test")
	if err != nil {
		t.Fatal(err)
	}
	return len(m.PrivateMessage.Ciphertext)
}

// TestPaddingPolicyApplication checks that Config.Padding pads application
// messages (RFC 9420 §6.3.1): a 1-byte receipt and a 100-byte text travel
// as messages of one size, and each decrypts to what was sent.
func TestPaddingPolicyApplication(t *testing.T) {
	_, alice, bob := twoMembers(t)
	alice.cfg.Padding = roundUp256
	receipt := []byte{1}
	text := bytes.Repeat([]byte("t"), 100)
	mr, err := alice.Encrypt(receipt, nil)
	if err != nil {
		t.Fatal(err)
	}
	mt, err := alice.Encrypt(text, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(mr) != len(mt) {
		t.Errorf("receipt message %d bytes, text message %d bytes: want equal", len(mr), len(mt))
	}
	if n := privateCiphertextLen(t, mr); n != 256+16 {
		t.Errorf("receipt ciphertext %d bytes, want 256 plus the AEAD tag", n)
	}
	for _, c := range []struct {
		msg, want []byte
	}{{mr, receipt}, {mt, text}} {
		p, err := bob.Process(c.msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p.ApplicationData, c.want) {
			t.Errorf("decrypted %q, want %q", p.ApplicationData, c.want)
		}
	}
}

// TestPaddingPolicyHandshake checks that Config.Padding pads encrypted
// proposals and commits too, and that those still process.
func TestPaddingPolicyHandshake(t *testing.T) {
	_, alice, bob := twoMembers(t)
	for _, g := range []*Group{alice, bob} {
		g.cfg.EncryptHandshake = true
	}
	alice.cfg.Padding = roundUp256
	prop, err := alice.ProposeRemove(1)
	if err != nil {
		t.Fatal(err)
	}
	if n := privateCiphertextLen(t, prop); (n-16)%256 != 0 {
		t.Errorf("proposal ciphertext %d bytes, want a multiple of 256 plus the tag", n)
	}
	if _, err := bob.Process(prop); err != nil {
		t.Fatal(err)
	}
	pc, err := alice.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := privateCiphertextLen(t, pc.Message); (n-16)%256 != 0 {
		t.Errorf("commit ciphertext %d bytes, want a multiple of 256 plus the tag", n)
	}
	if _, err := bob.Process(pc.Message); err != nil {
		t.Fatal(err)
	}
}

// TestPaddingPolicyInvalid checks that a policy that would shrink the
// content fails the send, naming the lengths, and burns no key.
func TestPaddingPolicyInvalid(t *testing.T) {
	_, alice, bob := twoMembers(t)
	alice.cfg.Padding = func(n int) int { return n - 1 }
	if _, err := alice.Encrypt([]byte("x"), nil); err == nil || !strings.Contains(err.Error(), "padding policy") {
		t.Fatalf("shrinking policy: %v", err)
	}
	alice.cfg.Padding = func(int) int { return 1 << 30 }
	if _, err := alice.Encrypt([]byte("x"), nil); err == nil || !strings.Contains(err.Error(), "padding policy") {
		t.Fatalf("oversized policy: %v", err)
	}
	alice.cfg.Padding = nil
	msg, err := alice.Encrypt([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Process(msg); err != nil {
		t.Fatalf("after refused sends: %v", err)
	}
}
