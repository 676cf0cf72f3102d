package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/httpapi"
)

// A connection that subscribes with Binary gets entries as binary entry
// frames, the same entries a JSON subscriber gets as text; everything
// else stays text.
func TestBinaryEntries(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	text, bin := bob.d.dial(t), bob.d.dial(t)
	text.send(&protocol.SubscribeFrame{})
	bin.send(&protocol.SubscribeFrame{Binary: true})
	alice.send(t, "one")
	pc, err := alice.g.Commit(mls.CommitOptions{ForcePath: true, ExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	e.must(alice.d.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv), commitReq(alice.g.Epoch(), pc, nil), nil)
	if err := alice.g.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	alice.send(t, "two")
	want := text.entries(3, 10*time.Second) // "one", the commit, "two"
	got := bin.entries(3, 10*time.Second)
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("entry %d: binary %+v, text %+v", i, got[i], want[i])
		}
	}
	if n := bin.binaries.Load(); n != 3 {
		t.Errorf("%d binary messages on the binary subscriber, want 3", n)
	}
	if n := text.binaries.Load(); n != 0 {
		t.Errorf("%d binary messages on the text subscriber", n)
	}
	// A send is still answered in text.
	bin.send(&protocol.PingFrame{Nonce: "n"})
	if f, ok := bin.must(10 * time.Second).(*protocol.PongFrame); !ok || f.Nonce != "n" {
		t.Errorf("ping answered with %+v", f)
	}
}

// Messages sent concurrently over WebSocket and HTTP are acknowledged only
// once durable, get gapless increasing seqs, and reach the recipient in
// order, each exactly once.
func TestOrderAndSent(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	bws := bob.d.dial(t)
	bws.send(&protocol.SubscribeFrame{})
	aws := alice.d.dial(t)
	aws.send(&protocol.SubscribeFrame{})

	const n = 200
	var mu sync.Mutex // the MLS group is not safe for concurrent use
	texts := map[string]bool{}
	encrypt := func(i int) []byte {
		mu.Lock()
		defer mu.Unlock()
		text := fmt.Sprintf("message %d", i)
		texts[text] = true
		msg, err := alice.g.Encrypt([]byte(text), nil)
		if err != nil {
			t.Error(err)
		}
		return msg
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // HTTP sender
		defer wg.Done()
		for i := 0; i < n/2; i++ {
			msg := encrypt(i)
			var out protocol.SendResponse
			if st, pe := e.call(alice.d.token, "POST", fmt.Sprintf("/v1/conversations/%d/messages", alice.conv), protocol.SendRequest{ClientID: "h", Message: msg}, &out); pe != nil {
				t.Errorf("http send: %d %v", st, pe)
				return
			}
		}
	}()
	for i := n / 2; i < n; i++ {
		aws.send(&protocol.SendFrame{ClientID: fmt.Sprint(i), Conversation: alice.conv, Message: encrypt(i)})
	}
	sent := map[string]uint64{}
	for len(sent) < n/2 {
		switch f := aws.must(10 * time.Second).(type) {
		case *protocol.SentFrame:
			sent[f.ClientID] = f.Seq
		case *protocol.ErrorFrame:
			t.Fatalf("send error %v", &f.Error)
		case *protocol.EntryFrame: // alice's own entries
		}
	}
	wg.Wait()
	es := bws.entries(n, 10*time.Second)
	got := map[string]bool{}
	for i, en := range es {
		if want := uint64(i) + 2; en.Seq != want { // seq 1 is the commit adding bob
			t.Fatalf("entry %d has seq %d, want %d", i, en.Seq, want)
		}
		p, err := bob.g.Process(en.Data)
		if err != nil {
			t.Fatalf("bob processes seq %d: %v", en.Seq, err)
		}
		if got[string(p.ApplicationData)] {
			t.Fatalf("duplicate %q", p.ApplicationData)
		}
		got[string(p.ApplicationData)] = true
	}
	if len(got) != len(texts) {
		t.Fatalf("bob got %d distinct messages, want %d", len(got), len(texts))
	}
	for id, seq := range sent {
		if seq < 2 || seq > n+1 {
			t.Errorf("sent %s at seq %d", id, seq)
		}
	}
	bws.silent(100 * time.Millisecond)
}

