package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/server/connlimit"
	"github.com/parley-chat/parley/server/httpapi"
)

// Headroom kept out of the open-file limit when the connection cap is
// derived from it (autoMaxConnections).
const (
	// fdMargin covers the listeners, the log, certificate and ACME
	// files, the runtime's poller and SQLite's database, WAL and
	// shared-memory files of each pooled connection.
	fdMargin = 64
	// fdSQLite is the files of the SQLite store's pool.
	fdSQLite = 16
	// fdAttachmentPool is pgblob's pool (pgblob.NewConfig's MaxConns).
	fdAttachmentPool = 4
	// fdFanout covers the NATS connections and their reconnects.
	fdFanout = 16
	// fdBlobShare is the share of the limit (1/fdBlobShare) kept for
	// attachment files open during uploads and downloads.
	fdBlobShare = 8
	// minAutoConnections is the least derived cap parleyd starts with.
	minAutoConnections = 32
	// unlimitedFiles stands in for an infinite open-file limit.
	unlimitedFiles = 1 << 20
)

// autoMaxConnections derives the connection cap from the open-file
// limit nofile: what is left after the store's pool, the fanout, a
// share for attachment files and a fixed margin. It returns the cap and
// the headroom kept.
func autoMaxConnections(nofile uint64, c Config) (maxConns, reserve int, err error) {
	n := int(min(nofile, unlimitedFiles))
	reserve = fdMargin + n/fdBlobShare
	spec, _ := parseStore(c.Store, c.StoreSchema, c.DataDir)
	if spec.backend == "postgres" {
		reserve += c.StoreMaxConns + fdAttachmentPool
	} else {
		reserve += fdSQLite
	}
	if urls, _ := parseFanout(c.Fanout); urls != nil {
		reserve += fdFanout
	}
	maxConns = n - reserve
	if maxConns < minAutoConnections {
		return 0, reserve, fmt.Errorf("connections.max: the open-file limit %d leaves %d connections after %d for the store, fanout and attachments (at least %d needed); raise it (ulimit -n, LimitNOFILE=) or set connections.max", nofile, max(maxConns, 0), reserve, minAutoConnections)
	}
	return maxConns, reserve, nil
}

// connectionCap returns the total connection cap in force: the
// configured one, else the one derived from the open-file limit. It
// warns through warn when a configured cap exceeds what the limit
// allows.
func connectionCap(c Config, nofile func() (uint64, error), warn func(msg string, args ...any)) (int, error) {
	lim, err := nofile()
	if err != nil {
		if c.Connections.Max > 0 {
			return c.Connections.Max, nil
		}
		return 0, fmt.Errorf("connections.max: not set and %v; set it", err)
	}
	auto, reserve, err := autoMaxConnections(lim, c)
	if c.Connections.Max > 0 {
		if err != nil || c.Connections.Max > auto {
			warn("connections.max exceeds what the open-file limit leaves; the server may run out of file descriptors",
				"connections_max", c.Connections.Max, "open_file_limit", lim, "headroom", reserve)
		}
		return c.Connections.Max, nil
	}
	return auto, err
}

// trustedProxies parses connections.trusted_proxies: IP addresses and
// CIDR prefixes.
func trustedProxies(items []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, it := range items {
		if p, err := netip.ParsePrefix(it); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(it)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP address or CIDR prefix such as 10.0.0.0/8", it)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// validateConnections checks the connections.* settings.
func (c Config) validateConnections(bad func(key, format string, args ...any)) {
	cc := c.Connections
	if cc.Max < 0 {
		bad("connections.max", "%d is negative (0 derives it from the open-file limit)", cc.Max)
	}
	if cc.MaxPerAddr < 0 {
		bad("connections.max_per_addr", "%d is negative (0 means no cap)", cc.MaxPerAddr)
	}
	if cc.HeaderTimeout < 100*time.Millisecond || cc.HeaderTimeout > 10*time.Minute {
		bad("connections.header_timeout", "%v is not between 100ms and 10m", cc.HeaderTimeout)
	}
	if cc.BodyTimeout < 100*time.Millisecond || cc.BodyTimeout > time.Hour {
		bad("connections.body_timeout", "%v is not between 100ms and 1h", cc.BodyTimeout)
	}
	if cc.BodyMinRate < 1 {
		bad("connections.body_min_rate", "%d bytes per second is not positive", cc.BodyMinRate)
	}
	if _, err := trustedProxies(cc.TrustedProxies); err != nil {
		bad("connections.trusted_proxies", "%v", err)
	}
	if h := cc.ClientIPHeader; h == "" || strings.ContainsAny(h, " \t:\r\n") {
		bad("connections.client_ip_header", "%q is not a header name such as X-Forwarded-For", h)
	}
}

// listenCapped listens on c.Listen with the connection caps: at most the
// total cap in force (connectionCap) and connections.max_per_addr per
// client address, except trusted proxies, whose clients the API caps
// after their headers.
func listenCapped(c Config, api *httpapi.Server, reg prometheus.Registerer, log *slog.Logger) (net.Listener, error) {
	total, err := connectionCap(c, connlimit.OpenFileLimit, log.Warn)
	if err != nil {
		return nil, usageError{err}
	}
	lim, err := connlimit.New("connections", total, c.Connections.MaxPerAddr)
	if err != nil {
		return nil, usageError{err}
	}
	if err := lim.Register(reg); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %v", c.Listen, err)
	}
	if per := c.Connections.MaxPerAddr; per == 0 || per > total/2 {
		log.Warn("connections.max_per_addr lets one client address take half or more of connections.max; lower it",
			"max_per_addr", per, "max_connections", total)
	}
	log.Info("connection limits", "max_connections", total, "max_per_addr", c.Connections.MaxPerAddr,
		"header_timeout", c.Connections.HeaderTimeout, "body_timeout", c.Connections.BodyTimeout, "body_min_rate", c.Connections.BodyMinRate,
		"trusted_proxies", len(c.Connections.TrustedProxies))
	return connlimit.Listen(ln, lim, api.TrustedProxy), nil
}
