package wire

import (
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
)

// PrivateMessage is RFC 9420 §6.3 PrivateMessage. An unknown content_type
// is a decode error, since the ciphertext could never be parsed.
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

// EncodeMLS appends the PrivateMessage's encoding.
func (m *PrivateMessage) EncodeMLS(b *codec.Builder) {
	if !m.ContentType.valid() {
		b.Fail(fmt.Errorf("wire: encode PrivateMessage: unknown content_type %d", m.ContentType))
		return
	}
	b.AddOpaque(m.GroupID)
	b.AddUint64(m.Epoch)
	b.AddUint8(uint8(m.ContentType))
	b.AddOpaque(m.AuthenticatedData)
	b.AddOpaque(m.EncryptedSenderData)
	b.AddOpaque(m.Ciphertext)
}

// DecodeMLS reads a PrivateMessage.
func (m *PrivateMessage) DecodeMLS(r *codec.Reader) {
	m.GroupID = r.Opaque()
	m.Epoch = r.Uint64()
	m.ContentType = ContentType(r.Uint8())
	if r.Err() == nil && !m.ContentType.valid() {
		r.Failf("wire: decode PrivateMessage: unknown content_type %d", m.ContentType)
		return
	}
	m.AuthenticatedData = r.Opaque()
	m.EncryptedSenderData = r.Opaque()
	m.Ciphertext = r.Opaque()
}

// PrivateMessageContent is RFC 9420 §6.3.1 PrivateMessageContent, the
// plaintext of PrivateMessage.ciphertext. Its layout depends on the
// PrivateMessage's content type, and it ends in zero padding, so it is
// encoded with Marshal and decoded with Unmarshal rather than through
// EncodeMLS/DecodeMLS. The select on the content type uses ApplicationData,
// Proposal or Commit as in FramedContent.
type PrivateMessageContent struct {
	ApplicationData []byte
	Proposal        *Proposal
	Commit          *Commit
	Auth            FramedContentAuthData
}

// Encode appends the content for content type ct followed by padding zero
// bytes (padding < 0 is an error).
func (c *PrivateMessageContent) Encode(b *codec.Builder, ct ContentType, padding int) {
	if padding < 0 {
		b.Fail(fmt.Errorf("wire: encode PrivateMessageContent: negative padding %d", padding))
		return
	}
	encodeBody(b, "PrivateMessageContent", ct, c.ApplicationData, c.Proposal, c.Commit)
	c.Auth.Encode(b, ct)
	if b.Err() == nil {
		b.AddRaw(make([]byte, padding))
	}
}

// Marshal returns the encoded content for content type ct with padding
// zero bytes appended.
func (c *PrivateMessageContent) Marshal(ct ContentType, padding int) ([]byte, error) {
	var b codec.Builder
	c.Encode(&b, ct, padding)
	return b.Bytes()
}

// Unmarshal decodes data as the plaintext of a PrivateMessage of content
// type ct: the content, the auth data, then padding, every byte of which
// must be zero (RFC 9420 §6.3.1). It returns the padding length.
func (c *PrivateMessageContent) Unmarshal(data []byte, ct ContentType) (padding int, err error) {
	*c = PrivateMessageContent{}
	r := codec.NewReader(data)
	c.ApplicationData, c.Proposal, c.Commit = decodeBody(r, "PrivateMessageContent", ct)
	if r.Err() == nil {
		c.Auth.Decode(r, ct)
	}
	if err := r.Err(); err != nil {
		return 0, decodeErr("PrivateMessageContent", err)
	}
	padding = r.Remaining()
	for i := 0; i < padding; i++ {
		if v := r.Uint8(); v != 0 {
			return 0, fmt.Errorf("wire: decode PrivateMessageContent: padding byte %d of %d is %#02x, not zero", i, padding, v)
		}
	}
	return padding, r.Finish()
}

// SenderData is RFC 9420 §6.3.2 SenderData, the plaintext of
// PrivateMessage.encrypted_sender_data.
type SenderData struct {
	LeafIndex  uint32
	Generation uint32
	ReuseGuard [4]byte
}

// EncodeMLS appends the SenderData's encoding.
func (s *SenderData) EncodeMLS(b *codec.Builder) {
	b.AddUint32(s.LeafIndex)
	b.AddUint32(s.Generation)
	b.AddRaw(s.ReuseGuard[:])
}

// DecodeMLS reads a SenderData.
func (s *SenderData) DecodeMLS(r *codec.Reader) {
	s.LeafIndex = r.Uint32()
	s.Generation = r.Uint32()
	copy(s.ReuseGuard[:], r.Fixed(4))
}

// SenderDataAAD returns the encoded SenderDataAAD of RFC 9420 §6.3.2, the
// AAD of the sender data encryption, or nil if it cannot be encoded.
func SenderDataAAD(groupID []byte, epoch uint64, ct ContentType) []byte {
	var b codec.Builder
	b.AddOpaque(groupID)
	b.AddUint64(epoch)
	b.AddUint8(uint8(ct))
	return bytesOrNil(&b)
}

// PrivateContentAAD returns the encoded PrivateContentAAD of RFC 9420
// §6.3.1, the AAD of the content encryption, or nil if it cannot be
// encoded.
func PrivateContentAAD(groupID []byte, epoch uint64, ct ContentType, authenticatedData []byte) []byte {
	var b codec.Builder
	b.AddOpaque(groupID)
	b.AddUint64(epoch)
	b.AddUint8(uint8(ct))
	b.AddOpaque(authenticatedData)
	return bytesOrNil(&b)
}
