package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// link opens a fresh profile and makes it a new device of primary's
// account.
func link(t *testing.T, s *server, primary *device, name string) *device {
	t.Helper()
	d := openDevice(t, s, t.TempDir(), name)
	if _, err := client.LinkDeviceForTest(context.Background(), primary.c, d.c); err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return d
}

// revocationSetup is alice on a laptop and a phone and bob, all running,
// in a 1:1 conversation (dm, made by the laptop) and a group (grp, made
// by bob); the phone has read a message in each.
type revocationSetup struct {
	s                  *server
	laptop, phone, bob *device
	phoneID            protocol.DeviceID
	dm, grp            protocol.ConversationID
	dmEpoch, grpEpoch  uint64 // the server's epochs before the revocation
}

func newRevocationSetup(t *testing.T) *revocationSetup {
	t.Helper()
	ctx := context.Background()
	r := &revocationSetup{s: newServer(t)}
	r.laptop = register(t, r.s, "alice")
	r.phone = link(t, r.s, r.laptop, "alice-phone")
	r.phoneID = r.phone.deviceID()
	r.bob = register(t, r.s, "bob")
	for _, d := range []*device{r.laptop, r.phone, r.bob} {
		d.start()
	}
	var err error
	if r.dm, err = r.laptop.c.NewDirect(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if r.grp, err = r.bob.c.NewGroup(ctx, "team", "alice"); err != nil {
		t.Fatal(err)
	}
	for _, j := range []struct {
		d    *device
		conv protocol.ConversationID
	}{{r.bob, r.dm}, {r.phone, r.dm}, {r.laptop, r.grp}, {r.phone, r.grp}} {
		j.d.waitEvent("joined", func(ev client.Event) bool {
			return ev.Kind == client.EventConversationJoined && ev.Conversation == j.conv
		})
	}
	if _, err := r.laptop.c.Send(ctx, r.dm, "before dm", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.bob.c.Send(ctx, r.grp, "before grp", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	r.phone.waitTexts(r.dm, "before dm")
	r.phone.waitTexts(r.grp, "before grp")
	r.bob.waitTexts(r.dm, "before dm")
	r.laptop.waitTexts(r.grp, "before grp")
	r.dmEpoch, r.grpEpoch = r.serverEpoch(r.dm), r.serverEpoch(r.grp)
	return r
}

// serverEpoch returns the server's epoch of a conversation.
func (r *revocationSetup) serverEpoch(conv protocol.ConversationID) uint64 {
	c, err := r.s.st.Conversation(context.Background(), store.ConversationID(conv))
	if err != nil {
		panic(err)
	}
	return c.Epoch
}

// convs returns the two conversations.
func (r *revocationSetup) convs() []protocol.ConversationID {
	return []protocol.ConversationID{r.dm, r.grp}
}

// waitRemoved waits until d saw the phone leave every conversation.
func (r *revocationSetup) waitRemoved(d *device) {
	for _, conv := range r.convs() {
		d.waitEvent("phone left", func(ev client.Event) bool {
			return ev.Kind == client.EventMemberLeft && ev.Conversation == conv && ev.Device == r.phoneID
		})
	}
}

// checkRemoved checks that the server and d no longer count the phone
// as a member, and that exactly one commit removed it from each
// conversation (members that raced with it, or came later, committed
// nothing).
func (r *revocationSetup) checkRemoved(t *testing.T, d *device) {
	t.Helper()
	ctx := context.Background()
	for _, conv := range r.convs() {
		if ok, err := r.s.st.IsMember(ctx, store.ConversationID(conv), store.DeviceID(r.phoneID)); ok || err != nil {
			t.Errorf("server: phone still a member of conversation %d (%v)", conv, err)
		}
		ms, err := d.c.Members(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(ms, func(m client.Member) bool { return m.Device == r.phoneID }) {
			t.Errorf("%s: phone still listed in conversation %d: %+v", d.name, conv, ms)
		}
	}
	if got := r.serverEpoch(r.dm); got != r.dmEpoch+1 {
		t.Errorf("1:1 epoch %d, want %d (one removal commit)", got, r.dmEpoch+1)
	}
	if got := r.serverEpoch(r.grp); got != r.grpEpoch+1 {
		t.Errorf("group epoch %d, want %d (one removal commit)", got, r.grpEpoch+1)
	}
}

// phoneCannotRead sends a message from d in every conversation, waits
// until reader has it, then checks at the MLS level that the phone's
// saved group state cannot process it: the message belongs to an epoch
// after the phone's.
func (r *revocationSetup) phoneCannotRead(t *testing.T, d, reader *device) {
	t.Helper()
	ctx := context.Background()
	r.phone.close()
	for _, conv := range r.convs() {
		text := "after revocation in " + string(rune('0'+int(conv)))
		if _, err := d.c.Send(ctx, conv, text, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the message to arrive", func() bool { return slices.Contains(reader.texts(conv), text) })
	}
	phone := openDevice(t, r.s, r.phone.dir, r.phone.name)
	defer phone.close()
	for _, conv := range r.convs() {
		es, err := r.s.st.Entries(ctx, store.ConversationID(conv), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var msg []byte
		for i := len(es) - 1; i >= 0; i-- {
			if es[i].Kind == store.KindApplication {
				msg = es[i].Data
				break
			}
		}
		err = client.ProcessForTest(phone.c, conv, msg)
		var ee *mls.EpochError
		if !errors.As(err, &ee) || ee.MessageEpoch <= ee.GroupEpoch {
			t.Errorf("conversation %d: the revoked phone processed a later message: %v", conv, err)
		}
	}
}

// noErrors fails if d reported an EventError.
func noErrors(t *testing.T, d *device) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ev := range d.events {
		if ev.Kind == client.EventError {
			t.Errorf("%s: error event in conversation %d: %s", d.name, ev.Conversation, ev.Error)
		}
	}
}

// TestRevokedDeviceRemoved: alice revokes her phone from her laptop; the
// laptop (at once) and bob (told by the server) race to remove it from
// the 1:1 and the group. One commit per conversation removes it, every
// member sees it leave, and a message sent afterwards is in an epoch the
// phone's saved state does not have.
func TestRevokedDeviceRemoved(t *testing.T) {
	t.Parallel()
	r := newRevocationSetup(t)
	if err := r.laptop.c.RevokeDevice(context.Background(), r.phoneID); err != nil {
		t.Fatal(err)
	}
	r.waitRemoved(r.bob)
	r.waitRemoved(r.laptop)
	r.phoneCannotRead(t, r.bob, r.laptop)
	r.checkRemoved(t, r.bob)
	r.checkRemoved(t, r.laptop)
	noErrors(t, r.bob)
	noErrors(t, r.laptop)
}

// TestDisabledDeviceRemoved: the administrator disables alice's phone
// (through the server, as POST /v1/admin/devices does) while alice's
// laptop is away; bob, connected, is told and removes it, on the
// server's word.
func TestDisabledDeviceRemoved(t *testing.T) {
	t.Parallel()
	r := newRevocationSetup(t)
	r.laptop.stop()
	yes := true
	if _, err := r.s.svc.UpdateDevice(context.Background(), r.phoneID, protocol.AdminDeviceUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	for _, conv := range r.convs() {
		ev := r.bob.waitEvent("phone removed", func(ev client.Event) bool {
			return ev.Kind == client.EventDeviceRevoked && ev.Conversation == conv && ev.Device == r.phoneID
		})
		if ev.User != "alice" || !strings.Contains(ev.Reason, "administrator") {
			t.Errorf("removal event %+v", ev)
		}
	}
	r.phoneCannotRead(t, r.bob, r.bob)
	r.checkRemoved(t, r.bob)
	noErrors(t, r.bob)
}

// TestOfflineMemberRemovesRevoked: the phone revokes itself while the
// laptop and bob are away, so no one removes it; bob comes back with Sync
// and removes it, after checking alice's signature; the laptop comes back
// and finds nothing left to do.
func TestOfflineMemberRemovesRevoked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRevocationSetup(t)
	r.laptop.stop()
	r.bob.stop()
	if err := r.phone.c.RevokeDevice(ctx, r.phoneID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := r.s.st.IsMember(ctx, store.ConversationID(r.dm), store.DeviceID(r.phoneID)); !ok {
		t.Fatal("the revoked phone left the 1:1 with no member online")
	}
	if err := r.bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, conv := range r.convs() {
		ev := r.bob.waitEvent("phone removed", func(ev client.Event) bool {
			return ev.Kind == client.EventDeviceRevoked && ev.Conversation == conv && ev.Device == r.phoneID
		})
		if ev.Reason != "revoked by alice" {
			t.Errorf("removal event %+v", ev)
		}
	}
	if err := r.laptop.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r.waitRemoved(r.laptop)
	r.laptop.mu.Lock()
	for _, ev := range r.laptop.events {
		if ev.Kind == client.EventDeviceRevoked {
			t.Errorf("the laptop removed the phone again: %+v", ev)
		}
	}
	r.laptop.mu.Unlock()
	r.phoneCannotRead(t, r.laptop, r.laptop)
	r.checkRemoved(t, r.bob)
	r.checkRemoved(t, r.laptop)
	noErrors(t, r.bob)
	noErrors(t, r.laptop)

	// A server that lets the phone back in by an external commit (as a
	// new device of a member user would join) is refused: bob keeps
	// alice's revocation.
	gi, tree, err := client.GroupInfoForTest(r.bob.c, r.grp)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := r.bob.c.Conversation(ctx, r.grp)
	if err != nil {
		t.Fatal(err)
	}
	join := craftedJoin(t, r.s.name, r.s.name, time.Now(), mls.CipherSuite(cv.CipherSuite), gi, tree, "alice", client.IdentityKeyForTest(r.laptop.c), r.phoneID)
	cur, err := client.CursorForTest(ctx, r.bob.c, r.grp)
	if err != nil {
		t.Fatal(err)
	}
	entry := protocol.Entry{Conversation: r.grp, Seq: cur + 1, Kind: protocol.KindHandshake, Sender: r.phoneID, Data: join, Time: time.Now()}
	if err := client.ApplyEntryForTest(ctx, r.bob.c, entry); err != nil {
		t.Fatal(err)
	}
	ev := r.bob.waitEvent("the phone's return refused", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationUnsafe && ev.Conversation == r.grp
	})
	if ev.Device != r.phoneID || !strings.Contains(ev.Error, "revoked") {
		t.Errorf("alarm %+v", ev)
	}
	if after, _ := r.bob.c.Conversation(ctx, r.grp); after.Epoch != cv.Epoch {
		t.Errorf("bob merged the phone's return: epoch %d -> %d", cv.Epoch, after.Epoch)
	}
}

// TestReconnectRemovesDisabled: an administrator disables the phone on
// the server's host (parleyd admin devices disable writes the database;
// the running server tells no one) while everyone is away; bob's client
// learns it when it connects again, from the server's notice after its
// subscription, and removes it.
func TestReconnectRemovesDisabled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRevocationSetup(t)
	r.laptop.stop()
	r.bob.stop()
	if err := r.s.st.SetDeviceDisabled(ctx, store.DeviceID(r.phoneID), true); err != nil {
		t.Fatal(err)
	}
	r.bob.start()
	for _, conv := range r.convs() {
		r.bob.waitEvent("phone removed", func(ev client.Event) bool {
			return ev.Kind == client.EventDeviceRevoked && ev.Conversation == conv && ev.Device == r.phoneID
		})
	}
	r.checkRemoved(t, r.bob)
	noErrors(t, r.bob)
}

// TestForgedRevocationIgnored: a revocation the server presents is
// believed only if alice's identity key signed it for her phone on this
// server; a forged one removes nothing and is reported.
func TestForgedRevocationIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRevocationSetup(t)
	now := time.Now()
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	aliceKey := client.IdentityKeyForTest(r.laptop.c)
	sign := func(key ed25519.PrivateKey, server, user string, dev protocol.DeviceID) []byte {
		st, err := protocol.NewDeviceRevocation(key, server, user, dev, now)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	listed := func(statement []byte) protocol.RevokedDevices {
		return protocol.RevokedDevices{Devices: []protocol.RevokedDevice{{User: "alice", Device: r.phoneID, Revoked: &now, Revocation: statement, Conversations: r.convs()}}}
	}
	for what, statement := range map[string][]byte{
		"another key":          sign(otherKey, r.s.name, "alice", r.phoneID),
		"another server":       sign(aliceKey, "other.example", "alice", r.phoneID),
		"another device":       sign(aliceKey, r.s.name, "alice", r.laptop.deviceID()),
		"garbage":              {1, 2, 3},
		"a flipped signature":  func() []byte { b := sign(aliceKey, r.s.name, "alice", r.phoneID); b[len(b)-1] ^= 1; return b }(),
		"alice's, but not her": sign(aliceKey, r.s.name, "bob", r.phoneID),
	} {
		if n := client.HandleRevokedForTest(ctx, r.bob.c, listed(statement)); n != 0 {
			t.Fatalf("%s: bob removed the phone %d times", what, n)
		}
	}
	waitFor(t, "six refusals reported", func() bool {
		r.bob.mu.Lock()
		defer r.bob.mu.Unlock()
		n := 0
		for _, ev := range r.bob.events {
			if ev.Kind == client.EventError && errors.Is(ev.Err, client.ErrBadRevocation) && ev.Device == r.phoneID {
				n++
			}
		}
		return n == 6
	})
	if got := r.serverEpoch(r.dm); got != r.dmEpoch {
		t.Fatalf("forged revocations changed the 1:1: epoch %d, want %d", got, r.dmEpoch)
	}
	// The genuine statement is believed.
	if n := client.HandleRevokedForTest(ctx, r.bob.c, listed(sign(aliceKey, r.s.name, "alice", r.phoneID))); n != 2 {
		t.Fatalf("genuine revocation: %d removals, want 2", n)
	}
	r.waitRemoved(r.laptop)
}
