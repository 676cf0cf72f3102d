package mls

import (
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treekem"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// ExternalJoinOptions are the inputs of JoinExternal besides the GroupInfo.
type ExternalJoinOptions struct {
	// RatchetTree is the encoded ratchet tree when the GroupInfo does not
	// carry the ratchet_tree extension.
	RatchetTree []byte
	// ResyncLeaf, if non-nil, removes this client's old leaf in the same
	// commit (a "resync", RFC 9420 §12.4.3.2); the new credential must
	// have the same identity (or pass Config.ValidateCredential).
	ResyncLeaf *LeafIndex
	// ExternalPSKs lists ids of external PSKs (in Config.PSKs) to inject.
	ExternalPSKs [][]byte
	// Capabilities and LeafExtensions shape the new leaf as in
	// KeyPackageOptions.
	Capabilities   *Capabilities
	LeafExtensions []Extension
	// InlineRatchetTree and ExternalPub shape PendingCommit.GroupInfo.
	InlineRatchetTree bool
	ExternalPub       bool
	// AuthenticatedData is sent in the clear with the Commit.
	AuthenticatedData []byte
}

// JoinExternal joins a group by external commit (RFC 9420 §12.4.3.2) from a
// GroupInfo (MLSMessage) carrying external_pub. The GroupInfo and the whole
// tree are validated as for a Welcome. It returns the group, which stays
// unusable until the application merges the returned PendingCommit with
// g.MergePendingCommit once the Delivery Service accepted it. As for
// JoinFromWelcome, the application checks that the group's id is unique
// among its groups (§12.4.3.1).
func JoinExternal(cfg *Config, groupInfo []byte, signer *Signer, credential Credential, opts ExternalJoinOptions) (*Group, *PendingCommit, error) {
	const op = "join external"
	c, err := cfg.normalized()
	if err != nil {
		return nil, nil, err
	}
	gi, t, err := openGroupInfo(c, groupInfo, opts.RatchetTree, op)
	if err != nil {
		return nil, nil, err
	}
	s := t.Suite()
	if signer == nil || signer.suite.ID() != s.ID() {
		return nil, nil, fmt.Errorf("mls: %s: signer is not for cipher suite %#04x", op, uint16(s.ID()))
	}
	e := gi.Extensions.Find(wire.ExtensionExternalPub)
	if e == nil {
		return nil, nil, ruleError(op, "§12.4.3.2", ErrInvalidWelcome, "GroupInfo has no external_pub extension")
	}
	var ep wire.ExternalPub
	if err := wire.Unmarshal(e.Data, &ep); err != nil {
		return nil, nil, causeError(op, "§12.4.3.2", ErrInvalidWelcome, err, "external_pub")
	}
	interim, err := framing.InterimTranscriptHash(s, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, nil, opError(op, err)
	}
	co, err := newCore(c, s, gi.GroupContext, t, interim)
	if err != nil {
		return nil, nil, causeError(op, "§12.4.3.2", ErrInvalidWelcome, err, "group context")
	}
	kemOut, initSecret, err := s.ExportSender(ep.PublicKey, nil, []byte(externalInitLabel), s.HashSize())
	if err != nil {
		return nil, nil, causeError(op, "§8.3", ErrInvalidWelcome, err, "external init")
	}
	defer clear(initSecret)
	sender := wire.Sender{Type: wire.SenderTypeNewMemberCommit}
	es := []entry{{p: &wire.Proposal{Type: wire.ProposalTypeExternalInit, ExternalInit: &wire.ExternalInit{KEMOutput: kemOut}}, sender: sender}}
	if opts.ResyncLeaf != nil {
		es = append(es, entry{p: &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: uint32(*opts.ResyncLeaf)}}, sender: sender})
	}
	g := &Group{cfg: c, c: co, signer: signer, state: stateActive, keys: &epochKeys{sched: &schedule.Epoch{}}}
	for _, id := range opts.ExternalPSKs {
		pid, err := g.newPSKID(wire.PSKTypeExternal, slices.Clone(id), 0)
		if err != nil {
			return nil, nil, opError(op, err)
		}
		es = append(es, entry{p: &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: pid}}, sender: sender})
	}
	a, err := co.applyProposals(es, sender, true, applyOpts{self: -1}, op)
	if err != nil {
		return nil, nil, err
	}
	kpo := KeyPackageOptions{Capabilities: opts.Capabilities, LeafExtensions: opts.LeafExtensions}
	tmpl := &wire.LeafNode{
		SignatureKey: signer.pub,
		Credential:   credential.wire(),
		Capabilities: buildCapabilities(s.ID(), credential.Type, kpo),
		Extensions:   extsToWire(opts.LeafExtensions),
	}
	if !c.DisableGREASE {
		tmpl.Extensions = append(tmpl.Extensions, greaseExtension(addGREASE(&tmpl.Capabilities)))
	}
	prov := co.provisional(a)
	up, err := treekem.CreateUpdatePath(a.tree, a.committer, treekem.CreateParams{
		Leaf: tmpl, SignaturePrivateKey: signer.priv, GroupID: gi.GroupContext.GroupID,
		Context: treekem.GroupContext(&prov), Workers: c.Workers,
	})
	if err != nil {
		return nil, nil, opError(op, err)
	}
	defer up.Zero()
	if err := co.checkPathLeaf(a, up.Path, op); err != nil {
		up.Private.Zero()
		return nil, nil, err
	}
	cm := &wire.Commit{Path: up.Path}
	for _, e := range es {
		cm.Proposals = append(cm.Proposals, wire.ProposalOrRef{Type: wire.ProposalOrRefProposal, Proposal: e.p})
	}
	content := &wire.FramedContent{
		GroupID: gi.GroupContext.GroupID, Epoch: gi.GroupContext.Epoch, Sender: sender,
		AuthenticatedData: orEmpty(opts.AuthenticatedData), ContentType: wire.ContentTypeCommit, Commit: cm,
	}
	ac, err := framing.SignContent(co.ctx, wire.WireFormatPublicMessage, content, signer.priv)
	if err != nil {
		up.Private.Zero()
		return nil, nil, opError(op, err)
	}
	psks := func(ids []wire.PreSharedKeyID) (schedule.CombinedPSK, error) { return resolvePSKs(s, ids, c.PSKs, nil) }
	next, sched, err := co.deriveNext(a, up.Tree, ac, schedule.InitSecret(initSecret), up.CommitSecret, psks, nil)
	if err != nil {
		up.Private.Zero()
		return nil, nil, opError(op, err)
	}
	ac.Auth.ConfirmationTag = sched.confirmationTag
	pm, err := framing.SealPublic(co.ctx, ac, nil)
	if err != nil {
		up.Private.Zero()
		return nil, nil, opError(op, err)
	}
	msg, err := encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
	if err != nil {
		return nil, nil, err
	}
	pc := &PendingCommit{Message: msg, Epoch: next.gc.Epoch, transition: transition{g: g, version: g.version, next: next, sched: sched.Epoch, priv: up.Private}}
	pc.Added, pc.Removed, pc.Updated = changes(a, up.Tree)
	gib, err := buildGroupInfo(!c.DisableGREASE, next, sched.Epoch, a.committer, signer, GroupInfoOptions{InlineRatchetTree: opts.InlineRatchetTree, ExternalPub: opts.ExternalPub})
	if err != nil {
		return nil, nil, err
	}
	if pc.GroupInfo, err = encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: gib}); err != nil {
		return nil, nil, err
	}
	g.state = statePendingJoin
	return g, pc, nil
}

