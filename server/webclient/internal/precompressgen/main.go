// Command precompressgen writes the gzip and brotli variants of the
// compressible files of the web client's dist directory into its
// precompress.Dir, replacing what was there, so that parleyd need not
// compress them at every start. scripts/build-web runs it after building
// the WebAssembly program.
//
// Usage: precompressgen DIST
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/parley-chat/parley/server/webclient/internal/precompress"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: precompressgen DIST")
		os.Exit(2)
	}
	n, err := run(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "precompressgen: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("web client: %d precompressed variants in %s\n", n, filepath.Join(os.Args[1], precompress.Dir))
}

// run writes the variants of dist's files into a new directory beside
// the old one and then puts it in its place; it returns how many it
// wrote.
func run(dist string) (int, error) {
	entries, err := os.ReadDir(dist)
	if err != nil {
		return 0, err
	}
	tmp := filepath.Join(dist, precompress.Dir+".tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return 0, err
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return 0, err
	}
	written := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || !precompress.Compressible(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dist, e.Name()))
		if err != nil {
			return 0, err
		}
		n, err := writeVariants(tmp, data)
		if err != nil {
			return 0, fmt.Errorf("%s: %v", e.Name(), err)
		}
		written += n
	}
	final := filepath.Join(dist, precompress.Dir)
	if err := os.RemoveAll(final); err != nil {
		return 0, err
	}
	return written, os.Rename(tmp, final)
}

// writeVariants compresses data in every encoding at once and writes the
// variants worth serving into dir; it returns how many it wrote.
func writeVariants(dir string, data []byte) (int, error) {
	out := make([][]byte, len(precompress.Encodings))
	var wg sync.WaitGroup
	for i, enc := range precompress.Encodings {
		wg.Go(func() { out[i] = enc.Compress(data) })
	}
	wg.Wait()
	n := 0
	name := precompress.Name(data)
	for i, enc := range precompress.Encodings {
		if !precompress.Worth(len(out[i]), len(data)) {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(precompress.Path(name, enc))), out[i], 0o644); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}
