package mls

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// ReInitInfo are the parameters of a committed ReInit (RFC 9420 §11.2): the
// new group to create, and the old group's id and epoch whose resumption PSK
// links them.
type ReInitInfo struct {
	GroupID     []byte
	CipherSuite CipherSuite
	Extensions  []Extension
	// OldGroupID and OldEpoch name the resumption PSK (usage reinit): the
	// epoch the ReInit commit started.
	OldGroupID []byte
	OldEpoch   uint64

	params *wire.ReInit
}

func reinitInfo(r *wire.ReInit, g *Group) *ReInitInfo {
	return &ReInitInfo{GroupID: r.GroupID, CipherSuite: r.CipherSuite, Extensions: extsFromWire(r.Extensions), OldGroupID: g.c.gc.GroupID, OldEpoch: g.c.gc.Epoch + boolToEpoch(g.state != stateReInit), params: r}
}

func boolToEpoch(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// ReInit returns the parameters of the ReInit that ended the group, or nil.
func (g *Group) ReInit() *ReInitInfo { return g.reinit }

// ReInitGroup creates the group that replaces g after a committed ReInit
// (RFC 9420 §11.2): a new group with the ReInit's id, suite and extensions,
// and a Commit adding the given KeyPackages with a resumption PSK of usage
// reinit from g's last epoch. signer and credential must be for the new
// suite. The returned group is at epoch 0 until pc is merged.
func (g *Group) ReInitGroup(cfg *Config, signer *Signer, credential Credential, keyPackages [][]byte, opts CommitOptions) (*Group, *PendingCommit, error) {
	const op = "reinit group"
	if g.state != stateReInit || g.reinit == nil {
		return nil, nil, fmt.Errorf("mls: %s: no ReInit was committed", op)
	}
	ri := g.reinit
	ng, err := CreateGroup(cfg, ri.CipherSuite, ri.GroupID, signer, credential, CreateOptions{Extensions: ri.Extensions})
	if err != nil {
		return nil, nil, opError(op, err)
	}
	return ng.resumeCommit(g, wire.ResumptionPSKUsageReInit, ri.OldEpoch, keyPackages, opts, op)
}

// BranchOptions shape a subgroup created by Group.Branch.
type BranchOptions struct {
	// Extensions, with SetExtensions, are the subgroup's GroupContext
	// extensions from its creation on; otherwise it takes the parent
	// group's. This member's leaf must support them (RFC 9420 §11.1).
	Extensions    []Extension
	SetExtensions bool
	// Commit shapes the subgroup's first commit (ForcePath,
	// InlineRatchetTree, ExternalPub, AuthenticatedData, and proposals by
	// value). Its Add, ReInit, IncludePending and References are ignored:
	// the commit adds Branch's KeyPackages and the branch resumption PSK.
	Commit CommitOptions
}

// Branch creates a subgroup of g (RFC 9420 §11.3) with the given new group
// id, the same suite, the extensions of opts (by default g's), this
// member's signer, credential and capabilities, and a Commit adding the
// given KeyPackages with a resumption PSK of usage branch from g's current
// epoch. The new group is at epoch 0 until pc is merged; g is unchanged.
func (g *Group) Branch(cfg *Config, groupID []byte, keyPackages [][]byte, opts BranchOptions) (*Group, *PendingCommit, error) {
	const op = "branch"
	if err := g.checkActive(op); err != nil {
		return nil, nil, err
	}
	own := g.c.tree.Leaf(g.OwnLeaf())
	caps := &Capabilities{CipherSuites: own.Capabilities.CipherSuites, Credentials: own.Capabilities.Credentials}
	for _, e := range own.Capabilities.Extensions {
		caps.Extensions = append(caps.Extensions, uint16(e))
	}
	for _, p := range own.Capabilities.Proposals {
		caps.Proposals = append(caps.Proposals, uint16(p))
	}
	exts := g.Extensions()
	if opts.SetExtensions {
		exts = opts.Extensions
	}
	ng, err := CreateGroup(cfg, g.CipherSuite(), groupID, g.signer, credentialFromWire(&own.Credential), CreateOptions{Extensions: exts, Capabilities: caps})
	if err != nil {
		return nil, nil, opError(op, err)
	}
	return ng.resumeCommit(g, wire.ResumptionPSKUsageBranch, g.Epoch(), keyPackages, opts.Commit, op)
}

// resumeCommit builds the first commit of a re-initialized or branched group
// ng: Adds of keyPackages and the resumption PSK of old at epoch.
func (ng *Group) resumeCommit(old *Group, usage wire.ResumptionPSKUsage, epoch uint64, keyPackages [][]byte, opts CommitOptions, op string) (*Group, *PendingCommit, error) {
	if _, ok := old.ResumptionPSK(old.GroupID(), epoch); !ok {
		return nil, nil, fmt.Errorf("mls: %s: resumption PSK of epoch %d: %w", op, epoch, ErrMissingPSK)
	}
	ng.cfg.PSKs = chainStore{&PSKs{Groups: []*Group{old}}, ng.cfg.PSKs}
	opts.Add = keyPackages
	opts.ReInit = nil
	opts.IncludePending = false
	opts.References = nil
	es, _, err := ng.commitEntries(opts, op)
	if err != nil {
		return nil, nil, err
	}
	nonce := make([]byte, ng.c.cs.HashSize())
	if _, err := randRead(nonce); err != nil {
		return nil, nil, opError(op, err)
	}
	psk := &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{
		Type: wire.PSKTypeResumption, Usage: usage, GroupID: slices.Clone(old.GroupID()), Epoch: epoch, Nonce: nonce,
	}}}
	es = append(es, entry{p: psk, sender: ng.ownSender()})
	a, err := ng.c.applyProposals(es, ng.ownSender(), true, applyOpts{self: int64(ng.OwnLeaf()), allowResumption: true}, op)
	if err != nil {
		return nil, nil, err
	}
	pc, err := ng.finishCommit(a, opts, a.pathRequired || opts.ForcePath, op)
	if err != nil {
		return nil, nil, err
	}
	return ng, pc, nil
}

