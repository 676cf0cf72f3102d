package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/parley-chat/parley/server/delivery"
	natsfanout "github.com/parley-chat/parley/server/fanout/nats"
	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/store/postgres"
)

// TLS modes.
const (
	tlsSelfSigned = "self-signed" // a certificate generated and kept in the data directory
	tlsFiles      = "files"       // certificate and key from PEM files
	tlsACME       = "acme"        // certificates from an ACME CA (Let's Encrypt) via autocert
	tlsOff        = "off"         // plain HTTP, only behind a TLS-terminating proxy
)

// Config is parleyd's configuration. Start from NewConfig; layers are
// applied in the order defaults < config file < environment < flags (see
// loadConfig); Validate checks the result.
type Config struct {
	// Listen is the TCP address of the HTTPS (or, with TLS off, HTTP)
	// listener.
	Listen string
	// DataDir holds the database, attachments, the self-signed
	// certificate and the ACME cache. Empty means the default,
	// $XDG_DATA_HOME/parley or ~/.local/share/parley.
	DataDir string
	// ServerName is the server's domain: accounts are name@ServerName.
	// Clients sign it into every authentication, so changing it later
	// invalidates nothing stored but breaks clients configured for the
	// old name.
	ServerName string
	// Store names the database: "sqlite:PATH" or a PostgreSQL URL
	// "postgres://user@host:5432/db?sslmode=verify-full"; empty means
	// sqlite:DataDir/parley.db. A PostgreSQL URL may carry the schema as
	// the parameter "schema", which is not passed to the server.
	Store string
	// StoreSchema is the PostgreSQL schema holding parleyd's tables;
	// empty means the URL's schema parameter, else "parley". Every node
	// of a cluster must use the same schema.
	StoreSchema string
	// StoreMaxConns is the size of this node's PostgreSQL connection
	// pool.
	StoreMaxConns int
	// StoreCheckTimeout is the time budget of the SQLite integrity check
	// (PRAGMA quick_check) at start; a check that takes longer is
	// abandoned with a warning. 0 skips the check.
	StoreCheckTimeout time.Duration
	// Blobs names the attachment store: "disk:PATH" (relative paths are
	// in the data directory) or "postgres" (chunked in the PostgreSQL
	// store's database and schema). Empty means disk:blobs with SQLite
	// and postgres with a PostgreSQL store, so that every node of a
	// cluster reaches every attachment.
	Blobs string
	// Fanout names the signal between nodes: empty or "local" for the
	// in-process hub (one node), or NATS URLs "nats://host:4222" (or
	// tls://…; several separated by commas) shared by every node.
	Fanout string
	// FanoutPrefix is the NATS subject prefix; nodes share events only
	// with nodes of the same prefix.
	FanoutPrefix string
	// FanoutCredsFile is a NATS credentials file (JWT and NKey seed);
	// user and password or a token can also be given in the URL.
	FanoutCredsFile string
	// FanoutCAFile is a PEM file of CAs that verify the NATS server's
	// certificate (tls:// URLs); empty means the system roots.
	FanoutCAFile string
	// NodeID names this node in logs, in NATS and in PostgreSQL's
	// application_name; empty means the host name and a random suffix,
	// new at every start.
	NodeID string
	// OpenRegistration lets anyone register without an invite.
	OpenRegistration bool
	// AllowForeignCredentials accepts KeyPackages whose MLS credential is
	// not a Parley credential (for clients of other implementations);
	// Parley credentials are always checked against the device certificate.
	AllowForeignCredentials bool
	// Retention is how long log entries, Welcomes and attachments are
	// kept at most.
	Retention time.Duration
	// SessionTTL is the lifetime of a session token.
	SessionTTL time.Duration
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// Metrics collects Prometheus metrics, served at /metrics on
	// MetricsListen (never on Listen).
	Metrics bool
	// MetricsListen is the TCP address of the plain-HTTP metrics
	// listener; empty serves no metrics.
	MetricsListen string
	// MetricsTokenFile is a file holding a bearer token that metrics
	// requests must present; empty means none (keep MetricsListen on
	// loopback or a private network then).
	MetricsTokenFile string
	// WebDir, when set, is a directory with the web client's page files
	// in ui/ and its built files in dist/ (server/webclient of a
	// checkout), served instead of the files embedded in the binary.
	WebDir string
	// Connections bounds connections and the time their requests take.
	Connections ConnectionsConfig
	// AllowedOrigins are host patterns (path.Match syntax, such as
	// "chat.example.org" or "*.example.org") of the browser origins that
	// may open a WebSocket besides the server's own host; clients that
	// send no Origin are always allowed.
	AllowedOrigins []string
	// TLS configures transport security.
	TLS TLSConfig
	// Limits are size limits.
	Limits LimitsConfig
	// WebSocket configures the liveness of WebSocket connections.
	WebSocket WebSocketConfig
	// RateLimits are request rate limits.
	RateLimits RateLimitsConfig
	// Log configures logging.
	Log LogConfig
}

// TLSConfig configures transport security.
type TLSConfig struct {
	// Mode is self-signed, files, acme or off.
	Mode string
	// Hosts are extra DNS names and IP addresses for a new self-signed
	// certificate (localhost, the loopback addresses, the listen host and
	// the server name are always included).
	Hosts []string
	// CertFile and KeyFile are PEM files (mode files). They are read
	// again on SIGHUP.
	CertFile, KeyFile string
	// ACMEDomains are the names certificates are requested for (mode
	// acme).
	ACMEDomains []string
	// ACMEEmail is the contact address given to the CA.
	ACMEEmail string
	// ACMECacheDir keeps account keys and certificates; empty means
	// DataDir/acme.
	ACMECacheDir string
	// ACMEDirectoryURL is the CA's directory; empty means Let's Encrypt
	// production.
	ACMEDirectoryURL string
	// ACMEHTTPListen, when set, serves HTTP-01 challenges (and redirects
	// to HTTPS) on this address, such as ":80". Without it only the
	// TLS-ALPN-01 challenge on the main listener is used, which needs the
	// listener to be reachable on port 443.
	ACMEHTTPListen string
}

