package wire

import (
	"errors"
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
)

// ProposalOrRefType says whether a Commit entry is inline or a reference
// (RFC 9420 §12.4).
type ProposalOrRefType uint8

// The ProposalOrRef types of RFC 9420 §12.4.
const (
	ProposalOrRefProposal  ProposalOrRefType = 1
	ProposalOrRefReference ProposalOrRefType = 2
)

// ProposalOrRef is RFC 9420 §12.4 ProposalOrRef: an inline Proposal or a
// ProposalRef (Reference).
type ProposalOrRef struct {
	Type      ProposalOrRefType
	Proposal  *Proposal
	Reference []byte
}

// EncodeMLS appends the ProposalOrRef's encoding.
func (p *ProposalOrRef) EncodeMLS(b *codec.Builder) {
	b.AddUint8(uint8(p.Type))
	switch p.Type {
	case ProposalOrRefProposal:
		if p.Proposal == nil {
			b.Fail(errors.New("wire: encode ProposalOrRef: type proposal without proposal"))
			return
		}
		p.Proposal.EncodeMLS(b)
	case ProposalOrRefReference:
		b.AddOpaque(p.Reference)
	default:
		b.Fail(fmt.Errorf("wire: encode ProposalOrRef: unknown type %d", p.Type))
	}
}

// DecodeMLS reads a ProposalOrRef; an unknown type is an error.
func (p *ProposalOrRef) DecodeMLS(r *codec.Reader) {
	*p = ProposalOrRef{Type: ProposalOrRefType(r.Uint8())}
	if r.Err() != nil {
		return
	}
	switch p.Type {
	case ProposalOrRefProposal:
		p.Proposal = new(Proposal)
		p.Proposal.DecodeMLS(r)
	case ProposalOrRefReference:
		p.Reference = r.Opaque()
	default:
		r.Failf("wire: decode ProposalOrRef: unknown type %d", p.Type)
	}
}

// Commit is RFC 9420 §12.4 Commit; Path is nil when absent.
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath
}

// EncodeMLS appends the Commit's encoding.
func (c *Commit) EncodeMLS(b *codec.Builder) {
	b.AddVector(func(b *codec.Builder) {
		for i := range c.Proposals {
			c.Proposals[i].EncodeMLS(b)
		}
	})
	b.AddOptional(c.Path != nil, c.Path.EncodeMLS)
}

// DecodeMLS reads a Commit.
func (c *Commit) DecodeMLS(r *codec.Reader) {
	*c = Commit{Proposals: []ProposalOrRef{}}
	r.VectorFunc(func(r *codec.Reader) {
		var p ProposalOrRef
		p.DecodeMLS(r)
		c.Proposals = append(c.Proposals, p)
	})
	if r.Optional() {
		c.Path = new(UpdatePath)
		c.Path.DecodeMLS(r)
	}
}