// chainStore consults a, then b.
type chainStore struct{ a, b PSKStore }

func (c chainStore) ExternalPSK(id []byte) ([]byte, bool) {
	if c.a != nil {
		if s, ok := c.a.ExternalPSK(id); ok {
			return s, ok
		}
	}
	if c.b != nil {
		return c.b.ExternalPSK(id)
	}
	return nil, false
}

func (c chainStore) ResumptionPSK(groupID []byte, epoch uint64) ([]byte, bool) {
	if c.a != nil {
		if s, ok := c.a.ResumptionPSK(groupID, epoch); ok {
			return s, ok
		}
	}
	if c.b != nil {
		return c.b.ResumptionPSK(groupID, epoch)
	}
	return nil, false
}

// ResumptionJoin describes a Welcome that starts a group from an old one
// through a resumption PSK of usage reinit or branch (RFC 9420 §11.2,
// §11.3), as JoinOptions.CheckResumption sees it once the library's own
// checks passed. Its slices alias group state and must not be modified
// or retained.
type ResumptionJoin struct {
	// Branch is true for a subgroup branch (§11.3), false for a ReInit
	// (§11.2).
	Branch bool
	// OldGroup is the group resumed; the hook must not change it.
	OldGroup *Group
	// OldEpoch is the epoch of OldGroup whose resumption PSK the Welcome
	// uses.
	OldEpoch uint64
	// OldMembers are OldGroup's members at OldEpoch. For a past epoch of a
	// group restored by LoadGroup only their leaves and signature keys
	// are known.
	OldMembers []Member
	// NewMembers are the members of the group being joined.
	NewMembers []Member
	// GroupID and CipherSuite are the new group's.
	GroupID     []byte
	CipherSuite CipherSuite
}

// resumedGroup returns the old group that a Welcome's resumption PSK id
// names: opts.OldGroup, or the group of that id among the Groups of a
// *PSKs store, preferring one that still holds the PSK's epoch.
func resumedGroup(opts *JoinOptions, store PSKStore, id *wire.PreSharedKeyID) (*Group, error) {
	if g := opts.OldGroup; g != nil {
		if !bytes.Equal(g.GroupID(), id.GroupID) {
			return nil, fmt.Errorf("JoinOptions.OldGroup is group %x, the Welcome resumes group %x", g.GroupID(), id.GroupID)
		}
		return g, nil
	}
	var found *Group
	for _, g := range storeGroups(store) {
		if !bytes.Equal(g.GroupID(), id.GroupID) {
			continue
		}
		if _, ok := g.ResumptionPSK(id.GroupID, id.Epoch); ok {
			return g, nil
		}
		if found == nil {
			found = g
		}
	}
	if found == nil {
		return nil, fmt.Errorf("the resumed group %x is not known: pass it as JoinOptions.OldGroup", id.GroupID)
	}
	return found, nil
}

// storeGroups returns the groups a PSK store built by this package
// consults for resumption PSKs.
func storeGroups(store PSKStore) []*Group {
	switch s := store.(type) {
	case *PSKs:
		if s != nil {
			return s.Groups
		}
	case chainStore:
		return append(storeGroups(s.a), storeGroups(s.b)...)
	}
	return nil
}

// membersAt returns g's members at epoch: the current epoch's, or those
// of a past epoch g still keeps.
func (g *Group) membersAt(epoch uint64) ([]Member, bool) {
	if epoch == g.c.gc.Epoch {
		return members(g.c.tree), true
	}
	for _, p := range g.past {
		if p.ctx.Epoch() != epoch {
			continue
		}
		if p.tree != nil {
			return members(p.tree), true
		}
		var out []Member
		for i, k := range p.sigKeys {
			if k != nil {
				out = append(out, Member{Leaf: LeafIndex(i), SignatureKey: k})
			}
		}
		return out, true
	}
	return nil, false
}

