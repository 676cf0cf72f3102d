package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/protocol"
)

// api is a minimal HTTP client of the Parley protocol for the setup
// requests.
type api struct {
	base string // base is the server's URL without a trailing slash.
	hc   *http.Client
}

// newHTTPClient returns a client for loopback servers; insecure skips
// certificate verification (for a self-signed parleyd).
func newHTTPClient(insecure bool, conns int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // loopback only, self-signed
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// checkLoopback refuses a server URL that is not http(s) on a loopback
// address: the bench never sends load anywhere else.
func checkLoopback(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("server URL %q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return u, nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("server URL %q: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed", raw)
	}
	return u, nil
}

// do sends a JSON request and decodes the answer into out (if not nil).
// A 429 is retried after its Retry-After, at most 20 times; other
// failures return the server's *protocol.Error.
func (a *api) do(ctx context.Context, method, path, token string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := a.hc.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %v", method, path, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: %v", method, path, err)
		}
		if resp.StatusCode == http.StatusTooManyRequests && attempt < 20 {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			t := time.NewTimer(time.Duration(max(wait, 1)) * time.Second)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
			continue
		}
		if resp.StatusCode/100 != 2 {
			var pe protocol.Error
			if json.Unmarshal(data, &pe) == nil && pe.Code != "" {
				return fmt.Errorf("%s %s: %d %w", method, path, resp.StatusCode, &pe)
			}
			return fmt.Errorf("%s %s: %s: %.200s", method, path, resp.Status, data)
		}
		if out != nil && len(data) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("%s %s: decode answer: %v", method, path, err)
			}
		}
		return nil
	}
}

// info returns the server's /v1/info.
func (a *api) info(ctx context.Context) (protocol.ServerInfo, error) {
	var si protocol.ServerInfo
	err := a.do(ctx, "GET", "/v1/info", "", nil, &si)
	return si, err
}

// register registers the device's user with the device on the server
// named serverName; an existing registration of the same device (a
// rerun) is accepted.
func (a *api) register(ctx context.Context, serverName string, d *ident, invite string) error {
	nd, err := d.newDevice(serverName)
	if err != nil {
		return err
	}
	req := protocol.RegisterRequest{Name: d.user, Invite: invite, IdentityKey: []byte(d.idKey.Public().(ed25519.PublicKey)), Device: nd}
	err = a.do(ctx, "POST", "/v1/register", "", req, nil)
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Code == protocol.CodeConflict {
		return nil
	}
	return err
}

// login authenticates the device with the challenge flow and returns a
// session token.
func (a *api) login(ctx context.Context, serverName string, d *ident) (string, error) {
	var ch protocol.ChallengeResponse
	if err := a.do(ctx, "POST", "/v1/auth/challenge", "", protocol.ChallengeRequest{User: d.user, Device: d.device}, &ch); err != nil {
		return "", err
	}
	sig := ed25519.Sign(d.key, protocol.SessionSignedData(serverName, d.user, d.device, ch.Challenge))
	var s protocol.SessionResponse
	if err := a.do(ctx, "POST", "/v1/auth/session", "", protocol.SessionRequest{User: d.user, Device: d.device, Challenge: ch.Challenge, Signature: sig}, &s); err != nil {
		return "", err
	}
	return s.Token, nil
}

// wsURL returns the WebSocket URL of a server base URL.
func wsURL(base string) string {
	if rest, ok := strings.CutPrefix(base, "https://"); ok {
		return "wss://" + rest + "/v1/ws"
	}
	return "ws://" + strings.TrimPrefix(base, "http://") + "/v1/ws"
}

// getRaw sends a GET and returns the body of a 2xx answer as it is (such
// as application/octet-stream); otherwise the error and the status (0
// when no answer came).
func (a *api) getRaw(ctx context.Context, path, token string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", a.base+path, nil)
	if err != nil {
		return nil, 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: %v", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, resp.StatusCode, fmt.Errorf("GET %s: %s: %.200s", path, resp.Status, data)
	}
	return data, resp.StatusCode, nil
}
