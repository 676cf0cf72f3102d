// Package testserver runs a parleyd core in process for the tests of its
// clients: a SQLite store in a temporary directory, blobs on disk, the
// delivery service and the HTTP API behind a loopback TLS server with a
// self-signed certificate, open registration and rate limits out of the
// way. Everything stops when the test ends; the store's invariants are
// checked then.
package testserver

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/internal/tlsutil"
	"github.com/parley-chat/parley/server/blob"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/follower"
	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/store/sqlite"
)

// Name is the server name of a test server.
const Name = "test.example"

// Server is a running test server.
type Server struct {
	// HTTP is the loopback TLS server; URL is its https URL and
	// Fingerprint the SHA-256 of its certificate, as clients pin it.
	HTTP        *httptest.Server
	URL         string
	Fingerprint string
	// Name is the server name (Name).
	Name string
	// Store is the server's store and Service its core, for checks and
	// administration.
	Store   *sqlite.Store
	Service *delivery.Service
}

// Start starts a test server, with the delivery configuration changed by
// configure (if not nil).
func Start(t testing.TB, configure func(*delivery.Config)) *Server {
	t.Helper()
	return StartWith(t, Options{Delivery: configure})
}

// Options configure a test server (StartWith).
type Options struct {
	// Delivery changes the delivery configuration, if not nil.
	Delivery func(*delivery.Config)
	// DefaultLimits keeps parleyd's default rate limits of accounts and
	// devices: requests, KeyPackage claims and lookups per user, claims
	// per (claimer, target) pair, posts per device. Only the limits per
	// address (registration, authentication, requests) stay out of the
	// way, for tests that register many users from one address.
	DefaultLimits bool
	// HTTP changes the HTTP adapter's configuration last, if not nil.
	HTTP func(*httpapi.Config)
}

// StartWith starts a test server configured by o.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	configure := o.Delivery
	ctx := context.Background()
	dir := t.TempDir()
	st, err := openStore(ctx, filepath.Join(dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewDisk(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	dcfg := delivery.DefaultConfig()
	dcfg.ServerName = Name
	dcfg.OpenRegistration = true
	if !o.DefaultLimits {
		dcfg.ClaimRate, dcfg.ClaimBurst = 1000, 1000
	}
	if configure != nil {
		configure(&dcfg)
	}
	hcfg := httpapi.DefaultConfig()
	fast := httpapi.Rate{PerSecond: 100000, Burst: 100000}
	if o.DefaultLimits {
		hcfg.RateLimits.RegisterPerIP, hcfg.RateLimits.AuthPerIP, hcfg.RateLimits.RequestsPerIP = fast, fast, fast
	} else {
		hcfg.RateLimits = httpapi.RateLimits{RegisterPerIP: fast, AuthPerIP: fast, RequestsPerIP: fast, RequestsPerUser: fast, ClaimsPerUser: fast, LookupsPerUser: fast, PostsPerDevice: fast, FramesPerConnection: fast}
	}
	if o.HTTP != nil {
		o.HTTP(&hcfg)
	}
	reg := prometheus.NewRegistry()
	svc, err := delivery.New(dcfg, st, blobs, follower.New(nil), delivery.Options{Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() {
		svc.Run(runCtx)
		close(ran)
	}()
	api, err := httpapi.New(hcfg, svc, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(api)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		api.Shutdown(sctx)
		cancel()
		srv.Close()
		stop()
		<-ran
		if err := st.CheckInvariants(ctx); err != nil {
			t.Errorf("server store invariants: %v", err)
		}
		st.Close()
	})
	return &Server{HTTP: srv, URL: srv.URL, Fingerprint: tlsutil.Fingerprint(srv.Certificate().Raw), Name: dcfg.ServerName, Store: st, Service: svc}
}

// empty is a migrated, empty server database, made once per test process
// and copied for every test server: migrating a new SQLite file parses
// the SQL of every migration again, which costs more than many whole
// tests under the race detector.
var empty struct {
	once sync.Once
	db   []byte
	err  error
}

// openStore opens a store at path (which must not exist) that starts as a
// copy of the empty database; sqlite.Open then finds nothing to migrate.
func openStore(ctx context.Context, path string) (*sqlite.Store, error) {
	empty.once.Do(func() { empty.db, empty.err = migrated(ctx) })
	if empty.err != nil {
		return nil, empty.err
	}
	if err := os.WriteFile(path, empty.db, 0o600); err != nil {
		return nil, fmt.Errorf("testserver: copy the empty database: %v", err)
	}
	return sqlite.Open(ctx, sqlite.NewConfig(path))
}

// migrated returns the bytes of a new, migrated database, written by the
// store's Backup (VACUUM INTO: one self-contained file, no WAL).
func migrated(ctx context.Context) ([]byte, error) {
	dir, err := os.MkdirTemp("", "parley-testserver-")
	if err != nil {
		return nil, fmt.Errorf("testserver: empty database: %v", err)
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, sqlite.NewConfig(filepath.Join(dir, "new.db")))
	if err != nil {
		return nil, fmt.Errorf("testserver: empty database: %v", err)
	}
	defer st.Close()
	copyPath := filepath.Join(dir, "copy.db")
	if err := st.Backup(ctx, copyPath); err != nil {
		return nil, fmt.Errorf("testserver: empty database: %v", err)
	}
	return os.ReadFile(copyPath)
}
