package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/daemonapi"
)

// daemonProc is a running parley daemon.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	err    error // the exit status, once done
}

// startDaemon starts parley daemon for a profile and waits until it
// says that it serves the socket.
func (c *cli) startDaemon(profile string) *daemonProc {
	c.t.Helper()
	d := &daemonProc{cmd: c.command(profile, "daemon"), stderr: &lockedBuffer{}, done: make(chan struct{})}
	pr, err := d.cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	serving := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		var once sync.Once
		for sc.Scan() {
			d.stderr.Write(append(sc.Bytes(), '\n'))
			if strings.Contains(sc.Text(), "daemon serving profile") {
				once.Do(func() { close(serving) })
			}
		}
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	c.t.Cleanup(func() {
		d.cmd.Process.Kill()
		<-d.done
		if c.t.Failed() {
			c.t.Logf("parley daemon stderr:\n%s", d.stderr.String())
		}
	})
	select {
	case <-serving:
	case <-d.done:
		c.t.Fatalf("parley daemon exited: %v\n%s", d.err, d.stderr.String())
	case <-time.After(time.Minute):
		c.t.Fatalf("parley daemon did not start within a minute\n%s", d.stderr.String())
	}
	return d
}

// wait waits for the daemon to exit.
func (d *daemonProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-d.done:
		return d.err
	case <-time.After(time.Minute):
		t.Fatalf("parley daemon did not exit within a minute\n%s", d.stderr.String())
		return nil
	}
}

// textListener is a running parley listen without --json.
type textListener struct {
	lines chan string // closed when it exits
}

func (c *cli) listenText(profile string) *textListener {
	c.t.Helper()
	cmd := c.command(profile, "listen")
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	l := &textListener{lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l.lines <- sc.Text()
		}
		cmd.Wait()
		close(l.lines)
	}()
	c.t.Cleanup(func() {
		cmd.Process.Kill()
		for range l.lines {
		}
	})
	return l
}

// waitLine waits for a line that matches.
func (l *textListener) waitLine(t *testing.T, match func(string) bool) {
	t.Helper()
	var seen []string
	timeout := time.After(time.Minute)
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				t.Fatalf("listen exited; it printed:\n%s", strings.Join(seen, "\n"))
			}
			if match(line) {
				return
			}
			seen = append(seen, line)
		case <-timeout:
			t.Fatalf("listen did not print the line within a minute; it printed:\n%s", strings.Join(seen, "\n"))
		}
	}
}

// runStatus runs parley and returns its stdout, stderr and exit code.
func (c *cli) runStatus(profile string, args ...string) (string, string, int) {
	c.t.Helper()
	return c.runStatusIn("", profile, args...)
}

