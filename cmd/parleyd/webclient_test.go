package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/parley-chat/parley/server/webclient"
)

// TestWebClientRouting checks that the API keeps its paths, the web
// client gets every other one, and both carry the security headers.
func TestWebClientRouting(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Route", "api") })
	web := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Route", "web") })
	h := withWebClient(api, web)
	for path, want := range map[string]string{
		"/v1": "api", "/v1/info": "api", "/v1/ws": "api", "/healthz": "api", "/readyz": "api",
		"/": "web", "/sw.js": "web", "/assets/app.0123456789abcdef.js": "web", "/metrics": "web", "/v1x": "web", "/healthz/x": "web",
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if got := w.Header().Get("X-Route"); got != want {
			t.Errorf("%s went to %s, want %s", path, got, want)
		}
		if csp := w.Header().Get("Content-Security-Policy"); csp != webclient.ContentSecurityPolicy {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
	}
}
