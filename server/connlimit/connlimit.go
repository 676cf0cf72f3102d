// Package connlimit bounds the connections a server holds open: in total
// and per client address. A Limiter counts; Listen wraps a net.Listener
// so that a connection over a cap is closed as soon as it is accepted,
// before it costs a goroutine, a TLS handshake or a buffer. Clients
// behind a trusted reverse proxy are known only after their request
// headers: the HTTP layer acquires their slot itself (Limiter.Acquire)
// and answers 503 when it is refused.
//
// Addresses are counted by Key: an IPv4 address, or the /64 prefix of an
// IPv6 address (one subscriber usually holds a whole /64, so counting
// single IPv6 addresses would not cap anyone).
package connlimit

import (
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Refusal reasons, the values of the reason label of the refused
// counter.
const (
	ReasonTotal   = "total"    // the total cap was reached
	ReasonPerAddr = "per_addr" // the client address's cap was reached
)

// RefusedError is returned by Acquire for a connection over a cap.
type RefusedError struct {
	// Reason is ReasonTotal or ReasonPerAddr.
	Reason string
	// Limit is the cap that was reached.
	Limit int
}

func (e *RefusedError) Error() string {
	if e.Reason == ReasonTotal {
		return fmt.Sprintf("connlimit: %d connections open in total, the most allowed", e.Limit)
	}
	return fmt.Sprintf("connlimit: %d connections open from this client address, the most allowed", e.Limit)
}

// Limiter counts open connections in total and per client address. It
// is safe for concurrent use.
type Limiter struct {
	maxTotal, maxPerAddr int

	mu     sync.Mutex
	total  int
	byAddr map[netip.Prefix]int

	open    prometheus.GaugeFunc
	refused *prometheus.CounterVec
}

// New returns a Limiter that allows at most maxTotal connections in all
// and maxPerAddr per client address; zero means no cap. name is the
// middle of its metrics' names: parley_NAME_open and
// parley_NAME_refused_total{reason}.
func New(name string, maxTotal, maxPerAddr int) (*Limiter, error) {
	if maxTotal < 0 || maxPerAddr < 0 {
		return nil, fmt.Errorf("connlimit: new %s: caps %d total, %d per address must not be negative", name, maxTotal, maxPerAddr)
	}
	l := &Limiter{maxTotal: maxTotal, maxPerAddr: maxPerAddr, byAddr: map[netip.Prefix]int{}}
	l.open = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_" + name + "_open", Help: "Connections open (" + name + ")."},
		func() float64 { return float64(l.Open()) })
	l.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_" + name + "_refused_total",
		Help: "Connections refused (" + name + ") because a cap was reached, by reason (total or per_addr)."}, []string{"reason"})
	for _, r := range []string{ReasonTotal, ReasonPerAddr} {
		l.refused.WithLabelValues(r)
	}
	return l, nil
}

// Register registers the Limiter's metrics with reg; a nil reg does
// nothing.
func (l *Limiter) Register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{l.open, l.refused} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("connlimit: register metrics: %v", err)
		}
	}
	return nil
}

// Open returns the number of connections open.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Key returns the unit an address is counted in: the IPv4 address (also
// for IPv4-mapped IPv6 addresses) or the IPv6 address's /64 prefix.
func Key(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap().WithZone("")
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

// Acquire counts a connection from addr against the total cap and, when
// perAddr is set, against addr's cap (a trusted proxy's own connections
// count only in the total). It returns the function that releases the
// connection's slot (idempotent), or a *RefusedError.
func (l *Limiter) Acquire(addr netip.Addr, perAddr bool) (release func(), err error) {
	key := Key(addr)
	l.mu.Lock()
	switch {
	case l.maxTotal > 0 && l.total >= l.maxTotal:
		err = &RefusedError{Reason: ReasonTotal, Limit: l.maxTotal}
	case perAddr && l.maxPerAddr > 0 && l.byAddr[key] >= l.maxPerAddr:
		err = &RefusedError{Reason: ReasonPerAddr, Limit: l.maxPerAddr}
	default:
		l.total++
		if perAddr {
			l.byAddr[key]++
		}
	}
	l.mu.Unlock()
	if err != nil {
		l.refused.WithLabelValues(err.(*RefusedError).Reason).Inc()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.total--
			if perAddr {
				if n := l.byAddr[key] - 1; n > 0 {
					l.byAddr[key] = n
				} else {
					delete(l.byAddr, key)
				}
			}
			l.mu.Unlock()
		})
	}, nil
}

// Listen returns a listener that counts every accepted connection in l
// until it is closed, and closes at once a connection over a cap
// (without reading from or writing to it). Connections from addresses
// for which exempt returns true (trusted reverse proxies, whose clients
// are counted after their headers) count only in the total; exempt may
// be nil.
func Listen(ln net.Listener, l *Limiter, exempt func(netip.Addr) bool) net.Listener {
	return &listener{Listener: ln, l: l, exempt: exempt}
}

type listener struct {
	net.Listener
	l      *Limiter
	exempt func(netip.Addr) bool
}

// Accept implements net.Listener: it returns the next connection within
// the caps.
func (ln *listener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(c)
		release, err := ln.l.Acquire(addr, ln.exempt == nil || !ln.exempt(addr))
		if err != nil {
			// Close at once: the peer sees a reset or EOF instead of a
			// connection that hangs.
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		return &conn{Conn: c, release: release}, nil
	}
}

// remoteAddr is the connection's peer IP address (the zero Addr for a
// connection without one, such as a Unix socket: they share one count).
func remoteAddr(c net.Conn) netip.Addr {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// conn releases its slot when closed.
type conn struct {
	net.Conn
	release func()
}

// Close implements net.Conn.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// NetConn returns the wrapped connection (as crypto/tls does), for code
// that looks for the *net.TCPConn.
func (c *conn) NetConn() net.Conn { return c.Conn }

// WriteBuffers writes b as one write where the wrapped connection can (a
// TCP connection gathers the buffers in one writev).
func (c *conn) WriteBuffers(b *net.Buffers) (int64, error) { return b.WriteTo(c.Conn) }
