package client

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-chat/parley/mls"
)

// This file holds the few encodings the client handles itself because the
// public mls API has no accessor for them (see README.md): the ratchet tree
// of a pending commit's GroupInfo, and the ExternalSender entries of an
// external_senders extension. Decoding is bounded and strict: MLS varints
// (RFC 9420 §2.1.2) must be minimal and every length must fit the input.

// reader is a bounded decoder of the TLS presentation language.
type reader struct {
	b   []byte
	err bool
}

func (r *reader) bytes(n int) []byte {
	if r.err || n < 0 || n > len(r.b) {
		r.err = true
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) skip(n int) { r.bytes(n) }

func (r *reader) uint16() uint16 {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return uint16(b[0])<<8 | uint16(b[1])
}

// varint reads an MLS variable-length integer.
func (r *reader) varint() int {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	v := uint32(b[0] & 0x3f)
	var n int
	switch b[0] >> 6 {
	case 0:
		return int(v)
	case 1:
		n = 1
	case 2:
		n = 3
	default:
		r.err = true
		return 0
	}
	rest := r.bytes(n)
	for _, c := range rest {
		v = v<<8 | uint32(c)
	}
	if r.err || (n == 1 && v < 1<<6) || (n == 3 && v < 1<<14) {
		r.err = true // not minimal
		return 0
	}
	return int(v)
}

// opaque reads an opaque<V> vector.
func (r *reader) opaque() []byte { return r.bytes(r.varint()) }

// appendVarint appends n as a minimal MLS varint.
func appendVarint(b []byte, n int) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, byte(n>>8)|0x40, byte(n))
	default:
		return append(b, byte(n>>24)|0x80, byte(n>>16), byte(n>>8), byte(n))
	}
}

// ratchetTreeOf returns the ratchet_tree extension body of an encoded
// MLSMessage(GroupInfo) (RFC 9420 §12.4.3).
func ratchetTreeOf(msg []byte) ([]byte, error) {
	r := &reader{b: msg}
	if r.uint16() != 1 || r.uint16() != 4 { // mls10, group_info
		return nil, status.Error(codes.Internal, "GroupInfo: not an mls10 MLSMessage(GroupInfo)")
	}
	// GroupContext: version, cipher_suite, group_id, epoch, tree_hash,
	// confirmed_transcript_hash, extensions.
	r.skip(4)
	r.opaque()
	r.skip(8)
	r.opaque()
	r.opaque()
	r.opaque()
	exts := &reader{b: r.opaque()}
	if r.err {
		return nil, status.Error(codes.Internal, "GroupInfo: truncated")
	}
	for len(exts.b) > 0 && !exts.err {
		t := exts.uint16()
		data := exts.opaque()
		if t == mls.ExtensionRatchetTree && !exts.err {
			return data, nil
		}
	}
	return nil, status.Error(codes.Internal, "GroupInfo: no ratchet_tree extension")
}

// externalSenderBytes encodes one ExternalSender (RFC 9420 §12.1.8.1).
func externalSenderBytes(es mls.ExternalSender) ([]byte, error) {
	// The extension's data is the vector ExternalSender<V>; strip its
	// length to keep the one entry.
	r := &reader{b: mls.ExternalSendersExtension([]mls.ExternalSender{es}).Data}
	out := r.opaque()
	if r.err || len(r.b) != 0 {
		return nil, status.Error(codes.Internal, "external_senders: bad encoding")
	}
	return out, nil
}

// appendExternalSender returns exts with sender (an encoded ExternalSender)
// appended to the external_senders extension, which is added if missing.
// The other extensions are kept in order.
func appendExternalSender(exts []mls.Extension, sender []byte) ([]mls.Extension, error) {
	out := make([]mls.Extension, 0, len(exts)+1)
	found := false
	for _, e := range exts {
		if e.Type == mls.ExtensionExternalSenders {
			r := &reader{b: e.Data}
			body := r.opaque()
			if r.err || len(r.b) != 0 {
				return nil, errf("group's external_senders extension is malformed")
			}
			list := append(append([]byte{}, body...), sender...)
			e = mls.Extension{Type: e.Type, Data: append(appendVarint(nil, len(list)), list...)}
			found = true
		}
		out = append(out, e)
	}
	if !found {
		out = append(out, mls.Extension{Type: mls.ExtensionExternalSenders, Data: append(appendVarint(nil, len(sender)), sender...)})
	}
	return out, nil
}

// senderIndex finds the encoded ExternalSender sender in the group's
// external_senders extension.
func senderIndex(exts []mls.Extension, sender []byte) (uint32, error) {
	for _, e := range exts {
		if e.Type != mls.ExtensionExternalSenders {
			continue
		}
		r := &reader{b: e.Data}
		list := &reader{b: r.opaque()}
		for i := uint32(0); len(list.b) > 0 && !list.err; i++ {
			start := list.b
			list.opaque() // signature_key
			switch list.uint16() {
			case uint16(mls.CredentialBasic):
				list.opaque() // identity
			case uint16(mls.CredentialX509):
				list.opaque() // certificates
			default:
				return 0, errf("external_senders: entry %d has a credential type this client cannot parse", i)
			}
			if list.err {
				break
			}
			if string(start[:len(start)-len(list.b)]) == string(sender) {
				return i, nil
			}
		}
		if r.err || list.err {
			return 0, errf("external_senders extension is malformed")
		}
	}
	return 0, errf("the signer is not in the group's external_senders")
}
