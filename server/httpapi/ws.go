package httpapi

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
)

// wsConn is one WebSocket connection. It has one reader goroutine; a
// writer goroutine runs only while there is something to write (started
// by the delivery connection's wake-ups), so an idle connection costs one
// goroutine.
type wsConn struct {
	c      *websocket.Conn
	nc     *corkConn
	dc     *delivery.Conn
	ctx    context.Context
	cancel context.CancelFunc

	running  atomic.Bool   // running: a writer goroutine runs, or the writer ended for good
	again    atomic.Bool   // again: woken since the writer last polled
	attached atomic.Bool   // attached: dc is set, so a writer may start
	binary   atomic.Bool   // binary: the client subscribed for binary entry frames
	ended    chan struct{} // ended is closed when the writer ended for good
}

// pingWorkers bounds the goroutines pinging connections at once.
const pingWorkers = 32

// WebSocket buffer sizes: frames larger than a buffer are read and
// written past it, so small buffers cost only idle memory, not copies.
const (
	wsReadBuffer  = 1 << 10
	wsWriteBuffer = 512
)

// serveWS upgrades an authenticated request to a WebSocket and starts the
// connection's reader goroutine.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		s.writeError(w, r, protocol.NewError(protocol.CodeUnavailable, "server is shutting down"))
		return
	}
	ss, err := s.authenticate(r, true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	hw := &hijackWriter{ResponseWriter: w}
	c, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		OriginPatterns:  s.cfg.AllowedOrigins,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		s.count(r, http.StatusForbidden)
		s.log.Info("websocket refused", "device", ss.Device, "err", err)
		return
	}
	s.count(r, http.StatusSwitchingProtocols)
	c.SetReadLimit(s.cfg.MaxFrameBytes)
	ctx, cancel := context.WithCancel(context.Background())
	wc := &wsConn{c: c, nc: hw.nc, ctx: ctx, cancel: cancel, ended: make(chan struct{})}
	wc.dc = s.svc.AttachWake(ss, s.cfg.SendQueue, func() { s.wake(wc) })
	// A wake-up may arrive while AttachWake runs, before dc is set: it is
	// remembered in again, and the writer starts only from here on.
	wc.attached.Store(true)
	if wc.again.Load() {
		s.wake(wc)
	}
	if !s.addConn(wc) {
		cancel()
		wc.dc.Close()
		c.Close(websocket.StatusGoingAway, "server is shutting down")
		return
	}
	// The handler returns now: the hijacked connection lives on in a
	// goroutine with a shallow stack (the net/http goroutine's deep stack,
	// the request and the response are freed), which keeps idle
	// connections small.
	go s.runConn(ctx, wc)
}

// runConn is the reader loop of a connection; it cleans up when the
// reader and the writer ended.
func (s *Server) runConn(ctx context.Context, wc *wsConn) {
	defer s.removeConn(wc)
	if failed := s.readLoop(ctx, wc); failed {
		// Let the writer send the error frame and close.
		t := time.NewTimer(s.cfg.WriteTimeout + 5*time.Second)
		select {
		case <-wc.ended:
		case <-t.C:
		}
		t.Stop()
	}
	wc.cancel()
	wc.nc.abort() // a write in progress ends at once
	wc.dc.Close() // the writer sees the closed connection and ends
	<-wc.ended
	wc.c.CloseNow()
}

// wake makes sure a writer goroutine runs to write what the delivery
// connection has. It never blocks.
func (s *Server) wake(wc *wsConn) {
	wc.again.Store(true)
	if !wc.attached.Load() {
		return
	}
	if wc.running.CompareAndSwap(false, true) {
		go s.writeLoop(wc)
	}
}

func (s *Server) addConn(wc *wsConn) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[wc] = struct{}{}
	s.connWG.Add(1)
	return true
}

func (s *Server) removeConn(wc *wsConn) {
	s.connMu.Lock()
	delete(s.conns, wc)
	s.connMu.Unlock()
	s.connWG.Done()
}

func (s *Server) connCount() int64 {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return int64(len(s.conns))
}

