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
// (RFC 9420 §12.1).
func (c *core) checkProposal(p *wire.Proposal, sender wire.Sender, op string) error {
	switch p.Type {
	case wire.ProposalTypeAdd:
		if p.Add == nil {
			return ruleError(op, "§12.1.1", ErrInvalidProposal, "Add without body")
		}
		if err := checkKeyPackage(c.cfg, c.cs, &p.Add.KeyPackage, op); err != nil {
			return fmt.Errorf("%w: %w", err, ErrInvalidProposal)
		}
		if p.Add.KeyPackage.Version < c.gc.Version {
			return ruleError(op, "§10.1", ErrInvalidProposal, "KeyPackage version below the group's")
		}
	case wire.ProposalTypeUpdate:
		if p.Update == nil || sender.Type != wire.SenderTypeMember {
			return ruleError(op, "§12.1.2", ErrInvalidProposal, "Update not sent by a member")
		}
		old := c.tree.Leaf(LeafIndex(sender.LeafIndex))
		if old == nil {
			return ruleError(op, "§12.1.2", ErrInvalidProposal, "Update from blank leaf %d", sender.LeafIndex)
		}
		ln := &p.Update.LeafNode
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
	case wire.ProposalTypeRemove:
		if p.Remove == nil || c.tree.Leaf(LeafIndex(p.Remove.Removed)) == nil {
			r := uint32(0)
			if p.Remove != nil {
				r = p.Remove.Removed
			}
			return ruleError(op, "§12.1.3", ErrInvalidProposal, "Remove of blank leaf %d", r)
		}
	case wire.ProposalTypePSK:
		if p.PreSharedKey == nil {
			return ruleError(op, "§12.1.4", ErrInvalidProposal, "PreSharedKey without body")
		}
		id := &p.PreSharedKey.PSK
		if len(id.Nonce) != c.cs.HashSize() {
			return ruleError(op, "§12.1.4", ErrInvalidProposal, "psk_nonce of %d bytes, want %d", len(id.Nonce), c.cs.HashSize())
		}
		if id.Type == wire.PSKTypeResumption && id.Usage != wire.ResumptionPSKUsageApplication {
			return ruleError(op, "§12.1.4", ErrInvalidProposal, "resumption PSK with usage %d in a proposal", id.Usage)
		}
	case wire.ProposalTypeReInit:
		if p.ReInit == nil || p.ReInit.Version < c.gc.Version {
			return ruleError(op, "§12.1.5", ErrInvalidProposal, "ReInit version below the group's")
		}
		if _, err := suite.New(p.ReInit.CipherSuite); err != nil {
			return causeError(op, "§12.1.5", ErrInvalidProposal, err, "ReInit cipher suite")
		}
		// The ReInit's extensions become the new group's (§11.2): no type
		// twice (§13.4).
		if err := checkUniqueExtensions(p.ReInit.Extensions); err != nil {
			return causeError(op, "§13.4", ErrInvalidProposal, err, "ReInit extensions")
		}
	case wire.ProposalTypeExternalInit:
		if p.ExternalInit == nil {
			return ruleError(op, "§12.1.6", ErrInvalidProposal, "ExternalInit without body")
		}
	case wire.ProposalTypeGroupContextExtensions:
		if p.GroupContextExtensions == nil {
			return ruleError(op, "§12.1.7", ErrInvalidProposal, "GroupContextExtensions without body")
		}
		if _, _, err := parseGroupExtensions(p.GroupContextExtensions.Extensions); err != nil {
			return causeError(op, "§12.1.7", ErrInvalidProposal, err, "extensions")
		}
	default:
		// A non-default type: every member must support it (§12.2).
		for i, ln := range c.tree.Members() {
			if !slices.Contains(ln.Capabilities.Proposals, p.Type) {
				return ruleError(op, "§12.2", ErrInvalidProposal, "proposal type %#04x not supported by leaf %d", uint16(p.Type), i)
			}
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

// applyList is one pass of applyProposals: it checks the rules of §12.2
// and applies the list in the order of §12.3, in named steps: classify
// each proposal (the rules on one proposal and between proposals),
// GroupContextExtensions, Updates, Removes, Adds, then the rules on the
// resulting tree. Each check of an entry happens before its effect, so
// that dropping it (with ao.filter) leaves no trace.
func (c *core) applyList(es []entry, committer wire.Sender, hasPath bool, ao applyOpts, op string) (*applied, error) {
	a := &applied{exts: c.gc.Extensions, req: c.req, senders: c.extSenders}
	external := committer.Type == wire.SenderTypeNewMemberCommit
	a.external = external
	if !external && committer.Type != wire.SenderTypeMember {
		return nil, ruleError(op, "§12.4", ErrInvalidCommit, "commit from sender type %d", committer.Type)
	}
	if !external && c.tree.Leaf(LeafIndex(committer.LeafIndex)) == nil {
		return nil, ruleError(op, "§12.4", ErrNotMember, "committer leaf %d is blank", committer.LeafIndex)
	}
	var (
		gceAt                      = -1 // the entry of the GroupContextExtensions
		nReInit, nExtInit, nRemove int
		touched                    = map[uint32]wire.ProposalType{}
		adds, updates, removes     []int // entries, in list order
		pskIDs                     = map[string]struct{}{}
		kept                       = make([]bool, len(es))
	)
	// fail reports err for entry i: nil if the entry is dropped instead.
	fail := func(i int, err error) error {
		if !ao.filter || !es[i].optional {
			return err
		}
		kept[i] = false
		a.dropped = append(a.dropped, droppedEntry{e: es[i], err: err})
		return nil
	}
	// 1. Classify: the rules on each proposal and between proposals.
	classify := func(i int) error {
		e := es[i]
		p := e.p
		if e.ref == nil {
			// By value: not yet checked individually.
			if p.Type == wire.ProposalTypePSK && ao.allowResumption && p.PreSharedKey != nil {
				// The first commit of a re-initialized or branched group
				// carries its resumption PSK (§11.2, §11.3).
				if len(p.PreSharedKey.PSK.Nonce) != c.cs.HashSize() {
					return ruleError(op, "§12.1.4", ErrInvalidProposal, "psk_nonce of %d bytes", len(p.PreSharedKey.PSK.Nonce))
				}
			} else if err := c.checkProposal(p, e.sender, op); err != nil && p.Type != wire.ProposalTypeUpdate {
				return err
			}
		}
		switch p.Type {
		case wire.ProposalTypeAdd:
			if p.Add == nil {
				return ruleError(op, "§12.1.1", ErrInvalidProposal, "Add without body")
			}
			adds = append(adds, i)
		case wire.ProposalTypeUpdate:
			if e.ref == nil {
				return ruleError(op, "§12.2", ErrInvalidProposal, "Update by the committer (proposal %d)", i)
			}
			if e.sender.Type != wire.SenderTypeMember {
				return ruleError(op, "§12.1.2", ErrInvalidProposal, "Update from a non-member")
			}
			if !external && e.sender.LeafIndex == committer.LeafIndex {
				return ruleError(op, "§12.2", ErrInvalidProposal, "Update by the committer (leaf %d)", committer.LeafIndex)
			}
			if prev, dup := touched[e.sender.LeafIndex]; dup {
				return ruleError(op, "§12.2", ErrInvalidProposal, "Update and proposal type %d for the same leaf %d", prev, e.sender.LeafIndex)
			}
			touched[e.sender.LeafIndex] = wire.ProposalTypeUpdate
			updates = append(updates, i)
		case wire.ProposalTypeRemove:
			r := p.Remove.Removed
			if !external && r == committer.LeafIndex {
				return ruleError(op, "§12.2", ErrInvalidProposal, "Remove of the committer (leaf %d)", r)
			}
			if prev, dup := touched[r]; dup {
				return ruleError(op, "§12.2", ErrInvalidProposal, "Remove and proposal type %d for the same leaf %d", prev, r)
			}
			if external && nRemove > 0 {
				return ruleError(op, "§12.4.3.2", ErrInvalidProposal, "external commit with more than one Remove proposal")
			}
			nRemove++
			touched[r] = wire.ProposalTypeRemove
			removes = append(removes, i)
		case wire.ProposalTypePSK:
			id := &p.PreSharedKey.PSK
			if id.Type == wire.PSKTypeResumption && id.Usage != wire.ResumptionPSKUsageApplication && !ao.allowResumption {
				return ruleError(op, "§12.1.4", ErrInvalidProposal, "resumption PSK with usage %d", id.Usage)
			}
			idb, err := pskIDKey(id)
			if err != nil {
				return opError(op, err)
			}
			if _, dup := pskIDs[string(idb)]; dup {
				return ruleError(op, "§12.2", ErrInvalidProposal, "PreSharedKeyID %x included twice", id.ID)
			}
			if ao.filter && e.optional && ao.havePSK != nil && !ao.havePSK(id) {
				return ruleError(op, "§8.4", ErrMissingPSK, "PSK (type %d, id %x, epoch %d) not held by the committer", id.Type, id.ID, id.Epoch)
			}
			pskIDs[string(idb)] = struct{}{}
			a.psks = append(a.psks, *id)
		case wire.ProposalTypeReInit:
			nReInit++
			a.reinit = p.ReInit
		case wire.ProposalTypeExternalInit:
			if !external {
				return ruleError(op, "§12.2", ErrInvalidProposal, "ExternalInit in a regular commit")
			}
			nExtInit++
			a.extInit = p.ExternalInit
		case wire.ProposalTypeGroupContextExtensions:
			if gceAt >= 0 {
				// Two GroupContextExtensions are each valid but cannot be
				// committed together (§12.2); a committer filtering keeps
				// the first in list order, its own by-value one first.
				return ruleError(op, "§12.2", ErrInvalidProposal, "more than one GroupContextExtensions")
			}
			gceAt = i
		default:
			// checked individually (support by all members); re-checked
			// against the final tree below.
		}
		return nil
	}
	for i := range es {
		kept[i] = true
		if err := classify(i); err != nil {
			if err := fail(i, err); err != nil {
				return nil, err
			}
		}
	}
	nKept := 0
	for i := range es {
		if kept[i] {
			nKept++
		}
	}
	if nReInit > 0 && nKept > 1 {
		return nil, ruleError(op, "§12.2", ErrInvalidProposal, "ReInit together with %d other proposals", nKept-1)
	}
	if external {
		if nExtInit != 1 {
			return nil, ruleError(op, "§12.4.3.2", ErrInvalidProposal, "external commit with %d ExternalInit proposals, want exactly one", nExtInit)
		}
		for i, e := range es {
			switch e.p.Type {
			case wire.ProposalTypeExternalInit, wire.ProposalTypeRemove, wire.ProposalTypePSK:
			default:
				if kept[i] {
					return nil, ruleError(op, "§12.4.3.2", ErrInvalidProposal, "external commit with a proposal of type %d", e.p.Type)
				}
			}
		}
	}

	t := c.tree.Clone()
	a.tree = t
	// 2. GroupContextExtensions.
	if gceAt >= 0 {
		if err := c.applyGCE(a, es[gceAt].p.GroupContextExtensions, op); err != nil {
			if err := fail(gceAt, err); err != nil {
				return nil, err
			}
			gceAt = -1
		}
	}
	// 3. Updates.
	for _, i := range updates {
		e := es[i]
		li := LeafIndex(e.sender.LeafIndex)
		old := t.Leaf(li)
		if old == nil {
			if err := fail(i, ruleError(op, "§12.1.2", ErrInvalidProposal, "Update of blank leaf %d", li)); err != nil {
				return nil, err
			}
			continue
		}
		ln := e.p.Update.LeafNode
		if err := c.checkNewLeaf(a, &ln, li, old, ReasonUpdate, op); err != nil {
			if err := fail(i, err); err != nil {
				return nil, err
			}
			continue
		}
		if err := t.UpdateLeaf(li, &ln); err != nil {
			return nil, opError(op, err)
		}
		a.updated = append(a.updated, updatedMember{leaf: li, old: old, new: t.Leaf(li)})
		if ao.self >= 0 && int64(li) == ao.self {
			a.ownUpdate = e.cached
		}
	}
	// 4. Removes.
	for _, i := range removes {
		r := es[i].p.Remove.Removed
		li := LeafIndex(r)
		old := t.Leaf(li)
		if old == nil {
			if err := fail(i, ruleError(op, "§12.1.3", ErrInvalidProposal, "Remove of blank leaf %d", r)); err != nil {
				return nil, err
			}
			continue
		}
		if err := t.RemoveLeaf(li); err != nil {
			return nil, opError(op, err)
		}
		a.removed = append(a.removed, removedMember{leaf: li, node: old})
	}
	// 5. Adds, in order. Each KeyPackageRef is computed once; a set finds
	// duplicates (§12.2). Two Adds of the same client (one signature
	// key) or with one encryption key are each valid alone; checkNewLeaf
	// refuses the second against the tree built so far.
	var seenRefs map[string]struct{}
	if len(adds) > 1 {
		seenRefs = make(map[string]struct{}, len(adds))
	}
	for _, i := range adds {
		kp := &es[i].p.Add.KeyPackage
		ref, err := kp.Ref(c.cs)
		if err != nil {
			return nil, opError(op, err)
		}
		if seenRefs != nil {
			if _, dup := seenRefs[string(ref)]; dup {
				if err := fail(i, ruleError(op, "§12.2", ErrInvalidProposal, "duplicate Add for KeyPackage %x", ref)); err != nil {
					return nil, err
				}
				continue
			}
		}
		ln := kp.LeafNode
		if err := c.checkNewLeaf(a, &ln, nextFreeLeaf(t), nil, ReasonKeyPackage, op); err != nil {
			if err := fail(i, err); err != nil {
				return nil, err
			}
			continue
		}
		if seenRefs != nil {
			seenRefs[string(ref)] = struct{}{}
		}
		li, err := t.AddLeaf(&ln)
		if err != nil {
			return nil, opError(op, err)
		}
		a.added = append(a.added, addedMember{leaf: li, kp: kp, ref: ref})
	}
	// 6. The resulting tree. Capabilities of the remaining members against
	// the new group extensions (§12.1.7, §11.1): a GroupContextExtensions
	// proposal that some remaining member cannot support is valid on
	// receipt (the member may be removed or updated in the same commit)
	// but not in this list. A committer filtering drops it and starts over
	// without it, since the Adds and Updates were checked against it.
	if a.gce {
		for i, ln := range t.Members() {
			if err := supportsGroup(ln, a.exts, a.req); err != nil {
				err = causeError(op, "§12.1.7", ErrInvalidProposal, err, "leaf %d", i)
				if ferr := fail(gceAt, err); ferr != nil {
					return nil, ferr
				}
				rest := make([]entry, 0, len(es)-1)
				rest = append(rest, es[:gceAt]...)
				rest = append(rest, es[gceAt+1:]...)
				b, err := c.applyList(rest, committer, hasPath, ao, op)
				if err != nil {
					return nil, err
				}
				b.dropped = append([]droppedEntry{a.dropped[len(a.dropped)-1]}, b.dropped...)
				return b, nil
			}
		}
	}
	// Non-default proposal types: supported by every member that stays
	// (§12.2).
	for i, e := range es {
		if !kept[i] || defaultProposal(e.p.Type) {
			continue
		}
		for j, ln := range t.Members() {
			if !slices.Contains(ln.Capabilities.Proposals, e.p.Type) {
				if err := fail(i, ruleError(op, "§12.2", ErrInvalidProposal, "proposal type %#04x not supported by leaf %d", uint16(e.p.Type), j)); err != nil {
					return nil, err
				}
				break
			}
		}
	}
	a.entries = make([]entry, 0, nKept)
	for i, e := range es {
		if !kept[i] {
			continue
		}
		a.entries = append(a.entries, e)
		switch e.p.Type {
		case wire.ProposalTypeAdd, wire.ProposalTypePSK, wire.ProposalTypeReInit:
		default:
			a.pathRequired = true // §12.4
		}
	}
	if len(a.entries) == 0 {
		a.pathRequired = true
	}
	if !hasPath && a.pathRequired {
		return nil, ruleError(op, "§12.4", ErrInvalidCommit, "path required but absent")
	}
	// External commits: the joiner's leaf (§12.4.2) and its old self.
	if external {
		if len(a.removed) == 1 {
			a.resync = &a.removed[0]
		}
		li, err := reserveBlankLeaf(t)
		if err != nil {
			return nil, opError(op, err)
		}
		a.committer = li
	} else {
		a.committer = LeafIndex(committer.LeafIndex)
	}
	return a, nil
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
