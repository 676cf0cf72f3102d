package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// TestAutoMaxConnections checks the cap derived from the open-file
// limit and the headroom it keeps.
func TestAutoMaxConnections(t *testing.T) {
	sqlite := NewConfig()
	sqlite.DataDir = "/data"
	pg := sqlite
	pg.Store, pg.StoreMaxConns, pg.Fanout = "postgres://u@db/parley", 20, "nats://127.0.0.1:4222"
	for _, tc := range []struct {
		name   string
		nofile uint64
		c      Config
		want   int // want is the cap; 0 means an error
	}{
		// 512 − (64 margin + 512/8 attachments + 16 SQLite).
		{"sqlite 512", 512, sqlite, 512 - 64 - 64 - 16},
		// 512 − (64 + 64 + 20 pool + 4 attachment pool + 16 NATS).
		{"postgres 512", 512, pg, 512 - 64 - 64 - 20 - 4 - 16},
		{"sqlite 1Mi", 1 << 20, sqlite, 1<<20 - 64 - 1<<17 - 16},
		{"infinite", ^uint64(0), sqlite, 1<<20 - 64 - 1<<17 - 16},
		{"too low", 100, sqlite, 0},
	} {
		got, _, err := autoMaxConnections(tc.nofile, tc.c)
		if tc.want == 0 {
			if err == nil || !strings.Contains(err.Error(), "connections.max") {
				t.Errorf("%s: cap %d, error %v; want an error naming connections.max", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: cap %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}

	// A configured cap wins, with a warning when the limit cannot carry
	// it; without an open-file limit one must be configured.
	var warned []string
	warn := func(msg string, _ ...any) { warned = append(warned, msg) }
	c := sqlite
	c.Connections.Max = 10000
	if got, err := connectionCap(c, func() (uint64, error) { return 512, nil }, warn); err != nil || got != 10000 || len(warned) != 1 {
		t.Errorf("configured cap over the limit: %d, %v, warnings %q", got, err, warned)
	}
	if got, err := connectionCap(sqlite, func() (uint64, error) { return 0, errors.New("none") }, warn); err == nil {
		t.Errorf("no limit and no configured cap: %d, want an error", got)
	}
}

// TestConnectionSettings checks that the connection limits are
// configuration keys, shown by `parleyd config`, and validated.
func TestConnectionSettings(t *testing.T) {
	c := NewConfig()
	out := formatConfig(&c)
	for _, want := range []string{
		"connections.max = 0\n", "connections.max_per_addr = 256\n", `connections.header_timeout = "10s"`,
		`connections.body_timeout = "20s"`, "connections.body_min_rate = 1024\n", "connections.trusted_proxies = []",
		`connections.client_ip_header = "X-Forwarded-For"`, `metrics_listen = "127.0.0.1:9464"`, `metrics_token_file = ""`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("parleyd config lacks %s", want)
		}
	}
	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"--connections-max", "-1"}, "connections.max"},
		{[]string{"--connections-max-per-addr", "-5"}, "connections.max_per_addr"},
		{[]string{"--connections-header-timeout", "0s"}, "connections.header_timeout"},
		{[]string{"--connections-body-timeout", "10ms"}, "connections.body_timeout"},
		{[]string{"--connections-body-min-rate", "0"}, "connections.body_min_rate"},
		{[]string{"--connections-trusted-proxies", "10.0.0.0/8,proxy.example"}, "connections.trusted_proxies"},
		{[]string{"--connections-client-ip-header", "X Forwarded"}, "connections.client_ip_header"},
		{[]string{"--metrics-listen", "9464"}, "metrics_listen"},
	} {
		_, err := parseConfig(t, tc.args, nil)
		if err == nil || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.key)
		}
	}
	c, err := parseConfig(t, []string{"--connections-trusted-proxies", "10.0.0.0/8, 192.0.2.7, 2001:db8::/32"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ps, err := trustedProxies(c.Connections.TrustedProxies); err != nil || len(ps) != 3 || ps[1].String() != "192.0.2.7/32" {
		t.Errorf("trusted proxies %v, %v", ps, err)
	}
}

// metricsLineRE finds the metrics listener in the start message.
var metricsLineRE = regexp.MustCompile(`(?m)^metrics: (\S+)$`)

// TestMetricsListener checks that metrics are served on their own
// listener, not on the public one, optionally behind a bearer token,
// and that the start message says where.
func TestMetricsListener(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "metrics-token")
	writeFile(t, tokenFile, "s3cret-token\n")
	s := startInProcess(t, nil, "--data-dir", filepath.Join(dir, "data"), "--tls-mode", "off", "--metrics-token-file", tokenFile)
	m := metricsLineRE.FindStringSubmatch(s.stdout.String())
	if m == nil || !strings.HasPrefix(m[1], "http://127.0.0.1:") {
		t.Fatalf("start message has no loopback metrics URL:\n%s", s.stdout)
	}
	metricsURL := m[1]
	get := func(url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("http://"+s.addr+"/metrics", "s3cret-token"); code != http.StatusNotFound {
		t.Errorf("public listener GET /metrics: %d, want 404", code)
	}
	if code, _ := get(metricsURL, ""); code != http.StatusUnauthorized {
		t.Errorf("metrics without the token: %d, want 401", code)
	}
	if code, _ := get(metricsURL, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("metrics with a wrong token: %d, want 401", code)
	}
	code, body := get(metricsURL, "s3cret-token")
	if code != http.StatusOK || !strings.Contains(body, "parley_connections_open") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics with the token: %d\n%.500s", code, body)
	}
	if strings.Contains(s.stderr.String(), "s3cret-token") || strings.Contains(s.stdout.String(), "s3cret-token") {
		t.Error("the metrics token appears in the output")
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	// metrics_listen empty: no metrics listener.
	s = startInProcess(t, nil, "--data-dir", filepath.Join(dir, "data2"), "--tls-mode", "off", "--metrics-listen", "")
	if m := metricsLineRE.FindStringSubmatch(s.stdout.String()); m == nil || m[1] != "off" {
		t.Errorf("metrics line %q, want off", m)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestHandshakeAndHeaderDeadlines proves what bounds a client before it
// authenticates: net/http applies connections.header_timeout to the TLS
// handshake (it uses its smallest timeout for it) and to the headers of
// every request, the WebSocket upgrade included (a WebSocket
// authenticates with its upgrade request's headers, so it is never open
// unauthenticated).
func TestHandshakeAndHeaderDeadlines(t *testing.T) {
	s := startInProcess(t, nil, "--data-dir", filepath.Join(t.TempDir(), "data"), "--connections-header-timeout", "1s")
	closedWithin := func(what string, c net.Conn) time.Duration {
		t.Helper()
		start := time.Now()
		c.SetReadDeadline(start.Add(60 * time.Second))
		_, err := io.Copy(io.Discard, c)
		took := time.Since(start)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: still open after 60s", what)
		}
		t.Logf("%s: closed after %v", what, took)
		return took
	}

	// A TCP connection that never starts its TLS handshake.
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	closedWithin("silent TLS client", c)

	// A TLS handshake stopped after the first bytes of a ClientHello.
	c2, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01})
	closedWithin("partial ClientHello", c2)

	// A WebSocket upgrade whose headers never end.
	tc, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	fmt.Fprintf(tc, "GET /v1/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	start := time.Now()
	tc.SetReadDeadline(start.Add(60 * time.Second))
	_, err = io.Copy(io.Discard, tc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("unfinished WebSocket upgrade: still open after 60s")
	}
	t.Logf("unfinished WebSocket upgrade: closed after %v", time.Since(start))
}

// slowClient opens a TLS connection from 127.0.0.1, sends the head of a
// POST with a large Content-Length and trickles a byte every interval
// until the server closes the connection or stop is closed. held
// reports whether the server took the connection; ended is closed when
// the server closed it.
type slowClient struct {
	held  bool
	ended chan struct{}
}

func startSlowClient(addr string, cfg *tls.Config, interval time.Duration, stop <-chan struct{}) *slowClient {
	sc := &slowClient{ended: make(chan struct{})}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: 30 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		close(sc.ended) // refused
		return sc
	}
	sc.held = true
	go func() {
		defer close(sc.ended)
		defer c.Close()
		// The reader sees the server's answer or close.
		gone := make(chan struct{})
		go func() {
			io.Copy(io.Discard, c)
			close(gone)
		}()
		if _, err := io.WriteString(c, "POST /v1/register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{"); err != nil {
			return
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-gone:
				return
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte(" ")); err != nil {
					<-gone
					return
				}
			}
		}
	}()
	return sc
}

