package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-chat/parley/server/webclient/internal/precompress"
)

// run writes both variants of each compressible file worth it, replaces
// what an earlier run left, and leaves other files alone.
func TestRun(t *testing.T) {
	dist := t.TempDir()
	wasm := bytes.Repeat([]byte("\x00asm program "), 1000)
	files := map[string][]byte{
		"parley.wasm": wasm,
		"README":      []byte("not compressed"),
		"icon.png":    bytes.Repeat([]byte("png"), 1000),
		"tiny.js":     []byte("x"),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dist, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := filepath.Join(dist, precompress.Dir, "old.br")
	if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := run(dist)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d variants written, want 2 (the program's)", n)
	}
	for _, enc := range precompress.Encodings {
		c, err := os.ReadFile(filepath.Join(dist, precompress.Path(precompress.Name(wasm), enc)))
		if err != nil || !bytes.Equal(c, enc.Compress(wasm)) {
			t.Errorf("%s variant of the program: %v", enc.Name, err)
		}
	}
	left, _ := os.ReadDir(filepath.Join(dist, precompress.Dir))
	if len(left) != 2 {
		t.Errorf("%d files in %s, want the 2 new variants", len(left), precompress.Dir)
	}
	if _, err := os.Stat(filepath.Join(dist, precompress.Dir+".tmp")); !os.IsNotExist(err) {
		t.Errorf("the temporary directory is left: %v", err)
	}
}
