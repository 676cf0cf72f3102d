// Package webclient serves Parley's web client: the page files of ui/
// (checked in) and the WebAssembly program and its loader of dist/ (built
// by scripts/build-web, not in git), embedded in parleyd.
//
// Every file but the page (index.html), the service worker (sw.js) and
// the web app manifest is served under a content-hashed name,
// /assets/NAME.HASH.EXT, cached for a year as immutable; references to
// them in the other files are rewritten once, when the Handler is made.
// The page, sw.js and the manifest are revalidated on every load. The
// bundle hash (package protocol/webbundle) names everything served, so a
// user can check what a server sends against what a build produced
// (`parley web-hash`, docs/web.md).
//
// Every response carries a strict Content-Security-Policy and the other
// headers of SetSecurityHeaders.
package webclient

//go:generate go run ./internal/iconsgen -o ui

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/parley-chat/parley/protocol/webbundle"
	"github.com/parley-chat/parley/server/webclient/internal/precompress"
)

//go:embed ui dist
var embedded embed.FS

// Embedded returns the page files (ui/) and the built files (dist/)
// embedded in the binary.
func Embedded() (ui, dist fs.FS) {
	u, _ := fs.Sub(embedded, "ui")
	d, _ := fs.Sub(embedded, "dist")
	return u, d
}

// Wasm is the WebAssembly program's name in dist; without it the web
// client counts as not built.
const Wasm = "parley.wasm"

// distReadme is dist's placeholder in git; it is not served.
const distReadme = "README"

// BundleHeader is the response header of the page ("/") that carries the
// bundle hash.
const BundleHeader = "X-Parley-Bundle"

// Handler serves the web client. It is safe for concurrent use and
// immutable once made, but for the compressed variants of its files,
// which it adds in the background (Compressed).
type Handler struct {
	built      bool
	files      map[string]*file // by URL path
	bundle     []*file          // every file, in the order of their names
	hash       string
	compressed chan struct{}
}

// file is one served file.
type file struct {
	name  string // the bundle name (webbundle.File.Name)
	data  []byte
	ctype string
	cache string
	etag  string // the identity variant's entity tag, quoted
	// compress says whether compressed variants are worth making.
	compress bool
	gzip     atomic.Pointer[[]byte]
	brotli   atomic.Pointer[[]byte]
}

// New returns a Handler for the page files ui and the built files dist.
// When dist holds no Wasm it returns a Handler that serves only a page at
// "/" saying the web client is not built (Built reports false). It
// takes the compressed variants that scripts/build-web made from dist
// (package precompress) and makes the others in the background; until a
// variant is ready the file is served without it.
func New(ui, dist fs.FS) (*Handler, error) {
	src, err := readSources(ui, dist)
	if err != nil {
		return nil, err
	}
	if _, ok := src[Wasm]; !ok {
		return NotBuilt(), nil
	}
	files, err := assemble(src)
	if err != nil {
		return nil, err
	}
	h := &Handler{built: true, files: map[string]*file{}, compressed: make(chan struct{})}
	for _, f := range files {
		h.bundle = append(h.bundle, f)
		h.files["/"+f.name] = f
	}
	sort.Slice(h.bundle, func(i, j int) bool { return h.bundle[i].name < h.bundle[j].name })
	h.files["/"] = h.files["/"+webbundle.IndexName]
	h.hash = webbundle.Hash(bundleFiles(h.bundle))
	h.loadPrecompressed(dist)
	go h.compressAll()
	return h, nil
}

// NotBuilt returns a Handler that serves only a page at "/" saying the
// web client is not built.
func NotBuilt() *Handler {
	c := make(chan struct{})
	close(c)
	return &Handler{compressed: c}
}

// Built reports whether the web client is built (dist held the Wasm).
func (h *Handler) Built() bool { return h.built }

// BundleHash returns the bundle hash (webbundle.Hash) of every file the
// Handler serves, in hex; "" when the web client is not built.
func (h *Handler) BundleHash() string { return h.hash }

// Compressed returns a channel closed once every compressed variant is
// ready.
func (h *Handler) Compressed() <-chan struct{} { return h.compressed }

// Files returns the bundle: every served file by its bundle name.
func (h *Handler) Files() []webbundle.File { return bundleFiles(h.bundle) }

func bundleFiles(fs []*file) []webbundle.File {
	out := make([]webbundle.File, len(fs))
	for i, f := range fs {
		out[i] = webbundle.File{Name: f.name, Data: f.data}
	}
	return out
}

// readSources reads every file of ui and dist (but dist's README) by its
// path; a name present in both is an error.
func readSources(ui, dist fs.FS) (map[string][]byte, error) {
	src := map[string][]byte{}
	for _, d := range []struct {
		name string
		fsys fs.FS
	}{{"ui", ui}, {"dist", dist}} {
		err := fs.WalkDir(d.fsys, ".", func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.name == "dist" && e.IsDir() && strings.HasPrefix(p, precompress.Dir) {
				return fs.SkipDir // the variants, not files of their own
			}
			if e.IsDir() || (d.name == "dist" && p == distReadme) {
				return nil
			}
			b, err := fs.ReadFile(d.fsys, p)
			if err != nil {
				return err
			}
			if _, dup := src[p]; dup {
				return fmt.Errorf("%s is both in ui and in dist", p)
			}
			src[p] = b
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("webclient: read %s: %v", d.name, err)
		}
	}
	return src, nil
}

// ServeHTTP serves GET and HEAD of "/" (the page), /index.html, /sw.js,
// the manifest and the assets; anything else is not found.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SetSecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		plain(w, http.StatusMethodNotAllowed, "method not allowed\n")
		return
	}
	if !h.built {
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			w.Write([]byte(notBuiltPage))
			return
		}
		plain(w, http.StatusNotFound, "not found\n")
		return
	}
	f := h.files[r.URL.Path]
	if f == nil {
		plain(w, http.StatusNotFound, "not found\n")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("Cache-Control", f.cache)
	if f.name == webbundle.IndexName {
		hd.Set(BundleHeader, h.hash)
	}
	body, etag := f.data, f.etag
	if f.compress {
		hd.Add("Vary", "Accept-Encoding")
		ae := r.Header.Get("Accept-Encoding")
		if b := f.brotli.Load(); b != nil && accepts(ae, "br") {
			body, etag = *b, strings.TrimSuffix(f.etag, `"`)+`-br"`
			hd.Set("Content-Encoding", "br")
		} else if b := f.gzip.Load(); b != nil && accepts(ae, "gzip") {
			body, etag = *b, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			hd.Set("Content-Encoding", "gzip")
		}
	}
	hd.Set("ETag", etag)
	http.ServeContent(w, r, "", zeroTime, bytes.NewReader(body))
}

// plain writes a short text response.
func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(msg))
}

// notBuiltPage is served at "/" when the web client is not built.
const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parley</title></head>
<body><h1>Parley</h1><p>This server's web client is not built. Its administrator builds it with
<code>scripts/build-web</code> and then builds or restarts parleyd. The API and the command-line client work without it.</p></body></html>
`

// contentType returns the Content-Type of a file by its name.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".wasm":
		return "application/wasm"
	case ".webmanifest":
		return "application/manifest+json"
	case ".json":
		return "application/json"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".woff2":
		return "font/woff2"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}
