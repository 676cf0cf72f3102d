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

	"github.com/chromedp/chromedp"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/internal/browsertest"
	"github.com/parley-chat/parley/protocol"
)

// BenchmarkWebClient measures what a person waits for in the browser,
// on a real parleyd on loopback:
//
//   - first-load: a browser that never saw the server opens it, until the
//     registration form is usable (the page's "parley-usable" mark);
//   - reload: a registered profile reloads, until its conversation list is
//     usable;
//   - receive-100-open: a registered profile that was away while 100
//     messages came comes back in a browser started again, until the last
//     of them is shown in the open conversation; ms/start is the same
//     for one message (the browser's start, the program's compilation,
//     the store's opening, the connection), and per-msg-ms is (the time
//     for 100 − the time for one)/99, the cost of fetching, decrypting,
//     storing and showing one message more;
//   - receive-100-list: the same with the conversation list shown, until
//     it counts the 100 messages unread: the cost without rendering them;
//   - receive-one-fresh: messages come one at a time to a page that just
//     opened their conversation; receive-one: the same once 150 messages
//     went through, when the page has settled (V8 compiles the program's
//     hot functions in the background during the first seconds). Their
//     figures, per message, are oneByOne's;
//   - receive-spaced: messages that come on their own, each with what
//     it causes until the sender hears of its read receipt: the CPU of
//     the page's thread, the worker's, their sum and all of Chromium
//     (medians per message);
//   - send-one: alice sends a message from the composer (the harness
//     sets its text and presses Enter), until carol has it and alice's
//     page shows it sent; the same figures, the harness's input
//     included.
//
// PARLEY_WEB_TRACE=file records a Chromium trace of the messages
// measured one by one (browsertest.Page.StartTrace).
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

	b.Run("reload", func(b *testing.B) {
		var total time.Duration
		for range b.N {
			alice.p.Run(chromedp.Reload())
			total += usable(alice.p)
			alice.waitConnected()
		}
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
	// readBy waits until carol's daemon hears that alice read text.
	readBy := func(b *testing.B, text string) { waitReadBy(b, dc, "alice", text) }
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
			// Her page sent its read receipt before it is closed.
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
			var start, total time.Duration
			for range b.N {
				start += receive(b, 1, open)
				total += receive(b, n, open)
			}
			start, total = start/time.Duration(b.N), total/time.Duration(b.N)
			b.ReportMetric(float64(total.Milliseconds()), "ms/catch-up")
			b.ReportMetric(float64(start.Milliseconds()), "ms/start")
			b.ReportMetric(float64((total-start).Microseconds())/1000/(n-1), "per-msg-ms")
		})
	}
	// receive-one-fresh measures the messages that come right after the
	// page opened, while V8 still compiles the program's hot functions
	// in the background; receive-one those that come once warmUp
	// messages went through, as in a tab that stays open.
	const warmUp = 150
	b.Run("receive-one-fresh", func(b *testing.B) {
		alice.stop()
		alice.start()
		alice.p.Open(fmt.Sprintf("%s/#c=%d", srv.url, conv))
		alice.waitConnected()
		oneByOne(b, alice, dc, conv, 0)
	})
	b.Run("receive-one", func(b *testing.B) {
		alice.stop()
		alice.start()
		alice.p.Open(fmt.Sprintf("%s/#c=%d", srv.url, conv))
		alice.waitConnected()
		oneByOne(b, alice, dc, conv, warmUp)
	})
	// receive-spaced: what a message costs in all when messages come
	// apart, as in most conversations: besides showing it, the page sends
	// its read receipt (READ_AFTER), which carol has heard of when the
	// round ends.
	b.Run("receive-spaced", func(b *testing.B) {
		alice.inFront()
		cpuPerRound(b, findThreads(alice.dir), func(i int) {
			text := fmt.Sprintf("spaced %d", i)
			if _, err := dc.Send(ctx, conv, text, client.SendOptions{}); err != nil {
				b.Fatal(err)
			}
			alice.p.UntilMutation(lastMessageIs(text))
			readBy(b, text)
		})
	})
	// send-one: alice sends a message from the composer, until carol's
	// daemon has it and alice's page shows it sent.
	b.Run("send-one", func(b *testing.B) {
		cpuPerRound(b, findThreads(alice.dir), func(i int) {
			text := fmt.Sprintf("from alice %d", i)
			alice.p.Set(sel("composer-input"), text)
			alice.p.Enter(sel("composer-input"))
			waitDaemonEvent(b, dc, fmt.Sprintf("carol's message %q", text), func(ev *daemonapi.Event) bool {
				return ev.Event == "message" && ev.Message != nil && ev.Message.Sender == "alice" && ev.Message.Text == text
			})
			alice.p.UntilMutation(lastMessageSent(text))
		})
	})
	alice.checkOrigins()
}

// cpuPerRound runs round b.N times and reports the median CPU time per
// round of alice's page's thread, her worker's, their sum and all of her
// Chromium (th: her browser's threads); it returns the sums per round.
func cpuPerRound(b *testing.B, th threads, round func(i int)) (sumMs []float64) {
	var pageMs, workerMs, allMs []float64
	for i := range b.N {
		c0 := th.cpu()
		round(i)
		c1 := th.cpu()
		page, worker := c1[pageThread]-c0[pageThread], c1[workerThread]-c0[workerThread]
		pageMs = append(pageMs, page)
		workerMs = append(workerMs, worker)
		sumMs = append(sumMs, page+worker)
		allMs = append(allMs, total(c1)-total(c0))
	}
	b.ReportMetric(median(pageMs), "page-cpu-median-ms")
	b.ReportMetric(median(workerMs), "worker-cpu-median-ms")
	b.ReportMetric(median(sumMs), "parley-cpu-median-ms")
	b.ReportMetric(median(allMs), "chromium-cpu-median-ms")
	return sumMs
}

