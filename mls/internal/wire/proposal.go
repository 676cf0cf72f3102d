package wire

import (
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
)

// ProposalType identifies a proposal (RFC 9420 §12.1, "MLS Proposal Types"
// registry).
type ProposalType uint16

// The proposal types of RFC 9420 §17.4.
const (
	ProposalTypeAdd                    ProposalType = 1
	ProposalTypeUpdate                 ProposalType = 2
	ProposalTypeRemove                 ProposalType = 3
	ProposalTypePSK                    ProposalType = 4
	ProposalTypeReInit                 ProposalType = 5
	ProposalTypeExternalInit           ProposalType = 6
	ProposalTypeGroupContextExtensions ProposalType = 7
)

// Add is RFC 9420 §12.1.1 Add.
type Add struct {
	KeyPackage KeyPackage
}

// EncodeMLS appends the Add's encoding.
func (p *Add) EncodeMLS(b *codec.Builder) { p.KeyPackage.EncodeMLS(b) }

// DecodeMLS reads an Add.
func (p *Add) DecodeMLS(r *codec.Reader) { p.KeyPackage.DecodeMLS(r) }

// Update is RFC 9420 §12.1.2 Update.
type Update struct {
	LeafNode LeafNode
}

// EncodeMLS appends the Update's encoding.
func (p *Update) EncodeMLS(b *codec.Builder) { p.LeafNode.EncodeMLS(b) }

// DecodeMLS reads an Update.
func (p *Update) DecodeMLS(r *codec.Reader) { p.LeafNode.DecodeMLS(r) }

// Remove is RFC 9420 §12.1.3 Remove: the leaf index of the removed member.
type Remove struct {
	Removed uint32
}

// EncodeMLS appends the Remove's encoding.
func (p *Remove) EncodeMLS(b *codec.Builder) { b.AddUint32(p.Removed) }

// DecodeMLS reads a Remove.
func (p *Remove) DecodeMLS(r *codec.Reader) { p.Removed = r.Uint32() }

// PreSharedKey is RFC 9420 §12.1.4 PreSharedKey.
type PreSharedKey struct {
	PSK PreSharedKeyID
}

// EncodeMLS appends the PreSharedKey's encoding.
func (p *PreSharedKey) EncodeMLS(b *codec.Builder) { p.PSK.EncodeMLS(b) }

// DecodeMLS reads a PreSharedKey.
func (p *PreSharedKey) DecodeMLS(r *codec.Reader) { p.PSK.DecodeMLS(r) }

// ReInit is RFC 9420 §12.1.5 ReInit.
type ReInit struct {
	GroupID     []byte
	Version     ProtocolVersion
	CipherSuite suite.ID
	Extensions  Extensions
}

// EncodeMLS appends the ReInit's encoding.
func (p *ReInit) EncodeMLS(b *codec.Builder) {
	b.AddOpaque(p.GroupID)
	b.AddUint16(uint16(p.Version))
	b.AddUint16(uint16(p.CipherSuite))
	p.Extensions.EncodeMLS(b)
}

// DecodeMLS reads a ReInit.
func (p *ReInit) DecodeMLS(r *codec.Reader) {
	p.GroupID = r.Opaque()
	p.Version = ProtocolVersion(r.Uint16())
	p.CipherSuite = suite.ID(r.Uint16())
	p.Extensions.DecodeMLS(r)
}

// ExternalInit is RFC 9420 §12.1.6 ExternalInit.
type ExternalInit struct {
	KEMOutput []byte
}

// EncodeMLS appends the ExternalInit's encoding.
func (p *ExternalInit) EncodeMLS(b *codec.Builder) { b.AddOpaque(p.KEMOutput) }

// DecodeMLS reads an ExternalInit.
func (p *ExternalInit) DecodeMLS(r *codec.Reader) { p.KEMOutput = r.Opaque() }

// GroupContextExtensions is RFC 9420 §12.1.7 GroupContextExtensions.
type GroupContextExtensions struct {
	Extensions Extensions
}