// A device that disconnects resumes from its cursor without loss or
// duplicates; acknowledgements move the stored cursor.
func TestReconnectResume(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	for i := range 5 {
		alice.send(t, fmt.Sprint("a", i))
	}
	w1 := bob.d.dial(t)
	w1.send(&protocol.SubscribeFrame{})
	es := w1.entries(5, 5*time.Second)
	// Process and ack the first three only, then drop the connection.
	for _, en := range es[:3] {
		if _, err := bob.g.Process(en.Data); err != nil {
			t.Fatal(err)
		}
	}
	w1.send(&protocol.AckFrame{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: es[2].Seq}}})
	w1.handled()
	w1.c.CloseNow()
	for i := range 5 {
		alice.send(t, fmt.Sprint("b", i))
	}
	bob.d.acksWritten(t)
	var info protocol.ConversationInfo
	e.must(bob.d.token, "GET", fmt.Sprintf("/v1/conversations/%d", alice.conv), nil, &info)
	if info.Cursor != es[2].Seq {
		t.Fatalf("stored cursor %d, want %d", info.Cursor, es[2].Seq)
	}
	// Reconnect without naming a cursor: resume after the acknowledged one.
	w2 := bob.d.dial(t)
	w2.send(&protocol.SubscribeFrame{})
	es2 := w2.entries(7, 5*time.Second)
	if es2[0].Seq != es[2].Seq+1 {
		t.Fatalf("resumed at seq %d, want %d", es2[0].Seq, es[2].Seq+1)
	}
	for i, en := range es2 {
		if i > 0 && en.Seq != es2[i-1].Seq+1 {
			t.Fatalf("gap or duplicate: %d after %d", en.Seq, es2[i-1].Seq)
		}
		p, err := bob.g.Process(en.Data)
		if err != nil {
			t.Fatalf("process seq %d: %v", en.Seq, err)
		}
		t.Logf("seq %d: %s", en.Seq, p.ApplicationData)
	}
	w2.silent(100 * time.Millisecond)
	// Live entries follow on the same connection, and a re-subscribe with
	// an explicit cursor replays from it.
	alice.send(t, "live")
	live := w2.entries(1, 5*time.Second)[0]
	if live.Seq != es2[len(es2)-1].Seq+1 {
		t.Fatalf("live seq %d", live.Seq)
	}
	w2.send(&protocol.SubscribeFrame{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: live.Seq - 2}}})
	again := w2.entries(2, 5*time.Second)
	if again[0].Seq != live.Seq-1 || again[1].Seq != live.Seq {
		t.Fatalf("re-subscribe replayed %d, %d", again[0].Seq, again[1].Seq)
	}
	w2.silent(100 * time.Millisecond)
}

// Typing signals reach connected members only and are never stored.
func TestTyping(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	carol := e.register("carol")
	aws, bws, cws := alice.d.dial(t), bob.d.dial(t), carol.dial(t)
	for _, w := range []*ws{aws, bws, cws} {
		w.send(&protocol.SubscribeFrame{})
		w.handled()
	}
	bws.must(5 * time.Second)     // the Welcome still in bob's inbox
	aws.entries(1, 5*time.Second) // the commit adding bob
	aws.send(&protocol.TypingFrame{Conversation: alice.conv, Typing: true})
	f := bws.must(5 * time.Second)
	tf, ok := f.(*protocol.TypingFrame)
	if !ok || tf.Device != alice.d.id || !tf.Typing || tf.Conversation != alice.conv {
		t.Fatalf("bob got %T %+v", f, f)
	}
	cws.send(&protocol.TypingFrame{Conversation: alice.conv, Typing: true}) // not a member: dropped
	cws.send(&protocol.PingFrame{Nonce: "n1"})
	if f := cws.must(5 * time.Second); f.(*protocol.PongFrame).Nonce != "n1" {
		t.Fatalf("pong %+v", f)
	}
	aws.silent(100 * time.Millisecond)
	cws.silent(50 * time.Millisecond)
	var es protocol.EntriesResponse
	e.must(alice.d.token, "GET", fmt.Sprintf("/v1/conversations/%d/entries", alice.conv), nil, &es)
	if len(es.Entries) != 1 {
		t.Fatalf("%d entries stored, want only the commit", len(es.Entries))
	}
}

