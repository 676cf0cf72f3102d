// Package codec implements the TLS presentation language as profiled by
// RFC 9420 §2.1: fixed-width big-endian integers, opaque vectors and
// struct vectors with the variable-length integer prefix of §2.1.2, and
// optional<T> values.
//
// Decoding is bounded: a Reader never indexes beyond its input, rejects
// non-minimal length prefixes, the reserved 0b11 prefix, lengths beyond the
// input, and (via Finish) trailing bytes. The first error is sticky; every
// later read returns zero values, so decoders can be written straight-line
// and check the error once at the end.
//
// Encoding is done with a Builder that likewise keeps the first error.
// The package knows nothing of cryptography or of MLS structures.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxVarint is the largest length a variable-length integer can carry
// (RFC 9420 §2.1.2: 30 bits).
const MaxVarint = 1<<30 - 1

// ErrTruncated reports that the input ended before a value was complete.
var ErrTruncated = errors.New("codec: unexpected end of input")

// Encoder is implemented by values with an RFC 9420 wire encoding.
type Encoder interface {
	// EncodeMLS appends the value's encoding to b.
	EncodeMLS(b *Builder)
}

// Decoder is implemented by values that can be decoded from their RFC 9420
// wire encoding.
type Decoder interface {
	// DecodeMLS reads the value from r; errors are recorded in r.
	DecodeMLS(r *Reader)
}

// Marshal returns the encoding of v.
func Marshal(v Encoder) ([]byte, error) {
	var b Builder
	v.EncodeMLS(&b)
	return b.Bytes()
}

// Unmarshal decodes data into v and requires that every byte is consumed.
// The byte slices of v are copies: data may be reused afterwards.
func Unmarshal(data []byte, v Decoder) error {
	r := NewReader(data)
	v.DecodeMLS(r)
	return r.Finish()
}

// UnmarshalAliasing is Unmarshal with a Reader from NewAliasingReader: the
// byte slices of v alias data instead of copying it. The caller hands data
// over to v: it must not modify data while v, or anything built from v's
// slices, is in use.
func UnmarshalAliasing(data []byte, v Decoder) error {
	r := NewAliasingReader(data)
	v.DecodeMLS(r)
	return r.Finish()
}

// ReadVarint decodes one variable-length integer from the front of data and
// returns it with the number of bytes it occupied.
func ReadVarint(data []byte) (v uint64, n int, err error) {
	if len(data) == 0 {
		return 0, 0, fmt.Errorf("codec: read varint: %w", ErrTruncated)
	}
	prefix := data[0] >> 6
	if prefix == 3 {
		return 0, 0, fmt.Errorf("codec: read varint: reserved prefix 0b11 in first byte %#02x", data[0])
	}
	n = 1 << prefix
	if len(data) < n {
		return 0, 0, fmt.Errorf("codec: read varint: %w (need %d bytes, have %d)", ErrTruncated, n, len(data))
	}
	v = uint64(data[0] & 0x3f)
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(data[i])
	}
	if n > 1 && v < 1<<(8*(n/2)-2) {
		return 0, 0, fmt.Errorf("codec: read varint: value %d not minimally encoded in %d bytes", v, n)
	}
	return v, n, nil
}

// AppendVarint appends the minimal variable-length encoding of v. It fails
// if v exceeds MaxVarint.
func AppendVarint(buf []byte, v uint64) ([]byte, error) {
	switch {
	case v < 1<<6:
		return append(buf, byte(v)), nil
	case v < 1<<14:
		return append(buf, byte(v>>8)|0x40, byte(v)), nil
	case v < 1<<30:
		return append(buf, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v)), nil
	default:
		return buf, fmt.Errorf("codec: write varint: length %d exceeds %d", v, MaxVarint)
	}
}

// VarintLen returns the number of bytes the encoding of v occupies
// (0 if v exceeds MaxVarint).
func VarintLen(v uint64) int {
	switch {
	case v < 1<<6:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<30:
		return 4
	default:
		return 0
	}
}

// Reader decodes values from a byte slice. The zero value is an empty
// reader. Byte slices a Reader from NewReader returns are copies: they
// never alias the input. Those of a Reader from NewAliasingReader alias it.
type Reader struct {
	data []byte
	// err points to the first error, if any: a pointer rather than an
	// interface keeps a Reader, which decoders allocate once per message,
	// within 48 bytes.
	err *error
	// sub is the Reader VectorFunc lends to its elem callback, kept for
	// the next vector read from r; subBusy while it is lent.
	sub            *Reader
	alias, subBusy bool
}

// NewReader returns a Reader over data whose byte slices are copies.
func NewReader(data []byte) *Reader { return &Reader{data: data} }

