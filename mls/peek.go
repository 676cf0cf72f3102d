package mls

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// WireFormat is the wire_format of an MLSMessage (RFC 9420 §6).
type WireFormat = wire.WireFormat

// The wire formats of RFC 9420 §6.
const (
	WireFormatPublicMessage  = wire.WireFormatPublicMessage
	WireFormatPrivateMessage = wire.WireFormatPrivateMessage
	WireFormatWelcome        = wire.WireFormatWelcome
	WireFormatGroupInfo      = wire.WireFormatGroupInfo
	WireFormatKeyPackage     = wire.WireFormatKeyPackage
)

// ContentType is the content_type of a framed message (RFC 9420 §6).
type ContentType = wire.ContentType

// The content types of RFC 9420 §6.
const (
	ContentApplication = wire.ContentTypeApplication
	ContentProposal    = wire.ContentTypeProposal
	ContentCommit      = wire.ContentTypeCommit
)

// decodeMessage decodes a whole MLSMessage of version mls10 and the wire
// format want; every byte must be consumed.
func decodeMessage(msg []byte, want WireFormat, op string) (*wire.MLSMessage, error) {
	var m wire.MLSMessage
	if err := wire.Unmarshal(msg, &m); err != nil {
		return nil, causeError(op, "", ErrMalformed, err, "decode")
	}
	if m.Version != wire.ProtocolVersionMLS10 {
		return nil, ruleError(op, "§6", ErrMalformed, "version %d is not mls10", m.Version)
	}
	if m.WireFormat != want {
		return nil, ruleError(op, "§6", ErrMalformed, "wire format %d, want %d", m.WireFormat, want)
	}
	return &m, nil
}

// PeekWireFormat decodes an MLSMessage (RFC 9420 §6) completely, so that
// it fails on anything malformed or trailing, and returns its wire format.
// It checks no signature and needs no group state.
func PeekWireFormat(msg []byte) (WireFormat, error) {
	var m wire.MLSMessage
	if err := wire.Unmarshal(msg, &m); err != nil {
		return 0, causeError("peek wire format", "", ErrMalformed, err, "decode")
	}
	if m.Version != wire.ProtocolVersionMLS10 {
		return 0, ruleError("peek wire format", "§6", ErrMalformed, "version %d is not mls10", m.Version)
	}
	return m.WireFormat, nil
}

// PeekPrivateMessage decodes an MLSMessage carrying a PrivateMessage (RFC
// 9420 §6.3) completely and returns its clear header: the group id (a
// copy), the epoch and the content type. It decrypts nothing; a Delivery
// Service uses it to route and order messages without group secrets.
func PeekPrivateMessage(msg []byte) (groupID []byte, epoch uint64, contentType ContentType, err error) {
	const op = "peek PrivateMessage"
	m, err := decodeMessage(msg, WireFormatPrivateMessage, op)
	if err != nil {
		return nil, 0, 0, err
	}
	pm := m.PrivateMessage
	if len(pm.Ciphertext) == 0 {
		return nil, 0, 0, ruleError(op, "§6.3", ErrMalformed, "empty ciphertext")
	}
	return slices.Clone(pm.GroupID), pm.Epoch, pm.ContentType, nil
}

// PeekPublicMessage decodes an MLSMessage carrying a PublicMessage (RFC
// 9420 §6.2) completely and returns its clear header: the group id (a
// copy), the epoch, the content type and the sender. It verifies nothing
// (not the signature, not the membership tag): a member uses it to learn
// what a handshake message it could not process claims to be.
func PeekPublicMessage(msg []byte) (groupID []byte, epoch uint64, contentType ContentType, sender Sender, err error) {
	m, err := decodeMessage(msg, WireFormatPublicMessage, "peek PublicMessage")
	if err != nil {
		return nil, 0, 0, Sender{}, err
	}
	fc := &m.PublicMessage.Content
	return slices.Clone(fc.GroupID), fc.Epoch, fc.ContentType, senderFromWire(fc.Sender), nil
}

// PeekWelcome decodes an MLSMessage carrying a Welcome (RFC 9420
// §12.4.3.1) completely and returns its cipher suite and the
// KeyPackageRefs of the new members it has secrets for (copies, in order).
// It decrypts nothing.
func PeekWelcome(msg []byte) (CipherSuite, [][]byte, error) {
	const op = "peek Welcome"
	m, err := decodeMessage(msg, WireFormatWelcome, op)
	if err != nil {
		return 0, nil, err
	}
	w := m.Welcome
	refs := make([][]byte, len(w.Secrets))
	for i := range w.Secrets {
		refs[i] = slices.Clone(w.Secrets[i].NewMember)
	}
	return w.CipherSuite, refs, nil
}

// Member returns the member at leaf i, or false if the leaf is blank or
// outside the tree. The slices must not be modified.
func (pg *PublicGroup) Member(i LeafIndex) (Member, bool) {
	ln := pg.c.tree.Leaf(i)
	if ln == nil {
		return Member{}, false
	}
	return Member{Leaf: i, Credential: credentialFromWire(&ln.Credential), SignatureKey: ln.SignatureKey, EncryptionKey: ln.EncryptionKey}, true
}

