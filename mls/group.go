package mls

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treekem"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// Group is one member's state of an MLS group (RFC 9420 §8, §12-§15):
// the public state shared with the Delivery Service's follower, the
// member's private TreeKEM keys and the key schedule of the current epoch,
// plus the message keys of a bounded number of past epochs.
//
// Operations that create a Commit return a PendingCommit without changing
// the group; operations that process one return a StagedCommit. Either is
// applied with a Merge method. A failed operation leaves the group as it was.
// A Group is not safe for concurrent use.
type Group struct {
	cfg    *Config
	c      *core
	signer *Signer
	priv   *treekem.Private
	keys   *epochKeys
	past   []*pastKeys
	resume []resumption

	state  groupState
	reinit *ReInitInfo
	// version counts merges, so that stale pending and staged commits
	// are refused.
	version uint64
}

type groupState uint8

const (
	stateActive groupState = iota
	stateRemoved
	stateReInit
	statePendingJoin
)

// epochKeys are the secrets of the current epoch.
type epochKeys struct {
	sched   *schedule.Epoch
	secrets *schedule.SecretTree
}

// pastKeys are what is kept of a past epoch for late application messages:
// its context, its members' signature keys (the tree, or for a state
// restored by LoadGroup just the keys by leaf) and its message keys.
type pastKeys struct {
	ctx        *framing.Context
	tree       *tree.Tree
	sigKeys    [][]byte
	senderData schedule.SenderDataSecret
	secrets    *schedule.SecretTree
}

// signatureKey returns the signature key of the member at leaf i in the
// past epoch, or nil.
func (p *pastKeys) signatureKey(i LeafIndex) []byte {
	if p.tree != nil {
		if ln := p.tree.Leaf(i); ln != nil {
			return ln.SignatureKey
		}
		return nil
	}
	if uint64(i) < uint64(len(p.sigKeys)) {
		return p.sigKeys[i]
	}
	return nil
}

// signatureKeys returns the signature keys by leaf (nil for blank leaves).
func (p *pastKeys) signatureKeys() [][]byte {
	if p.tree == nil {
		return p.sigKeys
	}
	out := make([][]byte, p.tree.LeafCount())
	for i := range out {
		out[i] = p.signatureKey(LeafIndex(i))
	}
	return out
}

type resumption struct {
	epoch uint64
	psk   []byte
}

// maxResumption bounds the resumption PSKs kept (RFC 9420 §8.6).
const maxResumption = 16

// Member is one member of a group.
type Member struct {
	Leaf         LeafIndex
	Credential   Credential
	SignatureKey []byte
	// EncryptionKey is the leaf's HPKE public key.
	EncryptionKey []byte
}

// GroupID returns the group's id. The slice must not be modified.
func (g *Group) GroupID() []byte { return g.c.gc.GroupID }

// Epoch returns the current epoch.
func (g *Group) Epoch() uint64 { return g.c.gc.Epoch }

// CipherSuite returns the group's cipher suite.
func (g *Group) CipherSuite() CipherSuite { return g.c.cs.ID() }

// OwnLeaf returns this member's leaf index.
func (g *Group) OwnLeaf() LeafIndex {
	if g.priv == nil {
		return 0
	}
	return g.priv.Leaf()
}

// Active reports whether the member can still use the group: it was not
// removed and no ReInit was committed.
func (g *Group) Active() bool { return g.state == stateActive }

// Members returns the group's members in leaf order. The slices alias group
// state and must not be modified.
func (g *Group) Members() []Member { return members(g.c.tree) }

func members(t *tree.Tree) []Member {
	out := make([]Member, 0, t.MemberCount())
	for i, ln := range t.Members() {
		out = append(out, Member{Leaf: i, Credential: credentialFromWire(&ln.Credential), SignatureKey: ln.SignatureKey, EncryptionKey: ln.EncryptionKey})
	}
	return out
}

// Member returns the member at leaf i.
func (g *Group) Member(i LeafIndex) (Member, bool) {
	ln := g.c.tree.Leaf(i)
	if ln == nil {
		return Member{}, false
	}
	return Member{Leaf: i, Credential: credentialFromWire(&ln.Credential), SignatureKey: ln.SignatureKey, EncryptionKey: ln.EncryptionKey}, true
}

// EpochAuthenticator returns the epoch_authenticator of the current epoch
// (RFC 9420 §8.7), a fresh copy. It is secret to the group.
func (g *Group) EpochAuthenticator() []byte {
	return slices.Clone(g.keys.sched.EpochAuthenticator)
}

