package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// TestGroupChat: three users in a named group; messages from everyone
// arrive in the same order everywhere; a 5 MiB attachment arrives intact;
// a removed member reads nothing sent after its removal.
func TestGroupChat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	bob := register(t, s, "bob")
	carol := register(t, s, "carol")
	all := []*device{alice, bob, carol}
	for _, d := range all {
		d.start()
	}
	conv, err := alice.c.NewGroup(ctx, "team", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		waitFor(t, d.name+" sees the name", func() bool {
			cv, err := d.c.Conversation(ctx, conv)
			return err == nil && cv.Name == "team" && slices.Equal(cv.Members, []string{"alice", "bob", "carol"})
		})
	}
	var want []string
	for i := range 5 {
		for _, d := range all {
			text := fmt.Sprintf("%s %d", d.name, i)
			if _, err := d.c.Send(ctx, conv, text, client.SendOptions{}); err != nil {
				t.Fatal(err)
			}
			want = append(want, text)
		}
	}
	// Each device's history is in server order: compare the sets, and
	// the order of the receivers with each other.
	for _, d := range all {
		waitFor(t, d.name+" has every message", func() bool { return len(d.texts(conv)) == len(want) })
	}
	// Own messages are in the history from when they were sent; received
	// ones in server order. Every device agrees on the server order.
	bySeq := map[uint64]string{}
	for _, d := range all {
		ms, _ := d.c.Messages(ctx, conv, 0, 0)
		var last uint64
		for _, m := range ms {
			if prev, ok := bySeq[m.ServerSeq]; ok && prev != m.Text {
				t.Errorf("%s: server seq %d is %q, elsewhere %q", d.name, m.ServerSeq, m.Text, prev)
			}
			bySeq[m.ServerSeq] = m.Text
			if m.Sender != d.name {
				if m.ServerSeq <= last {
					t.Errorf("%s: received %q (seq %d) after seq %d", d.name, m.Text, m.ServerSeq, last)
				}
				last = m.ServerSeq
			}
		}
	}
	for _, d := range all[1:] {
		if got, first := d.texts(conv), alice.texts(conv); !slices.Equal(got, first) {
			t.Errorf("%s's history %q differs from alice's %q", d.name, got, first)
		}
	}
	for _, d := range all {
		got := slices.Sorted(slices.Values(d.texts(conv)))
		if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("%s: %q", d.name, got)
		}
	}

	// A 5 MiB attachment.
	file := make([]byte, 5<<20)
	rand.Read(file)
	path := filepath.Join(t.TempDir(), "big.bin")
	os.WriteFile(path, file, 0o600)
	m, err := bob.c.SendFile(ctx, conv, path, client.SendOptions{Caption: "the file"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{alice, carol} {
		ev := d.waitEvent("attachment", func(ev client.Event) bool {
			return ev.Kind == client.EventMessage && ev.Message.Attachment != nil
		})
		if ev.Message.Attachment.Size != 5<<20 || ev.Message.Attachment.FileName != "big.bin" || ev.Message.Text != "the file" {
			t.Errorf("attachment: %+v", ev.Message.Attachment)
		}
		dst, err := d.c.Download(ctx, m.Attachment.ID, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dst)
		if !bytes.Equal(got, file) {
			t.Errorf("%s: downloaded file differs", d.name)
		}
	}
	if _, err := alice.c.Download(ctx, "00", t.TempDir()); !errors.Is(err, client.ErrUnknownAttachment) {
		t.Errorf("unknown attachment: %v", err)
	}

	// Remove carol.
	if err := alice.c.Remove(ctx, conv, "carol"); err != nil {
		t.Fatal(err)
	}
	carol.waitEvent("removed", func(ev client.Event) bool { return ev.Kind == client.EventConversationLeft && ev.Conversation == conv })
	bob.waitEvent("carol left", func(ev client.Event) bool { return ev.Kind == client.EventMemberLeft && ev.User == "carol" })
	before := len(carol.texts(conv))
	if _, err := bob.c.Send(ctx, conv, "after carol", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	alice.waitEvent("after carol", func(ev client.Event) bool { return ev.Kind == client.EventMessage && ev.Message.Text == "after carol" })
	if err := carol.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := carol.texts(conv); len(got) != before {
		t.Errorf("carol reads after her removal: %q", got[before:])
	}
	if _, err := carol.c.Send(ctx, conv, "still here?", client.SendOptions{}); !errors.Is(err, client.ErrNotMember) {
		t.Errorf("removed member sends: %v", err)
	}
	if err := alice.c.Remove(ctx, conv, "carol"); !errors.Is(err, client.ErrNotMember) {
		t.Errorf("remove again: %v", err)
	}
	mb, _ := alice.c.Members(ctx, conv)
	if len(mb) != 2 {
		t.Errorf("members after removal: %+v", mb)
	}
	// Bob leaves: alice commits his removal.
	if err := bob.c.Leave(ctx, conv); err != nil {
		t.Fatal(err)
	}
	alice.waitEvent("bob left", func(ev client.Event) bool { return ev.Kind == client.EventMemberLeft && ev.User == "bob" })
	waitFor(t, "alice alone", func() bool {
		mb, _ := alice.c.Members(ctx, conv)
		return len(mb) == 1
	})
}

// TestOfflineCatchUp: a member offline during several commits and
// messages catches up exactly when it comes back, after a restart.
func TestOfflineCatchUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	bob := register(t, s, "bob")
	carol := register(t, s, "carol")
	alice.start()
	bob.start()
	carol.start()
	conv, err := alice.c.NewGroup(ctx, "ops", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	carol.waitEvent("joined", func(ev client.Event) bool { return ev.Kind == client.EventConversationJoined })
	alice.c.Send(ctx, conv, "m0", client.SendOptions{})
	carol.waitTexts(conv, "m0")
	carolDir := carol.dir
	carol.close()

	var want = []string{"m0"}
	for i := 1; i <= 4; i++ {
		sender := alice
		if i%2 == 0 {
			sender = bob
		}
		if err := sender.c.SelfUpdate(ctx, conv); err != nil {
			t.Fatal(err)
		}
		text := fmt.Sprintf("m%d", i)
		if _, err := sender.c.Send(ctx, conv, text, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
		want = append(want, text)
	}
	if err := bob.c.SetTopic(ctx, conv, "on call"); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, want...)
	epoch := alice.epoch(conv)
	waitFor(t, "bob's epoch", func() bool { return bob.epoch(conv) == epoch })

	carol = openDevice(t, s, carolDir, "carol")
	carol.start()
	carol.waitTexts(conv, want...)
	waitFor(t, "carol's epoch", func() bool { return carol.epoch(conv) == epoch })
	waitFor(t, "carol sees name and topic", func() bool {
		cv, _ := carol.c.Conversation(ctx, conv)
		return cv.Topic == "on call" && cv.Name == "ops"
	})
	// And the group still works both ways.
	carol.c.Send(ctx, conv, "back", client.SendOptions{})
	alice.waitTexts(conv, append(want, "back")...)
	bob.c.Send(ctx, conv, "welcome back", client.SendOptions{})
	carol.waitTexts(conv, append(want, "back", "welcome back")...)
}

// TestConcurrentCommits: two members commit at the same moment; the
// server accepts one, the other catches up and retries by itself, and
// everyone ends in the same epoch.
func TestConcurrentCommits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	bob := register(t, s, "bob")
	carol := register(t, s, "carol")
	all := []*device{alice, bob, carol}
	for _, d := range all {
		d.start()
	}
	conv, err := alice.c.NewGroup(ctx, "race", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		waitFor(t, d.name+" joined", func() bool { return d.epoch(conv) == alice.epoch(conv) && d.epoch(conv) > 0 })
	}
	start := alice.epoch(conv)
	for round := range 3 {
		var wg sync.WaitGroup
		errs := make([]error, len(all))
		for i, d := range all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = d.c.SelfUpdate(ctx, conv)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %s: %v", round, all[i].name, err)
			}
		}
	}
	want := start + 9
	var stale int
	for _, d := range all {
		stale += strings.Count(d.logs.String(), "stale epoch")
	}
	if stale == 0 {
		t.Error("no commit was refused for a stale epoch: the test did not race")
	}
	t.Logf("%d commits refused for a stale epoch and retried", stale)
	for _, d := range all {
		waitFor(t, fmt.Sprintf("%s at epoch %d", d.name, want), func() bool { return d.epoch(conv) == want })
	}
	for _, d := range all {
		if _, err := d.c.Send(ctx, conv, "from "+d.name, client.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range all {
		waitFor(t, d.name+" has 3 messages", func() bool { return len(d.texts(conv)) == 3 })
	}
}

// TestOneWelcomePerCommit: a commit adding three devices sends its
// Welcome once, in one entry naming all three, and each device joins
// from it.
func TestOneWelcomePerCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	p := newEvilProxy(t, s)
	alice := registerVia(t, p, "alice")
	others := []*device{register(t, s, "bob"), register(t, s, "carol"), register(t, s, "dave")}
	var want []protocol.DeviceID
	for _, d := range others {
		acct, err := d.c.Whoami()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, acct.Device)
		d.start()
	}
	alice.start()
	var mu sync.Mutex
	var commits []protocol.HandshakeRequest
	p.watch(func(path string, body []byte) {
		if !strings.HasSuffix(path, "/handshake") {
			return
		}
		var req protocol.HandshakeRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("handshake request: %v", err)
			return
		}
		mu.Lock()
		commits = append(commits, req)
		mu.Unlock()
	})
	conv, err := alice.c.NewGroup(ctx, "", "bob", "carol", "dave")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range others {
		d.waitEvent("joined", func(ev client.Event) bool {
			return ev.Kind == client.EventConversationJoined && ev.Conversation == conv
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(commits) != 1 {
		t.Fatalf("%d handshakes posted, want the one commit", len(commits))
	}
	ws := commits[0].Welcomes
	if len(ws) != 1 {
		t.Fatalf("commit adding 3 devices sent %d Welcome entries, want 1", len(ws))
	}
	got := slices.Clone(ws[0].Devices)
	slices.Sort(got)
	slices.Sort(want)
	if ws[0].Device != "" || !slices.Equal(got, want) || len(ws[0].Data) == 0 {
		t.Errorf("Welcome entry names device %q and devices %v, want devices %v", ws[0].Device, got, want)
	}
}

// TestRemovedBeforeJoining removes carol from a group before her device
// ever fetched its Welcome: her next sync goes on (the Welcome is
// skipped, she is not in the conversation) instead of failing as a
// whole, and her other conversations still work.
func TestRemovedBeforeJoining(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, carol := register(t, s, "alice"), register(t, s, "bob"), register(t, s, "carol")
	alice.start()
	bob.start()
	team, err := alice.c.NewGroup(ctx, "team", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.c.Remove(ctx, team, "carol"); err != nil {
		t.Fatal(err)
	}
	direct, err := bob.c.NewDirect(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.c.Send(ctx, direct, "hi carol", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := carol.c.Sync(ctx); err != nil {
		t.Fatalf("carol's sync after her removal from a group she never joined: %v", err)
	}
	if got := carol.texts(direct); len(got) != 1 || got[0] != "hi carol" {
		t.Fatalf("carol's 1:1 with bob: %q", got)
	}
	if cv, err := carol.c.Conversation(ctx, team); err == nil && !cv.Left {
		t.Fatalf("carol is in the group she was removed from: %+v", cv)
	}
}
