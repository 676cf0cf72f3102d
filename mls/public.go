package mls

import (
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/treekem"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// PublicGroup follows a group's public state without any group secret: what
// a Delivery Service needs to refuse a malformed handshake message before it
// wedges a group (RFC 9750 §5). It runs the same proposal validation and
// application and the same public path processing as Group (they share one
// implementation), so the server and the members cannot disagree, except
// on what needs secrets: the membership tag, the confirmation tag, the
// ExternalInit's KEM output and PrivateMessages.
// A PublicGroup is not safe for concurrent use.
type PublicGroup struct {
	c       *core
	version uint64
}

// NewPublicGroup starts following a group from its GroupInfo (MLSMessage)
// and, when the GroupInfo lacks the ratchet_tree extension, its encoded
// ratchet tree. The GroupInfo signature and the whole tree are validated as
// a joiner would (RFC 9420 §12.4.3.1).
func NewPublicGroup(cfg *Config, groupInfo, ratchetTree []byte) (*PublicGroup, error) {
	const op = "new public group"
	c, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	gi, t, err := openGroupInfo(c, groupInfo, ratchetTree, op)
	if err != nil {
		return nil, err
	}
	interim, err := framing.InterimTranscriptHash(t.Suite(), gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, opError(op, err)
	}
	co, err := newCore(c, t.Suite(), gi.GroupContext, t, interim)
	if err != nil {
		return nil, causeError(op, "§12.4.3", ErrInvalidWelcome, err, "group context")
	}
	return &PublicGroup{c: co}, nil
}

// Epoch returns the current epoch.
func (pg *PublicGroup) Epoch() uint64 { return pg.c.gc.Epoch }

// CipherSuite returns the group's cipher suite.
func (pg *PublicGroup) CipherSuite() CipherSuite { return pg.c.cs.ID() }

// ExternalSenders returns the entries of the group's external_senders
// extension (RFC 9420 §12.1.8.1) in order: Sender.ExternalIndex and
// NewExternalProposal's senderIndex index this list. It is nil when the
// extension is absent. The slices must not be modified.
func (pg *PublicGroup) ExternalSenders() []ExternalSender { return pg.c.externalSenders() }

// GroupID returns the group id; it must not be modified.
func (pg *PublicGroup) GroupID() []byte { return pg.c.gc.GroupID }

// Members returns the members in leaf order; the slices must not be
// modified.
func (pg *PublicGroup) Members() []Member { return members(pg.c.tree) }

// TreeHash returns the current tree hash (a copy).
func (pg *PublicGroup) TreeHash() []byte { return slices.Clone(pg.c.gc.TreeHash) }

// RatchetTree returns the encoded ratchet tree, for joiners.
func (pg *PublicGroup) RatchetTree() ([]byte, error) {
	b, err := pg.c.encodedTree()
	return slices.Clone(b), err
}

// Extensions returns the GroupContext extensions.
func (pg *PublicGroup) Extensions() []Extension { return extsFromWire(pg.c.gc.Extensions) }

// PublicChange is the result of PublicGroup.Process: a cached proposal, or
// a validated commit to Merge.
type PublicChange struct {
	Kind   MessageKind
	Sender Sender
	// Proposal describes a cached proposal.
	Proposal *ProposalInfo
	// Epoch is the epoch a commit starts.
	Epoch uint64
	// Added, Removed and Updated describe a commit's membership change,
	// with leaf indices and signature keys, as StagedCommit does: an
	// external joiner is in Added (at the leaf it takes), the old leaf it
	// resyncs in Removed; a member committer's path leaf is in Updated.
	Added, Removed, Updated []Member
	// ReInit is set when the commit ends the group.
	ReInit bool
	// Proposals, Extensions and ExtensionsChanged describe a commit's
	// proposals and new GroupContext extensions as in StagedCommit.
	Proposals         []ProposalInfo
	Extensions        []Extension
	ExtensionsChanged bool

	pg      *PublicGroup
	version uint64
	// prev and next are the epochs before and after a commit (for
	// TreeChanges: a PublicChange kept keeps both trees in memory).
	prev, next *core
	used       bool
}

// Process validates a PublicMessage proposal or commit of the current epoch
// from a member, an external sender or a new member: signatures, sender
// rules, the proposal-list rules of RFC 9420 §12.2, path-required rules,
// the leaf node rules of §7.3, the UpdatePath's keys and parent hashes and
// the new tree hash. Proposals are cached; commits are returned to Merge.
// The membership tag, the confirmation tag and PrivateMessages cannot be
// checked without secrets.
func (pg *PublicGroup) Process(msg []byte) (*PublicChange, error) {
	const op = "public process"
	var m wire.MLSMessage
	if err := wire.Unmarshal(msg, &m); err != nil {
		return nil, causeError(op, "", ErrMalformed, err, "decode")
	}
	if m.Version != wire.ProtocolVersionMLS10 {
		return nil, ruleError(op, "§6", ErrMalformed, "version %d is not mls10", m.Version)
	}
	if m.WireFormat != wire.WireFormatPublicMessage {
		return nil, ruleError(op, "§6", ErrMalformed, "wire format %d: only PublicMessage can be validated without secrets", m.WireFormat)
	}
	ac, err := pg.c.unprotectPublic(m.PublicMessage, nil, op)
	if err != nil {
		return nil, err
	}
	fc := &ac.Content
	out := &PublicChange{Sender: senderFromWire(fc.Sender), pg: pg, version: pg.version}
	switch fc.ContentType {
	case wire.ContentTypeProposal:
		cp, err := pg.c.receiveProposal(ac, op+" proposal")
		if err != nil {
			return nil, err
		}
		out.Kind, out.Proposal = KindProposal, proposalInfo(pg.c, cp)
		return out, nil
	case wire.ContentTypeCommit:
	default:
		return nil, ruleError(op, "§6", ErrMalformed, "content type %d", fc.ContentType)
	}
	opc := op + " commit"
	cm := fc.Commit
	if len(ac.Auth.ConfirmationTag) == 0 {
		return nil, ruleError(opc, "§6.1", ErrInvalidCommit, "missing confirmation tag")
	}
	es, err := pg.c.resolve(cm, fc.Sender, opc)
	if err != nil {
		return nil, err
	}
	a, err := pg.c.applyProposals(es, fc.Sender, cm.Path != nil, applyOpts{self: -1}, opc)
	if err != nil {
		return nil, err
	}
	newTree := a.tree
	if cm.Path != nil {
		if err := pg.c.checkPathLeaf(a, cm.Path, opc); err != nil {
			return nil, err
		}
		if newTree, err = treekem.MergeUpdatePath(a.tree, a.committer, cm.Path, pg.c.gc.GroupID); err != nil {
			return nil, causeError(opc, "§12.4.2", ErrInvalidCommit, err, "path")
		}
		if err := checkPathCiphertexts(a, cm.Path); err != nil {
			return nil, causeError(opc, "§7.6", ErrInvalidCommit, err, "path")
		}
	}
	gc, err := pg.c.nextContext(a, newTree, ac)
	if err != nil {
		return nil, opError(opc, err)
	}
	interim, err := framing.InterimTranscriptHash(pg.c.cs, gc.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, opError(opc, err)
	}
	next, err := newCore(pg.c.cfg, pg.c.cs, gc, newTree, interim)
	if err != nil {
		return nil, opError(opc, err)
	}
	out.Kind, out.Epoch, out.prev, out.next, out.ReInit = KindCommit, gc.Epoch, pg.c, next, a.reinit != nil
	out.Sender.Leaf = a.committer
	out.Proposals = committedProposals(pg.c, a, out.Sender)
	out.Extensions, out.ExtensionsChanged = extsFromWire(a.exts), a.gce
	out.Added, out.Removed, out.Updated = changes(a, newTree)
	if cm.Path != nil && !a.external {
		ln := newTree.Leaf(a.committer)
		out.Updated = append(out.Updated, Member{Leaf: a.committer, Credential: credentialFromWire(&ln.Credential), SignatureKey: ln.SignatureKey, EncryptionKey: ln.EncryptionKey})
	}
	return out, nil
}

// checkPathCiphertexts checks that each UpdatePath node carries one
// ciphertext per member of its copath child's resolution minus the leaves
// added by the commit (RFC 9420 §7.6), which members check when decrypting.
func checkPathCiphertexts(a *applied, up *wire.UpdatePath) error {
	_, copath, err := a.tree.FilteredDirectPath(a.committer)
	if err != nil {
		return err
	}
	if len(copath) != len(up.Nodes) {
		return fmt.Errorf("%d path nodes for a filtered direct path of %d", len(up.Nodes), len(copath))
	}
	added := addedLeaves(a)
	for j, x := range copath {
		n := 0
		for _, r := range a.tree.Resolution(x) {
			if l, ok := r.Leaf(); ok && slices.Contains(added, l) {
				continue
			}
			n++
		}
		if len(up.Nodes[j].EncryptedPathSecret) != n {
			return fmt.Errorf("node %d: %d ciphertexts for a resolution of %d", j, len(up.Nodes[j].EncryptedPathSecret), n)
		}
	}
	return nil
}

// Merge applies a commit returned by Process. It fails with ErrStale if
// another commit was merged since.
func (pg *PublicGroup) Merge(ch *PublicChange) error {
	if ch == nil || ch.pg != pg || ch.used || ch.Kind != KindCommit || ch.version != pg.version {
		return fmt.Errorf("mls: public merge: %w", ErrStale)
	}
	ch.used = true
	pg.c = ch.next
	pg.version++
	return nil
}