// Export is the MLS exporter of the current epoch (RFC 9420 §8.5). The
// result is secret and owned by the caller.
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	out, err := g.keys.sched.Export(label, context, length)
	if err != nil {
		return nil, opError("export", err)
	}
	return out, nil
}

// Extensions returns the GroupContext extensions. The data must not be
// modified.
func (g *Group) Extensions() []Extension { return extsFromWire(g.c.gc.Extensions) }

// ExternalSenders returns the entries of the group's external_senders
// extension (RFC 9420 §12.1.8.1) in order: Sender.ExternalIndex indexes
// this list. It is nil when the extension is absent. The slices must not be
// modified.
func (g *Group) ExternalSenders() []ExternalSender { return g.c.externalSenders() }

// CachedProposals describes the proposals cached in the current epoch, sent
// or received by this member, in the order they were cached: what
// CommitOptions.IncludePending would consider and what
// CommitOptions.References can name by ProposalInfo.Ref. The slices are
// owned by the caller.
func (g *Group) CachedProposals() []ProposalInfo {
	out := make([]ProposalInfo, 0, len(g.c.cache))
	for _, cp := range g.c.cache {
		out = append(out, *proposalInfo(g.c, cp))
	}
	return out
}

// GroupContext returns the encoded GroupContext of the current epoch (RFC
// 9420 §8.1). The slice must not be modified.
func (g *Group) GroupContext() []byte { return g.c.encodedContext() }

// TreeHash returns the tree hash of the current epoch (a copy).
func (g *Group) TreeHash() []byte { return slices.Clone(g.c.gc.TreeHash) }

// RatchetTree returns the encoded ratchet tree (the ratchet_tree extension
// body, RFC 9420 §12.4.3.3), for out-of-band delivery to joiners.
func (g *Group) RatchetTree() ([]byte, error) {
	b, err := g.c.encodedTree()
	if err != nil {
		return nil, opError("ratchet tree", err)
	}
	return slices.Clone(b), nil
}

// ResumptionPSK returns the resumption_psk of epoch of this group (RFC 9420
// §8.6) if it is still kept. It is secret; the slice is a copy. It
// implements half of PSKStore.
func (g *Group) ResumptionPSK(groupID []byte, epoch uint64) ([]byte, bool) {
	if g == nil || !bytes.Equal(groupID, g.c.gc.GroupID) {
		return nil, false
	}
	for _, r := range g.resume {
		if r.epoch == epoch {
			return slices.Clone(r.psk), true
		}
	}
	return nil, false
}

// GroupInfoOptions are the choices for GroupInfo.
type GroupInfoOptions struct {
	// InlineRatchetTree includes the ratchet_tree extension.
	InlineRatchetTree bool
	// ExternalPub includes the external_pub extension (RFC 9420
	// §12.4.3.2), which lets new members join by external commit.
	ExternalPub bool

	// poisonExternalPub: see CommitOptions.UnsafePoisonExternalPubForTesting.
	poisonExternalPub bool
}

// GroupInfo returns a signed GroupInfo of the current epoch (RFC 9420
// §12.4.3), encoded as an MLSMessage.
func (g *Group) GroupInfo(opts GroupInfoOptions) ([]byte, error) {
	if g.state == stateRemoved {
		return nil, fmt.Errorf("mls: group info: %w", ErrRemoved)
	}
	return makeGroupInfo(g.c, g.keys.sched, g.priv.Leaf(), g.signer, opts)
}

// CheckGroupInfoExternalPub checks a GroupInfo (MLSMessage) of the
// group's current epoch that a Delivery Service stored for external
// joiners, with the epoch's secrets. The GroupInfo must pass the checks of
// PublicChange.VerifyGroupInfo, signed by the member at leaf signer (the
// committer of the epoch), or CheckGroupInfoExternalPub fails (wrapping
// ErrInvalidWelcome or ErrMalformed) and says nothing of the signer. Then
// ok reports whether its external_pub extension, if present, holds the
// epoch's external public key (RFC 9420 §12.4.3.2): if not, the signer
// signed an external_pub that no member can use, and no external commit
// made from this GroupInfo can be processed by the members.
func (g *Group) CheckGroupInfoExternalPub(groupInfo []byte, signer LeafIndex) (ok bool, err error) {
	const op = "check GroupInfo external_pub"
	if err := g.checkActive(op); err != nil {
		return false, err
	}
	if err := g.c.verifyGroupInfo(groupInfo, int64(signer), op); err != nil {
		return false, err
	}
	m, err := decodeMessage(groupInfo, WireFormatGroupInfo, op)
	if err != nil {
		return false, err
	}
	e := m.GroupInfo.Extensions.Find(wire.ExtensionExternalPub)
	if e == nil {
		return true, nil
	}
	var ep wire.ExternalPub
	if err := wire.Unmarshal(e.Data, &ep); err != nil {
		return false, causeError(op, "§12.4.3.2", ErrInvalidWelcome, err, "external_pub")
	}
	priv, pub, err := g.keys.sched.ExternalKeyPair()
	clear(priv)
	if err != nil {
		return false, opError(op, err)
	}
	return bytes.Equal(ep.PublicKey, pub), nil
}