// LimitsConfig are size limits in bytes.
type LimitsConfig struct {
	MaxBodyBytes    int64 // MaxBodyBytes bounds a JSON request body.
	MaxMessageBytes int64 // MaxMessageBytes bounds one MLS message.
	// MaxGroupStateBytes bounds a GroupInfo plus ratchet tree, and one
	// Welcome (which may carry the tree).
	MaxGroupStateBytes int64
	MaxFrameBytes      int64 // MaxFrameBytes bounds a WebSocket message from a client.
	MaxBlobBytes       int64 // MaxBlobBytes bounds one attachment.
	BlobQuotaBytes     int64 // BlobQuotaBytes bounds the attachments one user stores.
	// BlobReservationTTL bounds one attachment upload: the quota it
	// reserved is released after it even if the node died.
	BlobReservationTTL time.Duration
	// MaxPendingProposals bounds the proposals of a conversation's epoch
	// that wait for a commit; MaxPendingProposalBytes their total size.
	MaxPendingProposals     int
	MaxPendingProposalBytes int64
	// TreeHistoryEpochs is how many epochs before the current one keep
	// their ratchet trees for devices joining by an older Welcome.
	TreeHistoryEpochs int
}

// ConnectionsConfig bounds what a client holds without an account.
type ConnectionsConfig struct {
	// Max bounds the connections open at once on the listener; 0 means
	// derived at start from the open-file limit (see autoMaxConnections).
	Max int
	// MaxPerAddr bounds the connections (and, behind a trusted proxy,
	// the requests) of one client address, an IPv4 address or IPv6 /64;
	// 0 means no cap.
	MaxPerAddr int
	// HeaderTimeout bounds the TLS handshake and the request headers.
	HeaderTimeout time.Duration
	// BodyTimeout bounds a request body; one that keeps up BodyMinRate
	// gets another BodyTimeout each time BodyMinRate × BodyTimeout bytes
	// arrived.
	BodyTimeout time.Duration
	// BodyMinRate is the minimum rate of a long body in bytes per second.
	BodyMinRate int64
	// TrustedProxies are the reverse proxies (IP addresses or CIDR
	// prefixes) whose ClientIPHeader is believed.
	TrustedProxies []string
	// ClientIPHeader names the client in requests from trusted proxies.
	ClientIPHeader string
}

// WebSocketConfig configures WebSocket liveness.
type WebSocketConfig struct {
	// PingInterval is how often connections are pinged.
	PingInterval time.Duration
	// PongTimeout is how long a ping waits for its pong before the
	// connection is closed.
	PongTimeout time.Duration
	// WriteTimeout bounds one write to a connection.
	WriteTimeout time.Duration
}

// Rate is a token-bucket limit: PerSecond requests per second on average,
// Burst at once. Both must be positive.
type Rate struct {
	PerSecond float64
	Burst     int
}

// RateLimitsConfig are the rate limits. Refused requests answer 429 with
// Retry-After.
type RateLimitsConfig struct {
	RegisterPerIP   Rate // RegisterPerIP limits registrations per client IP.
	AuthPerIP       Rate // AuthPerIP limits challenges and sessions per client IP.
	RequestsPerIP   Rate // RequestsPerIP limits all requests per client IP.
	RequestsPerUser Rate // RequestsPerUser limits authenticated requests per account.
	ClaimsPerUser   Rate // ClaimsPerUser limits KeyPackage claims per claiming account, counted in claimed users.
	LookupsPerUser  Rate // LookupsPerUser limits batched user lookups per account, counted in users.
	ClaimsPerTarget Rate // ClaimsPerTarget limits claims per (claiming account, target account).
	// ClaimsPerDevice limits the one-time KeyPackages of one device handed
	// out, across every claimer and node; past it claims get the device's
	// last-resort package.
	ClaimsPerDevice Rate
	PostsPerDevice  Rate // PostsPerDevice limits messages and handshakes per device.

	// FramesPerConnection limits the frames a client sends on one
	// WebSocket connection; one that exceeds it is closed with a
	// rate_limited error frame (status policy-violation).
	FramesPerConnection Rate
}

// LogConfig configures the slog logger on stderr.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string
	// Format is text or json.
	Format string
	// MaxRepeats is how many records with the same level and message are
	// written per RepeatInterval; the rest are counted in one summary
	// record. Zero writes every record.
	MaxRepeats int
	// RepeatInterval is the window of MaxRepeats.
	RepeatInterval time.Duration
}

