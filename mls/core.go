package mls

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// core is the public state of one epoch of a group: everything a member and
// the Delivery Service's follower share. Group embeds one, PublicGroup is
// one, so both run the same proposal validation and application and the
// same public path processing (RFC 9420 §12.1-§12.4). A core is never
// modified once built, except for its proposal cache and the cached
// encoding of its tree; the next epoch is a new core.
type core struct {
	cfg        *Config
	cs         *suite.Suite
	gc         wire.GroupContext
	ctx        *framing.Context
	tree       *tree.Tree
	interim    []byte
	req        *wire.RequiredCapabilities
	extSenders wire.ExternalSenders

	// cache holds the proposals received (or sent) in this epoch, by
	// reference (RFC 9420 §12.4).
	cache []*cachedProposal
	// treeEnc caches the encoded tree (encodedTree).
	treeEnc []byte
}

// encodedTree returns the encoded ratchet tree of the epoch (RFC 9420
// §12.4.3.3), computed once; the caller must not modify it.
func (c *core) encodedTree() ([]byte, error) {
	if c.treeEnc == nil {
		b, err := c.tree.Encode()
		if err != nil {
			return nil, err
		}
		c.treeEnc = b
	}
	return c.treeEnc, nil
}

// cachedProposal is one proposal of the current epoch.
type cachedProposal struct {
	ref    []byte
	p      *wire.Proposal
	sender wire.Sender
	// leafPriv is, for our own Update, the private key of its leaf's
	// encryption_key (secret).
	leafPriv []byte
}

func newCore(cfg *Config, cs *suite.Suite, gc wire.GroupContext, t *tree.Tree, interim []byte) (*core, error) {
	if gc.Version != wire.ProtocolVersionMLS10 {
		return nil, fmt.Errorf("§8.1: group context version %d is not mls10", gc.Version)
	}
	if gc.CipherSuite != cs.ID() {
		return nil, fmt.Errorf("§8.1: group context cipher suite %#04x is not %#04x", uint16(gc.CipherSuite), uint16(cs.ID()))
	}
	ctx, err := framing.NewContext(cs, &gc)
	if err != nil {
		return nil, err
	}
	req, senders, err := parseGroupExtensions(gc.Extensions)
	if err != nil {
		return nil, err
	}
	return &core{cfg: cfg, cs: cs, gc: gc, ctx: ctx, tree: t, interim: interim, req: req, extSenders: senders}, nil
}

// parseGroupExtensions checks a GroupContext extension list (RFC 9420
// §13.4: no type twice) and decodes required_capabilities and external_senders.
func parseGroupExtensions(es wire.Extensions) (*wire.RequiredCapabilities, wire.ExternalSenders, error) {
	if err := checkUniqueExtensions(es); err != nil {
		return nil, nil, err
	}
	var req *wire.RequiredCapabilities
	var senders wire.ExternalSenders
	if e := es.Find(wire.ExtensionRequiredCapabilities); e != nil {
		req = new(wire.RequiredCapabilities)
		if err := wire.Unmarshal(e.Data, req); err != nil {
			return nil, nil, fmt.Errorf("§11.1: required_capabilities: %w", err)
		}
	}
	if e := es.Find(wire.ExtensionExternalSenders); e != nil {
		if err := wire.Unmarshal(e.Data, &senders); err != nil {
			return nil, nil, fmt.Errorf("§12.1.8.1: external_senders: %w", err)
		}
	}
	return req, senders, nil
}

// checkUniqueExtensions checks that an extension list has no type twice
// (RFC 9420 §13.4: "Any field containing a list of extensions MUST NOT
// have more than one extension of any given type"): GroupContext,
// GroupInfo, KeyPackage, LeafNode and ReInit extensions alike.
func checkUniqueExtensions(es wire.Extensions) error {
	for i := range es {
		for j := range i {
			if es[i].Type == es[j].Type {
				return fmt.Errorf("§13.4: extension type %#04x appears twice", uint16(es[i].Type))
			}
		}
	}
	return nil
}

// externalSenders returns the epoch's external_senders entries, aliasing
// the core, or nil.
func (c *core) externalSenders() []ExternalSender {
	if len(c.extSenders) == 0 {
		return nil
	}
	out := make([]ExternalSender, len(c.extSenders))
	for i := range c.extSenders {
		es := &c.extSenders[i]
		out[i] = ExternalSender{SignatureKey: es.SignatureKey, Credential: credentialFromWire(&es.Credential)}
	}
	return out
}

// encodedContext returns the encoded GroupContext of the epoch.
func (c *core) encodedContext() []byte { return c.ctx.Encoded() }

// signerLookup returns the framing.SignerLookup for this epoch's members
// and external senders. New-member senders are resolved by the caller.
func (c *core) signerLookup(t *tree.Tree) framing.SignerLookup {
	return func(s wire.Sender) ([]byte, error) {
		switch s.Type {
		case wire.SenderTypeMember:
			ln := t.Leaf(LeafIndex(s.LeafIndex))
			if ln == nil {
				return nil, fmt.Errorf("sender leaf %d is blank or outside the tree: %w", s.LeafIndex, ErrNotMember)
			}
			return ln.SignatureKey, nil
		case wire.SenderTypeExternal:
			if uint64(s.SenderIndex) >= uint64(len(c.extSenders)) {
				return nil, fmt.Errorf("§12.1.8.1: external sender %d not in external_senders (%d entries): %w", s.SenderIndex, len(c.extSenders), ErrNotMember)
			}
			return c.extSenders[s.SenderIndex].SignatureKey, nil
		}
		return nil, fmt.Errorf("sender type %d has no key here", s.Type)
	}
}

// newMemberLookup extends signerLookup with the keys that new-member senders
// carry in the content itself (RFC 9420 §12.1.8, §12.4.3.2).
func (c *core) newMemberLookup(pm *wire.PublicMessage) framing.SignerLookup {
	base := c.signerLookup(c.tree)
	return func(s wire.Sender) ([]byte, error) {
		switch s.Type {
		case wire.SenderTypeNewMemberProposal:
			p := pm.Content.Proposal
			if p == nil || p.Type != wire.ProposalTypeAdd || p.Add == nil {
				return nil, fmt.Errorf("§12.1.8: new_member_proposal sender with a content other than an Add proposal")
			}
			return p.Add.KeyPackage.LeafNode.SignatureKey, nil
		case wire.SenderTypeNewMemberCommit:
			cm := pm.Content.Commit
			if cm == nil || cm.Path == nil {
				return nil, fmt.Errorf("§12.4.3.2: new_member_commit sender with a content other than a Commit with a path")
			}
			return cm.Path.LeafNode.SignatureKey, nil
		}
		return base(s)
	}
}

