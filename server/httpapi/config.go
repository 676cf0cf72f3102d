// Package httpapi adapts the delivery core to HTTP and WebSocket: every
// route of package protocol under /v1, plus /healthz and /readyz
// (metrics are registered, not served: parleyd serves them on a listener
// of their own). Request bodies are JSON decoded strictly (one value, no
// unknown fields, size-limited) and must arrive at a minimum rate;
// failures answer a protocol.Error with its HTTP status. The client
// address comes from a forwarding header only when the peer is a trusted
// proxy. The WebSocket at /v1/ws runs one reader goroutine per
// connection around a delivery.Conn, and a writer goroutine only while
// there is something to write (started on a wake-up; it writes everything
// pending with one write(2) and exits), with a bounded answer queue,
// WebSocket pings from a shared pinger and write deadlines.
package httpapi

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
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
	// ClaimsPerUser limits KeyPackage claims per claiming account,
	// counted in claimed users: a batched claim of n users takes n tokens
	// (the delivery core also limits each (claimer, target) pair). A
	// batch of more users than Burst is refused with too_large.
	ClaimsPerUser Rate
	// LookupsPerUser limits the users looked up by batched lookups
	// (POST /v1/users/lookup) per account, counted in users like
	// ClaimsPerUser. A lookup of one user (GET /v1/users/{name}) counts
	// against RequestsPerUser only.
	LookupsPerUser Rate
	// PostsPerDevice limits application messages (HTTP and WebSocket) and
	// handshakes per device.
	PostsPerDevice Rate
	// FramesPerConnection limits the frames a client sends on one
	// WebSocket connection, of any type; a connection that exceeds it is
	// sent a rate_limited error frame and closed with status
	// policy-violation.
	FramesPerConnection Rate
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

	// BodyTimeout is how long a request body may take to arrive; a body
	// that keeps up BodyMinRate gets another BodyTimeout each time
	// BodyMinRate × BodyTimeout bytes arrived (so slow but steady
	// uploads of large attachments finish).
	BodyTimeout time.Duration
	// BodyMinRate is the minimum rate of a long request body, in bytes
	// per second.
	BodyMinRate int64
	// MaxConnsPerAddr bounds the requests and WebSockets open at once
	// for one client behind a trusted proxy (an IPv4 address or IPv6
	// /64; see connlimit.Key); zero means no cap. Direct clients are
	// capped by the listener (connlimit.Listen).
	MaxConnsPerAddr int
	// TrustedProxies are the reverse proxies whose ClientIPHeader names
	// the client; from any other peer the header is ignored.
	TrustedProxies []netip.Prefix
	// ClientIPHeader is the header in which trusted proxies name the
	// client, such as X-Forwarded-For (a list; the rightmost address
	// that is not a trusted proxy is the client) or X-Real-IP.
	ClientIPHeader string
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
			// Claims and lookups are counted in users. The burst lets
			// one account add 10,000 users at once (a channel), in 20
			// batches of protocol.MaxBatchUsers; the sustained rate
			// stays that of one claim request every 200 ms, so an
			// account that loops over everyone's KeyPackages claims 5
			// users a second (docs/operations.md, "Large
			// conversations").
			ClaimsPerUser:  Rate{PerSecond: 5, Burst: 10000},
			LookupsPerUser: Rate{PerSecond: 100, Burst: 10000},
			PostsPerDevice: Rate{PerSecond: 200, Burst: 400},
			// Clients acknowledge each entry they process: the burst
			// covers a catch-up, the rate a fast steady stream.
			FramesPerConnection: Rate{PerSecond: 1000, Burst: 10000},
		},
		SendQueue:       256,
		BodyTimeout:     20 * time.Second,
		BodyMinRate:     1 << 10,
		MaxConnsPerAddr: 256,
		ClientIPHeader:  "X-Forwarded-For",
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
	if c.BodyTimeout < 100*time.Millisecond || c.BodyTimeout > time.Hour {
		bad("body timeout %v must be between 100ms and 1h", c.BodyTimeout)
	}
	if c.BodyMinRate < 1 {
		bad("body minimum rate %d bytes/s must be positive", c.BodyMinRate)
	}
	if c.MaxConnsPerAddr < 0 {
		bad("max connections per address %d must not be negative", c.MaxConnsPerAddr)
	}
	if len(c.TrustedProxies) > 0 && !validHeaderName(c.ClientIPHeader) {
		bad("client IP header %q is not a header name", c.ClientIPHeader)
	}
	for name, r := range map[string]Rate{"register per IP": c.RateLimits.RegisterPerIP, "auth per IP": c.RateLimits.AuthPerIP,
		"requests per IP": c.RateLimits.RequestsPerIP, "requests per user": c.RateLimits.RequestsPerUser,
		"claims per user": c.RateLimits.ClaimsPerUser, "lookups per user": c.RateLimits.LookupsPerUser, "posts per device": c.RateLimits.PostsPerDevice,
		"frames per connection": c.RateLimits.FramesPerConnection} {
		if r.PerSecond <= 0 || r.Burst < 1 {
			bad("rate %s: %v/s burst %d must be positive", name, r.PerSecond, r.Burst)
		}
	}
	return errors.Join(errs...)
}

// validHeaderName reports whether s is an HTTP header name (an RFC 9110
// token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}
