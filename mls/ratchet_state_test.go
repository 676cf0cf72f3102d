package mls

import (
	"bytes"
	"errors"
	"testing"
)

// TestRatchetStateFirstMessage is the regression test for a ratchet state
// written after a sender's first message of the epoch: that message splits
// secret tree nodes the full state, written at the merge, still holds
// whole. ApplyRatchetState refused it as behind ("node 2 secret already
// used"), which left a restarted member to reuse the message's key.
func TestRatchetStateFirstMessage(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w := newWorld(t, cs)
	aliceSigner, err := GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := CreateGroup(w.cfg, cs, []byte("first-message"), aliceSigner, BasicCredential([]byte("alice")), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.members["alice"] = alice
	kp := w.kp("bob")
	pc := w.commit("alice", CommitOptions{Add: [][]byte{kp.KeyPackage}, InlineRatchetTree: true})
	bob, err := JoinFromWelcome(w.cfg, pc.Welcome, kp, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.members["bob"] = bob

	// The sender: full state at the merge, then its first message.
	full := mustMarshal(t, alice)
	rs0, err := alice.RatchetState()
	if err != nil {
		t.Fatal(err)
	}
	m1, err := alice.Encrypt([]byte("m1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rs1, err := alice.RatchetState()
	if err != nil {
		t.Fatal(err)
	}
	l, err := LoadGroup(w.cfg, full, aliceSigner)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ApplyRatchetState(rs1); err != nil {
		t.Fatalf("ratchet state after the first message: %v", err)
	}
	if rs, _ := l.RatchetState(); !bytes.Equal(rs, rs1) {
		t.Fatal("ratchet state not restored exactly")
	}
	if err := l.ApplyRatchetState(rs0); !errors.Is(err, ErrStale) {
		t.Fatalf("ratchet state before the first message: err = %v, want ErrStale", err)
	}
	m2, err := l.Encrypt([]byte("m2"), nil)
	if err != nil {
		t.Fatal(err)
	}

	// The receiver: full state at the join, then the sender's first
	// message splits the same nodes in its tree.
	bobFull := mustMarshal(t, bob)
	bobRS0, _ := bob.RatchetState()
	if _, err := bob.Process(m1); err != nil {
		t.Fatal(err)
	}
	bobRS1, _ := bob.RatchetState()
	bl, err := LoadGroup(w.cfg, bobFull, kp.Signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := bl.ApplyRatchetState(bobRS1); err != nil {
		t.Fatalf("receiver's ratchet state after the first message: %v", err)
	}
	if err := bl.ApplyRatchetState(bobRS0); !errors.Is(err, ErrStale) {
		t.Fatalf("receiver's older ratchet state: err = %v, want ErrStale", err)
	}
	if _, err := bl.Process(m1); !errors.Is(err, ErrReplay) {
		t.Fatalf("first message again after restart: err = %v, want ErrReplay", err)
	}
	if p, err := bl.Process(m2); err != nil || string(p.ApplicationData) != "m2" {
		t.Fatalf("second message after restart: %v", err)
	}

	// The restarted receiver's own first message, and a later ratchet
	// state applied to the full state of the join.
	if _, err := bl.Encrypt([]byte("m3"), nil); err != nil {
		t.Fatal(err)
	}
	bobRS2, _ := bl.RatchetState()
	bl2, err := LoadGroup(w.cfg, bobFull, kp.Signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := bl2.ApplyRatchetState(bobRS2); err != nil {
		t.Fatalf("ratchet state after both senders' first messages: %v", err)
	}
	if err := bl2.ApplyRatchetState(bobRS1); !errors.Is(err, ErrStale) {
		t.Fatalf("ratchet state before the receiver's own first message: err = %v, want ErrStale", err)
	}
}

// TestRatchetStateFirstMessagePastEpoch covers the same split in a retained
// past epoch: a late message of a sender's first in the previous epoch,
// processed after the merge whose full state was saved.
func TestRatchetStateFirstMessagePastEpoch(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w, signers := stateWorld(t, cs)
	w.commit("alice", CommitOptions{ForcePath: true})
	// carol's first message of this epoch, delivered only after the next.
	late, err := w.members["carol"].Encrypt([]byte("late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	w.commit("alice", CommitOptions{ForcePath: true})
	bob := w.members["bob"]
	full := mustMarshal(t, bob)
	if p, err := bob.Process(late); err != nil || string(p.ApplicationData) != "late" {
		t.Fatalf("late message: %v", err)
	}
	rs, err := bob.RatchetState()
	if err != nil {
		t.Fatal(err)
	}
	l, err := LoadGroup(w.cfg, full, signers["bob"])
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ApplyRatchetState(rs); err != nil {
		t.Fatalf("ratchet state after a late first message: %v", err)
	}
	if _, err := l.Process(late); !errors.Is(err, ErrReplay) {
		t.Fatalf("late message again after restart: err = %v, want ErrReplay", err)
	}
}
