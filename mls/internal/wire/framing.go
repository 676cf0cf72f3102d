package wire

import (
	"errors"
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
)

// ProtocolVersion is an MLS protocol version (RFC 9420 §6). Decoding keeps
// any value; checking it is the caller's job.
type ProtocolVersion uint16

// ProtocolVersionMLS10 is mls10, the version of RFC 9420.
const ProtocolVersionMLS10 ProtocolVersion = 1

// WireFormat identifies the kind of message in an MLSMessage (RFC 9420 §6,
// "MLS Wire Formats" registry).
type WireFormat uint16

// The wire formats of RFC 9420 §17.2.
const (
	WireFormatPublicMessage  WireFormat = 1
	WireFormatPrivateMessage WireFormat = 2
	WireFormatWelcome        WireFormat = 3
	WireFormatGroupInfo      WireFormat = 4
	WireFormatKeyPackage     WireFormat = 5
)

// ContentType is the kind of content a FramedContent carries (RFC 9420 §6).
type ContentType uint8

// The content types of RFC 9420 §6.
const (
	ContentTypeApplication ContentType = 1
	ContentTypeProposal    ContentType = 2
	ContentTypeCommit      ContentType = 3
)

// valid reports whether t is one of the defined content types.
func (t ContentType) valid() bool {
	return t >= ContentTypeApplication && t <= ContentTypeCommit
}

// SenderType is the kind of sender of a message (RFC 9420 §6).
type SenderType uint8

// The sender types of RFC 9420 §6.
const (
	SenderTypeMember            SenderType = 1
	SenderTypeExternal          SenderType = 2
	SenderTypeNewMemberProposal SenderType = 3
	SenderTypeNewMemberCommit   SenderType = 4
)

// Sender is RFC 9420 §6 Sender. LeafIndex is meaningful for member senders,
// SenderIndex (an index into the external_senders extension) for external
// senders; new members carry neither.
type Sender struct {
	Type        SenderType
	LeafIndex   uint32
	SenderIndex uint32
}

// EncodeMLS appends the Sender's encoding.
func (s *Sender) EncodeMLS(b *codec.Builder) {
	b.AddUint8(uint8(s.Type))
	switch s.Type {
	case SenderTypeMember:
		b.AddUint32(s.LeafIndex)
	case SenderTypeExternal:
		b.AddUint32(s.SenderIndex)
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		b.Fail(fmt.Errorf("wire: encode Sender: unknown sender_type %d", s.Type))
	}
}

// DecodeMLS reads a Sender; an unknown sender_type is an error.
func (s *Sender) DecodeMLS(r *codec.Reader) {
	*s = Sender{Type: SenderType(r.Uint8())}
	if r.Err() != nil {
		return
	}
	switch s.Type {
	case SenderTypeMember:
		s.LeafIndex = r.Uint32()
	case SenderTypeExternal:
		s.SenderIndex = r.Uint32()
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		r.Failf("wire: decode Sender: unknown sender_type %d", s.Type)
	}
}

// FramedContent is RFC 9420 §6 FramedContent. The select on ContentType
// uses ApplicationData (application), Proposal (proposal, non-nil) or
// Commit (commit, non-nil).
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte
	Proposal          *Proposal
	Commit            *Commit
}

// encodeBody appends the select on ct: application data, proposal or
// commit. It is shared with PrivateMessageContent.
func encodeBody(b *codec.Builder, what string, ct ContentType, app []byte, p *Proposal, c *Commit) {
	switch ct {
	case ContentTypeApplication:
		b.AddOpaque(app)
	case ContentTypeProposal:
		if p == nil {
			b.Fail(fmt.Errorf("wire: encode %s: content_type proposal without proposal", what))
			return
		}
		p.EncodeMLS(b)
	case ContentTypeCommit:
		if c == nil {
			b.Fail(fmt.Errorf("wire: encode %s: content_type commit without commit", what))
			return
		}
		c.EncodeMLS(b)
	default:
		b.Fail(fmt.Errorf("wire: encode %s: unknown content_type %d", what, ct))
	}
}

// decodeBody reads the select on ct.
func decodeBody(r *codec.Reader, what string, ct ContentType) (app []byte, p *Proposal, c *Commit) {
	switch ct {
	case ContentTypeApplication:
		app = r.Opaque()
	case ContentTypeProposal:
		p = new(Proposal)
		p.DecodeMLS(r)
	case ContentTypeCommit:
		c = new(Commit)
		c.DecodeMLS(r)
	default:
		r.Failf("wire: decode %s: unknown content_type %d", what, ct)
	}
	return app, p, c
}

