package framing

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// labelFramedContentTBS is the SignWithLabel label of message signatures
// (RFC 9420 §6.1).
const labelFramedContentTBS = "FramedContentTBS"

// Errors that callers branch on. Returned errors wrap them after the
// package and operation and add the offending values: "framing: unprotect
// PrivateMessage: message for another epoch: epoch 8, context is at 7".
var (
	// ErrWrongGroup reports a message whose group_id is not the group's.
	ErrWrongGroup = errors.New("message for another group")
	// ErrWrongEpoch reports a message whose epoch is not the Context's;
	// the caller may retry with the state of that epoch if it keeps it.
	ErrWrongEpoch = errors.New("message for another epoch")
)

// Context is the view of one epoch of a group that message protection
// needs: the cipher suite and the epoch's GroupContext (RFC 9420 §8.1),
// whose encoding every member sender's signature covers (§6.1). A Context
// is immutable and safe for concurrent use; it holds no secrets.
type Context struct {
	suite   *suite.Suite
	groupID []byte
	epoch   uint64
	encoded []byte
}

// NewContext returns the Context of the epoch described by gc under suite
// s. The GroupContext is encoded once here; gc may be modified afterwards
// without affecting the Context. gc's version must be mls10 and its cipher
// suite s.
func NewContext(s *suite.Suite, gc *wire.GroupContext) (*Context, error) {
	const op = "framing: new context"
	if s == nil || gc == nil {
		return nil, fmt.Errorf("%s: nil suite or group context", op)
	}
	if gc.Version != wire.ProtocolVersionMLS10 {
		return nil, fmt.Errorf("%s: group context version %d is not mls10", op, gc.Version)
	}
	if gc.CipherSuite != s.ID() {
		return nil, fmt.Errorf("%s: group context cipher suite %#04x is not the suite's %#04x", op, uint16(gc.CipherSuite), uint16(s.ID()))
	}
	enc, err := codec.Marshal(gc)
	if err != nil {
		return nil, fmt.Errorf("%s: encode group context: %w", op, err)
	}
	return &Context{
		suite:   s,
		groupID: append([]byte(nil), gc.GroupID...),
		epoch:   gc.Epoch,
		encoded: enc,
	}, nil
}

// Suite returns the epoch's cipher suite.
func (c *Context) Suite() *suite.Suite { return c.suite }

// GroupID returns the group's id. The caller must not modify it.
func (c *Context) GroupID() []byte { return c.groupID }

// Epoch returns the epoch number.
func (c *Context) Epoch() uint64 { return c.epoch }

// Encoded returns the TLS encoding of the epoch's GroupContext. The caller
// must not modify it.
func (c *Context) Encoded() []byte { return c.encoded }

// SignerLookup returns the signature public key with which a message from
// sender must verify (RFC 9420 §6.1): for a member, the signature key of
// the LeafNode at sender.LeafIndex. It returns an error for a sender that
// has no key, such as a blank leaf or a leaf beyond the tree; that error
// is passed on to the caller of Unprotect*.
type SignerLookup func(sender wire.Sender) ([]byte, error)

// checkGroup verifies that a message's group_id and epoch are the
// Context's; the error wraps ErrWrongGroup or ErrWrongEpoch.
func (c *Context) checkGroup(op string, groupID []byte, epoch uint64) error {
	if !bytes.Equal(groupID, c.groupID) {
		return fmt.Errorf("%s: %w: group_id %x, context has %x", op, ErrWrongGroup, clip(groupID), clip(c.groupID))
	}
	if epoch != c.epoch {
		return fmt.Errorf("%s: %w: epoch %d, context is at %d", op, ErrWrongEpoch, epoch, c.epoch)
	}
	return nil
}

