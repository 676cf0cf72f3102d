//go:build unix

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/daemonapi"
)

// TestDaemonOnDemand: with PARLEY_DAEMON=auto a command that goes through
// the daemon starts one when none runs, detached, and the next commands
// use it; the daemon records its pid and logs to the profile, and removes
// its pid file and socket when stopped.
func TestDaemonOnDemand(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob")
	c.run("alice", "chat", "new", "bob")
	dir := filepath.Join(c.config, "parley", "alice")
	auto := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := c.command("alice", args...)
		cmd.Env = append(cmd.Env, "PARLEY_DAEMON=auto")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("parley %s: %v", strings.Join(args, " "), err)
		}
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}

	// Without the variable no daemon starts.
	c.run("alice", "whoami")
	if _, err := os.Stat(filepath.Join(dir, pidFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file without PARLEY_DAEMON=auto: %v", err)
	}
	out, stderr, code := auto("send", "bob", "started on demand")
	if code != 0 || !strings.HasPrefix(out, "sent ") || stderr != "" {
		t.Fatalf("send with PARLEY_DAEMON=auto: exit %d, %q\n%s", code, out, stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, pidFileName))
	if err != nil {
		t.Fatalf("no pid file after the daemon started on demand: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("pid file %q: %v", b, err)
	}
	t.Cleanup(func() {
		// Kill the daemon if it still runs (its pid file names it).
		if b2, err := os.ReadFile(filepath.Join(dir, pidFileName)); err == nil && string(b2) == string(b) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// The daemon outlived the command, and holds the profile: a command
	// without the variable goes through it too, and a second daemon is
	// refused.
	dc, err := daemonapi.Dial(t.Context(), dir)
	if err != nil {
		t.Fatalf("no daemon answers after the command ended: %v", err)
	}
	defer dc.Close()
	if h := c.read("alice", "bob"); !slices.ContainsFunc(h.messages(), func(m messageJSON) bool { return m.Text == "started on demand" }) {
		t.Errorf("the message sent through the daemon started on demand is not in the history: %+v", h.messages())
	}
	if _, stderr, code := c.runStatus("alice", "daemon"); code != exitProfile || !strings.Contains(stderr, "already runs") {
		t.Errorf("second daemon: exit %d\n%s", code, stderr)
	}
	// A second command with the variable uses the running daemon.
	if out, stderr, code := auto("whoami"); code != 0 || !strings.HasPrefix(out, "alice@") || stderr != "" {
		t.Errorf("whoami with PARLEY_DAEMON=auto and a daemon running: exit %d, %q\n%s", code, out, stderr)
	}
	if b2, _ := os.ReadFile(filepath.Join(dir, pidFileName)); string(b2) != string(b) {
		t.Errorf("pid file changed from %q to %q: a second daemon started", b, b2)
	}
	// Commands that do not go through a daemon start none.
	if _, stderr, code := auto("register", "--server", c.srv.URL, "alice"); code != exitProfile || !strings.Contains(stderr, "registered already") {
		t.Errorf("register with PARLEY_DAEMON=auto: exit %d\n%s", code, stderr)
	}
	if log, err := os.ReadFile(filepath.Join(dir, logFileName)); err != nil || !strings.Contains(string(log), "daemon serving profile "+dir) {
		t.Errorf("daemon log: %q, %v", log, err)
	}

	// SIGTERM: the daemon ends its connections, then removes its pid
	// file and socket.
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if ev, err := dc.NextEvent(t.Context()); err == nil {
		t.Fatalf("connection to the stopped daemon goes on: %+v", ev)
	}
	// The pid file goes last, as the daemon exits (it is not this
	// process's child, so its exit cannot be waited for).
	pidFile := filepath.Join(dir, pidFileName)
	deadline := time.Now().Add(time.Minute) // a guard: the daemon stops at once
	for _, err := os.Stat(pidFile); err == nil && time.Now().Before(deadline); _, err = os.Stat(pidFile) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, name := range []string{pidFileName, daemonapi.SocketFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after the daemon stopped: %v", name, err)
		}
	}
	if log, _ := os.ReadFile(filepath.Join(dir, logFileName)); !strings.Contains(string(log), "daemon stopped") {
		t.Errorf("daemon log after SIGTERM: %q", log)
	}
}

// TestDaemonOnDemandFails: when the daemon started on demand cannot open
// the profile (here: its store needs a passphrase, which a detached
// daemon cannot ask for), the command says why at once and goes on
// without a daemon.
func TestDaemonOnDemandFails(t *testing.T) {
	c := newCLI(t)
	inv, err := c.srv.NewInvite(1)
	if err != nil {
		t.Fatal(err)
	}
	reg := c.command("carol", "register", "--server", c.srv.URL, "--invite", inv, "--fingerprint", c.srv.Fingerprint, "carol")
	reg.Env = append(reg.Env, "PARLEY_PASSPHRASE=correct horse")
	if out, err := reg.CombinedOutput(); err != nil {
		t.Fatalf("register: %v\n%s", err, out)
	}
	dir := filepath.Join(c.config, "parley", "carol")
	cmd := c.command("carol", "whoami")
	cmd.Env = append(cmd.Env, "PARLEY_DAEMON=auto")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != exitProfile || !strings.Contains(stderr.String(), "PARLEY_DAEMON=auto: the daemon started for profile "+dir+" exited") ||
		!strings.Contains(stderr.String(), "passphrase") {
		t.Errorf("whoami with PARLEY_DAEMON=auto and a daemon that cannot start: %v, exit %d\n%s", err, code, stderr.String())
	}
	if log, err := os.ReadFile(filepath.Join(dir, logFileName)); err != nil || !strings.Contains(string(log), "passphrase") {
		t.Errorf("daemon log: %q, %v", log, err)
	}
	// With the passphrase, the same command starts the daemon.
	cmd = c.command("carol", "whoami")
	cmd.Env = append(cmd.Env, "PARLEY_DAEMON=auto", "PARLEY_PASSPHRASE=correct horse")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "carol@") {
		t.Fatalf("whoami with the passphrase: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, pidFileName))
	if err != nil {
		t.Fatalf("no daemon started with the passphrase: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}
