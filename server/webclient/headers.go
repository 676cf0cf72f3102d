package webclient

import (
	"net/http"
	"time"
)

// ContentSecurityPolicy is the policy of every response: scripts, styles,
// fonts and connections (the API and its WebSocket) only from the
// server's own origin; WebAssembly compilation allowed
// ('wasm-unsafe-eval', which allows no JavaScript eval); images also from
// blob: and data: URLs (decrypted attachments, QR codes); no plugins,
// no base URL, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; " +
	"img-src 'self' blob: data:; connect-src 'self'; manifest-src 'self'; worker-src 'self'; font-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders are set on every response.
var securityHeaders = [][2]string{
	{"Content-Security-Policy", ContentSecurityPolicy},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "no-referrer"},
	{"X-Frame-Options", "DENY"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"},
}

// SetSecurityHeaders sets the security headers of every response: the
// Content-Security-Policy, no MIME sniffing, no referrer, no framing, a
// browsing context group of its own and no camera, microphone,
// geolocation, payment or USB access.
func SetSecurityHeaders(h http.Header) {
	for _, kv := range securityHeaders {
		h.Set(kv[0], kv[1])
	}
}

// zeroTime leaves Last-Modified out: files are revalidated by ETag.
var zeroTime time.Time
