package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/protocol"
)

// registerLegacy registers name with a client that makes KeyPackages as
// clients did before roles (without the policy extension).
func registerLegacy(t *testing.T, s *server, dir, name string) *device {
	t.Helper()
	d := openDevice(t, s, dir, name)
	client.LegacyKeyPackagesForTest(d.c, true)
	if _, err := d.c.Register(context.Background(), s.url, "", name); err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return d
}

// noRolesLines returns the SystemNoRoles lines of conv's history.
func noRolesLines(t *testing.T, d *device, conv protocol.ConversationID) []*client.Message {
	t.Helper()
	ms, err := d.c.History(context.Background(), conv, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []*client.Message
	for _, m := range ms {
		if m.System != nil && m.System.Kind == client.SystemNoRoles {
			out = append(out, m)
		}
	}
	return out
}

// TestKeyPackageRefreshOnUpgrade: a device whose pool on the server was
// uploaded by a client without roles replaces it when it connects with a
// client that has them, so that a new group with its user gets a policy
// at once; a Welcome sent to one of its old KeyPackages before the
// replacement can still be joined.
func TestKeyPackageRefreshOnUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	dir := t.TempDir()
	bob := registerLegacy(t, s, dir, "bob")
	bob.close()

	// A group made while bob's pool is old has no policy (and uses one
	// of the old packages).
	before, err := alice.c.NewGroup(ctx, "before", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := alice.c.Policy(ctx, before); err != nil || p != nil {
		t.Fatalf("group with bob's old client: policy %v, %v; want none", p, err)
	}

	// bob upgrades: the new client replaces the pool as it syncs.
	bob = openDevice(t, s, dir, "bob")
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatalf("bob syncs with the new client: %v", err)
	}
	bob.waitEvent("bob joins the group made before the upgrade", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == before
	})

	after, err := alice.c.NewGroup(ctx, "after", "bob")
	if err != nil {
		t.Fatal(err)
	}
	p, err := alice.c.Policy(ctx, after)
	if err != nil || p == nil || !slices.Equal(p.Admins, []string{"alice"}) {
		t.Fatalf("group with bob after the upgrade: policy %v, %v; want alice admin", p, err)
	}
	if lines := noRolesLines(t, alice, after); len(lines) != 0 {
		t.Errorf("group after the upgrade says it has no roles: %v", lines[0].System)
	}
	// Adding bob to a group with a policy works too.
	carol := register(t, s, "carol")
	conv, err := carol.c.NewGroup(ctx, "carol's", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := carol.c.Add(ctx, conv, "bob"); err != nil {
		t.Fatalf("carol adds bob after the upgrade: %v", err)
	}
	// The next sync replaces nothing more: the pool is topped up only.
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(bob.logs.String(), "replace=true") {
		t.Errorf("bob's client logged no replacing upload")
	}
	if n := strings.Count(bob.logs.String(), "replaced the KeyPackage pool"); n != 1 {
		t.Errorf("bob's pool was replaced %d times, want once", n)
	}
}

// TestGroupWithOldClient: a new group with a user whose client does not
// support roles is created without a policy and says so in its history;
// adding such a user to a group that has a policy fails with
// ErrRolesUnsupported, naming the user.
func TestGroupWithOldClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	register(t, s, "carol")
	bob := registerLegacy(t, s, t.TempDir(), "bob")

	conv, err := alice.c.NewGroup(ctx, "old friends", "bob", "carol")
	if err != nil {
		t.Fatalf("new group with bob's old client: %v", err)
	}
	if p, err := alice.c.Policy(ctx, conv); err != nil || p != nil {
		t.Fatalf("group with bob's old client: policy %v, %v; want none", p, err)
	}
	lines := noRolesLines(t, alice, conv)
	if len(lines) != 1 || !slices.Equal(lines[0].System.Users, []string{"bob"}) {
		t.Fatalf("no_roles lines %v, want one naming bob", lines)
	}
	if got, want := daemonapi.SystemText(lines[0], "alice"), "bob's client does not support roles yet: this group has no admins"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
	// The line stays at the start of the history.
	if _, err := alice.c.Send(ctx, conv, "hi", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	alice.waitEvent("hi delivered", func(ev client.Event) bool { return ev.Kind == client.EventDelivered && ev.Conversation == conv })
	if ms, err := alice.c.History(ctx, conv, 0, 0); err != nil || len(ms) == 0 || ms[len(ms)-1].Text != "hi" {
		t.Errorf("history after a message: %v, want the message last", err)
	}
	alice.waitEvent("the no_roles line", func(ev client.Event) bool {
		return ev.Kind == client.EventSystem && ev.Conversation == conv && ev.Message.System.Kind == client.SystemNoRoles
	})
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("bob joins", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == conv
	})

	withPolicy, err := alice.c.NewGroup(ctx, "new friends", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := alice.c.Policy(ctx, withPolicy); err != nil || p == nil {
		t.Fatalf("group without old clients: policy %v, %v; want one", p, err)
	}
	err = alice.c.Add(ctx, withPolicy, "bob")
	if !errors.Is(err, client.ErrRolesUnsupported) || !strings.Contains(err.Error(), "bob's client does not support roles") {
		t.Fatalf("add bob's old client to a group with a policy: %v, want ErrRolesUnsupported naming bob", err)
	}
	t.Logf("add: %v", err)
	if ms, err := alice.c.Members(ctx, withPolicy); err != nil || len(ms) != 2 {
		t.Errorf("members after the refused add: %v, %v; want alice and carol", ms, err)
	}
}

// TestKeyPackageRefreshOldServer: against a server older than replace
// (it refuses the unknown field), the upgraded client tops its pool up as
// before instead of failing.
func TestKeyPackageRefreshOldServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	h := s.srv.Config.Handler
	refused := 0
	var mu sync.Mutex
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && r.URL.Path == "/v1/keypackages" {
			body, _ := io.ReadAll(r.Body)
			if bytes.Contains(body, []byte(`"replace"`)) {
				mu.Lock()
				refused++
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"code":"bad_request","message":"json: unknown field \"replace\""}`))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(old.Close)
	dir := t.TempDir()
	bob := openDeviceURL(t, old.URL, "", dir, "bob")
	client.LegacyKeyPackagesForTest(bob.c, true)
	if _, err := bob.c.Register(ctx, old.URL, "", "bob"); err != nil {
		t.Fatal(err)
	}
	bob.close()
	bob = openDeviceURL(t, old.URL, "", dir, "bob")
	for range 2 {
		if err := bob.c.Sync(ctx); err != nil {
			t.Fatalf("sync with a server older than replace: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if refused != 1 {
		t.Errorf("%d uploads with replace, want 1 (then none while the client runs)", refused)
	}
}
