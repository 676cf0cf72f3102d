package daemonapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/internal/testserver"
	"github.com/parley-chat/parley/protocol"
)

// caller calls a method on the wire (TestConformance's call).
type caller func(method string, params, result any) error

// sameError fails unless the daemon's error is the SDK's: the same
// text, and both match want with errors.Is.
func sameError(t *testing.T, what string, daemonErr, sdkErr, want error) {
	t.Helper()
	if daemonErr == nil || sdkErr == nil || daemonErr.Error() != sdkErr.Error() || !errors.Is(daemonErr, want) || !errors.Is(sdkErr, want) {
		t.Errorf("%s: daemon error %v, SDK error %v; want the same, matching %v", what, daemonErr, sdkErr, want)
	}
}

// conformTrust: safety numbers and identity keys (parley verify).
func conformTrust(t *testing.T, ctx context.Context, call caller, dc *daemonapi.Client, alice *client.Client) {
	t.Helper()
	bob := daemonapi.IdentityParams{User: "bob"}
	var sn daemonapi.SafetyNumber
	if err := call("safety_number", bob, &sn); err != nil || sn.User != "bob" || len(sn.Digits) != 60 || len(sn.Groups) != 12 ||
		sn.QR == "" || sn.QRPayload == "" || sn.Verified {
		t.Fatalf("safety_number bob = %+v, %v", sn, err)
	}
	want, err := alice.SafetyNumber(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	got, err := dc.SafetyNumber(ctx, "bob")
	if err != nil || got.Digits != want.Digits || strings.Join(got.Groups, " ") != strings.Join(want.Groups, " ") ||
		got.QR != want.QR || !bytes.Equal(got.QRPayload, want.QRPayload) || got.Verified {
		t.Fatalf("SafetyNumber(bob) = %+v, %v; the SDK's is %+v", got, err, want)
	}
	var changed daemonapi.IdentityChangedResult
	if err := call("identity_changed", bob, &changed); err != nil || changed.Changed {
		t.Errorf("identity_changed bob = %+v, %v", changed, err)
	}
	var lost daemonapi.TrustRolledBackResult
	if err := call("trust_rolled_back", bob, &lost); err != nil || lost.RolledBack {
		t.Errorf("trust_rolled_back bob = %+v, %v", lost, err)
	}
	if c, err := dc.IdentityChanged(ctx, "bob"); err != nil || c {
		t.Errorf("IdentityChanged(bob) = %v, %v", c, err)
	}
	if l, err := dc.TrustRolledBack(ctx, "bob"); err != nil || l {
		t.Errorf("TrustRolledBack(bob) = %v, %v", l, err)
	}
	// No key is pending: the SDK's error.
	_, sdkErr := alice.SafetyNumberPending(ctx, "bob")
	err = call("safety_number_pending", bob, nil)
	if err == nil || sdkErr == nil || err.Error() != sdkErr.Error() {
		t.Errorf("safety_number_pending without a change: %v, the SDK's %v", err, sdkErr)
	}
	if _, err := dc.SafetyNumberPending(ctx, "nobody"); !errors.Is(err, client.ErrUnknownUser) {
		t.Errorf("SafetyNumberPending(nobody) = %v, want unknown_user", err)
	}
	// Acknowledging without a change checks the digits of the pinned key.
	if err := call("acknowledge_identity", daemonapi.AcknowledgeParams{User: "bob", Digits: sn.Digits}, nil); err != nil {
		t.Errorf("acknowledge_identity with the pinned key's digits: %v", err)
	}
	wrong := strings.Repeat("1", 60)
	sameError(t, "AcknowledgeIdentity with wrong digits", dc.AcknowledgeIdentity(ctx, "bob", wrong),
		alice.AcknowledgeIdentity(ctx, "bob", wrong), client.ErrIdentityChanged)
	_, sdkErr = alice.SafetyNumber(ctx, "nobody")
	_, err = dc.SafetyNumber(ctx, "nobody")
	sameError(t, "SafetyNumber(nobody)", err, sdkErr, client.ErrUnknownUser)
	// mark_verified: the safety number says so, through either.
	if err := call("mark_verified", bob, nil); err != nil {
		t.Fatalf("mark_verified bob: %v", err)
	}
	if err := dc.MarkVerified(ctx, "bob"); err != nil {
		t.Fatalf("MarkVerified(bob): %v", err)
	}
	if got, err := dc.SafetyNumber(ctx, "bob"); err != nil || !got.Verified {
		t.Errorf("SafetyNumber(bob) after mark_verified = %+v, %v", got, err)
	}
	if sn, err := alice.SafetyNumber(ctx, "bob"); err != nil || !sn.Verified {
		t.Errorf("the SDK's SafetyNumber(bob) after mark_verified = %+v, %v", sn, err)
	}
}

// conformFiles: send_file and download, with paths the daemon reads and
// writes; bob receives the file.
func conformFiles(t *testing.T, ctx context.Context, call caller, dc *daemonapi.Client, bob *client.Client, conv protocol.ConversationID) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "notes.txt")
	body := []byte("the notes, end to end\n")
	if err := os.WriteFile(src, body, 0o600); err != nil {
		t.Fatal(err)
	}
	var sent daemonapi.SendResult
	if err := call("send_file", daemonapi.SendFileParams{Conversation: int64(conv), Path: src, Caption: "notes"}, &sent); err != nil ||
		sent.Message == nil || sent.Message.Attachment == nil || sent.Message.Attachment.FileName != "notes.txt" ||
		sent.Message.Attachment.Size != int64(len(body)) || sent.Message.Text != "notes" || sent.Queued != nil {
		t.Fatalf("send_file = %+v, %v", sent, err)
	}
	att := sent.Message.Attachment.ID
	err := call("send_file", daemonapi.SendFileParams{Conversation: int64(conv), Path: "notes.txt"}, nil)
	var rpcErr *daemonapi.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != daemonapi.CodeInvalidParams {
		t.Errorf("send_file with a relative path: %v, want invalid params", err)
	}
	// The typed client makes a relative path absolute before the daemon
	// reads it.
	t.Chdir(dir)
	m, err := dc.SendFile(ctx, conv, "notes.txt", client.SendOptions{MediaType: "text/plain"})
	if err != nil || m.Attachment == nil || m.Attachment.FileName != "notes.txt" || m.Attachment.MediaType != "text/plain" {
		t.Fatalf("SendFile(notes.txt) = %+v, %v", m, err)
	}
	if _, err := dc.SendFile(ctx, conv, "missing.txt", client.SendOptions{}); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "missing.txt")) {
		t.Errorf("SendFile of a missing file: %v, want an error naming its absolute path", err)
	}

	out := t.TempDir()
	var dl daemonapi.DownloadResult
	if err := call("download", daemonapi.DownloadParams{Attachment: att, Dst: out}, &dl); err != nil || dl.Path != filepath.Join(out, "notes.txt") {
		t.Fatalf("download = %+v, %v", dl, err)
	}
	if got, err := os.ReadFile(dl.Path); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("downloaded %q, %v; want %q", got, err, body)
	}
	if _, err := dc.Download(ctx, att, dl.Path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Download over an existing file: %v, want fs.ErrExist", err)
	}
	t.Chdir(out)
	if p, err := dc.DownloadWith(ctx, att, "notes.txt", client.DownloadOptions{Force: true}); err != nil || p != dl.Path {
		t.Errorf("DownloadWith(notes.txt, force) = %q, %v; want %q", p, err, dl.Path)
	}
	if err := call("download", daemonapi.DownloadParams{Attachment: att, Dst: "relative"}, nil); !errors.As(err, &rpcErr) || rpcErr.Code != daemonapi.CodeInvalidParams {
		t.Errorf("download to a relative path: %v, want invalid params", err)
	}
	if _, err := dc.Download(ctx, strings.Repeat("0", 64), out); !errors.Is(err, client.ErrUnknownAttachment) {
		t.Errorf("Download of an unknown attachment: %v, want unknown_attachment", err)
	}

	// Bob gets the file that the daemon read.
	if err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := bob.Download(ctx, att, t.TempDir())
	if err != nil {
		t.Fatalf("bob downloads the file: %v", err)
	}
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, body) {
		t.Errorf("bob's copy is %q, %v; want %q", got, err, body)
	}
}

