package mls

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// longLifetime is a KeyPackage lifetime far beyond DefaultMaxLeafLifetime
// (the "valid until 2226").
const longLifetime = 200 * 365 * 24 * time.Hour

// unbounded is a Config without a maximum leaf lifetime, to create what a
// peer without the bound would send.
var unbounded = &Config{MaxLeafLifetime: -1}

func longKeyPackage(t *testing.T, cs CipherSuite, name string) *KeyPackageBundle {
	t.Helper()
	s, err := GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKeyPackage(unbounded, cs, s, BasicCredential([]byte(name)), KeyPackageOptions{Lifetime: longLifetime})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMaxLeafLifetimeKeyPackage checks RFC 9420 §7.2 and §10.1 for
// KeyPackages: ValidateKeyPackage refuses one valid for longer than
// Config.MaxLeafLifetime, NewKeyPackage refuses to create one, and by
// default creates KeyPackages within the bound.
func TestMaxLeafLifetimeKeyPackage(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	long := longKeyPackage(t, cs, "long")
	if _, err := ValidateKeyPackage(&Config{}, cs, long.KeyPackage); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("KeyPackage valid for %v: err = %v, want ErrInvalidKeyPackage", longLifetime, err)
	} else {
		t.Log(err)
	}
	if _, err := ValidateKeyPackage(unbounded, cs, long.KeyPackage); err != nil {
		t.Fatalf("without a bound: %v", err)
	}

	s, _ := GenerateSigner(cs)
	if _, err := NewKeyPackage(&Config{}, cs, s, BasicCredential([]byte("x")), KeyPackageOptions{Lifetime: longLifetime}); err == nil {
		t.Fatal("NewKeyPackage created a KeyPackage beyond MaxLeafLifetime")
	}
	for _, max := range []time.Duration{0, DefaultMaxLeafLifetime, 24 * time.Hour, 2 * time.Hour} {
		cfg := &Config{MaxLeafLifetime: max}
		b, err := NewKeyPackage(cfg, cs, s, BasicCredential([]byte("x")), KeyPackageOptions{})
		if err != nil {
			t.Fatalf("max %v: %v", max, err)
		}
		info, err := ValidateKeyPackage(cfg, cs, b.KeyPackage)
		if err != nil {
			t.Fatalf("max %v: own KeyPackage refused: %v", max, err)
		}
		want := min(DefaultKeyPackageLifetime+KeyPackageClockSkew, max)
		if max == 0 {
			want = DefaultMaxLeafLifetime
		}
		if got := info.NotAfter.Sub(info.NotBefore); got != want {
			t.Fatalf("max %v: lifetime %v, want %v", max, got, want)
		}
	}
	if _, err := NewKeyPackage(&Config{MaxLeafLifetime: time.Minute}, cs, s, BasicCredential([]byte("x")), KeyPackageOptions{}); err == nil {
		t.Fatal("NewKeyPackage with a bound below the clock skew succeeded")
	}
}

// TestMaxLeafLifetimeGroup checks the bound where a group meets a
// KeyPackage or a tree: an Add by value is not committed, an Add
// proposal is refused by members and the Delivery Service's PublicGroup
// (nothing cached, nothing changed), and a Welcome or GroupInfo whose
// tree holds such a leaf is refused by a joiner and by NewPublicGroup.
func TestMaxLeafLifetimeGroup(t *testing.T) {
	w, alice, bob := twoMembers(t)
	long := longKeyPackage(t, w.cs, "long")

	aliceState := mustState(t, alice)
	if _, err := alice.Commit(CommitOptions{Add: [][]byte{long.KeyPackage}}); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("commit adding a long-lived KeyPackage: err = %v, want ErrInvalidKeyPackage", err)
	}
	if _, err := alice.ProposeAdd(long.KeyPackage); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("proposing a long-lived KeyPackage: err = %v, want ErrInvalidKeyPackage", err)
	}
	if !bytes.Equal(aliceState, mustState(t, alice)) {
		t.Fatal("a refused Add changed alice's group")
	}

	// bob's client has no bound; alice and the follower refuse his Add.
	laxBob, err := withConfig(bob, unbounded)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := laxBob.ProposeAdd(long.KeyPackage)
	if err != nil {
		t.Fatal(err)
	}
	pgState, err := w.pg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.pg.Process(msg); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("follower: Add of a long-lived KeyPackage: err = %v, want ErrInvalidKeyPackage", err)
	}
	if _, err := alice.Process(msg); !errors.Is(err, ErrInvalidKeyPackage) {
		t.Fatalf("alice: Add of a long-lived KeyPackage: err = %v, want ErrInvalidKeyPackage", err)
	}
	if st, _ := w.pg.MarshalBinary(); !bytes.Equal(st, pgState) {
		t.Fatal("a refused Add changed the follower")
	}
	if !bytes.Equal(aliceState, mustState(t, alice)) {
		t.Fatal("a refused Add changed alice's group")
	}

	// A group of clients without the bound holds a long-lived leaf; a
	// joiner and a follower with the default refuse its tree.
	s, _ := GenerateSigner(w.cs)
	lax, err := CreateGroup(unbounded, w.cs, []byte("lax"), s, BasicCredential([]byte("carol")), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dave := w.kp("dave")
	pc, err := lax.Commit(CommitOptions{Add: [][]byte{long.KeyPackage, dave.KeyPackage}, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := lax.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	if _, err := JoinFromWelcome(&Config{}, pc.Welcome, dave, JoinOptions{}); !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("join of a tree with a long-lived leaf: err = %v, want ErrInvalidWelcome", err)
	} else {
		t.Log(err)
	}
	gi, err := lax.GroupInfo(GroupInfoOptions{InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPublicGroup(&Config{}, gi, nil); !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("follower of a tree with a long-lived leaf: err = %v, want ErrInvalidWelcome", err)
	}
	if _, err := NewPublicGroup(unbounded, gi, nil); err != nil {
		t.Fatalf("follower without a bound: %v", err)
	}
	if _, err := JoinFromWelcome(unbounded, pc.Welcome, dave, JoinOptions{}); err != nil {
		t.Fatalf("join without a bound: %v", err)
	}
}
