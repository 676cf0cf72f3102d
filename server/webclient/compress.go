package webclient

import (
	"io/fs"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/parley-chat/parley/server/webclient/internal/precompress"
)

// variant returns where f's variant in the content coding enc is kept.
func (f *file) variant(enc string) *atomic.Pointer[[]byte] {
	if enc == "br" {
		return &f.brotli
	}
	return &f.gzip
}

// loadPrecompressed takes the variants of the files that dist holds
// under their content's name (precompress.Path).
func (h *Handler) loadPrecompressed(dist fs.FS) {
	for _, f := range h.bundle {
		if !f.compress {
			continue
		}
		name := precompress.Name(f.data)
		for _, enc := range precompress.Encodings {
			c, err := fs.ReadFile(dist, precompress.Path(name, enc))
			if err == nil && precompress.Worth(len(c), len(f.data)) {
				f.variant(enc.Name).Store(&c)
			}
		}
	}
}

// compressAll makes the variants that are missing, every gzip one and
// then every brotli one, publishing each as it is ready, and closes
// h.compressed. A variant that saves less than a twentieth of the size
// is dropped. (Compressing the 13 MB WebAssembly program both ways takes
// about 1.2 s of CPU; scripts/build-web does it once instead.)
func (h *Handler) compressAll() {
	defer close(h.compressed)
	for _, enc := range precompress.Encodings {
		for _, f := range h.bundle {
			v := f.variant(enc.Name)
			if !f.compress || v.Load() != nil {
				continue
			}
			if c := enc.Compress(f.data); precompress.Worth(len(c), len(f.data)) {
				v.Store(&c)
			}
		}
	}
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
