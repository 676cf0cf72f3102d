package client

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-chat/parley/protocol"
)

// CreateInvite asks the server for an invite that allows uses
// registrations during ttl (POST /v1/admin/invites); only an
// administrator's account may. The answer carries the code, which the
// server does not show again; InviteLink makes it a pasteable link.
func (c *Client) CreateInvite(ctx context.Context, uses int, ttl time.Duration) (*protocol.InviteInfo, error) {
	c.mu.Lock()
	registered := c.id != nil
	c.mu.Unlock()
	if !registered {
		return nil, fmt.Errorf("client: create invite: %w", ErrNotRegistered)
	}
	if uses < 1 || ttl < time.Second {
		return nil, fmt.Errorf("client: create invite: %d uses for %v: want at least 1 use and 1s", uses, ttl)
	}
	var info protocol.InviteInfo
	req := protocol.CreateInviteRequest{Uses: uses, TTLSeconds: int64(ttl / time.Second)}
	if err := c.call(ctx, "POST", "/v1/admin/invites", true, req, &info); err != nil {
		return nil, fmt.Errorf("client: create invite: %w", err)
	}
	if info.Code == "" {
		return nil, fmt.Errorf("client: create invite: the server returned no code")
	}
	return &info, nil
}

// InviteLink returns the pasteable link of an invite code on this
// profile's server: its URL and pinned certificate fingerprint, if any
// (see protocol.InviteLink).
func (c *Client) InviteLink(code string) (protocol.InviteLink, error) {
	acct, err := c.Whoami()
	if err != nil {
		return protocol.InviteLink{}, err
	}
	return protocol.InviteLink{Server: acct.Server, Code: code, Fingerprint: acct.TLSFingerprint}, nil
}
