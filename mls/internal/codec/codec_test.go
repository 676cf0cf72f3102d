package codec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
)

func TestVarintRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 37, 63, 64, 255, 389, 16383, 16384, 1 << 20, MaxVarint} {
		enc, err := AppendVarint(nil, v)
		if err != nil {
			t.Fatalf("AppendVarint(%d): %v", v, err)
		}
		got, n, err := ReadVarint(enc)
		if err != nil || got != v || n != len(enc) || n != VarintLen(v) {
			t.Fatalf("ReadVarint(%x) = %d, %d, %v; want %d, %d", enc, got, n, err, v, len(enc))
		}
	}
	if _, err := AppendVarint(nil, MaxVarint+1); err == nil {
		t.Fatal("AppendVarint(2^30) succeeded")
	}
}

func TestVarintRejects(t *testing.T) {
	for _, tc := range []struct{ in, why string }{
		{"", "empty"},
		{"c0", "reserved prefix"},
		{"ff00000000000000", "reserved prefix"},
		{"4025", "non-minimal 2-byte"},
		{"403f", "non-minimal 2-byte"},
		{"80000001", "non-minimal 4-byte"},
		{"80003fff", "non-minimal 4-byte"},
		{"40", "truncated"},
		{"800000", "truncated"},
	} {
		in, _ := hex.DecodeString(tc.in)
		if _, _, err := ReadVarint(in); err == nil {
			t.Errorf("ReadVarint(%s) accepted %s input", tc.in, tc.why)
		}
	}
}

type pair struct {
	a uint16
	b []byte
	c []uint32
	d *uint8
}

func (p *pair) EncodeMLS(b *Builder) {
	b.AddUint16(p.a)
	b.AddOpaque(p.b)
	b.AddVector(func(b *Builder) {
		for _, v := range p.c {
			b.AddUint32(v)
		}
	})
	b.AddOptional(p.d != nil, func(b *Builder) { b.AddUint8(*p.d) })
}

func (p *pair) DecodeMLS(r *Reader) {
	p.a = r.Uint16()
	p.b = r.Opaque()
	r.VectorFunc(func(r *Reader) { p.c = append(p.c, r.Uint32()) })
	if r.Optional() {
		v := r.Uint8()
		p.d = &v
	}
}

func TestStructRoundTrip(t *testing.T) {
	seven := uint8(7)
	big := bytes.Repeat([]byte{0xaa}, 70)
	in := &pair{a: 0x1234, b: big, c: []uint32{1, 2, 3}, d: &seven}
	enc, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out pair
	if err := Unmarshal(enc, &out); err != nil {
		t.Fatal(err)
	}
	re, _ := Marshal(&out)
	if !bytes.Equal(enc, re) {
		t.Fatalf("re-encoding differs:\n%x\n%x", enc, re)
	}
	if err := Unmarshal(append(enc, 0), &out); err == nil {
		t.Fatal("trailing byte accepted")
	}
	for i := range enc {
		var p pair
		if err := Unmarshal(enc[:i], &p); err == nil {
			t.Fatalf("truncation at %d accepted", i)
		}
	}
}

func TestReaderRejects(t *testing.T) {
	for _, tc := range []struct{ in, why string }{
		{"0005aabb", "opaque length beyond input"},
		{"000000", "vector element truncated"},
		{"0000000002", "optional presence octet 2"},
		{"0000400100", "non-minimal vector length"},
	} {
		in, _ := hex.DecodeString(tc.in)
		var p pair
		if err := Unmarshal(in, &p); err == nil {
			t.Errorf("%s: accepted %s", tc.in, tc.why)
		}
	}
	r := NewReader(nil)
	r.Uint32()
	if !errors.Is(r.Err(), ErrTruncated) {
		t.Fatalf("Uint32 on empty input: %v, want ErrTruncated", r.Err())
	}
}