// NewConfig returns the defaults: loopback listener on port 8443, a
// self-signed certificate, invite-only registration, 30 days retention.
func NewConfig() Config {
	h, d := httpapi.DefaultConfig(), delivery.DefaultConfig()
	rate := func(r httpapi.Rate) Rate { return Rate{PerSecond: r.PerSecond, Burst: r.Burst} }
	return Config{
		Listen:          "127.0.0.1:8443",
		ServerName:      "localhost",
		StoreMaxConns:   postgres.NewConfig("").MaxConns,
		FanoutPrefix:    "parley",
		Retention:       d.Retention,
		SessionTTL:      d.SessionTTL,
		ShutdownTimeout: 30 * time.Second,
		Metrics:         true,
		MetricsListen:   "127.0.0.1:9464",
		TLS:             TLSConfig{Mode: tlsSelfSigned},
		Connections: ConnectionsConfig{
			MaxPerAddr:     h.MaxConnsPerAddr,
			HeaderTimeout:  10 * time.Second,
			BodyTimeout:    h.BodyTimeout,
			BodyMinRate:    h.BodyMinRate,
			ClientIPHeader: h.ClientIPHeader,
		},
		Limits: LimitsConfig{
			MaxBodyBytes:       h.MaxBodyBytes,
			MaxMessageBytes:    d.MaxMessageBytes,
			MaxGroupStateBytes: d.MaxGroupStateBytes,
			MaxFrameBytes:      h.MaxFrameBytes,
			MaxBlobBytes:       h.MaxBlobBytes,
			BlobQuotaBytes:     h.BlobQuotaBytes,
			BlobReservationTTL: d.BlobReservationTTL,
			// Pending proposals: delivery.Config's caps.
			MaxPendingProposals:     d.MaxPendingProposals,
			MaxPendingProposalBytes: d.MaxPendingProposalBytes,
			TreeHistoryEpochs:       int(d.TreeHistoryEpochs),
		},
		WebSocket: WebSocketConfig{PingInterval: h.PingInterval, PongTimeout: h.ReadTimeout, WriteTimeout: h.WriteTimeout},
		RateLimits: RateLimitsConfig{
			RegisterPerIP:   rate(h.RateLimits.RegisterPerIP),
			AuthPerIP:       rate(h.RateLimits.AuthPerIP),
			RequestsPerIP:   rate(h.RateLimits.RequestsPerIP),
			RequestsPerUser: rate(h.RateLimits.RequestsPerUser),
			ClaimsPerUser:   rate(h.RateLimits.ClaimsPerUser),
			LookupsPerUser:  rate(h.RateLimits.LookupsPerUser),
			ClaimsPerTarget: Rate{PerSecond: d.ClaimRate, Burst: d.ClaimBurst},
			ClaimsPerDevice: Rate{PerSecond: d.DeviceClaimRate, Burst: d.DeviceClaimBurst},
			PostsPerDevice:  rate(h.RateLimits.PostsPerDevice),

			FramesPerConnection: rate(h.RateLimits.FramesPerConnection),
		},
		Log: LogConfig{Level: "info", Format: "text", MaxRepeats: 10, RepeatInterval: time.Minute},

		// quick_check reads about 500 MB/s of a cached file here
		// (docs/operations.md): a minute covers several GB even from a
		// cold disk.
		StoreCheckTimeout: time.Minute,
	}
}

// Validate checks the configuration; an error names the setting by its
// config-file key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port: %v", c.Listen, err)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("listen", "%q has an invalid port", c.Listen)
	}
	if c.DataDir == "" {
		bad("data_dir", "empty")
	} else if !filepath.IsAbs(c.DataDir) {
		bad("data_dir", "%q is not an absolute path", c.DataDir)
	}
	if !validServerName(c.ServerName) {
		bad("server_name", "%q is not a domain name (letters, digits, '-', '.'; optional :port)", c.ServerName)
	}
	spec, err := parseStore(c.Store, c.StoreSchema, c.DataDir)
	if err != nil {
		bad("store", "%v", err)
	} else if spec.backend == "postgres" {
		pc := postgres.NewConfig(spec.dsn)
		pc.Schema, pc.MaxConns = spec.schema, c.StoreMaxConns
		if err := pc.Validate(); err != nil {
			bad("store", "%v", err)
		}
	}
	if c.StoreMaxConns < 1 {
		bad("store_max_conns", "%d is less than 1", c.StoreMaxConns)
	}
	if c.StoreCheckTimeout < 0 {
		bad("store_check_timeout", "negative (%v); 0 skips the start-up check", c.StoreCheckTimeout)
	}
	if spec.backend != "" {
		if _, err := parseBlobs(c.Blobs, spec.backend, c.DataDir); err != nil {
			bad("blobs", "%v", err)
		}
	}
	if _, err := parseFanout(c.Fanout); err != nil {
		bad("fanout", "%v", err)
	}
	if !natsfanout.ValidPrefix(c.FanoutPrefix) {
		bad("fanout_prefix", "%q is not dot-separated tokens of letters, digits, '_' and '-'", c.FanoutPrefix)
	}
	if c.NodeID != "" && !natsfanout.ValidNodeID(c.NodeID) {
		bad("node_id", "%q is not 1 to 64 printable ASCII characters without spaces", c.NodeID)
	}
	if c.Retention < 0 {
		bad("retention", "negative (%v); 0 keeps entries until acknowledged", c.Retention)
	}
	if c.SessionTTL < time.Minute {
		bad("session_ttl", "%v is shorter than a minute", c.SessionTTL)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "%v is not positive", c.ShutdownTimeout)
	}
	for _, o := range c.AllowedOrigins {
		if _, err := path.Match(o, ""); err != nil || strings.Contains(o, "/") {
			bad("allowed_origins", "%q is not a host pattern such as chat.example.org or *.example.org", o)
		}
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics_listen", "%q is not host:port: %v", c.MetricsListen, err)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			bad("metrics_listen", "%q has an invalid port", c.MetricsListen)
		}
	}
	c.validateConnections(bad)
	for _, w := range []struct {
		key string
		v   time.Duration
	}{{"websocket.ping_interval", c.WebSocket.PingInterval}, {"websocket.pong_timeout", c.WebSocket.PongTimeout}, {"websocket.write_timeout", c.WebSocket.WriteTimeout}} {
		if w.v <= 0 {
			bad(w.key, "%v is not positive", w.v)
		}
	}
	switch c.TLS.Mode {
	case tlsSelfSigned, tlsOff:
	case tlsFiles:
		if c.TLS.CertFile == "" {
			bad("tls.cert_file", "required with tls.mode = %q", tlsFiles)
		}
		if c.TLS.KeyFile == "" {
			bad("tls.key_file", "required with tls.mode = %q", tlsFiles)
		}
	case tlsACME:
		if len(c.TLS.ACMEDomains) == 0 {
			bad("tls.acme_domains", "required with tls.mode = %q", tlsACME)
		}
		for _, d := range c.TLS.ACMEDomains {
			if !validServerName(d) || strings.Contains(d, ":") {
				bad("tls.acme_domains", "%q is not a domain name", d)
			}
		}
		if c.TLS.ACMEEmail != "" && !strings.Contains(c.TLS.ACMEEmail, "@") {
			bad("tls.acme_email", "%q is not an e-mail address", c.TLS.ACMEEmail)
		}
		if c.TLS.ACMEDirectoryURL != "" {
			if u, err := url.Parse(c.TLS.ACMEDirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" {
				bad("tls.acme_directory_url", "%q is not an https URL", c.TLS.ACMEDirectoryURL)
			}
		}
		if c.TLS.ACMEHTTPListen != "" {
			if _, _, err := net.SplitHostPort(c.TLS.ACMEHTTPListen); err != nil {
				bad("tls.acme_http_listen", "%q is not host:port: %v", c.TLS.ACMEHTTPListen, err)
			}
		}
	default:
		bad("tls.mode", "%q is not one of %s, %s, %s, %s", c.TLS.Mode, tlsSelfSigned, tlsFiles, tlsACME, tlsOff)
	}
	for _, l := range []struct {
		key string
		v   int64
	}{
		{"limits.max_body_bytes", c.Limits.MaxBodyBytes},
		{"limits.max_message_bytes", c.Limits.MaxMessageBytes},
		{"limits.max_group_state_bytes", c.Limits.MaxGroupStateBytes},
		{"limits.max_frame_bytes", c.Limits.MaxFrameBytes},
		{"limits.max_blob_bytes", c.Limits.MaxBlobBytes},
		{"limits.blob_quota_bytes", c.Limits.BlobQuotaBytes},
	} {
		if l.v <= 0 {
			bad(l.key, "%d is not positive", l.v)
		}
	}
	if c.Limits.MaxBodyBytes > 0 && c.Limits.MaxBodyBytes < 4096 {
		bad("limits.max_body_bytes", "%d is below the minimum 4096", c.Limits.MaxBodyBytes)
	}
	if c.Limits.MaxFrameBytes > 0 && c.Limits.MaxFrameBytes < 4096 {
		bad("limits.max_frame_bytes", "%d is below the minimum 4096", c.Limits.MaxFrameBytes)
	}
	if c.Limits.MaxMessageBytes > 0 && c.Limits.MaxMessageBytes < 64 {
		bad("limits.max_message_bytes", "%d is below the minimum 64", c.Limits.MaxMessageBytes)
	}
	if c.Limits.MaxGroupStateBytes > 0 && c.Limits.MaxGroupStateBytes < 64 {
		bad("limits.max_group_state_bytes", "%d is below the minimum 64", c.Limits.MaxGroupStateBytes)
	}
	if c.Limits.MaxPendingProposals < 1 {
		bad("limits.max_pending_proposals", "%d is below the minimum 1", c.Limits.MaxPendingProposals)
	}
	if c.Limits.MaxPendingProposalBytes < 64 {
		bad("limits.max_pending_proposal_bytes", "%d is below the minimum 64", c.Limits.MaxPendingProposalBytes)
	}
	if c.Limits.TreeHistoryEpochs < 0 {
		bad("limits.tree_history_epochs", "%d is negative", c.Limits.TreeHistoryEpochs)
	}
	if c.Limits.BlobReservationTTL < time.Second {
		bad("blob_reservation_ttl", "%v is shorter than a second", c.Limits.BlobReservationTTL)
	}
	if c.Limits.BlobQuotaBytes > 0 && c.Limits.BlobQuotaBytes < c.Limits.MaxBlobBytes {
		bad("limits.blob_quota_bytes", "%d is smaller than limits.max_blob_bytes %d", c.Limits.BlobQuotaBytes, c.Limits.MaxBlobBytes)
	}
	for _, r := range c.rates() {
		if !(r.rate.PerSecond > 0) || math.IsInf(r.rate.PerSecond, 0) {
			bad("rate_limits."+r.name+".per_second", "%v is not a positive number", r.rate.PerSecond)
		}
		if r.rate.Burst < 1 {
			bad("rate_limits."+r.name+".burst", "%d is less than 1", r.rate.Burst)
		}
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		bad("log.level", "%v", err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q is not text or json", c.Log.Format)
	}
	if c.Log.MaxRepeats < 0 {
		bad("log.max_repeats", "%d is negative (0 writes every record)", c.Log.MaxRepeats)
	}
	if c.Log.RepeatInterval <= 0 {
		bad("log.repeat_interval", "%v is not positive", c.Log.RepeatInterval)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
	}
	return nil
}

