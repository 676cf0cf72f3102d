package mls

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treekem"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// State persistence.
//
// A member persists its Group with MarshalBinary after every merge (and
// after creating or joining the group) and restores it with LoadGroup. The
// encoding holds the member's secrets (TreeKEM private keys, the epoch's
// secrets, message keys of the current and retained past epochs, resumption
// PSKs): the application must encrypt it at rest. It does not hold the
// signature private key, which the application stores once per device
// and passes to LoadGroup, nor the Config, which is the application's.
//
// Message keys change on every Encrypt and Process. Writing the full state
// on every message would be costly for large groups, so RatchetState
// returns just the secret trees (ratchet positions and kept out-of-order
// keys) of the current and retained epochs, and ApplyRatchetState puts
// them back over a loaded full state. The rule for the application:
//
//   - persist RatchetState after every Encrypt and every Process of a
//     PrivateMessage, and before releasing the message (sending the
//     ciphertext, showing the plaintext);
//   - persist MarshalBinary after every MergePendingCommit and
//     MergeStagedCommit, and after proposals are sent or received (they
//     are cached in the state);
//   - after a crash, LoadGroup the full state, then ApplyRatchetState the
//     last ratchet state if it is for the same epoch (otherwise the full
//     state is newer and complete).
//
// Followed, no key and nonce is ever used twice for encryption and no
// consumed key comes back (RFC 9420 §9.2): a ratchet state that is behind
// the loaded state is refused. Any ratchet state written after the full
// state applies, whatever the messages in between did to the secret trees
// (the first message of a sender in an epoch splits node secrets down to
// its leaf), so the full state need not be written on such messages.
//
// Both encodings start with a version byte (stateVersion) and a kind byte;
// unknown versions, unknown kinds and trailing bytes are rejected. They are
// deterministic: the same state always encodes to the same bytes.

// stateVersion is the version byte that starts every state encoding.
const stateVersion = 1

// The kinds of state encodings, after the version byte.
const (
	stateKindGroup       = 1
	stateKindPublicGroup = 2
	stateKindRatchets    = 3
	// stateKindPublicState is PublicGroup.MarshalState: a PublicGroup
	// without its tree.
	stateKindPublicState = 4
)

