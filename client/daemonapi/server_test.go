package daemonapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/internal/testserver"
	"github.com/parley-chat/parley/protocol"
)

// hangGuard bounds every wait of these tests; they synchronise on
// responses and events, never on time.
const hangGuard = 2 * time.Minute

// startParleyd runs a parleyd core on a real SQLite file behind a
// loopback TLS server; it returns its URL and certificate fingerprint.
func startParleyd(t *testing.T) (url, fingerprint string) {
	t.Helper()
	ts := testserver.Start(t, nil)
	return ts.URL, ts.Fingerprint
}

// register opens a new profile in a fresh directory and registers name.
func register(t *testing.T, url, fp, name string) (*client.Client, string) {
	t.Helper()
	dir := t.TempDir()
	c, err := client.Open(context.Background(), client.Config{
		ProfileDir: dir, Passphrase: []byte("correct horse " + name),
		KDF:       store.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1},
		ServerURL: url, TLSFingerprint: fp,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Register(context.Background(), url, "", name); err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return c, dir
}

// daemon serves alice's client on the socket of her profile, running
// its sync loop, until the test ends.
func daemon(t testing.TB, c *client.Client, dir string) {
	t.Helper()
	ln, err := daemonapi.Listen(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	wg.Go(func() {
		if err := daemonapi.NewServer(c, dir, nil).Serve(ctx, ln); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if _, err := os.Stat(filepath.Join(dir, daemonapi.SocketFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind after the server stopped: %v", err)
		}
	})
}

func dial(t testing.TB, dir string) *daemonapi.Client {
	t.Helper()
	dc, err := daemonapi.Dial(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	return dc
}

// waitCtx is a context bounded by the hang guard.
func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

// nextEvent waits for the next event of kind (skipping others).
func nextEvent(t *testing.T, dc *daemonapi.Client, kind string) *daemonapi.Event {
	t.Helper()
	ctx := waitCtx(t)
	for {
		ev, err := dc.NextEvent(ctx)
		if err != nil {
			t.Fatalf("waiting for a %s event: %v", kind, err)
		}
		if ev.Event == kind {
			return ev
		}
	}
}

// TestConformance calls every method over the socket, with the wire
// schema and through the typed client.
func TestConformance(t *testing.T) {
	ts := testserver.Start(t, nil)
	url, fp := ts.URL, ts.Fingerprint
	alice, dir := register(t, url, fp, "alice")
	bob, _ := register(t, url, fp, "bob")
	register(t, url, fp, "carol")
	ctx := waitCtx(t)
	conv, err := bob.NewDirect(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	daemon(t, alice, dir)
	dc := dial(t, dir)
	sub := dial(t, dir)
	// call calls a method on the wire and records that it was tested.
	called := map[string]bool{}
	call := func(method string, params, result any) error {
		called[method] = true
		return dc.Call(ctx, method, params, result)
	}
	if err := sub.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}

	// whoami
	var acct daemonapi.Account
	if err := call("whoami", nil, &acct); err != nil || acct.User != "alice" || acct.Profile != dir || acct.IdentityKey == "" {
		t.Fatalf("whoami = %+v, %v", acct, err)
	}
	// sync: alice joins bob's conversation.
	if err := call("sync", nil, nil); err != nil {
		t.Fatalf("sync: %v", err)
	}
	var convs daemonapi.ConversationsResult
	if err := call("conversations", nil, &convs); err != nil || len(convs.Conversations) != 1 ||
		convs.Conversations[0].ID != int64(conv) || convs.Conversations[0].Title != "bob" || !convs.Conversations[0].Direct {
		t.Fatalf("conversations = %+v, %v", convs, err)
	}
	var cv daemonapi.Conversation
	if err := call("conversation", daemonapi.ConversationParams{Conversation: int64(conv)}, &cv); err != nil || cv.ID != int64(conv) {
		t.Fatalf("conversation = %+v, %v", cv, err)
	}
	var members daemonapi.MembersResult
	if err := call("members", daemonapi.ConversationParams{Conversation: int64(conv)}, &members); err != nil || len(members.Members) != 2 {
		t.Fatalf("members = %+v, %v", members, err)
	}

	// bob writes: the subscriber gets the message as an event.
	if _, err := bob.Send(ctx, conv, "hello alice", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, sub, "message")
	if ev.Message == nil || ev.Message.Text != "hello alice" || ev.Message.Sender != "bob" || ev.Conversation != int64(conv) {
		t.Fatalf("message event = %+v", ev)
	}
	called["subscribe"] = true // the subscription delivered the event
	var unseen daemonapi.EventsResult
	if err := call("unseen", nil, &unseen); err != nil || len(unseen.Events) != 1 || unseen.Events[0].Message.ID != ev.Message.ID {
		t.Fatalf("unseen = %+v, %v", unseen, err)
	}
	if err := call("mark_shown", daemonapi.MarkParams{Conversation: int64(conv), Seq: ev.Message.Seq}, nil); err != nil {
		t.Fatalf("mark_shown: %v", err)
	}
	if err := call("unseen", nil, &unseen); err != nil || len(unseen.Events) != 0 {
		t.Fatalf("unseen after mark_shown = %+v, %v", unseen, err)
	}

	// alice answers, replying to bob's message.
	var sent daemonapi.SendResult
	if err := call("send", daemonapi.SendParams{Conversation: int64(conv), Text: "hi bob", ReplyTo: ev.Message.ID}, &sent); err != nil ||
		sent.Message == nil || sent.Message.Text != "hi bob" || sent.Message.ReplyTo != ev.Message.ID || sent.Queued != nil {
		t.Fatalf("send = %+v, %v", sent, err)
	}
	if err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Messages(ctx, conv, 0, 0)
	if err != nil || len(got) != 2 || got[1].Text != "hi bob" || got[1].ReplyTo.String() != ev.Message.ID {
		t.Fatalf("bob's messages = %v, %v", got, err)
	}

	var hist daemonapi.MessagesResult
	if err := call("history", daemonapi.HistoryParams{Conversation: int64(conv)}, &hist); err != nil || len(hist.Messages) < 2 {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	if err := call("messages", daemonapi.HistoryParams{Conversation: int64(conv), Last: 1}, &hist); err != nil ||
		len(hist.Messages) != 1 || hist.Messages[0].Text != "hi bob" {
		t.Fatalf("messages --last 1 = %+v, %v", hist, err)
	}
	if err := call("mark_read_up_to", daemonapi.MarkParams{Conversation: int64(conv), Seq: ev.Message.Seq}, nil); err != nil {
		t.Fatalf("mark_read_up_to: %v", err)
	}
	if err := call("mark_read", daemonapi.ConversationParams{Conversation: int64(conv)}, nil); err != nil {
		t.Fatalf("mark_read: %v", err)
	}

	// Messages change: react, edit, delete.
	own := sent.Message.ID
	for _, step := range []struct {
		method string
		params daemonapi.TargetParams
	}{
		{"react", daemonapi.TargetParams{Conversation: int64(conv), Message: ev.Message.ID, Emoji: "👍"}},
		{"edit", daemonapi.TargetParams{Conversation: int64(conv), Message: own, Text: "hi bob!"}},
		{"delete", daemonapi.TargetParams{Conversation: int64(conv), Message: own}},
	} {
		if err := call(step.method, step.params, nil); err != nil {
			t.Fatalf("%s: %v", step.method, err)
		}
	}
	if err := call("messages", daemonapi.HistoryParams{Conversation: int64(conv)}, &hist); err != nil || len(hist.Messages) != 2 ||
		len(hist.Messages[0].Reactions) != 1 || hist.Messages[0].Reactions[0].Emoji != "👍" || !hist.Messages[1].Deleted || !hist.Messages[1].Edited {
		t.Fatalf("messages after react, edit, delete = %+v, %v", hist, err)
	}

	// Conversations change: new_direct, new_group, add, remove,
	// set_name, set_topic, leave.
	var opened daemonapi.NewConversationResult
	if err := call("new_direct", daemonapi.NewDirectParams{User: "bob"}, &opened); err != nil || opened.Conversation != int64(conv) {
		t.Fatalf("new_direct bob = %+v, %v; want the existing %d", opened, err, conv)
	}
	if err := call("new_group", daemonapi.NewGroupParams{Title: "team", Members: []string{"bob"}}, &opened); err != nil || opened.Conversation == 0 {
		t.Fatalf("new_group = %+v, %v", opened, err)
	}
	group := opened.Conversation
	for _, step := range []struct {
		method string
		params any
	}{
		{"add", daemonapi.UserParams{Conversation: group, User: "carol"}},
		{"remove", daemonapi.UserParams{Conversation: group, User: "carol"}},
		{"set_name", daemonapi.TextParams{Conversation: group, Text: "crew"}},
		{"set_topic", daemonapi.TextParams{Conversation: group, Text: "plans"}},
	} {
		if err := call(step.method, step.params, nil); err != nil {
			t.Fatalf("%s: %v", step.method, err)
		}
	}
	if err := call("conversation", daemonapi.ConversationParams{Conversation: group}, &cv); err != nil ||
		cv.Name != "crew" || cv.Topic != "plans" || strings.Join(cv.Members, ",") != "alice,bob" {
		t.Fatalf("group after add, remove, set_name, set_topic = %+v, %v", cv, err)
	}
	if err := call("add", daemonapi.UserParams{Conversation: group, User: "nobody"}, nil); !errors.Is(err, client.ErrUnknownUser) {
		t.Errorf("add nobody: %v, want unknown_user", err)
	}
	if err := call("leave", daemonapi.ConversationParams{Conversation: group}, nil); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if err := call("conversation", daemonapi.ConversationParams{Conversation: group}, &cv); err != nil || !cv.Left {
		t.Fatalf("group after leave = %+v, %v", cv, err)
	}

	// The typed client: SDK types and SDK errors.
	if ms, err := dc.History(ctx, conv, 0, 0); err != nil || ms[len(ms)-1].ID.String() != own {
		t.Fatalf("History = %v, %v", ms, err)
	}
	if a, err := dc.Whoami(); err != nil || a.User != "alice" || len(a.IdentityKey) == 0 {
		t.Fatalf("Whoami = %+v, %v", a, err)
	}
	_, err = dc.Conversation(ctx, protocol.ConversationID(999999))
	var rpcErr *daemonapi.Error
	if !errors.Is(err, client.ErrUnknownConversation) || !errors.As(err, &rpcErr) ||
		rpcErr.Code != daemonapi.CodeFailure || rpcErr.Data == nil || rpcErr.Data.Kind != "unknown_conversation" {
		t.Fatalf("Conversation(999999) error = %#v, want unknown_conversation", err)
	}
	if _, err := alice.Conversation(ctx, 999999); err.Error() != rpcErr.Message {
		t.Errorf("the daemon's error %q is not the SDK's %q", rpcErr.Message, err)
	}

	conformTyping(t, ctx, call, dc, dir, bob, conv)
	conformTrust(t, ctx, call, dc, alice)
	conformFiles(t, ctx, call, dc, bob, conv)
	conformInvites(t, ctx, call, dc, alice, ts)
	conformRecreate(t, ctx, call, dc, conv)
	conformSearch(t, ctx, call, dc, alice, conv)
	conformPolicy(t, ctx, call, dc)
	conformChannel(t, ctx, call, dc, bob)
	conformDevices(t, ctx, call, dc)
	conformLink(t, ctx, call, url, fp, conv)
	conformBackup(t, ctx, call, dc)

	// Every method of the server is called above: a method added
	// without a conformance test fails here.
	for _, name := range daemonapi.MethodNames() {
		if !called[name] {
			t.Errorf("method %q has no conformance test (call it in TestConformance)", name)
		}
	}
}

// rawConn is a connection that writes lines and reads responses.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	sc *bufio.Scanner
}

func dialRaw(t *testing.T, dir string) *rawConn {
	t.Helper()
	nc, err := net.Dial("unix", filepath.Join(dir, daemonapi.SocketFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(hangGuard))
	return &rawConn{t: t, nc: nc, sc: bufio.NewScanner(nc)}
}

// roundTrip writes line and reads one response.
func (r *rawConn) roundTrip(line string) daemonapi.Response {
	r.t.Helper()
	if _, err := r.nc.Write([]byte(line + "\n")); err != nil {
		r.t.Fatal(err)
	}
	if !r.sc.Scan() {
		r.t.Fatalf("no response to %s: %v", line, r.sc.Err())
	}
	var resp daemonapi.Response
	if err := json.Unmarshal(r.sc.Bytes(), &resp); err != nil {
		r.t.Fatalf("response %s: %v", r.sc.Bytes(), err)
	}
	if resp.JSONRPC != "2.0" {
		r.t.Errorf("response %s: jsonrpc is not 2.0", r.sc.Bytes())
	}
	return resp
}

// TestMalformedRequests: bad lines get JSON-RPC errors, and the
// connection and the others go on.
func TestMalformedRequests(t *testing.T) {
	url, fp := startParleyd(t)
	alice, dir := register(t, url, fp, "alice")
	daemon(t, alice, dir)
	other := dialRaw(t, dir)
	r := dialRaw(t, dir)
	for _, tc := range []struct {
		line string
		code int
		id   string
	}{
		{`this is not json`, daemonapi.CodeParseError, "null"},
		{`{"jsonrpc":"2.0","id":1,"method":"whoami"`, daemonapi.CodeParseError, "null"},
		{`[{"jsonrpc":"2.0","id":1,"method":"whoami"}]`, daemonapi.CodeInvalidRequest, "null"},
		{`42`, daemonapi.CodeInvalidRequest, "null"},
		{`{"jsonrpc":"1.0","id":2,"method":"whoami"}`, daemonapi.CodeInvalidRequest, "2"},
		{`{"id":3,"method":"whoami"}`, daemonapi.CodeInvalidRequest, "3"},
		{`{"jsonrpc":"2.0","id":4}`, daemonapi.CodeInvalidRequest, "4"},
		{`{"jsonrpc":"2.0","id":{"a":1},"method":"whoami"}`, daemonapi.CodeInvalidRequest, "null"},
		{`{"jsonrpc":"2.0","id":5,"method":"whoami","params":"x"}`, daemonapi.CodeInvalidRequest, "5"},
		{`{"jsonrpc":"2.0","id":6,"method":"no_such_method"}`, daemonapi.CodeMethodNotFound, "6"},
		{`{"jsonrpc":"2.0","id":7,"method":"history","params":{"conversation":"one"}}`, daemonapi.CodeInvalidParams, "7"},
		{`{"jsonrpc":"2.0","id":8,"method":"history","params":{"conversation":1,"bogus":true}}`, daemonapi.CodeInvalidParams, "8"},
		{`{"jsonrpc":"2.0","id":9,"method":"history","params":{}}`, daemonapi.CodeInvalidParams, "9"},
		{`{"jsonrpc":"2.0","id":"ten","method":"send","params":{"conversation":1,"text":""}}`, daemonapi.CodeInvalidParams, `"ten"`},
		{`{"jsonrpc":"2.0","id":11,"method":"send","params":[1,"hi"]}`, daemonapi.CodeInvalidParams, "11"},
		{`{"jsonrpc":"2.0","id":12,"method":"whoami","params":{"x":1}}`, daemonapi.CodeInvalidParams, "12"},
		{`{"jsonrpc":"2.0","id":13,"method":"safety_number","params":{"user":5}}`, daemonapi.CodeInvalidParams, "13"},
		{`{"jsonrpc":"2.0","id":14,"method":"mark_verified","params":{}}`, daemonapi.CodeInvalidParams, "14"},
		{`{"jsonrpc":"2.0","id":15,"method":"acknowledge_identity","params":{"user":"bob"}}`, daemonapi.CodeInvalidParams, "15"},
		{`{"jsonrpc":"2.0","id":16,"method":"send_file","params":{"conversation":1,"path":"notes.txt"}}`, daemonapi.CodeInvalidParams, "16"},
		{`{"jsonrpc":"2.0","id":17,"method":"download","params":{"attachment":"ab","dst":"out"}}`, daemonapi.CodeInvalidParams, "17"},
		{`{"jsonrpc":"2.0","id":18,"method":"create_invite","params":{"uses":"many","ttl_seconds":60}}`, daemonapi.CodeInvalidParams, "18"},
		{`{"jsonrpc":"2.0","id":19,"method":"create_invite","params":{"uses":1,"ttl_seconds":0}}`, daemonapi.CodeInvalidParams, "19"},
		{`{"jsonrpc":"2.0","id":20,"method":"recreate","params":{"conversation":-1}}`, daemonapi.CodeInvalidParams, "20"},
		{`{"jsonrpc":"2.0","id":21,"method":"identity_changed","params":{"user":["bob"]}}`, daemonapi.CodeInvalidParams, "21"},
	} {
		resp := r.roundTrip(tc.line)
		if resp.Error != nil && tc.code == daemonapi.CodeParseError && !strings.Contains(resp.Error.Message, strconv.Quote(tc.line)) {
			t.Errorf("%s: the parse error %q does not quote the line", tc.line, resp.Error.Message)
		}
		if resp.Error == nil || resp.Error.Code != tc.code || string(resp.ID) != tc.id {
			t.Errorf("%s: got id %s error %+v, want id %s code %d", tc.line, resp.ID, resp.Error, tc.id, tc.code)
		}
	}
	// Every method refuses unknown fields and positional params.
	for _, name := range daemonapi.MethodNames() {
		for _, params := range []string{`{"no_such_param":1}`, `[1]`} {
			line := `{"jsonrpc":"2.0","id":"p","method":"` + name + `","params":` + params + `}`
			if resp := r.roundTrip(line); resp.Error == nil || resp.Error.Code != daemonapi.CodeInvalidParams || string(resp.ID) != `"p"` {
				t.Errorf("%s: got id %s error %+v, want invalid params", line, resp.ID, resp.Error)
			}
		}
	}
	// The same connection, and another, still work; a notification (no
	// id) gets no answer.
	r.nc.Write([]byte(`{"jsonrpc":"2.0","method":"whoami"}` + "\n"))
	for _, c := range []*rawConn{r, other} {
		resp := c.roundTrip(`{"jsonrpc":"2.0","id":"after","method":"whoami"}`)
		if resp.Error != nil || string(resp.ID) != `"after"` || !strings.Contains(string(resp.Result), `"alice"`) {
			t.Errorf("whoami after bad lines: %+v", resp)
		}
	}
	// A line over the limit ends only that connection.
	long := dialRaw(t, dir)
	resp := long.roundTrip(`{"jsonrpc":"2.0","id":1,"method":"whoami","params":{"x":"` + strings.Repeat("a", daemonapi.MaxLine) + `"}}`)
	if resp.Error == nil || resp.Error.Code != daemonapi.CodeParseError {
		t.Errorf("over-long line: %+v", resp)
	}
	if resp := other.roundTrip(`{"jsonrpc":"2.0","id":2,"method":"whoami"}`); resp.Error != nil {
		t.Errorf("whoami after another connection's over-long line: %+v", resp.Error)
	}
}

// TestConcurrentCallers: many connections make mixed calls at once,
// some hang up in the middle of their requests, and every other call is
// answered.
func TestConcurrentCallers(t *testing.T) {
	url, fp := startParleyd(t)
	alice, dir := register(t, url, fp, "alice")
	register(t, url, fp, "bob")
	ctx := waitCtx(t)
	conv, err := alice.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	want, err := alice.SafetyNumber(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	daemon(t, alice, dir)
	const callers, calls = 16, 4
	var wg sync.WaitGroup
	errs := make(chan error, callers*calls*8)
	for i := range callers {
		wg.Go(func() {
			// Hang up in the middle of a sync and of a send.
			if r, err := net.Dial("unix", filepath.Join(dir, daemonapi.SocketFile)); err == nil {
				r.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"sync"}` + "\n" + `{"jsonrpc":"2.0","id":2,"method":"send","params":{"conversation":` +
					jsonInt(int64(conv)) + `,"text":"gone"}}` + "\n"))
				r.Close()
			}
			dc, err := daemonapi.Dial(ctx, dir)
			if err != nil {
				errs <- err
				return
			}
			defer dc.Close()
			// The calls of one connection run concurrently too.
			var inner sync.WaitGroup
			for j := range calls {
				inner.Go(func() {
					if _, err := dc.Conversations(ctx); err != nil {
						errs <- fmt.Errorf("conversations: %w", err)
					}
					text := "msg " + jsonInt(int64(i)) + "." + jsonInt(int64(j))
					if m, err := dc.Send(ctx, conv, text, client.SendOptions{}); err != nil || m.Text != text {
						errs <- fmt.Errorf("send %s: %v", text, err)
					}
					if _, err := dc.History(ctx, conv, 0, 3); err != nil {
						errs <- fmt.Errorf("history: %w", err)
					}
					if ms, err := dc.Members(ctx, conv); err != nil || len(ms) != 2 {
						errs <- fmt.Errorf("members = %v, %v", ms, err)
					}
					if sn, err := dc.SafetyNumber(ctx, "bob"); err != nil || sn.Digits != want.Digits {
						errs <- fmt.Errorf("safety number = %+v, %v", sn, err)
					}
					if a, err := dc.Whoami(); err != nil || a.User != "alice" {
						errs <- fmt.Errorf("whoami = %+v, %v", a, err)
					}
					if _, err := dc.Conversation(ctx, 999999); !errors.Is(err, client.ErrUnknownConversation) {
						errs <- fmt.Errorf("conversation 999999: %v", err)
					}
				})
			}
			inner.Wait()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ms, err := dial(t, dir).Messages(ctx, conv, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		if strings.HasPrefix(m.Text, "msg ") {
			n++
		}
	}
	if n != callers*calls {
		t.Errorf("%d messages sent by the callers are in the history, want %d", n, callers*calls)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestSubscribeStartsWithConnection: a subscription that begins after the
// daemon connected learns the connection state first, without waiting
// for it to change.
func TestSubscribeStartsWithConnection(t *testing.T) {
	url, fp := startParleyd(t)
	alice, dir := register(t, url, fp, "alice")
	daemon(t, alice, dir)
	early := dial(t, dir)
	ctx := waitCtx(t)
	if err := early.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}
	for ev := nextEvent(t, early, "connection"); ev.Connection != "connected"; ev = nextEvent(t, early, "connection") {
	}
	late := dial(t, dir)
	if err := late.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}
	ev, err := late.NextEvent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Event != "connection" || ev.Connection != "connected" {
		t.Fatalf("first event of a late subscription = %+v, want connection connected", ev)
	}
}
