package webclient

import (
	"bytes"
	"compress/gzip"
	"strconv"
	"strings"

	"github.com/andybalholm/brotli"
)

// Compression levels. On a 13.7 MB WebAssembly program, gzip level 6
// makes 3.49 MB in 0.44 s (level 9: 3.46 MB in 1.1 s) and brotli quality
// 6 makes 2.88 MB in 0.72 s (quality 9: 2.81 MB in 2.1 s; 11 takes
// minutes); the variants are made in the background after the start.
const (
	gzipLevel     = 6
	brotliQuality = 6
)

// compressAll makes the gzip variants of every compressible file, then
// the brotli ones, publishing each as it is ready, and closes
// h.compressed. A variant that saves less than a twentieth of the size is
// dropped.
func (h *Handler) compressAll() {
	defer close(h.compressed)
	for _, enc := range []struct {
		compress func([]byte) []byte
		store    func(*file, *[]byte)
	}{
		{gzipBytes, func(f *file, c *[]byte) { f.gzip.Store(c) }},
		{brotliBytes, func(f *file, c *[]byte) { f.brotli.Store(c) }},
	} {
		for _, f := range h.bundle {
			if !f.compress {
				continue
			}
			if c := enc.compress(f.data); len(c) < len(f.data)-len(f.data)/20 {
				enc.store(f, &c)
			}
		}
	}
}

func gzipBytes(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzipLevel)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func brotliBytes(data []byte) []byte {
	var b bytes.Buffer
	w := brotli.NewWriterLevel(&b, brotliQuality)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// accepts reports whether an Accept-Encoding header value allows the
// content coding enc: named with a non-zero quality, or covered by "*"
// with a non-zero quality and not named.
func accepts(header, enc string) bool {
	star := false
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		ok := true
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || q <= 0 {
					ok = false
				}
			}
		}
		switch coding {
		case enc:
			return ok
		case "*":
			star = ok
		}
	}
	return star
}
