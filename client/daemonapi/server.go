package daemonapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/parley-chat/parley/client"
)

// maxInFlight is how many requests of one connection run at once; the
// next lines are read when one of them is done.
const maxInFlight = 32

// subscriberBuffer is how many events wait for a slow subscriber before
// they are replaced by one "overflow" event.
const subscriberBuffer = 1024

// Server serves a client.Client's operations to the connections of a
// listener. It is the only reader of the client's Events, which it
// passes on to subscribers.
type Server struct {
	c      *client.Client
	dir    string
	logger *slog.Logger

	mu    sync.Mutex
	subs  map[*subscriber]struct{}
	conns map[net.Conn]struct{}
	// conn is the client's last connection event, which a new
	// subscription receives first; nil before the first.
	conn *client.Event
	// link is the device link in progress (methods_link.go), nil when
	// none runs; confirmWait bounds its question (LinkConfirmWait).
	link        *pendingLink
	confirmWait time.Duration
}

// NewServer returns a server of c, whose profile directory is dir.
// logger may be nil. dir is empty for a client without one (the web
// client's, whose store is in the browser): the server then offers no
// file methods (send_file, download), as it has no file system.
func NewServer(c *client.Client, dir string, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{c: c, dir: dir, logger: logger, subs: map[*subscriber]struct{}{}, conns: map[net.Conn]struct{}{}, confirmWait: LinkConfirmWait}
}

// Listen creates the socket of the profile in dir (SocketFile, mode
// 0600), replacing the file of a daemon that was killed. The caller must
// hold the profile (client.Open locks it), so that no other daemon uses
// the socket. Closing the listener removes the socket.
func Listen(dir string) (net.Listener, error) {
	path := filepath.Join(dir, SocketFile)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("daemon socket %s: remove stale socket: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("daemon socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("daemon socket %s: %w", path, err)
	}
	return ln, nil
}

// Serve accepts connections on ln and serves them until ctx is done; it
// then closes ln and every connection. It returns nil after ctx is done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.pump(ctx) })
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.mu.Lock()
		for conn := range s.conns {
			conn.Close()
		}
		s.mu.Unlock()
	})
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("daemon socket: accept: %w", err)
		}
		if err := checkPeer(conn); err != nil {
			s.logger.Warn("daemon: connection refused", "err", err)
			conn.Close()
			continue
		}
		s.mu.Lock()
		if ctx.Err() != nil {
			s.mu.Unlock()
			conn.Close()
			return nil
		}
		s.conns[conn] = struct{}{}
		s.mu.Unlock()
		wg.Go(func() {
			s.serveConn(ctx, conn)
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
		})
	}
}

// pump passes the client's events on to the subscribers, until the
// client closes its events or ctx is done.
func (s *Server) pump(ctx context.Context) {
	events := s.c.Events()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			s.mu.Lock()
			if ev.Kind == client.EventConnection {
				s.conn = &ev
			}
			for sub := range s.subs {
				sub.offer(ev)
			}
			s.mu.Unlock()
		}
	}
}

// subscriber is a connection's subscription to events.
type subscriber struct {
	ch chan client.Event
	// overflowed counts the events dropped since the last one queued.
	overflowed int
}

// offer queues ev without waiting: when the subscriber is behind, the
// events are dropped and an overflow event tells it so (as
// client.Client.Events does). The server's mutex is held.
func (sub *subscriber) offer(ev client.Event) {
	if sub.overflowed > 0 {
		over := client.Event{Kind: client.EventOverflow, Time: ev.Time, Dropped: sub.overflowed}
		select {
		case sub.ch <- over:
			sub.overflowed = 0
		default:
			sub.overflowed++
			return
		}
	}
	select {
	case sub.ch <- ev:
	default:
		sub.overflowed++
	}
}

// conn is one connection's state.
type conn struct {
	s   *Server
	nc  net.Conn
	wmu sync.Mutex // serialises writes
	// sub is the subscription, once subscribed; guarded by s.mu.
	sub *subscriber
	// writers are the goroutines that write (handlers, the event feed).
	writers sync.WaitGroup
}

