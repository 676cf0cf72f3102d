package httpapi

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// hijackWriter hands coder/websocket a hijacked connection wrapped in a
// corkConn, with small buffers instead of net/http's 4 KiB ones (which
// an idle connection would keep for its lifetime).
type hijackWriter struct {
	http.ResponseWriter
	nc *corkConn
}

// Hijack implements http.Hijacker.
func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.nc = &corkConn{Conn: c}
	// Bytes the client sent early stay buffered in the new reader
	// (coder/websocket keeps only what is buffered when it takes over).
	n := brw.Reader.Buffered()
	br := bufio.NewReaderSize(h.nc, max(wsReadBuffer, n))
	if n > 0 {
		b, _ := brw.Reader.Peek(n)
		br.Reset(io.MultiReader(bytes.NewReader(bytes.Clone(b)), h.nc))
		if _, err := br.Peek(n); err != nil {
			c.Close()
			return nil, nil, err
		}
	}
	return h.nc, bufio.NewReadWriter(br, bufio.NewWriterSize(h.nc, wsWriteBuffer)), nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (h *hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// maxCork bounds the bytes a corked connection buffers before writing.
const maxCork = 64 << 10

// corkDirect is the size from which a write passes a corked connection's
// buffer: what was held back and the write itself go out together,
// uncopied (writeAfterHeld). Copying a 50 KB commit frame into the
// buffers of 10,000 connections (grown for it, on fresh pages) cost
// parleyd about a fifth of its CPU in a fan-out.
const corkDirect = 4 << 10

var corkPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// corkConn is a connection whose writes can be held back and written
// together: the writer corks it, writes the frames it has (each of which
// coder/websocket flushes), and uncorks it, which writes them with one
// write(2). Uncorked, writes go straight through. The buffer is borrowed
// from a pool only while corked.
type corkConn struct {
	net.Conn
	mu      sync.Mutex
	buf     *[]byte // buf is non-nil while corked
	aborted bool
}

// Write implements net.Conn.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return c.Conn.Write(p)
	}
	if len(p) >= corkDirect {
		return c.writeAfterHeld(p)
	}
	if len(*c.buf)+len(p) > maxCork {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// buffersWriter is a connection that writes several buffers as one
// write (connlimit's, over TCP). A TLS connection is not one: its
// records are written through it.
type buffersWriter interface {
	WriteBuffers(b *net.Buffers) (int64, error)
}

// writeAfterHeld writes what was held back and then p, in one write
// where the connection can gather them.
func (c *corkConn) writeAfterHeld(p []byte) (int, error) {
	held := *c.buf
	*c.buf = held[:0]
	if len(held) == 0 {
		return c.Conn.Write(p)
	}
	if bw, ok := c.Conn.(buffersWriter); ok {
		bufs := net.Buffers{held, p}
		n, err := bw.WriteBuffers(&bufs)
		return max(0, int(n)-len(held)), err
	}
	if _, err := c.Conn.Write(held); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// cork holds back writes until uncork.
func (c *corkConn) cork() {
	c.mu.Lock()
	if c.buf == nil {
		c.buf = corkPool.Get().(*[]byte)
	}
	c.mu.Unlock()
}

// uncork writes what was held back within timeout (none: with the
// connection's current deadline, as after a failed write) and lets later
// writes through.
func (c *corkConn) uncork(timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		return nil
	}
	var err error
	if len(*c.buf) > 0 && timeout > 0 {
		if !c.aborted {
			c.Conn.SetWriteDeadline(time.Now().Add(timeout))
		}
		err = c.flushLocked()
		if !c.aborted {
			c.Conn.SetWriteDeadline(time.Time{})
		}
	}
	b := c.buf
	c.buf = nil
	if cap(*b) <= maxCork {
		*b = (*b)[:0]
		corkPool.Put(b)
	}
	return err
}

func (c *corkConn) flushLocked() error {
	b := *c.buf
	*c.buf = b[:0]
	if len(b) == 0 {
		return nil
	}
	_, err := c.Conn.Write(b)
	return err
}

// abort makes writes in progress and later ones fail at once.
func (c *corkConn) abort() {
	c.Conn.SetWriteDeadline(time.Unix(1, 0))
	c.mu.Lock()
	c.aborted = true
	c.mu.Unlock()
}
