package mls

import (
	"crypto/rand"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// ExternalProposal is a proposal sent from outside the group by an
// external sender (RFC 9420 §12.1.8.1). Exactly one kind must be set: the
// kinds an external sender may send (Add, Remove, PreSharedKey with an
// external or a resumption PSK, ReInit, GroupContextExtensions).
type ExternalProposal struct {
	// Add is a KeyPackage (MLSMessage or bare encoding) to add.
	Add []byte
	// Remove, if non-nil, is the leaf to remove.
	Remove *LeafIndex
	// ExternalPSK is the id of an external PSK to inject.
	ExternalPSK []byte
	// ResumptionPSK, if non-nil, names a resumption PSK to inject (RFC
	// 9420 §8.6, §12.1.4), with usage application; a nil GroupID means
	// the group's own. Members resolve it from the group's earlier epochs
	// or Config.PSKs when the proposal is committed.
	ResumptionPSK *ResumptionPSKID
	// ReInit, if non-nil, proposes re-initializing the group.
	ReInit *ReInitParams
	// GroupContextExtensions, with SetExtensions, replaces the group's
	// extensions.
	GroupContextExtensions []Extension
	SetExtensions          bool
}

// ResumptionPSKID names the resumption PSK (RFC 9420 §8.6) of epoch Epoch
// of the group GroupID, for a PreSharedKey proposal of usage application.
type ResumptionPSKID struct {
	GroupID []byte
	Epoch   uint64
}

// wire builds the proposal, checking that exactly one kind is set.
func (p *ExternalProposal) wire(cfg *Config, s *suite.Suite, op string) (*wire.Proposal, error) {
	var out []*wire.Proposal
	if p.Add != nil {
		kp, err := decodeKeyPackage(p.Add)
		if err != nil {
			return nil, causeError(op, "", ErrInvalidKeyPackage, err, "decode")
		}
		if err := checkKeyPackage(cfg, s, kp, op); err != nil {
			return nil, err
		}
		out = append(out, &wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp}})
	}
	if p.Remove != nil {
		out = append(out, &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: uint32(*p.Remove)}})
	}
	if p.ExternalPSK != nil {
		nonce := make([]byte, s.HashSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, opError(op, err)
		}
		pid := wire.PreSharedKeyID{Type: wire.PSKTypeExternal, ID: slices.Clone(p.ExternalPSK), Nonce: nonce}
		out = append(out, &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: pid}})
	}
	if p.ResumptionPSK != nil {
		nonce := make([]byte, s.HashSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, opError(op, err)
		}
		pid := wire.PreSharedKeyID{Type: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageApplication, GroupID: slices.Clone(p.ResumptionPSK.GroupID), Epoch: p.ResumptionPSK.Epoch, Nonce: nonce}
		out = append(out, &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: pid}})
	}
	if p.ReInit != nil {
		out = append(out, &wire.Proposal{Type: wire.ProposalTypeReInit, ReInit: p.ReInit.wire(nil)})
	}
	if p.SetExtensions {
		out = append(out, &wire.Proposal{Type: wire.ProposalTypeGroupContextExtensions, GroupContextExtensions: &wire.GroupContextExtensions{Extensions: extsToWire(p.GroupContextExtensions)}})
	}
	if len(out) != 1 {
		return nil, fmt.Errorf("mls: %s: %d proposal kinds set, want exactly one", op, len(out))
	}
	return out[0], nil
}