// unprotectPublic checks a PublicMessage of this epoch. membershipKey is nil
// for the follower, which cannot check the membership tag.
func (c *core) unprotectPublic(pm *wire.PublicMessage, membershipKey []byte, op string) (*wire.AuthenticatedContent, error) {
	if !bytes.Equal(pm.Content.GroupID, c.gc.GroupID) {
		return nil, ruleError(op, "§6", ErrWrongGroup, "group_id %x", pm.Content.GroupID)
	}
	if pm.Content.Epoch != c.gc.Epoch {
		return nil, &EpochError{Op: op, MessageEpoch: pm.Content.Epoch, GroupEpoch: c.gc.Epoch}
	}
	// The sender and content rules of §6.1 first, so that members and the
	// follower reject a message whose sender cannot have sent its content
	// the same way, before looking for a signature key.
	if err := checkSenderContent(&pm.Content); err != nil {
		return nil, causeError(op, "§6.1", ErrMalformed, err, "sender")
	}
	if membershipKey == nil {
		// The follower: verify everything but the membership tag.
		if pm.Content.ContentType == wire.ContentTypeApplication {
			return nil, ruleError(op, "§6.2", ErrMalformed, "application data in a PublicMessage")
		}
		if (pm.Content.Sender.Type == wire.SenderTypeMember) != (pm.MembershipTag != nil) {
			return nil, ruleError(op, "§6.2", ErrMalformed, "membership_tag presence does not match sender type %d", pm.Content.Sender.Type)
		}
		ac := &wire.AuthenticatedContent{WireFormat: wire.WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth}
		pub, err := c.newMemberLookup(pm)(pm.Content.Sender)
		if err != nil {
			return nil, causeError(op, "§6.1", ErrNotMember, err, "sender")
		}
		if err := framing.VerifyContent(c.ctx, ac, pub); err != nil {
			return nil, causeError(op, "§6.1", ErrMalformed, err, "signature")
		}
		return ac, nil
	}
	ac, err := framing.UnprotectPublic(c.ctx, pm, membershipKey, c.newMemberLookup(pm))
	if err != nil {
		return nil, causeError(op, "§6.2", ErrMalformed, err, "unprotect")
	}
	return ac, nil
}

// checkSenderContent applies the §6.1 sender/content type rules: external
// and new_member_proposal senders send only proposals, the latter only
// Add, the former only the types of externalProposalType (§12.1.8: other
// types "MUST be rejected as malformed"); new_member_commit senders only
// commits, which carry the path whose leaf holds their signature key
// (§12.4.3.2).
func checkSenderContent(fc *wire.FramedContent) error {
	switch fc.Sender.Type {
	case wire.SenderTypeMember:
		return nil
	case wire.SenderTypeExternal, wire.SenderTypeNewMemberProposal:
		if fc.ContentType != wire.ContentTypeProposal {
			return fmt.Errorf("sender type %d may only send proposals", fc.Sender.Type)
		}
		if fc.Sender.Type == wire.SenderTypeNewMemberProposal && (fc.Proposal == nil || fc.Proposal.Type != wire.ProposalTypeAdd || fc.Proposal.Add == nil) {
			return fmt.Errorf("new_member_proposal sender with a proposal other than Add")
		}
		if fc.Sender.Type == wire.SenderTypeExternal && fc.Proposal != nil && !externalProposalType(fc.Proposal.Type) {
			return fmt.Errorf("§12.1.8: external sender with proposal type %d, which external senders may not send", fc.Proposal.Type)
		}
	case wire.SenderTypeNewMemberCommit:
		if fc.ContentType != wire.ContentTypeCommit {
			return fmt.Errorf("new_member_commit sender with content type %d", fc.ContentType)
		}
		if fc.Commit == nil || fc.Commit.Path == nil {
			return fmt.Errorf("new_member_commit sender with a Commit without path")
		}
	default:
		return fmt.Errorf("unknown sender type %d", fc.Sender.Type)
	}
	return nil
}

// externalProposalType reports whether an external sender may send
// proposals of type t (RFC 9420 §12.1.8: add, remove, psk, reinit and
// group_context_extensions). Other types, this library's own custom ones
// included, are refused: it knows of none that declares itself allowed.
func externalProposalType(t wire.ProposalType) bool {
	switch t {
	case wire.ProposalTypeAdd, wire.ProposalTypeRemove, wire.ProposalTypePSK, wire.ProposalTypeReInit, wire.ProposalTypeGroupContextExtensions:
		return true
	}
	return false
}

// proposalRef returns the ProposalRef of an AuthenticatedContent.
func (c *core) proposalRef(ac *wire.AuthenticatedContent) ([]byte, error) {
	b, err := codec.Marshal(ac)
	if err != nil {
		return nil, err
	}
	return wire.ProposalRef(c.cs, b), nil
}

// receiveProposal validates a proposal message's content in this epoch
// (RFC 9420 §12.1, sender rules of §12.1.8) and caches it.
func (c *core) receiveProposal(ac *wire.AuthenticatedContent, op string) (*cachedProposal, error) {
	p := ac.Content.Proposal
	sender := ac.Content.Sender
	switch sender.Type {
	case wire.SenderTypeMember:
		if p.Type == wire.ProposalTypeExternalInit {
			return nil, ruleError(op, "§12.1.6", ErrInvalidProposal, "ExternalInit sent as a standalone proposal")
		}
	case wire.SenderTypeExternal:
		// Also refused by checkSenderContent, before the signature.
		if !externalProposalType(p.Type) {
			return nil, ruleError(op, "§12.1.8", ErrMalformed, "proposal type %d may not be sent by an external sender", p.Type)
		}
	case wire.SenderTypeNewMemberProposal:
		if p.Type != wire.ProposalTypeAdd {
			return nil, ruleError(op, "§12.1.8", ErrMalformed, "new_member_proposal sender with proposal type %d", p.Type)
		}
	default:
		return nil, ruleError(op, "§6", ErrInvalidProposal, "sender type %d cannot send proposals", sender.Type)
	}
	if err := c.checkProposal(p, sender, op); err != nil {
		return nil, err
	}
	if err := c.checkCommittable(p, sender, op); err != nil {
		return nil, err
	}
	ref, err := c.proposalRef(ac)
	if err != nil {
		return nil, opError(op, err)
	}
	for _, cp := range c.cache {
		if bytes.Equal(cp.ref, ref) {
			return cp, nil
		}
	}
	cp := &cachedProposal{ref: ref, p: p, sender: sender}
	if err := c.authorizeExternal(cp, op); err != nil {
		return nil, err
	}
	c.cache = append(c.cache, cp)
	return cp, nil
}

// authorizeExternal runs Config.AuthorizeExternalProposal for a proposal
// from outside the group (RFC 9420 §12.1.8: "External proposals that are
// not authorized are considered invalid"), before it is cached.
func (c *core) authorizeExternal(cp *cachedProposal, op string) error {
	if c.cfg.AuthorizeExternalProposal == nil {
		return nil
	}
	info := ExternalProposalInfo{GroupID: c.gc.GroupID, Epoch: c.gc.Epoch, Proposal: *proposalInfo(c, cp)}
	switch cp.sender.Type {
	case wire.SenderTypeExternal:
		if uint64(cp.sender.SenderIndex) >= uint64(len(c.extSenders)) {
			return ruleError(op, "§12.1.8.1", ErrNotMember, "external sender %d not in external_senders", cp.sender.SenderIndex)
		}
		es := &c.extSenders[cp.sender.SenderIndex]
		info.Credential, info.SignatureKey = credentialFromWire(&es.Credential), es.SignatureKey
	case wire.SenderTypeNewMemberProposal:
		ln := &cp.p.Add.KeyPackage.LeafNode
		info.Credential, info.SignatureKey = credentialFromWire(&ln.Credential), ln.SignatureKey
	default:
		return nil
	}
	if err := c.cfg.AuthorizeExternalProposal(info); err != nil {
		return fmt.Errorf("mls: %s: §12.1.8: proposal type %d from sender type %d refused by Config.AuthorizeExternalProposal: %w: %w", op, cp.p.Type, cp.sender.Type, err, ErrInvalidProposal)
	}
	return nil
}