// Ephemeral messages over the WebSocket: an MLS PrivateMessage of a
// member reaches the other members' connections that asked for them,
// never the sender's, is never stored nor answered, and a non-member's
// or a handshake's is dropped without closing the connection.
func TestEphemeral(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	carol := e.register("carol")
	aws, bws, cws := alice.d.dial(t), bob.d.dial(t), carol.dial(t)
	for _, w := range []*ws{aws, bws, cws} {
		w.send(&protocol.SubscribeFrame{Ephemeral: true})
		w.handled()
	}
	bws.must(5 * time.Second)     // the Welcome still in bob's inbox
	aws.entries(1, 5*time.Second) // the commit adding bob
	msg, err := alice.g.Encrypt([]byte("typing"), nil)
	if err != nil {
		t.Fatal(err)
	}
	aws.send(&protocol.EphemeralFrame{Conversation: alice.conv, Message: msg})
	f := bws.must(5 * time.Second)
	ef, ok := f.(*protocol.EphemeralFrame)
	if !ok || ef.Device != alice.d.id || ef.Conversation != alice.conv || !bytes.Equal(ef.Message, msg) {
		t.Fatalf("bob got %T %+v", f, f)
	}
	cws.send(&protocol.EphemeralFrame{Conversation: alice.conv, Message: msg})                // not a member: dropped
	aws.send(&protocol.EphemeralFrame{Conversation: alice.conv, Message: []byte{0, 1, 0, 1}}) // not a PrivateMessage: dropped
	for i, w := range []*ws{aws, cws} {
		nonce := fmt.Sprint("n", i)
		w.send(&protocol.PingFrame{Nonce: nonce})
		if f := w.must(5 * time.Second); f.(*protocol.PongFrame).Nonce != nonce {
			t.Fatalf("pong %+v", f)
		}
	}
	bws.send(&protocol.PingFrame{Nonce: "b"}) // what was relayed comes before the pong
	if f := bws.must(5 * time.Second); f.(*protocol.PongFrame).Nonce != "b" {
		t.Fatalf("bob got %T %+v after the refused ephemeral messages, want only the pong", f, f)
	}
	var es protocol.EntriesResponse
	e.must(alice.d.token, "GET", fmt.Sprintf("/v1/conversations/%d/entries", alice.conv), nil, &es)
	if len(es.Entries) != 1 {
		t.Fatalf("%d entries stored, want only the commit", len(es.Entries))
	}
}