// MarshalBinary encodes the member's full state, deterministically, with a
// leading version byte (see LoadGroup for the layout). The result is
// secret. It fails for a group whose external join is not merged yet.
// Pending and staged commits are not part of the state: after a restart
// they are discarded and the commit, if accepted by the Delivery Service,
// is received again.
func (g *Group) MarshalBinary() ([]byte, error) {
	const op = "marshal group state"
	if g.state == statePendingJoin {
		return nil, fmt.Errorf("mls: %s: external join not merged yet: %w", op, ErrStale)
	}
	b := codec.NewBuilder(nil)
	b.AddUint8(stateVersion)
	b.AddUint8(stateKindGroup)
	if err := encodeCore(b, g.c, true, false); err != nil {
		return nil, opError(op, err)
	}
	b.AddUint8(uint8(g.state))
	b.AddOptional(g.reinit != nil, func(b *codec.Builder) {
		b.Encode(g.reinit.params)
		b.AddUint64(g.reinit.OldEpoch)
	})
	// TreeKEM private state (RFC 9420 §4): own leaf, its key, path secrets.
	leafKey, _ := g.priv.PrivateKey(g.priv.Leaf().Node())
	b.AddUint32(uint32(g.priv.Leaf()))
	b.AddOpaque(leafKey)
	b.AddVector(func(b *codec.Builder) {
		for _, x := range g.priv.Nodes() {
			ps, _ := g.priv.PathSecret(x)
			b.AddUint32(uint32(x))
			b.AddOpaque(ps)
		}
	})
	// The epoch's secrets needed going forward (RFC 9420 §8); the
	// encryption_secret is represented by the secret tree.
	e := g.keys.sched
	for _, s := range [][]byte{e.SenderDataSecret, e.ExporterSecret, e.ExternalSecret, e.ConfirmationKey, e.MembershipKey, e.ResumptionPSK, e.EpochAuthenticator, e.InitSecret} {
		b.AddOpaque(s)
	}
	g.keys.secrets.EncodeState(b)
	b.AddVector(func(b *codec.Builder) {
		for _, p := range g.past {
			b.AddOpaque(p.ctx.Encoded())
			b.AddVector(func(b *codec.Builder) {
				for _, k := range p.signatureKeys() {
					b.AddOptional(k != nil, func(b *codec.Builder) { b.AddOpaque(k) })
				}
			})
			b.AddOpaque(p.senderData)
			p.secrets.EncodeState(b)
		}
	})
	b.AddVector(func(b *codec.Builder) {
		for _, r := range g.resume {
			b.AddUint64(r.epoch)
			b.AddOpaque(r.psk)
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, opError(op, err)
	}
	return out, nil
}

// encodeCore writes the public state shared with PublicGroup: the cipher
// suite, the GroupContext, the ratchet tree, the interim transcript hash
// and the proposal cache (with our own Updates' private keys if secrets).
// With withoutTree (PublicGroup.MarshalState) the tree is left out: only
// its number of nodes (padded, 2^(d+1)-1) is written, as a uint32.
func encodeCore(b *codec.Builder, c *core, secrets, withoutTree bool) error {
	b.AddUint16(uint16(c.cs.ID()))
	b.AddOpaque(c.encodedContext())
	if withoutTree {
		b.AddUint32(uint32(c.tree.NodeCount()))
	} else {
		rt, err := c.encodedTree()
		if err != nil {
			return err
		}
		b.AddOpaque(rt)
	}
	b.AddOpaque(c.interim)
	b.AddVector(func(b *codec.Builder) {
		for _, cp := range c.cache {
			b.AddOpaque(cp.ref)
			b.Encode(cp.p)
			b.Encode(&cp.sender)
			if secrets {
				b.AddOptional(cp.leafPriv != nil, func(b *codec.Builder) { b.AddOpaque(cp.leafPriv) })
			}
		}
	})
	return nil
}

// decodeCore reads what encodeCore wrote and checks its consistency: a
// supported suite, a valid GroupContext of that suite, a tree of the right
// shape whose hash is the GroupContext's tree_hash, an interim transcript
// hash and proposal references of the hash size. With stored non-nil, the
// state was written without its tree, which is built from stored's nodes.
func decodeCore(cfg *Config, r *codec.Reader, secrets bool, stored *storedTree) (*core, error) {
	cs := suite.ID(r.Uint16())
	gcb := r.Opaque()
	var rtb []byte
	var width uint32
	if stored == nil {
		rtb = r.Opaque()
	} else {
		width = r.Uint32()
	}
	interim := r.Opaque()
	if err := r.Err(); err != nil {
		return nil, err
	}
	s, err := suite.New(cs)
	if err != nil {
		return nil, err
	}
	var gc wire.GroupContext
	if err := wire.Unmarshal(gcb, &gc); err != nil {
		return nil, fmt.Errorf("group context: %w", err)
	}
	if stored != nil && stored.base != nil && !bytes.Equal(gc.GroupID, stored.groupID) {
		return nil, fmt.Errorf("the state is of group %x, the earlier tree of group %x", gc.GroupID, stored.groupID)
	}
	var t *tree.Tree
	if stored == nil {
		// rtb is a copy of the caller's state: the tree may alias it.
		t, err = tree.DecodeAliasing(s, rtb)
	} else {
		t, err = stored.build(s, width)
	}
	if err != nil {
		return nil, err
	}
	th, err := t.TreeHash()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(th, gc.TreeHash) {
		if stored != nil {
			return nil, fmt.Errorf("the stored nodes' tree hash %x is not the group context's tree_hash %x of epoch %d (nodes missing, damaged or of another epoch)", th, gc.TreeHash, gc.Epoch)
		}
		return nil, errors.New("ratchet tree does not match the group context's tree_hash")
	}
	if len(interim) != s.HashSize() {
		return nil, fmt.Errorf("interim transcript hash of %d bytes, want %d", len(interim), s.HashSize())
	}
	c, err := newCore(cfg, s, gc, t, interim)
	if err != nil {
		return nil, err
	}
	r.VectorFunc(func(r *codec.Reader) {
		cp := &cachedProposal{ref: r.Opaque(), p: new(wire.Proposal)}
		r.Decode(cp.p)
		r.Decode(&cp.sender)
		if secrets && r.Optional() {
			cp.leafPriv = r.Opaque()
		}
		if r.Err() != nil {
			return
		}
		if len(cp.ref) != s.HashSize() {
			r.Failf("proposal reference of %d bytes, want %d", len(cp.ref), s.HashSize())
			return
		}
		for _, prev := range c.cache {
			if bytes.Equal(prev.ref, cp.ref) {
				r.Failf("proposal reference %x cached twice", cp.ref)
				return
			}
		}
		if err := checkCachedShape(cp); err != nil {
			r.Fail(err)
			return
		}
		c.cache = append(c.cache, cp)
	})
	if err := r.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// checkCachedShape checks that a restored cached proposal has the body its
// type needs, so that later uses of the cache can rely on it.
func checkCachedShape(cp *cachedProposal) error {
	p := cp.p
	ok := true
	switch p.Type {
	case wire.ProposalTypeAdd:
		ok = p.Add != nil
	case wire.ProposalTypeUpdate:
		ok = p.Update != nil && cp.sender.Type == wire.SenderTypeMember
	case wire.ProposalTypeRemove:
		ok = p.Remove != nil
	case wire.ProposalTypePSK:
		ok = p.PreSharedKey != nil
	case wire.ProposalTypeReInit:
		ok = p.ReInit != nil
	case wire.ProposalTypeExternalInit:
		ok = false // never cached (§12.1.6)
	case wire.ProposalTypeGroupContextExtensions:
		ok = p.GroupContextExtensions != nil
	}
	if !ok {
		return fmt.Errorf("cached proposal of type %d without its body or from the wrong sender", p.Type)
	}
	if cp.leafPriv != nil && p.Type != wire.ProposalTypeUpdate {
		return fmt.Errorf("cached proposal of type %d with a leaf private key", p.Type)
	}
	return nil
}

// LoadGroup restores a Group from a state written by Group.MarshalBinary,
// for the member whose signature key pair signer holds (it must be the
// key of the member's leaf). cfg plays the role it has in CreateGroup;
// lowered limits (OutOfOrderWindow, MaxPastEpochs) take effect at the next
// ratchet advance or epoch change. The state is checked for consistency —
// version, suite, the tree against the GroupContext's tree hash, the
// private keys against the tree, sizes of every secret — and rejected with
// an error naming the part at fault, never with a panic; its secrets are
// trusted (the application protects the encoding).
//
// The layout, version 1, in the presentation language of RFC 9420 §2.1:
//
//	uint8 version = 1;  uint8 kind = 1;
//	uint16 cipher_suite;
//	opaque group_context<V>;       // GroupContext
//	opaque ratchet_tree<V>;        // as the ratchet_tree extension
//	opaque interim_transcript_hash<V>;
//	struct { opaque ref<V>; Proposal proposal; Sender sender;
//	         optional<opaque update_leaf_priv<V>>; } proposals<V>;
//	uint8 state;                   // 0 active, 1 removed, 2 ended by ReInit
//	optional<struct { ReInit reinit; uint64 old_epoch; }>;
//	uint32 own_leaf; opaque leaf_priv<V>;
//	struct { uint32 node; opaque path_secret<V>; } path_secrets<V>;
//	opaque sender_data_secret<V>, exporter_secret<V>, external_secret<V>,
//	       confirmation_key<V>, membership_key<V>, resumption_psk<V>,
//	       epoch_authenticator<V>, init_secret<V>;
//	SecretTreeState secret_tree;
//	struct { opaque group_context<V>; optional<opaque sig_key<V>> leaves<V>;
//	         opaque sender_data_secret<V>; SecretTreeState secret_tree;
//	} past_epochs<V>;              // oldest first
//	struct { uint64 epoch; opaque resumption_psk<V>; } resumption<V>;
//
// SecretTreeState is described at RatchetState. Lists are in increasing
// order of their index (nodes, leaves, generations, epochs).
func LoadGroup(cfg *Config, data []byte, signer *Signer) (*Group, error) {
	const op = "load group state"
	c, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	g, err := loadGroup(c, data, signer)
	if err != nil {
		return nil, fmt.Errorf("mls: %s: %w: %w", op, err, ErrMalformed)
	}
	return g, nil
}

func loadGroup(c *Config, data []byte, signer *Signer) (*Group, error) {
	r := codec.NewReader(data)
	if err := readStateHeader(r, stateKindGroup); err != nil {
		return nil, err
	}
	co, err := decodeCore(c, r, true, nil)
	if err != nil {
		return nil, err
	}
	s := co.cs
	g := &Group{cfg: c, c: co}
	switch st := groupState(r.Uint8()); st {
	case stateActive, stateRemoved, stateReInit:
		g.state = st
	default:
		if r.Err() == nil {
			return nil, fmt.Errorf("unknown group state %d", st)
		}
	}
	if r.Optional() {
		ri := new(wire.ReInit)
		r.Decode(ri)
		oldEpoch := r.Uint64()
		if r.Err() == nil {
			g.reinit = &ReInitInfo{GroupID: ri.GroupID, CipherSuite: ri.CipherSuite, Extensions: extsFromWire(ri.Extensions), OldGroupID: co.gc.GroupID, OldEpoch: oldEpoch, params: ri}
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if (g.state == stateReInit) != (g.reinit != nil) {
		return nil, errors.New("ReInit parameters do not match the group state")
	}
	// TreeKEM private state.
	own := LeafIndex(r.Uint32())
	leafKey := r.Opaque()
	var nodes []treemath.NodeIndex
	var secrets [][]byte
	r.VectorFunc(func(r *codec.Reader) {
		x := treemath.NodeIndex(r.Uint32())
		ps := r.Opaque()
		if r.Err() != nil {
			return
		}
		if len(nodes) > 0 && x <= nodes[len(nodes)-1] {
			r.Failf("path secret of node %d not after node %d", x, nodes[len(nodes)-1])
			return
		}
		nodes, secrets = append(nodes, x), append(secrets, ps)
	})
	if err := r.Err(); err != nil {
		return nil, err
	}
	if !co.tree.LeafCount().HasLeaf(own) {
		return nil, fmt.Errorf("own leaf %d outside the tree", own)
	}
	priv, err := treekem.NewPrivate(s, own, leafKey)
	clear(leafKey)
	if err != nil {
		return nil, err
	}
	for i, x := range nodes {
		err := priv.SetPathSecret(x, secrets[i])
		clear(secrets[i])
		if err != nil {
			priv.Zero()
			return nil, err
		}
	}
	g.priv = priv
	fail := func(err error) (*Group, error) {
		g.zero()
		return nil, err
	}
	if err := priv.Check(co.tree); err != nil {
		return fail(err)
	}
	ownLeaf := co.tree.Leaf(own)
	if signer == nil || signer.suite.ID() != s.ID() || !bytes.Equal(signer.pub, ownLeaf.SignatureKey) {
		return fail(fmt.Errorf("signer does not hold the signature key of leaf %d", own))
	}
	g.signer = signer
	// Epoch secrets.
	var e schedule.Epoch
	for _, dst := range []*[]byte{
		(*[]byte)(&e.SenderDataSecret), (*[]byte)(&e.ExporterSecret), (*[]byte)(&e.ExternalSecret),
		(*[]byte)(&e.ConfirmationKey), (*[]byte)(&e.MembershipKey), (*[]byte)(&e.ResumptionPSK),
		(*[]byte)(&e.EpochAuthenticator), (*[]byte)(&e.InitSecret),
	} {
		*dst = r.Opaque()
	}
	if err := r.Err(); err != nil {
		return fail(err)
	}
	sched, err := schedule.RestoreEpoch(s, e)
	if err != nil {
		e.Zero()
		return fail(err)
	}
	g.keys = &epochKeys{sched: sched}
	if g.keys.secrets, err = decodeSecretTree(c, s, r, co.tree.LeafCount()); err != nil {
		return fail(err)
	}
	// Past epochs.
	r.VectorFunc(func(r *codec.Reader) {
		if p := decodePast(c, s, r, co); p != nil {
			if n := len(g.past); n > 0 && p.ctx.Epoch() <= g.past[n-1].ctx.Epoch() {
				p.zero()
				r.Failf("past epoch %d not after epoch %d", p.ctx.Epoch(), g.past[n-1].ctx.Epoch())
				return
			}
			g.past = append(g.past, p)
		}
	})
	// Resumption PSKs.
	r.VectorFunc(func(r *codec.Reader) {
		ep, psk := r.Uint64(), r.Opaque()
		switch {
		case r.Err() != nil:
		case len(psk) != s.HashSize():
			r.Failf("resumption PSK of epoch %d is %d bytes, want %d", ep, len(psk), s.HashSize())
		case ep > co.gc.Epoch || (len(g.resume) > 0 && ep <= g.resume[len(g.resume)-1].epoch):
			r.Failf("resumption PSK of epoch %d out of order", ep)
		default:
			g.resume = append(g.resume, resumption{epoch: ep, psk: psk})
		}
	})
	if err := r.Finish(); err != nil {
		return fail(err)
	}
	return g, nil
}

// readStateHeader checks the version and kind bytes.
func readStateHeader(r *codec.Reader, kind uint8) error {
	v, k := r.Uint8(), r.Uint8()
	if err := r.Err(); err != nil {
		return err
	}
	if v != stateVersion {
		return fmt.Errorf("unknown state version %d (want %d)", v, stateVersion)
	}
	if k != kind {
		return fmt.Errorf("state of kind %d, want %d", k, kind)
	}
	return nil
}

// decodeSecretTree reads a secret tree of an epoch with n leaves.
func decodeSecretTree(c *Config, s *suite.Suite, r *codec.Reader, n treemath.LeafCount) (*schedule.SecretTree, error) {
	st := schedule.DecodeSecretTree(s, c.secretTreeConfig(), r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	if st.LeafCount() != n {
		st.Zero()
		return nil, fmt.Errorf("secret tree of %d leaves for a ratchet tree of %d", st.LeafCount(), n)
	}
	return st, nil
}

// decodePast reads one past epoch; errors are recorded in r.
func decodePast(c *Config, s *suite.Suite, r *codec.Reader, co *core) *pastKeys {
	gcb := r.Opaque()
	var sigKeys [][]byte
	r.VectorFunc(func(r *codec.Reader) {
		var k []byte
		if r.Optional() {
			k = r.Opaque()
		}
		sigKeys = append(sigKeys, k)
	})
	sd := r.Opaque()
	if r.Err() != nil {
		return nil
	}
	var gc wire.GroupContext
	if err := wire.Unmarshal(gcb, &gc); err != nil {
		r.Fail(fmt.Errorf("past group context: %w", err))
		return nil
	}
	if gc.CipherSuite != s.ID() || gc.Version != wire.ProtocolVersionMLS10 || !bytes.Equal(gc.GroupID, co.gc.GroupID) || gc.Epoch >= co.gc.Epoch {
		r.Failf("past group context of epoch %d does not belong to this group before epoch %d", gc.Epoch, co.gc.Epoch)
		return nil
	}
	if len(sd) != s.HashSize() {
		r.Failf("past epoch %d sender data secret of %d bytes", gc.Epoch, len(sd))
		return nil
	}
	ctx, err := framing.NewContext(s, &gc)
	if err != nil {
		r.Fail(err)
		return nil
	}
	st := schedule.DecodeSecretTree(s, c.secretTreeConfig(), r)
	if r.Err() != nil {
		return nil
	}
	if uint64(len(sigKeys)) > uint64(st.LeafCount()) {
		st.Zero()
		r.Failf("past epoch %d lists %d leaves for a secret tree of %d", gc.Epoch, len(sigKeys), st.LeafCount())
		return nil
	}
	return &pastKeys{ctx: ctx, sigKeys: sigKeys, senderData: sd, secrets: st}
}

// zero wipes the secrets of a group that failed to load.
func (g *Group) zero() {
	if g.priv != nil {
		g.priv.Zero()
	}
	if g.keys != nil {
		g.keys.sched.Zero()
		g.keys.secrets.Zero()
	}
	for _, p := range g.past {
		p.zero()
	}
	for _, r := range g.resume {
		clear(r.psk)
	}
	for _, cp := range g.c.cache {
		clear(cp.leafPriv)
	}
}

// RatchetState encodes the part of the state that every message changes:
// the secret trees (RFC 9420 §9) of the current and the retained past
// epochs, with their ratchet positions and kept out-of-order keys. It is
// secret, deterministic, and small next to MarshalBinary for large groups.
// Persist it after every Encrypt and Process, before the message is
// released; see ApplyRatchetState.
//
// The layout, version 1:
//
//	uint8 version = 1;  uint8 kind = 3;
//	opaque group_id<V>;
//	uint64 epoch;                   // the group's current epoch
//	struct { uint64 epoch; SecretTreeState tree; } trees<V>;  // increasing epoch
//
//	struct {
//	    uint32 leaf_count;
//	    struct { uint32 node; opaque secret<V>; } nodes<V>;   // unused tree secrets
//	    struct { uint32 leaf; Ratchet handshake; Ratchet application; } leaves<V>;
//	} SecretTreeState;
//	struct {
//	    optional<opaque secret<V>>;     // ratchet secret of generation next
//	    uint64 next;
//	    struct { uint32 generation; opaque key<V>; opaque nonce<V>; } kept<V>;
//	} Ratchet;
func (g *Group) RatchetState() ([]byte, error) {
	const op = "marshal ratchet state"
	if g.state == statePendingJoin {
		return nil, fmt.Errorf("mls: %s: external join not merged yet: %w", op, ErrStale)
	}
	b := codec.NewBuilder(nil)
	b.AddUint8(stateVersion)
	b.AddUint8(stateKindRatchets)
	b.AddOpaque(g.c.gc.GroupID)
	b.AddUint64(g.c.gc.Epoch)
	b.AddVector(func(b *codec.Builder) {
		for _, p := range g.past {
			b.AddUint64(p.ctx.Epoch())
			p.secrets.EncodeState(b)
		}
		b.AddUint64(g.c.gc.Epoch)
		g.keys.secrets.EncodeState(b)
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, opError(op, err)
	}
	return out, nil
}

// ApplyRatchetState replaces the group's secret trees with those of a
// ratchet state from RatchetState, after a restart: load the last full
// state with LoadGroup, then apply the last ratchet state. A ratchet state
// written after the full state is accepted however far its trees moved on
// since, including node secrets split by the first message of a sender in
// the epoch. It fails, changing nothing, with ErrStale if the ratchet
// state is for another epoch (the full state is then the newer one and
// complete as it is) or is behind the group's own secret trees in any way
// that could bring back a consumed key: a node secret, ratchet generation
// or kept key the group has consumed. It fails with ErrWrongGroup for
// another group, and with ErrMalformed if the ratchet state does not
// decode or its trees are not states of the group's trees (another leaf
// count, secrets the group can still derive missing). Epochs the group no
// longer retains are ignored; retained epochs missing from it keep their
// trees.
func (g *Group) ApplyRatchetState(data []byte) error {
	const op = "apply ratchet state"
	r := codec.NewReader(data)
	if err := readStateHeader(r, stateKindRatchets); err != nil {
		return causeError(op, "", ErrMalformed, err, "header")
	}
	gid, epoch := r.Opaque(), r.Uint64()
	if err := r.Err(); err != nil {
		return causeError(op, "", ErrMalformed, err, "decode")
	}
	if !bytes.Equal(gid, g.c.gc.GroupID) {
		return ruleError(op, "", ErrWrongGroup, "group_id %x", gid)
	}
	if epoch != g.c.gc.Epoch {
		return fmt.Errorf("mls: %s: ratchet state of epoch %d, group at epoch %d: %w", op, epoch, g.c.gc.Epoch, ErrStale)
	}
	type repl struct {
		epoch uint64
		st    *schedule.SecretTree
	}
	var repls []repl
	defer func() {
		for _, x := range repls {
			x.st.Zero()
		}
	}()
	r.VectorFunc(func(r *codec.Reader) {
		ep := r.Uint64()
		st := schedule.DecodeSecretTree(g.c.cs, g.cfg.secretTreeConfig(), r)
		if r.Err() != nil {
			return
		}
		if n := len(repls); n > 0 && ep <= repls[n-1].epoch {
			st.Zero()
			r.Failf("epoch %d not after epoch %d", ep, repls[n-1].epoch)
			return
		}
		repls = append(repls, repl{ep, st})
	})
	if err := r.Finish(); err != nil {
		return causeError(op, "", ErrMalformed, err, "decode")
	}
	// Check all, then swap all.
	targets := make([]**schedule.SecretTree, len(repls))
	for i, x := range repls {
		var cur **schedule.SecretTree
		if x.epoch == g.c.gc.Epoch {
			cur = &g.keys.secrets
		}
		for _, p := range g.past {
			if p.ctx.Epoch() == x.epoch {
				cur = &p.secrets
			}
		}
		if cur == nil {
			continue
		}
		if err := x.st.CheckNotBehind(*cur); err != nil {
			if errors.Is(err, schedule.ErrBehind) {
				return fmt.Errorf("mls: %s: epoch %d: %w: %w", op, x.epoch, err, ErrStale)
			}
			return fmt.Errorf("mls: %s: epoch %d: %w: %w", op, x.epoch, err, ErrMalformed)
		}
		targets[i] = cur
	}
	for i, x := range repls {
		if targets[i] == nil {
			continue
		}
		(*targets[i]).Zero()
		*targets[i] = x.st
		repls[i].st = nil
	}
	return nil
}

// MarshalBinary encodes the follower's state (no secrets), deterministically,
// for LoadPublicGroup:
//
//	uint8 version = 1;  uint8 kind = 2;
//	uint16 cipher_suite;
//	opaque group_context<V>;
//	opaque ratchet_tree<V>;
//	opaque interim_transcript_hash<V>;
//	struct { opaque ref<V>; Proposal proposal; Sender sender; } proposals<V>;
//
// The Delivery Service stores it per group after every Merge and every
// cached proposal.
func (pg *PublicGroup) MarshalBinary() ([]byte, error) {
	const op = "marshal public group state"
	b := codec.NewBuilder(nil)
	b.AddUint8(stateVersion)
	b.AddUint8(stateKindPublicGroup)
	if err := encodeCore(b, pg.c, false, false); err != nil {
		return nil, opError(op, err)
	}
	out, err := b.Bytes()
	if err != nil {
		return nil, opError(op, err)
	}
	return out, nil
}

// LoadPublicGroup restores a follower from PublicGroup.MarshalBinary. The
// tree is checked against the GroupContext's tree hash; its signatures are
// not validated again (they were when the follower first saw them).
func LoadPublicGroup(cfg *Config, data []byte) (*PublicGroup, error) {
	const op = "load public group state"
	c, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	r := codec.NewReader(data)
	if err := readStateHeader(r, stateKindPublicGroup); err != nil {
		return nil, causeError(op, "", ErrMalformed, err, "header")
	}
	co, err := decodeCore(c, r, false, nil)
	if err == nil {
		err = r.Finish()
	}
	if err != nil {
		return nil, causeError(op, "", ErrMalformed, err, "decode")
	}
	return &PublicGroup{c: co}, nil
}
