//go:build !js

package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"

	"github.com/coder/websocket"

	"github.com/parley-chat/parley/internal/tlsutil"
)

// netConfig is the part of Config that only native clients have.
type netConfig struct {
	// TLSConfig is the base TLS configuration (root CAs for a private CA).
	TLSConfig *tls.Config
	// HTTPClient, if set, is used as is (TLSFingerprint and TLSConfig are
	// then ignored).
	HTTPClient *http.Client
}

// ownTLS reports whether the client's TLS settings are its own (not an
// HTTPClient given as is), so that its certificate pin is stored.
func (cfg Config) ownTLS() bool { return cfg.HTTPClient == nil }

// newTransport builds the transport from the TLS settings.
func (cfg Config) newTransport() (transport, error) {
	if cfg.HTTPClient != nil {
		return netTransport{cfg.HTTPClient}, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if cfg.TLSFingerprint != "" {
		fp, err := tlsutil.ParseFingerprint(cfg.TLSFingerprint)
		if err != nil {
			return nil, fmt.Errorf("client: open: TLS fingerprint %q: %v", cfg.TLSFingerprint, err)
		}
		tc.InsecureSkipVerify = true // replaced by the pin below
		tc.VerifyPeerCertificate = verifyPinned(fp)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return netTransport{&http.Client{Transport: tr}}, nil
}

// verifyPinned returns a tls.Config.VerifyPeerCertificate function that
// accepts only a leaf certificate with the SHA-256 fingerprint want, and
// reports any other as a *CertificateMismatchError.
func verifyPinned(want []byte) func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	check := tlsutil.VerifyFingerprint(want)
	return func(rawCerts [][]byte, chains [][]*x509.Certificate) error {
		err := check(rawCerts, chains)
		if err == nil || len(rawCerts) == 0 {
			return err
		}
		return &CertificateMismatchError{Pinned: hex.EncodeToString(want), Got: tlsutil.Fingerprint(rawCerts[0])}
	}
}

// netTransport is the native transport: net/http and package websocket.
type netTransport struct{ hc *http.Client }

func (t netTransport) roundTrip(ctx context.Context, method, url string, header map[string]string, body io.Reader) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		return nil, err
	}
	return &response{StatusCode: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After"), Body: resp.Body}, nil
}

// dial opens the WebSocket with the session token in the Authorization
// header, through the client's HTTP client (its TLS pin).
func (t netTransport) dial(ctx context.Context, url, tok string) (socket, error) {
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: t.hc,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}},
	})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("%w: %v", errDialRefused, err)
		}
		return nil, err
	}
	conn.SetReadLimit(maxSocketMessage)
	return netSocket{conn}, nil
}

// netSocket is a WebSocket of package websocket.
type netSocket struct{ c *websocket.Conn }

func (s netSocket) read(ctx context.Context) ([]byte, error) {
	_, data, err := s.c.Read(ctx)
	return data, err
}

func (s netSocket) write(ctx context.Context, text []byte) error {
	return s.c.Write(ctx, websocket.MessageText, text)
}

func (s netSocket) closeNow() { s.c.CloseNow() }