// Entries acknowledged by every member, and entries older than the
// retention, are pruned; attachments past retention lose their content.
func TestRetention(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	for i := range 4 {
		alice.send(t, fmt.Sprint(i))
	}
	page := func(tok string) []protocol.Entry {
		var es protocol.EntriesResponse
		e.must(tok, "GET", fmt.Sprintf("/v1/conversations/%d/entries?after=0&limit=2", alice.conv), nil, &es)
		return es.Entries
	}
	if got := page(alice.d.token); len(got) != 2 || got[0].Seq != 1 {
		t.Fatalf("first page %+v", got)
	}
	if got := page(bob.d.token); len(got) != 2 || got[0].Seq != 2 {
		t.Fatalf("bob's first page %+v, want from seq 2 (after the commit adding him)", got)
	}
	// Both acknowledge up to seq 3: entries 1..3 go.
	for _, m := range []*member{alice, bob} {
		e.must(m.d.token, "POST", "/v1/ack", protocol.AckRequest{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: 3}}}, nil)
	}
	e.wantErr(protocol.CodeBadRequest, bob.d.token, "POST", "/v1/ack", protocol.AckRequest{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: 99}}})
	r, err := e.svc.Prune(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r.Entries != 3 {
		t.Fatalf("pruned %d acknowledged entries, want 3", r.Entries)
	}
	if got := page(bob.d.token); got[0].Seq != 4 {
		t.Fatalf("after prune first entry %d, want 4", got[0].Seq)
	}
	var att protocol.AttachmentInfo
	e.must(alice.d.token, "POST", "/v1/attachments", []byte("ciphertext"), &att)
	// Past the retention everything older goes, unacknowledged or not.
	e.clock.Advance(e.dcfg.Retention + time.Hour)
	alice.d.login()
	bob.d.login()
	alice.send(t, "fresh")
	r, err = e.svc.Prune(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r.Entries != 2 || len(r.Blobs) != 1 {
		t.Fatalf("retention pruned %d entries and %d blobs, want 2 and 1", r.Entries, len(r.Blobs))
	}
	got := page(bob.d.token)
	if len(got) != 1 || got[0].Seq != 6 {
		t.Fatalf("after retention %+v", got)
	}
	e.wantErr(protocol.CodeNotFound, bob.d.token, "GET", "/v1/attachments/"+att.ID, nil)
	// A resubscribing device gets what is left, without error.
	w := bob.d.dial(t)
	w.send(&protocol.SubscribeFrame{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: 1}}})
	if es := w.entries(1, 5*time.Second); es[0].Seq != 6 {
		t.Fatalf("resubscribe after prune got seq %d", es[0].Seq)
	}
}

func TestAttachments(t *testing.T) {
	e := newEnv(t, func(d *delivery.Config, h *httpapi.Config) { h.MaxBlobBytes = 1000; h.BlobQuotaBytes = 1500 })
	alice := e.register("alice")
	bob := e.register("bob")
	data := bytes.Repeat([]byte("0123456789"), 80) // 800 bytes
	// Chunked upload without Content-Length, over the limit.
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/attachments", io.MultiReader(strings.NewReader(strings.Repeat("y", 1200))))
	req.Header.Set("Authorization", "Bearer "+alice.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked oversize: %d", resp.StatusCode)
	}
	var info protocol.AttachmentInfo
	e.must(alice.token, "POST", "/v1/attachments", data, &info)
	if info.Size != 800 || len(info.ID) != 64 {
		t.Fatalf("info %+v", info)
	}
	req, _ = http.NewRequest("GET", e.srv.URL+"/v1/attachments/"+info.ID, nil)
	req.Header.Set("Authorization", "Bearer "+bob.token)
	req.Header.Set("Range", "bytes=10-19")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(part) != "0123456789" {
		t.Fatalf("range: %d %q", resp.StatusCode, part)
	}
	e.wantErr(protocol.CodeTooLarge, alice.token, "POST", "/v1/attachments", bytes.Repeat([]byte("x"), 1001))
	e.wantErr(protocol.CodeQuotaExceeded, alice.token, "POST", "/v1/attachments", bytes.Repeat([]byte("z"), 800))
	e.must(bob.token, "POST", "/v1/attachments", bytes.Repeat([]byte("z"), 800), nil)
	e.wantErr(protocol.CodeBadRequest, bob.token, "GET", "/v1/attachments/nothex", nil)
	e.wantErr(protocol.CodeNotFound, bob.token, "GET", "/v1/attachments/"+strings.Repeat("ab", 32), nil)
	e.wantErr(protocol.CodeUnauthorized, "", "GET", "/v1/attachments/"+info.ID, nil)
}