// conformInvites: create_invite, for administrators only; the server's
// refusal matches *client.ServerError as with the SDK.
func conformInvites(t *testing.T, ctx context.Context, call caller, dc *daemonapi.Client, alice *client.Client, ts *testserver.Server) {
	t.Helper()
	_, err := dc.CreateInvite(ctx, 1, time.Hour)
	var se *client.ServerError
	if !errors.As(err, &se) || se.Err.Code != protocol.CodeForbidden || se.Status != 403 {
		t.Fatalf("CreateInvite by a user: %#v, want the server's forbidden", err)
	}
	if _, sdkErr := alice.CreateInvite(ctx, 1, time.Hour); sdkErr == nil || sdkErr.Error() != err.Error() {
		t.Errorf("CreateInvite: daemon error %v, the SDK's %v", err, sdkErr)
	}
	admin := true
	if _, err := ts.Service.UpdateUser(ctx, "alice", protocol.AdminUserUpdate{Admin: &admin}); err != nil {
		t.Fatal(err)
	}
	var info protocol.InviteInfo
	if err := call("create_invite", daemonapi.CreateInviteParams{Uses: 2, TTLSeconds: 3600}, &info); err != nil || info.Code == "" || info.UsesLeft != 2 ||
		info.Expires.Sub(info.Created) != time.Hour {
		t.Fatalf("create_invite = %+v, %v", info, err)
	}
	inv, err := dc.CreateInvite(ctx, 1, 24*time.Hour)
	if err != nil || inv.Code == "" || inv.Code == info.Code {
		t.Fatalf("CreateInvite = %+v, %v", inv, err)
	}
	link, err := dc.InviteLink(inv.Code)
	want, _ := alice.InviteLink(inv.Code)
	if err != nil || link != want || link.Fingerprint != ts.Fingerprint {
		t.Errorf("InviteLink = %+v, %v; the SDK's is %+v", link, err, want)
	}
	if err := call("create_invite", daemonapi.CreateInviteParams{Uses: 0, TTLSeconds: 60}, nil); err == nil {
		t.Error("create_invite with 0 uses succeeded")
	}
}

