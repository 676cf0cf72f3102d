package mls

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treekem"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// CommitOptions say what a Commit contains (RFC 9420 §12.4). Proposals given
// here are included by value; cached proposals by reference.
type CommitOptions struct {
	// Add lists KeyPackages (MLSMessage or bare encodings) to add.
	Add [][]byte
	// Remove lists leaves to remove.
	Remove []LeafIndex
	// ExternalPSKs lists ids of external PSKs (in Config.PSKs) to inject.
	ExternalPSKs [][]byte
	// ResumptionPSKs lists earlier epochs of this group whose resumption
	// PSK to inject.
	ResumptionPSKs []uint64
	// GroupContextExtensions, with SetExtensions, replaces the group's
	// extensions.
	GroupContextExtensions []Extension
	SetExtensions          bool
	// ReInit, if non-nil, commits a ReInit proposal (alone).
	ReInit *ReInitParams
	// IncludePending includes the cached proposals by reference, after
	// those given here by value, choosing a set that is valid together
	// (RFC 9420 §12.2 lets a committer leave proposals out): a proposal
	// that breaks a rule of §12.2 or §7.3 given the proposals before it,
	// or names a PSK this member does not hold, is left out and reported
	// in PendingCommit.Dropped; so are this member's own Updates and
	// removal, every Update of a leaf but the latest, and ReInit
	// proposals, which must stand alone (name those in References).
	// Removes come first, so that a Remove wins over an Update of the same
	// leaf; otherwise the first proposal in cache order wins (two
	// GroupContextExtensions, two Adds of one client). The choice depends
	// only on the cache and the epoch.
	IncludePending bool
	// References lists ProposalRefs (ProposalInfo.Ref) of proposals cached
	// in the current epoch, received or sent by this member, to include
	// by reference, in this order: exactly these, any proposal type,
	// including a ReInit proposed by another member or an external sender.
	// The proposal-list rules of RFC 9420 §12.2 apply to the whole list as
	// usual (a ReInit stands alone; no Update or Remove of the committer).
	// A reference that is not cached, or given twice, fails with
	// ErrInvalidProposal. It cannot be combined with IncludePending.
	References [][]byte
	// ForcePath includes an UpdatePath even when none is required.
	ForcePath bool
	// InlineRatchetTree puts the ratchet_tree extension in the Welcome's
	// GroupInfo; otherwise joiners need RatchetTree() out of band.
	InlineRatchetTree bool
	// ExternalPub puts the external_pub extension in PendingCommit.GroupInfo.
	ExternalPub bool
	// AuthenticatedData is sent in the clear with the Commit.
	AuthenticatedData []byte

	// UnsafeCorruptPathForTesting, for tests only, damages every encrypted
	// path secret of the Commit's UpdatePath (one bit of each HPKE
	// ciphertext) before the Commit is signed: the committer merges it as
	// usual and a Delivery Service, which sees only the public parts,
	// accepts it, but no other member can process it. It needs a path
	// (one required, or ForcePath). Never set it outside tests.
	UnsafeCorruptPathForTesting bool
	// UnsafePoisonExternalPubForTesting, for tests only, with ExternalPub,
	// puts a fresh public key of the suite instead of the new epoch's
	// external public key in PendingCommit.GroupInfo's external_pub
	// before it is signed: the GroupInfo passes every public check, but
	// the members cannot process an external commit made from it (RFC
	// 9420 §12.4.3.2). Never set it outside tests.
	UnsafePoisonExternalPubForTesting bool
}