// Malformed requests get a 4xx protocol error and change nothing.
func TestBadInput(t *testing.T) {
	e := newEnv(t, func(d *delivery.Config, h *httpapi.Config) { h.MaxBodyBytes = 4096 })
	alice, _ := setup2(t, e)
	tok := alice.d.token
	msgs := fmt.Sprintf("/v1/conversations/%d/messages", alice.conv)
	for _, tc := range []struct {
		name, body string
		code       protocol.ErrorCode
	}{
		{"empty", "", protocol.CodeBadRequest},
		{"syntax", `{"message":`, protocol.CodeBadRequest},
		{"not object", `[1,2]`, protocol.CodeBadRequest},
		{"unknown field", `{"message":"AAAA","extra":1}`, protocol.CodeBadRequest},
		{"trailing", `{"message":"AAAA"} {}`, protocol.CodeBadRequest},
		{"bad base64", `{"message":"!!!"}`, protocol.CodeBadRequest},
		{"wrong type", `{"message":5}`, protocol.CodeBadRequest},
		{"oversized", `{"message":"` + strings.Repeat("A", 5000) + `"}`, protocol.CodeTooLarge},
		{"truncated MLS", `{"message":"AAEAAg=="}`, protocol.CodeBadMessage},
		{"not MLS", `{"message":"aGVsbG8gd29ybGQ="}`, protocol.CodeBadMessage},
	} {
		pe := e.wantErr(tc.code, tok, "POST", msgs, tc.body)
		t.Logf("%s: %s", tc.name, pe.Message)
	}
	// A PublicMessage is not an application message.
	pub, _ := alice.g.ProposeUpdate()
	e.wantErr(protocol.CodeBadMessage, tok, "POST", msgs, protocol.SendRequest{Message: pub})
	e.wantErr(protocol.CodeBadRequest, tok, "GET", "/v1/conversations/abc", nil)
	e.wantErr(protocol.CodeBadRequest, tok, "GET", fmt.Sprintf("/v1/conversations/%d/entries?after=-1", alice.conv), nil)
	e.wantErr(protocol.CodeNotFound, tok, "GET", "/v1/nothing", nil)
	if st, pe := e.call(tok, "PUT", "/v1/info", nil, nil); st != http.StatusMethodNotAllowed || pe == nil {
		t.Errorf("PUT /v1/info: %d %v", st, pe)
	}
	e.wantErr(protocol.CodeBadRequest, tok, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv), `{"epoch":1}`)
	e.wantErr(protocol.CodeBadRequest, "", "POST", "/v1/register", `{"name":"x","device":{"id":"a b"}}`)
	st, _ := e.svc.Stats(t.Context())
	if st.Entries != 1 {
		t.Errorf("%d entries stored after bad input, want 1", st.Entries)
	}

	// WebSocket: a malformed frame gets an error frame and a close.
	for _, raw := range []string{`{"type":"nope"}`, `not json`, `{"type":"sent","client_id":"x"}`, `{"type":"send"} x`} {
		w := alice.d.dial(t)
		w.raw([]byte(raw))
		f, err := w.next(5 * time.Second)
		ef, ok := f.(*protocol.ErrorFrame)
		if err != nil || !ok || ef.Code != protocol.CodeBadRequest {
			t.Fatalf("frame %q answered %T %+v %v", raw, f, f, err)
		}
		if _, err := w.next(5 * time.Second); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("frame %q: close %v", raw, err)
		}
	}
	// An oversized frame closes the connection.
	w := alice.d.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.c.Write(ctx, websocket.MessageText, bytes.Repeat([]byte(" "), int(e.hcfg.MaxFrameBytes)+10))
	if _, err := w.next(5 * time.Second); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("oversized frame: %v", err)
	}
	// A bad send frame is answered with its client id, the connection stays.
	w = alice.d.dial(t)
	w.send(&protocol.SubscribeFrame{})
	w.entries(1, 5*time.Second)
	w.send(&protocol.SendFrame{ClientID: "bad", Conversation: alice.conv, Message: []byte("garbage")})
	if ef, ok := w.must(5 * time.Second).(*protocol.ErrorFrame); !ok || ef.ClientID != "bad" || ef.Code != protocol.CodeBadMessage {
		t.Fatalf("bad send answered %+v", ef)
	}
	w.send(&protocol.PingFrame{Nonce: "still here"})
	if _, ok := w.must(5 * time.Second).(*protocol.PongFrame); !ok {
		t.Fatal("connection closed after a refused send")
	}
	// Unauthenticated WebSocket.
	resp, err := http.Get(e.srv.URL + "/v1/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated ws: %d", resp.StatusCode)
	}
}