// NewAliasingReader returns a Reader over data whose Opaque and Fixed
// results are subslices of data, with their capacity clipped to their
// length so that appending to one cannot overwrite its neighbours: decoding
// copies no bytes. The caller must own data and must not modify it while
// any value decoded from it is in use.
func NewAliasingReader(data []byte) *Reader { return &Reader{data: data, alias: true} }

// Err returns the first error recorded, if any.
func (r *Reader) Err() error {
	if r.err == nil {
		return nil
	}
	return *r.err
}

// Fail records err unless an error is already recorded. Decoders call it
// to report semantic errors (an unknown enum value, say).
func (r *Reader) Fail(err error) {
	if r.err == nil && err != nil {
		r.err = &err
		r.data = nil
	}
}

// Failf records a formatted error, as Fail.
func (r *Reader) Failf(format string, args ...any) { r.Fail(fmt.Errorf(format, args...)) }

// Empty reports whether the input is used up or an error is recorded.
func (r *Reader) Empty() bool { return r.err != nil || len(r.data) == 0 }

// Remaining returns the number of unread bytes.
func (r *Reader) Remaining() int { return len(r.data) }

// Finish returns the recorded error, or an error if unread bytes remain.
func (r *Reader) Finish() error {
	if r.err != nil {
		return *r.err
	}
	if len(r.data) != 0 {
		return fmt.Errorf("codec: %d trailing bytes after value", len(r.data))
	}
	return nil
}

func (r *Reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.data) {
		r.Fail(fmt.Errorf("codec: read %s: %w (need %d bytes, have %d)", what, ErrTruncated, n, len(r.data)))
		return nil
	}
	out := r.data[:n:n]
	r.data = r.data[n:]
	return out
}

// Uint8 reads one byte.
func (r *Reader) Uint8() uint8 {
	b := r.take(1, "uint8")
	if b == nil {
		return 0
	}
	return b[0]
}

// Uint16 reads a big-endian uint16.
func (r *Reader) Uint16() uint16 {
	b := r.take(2, "uint16")
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

// Uint32 reads a big-endian uint32.
func (r *Reader) Uint32() uint32 {
	b := r.take(4, "uint32")
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// Uint64 reads a big-endian uint64.
func (r *Reader) Uint64() uint64 {
	b := r.take(8, "uint64")
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Varint reads a variable-length integer (RFC 9420 §2.1.2).
func (r *Reader) Varint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n, err := ReadVarint(r.data)
	if err != nil {
		r.Fail(err)
		return 0
	}
	r.data = r.data[n:]
	return v
}

// Fixed reads exactly n bytes (a fixed-size opaque field) and returns a
// copy (for an aliasing Reader, the bytes themselves).
func (r *Reader) Fixed(n int) []byte {
	b := r.take(n, "fixed-size field")
	if b == nil {
		return nil
	}
	if r.alias {
		return b
	}
	return append([]byte(nil), b...)
}

// Opaque reads opaque<V>: a varint length followed by that many bytes.
// It returns a copy (for an aliasing Reader, the bytes themselves),
// non-nil even when empty so that callers can tell a decoded empty value
// from an absent one.
func (r *Reader) Opaque() []byte {
	n := r.Varint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.data)) {
		r.Fail(fmt.Errorf("codec: read opaque: length %d exceeds remaining %d bytes", n, len(r.data)))
		return nil
	}
	b := r.take(int(n), "opaque")
	switch {
	case !r.alias:
		return append(make([]byte, 0, len(b)), b...)
	case b == nil:
		return []byte{}
	default:
		return b
	}
}

// vector reads the varint length of a vector<V> and returns its contents.
func (r *Reader) vector() []byte {
	n := r.Varint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.data)) {
		r.Fail(fmt.Errorf("codec: read vector: length %d exceeds remaining %d bytes", n, len(r.data)))
		return nil
	}
	return r.take(int(n), "vector")
}

// VectorFunc reads a vector<V> of elements: it calls elem once per element
// until the vector's bytes are used up. elem must consume at least one byte
// per call (or record an error); a call that consumes nothing is an error.
// Errors inside the vector are recorded in r. The Reader passed to elem is
// valid only during the call.
func (r *Reader) VectorFunc(elem func(*Reader)) {
	data := r.vector()
	if r.err != nil {
		return
	}
	// The sub-reader is reused from one vector to the next (decoding a
	// tree reads hundreds of thousands of vectors); a nested read from r
	// while it is lent gets a fresh one.
	var sub *Reader
	if r.subBusy {
		sub = &Reader{data: data, alias: r.alias}
	} else {
		if r.sub == nil {
			r.sub = new(Reader)
		}
		sub = r.sub
		*sub = Reader{data: data, alias: r.alias, sub: sub.sub}
		r.subBusy = true
	}
	for !sub.Empty() {
		before := len(sub.data)
		elem(sub)
		if sub.err == nil && len(sub.data) == before {
			sub.Fail(errors.New("codec: read vector: element consumed no bytes"))
		}
	}
	if sub == r.sub {
		r.subBusy = false
	}
	if sub.err != nil {
		r.Fail(*sub.err)
	}
}

