// Package storetest is the conformance suite of the client's local store:
// every implementation of [store.Store] runs [Run], which checks the
// contract of package store (records, history and its indexes, expiry,
// cursors, outbox, key packages, settings, transactions, and the trust
// check of contacts) against fresh stored data, across reopens.
//
// It also offers the helpers that an implementation's own tests share
// with the suite: [Fill] writes one record of every kind, [Check] reads
// them back.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// Opener opens stores on one set of stored data, created empty when the
// Opener was made. Open opens a store on it; once that store is closed,
// the next Open sees everything it committed. Open registers a cleanup
// that closes the store, so Close must accept being called twice.
type Opener interface {
	Open(t *testing.T) store.Store
}

// Records are raw stored records of one kind, by an opaque key of the
// implementation, as someone holding the stored data but not the key sees
// them.
type Records map[string][]byte

// Tamperer is implemented by an Opener whose stored data the suite may
// change while no store is open on it, as an attacker holding the stored
// data but not the key would. Without it, the trust tests are skipped.
type Tamperer interface {
	// ContactKey returns the key of user's record in [Tamperer.Contacts].
	ContactKey(t *testing.T, user string) string
	// Contacts returns the stored records of the contacts.
	Contacts(t *testing.T) Records
	// SetContacts replaces the stored records of the contacts by r.
	SetContacts(t *testing.T, r Records)
	// TrustRoot returns the stored record (or records) of the trust root,
	// the value that authenticates the contacts, without the copy of its
	// version kept elsewhere.
	TrustRoot(t *testing.T) Records
	// SetTrustRoot replaces the stored trust root by r (empty deletes it).
	SetTrustRoot(t *testing.T, r Records)
	// DeleteTrustVersion deletes the copy of the trust root's version
	// kept apart from the root.
	DeleteTrustVersion(t *testing.T)
}

// Run runs the suite. newOpener must return an Opener on fresh, empty
// stored data each time it is called.
func Run(t *testing.T, newOpener func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"RoundTrip", testRoundTrip},
		{"MessageUpdatesAndDuplicates", testMessageUpdatesAndDuplicates},
		{"Rollback", testRollback},
		{"ViewRefusesWrites", testViewRefusesWrites},
		{"RatchetState", testRatchetState},
		{"Outbox", testOutbox},
		{"Expiry", testExpiry},
		{"SystemLineRecords", testSystemLineRecords},
		{"LatestAndAfter", testLatestAndAfter},
		{"MessageTexts", testMessageTexts},
		{"TrustSwap", testTrustSwap},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newOpener(t)) })
	}
	t.Run("TrustRollback", func(t *testing.T) { testTrustRollback(t, newOpener) })
}

// Now is the time the suite's records carry.
var Now = time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)

// MID returns a message id made of b.
func MID(b byte) [16]byte {
	var id [16]byte
	id[0], id[15] = b, 0x5a
	return id
}

