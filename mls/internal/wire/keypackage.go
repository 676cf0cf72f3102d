package wire

import (
	"errors"
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
)

// KeyPackage is RFC 9420 §10 KeyPackage: a signed bundle that lets others
// add its owner to a group.
type KeyPackage struct {
	Version     ProtocolVersion
	CipherSuite suite.ID
	InitKey     []byte
	LeafNode    LeafNode
	Extensions  Extensions
	Signature   []byte
}

func (k *KeyPackage) encodeTBS(b *codec.Builder) {
	b.AddUint16(uint16(k.Version))
	b.AddUint16(uint16(k.CipherSuite))
	b.AddOpaque(k.InitKey)
	k.LeafNode.EncodeMLS(b)
	k.Extensions.EncodeMLS(b)
}

// EncodeMLS appends the KeyPackage's encoding.
func (k *KeyPackage) EncodeMLS(b *codec.Builder) {
	k.encodeTBS(b)
	b.AddOpaque(k.Signature)
}

// DecodeMLS reads a KeyPackage. Version and cipher suite are kept verbatim.
func (k *KeyPackage) DecodeMLS(r *codec.Reader) {
	k.Version = ProtocolVersion(r.Uint16())
	k.CipherSuite = suite.ID(r.Uint16())
	k.InitKey = r.Opaque()
	k.LeafNode.DecodeMLS(r)
	k.Extensions.DecodeMLS(r)
	k.Signature = r.Opaque()
}

// TBS returns the encoded KeyPackageTBS (every field but the signature),
// or nil if the KeyPackage cannot be encoded.
func (k *KeyPackage) TBS() []byte {
	var b codec.Builder
	k.encodeTBS(&b)
	return bytesOrNil(&b)
}

// Sign sets k.Signature to SignWithLabel(priv, "KeyPackageTBS", TBS()).
// priv is the private key of k.LeafNode.SignatureKey.
func (k *KeyPackage) Sign(s *suite.Suite, priv []byte) error {
	tbs := k.TBS()
	if tbs == nil {
		return errors.New("wire: sign KeyPackage: key package cannot be encoded")
	}
	sig, err := s.SignWithLabel(priv, "KeyPackageTBS", tbs)
	if err != nil {
		return fmt.Errorf("wire: sign KeyPackage: %w", err)
	}
	k.Signature = sig
	return nil
}

// Verify checks k.Signature against k.LeafNode.SignatureKey. It returns
// nil only for a valid signature; it checks nothing else.
func (k *KeyPackage) Verify(s *suite.Suite) error {
	tbs := k.TBS()
	if tbs == nil {
		return errors.New("wire: verify KeyPackage: key package cannot be encoded")
	}
	if err := s.VerifyWithLabel(k.LeafNode.SignatureKey, "KeyPackageTBS", tbs, k.Signature); err != nil {
		return fmt.Errorf("wire: verify KeyPackage: signature invalid: %w", err)
	}
	return nil
}

// Ref returns the KeyPackageRef of RFC 9420 §5.2: RefHash("MLS 1.0
// KeyPackage Reference", encoded KeyPackage), under s, which should be the
// KeyPackage's own cipher suite.
func (k *KeyPackage) Ref(s *suite.Suite) ([]byte, error) {
	enc, err := codec.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("wire: KeyPackage ref: %w", err)
	}
	return s.RefHash("MLS 1.0 KeyPackage Reference", enc), nil
}
