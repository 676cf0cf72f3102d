// Package testenv is the one place that decides whether a test can use an
// outside resource here: the PostgreSQL and NATS services and the official
// MLS test vectors (as Go's own internal/testenv does for the toolchain).
//
// Outside CI a test whose resource is missing is skipped; under CI=true it
// fails, so that CI never passes by not checking. Either way the message
// names the resource, what was tried and how to provide it.
//
// The package uses only the standard library, so that the MLS library's
// test helpers can use it without pulling in a server dependency.
package testenv

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Environment variables that point the tests at their resources.
const (
	// EnvPostgres is a postgres:// URL of a database in which the tests
	// may create and drop schemas.
	EnvPostgres = "PARLEY_TEST_POSTGRES"
	// EnvNATS is a nats:// URL of a NATS server.
	EnvNATS = "PARLEY_TEST_NATS"
	// EnvNATSServer is the path of a nats-server binary, for tests that
	// start and stop a private server.
	EnvNATSServer = "PARLEY_NATS_SERVER"
	// EnvMLSVectors is the folder holding the official MLS test vectors.
	EnvMLSVectors = "PARLEY_MLS_VECTORS"
)

// Defaults: the local services of the build machines (scripts/services
// starts them).
const (
	DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultNATS     = "nats://127.0.0.1:4222"
)

// Resource is an outside resource some tests need.
type Resource int

// The resources a test may need.
const (
	NeedPostgres   Resource = iota + 1 // the PostgreSQL service
	NeedNATS                           // the NATS service
	NeedNATSBinary                     // a nats-server binary to start
	NeedMLSVectors                     // the official MLS test vectors
)

// String returns the resource's name.
func (r Resource) String() string {
	switch r {
	case NeedPostgres:
		return "PostgreSQL"
	case NeedNATS:
		return "NATS"
	case NeedNATSBinary:
		return "nats-server binary"
	case NeedMLSVectors:
		return "MLS test vectors"
	}
	return fmt.Sprintf("testenv.Resource(%d)", int(r))
}

// how says how to provide the resource.
func (r Resource) how() string {
	switch r {
	case NeedPostgres:
		return "run scripts/services to start the local PostgreSQL, or set " + EnvPostgres +
			" to the postgres:// URL of a database in which the tests may create schemas"
	case NeedNATS:
		return "run scripts/services to start the local NATS server, or set " + EnvNATS + " to a nats:// URL"
	case NeedNATSBinary:
		return "install nats-server (on PATH or /usr/sbin), or set " + EnvNATSServer + " to its path"
	case NeedMLSVectors:
		return "get the test-vectors folder of https://github.com/mlswg/mls-implementations " +
			"(git clone https://github.com/mlswg/mls-implementations) and set " + EnvMLSVectors +
			" to it (e.g. " + EnvMLSVectors + "=$PWD/mls-implementations/test-vectors), or place it at " +
			"../shared/mls-test-vectors beside the repository"
	}
	return "see README.md"
}

// InCI reports whether the tests run under CI (CI=true), where a missing
// resource fails a test instead of skipping it.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable ends t because r is missing: err says what was tried. It
// skips t, or fails it under CI=true.
func Unavailable(t testing.TB, r Resource, err error) {
	t.Helper()
	msg := fmt.Sprintf("%v not available: %v; to run this test, %s", r, err, r.how())
	if InCI() {
		t.Fatalf("%s (under CI=true a missing resource fails the run)", msg)
	}
	t.Skip(msg + " (skipped; under CI=true it fails)")
}

// Optional is for a test that goes on with less when r is missing: given
// the error of trying r, it fails t under CI=true and otherwise logs the
// error and reports false. It reports true when err is nil.
func Optional(t testing.TB, r Resource, err error) bool {
	t.Helper()
	if err == nil {
		return true
	}
	msg := fmt.Sprintf("%v not available: %v; to run the parts that need it, %s", r, err, r.how())
	if InCI() {
		t.Fatalf("%s (under CI=true a missing resource fails the run)", msg)
	}
	t.Log(msg)
	return false
}

// PostgresURL returns the URL of the test database, $PARLEY_TEST_POSTGRES
// or DefaultPostgres, without checking it. Most tests want Postgres.
func PostgresURL() string { return envOr(EnvPostgres, DefaultPostgres) }

// NATSURL returns the URL of the test NATS server, $PARLEY_TEST_NATS or
// DefaultNATS, without checking it. Most tests want NATS.
func NATSURL() string { return envOr(EnvNATS, DefaultNATS) }

// Postgres returns PostgresURL after checking that its host accepts TCP
// connections; otherwise t ends through Unavailable. A test that then
// fails to connect or ping should end through Unavailable(t, PostgreSQL,
// err) as well: the server may be up without the test database.
func Postgres(t testing.TB) string {
	t.Helper()
	u := PostgresURL()
	if err := dial(u, "5432"); err != nil {
		Unavailable(t, NeedPostgres, err)
	}
	return u
}

// NATS returns NATSURL after checking that its host accepts TCP
// connections; otherwise t ends through Unavailable.
func NATS(t testing.TB) string {
	t.Helper()
	u := NATSURL()
	if err := dial(u, "4222"); err != nil {
		Unavailable(t, NeedNATS, err)
	}
	return u
}

// MLSVectorsDir returns the folder of the official MLS test vectors:
// $PARLEY_MLS_VECTORS, or else ../shared/mls-test-vectors beside the root
// of the module holding the working directory (the folder with go.mod). It
// does not check that the folder exists.
func MLSVectorsDir() (string, error) {
	if d := os.Getenv(EnvMLSVectors); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared", "mls-test-vectors"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s, and %s is not set", wd, EnvMLSVectors)
		}
	}
}

// MLSVectors returns the folder of the official MLS test vectors
// (MLSVectorsDir) after checking that it is a folder; otherwise t ends
// through Unavailable. A test that then misses a file in it should end
// through Unavailable(t, NeedMLSVectors, err) as well.
func MLSVectors(t testing.TB) string {
	t.Helper()
	dir, err := MLSVectorsDir()
	if err == nil {
		var fi os.FileInfo
		if fi, err = os.Stat(dir); err == nil && !fi.IsDir() {
			err = fmt.Errorf("%s is not a folder", dir)
		}
	}
	if err != nil {
		Unavailable(t, NeedMLSVectors, err)
	}
	return dir
}

// dial opens and closes a TCP connection to the host of the URL raw
// (defaultPort if it names none); a raw without a scheme is taken as
// host:port.
func dial(raw, defaultPort string) error {
	host, shown := raw, raw
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		host, shown = u.Host, u.Redacted()
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), defaultPort)
		}
	}
	c, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", shown, err)
	}
	return c.Close()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