// Update runs fn in an Update of s and fails the test on an error.
func Update(t testing.TB, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// View runs fn in a View of s and fails the test on an error.
func View(t testing.TB, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// Fill writes one record of every kind: an identity, devices dev2 (bob)
// and dev3 (carol), contacts bob and carol (verified), conversations 1
// and 2 with group states, cursors, key packages ref1 and ref2, setting
// theme, three messages in conversation 1 and one queued message.
func Fill(t testing.TB, s store.Store) {
	t.Helper()
	Update(t, s, func(tx store.Tx) error {
		steps := []error{
			tx.PutIdentity(&store.Identity{Server: "https://chat.example", User: "alice", Device: "dev1", IdentityKey: bytes.Repeat([]byte{7}, 64),
				DeviceScheme: protocol.SchemeEd25519, DeviceKey: []byte("device-private"), Certificate: []byte("cert"), Created: Now}),
			tx.PutDevice(&store.Device{ID: "dev2", User: "bob", Certificate: []byte("bob-cert"), Seen: Now}),
			tx.PutDevice(&store.Device{ID: "dev3", User: "carol", Seen: Now}),
			tx.PutContact(&store.Contact{User: "bob", IdentityKey: bytes.Repeat([]byte{2}, 32), Pinned: Now}),
			tx.PutContact(&store.Contact{User: "carol", IdentityKey: bytes.Repeat([]byte{3}, 32), Verified: true, Pinned: Now}),
			tx.PutConversation(&store.Conversation{ID: 1, GroupID: []byte("g1"), Name: "Desk", Members: []string{"alice", "bob"}, Created: Now}),
			tx.PutConversation(&store.Conversation{ID: 2, GroupID: []byte("g2"), Direct: true, Created: Now}),
			tx.PutGroupState(1, []byte("mls state 1")),
			tx.PutGroupState(2, []byte("mls state 2")),
			tx.SetCursor(1, 10),
			tx.SetCursor(store.InboxCursor, 3),
			tx.PutKeyPackage([]byte("ref1"), []byte("kp private 1")),
			tx.PutKeyPackage([]byte("ref2"), []byte("kp private 2")),
			tx.SetSetting("theme", []byte("dark")),
		}
		for _, text := range []string{"first", "second", "third"} {
			m := &store.Message{Conversation: 1, ID: MID(text[0]), Sender: "bob", SenderDevice: "dev2", Sent: Now, Received: Now, Content: []byte("c-" + text), Text: text}
			added, err := tx.AddMessage(m)
			if err == nil && !added {
				err = errors.New("not added")
			}
			steps = append(steps, err)
		}
		steps = append(steps, tx.Enqueue(&store.Outgoing{Conversation: 1, MessageID: MID(9), Content: []byte("out"), Created: Now}))
		return errors.Join(steps...)
	})
}

// Check verifies what Fill wrote.
func Check(t testing.TB, s store.Store) {
	t.Helper()
	View(t, s, func(tx store.Tx) error {
		id, err := tx.Identity()
		if err != nil || id.User != "alice" || string(id.DeviceKey) != "device-private" || !id.Created.Equal(Now) {
			t.Errorf("Identity = %+v, %v", id, err)
		}
		if d, err := tx.Device("dev2"); err != nil || d.User != "bob" || string(d.Certificate) != "bob-cert" {
			t.Errorf("Device = %+v, %v", d, err)
		}
		if ds, err := tx.Devices("carol"); err != nil || len(ds) != 1 || ds[0].ID != "dev3" {
			t.Errorf("Devices(carol) = %+v, %v", ds, err)
		}
		if c, err := tx.Contact("carol"); err != nil || !c.Verified || c.IdentityKey[0] != 3 {
			t.Errorf("Contact = %+v, %v", c, err)
		}
		if cs, err := tx.Contacts(); err != nil || len(cs) != 2 {
			t.Errorf("Contacts = %+v, %v", cs, err)
		}
		if _, err := tx.Contact("mallory"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Contact(mallory) = %v, want ErrNotFound", err)
		}
		if cs, err := tx.Conversations(); err != nil || len(cs) != 2 || cs[0].Name != "Desk" || !cs[1].Direct {
			t.Errorf("Conversations = %+v, %v", cs, err)
		}
		if g, err := tx.GroupState(2); err != nil || string(g) != "mls state 2" {
			t.Errorf("GroupState = %q, %v", g, err)
		}
		if c, err := tx.Cursor(1); err != nil || c != 10 {
			t.Errorf("Cursor(1) = %d, %v", c, err)
		}
		if c, err := tx.Cursor(store.InboxCursor); err != nil || c != 3 {
			t.Errorf("Cursor(inbox) = %d, %v", c, err)
		}
		if c, err := tx.Cursor(99); err != nil || c != 0 {
			t.Errorf("Cursor(99) = %d, %v", c, err)
		}
		if cs, err := tx.Cursors(); err != nil || len(cs) != 1 || cs[0] != (protocol.Cursor{Conversation: 1, Seq: 10}) {
			t.Errorf("Cursors = %+v, %v", cs, err)
		}
		if kp, err := tx.KeyPackage([]byte("ref1")); err != nil || string(kp) != "kp private 1" {
			t.Errorf("KeyPackage = %q, %v", kp, err)
		}
		if n, err := tx.KeyPackageCount(); err != nil || n != 2 {
			t.Errorf("KeyPackageCount = %d, %v", n, err)
		}
		if v, err := tx.Setting("theme"); err != nil || string(v) != "dark" {
			t.Errorf("Setting = %q, %v", v, err)
		}
		ms, err := tx.Messages(1, 0, 0)
		if err != nil || len(ms) != 3 || ms[0].Text != "first" || ms[2].Seq != 3 {
			t.Errorf("Messages = %+v, %v", ms, err)
		}
		if ms, err := tx.LastMessages(1, 2); err != nil || len(ms) != 2 || ms[0].Text != "second" {
			t.Errorf("LastMessages = %+v, %v", ms, err)
		}
		if m, err := tx.MessageByID(1, MID('s')); err != nil || m.Text != "second" || m.Seq != 2 {
			t.Errorf("MessageByID = %+v, %v", m, err)
		}
		if _, err := tx.MessageByID(2, MID('s')); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("MessageByID in other conversation = %v, want ErrNotFound", err)
		}
		if out, err := tx.Outbox(0); err != nil || len(out) != 1 || string(out[0].Content) != "out" {
			t.Errorf("Outbox = %+v, %v", out, err)
		}
		return nil
	})
}
