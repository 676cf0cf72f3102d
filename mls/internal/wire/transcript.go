package wire

import (
	"errors"

	"github.com/parley-chat/parley/mls/internal/codec"
)

// ConfirmedTranscriptHashInput returns the encoded
// ConfirmedTranscriptHashInput of RFC 9420 §8.2: wf, the commit's content
// and the signature from its auth data. It returns nil if the value cannot
// be encoded (including content that is not a commit).
func ConfirmedTranscriptHashInput(wf WireFormat, content *FramedContent, signature []byte) []byte {
	var b codec.Builder
	if content == nil || content.ContentType != ContentTypeCommit {
		b.Fail(errors.New("wire: encode ConfirmedTranscriptHashInput: content is not a commit"))
		return nil
	}
	b.AddUint16(uint16(wf))
	content.EncodeMLS(&b)
	b.AddOpaque(signature)
	return bytesOrNil(&b)
}

// InterimTranscriptHashInput returns the encoded InterimTranscriptHashInput
// of RFC 9420 §8.2: the confirmation tag as opaque<V>. It returns nil if
// the tag is too long to encode.
func InterimTranscriptHashInput(confirmationTag []byte) []byte {
	var b codec.Builder
	b.AddOpaque(confirmationTag)
	return bytesOrNil(&b)
}