// checkProposal checks one proposal on its own against the current epoch
// (RFC 9420 §12.1), with the rule of its type.
func (c *core) checkProposal(p *wire.Proposal, sender wire.Sender, op string) error {
	switch p.Type {
	case wire.ProposalTypeAdd:
		return c.checkAddProposal(p.Add, op)
	case wire.ProposalTypeUpdate:
		return c.checkUpdateProposal(p.Update, sender, op)
	case wire.ProposalTypeRemove:
		return c.checkRemoveProposal(p.Remove, op)
	case wire.ProposalTypePSK:
		return c.checkPSKProposal(p.PreSharedKey, op)
	case wire.ProposalTypeReInit:
		return c.checkReInitProposal(p.ReInit, op)
	case wire.ProposalTypeExternalInit:
		if p.ExternalInit == nil {
			return ruleError(op, "§12.1.6", ErrInvalidProposal, "ExternalInit without body")
		}
	case wire.ProposalTypeGroupContextExtensions:
		return checkGCEProposal(p.GroupContextExtensions, op)
	default:
		return c.checkCustomProposal(p.Type, op)
	}
	return nil
}

// checkAddProposal checks an Add (§12.1.1): a valid KeyPackage of a
// version no older than the group's (§10.1).
func (c *core) checkAddProposal(add *wire.Add, op string) error {
	if add == nil {
		return ruleError(op, "§12.1.1", ErrInvalidProposal, "Add without body")
	}
	if err := checkKeyPackage(c.cfg, c.cs, &add.KeyPackage, op); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalidProposal)
	}
	if add.KeyPackage.Version < c.gc.Version {
		return ruleError(op, "§10.1", ErrInvalidProposal, "KeyPackage version below the group's")
	}
	return nil
}

// checkUpdateProposal checks an Update (§12.1.2, §7.3): sent by the member
// whose leaf it replaces, with a leaf node of source update, a new
// encryption key and a valid signature.
func (c *core) checkUpdateProposal(up *wire.Update, sender wire.Sender, op string) error {
	if up == nil || sender.Type != wire.SenderTypeMember {
		return ruleError(op, "§12.1.2", ErrInvalidProposal, "Update not sent by a member")
	}
	old := c.tree.Leaf(LeafIndex(sender.LeafIndex))
	if old == nil {
		return ruleError(op, "§12.1.2", ErrInvalidProposal, "Update from blank leaf %d", sender.LeafIndex)
	}
	ln := &up.LeafNode
	if ln.Source != wire.LeafNodeSourceUpdate || ln.Lifetime != nil {
		return ruleError(op, "§7.3", ErrInvalidProposal, "Update leaf_node_source %d, want update", ln.Source)
	}
	if bytes.Equal(ln.EncryptionKey, old.EncryptionKey) {
		return ruleError(op, "§7.3", ErrInvalidProposal, "Update does not change the encryption_key of leaf %d", sender.LeafIndex)
	}
	if err := checkLeafSelf(ln); err != nil {
		return causeError(op, "§7.3", ErrInvalidProposal, err, "Update of leaf %d", sender.LeafIndex)
	}
	if err := ln.Verify(c.cs, c.gc.GroupID, sender.LeafIndex); err != nil {
		return causeError(op, "§7.3", ErrInvalidProposal, err, "Update leaf signature")
	}
	return nil
}

// checkRemoveProposal checks a Remove (§12.1.3): of a member. One without
// a body is refused as a Remove of leaf 0.
func (c *core) checkRemoveProposal(rm *wire.Remove, op string) error {
	if rm == nil {
		return ruleError(op, "§12.1.3", ErrInvalidProposal, "Remove of blank leaf %d", 0)
	}
	if c.tree.Leaf(LeafIndex(rm.Removed)) == nil {
		return ruleError(op, "§12.1.3", ErrInvalidProposal, "Remove of blank leaf %d", rm.Removed)
	}
	return nil
}

// checkPSKProposal checks a PreSharedKey (§12.1.4): a nonce of the
// suite's hash size, and a resumption PSK only with application usage.
func (c *core) checkPSKProposal(psk *wire.PreSharedKey, op string) error {
	if psk == nil {
		return ruleError(op, "§12.1.4", ErrInvalidProposal, "PreSharedKey without body")
	}
	id := &psk.PSK
	if len(id.Nonce) != c.cs.HashSize() {
		return ruleError(op, "§12.1.4", ErrInvalidProposal, "psk_nonce of %d bytes, want %d", len(id.Nonce), c.cs.HashSize())
	}
	if id.Type == wire.PSKTypeResumption && id.Usage != wire.ResumptionPSKUsageApplication {
		return ruleError(op, "§12.1.4", ErrInvalidProposal, "resumption PSK with usage %d in a proposal", id.Usage)
	}
	return nil
}

// checkReInitProposal checks a ReInit (§12.1.5): a version no older than
// the group's, a known cipher suite, and extensions for the new group
// with no type twice (§11.2, §13.4).
func (c *core) checkReInitProposal(ri *wire.ReInit, op string) error {
	if ri == nil || ri.Version < c.gc.Version {
		return ruleError(op, "§12.1.5", ErrInvalidProposal, "ReInit version below the group's")
	}
	if _, err := suite.New(ri.CipherSuite); err != nil {
		return causeError(op, "§12.1.5", ErrInvalidProposal, err, "ReInit cipher suite")
	}
	if err := checkUniqueExtensions(ri.Extensions); err != nil {
		return causeError(op, "§13.4", ErrInvalidProposal, err, "ReInit extensions")
	}
	return nil
}

// checkGCEProposal checks a GroupContextExtensions (§12.1.7): extensions
// the group can parse and use.
func checkGCEProposal(gce *wire.GroupContextExtensions, op string) error {
	if gce == nil {
		return ruleError(op, "§12.1.7", ErrInvalidProposal, "GroupContextExtensions without body")
	}
	if _, _, err := parseGroupExtensions(gce.Extensions); err != nil {
		return causeError(op, "§12.1.7", ErrInvalidProposal, err, "extensions")
	}
	return nil
}

// checkCustomProposal checks a proposal of a non-default type: every
// member must support it (§12.2).
func (c *core) checkCustomProposal(t wire.ProposalType, op string) error {
	for i, ln := range c.tree.Members() {
		if !slices.Contains(ln.Capabilities.Proposals, t) {
			return ruleError(op, "§12.2", ErrInvalidProposal, "proposal type %#04x not supported by leaf %d", uint16(t), i)
		}
	}
	return nil
}

// checkCommittable refuses, on receipt (and when this member proposes), a
// proposal that is valid on its own by §12.1 but can never be part of a
// valid Commit in this epoch, so that nobody caches it and no committer
// has to work around it: RFC 9420 §12.1 says such a proposal is invalid,
// and only valid proposals are cached for a later Commit. Members and the
// Delivery Service's follower (PublicGroup) run the same check, so they
// cache the same proposals.
//
// Proposals that are only incompatible with others (two
// GroupContextExtensions, two Adds of one client, an Update and a Remove
// of one leaf, a GroupContextExtensions some member does not support,
// which a Remove of that member in the same Commit would fix) stay valid
// on receipt; the committer chooses among them (applyOpts.filter).
func (c *core) checkCommittable(p *wire.Proposal, sender wire.Sender, op string) error {
	var ln *wire.LeafNode
	switch p.Type {
	case wire.ProposalTypeAdd:
		ln = &p.Add.KeyPackage.LeafNode
		// §7.3: the signature_key of a leaf an Add brings must be unique
		// among the members. The epoch's members are known on receipt; an
		// Add of a current member's key could only be committed with a
		// Remove of that member, which the proposer cannot make anyone
		// include. A committer that means it commits both by value.
		if j, dup := c.tree.SignatureKeyLeaf(ln.SignatureKey); dup {
			return ruleError(op, "§7.3", ErrInvalidProposal, "Add with the signature_key of leaf %d", j)
		}
	case wire.ProposalTypeUpdate:
		ln = &p.Update.LeafNode
		// §7.3: a new signature_key must not be another member's.
		if j, dup := c.tree.SignatureKeyLeaf(ln.SignatureKey); dup && uint32(j) != sender.LeafIndex {
			return ruleError(op, "§7.3", ErrInvalidProposal, "Update of leaf %d with the signature_key of leaf %d", sender.LeafIndex, j)
		}
		// §7.2, §12.1.2: the leaf must keep supporting the group's
		// version and cipher suite; no later proposal can change those.
		if err := c.checkGroupParams(ln); err != nil {
			return causeError(op, "§7.2", ErrInvalidProposal, err, "Update of leaf %d", sender.LeafIndex)
		}
	default:
		return nil
	}
	// §7.3: encryption keys are unique among the nodes of the tree; those
	// of the epoch's tree stay reserved for the whole Commit
	// (checkEncryptionKey), so no list can include this proposal.
	if x, dup := c.tree.EncryptionKeyNode(ln.EncryptionKey); dup {
		return ruleError(op, "§7.3", ErrInvalidProposal, "proposal type %d with the encryption_key of node %d", p.Type, x)
	}
	return nil
}

