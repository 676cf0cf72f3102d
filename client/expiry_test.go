package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/store"
)

// testClock is a device's injected clock: the real time moved by an
// offset the test sets.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time      { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) add(d time.Duration) { c.offset.Add(int64(d)) }

// registerClock is register with the device's clock.
func registerClock(t *testing.T, s *server, name string, clk *testClock) *device {
	t.Helper()
	d := openDeviceConfig(t, s.url, s.fingerprint, t.TempDir(), name, func(c *client.Config) { c.Now = clk.Now })
	if _, err := d.c.Register(context.Background(), s.url, "", name); err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return d
}

// clockGroup starts alice, bob, carol and dave, each with a clock, in a
// group alice created, and waits until all have alice's "hello".
func clockGroup(t *testing.T, s *server) (devs [4]*device, clocks [4]*testClock, conv protocol.ConversationID) {
	t.Helper()
	ctx := context.Background()
	for i, name := range []string{"alice", "bob", "carol", "dave"} {
		clocks[i] = &testClock{}
		devs[i] = registerClock(t, s, name, clocks[i])
		devs[i].start()
	}
	conv, err := devs[0].c.NewGroup(ctx, "team", "bob", "carol", "dave")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devs[0].c.Send(ctx, conv, "hello", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs[1:] {
		d.waitTexts(conv, "hello")
	}
	return devs, clocks, conv
}

// waitMessage waits for d's EventMessage of id.
func waitMessage(d *device, id content.MessageID) {
	d.waitEvent("message", func(ev client.Event) bool {
		return ev.Kind == client.EventMessage && ev.Message != nil && ev.Message.ID == id
	})
}

// wantErased fails unless d's store holds m as an expired tombstone:
// no text, content (with the attachment's key), reactions or receipts.
func wantErased(t *testing.T, d *device, conv protocol.ConversationID, id content.MessageID) {
	t.Helper()
	sm, err := client.StoredMessageForTest(context.Background(), d.c, conv, id)
	if err != nil {
		t.Fatalf("%s: stored message: %v", d.name, err)
	}
	if !sm.Expired || sm.Text != "" || len(sm.Content) != 0 || len(sm.Reactions) != 0 || len(sm.ReadBy) != 0 {
		t.Fatalf("%s: stored message after expiry: expired %v text %q content %d bytes reactions %v read by %v; want an empty tombstone",
			d.name, sm.Expired, sm.Text, len(sm.Content), sm.Reactions, sm.ReadBy)
	}
}

// TestTimerExpiry: bob, a member, sets a 5-minute timer. alice's text
// and file, with bob's reaction, expire on every device: alice expires
// hers when her clock passes the expiry, bob's Run expires his on time,
// and carol, offline until after the expiry, stores them expired on
// arrival and never reports them. What stays are tombstones without
// text, attachment key or reactions; messages from before the timer stay.
// dave is offline from before the timer on: once the timer passed, parleyd's Prune empties the
// ciphertext of the application entries sent under the timer that he has
// not read, keeping the log and its handshakes, and dave, back, skips
// them quietly.
func TestTimerExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	devs, clocks, conv := clockGroup(t, s)
	alice, bob, carol, dave := devs[0], devs[1], devs[2], devs[3]
	const timer = 5 * time.Minute
	// Every member acknowledged what came before (acknowledgements are
	// batched): the server may delete it; dave, stopped, acknowledges
	// nothing more, so what comes next stays in the log.
	for _, d := range devs {
		waitAcked(t, s, d, conv, lastSeq(t, s, conv))
	}
	dave.stop()
	if _, err := alice.c.Send(ctx, conv, "before", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, "hello", "before")
	carol.waitTexts(conv, "hello", "before")

	if err := bob.c.SetTimer(ctx, conv, timer); err != nil {
		t.Fatalf("bob, a member, sets the timer: %v", err)
	}
	for _, d := range devs[:3] {
		if d != bob {
			waitLine(d, conv, client.SystemTimerChanged, "")
		}
		waitFor(t, d.name+" sees the timer", func() bool {
			got, err := d.c.Timer(ctx, conv)
			return err == nil && got == timer
		})
	}

	carol.stop()
	secret, err := alice.c.Send(ctx, conv, "secret", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plan.txt")
	if err := os.WriteFile(path, []byte("the plan"), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := alice.c.SendFile(ctx, conv, path, client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if secret.Expires.IsZero() || file.Expires.IsZero() {
		t.Fatalf("sent messages expire at %v and %v, want an expiry", secret.Expires, file.Expires)
	}
	waitMessage(bob, secret.ID)
	waitMessage(bob, file.ID)
	if err := bob.c.React(ctx, conv, secret.ID, "👍", false); err != nil {
		t.Fatal(err)
	}
	alice.waitEvent("reaction", func(ev client.Event) bool { return ev.Kind == client.EventReaction && ev.Message.ID == secret.ID })
	if n, err := alice.c.ExpireMessages(ctx); err != nil || n != 0 {
		t.Fatalf("alice expires before the time: %d, %v; want none", n, err)
	}

	// The timer passes for everyone.
	for _, c := range clocks {
		c.add(timer + time.Second)
	}
	if n, err := alice.c.ExpireMessages(ctx); err != nil || n != 2 {
		t.Fatalf("alice expires: %d, %v; want her 2 messages", n, err)
	}
	// The list's preview skips the tombstones: the timer's system line.
	if cv, err := alice.c.Conversation(ctx, conv); err != nil || cv.Last == nil || cv.Last.Expired || cv.Last.System == nil || cv.Timer != timer {
		t.Fatalf("alice's conversation after the expiry: %+v, %v; want the system line last and the timer", cv, err)
	}
	// bob's Run, woken by a new message, finds the two due by his clock.
	if _, err := alice.c.Send(ctx, conv, "after", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []content.MessageID{secret.ID, file.ID} {
		bob.waitEvent("expired", func(ev client.Event) bool {
			return ev.Kind == client.EventExpired && ev.Message.ID == id && ev.Message.Expired
		})
	}
	carol.start()
	for _, d := range devs[:3] {
		d.waitTexts(conv, "hello", "before", "after")
		for _, id := range []content.MessageID{secret.ID, file.ID} {
			wantErased(t, d, conv, id)
		}
	}
	carol.mu.Lock()
	for _, ev := range carol.events {
		if ev.Message != nil && (ev.Message.ID == secret.ID || ev.Message.ID == file.ID) {
			t.Fatalf("carol, offline until after the expiry, reported %v of an expired message", ev.Kind)
		}
	}
	carol.mu.Unlock()
	wantServerExpiry(t, s, conv, timer)
	if _, err := alice.c.Send(ctx, conv, "final", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	dave.start()
	dave.waitTexts(conv, "hello", "before", "final")
	dave.mu.Lock()
	for _, ev := range dave.events {
		if ev.Kind == client.EventError {
			t.Errorf("dave: %v", ev.Err)
		}
	}
	dave.mu.Unlock()
}

// wantServerExpiry checks parleyd's Prune: before the timer passes it
// empties nothing; after, the ciphertext of every application entry sent
// under the timer, and of none from before it.
func wantServerExpiry(t *testing.T, s *server, conv protocol.ConversationID, timer time.Duration) {
	t.Helper()
	ctx := context.Background()
	if r, err := s.st.Prune(ctx, store.PruneOptions{Now: time.Now()}); err != nil || r.Expired != 0 {
		t.Fatalf("prune before the timer passed: %+v, %v; want nothing emptied", r, err)
	}
	r, err := s.st.Prune(ctx, store.PruneOptions{Now: time.Now().Add(timer + time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	// The service's prune (by the real clock: nothing more to prune)
	// drops its cache of recent entries, as after every prune.
	if _, err := s.svc.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	es, err := s.st.Entries(ctx, store.ConversationID(conv), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var kept, emptied int
	for _, e := range es {
		switch {
		case e.Kind == store.KindHandshake && len(e.Data) == 0:
			t.Fatalf("handshake entry %d emptied", e.Seq)
		case e.Kind == store.KindApplication && len(e.Data) == 0:
			emptied++
		case e.Kind == store.KindApplication:
			kept++
		}
	}
	// before, from before the timer, stays; secret, the file, bob's
	// reaction and after are emptied.
	if emptied != 4 || kept != 1 || r.Expired != 4 {
		t.Fatalf("after the timer: %d application entries emptied (prune says %d), %d kept; want 4 and 1", emptied, r.Expired, kept)
	}
}

// TestTimerPolicy: with timer=admins, bob's timer change is refused by
// the server (policy_violation) and, with the server's check off, by
// every member, who stay with the timer off; alice, admin, may change
// it. A timer out of range is refused before anything is sent.
func TestTimerPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("server", func(t *testing.T) {
		s := newServer(t)
		alice, bob, _, conv := policyGroup(t, s)
		if err := alice.c.SetPolicy(ctx, conv, map[protocol.Action]protocol.Who{protocol.ActionTimer: protocol.WhoAdmins}); err != nil {
			t.Fatal(err)
		}
		waitLine(bob, conv, client.SystemPolicyChanged, "")
		wantCode(t, "bob sets the timer", bob.c.SetTimer(ctx, conv, time.Hour), protocol.CodePolicyViolation)
		if err := bob.c.SetTimer(ctx, conv, time.Minute); err == nil {
			t.Fatal("a timer of one minute was accepted")
		}
		if err := alice.c.SetTimer(ctx, conv, time.Hour); err != nil {
			t.Fatalf("alice, admin, sets the timer: %v", err)
		}
		waitFor(t, "bob sees the timer", func() bool {
			d, err := bob.c.Timer(ctx, conv)
			return err == nil && d == time.Hour
		})
	})
	t.Run("members", func(t *testing.T) {
		s := newServerWith(t, func(c *delivery.Config) { c.UnsafeSkipPolicyChecks = true })
		alice, bob, carol, conv := policyGroup(t, s)
		if err := alice.c.SetPolicy(ctx, conv, map[protocol.Action]protocol.Who{protocol.ActionTimer: protocol.WhoAdmins}); err != nil {
			t.Fatal(err)
		}
		waitLine(bob, conv, client.SystemPolicyChanged, "")
		bob.stop()
		if err := bob.c.SetTimer(ctx, conv, time.Hour); err != nil {
			t.Fatalf("bob's timer change (the server should let it through): %v", err)
		}
		for _, d := range []*device{alice, carol} {
			ev := d.waitEvent("conversation_unsafe", func(ev client.Event) bool {
				return ev.Kind == client.EventConversationUnsafe && ev.Conversation == conv
			})
			if ev.User != "bob" {
				t.Errorf("%s: alarm names %q, want bob", d.name, ev.User)
			}
			if got, err := d.c.Timer(ctx, conv); err != nil || got != 0 {
				t.Errorf("%s: timer %v, %v after the refused change; want off", d.name, got, err)
			}
		}
	})
}

// TestTimerDirect: a 1:1 conversation gets a policy with its first
// timer, both users admins, and either may change it.
func TestTimerDirect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	alice.start()
	bob.start()
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Send(ctx, conv, "hi", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, "hi")
	if err := alice.c.SetTimer(ctx, conv, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob sees the timer", func() bool {
		d, err := bob.c.Timer(ctx, conv)
		return err == nil && d == 24*time.Hour
	})
	p, err := bob.c.Policy(ctx, conv)
	if err != nil || !slices.Equal(p.Admins, []string{"alice", "bob"}) {
		t.Fatalf("policy of the 1:1 conversation: %v, %v; want alice and bob admins", p, err)
	}
	if err := bob.c.SetTimer(ctx, conv, 0); err != nil {
		t.Fatalf("bob turns the timer off: %v", err)
	}
	waitFor(t, "alice sees the timer off", func() bool {
		d, err := alice.c.Timer(ctx, conv)
		return err == nil && d == 0
	})
}

// TestTimerRunSchedule: Client.Run erases a message when it is due by the
// device's clock, with nothing else happening: bob's clock runs ahead so
// that alice's message is due half a second after it arrives.
func TestTimerRunSchedule(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	const timer = 5 * time.Minute
	aliceClock, bobClock := &testClock{}, &testClock{}
	bobClock.add(timer - 500*time.Millisecond)
	alice, bob := registerClock(t, s, "alice", aliceClock), registerClock(t, s, "bob", bobClock)
	alice.start()
	bob.start()
	conv, err := alice.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.c.SetTimer(ctx, conv, timer); err != nil {
		t.Fatal(err)
	}
	m, err := alice.c.Send(ctx, conv, "brief", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitMessage(bob, m.ID)
	ev := bob.waitEvent("expired", func(ev client.Event) bool { return ev.Kind == client.EventExpired && ev.Message.ID == m.ID })
	if now := bobClock.Now(); now.Before(ev.Message.Expires) {
		t.Errorf("expired at %v by bob's clock, before its expiry %v", now, ev.Message.Expires)
	}
	wantErased(t, bob, conv, m.ID)
}

// TestTimerAttachment: a file sent in a conversation with a timer is
// uploaded with the timer as its lifetime on the server, capped by the
// server's retention; without a timer, with none. Once the lifetime has
// passed and parleyd pruned, bob, who still holds the message, can no
// longer fetch the attachment.
func TestTimerAttachment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServerWith(t, func(c *delivery.Config) { c.Retention = 2 * time.Hour })
	alice, bob, conv := directPair(t, s)
	sendFile := func(name string) (*client.Message, store.Blob) {
		t.Helper()
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte("the contents of "+name), 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := alice.c.SendFile(ctx, conv, path, client.SendOptions{})
		if err != nil {
			t.Fatalf("send %s: %v", name, err)
		}
		b, err := s.st.Blob(ctx, m.Attachment.ID)
		if err != nil {
			t.Fatalf("server's record of %s: %v", name, err)
		}
		return m, b
	}
	setTimer := func(d time.Duration) {
		t.Helper()
		if err := alice.c.SetTimer(ctx, conv, d); err != nil {
			t.Fatalf("set the timer to %v: %v", d, err)
		}
	}
	if _, b := sendFile("plain.txt"); !b.Expires.IsZero() {
		t.Errorf("file sent without a timer: the server deletes it at %v, want only with the retention", b.Expires)
	}
	setTimer(5 * time.Minute)
	secret, b := sendFile("secret.txt")
	if !b.Expires.Equal(b.Created.Add(5 * time.Minute)) {
		t.Errorf("file sent under a 5-minute timer: stored at %v, deleted at %v", b.Created, b.Expires)
	}
	setTimer(24 * time.Hour)
	if _, b := sendFile("long.txt"); !b.Expires.Equal(b.Created.Add(2 * time.Hour)) {
		t.Errorf("file sent under a day's timer with a retention of 2 hours: stored at %v, deleted at %v", b.Created, b.Expires)
	}

	waitMessage(bob, secret.ID)
	if _, err := bob.c.Download(ctx, secret.Attachment.ID, filepath.Join(t.TempDir(), "before")); err != nil {
		t.Fatalf("bob downloads before the lifetime ended: %v", err)
	}
	r, err := s.st.Prune(ctx, store.PruneOptions{Now: b.Expires})
	if err != nil || len(r.Blobs) != 1 || r.Blobs[0] != b.ID {
		t.Fatalf("prune at the end of the lifetime deleted %v (%v), want %s", r.Blobs, err, b.ID)
	}
	_, err = bob.c.Download(ctx, secret.Attachment.ID, filepath.Join(t.TempDir(), "after"))
	var se *client.ServerError
	if !errors.As(err, &se) || se.Err.Code != protocol.CodeNotFound {
		t.Fatalf("bob downloads after the lifetime ended and the server pruned: %v, want not_found", err)
	}
}
