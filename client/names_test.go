package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// TestDirectFlagNeedsTwoUsers: the 1:1 flag that a member sends counts
// only while the conversation has two users; a member cannot make a
// group of three look like a 1:1 conversation.
func TestDirectFlagNeedsTwoUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, carol := register(t, s, "alice"), register(t, s, "bob"), register(t, s, "carol")
	conv, err := carol.c.NewGroup(ctx, "", "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := client.SendMetadataForTest(ctx, carol.c, conv, "bob", true); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*device{alice, bob} {
		if err := d.c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		cv, err := d.c.Conversation(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		if cv.Name != "bob" || strings.Join(cv.Members, ",") != "alice,bob,carol" {
			t.Fatalf("%s: conversation %+v, want the name bob and three members", d.name, cv)
		}
		if cv.Direct {
			t.Errorf("%s: a group of three users with the 1:1 flag is shown as 1:1", d.name)
		}
	}
	// A 1:1 conversation stays one.
	direct, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if cv, err := bob.c.Conversation(ctx, direct); err != nil || !cv.Direct {
		t.Fatalf("bob's 1:1 with alice: %+v, %v; want direct", cv, err)
	}
}

// TestWelcomeForLeftConversation: a server that delivers a Welcome into
// another MLS group under the id of a conversation the device left cannot
// graft that group onto the old conversation's name and history: the
// Welcome is refused and the old conversation stays as it was.
func TestWelcomeForLeftConversation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	p := newEvilProxy(t, s)
	alice := registerVia(t, p, "alice")
	bob := registerVia(t, p, "bob")

	old, err := alice.c.NewGroup(ctx, "secret", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Send(ctx, old, "old history", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(old, "old history")
	if err := alice.c.Remove(ctx, old, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if cv, err := bob.c.Conversation(ctx, old); err != nil || !cv.Left || cv.Name != "secret" {
		t.Fatalf("bob's old conversation after removal: %+v, %v", cv, err)
	}

	// A new group with bob; the server passes its Welcome off as one for
	// the old conversation, and answers for the old conversation with the
	// new one (and its group id).
	other, err := alice.c.NewGroup(ctx, "", "bob")
	if err != nil {
		t.Fatal(err)
	}
	p.set(func(path string, body []byte) []byte {
		if path != "/v1/inbox" {
			return body
		}
		var in protocol.InboxResponse
		json.Unmarshal(body, &in)
		for i := range in.Entries {
			if in.Entries[i].Conversation == other {
				in.Entries[i].Conversation = old
			}
		}
		body, _ = json.Marshal(in)
		return body
	})
	p.reroute(func(path string) string {
		// The conversation and its ratchet tree (joiners fetch it).
		if rest, ok := strings.CutPrefix(path, fmt.Sprintf("/v1/conversations/%d", old)); ok && (rest == "" || strings.HasPrefix(rest, "/tree")) {
			return fmt.Sprintf("/v1/conversations/%d", other) + rest
		}
		return path
	})
	if err := bob.c.Sync(ctx); err != nil {
		t.Logf("sync: %v", err)
	}
	cv, err := bob.c.Conversation(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if !cv.Left || cv.Name != "secret" {
		t.Fatalf("bob's old conversation after the forged Welcome: %+v; want it left, as it was", cv)
	}
	if got := bob.texts(old); strings.Join(got, "|") != "old history" {
		t.Fatalf("bob's old history: %q", got)
	}
	bob.waitEvent("Welcome refused", func(ev client.Event) bool {
		return ev.Kind == client.EventError && ev.Conversation == old && strings.Contains(ev.Error, "another MLS group")
	})
}

// TestPlainHTTPOnlyOnLoopback: a server URL with plain http is refused
// unless its host is a loopback one, at Register and when a registered
// profile is opened with another server URL; nothing is sent.
func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	d := openDevice(t, s, t.TempDir(), "alice")
	for _, u := range []string{"http://chat.example.org", "http://192.0.2.1:8080", "http://198.51.100.7/", "ftp://chat.example.org", "https://", "http://user@127.0.0.1"} {
		if _, err := d.c.Register(ctx, u, "", "alice"); err == nil || (!strings.Contains(err.Error(), "plain http is refused") && !strings.Contains(err.Error(), "invalid server URL")) {
			t.Errorf("Register at %s: %v, want a refusal", u, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:1", "http://[::1]:1", "http://localhost:1"} {
		if _, err := d.c.Register(ctx, u, "", "alice"); err == nil || strings.Contains(err.Error(), "refused except") || strings.Contains(err.Error(), "invalid server URL") {
			t.Errorf("Register at %s: %v, want it tried (and the server unreachable)", u, err)
		}
	}
	if _, err := d.c.Register(ctx, s.url, "", "alice"); err != nil {
		t.Fatal(err)
	}
	d.close()
	cfg := reopenConfig(d)
	cfg.ServerURL = "http://chat.example.org"
	if c, err := client.Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "plain http is refused") {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Open with ServerURL %s: %v, want a refusal", cfg.ServerURL, err)
	}
}
