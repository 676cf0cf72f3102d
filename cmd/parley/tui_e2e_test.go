//go:build linux

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestTUIEndToEnd runs two parley tui for two users in real terminals
// (tmux) against a real parleyd, and uses them as people do: they chat,
// reply, react and verify each other; a third user writes from the CLI
// while both run; then alice's daemon is killed with SIGKILL and her
// terminal client starts it again and shows what arrived meanwhile,
// once. PARLEY_SCREENSHOTS=DIR keeps the screens.
func TestTUIEndToEnd(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob", "carol")
	direct := convID(t, c.run("alice", "chat", "new", "bob"))
	team := convID(t, c.run("alice", "group", "create", "team", "--members", "bob,carol"))
	c.run("bob", "read")
	c.run("carol", "read")
	for _, u := range []string{"alice", "bob"} {
		dir := filepath.Join(c.config, "parley", u)
		t.Cleanup(func() { stopDaemon(dir) })
	}

	env := []string{"XDG_CONFIG_HOME=" + c.config, "PARLEY_PASSPHRASE=", "NO_COLOR=1", "TERM=xterm-256color"}
	a := newTmux(t, "alice", 100, 30, env, c.bin, "--profile", "alice", "tui")
	b := newTmux(t, "bob", 100, 30, env, c.bin, "--profile", "bob", "tui")
	a.waitText("team", "bob", "● connected")
	b.waitText("team", "alice", "● connected")

	// alice opens her chat with bob by filtering the list, and writes.
	openByFilter(a, "bob")
	a.typeText("hello bob, from a terminal")
	a.keys("Enter")
	a.waitText("alice sent", "hello bob, from a terminal")
	b.waitText("alice: hello bob") // the list's preview (cut to its width)
	openByFilter(b, "alice")
	b.waitText("hello bob, from a terminal", "· you joined")

	// bob replies to it: select it (↑ on an empty message), r, text.
	b.keys("Up")
	b.waitText("r reply")
	b.keys("r")
	b.waitText("replying to alice")
	b.typeText("a reply from bob")
	b.keys("Enter")
	a.waitText("┃ alice: hello bob, from a terminal", "a reply from bob")

	// alice reacts to the reply with the first of the quick reactions.
	a.keys("Up")
	a.waitText("+ react")
	a.keys("+")
	a.waitText("React:")
	a.keys("1")
	b.waitText("👍 1")
	a.keys("Enter") // ends the selection
	a.waitScreen("the selection ended", func(s string) bool { return !strings.Contains(s, "+ react") })
	a.saveScreen("tui-alice-chat")
	b.saveScreen("tui-bob-chat")

	// alice compares safety numbers with bob: the screen shows the same
	// digits as parley verify (which goes through her daemon), and m
	// marks bob verified.
	digits := safetyDigits(t, c.run("alice", "verify", "bob"))
	a.typeText("/verify bob")
	a.keys("Enter")
	a.waitText(append([]string{"Safety number with bob"}, digits...)...)
	a.saveScreen("tui-alice-verify")
	a.keys("m")
	a.waitText("✓ verified", "bob marked verified")
	a.keys("q") // closes the safety number
	a.waitScreen("the safety number closed and bob verified", func(s string) bool {
		return !strings.Contains(s, "Safety number with bob") && !strings.Contains(s, "unverified: bob")
	})

	// carol writes from the CLI while both terminal clients run.
	c.run("carol", "send", team, "carol, from the command line")
	a.waitText("carol: carol, from")
	b.waitText("carol: carol, from")

	// alice's daemon dies; bob writes meanwhile. Her terminal client
	// starts the daemon again and shows the message once, and so does
	// her history.
	aliceDir := filepath.Join(c.config, "parley", "alice")
	pid := daemonPID(t, aliceDir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.typeText("written while alice's daemon was down")
	b.keys("Enter")
	b.waitText("bob sent", "written while alice's daemon was down")
	a.waitText("parley daemon is back", "written while alice's daemon was down")
	if newPID := daemonPID(t, aliceDir); newPID == pid {
		t.Fatalf("alice's daemon %d still answers after SIGKILL", pid)
	}
	a.saveScreen("tui-alice-after-kill")
	screen := a.screen()
	for _, text := range []string{"hello bob, from a terminal", "a reply from bob", "written while alice's daemon was down"} {
		n := 0
		for _, line := range strings.Split(screen, "\n") {
			if strings.Contains(line, text) && !strings.Contains(line, "┃") { // not the reply's quote
				n++
			}
		}
		if n != 1 {
			t.Errorf("alice's screen shows %q %d times:\n%s", text, n, screen)
		}
	}
	h := c.read("alice", direct)
	var texts []string
	for _, m := range h.messages() {
		texts = append(texts, m.Text)
	}
	want := []string{"hello bob, from a terminal", "a reply from bob", "written while alice's daemon was down"}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Errorf("alice's history = %q, want %q", texts, want)
	}

	// Both quit; the terminal comes back from the alternate screen.
	for _, tm := range []*tmuxTerm{a, b} {
		tm.keys("C-c")
		tm.waitExit() // its exit status is checked by TestTUIInTerminal
	}
}

// openByFilter opens the conversation whose title matches text, with the
// list's filter; the list has the focus.
func openByFilter(tm *tmuxTerm, text string) {
	tm.t.Helper()
	tm.keys("C-f")
	tm.waitText("Filter:")
	tm.typeText(text)
	tm.waitText("Filter: " + text)
	tm.keys("Enter")
	tm.waitText("Enter send")
}

// convID is the conversation number of "opened/created conversation N: …".
func convID(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`conversation (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no conversation number in %q", out)
	}
	return m[1]
}

// safetyDigits are the 12 groups of parley verify's output.
func safetyDigits(t *testing.T, out string) []string {
	t.Helper()
	groups := regexp.MustCompile(`\b\d{5}\b`).FindAllString(out, -1)
	if len(groups) < 12 {
		t.Fatalf("no safety number in %q", out)
	}
	return groups[:12]
}

// stopDaemon ends the daemons that parley tui started for a profile: the
// one in its pid file, and any other whose command line names the
// profile (one that a TUI was still starting when the test ended).
func stopDaemon(dir string) {
	if b, err := os.ReadFile(filepath.Join(dir, pidFileName)); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) > 0 && args[len(args)-1] == "daemon" && slices.Contains(args, dir) {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}
