package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/profilegen"
)

// BenchmarkTUIRSS measures the resident memory of parley tui, the real
// binary in a real terminal (tmux, 120×40), on a profile of 1,000
// conversations and 100,000 history entries (internal/profilegen; 100
// conversations keep 10 unread entries, the store has the default
// Argon2id parameters). The profile's daemon is the real binary too,
// 'parley daemon', started before the ops: the profile has no server it
// can reach (profilegen's account is self-signed for parley.invalid), so
// the daemon keeps trying to connect in the background and answers from
// its store meanwhile. One op starts 'parley tui' in a new tmux session,
// waits until the screen shows the conversation list and reads VmRSS,
// VmHWM and RssAnon from /proc/PID/status (list-rss-MB, list-hwm-MB,
// list-anon-MB), then opens the most recent conversation (Enter), waits
// until its history shows and reads them again (conv-rss-MB,
// conv-hwm-MB, conv-anon-MB); the means over the ops. MB = 2^20 bytes.
// It also reports the mean time from the start of the tmux session to the
// first frame on its screen (frame-ms) and to the list (screen-ms): the
// start of the process and the first screen as a user sees them, give or
// take the 25 ms between two reads of the screen.
// Results are in docs/performance.md ("Terminal client"):
//
//	go test ./cmd/parley -run '^$' -bench TUIRSS -benchtime 3x
func BenchmarkTUIRSS(b *testing.B) {
	if testing.Short() {
		b.Skip("builds parley and runs it in tmux")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc/PID/status")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		b.Skip("tmux is not installed")
	}
	bin, err := buildBinary("github.com/parley-chat/parley/cmd/parley")
	if err != nil {
		b.Fatal(err)
	}
	const pass = "correct horse tui"
	dir := b.TempDir()
	p, err := profilegen.Fill(context.Background(), profilegen.Config{Dir: dir, Passphrase: []byte(pass), Seed: 1,
		Conversations: 1000, Entries: 100_000, UnreadConversations: 100, UnreadEntries: 10})
	if err != nil {
		b.Fatal(err)
	}
	// The most recent conversation is the last one added, a group
	// ("group 999"): the first row of the list.
	top := fmt.Sprintf("group %d", len(p.Conversations)-1)
	env := []string{"PARLEY_PASSPHRASE=" + pass}
	startRSSDaemon(b, bin, dir, env)

	var list, conv procMem
	var frame, screen time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		tm := newTmux(b, "tui"+strconv.Itoa(i), 120, 40, env, bin, "--dir", dir, "tui")
		tm.waitText("F1 help") // the status line of the first frame
		frame += time.Since(start)
		tm.waitScreen("the conversation list", func(s string) bool {
			return strings.Contains(s, top) && !strings.Contains(s, "loading…")
		})
		screen += time.Since(start)
		pid := tuiPID(b, tm) // once tmux has run it
		list.add(procMemory(b, pid))
		tm.keys("Enter")
		tm.waitScreen("the open conversation", func(s string) bool {
			return strings.Contains(s, " members") && !strings.Contains(s, "loading…")
		})
		conv.add(procMemory(b, pid))
		tm.keys("Tab", "q")
		deadline := time.Now().Add(time.Minute) // a guard against a hang
		for !tm.dead() && time.Now().Before(deadline) {
			time.Sleep(25 * time.Millisecond)
		}
		tm.tmux("kill-server")
	}
	n := float64(b.N)
	b.ReportMetric(float64(frame.Milliseconds())/n, "frame-ms")
	b.ReportMetric(float64(screen.Milliseconds())/n, "screen-ms")
	b.ReportMetric(list.rss/n, "list-rss-MB")
	b.ReportMetric(list.hwm/n, "list-hwm-MB")
	b.ReportMetric(list.anon/n, "list-anon-MB")
	b.ReportMetric(conv.rss/n, "conv-rss-MB")
	b.ReportMetric(conv.hwm/n, "conv-hwm-MB")
	b.ReportMetric(conv.anon/n, "conv-anon-MB")
}

func (m *procMem) add(o procMem) {
	m.rss += o.rss
	m.hwm += o.hwm
	m.anon += o.anon
}

// startRSSDaemon runs 'parley daemon' for the profile in dir until the
// benchmark ends; it returns once the daemon serves.
func startRSSDaemon(b *testing.B, bin, dir string, env []string) {
	b.Helper()
	cmd := exec.Command(bin, "--dir", dir, "daemon")
	cmd.Env = append(os.Environ(), env...)
	pr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stderr := &lockedBuffer{}
	serving, done := make(chan struct{}), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		closed := false
		for sc.Scan() {
			stderr.Write(append(sc.Bytes(), '\n'))
			if !closed && strings.Contains(sc.Text(), "daemon serving profile") {
				close(serving)
				closed = true
			}
		}
		cmd.Wait()
		close(done)
	}()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			<-done
		}
	})
	select {
	case <-serving:
	case <-done:
		b.Fatalf("parley daemon exited:\n%s", stderr.String())
	case <-time.After(time.Minute):
		b.Fatalf("parley daemon did not serve within a minute:\n%s", stderr.String())
	}
}

// tuiPID returns the process id of the program in tm's pane (tmux runs
// it directly, not through a shell), checking that it is parley.
func tuiPID(b *testing.B, tm *tmuxTerm) int {
	b.Helper()
	out, err := tm.tmux("display-message", "-p", "-t", tm.name, "#{pane_pid}")
	if err != nil {
		b.Fatalf("tmux display-message: %v: %s", err, out)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		b.Fatalf("pane pid %q: %v", out, err)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "parley" {
		b.Fatalf("pane process %d is %q (%v), not parley", pid, comm, err)
	}
	return pid
}
