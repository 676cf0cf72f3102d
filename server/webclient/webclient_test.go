package webclient

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/andybalholm/brotli"

	"github.com/parley-chat/parley/protocol/webbundle"
	"github.com/parley-chat/parley/server/webclient/internal/precompress"
)

// fixtureIndex is a page like the real one: it loads the loader, the
// boot script, a stylesheet, an app script, the manifest and an icon.
const fixtureIndex = `<!doctype html>
<html><head><meta charset="utf-8">
<link rel="manifest" href="manifest.webmanifest">
<link rel="icon" href="./icon.svg">
<link rel="stylesheet" href="style.css">
<script src="wasm_exec.js" defer></script>
<script src="/boot.js" defer></script>
<script src='app.js' defer></script>
</head><body><!-- see https://example.org/ --><main></main></body></html>
`

// fixture returns page files and built files like the real ones, with a
// WebAssembly program large enough to be worth compressing.
func fixture() (ui, dist fstest.MapFS) {
	ui = fstest.MapFS{
		"index.html":           {Data: []byte(fixtureIndex)},
		"app.js":               {Data: []byte(`// https://example.org/ is in a comment.\nnavigator.serviceWorker.register("sw.js"); document.title = "app.js is loaded";` + strings.Repeat("\n// padding", 100))},
		"style.css":            {Data: []byte(`body { background: url("icon.svg") no-repeat; } .x { background: url(icon-192.png); }` + strings.Repeat("\n/* padding */", 100))},
		"boot.js":              {Data: []byte(`const go = new Go(); WebAssembly.instantiateStreaming(fetch("parley.wasm"), go.importObject);`)},
		"sw.js":                {Data: []byte("self.PARLEY_ASSETS = [];\nself.PARLEY_VERSION = \"\";\nconst page = \"/\";\n")},
		"manifest.webmanifest": {Data: []byte(`{"name": "Parley", "start_url": "/", "icons": [{"src": "icon-192.png"}, {"src": "icon.svg"}]}`)},
		"icon.svg":             {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)},
		"icon-192.png":         {Data: []byte("\x89PNG fake")},
	}
	dist = fstest.MapFS{
		"parley.wasm":  {Data: bytes.Repeat([]byte("\x00asm wasm bytes "), 4096)},
		"wasm_exec.js": {Data: []byte(`"use strict"; globalThis.Go = class {};` + strings.Repeat("\n// padding", 100))},
		"README":       {Data: []byte("not served")},
	}
	return ui, dist
}

func newFixture(t *testing.T) *Handler {
	t.Helper()
	ui, dist := fixture()
	h, err := New(ui, dist)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(h http.Handler, path string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// servedPaths returns the URL path of every file of the bundle.
func servedPaths(h *Handler) []string {
	var out []string
	for _, f := range h.Files() {
		out = append(out, "/"+f.Name)
	}
	return out
}

func checkSecurityHeaders(t *testing.T, path string, w *httptest.ResponseRecorder) {
	t.Helper()
	for _, kv := range securityHeaders {
		if got := w.Header().Get(kv[0]); got != kv[1] {
			t.Errorf("%s: %s = %q, want %q", path, kv[0], got, kv[1])
		}
	}
}

func TestSecurityHeadersEverywhere(t *testing.T) {
	h := newFixture(t)
	paths := append(servedPaths(h), "/", "/nothing", "/assets/app.js", "/v1/info")
	for _, p := range paths {
		checkSecurityHeaders(t, p, get(h, p))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", w.Code)
	}
	checkSecurityHeaders(t, "POST /", w)
	ui, _ := fixture()
	nb, err := New(ui, fstest.MapFS{"README": {Data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/app.js"} {
		checkSecurityHeaders(t, "not built "+p, get(nb, p))
	}
}

func TestServedFiles(t *testing.T) {
	h := newFixture(t)
	if !h.Built() || len(h.BundleHash()) != 64 {
		t.Fatalf("Built() = %v, BundleHash() = %q", h.Built(), h.BundleHash())
	}
	want := map[string]bool{"/index.html": true, "/sw.js": true, "/manifest.webmanifest": true}
	hashed := regexp.MustCompile(`^/assets/[a-z0-9_-]+(-[0-9]+)?\.([0-9a-f]{16})\.[a-z]+$`)
	assets := 0
	for _, f := range h.Files() {
		p := "/" + f.Name
		w := get(h, p)
		if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), f.Data) {
			t.Errorf("GET %s = %d, body differs: %v", p, w.Code, !bytes.Equal(w.Body.Bytes(), f.Data))
		}
		cc := w.Header().Get("Cache-Control")
		if want[p] {
			if cc != "no-cache" {
				t.Errorf("%s: Cache-Control %q, want no-cache", p, cc)
			}
			continue
		}
		assets++
		m := hashed.FindStringSubmatch(p)
		if m == nil || m[2] != webbundle.AssetHash(f.Data) {
			t.Errorf("%s is not NAME.HASH.EXT of its content", p)
		}
		if cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", p, cc)
		}
	}
	if assets != 7 {
		t.Errorf("%d assets, want 7 (every fixture file but the page, sw.js and the manifest)", assets)
	}
	idx := get(h, "/")
	if idx.Header().Get(BundleHeader) != h.BundleHash() || idx.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("GET /: %s %q, Content-Type %q", BundleHeader, idx.Header().Get(BundleHeader), idx.Header().Get("Content-Type"))
	}
	for _, f := range h.Files() {
		if strings.HasSuffix(f.Name, ".wasm") {
			if ct := get(h, "/"+f.Name).Header().Get("Content-Type"); ct != "application/wasm" {
				t.Errorf("%s: Content-Type %q", f.Name, ct)
			}
		}
	}
	for _, p := range []string{"/README", "/assets/README", "/app.js", "/parley.wasm", "/index.htm", "/assets/"} {
		if w := get(h, p); w.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, w.Code)
		}
	}
	// Revalidation by ETag.
	if w := get(h, "/", "If-None-Match", idx.Header().Get("ETag")); w.Code != http.StatusNotModified {
		t.Errorf("GET / with its ETag = %d, want 304", w.Code)
	}
}

