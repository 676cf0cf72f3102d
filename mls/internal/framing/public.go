package framing

import (
	"fmt"

	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// checkPublicContent applies the rules of RFC 9420 §6 and §6.1 that tie a
// PublicMessage's content type to its sender: application data is never
// sent in the clear, external and new_member_proposal senders only send
// proposals (the latter only Add), new_member_commit senders only commits.
func checkPublicContent(op string, fc *wire.FramedContent) error {
	ct, sender := fc.ContentType, fc.Sender
	switch ct {
	case wire.ContentTypeApplication:
		return fmt.Errorf("%s: application data must be sent as PrivateMessage", op)
	case wire.ContentTypeProposal, wire.ContentTypeCommit:
	default:
		return fmt.Errorf("%s: unknown %s", op, contentName(ct))
	}
	switch sender.Type {
	case wire.SenderTypeMember:
	case wire.SenderTypeExternal:
		if ct != wire.ContentTypeProposal {
			return fmt.Errorf("%s: %s sent %s content, want proposal", op, senderName(sender), contentName(ct))
		}
	case wire.SenderTypeNewMemberProposal:
		if ct != wire.ContentTypeProposal || fc.Proposal == nil || fc.Proposal.Type != wire.ProposalTypeAdd {
			return fmt.Errorf("%s: %s sent something other than an Add proposal", op, senderName(sender))
		}
	case wire.SenderTypeNewMemberCommit:
		if ct != wire.ContentTypeCommit {
			return fmt.Errorf("%s: %s sent %s content, want commit", op, senderName(sender), contentName(ct))
		}
	default:
		return fmt.Errorf("%s: unknown %s", op, senderName(sender))
	}
	return nil
}

// ProtectPublic signs content and encodes it as a PublicMessage (RFC 9420
// §6.2): the signature over FramedContentTBS with sigPriv, the
// confirmation tag (required for and only for commits), and for member
// senders the membership tag MAC(membershipKey, AuthenticatedContentTBM).
// Application content is refused: it must be sent as PrivateMessage. A
// committer usually cannot know the confirmation tag before signing (the
// tag covers the signature through the confirmed transcript hash, §8.2);
// it calls SignContent, sets the tag, then SealPublic.
func ProtectPublic(c *Context, content *wire.FramedContent, sigPriv, confirmationTag []byte, membershipKey schedule.MembershipKey) (*wire.PublicMessage, error) {
	const op = "framing: protect PublicMessage"
	if c == nil || content == nil {
		return nil, fmt.Errorf("%s: nil context or content", op)
	}
	if err := checkPublicContent(op, content); err != nil {
		return nil, err
	}
	ac, err := c.sign(op, wire.WireFormatPublicMessage, content, sigPriv)
	if err != nil {
		return nil, err
	}
	if content.ContentType == wire.ContentTypeCommit {
		ac.Auth.ConfirmationTag = confirmationTag
	} else if confirmationTag != nil {
		return nil, fmt.Errorf("%s: confirmation tag given for %s content", op, contentName(content.ContentType))
	}
	return sealPublic(op, c, ac, membershipKey)
}

// SealPublic encodes an already signed AuthenticatedContent as a
// PublicMessage (RFC 9420 §6.2), adding the membership tag for member
// senders. ac's wire format must be mls_public_message, and a commit must
// carry its confirmation tag. The message shares ac's slices.
func SealPublic(c *Context, ac *wire.AuthenticatedContent, membershipKey schedule.MembershipKey) (*wire.PublicMessage, error) {
	const op = "framing: seal PublicMessage"
	if c == nil || ac == nil {
		return nil, fmt.Errorf("%s: nil context or content", op)
	}
	if err := checkPublicContent(op, &ac.Content); err != nil {
		return nil, err
	}
	if err := c.checkGroup(op, ac.Content.GroupID, ac.Content.Epoch); err != nil {
		return nil, err
	}
	return sealPublic(op, c, ac, membershipKey)
}

func sealPublic(op string, c *Context, ac *wire.AuthenticatedContent, membershipKey schedule.MembershipKey) (*wire.PublicMessage, error) {
	if ac.WireFormat != wire.WireFormatPublicMessage {
		return nil, fmt.Errorf("%s: content signed for wire format %d, not mls_public_message", op, ac.WireFormat)
	}
	if ac.Content.ContentType == wire.ContentTypeCommit && len(ac.Auth.ConfirmationTag) == 0 {
		return nil, fmt.Errorf("%s: commit without confirmation tag", op)
	}
	pm := &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth}
	if ac.Content.Sender.Type == wire.SenderTypeMember {
		if len(membershipKey) != c.suite.HashSize() {
			return nil, fmt.Errorf("%s: membership key is %d bytes, want %d", op, len(membershipKey), c.suite.HashSize())
		}
		tbm := wire.AuthenticatedContentTBM(ac.WireFormat, &ac.Content, &ac.Auth, c.encoded)
		if tbm == nil {
			return nil, fmt.Errorf("%s: AuthenticatedContentTBM cannot be encoded", op)
		}
		pm.MembershipTag = c.suite.MAC(membershipKey, tbm)
	}
	return pm, nil
}

// UnprotectPublic checks a PublicMessage received in c's epoch and returns
// its AuthenticatedContent (RFC 9420 §6.2): the group and epoch must be
// c's (errors wrap ErrWrongGroup, ErrWrongEpoch), the content type must
// suit the sender (no application data; §6.1 rules for non-members), the
// membership tag of a member sender must verify under membershipKey
// (compared in constant time), and the signature must verify under the
// key that signers returns for the sender. The confirmation tag of a
// commit is returned unchecked: it needs the next epoch's confirmation key
// (VerifyConfirmationTag). The result shares pm's slices.
func UnprotectPublic(c *Context, pm *wire.PublicMessage, membershipKey schedule.MembershipKey, signers SignerLookup) (*wire.AuthenticatedContent, error) {
	const op = "framing: unprotect PublicMessage"
	if c == nil || pm == nil {
		return nil, fmt.Errorf("%s: nil context or message", op)
	}
	if err := c.checkGroup(op, pm.Content.GroupID, pm.Content.Epoch); err != nil {
		return nil, err
	}
	if err := checkPublicContent(op, &pm.Content); err != nil {
		return nil, err
	}
	ac := &wire.AuthenticatedContent{WireFormat: wire.WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth}
	if pm.Content.Sender.Type == wire.SenderTypeMember {
		if len(membershipKey) != c.suite.HashSize() {
			return nil, fmt.Errorf("%s: membership key is %d bytes, want %d", op, len(membershipKey), c.suite.HashSize())
		}
		tbm := wire.AuthenticatedContentTBM(ac.WireFormat, &ac.Content, &ac.Auth, c.encoded)
		if tbm == nil {
			return nil, fmt.Errorf("%s: AuthenticatedContentTBM cannot be encoded", op)
		}
		if !c.suite.VerifyMAC(membershipKey, tbm, pm.MembershipTag) {
			return nil, fmt.Errorf("%s: membership tag of %s invalid", op, senderName(pm.Content.Sender))
		}
	} else if pm.MembershipTag != nil {
		return nil, fmt.Errorf("%s: membership tag from %s", op, senderName(pm.Content.Sender))
	}
	pub, err := signerKey(op, signers, pm.Content.Sender)
	if err != nil {
		return nil, err
	}
	if err := c.verify(op, ac, pub); err != nil {
		return nil, err
	}
	return ac, nil
}
