package client

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

// TestLinkCode: a code formats in six groups of four and parses back
// from any case, with or without separators, and from the QR payload
// with its key; malformed codes are refused with the input quoted.
func TestLinkCode(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, 32)
	lc := linkCode{id: "ABCD2345", secret: newLinkSecret(), key: key}
	s := lc.String()
	if len(s) != 29 || strings.Count(s, "-") != 5 {
		t.Fatalf("code %q: want 6 groups of 4", s)
	}
	for _, in := range []string{s, strings.ToLower(s), strings.ReplaceAll(s, "-", " "), strings.ReplaceAll(s, "-", "")} {
		got, err := parseLinkCode(in)
		if err != nil || got.id != lc.id || !bytes.Equal(got.secret, lc.secret) || got.key != nil {
			t.Errorf("parse %q: %+v %v", in, got, err)
		}
	}
	got, err := parseLinkCode(lc.qrPayload())
	if err != nil || got.id != lc.id || !bytes.Equal(got.secret, lc.secret) || !bytes.Equal(got.key, key) {
		t.Errorf("parse the QR payload: %+v %v", got, err)
	}
	for _, bad := range []string{"", "ABCD", s + "A", strings.Replace(s, "A", "1", 1), "parley-link:1:" + strings.ReplaceAll(s, "-", "") + ":short"} {
		if _, err := parseLinkCode(bad); err == nil {
			t.Errorf("parse %q: accepted", bad)
		}
	}
}

// TestLinkKeys: both sides derive the same keys and confirmation; a key
// substituted on either side, or another secret, changes the proofs (the
// check fails), and sealed messages open only in their direction and
// position.
func TestLinkKeys(t *testing.T) {
	t.Parallel()
	newKey := func() *ecdh.PrivateKey {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	n, e, mitm := newKey(), newKey(), newKey()
	secret := newLinkSecret()
	np, ep := n.PublicKey().Bytes(), e.PublicKey().Bytes()
	kn, err := deriveLinkKeys(n, ep, secret, "ABCD2345", np, ep)
	if err != nil {
		t.Fatal(err)
	}
	ke, err := deriveLinkKeys(e, np, secret, "ABCD2345", np, ep)
	if err != nil {
		t.Fatal(err)
	}
	if kn.confirmation != ke.confirmation || kn.checkMAC(true, ke.mac(true)) != nil || ke.checkMAC(false, kn.mac(false)) != nil {
		t.Fatal("the two sides disagree")
	}
	if kn.checkMAC(true, ke.mac(false)) == nil {
		t.Error("a side's own proof is accepted as the other's")
	}
	box := ke.seal(true, 0, []byte("account"))
	if pt, err := kn.open(true, 0, box); err != nil || string(pt) != "account" {
		t.Errorf("open: %q %v", pt, err)
	}
	if _, err := kn.open(true, 1, box); !errors.Is(err, ErrLinkTampered) {
		t.Errorf("open at another position: %v", err)
	}
	if _, err := ke.open(false, 0, box); !errors.Is(err, ErrLinkTampered) {
		t.Errorf("open in the other direction: %v", err)
	}

	// The server gives the existing device its own key for the new
	// device's: the existing device derives keys that the new device's
	// do not match, whatever the server does with its own secret.
	mp := mitm.PublicKey().Bytes()
	kem, _ := deriveLinkKeys(e, mp, secret, "ABCD2345", mp, ep)
	knm, _ := deriveLinkKeys(n, mp, secret, "ABCD2345", np, mp)
	if knm.checkMAC(true, kem.mac(true)) == nil {
		t.Error("a substituted key passed the check")
	}
	// Without the secret, the server's own derivation does not pass.
	guess, _ := deriveLinkKeys(mitm, np, newLinkSecret(), "ABCD2345", np, mp)
	if knm.checkMAC(true, guess.mac(true)) == nil {
		t.Error("a proof without the secret passed the check")
	}
}
