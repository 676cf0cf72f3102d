package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Issue 6's configurations: PostgreSQL for the shared store and NATS for
// the signal between nodes. The defaults are the local services of the
// machines that build Parley; the environment variables are those of the
// server's own PostgreSQL and NATS tests.
const (
	defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultNATS     = "nats://127.0.0.1:4222"
)

// envOr returns the environment variable, or def when it is empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// isPostgres reports whether a --store value names PostgreSQL.
func isPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// isNATS reports whether a --fanout value names NATS servers.
func isNATS(fanout string) bool {
	return strings.HasPrefix(fanout, "nats://") || strings.HasPrefix(fanout, "tls://")
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// freshSchema returns the PostgreSQL URL dsn naming a new schema
// parley_bench_<random> (parleyd creates it when the first node starts)
// and the schema's name. A URL that already names a schema (its "schema"
// parameter) is returned unchanged with an empty name: that schema is the
// caller's and is neither fresh nor dropped.
func freshSchema(dsn string) (storeURL, schema string, err error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", "", fmt.Errorf("--store %q: %v", dsn, err)
	}
	q := u.Query()
	if q.Get("schema") != "" {
		return dsn, "", nil
	}
	schema = "parley_bench_" + randomHex(6)
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema, nil
}

// pgConnString returns dsn without the "schema" parameter, which
// parleyd understands but PostgreSQL does not.
func pgConnString(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	q.Del("schema")
	u.RawQuery = q.Encode()
	return u.String()
}

// dropSchema drops a schema created for a run, with everything in it.
func dropSchema(dsn, schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgConnString(dsn))
	if err != nil {
		return fmt.Errorf("drop schema %s: %v", schema, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		return fmt.Errorf("drop schema %s: %v", schema, err)
	}
	return nil
}

// checkPostgres connects to dsn and pings it within 5 s.
func checkPostgres(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgConnString(dsn))
	if err != nil {
		return fmt.Errorf("PostgreSQL %s unreachable: %v", redact(dsn), err)
	}
	defer conn.Close(ctx)
	if err := conn.Ping(ctx); err != nil {
		return fmt.Errorf("PostgreSQL %s unreachable: %v", redact(dsn), err)
	}
	return nil
}

// checkNATSURL parses one NATS server URL and returns its host:port; the
// host must be a loopback address, like every address the bench talks to.
func checkNATSURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || !isNATS(raw) {
		return "", fmt.Errorf("NATS URL %q: want nats://HOST:PORT or tls://HOST:PORT", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("NATS URL %q: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed", raw)
	}
	port := u.Port()
	if port == "" {
		port = "4222"
	}
	return net.JoinHostPort(host, port), nil
}

// checkNATS opens a TCP connection to the first NATS server of a
// --fanout value within 2 s.
func checkNATS(ctx context.Context, fanout string) error {
	first, _, _ := strings.Cut(fanout, ",")
	addr, err := checkNATSURL(first)
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("NATS %s unreachable: %v", first, err)
	}
	return c.Close()
}

// checkPostgresLoopback refuses a PostgreSQL URL whose host is not a
// loopback address or a Unix socket directory.
func checkPostgresLoopback(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("PostgreSQL URL: %v", err)
	}
	host := u.Hostname()
	if host == "" || host == "localhost" || strings.HasPrefix(host, "/") {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("PostgreSQL URL %s: only loopback addresses are allowed", redact(dsn))
	}
	return nil
}

// redact hides a password in a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
