package client_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/internal/profilegen"
	"github.com/parley-chat/parley/protocol"
)

// searchTexts returns the texts of messages.
func searchTexts(ms []*client.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

// TestSearchLive: search across conversations with a real server: words
// (any case, any order, the last as a prefix), sender, conversation;
// messages that arrive, are edited or deleted after the index was built
// are found with their current text only.
func TestSearchLive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	bob := register(t, s, "bob")
	alice.start()
	bob.start()
	direct, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	group, err := alice.c.NewGroup(ctx, "Crew", "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, conv := range []protocol.ConversationID{direct, group} {
		bob.waitEvent("joined", func(ev client.Event) bool {
			return ev.Kind == client.EventConversationJoined && ev.Conversation == conv
		})
	}
	send := func(d *device, conv protocol.ConversationID, text string) *client.Message {
		t.Helper()
		m, err := d.c.Send(ctx, conv, text, client.SendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	send(alice, direct, "Lunch at the Café tomorrow?")
	send(alice, group, "the budget meeting moved")
	bobs := send(bob, group, "Budget draft attached, café bill too")
	alice.waitTexts(group, "the budget meeting moved", "Budget draft attached, café bill too")

	search := func(q client.SearchQuery, want ...string) {
		t.Helper()
		got, err := alice.c.Search(ctx, q)
		if err != nil {
			t.Fatalf("Search(%+v): %v", q, err)
		}
		texts := searchTexts(got)
		slices.Sort(texts)
		slices.Sort(want)
		if !slices.Equal(texts, want) {
			t.Errorf("Search(%+v) = %q, want %q", q, texts, want)
		}
	}
	search(client.SearchQuery{Text: "CAFÉ"}, "Lunch at the Café tomorrow?", "Budget draft attached, café bill too")
	search(client.SearchQuery{Text: "budg"}, "the budget meeting moved", "Budget draft attached, café bill too")
	search(client.SearchQuery{Text: "budget meet"}, "the budget meeting moved")
	search(client.SearchQuery{Text: "MEETING budg"}, "the budget meeting moved")
	search(client.SearchQuery{Text: "bu meeting"}) // only the last word is a prefix
	search(client.SearchQuery{Text: "budget", From: "bob"}, "Budget draft attached, café bill too")
	search(client.SearchQuery{Text: "café", In: direct}, "Lunch at the Café tomorrow?")
	search(client.SearchQuery{Text: "nothing"})
	search(client.SearchQuery{From: "bob"}, "Budget draft attached, café bill too")

	// The index is built: what comes now updates it.
	send(bob, direct, "new flight booked")
	mine := send(alice, group, "ticket for the flight")
	alice.waitTexts(direct, "Lunch at the Café tomorrow?", "new flight booked")
	search(client.SearchQuery{Text: "flight"}, "new flight booked", "ticket for the flight")
	if err := bob.c.Edit(ctx, group, bobs.ID, "Spreadsheet attached"); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.Delete(ctx, group, mine.ID); err != nil {
		t.Fatal(err)
	}
	alice.waitTexts(group, "the budget meeting moved", "Spreadsheet attached", "")
	search(client.SearchQuery{Text: "café"}, "Lunch at the Café tomorrow?")
	search(client.SearchQuery{Text: "spread"}, "Spreadsheet attached")
	search(client.SearchQuery{Text: "flight"}, "new flight booked")
	search(client.SearchQuery{Text: "ticket"})
	if _, err := alice.c.Search(ctx, client.SearchQuery{Limit: -1}); err == nil {
		t.Error("Search with a negative limit succeeded")
	}
}

// TestSearchModel compares Search on a generated profile of 20
// conversations with a plain scan of every message (the model): random
// words, prefixes, senders, conversations and date ranges, newest first.
func TestSearchModel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c, p := openGenerated(t, profilegen.Config{Conversations: 20, Entries: 2000, Peers: 5, Seed: 7, Now: now})
	var all []*client.Message
	for _, cv := range p.Conversations {
		ms, err := c.Messages(ctx, cv.ID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ms...)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	words := strings.Fields("the meeting noon lunch file draft review thanks flight late budget plan tonight")
	for i := range 200 {
		var q client.SearchQuery
		var ws []string
		for range rnd.IntN(3) {
			ws = append(ws, words[rnd.IntN(len(words))])
		}
		if len(ws) > 0 && rnd.IntN(2) == 0 {
			last := ws[len(ws)-1]
			ws[len(ws)-1] = strings.ToUpper(last[:1+rnd.IntN(len(last))])
		}
		q.Text = strings.Join(ws, " ")
		if rnd.IntN(3) == 0 {
			q.From = fmt.Sprintf("peer%03d", rnd.IntN(5))
		}
		if rnd.IntN(3) == 0 {
			q.In = p.Conversations[rnd.IntN(len(p.Conversations))].ID
		}
		if rnd.IntN(3) == 0 {
			q.After = now.Add(-time.Duration(rnd.IntN(100)) * time.Minute)
		}
		if rnd.IntN(3) == 0 {
			q.Before = now.Add(-time.Duration(rnd.IntN(100)) * time.Minute)
		}
		q.Limit = 1 + rnd.IntN(150)
		got, err := c.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want := model(all, q)
		if len(got) != len(want) {
			t.Fatalf("query %d %+v: %d results, the model %d", i, q, len(got), len(want))
		}
		for j := range got {
			// Messages sent in the same millisecond may come in either order.
			if !got[j].Sent.Equal(want[j].Sent) || !matchesModel(got[j], q) {
				t.Fatalf("query %d %+v: result %d is %+v, the model's %+v", i, q, j, got[j], want[j])
			}
		}
	}
}

// model is Search done by scanning every message.
func model(all []*client.Message, q client.SearchQuery) []*client.Message {
	var out []*client.Message
	for _, m := range all {
		if matchesModel(m, q) {
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(a, b *client.Message) int { return b.Sent.Compare(a.Sent) })
	return out[:min(len(out), q.Limit)]
}

func matchesModel(m *client.Message, q client.SearchQuery) bool {
	if m.Deleted || m.System != nil || (q.From != "" && m.Sender != q.From) || (q.In != 0 && m.Conversation != q.In) ||
		(!q.After.IsZero() && m.Sent.Before(q.After)) || (!q.Before.IsZero() && !m.Sent.Before(q.Before)) {
		return false
	}
	words := strings.FieldsFunc(strings.ToLower(m.Text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	qs := strings.Fields(strings.ToLower(q.Text))
	for i, w := range qs {
		last := i == len(qs)-1
		if !slices.ContainsFunc(words, func(x string) bool { return x == w || last && strings.HasPrefix(x, w) }) {
			return false
		}
	}
	return true
}

// BenchmarkSearch measures a query on a profile of 1,000 conversations
// and 100,000 history entries, once the index is built: a rare pair of
// words, a common word with a prefix (tens of thousands of matches, the
// newest 100 returned), and a sender with a date range. Results are in
// docs/performance.md ("Local search").
//
//	go test ./client -run '^$' -bench 'Search' -benchtime 20x -count 3
func BenchmarkSearch(b *testing.B) {
	ctx := context.Background()
	now := time.Now()
	c, _ := openGenerated(b, profilegen.Config{Conversations: 1000, Entries: 100_000, Now: now})
	if _, err := c.Search(ctx, client.SearchQuery{Text: "warm up"}); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		q    client.SearchQuery
	}{
		{"words", client.SearchQuery{Text: "budget flight tick"}},
		{"prefix", client.SearchQuery{Text: "the l"}},
		{"from-dates", client.SearchQuery{From: "peer007", After: now.Add(-50 * time.Minute), Before: now.Add(-10 * time.Minute)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				ms, err := c.Search(ctx, bc.q)
				if err != nil {
					b.Fatal(err)
				}
				n = len(ms)
			}
			b.ReportMetric(float64(n), "results")
		})
	}
}

// BenchmarkSearchIndexBuild measures the first search on a profile of
// 1,000 conversations and 100,000 entries: reading, decrypting and
// indexing every message. Each iteration opens the profile again.
func BenchmarkSearchIndexBuild(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	cfg := profilegen.Config{Dir: dir, Passphrase: []byte("correct horse generated"), KDF: fastKDF, Conversations: 1000, Entries: 100_000}
	if _, err := profilegen.Fill(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var heap float64
	for b.Loop() {
		b.StopTimer()
		c, err := client.Open(ctx, client.Config{ProfileDir: dir, Passphrase: cfg.Passphrase, KDF: fastKDF})
		if err != nil {
			b.Fatal(err)
		}
		before := heapInUse()
		b.StartTimer()
		if _, err := c.Search(ctx, client.SearchQuery{Text: "budget"}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		heap = float64(heapInUse()-before) / (1 << 20)
		c.Close()
		b.StartTimer()
	}
	// What the index keeps: the heap it adds, once collected.
	b.ReportMetric(heap, "index-MiB")
}

func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