// NewExternalProposal creates a proposal from the external sender at
// senderIndex of the group's external_senders extension (RFC 9420
// §12.1.8.1), for epoch epoch of group groupID in cipher suite cs, signed
// by signer (the key listed at senderIndex). It returns the PublicMessage
// (an encoded MLSMessage) to send to the group; members and followers
// validate and cache it, and a member commits it by reference
// (CommitOptions.References or, except a ReInit, IncludePending). An Add's KeyPackage is validated first,
// with cfg's clock. The sender needs none of the group's secrets, nor its
// GroupContext: an external sender's signature does not cover it (§6.1).
func NewExternalProposal(cfg *Config, cs CipherSuite, groupID []byte, epoch uint64, signer *Signer, senderIndex uint32, proposal ExternalProposal) ([]byte, error) {
	const op = "new external proposal"
	c, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	if signer == nil || signer.suite.ID() != cs {
		return nil, fmt.Errorf("mls: %s: signer is not for cipher suite %#04x", op, uint16(cs))
	}
	if proposal.ResumptionPSK != nil && proposal.ResumptionPSK.GroupID == nil {
		r := *proposal.ResumptionPSK
		r.GroupID = groupID
		proposal.ResumptionPSK = &r
	}
	p, err := proposal.wire(c, signer.suite, op)
	if err != nil {
		return nil, err
	}
	return outsideProposal(signer, groupID, epoch, wire.Sender{Type: wire.SenderTypeExternal, SenderIndex: senderIndex}, p, op)
}

// NewMemberAddProposal creates the Add proposal by which the owner of
// bundle asks to join the group described by groupInfo (an MLSMessage
// GroupInfo), as a new_member_proposal sender (RFC 9420 §12.1.8). The
// proposal is signed with bundle.Signer; a member commits it by reference
// and the joiner joins from the resulting Welcome. The GroupInfo gives the
// group id, epoch and suite; its signature is not checked here (a proposal
// for the wrong group or epoch is simply refused by the group).
func NewMemberAddProposal(groupInfo []byte, bundle *KeyPackageBundle) ([]byte, error) {
	const op = "new member add proposal"
	if bundle == nil || bundle.kp == nil || bundle.Signer == nil {
		return nil, fmt.Errorf("mls: %s: no KeyPackage bundle", op)
	}
	var m wire.MLSMessage
	if err := wire.Unmarshal(groupInfo, &m); err != nil {
		return nil, causeError(op, "", ErrMalformed, err, "decode GroupInfo")
	}
	if m.Version != wire.ProtocolVersionMLS10 || m.WireFormat != wire.WireFormatGroupInfo {
		return nil, ruleError(op, "§6", ErrMalformed, "not an mls10 GroupInfo")
	}
	gc := &m.GroupInfo.GroupContext
	if gc.CipherSuite != bundle.kp.CipherSuite {
		return nil, ruleError(op, "§10.1", ErrInvalidKeyPackage, "KeyPackage cipher suite %#04x, group's %#04x", uint16(bundle.kp.CipherSuite), uint16(gc.CipherSuite))
	}
	p := &wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *bundle.kp}}
	return outsideProposal(bundle.Signer, gc.GroupID, gc.Epoch, wire.Sender{Type: wire.SenderTypeNewMemberProposal}, p, op)
}

// outsideProposal signs p as sender (external or new_member_proposal) and
// wraps it in a PublicMessage without membership tag (RFC 9420 §6.2).
func outsideProposal(signer *Signer, groupID []byte, epoch uint64, sender wire.Sender, p *wire.Proposal, op string) ([]byte, error) {
	// The signature of these senders does not cover the GroupContext
	// (§6.1): a context naming just the group and epoch suffices.
	ctx, err := framing.NewContext(signer.suite, &wire.GroupContext{
		Version: wire.ProtocolVersionMLS10, CipherSuite: signer.suite.ID(), GroupID: slices.Clone(groupID), Epoch: epoch,
		TreeHash: []byte{}, ConfirmedTranscriptHash: []byte{}, Extensions: wire.Extensions{},
	})
	if err != nil {
		return nil, opError(op, err)
	}
	content := &wire.FramedContent{
		GroupID: slices.Clone(groupID), Epoch: epoch, Sender: sender,
		AuthenticatedData: []byte{}, ContentType: wire.ContentTypeProposal, Proposal: p,
	}
	ac, err := framing.SignContent(ctx, wire.WireFormatPublicMessage, content, signer.priv)
	if err != nil {
		return nil, opError(op, err)
	}
	pm, err := framing.SealPublic(ctx, ac, nil)
	if err != nil {
		return nil, opError(op, err)
	}
	return encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
}
