//go:build js

package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"
	"syscall/js"

	"github.com/parley-chat/parley/internal/jspromise"
)

// netConfig is the part of Config that only native clients have: in the
// browser, TLS is the browser's.
type netConfig struct{}

// ownTLS reports whether the client's TLS settings are its own: in the
// browser they are not, and no certificate pin is stored.
func (Config) ownTLS() bool { return false }

// newTransport returns the browser's transport.
func (Config) newTransport() (transport, error) { return jsTransport{}, nil }

// jsTransport reaches the server with the browser's fetch and WebSocket.
// Its functions wait for JavaScript Promises: they must run in
// goroutines, never in a JavaScript callback.
type jsTransport struct{}

func (jsTransport) roundTrip(ctx context.Context, method, u string, header map[string]string, body io.Reader) (*response, error) {
	init := js.Global().Get("Object").New()
	init.Set("method", method)
	h := js.Global().Get("Headers").New()
	for k, v := range header {
		h.Call("set", k, v)
	}
	init.Set("headers", h)
	if body != nil {
		b, err := io.ReadAll(body)
		if err != nil {
			return nil, fmt.Errorf("read the request body: %w", err)
		}
		if len(b) > 0 {
			a := js.Global().Get("Uint8Array").New(len(b))
			js.CopyBytesToJS(a, b)
			init.Set("body", a)
		}
	}
	ac := js.Global().Get("AbortController").New()
	init.Set("signal", ac.Get("signal"))
	stop := context.AfterFunc(ctx, func() { ac.Call("abort") })
	resp, err := jspromise.Await(js.Global().Call("fetch", u, init))
	if err != nil {
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	r := &response{StatusCode: resp.Get("status").Int(), Body: &fetchBody{stop: stop}}
	if ra := resp.Get("headers").Call("get", "Retry-After"); ra.Type() == js.TypeString {
		r.RetryAfter = ra.String()
	}
	if b := resp.Get("body"); b.Truthy() {
		r.Body.(*fetchBody).reader = b.Call("getReader")
	}
	return r, nil
}

// fetchBody streams the body of a fetch response.
type fetchBody struct {
	reader js.Value // a ReadableStreamDefaultReader; undefined for no body
	buf    []byte
	done   bool
	stop   func() bool
}

func (b *fetchBody) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.done || !b.reader.Truthy() {
			return 0, io.EOF
		}
		res, err := jspromise.Await(b.reader.Call("read"))
		if err != nil {
			return 0, err
		}
		if res.Get("done").Bool() {
			b.done = true
			return 0, io.EOF
		}
		v := res.Get("value")
		b.buf = make([]byte, v.Get("length").Int())
		js.CopyBytesToGo(b.buf, v)
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (b *fetchBody) Close() error {
	if !b.done && b.reader.Truthy() {
		b.reader.Call("cancel")
		b.done = true
	}
	b.stop()
	return nil
}

// dial opens the WebSocket with the browser's WebSocket, which can set
// no header: the session token travels in the token query parameter,
// which the server accepts for WebSockets. The browser does not tell why
// a handshake failed, so every failure is errDialRefused: an expired or
// revoked token is then replaced on the next attempt rather than retried
// forever. No error quotes the URL, which holds the token.
func (jsTransport) dial(ctx context.Context, u, tok string) (socket, error) {
	s := &jsSocket{opened: make(chan struct{}), closed: make(chan struct{}), notify: make(chan struct{}, 1)}
	s.ws = js.Global().Get("WebSocket").New(u + "?token=" + url.QueryEscape(tok))
	s.ws.Set("binaryType", "arraybuffer")
	s.handlers = []js.Func{
		js.FuncOf(func(js.Value, []js.Value) any { s.openOnce.Do(func() { close(s.opened) }); return nil }),
		js.FuncOf(func(_ js.Value, args []js.Value) any { s.receive(args[0].Get("data")); return nil }),
		js.FuncOf(func(_ js.Value, args []js.Value) any {
			s.fail(fmt.Errorf("WebSocket closed (code %d)", args[0].Get("code").Int()))
			return nil
		}),
	}
	s.ws.Set("onopen", s.handlers[0])
	s.ws.Set("onmessage", s.handlers[1])
	s.ws.Set("onclose", s.handlers[2])
	select {
	case <-s.opened:
		return s, nil
	case <-s.closed:
		s.closeNow()
		return nil, errDialRefused
	case <-ctx.Done():
		s.closeNow()
		return nil, ctx.Err()
	}
}

// jsSocket is a browser WebSocket. Its callbacks queue what arrives
// without blocking; read takes from the queue.
type jsSocket struct {
	ws       js.Value
	handlers []js.Func
	openOnce sync.Once
	opened   chan struct{}

	mu        sync.Mutex
	queue     [][]byte
	err       error // why it closed
	closed    chan struct{}
	closeOnce sync.Once
	notify    chan struct{} // a message was queued
}

// receive queues a message (a string or an ArrayBuffer).
func (s *jsSocket) receive(data js.Value) {
	var b []byte
	if data.Type() == js.TypeString {
		b = []byte(data.String())
	} else {
		a := js.Global().Get("Uint8Array").New(data)
		if n := a.Get("length").Int(); n <= maxSocketMessage {
			b = make([]byte, n)
			js.CopyBytesToGo(b, a)
		} else {
			s.fail(fmt.Errorf("a WebSocket message of %d bytes exceeds %d", n, maxSocketMessage))
			return
		}
	}
	if len(b) > maxSocketMessage {
		s.fail(fmt.Errorf("a WebSocket message of %d bytes exceeds %d", len(b), maxSocketMessage))
		return
	}
	s.mu.Lock()
	s.queue = append(s.queue, b)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// fail records why the socket ended, once.
func (s *jsSocket) fail(err error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.closed)
	})
}

func (s *jsSocket) read(ctx context.Context) ([]byte, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			b := s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return b, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-s.notify:
		case <-s.closed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *jsSocket) write(ctx context.Context, text []byte) error {
	select {
	case <-s.closed:
		return errors.New("WebSocket closed")
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.ws.Call("send", string(text))
	return nil
}

// closeNow closes the WebSocket and releases its callbacks, after
// detaching them so that no late event calls a released function.
func (s *jsSocket) closeNow() {
	for _, name := range []string{"onopen", "onmessage", "onclose"} {
		s.ws.Set(name, js.Null())
	}
	s.ws.Call("close")
	for _, f := range s.handlers {
		f.Release()
	}
	s.handlers = nil
	s.fail(errors.New("WebSocket closed"))
}