// TestReferences checks that the served page, scripts, styles and
// manifest refer only to files the handler serves under their hashed
// names, and to nothing of another origin.
func TestReferences(t *testing.T) {
	h := newFixture(t)
	served := map[string]bool{}
	for _, p := range servedPaths(h) {
		served[p] = true
	}
	index := get(h, "/").Body.String()
	for _, m := range htmlRef.FindAllStringSubmatch(index, -1) {
		ref := m[1] + m[2]
		if !served[ref] {
			t.Errorf("index.html refers to %q, which is not served", ref)
		}
		if ref != "/manifest.webmanifest" && !strings.HasPrefix(ref, "/assets/") {
			t.Errorf("index.html refers to %q, not a hashed asset", ref)
		}
	}
	if n := len(htmlRef.FindAllString(index, -1)); n != 6 {
		t.Errorf("index.html has %d references, want 6:\n%s", n, index)
	}
	var sw string
	for _, f := range h.Files() {
		for _, ref := range webbundle.Refs(f.Data) {
			if !served["/"+ref] {
				t.Errorf("%s refers to %s, which is not served", f.Name, ref)
			}
		}
		if f.Name == "sw.js" {
			sw = string(f.Data)
		}
		switch {
		case strings.HasSuffix(f.Name, ".html"), strings.HasSuffix(f.Name, ".js"), strings.HasSuffix(f.Name, ".css"), strings.HasSuffix(f.Name, ".webmanifest"):
			if u := foreignURL(string(f.Data)); u != "" {
				t.Errorf("%s holds a URL outside comments: %q", f.Name, u)
			}
		}
		if strings.HasPrefix(f.Name, "assets/boot.") && !strings.Contains(string(f.Data), `fetch("/assets/parley.`) {
			t.Errorf("boot.js does not fetch the hashed program: %s", f.Data)
		}
		if strings.HasPrefix(f.Name, "assets/app.") && !strings.Contains(string(f.Data), `register("/sw.js")`) {
			t.Errorf("app.js does not register /sw.js: %s", f.Data)
		}
	}
	for p := range served {
		if strings.HasPrefix(p, "/assets/") && !strings.Contains(sw, `"`+p+`"`) {
			t.Errorf("sw.js does not list %s", p)
		}
	}
	if strings.Contains(sw, `PARLEY_VERSION = ""`) {
		t.Error("sw.js has no cache version")
	}
	// The handler's own page passes the check that finds URLs.
	if foreignURL(`<a href="https://x.org/">`) == "" || foreignURL(`fetch("//cdn.x/y")`) == "" {
		t.Error("foreignURL misses URLs")
	}
}

// comments matches HTML, block and line comments (a line comment starts
// at a line's start or after white space).
var comments = regexp.MustCompile(`(?s)<!--.*?-->|/\*.*?\*/|(?m)(?:^|[ \t])//[^\n]*`)

// foreignURLs matches the start of an absolute URL (http:, https:, ws:,
// wss: as a word, so that "rows:" is none) or of a protocol-relative one
// in a string, attribute or url().
var foreignURLs = regexp.MustCompile(`(?i)\b(?:https?|wss?):|["'(=]\s*//`)

