// Package webbundle defines the bundle hash of Parley's web client: one
// SHA-256 over every file the server serves to run the client in a
// browser, as served. parleyd prints it at start and `parley web-hash`
// recomputes it from what a server actually sends, so that anyone can
// check that a server serves the code they expect (docs/web.md, "Trust
// model").
//
// The bundle is named by the paths the files are served at, without the
// leading slash: IndexName, ServiceWorker, Manifest, and the
// content-hashed assets under AssetsDir, whose names Refs finds in the
// others.
package webbundle

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"regexp"
	"slices"
	"strings"
)

// The files of the bundle that keep fixed names (every other file is an
// asset under AssetsDir).
const (
	IndexName     = "index.html"           // served at "/"
	ServiceWorker = "sw.js"                // served at "/sw.js"
	Manifest      = "manifest.webmanifest" // served at "/manifest.webmanifest"
)

// AssetsDir is the directory of the content-hashed assets: an asset
// NAME.EXT is served as /assets/NAME.HASH.EXT, HASH being the first
// AssetHashLen hex digits of the SHA-256 of its content.
const AssetsDir = "assets/"

// AssetHashLen is the number of hex digits of an asset name's hash.
const AssetHashLen = 16

// File is one file of the bundle.
type File struct {
	// Name is the path the file is served at, without the leading "/"
	// (IndexName for the page served at "/").
	Name string
	// Data is the file's content as served (before any Content-Encoding).
	Data []byte
}

// domain separates the bundle hash from every other use of SHA-256.
const domain = "parley web bundle v1\n"

// Hash returns the bundle hash of files as lowercase hex: SHA-256 over a
// domain string and then, for each file in the order of their names, the
// name's length (8 bytes, big-endian), the name, the content's length
// and the content. The order of files does not matter; a name given
// twice counts twice.
func Hash(files []File) string {
	sorted := slices.Clone(files)
	slices.SortStableFunc(sorted, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	h.Write([]byte(domain))
	var n [8]byte
	for _, f := range sorted {
		binary.BigEndian.PutUint64(n[:], uint64(len(f.Name)))
		h.Write(n[:])
		h.Write([]byte(f.Name))
		binary.BigEndian.PutUint64(n[:], uint64(len(f.Data)))
		h.Write(n[:])
		h.Write(f.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// AssetHash returns the hash an asset's served name carries: the first
// AssetHashLen hex digits of the SHA-256 of data.
func AssetHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:AssetHashLen]
}

// AssetName returns the served name (under AssetsDir, without it) of the
// asset name with content data: "app.js" becomes "app.HASH.js"; a name
// without an extension gets the hash appended ("LICENSE.HASH").
func AssetName(name string, data []byte) string {
	hash := AssetHash(data)
	dir, base := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		dir, base = name[:i+1], name[i+1:]
	}
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		return dir + base[:i] + "." + hash + base[i:]
	}
	return dir + base + "." + hash
}

// assetRef matches a reference to a content-hashed asset, absolute or
// relative to the root: /assets/NAME.HASH.EXT.
var assetRef = regexp.MustCompile(`/?assets/(?:[A-Za-z0-9_-][A-Za-z0-9._-]*/)*[A-Za-z0-9_-][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*\.[0-9a-f]{16}(?:\.[A-Za-z0-9]+)?`)

// Refs returns the bundle names (AssetsDir + served name) of the assets
// that text refers to, each once, in order of first appearance. Every
// occurrence counts, in code and comments alike; the server's files name
// no asset they do not serve.
func Refs(text []byte) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range assetRef.FindAll(text, -1) {
		name := strings.TrimPrefix(string(m), "/")
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}
