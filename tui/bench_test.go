package tui

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/internal/latency"
	"github.com/parley-chat/parley/internal/profilegen"
	"github.com/parley-chat/parley/protocol"
)

// The benchmarks run the terminal client on a large profile: 1,000
// conversations and 100,000 history entries written by profilegen,
// opened with client.Open (the default Argon2id parameters, as parley
// creates stores) and served by a daemonapi.Server on the profile's Unix
// socket in this process, as parley daemon serves it. The profile has no
// server, so the client is not run (Client.Run): the daemon only answers
// from its store. Results are in docs/performance.md ("Terminal
// client"):
//
//	go test ./tui -run '^$' -bench 'Start|OpenProfile' -benchtime 20x -count 3
//	go test ./tui -run '^$' -bench Keypress -benchtime 2000x -count 3

// benchPassphrase protects the benchmarks' profiles.
var benchPassphrase = []byte("correct horse tui bench")

// benchProfile fills a new profile with cfg and returns its directory.
func benchProfile(b *testing.B, cfg profilegen.Config) (string, *profilegen.Profile) {
	b.Helper()
	cfg.Dir, cfg.Passphrase, cfg.Seed = b.TempDir(), benchPassphrase, 1
	p, err := profilegen.Fill(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return cfg.Dir, p
}

// benchDaemon opens the profile in dir and serves it on the profile's
// socket until the benchmark ends.
func benchDaemon(b *testing.B, dir string) {
	b.Helper()
	c, err := client.Open(context.Background(), client.Config{ProfileDir: dir, Passphrase: benchPassphrase})
	if err != nil {
		b.Fatalf("open %s: %v", dir, err)
	}
	ln, err := daemonapi.Listen(dir)
	if err != nil {
		c.Close()
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := daemonapi.NewServer(c, dir, nil).Serve(ctx, ln); err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	b.Cleanup(func() {
		cancel()
		wg.Wait()
		c.Close()
	})
}

// large is the profile of the targets: 1,000 conversations, 100,000
// entries.
func large(unread int) profilegen.Config {
	return profilegen.Config{Conversations: 1000, Entries: 100_000, UnreadConversations: unread, UnreadEntries: 10}
}

// BenchmarkStart measures the start of parley tui with the daemon
// already running, to the first full screen: one op dials the daemon,
// makes the model, runs Init's commands (each in its own goroutine, as
// Bubble Tea does) and applies their messages until the model has the
// account and the conversation list (Model.listLoaded), then renders
// the screen at 120×40. "read" has every conversation read to its end,
// "unread=100" keeps 10 unread entries in 100 of them. It reports the
// 50th and 99th percentile of the ops (p50-ms, p99-ms).
func BenchmarkStart(b *testing.B) {
	for _, bc := range []struct {
		name   string
		unread int
	}{{"read", 0}, {"unread=100", 100}} {
		b.Run(bc.name, func(b *testing.B) {
			dir, p := benchProfile(b, large(bc.unread))
			benchDaemon(b, dir)
			var times latency.Samples
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				m, stop := startTUI(b, dir)
				s := m.View().Content
				times.Add(time.Since(start))
				stop()
				if n := len(m.list.all); n != len(p.Conversations) {
					b.Fatalf("%d conversations listed, want %d", n, len(p.Conversations))
				}
				if len(s) == 0 {
					b.Fatal("empty screen")
				}
			}
			times.Report(b, "")
		})
	}
}

// startTUI connects a model to the daemon of dir and applies the
// results of Init's commands until the list is loaded; stop closes the
// connection and waits for the commands.
func startTUI(b *testing.B, dir string) (m *Model, stop func()) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard against a hang
	dc, err := daemonapi.Dial(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	m = New(dc, Options{Context: ctx})
	msgs := make(chan tea.Msg, 16)
	var wg sync.WaitGroup
	var run func(cmd tea.Cmd)
	run = func(cmd tea.Cmd) {
		if cmd == nil {
			return
		}
		wg.Go(func() {
			switch msg := cmd().(type) {
			case nil:
			case tea.BatchMsg:
				for _, c := range msg {
					run(c)
				}
			default:
				select {
				case msgs <- msg:
				case <-ctx.Done():
				}
			}
		})
	}
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	run(m.Init())
	for !m.listLoaded() {
		select {
		case msg := <-msgs:
			if _, ok := msg.(eventMsg); ok {
				m.Update(msg) // do not wait for the next event
				continue
			}
			_, cmd := m.Update(msg)
			run(cmd)
		case <-ctx.Done():
			b.Fatalf("the list did not load: %v (status %q)", ctx.Err(), m.status)
		}
	}
	return m, func() {
		cancel()
		dc.Close()
		wg.Wait()
	}
}

// BenchmarkOpenProfile measures client.Open of the profile of
// BenchmarkStart ("read"): what parley tui waits for in addition when it
// must start the daemon (besides starting the process). The store has
// the default Argon2id parameters.
func BenchmarkOpenProfile(b *testing.B) {
	dir, _ := benchProfile(b, large(0))
	var times latency.Samples
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		c, err := client.Open(context.Background(), client.Config{ProfileDir: dir, Passphrase: benchPassphrase})
		if err != nil {
			b.Fatal(err)
		}
		times.Add(time.Since(start))
		c.Close()
	}
	times.Report(b, "")
}

