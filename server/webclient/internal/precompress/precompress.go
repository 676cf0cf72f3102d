// Package precompress makes the gzip and brotli variants of the web
// client's files and names them by what they decode to.
//
// parleyd serves each compressible file in the variant a browser
// accepts. The large built files (the WebAssembly program above all:
// 13 MB, about 1.2 s of CPU to compress both ways) are compressed once,
// when scripts/build-web builds them, into dist's Dir; parleyd takes a
// variant from there when its name is the SHA-256 of the file it serves,
// and compresses at start only what it does not find. A stale variant
// (of a program built again by hand) never matches, and so is never
// served.
package precompress

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"path"

	"github.com/andybalholm/brotli"
)

// Dir is the directory of dist that holds the precompressed variants.
const Dir = "precompressed"

// Compression levels. On a 13.7 MB WebAssembly program, gzip level 6
// makes 3.49 MB in 0.44 s (level 9: 3.46 MB in 1.1 s) and brotli quality
// 6 makes 2.88 MB in 0.72 s (quality 9: 2.81 MB in 2.1 s; 11 takes
// minutes).
const (
	GzipLevel     = 6
	BrotliQuality = 6
)

// An Encoding is a content coding parleyd serves.
type Encoding struct {
	// Name is the coding's name in Accept-Encoding and Content-Encoding.
	Name string
	// Ext is the extension of its precompressed files.
	Ext string
	// Compress returns data compressed with it.
	Compress func(data []byte) []byte
}

// Encodings are the codings parleyd serves, the least preferred first.
var Encodings = []Encoding{
	{Name: "gzip", Ext: ".gz", Compress: Gzip},
	{Name: "br", Ext: ".br", Compress: Brotli},
}

// Name returns the name of data's variants without their extension:
// the hex SHA-256 of data.
func Name(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Path returns the path under dist of the variant in enc of the data
// whose Name is name: Dir/name<enc.Ext>.
func Path(name string, enc Encoding) string { return path.Join(Dir, name+enc.Ext) }

// Worth reports whether a variant of c bytes is worth serving for a file
// of n bytes: it saves at least a twentieth.
func Worth(c, n int) bool { return c < n-n/20 }

// Compressible reports whether a file of that name is worth compressing
// (text and WebAssembly; images are compressed already).
func Compressible(name string) bool {
	switch path.Ext(name) {
	case ".html", ".js", ".mjs", ".css", ".wasm", ".webmanifest", ".json", ".svg", ".txt":
		return true
	}
	return false
}

// Gzip returns data compressed with gzip at GzipLevel.
func Gzip(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, GzipLevel) // the level is valid
	w.Write(data)                              // writes to a bytes.Buffer do not fail
	w.Close()
	return b.Bytes()
}

// Brotli returns data compressed with brotli at BrotliQuality.
func Brotli(data []byte) []byte {
	var b bytes.Buffer
	w := brotli.NewWriterLevel(&b, BrotliQuality)
	w.Write(data)
	w.Close()
	return b.Bytes()
}