// checkGroupParams checks that a leaf supports the group's protocol version
// and cipher suite (RFC 9420 §7.2, §12.1.2): a member that dropped them
// from its capabilities could not be sent a Welcome for the group, nor
// validate a tree with itself in it.
func (c *core) checkGroupParams(ln *wire.LeafNode) error {
	if !slices.Contains(ln.Capabilities.Versions, c.gc.Version) {
		return fmt.Errorf("capabilities do not list the group's version %d", c.gc.Version)
	}
	if !slices.Contains(ln.Capabilities.CipherSuites, c.cs.ID()) {
		return fmt.Errorf("capabilities do not list the group's cipher suite %#04x", uint16(c.cs.ID()))
	}
	return nil
}

// cached returns the proposal of this epoch's cache with ProposalRef ref,
// or nil.
func (c *core) cached(ref []byte) *cachedProposal {
	for _, cp := range c.cache {
		if bytes.Equal(cp.ref, ref) {
			return cp
		}
	}
	return nil
}

// entry is one proposal of a commit, resolved.
type entry struct {
	p      *wire.Proposal
	sender wire.Sender
	ref    []byte // nil for by-value proposals
	cached *cachedProposal
	// optional marks a cached proposal the committer offered without
	// naming it (CommitOptions.IncludePending): applyProposals with
	// applyOpts.filter may drop it.
	optional bool
}

// resolve turns a Commit's ProposalOrRef list into proposals (RFC 9420
// §12.4: references name proposals of this epoch's cache).
func (c *core) resolve(cm *wire.Commit, committer wire.Sender, op string) ([]entry, error) {
	out := make([]entry, 0, len(cm.Proposals))
	for i := range cm.Proposals {
		por := &cm.Proposals[i]
		switch por.Type {
		case wire.ProposalOrRefProposal:
			if por.Proposal == nil {
				return nil, ruleError(op, "§12.4", ErrInvalidCommit, "empty inline proposal %d", i)
			}
			out = append(out, entry{p: por.Proposal, sender: committer})
		case wire.ProposalOrRefReference:
			if committer.Type == wire.SenderTypeNewMemberCommit {
				return nil, ruleError(op, "§12.4.3.2", ErrInvalidCommit, "external commit includes a proposal by reference")
			}
			found := c.cached(por.Reference)
			if found == nil {
				return nil, ruleError(op, "§12.4", ErrInvalidCommit, "unknown proposal reference %x", por.Reference)
			}
			for _, e := range out {
				if e.cached == found {
					return nil, ruleError(op, "§12.4", ErrInvalidCommit, "proposal reference %x included twice", por.Reference)
				}
			}
			out = append(out, entry{p: found.p, sender: found.sender, ref: found.ref, cached: found})
		default:
			return nil, ruleError(op, "§12.4", ErrInvalidCommit, "unknown ProposalOrRef type %d", por.Type)
		}
	}
	return out, nil
}

// applied is the result of applying a proposal list to a clone of the tree
// (RFC 9420 §12.3), before any UpdatePath.
type applied struct {
	tree     *tree.Tree
	exts     wire.Extensions
	req      *wire.RequiredCapabilities
	senders  wire.ExternalSenders
	gce      bool
	added    []addedMember
	removed  []removedMember
	updated  []updatedMember
	psks     []wire.PreSharedKeyID
	reinit   *wire.ReInit
	extInit  *wire.ExternalInit
	external bool
	// pathRequired says the Commit must carry a path (§12.4).
	pathRequired bool
	// committer is the committer's leaf in the new tree: for an external
	// commit, the blank leaf reserved for the joiner.
	committer LeafIndex
	// resync is the leaf an external joiner removed (its old self), or nil.
	resync *removedMember
	// ownUpdate is set when the committed proposals replace the leaf of
	// the member applying them with its own Update.
	ownUpdate *cachedProposal
	// entries is the proposal list applied: the given one, less what a
	// committer filtering dropped.
	entries []entry
	// dropped lists the optional entries a committer filtering dropped.
	dropped []droppedEntry
}

// isAdded reports whether leaf li is one the list adds.
func (a *applied) isAdded(li LeafIndex) bool {
	return slices.ContainsFunc(a.added, func(m addedMember) bool { return m.leaf == li })
}

type addedMember struct {
	leaf LeafIndex
	kp   *wire.KeyPackage
	ref  []byte // the KeyPackageRef of kp
}

type removedMember struct {
	leaf LeafIndex
	node *wire.LeafNode
}

type updatedMember struct {
	leaf     LeafIndex
	old, new *wire.LeafNode
}

// applyOpts carries the context of a proposal list application.
type applyOpts struct {
	// allowResumption permits resumption PSKs with reinit or branch usage,
	// as the first commit of a re-initialized or branched group has.
	allowResumption bool
	// self is the leaf of the member applying the list, or -1.
	self int64
	// filter is set for a committer choosing among its cached proposals
	// (CommitOptions.IncludePending): an optional entry that breaks a rule
	// is dropped, with the reason, instead of failing the whole list (RFC
	// 9420 §12.2 lets a committer leave received proposals out). Receivers
	// never filter: a list that breaks a rule is rejected.
	filter bool
	// havePSK, when filtering, reports whether the committer holds the
	// PSK an optional PreSharedKey proposal names; one it lacks is dropped
	// (§8.4: the commit could not be built with it).
	havePSK func(*wire.PreSharedKeyID) bool
}

// droppedEntry is an optional proposal a committer left out of its Commit,
// with the rule it broke.
type droppedEntry struct {
	e   entry
	err error
}

// applyProposals validates the proposal list of a Commit from committer
// (RFC 9420 §12.2, and §12.4.3.2 for external commits) and applies it to a
// clone of the tree in the order of §12.3. The core is not modified.
//
// With ao.filter, optional entries that break a rule are dropped (listed
// in applied.dropped) and the rest is applied; the kept list
// (applied.entries) is then validated again exactly as a receiver will, so
// a committer never sends a list its receivers reject. Dropping is
// deterministic: it depends only on the list's order and the epoch.
func (c *core) applyProposals(es []entry, committer wire.Sender, hasPath bool, ao applyOpts, op string) (*applied, error) {
	a, err := c.applyList(es, committer, hasPath, ao, op)
	if err != nil || !ao.filter || len(a.dropped) == 0 {
		return a, err
	}
	strict := ao
	strict.filter = false
	b, err := c.applyList(a.entries, committer, hasPath, strict, op)
	if err != nil {
		return nil, fmt.Errorf("%w (after dropping %d proposals)", err, len(a.dropped))
	}
	b.dropped = a.dropped
	return b, nil
}

