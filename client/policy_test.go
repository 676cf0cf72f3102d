package client_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/store"
)

// policyGroup starts alice, bob and carol in a group alice created.
func policyGroup(t *testing.T, s *server) (alice, bob, carol *device, conv protocol.ConversationID) {
	t.Helper()
	ctx := context.Background()
	alice, bob, carol = register(t, s, "alice"), register(t, s, "bob"), register(t, s, "carol")
	for _, d := range []*device{alice, bob, carol} {
		d.start()
	}
	conv, err := alice.c.NewGroup(ctx, "team", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Send(ctx, conv, "hello", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, "hello")
	carol.waitTexts(conv, "hello")
	return alice, bob, carol, conv
}

// wantCode fails unless err is the server's refusal with code.
func wantCode(t *testing.T, what string, err error, code protocol.ErrorCode) {
	t.Helper()
	var se *client.ServerError
	if !errors.As(err, &se) || se.Err.Code != code || se.Status != 403 {
		t.Fatalf("%s: %v, want the server's %s", what, err, code)
	}
}

// serverEpoch returns the conversation's epoch in the server's store.
func serverEpoch(t *testing.T, s *server, conv protocol.ConversationID) uint64 {
	t.Helper()
	c, err := s.st.Conversation(context.Background(), store.ConversationID(conv))
	if err != nil {
		t.Fatal(err)
	}
	return c.Epoch
}

// waitLine waits until d's history of conv has a system line of kind
// about user (any user when "").
func waitLine(d *device, conv protocol.ConversationID, kind client.SystemKind, user string) {
	d.waitEvent(string(kind), func(ev client.Event) bool {
		m := ev.Message
		return ev.Kind == client.EventSystem && ev.Conversation == conv && m != nil && m.System != nil &&
			m.System.Kind == kind && (user == "" || slices.Contains(m.System.Users, user))
	})
}

// TestPolicyCreatorAdmin: a new group's policy names its creator as the
// only admin, with the default rules; a 1:1 conversation has none. bob,
// not an admin, cannot remove alice, by commit or by proposal: the server
// refuses with policy_violation and stores nothing.
func TestPolicyCreatorAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, carol, conv := policyGroup(t, s)
	p, err := bob.c.Policy(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if p == nil || !slices.Equal(p.Admins, []string{"alice"}) || p.Rule(protocol.ActionRemove) != protocol.WhoAdmins || p.Rule(protocol.ActionAdd) != protocol.WhoMembers {
		t.Fatalf("bob sees policy %v, want alice admin with the defaults", p)
	}
	direct, err := alice.c.NewDirect(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := alice.c.Policy(ctx, direct); err != nil || p != nil {
		t.Fatalf("policy of a 1:1 conversation: %v, %v; want none", p, err)
	}

	epoch := serverEpoch(t, s, conv)
	wantCode(t, "bob removes alice", bob.c.Remove(ctx, conv, "alice"), protocol.CodePolicyViolation)
	wantCode(t, "bob removes carol", bob.c.Remove(ctx, conv, "carol"), protocol.CodePolicyViolation)
	wantCode(t, "bob proposes to remove alice", client.ProposeRemoveForTest(ctx, bob.c, conv, "alice"), protocol.CodePolicyViolation)
	if got := serverEpoch(t, s, conv); got != epoch {
		t.Fatalf("server epoch %d after refused commits, want %d", got, epoch)
	}
	// The conversation goes on, with everyone in it.
	if _, err := bob.c.Send(ctx, conv, "still here", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	alice.waitTexts(conv, "hello", "still here")
	carol.waitTexts(conv, "hello", "still here")
	cv, err := alice.c.Conversation(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cv.Members, "alice") || !slices.Contains(cv.Members, "carol") || cv.Unsafe != nil {
		t.Fatalf("alice's conversation: members %v unsafe %+v", cv.Members, cv.Unsafe)
	}
}

// TestPolicyMaliciousServer: with the server's policy check switched
// off, bob's removal of alice (committed, or only proposed), or his
// promotion of himself, is stored;
// alice and carol reject the commit before merging it and raise the
// alarm, naming bob, and stay in the epoch before it.
func TestPolicyMaliciousServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		do   func(ctx context.Context, bob *client.Client, conv protocol.ConversationID) error
	}{
		{"remove", func(ctx context.Context, bob *client.Client, conv protocol.ConversationID) error {
			return bob.Remove(ctx, conv, "alice")
		}},
		{"promote", func(ctx context.Context, bob *client.Client, conv protocol.ConversationID) error {
			return bob.SetRole(ctx, conv, "bob", true)
		}},
		{"proposal", func(ctx context.Context, bob *client.Client, conv protocol.ConversationID) error {
			// bob, the member who would commit it, does not: the members
			// reject the proposal itself.
			return client.ProposeRemoveForTest(ctx, bob, conv, "alice")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newServerWith(t, func(c *delivery.Config) { c.UnsafeSkipPolicyChecks = true })
			alice, bob, carol, conv := policyGroup(t, s)
			epoch := alice.epoch(conv)
			bob.stop() // bob follows nothing after his change
			if err := tc.do(ctx, bob.c, conv); err != nil {
				t.Fatalf("bob's commit (the server should let it through): %v", err)
			}
			for _, d := range []*device{alice, carol} {
				ev := d.waitEvent("conversation_unsafe", func(ev client.Event) bool {
					return ev.Kind == client.EventConversationUnsafe && ev.Conversation == conv
				})
				if ev.User != "bob" || !errors.Is(ev.Err, client.ErrConversationUnsafe) {
					t.Errorf("%s: alarm user %q err %v; want bob and ErrConversationUnsafe", d.name, ev.User, ev.Err)
				}
				cv, err := d.c.Conversation(ctx, conv)
				if err != nil {
					t.Fatal(err)
				}
				if cv.Unsafe == nil || !cv.Unsafe.Policy || cv.Epoch != epoch || !slices.Contains(cv.Members, "alice") {
					t.Errorf("%s: after the alarm: unsafe %+v epoch %d members %v; want a policy alarm in epoch %d with alice", d.name, cv.Unsafe, cv.Epoch, cv.Members, epoch)
				}
				if p, err := d.c.Policy(ctx, conv); err != nil || !slices.Equal(p.Admins, []string{"alice"}) {
					t.Errorf("%s: policy after the alarm: %v, %v; want alice the only admin", d.name, p, err)
				}
			}
		})
	}
}

// TestPolicyRoles: alice promotes bob, who may then remove carol; the
// members see the role change as a system line. Demoted again, bob may
// not remove dave. The last admin cannot demote herself. bob, a plain
// member, may still leave.
func TestPolicyRoles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, carol, conv := policyGroup(t, s)
	dave := register(t, s, "dave")
	dave.start()

	wantCode(t, "bob promotes himself", bob.c.SetRole(ctx, conv, "bob", true), protocol.CodePolicyViolation)
	if err := alice.c.SetRole(ctx, conv, "bob", true); err != nil {
		t.Fatal(err)
	}
	waitLine(bob, conv, client.SystemRoleChanged, "bob")
	waitLine(carol, conv, client.SystemRoleChanged, "bob")
	if err := bob.c.Remove(ctx, conv, "carol"); err != nil {
		t.Fatalf("bob, admin, removes carol: %v", err)
	}
	alice.waitEvent("carol removed", func(ev client.Event) bool {
		return ev.Kind == client.EventMemberLeft && ev.Conversation == conv && ev.User == "carol"
	})

	if err := alice.c.Add(ctx, conv, "dave"); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.SetRole(ctx, conv, "bob", false); err != nil {
		t.Fatal(err)
	}
	waitLine(bob, conv, client.SystemRoleChanged, "bob")
	waitFor(t, "bob sees he is no admin", func() bool {
		p, err := bob.c.Policy(ctx, conv)
		return err == nil && p != nil && !slices.Contains(p.Admins, "bob")
	})
	wantCode(t, "bob, demoted, removes dave", bob.c.Remove(ctx, conv, "dave"), protocol.CodePolicyViolation)
	if err := alice.c.SetRole(ctx, conv, "alice", false); !errors.Is(err, protocol.ErrPolicyViolation) {
		t.Fatalf("alice demotes herself, the last admin: %v, want a policy violation", err)
	}
	if p, err := alice.c.Policy(ctx, conv); err != nil || !slices.Equal(p.Admins, []string{"alice"}) {
		t.Fatalf("policy after alice's demotion was refused: %v, %v", p, err)
	}

	// Leaving needs no role.
	if err := bob.c.Leave(ctx, conv); err != nil {
		t.Fatal(err)
	}
	alice.waitEvent("bob left", func(ev client.Event) bool {
		return ev.Kind == client.EventMemberLeft && ev.Conversation == conv && ev.User == "bob"
	})
}