// conformRecreate: recreate opens a new conversation with the same
// members.
func conformRecreate(t *testing.T, ctx context.Context, call caller, dc *daemonapi.Client, conv protocol.ConversationID) {
	t.Helper()
	var r daemonapi.NewConversationResult
	if err := call("recreate", daemonapi.ConversationParams{Conversation: int64(conv)}, &r); err != nil || r.Conversation == 0 || r.Conversation == int64(conv) {
		t.Fatalf("recreate %d = %+v, %v", conv, r, err)
	}
	cv, err := dc.Conversation(ctx, protocol.ConversationID(r.Conversation))
	if err != nil || !cv.Direct || strings.Join(cv.Members, ",") != "alice,bob" {
		t.Errorf("the recreated conversation = %+v, %v", cv, err)
	}
	if _, err := dc.Recreate(ctx, 999999); !errors.Is(err, client.ErrUnknownConversation) {
		t.Errorf("Recreate(999999) = %v, want unknown_conversation", err)
	}
}

// conformSearch: search finds what the SDK's Search finds, with the same
// filters; set_muted mutes a conversation for the SDK too.
func conformSearch(t *testing.T, ctx context.Context, call caller, dc *daemonapi.Client, alice *client.Client, conv protocol.ConversationID) {
	t.Helper()
	var r daemonapi.MessagesResult
	if err := call("search", daemonapi.SearchParams{Text: "HELLO al", From: "bob", Conversation: int64(conv)}, &r); err != nil ||
		len(r.Messages) != 1 || r.Messages[0].Text != "hello alice" || r.Messages[0].Conversation != int64(conv) {
		t.Fatalf("search hello al = %+v, %v", r, err)
	}
	after := r.Messages[0].Sent.Add(time.Millisecond)
	if err := call("search", daemonapi.SearchParams{Text: "hello", After: &after}, &r); err != nil || len(r.Messages) != 0 {
		t.Errorf("search hello after the message = %+v, %v; want none", r, err)
	}
	want, err := alice.Search(ctx, client.SearchQuery{Text: "h"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := dc.Search(ctx, client.SearchQuery{Text: "h"})
	if err != nil || len(got) != len(want) || len(got) == 0 {
		t.Fatalf("Search(h) = %d messages, %v; the SDK's %d", len(got), err, len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Text != want[i].Text {
			t.Errorf("Search(h)[%d] = %q, the SDK's %q", i, got[i].Text, want[i].Text)
		}
	}
	if err := call("search", daemonapi.SearchParams{Limit: -1}, nil); err == nil {
		t.Error("search with limit -1 succeeded")
	}
	if err := call("set_muted", daemonapi.MutedParams{Conversation: int64(conv), Muted: true}, nil); err != nil {
		t.Fatalf("set_muted: %v", err)
	}
	if cv, err := alice.Conversation(ctx, conv); err != nil || !cv.Muted {
		t.Errorf("the SDK's conversation after set_muted = %+v, %v", cv, err)
	}
	if err := dc.SetMuted(ctx, conv, false); err != nil {
		t.Fatal(err)
	}
	if cv, err := dc.Conversation(ctx, conv); err != nil || cv.Muted {
		t.Errorf("Conversation after SetMuted(false) = %+v, %v", cv, err)
	}
	if err := dc.SetMuted(ctx, 999999, true); !errors.Is(err, client.ErrUnknownConversation) {
		t.Errorf("SetMuted(999999) = %v, want unknown_conversation", err)
	}
}

// conformPolicy: policy, set_role, set_policy and set_timer in a new group.
func conformPolicy(t *testing.T, ctx context.Context, call caller, dc *daemonapi.Client) {
	t.Helper()
	var opened daemonapi.NewConversationResult
	if err := call("new_group", daemonapi.NewGroupParams{Title: "ruled", Members: []string{"bob"}}, &opened); err != nil {
		t.Fatal(err)
	}
	conv := opened.Conversation
	var r daemonapi.PolicyResult
	if err := call("policy", daemonapi.ConversationParams{Conversation: conv}, &r); err != nil || r.Policy == nil ||
		strings.Join(r.Policy.Admins, ",") != "alice" || r.Policy.Rules["remove"] != "admins" || r.Policy.Rules["add"] != "members" {
		t.Fatalf("policy = %+v, %v", r.Policy, err)
	}
	if err := call("set_role", daemonapi.RoleParams{Conversation: conv, User: "bob", Role: "admin"}, nil); err != nil {
		t.Fatalf("set_role bob admin: %v", err)
	}
	if err := call("set_policy", daemonapi.PolicyParams{Conversation: conv, Rules: map[string]string{"add": "admins"}}, nil); err != nil {
		t.Fatalf("set_policy add=admins: %v", err)
	}
	p, err := dc.Policy(ctx, protocol.ConversationID(conv))
	if err != nil || strings.Join(p.Admins, ",") != "alice,bob" || p.Rule(protocol.ActionAdd) != protocol.WhoAdmins {
		t.Fatalf("Policy = %v, %v", p, err)
	}
	if err := dc.SetRole(ctx, protocol.ConversationID(conv), "bob", false); err != nil {
		t.Fatalf("SetRole(bob, member): %v", err)
	}
	if err := dc.SetPolicy(ctx, protocol.ConversationID(conv), map[protocol.Action]protocol.Who{protocol.ActionAdd: protocol.WhoMembers}); err != nil {
		t.Fatalf("SetPolicy(add=members): %v", err)
	}
	if err := call("set_timer", daemonapi.TimerParams{Conversation: conv, Timer: 3600}, nil); err != nil {
		t.Fatalf("set_timer 3600: %v", err)
	}
	if err := call("policy", daemonapi.ConversationParams{Conversation: conv}, &r); err != nil || r.Policy == nil || r.Policy.Timer != 3600 || r.Policy.Rules["timer"] != "members" {
		t.Fatalf("policy after set_timer = %+v, %v; want timer 3600", r.Policy, err)
	}
	if err := dc.SetTimer(ctx, protocol.ConversationID(conv), 0); err != nil {
		t.Fatalf("SetTimer(off): %v", err)
	}
	if p, err := dc.Policy(ctx, protocol.ConversationID(conv)); err != nil || p.Timer != 0 {
		t.Fatalf("Policy after SetTimer(off) = %v, %v", p, err)
	}
	for _, bad := range []struct {
		method string
		params any
	}{
		{"set_role", daemonapi.RoleParams{Conversation: conv, User: "bob", Role: "boss"}},
		{"set_policy", daemonapi.PolicyParams{Conversation: conv, Rules: map[string]string{"kick": "admins"}}},
		{"set_policy", daemonapi.PolicyParams{Conversation: conv}},
		{"set_timer", daemonapi.TimerParams{Conversation: conv, Timer: 60}},
		{"set_timer", daemonapi.TimerParams{Conversation: conv, Timer: -1}},
	} {
		var rpcErr *daemonapi.Error
		if err := call(bad.method, bad.params, nil); !errors.As(err, &rpcErr) || rpcErr.Code != daemonapi.CodeInvalidParams {
			t.Errorf("%s %+v: %v, want invalid params", bad.method, bad.params, err)
		}
	}
}

// TestMethodsDocumented: docs/daemon.md has a row of the methods table
// for every method of the server.
func TestMethodsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "daemon.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		for _, name := range strings.Split(first, ", ") {
			rows[strings.Trim(name, "`")] = true
		}
	}
	for _, name := range daemonapi.MethodNames() {
		if !rows[name] {
			t.Errorf("method %q is not in the methods table of docs/daemon.md", name)
		}
	}
}

