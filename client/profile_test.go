package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// reopenConfig is the configuration of a later run of a test profile:
// no server URL and no fingerprint, only what the profile stores.
func reopenConfig(d *device) client.Config {
	return client.Config{ProfileDir: d.dir, Passphrase: []byte("correct horse " + d.name), KDF: fastKDF,
		SelfUpdateMessages: -1, SelfUpdateInterval: -1}
}

// TestSessionAndPinPersist: the session token and the pinned certificate
// fingerprint of a profile are kept in its store: a later Open without a
// fingerprint reaches the self-signed server, and does not authenticate
// again while the session is valid; a session the server refuses is
// replaced by a new one.
func TestSessionAndPinPersist(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	p := newEvilProxy(t, s)
	var sessions atomic.Int32
	p.set(func(path string, body []byte) []byte {
		if path == "/v1/auth/session" {
			sessions.Add(1)
		}
		return body
	})
	alice := registerVia(t, p, "alice")
	if n := sessions.Load(); n != 1 {
		t.Fatalf("register authenticated %d times, want 1", n)
	}
	alice.close()
	for run := range 3 {
		c, err := client.Open(ctx, reopenConfig(alice))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Sync(ctx); err != nil {
			t.Fatalf("run %d: sync with the stored pin: %v", run, err)
		}
		c.Close()
	}
	if n := sessions.Load(); n != 1 {
		t.Fatalf("three later runs authenticated %d more times, want 0", n-1)
	}
	c, err := client.Open(ctx, reopenConfig(alice))
	if err != nil {
		t.Fatal(err)
	}
	if err := client.StoreSessionForTest(ctx, c, "forgotten-by-the-server", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c, err = client.Open(ctx, reopenConfig(alice))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("sync with a session the server refuses: %v", err)
	}
	if n := sessions.Load(); n != 2 {
		t.Fatalf("a refused session led to %d new sessions, want 1", n-1)
	}

	// A wrong pin given to Open is used (and stored): the server is refused.
	c.Close()
	cfg := reopenConfig(alice)
	cfg.TLSFingerprint = "00" + alice.fp[2:]
	c, err = client.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var cm *client.CertificateMismatchError
	if err := c.Sync(ctx); !errors.As(err, &cm) || errors.Is(err, client.ErrServerUnreachable) || cm.Pinned != cfg.TLSFingerprint || cm.Got != alice.fp {
		t.Fatalf("sync with a wrong pin: %v, want a CertificateMismatchError naming both fingerprints, not ErrServerUnreachable", err)
	}
}

// TestProfileLock: a profile is open in one Client at a time; the store
// file is private.
func TestProfileLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	_, err := client.Open(ctx, reopenConfig(alice))
	var busy *client.ProfileBusyError
	if !errors.Is(err, client.ErrProfileBusy) || !errors.As(err, &busy) || busy.PID != os.Getpid() {
		t.Fatalf("second Open: %v, want ErrProfileBusy naming this process", err)
	}
	fi, err := os.Stat(filepath.Join(alice.dir, client.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("store file mode %v, want 0600", m)
	}
	alice.close()
	c, err := client.Open(ctx, reopenConfig(alice))
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	c.Close()
}