// PendingCommit is a Commit this member created, not yet applied. The
// application sends Message (and Welcome, GroupInfo) and calls
// MergePendingCommit once the Delivery Service accepted it, or
// DiscardPendingCommit if it was rejected. Creating it consumed one
// handshake key of the sender's ratchet (when EncryptHandshake is set), never
// to be reused; nothing else changed.
type PendingCommit struct {
	// Message is the encoded MLSMessage carrying the Commit.
	Message []byte
	// Welcome is the encoded MLSMessage(Welcome) for the added members,
	// or nil if none were added.
	Welcome []byte
	// GroupInfo is a signed GroupInfo of the new epoch (MLSMessage).
	GroupInfo []byte
	// Epoch is the epoch the Commit starts.
	Epoch uint64
	// Added, Removed and Updated describe the membership change: Added
	// lists the members added by Add proposals and, for an external join
	// (JoinExternal), the joiner itself at the leaf it takes; Removed the
	// removed members, including the old leaf of a resync; Updated the
	// members whose leaves committed Update proposals replaced (not the
	// committer's own path leaf).
	Added, Removed, Updated []Member
	// Dropped lists the cached proposals CommitOptions.IncludePending left
	// out of the Commit, in cache order, each with the rule it broke.
	// They are lost when the epoch ends; their senders may propose again.
	Dropped []DroppedProposal

	transition
}

// DroppedProposal is a cached proposal that a Commit with
// CommitOptions.IncludePending left out.
type DroppedProposal struct {
	// Proposal describes it; Proposal.Ref is its ProposalRef.
	Proposal ProposalInfo
	// Reason says which rule it broke in this Commit. It wraps
	// ErrInvalidProposal, ErrInvalidLeafNode, ErrInvalidKeyPackage,
	// ErrCredentialRejected or ErrMissingPSK.
	Reason error
}

// transition is the epoch a commit leads to, prepared but not applied:
// what PendingCommit and StagedCommit share. It applies at most once, and
// only to the group, at the group version, it was prepared for.
type transition struct {
	g       *Group
	version uint64
	next    *core
	sched   *schedule.Epoch
	priv    *treekem.Private
	reinit  *wire.ReInit
	used    bool
}

// take marks t used and reports whether it may be applied to g now.
func (t *transition) take(g *Group) bool {
	if t.g != g || t.used || t.version != g.version {
		return false
	}
	t.used = true
	return true
}

// apply installs the new epoch in g, which enters ReInit if the commit
// ends the group. t must have been taken.
func (t *transition) apply(g *Group) error {
	if err := g.install(t.next, t.sched, t.priv); err != nil {
		return err
	}
	if t.reinit != nil {
		g.state = stateReInit
		g.reinit = reinitInfo(t.reinit, g)
	}
	return nil
}

// discard wipes the new epoch's secrets; t can no longer be applied.
func (t *transition) discard() {
	if t.used {
		return
	}
	t.used = true
	if t.sched != nil {
		t.sched.Zero()
	}
	if t.priv != nil {
		t.priv.Zero()
	}
}

// RatchetTree returns the encoded ratchet tree of the epoch the Commit
// starts (the ratchet_tree extension body, RFC 9420 §12.4.3.3), before the
// commit is merged: for out-of-band delivery to the members its Welcome
// adds when CommitOptions.InlineRatchetTree is not set.
func (pc *PendingCommit) RatchetTree() ([]byte, error) {
	if pc == nil || pc.next == nil {
		return nil, fmt.Errorf("mls: pending commit ratchet tree: %w", ErrStale)
	}
	b, err := pc.next.encodedTree()
	if err != nil {
		return nil, opError("pending commit ratchet tree", err)
	}
	return slices.Clone(b), nil
}

// Commit creates a Commit (RFC 9420 §12.4.1) without changing the group.
func (g *Group) Commit(opts CommitOptions) (*PendingCommit, error) {
	const op = "commit"
	if err := g.checkActive(op); err != nil {
		return nil, err
	}
	es, dropped, err := g.commitEntries(opts, op)
	if err != nil {
		return nil, err
	}
	ao := applyOpts{self: int64(g.OwnLeaf()), filter: opts.IncludePending, havePSK: g.hasPSK}
	a, err := g.c.applyProposals(es, g.ownSender(), true, ao, op)
	if err != nil {
		return nil, err
	}
	pc, err := g.finishCommit(a, opts, a.pathRequired || opts.ForcePath, op)
	if err != nil {
		return nil, err
	}
	pc.Dropped = g.droppedProposals(append(dropped, a.dropped...))
	return pc, nil
}