// namedRate is a rate limit with its config key.
type namedRate struct {
	name string
	rate *Rate
}

// rates lists the rate limits with their keys.
func (c *Config) rates() []namedRate {
	r := &c.RateLimits
	return []namedRate{
		{"register_per_ip", &r.RegisterPerIP}, {"auth_per_ip", &r.AuthPerIP},
		{"requests_per_ip", &r.RequestsPerIP}, {"requests_per_user", &r.RequestsPerUser},
		{"claims_per_user", &r.ClaimsPerUser}, {"claims_per_target", &r.ClaimsPerTarget},
		{"claims_per_device", &r.ClaimsPerDevice}, {"lookups_per_user", &r.LookupsPerUser},
		{"posts_per_device", &r.PostsPerDevice}, {"frames_per_connection", &r.FramesPerConnection},
	}
}

// validServerName reports whether s is a DNS name or IP address with an
// optional port.
func validServerName(s string) bool {
	host := s
	if h, p, err := net.SplitHostPort(s); err == nil {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return false
		}
		host = h
	}
	if net.ParseIP(host) != nil {
		return true
	}
	if host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// storeSpec is a parsed store setting.
type storeSpec struct {
	backend string // backend is "sqlite" or "postgres".
	path    string // path is the SQLite database file.
	dsn     string // dsn is the PostgreSQL URL without the schema parameter.
	schema  string // schema is the PostgreSQL schema.
}

// describe names the store for people without secrets:
// sqlite:PATH or postgres://user@host:port/db (schema S).
func (s storeSpec) describe() string {
	if s.backend == "sqlite" {
		return "sqlite:" + s.path
	}
	u, err := url.Parse(s.dsn)
	if err != nil {
		return "postgres (schema " + s.schema + ")"
	}
	return fmt.Sprintf("%s://%s/%s (schema %s)", u.Scheme, hostWithUser(u), strings.TrimPrefix(u.Path, "/"), s.schema)
}

// hostWithUser returns user@host of a URL, never its password.
func hostWithUser(u *url.URL) string {
	if u.User != nil && u.User.Username() != "" {
		return u.User.Username() + "@" + u.Host
	}
	return u.Host
}

