package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsServer serves /metrics on a listener of its own (metrics_listen,
// loopback by default): the public listener never shows traffic and
// connection counts.
type metricsServer struct {
	srv *http.Server
	url string // url is http://ADDR/metrics, "" when off.
}

// startMetrics starts the metrics listener, or returns a metricsServer
// that serves nothing when metrics or metrics_listen are off.
func startMetrics(c Config, g prometheus.Gatherer, log *slog.Logger) (*metricsServer, error) {
	if !c.Metrics || c.MetricsListen == "" {
		return &metricsServer{}, nil
	}
	var token []byte
	if c.MetricsTokenFile != "" {
		b, err := os.ReadFile(c.MetricsTokenFile)
		if err != nil {
			return nil, fmt.Errorf("metrics_token_file: %v", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return nil, fmt.Errorf("metrics_token_file: %s is empty", c.MetricsTokenFile)
		}
		sum := sha256.Sum256([]byte(t))
		token = sum[:]
	}
	ln, err := net.Listen("tcp", c.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: listen on %s: %v", c.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", requireToken(token, promhttp.HandlerFor(g, promhttp.HandlerOpts{MaxRequestsInFlight: 4})))
	m := &metricsServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      time.Minute,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.With("component", "metrics").Handler(), slog.LevelDebug),
		},
		url: "http://" + ln.Addr().String() + "/metrics",
	}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
	if token == nil {
		if h, _, _ := net.SplitHostPort(c.MetricsListen); !isLoopback(h) {
			log.Warn("metrics are served without a token on a non-loopback address; set metrics_token_file or keep the address private", "metrics_listen", c.MetricsListen)
		}
	}
	return m, nil
}

// isLoopback reports whether host is localhost or a loopback IP.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// requireToken answers 401 unless the request carries the bearer token
// whose SHA-256 is sum (nil: no token needed).
func requireToken(sum []byte, h http.Handler) http.Handler {
	if sum == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		got := sha256.Sum256([]byte(strings.TrimSpace(t)))
		if !ok || subtle.ConstantTimeCompare(got[:], sum) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parleyd metrics"`)
			http.Error(w, "metrics need the bearer token of metrics_token_file", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// describe is the start message's metrics line.
func (m *metricsServer) describe() string {
	if m.url == "" {
		return "off"
	}
	return m.url
}

// shutdown stops the listener, waiting at most 5 seconds for scrapes in
// flight.
func (m *metricsServer) shutdown(ctx context.Context) {
	if m.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := m.srv.Shutdown(ctx); err != nil {
		m.srv.Close()
	}
}
