package main

import (
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestQueuedDeliveredByListen: a message sent while the server is down
// is queued (exit code 12), and parley listen delivers it exactly once
// after the server is back, although the conversation moved on by more
// epochs than the server accepts old ciphertexts for: the listener
// catches up and encrypts it again in the current epoch.
func TestQueuedDeliveredByListen(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob", "carol")
	var conv conversationJSON
	if err := json.Unmarshal([]byte(c.run("alice", "--json", "group", "create", "team", "--members", "bob")), &conv); err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(conv.ID, 10)
	c.read("bob", id)                          // joins
	c.run("alice", "role", id, "bob", "admin") // bob removes carol below
	c.srv.Stop()
	cmd := c.command("alice", "--json", "send", id, "written offline")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitQueued {
		t.Fatalf("send while the server is down: %v, want exit code %d\n%s", err, exitQueued, out)
	}
	var queued messageJSON
	if err := json.Unmarshal(out, &queued); err != nil || queued.State != "pending" {
		t.Fatalf("queued message %+v (%v), want state pending\n%s", queued, err, out)
	}
	srv, err := c.srv.Restart()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	c.srv = srv

	// Four commits while alice is away: her ciphertext's epoch is then
	// older than the server accepts (PastEpochs is 3).
	for _, op := range []string{"add", "remove", "add", "remove"} {
		c.run("bob", op, id, "carol")
	}
	before, err := srv.metric("parley_entries_appended_total")
	if err != nil {
		t.Fatal(err)
	}
	l := c.listen("alice")
	deadline := time.Now().Add(time.Minute)
	for {
		l.mu.Lock()
		n := len(l.delivered)
		l.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("parley listen delivered nothing within a minute\nstderr:\n%s", l.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.cmd.Process.Signal(syscall.SIGINT)
	<-l.done
	if !slices.Equal(l.delivered, []string{queued.ID}) {
		t.Errorf("delivered %v, want %s once", l.delivered, queued.ID)
	}
	if n, err := srv.metric("parley_entries_appended_total"); err != nil || n != before+1 {
		t.Errorf("application entries stored while listening: %v (%v), want 1", n-before, err)
	}
	h := c.read("alice", id)
	if m := h.Messages[len(h.Messages)-1]; m.ID != queued.ID || m.State != "sent" {
		t.Errorf("alice's message after listen: %+v, want %s sent", m, queued.ID)
	}
	var got []string
	for _, m := range c.read("bob", id).messages() {
		if m.Sender == "alice" {
			got = append(got, m.Text)
		}
	}
	if !slices.Equal(got, []string{"written offline"}) {
		t.Errorf("bob received %q from alice, want the queued message once", got)
	}
}
