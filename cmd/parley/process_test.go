package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// cli runs the parley binary for the profiles of one test.
type cli struct {
	t      testing.TB
	bin    string
	config string // XDG_CONFIG_HOME
	srv    *server
	// env is added to the environment of every command (after the
	// empty PARLEY_PASSPHRASE, which it can replace).
	env []string
}

func newCLI(t testing.TB) *cli {
	t.Helper()
	if testing.Short() {
		t.Skip("starts parleyd and parley processes")
	}
	bin, err := buildBinary("github.com/parley-chat/parley/cmd/parley")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(filepath.Join(t.TempDir(), "parleyd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Stop()
		if t.Failed() {
			t.Logf("parleyd stderr:\n%s", srv.stderr.String())
		}
	})
	return &cli{t: t, bin: bin, config: t.TempDir(), srv: srv}
}

// command returns the parley command for a profile.
func (c *cli) command(profile string, args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, append([]string{"--profile", profile}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+c.config, "PARLEY_PASSPHRASE=")
	cmd.Env = append(cmd.Env, c.env...)
	return cmd
}

// run runs parley and returns its stdout, failing the test on an error.
func (c *cli) run(profile string, args ...string) string {
	c.t.Helper()
	cmd := c.command(profile, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("parley --profile %s %s: %v\n%s%s", profile, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// register registers users, one profile each.
func (c *cli) register(users ...string) {
	c.t.Helper()
	inv, err := c.srv.NewInvite(len(users))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, u := range users {
		c.run(u, "register", "--server", c.srv.URL, "--invite", inv, "--fingerprint", c.srv.Fingerprint, u)
	}
}

// history is the output of parley read --json CONV.
type history struct {
	Conversation conversationJSON `json:"conversation"`
	Messages     []messageJSON    `json:"messages"`
}

// messages returns the messages of a history, without its system lines.
func (h history) messages() []messageJSON {
	var out []messageJSON
	for _, m := range h.Messages {
		if m.Kind != "system" {
			out = append(out, m)
		}
	}
	return out
}

func (c *cli) read(profile, conv string) history {
	c.t.Helper()
	var h history
	out := c.run(profile, "--json", "read", "--no-receipt", conv)
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		c.t.Fatalf("read: %v\n%s", err, out)
	}
	return h
}

// openSDK opens a profile made by the CLI with the SDK, in this process.
func (c *cli) openSDK(profile string) *client.Client {
	c.t.Helper()
	dir := filepath.Join(c.config, "parley", profile)
	cl, err := client.Open(context.Background(), client.Config{
		ProfileDir: dir, KeyFile: filepath.Join(dir, keyFileName), TLSFingerprint: c.srv.Fingerprint,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// listener is a running parley listen --json.
type listener struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	ids []string // message ids of "message" events, in order
	// texts are the texts of "message" events, in order.
	texts []string
	// delivered are the message ids of "delivered" events, in order.
	delivered []string
	stderr    bytes.Buffer
	done      chan struct{}
	// printed is closed and replaced each time a line is read.
	printed chan struct{}
}

func (c *cli) listen(profile string) *listener {
	c.t.Helper()
	l := &listener{done: make(chan struct{}), printed: make(chan struct{})}
	l.cmd = c.command(profile, "--json", "listen")
	l.cmd.Stderr = &l.stderr
	out, err := l.cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := l.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev eventJSON
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			if ev.Event == "message" && ev.Message != nil {
				l.mu.Lock()
				l.ids = append(l.ids, ev.Message.ID)
				l.texts = append(l.texts, ev.Message.Text)
				l.mu.Unlock()
			}
			if ev.Event == "delivered" && ev.Message != nil {
				l.mu.Lock()
				l.delivered = append(l.delivered, ev.Message.ID)
				l.mu.Unlock()
			}
			l.mu.Lock()
			close(l.printed)
			l.printed = make(chan struct{})
			l.mu.Unlock()
		}
		l.cmd.Wait()
	}()
	return l
}

func (l *listener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ids)
}

// waitCount waits until the listener printed n messages.
func (l *listener) waitCount(t *testing.T, n int, within time.Duration) {
	t.Helper()
	l.waitFor(t, fmt.Sprintf("%d messages", n), within, func() bool { return len(l.ids) >= n })
}

// waitFor waits until cond, called with l.mu held, holds after a line
// the listener printed; it fails after within (a hang guard) or when the
// listener exits first.
func (l *listener) waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	timeout := time.After(within)
	for {
		l.mu.Lock()
		ok, printed := cond(), l.printed
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-printed:
		case <-l.done:
			l.mu.Lock()
			ok = cond()
			l.mu.Unlock()
			if !ok {
				t.Fatalf("listener exited before printing %s (%d messages)\nstderr:\n%s", what, l.count(), l.stderr.String())
			}
			return
		case <-timeout:
			t.Fatalf("listener printed %d messages, not %s, within %v\nstderr:\n%s", l.count(), what, within, l.stderr.String())
		}
	}
}

