//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/parley-chat/parley/client/daemonapi"
)

// TestTUIStartsDaemon runs parley tui on a profile without a daemon: it
// starts one, detached, which serves the profile and keeps running after
// tui ends on SIGTERM.
func TestTUIStartsDaemon(t *testing.T) {
	c := newCLI(t)
	c.register("alice")
	dir := filepath.Join(c.config, "parley", "alice")
	cmd := c.command("alice", "tui")
	cmd.Env = append(cmd.Env, "NO_COLOR=1", "TERM=dumb")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	started := make(chan struct{})
	var lines []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "started a daemon for profile") {
				close(started)
			}
		}
		exited <- cmd.Wait()
	}()
	select {
	case <-started:
	case err := <-exited:
		t.Fatalf("parley tui exited without starting a daemon: %v\n%s", err, strings.Join(lines, "\n"))
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("parley tui did not start a daemon within a minute")
	}
	pid := daemonPID(t, dir)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
	if pid == cmd.Process.Pid {
		t.Fatal("the daemon is the tui process itself")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		t.Logf("parley tui: %v\n%s", err, strings.Join(lines, "\n"))
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("parley tui did not exit on SIGTERM")
	}
	dc, err := daemonapi.Dial(t.Context(), dir)
	if err != nil {
		t.Fatalf("the daemon stopped with tui: %v", err)
	}
	defer dc.Close()
	a, err := dc.Whoami()
	if err != nil || a.User != "alice" {
		t.Fatalf("whoami through the started daemon: %v, %v", a, err)
	}
}

// daemonPID returns the process id of the daemon serving the profile in
// dir, from the socket's peer credentials.
func daemonPID(t *testing.T, dir string) int {
	t.Helper()
	conn, err := net.Dial("unix", filepath.Join(dir, daemonapi.SocketFile))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Ucred
	var credErr error
	raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if credErr != nil {
		t.Fatal(credErr)
	}
	return int(cred.Pid)
}

// TestTUIInTerminal runs parley tui on a terminal (script(1) gives it
// one) with NO_COLOR set: it shows the message that arrived through the
// daemon, without colours, and ends on q or on SIGTERM, leaving the
// alternate screen.
func TestTUIInTerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) to give parley tui a terminal")
	}
	c := newCLI(t)
	c.register("alice", "bob")
	c.run("bob", "chat", "new", "alice")
	c.run("bob", "send", "alice", "hello alice")
	c.startDaemon("alice")
	for _, end := range []string{"q", "SIGTERM"} {
		t.Run(end, func(t *testing.T) {
			got := runInTerminal(t, c, script, end)
			plain := ansi.Strip(got)
			for _, want := range []string{"Conversations", "bob: hello alice", "F1 help"} {
				if !strings.Contains(plain, want) {
					t.Errorf("screen lacks %q:\n%s", want, plain)
				}
			}
			if !strings.Contains(got, "\x1b[?1049l") {
				t.Errorf("parley tui did not leave the alternate screen: %q", got)
			}
			for _, colour := range []string{"[38;", "[48;", ";38;", ";48;", "[31m", "[39m"} {
				if strings.Contains(got, colour) {
					t.Errorf("NO_COLOR set, but the output has the colour escape %q", colour)
				}
			}
		})
	}
}

// runInTerminal runs parley tui for alice on an 80×24 terminal until it
// shows bob's message, then ends it with end ("q" or "SIGTERM"), and
// returns what it wrote.
func runInTerminal(t *testing.T, c *cli, script, end string) string {
	shell := "stty cols 80 rows 24; exec " + c.bin + " --profile alice tui"
	cmd := exec.Command(script, "-qfec", shell, "/dev/null")
	cmd.Env = append(c.command("alice").Env, "NO_COLOR=1", "TERM=xterm-256color")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	screen := make(chan string, 1)
	var all lockedBuffer
	go func() {
		buf := make([]byte, 4096)
		drawn := false
		for {
			n, err := out.Read(buf)
			all.Write(buf[:n])
			if !drawn && strings.Contains(ansi.Strip(all.String()), "hello alice") {
				drawn = true
				endTUI(t, cmd.Process.Pid, in, end)
			}
			if err != nil {
				screen <- all.String()
				return
			}
		}
	}()
	var got string
	select {
	case got = <-screen:
	case <-time.After(time.Minute):
		t.Fatalf("parley tui did not show the message and end within a minute:\n%q", all.String())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("parley tui: %v\n%q", err, got)
	}
	return got
}

// endTUI types q, or sends SIGTERM to parley, the child of script(1).
func endTUI(t *testing.T, scriptPID int, in io.Writer, end string) {
	if end == "q" {
		in.Write([]byte("q"))
		return
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", scriptPID, scriptPID))
	if err != nil || len(strings.Fields(string(b))) != 1 {
		t.Errorf("no child of script(1): %q, %v", b, err)
		in.Write([]byte("q"))
		return
	}
	pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
	syscall.Kill(pid, syscall.SIGTERM)
}