// commitEntries gathers the proposals of a Commit: those named by
// opts.References, then those of opts (by value), then, with
// opts.IncludePending, the cached ones as optional entries (pendingEntries),
// which come last so that the committer's explicit choices win any
// conflict with them. The second result lists the cached proposals left
// out before any check.
func (g *Group) commitEntries(opts CommitOptions, op string) ([]entry, []droppedEntry, error) {
	var es []entry
	if opts.IncludePending && len(opts.References) > 0 {
		return nil, nil, fmt.Errorf("mls: %s: IncludePending and References are exclusive", op)
	}
	for i, ref := range opts.References {
		cp := g.c.cached(ref)
		if cp == nil {
			return nil, nil, ruleError(op, "§12.4", ErrInvalidProposal, "reference %d (%x) names no proposal cached in epoch %d", i, ref, g.c.gc.Epoch)
		}
		for _, e := range es {
			if e.cached == cp {
				return nil, nil, ruleError(op, "§12.4", ErrInvalidProposal, "reference %d (%x) given twice", i, ref)
			}
		}
		es = append(es, entry{p: cp.p, sender: cp.sender, ref: cp.ref, cached: cp})
	}
	add := func(p *wire.Proposal) {
		es = append(es, entry{p: p, sender: g.ownSender()})
	}
	if opts.SetExtensions {
		add(&wire.Proposal{Type: wire.ProposalTypeGroupContextExtensions, GroupContextExtensions: &wire.GroupContextExtensions{Extensions: extsToWire(opts.GroupContextExtensions)}})
	}
	for _, r := range opts.Remove {
		add(&wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: uint32(r)}})
	}
	for _, kpb := range opts.Add {
		kp, err := decodeKeyPackage(kpb)
		if err != nil {
			return nil, nil, causeError(op, "", ErrInvalidKeyPackage, err, "decode")
		}
		add(&wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp}})
	}
	for _, id := range opts.ExternalPSKs {
		pid, err := g.newPSKID(wire.PSKTypeExternal, slices.Clone(id), 0)
		if err != nil {
			return nil, nil, opError(op, err)
		}
		add(&wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: pid}})
	}
	for _, ep := range opts.ResumptionPSKs {
		pid, err := g.newPSKID(wire.PSKTypeResumption, nil, ep)
		if err != nil {
			return nil, nil, opError(op, err)
		}
		add(&wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: pid}})
	}
	if opts.ReInit != nil {
		add(&wire.Proposal{Type: wire.ProposalTypeReInit, ReInit: opts.ReInit.wire(g)})
	}
	var dropped []droppedEntry
	if opts.IncludePending && opts.ReInit == nil {
		var pending []entry
		pending, dropped = g.pendingEntries(op)
		es = append(es, pending...)
	}
	return es, dropped, nil
}

