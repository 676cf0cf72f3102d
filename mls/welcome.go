package mls

import (
	"bytes"
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

// JoinOptions are the inputs of JoinFromWelcome besides the Welcome.
type JoinOptions struct {
	// RatchetTree is the encoded ratchet tree (RFC 9420 §12.4.3.3) when
	// the Welcome's GroupInfo does not carry the ratchet_tree extension.
	// Its integrity is checked against the signed tree hash.
	RatchetTree []byte
	// FetchRatchetTree, when the Welcome's GroupInfo carries no
	// ratchet_tree extension and RatchetTree is empty, is called with the
	// epoch the Welcome joins, for the tree out of band (a Delivery
	// Service that stores trees apart from the group serves it with
	// EncodeRatchetTree). It is called once the GroupInfo is decrypted
	// (and so authenticated by the welcome key) but before its signature
	// is verified, which needs the signer's key from the tree; the tree is
	// checked like any tree (tree hash against the GroupInfo's group
	// context, full validation), and the signature with it. The group
	// keeps the returned slice (its nodes alias it): it must not be
	// modified afterwards. An error it returns fails the join and is
	// wrapped in JoinFromWelcome's error.
	FetchRatchetTree func(epoch uint64) ([]byte, error)
	// PSKs resolves the PSKs the Welcome names (external PSKs, and for a
	// ReInit or branch the old group's resumption PSK); nil means
	// Config.PSKs.
	PSKs PSKStore
	// OldGroup is the group that a Welcome with a resumption PSK of usage
	// reinit or branch resumes (RFC 9420 §11.2, §11.3); nil means the
	// group of the PSK's group id among the Groups of a *PSKs store (PSKs,
	// else Config.PSKs). The joiner checks the new group against it, so
	// such a Welcome is refused when the old group is not known, whatever
	// store holds the PSK itself. It is only read.
	OldGroup *Group
	// SameMember, if non-nil, decides whether a leaf of the old group and
	// one of the new group are the same member, for those checks ("according
	// to the application", RFC 9420 §12.4.3.1, §11.3). nil matches leaves
	// with the same signature key, or with credentials of the same
	// identity (basic credentials by identity, others by their whole
	// encoding).
	SameMember func(old, new Member) bool
	// CheckResumption, if non-nil, is called for a reinit or branch
	// Welcome after the library's checks passed; an error refuses the
	// Welcome. An application uses it to check more than the RFC's
	// membership rules, such as that it wants to join this subgroup.
	CheckResumption func(*ResumptionJoin) error
}

// JoinFromWelcome joins a group from a Welcome addressed to bundle's
// KeyPackage (RFC 9420 §12.4.3.1), with the full validation of that
// section: the GroupInfo's version, suite and signature; the ratchet tree
// (Validate: shape, unmerged leaves, leaf rules with lifetimes against
// cfg.Now and cfg.MaxLeafLifetime, key uniqueness, tree hash, parent
// hashes, every leaf signature); the credential hook for every leaf; our
// own leaf; the path secret against the tree; the confirmation tag; and
// for a ReInit or branch resumption PSK the rules of §11.2 and §11.3
// against the old group (JoinOptions.OldGroup): the ReInit's parameters
// and the same members, or a branch's suite and members that all were
// members of the old group. The Group keeps no reference to welcome or
// opts.RatchetTree: its tree lives in its own copy of the decrypted
// GroupInfo (or of the out-of-band tree).
//
// One check of §12.4.3.1 is the caller's: that the new group's id
// (Group.GroupID) is unique among the groups this client participates
// in. The library knows no other group than the one it returns, so the
// application must refuse (and drop) a joined group whose id is that of
// one of its groups, except the group a ReInit ended; the same holds for
// JoinExternal and for groups it creates.
func JoinFromWelcome(cfg *Config, welcome []byte, bundle *KeyPackageBundle, opts JoinOptions) (*Group, error) {
	const op = "join from welcome"
	c, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	if bundle == nil || bundle.kp == nil {
		return nil, fmt.Errorf("mls: %s: no KeyPackage bundle", op)
	}
	// The Welcome's slices alias welcome: they are only read during the
	// call (OpenWelcome copies the encrypted GroupInfo before decrypting
	// it), so nothing the Group keeps aliases the caller's buffer.
	var m wire.MLSMessage
	if err := wire.UnmarshalAliasing(welcome, &m); err != nil {
		return nil, causeError(op, "", ErrMalformed, err, "decode")
	}
	if m.Version != wire.ProtocolVersionMLS10 || m.WireFormat != wire.WireFormatWelcome {
		return nil, ruleError(op, "§6", ErrMalformed, "not an mls10 Welcome (version %d, wire format %d)", m.Version, m.WireFormat)
	}
	s := bundle.suite
	w := m.Welcome
	if w.CipherSuite != s.ID() {
		return nil, ruleError(op, "§12.4.3.1", ErrInvalidWelcome, "cipher suite %#04x does not match the KeyPackage's %#04x", uint16(w.CipherSuite), uint16(s.ID()))
	}
	store := opts.PSKs
	if store == nil {
		store = c.PSKs
	}
	var resumptionUsage wire.ResumptionPSKUsage
	var resumptionID *wire.PreSharedKeyID
	psks := func(ids []wire.PreSharedKeyID) (schedule.CombinedPSK, error) {
		for i := range ids {
			id := &ids[i]
			if id.Type == wire.PSKTypeResumption && id.Usage != wire.ResumptionPSKUsageApplication {
				if resumptionID != nil {
					return nil, fmt.Errorf("§12.4.3.1: more than one resumption PSK of usage reinit or branch")
				}
				resumptionUsage, resumptionID = id.Usage, id
			}
		}
		return resolvePSKs(s, ids, store, nil)
	}
	var t *tree.Tree
	signer := func(gi *wire.GroupInfo) ([]byte, error) {
		var err error
		t, err = joinTree(s, gi, opts.RatchetTree, opts.FetchRatchetTree)
		if err != nil {
			return nil, err
		}
		ln := t.Leaf(LeafIndex(gi.Signer))
		if ln == nil {
			return nil, fmt.Errorf("§12.4.3: GroupInfo signer %d is a blank leaf", gi.Signer)
		}
		return ln.SignatureKey, nil
	}
	j, err := framing.OpenWelcome(s, w, bundle.kp, bundle.InitPrivateKey, psks, signer)
	if err != nil {
		return nil, causeError(op, "§12.4.3.1", ErrInvalidWelcome, err, "open")
	}
	defer clear(j.GroupSecrets.JoinerSecret)
	defer clear(j.GroupSecrets.PathSecret)
	ok := false
	defer func() {
		if !ok {
			j.Epoch.Zero()
		}
	}()
	gi := j.GroupInfo
	gc := gi.GroupContext
	if resumptionID != nil && gc.Epoch != 1 {
		return nil, ruleError(op, "§12.4.3.1", ErrInvalidWelcome, "resumption PSK of usage %d in a Welcome for epoch %d, want 1", resumptionUsage, gc.Epoch)
	}
	if err := validateJoinTree(c, t, &gc, op); err != nil {
		return nil, err
	}
	// After the tree's validation: the member checks trust its leaves.
	if resumptionID != nil {
		if err := checkResumptionJoin(&opts, store, resumptionUsage, resumptionID, &gc, t); err != nil {
			return nil, causeError(op, "§12.4.3.1", ErrInvalidWelcome, err, "resumption of group %x", resumptionID.GroupID)
		}
	}
	own, err := findOwnLeaf(t, &bundle.kp.LeafNode)
	if err != nil {
		return nil, causeError(op, "§12.4.3.1", ErrInvalidWelcome, err, "own leaf")
	}
	priv, err := treekem.NewPrivate(s, own, bundle.EncryptionPrivateKey)
	if err != nil {
		return nil, opError(op, err)
	}
	if ps := j.GroupSecrets.PathSecret; ps != nil {
		x := treemath.CommonAncestor(own.Node(), LeafIndex(gi.Signer).Node())
		if err := priv.ImplantPathSecret(t, x, treekem.PathSecret(ps)); err != nil {
			priv.Zero()
			return nil, causeError(op, "§12.4.3.1", ErrInvalidWelcome, err, "path secret")
		}
	}
	if err := priv.Check(t); err != nil {
		priv.Zero()
		return nil, causeError(op, "§12.4.3.1", ErrInvalidWelcome, err, "private state")
	}
	co, err := newCore(c, s, gc, t, j.InterimTranscriptHash)
	if err != nil {
		priv.Zero()
		return nil, causeError(op, "§12.4.3.1", ErrInvalidWelcome, err, "group context")
	}
	g := &Group{cfg: c, signer: bundle.Signer}
	if err := g.install(co, j.Epoch, priv); err != nil {
		priv.Zero()
		return nil, opError(op, err)
	}
	ok = true
	return g, nil
}

// joinTree returns the tree of a GroupInfo: from its ratchet_tree extension,
// or the out-of-band encoding, or if that is empty and fetch is not nil
// the encoding fetch returns for the GroupInfo's epoch. The nodes alias one
// buffer that belongs to the tree: the extension's data, which aliases the
// GroupInfo's own buffer (framing.OpenWelcome's decrypted copy,
// openGroupInfo's copy), a copy of outOfBand, which the caller keeps, or
// fetch's result, which the caller hands over.
func joinTree(s *suite.Suite, gi *wire.GroupInfo, outOfBand []byte, fetch func(epoch uint64) ([]byte, error)) (*tree.Tree, error) {
	if err := checkUniqueExtensions(gi.Extensions); err != nil {
		return nil, err
	}
	if e := gi.Extensions.Find(wire.ExtensionRatchetTree); e != nil {
		return tree.DecodeAliasing(s, e.Data)
	}
	if len(outOfBand) == 0 && fetch != nil {
		epoch := gi.GroupContext.Epoch
		rt, err := fetch(epoch)
		if err != nil {
			return nil, fmt.Errorf("§12.4.3.3: fetch the ratchet tree of epoch %d: %w", epoch, err)
		}
		// The fetched encoding is handed over: the tree aliases it.
		return tree.DecodeAliasing(s, rt)
	}
	if outOfBand == nil {
		return nil, fmt.Errorf("§12.4.3.3: no ratchet tree in the GroupInfo and none given")
	}
	return tree.DecodeAliasing(s, bytes.Clone(outOfBand))
}

// validateJoinTree validates a joiner's tree (RFC 9420 §12.4.3.1) and runs
// the credential hook for every leaf and external sender.
func validateJoinTree(c *Config, t *tree.Tree, gc *wire.GroupContext, op string) error {
	req, senders, err := parseGroupExtensions(gc.Extensions)
	if err != nil {
		return causeError(op, "§12.4.3.1", ErrInvalidWelcome, err, "group context extensions")
	}
	vo := tree.ValidateOptions{GroupID: gc.GroupID, TreeHash: gc.TreeHash, Now: c.Now, MaxLifetime: c.maxTreeLifetime(), Workers: c.Workers}
	if req != nil {
		vo.RequiredExtensions, vo.RequiredProposals, vo.RequiredCredentials = req.Extensions, req.Proposals, req.Credentials
	}
	if err := t.Validate(vo); err != nil {
		return causeError(op, "§12.4.3.1", ErrInvalidWelcome, err, "ratchet tree")
	}
	for i, ln := range t.Members() {
		if err := supportsGroup(ln, gc.Extensions, req); err != nil {
			return causeError(op, "§12.4.3.1", ErrInvalidWelcome, err, "leaf %d", i)
		}
		if err := c.checkCredential(CredentialInfo{Credential: credentialFromWire(&ln.Credential), SignatureKey: ln.SignatureKey, Leaf: i, Reason: ReasonWelcomeTree}); err != nil {
			return opError(op, err)
		}
	}
	for _, es := range senders {
		if err := c.checkCredential(CredentialInfo{Credential: credentialFromWire(&es.Credential), SignatureKey: es.SignatureKey, Reason: ReasonExternalSender}); err != nil {
			return opError(op, err)
		}
	}
	return nil
}

// findOwnLeaf finds the leaf equal to the KeyPackage's leaf node.
func findOwnLeaf(t *tree.Tree, kpLeaf *wire.LeafNode) (LeafIndex, error) {
	want, err := codec.Marshal(kpLeaf)
	if err != nil {
		return 0, err
	}
	for i, ln := range t.Members() {
		if !bytes.Equal(ln.EncryptionKey, kpLeaf.EncryptionKey) {
			continue
		}
		got, err := codec.Marshal(ln)
		if err == nil && bytes.Equal(got, want) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("the KeyPackage's leaf node is not in the tree")
}
