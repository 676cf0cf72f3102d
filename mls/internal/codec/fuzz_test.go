package codec

import (
	"bytes"
	"testing"

	"github.com/parley-chat/parley/mls/internal/vectors"
)

// FuzzVarint checks that ReadVarint never panics, that every accepted
// prefix is minimal (re-encoding gives the same bytes), and that values
// round-trip. It is seeded from deserialization.json.
func FuzzVarint(f *testing.F) {
	var cases []struct {
		Header vectors.Hex `json:"vlbytes_header"`
	}
	vectors.Load(f, "deserialization.json", &cases)
	for _, c := range cases {
		f.Add([]byte(c.Header))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n, err := ReadVarint(data)
		if err != nil {
			return
		}
		enc, err := AppendVarint(nil, v)
		if err != nil {
			t.Fatalf("AppendVarint(%d) after ReadVarint accepted it: %v", v, err)
		}
		if !bytes.Equal(enc, data[:n]) {
			t.Fatalf("ReadVarint(%x) = %d, re-encodes as %x", data[:n], v, enc)
		}
	})
}

// FuzzOpaqueVector checks the vector and opaque readers on arbitrary
// input: no panic, an aliasing Reader accepts exactly what a copying one
// does, and an accepted input re-encodes to itself.
func FuzzOpaqueVector(f *testing.F) {
	f.Add([]byte{0x00, 0x00, 0x00})
	f.Add([]byte{0x12, 0x34, 0x02, 0xaa, 0xbb, 0x08, 0, 0, 0, 1, 0, 0, 0, 2, 0x01, 0x07})
	f.Fuzz(func(t *testing.T, data []byte) {
		var p, a pair
		err := Unmarshal(data, &p)
		if aerr := UnmarshalAliasing(bytes.Clone(data), &a); (aerr == nil) != (err == nil) {
			t.Fatalf("copying decode error %v, aliasing decode error %v", err, aerr)
		}
		if err != nil {
			return
		}
		if aenc, err := Marshal(&a); err != nil || !bytes.Equal(aenc, data) {
			t.Fatalf("aliasing decode→encode changed the input:\n%x\n%x", data, aenc)
		}
		enc, err := Marshal(&p)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("decode→encode changed the input:\n%x\n%x", data, enc)
		}
	})
}