// pendingEntries returns the cached proposals IncludePending offers, as
// optional entries that applyProposals may drop, in the order that makes
// its first-wins rule pick what RFC 9420 §12.2 prefers: Removes first
// (a committer "SHOULD prefer any Remove received" over an Update of the
// same leaf), then the others in cache order. Left out at once, and
// returned as dropped:
//   - an Update followed in the cache by another Update of the same leaf
//     (§12.2: "or the most recent Update if there are no Removes");
//   - a ReInit, which cannot be committed with anything else (§12.2: the
//     committer "SHOULD prefer [other proposals] over the ReInit"); it
//     can be committed alone through CommitOptions.References.
func (g *Group) pendingEntries(op string) (es []entry, dropped []droppedEntry) {
	latest := map[uint32]*cachedProposal{}
	for _, cp := range g.c.cache {
		if cp.p.Type == wire.ProposalTypeUpdate {
			latest[cp.sender.LeafIndex] = cp
		}
	}
	for _, removes := range []bool{true, false} {
		for _, cp := range g.c.cache {
			if (cp.p.Type == wire.ProposalTypeRemove) != removes {
				continue
			}
			e := entry{p: cp.p, sender: cp.sender, ref: cp.ref, cached: cp, optional: true}
			switch cp.p.Type {
			case wire.ProposalTypeReInit:
				dropped = append(dropped, droppedEntry{e: e, err: ruleError(op, "§12.2", ErrInvalidProposal, "ReInit left out: it must stand alone")})
				continue
			case wire.ProposalTypeUpdate:
				if latest[cp.sender.LeafIndex] != cp {
					dropped = append(dropped, droppedEntry{e: e, err: ruleError(op, "§12.2", ErrInvalidProposal, "Update of leaf %d superseded by a later one", cp.sender.LeafIndex)})
					continue
				}
			}
			es = append(es, e)
		}
	}
	return es, dropped
}

// droppedProposals describes the dropped cached proposals, in cache order.
func (g *Group) droppedProposals(ds []droppedEntry) []DroppedProposal {
	if len(ds) == 0 {
		return nil
	}
	pos := make(map[*cachedProposal]int, len(g.c.cache))
	for i, cp := range g.c.cache {
		pos[cp] = i
	}
	slices.SortStableFunc(ds, func(x, y droppedEntry) int { return pos[x.e.cached] - pos[y.e.cached] })
	out := make([]DroppedProposal, len(ds))
	for i, d := range ds {
		out[i] = DroppedProposal{Proposal: *proposalInfo(g.c, d.e.cached), Reason: d.err}
	}
	return out
}

// hasPSK reports whether this member holds the PSK id names (RFC 9420
// §8.4), without combining it: the committer's test for a cached
// PreSharedKey proposal.
func (g *Group) hasPSK(id *wire.PreSharedKeyID) bool {
	switch id.Type {
	case wire.PSKTypeExternal:
		if g.cfg.PSKs != nil {
			_, ok := g.cfg.PSKs.ExternalPSK(id.ID)
			return ok
		}
	case wire.PSKTypeResumption:
		if psk, ok := g.ResumptionPSK(id.GroupID, id.Epoch); ok {
			clear(psk)
			return true
		}
		if g.cfg.PSKs != nil {
			_, ok := g.cfg.PSKs.ResumptionPSK(id.GroupID, id.Epoch)
			return ok
		}
	}
	return false
}

