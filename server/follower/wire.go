package follower

import (
	"fmt"

	"github.com/parley-chat/parley/server/delivery"
)

// The MLS wire formats (RFC 9420 §6).
const (
	wireFormatPublicMessage  = 1
	wireFormatPrivateMessage = 2
	wireFormatWelcome        = 3
	wireFormatGroupInfo      = 4
	wireFormatKeyPackage     = 5
)

// mls10 is the protocol version mls10.
const mls10 = 1

// reader is a bounded reader of the TLS presentation language with MLS
// variable-length integers (RFC 9420 §2.1.2). The public mls API has no
// header peek, so the few clear fields the server needs are read here.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail("%s truncated", what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(what string) uint8 {
	v := r.bytes(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u16(what string) uint16 {
	v := r.bytes(2, what)
	if v == nil {
		return 0
	}
	return uint16(v[0])<<8 | uint16(v[1])
}

func (r *reader) u64(what string) uint64 {
	v := r.bytes(8, what)
	var x uint64
	for _, c := range v {
		x = x<<8 | uint64(c)
	}
	return x
}

// varint reads an MLS variable-length integer, rejecting non-minimal
// encodings.
func (r *reader) varint(what string) int {
	b := r.bytes(1, what+" length")
	if b == nil {
		return 0
	}
	prefix := b[0] >> 6
	if prefix == 3 {
		r.fail("%s length: invalid varint prefix", what)
		return 0
	}
	n := 1 << prefix
	v := uint64(b[0] & 0x3f)
	rest := r.bytes(n-1, what+" length")
	for _, c := range rest {
		v = v<<8 | uint64(c)
	}
	if r.err == nil && prefix > 0 && v < 1<<(8*(n/2)-2) {
		r.fail("%s length: non-minimal varint", what)
	}
	return int(v)
}

func (r *reader) opaque(what string) []byte {
	n := r.varint(what)
	return r.bytes(n, what)
}

func (r *reader) end(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%s: %d trailing bytes", what, len(r.b))
	}
	if r.err != nil {
		return fmt.Errorf("follower: decode %s: %v", what, r.err)
	}
	return nil
}

// header reads an MLSMessage's version and wire format.
func header(r *reader, want uint16, what string) {
	if v := r.u16("version"); r.err == nil && v != mls10 {
		r.fail("version %d is not mls10", v)
	}
	if wf := r.u16("wire format"); r.err == nil && wf != want {
		r.fail("wire format %d, want %d (%s)", wf, want, what)
	}
}

// checkHeader checks that data starts as an MLSMessage of the wire format.
func checkHeader(data []byte, want uint16) error {
	r := &reader{b: data}
	header(r, want, "MLSMessage")
	if r.err != nil {
		return fmt.Errorf("follower: decode MLSMessage: %v", r.err)
	}
	return nil
}

// PeekPrivate implements delivery.Follower: it decodes an MLSMessage
// carrying a PrivateMessage (RFC 9420 §6.3) up to its ciphertext.
func (f *Follower) PeekPrivate(msg []byte) (delivery.PrivateHeader, error) {
	return peekPrivate(msg)
}

func peekPrivate(msg []byte) (delivery.PrivateHeader, error) {
	r := &reader{b: msg}
	header(r, wireFormatPrivateMessage, "PrivateMessage")
	var h delivery.PrivateHeader
	h.GroupID = r.opaque("group id")
	h.Epoch = r.u64("epoch")
	h.ContentType = r.u8("content type")
	if r.err == nil && (h.ContentType < 1 || h.ContentType > 3) {
		r.fail("content type %d", h.ContentType)
	}
	r.opaque("authenticated data")
	r.opaque("encrypted sender data")
	if ct := r.opaque("ciphertext"); r.err == nil && len(ct) == 0 {
		r.fail("empty ciphertext")
	}
	if err := r.end("PrivateMessage"); err != nil {
		return delivery.PrivateHeader{}, err
	}
	return h, nil
}

// CheckWelcome implements delivery.Follower: data must be an MLSMessage
// carrying a Welcome (RFC 9420 §12.4.3.1) of the suite.
func (f *Follower) CheckWelcome(data []byte, suite uint16) error {
	r := &reader{b: data}
	header(r, wireFormatWelcome, "Welcome")
	if cs := r.u16("cipher suite"); r.err == nil && cs != suite {
		r.fail("cipher suite %#04x, the group's is %#04x", cs, suite)
	}
	if s := r.opaque("secrets"); r.err == nil && len(s) == 0 {
		r.fail("no secrets")
	}
	r.opaque("encrypted group info")
	return r.end("Welcome")
}

// groupInfoSuite returns the cipher suite of an MLSMessage carrying a
// GroupInfo (its GroupContext's second field).
func groupInfoSuite(data []byte) (uint16, error) {
	r := &reader{b: data}
	header(r, wireFormatGroupInfo, "GroupInfo")
	if v := r.u16("group context version"); r.err == nil && v != mls10 {
		r.fail("group context version %d", v)
	}
	cs := r.u16("cipher suite")
	if r.err != nil {
		return 0, fmt.Errorf("follower: decode GroupInfo: %v", r.err)
	}
	return cs, nil
}
