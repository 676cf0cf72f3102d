package mls

import (
	"crypto/rand"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// ProposeAdd proposes adding the owner of keyPackage (an MLSMessage or a bare
// KeyPackage) (RFC 9420 §12.1.1). Like every Propose method it returns the
// encoded MLSMessage to send and caches the proposal so that a later Commit
// (by anyone) can include it by reference.
func (g *Group) ProposeAdd(keyPackage []byte) ([]byte, error) {
	kp, err := decodeKeyPackage(keyPackage)
	if err != nil {
		return nil, causeError("propose add", "", ErrInvalidKeyPackage, err, "decode")
	}
	return g.propose(&wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp}}, nil, "propose add")
}

// ProposeRemove proposes removing the member at leaf (RFC 9420 §12.1.3).
func (g *Group) ProposeRemove(leaf LeafIndex) ([]byte, error) {
	return g.propose(&wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: uint32(leaf)}}, nil, "propose remove")
}

// ProposeSelfRemove proposes removing this member: leaving the group. Another
// member commits it; until then the group stays usable.
func (g *Group) ProposeSelfRemove() ([]byte, error) {
	return g.ProposeRemove(g.OwnLeaf())
}

// ProposeUpdate proposes replacing this member's leaf with a fresh
// encryption key (RFC 9420 §12.1.2). The new private key is kept with the
// cached proposal until a Commit includes it.
func (g *Group) ProposeUpdate() ([]byte, error) {
	const op = "propose update"
	if err := g.checkActive(op); err != nil {
		return nil, err
	}
	s := g.c.cs
	encPriv, encPub, err := s.GenerateHPKEKey()
	if err != nil {
		return nil, opError(op, err)
	}
	old := g.c.tree.Leaf(g.OwnLeaf())
	ln := *old
	ln.EncryptionKey = encPub
	ln.Source = wire.LeafNodeSourceUpdate
	ln.Lifetime = nil
	ln.ParentHash = nil
	if err := ln.Sign(s, g.signer.priv, g.c.gc.GroupID, uint32(g.OwnLeaf())); err != nil {
		return nil, opError(op, err)
	}
	return g.propose(&wire.Proposal{Type: wire.ProposalTypeUpdate, Update: &wire.Update{LeafNode: ln}}, encPriv, op)
}

// ProposeExternalPSK proposes injecting the external PSK with the given id
// (RFC 9420 §12.1.4); Config.PSKs must hold it.
func (g *Group) ProposeExternalPSK(id []byte) ([]byte, error) {
	pid, err := g.newPSKID(wire.PSKTypeExternal, slices.Clone(id), 0)
	if err != nil {
		return nil, opError("propose PSK", err)
	}
	return g.propose(&wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: pid}}, nil, "propose PSK")
}

// ProposeResumptionPSK proposes injecting the resumption PSK of an earlier
// epoch of this group (RFC 9420 §8.6, usage application).
func (g *Group) ProposeResumptionPSK(epoch uint64) ([]byte, error) {
	pid, err := g.newPSKID(wire.PSKTypeResumption, nil, epoch)
	if err != nil {
		return nil, opError("propose PSK", err)
	}
	return g.propose(&wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: pid}}, nil, "propose PSK")
}

func (g *Group) newPSKID(t wire.PSKType, id []byte, epoch uint64) (wire.PreSharedKeyID, error) {
	nonce := make([]byte, g.c.cs.HashSize())
	if _, err := rand.Read(nonce); err != nil {
		return wire.PreSharedKeyID{}, err
	}
	pid := wire.PreSharedKeyID{Type: t, ID: id, Nonce: nonce}
	if t == wire.PSKTypeResumption {
		pid.Usage = wire.ResumptionPSKUsageApplication
		pid.GroupID = slices.Clone(g.c.gc.GroupID)
		pid.Epoch = epoch
	}
	return pid, nil
}

// ReInitParams are the parameters of a re-initialized group (RFC 9420
// §12.1.5, §11.2).
type ReInitParams struct {
	GroupID     []byte
	CipherSuite CipherSuite
	Extensions  []Extension
}

func (p *ReInitParams) wire(g *Group) *wire.ReInit {
	return &wire.ReInit{GroupID: slices.Clone(p.GroupID), Version: wire.ProtocolVersionMLS10, CipherSuite: p.CipherSuite, Extensions: extsToWire(p.Extensions)}
}