// applyList is one pass of applyProposals. It reads as the steps of RFC
// 9420 §12.2 and §12.3:
//
//  1. checkCommitter: a member with a leaf, or an external joiner (§12.4).
//  2. sortByType: in list order, check each proposal alone (§12.1) and
//     against those before it (§12.2), and file it under its type;
//     then check the shape of the whole list (a ReInit alone, an
//     external commit's few types).
//  3. Apply, to a clone of the tree, in the order of §12.3:
//     GroupContextExtensions, Updates, Removes, Adds. PreSharedKey,
//     ExternalInit and ReInit proposals were noted in step 2 for the key
//     schedule.
//  4. Check the resulting tree: every remaining member supports the new
//     group extensions (else a committer filtering drops the
//     GroupContextExtensions and starts over without it), and the
//     members that process the Commit support every non-default
//     proposal type of the list.
//  5. finish: the kept list, whether a path is required, and the
//     committer's leaf.
//
// Each check of an entry happens before its effect, so that dropping it
// (with ao.filter) leaves no trace.
func (c *core) applyList(es []entry, committer wire.Sender, hasPath bool, ao applyOpts, op string) (*applied, error) {
	if err := c.checkCommitter(committer, op); err != nil {
		return nil, err
	}
	external := committer.Type == wire.SenderTypeNewMemberCommit
	l := &listApplier{
		c:         c,
		es:        es,
		committer: committer,
		external:  external,
		hasPath:   hasPath,
		ao:        ao,
		op:        op,
		a:         &applied{exts: c.gc.Extensions, req: c.req, senders: c.extSenders, external: external},
		kept:      make([]bool, len(es)),
		gce:       -1,
		touched:   map[uint32]wire.ProposalType{},
		pskIDs:    map[string]struct{}{},
	}
	if err := l.sortByType(); err != nil {
		return nil, err
	}
	l.a.tree = c.tree.Clone()
	if err := l.applyGroupContextExtensions(); err != nil {
		return nil, err
	}
	if err := l.applyUpdates(); err != nil {
		return nil, err
	}
	if err := l.applyRemoves(); err != nil {
		return nil, err
	}
	if err := l.applyAdds(); err != nil {
		return nil, err
	}
	if err := l.checkMembersSupportExtensions(); err != nil {
		if err := l.reject(l.gce, err); err != nil {
			return nil, err
		}
		return l.retryWithoutGCE()
	}
	if err := l.checkCustomProposalTypes(); err != nil {
		return nil, err
	}
	return l.finish()
}

// listApplier is the state of one applyList pass: the list, the entries
// of each type in list order (§12.3 applies them type by type), and what
// the rules between proposals (§12.2) have seen so far.
type listApplier struct {
	c         *core
	es        []entry
	committer wire.Sender
	external  bool
	hasPath   bool
	ao        applyOpts
	op        string
	a         *applied

	// kept[i] is false once entry i is dropped (ao.filter).
	kept []bool
	// gce is the entry of the GroupContextExtensions proposal, or -1.
	gce int
	// updates, removes and adds are entries, in list order.
	updates, removes, adds []int
	nReInit, nExtInit      int
	// touched is the proposal type (Update or Remove) already naming a
	// leaf.
	touched map[uint32]wire.ProposalType
	// pskIDs holds the encoded PreSharedKeyIDs already included.
	pskIDs map[string]struct{}
}

// checkCommitter checks the sender of a Commit (§12.4): a member with a
// leaf, or an external joiner.
func (c *core) checkCommitter(committer wire.Sender, op string) error {
	switch {
	case committer.Type == wire.SenderTypeNewMemberCommit:
		return nil
	case committer.Type != wire.SenderTypeMember:
		return ruleError(op, "§12.4", ErrInvalidCommit, "commit from sender type %d", committer.Type)
	case c.tree.Leaf(LeafIndex(committer.LeafIndex)) == nil:
		return ruleError(op, "§12.4", ErrNotMember, "committer leaf %d is blank", committer.LeafIndex)
	}
	return nil
}

// reject reports err for entry i. A committer filtering drops an optional
// entry instead, records why, and gets nil.
func (l *listApplier) reject(i int, err error) error {
	if !l.ao.filter || !l.es[i].optional {
		return err
	}
	l.kept[i] = false
	l.a.dropped = append(l.a.dropped, droppedEntry{e: l.es[i], err: err})
	return nil
}

// sortByType is step 1 of applyList: each entry, in list order, is checked
// and filed under its type (admit), or rejected; then the list as a whole
// is checked against what was kept.
func (l *listApplier) sortByType() error {
	for i := range l.es {
		l.kept[i] = true
		if err := l.admit(i); err != nil {
			if err := l.reject(i, err); err != nil {
				return err
			}
		}
	}
	if err := l.checkReInitAlone(); err != nil {
		return err
	}
	return l.checkExternalCommitTypes()
}

// admit checks entry i alone and against the entries admitted before it,
// then files it under its type. It changes nothing if a check fails.
func (l *listApplier) admit(i int) error {
	e := l.es[i]
	if e.ref == nil {
		if err := l.checkByValue(e); err != nil {
			return err
		}
	}
	switch e.p.Type {
	case wire.ProposalTypeAdd:
		if e.p.Add == nil {
			return ruleError(l.op, "§12.1.1", ErrInvalidProposal, "Add without body")
		}
		l.adds = append(l.adds, i)
	case wire.ProposalTypeUpdate:
		return l.admitUpdate(i)
	case wire.ProposalTypeRemove:
		return l.admitRemove(i)
	case wire.ProposalTypePSK:
		return l.admitPSK(i)
	case wire.ProposalTypeReInit:
		l.nReInit++
		l.a.reinit = e.p.ReInit
	case wire.ProposalTypeExternalInit:
		if !l.external {
			return ruleError(l.op, "§12.2", ErrInvalidProposal, "ExternalInit in a regular commit")
		}
		l.nExtInit++
		l.a.extInit = e.p.ExternalInit
	case wire.ProposalTypeGroupContextExtensions:
		if l.gce >= 0 {
			// Two GroupContextExtensions are each valid but cannot be
			// committed together (§12.2); a committer filtering keeps
			// the first in list order, its own by-value one first.
			return ruleError(l.op, "§12.2", ErrInvalidProposal, "more than one GroupContextExtensions")
		}
		l.gce = i
	default:
		// A non-default type: its support is checked against the
		// resulting tree (checkCustomProposalTypes).
	}
	return nil
}

// checkByValue checks a proposal the committer includes by value on its
// own (§12.1); proposals by reference were checked on receipt. The first
// commit of a re-initialized or branched group carries its resumption PSK
// (§11.2, §11.3), whose usage a standalone proposal may not have. An
// Update by value is always refused by admitUpdate, with the rule it
// breaks (§12.2), so it is not checked here; nor is the support of a
// non-default type, which only the members that process the Commit need
// (checkCustomProposalTypes).
func (l *listApplier) checkByValue(e entry) error {
	p := e.p
	switch {
	case p.Type == wire.ProposalTypeUpdate, !defaultProposal(p.Type):
		return nil
	case p.Type == wire.ProposalTypePSK && l.ao.allowResumption && p.PreSharedKey != nil:
		if n := len(p.PreSharedKey.PSK.Nonce); n != l.c.cs.HashSize() {
			return ruleError(l.op, "§12.1.4", ErrInvalidProposal, "psk_nonce of %d bytes", n)
		}
		return nil
	}
	return l.c.checkProposal(p, e.sender, l.op)
}