// oneByOne sends b.N messages to conv one at a time, each once alice's
// page shows the one before, after warm such messages, and reports per
// message:
//
//   - median-ms, mean-ms, p90-ms: the time the page's main thread was
//     busy from the sending until the message is shown (Chromium's
//     TaskDuration: the event from the worker, rendering, and whatever
//     else the page did meanwhile, such as a read receipt);
//   - page-cpu-median-ms, worker-cpu-median-ms: the CPU time of the
//     page's main thread (rendering; the harness's own calls to the page
//     included) and of the worker's thread (receiving, decrypting,
//     verifying and storing the message, and handing it to the page),
//     from the kernel's count in nanoseconds (/proc/…/schedstat);
//   - parley-cpu-median-ms, parley-cpu-p90-ms: the median and 90th
//     percentile of their sum: decrypt + store + render, one message;
//   - harness-page-cpu-ms: the median CPU time of the page's main thread
//     in the same reads and wait without a message: the harness's share
//     of page-cpu-median-ms;
//   - chromium-cpu-median-ms: the CPU time of all of the browser's
//     threads, compositing, raster, IndexedDB and network included.
//
// It logs the mean CPU time per message of every thread.
func oneByOne(b *testing.B, alice *webUser, dc *daemonapi.Client, conv protocol.ConversationID, warm int) {
	ctx := alice.p.Context()
	send := func(text string) {
		if _, err := dc.Send(ctx, conv, text, client.SendOptions{}); err != nil {
			b.Fatal(err)
		}
		alice.p.UntilMutation(lastMessageIs(text))
	}
	for i := range warm {
		send(fmt.Sprintf("warm-up %d", i))
	}
	busy := alice.p.BusyMeter()
	th := findThreads(alice.dir)
	if len(th[pageThread]) == 0 || len(th[workerThread]) == 0 {
		b.Fatalf("alice's Chromium: no %s or %s thread in /proc", pageThread, workerThread)
	}
	// The harness's own cost on the page's thread: the same reads and
	// wait around no message, the wait met at once by the message the
	// history ends with (a page just opened may still be loading it).
	var idleMs []float64
	lastText := fmt.Sprintf(`document.querySelector(%q)?.textContent`, sel("history")+" > :last-child "+sel("message-text"))
	alice.p.Until(lastText + ` !== undefined`)
	shown := lastMessageIs(browsertest.Eval[string](alice.p, lastText))
	for range 30 {
		c0 := th.cpu()
		busy()
		alice.p.UntilMutation(shown)
		busy()
		idleMs = append(idleMs, th.cpu()[pageThread]-c0[pageThread])
	}
	var busyMs []float64
	stopTrace := alice.p.StartTrace(b)
	first := th.cpu()
	sumMs := cpuPerRound(b, th, func(i int) {
		b0 := busy()
		send(fmt.Sprintf("one by one %d", i))
		busyMs = append(busyMs, busy()-b0)
	})
	stopTrace()
	var table strings.Builder
	var all float64
	for _, c := range cpuPer(first, th.cpu(), b.N) {
		all += c.ms
		fmt.Fprintf(&table, "\n%-32s %6.2f", c.thread, c.ms)
	}
	b.Logf("CPU per message over %d messages after %d, by thread (ms, mean):%s\n%-32s %6.2f", b.N, warm, table.String(), "all of Chromium", all)
	b.ReportMetric(median(busyMs), "median-ms")
	b.ReportMetric(mean(busyMs), "mean-ms")
	b.ReportMetric(quantile(busyMs, 0.9), "p90-ms")
	b.ReportMetric(median(idleMs), "harness-page-cpu-ms")
	b.ReportMetric(quantile(sumMs, 0.9), "parley-cpu-p90-ms")
}

// lastMessageIs is a page predicate: the history's last entry is a
// message with text s. The harness evaluates it on the page's thread at
// every change of the document (UntilMutation), inside the time it
// measures, so it reads only the last entry (the history's element is
// kept between evaluations) rather than querying the whole document.
func lastMessageIs(s string) string {
	return fmt.Sprintf(`(() => {
		let h = globalThis.parleyBenchHistory;
		if (!h || !h.isConnected) h = globalThis.parleyBenchHistory = document.querySelector(%q);
		const t = h && h.lastElementChild && h.lastElementChild.querySelector(%q);
		return !!t && t.textContent === %q;
	})()`, sel("history"), sel("message-text"), s)
}

// lastMessageSent is a page predicate: the history's last entry is a
// message with text s that the server stored ("sent").
func lastMessageSent(s string) string {
	return fmt.Sprintf(`(() => {
		const m = document.querySelector(%q)?.lastElementChild;
		return !!m && m.querySelector(%q)?.textContent === %q && m.querySelector(%q)?.textContent === "sent";
	})()`, sel("history"), sel("message-text"), s, sel("message-state"))
}

// quantile returns the q-quantile of xs (nearest rank), sorting xs.
func quantile(xs []float64, q float64) float64 {
	slices.Sort(xs)
	return xs[min(len(xs)-1, int(q*float64(len(xs))))]
}

func median(xs []float64) float64 { return quantile(xs, 0.5) }

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// total returns the CPU time of all the threads of a reading of
// threads.cpu.
func total(cpu map[string]float64) float64 {
	var s float64
	for _, x := range cpu {
		s += x
	}
	return s
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