// parseStore parses the store setting: "" (SQLite in the data
// directory), "sqlite:PATH" or a postgres:// or postgresql:// URL, whose
// optional parameter "schema" names the schema. schema is the
// store_schema setting; it and the URL's parameter must agree when both
// are set.
func parseStore(s, schema, dataDir string) (storeSpec, error) {
	switch {
	case s == "":
		if dataDir == "" {
			return storeSpec{}, errors.New("no data directory for the default SQLite database")
		}
		return storeSpec{backend: "sqlite", path: filepath.Join(dataDir, "parley.db")}, nil
	case strings.HasPrefix(s, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "//")
		if p == "" {
			return storeSpec{}, fmt.Errorf("%q names no database file", s)
		}
		if !filepath.IsAbs(p) {
			if dataDir == "" {
				return storeSpec{}, fmt.Errorf("%q is relative and there is no data directory", s)
			}
			p = filepath.Join(dataDir, p)
		}
		return storeSpec{backend: "sqlite", path: p}, nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		u, err := url.Parse(s)
		if err != nil {
			// url.Parse quotes the input, password included.
			return storeSpec{}, errors.New("the PostgreSQL URL does not parse; want postgres://user@host:5432/db?sslmode=verify-full")
		}
		if u.Host == "" && !strings.Contains(u.RawQuery, "host=") {
			return storeSpec{}, fmt.Errorf("PostgreSQL URL %s://%s names no host", u.Scheme, hostWithUser(u))
		}
		q := u.Query()
		fromURL := q.Get("schema")
		q.Del("schema")
		u.RawQuery = q.Encode()
		switch {
		case schema != "" && fromURL != "" && schema != fromURL:
			return storeSpec{}, fmt.Errorf("the URL's schema %q differs from store_schema %q", fromURL, schema)
		case schema == "":
			schema = fromURL
		}
		if schema == "" {
			schema = postgres.NewConfig("").Schema
		}
		if q.Has("search_path") {
			return storeSpec{}, errors.New("the URL sets search_path; name the schema with store_schema or ?schema= instead")
		}
		return storeSpec{backend: "postgres", dsn: u.String(), schema: schema}, nil
	}
	scheme, _, ok := strings.Cut(s, ":")
	if !ok {
		return storeSpec{}, fmt.Errorf("%q has no scheme; want sqlite:PATH or postgres://…", s)
	}
	return storeSpec{}, fmt.Errorf("unknown store scheme %q; want sqlite:PATH or postgres://…", scheme)
}

// blobSpec is a parsed blobs setting.
type blobSpec struct {
	backend string // backend is "disk" or "postgres".
	path    string // path is the directory of a disk store.
}

// parseBlobs parses the blobs setting for the store backend: "" (the
// default of the backend), "disk:PATH" or "postgres".
func parseBlobs(s, storeBackend, dataDir string) (blobSpec, error) {
	switch {
	case s == "" && storeBackend == "postgres", s == "postgres":
		if storeBackend != "postgres" {
			return blobSpec{}, errors.New(`"postgres" needs a PostgreSQL store`)
		}
		return blobSpec{backend: "postgres"}, nil
	case s == "":
		return blobSpec{backend: "disk", path: filepath.Join(dataDir, "blobs")}, nil
	case strings.HasPrefix(s, "disk:"):
		p := strings.TrimPrefix(s, "disk:")
		if p == "" {
			return blobSpec{}, fmt.Errorf("%q names no directory", s)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(dataDir, p)
		}
		return blobSpec{backend: "disk", path: p}, nil
	}
	return blobSpec{}, fmt.Errorf("%q is not disk:PATH or postgres", s)
}

// parseFanout parses the fanout setting: "" or "local" (nil: the
// in-process hub), or NATS server URLs separated by commas, each
// nats://, tls://, ws:// or wss://. It returns the URLs.
func parseFanout(s string) ([]string, error) {
	if s == "" || s == "local" {
		return nil, nil
	}
	var urls []string
	for _, raw := range strings.Split(s, ",") {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err != nil {
			return nil, errors.New("a NATS URL does not parse; want nats://host:4222")
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return nil, fmt.Errorf("%s://%s is not a NATS URL (nats://, tls://, ws:// or wss://) or local", u.Scheme, hostWithUser(u))
		}
		if u.Host == "" {
			return nil, fmt.Errorf("NATS URL %s://… names no host", u.Scheme)
		}
		urls = append(urls, raw)
	}
	return urls, nil
}

// parseLevel parses a log level name.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
}

// setting is one configuration key, settable from the config file, an
// environment variable and a flag.
type setting struct {
	// key is the config file key (dotted for tables), such as
	// "tls.mode". The environment variable is PARLEY_ and the key in
	// upper case with '.' → '_'; the flag is the key with '.' and '_' →
	// '-'.
	key string
	// usage is the one-line help.
	usage string
	// isBool makes the flag take no value (--open-registration).
	isBool bool
	// number makes `parleyd config` print the value unquoted.
	number bool
	// set parses and stores a value given as text.
	set func(c *Config, v string) error
	// get formats the current value.
	get func(c *Config) string
}

// envName returns the environment variable of the setting.
func (s setting) envName() string {
	return "PARLEY_" + strings.ToUpper(strings.ReplaceAll(s.key, ".", "_"))
}

// flagName returns the flag of the setting.
func (s setting) flagName() string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(s.key)
}

