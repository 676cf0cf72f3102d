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