// admitUpdate files Update entry i (§12.2): proposed by a member other
// than the committer, for a leaf no other Update or Remove names.
func (l *listApplier) admitUpdate(i int) error {
	e := l.es[i]
	if e.ref == nil {
		return ruleError(l.op, "§12.2", ErrInvalidProposal, "Update by the committer (proposal %d)", i)
	}
	if e.sender.Type != wire.SenderTypeMember {
		return ruleError(l.op, "§12.1.2", ErrInvalidProposal, "Update from a non-member")
	}
	if !l.external && e.sender.LeafIndex == l.committer.LeafIndex {
		return ruleError(l.op, "§12.2", ErrInvalidProposal, "Update by the committer (leaf %d)", l.committer.LeafIndex)
	}
	if err := l.checkUntouched("Update", e.sender.LeafIndex); err != nil {
		return err
	}
	l.touched[e.sender.LeafIndex] = wire.ProposalTypeUpdate
	l.updates = append(l.updates, i)
	return nil
}

// admitRemove files Remove entry i (§12.2, §12.4.3.2): not of the
// committer, of a leaf no other Update or Remove names, and at most one in
// an external commit.
func (l *listApplier) admitRemove(i int) error {
	r := l.es[i].p.Remove.Removed
	if !l.external && r == l.committer.LeafIndex {
		return ruleError(l.op, "§12.2", ErrInvalidProposal, "Remove of the committer (leaf %d)", r)
	}
	if err := l.checkUntouched("Remove", r); err != nil {
		return err
	}
	if l.external && len(l.removes) > 0 {
		return ruleError(l.op, "§12.4.3.2", ErrInvalidProposal, "external commit with more than one Remove proposal")
	}
	l.touched[r] = wire.ProposalTypeRemove
	l.removes = append(l.removes, i)
	return nil
}

// checkUntouched refuses a second Update or Remove of leaf (§12.2); kind
// names the proposal that comes second.
func (l *listApplier) checkUntouched(kind string, leaf uint32) error {
	if prev, dup := l.touched[leaf]; dup {
		return ruleError(l.op, "§12.2", ErrInvalidProposal, "%s and proposal type %d for the same leaf %d", kind, prev, leaf)
	}
	return nil
}

// admitPSK files PreSharedKey entry i (§12.1.4, §12.2): a resumption PSK
// only with application usage (outside a re-initialized or branched
// group's first commit), no PreSharedKeyID twice, and, for a committer
// filtering, one it holds.
func (l *listApplier) admitPSK(i int) error {
	e := l.es[i]
	id := &e.p.PreSharedKey.PSK
	if id.Type == wire.PSKTypeResumption && id.Usage != wire.ResumptionPSKUsageApplication && !l.ao.allowResumption {
		return ruleError(l.op, "§12.1.4", ErrInvalidProposal, "resumption PSK with usage %d", id.Usage)
	}
	idb, err := pskIDKey(id)
	if err != nil {
		return opError(l.op, err)
	}
	if _, dup := l.pskIDs[string(idb)]; dup {
		return ruleError(l.op, "§12.2", ErrInvalidProposal, "PreSharedKeyID %x included twice", id.ID)
	}
	if l.ao.filter && e.optional && l.ao.havePSK != nil && !l.ao.havePSK(id) {
		return ruleError(l.op, "§8.4", ErrMissingPSK, "PSK (type %d, id %x, epoch %d) not held by the committer", id.Type, id.ID, id.Epoch)
	}
	l.pskIDs[string(idb)] = struct{}{}
	l.a.psks = append(l.a.psks, *id)
	return nil
}

// nKept returns the number of entries not dropped.
func (l *listApplier) nKept() int {
	n := 0
	for _, k := range l.kept {
		if k {
			n++
		}
	}
	return n
}

// checkReInitAlone refuses a ReInit together with any other proposal
// (§12.2).
func (l *listApplier) checkReInitAlone() error {
	if l.nReInit == 0 {
		return nil
	}
	if n := l.nKept(); n > 1 {
		return ruleError(l.op, "§12.2", ErrInvalidProposal, "ReInit together with %d other proposals", n-1)
	}
	return nil
}

// checkExternalCommitTypes checks the list of an external commit
// (§12.4.3.2): exactly one ExternalInit, and besides it only Removes and
// PreSharedKeys.
func (l *listApplier) checkExternalCommitTypes() error {
	if !l.external {
		return nil
	}
	if l.nExtInit != 1 {
		return ruleError(l.op, "§12.4.3.2", ErrInvalidProposal, "external commit with %d ExternalInit proposals, want exactly one", l.nExtInit)
	}
	for i, e := range l.es {
		switch e.p.Type {
		case wire.ProposalTypeExternalInit, wire.ProposalTypeRemove, wire.ProposalTypePSK:
		default:
			if l.kept[i] {
				return ruleError(l.op, "§12.4.3.2", ErrInvalidProposal, "external commit with a proposal of type %d", e.p.Type)
			}
		}
	}
	return nil
}

// applyGroupContextExtensions is the first step of §12.3: the
// GroupContextExtensions proposal, if any, replaces the group's extensions
// for the rest of the list.
func (l *listApplier) applyGroupContextExtensions() error {
	if l.gce < 0 {
		return nil
	}
	if err := l.c.applyGCE(l.a, l.es[l.gce].p.GroupContextExtensions, l.op); err != nil {
		if err := l.reject(l.gce, err); err != nil {
			return err
		}
		l.gce = -1
	}
	return nil
}

// applyUpdates is the second step of §12.3: each Update replaces its
// sender's leaf, once the new leaf passes the checks of §7.3.
func (l *listApplier) applyUpdates() error {
	t := l.a.tree
	for _, i := range l.updates {
		e := l.es[i]
		li := LeafIndex(e.sender.LeafIndex)
		old := t.Leaf(li)
		if old == nil {
			if err := l.reject(i, ruleError(l.op, "§12.1.2", ErrInvalidProposal, "Update of blank leaf %d", li)); err != nil {
				return err
			}
			continue
		}
		ln := e.p.Update.LeafNode
		if err := l.c.checkNewLeaf(l.a, &ln, li, old, ReasonUpdate, l.op); err != nil {
			if err := l.reject(i, err); err != nil {
				return err
			}
			continue
		}
		if err := t.UpdateLeaf(li, &ln); err != nil {
			return opError(l.op, err)
		}
		l.a.updated = append(l.a.updated, updatedMember{leaf: li, old: old, new: t.Leaf(li)})
		if l.ao.self >= 0 && int64(li) == l.ao.self {
			l.a.ownUpdate = e.cached
		}
	}
	return nil
}

// applyRemoves is the third step of §12.3: each Remove blanks its leaf.
func (l *listApplier) applyRemoves() error {
	t := l.a.tree
	for _, i := range l.removes {
		r := l.es[i].p.Remove.Removed
		li := LeafIndex(r)
		old := t.Leaf(li)
		if old == nil {
			if err := l.reject(i, ruleError(l.op, "§12.1.3", ErrInvalidProposal, "Remove of blank leaf %d", r)); err != nil {
				return err
			}
			continue
		}
		if err := t.RemoveLeaf(li); err != nil {
			return opError(l.op, err)
		}
		l.a.removed = append(l.a.removed, removedMember{leaf: li, node: old})
	}
	return nil
}

