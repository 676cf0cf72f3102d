package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// maxResponse bounds a JSON answer read from the server.
const maxResponse = 64 << 20

// call does one JSON request to the server. body, if not nil, is sent as
// JSON; out, if not nil, receives the decoded 2xx answer. With auth the
// session token is sent, and refreshed once if the server refuses it.
func (c *Client) call(ctx context.Context, method, path string, auth bool, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s %s: encode request: %v", method, path, err)
		}
	}
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if payload != nil {
			rd = bytes.NewReader(payload)
		}
		resp, err := c.request(ctx, method, path, auth, rd, "application/json")
		if err != nil {
			return err
		}
		err = decodeResponse(resp, out)
		if _, ok := isCode(err, protocol.CodeUnauthorized); ok && auth && attempt == 0 {
			c.dropToken()
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		return nil
	}
}

// request sends one request and returns the response (any status).
func (c *Client) request(ctx context.Context, method, path string, auth bool, body io.Reader, contentType string) (*response, error) {
	header := map[string]string{}
	if body != nil {
		header["Content-Type"] = contentType
	}
	if auth {
		tok, err := c.sessionToken(ctx)
		if err != nil {
			return nil, err
		}
		header["Authorization"] = "Bearer " + tok
	}
	return c.roundTrip(ctx, method, path, header, body)
}

// roundTrip sends one request to the server's path with header and
// returns the response (any status).
func (c *Client) roundTrip(ctx context.Context, method, path string, header map[string]string, body io.Reader) (*response, error) {
	resp, err := c.net.roundTrip(ctx, method, c.serverURL+path, header, body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		return nil, transportError(method+" "+path, err)
	}
	return resp, nil
}

// decodeResponse reads an answer: out on 2xx, a *ServerError otherwise.
func decodeResponse(resp *response, out any) error {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%w: read answer: %v", ErrServerUnreachable, err)
	}
	if resp.StatusCode >= 300 {
		se := &ServerError{Status: resp.StatusCode}
		if secs, err := strconv.Atoi(resp.RetryAfter); err == nil && secs > 0 && secs < 1<<20 {
			se.RetryAfter = time.Duration(secs) * time.Second
		}
		if json.Unmarshal(data, &se.Err) != nil || se.Err.Code == "" {
			se.Err.Code = protocol.CodeInternal
			if resp.StatusCode < 500 {
				se.Err.Code = protocol.CodeBadRequest
			}
			se.Err.Message = fmt.Sprintf("status %d", resp.StatusCode)
		}
		return se
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode %T: %v", out, err)
		}
	}
	return nil
}

// sessionToken returns a valid session token, authenticating if needed
// (challenge, signature with the device key, session).
func (c *Client) sessionToken(ctx context.Context) (string, error) {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	if c.token != "" && c.cfg.Now().Add(time.Minute).Before(c.tokenExp) {
		return c.token, nil
	}
	id := c.id
	if id == nil {
		return "", ErrNotRegistered
	}
	// A session of an earlier run of this profile is used until it
	// expires or the server refuses it, so that short-lived processes
	// (one per CLI command) do not authenticate every time.
	if c.token == "" {
		var ss storedSession
		c.st.View(ctx, func(tx store.Tx) error {
			if b, err := tx.Setting(settingSession); err == nil && len(b) > 0 {
				json.Unmarshal(b, &ss)
			}
			return nil
		})
		if ss.Token != "" && ss.Server == c.serverURL && c.cfg.Now().Add(time.Minute).Before(ss.Expires) {
			c.token, c.tokenExp = ss.Token, ss.Expires
			return c.token, nil
		}
	}
	var ch protocol.ChallengeResponse
	if err := c.call(ctx, "POST", "/v1/auth/challenge", false, protocol.ChallengeRequest{User: id.User, Device: id.Device}, &ch); err != nil {
		return "", fmt.Errorf("authenticate %s: %w", id.User, err)
	}
	priv := ed25519.NewKeyFromSeed(id.DeviceKey)
	sig := ed25519.Sign(priv, protocol.SessionSignedData(c.serverName, id.User, id.Device, ch.Challenge))
	var s protocol.SessionResponse
	if err := c.call(ctx, "POST", "/v1/auth/session", false, protocol.SessionRequest{User: id.User, Device: id.Device, Challenge: ch.Challenge, Signature: sig}, &s); err != nil {
		return "", fmt.Errorf("authenticate %s: %w", id.User, err)
	}
	c.token, c.tokenExp = s.Token, s.Expires
	b, _ := json.Marshal(storedSession{Server: c.serverURL, Token: s.Token, Expires: s.Expires})
	if err := c.st.Update(context.WithoutCancel(ctx), func(tx store.Tx) error { return tx.SetSetting(settingSession, b) }); err != nil {
		c.log.Warn("session not stored", "err", err)
	}
	return c.token, nil
}

// settingSession is the setting holding the session (a storedSession).
// Settings are encrypted at rest like the rest of the store.
const settingSession = "session"

// storedSession is the session token kept in the store for later runs.
type storedSession struct {
	Server  string    `json:"server"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// dropToken forgets the session token, in memory and in the store (the
// server refused it): the next request authenticates again.
func (c *Client) dropToken() {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	c.token = ""
	if err := c.st.Update(context.WithoutCancel(c.life), func(tx store.Tx) error { return tx.SetSetting(settingSession, nil) }); err != nil {
		c.log.Warn("stored session not dropped", "err", err)
	}
}

// fetchUser reads a user's public record.
func (c *Client) fetchUser(ctx context.Context, name string) (*protocol.UserInfo, error) {
	var u protocol.UserInfo
	if err := c.call(ctx, "GET", "/v1/users/"+url.PathEscape(name), true, nil, &u); err != nil {
		return nil, err
	}
	if u.Name != name {
		return nil, fmt.Errorf("GET /v1/users/%s: server answered for %q", name, u.Name)
	}
	return &u, nil
}
