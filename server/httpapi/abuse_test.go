package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-chat/parley/internal/logrl"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/httpapi"
)

// postRaw posts a body and returns the status and the error code, without
// a testing.T (it runs on other goroutines).
func postRaw(e *env, token, path, body string) (int, protocol.ErrorCode, error) {
	req, err := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var pe protocol.Error
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(data, &pe); err != nil {
			return resp.StatusCode, "", fmt.Errorf("status %d with body %q", resp.StatusCode, data)
		}
	}
	return resp.StatusCode, pe.Code, nil
}

// write writes a frame, reporting an error instead of failing the test
// (the server may have closed the connection already).
func (w *ws) write(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return w.c.Write(ctx, websocket.MessageText, b)
}

// closedWith reads until the connection ends and checks that the server
// sent an error frame with the code and then closed with the status. A
// pong with the nonce after (a ping sent after the offending frame), if
// not empty, fails the test: the server went on serving the connection.
func (w *ws) closedWith(code protocol.ErrorCode, status websocket.StatusCode, reason, after string) {
	w.t.Helper()
	var got *protocol.ErrorFrame
	for {
		f, err := w.next(10 * time.Second)
		if err == errTimeout {
			w.t.Fatalf("connection still open, want it closed with %s", code)
		}
		if err != nil {
			if got == nil {
				w.t.Fatalf("connection ended (%v) without an error frame, want %s", err, code)
			}
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != status || !strings.Contains(ce.Reason, reason) {
				w.t.Fatalf("connection ended with %v, want status %v with a reason containing %q", err, status, reason)
			}
			return
		}
		switch f := f.(type) {
		case *protocol.ErrorFrame:
			if f.Code != code || !strings.Contains(f.Message, reason) {
				w.t.Fatalf("error frame %v, want %s naming %q", &f.Error, code, reason)
			}
			got = f
		case *protocol.PongFrame:
			if after != "" && f.Nonce == after {
				w.t.Fatalf("pong %q: the connection kept serving frames after the bad one", f.Nonce)
			}
		}
	}
}

// roundTrip sends a ping and waits for its pong: every frame sent before
// it was handled.
func (w *ws) roundTrip(nonce string) {
	w.t.Helper()
	w.send(&protocol.PingFrame{Nonce: nonce})
	for {
		switch f := w.must(10 * time.Second).(type) {
		case *protocol.PongFrame:
			if f.Nonce == nonce {
				return
			}
		case *protocol.ErrorFrame:
			w.t.Fatalf("error frame %v", &f.Error)
		}
	}
}

// An acknowledgement with a seq of 2^63 or more (HTTP or WebSocket) is
// refused at decode with bad_request and fails no other device's
// acknowledgement, although all acknowledgements are group-committed.
func TestAckOutOfRangeIsolated(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := e.register("alice"), e.register("bob")
	ma, mb := alice.createConversation(), bob.createConversation()
	mb.send(t, "one")
	mb.send(t, "two")
	badBody := fmt.Sprintf(`{"cursors":[{"conversation":%d,"seq":9223372036854775808}]}`, ma.conv)
	badFrame := fmt.Sprintf(`{"type":"ack","cursors":[{"conversation":%d,"seq":9223372036854775808}]}`, ma.conv)

	aw, bw := alice.dial(t), bob.dial(t)
	var wg sync.WaitGroup
	problems := make(chan string, 100)
	wg.Add(1)
	go func() { // alice keeps sending bad acknowledgements over HTTP
		defer wg.Done()
		for range 50 {
			status, code, err := postRaw(e, alice.token, "/v1/ack", badBody)
			if err != nil || status != http.StatusBadRequest || code != protocol.CodeBadRequest {
				problems <- fmt.Sprintf("alice's bad ack: status %d code %q err %v, want 400 bad_request", status, code, err)
				return
			}
		}
	}()
	if err := aw.write([]byte(badFrame)); err != nil {
		t.Fatal(err)
	}
	aw.write([]byte(`{"type":"ping","nonce":"after"}`)) // fails once the server closed
	// Meanwhile bob acknowledges normally, over HTTP and WebSocket.
	for seq := range 2 {
		status, code, err := postRaw(e, bob.token, "/v1/ack", fmt.Sprintf(`{"cursors":[{"conversation":%d,"seq":%d}]}`, mb.conv, seq+1))
		if err != nil || status != http.StatusNoContent {
			t.Errorf("bob's ack of seq %d: status %d code %q err %v, want 204", seq+1, status, code, err)
		}
	}
	bw.send(&protocol.AckFrame{Cursors: []protocol.Cursor{{Conversation: mb.conv, Seq: 2}}})
	bw.roundTrip("acked")
	wg.Wait()
	close(problems)
	for p := range problems {
		t.Error(p)
	}
	aw.closedWith(protocol.CodeBadRequest, websocket.StatusPolicyViolation, "cursors[0].seq", "after")

	// Bob's cursor is durable: it survives a restart.
	e.restart()
	var info protocol.ConversationInfo
	e.must(bob.token, "GET", fmt.Sprintf("/v1/conversations/%d", mb.conv), nil, &info)
	if info.Cursor != 2 {
		t.Errorf("bob's cursor after a restart is %d, want 2", info.Cursor)
	}
	e.must(alice.token, "GET", fmt.Sprintf("/v1/conversations/%d", ma.conv), nil, &info)
	if info.Cursor != 0 {
		t.Errorf("alice's cursor is %d, want 0", info.Cursor)
	}
}

