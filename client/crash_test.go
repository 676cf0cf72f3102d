package client_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// TestLostOwnCommit: the server accepted a device's commit but the device
// stopped before merging it (simulated with a failpoint). When the commit
// comes back it rejoins by external commit, and the group works again.
func TestLostOwnCommit(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	alice, bob, conv := directPair(t, s)
	var fired atomic.Bool
	client.SetFailpoint(func(name string) bool { return name == "commit-accepted" && fired.CompareAndSwap(false, true) })
	defer client.SetFailpoint(nil)
	if err := alice.c.SelfUpdate(ctx, conv); err == nil {
		t.Fatal("failpoint did not fire")
	}
	client.SetFailpoint(nil)
	// The rejoin leaves alice in a later epoch; a failed one is an event.
	// (Waiting on events alone would miss a rejoin that ends after the
	// last event.)
	resyncFailed := func() string {
		alice.mu.Lock()
		defer alice.mu.Unlock()
		for _, ev := range alice.events {
			if ev.Kind == client.EventError && strings.Contains(ev.Error, "resynchronize") {
				return ev.Error
			}
		}
		return ""
	}
	waitFor(t, "alice rejoined", func() bool {
		if e := resyncFailed(); e != "" {
			t.Fatalf("resync failed: %v", e)
		}
		return alice.epoch(conv) >= 3 && alice.epoch(conv) == bob.epoch(conv)
	})
	if _, err := alice.c.Send(ctx, conv, "still here", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, "still here")
	if _, err := bob.c.Send(ctx, conv, "welcome back", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	alice.waitTexts(conv, "still here", "welcome back")
}

// crashChildEnv names the environment variable that makes the test binary
// a client process for TestKillDuringBurst: "dir url fingerprint".
const crashChildEnv = "PARLEY_CLIENT_CRASH_CHILD"

// TestCrashChild is the child process of TestKillDuringBurst: it runs the
// sync loop of a profile until it is killed.
func TestCrashChild(t *testing.T) {
	spec := os.Getenv(crashChildEnv)
	if spec == "" {
		t.Skip("child process of TestKillDuringBurst")
	}
	var dir, url, fp string
	fmt.Sscan(spec, &dir, &url, &fp)
	d := openDeviceURL(t, url, fp, dir, "bob")
	d.c.Run(context.Background())
}

// TestKillDuringBurst: a client process is killed (SIGKILL) while it
// receives a burst of messages, then restarted: every message is in the
// history exactly once, in order, and the conversation still works.
func TestKillDuringBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	ctx := context.Background()
	s := newServer(t)
	alice, bob, conv := directPair(t, s)
	bobDir := bob.dir
	bob.close()

	const n = 300
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("burst %d", i))
	}
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s", crashChildEnv, bobDir, s.url, s.fingerprint))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sent := make(chan error, 1)
		go func() {
			for i := round * n / 3; i < (round+1)*n/3; i++ {
				if _, err := alice.c.Send(ctx, conv, want[i], client.SendOptions{}); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		time.Sleep(time.Duration(100+50*round) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		// How far the killed process got (the burst went on after it).
		check := openDevice(t, s, bobDir, "bob")
		got := check.texts(conv)
		check.close()
		t.Logf("round %d: killed after receiving %d of %d messages", round, len(got), (round+1)*n/3)
		for i, text := range got {
			if text != want[i] {
				t.Fatalf("round %d: message %d is %q, want %q", round, i, text, want[i])
			}
		}
	}
	bob = openDevice(t, s, bobDir, "bob")
	bob.start()
	bob.waitTexts(conv, want...)
	if _, err := bob.c.Send(ctx, conv, "survived", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	alice.waitTexts(conv, append(want, "survived")...)
}

// TestRestartKeepsRatchet: after application messages only the ratchet
// state is written, not the full group state. A sender that stops after
// sending (a crash: nothing is written on Close) and starts again must not
// encrypt with a generation it used already, and a receiver that restarts
// must go on from where it was: every message arrives, none is refused as
// a replay.
func TestRestartKeepsRatchet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, conv := directPair(t, s)
	var want []string
	send := func(d *device, text string) {
		t.Helper()
		if _, err := d.c.Send(ctx, conv, text, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
		want = append(want, text)
	}
	for i := range 5 {
		send(alice, fmt.Sprintf("before %d", i))
	}
	send(bob, "bob before")
	alice.waitTexts(conv, want...)
	bob.waitTexts(conv, want...)

	// Both restart; the receiver first receives more while it is down.
	alice.close()
	bob.close()
	alice = openDevice(t, s, alice.dir, "alice")
	alice.start()
	for i := range 3 {
		send(alice, fmt.Sprintf("after %d", i))
	}
	bob = openDevice(t, s, bob.dir, "bob")
	bob.start()
	bob.waitTexts(conv, want...)
	send(bob, "bob after")
	alice.waitTexts(conv, want...)
	for _, d := range []*device{alice, bob} {
		if strings.Contains(d.logs.String(), "replayed message ignored") {
			t.Errorf("%s refused a message as a replay:\n%s", d.name, d.logs)
		}
		d.mu.Lock()
		for _, ev := range d.events {
			if ev.Kind == client.EventError {
				t.Errorf("%s: error event: %v", d.name, ev.Err)
			}
		}
		d.mu.Unlock()
	}
}

// senderChildEnv names the environment variable that makes the test binary
// a sending client for TestKillDuringSend: "dir url fingerprint conv".
const senderChildEnv = "PARLEY_CLIENT_SENDER_CHILD"

// TestSenderChild is the child process of TestKillDuringSend: it sends
// numbered messages until it is killed.
func TestSenderChild(t *testing.T) {
	spec := os.Getenv(senderChildEnv)
	if spec == "" {
		t.Skip("child process of TestKillDuringSend")
	}
	var dir, url, fp string
	var conv protocol.ConversationID
	fmt.Sscan(spec, &dir, &url, &fp, &conv)
	d := openDeviceURL(t, url, fp, dir, "alice")
	for i := 0; ; i++ {
		if _, err := d.c.Send(context.Background(), conv, fmt.Sprintf("burst %d", i), client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKillDuringSend: a sending client process is killed (SIGKILL) in the
// middle of a burst, then restarted. Whatever it had stored reaches the
// receiver (queued messages are posted again), and the messages it sends
// after the restart use fresh generations: the receiver has exactly the
// sender's history, with nothing refused as a replay of a used key.
func TestKillDuringSend(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	ctx := context.Background()
	s := newServer(t)
	alice, bob, conv := directPair(t, s)
	aliceDir := alice.dir
	alice.close()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSenderChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %d", senderChildEnv, aliceDir, s.url, s.fingerprint, conv))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(300+70*round) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		alice = openDevice(t, s, aliceDir, "alice")
		alice.start()
		if _, err := alice.c.Send(ctx, conv, fmt.Sprintf("after crash %d", round), client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
		// The outbox is flushed by Run: wait until nothing is pending.
		waitFor(t, "alice's outbox to drain", func() bool {
			ms, err := alice.c.Messages(ctx, conv, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if m.State == client.Pending {
					return false
				}
			}
			return true
		})
		want := alice.texts(conv)
		t.Logf("round %d: %d messages in the sender's history", round, len(want))
		// The same messages, each once. (Not always in the same order:
		// a message the killed process had posted but not marked sent is
		// posted again after the restart, possibly after a new message;
		// the receiver shows the first copy, the sender its own view of
		// the second.)
		slices.Sort(want)
		waitFor(t, "bob to have alice's messages", func() bool {
			got := bob.texts(conv)
			slices.Sort(got)
			return slices.Equal(got, want)
		})
		alice.close()
	}
	bob.mu.Lock()
	defer bob.mu.Unlock()
	for _, ev := range bob.events {
		if ev.Kind == client.EventError {
			t.Errorf("bob: error event: %v", ev.Err)
		}
	}
}