// clip shortens a byte string quoted in an error.
func clip(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// SignContent signs content as it will be sent in wire format wf (RFC 9420
// §6.1): signature = SignWithLabel(sigPriv, "FramedContentTBS",
// FramedContentTBS), where FramedContentTBS covers the GroupContext for
// member and new_member_commit senders. The content must belong to c's
// group and epoch. The returned AuthenticatedContent has no confirmation
// tag: for a commit the caller computes it from the confirmed transcript
// hash, which itself covers the signature (§8.2), and sets
// Auth.ConfirmationTag before sealing the message. content is not copied.
func SignContent(c *Context, wf wire.WireFormat, content *wire.FramedContent, sigPriv []byte) (*wire.AuthenticatedContent, error) {
	const op = "framing: sign content"
	if c == nil || content == nil {
		return nil, fmt.Errorf("%s: nil context or content", op)
	}
	return c.sign(op, wf, content, sigPriv)
}

func (c *Context) sign(op string, wf wire.WireFormat, content *wire.FramedContent, sigPriv []byte) (*wire.AuthenticatedContent, error) {
	if err := c.checkGroup(op, content.GroupID, content.Epoch); err != nil {
		return nil, err
	}
	tbs := wire.ContentTBS(wf, content, c.encoded)
	if tbs == nil {
		return nil, fmt.Errorf("%s: %s content from %s cannot be encoded", op, contentName(content.ContentType), senderName(content.Sender))
	}
	sig, err := c.suite.SignWithLabel(sigPriv, labelFramedContentTBS, tbs)
	if err != nil {
		return nil, fmt.Errorf("%s: sign: %w", op, err)
	}
	return &wire.AuthenticatedContent{
		WireFormat: wf,
		Content:    *content,
		Auth:       wire.FramedContentAuthData{Signature: sig},
	}, nil
}

// VerifyContent checks the signature of ac against sigPub (RFC 9420
// §6.1). It returns nil only for a valid signature; it checks neither the
// confirmation tag nor the group and epoch.
func VerifyContent(c *Context, ac *wire.AuthenticatedContent, sigPub []byte) error {
	const op = "framing: verify content"
	if c == nil || ac == nil {
		return fmt.Errorf("%s: nil context or content", op)
	}
	return c.verify(op, ac, sigPub)
}

func (c *Context) verify(op string, ac *wire.AuthenticatedContent, sigPub []byte) error {
	tbs := wire.ContentTBS(ac.WireFormat, &ac.Content, c.encoded)
	if tbs == nil {
		return fmt.Errorf("%s: %s content from %s cannot be encoded", op, contentName(ac.Content.ContentType), senderName(ac.Content.Sender))
	}
	if err := c.suite.VerifyWithLabel(sigPub, labelFramedContentTBS, tbs, ac.Auth.Signature); err != nil {
		return fmt.Errorf("%s: signature of %s invalid: %w", op, senderName(ac.Content.Sender), err)
	}
	return nil
}

// signerKey asks lookup for sender's key, naming the sender on failure.
func signerKey(op string, lookup SignerLookup, sender wire.Sender) ([]byte, error) {
	if lookup == nil {
		return nil, fmt.Errorf("%s: no signer lookup", op)
	}
	pub, err := lookup(sender)
	if err != nil {
		return nil, fmt.Errorf("%s: signature key of %s: %w", op, senderName(sender), err)
	}
	if len(pub) == 0 {
		return nil, fmt.Errorf("%s: no signature key for %s", op, senderName(sender))
	}
	return pub, nil
}

// senderName describes a sender for errors.
func senderName(s wire.Sender) string {
	switch s.Type {
	case wire.SenderTypeMember:
		return fmt.Sprintf("member leaf %d", s.LeafIndex)
	case wire.SenderTypeExternal:
		return fmt.Sprintf("external sender %d", s.SenderIndex)
	case wire.SenderTypeNewMemberProposal:
		return "new_member_proposal sender"
	case wire.SenderTypeNewMemberCommit:
		return "new_member_commit sender"
	}
	return fmt.Sprintf("sender_type %d", s.Type)
}

// contentName names a content type for errors.
func contentName(t wire.ContentType) string {
	switch t {
	case wire.ContentTypeApplication:
		return "application"
	case wire.ContentTypeProposal:
		return "proposal"
	case wire.ContentTypeCommit:
		return "commit"
	}
	return fmt.Sprintf("content_type(%d)", t)
}