// Key presses and incoming messages of BenchmarkKeypress: a key every
// keyInterval, messages at msgRate.
const (
	keyInterval = 50 * time.Millisecond // 20 keys a second: a fast typist
	msgRate     = 50                    // messages a second
)

// keyCycle is what the user does over and over: types into the
// composer, selects messages up the history and back down, and deletes
// what was typed.
var keyCycle = func() []tea.KeyPressMsg {
	var ks []tea.KeyPressMsg
	for _, r := range "hello there" {
		ks = append(ks, tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	ks = append(ks, tea.KeyPressMsg{Code: tea.KeyUp, Mod: tea.ModCtrl})
	for range 5 {
		ks = append(ks, tea.KeyPressMsg{Code: tea.KeyUp})
	}
	for range 6 {
		ks = append(ks, tea.KeyPressMsg{Code: tea.KeyDown})
	}
	for range len("hello there") {
		ks = append(ks, tea.KeyPressMsg{Code: tea.KeyBackspace})
	}
	return ks
}()

// longProfile is the large profile with one long conversation: 999
// conversations of 99 entries, then one of 5,000 entries (the most
// recent); 100 conversations keep 10 unread entries.
func longProfile(b *testing.B) (string, profilegen.Conversation) {
	b.Helper()
	cfg := large(100)
	cfg.Conversations, cfg.Entries = 999, 999*99
	dir, _ := benchProfile(b, cfg)
	p, err := profilegen.Fill(context.Background(), profilegen.Config{Dir: dir, Passphrase: benchPassphrase, Seed: 2,
		Conversations: 1, Entries: 5000})
	if err != nil {
		b.Fatal(err)
	}
	return dir, p.Conversations[0]
}

// BenchmarkKeypress measures what a user waits for after a key press
// while messages arrive in the open conversation: Update with the key,
// then View (Bubble Tea runs both in one goroutine). The model is on a
// large profile (longProfile: 1,000 conversations in the list) through
// the daemon, with its conversation of 5,000 entries open and the last
// entries of its history loaded ("loaded=100": the first page, as
// opening shows it; "loaded=1000": after scrolling back through ten
// pages). Between two keys (one op,
// keyInterval apart) the message events that arrive at msgRate are
// applied (Update, not timed), so the history grows by 2.5 entries per
// op. The keys cycle through typing, selecting up and down and erasing
// (keyCycle). The commands that keys and events return (marking read)
// are not run: they run outside the rendering goroutine. It reports the
// 50th and 99th percentile of Update+View per key (p50-ms, p99-ms) and
// the 99th percentile of the Update of an event (event-p99-ms).
func BenchmarkKeypress(b *testing.B) {
	dir, conv := longProfile(b)
	benchDaemon(b, dir)
	for _, loaded := range []int{100, 1000} {
		b.Run(fmt.Sprintf("loaded=%d", loaded), func(b *testing.B) {
			benchKeypress(b, dir, conv, loaded)
		})
	}
}

func benchKeypress(b *testing.B, dir string, conv profilegen.Conversation, loaded int) {
	m, stop := startTUI(b, dir)
	defer stop()
	if conv.Entries < loaded {
		b.Fatalf("conversation %d has %d entries, fewer than %d", conv.ID, conv.Entries, loaded)
	}
	m.page = loaded
	m.Update(m.openConversationNow(conv.ID))
	if n := len(m.conv.msgs); n != loaded {
		b.Fatalf("%d entries loaded, want %d", n, loaded)
	}
	m.View()

	seq := int64(conv.Entries)
	self := m.self
	var keyTimes, eventTimes latency.Samples
	var due float64 // messages due, a fraction carried over
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for due += msgRate * keyInterval.Seconds(); due >= 1; due-- {
			seq++
			ev := newMessageEvent(conv.ID, seq, self)
			start := time.Now()
			m.Update(eventMsg{ev})
			eventTimes.Add(time.Since(start))
		}
		k := keyCycle[i%len(keyCycle)]
		i++
		start := time.Now()
		m.Update(k)
		m.View()
		keyTimes.Add(time.Since(start))
	}
	keyTimes.Report(b, "")
	b.ReportMetric(eventTimes.Percentile(99), "event-p99-ms")
}

// openConversationNow opens conversation id and returns the result of
// loading its history, run synchronously.
func (m *Model) openConversationNow(id protocol.ConversationID) tea.Msg {
	m.openConversation(id)
	return m.loadHistory(id, m.page, false)()
}

// newMessageEvent is the event of a text message from a peer, as the
// daemon sends it (through its JSON form).
func newMessageEvent(conv protocol.ConversationID, seq int64, self string) *daemonapi.Event {
	now := time.Now()
	var id content.MessageID
	id[0], id[1], id[2], id[3] = 0xbe, byte(seq>>16), byte(seq>>8), byte(seq)
	return daemonapi.NewEvent(client.Event{Kind: client.EventMessage, Conversation: conv, Message: &client.Message{
		Conversation: conv, Seq: seq, ID: id, Sender: "peer007", Sent: now, Received: now, Kind: content.KindText,
		Text: fmt.Sprintf("message %d arriving while %s types: a sentence long enough to wrap on a narrow pane, as chat lines often are", seq, self),
	}})
}
