package wire

import (
	"errors"
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
)

// GroupInfo is RFC 9420 §12.4.3 GroupInfo, signed by the member at leaf
// index Signer.
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      Extensions
	ConfirmationTag []byte
	Signer          uint32
	Signature       []byte
}

func (g *GroupInfo) encodeTBS(b *codec.Builder) {
	g.GroupContext.EncodeMLS(b)
	g.Extensions.EncodeMLS(b)
	b.AddOpaque(g.ConfirmationTag)
	b.AddUint32(g.Signer)
}

// EncodeMLS appends the GroupInfo's encoding.
func (g *GroupInfo) EncodeMLS(b *codec.Builder) {
	g.encodeTBS(b)
	b.AddOpaque(g.Signature)
}

// DecodeMLS reads a GroupInfo.
func (g *GroupInfo) DecodeMLS(r *codec.Reader) {
	g.GroupContext.DecodeMLS(r)
	g.Extensions.DecodeMLS(r)
	g.ConfirmationTag = r.Opaque()
	g.Signer = r.Uint32()
	g.Signature = r.Opaque()
}

// TBS returns the encoded GroupInfoTBS (every field but the signature), or
// nil if the GroupInfo cannot be encoded.
func (g *GroupInfo) TBS() []byte {
	var b codec.Builder
	g.encodeTBS(&b)
	return bytesOrNil(&b)
}

// Sign sets g.Signature to SignWithLabel(priv, "GroupInfoTBS", TBS()).
// priv is the signature private key of the member at leaf g.Signer.
func (g *GroupInfo) Sign(s *suite.Suite, priv []byte) error {
	tbs := g.TBS()
	if tbs == nil {
		return errors.New("wire: sign GroupInfo: group info cannot be encoded")
	}
	sig, err := s.SignWithLabel(priv, "GroupInfoTBS", tbs)
	if err != nil {
		return fmt.Errorf("wire: sign GroupInfo: %w", err)
	}
	g.Signature = sig
	return nil
}

// Verify checks g.Signature against pub, the signature key of the leaf
// node at index g.Signer in the group's ratchet tree. It returns nil only
// for a valid signature.
func (g *GroupInfo) Verify(s *suite.Suite, pub []byte) error {
	tbs := g.TBS()
	if tbs == nil {
		return errors.New("wire: verify GroupInfo: group info cannot be encoded")
	}
	if err := s.VerifyWithLabel(pub, "GroupInfoTBS", tbs, g.Signature); err != nil {
		return fmt.Errorf("wire: verify GroupInfo: signature of signer %d invalid: %w", g.Signer, err)
	}
	return nil
}