// applyAdds is the fourth step of §12.3: the Adds, in list order, each
// into the leftmost free leaf. Each KeyPackageRef is computed once; a set
// finds duplicates (§12.2). Two Adds of the same client (one signature
// key) or with one encryption key are each valid alone; checkNewLeaf
// refuses the second against the tree built so far.
func (l *listApplier) applyAdds() error {
	t := l.a.tree
	var seenRefs map[string]struct{}
	if len(l.adds) > 1 {
		seenRefs = make(map[string]struct{}, len(l.adds))
	}
	for _, i := range l.adds {
		kp := &l.es[i].p.Add.KeyPackage
		ref, err := kp.Ref(l.c.cs)
		if err != nil {
			return opError(l.op, err)
		}
		if _, dup := seenRefs[string(ref)]; dup {
			if err := l.reject(i, ruleError(l.op, "§12.2", ErrInvalidProposal, "duplicate Add for KeyPackage %x", ref)); err != nil {
				return err
			}
			continue
		}
		ln := kp.LeafNode
		if err := l.c.checkNewLeaf(l.a, &ln, nextFreeLeaf(t), nil, ReasonKeyPackage, l.op); err != nil {
			if err := l.reject(i, err); err != nil {
				return err
			}
			continue
		}
		if seenRefs != nil {
			seenRefs[string(ref)] = struct{}{}
		}
		li, err := t.AddLeaf(&ln)
		if err != nil {
			return opError(l.op, err)
		}
		l.a.added = append(l.a.added, addedMember{leaf: li, kp: kp, ref: ref})
	}
	return nil
}

// checkMembersSupportExtensions checks, after a GroupContextExtensions, the
// capabilities of every member of the resulting tree against the new
// group extensions (§12.1.7, §11.1). A GroupContextExtensions that some
// remaining member cannot support is valid on receipt (the member may be
// removed or updated in the same commit) but not in this list.
func (l *listApplier) checkMembersSupportExtensions() error {
	if !l.a.gce {
		return nil
	}
	for i, ln := range l.a.tree.Members() {
		if err := supportsGroup(ln, l.a.exts, l.a.req); err != nil {
			return causeError(l.op, "§12.1.7", ErrInvalidProposal, err, "leaf %d", i)
		}
	}
	return nil
}

// retryWithoutGCE runs applyList again without the GroupContextExtensions
// entry a committer filtering just dropped: the Adds and Updates were
// checked against its extensions. The drop comes first in the result.
func (l *listApplier) retryWithoutGCE() (*applied, error) {
	rest := slices.Concat(l.es[:l.gce], l.es[l.gce+1:])
	b, err := l.c.applyList(rest, l.committer, l.hasPath, l.ao, l.op)
	if err != nil {
		return nil, err
	}
	b.dropped = append([]droppedEntry{l.a.dropped[len(l.a.dropped)-1]}, b.dropped...)
	return b, nil
}