// finishCommit creates the path, signs, runs the key schedule and builds the
// Welcome for a validated and applied proposal list.
func (g *Group) finishCommit(a *applied, opts CommitOptions, withPath bool, op string) (*PendingCommit, error) {
	s := g.c.cs
	cm := &wire.Commit{Proposals: make([]wire.ProposalOrRef, 0, len(a.entries))}
	for _, e := range a.entries {
		if e.ref != nil {
			cm.Proposals = append(cm.Proposals, wire.ProposalOrRef{Type: wire.ProposalOrRefReference, Reference: e.ref})
		} else {
			cm.Proposals = append(cm.Proposals, wire.ProposalOrRef{Type: wire.ProposalOrRefProposal, Proposal: e.p})
		}
	}
	var (
		newTree      = a.tree
		newPriv      *treekem.Private
		commitSecret = schedule.CommitSecret(make([]byte, s.HashSize()))
		up           *treekem.Update
		exclude      = addedLeaves(a)
	)
	if withPath {
		prov := g.c.provisional(a)
		tmpl := *g.c.tree.Leaf(g.OwnLeaf())
		var err error
		up, err = treekem.CreateUpdatePath(a.tree, g.OwnLeaf(), treekem.CreateParams{
			Leaf: &tmpl, SignaturePrivateKey: g.signer.priv, GroupID: g.c.gc.GroupID,
			Exclude: exclude, Context: treekem.GroupContext(&prov), Workers: g.cfg.Workers,
		})
		if err != nil {
			return nil, opError(op, err)
		}
		defer up.Zero()
		if opts.UnsafeCorruptPathForTesting {
			corruptPathForTesting(up.Path)
		}
		cm.Path = up.Path
		newTree, newPriv, commitSecret = up.Tree, up.Private, up.CommitSecret
	} else {
		newPriv = g.priv.Clone()
	}
	content := &wire.FramedContent{
		GroupID:           g.c.gc.GroupID,
		Epoch:             g.c.gc.Epoch,
		Sender:            g.ownSender(),
		AuthenticatedData: orEmpty(opts.AuthenticatedData),
		ContentType:       wire.ContentTypeCommit,
		Commit:            cm,
	}
	var (
		next  *core
		sched *nextEpoch
	)
	msg, _, err := g.protect(content, func(ac *wire.AuthenticatedContent) error {
		var err error
		next, sched, err = g.c.deriveNext(a, newTree, ac, g.keys.sched.InitSecret, commitSecret, g.pskSecret, nil)
		if err != nil {
			return err
		}
		ac.Auth.ConfirmationTag = sched.confirmationTag
		return nil
	})
	if err != nil {
		newPriv.Zero()
		return nil, opError(op, err)
	}
	pc := &PendingCommit{Message: msg, Epoch: next.gc.Epoch, transition: transition{g: g, version: g.version, next: next, sched: sched.Epoch, priv: newPriv, reinit: a.reinit}}
	pc.Added, pc.Removed, pc.Updated = changes(a, newTree)
	gi, err := buildGroupInfo(!g.cfg.DisableGREASE, next, sched.Epoch, g.OwnLeaf(), g.signer, GroupInfoOptions{InlineRatchetTree: opts.InlineRatchetTree, ExternalPub: opts.ExternalPub,
		poisonExternalPub: opts.UnsafePoisonExternalPubForTesting})
	if err != nil {
		return nil, err
	}
	if pc.GroupInfo, err = encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: gi}); err != nil {
		return nil, err
	}
	if len(a.added) > 0 {
		if !opts.ExternalPub {
			// The Welcome's GroupInfo never carries external_pub.
			gi, err = buildGroupInfo(!g.cfg.DisableGREASE, next, sched.Epoch, g.OwnLeaf(), g.signer, GroupInfoOptions{InlineRatchetTree: opts.InlineRatchetTree})
			if err != nil {
				return nil, err
			}
		}
		w, err := makeWelcome(s, gi, sched.Epoch, a, up)
		if err != nil {
			return nil, opError(op, err)
		}
		pc.Welcome = w
	}
	return pc, nil
}

// corruptPathForTesting flips the last bit of every encrypted path secret
// of p (CommitOptions.UnsafeCorruptPathForTesting).
func corruptPathForTesting(p *wire.UpdatePath) {
	for i := range p.Nodes {
		for j := range p.Nodes[i].EncryptedPathSecret {
			if ct := p.Nodes[i].EncryptedPathSecret[j].Ciphertext; len(ct) > 0 {
				ct[len(ct)-1] ^= 1
			}
		}
	}
}

func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func addedLeaves(a *applied) []LeafIndex {
	out := make([]LeafIndex, len(a.added))
	for i, m := range a.added {
		out[i] = m.leaf
	}
	return out
}