// serveConn reads requests from one connection, one per line, and
// answers each in its own goroutine, so that a slow method does not hold
// up the others.
func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	c := &conn{s: s, nc: nc}
	defer func() {
		cancel()
		c.writers.Wait()
		s.unsubscribe(c)
		nc.Close()
	}()
	sc := bufio.NewScanner(nc)
	sc.Buffer(make([]byte, 0, 4096), MaxLine)
	inFlight := make(chan struct{}, maxInFlight)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		req, rerr := parseRequest(line)
		if rerr != nil {
			c.write(&Response{JSONRPC: "2.0", ID: idOrNull(req), Error: rerr})
			continue
		}
		inFlight <- struct{}{}
		c.writers.Go(func() {
			defer func() { <-inFlight }()
			result, err := s.call(ctx, c, req)
			if req.ID == nil || ctx.Err() != nil {
				return // a notification, or the connection is gone
			}
			resp := &Response{JSONRPC: "2.0", ID: req.ID}
			if err != nil {
				resp.Error = toError(err)
			} else if resp.Result, err = json.Marshal(result); err != nil {
				resp.Result, resp.Error = nil, &Error{Code: CodeInternalError, Message: fmt.Sprintf("%s: encode result: %v", req.Method, err)}
			}
			c.write(resp)
		})
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		c.write(&Response{JSONRPC: "2.0", ID: json.RawMessage("null"),
			Error: &Error{Code: CodeParseError, Message: fmt.Sprintf("parse error: request line longer than %d bytes", MaxLine)}})
	}
}

// idOrNull is the id of a request that could not be read, or null.
func idOrNull(req *Request) json.RawMessage {
	if req == nil || req.ID == nil {
		return json.RawMessage("null")
	}
	return req.ID
}

// parseRequest decodes and checks one request line. The request it
// returns with an error carries the id, when it could be read.
func parseRequest(line []byte) (*Request, *Error) {
	if !json.Valid(line) {
		var v any
		err := json.Unmarshal(line, &v)
		return nil, &Error{Code: CodeParseError, Message: fmt.Sprintf("parse error: the line %s is not JSON: %v", quoteStart(line), err)}
	}
	if line[0] != '{' {
		return nil, &Error{Code: CodeInvalidRequest, Message: "invalid request: want one JSON object per line (batches are not supported)"}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return nil, &Error{Code: CodeInvalidRequest, Message: "invalid request: " + err.Error()}
	}
	req := &Request{ID: raw["id"], Params: raw["params"]}
	if id := req.ID; id != nil && !validID(id) {
		req.ID = nil
		return req, &Error{Code: CodeInvalidRequest, Message: "invalid request: id must be a string, a number or null"}
	}
	if err := json.Unmarshal(raw["jsonrpc"], &req.JSONRPC); err != nil || req.JSONRPC != "2.0" {
		return req, &Error{Code: CodeInvalidRequest, Message: `invalid request: jsonrpc must be "2.0"`}
	}
	if err := json.Unmarshal(raw["method"], &req.Method); err != nil || req.Method == "" {
		return req, &Error{Code: CodeInvalidRequest, Message: "invalid request: method must be a non-empty string"}
	}
	if p := bytes.TrimSpace(req.Params); p != nil && p[0] != '{' && p[0] != '[' && !bytes.Equal(p, []byte("null")) {
		return req, &Error{Code: CodeInvalidRequest, Message: "invalid request: params must be an object"}
	}
	return req, nil
}

// validID reports whether id is a JSON string, number or null.
func validID(id json.RawMessage) bool {
	var v any
	if err := json.Unmarshal(id, &v); err != nil {
		return false
	}
	switch v.(type) {
	case nil, string, float64:
		return true
	}
	return false
}

// write sends one JSON value on a line. A failed write means the peer is
// gone; the reader notices it and ends the connection.
func (c *conn) write(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.s.logger.Error("daemon: encode response", "err", err)
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.nc.Write(append(b, '\n')); err != nil {
		c.nc.Close()
	}
}

// subscribe starts passing events to the connection (once).
func (s *Server) subscribe(ctx context.Context, c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.sub != nil {
		return
	}
	c.sub = &subscriber{ch: make(chan client.Event, subscriberBuffer)}
	if s.conn != nil {
		c.sub.offer(*s.conn) // where the connection stands now
	}
	s.subs[c.sub] = struct{}{}
	ch := c.sub.ch
	c.writers.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-ch:
				params, err := json.Marshal(NewEvent(ev))
				if err != nil {
					s.logger.Error("daemon: encode event", "err", err)
					continue
				}
				c.write(&Notification{JSONRPC: "2.0", Method: "event", Params: params})
			}
		}
	})
}

// unsubscribe stops passing events to the connection.
func (s *Server) unsubscribe(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.sub != nil {
		delete(s.subs, c.sub)
	}
}