// TestPolicyRules: with rename=admins, bob's rename is refused by his
// client, and one sent anyway is ignored by the members with a system
// line; with add=admins, the server refuses bob's add.
func TestPolicyRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, carol, conv := policyGroup(t, s)
	register(t, s, "dave")
	rules := map[protocol.Action]protocol.Who{protocol.ActionRename: protocol.WhoAdmins, protocol.ActionAdd: protocol.WhoAdmins}
	wantCode(t, "bob changes the policy", bob.c.SetPolicy(ctx, conv, rules), protocol.CodePolicyViolation)
	if err := alice.c.SetPolicy(ctx, conv, rules); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{bob, carol} {
		waitLine(d, conv, client.SystemPolicyChanged, "")
	}

	if err := bob.c.SetName(ctx, conv, "bob's"); !errors.Is(err, protocol.ErrPolicyViolation) {
		t.Fatalf("bob renames: %v, want a policy violation", err)
	}
	if err := client.SendMetadataForTest(ctx, bob.c, conv, "bob's", false); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{alice, carol} {
		waitLine(d, conv, client.SystemChangeIgnored, "")
		cv, err := d.c.Conversation(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		if cv.Name != "team" {
			t.Errorf("%s: name %q after bob's rename, want team", d.name, cv.Name)
		}
	}

	wantCode(t, "bob adds dave", bob.c.Add(ctx, conv, "dave"), protocol.CodePolicyViolation)
	if err := alice.c.Add(ctx, conv, "dave"); err != nil {
		t.Fatalf("alice, admin, adds dave: %v", err)
	}
}