// Every integer of a request body is range-checked at decode: out of
// range answers 400 bad_request naming the field.
func TestRequestRanges(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.register("alice")
	m := alice.createConversation()
	for _, tc := range []struct {
		path, body, field string
	}{
		{"/v1/ack", fmt.Sprintf(`{"cursors":[{"conversation":%d,"seq":18446744073709551615}]}`, m.conv), "cursors[0].seq"},
		{"/v1/ack", `{"cursors":[{"conversation":0,"seq":1}]}`, "cursors[0].conversation"},
		{"/v1/ack", `{"inbox":9223372036854775808}`, "inbox"},
		{fmt.Sprintf("/v1/conversations/%d/handshake", m.conv), `{"epoch":9223372036854775808,"message":"AAE="}`, "epoch"},
		{"/v1/keypackages/claim", `{"user":"alice","cipher_suite":65536}`, "cipher_suite"},
		{"/v1/conversations", `{"group_id":"AAE=","cipher_suite":-1}`, "cipher_suite"},
	} {
		pe := e.wantErr(protocol.CodeBadRequest, alice.token, "POST", tc.path, tc.body)
		if !strings.Contains(pe.Message, tc.field) {
			t.Errorf("POST %s %s: %q does not name %s", tc.path, tc.body, pe.Message, tc.field)
		}
	}
}

// A client flooding frames is closed with policy-violation and a
// rate_limited error frame once its burst is used up; another
// connection is unaffected.
func TestFrameFlood(t *testing.T) {
	const burst = 100
	e := newEnv(t, func(_ *delivery.Config, h *httpapi.Config) {
		h.RateLimits.FramesPerConnection = httpapi.Rate{PerSecond: 1, Burst: burst} // the test clock stands still
	})
	alice, bob := e.register("alice"), e.register("bob")
	aw, bw := alice.dial(t), bob.dial(t)
	// The burst is served: each frame is answered.
	for i := range burst {
		aw.send(&protocol.PingFrame{Nonce: fmt.Sprint(i)})
		if i%10 == 0 {
			bw.send(&protocol.PingFrame{Nonce: fmt.Sprint(i)})
		}
	}
	for i := range burst {
		f := aw.must(10 * time.Second)
		if p, ok := f.(*protocol.PongFrame); !ok || p.Nonce != fmt.Sprint(i) {
			t.Fatalf("frame %d within the burst: got %T %+v, want its pong", i, f, f)
		}
	}
	// One frame more closes the connection.
	aw.send(&protocol.PingFrame{Nonce: "over"})
	aw.closedWith(protocol.CodeRateLimited, websocket.StatusPolicyViolation, "frames per second", "over")
	for i := 0; i < burst; i += 10 {
		if p, ok := bw.must(10 * time.Second).(*protocol.PongFrame); !ok || p.Nonce != fmt.Sprint(i) {
			t.Fatalf("bob's connection: got %T %+v, want pong %d", p, p, i)
		}
	}
	bw.roundTrip("still open")
}

// levelCount counts the records that reach it by level, then passes them
// on.
type levelCount struct {
	next slog.Handler
	mu   *sync.Mutex
	n    map[slog.Level]int
}

