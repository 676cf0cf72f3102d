package client_test

import (
	"context"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/internal/profilegen"
)

// openGenerated fills a new profile with profilegen and opens it.
func openGenerated(tb testing.TB, cfg profilegen.Config) (*client.Client, *profilegen.Profile) {
	tb.Helper()
	ctx := context.Background()
	cfg.Dir, cfg.Passphrase, cfg.KDF = tb.TempDir(), []byte("correct horse generated"), fastKDF
	p, err := profilegen.Fill(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := client.Open(ctx, client.Config{ProfileDir: cfg.Dir, Passphrase: cfg.Passphrase, KDF: fastKDF})
	if err != nil {
		tb.Fatalf("open generated profile: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c, p
}

// BenchmarkConversations1000 measures Client.Conversations (what a
// conversation list shows first) on a profile of 1,000 conversations
// with 100,000 history entries: "read" has every conversation read to
// its end but 100, which keep 10 unread entries; "unread" has no read
// position at all, so every message of another user counts; "groups"
// is "read" with an MLS group in each. Results are
// in docs/performance.md ("Listing conversations").
//
//	go test ./client -run '^$' -bench Conversations1000 -benchtime 10x -count 3
func BenchmarkConversations1000(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  profilegen.Config
	}{
		{"read", profilegen.Config{Conversations: 1000, Entries: 100_000, UnreadConversations: 100, UnreadEntries: 10}},
		{"unread", profilegen.Config{Conversations: 1000, Entries: 100_000, NoReadPositions: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, p := openGenerated(b, bc.cfg)
			benchConversations(b, c, len(p.Conversations))
		})
	}
	// "groups" is "read" with an MLS group for every conversation: copies
	// of a real one's state, which Open loads and the list reads the
	// members of.
	b.Run("groups", func(b *testing.B) {
		s, dir, n := groupsProfile(b, profilegen.Config{Entries: 100_000, UnreadConversations: 100, UnreadEntries: 10})
		alice := openDevice(b, s, dir, "alice")
		benchConversations(b, alice.c, n)
	})
}

// groupsProfile makes alice's profile with a real group (team, with bob)
// and cfg's 1,000 more conversations, each with a copy of that group's
// MLS state; it returns the server, the profile's directory and the
// number of conversations.
func groupsProfile(b *testing.B, cfg profilegen.Config) (*server, string, int) {
	ctx := context.Background()
	s := newServer(b)
	alice := register(b, s, "alice")
	register(b, s, "bob")
	conv, err := alice.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		b.Fatal(err)
	}
	alice.close()
	cfg.Dir, cfg.Passphrase, cfg.KDF = alice.dir, []byte("correct horse alice"), fastKDF
	cfg.Conversations, cfg.GroupsLike = 1000, conv
	p, err := profilegen.Fill(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return s, alice.dir, len(p.Conversations) + 1
}

func benchConversations(b *testing.B, c *client.Client, want int) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		cvs, err := c.Conversations(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(cvs) != want {
			b.Fatalf("%d conversations, want %d", len(cvs), want)
		}
	}
}

// BenchmarkOpenGroups opens a profile with 1,000 conversations, each with
// an MLS group (copies of a real one's state, as in
// BenchmarkConversations1000/groups), whose states Open loads.
//
//	go test ./client -run '^$' -bench OpenGroups -benchtime 10x -count 3
func BenchmarkOpenGroups(b *testing.B) {
	ctx := context.Background()
	s, dir, n := groupsProfile(b, profilegen.Config{Entries: 10_000})
	b.ReportAllocs()
	for b.Loop() {
		d := openDevice(b, s, dir, "alice")
		if cvs, err := d.c.Conversations(ctx); err != nil || len(cvs) != n {
			b.Fatalf("%d conversations (%v), want %d", len(cvs), err, n)
		}
		d.close()
	}
}
