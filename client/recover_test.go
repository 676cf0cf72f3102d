package client_test

import (
	"context"
	"errors"
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

// recoverWait bounds the waits of the recovery tests: rejoins run one
// after another through the server, which is slow on a loaded machine.
const recoverWait = 2 * time.Minute

// waitEventLong is waitEvent with recoverWait as its bound.
func (d *device) waitEventLong(what string, f func(client.Event) bool) client.Event {
	d.t.Helper()
	var found client.Event
	d.waitEvents(what, func(events []client.Event) bool {
		for _, ev := range events {
			if f(ev) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// waitEvents waits, at most recoverWait, until f holds for the events
// seen so far.
func (d *device) waitEvents(what string, f func([]client.Event) bool) {
	d.t.Helper()
	deadline := time.Now().Add(recoverWait)
	timer := time.AfterFunc(recoverWait, func() {
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	defer timer.Stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for !f(d.events) {
		if time.Now().After(deadline) {
			var kinds []string
			for _, ev := range d.events {
				kinds = append(kinds, fmt.Sprintf("%s(%d %s %s)", ev.Kind, ev.Conversation, ev.User, ev.Error))
			}
			d.t.Fatalf("%s: no event %s; events: %s", d.name, what, strings.Join(kinds, ", "))
		}
		d.cond.Wait()
	}
}

// badCommitsIn returns the bad commits reported in events for conv, with
// outcome r.
func badCommitsIn(events []client.Event, conv protocol.ConversationID, r client.Recovery) []*client.BadCommitError {
	var out []*client.BadCommitError
	for _, ev := range events {
		var bc *client.BadCommitError
		if ev.Kind == client.EventBadCommit && ev.Conversation == conv && errors.As(ev.Err, &bc) && bc.Recovery == r {
			out = append(out, bc)
		}
	}
	return out
}

// badCommits returns the bad commits d reported in conv, with outcome r.
func (d *device) badCommits(conv protocol.ConversationID, r client.Recovery) []*client.BadCommitError {
	d.mu.Lock()
	defer d.mu.Unlock()
	return badCommitsIn(d.events, conv, r)
}

// waitBadCommit waits until d reported n bad commits in conv with
// outcome r, and returns them.
func (d *device) waitBadCommit(conv protocol.ConversationID, r client.Recovery, n int) []*client.BadCommitError {
	d.t.Helper()
	d.waitEvents(fmt.Sprintf("%d bad_commit %s", n, r), func(events []client.Event) bool {
		return len(badCommitsIn(events, conv, r)) >= n
	})
	return d.badCommits(conv, r)
}

// waitSameEpoch waits until every device is in the same epoch of conv,
// at least min, and returns it.
func waitSameEpoch(t *testing.T, conv protocol.ConversationID, min uint64, ds ...*device) uint64 {
	t.Helper()
	deadline := time.Now().Add(recoverWait)
	for {
		var epochs []uint64
		for _, d := range ds {
			epochs = append(epochs, d.epoch(conv))
		}
		if epochs[0] >= min && slices.Max(epochs) == slices.Min(epochs) {
			return epochs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("devices never met in one epoch of conversation %d (at least %d): %v", conv, min, epochs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chatRound has every device send one message in turn, each read by all
// before the next is sent: every history ends with all of them, in order.
func chatRound(t *testing.T, conv protocol.ConversationID, round string, ds ...*device) {
	t.Helper()
	ctx := context.Background()
	var sent []string
	for _, from := range ds {
		text := fmt.Sprintf("%s: from %s", round, from.name)
		if _, err := from.c.Send(ctx, conv, text, client.SendOptions{}); err != nil {
			t.Fatalf("%s sends after the recovery: %v", from.name, err)
		}
		sent = append(sent, text)
		for _, d := range ds {
			d.waitTextsEnd(conv, sent)
		}
	}
}

// waitTextsEnd waits until the history of conv ends with want.
func (d *device) waitTextsEnd(conv protocol.ConversationID, want []string) {
	d.t.Helper()
	deadline := time.Now().Add(recoverWait)
	for {
		got := d.texts(conv)
		if len(got) >= len(want) && slices.Equal(got[len(got)-len(want):], want) {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: history of %d is %q, want it to end with %q", d.name, conv, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// trio registers alice, bob and carol, starts them and makes a group of
// the three from alice (leaf 0; bob and carol follow), with one message
// read by all.
func trio(t *testing.T, s *server) (alice, bob, carol *device, conv protocol.ConversationID) {
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
	for _, d := range []*device{bob, carol} {
		d.waitEventLong("joined", func(ev client.Event) bool {
			return ev.Kind == client.EventConversationJoined && ev.Conversation == conv
		})
	}
	chatRound(t, conv, "before", alice, bob, carol)
	return alice, bob, carol, conv
}

// corruptPath is a self-update whose encrypted path secrets no member
// can decrypt.
var corruptPath = mls.CommitOptions{ForcePath: true, IncludePending: true, ExternalPub: true, UnsafeCorruptPathForTesting: true}

// TestBadCommitRecovery: carol's commit carries path secrets that alice
// and bob cannot decrypt. Each of them rejoins by external commit and
// reports carol's device as the sender; afterwards the three chat again,
// both ways, with nothing lost.
func TestBadCommitRecovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, carol, conv := trio(t, s)
	start := alice.epoch(conv)
	if err := client.CommitForTest(ctx, carol.c, conv, corruptPath); err != nil {
		t.Fatalf("carol's corrupted commit (the server should accept it): %v", err)
	}
	carolDev := carol.deviceID()
	for _, d := range []*device{alice, bob} {
		bc := d.waitBadCommit(conv, client.RecoveryResynced, 1)[0]
		if bc.User != "carol" || bc.Device != carolDev || bc.Missed || bc.Seq == 0 || !errors.Is(bc, mls.ErrInvalidCommit) {
			t.Errorf("%s: bad commit reported as %+v; want carol's device %s, entry seq, mls.ErrInvalidCommit", d.name, bc, carolDev)
		}
		ev := d.waitEventLong("bad_commit event", func(ev client.Event) bool { return ev.Kind == client.EventBadCommit })
		if ev.User != "carol" || ev.Device != carolDev || ev.Seq != bc.Seq || !strings.Contains(ev.Error, "carol") {
			t.Errorf("%s: event %+v does not name carol's commit", d.name, ev)
		}
	}
	// carol's epoch, then alice's and bob's rejoins.
	waitSameEpoch(t, conv, start+3, alice, bob, carol)
	chatRound(t, conv, "after", alice, bob, carol)
	chatRound(t, conv, "again", carol, bob, alice)
	if n := len(carol.badCommits(conv, client.RecoveryResynced)); n != 0 {
		t.Errorf("carol rejoined %d times; she processes the others' rejoins", n)
	}
}

// TestBadCommitPoisonedExternalPub: a GroupInfo whose external_pub is not
// its epoch's makes every external commit made from it unprocessable for
// the members who have that epoch. Whoever rejoins from it is then
// rejoined past by the others, in turn, from sound GroupInfos: everyone
// converges and chats again. A member that merged such a commit and
// checks its GroupInfo names the committer and replaces the GroupInfo,
// so a later rejoin costs no one anything.
func TestBadCommitPoisonedExternalPub(t *testing.T) {
	t.Parallel()
	poison := mls.CommitOptions{ForcePath: true, IncludePending: true, ExternalPub: true, UnsafePoisonExternalPubForTesting: true}

	// carol's commit is both unprocessable and poisoned: the first of
	// alice and bob to rejoin does it from the poisoned GroupInfo, so
	// carol cannot process that rejoin and rejoins in turn.
	t.Run("corrupt path and poisoned external_pub", func(t *testing.T) {
		ctx := context.Background()
		s := newServer(t)
		alice, bob, carol, conv := trio(t, s)
		start := alice.epoch(conv)
		opts := poison
		opts.UnsafeCorruptPathForTesting = true
		if err := client.CommitForTest(ctx, carol.c, conv, opts); err != nil {
			t.Fatal(err)
		}
		for _, d := range []*device{alice, bob} {
			if bc := d.waitBadCommit(conv, client.RecoveryResynced, 1)[0]; bc.User != "carol" {
				t.Errorf("%s names %q, want carol", d.name, bc.User)
			}
		}
		if bc := carol.waitBadCommit(conv, client.RecoveryResynced, 1)[0]; bc.User != "alice" && bc.User != "bob" {
			t.Errorf("carol names %q, want the first to rejoin (alice or bob)", bc.User)
		}
		waitSameEpoch(t, conv, start+4, alice, bob, carol)
		chatRound(t, conv, "after", alice, bob, carol)
		for _, d := range []*device{alice, bob, carol} {
			if n := len(d.badCommits(conv, client.RecoveryResynced)); n != 1 {
				t.Errorf("%s rejoined %d times, want 1", d.name, n)
			}
		}
	})

	// carol's commit is sound but poisoned, and no member checks it
	// (alice and bob are offline); bob then rejoins from it, as a
	// device that lost its state would. alice and carol cannot process
	// his rejoin: they rejoin from his GroupInfo, one after the other,
	// and bob processes both.
	t.Run("poisoned external_pub then a rejoin", func(t *testing.T) {
		ctx := context.Background()
		s := newServer(t)
		alice, bob, carol, conv := trio(t, s)
		start := alice.epoch(conv)
		alice.stop()
		bob.stop()
		if err := client.CommitForTest(ctx, carol.c, conv, poison); err != nil {
			t.Fatal(err)
		}
		if err := client.ResyncForTest(ctx, bob.c, conv); err != nil {
			t.Fatalf("bob rejoins from the poisoned GroupInfo: %v", err)
		}
		alice.start()
		bob.start()
		for _, d := range []*device{alice, carol} {
			if bc := d.waitBadCommit(conv, client.RecoveryResynced, 1)[0]; bc.User != "bob" {
				t.Errorf("%s names %q, want bob", d.name, bc.User)
			}
		}
		waitSameEpoch(t, conv, start+4, alice, bob, carol)
		chatRound(t, conv, "after", alice, bob, carol)
		if n := len(bob.badCommits(conv, client.RecoveryResynced)); n != 0 {
			t.Errorf("bob rejoined %d times more; he processes the others' rejoins", n)
		}
	})

	// Everyone is online: alice, the member with the lowest leaf besides
	// carol, checks the GroupInfo of carol's commit, names carol and
	// replaces it. bob's rejoin afterwards is processed by everyone.
	t.Run("poisoned external_pub detected", func(t *testing.T) {
		ctx := context.Background()
		s := newServer(t)
		alice, bob, carol, conv := trio(t, s)
		start := alice.epoch(conv)
		if err := client.CommitForTest(ctx, carol.c, conv, poison); err != nil {
			t.Fatal(err)
		}
		bc := alice.waitBadCommit(conv, client.RecoveryReplacedGroupInfo, 1)[0]
		if bc.User != "carol" || bc.Device != carol.deviceID() || !strings.Contains(bc.Error(), "external_pub") {
			t.Errorf("alice reports %+v (%v); want carol's device and the external_pub", bc, bc)
		}
		waitSameEpoch(t, conv, start+2, alice, bob, carol)
		if err := client.ResyncForTest(ctx, bob.c, conv); err != nil {
			t.Fatal(err)
		}
		waitSameEpoch(t, conv, start+3, alice, bob, carol)
		chatRound(t, conv, "after", alice, bob, carol)
		for _, d := range []*device{alice, bob, carol} {
			if n := len(d.badCommits(conv, client.RecoveryResynced)); n != 0 {
				t.Errorf("%s rejoined %d times after the GroupInfo was replaced", d.name, n)
			}
		}
		if n := len(bob.badCommits(conv, client.RecoveryReplacedGroupInfo)) + len(carol.badCommits(conv, client.RecoveryReplacedGroupInfo)); n != 0 {
			t.Errorf("%d checks besides alice's", n)
		}
	})
}

// TestBadCommitResyncBound: carol keeps sending commits no one can
// process. alice and bob rejoin at most ResyncLimit times (2 here); at the
// next bad commit they mark the conversation unrecoverable, name carol,
// stop sending in it and stop following it, and Recreate gives them a
// working conversation.
func TestBadCommitResyncBound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, carol, conv := trio(t, s)
	const limit = 2
	for _, d := range []*device{alice, bob} {
		client.SetResyncLimitForTest(d.c, limit, time.Hour)
	}
	for round := 1; round <= limit; round++ {
		start := carol.epoch(conv)
		if err := client.CommitForTest(ctx, carol.c, conv, corruptPath); err != nil {
			t.Fatal(err)
		}
		for _, d := range []*device{alice, bob} {
			d.waitBadCommit(conv, client.RecoveryResynced, round)
		}
		waitSameEpoch(t, conv, start+3, alice, bob, carol)
	}
	if err := client.CommitForTest(ctx, carol.c, conv, corruptPath); err != nil {
		t.Fatal(err)
	}
	carolDev := carol.deviceID()
	for _, d := range []*device{alice, bob} {
		bc := d.waitBadCommit(conv, client.RecoveryGaveUp, 1)[0]
		if bc.User != "carol" || bc.Device != carolDev {
			t.Errorf("%s: gave up on %+v, want carol's commit", d.name, bc)
		}
		ev := d.waitEventLong("conversation_unsafe", func(ev client.Event) bool {
			return ev.Kind == client.EventConversationUnsafe && ev.Conversation == conv
		})
		var ue *client.UnsafeError
		if !errors.As(ev.Err, &ue) || !ue.Alarm.Unrecoverable || ue.Alarm.User != "carol" || !strings.Contains(ev.Error, "recreate") {
			t.Errorf("%s: alarm %+v (%v); want an unrecoverable one naming carol", d.name, ue, ev.Err)
		}
		cv, err := d.c.Conversation(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		if cv.Unsafe == nil || !cv.Unsafe.Unrecoverable {
			t.Errorf("%s: conversation alarm %+v", d.name, cv.Unsafe)
		}
		if _, err := d.c.Send(ctx, conv, "into the void", client.SendOptions{}); !errors.Is(err, client.ErrConversationUnsafe) {
			t.Errorf("%s: send in the unrecoverable conversation: %v, want ErrConversationUnsafe", d.name, err)
		}
		if n := len(d.badCommits(conv, client.RecoveryResynced)); n != limit {
			t.Errorf("%s rejoined %d times, want %d", d.name, n, limit)
		}
	}

	// More bad commits cost nothing: the conversation is not followed.
	if err := client.CommitForTest(ctx, carol.c, conv, corruptPath); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.c.Send(ctx, conv, "anyone?", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{alice, bob} {
		if err := d.c.Sync(ctx); err != nil {
			t.Fatalf("%s: sync: %v", d.name, err)
		}
		if n := len(d.badCommits(conv, client.RecoveryResynced)) + len(d.badCommits(conv, client.RecoveryGaveUp)); n != limit+1 {
			t.Errorf("%s: %d bad commits reported, want %d", d.name, n, limit+1)
		}
	}

	fresh, err := alice.c.Recreate(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{bob, carol} {
		d.waitEventLong("joined the recreated conversation", func(ev client.Event) bool {
			return ev.Kind == client.EventConversationJoined && ev.Conversation == fresh
		})
	}
	chatRound(t, fresh, "fresh", alice, bob, carol)
}

// TestBadCommitRejoinFails: when rejoining fails for a reason that does
// not pass (a failpoint here), every attempt counts: at the limit the
// conversation is marked unrecoverable, with the failure as its reason,
// instead of being retried forever.
func TestBadCommitRejoinFails(t *testing.T) {
	t.Cleanup(func() { client.SetFailpoint(nil) }) // after the devices close
	client.SetFailpoint(func(name string) bool { return name == "rejoin" })
	ctx := context.Background()
	s := newServer(t)
	alice, bob, conv := directPair(t, s)
	client.SetResyncLimitForTest(alice.c, 2, time.Hour)
	if err := client.CommitForTest(ctx, bob.c, conv, corruptPath); err != nil {
		t.Fatal(err)
	}
	bc := alice.waitBadCommit(conv, client.RecoveryGaveUp, 1)[0]
	if bc.User != "bob" {
		t.Errorf("alice gave up on %+v, want bob's commit", bc)
	}
	cv, err := alice.c.Conversation(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if cv.Unsafe == nil || !cv.Unsafe.Unrecoverable || !strings.Contains(cv.Unsafe.Reason, "rejoining failed") || cv.Unsafe.User != "bob" {
		t.Fatalf("alarm %+v; want an unrecoverable one naming bob and the failed rejoin", cv.Unsafe)
	}
	// Two failed attempts, each retried over a new connection.
	if n := strings.Count(alice.logs.String(), "commit not processable: rejoining"); n != 2 {
		t.Errorf("%d rejoin attempts, want 2", n)
	}
}

// TestMissedCommitRecovery: a device that finds an entry of a newer
// epoch than its own (it missed a commit), a handshake or a message,
// rejoins too, and reports it without naming anyone. The message of the
// missed epoch is lost to it; everything after the rejoin is read.
func TestMissedCommitRecovery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		message bool // the entry found is a message, not a commit
	}{{name: "handshake"}, {name: "message", message: true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newServer(t)
			alice, bob, conv := directPair(t, s)
			bob.stop()
			cur, err := client.CursorForTest(ctx, bob.c, conv)
			if err != nil {
				t.Fatal(err)
			}
			if err := alice.c.SelfUpdate(ctx, conv); err != nil {
				t.Fatal(err)
			}
			if tc.message {
				_, err = alice.c.Send(ctx, conv, "missed", client.SendOptions{})
			} else {
				err = alice.c.SelfUpdate(ctx, conv)
			}
			if err != nil {
				t.Fatal(err)
			}
			base := alice.epoch(conv)
			entries, err := client.EntriesForTest(ctx, bob.c, conv, cur)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) < 2 {
				t.Fatalf("%d entries after bob's cursor, want alice's two at least", len(entries))
			}
			// The first commit is lost on the way: bob gets the last entry.
			last := entries[len(entries)-1]
			if last.Kind == protocol.KindApplication != tc.message {
				t.Fatalf("last entry is %s", last.Kind)
			}
			if err := client.ApplyEntryForTest(ctx, bob.c, last); err != nil {
				t.Fatalf("apply an entry of a newer epoch: %v", err)
			}
			bc := bob.waitBadCommit(conv, client.RecoveryResynced, 1)[0]
			var ee *mls.EpochError
			if !bc.Missed || bc.User != "" || bc.Device != "" || bc.Seq != last.Seq || !errors.As(bc, &ee) {
				t.Errorf("bob reports %+v; want a missed commit at entry %d, naming no one", bc, last.Seq)
			}
			bob.start()
			waitSameEpoch(t, conv, base+1, alice, bob)
			chatRound(t, conv, "after", alice, bob)
			if slices.Contains(bob.texts(conv), "missed") {
				t.Error("bob read a message of an epoch he never had")
			}
		})
	}
}

// TestCredentialLookupFailsForAWhile makes the server answer alice's
// lookup of carol's identity key with "unavailable" while alice applies
// the commit that adds carol: the entry waits, nothing is rejoined or
// raised, and once the server answers again alice applies the commit as
// any other.
func TestCredentialLookupFailsForAWhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	p := newEvilProxy(t, s)
	alice := registerVia(t, p, "alice")
	bob, carol := register(t, s, "bob"), register(t, s, "carol")
	bob.start()
	carol.start()
	conv, err := bob.c.NewGroup(ctx, "team", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before := alice.epoch(conv)
	var refused atomic.Int32
	p.refuse(func(path string) bool {
		if strings.HasPrefix(path, "/v1/users/carol") {
			refused.Add(1)
			return true
		}
		return false
	})
	if err := bob.c.Add(ctx, conv, "carol"); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.Sync(ctx); err == nil {
		t.Fatal("alice's sync succeeded while carol's identity key could not be fetched")
	}
	if refused.Load() == 0 {
		t.Fatal("alice did not look carol up")
	}
	if got := alice.epoch(conv); got != before {
		t.Fatalf("alice moved from epoch %d to %d without checking carol's certificate", before, got)
	}
	p.refuse(func(string) bool { return false })
	if err := alice.c.Sync(ctx); err != nil {
		t.Fatalf("alice's sync once the server answers again: %v", err)
	}
	cv, err := alice.c.Conversation(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if cv.Epoch != before+1 || !slices.Contains(cv.Members, "carol") || cv.Unsafe != nil {
		t.Fatalf("alice after the outage: epoch %d (want %d), members %v, unsafe %+v", cv.Epoch, before+1, cv.Members, cv.Unsafe)
	}
	alice.mu.Lock()
	defer alice.mu.Unlock()
	for _, ev := range alice.events {
		if ev.Kind == client.EventBadCommit || ev.Kind == client.EventConversationUnsafe || ev.Kind == client.EventDeviceRejected {
			t.Errorf("alice: %s event for a lookup that failed for a while: %v", ev.Kind, ev.Err)
		}
	}
}