// TestKillListen kills parley listen with SIGKILL in the middle of a burst
// of messages and restarts it: the history has every message exactly
// once, in order, every message is shown, none is shown twice except the
// one whose printing the kill interrupted (client.MarkShown), and the
// group still works.
func TestKillListen(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob")
	var conv conversationJSON
	if err := json.Unmarshal([]byte(c.run("bob", "--json", "group", "create", "burst", "--members", "alice")), &conv); err != nil {
		t.Fatal(err)
	}
	convID := strconv.FormatInt(conv.ID, 10)
	c.read("alice", convID) // joins

	const n = 300
	l1 := c.listen("alice")
	bob := c.openSDK("bob")
	defer bob.Close()
	ctx := context.Background()
	var want []string
	sent := make(chan struct{})
	var sendErr error
	go func() {
		defer close(sent)
		for i := range n {
			m, err := bob.Send(ctx, protocol.ConversationID(conv.ID), fmt.Sprintf("m%03d", i), client.SendOptions{})
			if err != nil {
				sendErr = err
				return
			}
			want = append(want, m.ID.String())
		}
	}()
	l1.waitCount(t, 40, 5*time.Minute)
	if err := l1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-l1.done
	killedAt := l1.count()
	<-sent
	if sendErr != nil {
		t.Fatal(sendErr)
	}
	t.Logf("listen killed after printing %d of %d messages", killedAt, n)
	if killedAt >= n {
		t.Fatalf("the burst ended before the kill")
	}

	// Restart: the rest is printed. Messages the first listener applied
	// but did not print before the kill are printed by the second
	// (client.Unseen) before anything newer; a last message sent after
	// the burst, once printed, shows that nothing of the burst is still
	// to come.
	l2 := c.listen("alice")
	seen1 := map[string]bool{}
	for _, id := range l1.ids {
		seen1[id] = true
	}
	l2.waitFor(t, "the rest of the burst", 5*time.Minute, func() bool {
		k := len(seen1)
		for _, id := range l2.ids {
			if !seen1[id] {
				k++
			}
		}
		return k >= n
	})
	last, err := bob.Send(ctx, protocol.ConversationID(conv.ID), "end of burst", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l2.waitFor(t, "the message after the burst", 5*time.Minute, func() bool { return slices.Contains(l2.ids, last.ID.String()) })
	want = append(want, last.ID.String())
	l2.cmd.Process.Signal(syscall.SIGINT)
	<-l2.done
	shown := append(append([]string{}, l1.ids...), l2.ids...)
	seen := map[string]bool{}
	for _, id := range shown {
		if seen[id] && id != l1.ids[len(l1.ids)-1] {
			t.Errorf("message %s shown twice by listen (the kill interrupted the printing of %s)", id, l1.ids[len(l1.ids)-1])
		}
		seen[id] = true
	}
	t.Logf("first listen showed %d, second %d (of %d + 1); shown again: %d", len(l1.ids), len(l2.ids), n, len(shown)-len(seen))
	if len(seen) != n+1 {
		t.Errorf("the two listeners showed %d distinct messages of %d: every message must be shown", len(seen), n+1)
	}

	// What the listeners applied, without a sync by parley read.
	var applied history
	if err := json.Unmarshal([]byte(c.run("alice", "--json", "read", "--offline", convID)), &applied); err != nil {
		t.Fatal(err)
	}
	if len(applied.messages()) != n+1 {
		t.Errorf("the restarted listener applied %d of %d messages (first listener printed %d, second %d): it stopped catching up", len(applied.messages()), n+1, len(l1.ids), len(l2.ids))
	}

	h := c.read("alice", convID)
	var got []string
	for i, m := range h.messages() {
		got = append(got, m.ID)
		if want := fmt.Sprintf("m%03d", i); m.Text != want && i < n {
			t.Errorf("message %d: text %q, want %q", i, m.Text, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("history after kill -9 and restart: %d messages, want %d (ids complete, unique, in order)", len(got), len(want))
	}
	for _, id := range shown {
		if !slices.Contains(want, id) {
			t.Errorf("listen showed unknown message %s", id)
		}
	}

	// The group still works both ways.
	c.run("alice", "send", convID, "after the crash")
	if err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ms, err := bob.Messages(ctx, protocol.ConversationID(conv.ID), 0, 1)
	if err != nil || len(ms) != 1 || ms[0].Text != "after the crash" || ms[0].Sender != "alice" {
		t.Fatalf("bob's last message: %+v, %v", ms, err)
	}
	if _, err := bob.Send(ctx, protocol.ConversationID(conv.ID), "welcome back", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	h = c.read("alice", convID)
	if last := h.Messages[len(h.Messages)-1]; last.Text != "welcome back" || len(h.messages()) != n+3 {
		t.Fatalf("alice's history after the crash ends with %+v (%d messages)", last, len(h.messages()))
	}
}

// TestSimultaneousCommits starts two parley processes that commit to the
// same conversation at the same moment, several times (alice and bob each
// add a new user): every refused (stale) commit is retried automatically,
// and all members end up in the same epoch with the same members.
func TestSimultaneousCommits(t *testing.T) {
	const rounds = 4
	c := newCLI(t)
	users := []string{"alice", "bob"}
	for i := range rounds {
		users = append(users, fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i))
	}
	c.register(users...)
	c.run("alice", "group", "create", "team", "--members", "bob")
	c.read("bob", "team")
	members := []string{"alice", "bob"}
	stale0, err := c.srv.metric(`parley_handshakes_total{result="stale_epoch"}`)
	if err != nil {
		t.Fatal(err)
	}
	for round := range rounds {
		na, nb := fmt.Sprintf("a%d", round), fmt.Sprintf("b%d", round)
		a := c.command("alice", "add", "team", na)
		b := c.command("bob", "add", "team", nb)
		var aerr, berr bytes.Buffer
		a.Stderr, b.Stderr = &aerr, &berr
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		if err := a.Wait(); err != nil {
			t.Fatalf("round %d: alice adds %s: %v\n%s", round, na, err, aerr.String())
		}
		if err := b.Wait(); err != nil {
			t.Fatalf("round %d: bob adds %s: %v\n%s", round, nb, err, berr.String())
		}
		members = append(members, na, nb)
		slices.Sort(members)
		var epoch uint64
		for i, u := range members {
			h := c.read(u, "team")
			if !slices.Equal(h.Conversation.Members, members) {
				t.Fatalf("round %d: %s sees members %v, want %v", round, u, h.Conversation.Members, members)
			}
			if i == 0 {
				epoch = h.Conversation.Epoch
			} else if h.Conversation.Epoch != epoch {
				t.Fatalf("round %d: %s is in epoch %d, %s in %d: %+v", round, u, h.Conversation.Epoch, members[0], epoch, h.Conversation)
			}
		}
		t.Logf("round %d: %d members in epoch %d", round, len(members), epoch)
	}
	stale, err := c.srv.metric(`parley_handshakes_total{result="stale_epoch"}`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v commits refused as stale and retried in %d rounds", stale-stale0, rounds)
	if stale == stale0 {
		t.Errorf("no commit collided in %d rounds: the test did not exercise simultaneous commits", rounds)
	}
	c.run("alice", "send", "team", "still one group")
	for _, u := range members {
		h := c.read(u, "team")
		if last := h.Messages[len(h.Messages)-1]; last.Text != "still one group" {
			t.Errorf("%s: last message %q", u, last.Text)
		}
	}
}

// TestReaddWhileOffline: carol is removed and added again while she runs
// nothing; when she syncs she is a member again, in the group's epoch.
func TestReaddWhileOffline(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "carol")
	c.run("alice", "group", "create", "team", "--members", "carol")
	c.read("carol", "team")
	c.run("alice", "remove", "team", "carol")
	c.run("alice", "add", "team", "carol")
	c.run("alice", "send", "team", "welcome back")
	a, b := c.read("alice", "team"), c.read("carol", "team")
	if b.Conversation.Left || b.Conversation.Epoch != a.Conversation.Epoch {
		t.Fatalf("carol after re-add while offline: %+v; alice: %+v", b.Conversation, a.Conversation)
	}
	if last := b.Messages[len(b.Messages)-1]; last.Text != "welcome back" {
		t.Fatalf("carol's last message %q", last.Text)
	}
}
