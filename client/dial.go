//go:build !js

package client

import (
	"context"
	"net/http"

	"github.com/coder/websocket"
)

// dialWS opens the WebSocket at u with the session token tok in the
// Authorization header, through the client's HTTP client (its TLS pin).
func (c *Client) dialWS(ctx context.Context, u, tok string) (*websocket.Conn, error) {
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient: c.http,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}},
	})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			c.dropToken()
		}
		return nil, transportError("dial "+u, err)
	}
	return conn, nil
}
