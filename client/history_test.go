package client_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// line is the part of a history entry that a test compares: a message's
// text, or a system line's kind, actor, users and value.
func line(m *client.Message) string {
	if s := m.System; s != nil {
		return fmt.Sprintf("%s:%s:%s:%s", s.Kind, m.Sender, strings.Join(s.Users, ","), s.Value)
	}
	return m.Text
}

// lines returns the history of conv as line strings, and checks that it
// is in server log order.
func (d *device) lines(conv protocol.ConversationID) []string {
	d.t.Helper()
	h, err := d.c.History(context.Background(), conv, 0, 0)
	if err != nil {
		d.t.Fatal(err)
	}
	var out []string
	var last uint64
	for _, m := range h {
		if m.ServerSeq < last {
			d.t.Errorf("%s: %q at server seq %d after seq %d", d.name, line(m), m.ServerSeq, last)
		}
		last = m.ServerSeq
		out = append(out, line(m))
	}
	return out
}

// waitSystem waits (a minute at most) until d reported a system line of
// kind in conv.
func (d *device) waitSystem(conv protocol.ConversationID, kind client.SystemKind) client.Event {
	d.t.Helper()
	deadline := time.Now().Add(time.Minute)
	timer := time.AfterFunc(time.Minute, func() {
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	defer timer.Stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		for _, ev := range d.events {
			if ev.Kind == client.EventSystem && ev.Conversation == conv && ev.Message.System.Kind == kind {
				return ev
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: no system line %s in conversation %d within a minute", d.name, kind, conv)
		}
		d.cond.Wait()
	}
}

// TestHistorySystemLines: membership changes, the name and the topic are
// system lines of every member's history, with their actors, in the
// order of the server's log among the messages; they survive a restart,
// stay out of Messages, unread counts and receipts, and no message can
// edit one. A removed member sees the members at its removal, without
// itself, and who removed it; a member that left sees that it left.
func TestHistorySystemLines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, carol := register(t, s, "alice"), register(t, s, "bob"), register(t, s, "carol")
	register(t, s, "dave")
	sync := func(ds ...*device) {
		t.Helper()
		for _, d := range ds {
			if err := d.c.Sync(ctx); err != nil {
				t.Fatalf("%s: sync: %v", d.name, err)
			}
		}
	}
	conv, err := alice.c.NewGroup(ctx, "team", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.c.SetTopic(ctx, conv, "plans"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Send(ctx, conv, "hello", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.Add(ctx, conv, "dave"); err != nil {
		t.Fatal(err)
	}
	sync(bob, carol)
	if err := alice.c.Remove(ctx, conv, "carol"); err != nil {
		t.Fatal(err)
	}
	sync(bob, carol)

	// bob leaves: he proposes his removal, alice commits it.
	if err := bob.c.Leave(ctx, conv); err != nil {
		t.Fatal(err)
	}
	sync(alice)
	alice.waitSystem(conv, client.SystemLeft)
	sync(bob)

	shared := []string{
		"renamed:alice::team", "topic_changed:alice::plans", "hello",
		"added:alice:dave:", "removed:alice:carol:", "left:bob:bob:",
	}
	want := map[string][]string{
		"alice": append([]string{"added:alice:bob,carol:"}, shared...),
		"bob":   append([]string{"joined:bob:bob:"}, shared...),
		"carol": append([]string{"joined:carol:carol:"}, shared[:5]...),
	}
	for _, d := range []*device{alice, bob, carol} {
		if got := d.lines(conv); !slices.Equal(got, want[d.name]) {
			t.Errorf("%s's history:\n got %q\nwant %q", d.name, got, want[d.name])
		}
		if got := d.texts(conv); !slices.Equal(got, []string{"hello"}) {
			t.Errorf("%s: Messages holds %q, want the message only", d.name, got)
		}
		if ms, err := d.c.Messages(ctx, conv, 0, 1); err != nil || len(ms) != 1 || ms[0].Text != "hello" {
			t.Errorf("%s: the last message is %+v (%v), want hello", d.name, ms, err)
		}
	}
	// The lines of one change have the same log position everywhere.
	pos := map[string]uint64{}
	for _, d := range []*device{alice, bob, carol} {
		h, _ := d.c.History(ctx, conv, 0, 0)
		for _, m := range h[1:] {
			if p, ok := pos[line(m)]; ok && p != m.ServerSeq {
				t.Errorf("%s: %q at server seq %d, elsewhere %d", d.name, line(m), m.ServerSeq, p)
			}
			pos[line(m)] = m.ServerSeq
		}
	}

	// The removed member: the members at the removal, without herself,
	// and who removed her; the same after a restart.
	carol.close()
	carol = openDevice(t, s, carol.dir, "carol")
	cv, err := carol.c.Conversation(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if !cv.Left || cv.RemovedBy != "alice" || !slices.Equal(cv.Members, []string{"alice", "bob", "dave"}) {
		t.Errorf("carol after her removal: left %v, removed by %q, members %v; want removed by alice, members alice, bob, dave", cv.Left, cv.RemovedBy, cv.Members)
	}
	mb, err := carol.c.Members(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mb {
		if m.User == "carol" || m.Self {
			t.Errorf("carol's member list after her removal holds %+v", m)
		}
	}
	if len(mb) != 3 {
		t.Errorf("carol's member list after her removal: %+v, want the devices of alice, bob, dave", mb)
	}
	if got := carol.lines(conv); !slices.Equal(got, want["carol"]) {
		t.Errorf("carol's history after a restart: %q", got)
	}
	// The lines of others' changes were never shown: Unseen returns them.
	unseen, err := carol.c.Unseen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range unseen {
		if ev.Kind == client.EventSystem {
			kinds = append(kinds, string(ev.Message.System.Kind))
		}
	}
	if !slices.Equal(kinds, []string{"renamed", "topic_changed", "added", "removed"}) {
		t.Errorf("carol's unseen system lines: %q", kinds)
	}

	// The member who left: he left, nobody removed him.
	cv, err = bob.c.Conversation(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if !cv.Left || cv.RemovedBy != "" || !slices.Equal(cv.Members, []string{"alice", "dave"}) {
		t.Errorf("bob after leaving: left %v, removed by %q, members %v; want left by himself, members alice, dave", cv.Left, cv.RemovedBy, cv.Members)
	}
	if cv.Unread != 1 {
		t.Errorf("bob's unread count %d, want 1, for hello (system lines are no messages)", cv.Unread)
	}
}

// TestSystemLineNotATarget: a member cannot edit or delete the system
// line of its own rename (whose id is that of the metadata message it
// sent), and read receipts do not mark it.
func TestSystemLineNotATarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	conv, err := alice.c.NewGroup(ctx, "", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.c.SetName(ctx, conv, "team"); err != nil {
		t.Fatal(err)
	}
	h, err := alice.c.History(ctx, conv, 0, 1)
	if err != nil || len(h) != 1 || h[0].System == nil || h[0].System.Kind != client.SystemRenamed {
		t.Fatalf("alice's last history entry %+v (%v), want her rename", h, err)
	}
	rename := h[0].ID
	if h[0].State != client.Sent || h[0].ServerSeq == 0 {
		t.Errorf("alice's rename line: state %s, server seq %d; want sent, with the position of its entry", h[0].State, h[0].ServerSeq)
	}
	if err := alice.c.Edit(ctx, conv, rename, "forged"); err == nil {
		t.Errorf("alice edited her rename line through the SDK")
	}
	if err := client.SendEditForTest(ctx, alice.c, conv, rename, "alice renamed nothing"); err != nil {
		t.Fatal(err)
	}
	if err := client.SendEditForTest(ctx, alice.c, conv, rename, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Send(ctx, conv, "after", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bob.c.MarkRead(ctx, conv); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{alice, bob} {
		h, err := d.c.History(ctx, conv, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, m := range h {
			if m.ID != rename {
				continue
			}
			found = true
			if m.System == nil || m.System.Value != "team" || m.Deleted || !m.Edited.IsZero() || m.Text != "" || len(m.ReadBy) != 0 {
				t.Errorf("%s: the rename line became %+v", d.name, m)
			}
		}
		if !found {
			t.Errorf("%s: no rename line %s in %d entries", d.name, rename, len(h))
		}
		if last := h[len(h)-1]; last.Text != "after" || (d == alice && (last.State != client.Read || !slices.Equal(last.ReadBy, []string{"bob"}))) {
			t.Errorf("%s: last entry %+v, want after (read by bob for alice)", d.name, last)
		}
	}
}

// TestSystemLineDeviceAdded: a new device of a member that joins by
// itself (device linking) is a device_added line whose actor is its
// user; the history stays in log order.
func TestSystemLineDeviceAdded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	conv, err := alice.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	acct, err := alice.c.Whoami()
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.c.Sync(ctx); err != nil { // the cursor passes her own entries
		t.Fatal(err)
	}
	cv, err := alice.c.Conversation(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	gi, tree, err := client.GroupInfoForTest(alice.c, conv)
	if err != nil {
		t.Fatal(err)
	}
	const dev = protocol.DeviceID("bob-second-device")
	msg := craftedJoin(t, acct.ServerName, acct.ServerName, time.Now(), mls.CipherSuite(cv.CipherSuite), gi, tree, "bob", client.IdentityKeyForTest(bob.c), dev)
	cur, err := client.CursorForTest(ctx, alice.c, conv)
	if err != nil {
		t.Fatal(err)
	}
	entry := protocol.Entry{Conversation: conv, Seq: cur + 1, Kind: protocol.KindHandshake, Sender: dev, Data: msg, Time: time.Now()}
	if err := client.ApplyEntryForTest(ctx, alice.c, entry); err != nil {
		t.Fatal(err)
	}
	ev := alice.waitSystem(conv, client.SystemDeviceAdded)
	if m := ev.Message; m.Sender != "bob" || m.SenderDevice != dev || !slices.Equal(m.System.Users, []string{"bob"}) ||
		!slices.Equal(m.System.Devices, []protocol.DeviceID{dev}) || m.ServerSeq != cur+1 {
		t.Errorf("device_added line %+v (%+v)", m, m.System)
	}
	if got := alice.lines(conv); !slices.Equal(got, []string{"added:alice:bob:", "renamed:alice::team", "device_added:bob:bob:"}) {
		t.Errorf("alice's history %q", got)
	}
}

// TestSystemLineNotForResync: a device that rejoins by external commit
// to replace its own leaf (after losing its accepted commit) changes
// nobody's membership: the other member's history gets no line for it.
func TestSystemLineNotForResync(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	alice, bob, conv := directPair(t, s)
	before := bob.lines(conv)
	var fired atomic.Bool
	client.SetFailpoint(func(name string) bool { return name == "commit-accepted" && fired.CompareAndSwap(false, true) })
	defer client.SetFailpoint(nil)
	if err := alice.c.SelfUpdate(ctx, conv); err == nil {
		t.Fatal("failpoint did not fire")
	}
	client.SetFailpoint(nil)
	waitFor(t, "alice rejoined", func() bool { return alice.epoch(conv) >= 3 && alice.epoch(conv) == bob.epoch(conv) })
	if _, err := alice.c.Send(ctx, conv, "still here", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, "still here")
	if got, want := bob.lines(conv), append(before, "still here"); !slices.Equal(got, want) {
		t.Errorf("bob's history after alice's resync: %q, want %q", got, want)
	}
}