// changes describes the membership change of a commit whose final tree
// (its path merged) is t: the added members, then for an external commit
// the joiner at its new leaf (RFC 9420 §12.4.3.2); the removed members,
// among them the old leaf a resyncing joiner replaces; the members whose
// leaves Update proposals replaced. A member committer's own path leaf is
// the caller's to report.
func changes(a *applied, t *tree.Tree) (added, removed, updated []Member) {
	for _, m := range a.added {
		ln := &m.kp.LeafNode
		added = append(added, Member{Leaf: m.leaf, Credential: credentialFromWire(&ln.Credential), SignatureKey: ln.SignatureKey, EncryptionKey: ln.EncryptionKey})
	}
	if a.external {
		if ln := t.Leaf(a.committer); ln != nil {
			added = append(added, Member{Leaf: a.committer, Credential: credentialFromWire(&ln.Credential), SignatureKey: ln.SignatureKey, EncryptionKey: ln.EncryptionKey})
		}
	}
	for _, m := range a.removed {
		removed = append(removed, Member{Leaf: m.leaf, Credential: credentialFromWire(&m.node.Credential), SignatureKey: m.node.SignatureKey, EncryptionKey: m.node.EncryptionKey})
	}
	for _, m := range a.updated {
		if ln := t.Leaf(m.leaf); ln != nil {
			updated = append(updated, Member{Leaf: m.leaf, Credential: credentialFromWire(&ln.Credential), SignatureKey: ln.SignatureKey, EncryptionKey: ln.EncryptionKey})
		}
	}
	return
}

// nextEpoch is the outcome of the key schedule for a commit.
type nextEpoch struct {
	*schedule.Epoch
	confirmationTag []byte
}

// deriveNext computes the GroupContext, key schedule, confirmation tag and
// interim transcript hash of the epoch after the commit ac (RFC 9420
// §12.4.2). If wantTag is non-nil it must equal the computed tag.
func (c *core) deriveNext(a *applied, t *tree.Tree, ac *wire.AuthenticatedContent, init schedule.InitSecret, commitSecret schedule.CommitSecret, psks func([]wire.PreSharedKeyID) (schedule.CombinedPSK, error), wantTag []byte) (*core, *nextEpoch, error) {
	gc, err := c.nextContext(a, t, ac)
	if err != nil {
		return nil, nil, err
	}
	var psk schedule.CombinedPSK
	if len(a.psks) > 0 {
		if psk, err = psks(a.psks); err != nil {
			return nil, nil, err
		}
		defer clear(psk)
	}
	gcb, err := codec.Marshal(&gc)
	if err != nil {
		return nil, nil, err
	}
	sched, err := schedule.DeriveEpoch(c.cs, init, commitSecret, psk, gcb)
	if err != nil {
		return nil, nil, err
	}
	tag, err := framing.ConfirmationTag(c.cs, sched.ConfirmationKey, gc.ConfirmedTranscriptHash)
	if err != nil {
		sched.Zero()
		return nil, nil, err
	}
	if wantTag != nil {
		if err := framing.VerifyConfirmationTag(c.cs, sched.ConfirmationKey, gc.ConfirmedTranscriptHash, wantTag); err != nil {
			sched.Zero()
			return nil, nil, fmt.Errorf("§6.1: confirmation tag: %w: %w", err, ErrInvalidCommit)
		}
	}
	interim, err := framing.InterimTranscriptHash(c.cs, gc.ConfirmedTranscriptHash, tag)
	if err != nil {
		sched.Zero()
		return nil, nil, err
	}
	next, err := newCore(c.cfg, c.cs, gc, t, interim)
	if err != nil {
		sched.Zero()
		return nil, nil, err
	}
	return next, &nextEpoch{Epoch: sched, confirmationTag: tag}, nil
}

// pskSecret resolves PSK ids (RFC 9420 §8.4) from this group's resumption
// PSKs and Config.PSKs.
func (g *Group) pskSecret(ids []wire.PreSharedKeyID) (schedule.CombinedPSK, error) {
	return resolvePSKs(g.c.cs, ids, g.cfg.PSKs, g)
}

