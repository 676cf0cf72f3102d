//go:build js && wasm

package main

import (
	"bufio"
	"net"
	"sync"
	"syscall/js"
)

// maxLine bounds a line from the daemon API (a long history).
const maxLine = 64 << 20

// pageConn is a connection of the page to the daemon API. send queues
// lines without waiting, so that the page's call returns at once; a
// writer goroutine passes them on, a reader goroutine hands every line
// received to onLine.
type pageConn struct {
	onLine js.Value
	log    func(msg string, err error)

	mu     sync.Mutex
	queue  [][]byte
	closed bool
	wake   chan struct{} // a line was queued, or the connection closed
	done   chan struct{} // closed by close
	nc     net.Conn      // once dialled
}

// connect implements parley.connect(onLine): {send(line), close()}.
func (b *bridge) connect(_ js.Value, args []js.Value) any {
	onLine := arg(args, 0)
	pc := &pageConn{onLine: onLine, wake: make(chan struct{}, 1), done: make(chan struct{}),
		log: func(msg string, err error) { b.log.Error(msg, "err", err) }}
	s, err := b.session()
	switch {
	case onLine.Type() != js.TypeFunction:
		b.log.Error("parley.connect: want a function for onLine")
		pc.close()
	case err != nil:
		b.log.Error("parley.connect", "err", err)
		pc.close()
	default:
		go pc.run(s)
	}
	// The two functions are not released: a page makes few connections,
	// and a released function would throw if the page called it later.
	o := js.Global().Get("Object").New()
	o.Set("send", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if l := arg(args, 0); l.Type() == js.TypeString {
			pc.send(l.String())
		}
		return nil
	}))
	o.Set("close", js.FuncOf(func(js.Value, []js.Value) any {
		pc.close()
		return nil
	}))
	return o
}

// send queues one request line.
func (pc *pageConn) send(line string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		return
	}
	pc.queue = append(pc.queue, append([]byte(line), '\n'))
	select {
	case pc.wake <- struct{}{}:
	default:
	}
}

// close ends the connection.
func (pc *pageConn) close() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		return
	}
	pc.closed = true
	close(pc.done)
	if pc.nc != nil {
		pc.nc.Close()
	}
}

// run dials the server and writes the queued lines until the connection
// ends; a reader goroutine delivers the lines received.
func (pc *pageConn) run(s *session) {
	nc, err := s.ln.Dial(s.ctx)
	if err != nil {
		if s.ctx.Err() == nil {
			pc.log("parley.connect", err)
		}
		pc.close()
		return
	}
	pc.mu.Lock()
	if pc.closed {
		pc.mu.Unlock()
		nc.Close()
		return
	}
	pc.nc = nc
	pc.mu.Unlock()
	go pc.read(nc)
	for {
		select {
		case <-pc.done:
			return
		case <-pc.wake:
		}
		pc.mu.Lock()
		q := pc.queue
		pc.queue = nil
		pc.mu.Unlock()
		for _, line := range q {
			if _, err := nc.Write(line); err != nil {
				pc.close()
				return
			}
		}
	}
}

// read hands every line from the server to onLine.
func (pc *pageConn) read(nc net.Conn) {
	sc := bufio.NewScanner(nc)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		pc.deliver(sc.Text())
	}
	pc.close()
}

// deliver calls onLine; an exception it throws is logged, not fatal.
func (pc *pageConn) deliver(line string) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(js.Error); ok {
				pc.log("parley.connect: onLine threw", e)
				return
			}
			panic(r)
		}
	}()
	pc.onLine.Invoke(line)
}