// readLoop reads frames until the connection ends. Protocol violations
// (a malformed frame, a field out of range, more frames than
// RateLimits.FramesPerConnection allows) make the writer send an error
// frame and close; readLoop then reports failed.
func (s *Server) readLoop(ctx context.Context, wc *wsConn) (failed bool) {
	dev := wc.dc.Session().Device
	fr := s.cfg.RateLimits.FramesPerConnection
	frames := rate.NewLimiter(rate.Limit(fr.PerSecond), fr.Burst)
	for {
		typ, data, err := wc.c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.StatusMessageTooBig {
				return false
			}
			if websocket.CloseStatus(err) == -1 && ctx.Err() == nil {
				s.log.Debug("websocket read ended", "device", dev, "err", err)
			}
			return false
		}
		if !frames.AllowN(s.svc.Now(), 1) {
			s.wsFrames.WithLabelValues("rate_limited").Inc()
			s.log.Info("websocket frame rate exceeded", "device", dev, "per_second", fr.PerSecond, "burst", fr.Burst)
			wc.dc.Fail(protocol.NewError(protocol.CodeRateLimited, "more than %g frames per second (burst %d) on this connection", fr.PerSecond, fr.Burst))
			return true
		}
		if typ != websocket.MessageText {
			wc.dc.Fail(protocol.NewError(protocol.CodeBadRequest, "frames are JSON text messages"))
			return true
		}
		f, err := protocol.UnmarshalFrame(data)
		if err != nil {
			s.wsFrames.WithLabelValues("invalid").Inc()
			pe, ok := err.(*protocol.Error) // a field out of range
			if !ok {
				pe = protocol.NewError(protocol.CodeBadRequest, "%v", err)
			}
			wc.dc.Fail(pe)
			return true
		}
		s.wsFrames.WithLabelValues(string(f.FrameType())).Inc()
		if err := s.handleFrame(ctx, wc, f); err != nil {
			pe, ok := delivery.AsProtocolError(err)
			if !ok {
				s.log.Error("websocket frame failed", "device", dev, "type", f.FrameType(), "err", err)
			}
			wc.dc.Fail(pe)
			return true
		}
	}
}

// handleFrame dispatches one client frame. A returned error closes the
// connection; errors of a send frame are answered with its client id.
func (s *Server) handleFrame(ctx context.Context, wc *wsConn, f protocol.Frame) error {
	switch f := f.(type) {
	case *protocol.SubscribeFrame:
		wc.binary.Store(f.Binary)
		return wc.dc.Subscribe(ctx, f)
	case *protocol.AckFrame:
		return wc.dc.Ack(ctx, f)
	case *protocol.SendFrame:
		if ok, _ := s.posts.Allow("d" + string(wc.dc.Session().Device)); !ok {
			wc.dc.SendError(f.ClientID, protocol.NewError(protocol.CodeRateLimited, "too many messages; retry later"))
			return nil
		}
		if err := wc.dc.Send(ctx, f); err != nil {
			pe, ok := delivery.AsProtocolError(err)
			if !ok {
				s.log.Error("websocket send failed", "device", wc.dc.Session().Device, "err", err)
			}
			wc.dc.SendError(f.ClientID, pe)
		}
		return nil
	case *protocol.TypingFrame:
		_ = wc.dc.Typing(ctx, f) // ephemeral: a typing signal for a foreign conversation is dropped
		return nil
	case *protocol.EphemeralFrame:
		// Dropped when refused (counted by the delivery core): never
		// answered, so a typing indicator cannot cost the connection.
		if err := wc.dc.Ephemeral(ctx, f); err != nil {
			if _, ok := delivery.AsProtocolError(err); !ok {
				s.log.Error("websocket ephemeral message failed", "device", wc.dc.Session().Device, "err", err)
			}
		}
		return nil
	case *protocol.PingFrame:
		wc.dc.Ping(f)
		return nil
	}
	return protocol.NewError(protocol.CodeBadRequest, "frame type %q is not sent by clients", f.FrameType())
}

