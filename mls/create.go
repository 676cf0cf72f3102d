package mls

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treekem"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// CreateOptions are the choices for CreateGroup. The zero value is usable.
type CreateOptions struct {
	// Extensions are the initial GroupContext extensions (RFC 9420 §11),
	// e.g. required_capabilities or external_senders.
	Extensions []Extension
	// Capabilities, LeafExtensions and Lifetime shape the creator's leaf
	// as in KeyPackageOptions.
	Capabilities   *Capabilities
	LeafExtensions []Extension
	Lifetime       time.Duration
}

// CreateGroup creates a one-member group with the given id in epoch 0 (RFC
// 9420 §11). groupID should be random and unique (§11: for instance
// KDF.Nh random bytes); it is copied. The library keeps no registry of a
// client's groups: keeping their ids unique is the application's duty
// (see JoinFromWelcome).
func CreateGroup(cfg *Config, cs CipherSuite, groupID []byte, signer *Signer, credential Credential, opts CreateOptions) (*Group, error) {
	const op = "create group"
	c, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	if signer == nil || signer.suite.ID() != cs {
		return nil, fmt.Errorf("mls: %s: signer is not for cipher suite %#04x", op, uint16(cs))
	}
	s := signer.suite
	if len(groupID) == 0 {
		return nil, fmt.Errorf("mls: %s: empty group id", op)
	}
	encPriv, encPub, err := s.GenerateHPKEKey()
	if err != nil {
		return nil, opError(op, err)
	}
	kpo := KeyPackageOptions{Lifetime: opts.Lifetime, Capabilities: opts.Capabilities, LeafExtensions: opts.LeafExtensions}
	lifetime := opts.Lifetime
	if lifetime <= 0 {
		lifetime = DefaultKeyPackageLifetime
	}
	now := c.Now()
	nb := max(now.Add(-time.Hour).Unix(), 0)
	leaf := &wire.LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  signer.pub,
		Credential:    credential.wire(),
		Capabilities:  buildCapabilities(cs, credential.Type, kpo),
		Source:        wire.LeafNodeSourceKeyPackage,
		Lifetime:      &wire.Lifetime{NotBefore: uint64(nb), NotAfter: uint64(now.Add(lifetime).Unix())},
		Extensions:    extsToWire(opts.LeafExtensions),
	}
	if !c.DisableGREASE {
		leaf.Extensions = append(leaf.Extensions, greaseExtension(addGREASE(&leaf.Capabilities)))
	}
	if err := leaf.Sign(s, signer.priv, nil, 0); err != nil {
		return nil, opError(op, err)
	}
	exts := extsToWire(opts.Extensions)
	return newGroup(c, s, append([]byte(nil), groupID...), signer, leaf, encPriv, exts, op)
}

// newGroup builds epoch 0 of a group whose only member has leaf.
func newGroup(c *Config, s *suite.Suite, groupID []byte, signer *Signer, leaf *wire.LeafNode, encPriv []byte, exts wire.Extensions, op string) (*Group, error) {
	req, _, err := parseGroupExtensions(exts)
	if err != nil {
		return nil, causeError(op, "§11", ErrInvalidProposal, err, "extensions")
	}
	if err := supportsGroup(leaf, exts, req); err != nil {
		return nil, causeError(op, "§11", ErrInvalidLeafNode, err, "creator")
	}
	if err := checkLeafSelf(leaf); err != nil {
		return nil, causeError(op, "§7.3", ErrInvalidLeafNode, err, "creator")
	}
	t, err := tree.New(s, leaf)
	if err != nil {
		return nil, opError(op, err)
	}
	th, err := t.TreeHash()
	if err != nil {
		return nil, opError(op, err)
	}
	gc := wire.GroupContext{
		Version:                 wire.ProtocolVersionMLS10,
		CipherSuite:             s.ID(),
		GroupID:                 groupID,
		Epoch:                   0,
		TreeHash:                append([]byte(nil), th...),
		ConfirmedTranscriptHash: []byte{},
		Extensions:              exts,
	}
	epochSecret := make([]byte, s.HashSize())
	if _, err := rand.Read(epochSecret); err != nil {
		return nil, opError(op, err)
	}
	sched, err := schedule.FromEpochSecret(s, schedule.EpochSecret(epochSecret))
	clear(epochSecret)
	if err != nil {
		return nil, opError(op, err)
	}
	tag, err := framing.ConfirmationTag(s, sched.ConfirmationKey, gc.ConfirmedTranscriptHash)
	if err != nil {
		return nil, opError(op, err)
	}
	interim, err := framing.InterimTranscriptHash(s, gc.ConfirmedTranscriptHash, tag)
	if err != nil {
		return nil, opError(op, err)
	}
	co, err := newCore(c, s, gc, t, interim)
	if err != nil {
		return nil, opError(op, err)
	}
	priv, err := treekem.NewPrivate(s, 0, encPriv)
	if err != nil {
		return nil, opError(op, err)
	}
	g := &Group{cfg: c, signer: signer}
	if err := g.install(co, sched, priv); err != nil {
		return nil, opError(op, err)
	}
	return g, nil
}