// mlsMessageHeader is the size of an MLSMessage's version and wire_format,
// which precede its body (RFC 9420 §6).
const mlsMessageHeader = 4

// openGroupInfo decodes and verifies a GroupInfo and its tree (RFC 9420
// §12.4.3, with the tree validation of §12.4.3.1). data is copied once,
// after room for the SignContent header: the GroupInfo and the tree it
// carries alias that copy, and the signature is checked over the
// GroupInfoTBS as received (wire.GroupInfo.VerifyEncoded), so the tree's
// bytes are neither copied per node nor re-encoded.
func openGroupInfo(c *Config, data, ratchetTree []byte, op string) (*wire.GroupInfo, *tree.Tree, error) {
	off := suite.LabelHeadroom(wire.LabelGroupInfoTBS)
	buf := make([]byte, off+len(data))
	copy(buf[off:], data)
	var m wire.MLSMessage
	if err := wire.UnmarshalAliasing(buf[off:], &m); err != nil {
		return nil, nil, causeError(op, "", ErrMalformed, err, "decode")
	}
	if m.Version != wire.ProtocolVersionMLS10 || m.WireFormat != wire.WireFormatGroupInfo {
		return nil, nil, ruleError(op, "§6", ErrMalformed, "not an mls10 GroupInfo")
	}
	gi := m.GroupInfo
	gc := &gi.GroupContext
	if gc.Version != wire.ProtocolVersionMLS10 {
		return nil, nil, ruleError(op, "§12.4.3", ErrInvalidWelcome, "version %d", gc.Version)
	}
	s, err := suite.New(gc.CipherSuite)
	if err != nil {
		return nil, nil, causeError(op, "§12.4.3", ErrInvalidWelcome, err, "cipher suite")
	}
	t, err := joinTree(s, gi, ratchetTree, nil)
	if err != nil {
		return nil, nil, causeError(op, "§12.4.3", ErrInvalidWelcome, err, "ratchet tree")
	}
	ln := t.Leaf(LeafIndex(gi.Signer))
	if ln == nil {
		return nil, nil, ruleError(op, "§12.4.3", ErrInvalidWelcome, "signer %d is a blank leaf", gi.Signer)
	}
	// The GroupInfo is the rest of the message, after its header.
	if err := gi.VerifyEncoded(s, ln.SignatureKey, buf, off+mlsMessageHeader); err != nil {
		return nil, nil, causeError(op, "§12.4.3", ErrInvalidWelcome, err, "signature")
	}
	if err := validateJoinTree(c, t, gc, op); err != nil {
		return nil, nil, err
	}
	return gi, t, nil
}
