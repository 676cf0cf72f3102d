package mls

import (
	"errors"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/treekem"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// MessageKind says what a processed message carried.
type MessageKind uint8

// The kinds of processed messages.
const (
	KindApplication MessageKind = iota + 1
	KindProposal
	KindCommit
)

// SenderType is the kind of sender of a message (RFC 9420 §6).
type SenderType = wire.SenderType

// The sender types of RFC 9420 §6.
const (
	SenderMember            = wire.SenderTypeMember
	SenderExternal          = wire.SenderTypeExternal
	SenderNewMemberProposal = wire.SenderTypeNewMemberProposal
	SenderNewMemberCommit   = wire.SenderTypeNewMemberCommit
)

// Sender identifies who sent a message: a member by leaf, an external sender
// by its index in external_senders, or a new member.
type Sender struct {
	Type SenderType
	// Leaf is the member's leaf (for new_member_commit: the leaf it takes).
	Leaf LeafIndex
	// ExternalIndex is the index into external_senders.
	ExternalIndex uint32
}

func senderFromWire(s wire.Sender) Sender {
	return Sender{Type: s.Type, Leaf: LeafIndex(s.LeafIndex), ExternalIndex: s.SenderIndex}
}

// Processed is the result of Group.Process. Its slices are owned by the
// caller.
type Processed struct {
	Kind MessageKind
	// Epoch is the epoch the message was sent in.
	Epoch uint64
	// Sender is the message's sender.
	Sender Sender
	// AuthenticatedData is the message's authenticated_data.
	AuthenticatedData []byte
	// ApplicationData is the plaintext of an application message. It is
	// secret to the group.
	ApplicationData []byte
	// Proposal describes a proposal, now cached.
	Proposal *ProposalInfo
	// Commit is a staged commit to inspect and merge (MergeStagedCommit).
	Commit *StagedCommit
}

// ProposalInfo describes a received proposal.
type ProposalInfo struct {
	// Type is the proposal type (RFC 9420 §12.1).
	Type uint16
	// Sender is the proposal's sender.
	Sender Sender
	// Ref is its ProposalRef.
	Ref []byte
	// Leaf is the leaf a Remove or Update concerns.
	Leaf LeafIndex
	// KeyPackageRef is the ref of an Add's KeyPackage.
	KeyPackageRef []byte
	// Credential is the credential of an Add's KeyPackage leaf.
	Credential Credential
}

// StagedCommit is a validated Commit that has not been applied: the
// application inspects it and calls MergeStagedCommit, or
// DiscardStagedCommit to reject it.
type StagedCommit struct {
	// Epoch is the epoch the commit starts.
	Epoch uint64
	// Committer is the commit's sender.
	Committer Sender
	// Added, Removed and Updated describe the membership change. Added
	// lists the members added by Add proposals and, for an external commit
	// (Committer.Type SenderNewMemberCommit), the joiner at the leaf it
	// takes; Removed the removed members, including the old leaf of a
	// resyncing joiner (RFC 9420 §12.4.3.2); Updated the members whose
	// leaves Update proposals replaced and, for a member's commit with a
	// path, the committer's new leaf.
	Added, Removed, Updated []Member
	// Extensions are the new GroupContext extensions; ExtensionsChanged
	// says whether a GroupContextExtensions proposal replaced them.
	Extensions        []Extension
	ExtensionsChanged bool
	// SelfRemoved says this member is removed by the commit.
	SelfRemoved bool
	// Proposals are the proposals the commit applies, in order: those
	// included by reference with the Sender that proposed them, those
	// by value with the committer as Sender and a nil Ref. An
	// application that lets proposals be made only by some members
	// checks them here.
	Proposals []ProposalInfo
	// ReInit, if non-nil, says the group ends and is re-initialized with
	// these parameters (RFC 9420 §11.2).
	ReInit *ReInitInfo
	// PSKs is the number of pre-shared keys injected.
	PSKs int

	transition
}

// Process processes one incoming MLSMessage (RFC 9420 §6, §12, §15):
// application messages are decrypted (including late ones from a bounded
// number of past epochs), proposals are validated and cached, commits are
// validated and staged. The group changes only by caching a proposal and by
// consuming message keys.
func (g *Group) Process(msg []byte) (*Processed, error) {
	const op = "process"
	if g.state == statePendingJoin {
		return nil, fmt.Errorf("mls: %s: external join not merged yet: %w", op, ErrStale)
	}
	var m wire.MLSMessage
	if err := wire.Unmarshal(msg, &m); err != nil {
		return nil, causeError(op, "", ErrMalformed, err, "decode")
	}
	if m.Version != wire.ProtocolVersionMLS10 {
		return nil, ruleError(op, "§6", ErrMalformed, "version %d is not mls10", m.Version)
	}
	var ac *wire.AuthenticatedContent
	switch m.WireFormat {
	case wire.WireFormatPublicMessage:
		if g.state == stateRemoved {
			return nil, fmt.Errorf("mls: %s: %w", op, ErrRemoved)
		}
		var err error
		if ac, err = g.c.unprotectPublic(m.PublicMessage, g.keys.sched.MembershipKey, op); err != nil {
			return nil, err
		}
	case wire.WireFormatPrivateMessage:
		pm := m.PrivateMessage
		if !equalBytes(pm.GroupID, g.c.gc.GroupID) {
			return nil, ruleError(op, "§6", ErrWrongGroup, "group_id %x", pm.GroupID)
		}
		if pm.Epoch != g.c.gc.Epoch || g.state == stateRemoved {
			return g.processPast(pm, op)
		}
		var err error
		ac, err = framing.UnprotectPrivate(g.c.ctx, pm, g.keys.sched.SenderDataSecret, g.keys.secrets, g.c.signerLookup(g.c.tree))
		if err != nil {
			return nil, causeError(op, "§6.3", ErrMalformed, err, "unprotect")
		}
	default:
		return nil, ruleError(op, "§6", ErrMalformed, "wire format %d cannot be processed by a group", m.WireFormat)
	}
	return g.processContent(ac, op)
}

// processPast decrypts an application message of a past epoch.
func (g *Group) processPast(pm *wire.PrivateMessage, op string) (*Processed, error) {
	for _, p := range g.past {
		if p.ctx.Epoch() != pm.Epoch {
			continue
		}
		if pm.ContentType != wire.ContentTypeApplication {
			return nil, &EpochError{Op: op + " handshake message", MessageEpoch: pm.Epoch, GroupEpoch: g.c.gc.Epoch}
		}
		lookup := func(s wire.Sender) ([]byte, error) {
			k := p.signatureKey(LeafIndex(s.LeafIndex))
			if k == nil {
				return nil, ErrNotMember
			}
			return k, nil
		}
		ac, err := framing.UnprotectPrivate(p.ctx, pm, p.senderData, p.secrets, lookup)
		if err != nil {
			return nil, causeError(op, "§6.3", ErrMalformed, err, "unprotect (epoch %d)", pm.Epoch)
		}
		return &Processed{Kind: KindApplication, Epoch: pm.Epoch, Sender: senderFromWire(ac.Content.Sender), AuthenticatedData: ac.Content.AuthenticatedData, ApplicationData: ac.Content.ApplicationData}, nil
	}
	if g.state == stateRemoved && pm.Epoch == g.c.gc.Epoch && pm.ContentType == wire.ContentTypeApplication {
		// Removed members keep the last epoch's keys (in keys) for late
		// messages of that epoch.
		ac, err := framing.UnprotectPrivate(g.c.ctx, pm, g.keys.sched.SenderDataSecret, g.keys.secrets, g.c.signerLookup(g.c.tree))
		if err != nil {
			return nil, causeError(op, "§6.3", ErrMalformed, err, "unprotect")
		}
		return &Processed{Kind: KindApplication, Epoch: pm.Epoch, Sender: senderFromWire(ac.Content.Sender), AuthenticatedData: ac.Content.AuthenticatedData, ApplicationData: ac.Content.ApplicationData}, nil
	}
	if g.state == stateRemoved {
		return nil, fmt.Errorf("mls: %s: %w", op, ErrRemoved)
	}
	return nil, &EpochError{Op: op, MessageEpoch: pm.Epoch, GroupEpoch: g.c.gc.Epoch}
}

func (g *Group) processContent(ac *wire.AuthenticatedContent, op string) (*Processed, error) {
	fc := &ac.Content
	out := &Processed{Epoch: fc.Epoch, Sender: senderFromWire(fc.Sender), AuthenticatedData: fc.AuthenticatedData}
	switch fc.ContentType {
	case wire.ContentTypeApplication:
		if g.state != stateActive {
			return nil, fmt.Errorf("mls: %s: application message after the group ended: %w", op, ErrRemoved)
		}
		out.Kind = KindApplication
		out.ApplicationData = fc.ApplicationData
	case wire.ContentTypeProposal:
		if err := g.checkActive(op + " proposal"); err != nil {
			return nil, err
		}
		cp, err := g.c.receiveProposal(ac, op+" proposal")
		if err != nil {
			return nil, err
		}
		out.Kind = KindProposal
		out.Proposal = proposalInfo(g.c, cp)
	case wire.ContentTypeCommit:
		if err := g.checkActive(op + " commit"); err != nil {
			return nil, err
		}
		sc, err := g.stageCommit(ac, op+" commit")
		if err != nil {
			return nil, err
		}
		out.Kind = KindCommit
		out.Commit = sc
		if ac.Content.Sender.Type == wire.SenderTypeNewMemberCommit {
			out.Sender.Leaf = sc.Committer.Leaf
		}
	default:
		return nil, ruleError(op, "§6", ErrMalformed, "content type %d", fc.ContentType)
	}
	return out, nil
}

func proposalInfo(c *core, cp *cachedProposal) *ProposalInfo {
	return describeProposal(c, cp.p, cp.sender, cp.ref)
}

// describeProposal describes proposal p sent by sender (ref nil for a
// proposal by value).
func describeProposal(c *core, p *wire.Proposal, sender wire.Sender, ref []byte) *ProposalInfo {
	pi := &ProposalInfo{Type: uint16(p.Type), Sender: senderFromWire(sender), Ref: slices.Clone(ref)}
	switch p.Type {
	case wire.ProposalTypeRemove:
		pi.Leaf = LeafIndex(p.Remove.Removed)
	case wire.ProposalTypeUpdate:
		pi.Leaf = LeafIndex(sender.LeafIndex)
	case wire.ProposalTypeAdd:
		pi.KeyPackageRef, _ = p.Add.KeyPackage.Ref(c.cs)
		pi.Credential = credentialFromWire(&p.Add.KeyPackage.LeafNode.Credential)
	}
	return pi
}

// committedProposals describes the proposals applied by a commit from
// committer (its Leaf set to the committer's leaf in the new tree).
func committedProposals(c *core, a *applied, committer Sender) []ProposalInfo {
	out := make([]ProposalInfo, 0, len(a.entries))
	for _, e := range a.entries {
		pi := describeProposal(c, e.p, e.sender, e.ref)
		if e.ref == nil {
			pi.Sender = committer
		}
		out = append(out, *pi)
	}
	return out
}

// stageCommit validates a received Commit and computes the next epoch (RFC
// 9420 §12.4.2) without changing the group.
func (g *Group) stageCommit(ac *wire.AuthenticatedContent, op string) (*StagedCommit, error) {
	fc := &ac.Content
	cm := fc.Commit
	self := g.OwnLeaf()
	if fc.Sender.Type == wire.SenderTypeMember && LeafIndex(fc.Sender.LeafIndex) == self {
		return nil, fmt.Errorf("mls: %s: commit sent by this member: %w", op, ErrOwnCommit)
	}
	if len(ac.Auth.ConfirmationTag) == 0 {
		return nil, ruleError(op, "§6.1", ErrInvalidCommit, "missing confirmation tag")
	}
	es, err := g.c.resolve(cm, fc.Sender, op)
	if err != nil {
		return nil, err
	}
	a, err := g.c.applyProposals(es, fc.Sender, cm.Path != nil, applyOpts{self: int64(self)}, op)
	if err != nil {
		return nil, err
	}
	sc := &StagedCommit{Epoch: g.c.gc.Epoch + 1, Committer: senderFromWire(fc.Sender), PSKs: len(a.psks), transition: transition{g: g, version: g.version, reinit: a.reinit}}
	sc.Committer.Leaf = a.committer
	sc.Extensions, sc.ExtensionsChanged = extsFromWire(a.exts), a.gce
	sc.Proposals = committedProposals(g.c, a, sc.Committer)
	for _, r := range a.removed {
		if r.leaf == self {
			sc.SelfRemoved = true
		}
	}
	if a.reinit != nil {
		sc.ReInit = reinitInfo(a.reinit, g)
	}
	newTree := a.tree
	commitSecret := schedule.CommitSecret(make([]byte, g.c.cs.HashSize()))
	var priv *treekem.Private
	if cm.Path != nil {
		if err := g.c.checkPathLeaf(a, cm.Path, op); err != nil {
			return nil, err
		}
		if sc.SelfRemoved {
			if newTree, err = treekem.MergeUpdatePath(a.tree, a.committer, cm.Path, g.c.gc.GroupID); err != nil {
				return nil, causeError(op, "§12.4.2", ErrInvalidCommit, err, "path")
			}
		} else {
			base := g.priv
			if a.ownUpdate != nil {
				if a.ownUpdate.leafPriv == nil {
					return nil, ruleError(op, "§12.1.2", ErrInvalidCommit, "commits an Update of this member whose key is unknown")
				}
				if base, err = treekem.NewPrivate(g.c.cs, self, a.ownUpdate.leafPriv); err != nil {
					return nil, opError(op, err)
				}
				defer base.Zero()
			}
			prov := g.c.provisional(a)
			ap, err := treekem.ApplyUpdatePath(a.tree, base, a.committer, cm.Path, treekem.ApplyParams{GroupID: g.c.gc.GroupID, Exclude: addedLeaves(a), Context: treekem.GroupContext(&prov)})
			if err != nil {
				return nil, causeError(op, "§12.4.2", ErrInvalidCommit, err, "path")
			}
			defer ap.Zero()
			newTree, priv, commitSecret = ap.Tree, ap.Private, ap.CommitSecret
		}
	} else if !sc.SelfRemoved {
		priv = g.priv.Clone()
	}
	sc.Added, sc.Removed, sc.Updated = changes(a, newTree)
	if cm.Path != nil && !a.external {
		ln := newTree.Leaf(a.committer)
		sc.Updated = append(sc.Updated, Member{Leaf: a.committer, Credential: credentialFromWire(&ln.Credential), SignatureKey: ln.SignatureKey, EncryptionKey: ln.EncryptionKey})
	}
	if sc.SelfRemoved {
		return sc, nil
	}
	init := g.keys.sched.InitSecret
	if a.extInit != nil {
		extPriv, _, err := g.keys.sched.ExternalKeyPair()
		if err != nil {
			priv.Zero()
			return nil, opError(op, err)
		}
		is, err := g.c.cs.ExportRecipient(extPriv, nil, a.extInit.KEMOutput, []byte(externalInitLabel), g.c.cs.HashSize())
		clear(extPriv)
		if err != nil {
			priv.Zero()
			return nil, causeError(op, "§8.3", ErrInvalidCommit, err, "external init")
		}
		init = schedule.InitSecret(is)
		defer clear(is)
	}
	next, sched, err := g.c.deriveNext(a, newTree, ac, init, commitSecret, g.pskSecret, ac.Auth.ConfirmationTag)
	if err != nil {
		priv.Zero()
		if errors.Is(err, ErrMissingPSK) {
			return nil, opError(op, err)
		}
		return nil, causeError(op, "§12.4.2", ErrInvalidCommit, err, "key schedule")
	}
	sc.next, sc.sched, sc.priv = next, sched.Epoch, priv
	return sc, nil
}

// externalInitLabel is the HPKE exporter context of RFC 9420 §8.3.
const externalInitLabel = "MLS 1.0 external init secret"

// MergeStagedCommit applies a staged commit. It fails with ErrStale if the
// group changed since it was staged. If the commit removed this member,
// the group becomes inactive (ErrRemoved on later use) but keeps the last
// epoch's keys for late application messages.
func (g *Group) MergeStagedCommit(sc *StagedCommit) error {
	const op = "merge staged commit"
	if sc == nil || !sc.take(g) {
		return fmt.Errorf("mls: %s: %w", op, ErrStale)
	}
	if sc.SelfRemoved {
		g.state = stateRemoved
		g.version++
		return nil
	}
	if err := sc.apply(g); err != nil {
		return opError(op, err)
	}
	return nil
}

// DiscardStagedCommit drops a staged commit the application rejects: the
// new epoch's secrets are wiped, the group is unchanged, and the commit
// can no longer be merged.
func (g *Group) DiscardStagedCommit(sc *StagedCommit) {
	if sc != nil {
		sc.discard()
	}
}
