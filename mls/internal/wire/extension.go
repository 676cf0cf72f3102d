package wire

import (
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
)

// ExtensionType identifies an extension (RFC 9420 §13, "MLS Extension
// Types" registry). Values not listed here are legal and preserved.
type ExtensionType uint16

// The extension types of RFC 9420 §17.3.
const (
	ExtensionApplicationID        ExtensionType = 0x0001
	ExtensionRatchetTree          ExtensionType = 0x0002
	ExtensionRequiredCapabilities ExtensionType = 0x0003
	ExtensionExternalPub          ExtensionType = 0x0004
	ExtensionExternalSenders      ExtensionType = 0x0005
)

// IsGREASE reports whether v is one of the GREASE values of RFC 9420 §13.5
// (0x0A0A, 0x1A1A, ..., 0xEAEA), which may appear in any uint16 registry.
func IsGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>12 == (v>>4)&0x0f && v>>12 <= 0x0e
}

// Extension is one extension entry (RFC 9420 §7.2): a type and its opaque
// data. Data of unknown types is carried verbatim.
type Extension struct {
	Type ExtensionType
	Data []byte
}

// EncodeMLS appends the Extension's encoding.
func (e *Extension) EncodeMLS(b *codec.Builder) {
	b.AddUint16(uint16(e.Type))
	b.AddOpaque(e.Data)
}

// DecodeMLS reads an Extension.
func (e *Extension) DecodeMLS(r *codec.Reader) {
	e.Type = ExtensionType(r.Uint16())
	e.Data = r.Opaque()
}

// Extensions is an Extension extensions<V> list, in wire order. Decoding
// does not reject duplicate types; that is a semantic check for callers.
type Extensions []Extension

// Find returns a pointer to the first extension of type t, or nil.
func (es Extensions) Find(t ExtensionType) *Extension {
	for i := range es {
		if es[i].Type == t {
			return &es[i]
		}
	}
	return nil
}

// EncodeMLS appends the list as a vector.
func (es Extensions) EncodeMLS(b *codec.Builder) {
	b.AddVector(func(b *codec.Builder) {
		for i := range es {
			es[i].EncodeMLS(b)
		}
	})
}

// DecodeMLS reads a vector of extensions. An empty vector decodes as a
// non-nil empty list.
func (es *Extensions) DecodeMLS(r *codec.Reader) {
	out := Extensions{}
	r.VectorFunc(func(r *codec.Reader) {
		var e Extension
		e.DecodeMLS(r)
		out = append(out, e)
	})
	*es = out
}

// encodeUint16s appends a vector of uint16 values.
func encodeUint16s[T ~uint16](b *codec.Builder, vs []T) {
	b.AddVector(func(b *codec.Builder) {
		for _, v := range vs {
			b.AddUint16(uint16(v))
		}
	})
}

// decodeUint16s reads a vector of uint16 values; an odd-length vector is
// an error. The result is allocated once, at the vector's size.
func decodeUint16s[T ~uint16](r *codec.Reader) []T {
	var out []T
	r.VectorFunc(func(r *codec.Reader) {
		if out == nil {
			// The first element sees the whole vector.
			out = make([]T, 0, (r.Remaining()+1)/2)
		}
		out = append(out, T(r.Uint16()))
	})
	if out == nil {
		out = []T{}
	}
	return out
}

// typeName returns the unqualified type name of v for error messages.
func typeName(v any) string {
	s := fmt.Sprintf("%T", v)
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return s[i+1:]
		}
	}
	return s
}
