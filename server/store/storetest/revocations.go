package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley/server/store"
)

// testRevocationStatement: RevokeDevice keeps the first statement, even
// when revoked again with another; a device revoked without one takes
// the first one given later; Revocations lists them by device.
func testRevocationStatement(t *testing.T, s store.Store) {
	u, _ := mkUser(t, s, "alice")
	d2 := mkDevice(t, s, u, "alice-2")
	d3 := mkDevice(t, s, u, "alice-3")
	v, _ := mkUser(t, s, "bob")
	mkDevice(t, s, v, "bob-2")
	if rs, err := s.Revocations(ctx, u.ID); err != nil || len(rs) != 0 {
		t.Fatalf("revocations before any: %v %v", rs, err)
	}
	must(t, "revoke", s.RevokeDevice(ctx, d2.ID, t0.Add(time.Minute), []byte("statement-1")))
	must(t, "revoke again", s.RevokeDevice(ctx, d2.ID, t0.Add(time.Hour), []byte("statement-2")))
	must(t, "revoke without a statement", s.RevokeDevice(ctx, d3.ID, t0, nil))
	must(t, "revoke with a statement later", s.RevokeDevice(ctx, d3.ID, t0.Add(time.Hour), []byte("statement-3")))
	must(t, "revoke bob's without a statement", s.RevokeDevice(ctx, "bob-2", t0, nil))
	wantErr(t, "revoke unknown", s.RevokeDevice(ctx, "nope", t0, []byte("x")), store.ErrNotFound)

	rs, err := s.Revocations(ctx, u.ID)
	must(t, "revocations", err)
	if got := fmt.Sprintf("%s", rs); got != "[{alice-2 statement-1} {alice-3 statement-3}]" {
		t.Errorf("alice's revocations %s", got)
	}
	if d, _ := s.Device(ctx, d2.ID); !d.Revoked.Equal(t0.Add(time.Minute)) {
		t.Errorf("revoked again: time %v, want the first", d.Revoked)
	}
	if rs, err := s.Revocations(ctx, v.ID); err != nil || len(rs) != 0 {
		t.Errorf("bob's revocations %v %v", rs, err)
	}
}

// testInactiveMembers: the revoked and disabled devices still members of
// a device's conversations, and only those: not departed ones, not those
// of conversations the device is not (or no longer) in, not the device
// itself; bounded by the limit.
func testInactiveMembers(t *testing.T, s store.Store) {
	ua, a := mkUser(t, s, "alice")
	a2 := mkDevice(t, s, ua, "alice-2")
	_, b := mkUser(t, s, "bob")
	_, c := mkUser(t, s, "carol")
	g1 := mkConv(t, s, a.ID, "g1")
	add(t, s, g1.ID, a.ID, a2.ID, b.ID, c.ID)
	g2 := mkConv(t, s, b.ID, "g2")
	add(t, s, g2.ID, b.ID, a2.ID, c.ID)
	g3 := mkConv(t, s, a.ID, "g3") // bob is not a member
	add(t, s, g3.ID, a.ID, a2.ID)

	if ims, err := s.InactiveMembers(ctx, b.ID, 100); err != nil || len(ims) != 0 {
		t.Fatalf("inactive members before any: %+v %v", ims, err)
	}
	must(t, "revoke", s.RevokeDevice(ctx, a2.ID, t0.Add(time.Minute), []byte("statement")))
	must(t, "disable", s.SetDeviceDisabled(ctx, c.ID, true))
	ims, err := s.InactiveMembers(ctx, b.ID, 100)
	must(t, "inactive members", err)
	want := []store.InactiveMember{
		{Conversation: g1.ID, Device: a2.ID, UserName: "alice", Revoked: t0.Add(time.Minute), Revocation: []byte("statement")},
		{Conversation: g2.ID, Device: a2.ID, UserName: "alice", Revoked: t0.Add(time.Minute), Revocation: []byte("statement")},
		{Conversation: g1.ID, Device: c.ID, UserName: "carol", Disabled: true},
		{Conversation: g2.ID, Device: c.ID, UserName: "carol", Disabled: true},
	}
	checkInactive(t, "bob's", ims, want)
	if ims, err := s.InactiveMembers(ctx, b.ID, 3); err != nil || len(ims) != 3 {
		t.Errorf("limit 3: %d rows, %v", len(ims), err)
	}
	_, err = s.InactiveMembers(ctx, b.ID, 0)
	wantErr(t, "limit 0", err, store.ErrInvalid)
	// The disabled device asks: it is not listed itself.
	ims, err = s.InactiveMembers(ctx, c.ID, 100)
	must(t, "carol's inactive members", err)
	checkInactive(t, "carol's", ims, want[:2])

	// Removing the revoked device from g1 leaves it departed there.
	conv, err := s.Conversation(ctx, g1.ID)
	must(t, "conversation", err)
	_, err = s.Commit(ctx, store.Commit{Conversation: g1.ID, Epoch: conv.Epoch, Sender: b.ID, Data: []byte("rm"), Remove: []store.DeviceID{a2.ID}, Created: t0})
	must(t, "remove", err)
	ims, err = s.InactiveMembers(ctx, b.ID, 100)
	must(t, "inactive members after the removal", err)
	checkInactive(t, "bob's after the removal", ims, []store.InactiveMember{want[1], want[2], want[3]})
	// Bob removed from g1 learns nothing more of it.
	conv, err = s.Conversation(ctx, g1.ID)
	must(t, "conversation", err)
	_, err = s.Commit(ctx, store.Commit{Conversation: g1.ID, Epoch: conv.Epoch, Sender: a.ID, Data: []byte("rm"), Remove: []store.DeviceID{b.ID}, Created: t0})
	must(t, "remove bob from g1", err)
	ims, err = s.InactiveMembers(ctx, b.ID, 100)
	must(t, "inactive members after leaving g1", err)
	checkInactive(t, "bob's after leaving g1", ims, []store.InactiveMember{want[1], want[3]})
	// Enabling the device again takes it off the list.
	must(t, "enable", s.SetDeviceDisabled(ctx, c.ID, false))
	ims, err = s.InactiveMembers(ctx, b.ID, 100)
	must(t, "inactive members after enabling carol", err)
	checkInactive(t, "bob's after enabling carol", ims, []store.InactiveMember{want[1]})
}

// checkInactive compares inactive member lists.
func checkInactive(t *testing.T, what string, got, want []store.InactiveMember) {
	t.Helper()
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		g, w := got[i], want[i]
		same = g.Conversation == w.Conversation && g.Device == w.Device && g.UserName == w.UserName &&
			g.Revoked.Equal(w.Revoked) && bytes.Equal(g.Revocation, w.Revocation) && g.Disabled == w.Disabled
	}
	if !same {
		t.Errorf("%s inactive members\n got %+v\nwant %+v", what, got, want)
	}
}
