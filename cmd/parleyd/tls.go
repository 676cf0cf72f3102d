package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/parley-chat/parley/internal/tlsutil"
)

// tlsSetup is the transport security of a running server.
type tlsSetup struct {
	// config is nil when TLS is off.
	config *tls.Config
	// fingerprint is the self-signed certificate's SHA-256 fingerprint.
	fingerprint string
	// description says where the certificate comes from, for the start
	// message.
	description string
	// acmeHTTP, when not nil, serves HTTP-01 challenges.
	acmeHTTP *http.Server
}

// setupTLS prepares the TLS configuration of the mode.
func setupTLS(c Config, e *env, log *slog.Logger) (*tlsSetup, error) {
	base := func() *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	}
	switch c.TLS.Mode {
	case tlsOff:
		log.Warn("TLS is OFF: parleyd serves plain HTTP; this is only safe behind a reverse proxy that terminates TLS on the same machine or a private network", "listen", c.Listen)
		return &tlsSetup{description: "off (plain HTTP; a TLS-terminating reverse proxy must be in front)"}, nil
	case tlsSelfSigned:
		hosts := []string{"localhost", "127.0.0.1", "::1"}
		if h, _, err := net.SplitHostPort(c.ServerName); err == nil {
			hosts = append(hosts, h)
		} else {
			hosts = append(hosts, c.ServerName)
		}
		if h, _, err := net.SplitHostPort(c.Listen); err == nil && h != "" && !net.ParseIP(h).IsUnspecified() {
			hosts = append(hosts, h)
		}
		hosts = append(hosts, c.TLS.Hosts...)
		ss, err := tlsutil.LoadOrCreate(c.DataDir, hosts, e.now(), e.rand)
		if err != nil {
			return nil, err
		}
		cfg := base()
		cfg.Certificates = []tls.Certificate{ss.Certificate}
		desc := "self-signed certificate " + ss.CertPath
		if ss.Created {
			desc = "new " + desc
			log.Info("created self-signed certificate", "path", ss.CertPath, "fingerprint", ss.Fingerprint, "not_after", ss.Leaf.NotAfter)
		}
		return &tlsSetup{config: cfg, fingerprint: ss.Fingerprint, description: desc}, nil
	case tlsFiles:
		r := &certReloader{certFile: c.TLS.CertFile, keyFile: c.TLS.KeyFile, now: e.now, log: log}
		if err := r.load(); err != nil {
			return nil, err
		}
		cfg := base()
		cfg.GetCertificate = r.get
		return &tlsSetup{config: cfg, description: "certificate " + c.TLS.CertFile + " (reloaded when the file changes)"}, nil
	case tlsACME:
		cacheDir := c.TLS.ACMECacheDir
		if cacheDir == "" {
			cacheDir = filepath.Join(c.DataDir, "acme")
		}
		if err := os.MkdirAll(cacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("tls: ACME cache directory: %v", err)
		}
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			Cache:      autocert.DirCache(cacheDir),
			HostPolicy: autocert.HostWhitelist(c.TLS.ACMEDomains...),
			Email:      c.TLS.ACMEEmail,
		}
		if c.TLS.ACMEDirectoryURL != "" {
			m.Client = &acme.Client{DirectoryURL: c.TLS.ACMEDirectoryURL}
		}
		cfg := m.TLSConfig()
		cfg.MinVersion = tls.VersionTLS12
		s := &tlsSetup{config: cfg, description: fmt.Sprintf("ACME certificates for %v (cache %s)", c.TLS.ACMEDomains, cacheDir)}
		if c.TLS.ACMEHTTPListen != "" {
			s.acmeHTTP = &http.Server{
				Addr:              c.TLS.ACMEHTTPListen,
				Handler:           m.HTTPHandler(nil),
				ReadHeaderTimeout: 10 * time.Second,
				ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			}
		}
		return s, nil
	}
	return nil, fmt.Errorf("tls: unknown mode %q", c.TLS.Mode)
}

// certReloader serves a certificate from PEM files and reloads it when
// either file's modification time changes (checked at most every
// reloadCheck), so that renewals by certbot or similar take effect
// without a restart.
type certReloader struct {
	certFile, keyFile string
	now               func() time.Time
	log               *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	modCert   time.Time
	modKey    time.Time
	lastCheck time.Time
}

// reloadCheck is how often certReloader looks at the files.
const reloadCheck = 30 * time.Second

// load reads the files.
func (r *certReloader) load() error {
	ci, err := os.Stat(r.certFile)
	if err != nil {
		return fmt.Errorf("tls: certificate: %v", err)
	}
	ki, err := os.Stat(r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: key: %v", err)
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %v", r.certFile, r.keyFile, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return fmt.Errorf("tls: parse %s: %v", r.certFile, err)
		}
	}
	if r.now().After(c.Leaf.NotAfter) {
		r.log.Warn("TLS certificate has expired", "path", r.certFile, "not_after", c.Leaf.NotAfter)
	}
	r.mu.Lock()
	r.cert, r.modCert, r.modKey, r.lastCheck = &c, ci.ModTime(), ki.ModTime(), r.now()
	r.mu.Unlock()
	return nil
}

// get implements tls.Config.GetCertificate.
func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	cert := r.cert
	due := r.now().Sub(r.lastCheck) >= reloadCheck
	if due {
		r.lastCheck = r.now()
	}
	modCert, modKey := r.modCert, r.modKey
	r.mu.Unlock()
	if due {
		ci, err1 := os.Stat(r.certFile)
		ki, err2 := os.Stat(r.keyFile)
		if err := errors.Join(err1, err2); err != nil {
			r.log.Warn("cannot check TLS certificate files; keeping the loaded certificate", "err", err)
		} else if !ci.ModTime().Equal(modCert) || !ki.ModTime().Equal(modKey) {
			if err := r.load(); err != nil {
				r.log.Warn("cannot reload TLS certificate; keeping the loaded one", "err", err)
			} else {
				r.log.Info("reloaded TLS certificate", "path", r.certFile)
				r.mu.Lock()
				cert = r.cert
				r.mu.Unlock()
			}
		}
	}
	return cert, nil
}

// serveACMEHTTP runs the HTTP-01 challenge server until ctx ends.
func (s *tlsSetup) serveACMEHTTP(ctx context.Context, log *slog.Logger) {
	if s.acmeHTTP == nil {
		return
	}
	go func() {
		if err := s.acmeHTTP.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("ACME HTTP-01 listener failed", "addr", s.acmeHTTP.Addr, "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.acmeHTTP.Shutdown(sctx)
	}()
}
