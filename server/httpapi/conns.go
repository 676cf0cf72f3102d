package httpapi

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/connlimit"
)

// This file bounds what a client can hold without an account: the time
// a request body may take to arrive, and the concurrent requests of a
// client behind a trusted reverse proxy (direct clients are capped per
// address by the listener, see package connlimit).

// clientAddr returns the request's client address and whether it came
// from the configured header of a trusted proxy. The header is read
// from the right: the last address that is not itself a trusted proxy
// is the client (earlier entries were written by the client and prove
// nothing). A request from an untrusted peer, or a trusted one whose
// header is missing or malformed, is the peer's own.
func (s *Server) clientAddr(r *http.Request) (netip.Addr, bool) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	addr := peer.Addr().Unmap().WithZone("")
	if !s.trustedProxy(addr) {
		return addr, false
	}
	values := r.Header.Values(s.cfg.ClientIPHeader)
	if len(values) == 0 {
		return addr, false
	}
	items := strings.Split(strings.Join(values, ","), ",")
	for i := len(items) - 1; i >= 0; i-- {
		a, ok := parseForwarded(items[i])
		if !ok {
			return addr, false
		}
		if !s.trustedProxy(a) {
			return a, true
		}
		addr = a
	}
	// Every hop is a trusted proxy: the first one is the client.
	return addr, true
}

// parseForwarded parses one address of a forwarding header: an IP
// address, optionally with a port ("192.0.2.1:443", "[2001:db8::1]:443").
func parseForwarded(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// trustedProxy reports whether addr is in a trusted proxy prefix.
func (s *Server) trustedProxy(addr netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// TrustedProxy reports whether addr is one of the configured trusted
// reverse proxies, whose connections carry many clients (for
// connlimit.Listen's exempt).
func (s *Server) TrustedProxy(addr netip.Addr) bool { return s.trustedProxy(addr.Unmap().WithZone("")) }

// clientIP is the key of the request's client for the per-address rate
// limits: the address (see clientAddr) counted as connlimit.Key does.
func (s *Server) clientIP(r *http.Request) string {
	a, _ := s.clientAddr(r)
	if !a.IsValid() {
		return r.RemoteAddr
	}
	return connlimit.Key(a).String()
}

// holdProxied counts a request of a client behind a trusted proxy
// against the per-address cap. It returns the ResponseWriter to use and
// the function to call when the handler returned, or ok false when the
// request was refused with 503. A WebSocket keeps its slot until the
// hijacked connection is closed.
func (s *Server) holdProxied(w http.ResponseWriter, r *http.Request) (hw http.ResponseWriter, done func(), ok bool) {
	addr, proxied := s.clientAddr(r)
	if !proxied {
		return w, func() {}, true
	}
	release, err := s.proxiedConns.Acquire(addr, true)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Connection", "close")
		s.writeStatusError(w, r, http.StatusServiceUnavailable, protocol.NewError(protocol.CodeUnavailable, "too many connections from this address; retry later"))
		return nil, nil, false
	}
	h := &holdWriter{ResponseWriter: w, release: release}
	return h, h.done, true
}

// holdWriter holds a proxied client's slot for the request, or for the
// lifetime of the connection when the handler hijacks it.
type holdWriter struct {
	http.ResponseWriter
	release  func()
	hijacked bool
}

// Unwrap lets http.ResponseController reach the server's writer.
func (h *holdWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Hijack implements http.Hijacker; the slot is released when the
// returned connection is closed.
func (h *holdWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.hijacked = true
	return &releaseConn{Conn: c, release: h.release}, brw, nil
}

// done releases the slot unless the connection was hijacked.
func (h *holdWriter) done() {
	if !h.hijacked {
		h.release()
	}
}

// releaseConn releases a slot when closed.
type releaseConn struct {
	net.Conn
	release func()
}

// Close implements net.Conn.
func (c *releaseConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// limitBody sets the deadline of the request's body: it must arrive
// within BodyTimeout of the handler's first read (until then, of the
// request's start: a body no handler reads is discarded under the same
// deadline), and each time BodyMinRate × BodyTimeout bytes
// arrived the deadline moves BodyTimeout ahead, so that an upload keeps
// going as long as it sustains the minimum rate. Without this, a client
// that announces a large body and sends a byte now and then holds its
// connection (and a file descriptor) indefinitely.
//
// It returns a shallow copy of r carrying the limited body: net/http
// keeps the request it made, whose body it inspects after the handler (a
// client waiting for "100 Continue" whose body no handler read gets the
// connection closed instead of a drain it would never send).
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request) *http.Request {
	if r.Body == nil || r.Body == http.NoBody {
		return r
	}
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(s.cfg.BodyTimeout)
	if err := rc.SetReadDeadline(deadline); err != nil {
		return r // not a network connection (a test's recorder)
	}
	minBytes := max(1, int64(s.cfg.BodyTimeout.Seconds()*float64(s.cfg.BodyMinRate)))
	lr := new(http.Request)
	*lr = *r
	lr.Body = &bodyReader{ReadCloser: r.Body, rc: rc, window: s.cfg.BodyTimeout, minBytes: minBytes, deadline: deadline}
	return lr
}

// bodyReader moves the read deadline of a request body ahead while the
// body arrives at the minimum rate, and clears it at the end of the
// body (net/http's background read after the body must not time out
// while the handler works).
type bodyReader struct {
	io.ReadCloser
	rc       *http.ResponseController
	window   time.Duration
	minBytes int64
	deadline time.Time
	got      int64 // got counts the bytes since the deadline last moved.
	started  bool  // started is set at the first Read.
	ended    bool
	timedOut bool
}

// Read implements io.Reader.
func (b *bodyReader) Read(p []byte) (int, error) {
	if !b.started {
		// The time the handler took before reading (authentication,
		// a quota check) does not count against the client.
		b.started = true
		b.deadline = time.Now().Add(b.window)
		b.rc.SetReadDeadline(b.deadline)
	}
	n, err := b.ReadCloser.Read(p)
	b.got += int64(n)
	switch {
	case err == nil && b.got >= b.minBytes:
		b.got = 0
		b.deadline = time.Now().Add(b.window)
		b.rc.SetReadDeadline(b.deadline)
	case errors.Is(err, io.EOF) && !b.ended:
		b.ended = true
		b.rc.SetReadDeadline(time.Time{})
	case err != nil && !errors.Is(err, io.EOF) && !time.Now().Before(b.deadline):
		b.timedOut = true
	}
	return n, err
}

// bodyTimedOut reports whether reading r's body failed at its deadline.
func bodyTimedOut(r *http.Request) bool {
	b, ok := r.Body.(*bodyReader)
	return ok && b.timedOut
}

// errBodyTimeout answers a body that arrived too slowly.
func (s *Server) errBodyTimeout() error {
	return protocol.NewError(protocol.CodeBadRequest, "request body arrived too slowly (at least %d bytes every %v)", max(1, int64(s.cfg.BodyTimeout.Seconds()*float64(s.cfg.BodyMinRate))), s.cfg.BodyTimeout)
}