// Browsers from other origins are refused; non-browser clients (no
// Origin) and allowed origins are accepted.
func TestOrigins(t *testing.T) {
	e := newEnv(t, func(d *delivery.Config, h *httpapi.Config) { h.AllowedOrigins = []string{"chat.example.org"} })
	alice := e.register("alice")
	dial := func(origin string) error {
		h := http.Header{"Authorization": {"Bearer " + alice.token}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/v1/ws", &websocket.DialOptions{HTTPHeader: h})
		if err == nil {
			c.CloseNow()
		}
		return err
	}
	if err := dial(""); err != nil {
		t.Errorf("no origin: %v", err)
	}
	if err := dial("https://chat.example.org"); err != nil {
		t.Errorf("allowed origin: %v", err)
	}
	if err := dial("https://evil.example"); err == nil {
		t.Errorf("foreign origin accepted")
	}
	// Token in the query for browsers.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/v1/ws?token="+alice.token, nil)
	if err != nil {
		t.Fatalf("query token: %v", err)
	}
	c.CloseNow()
}

// Shutdown closes WebSockets with going-away and refuses new ones.
func TestShutdown(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.register("alice")
	w := alice.dial(t)
	w.send(&protocol.SubscribeFrame{})
	w.handled()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.api.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.next(5 * time.Second); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("close after shutdown: %v", err)
	}
	e.wantErr(protocol.CodeUnavailable, alice.token, "GET", "/v1/ws", nil)
}

// A revoked device's connection is closed.
func TestRevokeClosesConnection(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.register("alice")
	phone := alice.addDevice()
	w := phone.dial(t)
	w.send(&protocol.SubscribeFrame{})
	w.handled()
	e.must(alice.token, "DELETE", "/v1/devices/"+string(phone.id), phone.revocation(), nil)
	f, err := w.next(5 * time.Second)
	if ef, ok := f.(*protocol.ErrorFrame); !ok || ef.Code != protocol.CodeUnauthorized {
		t.Fatalf("revoked device got %T %+v %v", f, f, err)
	}
}

// WebSocket acknowledgements are written asynchronously and coalesced:
// the stored cursor reaches the highest one, and a refused one closes the
// connection with the reason.
func TestWebSocketAckAsync(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	var last protocol.SendResponse
	for i := range 5 {
		last = alice.send(t, fmt.Sprint("m", i))
	}
	w := bob.d.dial(t)
	w.send(&protocol.SubscribeFrame{})
	es := w.entries(5, 5*time.Second)
	for _, en := range es {
		w.send(&protocol.AckFrame{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: en.Seq}}})
	}
	// The frames travel on another connection than the GET: wait until
	// they were handled and their batch written.
	w.handled()
	bob.d.acksWritten(t)
	var info protocol.ConversationInfo
	e.must(bob.d.token, "GET", fmt.Sprintf("/v1/conversations/%d", alice.conv), nil, &info)
	if info.Cursor != last.Seq {
		t.Fatalf("stored cursor %d, want %d", info.Cursor, last.Seq)
	}
	w.send(&protocol.AckFrame{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: last.Seq + 10}}})
	f, err := w.next(5 * time.Second)
	if ef, ok := f.(*protocol.ErrorFrame); !ok || ef.Code != protocol.CodeBadRequest {
		t.Fatalf("ack beyond the head: got %T %+v %v", f, f, err)
	}
}

