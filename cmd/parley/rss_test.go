package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/daemonapi"
)

// daemonIdle is how long BenchmarkDaemonIdleRSS lets the daemon idle
// before it reads its memory: long enough for the garbage collector's
// background scavenger to return what opening the profile freed.
const daemonIdle = 5 * time.Second

// BenchmarkDaemonIdleRSS measures the resident memory of an idle parley
// daemon, the real binary: parleyd and parley are built and run as
// processes, alice is registered with three conversations (two 1:1, one
// group of four) holding a few messages, and one op starts 'parley
// daemon' for her profile, waits until it is connected (whoami answers on
// the socket, and a message bob sends arrives as an event of the
// subscription), lets it idle for daemonIdle and reads VmRSS, VmHWM and
// RssAnon from /proc/PID/status (rss-MB, hwm-MB, anon-MB; the mean over
// the ops). The
// profile's store is protected by a key file ("keyfile") or by a
// passphrase with the default Argon2id parameters ("passphrase").
// Results are in docs/performance.md ("Client daemon"):
//
//	go test ./cmd/parley -run '^$' -bench DaemonIdleRSS -benchtime 3x
func BenchmarkDaemonIdleRSS(b *testing.B) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc/PID/status")
	}
	b.Run("keyfile", func(b *testing.B) { benchDaemonIdleRSS(b, "") })
	b.Run("passphrase", func(b *testing.B) { benchDaemonIdleRSS(b, "correct horse battery staple") })
}

func benchDaemonIdleRSS(b *testing.B, passphrase string) {
	c := newCLI(b)
	if passphrase != "" {
		c.env = []string{"PARLEY_PASSPHRASE=" + passphrase}
	}
	c.register("alice", "bob", "carol", "dave")
	c.run("alice", "chat", "new", "bob")
	c.run("alice", "chat", "new", "carol")
	c.run("alice", "group", "create", "team", "--members", "bob,carol,dave")
	for _, u := range []string{"bob", "carol", "dave"} {
		c.run(u, "read") // join
	}
	for i := range 3 {
		c.run("alice", "send", "bob", fmt.Sprintf("hello bob %d", i))
		c.run("alice", "send", "carol", fmt.Sprintf("hello carol %d", i))
		c.run("alice", "send", "team", fmt.Sprintf("hello team %d", i))
		c.run("bob", "send", "alice", fmt.Sprintf("hello alice %d", i))
	}
	dir := filepath.Join(c.config, "parley", "alice")

	var sum procMem
	for b.Loop() {
		m := idleDaemonMemory(b, c, dir)
		sum.rss += m.rss
		sum.hwm += m.hwm
		sum.anon += m.anon
	}
	n := float64(b.N)
	b.ReportMetric(sum.rss/n, "rss-MB")
	b.ReportMetric(sum.hwm/n, "hwm-MB")
	b.ReportMetric(sum.anon/n, "anon-MB")
}

// procMem is the memory of a process in MB (2^20 bytes): VmRSS, VmHWM
// (the peak of VmRSS) and RssAnon (the part of VmRSS that is not backed
// by files, such as the executable).
type procMem struct{ rss, hwm, anon float64 }

// idleDaemonMemory starts alice's daemon, waits until it is connected,
// lets it idle and returns its memory; it stops the daemon.
func idleDaemonMemory(b *testing.B, c *cli, dir string) procMem {
	b.Helper()
	d := c.startDaemon("alice")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a failure guard
	defer cancel()
	dc, err := daemonapi.Dial(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer dc.Close()
	if acct, err := dc.Whoami(); err != nil || acct.User != "alice" {
		b.Fatalf("whoami = %+v, %v", acct, err)
	}
	if err := dc.Subscribe(ctx); err != nil {
		b.Fatal(err)
	}
	ping := "ping " + strconv.FormatInt(time.Now().UnixNano(), 10)
	c.run("bob", "send", "alice", ping)
	for {
		ev, err := dc.NextEvent(ctx)
		if err != nil {
			b.Fatalf("waiting for bob's message at alice's daemon: %v\n%s", err, d.stderr.String())
		}
		if ev.Event == "message" && ev.Message != nil && ev.Message.Text == ping {
			break
		}
	}
	time.Sleep(daemonIdle) // idle, then measure: not a synchronisation
	m := procMemory(b, d.cmd.Process.Pid)
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(time.Minute):
		b.Fatalf("parley daemon did not stop within a minute\n%s", d.stderr.String())
	}
	return m
}

// procMemory reads the memory of process pid from /proc/PID/status.
func procMemory(b *testing.B, pid int) procMem {
	b.Helper()
	path := fmt.Sprintf("/proc/%d/status", pid)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var m procMem
	fields := map[string]*float64{"VmRSS": &m.rss, "VmHWM": &m.hwm, "RssAnon": &m.anon}
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		field := fields[name]
		if !ok || field == nil {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 64)
		if err != nil {
			b.Fatalf("%s: %s: %q: %v", path, name, value, err)
		}
		*field = kb / 1024
		found++
	}
	if err := sc.Err(); err != nil || found != len(fields) {
		b.Fatalf("%s: VmRSS, VmHWM or RssAnon not found (%v)", path, err)
	}
	return m
}