// checkCustomProposalTypes checks that each non-default proposal type of
// the list is supported by every member that will process the Commit
// (§12.2): the members of the resulting tree (with the leaves of their
// Updates) but those it adds; members it adds or removes need not.
func (l *listApplier) checkCustomProposalTypes() error {
	for i, e := range l.es {
		if !l.kept[i] || defaultProposal(e.p.Type) {
			continue
		}
		for j, ln := range l.a.tree.Members() {
			if l.a.isAdded(j) {
				continue
			}
			if !slices.Contains(ln.Capabilities.Proposals, e.p.Type) {
				if err := l.reject(i, ruleError(l.op, "§12.2", ErrInvalidProposal, "proposal type %#04x not supported by leaf %d", uint16(e.p.Type), j)); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// finish is the last step of applyList: it lists the kept entries,
// decides whether the Commit needs a path (§12.4) and places the
// committer: for an external commit, in the leaf reserved for the joiner
// (§12.4.2), with its old self if it removed it.
func (l *listApplier) finish() (*applied, error) {
	a := l.a
	a.entries = make([]entry, 0, l.nKept())
	for i, e := range l.es {
		if l.kept[i] {
			a.entries = append(a.entries, e)
		}
	}
	a.pathRequired = pathRequired(a.entries)
	if !l.hasPath && a.pathRequired {
		return nil, ruleError(l.op, "§12.4", ErrInvalidCommit, "path required but absent")
	}
	if !l.external {
		a.committer = LeafIndex(l.committer.LeafIndex)
		return a, nil
	}
	if len(a.removed) == 1 {
		a.resync = &a.removed[0]
	}
	li, err := reserveBlankLeaf(a.tree)
	if err != nil {
		return nil, opError(l.op, err)
	}
	a.committer = li
	return a, nil
}

// pathRequired reports whether a Commit of es must carry a path (§12.4):
// when it is empty or has a proposal other than Add, PreSharedKey and
// ReInit.
func pathRequired(es []entry) bool {
	if len(es) == 0 {
		return true
	}
	for _, e := range es {
		switch e.p.Type {
		case wire.ProposalTypeAdd, wire.ProposalTypePSK, wire.ProposalTypeReInit:
		default:
			return true
		}
	}
	return false
}

// applyGCE applies a GroupContextExtensions proposal to a (RFC 9420
// §12.1.7, step one of §12.3): its extensions replace the group's for the
// rest of the list, and the credentials of its external senders pass the
// credential hook.
func (c *core) applyGCE(a *applied, gce *wire.GroupContextExtensions, op string) error {
	req, senders, err := parseGroupExtensions(gce.Extensions)
	if err != nil {
		return causeError(op, "§12.1.7", ErrInvalidProposal, err, "extensions")
	}
	for _, s := range senders {
		if err := c.cfg.checkCredential(CredentialInfo{Credential: credentialFromWire(&s.Credential), SignatureKey: s.SignatureKey, Reason: ReasonExternalSender}); err != nil {
			return causeError(op, "§12.1.8.1", ErrInvalidProposal, err, "external sender")
		}
	}
	a.exts, a.req, a.senders, a.gce = gce.Extensions, req, senders, true
	return nil
}

// pskIDKey is the encoding of a PreSharedKeyID, for comparisons.
func pskIDKey(id *wire.PreSharedKeyID) ([]byte, error) {
	return codec.Marshal(id)
}

// nextFreeLeaf returns the leaf an Add would take: the leftmost blank leaf
// or the first leaf beyond the tree.
func nextFreeLeaf(t *tree.Tree) LeafIndex {
	if li, ok := t.FirstBlankLeaf(); ok {
		return li
	}
	return LeafIndex(t.LeafCount())
}

// reserveBlankLeaf returns the leftmost blank leaf of t, extending t by
// one blank leaf if there is none (RFC 9420 §12.4.2 for external commits).
func reserveBlankLeaf(t *tree.Tree) (LeafIndex, error) {
	if li, ok := t.FirstBlankLeaf(); ok {
		return li, nil
	}
	// Extend: add a placeholder and blank it; the new leaf's direct path
	// is blank after extension, so no unmerged_leaves entry is left.
	li, err := t.AddLeaf(&wire.LeafNode{Source: wire.LeafNodeSourceCommit})
	if err != nil {
		return 0, err
	}
	if err := t.SetLeaf(li, nil); err != nil {
		return 0, err
	}
	return li, nil
}

// supportsGroup checks that a leaf supports the group's extensions and
// required capabilities (§7.3, §11.1, §12.1.7).
func supportsGroup(ln *wire.LeafNode, exts wire.Extensions, req *wire.RequiredCapabilities) error {
	caps := &ln.Capabilities
	for _, e := range exts {
		if !defaultExtension(e.Type) && !slices.Contains(caps.Extensions, e.Type) {
			return fmt.Errorf("group context extension type %#04x not in capabilities", uint16(e.Type))
		}
	}
	if req == nil {
		return nil
	}
	for _, e := range req.Extensions {
		if !defaultExtension(e) && !slices.Contains(caps.Extensions, e) {
			return fmt.Errorf("required extension type %#04x not in capabilities", uint16(e))
		}
	}
	for _, p := range req.Proposals {
		if !defaultProposal(p) && !slices.Contains(caps.Proposals, p) {
			return fmt.Errorf("required proposal type %#04x not in capabilities", uint16(p))
		}
	}
	for _, ct := range req.Credentials {
		if !slices.Contains(caps.Credentials, ct) {
			return fmt.Errorf("required credential type %v not in capabilities", ct)
		}
	}
	return nil
}

// checkNewLeaf runs the leaf node validation of §7.3 for a leaf that enters
// the tree at li (an Add, an Update, an UpdatePath's leaf), replacing old (nil
// for an Add or an external join). Signatures of Update leaves and
// KeyPackages are checked by checkProposal; commit leaves by the path merge,
// which also checks the encryption keys of the path (its leaf's included).
func (c *core) checkNewLeaf(a *applied, ln *wire.LeafNode, li LeafIndex, old *wire.LeafNode, reason CredentialReason, op string) error {
	if err := checkLeafSelf(ln); err != nil {
		return causeError(op, "§7.3", ErrInvalidLeafNode, err, "leaf %d", li)
	}
	if err := c.checkGroupParams(ln); err != nil {
		return causeError(op, "§7.2", ErrInvalidLeafNode, err, "leaf %d", li)
	}
	if err := supportsGroup(ln, a.exts, a.req); err != nil {
		return causeError(op, "§7.3", ErrInvalidLeafNode, err, "leaf %d", li)
	}
	if err := c.checkCredentialTypes(a.tree, ln, old); err != nil {
		return causeError(op, "§7.3", ErrInvalidLeafNode, err, "leaf %d", li)
	}
	if reason != ReasonCommit && reason != ReasonExternalJoin {
		if err := c.checkEncryptionKey(a, ln); err != nil {
			return causeError(op, "§7.3", ErrInvalidLeafNode, err, "leaf %d", li)
		}
	}
	if old == nil || !bytes.Equal(old.SignatureKey, ln.SignatureKey) {
		if j, dup := a.tree.SignatureKeyLeaf(ln.SignatureKey); dup {
			return ruleError(op, "§7.3", ErrInvalidLeafNode, "signature_key of leaf %d already used by leaf %d", li, j)
		}
	}
	info := CredentialInfo{Credential: credentialFromWire(&ln.Credential), SignatureKey: ln.SignatureKey, Leaf: li, Reason: reason}
	if old != nil {
		prev := credentialFromWire(&old.Credential)
		info.Previous = &prev
	}
	if err := c.cfg.checkCredential(info); err != nil {
		return opError(op, err)
	}
	return nil
}

// checkEncryptionKey checks that the encryption_key of a leaf an Add or
// Update brings is new (§7.3): used by no node of the epoch's tree (so
// the keys of leaves and nodes the commit removes or blanks stay reserved
// for the whole commit) nor of the tree being built (the leaves added or
// updated before it). Both lookups go through the trees' key indexes.
func (c *core) checkEncryptionKey(a *applied, ln *wire.LeafNode) error {
	if x, dup := c.tree.EncryptionKeyNode(ln.EncryptionKey); dup {
		return fmt.Errorf("encryption_key already used in the tree (node %d)", x)
	}
	if x, dup := a.tree.EncryptionKeyNode(ln.EncryptionKey); dup {
		return fmt.Errorf("encryption_key already used in the tree (node %d, set by this commit)", x)
	}
	return nil
}

// checkCredentialTypes checks that ln's credential type is supported by
// every member and that ln supports every credential type in use (§7.3).
// A leaf replacing old with the same credential type and at least old's
// supported credential types changes nothing, and costs nothing.
func (c *core) checkCredentialTypes(t *tree.Tree, ln, old *wire.LeafNode) error {
	if old != nil && old.Credential.Type == ln.Credential.Type {
		superset := true
		for _, ct := range old.Capabilities.Credentials {
			if !slices.Contains(ln.Capabilities.Credentials, ct) {
				superset = false
				break
			}
		}
		if superset {
			return nil
		}
	}
	for i, m := range t.Members() {
		if m == old {
			continue
		}
		if !slices.Contains(m.Capabilities.Credentials, ln.Credential.Type) {
			return fmt.Errorf("credential type %v not supported by leaf %d", ln.Credential.Type, i)
		}
		if !slices.Contains(ln.Capabilities.Credentials, m.Credential.Type) {
			return fmt.Errorf("credential type %v of leaf %d not in capabilities", m.Credential.Type, i)
		}
	}
	return nil
}

// checkPathLeaf runs the §7.3 rules for the leaf node of a commit's
// UpdatePath beyond what the path merge checks (source, signature,
// encryption keys against the new tree): capabilities, credential types,
// signature key uniqueness, the credential hook with continuity, and
// encryption keys of the path that no node of the epoch's tree has.
func (c *core) checkPathLeaf(a *applied, up *wire.UpdatePath, op string) error {
	ln := &up.LeafNode
	if ln.Source != wire.LeafNodeSourceCommit || ln.Lifetime != nil {
		return ruleError(op, "§7.3", ErrInvalidLeafNode, "path leaf_node_source %d, want commit", ln.Source)
	}
	old := a.tree.Leaf(a.committer)
	reason := ReasonCommit
	if a.external {
		reason = ReasonExternalJoin
	}
	if err := c.checkNewLeaf(a, ln, a.committer, old, reason, op); err != nil {
		return err
	}
	// §7.3, §12.4.2: the path's keys are new. The path merge checks them
	// against the tree the proposals produced; as for Adds and Updates
	// (checkEncryptionKey), the keys of the epoch's tree stay reserved
	// too, so that an external joiner cannot take back the key of the
	// leaf it removes (a resync), nor a committer the key of a node its
	// proposals blanked.
	if x, dup := c.tree.EncryptionKeyNode(ln.EncryptionKey); dup {
		return ruleError(op, "§7.3", ErrInvalidLeafNode, "path leaf reuses the encryption_key of node %d of the epoch's tree", x)
	}
	for i := range up.Nodes {
		if x, dup := c.tree.EncryptionKeyNode(up.Nodes[i].EncryptionKey); dup {
			return ruleError(op, "§12.4.2", ErrInvalidCommit, "UpdatePath entry %d reuses the encryption_key of node %d (already used by node %d of the epoch's tree)", i, x, x)
		}
	}
	if a.resync != nil {
		prev := credentialFromWire(&a.resync.node.Credential)
		if err := c.cfg.checkCredential(CredentialInfo{Credential: credentialFromWire(&ln.Credential), SignatureKey: ln.SignatureKey, Leaf: a.committer, Reason: ReasonExternalJoin, Previous: &prev}); err != nil {
			return causeError(op, "§12.4.3.2", ErrInvalidCommit, err, "resync of leaf %d", a.resync.leaf)
		}
	}
	return nil
}

// provisional returns the provisional GroupContext of §12.4.2 for the
// epoch after a: the new epoch and extensions, the old transcript hash.
func (c *core) provisional(a *applied) wire.GroupContext {
	gc := c.gc
	gc.Epoch++
	gc.Extensions = a.exts
	gc.TreeHash = nil
	return gc
}

// nextContext returns the GroupContext of the new epoch after a commit whose
// final tree is t and whose AuthenticatedContent is ac (without or with the
// confirmation tag), with the new interim transcript hash if the tag is set.
func (c *core) nextContext(a *applied, t *tree.Tree, ac *wire.AuthenticatedContent) (gc wire.GroupContext, err error) {
	gc = c.provisional(a)
	th, err := t.TreeHash()
	if err != nil {
		return gc, err
	}
	gc.TreeHash = slices.Clone(th)
	confirmed, err := framing.ConfirmedTranscriptHash(c.cs, c.interim, ac)
	if err != nil {
		return gc, err
	}
	gc.ConfirmedTranscriptHash = confirmed
	return gc, nil
}
