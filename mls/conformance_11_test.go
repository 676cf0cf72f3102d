package mls

import (
	"bytes"
	"testing"

	"github.com/parley-chat/parley/mls/internal/wire"
)

// resumptionWelcome has alice create the group groupID in suite cs with
// extensions exts and send bob (a member of old) a Welcome whose
// GroupSecrets carry a resumption PSK of usage from old's current epoch,
// changed as f says (forgeWelcome). It returns the Welcome and bob's
// KeyPackage for it.
func resumptionWelcome(t *testing.T, w *world, old *Group, usage wire.ResumptionPSKUsage, groupID []byte, cs CipherSuite, exts []Extension, f welcomeForge) ([]byte, *KeyPackageBundle) {
	t.Helper()
	as, _ := GenerateSigner(cs)
	ng, err := CreateGroup(w.cfg, cs, groupID, as, BasicCredential([]byte("alice")), CreateOptions{Extensions: exts})
	if err != nil {
		t.Fatal(err)
	}
	bs, _ := GenerateSigner(cs)
	kp, err := NewKeyPackage(w.cfg, cs, bs, BasicCredential([]byte("bob")), KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.psks = []wire.PreSharedKeyID{{Type: wire.PSKTypeResumption, Usage: usage, GroupID: old.GroupID(), Epoch: old.Epoch(), Nonce: bytes.Repeat([]byte{3}, 32)}}
	f.pskStore = &PSKs{Groups: []*Group{old}}
	welcome, _ := forgeWelcome(t, ng, kp, CommitOptions{Add: [][]byte{kp.KeyPackage}}, f)
	return welcome, kp
}

// TestConformance_11 covers the receiver-side rules of RFC 9420 §11.2,
// "Reinitialization", and §11.3, "Subgroup Branching": bob, a member of
// the old group, refuses a Welcome into the new group that breaks one
// rule (the Welcome is otherwise consistent: forgeWelcome), and a
// PreSharedKey proposal of usage reinit or branch is refused on receipt.
// The member-set rules are TestReInitJoinRequiresAllMembers and
// TestBranchJoinRefusesOutsiders.
func TestConformance_11(t *testing.T) {
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	other := MLS128MLKEM768X25519AES128GCMSHA256Ed25519
	// reinitWorld2 has alice commit a ReInit to group "next" in suite cs.
	reinitWorld2 := func(t *testing.T) (*world, *Group) {
		w, _, bob := twoMembers(t)
		w.commit("alice", CommitOptions{ReInit: &ReInitParams{GroupID: []byte("next"), CipherSuite: cs}})
		return w, bob
	}
	join := func(t *testing.T, w *world, welcome []byte, kp *KeyPackageBundle, old *Group) (*Group, error) {
		before := memberState(old)
		g, err := JoinFromWelcome(w.cfg, welcome, kp, JoinOptions{OldGroup: old, PSKs: &PSKs{Groups: []*Group{old}}})
		if after := memberState(old); !before.equal(after) {
			t.Errorf("old group changed by a Welcome")
		}
		return g, err
	}

	t.Run("control: reinit Welcome accepted", func(t *testing.T) {
		w, bob := reinitWorld2(t)
		welcome, kp := resumptionWelcome(t, w, bob, wire.ResumptionPSKUsageReInit, []byte("next"), cs, nil, welcomeForge{})
		if _, err := join(t, w, welcome, kp, bob); err != nil {
			t.Fatal(err)
		}
	})
	// §11.2: "The version, cipher_suite, group_id, and extensions fields
	// of the GroupContext object in the Welcome message MUST be the same
	// as the corresponding fields in the ReInit proposal."
	for _, c := range []struct {
		name    string
		groupID string
		cs      CipherSuite
		exts    []Extension
	}{
		{"reinit Welcome for another group_id", "elsewhere", cs, nil},
		{"reinit Welcome for another cipher suite", "next", other, nil},
		{"reinit Welcome with other extensions", "next", cs, []Extension{{Type: ExtensionApplicationID, Data: []byte("x")}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, bob := reinitWorld2(t)
			welcome, kp := resumptionWelcome(t, w, bob, wire.ResumptionPSKUsageReInit, []byte(c.groupID), c.cs, c.exts, welcomeForge{})
			_, err := join(t, w, welcome, kp, bob)
			wantRefusal(t, "bob", err, ErrInvalidWelcome, "§11.2", "does not match the ReInit")
		})
	}
	// §11.2: "The epoch in the Welcome message MUST be 1."
	t.Run("reinit Welcome for epoch 2", func(t *testing.T) {
		w, bob := reinitWorld2(t)
		welcome, kp := resumptionWelcome(t, w, bob, wire.ResumptionPSKUsageReInit, []byte("next"), cs, nil, welcomeForge{gi: func(gi *wire.GroupInfo) { gi.GroupContext.Epoch = 2 }})
		_, err := join(t, w, welcome, kp, bob)
		wantRefusal(t, "bob", err, ErrInvalidWelcome, "§12.4.3.1", "for epoch 2, want 1")
	})

	t.Run("control: branch Welcome accepted", func(t *testing.T) {
		_, _, bob := twoMembers(t)
		w := newWorld(t, cs)
		welcome, kp := resumptionWelcome(t, w, bob, wire.ResumptionPSKUsageBranch, []byte("sub"), cs, nil, welcomeForge{})
		if _, err := join(t, w, welcome, kp, bob); err != nil {
			t.Fatal(err)
		}
	})
	// §11.3: "The version and cipher_suite values in the Welcome message
	// are the same as those used by the old group."
	t.Run("branch Welcome for another cipher suite", func(t *testing.T) {
		_, _, bob := twoMembers(t)
		w := newWorld(t, cs)
		welcome, kp := resumptionWelcome(t, w, bob, wire.ResumptionPSKUsageBranch, []byte("sub"), other, nil, welcomeForge{})
		_, err := join(t, w, welcome, kp, bob)
		wantRefusal(t, "bob", err, ErrInvalidWelcome, "§11.3", "branch changes the version or cipher suite")
	})
	// §11.3: "The epoch in the Welcome message MUST be 1."
	t.Run("branch Welcome for epoch 2", func(t *testing.T) {
		_, _, bob := twoMembers(t)
		w := newWorld(t, cs)
		welcome, kp := resumptionWelcome(t, w, bob, wire.ResumptionPSKUsageBranch, []byte("sub"), cs, nil, welcomeForge{gi: func(gi *wire.GroupInfo) { gi.GroupContext.Epoch = 2 }})
		_, err := join(t, w, welcome, kp, bob)
		wantRefusal(t, "bob", err, ErrInvalidWelcome, "§12.4.3.1", "for epoch 2, want 1")
	})

	// §11.2: "A PreSharedKey proposal with type resumption and usage
	// reinit MUST be considered invalid"; §11.3 likewise for branch.
	for _, usage := range []wire.ResumptionPSKUsage{wire.ResumptionPSKUsageReInit, wire.ResumptionPSKUsageBranch} {
		t.Run("PreSharedKey proposal of usage "+map[wire.ResumptionPSKUsage]string{2: "reinit", 3: "branch"}[usage], func(t *testing.T) {
			w, alice, _, _ := floodWorld(t)
			p := &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKTypeResumption, Usage: usage, GroupID: alice.GroupID(), Epoch: 1, Nonce: make([]byte, 32)}}}
			r := refusal{sentinel: ErrInvalidProposal, rule: "§12.1.4", detail: "resumption PSK with usage"}
			refuseProposal(t, w, "mallory", p, r)
			goesOn(t, w, "bob")
		})
	}
}