func (c levelCount) Enabled(context.Context, slog.Level) bool { return true }
func (c levelCount) WithAttrs(as []slog.Attr) slog.Handler {
	c.next = c.next.WithAttrs(as)
	return c
}
func (c levelCount) WithGroup(name string) slog.Handler {
	c.next = c.next.WithGroup(name)
	return c
}
func (c levelCount) Handle(ctx context.Context, r slog.Record) error {
	c.mu.Lock()
	c.n[r.Level]++
	c.mu.Unlock()
	return c.next.Handle(ctx, r)
}

func (c levelCount) counts() map[slog.Level]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[slog.Level]int{}
	for l, n := range c.n {
		out[l] = n
	}
	return out
}

// total returns the records counted.
func (c levelCount) total() int {
	n := 0
	for _, v := range c.counts() {
		n += v
	}
	return n
}

// newLevelCount returns a counter passing records to next.
func newLevelCount(next slog.Handler) levelCount {
	return levelCount{next: next, mu: new(sync.Mutex), n: map[slog.Level]int{}}
}

// Bad frames log no server error, and floods of them give a bounded
// number of log lines: the server's logger is rate-limited as parleyd's
// (log.max_repeats records per log.repeat_interval, then a summary).
func TestBadFramesLogBounded(t *testing.T) {
	const burst = 10
	e := newEnv(t, func(_ *delivery.Config, h *httpapi.Config) {
		h.RateLimits.FramesPerConnection = httpapi.Rate{PerSecond: 1, Burst: burst}
	})
	var out strings.Builder
	var outMu sync.Mutex
	written := newLevelCount(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		outMu.Lock()
		defer outMu.Unlock()
		return out.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	raw := newLevelCount(logrl.NewHandler(written, logrl.Config{Burst: 10, Interval: time.Minute}, e.clock.Now))
	e.logger = slog.New(raw)
	e.restart()
	alice := e.register("alice")
	m := alice.createConversation()

	// 10,000 acknowledgements with a seq out of range, each connection
	// sending them without waiting until the server closes it after the
	// first.
	bad := fmt.Appendf(nil, `{"type":"ack","cursors":[{"conversation":%d,"seq":9223372036854775808}]}`, m.conv)
	sent, conns := 0, 0
	for ; sent < 10000 && conns < 200; conns++ {
		aw := alice.dial(t)
		for sent < 10000 && aw.write(bad) == nil {
			sent++
		}
		aw.write([]byte(`{"type":"ping","nonce":"after"}`))
		aw.closedWith(protocol.CodeBadRequest, websocket.StatusPolicyViolation, "cursors[0].seq", "after")
	}
	t.Logf("%d bad frames written on %d connections", sent, conns)

	// 30 connections that each exceed the frame rate: every one is
	// logged, up to the repeat limit.
	const floods = 30
	for range floods {
		w := alice.dial(t)
		for i := range burst + 1 {
			if w.write(fmt.Appendf(nil, `{"type":"ping","nonce":"%d"}`, i)) != nil {
				break
			}
		}
		w.closedWith(protocol.CodeRateLimited, websocket.StatusPolicyViolation, "frames per second", "")
	}
	if n := raw.counts()[slog.LevelError]; n != 0 {
		outMu.Lock()
		t.Errorf("bad frames logged %d errors:\n%s", n, out.String())
		outMu.Unlock()
	}
	if n := written.total(); n > 40 {
		t.Errorf("%d log lines written for %d frames on %d connections, want at most 40", n, sent+floods*(burst+1), conns+floods)
	}
	// After the interval, the next record brings the summary of what was
	// suppressed.
	e.clock.Advance(time.Minute)
	w := alice.dial(t)
	for i := range burst + 1 {
		if w.write(fmt.Appendf(nil, `{"type":"ping","nonce":"%d"}`, i)) != nil {
			break
		}
	}
	w.closedWith(protocol.CodeRateLimited, websocket.StatusPolicyViolation, "frames per second", "")
	outMu.Lock()
	defer outMu.Unlock()
	if want := fmt.Sprintf(`msg="%s" repeated="websocket frame rate exceeded" suppressed=%d`, logrl.SuppressedMsg, floods-10); !strings.Contains(out.String(), want) {
		t.Errorf("no summary %s in the log:\n%s", want, out.String())
	}
	t.Logf("log:\n%s", out.String())
}

// writerFunc is an io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
