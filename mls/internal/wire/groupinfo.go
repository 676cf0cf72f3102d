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
	sig, err := s.SignWithLabel(priv, LabelGroupInfoTBS, tbs)
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
	if err := s.VerifyWithLabel(pub, LabelGroupInfoTBS, tbs, g.Signature); err != nil {
		return fmt.Errorf("wire: verify GroupInfo: signature of signer %d invalid: %w", g.Signer, err)
	}
	return nil
}

// LabelGroupInfoTBS is the SignWithLabel label of GroupInfoTBS.
const LabelGroupInfoTBS = "GroupInfoTBS"

// VerifyEncoded is Verify over the GroupInfoTBS as received rather than
// re-encoded: buf[off:] must be exactly the encoding g was decoded from,
// and the off bytes before it (at least suite.LabelHeadroom(
// LabelGroupInfoTBS)) are scratch space, which it overwrites. Decoding a
// GroupInfo is canonical: every field decodes only from the bytes that
// EncodeMLS writes for the decoded value (minimal varints, exact lengths,
// no optional or boolean octets; FuzzGroupInfo checks that decoding then
// encoding reproduces the input), so the received TBS is TBS() byte for
// byte, and the check is Verify's without a copy of the ratchet tree the
// GroupInfo may carry.
func (g *GroupInfo) VerifyEncoded(s *suite.Suite, pub, buf []byte, off int) error {
	if off < 0 || off > len(buf) {
		return fmt.Errorf("wire: verify GroupInfo: headroom %d outside the %d-byte buffer", off, len(buf))
	}
	enc := buf[off:]
	var hdr [4]byte
	sigField, err := codec.AppendVarint(hdr[:0], uint64(len(g.Signature)))
	n := len(enc) - len(sigField) - len(g.Signature)
	if err != nil || n < 0 || string(enc[n:n+len(sigField)]) != string(sigField) || string(enc[n+len(sigField):]) != string(g.Signature) {
		return errors.New("wire: verify GroupInfo: encoding does not end with the group info's signature")
	}
	if err := s.VerifyWithLabelHeadroom(pub, LabelGroupInfoTBS, buf[:off+n], off, g.Signature); err != nil {
		return fmt.Errorf("wire: verify GroupInfo: signature of signer %d invalid: %w", g.Signer, err)
	}
	return nil
}
