package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// lineListener is a running parley listen whose stdout lines are kept.
type lineListener struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	cond  *sync.Cond
	lines []string
	done  chan struct{}
}

// listenLines starts parley listen (with args such as --json) for a
// profile.
func (c *cli) listenLines(profile string, args ...string) *lineListener {
	c.t.Helper()
	l := &lineListener{done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	l.cmd = c.command(profile, append(args, "listen")...)
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
			l.mu.Lock()
			l.lines = append(l.lines, sc.Text())
			l.cond.Broadcast()
			l.mu.Unlock()
		}
		l.cmd.Wait()
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	}()
	c.t.Cleanup(l.stop)
	return l
}

// stop interrupts the listener and waits for it to exit.
func (l *lineListener) stop() {
	l.cmd.Process.Signal(syscall.SIGINT)
	<-l.done
}

// waitMatch waits (two minutes at most) until the lines printed after
// line from match re, and returns the index of the first that does.
func (l *lineListener) waitMatch(t *testing.T, from int, re *regexp.Regexp) int {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	timer := time.AfterFunc(2*time.Minute, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer timer.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for i := from; i < len(l.lines); i++ {
			if re.MatchString(l.lines[i]) {
				return i
			}
		}
		select {
		case <-l.done:
			t.Fatalf("listen exited without printing %q; it printed:\n%s", re, strings.Join(l.lines, "\n"))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen printed no %q within two minutes; it printed:\n%s", re, strings.Join(l.lines, "\n"))
		}
		l.cond.Wait()
	}
}

// TestListenSystemLines: parley listen prints the changes of membership,
// name and topic as system lines as they happen, in order, in text (the
// new name made printable) and in JSON (event "system" with the kind of
// change and its actor); afterwards read shows them in the history.
func TestListenSystemLines(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob", "carol", "dave")
	var conv conversationJSON
	if err := json.Unmarshal([]byte(c.run("alice", "--json", "group", "create", "team", "--members", "bob,dave")), &conv); err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(conv.ID, 10)
	c.run("alice", "role", id, "bob", "admin") // bob removes carol below
	c.read("alice", id)
	c.read("bob", id)
	c.read("dave", id)
	text := c.listenLines("alice")
	js := c.listenLines("dave", "--json")

	c.run("bob", "add", id, "carol")
	c.run("bob", "topic", id, "plans")
	c.run("bob", "rename", id, "crew\x1b[2J")
	c.run("bob", "remove", id, "carol")
	c.run("bob", "leave", id) // alice, the first member, commits it

	at := 0
	for _, want := range []string{
		`^\[team\] -- \d\d:\d\d bob added carol$`,
		`^\[team\] -- \d\d:\d\d bob set the topic to "plans"$`,
		`^\[crew\x{FFFD}\[2J\] -- \d\d:\d\d bob renamed the conversation to "crew\x{FFFD}\[2J"$`,
		`^\[crew\x{FFFD}\[2J\] -- \d\d:\d\d bob removed carol$`,
		`^\[crew\x{FFFD}\[2J\] -- \d\d:\d\d bob left$`,
	} {
		at = text.waitMatch(t, at, regexp.MustCompile(want)) + 1
	}
	js.waitMatch(t, 0, regexp.MustCompile(`"event":"system".*"kind":"left"`))
	text.stop()
	js.stop()
	for _, line := range text.lines {
		if strings.Contains(line, "\x1b") {
			t.Errorf("listen printed an escape character: %q", line)
		}
	}

	var kinds []string
	for _, line := range js.lines {
		var ev eventJSON
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("listen --json printed %q: %v", line, err)
		}
		if ev.Event != "system" {
			continue
		}
		m := ev.Message
		if m == nil || m.Kind != "system" || m.System == nil || m.System.Actor != "bob" || ev.User != "bob" || ev.Conversation != conv.ID {
			t.Errorf("system event %s", line)
			continue
		}
		kinds = append(kinds, m.System.Kind)
	}
	if got := strings.Join(kinds, " "); got != "added topic_changed renamed removed left" {
		t.Errorf("dave's listen --json printed system lines %q", got)
	}

	// The history keeps them, in the same order, for both.
	for _, u := range []string{"alice", "dave"} {
		var got []string
		for _, m := range c.read(u, id).Messages {
			if m.Kind == "system" && m.System.Actor == "bob" {
				got = append(got, m.System.Kind)
			}
		}
		if strings.Join(got, " ") != "added topic_changed renamed removed left" {
			t.Errorf("%s's history holds bob's changes %q", u, got)
		}
	}
}

