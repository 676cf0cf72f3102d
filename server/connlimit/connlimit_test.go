package connlimit

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// refused returns the refused counter of the reason.
func refused(t *testing.T, l *Limiter, reason string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(l.refused); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no refused counter for %s", reason)
	return 0
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                "192.0.2.7/32",
		"::ffff:192.0.2.7":         "192.0.2.7/32",
		"2001:db8:1:2:3:4:5:6":     "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":     "2001:db8:1:2::/64",
		"fe80::1%eth0":             "fe80::/64",
		"::1":                      "::/64",
		"2001:db8:1:3::1":          "2001:db8:1:3::/64",
		"2001:0db8:0001:0002::abc": "2001:db8:1:2::/64",
	} {
		if got := Key(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("Key(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestLimiterCaps(t *testing.T) {
	l, err := New("test", 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := l.Register(reg); err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	r1, err1 := l.Acquire(a, true)
	r2, err2 := l.Acquire(a, true)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	var re *RefusedError
	if _, err := l.Acquire(a, true); !errors.As(err, &re) || re.Reason != ReasonPerAddr || re.Limit != 2 {
		t.Fatalf("third from %s: %v, want refused per address", a, err)
	}
	// An exempt connection (a trusted proxy) counts only in the total.
	r3, err := l.Acquire(a, false)
	if err != nil {
		t.Fatalf("exempt: %v", err)
	}
	if _, err := l.Acquire(b, true); !errors.As(err, &re) || re.Reason != ReasonTotal || re.Limit != 3 {
		t.Fatalf("fourth in total: %v, want refused in total", err)
	}
	if n := l.Open(); n != 3 {
		t.Errorf("open %d, want 3", n)
	}
	r1()
	r1() // idempotent
	if n := l.Open(); n != 2 {
		t.Errorf("open after release %d, want 2", n)
	}
	r4, err := l.Acquire(b, true)
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	r2()
	r3()
	r4()
	if n := l.Open(); n != 0 || len(l.byAddr) != 0 {
		t.Errorf("open %d, %d addresses counted after every release; want none", n, len(l.byAddr))
	}
	if got := refused(t, l, ReasonPerAddr); got != 1 {
		t.Errorf("refused per address %v, want 1", got)
	}
	if got := refused(t, l, ReasonTotal); got != 1 {
		t.Errorf("refused in total %v, want 1", got)
	}
	if _, err := New("bad", -1, 0); err == nil {
		t.Error("negative cap accepted")
	}
}

// dialFrom connects from the loopback address from to ln.
func dialFrom(t *testing.T, from string, ln net.Listener) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refusedFrom connects from the loopback address from to ln and reports
// whether the server closed the connection at once: the dial is reset,
// or a read ends with EOF or a reset instead of waiting (the server
// never writes).
func refusedFrom(t *testing.T, from string, ln net.Listener) bool {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		return errors.Is(err, syscall.ECONNRESET)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// TestListen checks on real loopback TCP that connections over the
// per-address cap are closed at once, that other addresses and trusted
// proxies still get in, and that closing a connection frees its slot.
func TestListen(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := New("test", 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	proxy := netip.MustParseAddr("127.0.0.3")
	ln := Listen(raw, l, func(a netip.Addr) bool { return a == proxy })
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	accept := func(what string) net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			t.Cleanup(func() { c.Close() })
			return c
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: not accepted within 30s", what)
			return nil
		}
	}

	dialFrom(t, "127.0.0.1", ln)
	s1 := accept("first from 127.0.0.1")
	dialFrom(t, "127.0.0.1", ln)
	accept("second from 127.0.0.1")
	if !refusedFrom(t, "127.0.0.1", ln) {
		t.Fatal("third connection from 127.0.0.1 was not closed")
	}
	// Another address, and a trusted proxy beyond the per-address cap.
	dialFrom(t, "127.0.0.2", ln)
	accept("from 127.0.0.2")
	dialFrom(t, "127.0.0.3", ln)
	accept("first from the proxy")
	// The total cap (4) is reached now.
	if !refusedFrom(t, "127.0.0.3", ln) {
		t.Fatal("connection over the total cap was not closed")
	}
	// Closing a connection frees its slot.
	s1.Close()
	dialFrom(t, "127.0.0.1", ln)
	accept("from 127.0.0.1 after a close")
	if got := refused(t, l, ReasonPerAddr); got != 1 {
		t.Errorf("refused per address %v, want 1", got)
	}
	if got := refused(t, l, ReasonTotal); got != 1 {
		t.Errorf("refused in total %v, want 1", got)
	}
}
