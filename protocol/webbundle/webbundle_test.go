package webbundle

import (
	"slices"
	"testing"
)

func TestHash(t *testing.T) {
	a := []File{{"index.html", []byte("<p>")}, {"sw.js", []byte("x")}}
	b := []File{{"sw.js", []byte("x")}, {"index.html", []byte("<p>")}}
	if Hash(a) != Hash(b) {
		t.Error("hash depends on the order of the files")
	}
	// Moving a byte between name and content changes the hash.
	c := []File{{"index.html<", []byte("p>")}, {"sw.js", []byte("x")}}
	if Hash(a) == Hash(c) {
		t.Error("hash ignores the boundary between name and content")
	}
	if len(Hash(nil)) != 64 {
		t.Errorf("Hash(nil) = %q, want 64 hex digits", Hash(nil))
	}
}

func TestAssetName(t *testing.T) {
	h := AssetHash([]byte("x"))
	for in, want := range map[string]string{
		"app.js":          "app." + h + ".js",
		"icons/a.b.png":   "icons/a.b." + h + ".png",
		"LICENSE":         "LICENSE." + h,
		".hidden":         ".hidden." + h,
		"wasm_exec.js":    "wasm_exec." + h + ".js",
		"dir.x/parley.go": "dir.x/parley." + h + ".go",
	} {
		if got := AssetName(in, []byte("x")); got != want {
			t.Errorf("AssetName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRefs(t *testing.T) {
	h := AssetHash([]byte("x"))
	text := `<script src="/assets/app.` + h + `.js"></script><link href="assets/style.` + h + `.css">
	fetch("/assets/parley.` + h + `.wasm"); "/assets/app.` + h + `.js" "/assets/nohash.js" "/v1/assets/x"`
	got := Refs([]byte(text))
	want := []string{"assets/app." + h + ".js", "assets/style." + h + ".css", "assets/parley." + h + ".wasm"}
	if !slices.Equal(got, want) {
		t.Errorf("Refs = %q, want %q", got, want)
	}
}