// writeLoop writes what the delivery connection has, with one flush (one
// write(2)) per round, and returns when there is nothing more; the next
// wake-up starts a new one. A connection-level error is written as an
// error frame before closing, and ends the writer for good.
func (s *Server) writeLoop(wc *wsConn) {
	ctx := wc.ctx
	for {
		wc.again.Store(false)
		wc.nc.cork()
		for {
			f, err := wc.dc.Poll(ctx)
			if err != nil {
				if wc.nc.uncork(s.cfg.WriteTimeout) == nil {
					s.closeWith(ctx, wc, err)
				}
				s.endWriter(wc)
				return
			}
			if f == nil {
				break
			}
			if err := s.write(ctx, wc, f); err != nil {
				wc.nc.uncork(0)
				s.endWriter(wc)
				return
			}
		}
		if err := wc.nc.uncork(s.cfg.WriteTimeout); err != nil {
			s.endWriter(wc)
			return
		}
		wc.running.Store(false)
		if !wc.again.Load() || !wc.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// endWriter ends the writer for good (running stays set) and the
// connection with it.
func (s *Server) endWriter(wc *wsConn) {
	wc.cancel()
	close(wc.ended)
}

// closeWith closes the connection after the delivery connection ended
// with err, writing the reason as an error frame where it is the client's
// to know.
func (s *Server) closeWith(ctx context.Context, wc *wsConn, err error) {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		if ctx.Err() == nil {
			s.log.Error("websocket delivery failed", "device", wc.dc.Session().Device, "err", err)
			wc.c.Close(websocket.StatusInternalError, "internal error")
		}
		return
	}
	status := websocket.StatusPolicyViolation
	switch pe.Code {
	case protocol.CodeUnavailable:
		status = websocket.StatusGoingAway
		if pe.Message == goingAway {
			break
		}
		status = websocket.StatusTryAgainLater
	default:
		s.write(ctx, wc, &protocol.ErrorFrame{Error: *pe})
	}
	if ctx.Err() == nil {
		wc.c.Close(status, truncate(pe.Message, 120))
	}
}

const goingAway = "server is shutting down"

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// write writes one frame within the write timeout.
func (s *Server) write(ctx context.Context, wc *wsConn, f protocol.Frame) error {
	var b []byte
	var err error
	typ := websocket.MessageText
	if bf, ok := f.(delivery.BinaryFrame); ok && wc.binary.Load() {
		b, err = bf.EncodeBinary() // shared by the connections that write it
		typ = websocket.MessageBinary
	} else if ef, ok := f.(delivery.EncodedFrame); ok {
		b, err = ef.EncodeFrame() // shared likewise
	} else {
		b, err = protocol.MarshalFrame(f)
	}
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	err = wc.c.Write(wctx, typ, b)
	cancel()
	return err
}

// pinger pings every connection each PingInterval with a few workers; a
// connection whose pong does not come within ReadTimeout is closed.
func (s *Server) pinger(ctx context.Context) {
	defer close(s.pingDone)
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	work := make(chan *wsConn)
	var wg sync.WaitGroup
	for range pingWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wc := range work {
				pctx, cancel := context.WithTimeout(ctx, s.cfg.ReadTimeout)
				err := wc.c.Ping(pctx)
				cancel()
				if err != nil && ctx.Err() == nil {
					wc.c.CloseNow()
				}
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.connMu.Lock()
		list := make([]*wsConn, 0, len(s.conns))
		for wc := range s.conns {
			list = append(list, wc)
		}
		s.connMu.Unlock()
		for _, wc := range list {
			select {
			case work <- wc:
			case <-ctx.Done():
				return
			}
		}
	}
}

// Shutdown stops accepting WebSockets, closes the open ones with status
// going-away and waits until they ended or ctx ends (then closes the
// rest at once). Run it before http.Server.Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.connMu.Lock()
	s.closing.Store(true)
	list := make([]*wsConn, 0, len(s.conns))
	for wc := range s.conns {
		list = append(list, wc)
	}
	s.connMu.Unlock()
	s.stopPing()
	for _, wc := range list {
		wc.dc.Fail(protocol.NewError(protocol.CodeUnavailable, goingAway))
	}
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		<-s.pingDone
		return nil
	case <-ctx.Done():
		for _, wc := range list {
			wc.c.CloseNow()
		}
		<-done
		return ctx.Err()
	}
}
