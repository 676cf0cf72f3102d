package daemonapi

import (
	"context"
	"net"
	"sync"
)

// PipeListener is a net.Listener within the process: Dial hands the
// server one end of a net.Pipe and returns the other. It serves the API
// where there is no socket to listen on, as in the browser, whose page
// talks to the SDK through the web client's bridge.
type PipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// NewPipeListener returns an open PipeListener.
func NewPipeListener() *PipeListener {
	return &PipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next Dial.
func (l *PipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Dial connects to the server accepting on l. It fails when ctx is done
// before the server accepts, or l is closed.
func (l *PipeListener) Dial(ctx context.Context) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
	case <-ctx.Done():
		server.Close()
		client.Close()
		return nil, ctx.Err()
	}
	server.Close()
	client.Close()
	return nil, net.ErrClosed
}

// Close stops Accept and Dial; connections made stay open (the server
// closes its ends when its context is done).
func (l *PipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr returns the listener's placeholder address.
func (l *PipeListener) Addr() net.Addr { return pipeAddr{} }

// pipeAddr is the address of a PipeListener.
type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