// settings returns every configuration key.
func settings() []setting {
	str := func(key, usage string, f func(*Config) *string) setting {
		return setting{key: key, usage: usage,
			set: func(c *Config, v string) error { *f(c) = strings.TrimSpace(v); return nil },
			get: func(c *Config) string { return *f(c) }}
	}
	boolean := func(key, usage string, f func(*Config) *bool) setting {
		return setting{key: key, usage: usage, isBool: true,
			set: func(c *Config, v string) error {
				b, err := strconv.ParseBool(strings.TrimSpace(v))
				if err != nil {
					return fmt.Errorf("%q is not true or false", v)
				}
				*f(c) = b
				return nil
			},
			get: func(c *Config) string { return strconv.FormatBool(*f(c)) }}
	}
	dur := func(key, usage string, f func(*Config) *time.Duration) setting {
		return setting{key: key, usage: usage,
			set: func(c *Config, v string) error {
				d, err := parseDuration(v)
				if err != nil {
					return err
				}
				*f(c) = d
				return nil
			},
			get: func(c *Config) string { return formatDuration(*f(c)) }}
	}
	size := func(key, usage string, f func(*Config) *int64) setting {
		return setting{key: key, usage: usage,
			set: func(c *Config, v string) error {
				n, err := parseSize(v)
				if err != nil {
					return err
				}
				*f(c) = n
				return nil
			},
			get: func(c *Config) string { return strconv.FormatInt(*f(c), 10) }}
	}
	integer := func(key, usage string, f func(*Config) *int) setting {
		return setting{key: key, usage: usage, number: true,
			set: func(c *Config, v string) error {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					return fmt.Errorf("%q is not an integer", v)
				}
				*f(c) = n
				return nil
			},
			get: func(c *Config) string { return strconv.Itoa(*f(c)) }}
	}
	numeric := func(s setting) setting { s.number = true; return s }
	list := func(key, usage string, f func(*Config) *[]string) setting {
		return setting{key: key, usage: usage + " (comma-separated)",
			set: func(c *Config, v string) error { *f(c) = splitList(v); return nil },
			get: func(c *Config) string { return strings.Join(*f(c), ",") }}
	}
	ss := []setting{
		str("listen", "listen address host:port", func(c *Config) *string { return &c.Listen }),
		str("data_dir", "data directory (default $XDG_DATA_HOME/parley or ~/.local/share/parley)", func(c *Config) *string { return &c.DataDir }),
		str("server_name", "server domain; accounts are name@server_name", func(c *Config) *string { return &c.ServerName }),
		str("store", "database: sqlite:PATH or postgres://user@host/db (default sqlite:DATA_DIR/parley.db)", func(c *Config) *string { return &c.Store }),
		str("store_schema", "PostgreSQL schema of the tables (default: the URL's ?schema=, else parley)", func(c *Config) *string { return &c.StoreSchema }),
		integer("store_max_conns", "PostgreSQL connections of this node at most", func(c *Config) *int { return &c.StoreMaxConns }),
		dur("store_check_timeout", "time budget of the SQLite integrity check (PRAGMA quick_check) at start; 0 skips it", func(c *Config) *time.Duration { return &c.StoreCheckTimeout }),
		str("blobs", "attachment store: disk:PATH or postgres (default disk:blobs with SQLite, postgres with PostgreSQL)", func(c *Config) *string { return &c.Blobs }),
		str("fanout", "signal between nodes: local, or NATS URLs nats://host:4222, several separated by commas", func(c *Config) *string { return &c.Fanout }),
		str("fanout_prefix", "NATS subject prefix shared by the nodes of one deployment", func(c *Config) *string { return &c.FanoutPrefix }),
		str("fanout_creds_file", "NATS credentials file (JWT and NKey seed)", func(c *Config) *string { return &c.FanoutCredsFile }),
		str("fanout_ca_file", "PEM CAs verifying the NATS server (tls:// URLs; default system roots)", func(c *Config) *string { return &c.FanoutCAFile }),
		str("node_id", "name of this node in logs, NATS and PostgreSQL (default HOSTNAME-RANDOM)", func(c *Config) *string { return &c.NodeID }),
		boolean("open_registration", "allow registration without an invite", func(c *Config) *bool { return &c.OpenRegistration }),
		boolean("allow_foreign_credentials", "accept KeyPackages whose credential is not a Parley credential", func(c *Config) *bool { return &c.AllowForeignCredentials }),
		dur("retention", "longest time messages, Welcomes and attachments are kept (such as 720h or 30d)", func(c *Config) *time.Duration { return &c.Retention }),
		dur("session_ttl", "lifetime of a session token", func(c *Config) *time.Duration { return &c.SessionTTL }),
		dur("shutdown_timeout", "bound of the graceful shutdown", func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
		boolean("metrics", "collect Prometheus metrics (served at /metrics on metrics_listen)", func(c *Config) *bool { return &c.Metrics }),
		str("metrics_listen", "address of the plain-HTTP metrics listener (empty: none)", func(c *Config) *string { return &c.MetricsListen }),
		str("metrics_token_file", "file with a bearer token metrics requests must present (default none)", func(c *Config) *string { return &c.MetricsTokenFile }),
		str("web_dir", "serve the web client from DIR/ui and DIR/dist instead of the embedded files (default: embedded)", func(c *Config) *string { return &c.WebDir }),
		integer("connections.max", "connections open at once at most (0: derived from the open-file limit at start)", func(c *Config) *int { return &c.Connections.Max }),
		integer("connections.max_per_addr", "connections of one client address (IPv4, or IPv6 /64) at most (0: no cap)", func(c *Config) *int { return &c.Connections.MaxPerAddr }),
		dur("connections.header_timeout", "bound of the TLS handshake and the request headers", func(c *Config) *time.Duration { return &c.Connections.HeaderTimeout }),
		dur("connections.body_timeout", "bound of a request body, renewed while it keeps up body_min_rate", func(c *Config) *time.Duration { return &c.Connections.BodyTimeout }),
		numeric(size("connections.body_min_rate", "minimum rate of a long request body (bytes per second)", func(c *Config) *int64 { return &c.Connections.BodyMinRate })),
		list("connections.trusted_proxies", "reverse proxies (IPs or CIDR prefixes) whose client IP header is believed", func(c *Config) *[]string { return &c.Connections.TrustedProxies }),
		str("connections.client_ip_header", "header naming the client in requests from trusted proxies", func(c *Config) *string { return &c.Connections.ClientIPHeader }),
		list("allowed_origins", "host patterns of browser origins allowed besides the server's own (such as *.example.org)", func(c *Config) *[]string { return &c.AllowedOrigins }),
		dur("websocket.ping_interval", "how often WebSocket connections are pinged", func(c *Config) *time.Duration { return &c.WebSocket.PingInterval }),
		dur("websocket.pong_timeout", "how long a ping waits for its pong", func(c *Config) *time.Duration { return &c.WebSocket.PongTimeout }),
		dur("websocket.write_timeout", "bound of one WebSocket write", func(c *Config) *time.Duration { return &c.WebSocket.WriteTimeout }),
		str("tls.mode", "TLS mode: self-signed, files, acme or off (behind a TLS proxy only)", func(c *Config) *string { return &c.TLS.Mode }),
		list("tls.hosts", "extra DNS names and IPs for a new self-signed certificate", func(c *Config) *[]string { return &c.TLS.Hosts }),
		str("tls.cert_file", "PEM certificate chain (tls.mode files)", func(c *Config) *string { return &c.TLS.CertFile }),
		str("tls.key_file", "PEM private key (tls.mode files)", func(c *Config) *string { return &c.TLS.KeyFile }),
		list("tls.acme_domains", "domains to get certificates for (tls.mode acme)", func(c *Config) *[]string { return &c.TLS.ACMEDomains }),
		str("tls.acme_email", "contact e-mail for the ACME CA", func(c *Config) *string { return &c.TLS.ACMEEmail }),
		str("tls.acme_cache_dir", "ACME account and certificate cache (default DATA_DIR/acme)", func(c *Config) *string { return &c.TLS.ACMECacheDir }),
		str("tls.acme_directory_url", "ACME directory URL (default Let's Encrypt)", func(c *Config) *string { return &c.TLS.ACMEDirectoryURL }),
		str("tls.acme_http_listen", "address for HTTP-01 challenges and redirects, such as :80 (default none)", func(c *Config) *string { return &c.TLS.ACMEHTTPListen }),
		size("limits.max_body_bytes", "largest JSON request body (bytes; KiB/MiB/GiB suffixes allowed)", func(c *Config) *int64 { return &c.Limits.MaxBodyBytes }),
		size("limits.max_message_bytes", "largest MLS message", func(c *Config) *int64 { return &c.Limits.MaxMessageBytes }),
		size("limits.max_group_state_bytes", "largest GroupInfo plus ratchet tree, and largest Welcome", func(c *Config) *int64 { return &c.Limits.MaxGroupStateBytes }),
		size("limits.max_frame_bytes", "largest WebSocket message from a client", func(c *Config) *int64 { return &c.Limits.MaxFrameBytes }),
		size("limits.max_blob_bytes", "largest attachment", func(c *Config) *int64 { return &c.Limits.MaxBlobBytes }),
		size("limits.blob_quota_bytes", "attachment storage per user", func(c *Config) *int64 { return &c.Limits.BlobQuotaBytes }),
		dur("blob_reservation_ttl", "longest attachment upload; its quota reservation expires then", func(c *Config) *time.Duration { return &c.Limits.BlobReservationTTL }),
		integer("limits.max_pending_proposals", "proposals of a conversation's epoch waiting for a commit; more are refused with too_many_proposals", func(c *Config) *int { return &c.Limits.MaxPendingProposals }),
		size("limits.max_pending_proposal_bytes", "total size of the proposals of an epoch waiting for a commit", func(c *Config) *int64 { return &c.Limits.MaxPendingProposalBytes }),
		integer("limits.tree_history_epochs", "epochs before the current one whose ratchet trees stay readable for devices joining by an older Welcome (the rest join by external commit)", func(c *Config) *int { return &c.Limits.TreeHistoryEpochs }),
		str("log.level", "log level: debug, info, warn, error", func(c *Config) *string { return &c.Log.Level }),
		str("log.format", "log format: text or json", func(c *Config) *string { return &c.Log.Format }),
		integer("log.max_repeats", "records with the same level and message written per log.repeat_interval, the rest counted in a summary (0: no limit)", func(c *Config) *int { return &c.Log.MaxRepeats }),
		dur("log.repeat_interval", "window of log.max_repeats", func(c *Config) *time.Duration { return &c.Log.RepeatInterval }),
	}
	for _, nr := range (&Config{}).rates() {
		name := nr.name
		rate := func(c *Config) *Rate {
			for _, r := range c.rates() {
				if r.name == name {
					return r.rate
				}
			}
			panic("unreachable: unknown rate " + name)
		}
		what := map[string]string{
			"register_per_ip":   "registrations per client IP",
			"auth_per_ip":       "authentications per client IP",
			"requests_per_ip":   "requests per client IP",
			"requests_per_user": "authenticated requests per account",
			"claims_per_user":   "KeyPackage claims per claiming account, counted in claimed users",
			"lookups_per_user":  "users looked up in batches per account",
			"claims_per_target": "KeyPackage claims per (claiming account, target account)",
			"claims_per_device": "one-time KeyPackages handed out per target device, by all claimers (then its last-resort package)",
			"posts_per_device":  "messages and handshakes per device",

			"frames_per_connection": "WebSocket frames per connection (exceeding it closes the connection)",
		}[name]
		ss = append(ss,
			setting{key: "rate_limits." + name + ".per_second", usage: what + ": sustained per second",
				set: func(c *Config, v string) error {
					f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
					if err != nil {
						return fmt.Errorf("%q is not a number", v)
					}
					rate(c).PerSecond = f
					return nil
				},
				get: func(c *Config) string { return strconv.FormatFloat(rate(c).PerSecond, 'g', -1, 64) }},
			setting{key: "rate_limits." + name + ".burst", usage: what + ": burst",
				set: func(c *Config, v string) error {
					n, err := strconv.Atoi(strings.TrimSpace(v))
					if err != nil {
						return fmt.Errorf("%q is not an integer", v)
					}
					rate(c).Burst = n
					return nil
				},
				get: func(c *Config) string { return strconv.Itoa(rate(c).Burst) }},
		)
	}
	return ss
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parseDuration parses a Go duration ("90s", "720h") or a number of days
// ("30d").
func parseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("%q is not a duration", v)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 30s, 12h or 30d", v)
	}
	return d, nil
}