// TestErrorDetails: the SDK's error types that callers act on cross the
// socket: errors.As finds them with their details, errors.Is the
// sentinel, and the text is the SDK's.
func TestErrorDetails(t *testing.T) {
	alarm := client.Alarm{User: "eve", Device: "d1", Reason: "an external join", Seq: 7, Time: time.Unix(1700000000, 0).UTC(), Unrecoverable: true}
	for _, tc := range []struct {
		err      error
		sentinel error
		check    func(error) bool
	}{
		{fmt.Errorf("client: send: %w", &client.UnsafeError{Conversation: 4, Alarm: alarm}), client.ErrConversationUnsafe, func(err error) bool {
			var ue *client.UnsafeError
			return errors.As(err, &ue) && ue.Conversation == 4 && ue.Alarm == alarm
		}},
		{fmt.Errorf("client: send: %w", &client.TrustRollbackError{User: "bob"}), client.ErrTrustRollback, func(err error) bool {
			var lost *client.TrustRollbackError
			return errors.As(err, &lost) && lost.User == "bob"
		}},
		{fmt.Errorf("client: send: %w", &client.IdentityChangedError{User: "bob"}), client.ErrIdentityChanged, func(err error) bool {
			var ic *client.IdentityChangedError
			return errors.As(err, &ic) && ic.User == "bob"
		}},
		{fmt.Errorf("client: create invite: %w", &client.ServerError{Status: 403, Err: protocol.Error{Code: protocol.CodeForbidden, Message: "administrators only"}}), nil, func(err error) bool {
			var se *client.ServerError
			return errors.As(err, &se) && se.Status == 403 && se.Err.Code == protocol.CodeForbidden
		}},
	} {
		b, err := json.Marshal(daemonapi.ToError(tc.err))
		if err != nil {
			t.Fatal(err)
		}
		var got *daemonapi.Error
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.Error() != tc.err.Error() || !tc.check(got) || (tc.sentinel != nil && !errors.Is(got, tc.sentinel)) {
			t.Errorf("%v crossed the socket as %s: the SDK's error is lost", tc.err, b)
		}
	}
}

