package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// stateWorld builds a three-member group with a follower, a few epochs,
// messages and a cached proposal, so that the states hold past epochs,
// started ratchets and kept out-of-order keys.
func stateWorld(t *testing.T, cs CipherSuite) (*world, map[string]*Signer) {
	t.Helper()
	w := newWorld(t, cs)
	signers := map[string]*Signer{}
	aliceSigner, err := GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	signers["alice"] = aliceSigner
	alice, err := CreateGroup(w.cfg, cs, []byte("state-group"), aliceSigner, BasicCredential([]byte("alice")), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.members["alice"] = alice
	gi, err := alice.GroupInfo(GroupInfoOptions{InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if w.pg, err = NewPublicGroup(w.cfg, gi, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bob", "carol"} {
		kp := w.kp(name)
		signers[name] = kp.Signer
		pc := w.commit("alice", CommitOptions{Add: [][]byte{kp.KeyPackage}, InlineRatchetTree: true})
		g, err := JoinFromWelcome(w.cfg, pc.Welcome, kp, JoinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.members[name] = g
	}
	w.message("alice")
	w.message("bob")
	w.commit("carol", CommitOptions{ForcePath: true})
	w.message("carol")
	// A kept out-of-order key at bob and carol: alice's next message is
	// skipped.
	if _, err := w.members["alice"].Encrypt([]byte("skipped"), nil); err != nil {
		t.Fatal(err)
	}
	w.message("alice")
	// A cached Update proposal of bob's (with its private key).
	up, err := w.members["bob"].ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	w.deliver("bob", up)
	return w, signers
}

func mustMarshal(t *testing.T, g *Group) []byte {
	t.Helper()
	b, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStateRoundTrip(t *testing.T) {
	for _, cs := range lifecycleSuites {
		t.Run(fmt.Sprintf("%#04x", uint16(cs)), func(t *testing.T) {
			w, signers := stateWorld(t, cs)
			for name, g := range w.members {
				b := mustMarshal(t, g)
				if again := mustMarshal(t, g); !bytes.Equal(b, again) {
					t.Fatalf("%s: marshal not deterministic", name)
				}
				l, err := LoadGroup(w.cfg, b, signers[name])
				if err != nil {
					t.Fatalf("%s: load: %v", name, err)
				}
				if b2 := mustMarshal(t, l); !bytes.Equal(b, b2) {
					t.Fatalf("%s: load→marshal differs", name)
				}
				if l.Epoch() != g.Epoch() || !bytes.Equal(l.EpochAuthenticator(), g.EpochAuthenticator()) || l.OwnLeaf() != g.OwnLeaf() {
					t.Fatalf("%s: loaded state differs", name)
				}
			}
			// The follower too.
			pb, err := w.pg.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			pg, err := LoadPublicGroup(w.cfg, pb)
			if err != nil {
				t.Fatal(err)
			}
			if pb2, _ := pg.MarshalBinary(); !bytes.Equal(pb, pb2) {
				t.Fatal("public group: load→marshal differs")
			}
			w.pg = pg

			// bob continues as a loaded copy twin next to the original:
			// both must end in the same state after the same inputs.
			bob := w.members["bob"]
			twin, err := LoadGroup(w.cfg, mustMarshal(t, bob), signers["bob"])
			if err != nil {
				t.Fatal(err)
			}
			ct, err := w.members["alice"].Encrypt([]byte("to both"), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range []*Group{bob, twin} {
				p, err := g.Process(ct)
				if err != nil || !bytes.Equal(p.ApplicationData, []byte("to both")) {
					t.Fatalf("decrypt: %v", err)
				}
			}
			pc, err := w.members["carol"].Commit(CommitOptions{IncludePending: true})
			if err != nil {
				t.Fatal(err)
			}
			p, err := twin.Process(pc.Message)
			if err != nil {
				t.Fatal(err)
			}
			if err := twin.MergeStagedCommit(p.Commit); err != nil {
				t.Fatal(err)
			}
			w.deliver("carol", pc.Message)
			if err := w.members["carol"].MergePendingCommit(pc); err != nil {
				t.Fatal(err)
			}
			w.check()
			if !bytes.Equal(mustMarshal(t, bob), mustMarshal(t, twin)) {
				t.Fatal("original and loaded twin diverge after the same commit")
			}
			// The loaded twin replaces bob and keeps going: messages and a
			// commit of its own.
			w.members["bob"] = twin
			w.message("bob")
			w.message("alice")
			w.commit("bob", CommitOptions{ForcePath: true})
			w.message("carol")
		})
	}
}

func TestStateConsumedKeysStayConsumed(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w, signers := stateWorld(t, cs)
	alice, bob := w.members["alice"], w.members["bob"]
	m1, _ := alice.Encrypt([]byte("m1"), nil)
	m2, _ := alice.Encrypt([]byte("m2"), nil)
	m3, _ := alice.Encrypt([]byte("m3"), nil)
	for _, m := range [][]byte{m1, m3} {
		if _, err := bob.Process(m); err != nil {
			t.Fatal(err)
		}
	}
	l, err := LoadGroup(w.cfg, mustMarshal(t, bob), signers["bob"])
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range [][]byte{m1, m3} {
		if _, err := l.Process(m); !errors.Is(err, ErrReplay) {
			t.Fatalf("consumed message %d after load: err = %v, want ErrReplay", i, err)
		}
	}
	// The kept out-of-order key survives, once.
	if p, err := l.Process(m2); err != nil || string(p.ApplicationData) != "m2" {
		t.Fatalf("kept key after load: %v", err)
	}
	if _, err := l.Process(m2); !errors.Is(err, ErrReplay) {
		t.Fatalf("m2 twice: %v", err)
	}

	// A late message of the previous epoch, after a load: past keys kept.
	late, _ := alice.Encrypt([]byte("late"), nil)
	w.commit("alice", CommitOptions{ForcePath: true})
	l, err = LoadGroup(w.cfg, mustMarshal(t, w.members["carol"]), signers["carol"])
	if err != nil {
		t.Fatal(err)
	}
	if p, err := l.Process(late); err != nil || string(p.ApplicationData) != "late" {
		t.Fatalf("late message after load: %v", err)
	}
}

func TestRatchetStatePreventsKeyReuse(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w, signers := stateWorld(t, cs)
	alice, bob := w.members["alice"], w.members["bob"]
	full := mustMarshal(t, bob) // as after the last merge
	rs0, err := bob.RatchetState()
	if err != nil {
		t.Fatal(err)
	}
	m1, err := bob.Encrypt([]byte("m1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rs1, err := bob.RatchetState()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs1) >= len(full) {
		t.Errorf("ratchet state %d bytes, full state %d", len(rs1), len(full))
	}
	t.Logf("full state %d bytes, ratchet state %d bytes", len(full), len(rs1))

	// Crash; restart from the full state and the last ratchet state.
	l, err := LoadGroup(w.cfg, full, signers["bob"])
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ApplyRatchetState(rs1); err != nil {
		t.Fatal(err)
	}
	if rs, _ := l.RatchetState(); !bytes.Equal(rs, rs1) {
		t.Fatal("ratchet state not restored exactly")
	}
	// An older ratchet state is refused now.
	if err := l.ApplyRatchetState(rs0); !errors.Is(err, ErrStale) {
		t.Fatalf("older ratchet state: err = %v, want ErrStale", err)
	}
	m2, err := l.Encrypt([]byte("m2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range [][]byte{m1, m2} {
		if _, err := alice.Process(m); err != nil {
			t.Fatalf("message %d: %v (generation reused?)", i+1, err)
		}
	}

	// Without the ratchet state the restarted member reuses m1's
	// generation, which the receiver refuses: the hazard the rule avoids.
	bad, err := LoadGroup(w.cfg, full, signers["bob"])
	if err != nil {
		t.Fatal(err)
	}
	reuse, _ := bad.Encrypt([]byte("reuse"), nil)
	if _, err := w.members["carol"].Process(m1); err != nil {
		t.Fatal(err)
	}
	if _, err := w.members["carol"].Process(reuse); !errors.Is(err, ErrReplay) {
		t.Fatalf("reused generation: err = %v, want ErrReplay", err)
	}

	// A ratchet state of another epoch is stale.
	w.members["bob"] = l
	w.commit("alice", CommitOptions{ForcePath: true})
	if err := l.ApplyRatchetState(rs1); !errors.Is(err, ErrStale) {
		t.Fatalf("ratchet state of the previous epoch: err = %v, want ErrStale", err)
	}
	rs2, _ := l.RatchetState()
	if err := alice.ApplyRatchetState(rs2); err == nil {
		t.Fatal("another member's ratchet state accepted")
	}
}

func TestLoadGroupRejects(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w, signers := stateWorld(t, cs)
	b := mustMarshal(t, w.members["bob"])
	bad := func(name string, data []byte, s *Signer) {
		t.Helper()
		if _, err := LoadGroup(w.cfg, data, s); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v does not wrap ErrMalformed", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	bad("trailing byte", append(bytes.Clone(b), 0), signers["bob"])
	v2 := bytes.Clone(b)
	v2[0] = 2
	bad("version 2", v2, signers["bob"])
	bad("truncated", b[:len(b)/2], signers["bob"])
	bad("empty", nil, signers["bob"])
	bad("wrong signer", b, signers["alice"])
	bad("no signer", b, nil)
	pb, _ := w.pg.MarshalBinary()
	bad("public state as group state", pb, signers["bob"])
	if _, err := LoadPublicGroup(w.cfg, b); err == nil {
		t.Error("group state loaded as public state")
	}
}
