// Command iconsgen draws the web client's PNG icons (icon-192.png and
// icon-512.png), the same mark as icon.svg: a white speech bubble with
// three dots on a rounded square of the theme colour. Run it with go
// generate in server/webclient; its test checks that the checked-in
// icons are what it draws.
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

// Sizes are the sizes of the PNG icons, in pixels.
var sizes = []int{192, 512}

// The mark's colours.
var (
	theme = color.RGBA{0x2d, 0x5b, 0xd7, 0xff}
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

// The mark in unit coordinates (icon.svg has them times 512).
const (
	cornerRadius       = 0.22
	bubbleX, bubbleY   = 0.5, 0.46
	bubbleRX, bubbleRY = 0.30, 0.24
	dotRadius          = 0.045
	dotSpacing         = 0.12
)

// tail is the bubble's tail, a triangle.
var tail = [3][2]float64{{0.30, 0.60}, {0.24, 0.80}, {0.46, 0.66}}

// samples is the supersampling per axis (anti-aliasing).
const samples = 4

// shade returns the colour of the point (x, y) of the unit square and
// whether it is inside the icon at all.
func shade(x, y float64) (color.RGBA, bool) {
	if !inRoundedSquare(x, y) {
		return color.RGBA{}, false
	}
	for i := -1; i <= 1; i++ {
		if math.Hypot(x-(bubbleX+float64(i)*dotSpacing), y-bubbleY) <= dotRadius {
			return theme, true
		}
	}
	dx, dy := (x-bubbleX)/bubbleRX, (y-bubbleY)/bubbleRY
	if dx*dx+dy*dy <= 1 || inTriangle(x, y, tail) {
		return white, true
	}
	return theme, true
}

func inRoundedSquare(x, y float64) bool {
	r := cornerRadius
	cx := math.Max(r, math.Min(1-r, x))
	cy := math.Max(r, math.Min(1-r, y))
	return math.Hypot(x-cx, y-cy) <= r
}

func inTriangle(x, y float64, t [3][2]float64) bool {
	sign := func(a, b [2]float64) float64 { return (x-b[0])*(a[1]-b[1]) - (a[0]-b[0])*(y-b[1]) }
	d1, d2, d3 := sign(t[0], t[1]), sign(t[1], t[2]), sign(t[2], t[0])
	neg := d1 < 0 || d2 < 0 || d3 < 0
	pos := d1 > 0 || d2 > 0 || d3 > 0
	return !(neg && pos)
}

// draw returns the icon of size×size pixels (transparent outside the
// rounded square).
func draw(size int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for py := range size {
		for px := range size {
			var r, g, b, n int
			for sy := range samples {
				for sx := range samples {
					x := (float64(px) + (float64(sx)+0.5)/samples) / float64(size)
					y := (float64(py) + (float64(sy)+0.5)/samples) / float64(size)
					if c, in := shade(x, y); in {
						r, g, b, n = r+int(c.R), g+int(c.G), b+int(c.B), n+1
					}
				}
			}
			if n > 0 {
				img.SetNRGBA(px, py, color.NRGBA{uint8(r / n), uint8(g / n), uint8(b / n), uint8(255 * n / (samples * samples))})
			}
		}
	}
	return img
}

// fileName returns the name of the icon of a size.
func fileName(size int) string { return fmt.Sprintf("icon-%d.png", size) }

func main() {
	dir := flag.String("o", ".", "write the icons into `DIR`")
	flag.Parse()
	for _, s := range sizes {
		if err := write(filepath.Join(*dir, fileName(s)), draw(s)); err != nil {
			fmt.Fprintf(os.Stderr, "iconsgen: %v\n", err)
			os.Exit(1)
		}
	}
}

func write(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("encode %s: %v", path, err)
	}
	return f.Close()
}