// TestSlowClientsDoNotStarveOthers is the regression test of the
// connection exhaustion: parleyd runs with an open-file limit of 128
// (its connection cap, derived from it, is 32) while 150 clients from
// 127.0.0.1 announce large bodies and trickle them a byte at a time.
// Before the caps they took every file descriptor and nobody else got
// in; now 127.0.0.1 gets connections.max_per_addr of them, the rest are
// closed at once and counted, a client from 127.0.0.2 checks /healthz,
// registers, logs in and sends within normal latency, and the body
// deadline ends the trickling connections.
func TestSlowClientsDoNotStarveOthers(t *testing.T) {
	bin := buildParleyd(t)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "parleyd-nofile-128")
	writeFile(t, wrapper, fmt.Sprintf("#!/bin/sh\nulimit -n 128 || exit 1\nexec %q \"$@\"\n", bin))
	if err := os.Chmod(wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	const perAddr = 8
	// The registration rate limit would otherwise turn most slow
	// clients away before their bodies are read, which an attacker with
	// many addresses does not meet.
	c := startParleyd(t, wrapper, filepath.Join(dir, "data"), "--open-registration",
		"--rate-limits-register-per-ip-per-second", "1000", "--rate-limits-register-per-ip-burst", "1000",
		"--connections-max-per-addr", strconv.Itoa(perAddr), "--connections-body-timeout", "15s")
	if !strings.Contains(c.stderr.String(), "max_connections=32") {
		t.Errorf("no cap of 32 derived from the open-file limit 128 in the log:\n%s", c.stderr)
	}
	addr := strings.TrimPrefix(c.url, "https://")

	// The slow clients. Each refused one is closed before its handshake
	// completes.
	stop := make(chan struct{})
	defer close(stop)
	const slow = 150
	clients := make([]*slowClient, slow)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			clients[i] = startSlowClient(addr, c.tlsConfig(), 500*time.Millisecond, stop)
		}()
	}
	wg.Wait()
	start := time.Now()
	held := 0
	for _, sc := range clients {
		if sc.held {
			held++
		}
	}
	t.Logf("%d of %d slow clients held a connection", held, slow)
	if held > perAddr {
		t.Errorf("%d slow connections from 127.0.0.1 held; the cap is %d", held, perAddr)
	}

	// Meanwhile a client from another address is served normally.
	other := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: c.tlsConfig(),
		DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
	}}
	var slowest atomic.Int64
	timed := func(name string, f func()) {
		t0 := time.Now()
		f()
		d := time.Since(t0)
		if d > time.Duration(slowest.Load()) {
			slowest.Store(int64(d))
		}
		if d > 10*time.Second {
			t.Errorf("%s from 127.0.0.2 took %v", name, d)
		}
	}
	timed("GET /healthz", func() { doJSON(t, other, "GET", c.url+"/healthz", "", nil, nil, http.StatusOK) })
	carol := newTestUser(t, "carol")
	timed("register", func() { carol.register(t, other, c.url, "") })
	var token string
	timed("login", func() { token = carol.login(t, other, c.url, "localhost") })
	var group *mls.Group
	var conv protocol.ConversationInfo
	timed("create conversation", func() { group, conv = carol.createConversation(t, other, c.url, token, "slow-clients-group") })
	msg, err := group.Encrypt([]byte("still served"), nil)
	if err != nil {
		t.Fatal(err)
	}
	timed("send", func() {
		doJSON(t, other, "POST", fmt.Sprintf("%s/v1/conversations/%d/messages", c.url, conv.ID), token, protocol.SendRequest{Message: msg}, nil, http.StatusOK)
	})
	t.Logf("slowest request from 127.0.0.2: %v", time.Duration(slowest.Load()))

	// The refusals are counted on the metrics listener.
	if c.metricsURL == "" {
		t.Fatal("no metrics URL printed")
	}
	if v := scrapeMetric(t, c.metricsURL, `parley_connections_refused_total{reason="per_addr"}`); v < float64(slow-perAddr) {
		t.Errorf("refused per address: %v, want at least %d", v, slow-perAddr)
	}

	// The body deadline ends the trickling connections (15s unless
	// 15 KiB arrived, and they send 2 bytes a second).
	for i, sc := range clients {
		select {
		case <-sc.ended:
		case <-time.After(90*time.Second - time.Since(start)):
			t.Fatalf("slow client %d still connected %v after the others started; the body timeout is 15s", i, time.Since(start))
		}
	}
	t.Logf("every slow connection ended within %v", time.Since(start))
}

// scrapeMetric returns the value of the series (name and labels exactly)
// at the metrics URL.
func scrapeMetric(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", series, v, err)
			}
			return f
		}
	}
	t.Fatalf("%s not in the metrics", series)
	return 0
}
