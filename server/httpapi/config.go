// Package httpapi adapts the delivery core to HTTP and WebSocket: every
// route of package protocol under /v1, plus /healthz, /readyz and
// /metrics. Request bodies are JSON decoded strictly (one value, no
// unknown fields, size-limited); failures answer a protocol.Error with its
// HTTP status. The WebSocket at /v1/ws runs one reader goroutine per
// connection around a delivery.Conn, and a writer goroutine only while
// there is something to write (started on a wake-up; it writes everything
// pending with one write(2) and exits), with a bounded answer queue,
// WebSocket pings from a shared pinger and write deadlines.
package httpapi

import (
	"errors"
	"fmt"
	"time"
)

// Rate is a token-bucket rate: PerSecond sustained, Burst at once.
type Rate struct {
	PerSecond float64
	Burst     int
}

// RateLimits are the HTTP layer's rate limits. Refused requests answer 429
// rate_limited with Retry-After.
type RateLimits struct {
	// RegisterPerIP limits POST /v1/register per client IP.
	RegisterPerIP Rate
	// AuthPerIP limits POST /v1/auth/challenge and /v1/auth/session per IP.
	AuthPerIP Rate
	// RequestsPerIP limits every request per IP.
	RequestsPerIP Rate
	// RequestsPerUser limits authenticated requests per account.
	RequestsPerUser Rate
	// ClaimsPerUser limits KeyPackage claims per claiming account (the
	// delivery core also limits each (claimer, target) pair).
	ClaimsPerUser Rate
	// PostsPerDevice limits application messages (HTTP and WebSocket) and
	// handshakes per device.
	PostsPerDevice Rate
}

// Config configures the HTTP adapter. Start from DefaultConfig.
type Config struct {
	// MaxBodyBytes bounds a JSON request body.
	MaxBodyBytes int64
	// MaxFrameBytes bounds a WebSocket message from a client.
	MaxFrameBytes int64
	// MaxBlobBytes bounds one attachment upload.
	MaxBlobBytes int64
	// BlobQuotaBytes bounds the attachments of one user; zero: no quota.
	BlobQuotaBytes int64
	// AllowedOrigins are the host patterns (path.Match syntax, as in
	// coder/websocket) of browser origins allowed to open a WebSocket;
	// requests without Origin (non-browser clients) and same-host origins
	// are always allowed.
	AllowedOrigins []string
	// PingInterval is how often connections are pinged.
	PingInterval time.Duration
	// ReadTimeout is how long a ping may wait for its pong before the
	// connection is closed (a dead peer is detected within PingInterval +
	// ReadTimeout).
	ReadTimeout time.Duration
	// WriteTimeout bounds one WebSocket write.
	WriteTimeout time.Duration
	// RateLimits are the rate limits.
	RateLimits RateLimits
	// SendQueue bounds the answers and signals waiting to be written on
	// one connection; a connection that lets it overflow is closed.
	SendQueue int
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:   8 << 20,
		MaxFrameBytes:  2 << 20,
		MaxBlobBytes:   100 << 20,
		BlobQuotaBytes: 1 << 30,
		PingInterval:   30 * time.Second,
		ReadTimeout:    15 * time.Second,
		WriteTimeout:   10 * time.Second,
		RateLimits: RateLimits{
			RegisterPerIP:   Rate{PerSecond: 0.1, Burst: 10},
			AuthPerIP:       Rate{PerSecond: 2, Burst: 30},
			RequestsPerIP:   Rate{PerSecond: 200, Burst: 400},
			RequestsPerUser: Rate{PerSecond: 100, Burst: 200},
			ClaimsPerUser:   Rate{PerSecond: 5, Burst: 50},
			PostsPerDevice:  Rate{PerSecond: 200, Burst: 400},
		},
		SendQueue: 256,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("httpapi: config: "+format, args...)) }
	if c.MaxBodyBytes < 1024 {
		bad("max body bytes %d must be at least 1024", c.MaxBodyBytes)
	}
	if c.MaxFrameBytes < 1024 {
		bad("max frame bytes %d must be at least 1024", c.MaxFrameBytes)
	}
	if c.MaxBlobBytes < 1 {
		bad("max blob bytes %d must be positive", c.MaxBlobBytes)
	}
	if c.BlobQuotaBytes < 0 {
		bad("blob quota %d must not be negative", c.BlobQuotaBytes)
	}
	if c.PingInterval <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 {
		bad("ping interval %v, read timeout %v and write timeout %v must be positive", c.PingInterval, c.ReadTimeout, c.WriteTimeout)
	}
	if c.SendQueue < 1 {
		bad("send queue %d must be at least 1", c.SendQueue)
	}
	for name, r := range map[string]Rate{"register per IP": c.RateLimits.RegisterPerIP, "auth per IP": c.RateLimits.AuthPerIP,
		"requests per IP": c.RateLimits.RequestsPerIP, "requests per user": c.RateLimits.RequestsPerUser,
		"claims per user": c.RateLimits.ClaimsPerUser, "posts per device": c.RateLimits.PostsPerDevice} {
		if r.PerSecond <= 0 || r.Burst < 1 {
			bad("rate %s: %v/s burst %d must be positive", name, r.PerSecond, r.Burst)
		}
	}
	return errors.Join(errs...)
}
