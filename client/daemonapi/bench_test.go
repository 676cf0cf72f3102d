package daemonapi_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/internal/latency"
	"github.com/parley-chat/parley/internal/testserver"
)

// The benchmark runs a real parleyd core in process (SQLite file,
// loopback TLS, WebSockets), two SDK clients with their stores on disk,
// each served by a daemonapi.Server on its profile's Unix socket, and a
// daemonapi.Client on each socket, as a terminal client uses the daemon.
// Results are in docs/performance.md ("Client daemon"); the same path
// without the daemon is client's BenchmarkSendToEvent:
//
//	go test ./client/daemonapi -run '^$' -bench DaemonSendToEvent -benchtime 1000x -count 3

// BenchmarkDaemonSendToEvent measures the time from daemonapi.Client.Send
// on alice's daemon to the message event read with NextEvent from bob's
// daemon: alice's API → alice's client.Client → parleyd → bob's
// client.Client → bob's daemon's subscription → bob's API. One op is one
// text message in a 1:1 conversation on the default suite. "sequential"
// sends the next message once the previous one arrived; "rate=50/s"
// sends every 20 ms, whether or not earlier messages arrived. It reports
// the 50th and 99th percentile from the call of Send to the event
// (p50-ms, p99-ms) and from Send's return to the event (ret-p50-ms,
// ret-p99-ms).
func BenchmarkDaemonSendToEvent(b *testing.B) {
	b.Run("sequential", func(b *testing.B) { benchDaemonSendToEvent(b, 0) })
	b.Run("rate=50/s", func(b *testing.B) { benchDaemonSendToEvent(b, 20*time.Millisecond) })
}

func benchDaemonSendToEvent(b *testing.B, interval time.Duration) {
	ts := testserver.Start(b, nil)
	aliceDir := benchDaemon(b, ts, "alice")
	bobDir := benchDaemon(b, ts, "bob")
	alice := dial(b, aliceDir)
	bob := dial(b, bobDir)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := bob.Subscribe(ctx); err != nil {
		b.Fatal(err)
	}
	conv, err := alice.NewDirect(ctx, "bob")
	if err != nil {
		b.Fatal(err)
	}
	for {
		ev, err := bob.NextEvent(ctx)
		if err != nil {
			b.Fatalf("waiting for bob to join: %v", err)
		}
		if ev.Event == "conversation_joined" && ev.Conversation == int64(conv) {
			break
		}
	}

	// Arrival times by message number, recorded by bob's event reader.
	const prefix = "bench "
	var (
		mu      sync.Mutex
		arrived = map[int]time.Time{}
		notify  = make(chan struct{}, 1)
	)
	readCtx, stopReading := context.WithCancel(ctx)
	var reader sync.WaitGroup
	defer func() {
		stopReading()
		reader.Wait()
	}()
	reader.Go(func() {
		for {
			ev, err := bob.NextEvent(readCtx)
			if err != nil {
				return
			}
			at := time.Now()
			if ev.Event != "message" || ev.Message == nil || !strings.HasPrefix(ev.Message.Text, prefix) {
				continue
			}
			i, err := strconv.Atoi(strings.TrimPrefix(ev.Message.Text, prefix))
			if err != nil {
				continue
			}
			mu.Lock()
			arrived[i] = at
			mu.Unlock()
			select {
			case notify <- struct{}{}:
			default:
			}
		}
	})
	wait := func(i int) {
		deadline := time.After(30 * time.Second)
		for {
			mu.Lock()
			_, ok := arrived[i]
			mu.Unlock()
			if ok {
				return
			}
			select {
			case <-notify:
			case <-deadline:
				b.Fatalf("message %d did not arrive", i)
			}
		}
	}

	var called, returned []time.Time
	b.ReportAllocs()
	next := time.Now()
	for b.Loop() {
		i := len(called)
		if interval > 0 {
			time.Sleep(time.Until(next))
			next = next.Add(interval)
		}
		called = append(called, time.Now())
		if _, err := alice.Send(ctx, conv, prefix+strconv.Itoa(i), client.SendOptions{}); err != nil {
			b.Fatal(err)
		}
		returned = append(returned, time.Now())
		if interval == 0 {
			wait(i)
		}
	}
	for i := range called {
		wait(i)
	}
	var fromCall, fromReturn latency.Samples
	for i := range called {
		fromCall.Add(arrived[i].Sub(called[i]))
		fromReturn.Add(arrived[i].Sub(returned[i]))
	}
	fromCall.Report(b, "")
	fromReturn.Report(b, "ret-")
}

// benchDaemon registers name with a fresh profile and serves it with a
// daemon on the profile's socket until the benchmark ends; it returns
// the profile directory. The client is configured as client's
// benchmarks configure theirs (cheap Argon2id, no periodic self-updates),
// so that the two benchmarks differ only by the daemon.
func benchDaemon(b *testing.B, ts *testserver.Server, name string) string {
	b.Helper()
	dir := b.TempDir()
	c, err := client.Open(context.Background(), client.Config{
		ProfileDir: dir, Passphrase: []byte("correct horse " + name),
		KDF:       store.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1},
		ServerURL: ts.URL, TLSFingerprint: ts.Fingerprint,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		SelfUpdateMessages: -1, SelfUpdateInterval: -1,
	})
	if err != nil {
		b.Fatalf("open %s: %v", name, err)
	}
	b.Cleanup(func() { c.Close() })
	if _, err := c.Register(context.Background(), ts.URL, "", name); err != nil {
		b.Fatalf("register %s: %v", name, err)
	}
	daemon(b, c, dir)
	return dir
}
