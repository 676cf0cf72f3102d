package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/internal/browsertest"
)

// BenchmarkWebClient measures what a person waits for in the browser,
// on a real parleyd on loopback:
//
//   - first-load: a browser that never saw the server opens it, until the
//     registration form is usable (the page's "parley-usable" mark);
//   - reload: a registered profile reloads, until its conversation list is
//     usable;
//   - receive-100-open: a registered profile that was away while 100
//     messages came comes back, until the last of them is shown in the
//     open conversation; per-msg-ms is (that time − reload)/100, the cost
//     of fetching, decrypting, storing and showing one message;
//   - receive-100-list: the same with the conversation list shown, until
//     it counts the 100 messages unread: the cost without rendering them;
//   - receive-one: messages come one at a time to a page showing their
//     conversation; for each, the time the page's main thread was busy
//     from its sending until it is shown (Chromium's TaskDuration: the
//     WebSocket frame, decryption, the store, the event, rendering, and
//     whatever else the page did meanwhile, such as a read receipt):
//     median-ms, mean-ms and p90-ms over the messages; the same as the
//     main thread's CPU time (cpu-median-ms, cpu-mean-ms: time the thread
//     waited for a core on a busy machine left out), and as the CPU time
//     of the page's whole renderer process, raster and compositing
//     threads included (process-cpu-median-ms, process-cpu-mean-ms).
//
// Run it with: go test -run '^$' -bench WebClient -benchtime 5x ./server/webclient/e2e
func BenchmarkWebClient(b *testing.B) {
	parleyd, cliBin := build(b)
	srv := startServer(b, parleyd)
	carol, link := newAdmin(b, cliBin, srv, 100)

	b.Run("first-load", func(b *testing.B) {
		var total time.Duration
		for range b.N {
			u := newWebUser(b, "first", srv.url)
			u.p.Open(srv.url + "/")
			total += usable(u.p)
			u.stop()
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/load")
	})

	alice := newWebUser(b, "alice", srv.url)
	alice.register(link)
	carol.run("group", "create", "team", "--members", "alice")
	carol.run("send", "team", "hello")
	alice.open("team")
	alice.waitMessage("hello")

	var reload time.Duration
	b.Run("reload", func(b *testing.B) {
		var total time.Duration
		for range b.N {
			alice.p.Run(chromedp.Reload())
			total += usable(alice.p)
			alice.waitConnected()
		}
		reload = total / time.Duration(b.N)
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/reload")
	})

	dc := startDaemon(b, cliBin, carol.dir)
	ctx := context.Background()
	convs, err := dc.Conversations(ctx)
	if err != nil || len(convs) != 1 {
		b.Fatalf("carol's conversations: %v, %v", convs, err)
	}
	conv := convs[0].ID
	if err := dc.Subscribe(ctx); err != nil {
		b.Fatal(err)
	}
	// readBy waits until carol's daemon hears that alice read text: her
	// page sent its read receipt before it is closed, so the next round
	// counts its messages from zero.
	readBy := func(b *testing.B, text string) {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		for {
			ev, err := dc.NextEvent(ctx)
			if err != nil {
				b.Fatalf("alice's read receipt of %q: %v", text, err)
			}
			if ev.Event == "read" && ev.User == "alice" && ev.Message != nil && ev.Message.Text == text {
				return
			}
		}
	}
	// receive sends n messages while alice is away and returns how long
	// her page takes, from the start of its load, to show the last one:
	// in the open conversation (open), or as the list's unread count.
	round := 0
	receive := func(b *testing.B, n int, open bool) time.Duration {
		round++
		alice.stop()
		for j := range n {
			if _, err := dc.Send(ctx, conv, fmt.Sprintf("burst %d message %d", round, j), client.SendOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		alice.start()
		if open {
			alice.p.Open(fmt.Sprintf("%s/#c=%d", srv.url, conv))
			alice.p.Until(browsertest.HasText(sel("message-text"), fmt.Sprintf("burst %d message %d", round, n-1)))
		} else {
			alice.p.Open(srv.url + "/")
			alice.p.Until(fmt.Sprintf(`document.querySelector('%s[data-conversation="%d"] %s')?.textContent === "%d"`, sel("conv-item"), conv, sel("unread-badge"), n))
		}
		d := time.Duration(browsertest.Eval[float64](alice.p, "performance.now()") * float64(time.Millisecond))
		if !open { // read them, so that the next round counts from zero
			alice.open("team")
			readBy(b, fmt.Sprintf("burst %d message %d", round, n-1))
		}
		return d
	}
	for _, open := range []bool{false, true} {
		name := "receive-100-list"
		if open {
			name = "receive-100-open"
		}
		b.Run(name, func(b *testing.B) {
			const n = 100
			var total time.Duration
			for range b.N {
				total += receive(b, n, open)
			}
			per := total/time.Duration(b.N) - reload
			b.ReportMetric(float64((total / time.Duration(b.N)).Milliseconds()), "ms/catch-up")
			b.ReportMetric(float64(per.Microseconds())/1000/n, "per-msg-ms")
		})
	}
	b.Run("receive-one", func(b *testing.B) {
		alice.stop()
		alice.start()
		alice.p.Open(fmt.Sprintf("%s/#c=%d", srv.url, conv))
		alice.waitConnected()
		ctx := alice.p.Context()
		if _, err := chromedp.Call(ctx, performance.Enable, performance.EnableParams{}); err != nil {
			b.Fatal(err)
		}
		// metrics reads Chromium's counters of the page: TaskDuration (the
		// main thread's busy time), ThreadTime (its CPU time) and
		// ProcessTime (the CPU time of the page's renderer process, all
		// its threads: raster and compositing included), in seconds.
		metrics := func() [3]float64 {
			res, err := chromedp.Call(ctx, performance.GetMetrics, cdp.Empty{})
			if err != nil {
				b.Fatal(err)
			}
			var v [3]float64
			var seen int
			for _, m := range res.Metrics {
				if i := slices.Index([]string{"TaskDuration", "ThreadTime", "ProcessTime"}, m.Name); i >= 0 {
					v[i] = m.Value
					seen++
				}
			}
			if seen != len(v) {
				b.Fatalf("performance metrics: %d of TaskDuration, ThreadTime, ProcessTime", seen)
			}
			return v
		}
		var costs [3][]float64
		threads0 := threadCPU(alice.dir)
		for i := range b.N {
			text := fmt.Sprintf("one by one %d", i)
			before := metrics()
			if _, err := dc.Send(ctx, conv, text, client.SendOptions{}); err != nil {
				b.Fatal(err)
			}
			alice.p.UntilMutation(browsertest.LastHasText(sel("message-text"), text))
			after := metrics()
			for j := range costs {
				costs[j] = append(costs[j], (after[j]-before[j])*1000)
			}
		}
		// The CPU of every thread of alice's Chromium, per message,
		// from /proc: the page's thread (CrRendererMain), the worker
		// that decrypts and stores (DedicatedWorker), the compositor
		// and raster threads, the browser process's (IndexedDB,
		// network). Counted in 10 ms ticks, so only a mean over many
		// messages says something.
		var all float64
		var table strings.Builder
		for _, c := range cpuPer(threads0, threadCPU(alice.dir), b.N) {
			all += c.ms
			switch c.thread {
			case "renderer/chromium": // the main thread has the process's name
				b.ReportMetric(c.ms, "page-thread-ms")
			case "renderer/DedicatedWorker":
				b.ReportMetric(c.ms, "worker-thread-ms")
			}
			fmt.Fprintf(&table, "\n%-32s %6.2f", c.thread, c.ms)
		}
		b.Logf("CPU per message over %d messages, by thread (ms):%s\n%-32s %6.2f", b.N, table.String(), "all of Chromium", all)
		for j, c := range costs {
			slices.Sort(c)
			var sum float64
			for _, x := range c {
				sum += x
			}
			unit := [3]string{"", "cpu-", "process-cpu-"}[j]
			b.ReportMetric(c[len(c)/2], unit+"median-ms")
			b.ReportMetric(sum/float64(len(c)), unit+"mean-ms")
			if j == 0 {
				b.ReportMetric(c[len(c)*9/10], "p90-ms")
			}
		}
	})
	alice.checkOrigins()
}

// usable waits for the page's "parley-usable" mark and returns its time
// since the navigation started.
func usable(p *browsertest.Page) time.Duration {
	p.Until(`performance.getEntriesByName("parley-usable").length > 0`)
	ms := browsertest.Eval[float64](p, `performance.getEntriesByName("parley-usable")[0].startTime`)
	return time.Duration(ms * float64(time.Millisecond))
}

// startDaemon runs parley daemon on a profile until the benchmark ends
// and returns a client of its API.
func startDaemon(tb testing.TB, bin, dir string) *daemonapi.Client {
	tb.Helper()
	cmd := exec.Command(bin, "--dir", dir, "daemon")
	cmd.Env = append(os.Environ(), "PARLEY_PASSPHRASE=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start parley daemon: %v", err)
	}
	tb.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	// The daemon says on stderr when its socket accepts connections.
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "daemon serving profile") {
			go func() {
				for sc.Scan() {
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dc, err := daemonapi.Dial(ctx, dir)
			if err != nil {
				tb.Fatalf("dial the daemon: %v", err)
			}
			tb.Cleanup(func() { dc.Close() })
			return dc
		}
	}
	tb.Fatalf("parley daemon exited before serving: %v", cmd.Wait())
	return nil
}