// conformTyping: send_typing and the typing event, both ways between the
// daemon's profile (alice) and bob, who runs a connection of his own for
// it.
func conformTyping(t *testing.T, ctx context.Context, call caller, dc *daemonapi.Client, dir string, bob *client.Client, conv protocol.ConversationID) {
	t.Helper()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); bob.Run(runCtx) }()
	defer func() { stop(); <-done }()
	bobEvent := func(what string, f func(client.Event) bool) client.Event {
		t.Helper()
		for {
			select {
			case ev := <-bob.Events():
				if f(ev) {
					return ev
				}
			case <-ctx.Done():
				t.Fatalf("bob: no %s event", what)
			}
		}
	}
	// The daemon's connection is up once a new subscriber learns so.
	sub := dial(t, dir)
	if err := sub.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}
	for ev := nextEvent(t, sub, "connection"); ev.Connection != "connected"; ev = nextEvent(t, sub, "connection") {
	}
	// bob's connection follows conv once a message reaches him over it.
	if err := call("send", daemonapi.SendParams{Conversation: int64(conv), Text: "typing next"}, nil); err != nil {
		t.Fatal(err)
	}
	bobEvent("message", func(ev client.Event) bool {
		return ev.Kind == client.EventMessage && ev.Message.Text == "typing next"
	})
	if err := call("send_typing", daemonapi.TypingParams{Conversation: int64(conv), Typing: true}, nil); err != nil {
		t.Fatalf("send_typing: %v", err)
	}
	bobEvent("alice typing", func(ev client.Event) bool {
		return ev.Kind == client.EventTyping && ev.User == "alice" && ev.Conversation == conv && ev.Typing
	})
	if err := dc.SendTyping(ctx, conv, false); err != nil {
		t.Fatalf("SendTyping: %v", err)
	}
	bobEvent("alice stopped", func(ev client.Event) bool {
		return ev.Kind == client.EventTyping && ev.User == "alice" && !ev.Typing
	})
	if err := bob.SendTyping(ctx, conv, true); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, sub, "typing")
	if ev.User != "bob" || ev.Conversation != int64(conv) || !ev.Typing || ev.Device == "" {
		t.Errorf("typing event = %+v, want bob typing in %d", ev, conv)
	}
	if e, err := ev.SDK(); err != nil || e.Kind != client.EventTyping || !e.Typing {
		t.Errorf("typing event as the SDK's = %+v, %v", e, err)
	}
	if err := call("send_typing", daemonapi.TypingParams{Conversation: 0, Typing: true}, nil); err == nil {
		t.Error("send_typing to conversation 0 succeeded")
	}
}