// ProposeReInit proposes re-initializing the group with new parameters (RFC
// 9420 §12.1.5).
func (g *Group) ProposeReInit(params ReInitParams) ([]byte, error) {
	return g.propose(&wire.Proposal{Type: wire.ProposalTypeReInit, ReInit: params.wire(g)}, nil, "propose reinit")
}

// ProposeGroupContextExtensions proposes replacing the GroupContext
// extensions with exts (RFC 9420 §12.1.7).
func (g *Group) ProposeGroupContextExtensions(exts []Extension) ([]byte, error) {
	return g.propose(&wire.Proposal{Type: wire.ProposalTypeGroupContextExtensions, GroupContextExtensions: &wire.GroupContextExtensions{Extensions: extsToWire(exts)}}, nil, "propose group context extensions")
}

func (g *Group) checkActive(op string) error {
	switch g.state {
	case stateRemoved:
		return fmt.Errorf("mls: %s: %w", op, ErrRemoved)
	case statePendingJoin:
		return fmt.Errorf("mls: %s: external join not merged yet: %w", op, ErrStale)
	case stateReInit:
		return fmt.Errorf("mls: %s: §12.4.2: group ended with a ReInit: %w", op, ErrRemoved)
	}
	return nil
}

func (g *Group) ownSender() wire.Sender {
	return wire.Sender{Type: wire.SenderTypeMember, LeafIndex: uint32(g.OwnLeaf())}
}

// propose validates, signs, protects and caches one proposal.
func (g *Group) propose(p *wire.Proposal, leafPriv []byte, op string) ([]byte, error) {
	if err := g.checkActive(op); err != nil {
		return nil, err
	}
	if err := g.c.checkProposal(p, g.ownSender(), op); err != nil {
		return nil, err
	}
	if err := g.c.checkCommittable(p, g.ownSender(), op); err != nil {
		return nil, err
	}
	content := &wire.FramedContent{
		GroupID:           g.c.gc.GroupID,
		Epoch:             g.c.gc.Epoch,
		Sender:            g.ownSender(),
		AuthenticatedData: []byte{},
		ContentType:       wire.ContentTypeProposal,
		Proposal:          p,
	}
	msg, ac, err := g.protect(content, nil)
	if err != nil {
		return nil, opError(op, err)
	}
	ref, err := g.c.proposalRef(ac)
	if err != nil {
		return nil, opError(op, err)
	}
	g.c.cache = append(g.c.cache, &cachedProposal{ref: ref, p: p, sender: g.ownSender(), leafPriv: leafPriv})
	return msg, nil
}

// protect signs content and wraps it as configured. For a commit, finish
// is called with the signed AuthenticatedContent to set its confirmation
// tag before sealing.
func (g *Group) protect(content *wire.FramedContent, finish func(*wire.AuthenticatedContent) error) ([]byte, *wire.AuthenticatedContent, error) {
	wf := wire.WireFormatPublicMessage
	if g.cfg.EncryptHandshake || content.ContentType == wire.ContentTypeApplication {
		wf = wire.WireFormatPrivateMessage
	}
	ac, err := framing.SignContent(g.c.ctx, wf, content, g.signer.priv)
	if err != nil {
		return nil, nil, err
	}
	if finish != nil {
		if err := finish(ac); err != nil {
			return nil, nil, err
		}
	}
	m := &wire.MLSMessage{WireFormat: wf}
	if wf == wire.WireFormatPublicMessage {
		pm, err := framing.SealPublic(g.c.ctx, ac, g.keys.sched.MembershipKey)
		if err != nil {
			return nil, nil, err
		}
		m.PublicMessage = pm
	} else {
		pm, err := framing.SealPrivate(g.c.ctx, ac, g.keys.sched.SenderDataSecret, g.keys.secrets, framing.PrivateOptions{PadTo: g.cfg.Padding, PadBlock: g.cfg.PaddingBlock})
		if err != nil {
			return nil, nil, err
		}
		m.PrivateMessage = pm
	}
	b, err := encodeMessage(m)
	if err != nil {
		return nil, nil, err
	}
	return b, ac, nil
}