// EncodeMLS appends the GroupContextExtensions' encoding.
func (p *GroupContextExtensions) EncodeMLS(b *codec.Builder) { p.Extensions.EncodeMLS(b) }

// DecodeMLS reads a GroupContextExtensions.
func (p *GroupContextExtensions) DecodeMLS(r *codec.Reader) { p.Extensions.DecodeMLS(r) }

// Proposal is RFC 9420 §12.1 Proposal. Exactly the field matching Type is
// set; a proposal of any other type carries its body in Unknown, encoded as
// opaque<V> (the convention of OpenMLS and mls-rs for custom proposals).
type Proposal struct {
	Type                   ProposalType
	Add                    *Add
	Update                 *Update
	Remove                 *Remove
	PreSharedKey           *PreSharedKey
	ReInit                 *ReInit
	ExternalInit           *ExternalInit
	GroupContextExtensions *GroupContextExtensions
	Unknown                []byte
}

// body returns the arm selected by Type, or nil if it is unset or Type is
// not a known type.
func (p *Proposal) body() codec.Encoder {
	switch p.Type {
	case ProposalTypeAdd:
		if p.Add != nil {
			return p.Add
		}
	case ProposalTypeUpdate:
		if p.Update != nil {
			return p.Update
		}
	case ProposalTypeRemove:
		if p.Remove != nil {
			return p.Remove
		}
	case ProposalTypePSK:
		if p.PreSharedKey != nil {
			return p.PreSharedKey
		}
	case ProposalTypeReInit:
		if p.ReInit != nil {
			return p.ReInit
		}
	case ProposalTypeExternalInit:
		if p.ExternalInit != nil {
			return p.ExternalInit
		}
	case ProposalTypeGroupContextExtensions:
		if p.GroupContextExtensions != nil {
			return p.GroupContextExtensions
		}
	}
	return nil
}

// knownProposal reports whether t is defined by RFC 9420.
func knownProposal(t ProposalType) bool {
	return t >= ProposalTypeAdd && t <= ProposalTypeGroupContextExtensions
}

// EncodeMLS appends the Proposal's encoding.
func (p *Proposal) EncodeMLS(b *codec.Builder) {
	b.AddUint16(uint16(p.Type))
	if !knownProposal(p.Type) {
		b.AddOpaque(p.Unknown)
		return
	}
	body := p.body()
	if body == nil {
		b.Fail(fmt.Errorf("wire: encode Proposal: proposal_type %d without its body", p.Type))
		return
	}
	body.EncodeMLS(b)
}

// DecodeMLS reads a Proposal.
func (p *Proposal) DecodeMLS(r *codec.Reader) {
	*p = Proposal{Type: ProposalType(r.Uint16())}
	if r.Err() != nil {
		return
	}
	switch p.Type {
	case ProposalTypeAdd:
		p.Add = new(Add)
		p.Add.DecodeMLS(r)
	case ProposalTypeUpdate:
		p.Update = new(Update)
		p.Update.DecodeMLS(r)
	case ProposalTypeRemove:
		p.Remove = new(Remove)
		p.Remove.DecodeMLS(r)
	case ProposalTypePSK:
		p.PreSharedKey = new(PreSharedKey)
		p.PreSharedKey.DecodeMLS(r)
	case ProposalTypeReInit:
		p.ReInit = new(ReInit)
		p.ReInit.DecodeMLS(r)
	case ProposalTypeExternalInit:
		p.ExternalInit = new(ExternalInit)
		p.ExternalInit.DecodeMLS(r)
	case ProposalTypeGroupContextExtensions:
		p.GroupContextExtensions = new(GroupContextExtensions)
		p.GroupContextExtensions.DecodeMLS(r)
	default:
		p.Unknown = r.Opaque()
	}
}

// ProposalRef returns MakeProposalRef of RFC 9420 §5.2: RefHash("MLS 1.0
// Proposal Reference", authenticatedContent), where authenticatedContent
// is the encoded AuthenticatedContent that carried the proposal.
func ProposalRef(s *suite.Suite, authenticatedContent []byte) []byte {
	return s.RefHash("MLS 1.0 Proposal Reference", authenticatedContent)
}