func makeGroupInfo(c *core, ep *schedule.Epoch, signer LeafIndex, s *Signer, opts GroupInfoOptions) ([]byte, error) {
	gi, err := buildGroupInfo(!c.cfg.DisableGREASE, c, ep, signer, s, opts)
	if err != nil {
		return nil, err
	}
	return encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: gi})
}

func buildGroupInfo(grease bool, c *core, ep *schedule.Epoch, signer LeafIndex, s *Signer, opts GroupInfoOptions) (*wire.GroupInfo, error) {
	const op = "group info"
	gc := &c.gc
	cs := ep.Suite()
	tag, err := framing.ConfirmationTag(cs, ep.ConfirmationKey, gc.ConfirmedTranscriptHash)
	if err != nil {
		return nil, opError(op, err)
	}
	gi := &wire.GroupInfo{GroupContext: *gc, Extensions: wire.Extensions{}, ConfirmationTag: tag, Signer: uint32(signer)}
	if grease {
		gi.Extensions = append(gi.Extensions, greaseExtension(greaseValue()))
	}
	if opts.InlineRatchetTree {
		rt, err := c.encodedTree()
		if err != nil {
			return nil, opError(op, err)
		}
		gi.Extensions = append(gi.Extensions, wire.Extension{Type: wire.ExtensionRatchetTree, Data: rt})
	}
	if opts.ExternalPub {
		_, pub, err := ep.ExternalKeyPair()
		if opts.poisonExternalPub {
			_, pub, err = cs.GenerateHPKEKey()
		}
		if err != nil {
			return nil, opError(op, err)
		}
		b, err := codec.Marshal(&wire.ExternalPub{PublicKey: pub})
		if err != nil {
			return nil, opError(op, err)
		}
		gi.Extensions = append(gi.Extensions, wire.Extension{Type: wire.ExtensionExternalPub, Data: b})
	}
	if err := gi.Sign(cs, s.priv); err != nil {
		return nil, opError(op, err)
	}
	return gi, nil
}

func encodeMessage(m *wire.MLSMessage) ([]byte, error) {
	m.Version = wire.ProtocolVersionMLS10
	b, err := wire.Marshal(m)
	if err != nil {
		return nil, opError("encode message", err)
	}
	return b, nil
}

// install makes (c, sched, priv) the current epoch, moving the old epoch's
// message keys to the past-epoch store. The caller has verified everything.
func (g *Group) install(c *core, sched *schedule.Epoch, priv *treekem.Private) error {
	st, err := schedule.NewSecretTree(c.cs, sched.EncryptionSecret, c.tree.LeafCount(), g.cfg.secretTreeConfig())
	if err != nil {
		return err
	}
	// The secret tree now holds the epoch's encryption_secret (its root);
	// delete the copy in the key schedule (RFC 9420 §9.2).
	clear(sched.EncryptionSecret)
	sched.EncryptionSecret = nil
	if g.keys != nil && g.keys.secrets != nil {
		old := g.keys
		if g.cfg.MaxPastEpochs > 0 {
			g.past = append(g.past, &pastKeys{ctx: g.c.ctx, tree: g.c.tree, senderData: slices.Clone(old.sched.SenderDataSecret), secrets: old.secrets})
			for len(g.past) > g.cfg.MaxPastEpochs {
				g.past[0].zero()
				g.past = g.past[1:]
			}
		} else {
			old.secrets.Zero()
		}
		for len(g.past) > g.cfg.MaxPastEpochs {
			// A restored state may hold more than a lowered limit.
			g.past[0].zero()
			g.past = g.past[1:]
		}
		old.sched.Zero()
	}
	if g.priv != nil && g.priv != priv {
		g.priv.Zero()
	}
	g.c, g.priv = c, priv
	g.keys = &epochKeys{sched: sched, secrets: st}
	g.resume = append(g.resume, resumption{epoch: c.gc.Epoch, psk: slices.Clone(sched.ResumptionPSK)})
	if len(g.resume) > maxResumption {
		clear(g.resume[0].psk)
		g.resume = g.resume[1:]
	}
	g.version++
	return nil
}

func (p *pastKeys) zero() {
	clear(p.senderData)
	p.secrets.Zero()
}