// EncodeMLS appends the FramedContent's encoding.
func (f *FramedContent) EncodeMLS(b *codec.Builder) {
	b.AddOpaque(f.GroupID)
	b.AddUint64(f.Epoch)
	f.Sender.EncodeMLS(b)
	b.AddOpaque(f.AuthenticatedData)
	b.AddUint8(uint8(f.ContentType))
	encodeBody(b, "FramedContent", f.ContentType, f.ApplicationData, f.Proposal, f.Commit)
}

// DecodeMLS reads a FramedContent; an unknown content_type is an error.
func (f *FramedContent) DecodeMLS(r *codec.Reader) {
	*f = FramedContent{}
	f.GroupID = r.Opaque()
	f.Epoch = r.Uint64()
	f.Sender.DecodeMLS(r)
	f.AuthenticatedData = r.Opaque()
	f.ContentType = ContentType(r.Uint8())
	if r.Err() != nil {
		return
	}
	f.ApplicationData, f.Proposal, f.Commit = decodeBody(r, "FramedContent", f.ContentType)
}

// FramedContentAuthData is RFC 9420 §6.1 FramedContentAuthData. Its
// encoding depends on the content type of the content it authenticates:
// ConfirmationTag is present if and only if that type is commit, so it
// has Encode and Decode methods taking the content type rather than
// EncodeMLS and DecodeMLS.
type FramedContentAuthData struct {
	Signature       []byte
	ConfirmationTag []byte
}

// Encode appends the auth data for content of type ct. A non-nil
// ConfirmationTag on non-commit content is an error.
func (a *FramedContentAuthData) Encode(b *codec.Builder, ct ContentType) {
	b.AddOpaque(a.Signature)
	switch {
	case ct == ContentTypeCommit:
		b.AddOpaque(a.ConfirmationTag)
	case !ct.valid():
		b.Fail(fmt.Errorf("wire: encode FramedContentAuthData: unknown content_type %d", ct))
	case a.ConfirmationTag != nil:
		b.Fail(fmt.Errorf("wire: encode FramedContentAuthData: confirmation_tag set for content_type %d", ct))
	}
}

// Decode reads the auth data for content of type ct.
func (a *FramedContentAuthData) Decode(r *codec.Reader, ct ContentType) {
	*a = FramedContentAuthData{Signature: r.Opaque()}
	switch {
	case ct == ContentTypeCommit:
		a.ConfirmationTag = r.Opaque()
	case !ct.valid():
		r.Failf("wire: decode FramedContentAuthData: unknown content_type %d", ct)
	}
}

// AuthenticatedContent is RFC 9420 §6 AuthenticatedContent: the content,
// its authentication, and the wire format it was (or will be) sent in. Its
// encoding is the input of ProposalRef.
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData
}

// EncodeMLS appends the AuthenticatedContent's encoding.
func (a *AuthenticatedContent) EncodeMLS(b *codec.Builder) {
	b.AddUint16(uint16(a.WireFormat))
	a.Content.EncodeMLS(b)
	a.Auth.Encode(b, a.Content.ContentType)
}

// DecodeMLS reads an AuthenticatedContent. The wire format is kept
// verbatim: it selects nothing here.
func (a *AuthenticatedContent) DecodeMLS(r *codec.Reader) {
	a.WireFormat = WireFormat(r.Uint16())
	a.Content.DecodeMLS(r)
	if r.Err() != nil {
		return
	}
	a.Auth.Decode(r, a.Content.ContentType)
}

// encodeContentTBS appends FramedContentTBS (RFC 9420 §6.1).
func encodeContentTBS(b *codec.Builder, wf WireFormat, content *FramedContent, groupContext []byte) {
	if content == nil {
		b.Fail(errors.New("wire: encode FramedContentTBS: nil content"))
		return
	}
	b.AddUint16(uint16(ProtocolVersionMLS10))
	b.AddUint16(uint16(wf))
	content.EncodeMLS(b)
	switch content.Sender.Type {
	case SenderTypeMember, SenderTypeNewMemberCommit:
		if len(groupContext) == 0 {
			b.Fail(fmt.Errorf("wire: encode FramedContentTBS: sender_type %d needs the group context", content.Sender.Type))
			return
		}
		b.AddRaw(groupContext)
	}
}

// ContentTBS returns the encoded FramedContentTBS (RFC 9420 §6.1) that a
// message signature covers: version mls10, wf, the content and, for member
// and new_member_commit senders only, groupContext, which must be the
// already-encoded GroupContext of the current epoch (an empty one is an
// error for those senders). It returns nil if the content cannot be
// encoded.
func ContentTBS(wf WireFormat, content *FramedContent, groupContext []byte) []byte {
	var b codec.Builder
	encodeContentTBS(&b, wf, content, groupContext)
	return bytesOrNil(&b)
}

// bytesOrNil returns b's bytes, or nil if b recorded an error.
func bytesOrNil(b *codec.Builder) []byte {
	out, err := b.Bytes()
	if err != nil {
		return nil
	}
	return out
}
