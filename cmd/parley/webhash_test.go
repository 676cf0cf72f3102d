package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parley-chat/parley/server/webclient"
)

// webFixture writes a web client (page files in ui/, built files in
// dist/) for parleyd's --web-dir.
func webFixture(t *testing.T) string {
	dir := t.TempDir()
	files := map[string]string{
		"ui/index.html": `<!doctype html><html><head><link rel="manifest" href="manifest.webmanifest"><link rel="stylesheet" href="style.css">` +
			`<script src="wasm_exec.js" defer></script><script src="boot.js" defer></script><script src="app.js" defer></script></head><body></body></html>`,
		"ui/app.js":               `navigator.serviceWorker.register("sw.js");`,
		"ui/boot.js":              `WebAssembly.instantiateStreaming(fetch("parley.wasm"), new Go().importObject);`,
		"ui/style.css":            `body { background: url(icon.svg); }`,
		"ui/icon.svg":             `<svg xmlns="http://www.w3.org/2000/svg"></svg>`,
		"ui/icon-192.png":         "\x89PNG",
		"ui/sw.js":                "self.PARLEY_ASSETS = [];\nself.PARLEY_VERSION = \"\";\n",
		"ui/manifest.webmanifest": `{"name": "Parley", "icons": [{"src": "icon-192.png"}]}`,
		"dist/parley.wasm":        strings.Repeat("\x00asm", 100000),
		"dist/wasm_exec.js":       `globalThis.Go = class {};`,
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var webClientRE = regexp.MustCompile(`(?m)^web client: (https://\S+/) \(bundle sha256 ([0-9a-f]{64})\)$`)

// TestWebHash checks that parley web-hash, fetching a real parleyd's web
// client over loopback, computes the bundle hash parleyd printed, and
// fails with --expect of another hash.
func TestWebHash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts parleyd")
	}
	s, err := startServer(t.TempDir(), "--web-dir", webFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	m := webClientRE.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("parleyd printed no web client line:\n%s", s.stdout.String())
	}
	if m[1] != s.URL+"/" {
		t.Errorf("web client at %s, server at %s", m[1], s.URL)
	}
	want := m[2]

	webHash := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		err := run(context.Background(), append([]string{"web-hash", "--fingerprint", s.Fingerprint}, args...), e)
		code := exitCode(err, e)
		return out.String(), errb.String(), code
	}
	out, errs, code := webHash(s.URL)
	if code != 0 || out != want+"\n" {
		t.Fatalf("web-hash printed %q (exit %d, stderr %q), parleyd printed %s", out, code, errs, want)
	}
	if out, errs, code := webHash("--expect", strings.ToUpper(want), s.URL+"/"); code != 0 {
		t.Errorf("web-hash --expect (the right hash): exit %d, %q %q", code, out, errs)
	}
	other := strings.Repeat("0", 64)
	if _, errs, code := webHash("--expect", other, s.URL); code != exitFailure || !strings.Contains(errs, other) {
		t.Errorf("web-hash --expect (another hash): exit %d, stderr %q", code, errs)
	}
	// The headers reach the API's responses too.
	resp, err := s.httpClient().Get(s.URL + "/v1/info")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'") {
		t.Errorf("GET /v1/info: Content-Security-Policy %q", csp)
	}
}

// TestWebHashTampered checks that web-hash fails on a server whose
// asset's content does not match its hashed name, and that a changed
// page changes the hash.
func TestWebHashTampered(t *testing.T) {
	dir := webFixture(t)
	h, err := webclient.New(os.DirFS(filepath.Join(dir, "ui")), os.DirFS(filepath.Join(dir, "dist")))
	if err != nil {
		t.Fatal(err)
	}
	var tamper atomic.Value
	tamper.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := tamper.Load().(string); p == "" || !strings.Contains(r.URL.Path, p) {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		w.Write(append(rec.Body.Bytes(), ' '))
	}))
	defer srv.Close()
	webHash := func() (string, string, int) {
		var out, errb bytes.Buffer
		e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := exitCode(run(context.Background(), []string{"web-hash", "--expect", h.BundleHash(), srv.URL}, e), e)
		return out.String(), errb.String(), code
	}
	if out, errs, code := webHash(); code != 0 || out != h.BundleHash()+"\n" {
		t.Fatalf("untampered: exit %d, %q %q", code, out, errs)
	}
	tamper.Store("/assets/app.")
	if _, errs, code := webHash(); code != exitFailure || !strings.Contains(errs, "not the one in the name") {
		t.Errorf("tampered asset: exit %d, %q", code, errs)
	}
	tamper.Store("/sw.js")
	if _, errs, code := webHash(); code != exitFailure || !strings.Contains(errs, "not the expected") {
		t.Errorf("tampered sw.js: exit %d, %q", code, errs)
	}
}
