//go:build js

package client

import (
	"context"
	"errors"
	"net/url"

	"github.com/coder/websocket"
)

// dialWS opens the WebSocket at u with the browser's WebSocket, which can
// set no header: the session token travels in the token query parameter,
// which the server accepts for WebSockets. The browser does not tell why
// a handshake failed, so a failed dial drops the token: an expired or
// revoked one is then replaced on the next attempt rather than retried
// forever. The dial's own error is not kept: it quotes the URL, token
// included.
func (c *Client) dialWS(ctx context.Context, u, tok string) (*websocket.Conn, error) {
	conn, _, err := websocket.Dial(ctx, u+"?token="+url.QueryEscape(tok), nil)
	if err != nil {
		c.dropToken()
		if ctx.Err() != nil {
			return nil, transportError("dial "+u, ctx.Err())
		}
		return nil, transportError("dial "+u, errors.New("WebSocket handshake failed"))
	}
	return conn, nil
}