// An upload with a lifetime (ttl_seconds) is served until the lifetime
// ends, without being cached, and then answers not_found; its bytes are
// given back to the quota at once, and Prune deletes the record and the
// content. Lifetimes that are no whole number of seconds from 1 to the
// retention are refused before the body is read. Uploading the same
// content again without a lifetime keeps it.
func TestAttachmentLifetime(t *testing.T) {
	e := newEnv(t, func(d *delivery.Config, h *httpapi.Config) {
		d.Retention = 2 * time.Hour
		h.MaxBlobBytes, h.BlobQuotaBytes = 1000, 1000
	})
	alice := e.register("alice")
	bob := e.register("bob")
	get := func(id string) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/attachments/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+bob.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	for _, bad := range []string{"0", "", "-1", "1.5", "1h", "7201", "99999999999999999999"} {
		pe := e.wantErr(protocol.CodeBadRequest, alice.token, "POST", "/v1/attachments?ttl_seconds="+url.QueryEscape(bad), bytes.Repeat([]byte("b"), 10))
		t.Logf("ttl_seconds=%q: %s", bad, pe.Message)
	}
	if st, _ := e.svc.Stats(t.Context()); st.Attachments != 0 {
		t.Fatalf("%d attachments stored by refused uploads", st.Attachments)
	}

	start := e.clock.Now()
	var info protocol.AttachmentInfo
	e.must(alice.token, "POST", "/v1/attachments?ttl_seconds=3600", bytes.Repeat([]byte("t"), 600), &info)
	if !info.Expires.Equal(info.Created.Add(time.Hour)) || info.Created.Before(start) {
		t.Fatalf("upload with a lifetime of an hour: %+v", info)
	}
	if code, h := get(info.ID); code != http.StatusOK || h.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("download before the end: %d, Cache-Control %q", code, h.Get("Cache-Control"))
	}
	e.wantErr(protocol.CodeQuotaExceeded, alice.token, "POST", "/v1/attachments", bytes.Repeat([]byte("n"), 600))

	e.clock.Advance(time.Hour - time.Second)
	if code, _ := get(info.ID); code != http.StatusOK {
		t.Fatalf("download a second before the end: %d", code)
	}
	if r, err := e.svc.Prune(t.Context()); err != nil || len(r.Blobs) != 0 {
		t.Fatalf("prune a second before the end: %v %v", r.Blobs, err)
	}
	e.clock.Advance(time.Second)
	e.wantErr(protocol.CodeNotFound, bob.token, "GET", "/v1/attachments/"+info.ID, nil)
	// The expired bytes are free again before Prune runs.
	var kept protocol.AttachmentInfo
	e.must(alice.token, "POST", "/v1/attachments", bytes.Repeat([]byte("n"), 600), &kept)
	r, err := e.svc.Prune(t.Context())
	if err != nil || fmt.Sprint(r.Blobs) != fmt.Sprint([]string{info.ID}) {
		t.Fatalf("prune at the end deleted %v (%v), want %s", r.Blobs, err, info.ID)
	}
	if _, err := e.blobs.Open(t.Context(), info.ID); !errors.Is(err, delivery.ErrBlobNotFound) {
		t.Errorf("content of the expired attachment after prune: %v", err)
	}
	e.wantErr(protocol.CodeNotFound, bob.token, "GET", "/v1/attachments/"+info.ID, nil)
	if code, h := get(kept.ID); code != http.StatusOK || !kept.Expires.IsZero() || !strings.Contains(h.Get("Cache-Control"), "immutable") {
		t.Errorf("attachment without a lifetime: %d, %+v, Cache-Control %q", code, kept, h.Get("Cache-Control"))
	}

	// The same content uploaded again without a lifetime is kept for good;
	// a lifetime as long as the retention is accepted.
	var short, again protocol.AttachmentInfo
	e.must(bob.token, "POST", "/v1/attachments?ttl_seconds=60", []byte("shared"), &short)
	e.must(bob.token, "POST", "/v1/attachments", []byte("shared"), &again)
	if again.ID != short.ID || !again.Expires.IsZero() {
		t.Fatalf("upload again without a lifetime: %+v after %+v", again, short)
	}
	e.must(bob.token, "POST", "/v1/attachments?ttl_seconds=7200", []byte("longest"), nil)
	e.clock.Advance(time.Minute)
	if code, _ := get(short.ID); code != http.StatusOK {
		t.Errorf("attachment uploaded again without a lifetime, after the first one's: %d", code)
	}
}
