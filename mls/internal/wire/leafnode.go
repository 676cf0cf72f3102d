package wire

import (
	"errors"
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
)

// LeafNodeSource says how a LeafNode was created (RFC 9420 §7.2).
type LeafNodeSource uint8

// The leaf node sources of RFC 9420 §7.2.
const (
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

// Capabilities is RFC 9420 §7.2 Capabilities. Values, including GREASE
// values (§13.5) and unknown ones, are kept verbatim and in order.
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []suite.ID
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

// EncodeMLS appends the Capabilities' encoding.
func (c *Capabilities) EncodeMLS(b *codec.Builder) {
	encodeUint16s(b, c.Versions)
	encodeUint16s(b, c.CipherSuites)
	encodeUint16s(b, c.Extensions)
	encodeUint16s(b, c.Proposals)
	encodeUint16s(b, c.Credentials)
}

// DecodeMLS reads Capabilities.
func (c *Capabilities) DecodeMLS(r *codec.Reader) {
	c.Versions = decodeUint16s[ProtocolVersion](r)
	c.CipherSuites = decodeUint16s[suite.ID](r)
	c.Extensions = decodeUint16s[ExtensionType](r)
	c.Proposals = decodeUint16s[ProposalType](r)
	c.Credentials = decodeUint16s[CredentialType](r)
}

// Lifetime is RFC 9420 §7.2 Lifetime: seconds since the Unix epoch.
type Lifetime struct {
	NotBefore, NotAfter uint64
}

// EncodeMLS appends the Lifetime's encoding.
func (l *Lifetime) EncodeMLS(b *codec.Builder) {
	b.AddUint64(l.NotBefore)
	b.AddUint64(l.NotAfter)
}

// DecodeMLS reads a Lifetime.
func (l *Lifetime) DecodeMLS(r *codec.Reader) {
	l.NotBefore = r.Uint64()
	l.NotAfter = r.Uint64()
}

// LeafNode is RFC 9420 §7.2 LeafNode. The select on Source uses Lifetime
// (key_package, must be non-nil) or ParentHash (commit); update carries
// neither.
type LeafNode struct {
	EncryptionKey []byte
	SignatureKey  []byte
	Credential    Credential
	Capabilities  Capabilities
	Source        LeafNodeSource
	Lifetime      *Lifetime
	ParentHash    []byte
	Extensions    Extensions
	Signature     []byte
}

// encodeContent appends every field up to and including extensions.
func (l *LeafNode) encodeContent(b *codec.Builder) {
	b.AddOpaque(l.EncryptionKey)
	b.AddOpaque(l.SignatureKey)
	l.Credential.EncodeMLS(b)
	l.Capabilities.EncodeMLS(b)
	b.AddUint8(uint8(l.Source))
	switch l.Source {
	case LeafNodeSourceKeyPackage:
		if l.Lifetime == nil {
			b.Fail(errors.New("wire: encode LeafNode: leaf_node_source key_package without lifetime"))
			return
		}
		l.Lifetime.EncodeMLS(b)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		b.AddOpaque(l.ParentHash)
	default:
		b.Fail(fmt.Errorf("wire: encode LeafNode: unknown leaf_node_source %d", l.Source))
		return
	}
	l.Extensions.EncodeMLS(b)
}

// EncodeMLS appends the LeafNode's encoding.
func (l *LeafNode) EncodeMLS(b *codec.Builder) {
	l.encodeContent(b)
	b.AddOpaque(l.Signature)
}

// DecodeMLS reads a LeafNode; an unknown leaf_node_source is an error.
func (l *LeafNode) DecodeMLS(r *codec.Reader) { l.decode(r, nil) }

// decode reads a LeafNode, storing its Lifetime, if any, in lt (a fresh
// one if lt is nil).
func (l *LeafNode) decode(r *codec.Reader, lt *Lifetime) {
	*l = LeafNode{}
	l.EncryptionKey = r.Opaque()
	l.SignatureKey = r.Opaque()
	l.Credential.DecodeMLS(r)
	l.Capabilities.DecodeMLS(r)
	l.Source = LeafNodeSource(r.Uint8())
	if r.Err() != nil {
		return
	}
	switch l.Source {
	case LeafNodeSourceKeyPackage:
		if lt == nil {
			lt = new(Lifetime)
		}
		l.Lifetime = lt
		l.Lifetime.DecodeMLS(r)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		l.ParentHash = r.Opaque()
	default:
		r.Failf("wire: decode LeafNode: unknown leaf_node_source %d", l.Source)
		return
	}
	l.Extensions.DecodeMLS(r)
	l.Signature = r.Opaque()
}

// TBS returns the encoded LeafNodeTBS (RFC 9420 §7.2): the leaf node
// without its signature, followed for update and commit sources by groupID
// and leaf (the leaf index); for key_package sources groupID and leaf are
// ignored. It returns nil if the node cannot be encoded.
func (l *LeafNode) TBS(groupID []byte, leaf uint32) []byte {
	var b codec.Builder
	l.encodeTBS(&b, groupID, leaf)
	out, err := b.Bytes()
	if err != nil {
		return nil
	}
	return out
}

// encodeTBS appends the LeafNodeTBS, as TBS.
func (l *LeafNode) encodeTBS(b *codec.Builder, groupID []byte, leaf uint32) {
	l.encodeContent(b)
	if l.Source == LeafNodeSourceUpdate || l.Source == LeafNodeSourceCommit {
		b.AddOpaque(groupID)
		b.AddUint32(leaf)
	}
}

// labelLeafNodeTBS is the SignWithLabel label of LeafNodeTBS.
const labelLeafNodeTBS = "LeafNodeTBS"

// Sign sets l.Signature to SignWithLabel(priv, "LeafNodeTBS", TBS(groupID,
// leaf)). priv is the private key of l.SignatureKey.
func (l *LeafNode) Sign(s *suite.Suite, priv, groupID []byte, leaf uint32) error {
	tbs := l.TBS(groupID, leaf)
	if tbs == nil {
		return errors.New("wire: sign LeafNode: node cannot be encoded")
	}
	sig, err := s.SignWithLabel(priv, labelLeafNodeTBS, tbs)
	if err != nil {
		return fmt.Errorf("wire: sign LeafNode: %w", err)
	}
	l.Signature = sig
	return nil
}

// Verify checks l.Signature against l.SignatureKey over TBS(groupID,
// leaf). It returns nil only for a valid signature.
func (l *LeafNode) Verify(s *suite.Suite, groupID []byte, leaf uint32) error {
	// Room for the whole SignContent up front: one allocation.
	n := suite.LabelHeadroom(labelLeafNodeTBS) + len(l.EncryptionKey) + len(l.SignatureKey) + len(l.ParentHash) + len(groupID) + 256
	return l.VerifyScratch(s, groupID, leaf, codec.NewBuilder(make([]byte, 0, n)))
}

// VerifyScratch is Verify encoding the signed SignContent with scratch,
// which it resets first: verifying many leaves with one Builder reuses its
// storage and allocates nothing per leaf. What it leaves in scratch is
// public.
func (l *LeafNode) VerifyScratch(s *suite.Suite, groupID []byte, leaf uint32, scratch *codec.Builder) error {
	off := suite.LabelHeadroom(labelLeafNodeTBS)
	scratch.Reset()
	scratch.AddZeros(off)
	l.encodeTBS(scratch, groupID, leaf)
	buf, err := scratch.Bytes()
	if err != nil {
		return errors.New("wire: verify LeafNode: node cannot be encoded")
	}
	if err := s.VerifyWithLabelHeadroom(l.SignatureKey, labelLeafNodeTBS, buf, off, l.Signature); err != nil {
		return fmt.Errorf("wire: verify LeafNode: signature invalid: %w", err)
	}
	return nil
}
