package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tmuxTerm is a real terminal: one tmux session on a private server
// (its own socket), running a command at a fixed size, driven with
// send-keys and read with capture-pane, as a person at a terminal would.
type tmuxTerm struct {
	t      testing.TB
	socket string
	name   string
}

// newTmux starts cmd (with env added to this process's) in a detached
// tmux session of width×height. Without tmux the test skips, and fails
// under CI=true (scripts/test installs tmux there).
func newTmux(t testing.TB, name string, width, height int, env []string, cmd ...string) *tmuxTerm {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is not installed (scripts/test installs it under CI=true)")
		}
		t.Skip("tmux is not installed")
	}
	dir, err := os.MkdirTemp("", "ptmux")
	if err != nil {
		t.Fatal(err)
	}
	tm := &tmuxTerm{t: t, socket: filepath.Join(dir, "s"), name: name}
	args := []string{"new-session", "-d", "-s", name, "-x", fmt.Sprint(width), "-y", fmt.Sprint(height)}
	for _, kv := range env {
		args = append(args, "-e", kv)
	}
	args = append(args, "--")
	args = append(args, cmd...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screen of %s at the end:\n%s", name, tm.screen())
		}
		tm.tmux("kill-server")
		os.RemoveAll(dir)
	})
	if out, err := tm.tmux(args...); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	// The pane stays after its command exits, so that a test can read
	// what the program left on the screen.
	tm.tmux("set-option", "-t", name, "remain-on-exit", "on")
	return tm
}

// tmux runs a tmux command on this terminal's server.
func (tm *tmuxTerm) tmux(args ...string) (string, error) {
	cmd := exec.Command("tmux", append([]string{"-S", tm.socket}, args...)...)
	cmd.Env = append(os.Environ(), "TMUX=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// keys sends tmux key names (such as "Enter", "C-c", "Up") or literal
// text with lit.
func (tm *tmuxTerm) keys(keys ...string) {
	tm.t.Helper()
	if out, err := tm.tmux(append([]string{"send-keys", "-t", tm.name}, keys...)...); err != nil {
		tm.t.Fatalf("tmux send-keys %q: %v\n%s", keys, err, out)
	}
}

// typeText types text literally (no key names).
func (tm *tmuxTerm) typeText(text string) {
	tm.t.Helper()
	if out, err := tm.tmux("send-keys", "-t", tm.name, "-l", text); err != nil {
		tm.t.Fatalf("tmux send-keys -l %q: %v\n%s", text, err, out)
	}
}

// screen returns what the terminal shows now, one line per row.
func (tm *tmuxTerm) screen() string {
	out, err := tm.tmux("capture-pane", "-p", "-t", tm.name)
	if err != nil {
		return fmt.Sprintf("(capture-pane: %v: %s)", err, out)
	}
	return out
}

// saveScreen writes the screen to dir/name.txt for a reviewer, when
// PARLEY_SCREENSHOTS names a directory.
func (tm *tmuxTerm) saveScreen(name string) {
	dir := os.Getenv("PARLEY_SCREENSHOTS")
	if dir == "" {
		return
	}
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, name+".txt"), []byte(tm.screen()), 0o644)
}

// dead reports whether the pane's command exited.
func (tm *tmuxTerm) dead() bool {
	out, err := tm.tmux("display-message", "-p", "-t", tm.name, "#{pane_dead}")
	return err != nil || strings.TrimSpace(out) == "1"
}

// waitScreen waits until the screen satisfies ok, reading it again each
// time tmux has had a moment to draw; it fails the test after a minute
// (a guard against a hang, not a timing assertion) or when the program
// exits without showing it.
func (tm *tmuxTerm) waitScreen(what string, ok func(string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		s := tm.screen()
		if ok(s) {
			return s
		}
		if tm.dead() {
			tm.t.Fatalf("%s: the program exited before the screen showed %s:\n%s", tm.name, what, s)
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("%s: the screen did not show %s within a minute:\n%s", tm.name, what, s)
		}
		time.Sleep(25 * time.Millisecond) // the poll interval of a screen reader
	}
}

// waitExit waits until the program exited.
func (tm *tmuxTerm) waitExit() {
	tm.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !tm.dead() {
		if time.Now().After(deadline) {
			tm.t.Fatalf("%s: the program did not exit within a minute:\n%s", tm.name, tm.screen())
		}
		time.Sleep(25 * time.Millisecond) // the poll interval of a screen reader
	}
}

// waitText waits until the screen contains every one of texts.
func (tm *tmuxTerm) waitText(texts ...string) string {
	tm.t.Helper()
	return tm.waitScreen(fmt.Sprintf("%q", texts), func(s string) bool {
		for _, x := range texts {
			if !strings.Contains(s, x) {
				return false
			}
		}
		return true
	})
}
