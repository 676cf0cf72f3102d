package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/httpapi"
)

// TestSlowBodyIsCut sends a request head announcing a large body and
// then trickles a byte every 200 ms, below the minimum rate: the server
// must answer and drop the connection once the body deadline passes
// (before, it waited for the body as long as bytes kept coming).
func TestSlowBodyIsCut(t *testing.T) {
	e := newEnv(t, func(_ *delivery.Config, h *httpapi.Config) {
		h.BodyTimeout = time.Second
		h.BodyMinRate = 1024
	})
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "POST /v1/register HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a trickled body within 60s: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	elapsed := time.Since(start)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "too slowly") {
		t.Errorf("answer %d %s, want 400 body arrived too slowly", resp.StatusCode, body)
	}
	if elapsed < time.Second {
		t.Errorf("cut after %v, before the body timeout of 1s", elapsed)
	}
	// The server closes the connection after the failed body.
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the connection is still open after the body timeout")
	}
	t.Logf("trickled body cut after %v", elapsed)
}

// pacedReader yields chunk bytes every interval, n bytes in all; with
// stall set it stops after stallAfter bytes until stall is closed.
type pacedReader struct {
	n, chunk, sent int
	interval       time.Duration
	stallAfter     int
	stall          <-chan struct{}
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if p.sent >= p.n {
		return 0, io.EOF
	}
	if p.stall != nil && p.sent >= p.stallAfter {
		<-p.stall
		return 0, io.ErrUnexpectedEOF
	}
	time.Sleep(p.interval)
	k := min(len(b), p.chunk, p.n-p.sent)
	for i := range k {
		b[i] = 'x'
	}
	p.sent += k
	return k, nil
}

// TestSlowSteadyUpload checks that an upload that keeps up the minimum
// rate may take many body timeouts, and that one that stalls is cut
// after one.
func TestSlowSteadyUpload(t *testing.T) {
	e := newEnv(t, func(_ *delivery.Config, h *httpapi.Config) {
		h.BodyTimeout = 500 * time.Millisecond
		h.BodyMinRate = 4096 // 2 KiB per 500 ms window
	})
	d := e.register("alice")
	upload := func(body io.Reader, size int) (int, string, time.Duration) {
		t.Helper()
		req, err := http.NewRequest("POST", e.srv.URL+"/v1/attachments", body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(size)
		req.Header.Set("Authorization", "Bearer "+d.token)
		start := time.Now()
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		if err != nil {
			return 0, err.Error(), time.Since(start)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), time.Since(start)
	}

	// 64 KiB in 1 KiB pieces every 25 ms: about 40 KiB/s, ten times the
	// minimum, for about three body timeouts.
	status, body, took := upload(&pacedReader{n: 64 << 10, chunk: 1 << 10, interval: 25 * time.Millisecond}, 64<<10)
	if status != http.StatusOK {
		t.Fatalf("steady upload over %v: %d %s", took, status, body)
	}
	if took < time.Second {
		t.Errorf("steady upload took %v; the test wants it to outlast the body timeout", took)
	}
	t.Logf("steady 64 KiB upload took %v with a 500ms body timeout", took)

	// 4 KiB, then nothing: cut by the deadline.
	stall := make(chan struct{})
	defer close(stall)
	status, body, took = upload(&pacedReader{n: 64 << 10, chunk: 1 << 10, stallAfter: 4 << 10, stall: stall}, 64<<10)
	if status != http.StatusBadRequest || !strings.Contains(body, "too slowly") {
		t.Errorf("stalled upload: %d %s after %v, want 400 body arrived too slowly", status, body, took)
	}
}

// getFrom does GET path with X-Forwarded-For set to xff (none when empty).
func (e *env) getFrom(t *testing.T, path, xff string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s (X-Forwarded-For %s): %v", path, xff, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestTrustedProxyClients checks that the forwarding header names the
// client only for requests from a trusted proxy: per-address rate limits
// and the per-address cap then apply to the named client, a WebSocket
// holds its slot until it is closed, and the header of an untrusted peer
// is ignored.
func TestTrustedProxyClients(t *testing.T) {
	limits := func(trusted string) func(*delivery.Config, *httpapi.Config) {
		return func(_ *delivery.Config, h *httpapi.Config) {
			h.TrustedProxies = []netip.Prefix{netip.MustParsePrefix(trusted)}
			h.MaxConnsPerAddr = 1
			h.RateLimits.RequestsPerIP = httpapi.Rate{PerSecond: 1e-6, Burst: 4}
		}
	}

	t.Run("trusted", func(t *testing.T) {
		e := newEnv(t, limits("127.0.0.0/8"))
		d := e.register("alice") // from 127.0.0.1 itself: no header
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/v1/ws", &websocket.DialOptions{
			HTTPHeader: http.Header{"Authorization": {"Bearer " + d.token}, "X-Forwarded-For": {"203.0.113.7"}},
		})
		if err != nil {
			t.Fatalf("WebSocket through the proxy: %v", err)
		}
		if got := e.getFrom(t, "/healthz", "203.0.113.7"); got != http.StatusServiceUnavailable {
			t.Errorf("second connection of 203.0.113.7 while its WebSocket is open: %d, want 503", got)
		}
		// The rightmost address that is not a trusted proxy is the
		// client; what the client wrote before it proves nothing.
		for _, xff := range []string{"203.0.113.7, 203.0.113.8", "203.0.113.9, 127.0.0.5"} {
			if got := e.getFrom(t, "/healthz", xff); got != http.StatusOK {
				t.Errorf("X-Forwarded-For %q: %d, want 200 (another client)", xff, got)
			}
		}
		// Per-address rate limits count the client, not the proxy:
		// 203.0.113.10 has its own burst of 4.
		for i := range 5 {
			got := e.getFrom(t, "/healthz", "203.0.113.10")
			if want := map[bool]int{true: 200, false: 429}[i < 4]; got != want {
				t.Errorf("request %d of 203.0.113.10: %d, want %d", i+1, got, want)
			}
		}
		ws.Close(websocket.StatusNormalClosure, "")
		// The slot is released when the server closes its end; poll
		// for it.
		deadline := time.Now().Add(30 * time.Second)
		for e.getFrom(t, "/healthz", "203.0.113.7") != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatal("203.0.113.7 still refused 30s after its WebSocket closed")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("untrusted", func(t *testing.T) {
		e := newEnv(t, limits("192.0.2.0/24"))
		// The header of a peer that is not a trusted proxy is ignored:
		// every request counts for 127.0.0.1 itself.
		for i := range 5 {
			got := e.getFrom(t, "/healthz", fmt.Sprintf("203.0.113.%d", i))
			if want := map[bool]int{true: 200, false: 429}[i < 4]; got != want {
				t.Errorf("request %d with a forged X-Forwarded-For: %d, want %d", i+1, got, want)
			}
		}
	})
}

// TestExpectContinueRefusedWithoutBody sends an upload head with
// "Expect: 100-continue" that the server refuses before reading the body
// (unauthenticated): the answer must come at once, without "100
// Continue", and the connection must close, rather than the server
// waiting to drain a body the client will not send before it sees 100
// Continue (curl sends this header for every body over 1 MiB).
func TestExpectContinueRefusedWithoutBody(t *testing.T) {
	e := newEnv(t, func(_ *delivery.Config, h *httpapi.Config) {
		h.BodyTimeout = time.Hour
	})
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /v1/attachments HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a refused upload waiting for 100 Continue within 60s: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("answer %d, want 401", resp.StatusCode)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the connection stays open after a refused 100-continue upload")
	}
}