// VerifyGroupInfo checks a GroupInfo (MLSMessage) against the follower's
// current epoch, without the cost of NewPublicGroup's full tree
// validation: what a Delivery Service needs to refuse a bad GroupInfo
// before storing it for external joiners. See PublicChange.VerifyGroupInfo
// for the checks; here the signer may be any member.
func (pg *PublicGroup) VerifyGroupInfo(groupInfo []byte) error {
	return pg.c.verifyGroupInfo(groupInfo, -1, "verify GroupInfo")
}

// VerifyGroupInfo checks a GroupInfo (MLSMessage) that the committer sent
// with the commit ch describes, against the state after ch (ch must be a
// commit returned by Process, merged or not):
//
//   - it decodes completely, version mls10 (RFC 9420 §6);
//   - its GroupContext equals the new epoch's: group id, epoch, cipher
//     suite, tree hash, confirmed transcript hash and extensions (§12.4.3);
//   - its confirmation_tag is the one the commit carried (the new interim
//     transcript hash follows from it); whether the tag is right needs the
//     epoch's secrets and is not checked;
//   - its signer is the committer's leaf and the signature verifies with
//     that leaf's signature key (§12.4.3);
//   - no extension type appears twice; external_pub, if present, decodes
//     and holds a public key of the suite (an HPKE encapsulation to it
//     succeeds); ratchet_tree, if present, encodes exactly the new tree.
//
// The cost is one signature verification and, with ratchet_tree, one
// encoding of the tree: nothing proportional to the group beyond that.
func (ch *PublicChange) VerifyGroupInfo(groupInfo []byte) error {
	const op = "verify GroupInfo"
	if ch == nil || ch.Kind != KindCommit || ch.next == nil {
		return fmt.Errorf("mls: %s: not a commit", op)
	}
	return ch.next.verifyGroupInfo(groupInfo, int64(ch.Sender.Leaf), op)
}

// verifyGroupInfo implements VerifyGroupInfo for the epoch of c; signer is
// the leaf that must have signed, or -1 for any member.
func (c *core) verifyGroupInfo(data []byte, signer int64, op string) error {
	m, err := decodeMessage(data, WireFormatGroupInfo, op)
	if err != nil {
		return err
	}
	gi := m.GroupInfo
	gcb, err := wire.Marshal(&gi.GroupContext)
	if err != nil {
		return causeError(op, "§12.4.3", ErrInvalidWelcome, err, "group context")
	}
	if !bytes.Equal(gcb, c.encodedContext()) {
		return ruleError(op, "§12.4.3", ErrInvalidWelcome, "group context (epoch %d, group %x) differs from the epoch's (epoch %d)", gi.GroupContext.Epoch, gi.GroupContext.GroupID, c.gc.Epoch)
	}
	interim, err := framing.InterimTranscriptHash(c.cs, c.gc.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return opError(op, err)
	}
	if !bytes.Equal(interim, c.interim) {
		return ruleError(op, "§12.4.3", ErrInvalidWelcome, "confirmation_tag is not the commit's")
	}
	if signer >= 0 && int64(gi.Signer) != signer {
		return ruleError(op, "§12.4.3", ErrInvalidWelcome, "signed by leaf %d, not by the committer (leaf %d)", gi.Signer, signer)
	}
	ln := c.tree.Leaf(LeafIndex(gi.Signer))
	if ln == nil {
		return ruleError(op, "§12.4.3", ErrInvalidWelcome, "signer %d is a blank leaf", gi.Signer)
	}
	if err := gi.Verify(c.cs, ln.SignatureKey); err != nil {
		return causeError(op, "§12.4.3", ErrInvalidWelcome, err, "signature")
	}
	if err := checkUniqueExtensions(gi.Extensions); err != nil {
		return causeError(op, "§12.4.3", ErrInvalidWelcome, err, "extensions")
	}
	if e := gi.Extensions.Find(wire.ExtensionExternalPub); e != nil {
		var ep wire.ExternalPub
		if err := wire.Unmarshal(e.Data, &ep); err != nil {
			return causeError(op, "§12.4.3.2", ErrInvalidWelcome, err, "external_pub")
		}
		_, secret, err := c.cs.ExportSender(ep.PublicKey, nil, []byte(externalInitLabel), c.cs.HashSize())
		clear(secret)
		if err != nil {
			return causeError(op, "§12.4.3.2", ErrInvalidWelcome, err, "external_pub public key")
		}
	}
	if e := gi.Extensions.Find(wire.ExtensionRatchetTree); e != nil {
		rt, err := c.encodedTree()
		if err != nil {
			return opError(op, err)
		}
		if !bytes.Equal(e.Data, rt) {
			return ruleError(op, "§12.4.3.3", ErrInvalidWelcome, "ratchet_tree extension differs from the epoch's tree")
		}
	}
	return nil
}