// foreignURL returns a URL of another origin in text outside comments,
// "" if there is none.
func foreignURL(text string) string {
	return foreignURLs.FindString(comments.ReplaceAllString(text, ""))
}

func TestCompressedVariants(t *testing.T) {
	h := newFixture(t)
	<-h.Compressed()
	for _, f := range h.Files() {
		p := "/" + f.Name
		for _, enc := range []string{"br", "gzip"} {
			w := get(h, p, "Accept-Encoding", enc)
			if !precompress.Compressible(f.Name) || len(f.Data) < 500 {
				if ce := w.Header().Get("Content-Encoding"); ce != "" && !precompress.Compressible(f.Name) {
					t.Errorf("%s: Content-Encoding %q for an incompressible file", p, ce)
				}
				continue
			}
			if ce := w.Header().Get("Content-Encoding"); ce != enc {
				t.Errorf("%s with Accept-Encoding %s: Content-Encoding %q", p, enc, ce)
				continue
			}
			if w.Header().Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s: Vary %q", p, w.Header().Get("Vary"))
			}
			var r io.Reader
			if enc == "br" {
				r = brotli.NewReader(w.Body)
			} else {
				gr, err := gzip.NewReader(w.Body)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				r = gr
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, f.Data) {
				t.Errorf("%s: %s variant does not decode to the file (err %v)", p, enc, err)
			}
			if w.Body.Len() >= len(f.Data) {
				t.Errorf("%s: %s variant of %d bytes for %d", p, enc, w.Body.Len(), len(f.Data))
			}
		}
	}
	wasm := "/" + h.Files()[0].Name
	for _, f := range h.Files() {
		if strings.HasSuffix(f.Name, ".wasm") {
			wasm = "/" + f.Name
		}
	}
	for ae, want := range map[string]string{
		"":                     "",
		"identity":             "",
		"gzip, deflate, br":    "br",
		"gzip, br;q=0":         "gzip",
		"br;q=0, gzip;q=0":     "",
		"*":                    "br",
		"*;q=0.5, br;q=0":      "gzip",
		"GZIP;q=0.1":           "gzip",
		"deflate, gzip;q=junk": "",
	} {
		if got := get(h, wasm, "Accept-Encoding", ae).Header().Get("Content-Encoding"); got != want {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", ae, got, want)
		}
	}
}

func TestBundleHashChanges(t *testing.T) {
	h := newFixture(t)
	if got := webbundle.Hash(h.Files()); got != h.BundleHash() {
		t.Fatalf("BundleHash %s, webbundle.Hash of the files %s", h.BundleHash(), got)
	}
	for _, change := range []struct {
		ui   bool
		name string
	}{{true, "index.html"}, {true, "style.css"}, {true, "icon-192.png"}, {false, "parley.wasm"}, {false, "wasm_exec.js"}, {true, "sw.js"}} {
		ui, dist := fixture()
		fsys := dist
		if change.ui {
			fsys = ui
		}
		fsys[change.name] = &fstest.MapFile{Data: append(bytes.Clone(fsys[change.name].Data), ' ')}
		h2, err := New(ui, dist)
		if err != nil {
			t.Fatal(err)
		}
		if h2.BundleHash() == h.BundleHash() {
			t.Errorf("changing %s leaves the bundle hash", change.name)
		}
	}
	h3 := newFixture(t)
	if h3.BundleHash() != h.BundleHash() {
		t.Error("the same files give another bundle hash")
	}
}