// conformChannel: new_channel creates a channel whose creator is admin;
// in bob's channel alice reads but may not post (not_permitted).
func conformChannel(t *testing.T, ctx context.Context, call caller, dc *daemonapi.Client, bob *client.Client) {
	t.Helper()
	var opened daemonapi.NewConversationResult
	if err := call("new_channel", daemonapi.NewGroupParams{Title: "news", Members: []string{"bob"}}, &opened); err != nil {
		t.Fatal(err)
	}
	var cv daemonapi.Conversation
	if err := call("conversation", daemonapi.ConversationParams(opened), &cv); err != nil || !cv.Channel || !cv.Admin || cv.Title != "news" {
		t.Fatalf("the new channel = %+v, %v; want a channel alice is admin of", cv, err)
	}
	conv, err := dc.NewChannel(ctx, "notes", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := dc.Policy(ctx, conv); err != nil || p.Rule(protocol.ActionPost) != protocol.WhoAdmins {
		t.Fatalf("NewChannel's policy = %v, %v; want post=admins", p, err)
	}
	bulletin, err := bob.NewChannel(ctx, "bulletin", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := dc.Conversation(ctx, bulletin)
	if err != nil || !got.Channel || got.Admin {
		t.Fatalf("bob's channel for alice = %+v, %v; want a channel alice is not admin of", got, err)
	}
	var rpcErr *daemonapi.Error
	err = call("send", daemonapi.SendParams{Conversation: int64(bulletin), Text: "may I?"}, nil)
	if !errors.As(err, &rpcErr) || rpcErr.Data == nil || rpcErr.Data.Kind != "not_permitted" || !errors.Is(err, protocol.ErrPolicyViolation) {
		t.Errorf("alice posts in bob's channel: %v, want not_permitted", err)
	}
}

// conformDevices: devices, rename_device, revoke_device (the last device
// is refused without force) and add_own_devices.
func conformDevices(t *testing.T, ctx context.Context, call caller, dc *daemonapi.Client) {
	t.Helper()
	var r daemonapi.DevicesResult
	if err := call("devices", nil, &r); err != nil || len(r.Devices) != 1 || !r.Devices[0].This || r.Devices[0].Forged {
		t.Fatalf("devices = %+v, %v", r, err)
	}
	id := r.Devices[0].ID
	if err := call("rename_device", daemonapi.DeviceParams{Device: string(id), Name: "laptop"}, nil); err != nil {
		t.Fatal(err)
	}
	if ds, err := dc.Devices(ctx); err != nil || len(ds) != 1 || ds[0].Name != "laptop" {
		t.Errorf("Devices after rename = %+v, %v", ds, err)
	}
	err := dc.RevokeOwnDevice(ctx, id, false)
	if err == nil || !strings.Contains(err.Error(), "last active device") {
		t.Errorf("RevokeOwnDevice(the last one) = %v", err)
	}
	if err := call("revoke_device", daemonapi.DeviceParams{Device: ""}, nil); err == nil {
		t.Error("revoke_device without a device: accepted")
	}
	var added daemonapi.AddOwnDevicesResult
	if err := call("add_own_devices", nil, &added); err != nil || added.Conversations != 0 || len(added.Failed) != 0 {
		t.Errorf("add_own_devices = %+v, %v", added, err)
	}
	if n, failed, err := dc.AddOwnDevices(ctx); err != nil || n != 0 || len(failed) != 0 {
		t.Errorf("AddOwnDevices = %d %v %v", n, failed, err)
	}
}

// conformLink: link_device and link_device_confirm link a new device,
// with the history of conv (TestLinkDevice tries the rest);
// cancel_link_device without a link cancels nothing.
func conformLink(t *testing.T, ctx context.Context, call caller, url, fp string, conv protocol.ConversationID) {
	t.Helper()
	var ok daemonapi.OK
	if err := call("cancel_link_device", nil, &ok); err != nil || ok.OK {
		t.Errorf("cancel_link_device without a link = %+v, %v", ok, err)
	}
	phone := startNewDevice(t, url, fp, "phone")
	var q daemonapi.LinkDeviceResult
	if err := call("link_device", daemonapi.LinkDeviceParams{Code: phone.code}, &q); err != nil || q.Name != "phone" || q.Device == "" {
		t.Fatalf("link_device = %+v, %v", q, err)
	}
	if c := phone.confirmation(t); c != q.Confirmation {
		t.Errorf("confirmations: the new device %q, link_device %q", c, q.Confirmation)
	}
	var linked daemonapi.LinkedDeviceResult
	err := call("link_device_confirm", daemonapi.LinkConfirmParams{Link: q.Link, Accept: true, History: []protocol.ConversationID{conv}}, &linked)
	if err != nil || linked.Device != q.Device || linked.Conversations < 1 || linked.History.Conversations != 1 || linked.History.Messages < 2 || linked.HistoryError != "" {
		t.Fatalf("link_device_confirm = %+v, %v", linked, err)
	}
	if err := phone.result(t); err != nil {
		t.Fatalf("the new device's link: %v", err)
	}
	var r daemonapi.DevicesResult
	if err := call("devices", nil, &r); err != nil || len(r.Devices) != 2 {
		t.Errorf("devices after link_device_confirm = %+v, %v", r, err)
	}
}
