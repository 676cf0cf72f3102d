package codec

import (
	"bytes"
	"encoding/hex"
	"errors"
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
