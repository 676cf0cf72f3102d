package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/parley-chat/parley/mls/internal/wire"
)

// threeMembers is a world of alice, bob and carol with a follower.
func threeMembers(t *testing.T) (*world, *Group, *Group, *Group) {
	t.Helper()
	w, alice, bob := twoMembers(t)
	carolKP := w.kp("carol")
	pc := w.commit("alice", CommitOptions{Add: [][]byte{carolKP.KeyPackage}, InlineRatchetTree: true})
	carol, err := JoinFromWelcome(w.cfg, pc.Welcome, carolKP, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.members["carol"] = carol
	w.check()
	return w, alice, bob, carol
}

// mustState returns g's encoded state, to check that a refusal left it
// unchanged.
func mustState(t *testing.T, g *Group) []byte {
	t.Helper()
	st, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// customPSKs is a PSKStore of another type than *PSKs: it knows the
// resumption PSKs of its groups but offers them to the library only
// through the PSKStore methods.
type customPSKs struct{ groups []*Group }

func (c customPSKs) ExternalPSK([]byte) ([]byte, bool) { return nil, false }
func (c customPSKs) ResumptionPSK(groupID []byte, epoch uint64) ([]byte, bool) {
	for _, g := range c.groups {
		if s, ok := g.ResumptionPSK(groupID, epoch); ok {
			return s, ok
		}
	}
	return nil, false
}

// reinitWorld commits a ReInit to newID in a group of alice, bob and
// carol, on the same suite.
func reinitWorld(t *testing.T, newID string) (*world, *Group, *Group, *Group) {
	t.Helper()
	w, alice, bob, carol := threeMembers(t)
	w.commit("alice", CommitOptions{ReInit: &ReInitParams{GroupID: []byte(newID), CipherSuite: w.cs}})
	if bob.ReInit() == nil || carol.ReInit() == nil {
		t.Fatal("no ReInit committed")
	}
	return w, alice, bob, carol
}

// TestReInitJoinRequiresAllMembers checks RFC 9420 §12.4.3.1 (and §11.2):
// a group re-initialized without one of the old members is refused by
// the joiner, whose old group stays as it was; with every member it is
// accepted.
func TestReInitJoinRequiresAllMembers(t *testing.T) {
	w, alice, bob, _ := reinitWorld(t, "reinit-new")
	aliceSigner, _ := GenerateSigner(w.cs)
	bobKP := w.kp("bob")
	// carol is left out.
	ng, pc, err := alice.ReInitGroup(w.cfg, aliceSigner, BasicCredential([]byte("alice")), [][]byte{bobKP.KeyPackage}, CommitOptions{InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ng.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	before := mustState(t, bob)
	_, err = JoinFromWelcome(w.cfg, pc.Welcome, bobKP, JoinOptions{PSKs: &PSKs{Groups: []*Group{bob}}})
	if !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("join of a ReInit without carol: err = %v, want ErrInvalidWelcome", err)
	}
	t.Log(err)
	if !bytes.Equal(before, mustState(t, bob)) {
		t.Fatal("the refused join changed the old group")
	}

	// With carol, bob joins.
	bobKP, carolKP := w.kp("bob"), w.kp("carol")
	ng, pc, err = alice.ReInitGroup(w.cfg, aliceSigner, BasicCredential([]byte("alice")), [][]byte{bobKP.KeyPackage, carolKP.KeyPackage}, CommitOptions{InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ng.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	var seen *ResumptionJoin
	g, err := JoinFromWelcome(w.cfg, pc.Welcome, bobKP, JoinOptions{PSKs: &PSKs{Groups: []*Group{bob}}, CheckResumption: func(rj *ResumptionJoin) error { seen = rj; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), ng.EpochAuthenticator()) {
		t.Fatal("re-initialized group disagrees")
	}
	if seen == nil || seen.Branch || seen.OldGroup != bob || len(seen.OldMembers) != 3 || len(seen.NewMembers) != 3 || seen.OldEpoch != bob.Epoch() {
		t.Fatalf("CheckResumption saw %+v", seen)
	}
}

// TestReInitJoinCustomStore checks that the ReInit rules hold whatever
// PSK store resolves the resumption PSK: with a store of the
// application's own type, a Welcome for a group whose id is not the
// ReInit's is refused, as is one whose old group the joiner does not
// name; the legitimate Welcome is accepted once the old group is named.
func TestReInitJoinCustomStore(t *testing.T) {
	w, alice, bob, _ := reinitWorld(t, "reinit-agreed")
	aliceSigner, _ := GenerateSigner(w.cs)
	ri := alice.ReInit()
	bobKP, carolKP := w.kp("bob"), w.kp("carol")
	// alice builds the new group under an id of her choosing, with the
	// right resumption PSK.
	evil, err := CreateGroup(w.cfg, ri.CipherSuite, []byte("attacker-chosen"), aliceSigner, BasicCredential([]byte("alice")), CreateOptions{Extensions: ri.Extensions})
	if err != nil {
		t.Fatal(err)
	}
	_, pc, err := evil.resumeCommit(alice, wire.ResumptionPSKUsageReInit, ri.OldEpoch, [][]byte{bobKP.KeyPackage, carolKP.KeyPackage}, CommitOptions{InlineRatchetTree: true}, "test")
	if err != nil {
		t.Fatal(err)
	}
	store := customPSKs{groups: []*Group{bob}}
	before := mustState(t, bob)
	for name, opts := range map[string]JoinOptions{
		"store only":          {PSKs: store},
		"store and old group": {PSKs: store, OldGroup: bob},
	} {
		if _, err := JoinFromWelcome(w.cfg, pc.Welcome, bobKP, opts); !errors.Is(err, ErrInvalidWelcome) {
			t.Fatalf("%s: join of a ReInit under another group id: err = %v, want ErrInvalidWelcome", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if !bytes.Equal(before, mustState(t, bob)) {
		t.Fatal("the refused join changed the old group")
	}

	// The agreed group: refused without the old group, accepted with it.
	ng, pc, err := alice.ReInitGroup(w.cfg, aliceSigner, BasicCredential([]byte("alice")), [][]byte{bobKP.KeyPackage, carolKP.KeyPackage}, CommitOptions{InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ng.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	if _, err := JoinFromWelcome(w.cfg, pc.Welcome, bobKP, JoinOptions{PSKs: store}); !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("join without the old group: err = %v, want ErrInvalidWelcome", err)
	}
	g, err := JoinFromWelcome(w.cfg, pc.Welcome, bobKP, JoinOptions{PSKs: store, OldGroup: bob})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), ng.EpochAuthenticator()) {
		t.Fatal("re-initialized group disagrees")
	}
}

// TestBranchJoinRefusesOutsiders checks RFC 9420 §11.3: a branch Welcome
// whose new group holds a client that was never a member of the old group
// is refused, the old group unchanged; a proper subgroup is accepted, and
// JoinOptions.CheckResumption can refuse it still.
func TestBranchJoinRefusesOutsiders(t *testing.T) {
	w, alice, bob, carol := threeMembers(t)
	bobKP, malloryKP := w.kp("bob"), w.kp("mallory")
	sub, pc, err := alice.Branch(w.cfg, []byte("sub-with-mallory"), [][]byte{bobKP.KeyPackage, malloryKP.KeyPackage}, BranchOptions{Commit: CommitOptions{InlineRatchetTree: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	before := mustState(t, bob)
	_, err = JoinFromWelcome(w.cfg, pc.Welcome, bobKP, JoinOptions{PSKs: &PSKs{Groups: []*Group{bob}}})
	if !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("branch with an outsider: err = %v, want ErrInvalidWelcome", err)
	}
	t.Log(err)
	if !bytes.Equal(before, mustState(t, bob)) {
		t.Fatal("the refused join changed the old group")
	}

	// bob and carol only: accepted, and the hook sees both groups.
	bobKP, carolKP := w.kp("bob"), w.kp("carol")
	sub, pc, err = alice.Branch(w.cfg, []byte("sub"), [][]byte{bobKP.KeyPackage, carolKP.KeyPackage}, BranchOptions{Commit: CommitOptions{InlineRatchetTree: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	errNotWanted := fmt.Errorf("not this subgroup")
	refuse := func(rj *ResumptionJoin) error {
		if !rj.Branch || rj.OldGroup != carol || len(rj.OldMembers) != 3 || len(rj.NewMembers) != 3 || !bytes.Equal(rj.GroupID, []byte("sub")) {
			return fmt.Errorf("unexpected %+v", rj)
		}
		return errNotWanted
	}
	if _, err := JoinFromWelcome(w.cfg, pc.Welcome, carolKP, JoinOptions{PSKs: &PSKs{Groups: []*Group{carol}}, CheckResumption: refuse}); !errors.Is(err, ErrInvalidWelcome) || !errors.Is(err, errNotWanted) {
		t.Fatalf("branch refused by the hook: err = %v", err)
	}
	g, err := JoinFromWelcome(w.cfg, pc.Welcome, bobKP, JoinOptions{PSKs: &PSKs{Groups: []*Group{bob}}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.EpochAuthenticator(), sub.EpochAuthenticator()) {
		t.Fatal("branch disagrees")
	}
	// An application's own matching rule: here, none matches.
	carolKP2 := w.kp("carol")
	_, pc, err = alice.Branch(w.cfg, []byte("sub-2"), [][]byte{carolKP2.KeyPackage}, BranchOptions{Commit: CommitOptions{InlineRatchetTree: true}})
	if err != nil {
		t.Fatal(err)
	}
	never := func(old, new Member) bool { return false }
	if _, err := JoinFromWelcome(w.cfg, pc.Welcome, carolKP2, JoinOptions{PSKs: &PSKs{Groups: []*Group{carol}}, SameMember: never}); !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("branch with SameMember refusing all: err = %v", err)
	}
}
