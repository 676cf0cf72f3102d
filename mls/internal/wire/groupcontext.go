package wire

import (
	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
)

// GroupContext is RFC 9420 §8.1 GroupContext: the state a group's members
// agree on in one epoch.
type GroupContext struct {
	Version                 ProtocolVersion
	CipherSuite             suite.ID
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              Extensions
}

// EncodeMLS appends the GroupContext's encoding.
func (g *GroupContext) EncodeMLS(b *codec.Builder) {
	b.AddUint16(uint16(g.Version))
	b.AddUint16(uint16(g.CipherSuite))
	b.AddOpaque(g.GroupID)
	b.AddUint64(g.Epoch)
	b.AddOpaque(g.TreeHash)
	b.AddOpaque(g.ConfirmedTranscriptHash)
	g.Extensions.EncodeMLS(b)
}

// DecodeMLS reads a GroupContext. Version and cipher suite are kept
// verbatim.
func (g *GroupContext) DecodeMLS(r *codec.Reader) {
	g.Version = ProtocolVersion(r.Uint16())
	g.CipherSuite = suite.ID(r.Uint16())
	g.GroupID = r.Opaque()
	g.Epoch = r.Uint64()
	g.TreeHash = r.Opaque()
	g.ConfirmedTranscriptHash = r.Opaque()
	g.Extensions.DecodeMLS(r)
}