// TestAliasingReader checks that an aliasing Reader decodes what a copying
// one does, that its byte slices alias the input with their capacity
// clipped, and that a copying Reader's never do.
func TestAliasingReader(t *testing.T) {
	seven := uint8(7)
	enc, err := Marshal(&pair{a: 1, b: []byte("abc"), c: []uint32{4, 5}, d: &seven})
	if err != nil {
		t.Fatal(err)
	}
	var cp, al pair
	if err := Unmarshal(enc, &cp); err != nil {
		t.Fatal(err)
	}
	if err := UnmarshalAliasing(enc, &al); err != nil {
		t.Fatal(err)
	}
	if re, _ := Marshal(&al); !bytes.Equal(re, enc) {
		t.Fatalf("aliasing decode re-encodes to %x, want %x", re, enc)
	}
	// enc: a (2 bytes), then b's varint length and bytes.
	if &al.b[0] != &enc[3] || cap(al.b) != len(al.b) {
		t.Errorf("aliased opaque: not a clipped subslice of the input (cap %d)", cap(al.b))
	}
	if &cp.b[0] == &enc[3] {
		t.Error("copying Reader returned a slice of the input")
	}
	_ = append(al.b, 'x') // must not overwrite the vector after b
	var again pair
	if err := Unmarshal(enc, &again); err != nil || !slices.Equal(again.c, []uint32{4, 5}) {
		t.Errorf("appending to an aliased slice changed the input: %v, %v", again.c, err)
	}

	// An empty opaque is non-nil either way.
	empty, _ := Marshal(&pair{b: []byte{}})
	for _, dec := range []func([]byte, Decoder) error{Unmarshal, UnmarshalAliasing} {
		var p pair
		if err := dec(empty, &p); err != nil || p.b == nil {
			t.Errorf("empty opaque decoded as %v, %v", p.b, err)
		}
	}
	r := NewAliasingReader(enc[:2])
	if f := r.Fixed(2); &f[0] != &enc[0] || cap(f) != 2 {
		t.Error("aliased Fixed is not a clipped subslice of the input")
	}
	for i := range enc {
		var p pair
		if err := UnmarshalAliasing(enc[:i], &p); err == nil {
			t.Fatalf("aliasing: truncation at %d accepted", i)
		}
	}
}

// TestVectorFuncNested checks vectors of vectors, sibling vectors (which
// reuse the lent sub-reader) and a read from the outer Reader inside an
// element (which must get a fresh one).
func TestVectorFuncNested(t *testing.T) {
	var b Builder
	b.AddVector(func(b *Builder) {
		for i := range 3 {
			b.AddVector(func(b *Builder) {
				for j := range i + 1 {
					b.AddUint8(uint8(10*i + j))
				}
			})
		}
	})
	b.AddVector(func(b *Builder) { b.AddUint8(99) })
	b.AddVector(func(b *Builder) { b.AddUint8(42) })
	enc, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Reader{NewReader(enc), NewAliasingReader(enc)} {
		var got [][]uint8
		r.VectorFunc(func(r *Reader) {
			var inner []uint8
			r.VectorFunc(func(r *Reader) { inner = append(inner, r.Uint8()) })
			got = append(got, inner)
		})
		var second, nested []uint8
		outer := r
		r.VectorFunc(func(r *Reader) {
			second = append(second, r.Uint8())
			// Misuse, but it must not corrupt the lent sub-reader.
			outer.VectorFunc(func(r *Reader) { nested = append(nested, r.Uint8()) })
		})
		if err := r.Finish(); err != nil {
			t.Fatal(err)
		}
		want := [][]uint8{{0}, {10, 11}, {20, 21, 22}}
		if len(got) != len(want) || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) || !slices.Equal(got[2], want[2]) {
			t.Errorf("nested vectors decoded as %v, want %v", got, want)
		}
		if !slices.Equal(second, []uint8{99}) || !slices.Equal(nested, []uint8{42}) {
			t.Errorf("sibling vectors decoded as %v and %v, want [99] and [42]", second, nested)
		}
	}
}

func TestBuilderReset(t *testing.T) {
	var b Builder
	b.AddVarint(MaxVarint + 1)
	if b.Err() == nil {
		t.Fatal("oversized varint accepted")
	}
	b.Reset()
	b.AddZeros(2)
	b.AddUint8(1)
	if got, err := b.Bytes(); err != nil || !bytes.Equal(got, []byte{0, 0, 1}) {
		t.Fatalf("after Reset: %x, %v", got, err)
	}
}