// TestUnseenAndUnread: messages applied but never shown (events lost in
// a crash or a Close) come back from Unseen until MarkShown; unread
// counts follow the read position.
func TestUnseenAndUnread(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	bob := register(t, s, "bob")
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"one", "two", "three"} {
		if _, err := alice.c.Send(ctx, conv, text, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	unseenTexts := func() []string {
		t.Helper()
		evs, err := bob.c.Unseen(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ev := range evs {
			if ev.Kind != client.EventMessage || ev.Conversation != conv || ev.User != "alice" {
				t.Fatalf("unseen event %+v", ev)
			}
			out = append(out, ev.Message.Text)
		}
		return out
	}
	if got := unseenTexts(); !slices.Equal(got, []string{"one", "two", "three"}) {
		t.Fatalf("unseen %q", got)
	}
	ms, _ := bob.c.Messages(ctx, conv, 0, 0)
	if err := bob.c.MarkShown(ctx, conv, ms[0].Seq); err != nil {
		t.Fatal(err)
	}
	// Durable: a new run of the profile sees the same.
	bob.close()
	bob = openDevice(t, s, bob.dir, "bob")
	if got := unseenTexts(); !slices.Equal(got, []string{"two", "three"}) {
		t.Fatalf("unseen after MarkShown and reopen: %q", got)
	}
	if err := bob.c.MarkShown(ctx, conv, ms[0].Seq-1); err != nil { // never back
		t.Fatal(err)
	}
	if got := unseenTexts(); len(got) != 2 {
		t.Fatalf("MarkShown moved back: %q", got)
	}

	cv, err := bob.c.Conversation(ctx, conv)
	if err != nil || cv.Unread != 3 {
		t.Fatalf("unread %+v, %v; want 3", cv, err)
	}
	if err := bob.c.MarkReadUpTo(ctx, conv, ms[1].Seq); err != nil {
		t.Fatal(err)
	}
	if cvs, _ := bob.c.Conversations(ctx); len(cvs) != 1 || cvs[0].Unread != 1 {
		t.Fatalf("unread after MarkReadUpTo: %+v", cvs)
	}
	if err := bob.c.MarkRead(ctx, conv); err != nil {
		t.Fatal(err)
	}
	if cv, _ := bob.c.Conversation(ctx, conv); cv.Unread != 0 {
		t.Fatalf("unread after MarkRead: %d", cv.Unread)
	}
	// Own messages never count.
	if _, err := bob.c.Send(ctx, conv, "mine", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if cv, _ := bob.c.Conversation(ctx, conv); cv.Unread != 0 {
		t.Fatalf("unread after sending: %d", cv.Unread)
	}
}

// TestIdentityChangedDetails: the error of an identity change names the
// user; the pending key's safety number is available before accepting it,
// and is the one after.
func TestIdentityChangedDetails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	p := newEvilProxy(t, s)
	alice := registerVia(t, p, "alice")
	register(t, s, "bob")
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	before, err := alice.c.SafetyNumber(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := alice.c.IdentityChanged(ctx, "bob"); err != nil || changed {
		t.Fatalf("IdentityChanged before: %v, %v", changed, err)
	}
	if _, err := alice.c.SafetyNumberPending(ctx, "bob"); err == nil {
		t.Fatal("SafetyNumberPending without a change: no error")
	}
	_, attacker, _ := ed25519.GenerateKey(rand.Reader)
	p.set(func(path string, body []byte) []byte {
		if path != "/v1/users/bob" {
			return body
		}
		var u protocol.UserInfo
		json.Unmarshal(body, &u)
		u.IdentityKey = attacker.Public().(ed25519.PublicKey)
		out, _ := json.Marshal(u)
		return out
	})
	_, err = alice.c.NewGroup(ctx, "again", "bob")
	var ic *client.IdentityChangedError
	if !errors.Is(err, client.ErrIdentityChanged) || !errors.As(err, &ic) || ic.User != "bob" {
		t.Fatalf("new group with the changed bob: %v, want an IdentityChangedError naming bob", err)
	}
	_, err = alice.c.Send(ctx, conv, "still you?", client.SendOptions{})
	if !errors.As(err, &ic) || ic.User != "bob" {
		t.Fatalf("send to the changed bob: %v, want an IdentityChangedError naming bob", err)
	}
	if changed, err := alice.c.IdentityChanged(ctx, "bob"); err != nil || !changed {
		t.Fatalf("IdentityChanged after: %v, %v", changed, err)
	}
	pending, err := alice.c.SafetyNumberPending(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if pending.Digits == before.Digits {
		t.Fatal("the pending safety number equals the old one")
	}
	if now, err := alice.c.SafetyNumber(ctx, "bob"); err != nil || now.Digits != before.Digits {
		t.Fatalf("SafetyNumber before accepting: %v, %v; want the pinned key's", now, err)
	}
	// Between showing the number and accepting, the server presents yet
	// another key: accepting with the digits shown must not take it.
	_, attacker2, _ := ed25519.GenerateKey(rand.Reader)
	p.set(func(path string, body []byte) []byte {
		if path != "/v1/users/bob" {
			return body
		}
		var u protocol.UserInfo
		json.Unmarshal(body, &u)
		u.IdentityKey = attacker2.Public().(ed25519.PublicKey)
		out, _ := json.Marshal(u)
		return out
	})
	if _, err := alice.c.NewGroup(ctx, "third", "bob"); !errors.Is(err, client.ErrIdentityChanged) {
		t.Fatalf("new group with bob's third key: %v, want ErrIdentityChanged", err)
	}
	if err := alice.c.AcknowledgeIdentity(ctx, "bob", pending.Digits); !errors.Is(err, client.ErrIdentityChanged) {
		t.Fatalf("accept with the digits of a key replaced meanwhile: %v, want ErrIdentityChanged", err)
	}
	if now, err := alice.c.SafetyNumber(ctx, "bob"); err != nil || now.Digits != before.Digits {
		t.Fatalf("SafetyNumber after a refused accept: %v, %v; want the pinned key's", now, err)
	}
	pending, err = alice.c.SafetyNumberPending(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	// The digits as shown, in groups of five, are accepted.
	if err := alice.c.AcknowledgeIdentity(ctx, "bob", strings.Join(pending.Groups, " ")); err != nil {
		t.Fatal(err)
	}
	after, err := alice.c.SafetyNumber(ctx, "bob")
	if err != nil || after.Digits != pending.Digits {
		t.Fatalf("safety number after accepting: %v, %v; want the pending one", after, err)
	}
	if err := alice.c.AcknowledgeIdentity(ctx, "bob", pending.Digits); err != nil {
		t.Fatalf("accepting the pinned key again: %v", err)
	}
}