// defaultSameMember is the default of JoinOptions.SameMember: two leaves
// are the same member when they share the signature key (only the holder
// of the old leaf's key can have signed the new leaf) or present
// credentials of the same identity (Config's default continuity rule:
// basic credentials by identity, other types by their whole encoding).
// A ReInit to a new cipher suite needs new signature keys, so there the
// credential decides.
func defaultSameMember(old, new Member) bool {
	if bytes.Equal(old.SignatureKey, new.SignatureKey) {
		return true
	}
	return old.Credential.Type != 0 && sameIdentity(old.Credential, new.Credential)
}

// checkResumptionJoin checks a Welcome carrying a reinit or branch
// resumption PSK against the old group (RFC 9420 §12.4.3.1, §11.2,
// §11.3), whatever PSK store resolved the PSK: for a ReInit, the old
// group's last commit was a ReInit whose group id, version, suite and
// extensions the new group has, at the epoch the PSK names, and both
// groups have the same members; for a branch, the same version and
// suite, a new group id, and new members that were all members of the
// old group at the PSK's epoch. Then the application's hook runs. t is
// the new group's validated tree; nothing is modified.
func checkResumptionJoin(opts *JoinOptions, store PSKStore, usage wire.ResumptionPSKUsage, id *wire.PreSharedKeyID, gc *wire.GroupContext, t *tree.Tree) error {
	old, err := resumedGroup(opts, store, id)
	if err != nil {
		return err
	}
	same := opts.SameMember
	if same == nil {
		same = defaultSameMember
	}
	rj := &ResumptionJoin{OldGroup: old, OldEpoch: id.Epoch, NewMembers: members(t), GroupID: gc.GroupID, CipherSuite: gc.CipherSuite}
	switch usage {
	case wire.ResumptionPSKUsageReInit:
		ri := old.reinit
		if old.state != stateReInit || ri == nil {
			return fmt.Errorf("§11.2: old group %x has no committed ReInit", id.GroupID)
		}
		if !bytes.Equal(ri.GroupID, gc.GroupID) || ri.CipherSuite != gc.CipherSuite || ri.params.Version != gc.Version || !extsEqual(ri.params.Extensions, gc.Extensions) {
			return fmt.Errorf("§11.2: new group %x (suite %#04x, version %d) does not match the ReInit's group %x (suite %#04x, version %d) and extensions", gc.GroupID, uint16(gc.CipherSuite), gc.Version, ri.GroupID, uint16(ri.CipherSuite), ri.params.Version)
		}
		if id.Epoch != ri.OldEpoch {
			return fmt.Errorf("§11.2: reinit PSK of epoch %d, want %d", id.Epoch, ri.OldEpoch)
		}
		rj.OldMembers = members(old.c.tree)
		// §12.4.3.1: every old member is in the new group; §11.2: "the
		// same membership", so nobody else is.
		for _, m := range rj.OldMembers {
			if !slices.ContainsFunc(rj.NewMembers, func(n Member) bool { return same(m, n) }) {
				return fmt.Errorf("§11.2: member at leaf %d of the old group is not in the new group", m.Leaf)
			}
		}
		for _, n := range rj.NewMembers {
			if !slices.ContainsFunc(rj.OldMembers, func(m Member) bool { return same(m, n) }) {
				return fmt.Errorf("§11.2: leaf %d of the new group was not a member of the old group", n.Leaf)
			}
		}
	case wire.ResumptionPSKUsageBranch:
		rj.Branch = true
		if old.CipherSuite() != gc.CipherSuite || old.c.gc.Version != gc.Version {
			return fmt.Errorf("§11.3: branch changes the version or cipher suite")
		}
		if bytes.Equal(id.GroupID, gc.GroupID) {
			return fmt.Errorf("§11.3: branch keeps the old group id")
		}
		var ok bool
		if rj.OldMembers, ok = old.membersAt(id.Epoch); !ok {
			return fmt.Errorf("§11.3: the members of epoch %d of group %x are no longer known", id.Epoch, id.GroupID)
		}
		// §11.3: each leaf of the subgroup matches a leaf of the old group.
		for _, n := range rj.NewMembers {
			if !slices.ContainsFunc(rj.OldMembers, func(m Member) bool { return same(m, n) }) {
				return fmt.Errorf("§11.3: leaf %d of the new group was not a member of the old group at epoch %d", n.Leaf, id.Epoch)
			}
		}
	default:
		return fmt.Errorf("unknown resumption usage %d", usage)
	}
	if opts.CheckResumption != nil {
		if err := opts.CheckResumption(rj); err != nil {
			return fmt.Errorf("refused by JoinOptions.CheckResumption: %w", err)
		}
	}
	return nil
}

func extsEqual(a, b wire.Extensions) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}
