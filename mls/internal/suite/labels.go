package suite

import (
	"encoding/binary"
	"fmt"
)

// labelPrefix is prepended to every label of RFC 9420 §5.1.2, §5.1.3 and
// §8 ("MLS 1.0 " + Label). RefHash labels (§5.2) are used as given.
const labelPrefix = "MLS 1.0 "

// maxVarint is the largest length an MLS variable-length vector can carry
// (RFC 9420 §2.1.2: 30-bit varint).
const maxVarint = 1<<30 - 1

// varintLen returns the size of the MLS varint encoding of n <= maxVarint.
func varintLen(n int) int {
	switch {
	case n < 1<<6:
		return 1
	case n < 1<<14:
		return 2
	default:
		return 4
	}
}

// appendVarint appends the minimal MLS varint encoding of n <= maxVarint.
func appendVarint(b []byte, n int) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return binary.BigEndian.AppendUint16(b, uint16(n)|0x4000)
	default:
		return binary.BigEndian.AppendUint32(b, uint32(n)|0x8000_0000)
	}
}

// labeledLen returns the encoded size of the struct
//
//	struct { opaque label<V> = prefix + label; opaque value<V>; }
//
// or an error if a field is too long for a varint length.
func labeledLen(prefix, label string, value []byte) (int, error) {
	ln := len(prefix) + len(label)
	if ln > maxVarint || len(value) > maxVarint {
		return 0, fmt.Errorf("label (%d bytes) or value (%d bytes) exceeds %d bytes", ln, len(value), maxVarint)
	}
	return varintLen(ln) + ln + varintLen(len(value)) + len(value), nil
}

// appendLabeled appends the struct described at labeledLen; the caller has
// checked the lengths with labeledLen.
func appendLabeled(b []byte, prefix, label string, value []byte) []byte {
	b = appendVarint(b, len(prefix)+len(label))
	b = append(b, prefix...)
	b = append(b, label...)
	b = appendVarint(b, len(value))
	return append(b, value...)
}

// labeled returns the struct described at labeledLen in a fresh buffer with
// extra spare bytes of capacity.
func labeled(prefix, label string, value []byte, extra int) ([]byte, error) {
	n, err := labeledLen(prefix, label, value)
	if err != nil {
		return nil, err
	}
	return appendLabeled(make([]byte, 0, n+extra), prefix, label, value), nil
}

// LabelHeadroom returns the number of bytes the labelled struct of label
// (SignContent or EncryptContext: the varint-prefixed "MLS 1.0 " + label
// and the varint length of the content) needs in front of its content, for
// any content MLS can carry. DecryptWithLabelHeadroom and
// VerifyWithLabelHeadroom write it there instead of copying the content.
func LabelHeadroom(label string) int {
	n := len(labelPrefix) + len(label)
	return varintLen(n) + n + 4
}

// labeledAt returns the struct described at labeledLen with value
// buf[off:], written in place: the header goes into the bytes just before
// off, which must be enough for it (LabelHeadroom). buf[off:] is not
// modified; the bytes of buf[:off] that the header needs are overwritten.
func labeledAt(prefix, label string, buf []byte, off int) ([]byte, error) {
	if off < 0 || off > len(buf) {
		return nil, fmt.Errorf("headroom %d outside the %d-byte buffer", off, len(buf))
	}
	n, err := labeledLen(prefix, label, buf[off:])
	if err != nil {
		return nil, err
	}
	hdr := n - (len(buf) - off)
	if off < hdr {
		return nil, fmt.Errorf("headroom of %d bytes, the label needs %d", off, hdr)
	}
	start := off - hdr
	// buf has the capacity: the appends write into buf[start:off].
	h := appendVarint(buf[start:start], len(prefix)+len(label))
	h = append(h, prefix...)
	h = append(h, label...)
	_ = appendVarint(h, len(buf)-off)
	return buf[start:], nil
}