// formatDuration formats a duration, in days when it is a whole number of
// days.
func formatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// parseSize parses a byte count with an optional suffix: KiB, MiB, GiB
// (powers of 1024) or KB, MB, GB (powers of 1000).
func parseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if t, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(t), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size such as 1048576, 512KiB or 100MiB", v)
	}
	return n * mult, nil
}

// flagValue is a setting given on the command line.
type flagValue struct {
	key, value string
}

// configFlags collects the configuration flags of a command line, applied
// after the file and the environment.
type configFlags struct {
	path   string // path is --config.
	values []flagValue
}

// bind registers --config and the flags of the settings whose keys are
// listed (all settings when keys is nil) on fs.
func (cf *configFlags) bind(fs *flag.FlagSet, keys []string) {
	fs.Func("config", "read the configuration file `PATH` (TOML; also $PARLEY_CONFIG)", func(v string) error {
		cf.path = v
		return nil
	})
	defaults := NewConfig()
	for _, s := range settings() {
		if keys != nil && !slices.Contains(keys, s.key) {
			continue
		}
		usage := s.usage
		if d := s.get(&defaults); d != "" && !s.isBool {
			usage += " (default " + d + ")"
		} else if s.isBool && d == "true" {
			usage += " (default true)"
		}
		usage += " [$" + s.envName() + "]"
		record := func(v string) error {
			// Check the value now so that the error is a usage error
			// naming the flag.
			c := NewConfig()
			if err := s.set(&c, v); err != nil {
				return err
			}
			cf.values = append(cf.values, flagValue{s.key, v})
			return nil
		}
		if s.isBool {
			fs.BoolFunc(s.flagName(), usage, record)
		} else {
			fs.Func(s.flagName(), usage, record)
		}
	}
}