func TestNotBuilt(t *testing.T) {
	ui, _ := fixture()
	h, err := New(ui, fstest.MapFS{"README": {Data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	if h.Built() || h.BundleHash() != "" {
		t.Errorf("Built() = %v, BundleHash() = %q", h.Built(), h.BundleHash())
	}
	if w := get(h, "/"); w.Code != 200 || !strings.Contains(w.Body.String(), "scripts/build-web") {
		t.Errorf("GET / = %d %q", w.Code, w.Body.String())
	}
	if w := get(h, "/sw.js"); w.Code != 404 {
		t.Errorf("GET /sw.js = %d", w.Code)
	}
}

func TestAssembleErrors(t *testing.T) {
	for name, edit := range map[string]func(ui, dist fstest.MapFS){
		"no index":            func(ui, dist fstest.MapFS) { delete(ui, "index.html") },
		"no sw placeholder":   func(ui, dist fstest.MapFS) { ui["sw.js"] = &fstest.MapFile{Data: []byte("x")} },
		"file in ui and dist": func(ui, dist fstest.MapFS) { ui["parley.wasm"] = &fstest.MapFile{Data: []byte("x")} },
		"cyclic references": func(ui, dist fstest.MapFS) {
			ui["a.js"] = &fstest.MapFile{Data: []byte(`"b.js"`)}
			ui["b.js"] = &fstest.MapFile{Data: []byte(`"a.js"`)}
		},
		"placeholder repeated": func(ui, dist fstest.MapFS) {
			ui["sw.js"] = &fstest.MapFile{Data: []byte("self.PARLEY_ASSETS = [];self.PARLEY_ASSETS = [];self.PARLEY_VERSION = \"\";")}
		},
	} {
		ui, dist := fixture()
		edit(ui, dist)
		if _, err := New(ui, dist); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// Variants that dist holds under the name of what they decode to are
// served as they are, without compressing again; a variant under another
// name (of an older build) is not served, and the file is compressed at
// start instead; the variants are not files of the bundle.
func TestPrecompressed(t *testing.T) {
	ui, dist := fixture()
	wasm := dist[Wasm].Data
	// Not really compressed: that it is served byte for byte shows it was
	// taken rather than made.
	marked := bytes.Repeat([]byte("br"), 100)
	dist[precompress.Path(precompress.Name(wasm), precompress.Encodings[1])] = &fstest.MapFile{Data: marked}
	stale := precompress.Path(precompress.Name([]byte("an older program")), precompress.Encodings[0])
	dist[stale] = &fstest.MapFile{Data: bytes.Repeat([]byte("gz"), 100)}
	h, err := New(ui, dist)
	if err != nil {
		t.Fatal(err)
	}
	<-h.Compressed()
	var path string
	for _, f := range h.Files() {
		if strings.Contains(f.Name, precompress.Dir) {
			t.Errorf("a variant is served as a file: %s", f.Name)
		}
		if bytes.Equal(f.Data, wasm) {
			path = "/" + f.Name
		}
	}
	if w := get(h, path, "Accept-Encoding", "br"); !bytes.Equal(w.Body.Bytes(), marked) || w.Header().Get("Content-Encoding") != "br" {
		t.Errorf("brotli: %q (%s), not the precompressed variant", w.Header().Get("Content-Encoding"), w.Body.Bytes()[:min(8, w.Body.Len())])
	}
	w := get(h, path, "Accept-Encoding", "gzip")
	gr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatalf("gzip variant made at start: %v", err)
	}
	if got, err := io.ReadAll(gr); err != nil || !bytes.Equal(got, wasm) {
		t.Errorf("the gzip variant made at start does not decode to the program (%v)", err)
	}
}

// TestEmbedded serves the files embedded in this build, when the web
// client is built.
func TestEmbedded(t *testing.T) {
	ui, dist := Embedded()
	if _, err := fs.Stat(dist, Wasm); err != nil {
		t.Skip("the web client is not built (scripts/build-web)")
	}
	h, err := New(ui, dist)
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, p := range servedPaths(h) {
		served[p] = true
		w := get(h, p)
		checkSecurityHeaders(t, p, w)
		if w.Code != 200 {
			t.Errorf("GET %s = %d", p, w.Code)
		}
	}
	for _, f := range h.Files() {
		for _, ref := range webbundle.Refs(f.Data) {
			if !served["/"+ref] {
				t.Errorf("%s refers to %s, which is not served", f.Name, ref)
			}
		}
		if strings.HasSuffix(f.Name, ".html") || strings.HasSuffix(f.Name, ".css") || (strings.HasSuffix(f.Name, ".js") && !strings.Contains(f.Name, "wasm_exec")) {
			if u := foreignURL(string(f.Data)); u != "" {
				t.Errorf("%s holds a URL outside comments: %q", f.Name, u)
			}
		}
	}
	// scripts/build-web precompressed the built files: each compressible
	// one has its variants, and they decode to it.
	for _, name := range []string{Wasm, "wasm_exec.js"} {
		data, err := fs.ReadFile(dist, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, enc := range precompress.Encodings {
			c, err := fs.ReadFile(dist, precompress.Path(precompress.Name(data), enc))
			if err != nil {
				t.Errorf("%s: no %s variant: %v (scripts/build-web makes them)", name, enc.Name, err)
				continue
			}
			var r io.Reader = brotli.NewReader(bytes.NewReader(c))
			if enc.Name == "gzip" {
				if r, err = gzip.NewReader(bytes.NewReader(c)); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s: the %s variant does not decode to it (%v)", name, enc.Name, err)
			}
		}
	}
	index := get(h, "/").Body.String()
	for _, m := range htmlRef.FindAllStringSubmatch(index, -1) {
		if ref := m[1] + m[2]; !served[ref] {
			t.Errorf("index.html refers to %q, which is not served", ref)
		}
	}
}
