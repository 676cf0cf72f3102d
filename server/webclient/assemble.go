package webclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/parley-chat/parley/protocol/webbundle"
	"github.com/parley-chat/parley/server/webclient/internal/precompress"
)

// Cache-Control values.
const (
	cacheImmutable   = "public, max-age=31536000, immutable"
	cacheRevalidate  = "no-cache"
	cacheVersionSize = 16 // hex digits of the service worker's cache version
)

// Placeholders of sw.js that assemble fills in; both must be present.
const (
	swAssetsPlaceholder  = "self.PARLEY_ASSETS = [];"
	swVersionPlaceholder = `self.PARLEY_VERSION = "";`
)

// assemble turns the source files (by path) into the served files:
// every file but the page, sw.js and the manifest becomes an asset under
// a content-hashed name, references between files are rewritten to the
// served names (rewrite), and sw.js gets the asset list and the cache
// version.
func assemble(src map[string][]byte) ([]*file, error) {
	for _, n := range []string{webbundle.IndexName, webbundle.ServiceWorker} {
		if _, ok := src[n]; !ok {
			return nil, fmt.Errorf("webclient: no %s in ui", n)
		}
	}
	fixed := map[string]bool{webbundle.IndexName: true, webbundle.ServiceWorker: true, webbundle.Manifest: true}
	// served maps a source name to the URL path it is served at, once
	// known; the page is never referred to by name.
	served := map[string]string{webbundle.ServiceWorker: "/" + webbundle.ServiceWorker, webbundle.Manifest: "/" + webbundle.Manifest}
	var pending []string
	for n := range src {
		if !fixed[n] {
			pending = append(pending, n)
		}
	}
	sort.Strings(pending)
	var out []*file
	// An asset's name hashes its content after its own references are
	// rewritten, so the assets it refers to are named first.
	for len(pending) > 0 {
		var next []string
		for _, n := range pending {
			data, ok := rewrite(n, src[n], src, served)
			if !ok {
				next = append(next, n)
				continue
			}
			name := webbundle.AssetsDir + webbundle.AssetName(n, data)
			served[n] = "/" + name
			out = append(out, newFile(name, data, cacheImmutable))
		}
		if len(next) == len(pending) {
			return nil, fmt.Errorf("webclient: the files %s refer to each other in a cycle", strings.Join(next, ", "))
		}
		pending = next
	}
	if m, ok := src[webbundle.Manifest]; ok {
		data, _ := rewrite(webbundle.Manifest, m, src, served)
		out = append(out, newFile(webbundle.Manifest, data, cacheRevalidate))
	}
	index, _ := rewrite(webbundle.IndexName, src[webbundle.IndexName], src, served)
	out = append(out, newFile(webbundle.IndexName, index, cacheRevalidate))

	sw, _ := rewrite(webbundle.ServiceWorker, src[webbundle.ServiceWorker], src, served)
	sw, err := fillServiceWorker(sw, out)
	if err != nil {
		return nil, err
	}
	return append(out, newFile(webbundle.ServiceWorker, sw, cacheRevalidate)), nil
}

// fillServiceWorker puts the asset list and the cache version (a hash of
// every other file) into sw.js.
func fillServiceWorker(sw []byte, others []*file) ([]byte, error) {
	var assets []string
	for _, f := range others {
		if strings.HasPrefix(f.name, webbundle.AssetsDir) {
			assets = append(assets, "/"+f.name)
		}
	}
	sort.Strings(assets)
	list, _ := json.Marshal(assets)
	version := webbundle.Hash(bundleFiles(others))[:cacheVersionSize]
	for _, p := range []struct{ placeholder, value string }{
		{swAssetsPlaceholder, "self.PARLEY_ASSETS = " + string(list) + ";"},
		{swVersionPlaceholder, `self.PARLEY_VERSION = "` + version + `";`},
	} {
		if bytes.Count(sw, []byte(p.placeholder)) != 1 {
			return nil, fmt.Errorf("webclient: %s must hold %q once", webbundle.ServiceWorker, p.placeholder)
		}
		sw = bytes.Replace(sw, []byte(p.placeholder), []byte(p.value), 1)
	}
	return sw, nil
}

func newFile(name string, data []byte, cache string) *file {
	return &file{
		name: name, data: data, cache: cache,
		ctype:    contentType(name),
		etag:     `"` + webbundle.AssetHash(data) + `"`,
		compress: precompress.Compressible(name),
	}
}

// References to other files, by the kind of file that holds them. In
// each pattern the submatch "ref" is the referenced name, possibly with
// a leading "./" or "/".
var (
	// Attribute values in HTML: src="app.js", href='style.css'.
	htmlRef = regexp.MustCompile(`\b(?:src|href)\s*=\s*(?:"(?P<ref>[^"<>]*)"|'(?P<ref>[^'<>]*)')`)
	// String literals in JavaScript and JSON: "parley.wasm", 'sw.js'.
	jsRef = regexp.MustCompile(`"(?P<ref>[A-Za-z0-9_./-]+)"|'(?P<ref>[A-Za-z0-9_./-]+)'`)
	// url() in CSS: url(icon.svg), url("icon.svg").
	cssRef = regexp.MustCompile(`url\(\s*(?:"(?P<ref>[^"]*)"|'(?P<ref>[^']*)'|(?P<ref>[^"')\s]+))\s*\)`)
)

// refPattern returns the pattern of references in a file of this name,
// nil for a file that holds none.
func refPattern(name string) *regexp.Regexp {
	switch path.Ext(name) {
	case ".html":
		return htmlRef
	case ".js", ".mjs", ".json", ".webmanifest":
		return jsRef
	case ".css":
		return cssRef
	}
	return nil
}

// rewrite replaces the references in data (the content of the file name)
// to the files of src by the URL paths of served. It reports false when
// data refers to a file whose path is not known yet. References to
// anything else are left alone.
func rewrite(name string, data []byte, src map[string][]byte, served map[string]string) ([]byte, bool) {
	re := refPattern(name)
	if re == nil {
		return data, true
	}
	ok := true
	out := replaceSubmatches(re, data, func(ref string) (string, bool) {
		target := strings.TrimPrefix(strings.TrimPrefix(ref, "./"), "/")
		if _, exists := src[target]; !exists || target == name || target == webbundle.IndexName {
			return "", false
		}
		p, known := served[target]
		if !known {
			ok = false
			return "", false
		}
		return p, true
	})
	return out, ok
}

// replaceSubmatches replaces, in every match of re in data, the
// non-empty submatch named "ref" by what repl returns for it when repl
// reports true.
func replaceSubmatches(re *regexp.Regexp, data []byte, repl func(string) (string, bool)) []byte {
	var out bytes.Buffer
	last := 0
	for _, m := range re.FindAllSubmatchIndex(data, -1) {
		for i, n := range re.SubexpNames() {
			start, end := m[2*i], m[2*i+1]
			if n != "ref" || start < 0 {
				continue
			}
			if r, ok := repl(string(data[start:end])); ok {
				out.Write(data[last:start])
				out.WriteString(r)
				last = end
			}
		}
	}
	out.Write(data[last:])
	return out.Bytes()
}
