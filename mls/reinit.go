package mls

import (
	"bytes"
	"fmt"
	"slices"

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
	es, byRef, err := ng.commitEntries(opts, op)
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
	byRef = append(byRef, false)
	a, err := ng.c.applyProposals(es, ng.ownSender(), true, applyOpts{self: int64(ng.OwnLeaf()), allowResumption: true}, op)
	if err != nil {
		return nil, nil, err
	}
	pc, err := ng.finishCommit(a, es, byRef, opts, a.pathRequired || opts.ForcePath, op)
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

// checkResumptionJoin checks a Welcome carrying a reinit or branch
// resumption PSK against the old group, when the store knows it (RFC 9420
// §11.2, §11.3).
func checkResumptionJoin(store PSKStore, usage wire.ResumptionPSKUsage, id *wire.PreSharedKeyID, gc *wire.GroupContext) error {
	var old *Group
	if p, ok := store.(*PSKs); ok {
		for _, g := range p.Groups {
			if bytes.Equal(g.GroupID(), id.GroupID) {
				old = g
			}
		}
	}
	switch usage {
	case wire.ResumptionPSKUsageReInit:
		if old != nil {
			ri := old.reinit
			if ri == nil {
				return fmt.Errorf("old group %x has no committed ReInit", id.GroupID)
			}
			if !bytes.Equal(ri.GroupID, gc.GroupID) || ri.CipherSuite != gc.CipherSuite || ri.params.Version != gc.Version || !extsEqual(ri.params.Extensions, gc.Extensions) {
				return fmt.Errorf("new group does not match the ReInit parameters")
			}
			if id.Epoch != ri.OldEpoch {
				return fmt.Errorf("reinit PSK epoch %d, want %d", id.Epoch, ri.OldEpoch)
			}
		}
	case wire.ResumptionPSKUsageBranch:
		if old != nil {
			if old.CipherSuite() != gc.CipherSuite {
				return fmt.Errorf("branch changes the cipher suite")
			}
		}
		if bytes.Equal(id.GroupID, gc.GroupID) {
			return fmt.Errorf("branch keeps the old group id")
		}
	default:
		return fmt.Errorf("unknown resumption usage %d", usage)
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