// TestSystemText checks the words of every kind of system line, with
// this user's own name as "you".
func TestSystemText(t *testing.T) {
	line := func(actor string, kind client.SystemKind, users []string, devices []protocol.DeviceID, value, previous string) *client.Message {
		return &client.Message{Sender: actor, Sent: time.Now(), System: &client.System{Kind: kind, Users: users, Devices: devices, Value: value, Previous: previous}}
	}
	for _, tc := range []struct {
		m    *client.Message
		want string
	}{
		{line("alice", client.SystemJoined, []string{"alice"}, nil, "", ""), "you joined"},
		{line("bob", client.SystemAdded, []string{"carol", "alice"}, nil, "", ""), "bob added carol, you"},
		{line("bob", client.SystemLeft, []string{"bob"}, nil, "", ""), "bob left"},
		{line("alice", client.SystemLeft, []string{"alice"}, nil, "", ""), "you left"},
		{line("bob", client.SystemRemoved, []string{"alice"}, nil, "", ""), "bob removed you"},
		{line("bob", client.SystemDeviceAdded, []string{"bob"}, []protocol.DeviceID{"d1"}, "", ""), "bob added a device (d1)"},
		{line("alice", client.SystemDeviceAdded, []string{"bob"}, []protocol.DeviceID{"d1", "d2"}, "", ""), "you added 2 devices of bob (d1, d2)"},
		{line("bob", client.SystemDeviceRemoved, []string{"alice"}, []protocol.DeviceID{"d3"}, "", ""), "bob removed a device of yours (d3)"},
		{line("bob", client.SystemRenamed, nil, nil, "crew", ""), `bob named the conversation "crew"`},
		{line("bob", client.SystemRenamed, nil, nil, "crew", "team"), `bob renamed the conversation to "crew"`},
		{line("bob", client.SystemRenamed, nil, nil, "", "crew"), "bob removed the conversation's name"},
		{line("bob", client.SystemTopicChanged, nil, nil, "plans", ""), `bob set the topic to "plans"`},
		{line("bob", client.SystemTopicChanged, nil, nil, "later", "plans"), `bob changed the topic to "later"`},
		{line("bob", client.SystemTopicChanged, nil, nil, "", "later"), "bob cleared the topic"},
		{line("alice", client.SystemRoleChanged, []string{"bob"}, nil, "admin", "member"), "you made bob an admin"},
		{line("bob", client.SystemRoleChanged, []string{"alice"}, nil, "member", "admin"), "bob made you a member (no longer admin)"},
		{line("alice", client.SystemPolicyChanged, nil, nil, "add=admins remove=admins", ""), "you set the policy: add=admins remove=admins"},
		{line("bob", client.SystemChangeIgnored, nil, nil, "rename", ""), "bob's rename was ignored: the conversation's policy does not allow it"},
		{line("alice", client.SystemNoRoles, []string{"bob"}, nil, "", ""), "bob's client does not support roles yet: this group has no admins"},
		{line("alice", client.SystemNoRoles, []string{"bob", "carol"}, nil, "", ""), "the clients of bob, carol do not support roles yet: this group has no admins"},
		{line("", client.SystemRemoved, []string{"bob"}, nil, "", ""), "someone removed bob"},
		{line("bob", "archived", nil, nil, "", ""), "bob changed the conversation (archived)"},
	} {
		if got := systemText(tc.m, "alice"); got != tc.want {
			t.Errorf("%s line: %q, want %q", tc.m.System.Kind, got, tc.want)
		}
	}
	// A queued change of one's own carries the state of a message.
	m := line("alice", client.SystemTopicChanged, nil, nil, "plans", "")
	m.State = client.Pending
	if got := systemLine(m, "alice"); !strings.HasSuffix(got, ` you set the topic to "plans"  … queued`) || !strings.HasPrefix(got, "-- ") {
		t.Errorf("queued system line %q", got)
	}
}

// TestStateMark checks the marker that ends the line of a message in
// each state, and that listen shows a queued message it delivered.
func TestStateMark(t *testing.T) {
	m := &client.Message{Sender: "alice", Sent: time.Now(), Text: "hi"}
	for _, tc := range []struct {
		state  client.DeliveryState
		readBy []string
		want   string
	}{
		{client.Received, nil, " alice: hi"},
		{client.Pending, nil, " alice: hi  … queued"},
		{client.Sent, nil, " alice: hi  ✓ sent"},
		{client.Read, []string{"bob", "carol"}, " alice: hi  ✓✓ read by bob, carol"},
		{client.Failed, nil, " alice: hi  ✗ NOT DELIVERED"},
	} {
		m.State, m.ReadBy = tc.state, tc.readBy
		if got := messageLine(m); !strings.HasSuffix(got, tc.want) {
			t.Errorf("%s: %q, want it to end with %q", tc.state, got, tc.want)
		}
	}
	m.State, m.Deleted = client.Sent, true
	if got := messageLine(m); strings.Contains(got, "✓") {
		t.Errorf("a deleted message keeps its state marker: %q", got)
	}
	m.Deleted = false
	ev := client.Event{Kind: client.EventDelivered, Conversation: 4, Message: m}
	if got := eventLine(ev, func(protocol.ConversationID) string { return "bob" }, "alice"); !strings.HasPrefix(got, "[bob] sent: ") || !strings.HasSuffix(got, "alice: hi  ✓ sent") {
		t.Errorf("listen line of a delivered message: %q", got)
	}
}
