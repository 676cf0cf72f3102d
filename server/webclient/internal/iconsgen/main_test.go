package main

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestIconsCurrent checks that the checked-in icons are what draw makes
// (within one supersample per channel, for floating-point differences
// between machines). After a change of the mark: go generate ./server/webclient.
func TestIconsCurrent(t *testing.T) {
	for _, s := range sizes {
		path := filepath.Join("..", "..", "ui", fileName(s))
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		want := draw(s)
		if got.Bounds() != want.Bounds() {
			t.Fatalf("%s is %v, want %v", path, got.Bounds(), want.Bounds())
		}
		if bad := differing(got, want); bad > 0 {
			t.Errorf("%s differs from the drawing in %d pixels: go generate ./server/webclient", path, bad)
		}
	}
}

// differing counts the pixels whose channels differ by more than 16.
func differing(a image.Image, b *image.NRGBA) int {
	bad := 0
	r := b.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ar, ag, ab, aa := a.At(x, y).RGBA()
			br, bg, bb, ba := b.At(x, y).RGBA()
			for _, d := range [][2]uint32{{ar, br}, {ag, bg}, {ab, bb}, {aa, ba}} {
				if diff := int(d[0]>>8) - int(d[1]>>8); diff > 16 || diff < -16 {
					bad++
					break
				}
			}
		}
	}
	return bad
}