func resolvePSKs(s *suite.Suite, ids []wire.PreSharedKeyID, store PSKStore, g *Group) (schedule.CombinedPSK, error) {
	psks := make([]schedule.PSK, 0, len(ids))
	defer func() {
		for _, p := range psks {
			clear(p.Secret)
		}
	}()
	for i := range ids {
		id := &ids[i]
		var secret []byte
		var ok bool
		switch id.Type {
		case wire.PSKTypeExternal:
			if store != nil {
				secret, ok = store.ExternalPSK(id.ID)
				secret = slices.Clone(secret)
			}
		case wire.PSKTypeResumption:
			if g != nil {
				secret, ok = g.ResumptionPSK(id.GroupID, id.Epoch)
			}
			if !ok && store != nil {
				secret, ok = store.ResumptionPSK(id.GroupID, id.Epoch)
				secret = slices.Clone(secret)
			}
		}
		if !ok {
			return nil, fmt.Errorf("§8.4: PSK %d (type %d, id %x, group %x, epoch %d): %w", i, id.Type, id.ID, id.GroupID, id.Epoch, ErrMissingPSK)
		}
		idb, err := codec.Marshal(id)
		if err != nil {
			return nil, err
		}
		psks = append(psks, schedule.PSK{ID: idb, Secret: secret})
	}
	return schedule.PSKSecret(s, psks)
}

// makeWelcome encrypts gi for the members added by a commit (RFC 9420
// §12.4.3.1).
func makeWelcome(s *suite.Suite, gi *wire.GroupInfo, sched *schedule.Epoch, a *applied, up *treekem.Update) ([]byte, error) {
	gib, err := codec.Marshal(gi)
	if err != nil {
		return nil, err
	}
	kn, err := schedule.WelcomeKeyNonce(s, sched.WelcomeSecret)
	if err != nil {
		return nil, err
	}
	defer kn.Zero()
	egi, err := s.Seal(kn.Key, kn.Nonce, nil, gib)
	if err != nil {
		return nil, err
	}
	w := &wire.Welcome{CipherSuite: s.ID(), EncryptedGroupInfo: egi}
	for _, m := range a.added {
		gs := wire.GroupSecrets{JoinerSecret: sched.JoinerSecret, PSKs: a.psks}
		if gs.PSKs == nil {
			gs.PSKs = []wire.PreSharedKeyID{}
		}
		if up != nil {
			_, ps, err := up.PathSecretFor(m.leaf)
			if err != nil {
				return nil, err
			}
			gs.PathSecret = ps
		}
		gsb, err := codec.Marshal(&gs)
		clear(gs.PathSecret)
		if err != nil {
			return nil, err
		}
		kemOut, ct, err := s.EncryptWithLabel(m.kp.InitKey, "Welcome", egi, gsb)
		clear(gsb)
		if err != nil {
			return nil, err
		}
		w.Secrets = append(w.Secrets, wire.EncryptedGroupSecrets{NewMember: m.ref, EncryptedGroupSecrets: wire.HPKECiphertext{KEMOutput: kemOut, Ciphertext: ct}})
	}
	return encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatWelcome, Welcome: w})
}

// MergePendingCommit applies a Commit this member created, once the Delivery
// Service accepted it. It fails with ErrStale if the group changed since.
func (g *Group) MergePendingCommit(pc *PendingCommit) error {
	const op = "merge pending commit"
	if pc == nil || !pc.take(g) {
		return fmt.Errorf("mls: %s: %w", op, ErrStale)
	}
	if err := pc.apply(g); err != nil {
		return opError(op, err)
	}
	if g.state == statePendingJoin {
		// An external join's group becomes active (apply has set ReInit
		// instead if the commit ends the group).
		g.state = stateActive
	}
	return nil
}

// DiscardPendingCommit drops a Commit the Delivery Service rejected; its
// secrets are wiped and the group is unchanged.
func (g *Group) DiscardPendingCommit(pc *PendingCommit) {
	if pc != nil {
		pc.discard()
	}
}

// equalBytes is bytes.Equal, for readability at call sites on public data.
func equalBytes(a, b []byte) bool { return bytes.Equal(a, b) }