// storeKeys returns the settings the commands that only open the store
// accept as flags.
func storeKeys() []string { return []string{"data_dir", "store", "store_schema"} }

// loadConfig builds the configuration: defaults, then the config file
// (--config, else $PARLEY_CONFIG, else none), then PARLEY_* environment
// variables, then flags. It resolves the default data directory from
// getenv and validates the result. Errors name the source and the key.
func loadConfig(cf *configFlags, getenv func(string) string) (Config, error) {
	c := NewConfig()
	byKey := map[string]setting{}
	for _, s := range settings() {
		byKey[s.key] = s
	}
	path := cf.path
	if path == "" {
		path = getenv("PARLEY_CONFIG")
	}
	if path != "" {
		if err := applyFile(&c, path, byKey); err != nil {
			return Config{}, err
		}
	}
	for _, s := range settings() {
		if v, ok := lookupEnv(getenv, s.envName()); ok {
			if err := s.set(&c, v); err != nil {
				return Config{}, fmt.Errorf("environment %s: %v", s.envName(), err)
			}
		}
	}
	for _, fv := range cf.values {
		s := byKey[fv.key]
		if err := s.set(&c, fv.value); err != nil {
			return Config{}, fmt.Errorf("flag --%s: %v", s.flagName(), err)
		}
	}
	if c.DataDir == "" {
		d, err := defaultDataDir(getenv)
		if err != nil {
			return Config{}, err
		}
		c.DataDir = d
	}
	if strings.HasPrefix(c.DataDir, "~/") {
		if home := getenv("HOME"); home != "" {
			c.DataDir = filepath.Join(home, c.DataDir[2:])
		}
	}
	if !filepath.IsAbs(c.DataDir) {
		abs, err := filepath.Abs(c.DataDir)
		if err == nil {
			c.DataDir = abs
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// lookupEnv returns a variable's value and whether it is set and not
// empty.
func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// defaultDataDir returns $XDG_DATA_HOME/parley or ~/.local/share/parley.
func defaultDataDir(getenv func(string) string) (string, error) {
	if x := getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "parley"), nil
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".local", "share", "parley"), nil
	}
	return "", errors.New("data_dir: not set, and neither XDG_DATA_HOME nor HOME is set to derive the default; use --data-dir")
}

// applyFile reads a TOML config file and applies every key in it.
// Unknown keys are errors, so that a typo does not silently keep a
// default.
func applyFile(c *Config, path string, byKey map[string]setting) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %v", err)
	}
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		return fmt.Errorf("config file %s: %v", path, err)
	}
	flat := map[string]any{}
	flatten("", m, flat)
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, ok := byKey[k]
		if !ok {
			return fmt.Errorf("config file %s: unknown key %q", path, k)
		}
		v, err := tomlText(flat[k])
		if err != nil {
			return fmt.Errorf("config file %s: %s: %v", path, k, err)
		}
		if err := s.set(c, v); err != nil {
			return fmt.Errorf("config file %s: %s: %v", path, k, err)
		}
	}
	return nil
}

// flatten turns nested tables into dotted keys.
func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, out)
			continue
		}
		out[key] = v
	}
}

// tomlText converts a decoded TOML value to the text a setting parses.
func tomlText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("list item %v is not a string", e)
			}
			if strings.Contains(s, ",") {
				return "", fmt.Errorf("list item %q contains a comma", s)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("unsupported value %v (%T)", v, v)
}

// formatConfig writes the effective configuration as TOML-like key = value
// lines, for `parleyd config`.
func formatConfig(c *Config) string {
	var b strings.Builder
	for _, s := range settings() {
		v := s.get(c)
		switch {
		case s.isBool || s.number || strings.HasPrefix(s.key, "rate_limits.") || strings.HasPrefix(s.key, "limits."):
			fmt.Fprintf(&b, "%s = %s\n", s.key, v)
		case strings.HasSuffix(s.usage, "(comma-separated)"):
			items := splitList(v)
			q := make([]string, len(items))
			for i, it := range items {
				q[i] = strconv.Quote(it)
			}
			fmt.Fprintf(&b, "%s = [%s]\n", s.key, strings.Join(q, ", "))
		default:
			fmt.Fprintf(&b, "%s = %s\n", s.key, strconv.Quote(v))
		}
	}
	return b.String()
}