// Optional reads the presence octet of optional<T> (RFC 9420 §2.1.3)
// and reports whether a value follows. Any octet other than 0 or 1 is an
// error.
func (r *Reader) Optional() bool {
	switch p := r.Uint8(); {
	case r.err != nil:
		return false
	case p == 0:
		return false
	case p == 1:
		return true
	default:
		r.Fail(fmt.Errorf("codec: read optional: presence octet %d is neither 0 nor 1", p))
		return false
	}
}

// Bool reads a one-octet boolean; any value other than 0 or 1 is an error.
func (r *Reader) Bool() bool {
	switch v := r.Uint8(); {
	case r.err != nil:
		return false
	case v <= 1:
		return v == 1
	default:
		r.Fail(fmt.Errorf("codec: read bool: octet %d is neither 0 nor 1", v))
		return false
	}
}

// Decode reads a nested value.
func (r *Reader) Decode(v Decoder) {
	if r.err == nil {
		v.DecodeMLS(r)
	}
}

// Builder encodes values into a growing byte slice. The zero value is
// ready to use. The first error is kept and returned by Bytes.
type Builder struct {
	buf []byte
	err error
}

// NewBuilder returns a Builder that appends to buf (which may be nil).
func NewBuilder(buf []byte) *Builder { return &Builder{buf: buf} }

// Reset empties b and clears its error, keeping its storage for reuse:
// slices returned by an earlier Bytes are overwritten by later writes.
func (b *Builder) Reset() {
	b.buf = b.buf[:0]
	b.err = nil
}

// Bytes returns the encoding built so far, or the first error.
func (b *Builder) Bytes() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	return b.buf, nil
}

// Err returns the first error recorded.
func (b *Builder) Err() error { return b.err }

// Fail records err unless an error is already recorded.
func (b *Builder) Fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// Len returns the number of bytes written so far.
func (b *Builder) Len() int { return len(b.buf) }

// AddUint8 appends one byte.
func (b *Builder) AddUint8(v uint8) { b.buf = append(b.buf, v) }

// AddUint16 appends a big-endian uint16.
func (b *Builder) AddUint16(v uint16) { b.buf = binary.BigEndian.AppendUint16(b.buf, v) }

// AddUint32 appends a big-endian uint32.
func (b *Builder) AddUint32(v uint32) { b.buf = binary.BigEndian.AppendUint32(b.buf, v) }

// AddUint64 appends a big-endian uint64.
func (b *Builder) AddUint64(v uint64) { b.buf = binary.BigEndian.AppendUint64(b.buf, v) }

// AddBool appends a one-octet boolean.
func (b *Builder) AddBool(v bool) {
	if v {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
}

// AddVarint appends a variable-length integer.
func (b *Builder) AddVarint(v uint64) {
	buf, err := AppendVarint(b.buf, v)
	if err != nil {
		b.Fail(err)
		return
	}
	b.buf = buf
}

// AddZeros appends n zero bytes: room for a header written in place later.
func (b *Builder) AddZeros(n int) { b.buf = append(b.buf, make([]byte, n)...) }

// AddRaw appends bytes with no length prefix (a fixed-size field).
func (b *Builder) AddRaw(v []byte) { b.buf = append(b.buf, v...) }

// AddOpaque appends opaque<V>: a varint length and the bytes.
func (b *Builder) AddOpaque(v []byte) {
	b.AddVarint(uint64(len(v)))
	b.buf = append(b.buf, v...)
}

// AddVector appends a vector<V> whose contents f writes: the contents are
// built in place and then prefixed with their minimal varint length.
func (b *Builder) AddVector(f func(*Builder)) {
	start := len(b.buf)
	f(b)
	n := len(b.buf) - start
	k := VarintLen(uint64(n))
	if k == 0 {
		b.Fail(fmt.Errorf("codec: write vector: length %d exceeds %d", n, MaxVarint))
		return
	}
	b.buf = append(b.buf, make([]byte, k)...)
	copy(b.buf[start+k:], b.buf[start:start+n])
	// The prefix fits in the k bytes just opened: write it in place.
	_, _ = AppendVarint(b.buf[start:start], uint64(n))
}

// AddOptional appends optional<T>: a presence octet and, if present, the
// value that f writes.
func (b *Builder) AddOptional(present bool, f func(*Builder)) {
	if !present {
		b.AddUint8(0)
		return
	}
	b.AddUint8(1)
	f(b)
}

// Encode appends a nested value.
func (b *Builder) Encode(v Encoder) { v.EncodeMLS(b) }
