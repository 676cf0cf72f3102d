package wire

import (
	"errors"

	"github.com/parley-chat/parley/mls/internal/codec"
)

// PublicMessage is RFC 9420 §6.2 PublicMessage. MembershipTag is present
// if and only if the sender is a member.
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte
}

// EncodeMLS appends the PublicMessage's encoding.
func (m *PublicMessage) EncodeMLS(b *codec.Builder) {
	m.Content.EncodeMLS(b)
	m.Auth.Encode(b, m.Content.ContentType)
	if m.Content.Sender.Type == SenderTypeMember {
		b.AddOpaque(m.MembershipTag)
	} else if m.MembershipTag != nil {
		b.Fail(errors.New("wire: encode PublicMessage: membership_tag set for a non-member sender"))
	}
}

// DecodeMLS reads a PublicMessage.
func (m *PublicMessage) DecodeMLS(r *codec.Reader) {
	*m = PublicMessage{}
	m.Content.DecodeMLS(r)
	if r.Err() != nil {
		return
	}
	m.Auth.Decode(r, m.Content.ContentType)
	if m.Content.Sender.Type == SenderTypeMember {
		m.MembershipTag = r.Opaque()
	}
}

// AuthenticatedContentTBM returns the encoded AuthenticatedContentTBM of
// RFC 9420 §6.2, the input of the membership tag MAC: FramedContentTBS (as
// ContentTBS(wf, content, groupContext)) followed by auth. It returns nil
// if the value cannot be encoded.
func AuthenticatedContentTBM(wf WireFormat, content *FramedContent, auth *FramedContentAuthData, groupContext []byte) []byte {
	var b codec.Builder
	encodeContentTBS(&b, wf, content, groupContext)
	if auth == nil {
		return nil
	}
	if b.Err() == nil {
		auth.Encode(&b, content.ContentType)
	}
	return bytesOrNil(&b)
}