// TestPolicyAdminLeft: when the only admin leaves, the member at the
// leftmost leaf (bob, who joined first) is admin: he may remove carol,
// and carol may not remove him.
func TestPolicyAdminLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, carol, conv := policyGroup(t, s)
	if err := alice.c.Leave(ctx, conv); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{bob, carol} {
		d.waitEvent("alice left", func(ev client.Event) bool {
			return ev.Kind == client.EventMemberLeft && ev.Conversation == conv && ev.User == "alice"
		})
	}
	waitFor(t, "carol in bob's epoch", func() bool { return carol.epoch(conv) == bob.epoch(conv) })
	wantCode(t, "carol removes bob", carol.c.Remove(ctx, conv, "bob"), protocol.CodePolicyViolation)
	if err := bob.c.Remove(ctx, conv, "carol"); err != nil {
		t.Fatalf("bob, at the leftmost leaf with no admin left, removes carol: %v", err)
	}
}

// TestPolicyLegacyGroup: a group created before policies lets every
// member do everything; the first role change adds the policy with its
// author as admin, and from then on the policy holds.
func TestPolicyLegacyGroup(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	client.CreateWithoutPolicyForTest(true)
	t.Cleanup(func() { client.CreateWithoutPolicyForTest(false) })
	alice, bob, carol, conv := policyGroup(t, s)
	client.CreateWithoutPolicyForTest(false)
	dave := register(t, s, "dave")
	dave.start()
	if p, err := bob.c.Policy(ctx, conv); err != nil || p != nil {
		t.Fatalf("policy of a group without one: %v, %v", p, err)
	}
	if err := bob.c.Add(ctx, conv, "dave"); err != nil {
		t.Fatal(err)
	}
	if err := bob.c.Remove(ctx, conv, "dave"); err != nil {
		t.Fatalf("bob removes dave where there is no policy: %v", err)
	}
	if err := bob.c.SetRole(ctx, conv, "carol", true); err != nil {
		t.Fatalf("bob sets the first policy: %v", err)
	}
	waitLine(alice, conv, client.SystemPolicyChanged, "")
	p, err := alice.c.Policy(ctx, conv)
	if err != nil || p == nil || !slices.Equal(p.Admins, []string{"bob", "carol"}) {
		t.Fatalf("alice sees policy %v, %v; want bob and carol admins", p, err)
	}
	wantCode(t, "alice removes carol", alice.c.Remove(ctx, conv, "carol"), protocol.CodePolicyViolation)
	if err := carol.c.Remove(ctx, conv, "alice"); err != nil {
		t.Fatalf("carol, admin, removes alice: %v", err)
	}
}