// runStatusIn is runStatus in the working directory dir ("" for this
// process's).
func (c *cli) runStatusIn(dir, profile string, args ...string) (string, string, int) {
	c.t.Helper()
	cmd := c.command(profile, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	c.t.Fatalf("parley %s: %v", strings.Join(args, " "), err)
	return "", "", 0
}

// TestDaemonEndToEnd: under parley daemon, listen and send run at the
// same time on one profile and behave as without it; other commands are
// refused clearly; after SIGTERM the socket is gone and commands open
// the profile again. A killed daemon's socket is replaced.
func TestDaemonEndToEnd(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob", "carol", "dave")
	c.run("alice", "chat", "new", "bob")
	c.run("bob", "read") // bob joins
	sock := filepath.Join(c.config, "parley", "alice", daemonapi.SocketFile)

	d := c.startDaemon("alice")
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket %s: %v, %v; want a socket of mode 0600", sock, fi, err)
	}
	l := c.listen("alice") // through the daemon: the profile is the daemon's
	text := c.listenText("alice")
	// Bob writes: alice's listens show it.
	c.run("bob", "send", "alice", "hello alice")
	l.waitFor(t, "bob's message", time.Minute, func() bool { return slices.Contains(l.texts, "hello alice") })
	text.waitLine(t, func(line string) bool {
		return strings.HasPrefix(line, "[bob] ") && strings.HasSuffix(line, " bob: hello alice")
	})
	// Alice sends while listen runs; it reaches bob.
	out := c.run("alice", "send", "bob", "hi bob, via the daemon")
	if !strings.HasPrefix(out, "sent ") || !strings.Contains(out, "to bob (conversation ") {
		t.Errorf("send through the daemon printed %q", out)
	}
	if h := c.read("bob", "alice"); !slices.ContainsFunc(h.messages(), func(m messageJSON) bool { return m.Text == "hi bob, via the daemon" }) {
		t.Errorf("bob did not get alice's message sent through the daemon: %+v", h.messages())
	}
	// The same output and exit codes as without the daemon.
	_, stderr, code := c.runStatus("alice", "send", "nobody-here", "text")
	if code != exitNotFound {
		t.Errorf("send to an unknown conversation through the daemon: exit %d, want %d\n%s", code, exitNotFound, stderr)
	}
	_, stderr, code = c.runStatus("alice", "--json", "send", "bob", "--reply", "ffffffff", "text")
	if code != exitNotFound || !strings.Contains(stderr, `"code":"unknown_message"`) {
		t.Errorf("reply to an unknown message through the daemon: exit %d, want %d\n%s", code, exitNotFound, stderr)
	}
	// The other commands that go through the daemon.
	var sent messageJSON
	if err := json.Unmarshal([]byte(c.run("alice", "--json", "send", "bob", "to change")), &sent); err != nil {
		t.Fatal(err)
	}
	for _, step := range [][]string{
		{"react", "bob", sent.ID[:8], "👍"},
		{"edit", "bob", sent.ID[:8], "changed"},
		{"delete", "bob", sent.ID[:8]},
		{"group", "create", "team", "--members", "bob"},
		{"add", "team", "carol", "dave"},
		{"remove", "team", "carol"},
		{"topic", "team", "plans"},
		{"rename", "team", "crew"},
		{"members", "crew"},
		{"leave", "crew"},
	} {
		if out, stderr, code := c.runStatus("alice", step...); code != 0 || out == "" {
			t.Errorf("parley %s through the daemon: exit %d, output %q\n%s", strings.Join(step, " "), code, out, stderr)
		}
	}
	if h := c.read("bob", "alice"); !slices.ContainsFunc(h.messages(), func(m messageJSON) bool { return m.ID == sent.ID && m.Deleted }) {
		t.Errorf("bob does not see alice's message deleted through the daemon: %+v", h.messages())
	}
	// verify, send --file, get, chat recreate and invite go through the
	// daemon; their output is compared below with that without it.
	viaVerify := c.run("alice", "verify", "bob") // with the QR code
	viaVerifyJSON := c.run("alice", "--json", "verify", "bob")
	_, viaAccept, viaAcceptCode := c.runStatus("alice", "--json", "verify", "--accept", "bob", strings.Repeat("1", 60))
	if viaAcceptCode != exitIdentityChanged || !strings.Contains(viaAccept, "compare again") {
		t.Errorf("verify --accept with wrong digits through the daemon: exit %d, want %d\n%s", viaAcceptCode, exitIdentityChanged, viaAccept)
	}
	files, saved := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(files, "notes.txt"), []byte("notes through the daemon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var fileMsg messageJSON
	out, stderr, code = c.runStatusIn(files, "alice", "--json", "send", "bob", "--file", "notes.txt", "my notes")
	if err := json.Unmarshal([]byte(out), &fileMsg); err != nil || code != 0 || fileMsg.Attachment == nil || fileMsg.Attachment.FileName != "notes.txt" || fileMsg.Text != "my notes" {
		t.Fatalf("send --file (a relative path) through the daemon: exit %d, %q, %v\n%s", code, out, err, stderr)
	}
	out, stderr, code = c.runStatusIn(saved, "alice", "get", fileMsg.ID[:8], "-o", "copy.txt")
	if code != 0 || !strings.HasPrefix(out, "saved "+filepath.Join(saved, "copy.txt")+" (") {
		t.Errorf("get through the daemon: exit %d, %q\n%s", code, out, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(saved, "copy.txt")); err != nil || string(b) != "notes through the daemon\n" {
		t.Errorf("the file got through the daemon: %q, %v", b, err)
	}
	_, viaGetAgain, viaGetAgainCode := c.runStatusIn(saved, "alice", "--json", "get", fileMsg.ID[:8], "-o", "copy.txt")
	if viaGetAgainCode != exitFailure || !strings.Contains(viaGetAgain, "--force") {
		t.Errorf("get over an existing file through the daemon: exit %d\n%s", viaGetAgainCode, viaGetAgain)
	}
	_, viaInvite, viaInviteCode := c.runStatus("alice", "--json", "invite", "create")
	if viaInviteCode != exitFailure || !strings.Contains(viaInvite, "only an administrator may create invites") {
		t.Errorf("invite create by a user through the daemon: exit %d\n%s", viaInviteCode, viaInvite)
	}
	c.run("alice", "group", "create", "doomed", "--members", "bob")
	if out := c.run("alice", "chat", "recreate", "doomed"); !strings.HasPrefix(out, "opened conversation ") || !strings.Contains(out, ": doomed (members: alice, bob)") {
		t.Errorf("chat recreate through the daemon printed %q", out)
	}
	_, viaRecreate, viaRecreateCode := c.runStatus("alice", "--json", "chat", "recreate", "999999")
	if viaRecreateCode != exitNotFound {
		t.Errorf("chat recreate of an unknown conversation through the daemon: exit %d, want %d\n%s", viaRecreateCode, exitNotFound, viaRecreate)
	}
	// What the daemon shows, to compare with the profile opened directly.
	viaWhoami := c.run("alice", "whoami")
	c.run("alice", "read", "--no-receipt", "bob") // moves the read position
	viaRead := c.run("alice", "--json", "read", "--no-receipt", "bob")
	viaText := c.run("alice", "read", "--no-receipt", "bob")
	viaList := c.run("alice", "read")
	// register, which creates a profile, is refused at once.
	_, stderr, code = c.runStatus("alice", "register", "--server", c.srv.URL, "alice")
	if code != exitProfile || !strings.Contains(stderr, "held by a parley daemon") || !strings.Contains(stderr, "registered already") || strings.Contains(stderr, "waiting for the profile") {
		t.Errorf("register under the daemon: exit %d, want %d with a clear message\n%s", code, exitProfile, stderr)
	}
	// A second daemon is refused.
	_, stderr, code = c.runStatus("alice", "daemon")
	if code != exitProfile || !strings.Contains(stderr, "already runs") {
		t.Errorf("second daemon: exit %d, want %d\n%s", code, exitProfile, stderr)
	}

	// SIGTERM: the daemon stops cleanly, the socket is gone, listen ends.
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(t); err != nil {
		t.Errorf("daemon after SIGTERM: %v\n%s", err, d.stderr.String())
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after SIGTERM: %v", err)
	}
	<-l.done
	if got := c.run("alice", "whoami"); got != viaWhoami {
		t.Errorf("whoami: %q through the daemon, %q without", viaWhoami, got)
	}
	if got := c.run("alice", "--json", "read", "--no-receipt", "bob"); got != viaRead {
		t.Errorf("read --json: through the daemon\n%s\nwithout\n%s", viaRead, got)
	}
	if got := c.run("alice", "read", "--no-receipt", "bob"); got != viaText {
		t.Errorf("read: through the daemon\n%s\nwithout\n%s", viaText, got)
	}
	if got := c.run("alice", "read"); got != viaList {
		t.Errorf("read (list): through the daemon\n%s\nwithout\n%s", viaList, got)
	}
	for _, step := range []struct {
		args       []string
		dir        string
		via        string
		viaCode    int
		stderrOnly bool
	}{
		{[]string{"--json", "verify", "--accept", "bob", strings.Repeat("1", 60)}, "", viaAccept, viaAcceptCode, true},
		{[]string{"--json", "get", fileMsg.ID[:8], "-o", "copy.txt"}, saved, viaGetAgain, viaGetAgainCode, true},
		{[]string{"--json", "invite", "create"}, "", viaInvite, viaInviteCode, true},
		{[]string{"--json", "chat", "recreate", "999999"}, "", viaRecreate, viaRecreateCode, true},
		{[]string{"verify", "bob"}, "", viaVerify, 0, false},
		{[]string{"--json", "verify", "bob"}, "", viaVerifyJSON, 0, false},
	} {
		out, stderr, code := c.runStatusIn(step.dir, "alice", step.args...)
		got, via := out, step.via
		if step.stderrOnly {
			// The error objects (the same message, code and hint), not the
			// notices of events that a direct run may print besides.
			got, via = errorLine(stderr), errorLine(via)
		}
		if got == "" || got != via || code != step.viaCode {
			t.Errorf("parley %s: through the daemon (exit %d)\n%s\nwithout (exit %d)\n%s", strings.Join(step.args, " "), step.viaCode, via, code, got)
		}
	}
	c.run("alice", "send", "bob", "direct again")

	// A killed daemon leaves its socket: commands open the profile
	// themselves, and the next daemon replaces it.
	d = c.startDaemon("alice")
	d.cmd.Process.Kill()
	d.wait(t)
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("socket after SIGKILL: %v", err)
	}
	c.run("alice", "verify", "--no-qr", "bob")
	d = c.startDaemon("alice")
	if got := c.run("alice", "whoami"); got != viaWhoami {
		t.Errorf("whoami through the new daemon: %q, want %q", got, viaWhoami)
	}
	if out := c.run("alice", "verify", "--mark", "--no-qr", "bob"); !strings.Contains(out, "bob is now marked verified.") {
		t.Errorf("verify --mark through the daemon printed %q", out)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.wait(t); err != nil {
		t.Errorf("daemon after SIGTERM: %v", err)
	}
	if out := c.run("alice", "verify", "--no-qr", "bob"); !strings.Contains(out, "bob is verified.") {
		t.Errorf("verify after --mark through the daemon printed %q", out)
	}
}

// errorLine is the error object among the JSON lines that parley --json
// printed on stderr, or "".
func errorLine(stderr string) string {
	for line := range strings.Lines(stderr) {
		if strings.HasPrefix(line, `{"error":`) {
			return line
		}
	}
	return ""
}

// TestDaemonSurvivesServerRestart: parleyd is killed under a running
// daemon and started again; the daemon's subscribers see it lose and
// regain the connection, messages flow again both ways, and the daemon
// stays the same process.
func TestDaemonSurvivesServerRestart(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob")
	c.run("bob", "chat", "new", "alice")
	c.run("bob", "send", "alice", "before the restart")
	d := c.startDaemon("alice")
	dir := filepath.Join(c.config, "parley", "alice")
	dc, err := daemonapi.Dial(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a guard against a hang
	defer cancel()
	if err := dc.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}
	waitConnection := func(want func(string) bool, what string) {
		t.Helper()
		for {
			ev, err := dc.NextEvent(ctx)
			if err != nil {
				t.Fatalf("waiting until the daemon is %s: %v\n%s", what, err, d.stderr.String())
			}
			if ev.Event == "connection" && want(ev.Connection) {
				return
			}
		}
	}
	connected := func(s string) bool { return s == "connected" }
	waitConnection(connected, "connected")

	c.srv.Kill()
	waitConnection(func(s string) bool { return s != "connected" }, "disconnected")
	srv, err := c.srv.Restart()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	c.srv = srv
	waitConnection(connected, "connected again")

	c.run("bob", "send", "alice", "after the restart")
	for {
		ev, err := dc.NextEvent(ctx)
		if err != nil {
			t.Fatalf("waiting for bob's message after the restart: %v", err)
		}
		if ev.Event == "message" && ev.Message != nil && ev.Message.Text == "after the restart" {
			break
		}
	}
	c.run("alice", "send", "bob", "alice is still here") // through the daemon
	var texts []string
	for _, m := range c.read("bob", "alice").messages() {
		texts = append(texts, m.Text)
	}
	if got, want := strings.Join(texts, "|"), "before the restart|after the restart|alice is still here"; got != want {
		t.Errorf("bob's history = %q, want %q", got, want)
	}
	select {
	case <-d.done:
		t.Fatalf("the daemon exited: %v\n%s", d.err, d.stderr.String())
	default:
	}
}
