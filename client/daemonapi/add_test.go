package daemonapi_test

import (
	"slices"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/internal/testserver"
)

// TestAddUsers: add with users adds several users in one call, and the
// caller's progress function sees the daemon's progress notifications of
// that call; user and users together are invalid params, and remove
// takes one user.
func TestAddUsers(t *testing.T) {
	ts := testserver.Start(t, nil)
	alice, dir := register(t, ts.URL, ts.Fingerprint, "alice")
	for _, name := range []string{"bob", "carol", "dave"} {
		register(t, ts.URL, ts.Fingerprint, name)
	}
	ctx := waitCtx(t)
	daemon(t, alice, dir)
	dc := dial(t, dir)
	conv, err := dc.NewGroup(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	var got []client.Progress
	if err := dc.AddUsers(client.WithProgress(ctx, func(p client.Progress) { got = append(got, p) }), conv, "bob", "@carol", "dave"); err != nil {
		t.Fatal(err)
	}
	cv, err := dc.Conversation(ctx, conv)
	if err != nil || !slices.Equal(cv.Members, []string{"alice", "bob", "carol", "dave"}) {
		t.Fatalf("members after add: %+v, %v", cv, err)
	}
	last := map[string]client.Progress{}
	for _, p := range got {
		last[p.Stage] = p
	}
	if p := last["commit"]; p.Conversation != conv || p.Done != 3 || p.Total != 3 || last["lookup"].Total != 3 || last["claim"].Done != 3 {
		t.Errorf("progress seen: %+v", got)
	}
	err = dc.Call(ctx, "add", daemonapi.UserParams{Conversation: int64(conv), User: "bob", Users: []string{"carol"}}, nil)
	if e, ok := err.(*daemonapi.Error); !ok || e.Code != daemonapi.CodeInvalidParams {
		t.Errorf("add with user and users: %v, want invalid params", err)
	}
	err = dc.Call(ctx, "remove", daemonapi.UserParams{Conversation: int64(conv), Users: []string{"carol", "dave"}}, nil)
	if e, ok := err.(*daemonapi.Error); !ok || e.Code != daemonapi.CodeInvalidParams {
		t.Errorf("remove with users: %v, want invalid params", err)
	}
}
