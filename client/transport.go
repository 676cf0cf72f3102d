package client

import (
	"context"
	"errors"
	"io"
)

// The client reaches the server through a transport: net/http and a
// WebSocket library natively (transport_net.go), the browser's fetch and
// WebSocket in WebAssembly (transport_js.go), so that the browser's
// program carries neither Go's HTTP stack nor its TLS, which the browser
// has already.

// transport does HTTP requests and opens WebSockets to the server.
type transport interface {
	// roundTrip sends one request and returns the answer, of any status.
	// header holds the request's headers, one value each.
	roundTrip(ctx context.Context, method, url string, header map[string]string, body io.Reader) (*response, error)
	// dial opens the WebSocket at url, authenticated with the session
	// token tok. It fails with an error wrapping errDialRefused when the
	// server may have refused the token.
	dial(ctx context.Context, url, tok string) (socket, error)
}

// response is the answer to a request.
type response struct {
	StatusCode int
	// RetryAfter is the Retry-After header, if any.
	RetryAfter string
	Body       io.ReadCloser
}

// The statuses the client tells apart.
const (
	statusOK           = 200
	statusUnauthorized = 401
)

// socket is an open WebSocket: text messages out, messages of either kind
// in, at most maxSocketMessage bytes each.
type socket interface {
	read(ctx context.Context) ([]byte, error)
	write(ctx context.Context, text []byte) error
	// closeNow closes the connection without a closing handshake.
	closeNow()
}

// maxSocketMessage bounds a message read from the WebSocket.
const maxSocketMessage = 64 << 20

// errDialRefused marks a WebSocket handshake the server may have refused
// for its token: the client drops the token and authenticates again.
var errDialRefused = errors.New("WebSocket handshake refused")

// dialWS opens the WebSocket at u with the session token tok; a refused
// handshake drops the token, so that the next attempt authenticates
// again.
func (c *Client) dialWS(ctx context.Context, u, tok string) (socket, error) {
	s, err := c.net.dial(ctx, u, tok)
	if err != nil {
		if errors.Is(err, errDialRefused) {
			c.dropToken()
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, transportError("dial "+u, err)
	}
	return s, nil
}
