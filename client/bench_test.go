package client_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/internal/latency"
	"github.com/parley-chat/parley/protocol"
)

// The benchmarks run a real parleyd core in process (SQLite file, loopback
// TLS, WebSockets) and clients with their stores on disk, as the tests do.
// Results and the machine they were measured on are in
// docs/performance.md ("Client SDK"). Run the latency benchmark with
// -benchtime=1000x for the figures over 1,000 messages:
//
//	go test ./client -run '^$' -bench SendToEvent -benchtime 1000x -count 5
//	go test ./client -run '^$' -bench ReceiveProcessing -count 5

// BenchmarkSendToEvent measures the time from Client.Send to the message
// event on another connected client, through a local parleyd: one op is
// one message. "sequential" sends the next message once the previous one
// arrived; "rate=50/s" sends at a fixed rate, whether or not earlier
// messages arrived. It reports the 50th and 99th percentile from the call
// of Send to the event (p50-ms, p99-ms) and from Send's return to the
// event (ret-p50-ms, ret-p99-ms; the receiver can be faster than the
// sender's bookkeeping after the post, so these can be negative).
func BenchmarkSendToEvent(b *testing.B) {
	b.Run("sequential", func(b *testing.B) { benchSendToEvent(b, 0) })
	b.Run("rate=50/s", func(b *testing.B) { benchSendToEvent(b, 20*time.Millisecond) })
}

func benchSendToEvent(b *testing.B, interval time.Duration) {
	ctx := context.Background()
	s := newServer(b)
	alice := register(b, s, "alice")
	bob := register(b, s, "bob")
	alice.start()
	bob.start()
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		b.Fatal(err)
	}
	bob.waitEvent("joined", func(ev client.Event) bool { return ev.Kind == client.EventConversationJoined })

	// Arrival times by message number, recorded by bob's event reader.
	var (
		mu      sync.Mutex
		arrived = map[int]time.Time{}
		notify  = make(chan struct{}, 1)
	)
	const prefix = "bench "
	bob.mu.Lock()
	bob.tap = func(at time.Time, ev client.Event) bool {
		if ev.Kind != client.EventMessage || ev.Message == nil || !strings.HasPrefix(ev.Message.Text, prefix) {
			return true
		}
		i, err := strconv.Atoi(strings.TrimPrefix(ev.Message.Text, prefix))
		if err != nil {
			return true
		}
		mu.Lock()
		arrived[i] = at
		mu.Unlock()
		select {
		case notify <- struct{}{}:
		default:
		}
		return false
	}
	bob.mu.Unlock()
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
		if _, err := alice.c.Send(ctx, conv, prefix+strconv.Itoa(i), client.SendOptions{}); err != nil {
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

// BenchmarkReceiveProcessing measures the client-side cost of one
// received application message: decrypt, the store transaction (history,
// group state, cursor; fsync'd) and the event. The entries are made by
// the sender's client without posting them and applied to the receiver
// as if the server had pushed them, so the network and the server are
// not part of it. The group has 2 or 100 members (one device each).
func BenchmarkReceiveProcessing(b *testing.B) {
	for _, n := range []int{2, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) { benchReceive(b, n) })
	}
}

func benchReceive(b *testing.B, members int) {
	ctx := context.Background()
	s := newServer(b)
	alice := register(b, s, "alice")
	bob := register(b, s, "bob")
	users := []string{"bob"}
	for i := 2; i < members; i++ {
		name := fmt.Sprintf("user%03d", i)
		register(b, s, name)
		users = append(users, name)
	}
	bob.start()
	// One commit adding 99 devices would exceed parleyd's 8 MiB request
	// limit (the Welcome is repeated for every device): add the rest in
	// further commits.
	const first = 40
	conv, err := alice.c.NewGroup(ctx, "bench", users[:min(first, len(users))]...)
	if err != nil {
		b.Fatal(err)
	}
	for _, u := range users[min(first, len(users)):] {
		if err := alice.c.Add(ctx, conv, u); err != nil {
			b.Fatal(err)
		}
	}
	bob.waitEvent("joined", func(ev client.Event) bool { return ev.Kind == client.EventConversationJoined })
	bob.stop()
	if err := bob.c.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	if got := len(bob.members(conv)); got != members {
		b.Fatalf("bob sees %d members, want %d", got, members)
	}
	bob.mu.Lock()
	bob.tap = func(_ time.Time, ev client.Event) bool { return ev.Kind != client.EventMessage }
	bob.mu.Unlock()
	acct, err := alice.c.Whoami()
	if err != nil {
		b.Fatal(err)
	}
	seq, err := client.CursorForTest(ctx, bob.c, conv)
	if err != nil {
		b.Fatal(err)
	}

	// Entries are made in batches outside the timer.
	var batch [][]byte
	refill := func() {
		b.StopTimer()
		defer b.StartTimer()
		batch = batch[:0]
		for i := range 256 {
			ct, err := client.EncryptForTest(alice.c, conv, "message "+strconv.Itoa(i))
			if err != nil {
				b.Fatal(err)
			}
			batch = append(batch, ct)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(batch) == 0 {
			refill()
		}
		seq++
		e := protocol.Entry{Conversation: conv, Seq: seq, Kind: protocol.KindApplication, Sender: acct.Device, Data: batch[0], Time: time.Now()}
		batch = batch[1:]
		if err := client.ApplyEntryForTest(ctx, bob.c, e); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if cur, err := client.CursorForTest(ctx, bob.c, conv); err != nil || cur != seq {
		b.Fatalf("cursor %d (%v), want %d", cur, err, seq)
	}
	ms, err := bob.c.Messages(ctx, conv, 0, 1)
	if err != nil || len(ms) != 1 || !strings.HasPrefix(ms[0].Text, "message ") {
		b.Fatalf("last message %v (%v)", ms, err)
	}
}

// members lists the members of conv as d sees them.
func (d *device) members(conv protocol.ConversationID) []client.Member {
	d.t.Helper()
	ms, err := d.c.Members(context.Background(), conv)
	if err != nil {
		d.t.Fatal(err)
	}
	return ms
}

// BenchmarkMarkShown measures MarkShown, which an application calls right
// after showing each message: its duration is the window in which a kill
// shows that message again on the next start. "idle" has nothing else
// running; "receiving" has the client applying a stream of incoming
// messages at the same time (its store's writer busy). It reports the
// 99th percentile (p99-us) beside the mean.
func BenchmarkMarkShown(b *testing.B) {
	b.Run("idle", func(b *testing.B) { benchMarkShown(b, false) })
	b.Run("receiving", func(b *testing.B) { benchMarkShown(b, true) })
}

func benchMarkShown(b *testing.B, receiving bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newServer(b)
	alice := register(b, s, "alice")
	bob := register(b, s, "bob")
	alice.start()
	bob.start()
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		b.Fatal(err)
	}
	bob.waitEvent("joined", func(ev client.Event) bool { return ev.Kind == client.EventConversationJoined })
	sending := make(chan struct{})
	if receiving {
		go func() {
			defer close(sending)
			for ctx.Err() == nil {
				if _, err := alice.c.Send(ctx, conv, "busy", client.SendOptions{}); err != nil && ctx.Err() == nil {
					b.Error(err)
					return
				}
			}
		}()
	} else {
		close(sending)
	}
	took := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := bob.c.MarkShown(ctx, conv, int64(i+1)); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t0))
	}
	b.StopTimer()
	cancel()
	<-sending
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds())/1e3, "p99-us")
}
