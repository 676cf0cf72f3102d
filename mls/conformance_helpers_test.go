package mls

// Helpers of the receiver-side conformance suite (conformance_*_test.go):
// each test there builds a valid message with the library, breaks exactly
// one MUST or MUST NOT of RFC 9420, re-signs what a signature covers, and
// feeds the result to the members and the Delivery Service's follower
// (PublicGroup), which must refuse it with the error class and the "§x.y"
// of the rule and keep their state. docs/mls-conformance.md maps every
// requirement to its test.

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// confState is what a refused message must leave unchanged: the epoch,
// the tree hash, the epoch authenticator (members only) and the number of
// cached proposals.
type confState struct {
	epoch    uint64
	treeHash []byte
	auth     []byte
	cache    int
}

func memberState(g *Group) confState {
	return confState{epoch: g.Epoch(), treeHash: g.TreeHash(), auth: g.EpochAuthenticator(), cache: len(g.c.cache)}
}

func publicState(pg *PublicGroup) confState {
	return confState{epoch: pg.Epoch(), treeHash: pg.TreeHash(), cache: len(pg.c.cache)}
}

func (s confState) equal(o confState) bool {
	return s.epoch == o.epoch && bytes.Equal(s.treeHash, o.treeHash) && bytes.Equal(s.auth, o.auth) && s.cache == o.cache
}

// refusal says how a broken message must be refused.
type refusal struct {
	// sentinel is the error class every receiver must return.
	sentinel error
	// rule is the "§x.y" the error must name; followerRule, if set,
	// replaces it for the follower (which reports some framing rules
	// under another section).
	rule, followerRule string
	// detail is a fragment of the error text that singles out the rule.
	detail string
	// memberOnly marks rules that need the group's secrets (membership
	// tag, confirmation tag, PSKs, PrivateMessage): the follower cannot
	// check them, and is not asked to.
	memberOnly bool
}

// wantRefusal fails t unless err is non-nil, wraps sentinel and names rule
// and detail.
func wantRefusal(t *testing.T, who string, err error, sentinel error, rule, detail string) {
	t.Helper()
	if err == nil || !errors.Is(err, sentinel) || !strings.Contains(err.Error(), rule) || !strings.Contains(err.Error(), detail) {
		t.Errorf("%s: err = %v, want %v naming %q and %q", who, err, sentinel, rule, detail)
		return
	}
	t.Logf("%s: %v", who, err)
}

// mustRefuse feeds msg to the follower (unless r.memberOnly) and to every
// member of w but from: each must refuse it as r says and keep its epoch,
// tree hash, epoch authenticator and proposal cache.
func mustRefuse(t *testing.T, w *world, from string, msg []byte, r refusal) {
	t.Helper()
	if !r.memberOnly {
		before := publicState(w.pg)
		ch, err := w.pg.Process(msg)
		rule := r.rule
		if r.followerRule != "" {
			rule = r.followerRule
		}
		wantRefusal(t, "follower", err, r.sentinel, rule, r.detail)
		if ch != nil {
			t.Errorf("follower: refused message returned a change %+v", ch)
		}
		if after := publicState(w.pg); !before.equal(after) {
			t.Errorf("follower: state changed by a refused message")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(w.members)) {
		if name == from {
			continue
		}
		g := w.members[name]
		before := memberState(g)
		p, err := g.Process(msg)
		wantRefusal(t, name, err, r.sentinel, r.rule, r.detail)
		if p != nil {
			t.Errorf("%s: refused message returned %+v", name, p)
		}
		if after := memberState(g); !before.equal(after) {
			t.Errorf("%s: state changed by a refused message", name)
		}
	}
}

// goesOn has committer make an empty commit that every member and the
// follower process and merge: a refused message left the group usable.
func goesOn(t *testing.T, w *world, committer string) {
	t.Helper()
	w.commit(committer, CommitOptions{})
}

// decodeCommit returns the PublicMessage of an encoded commit message.
func decodePublic(t *testing.T, msg []byte) *wire.PublicMessage {
	t.Helper()
	var m wire.MLSMessage
	if err := wire.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	if m.PublicMessage == nil {
		t.Fatalf("wire format %d, want a PublicMessage", m.WireFormat)
	}
	return m.PublicMessage
}

// validCommit returns the Commit of a commit g creates with opts, which g
// then discards: the base that forged commits change.
func validCommit(t *testing.T, g *Group, opts CommitOptions) *wire.Commit {
	t.Helper()
	pc, err := g.Commit(opts)
	if err != nil {
		t.Fatal(err)
	}
	g.DiscardPendingCommit(pc)
	return decodePublic(t, pc.Message).Content.Commit
}

// validPath returns the UpdatePath of an empty commit by g.
func validPath(t *testing.T, g *Group) *wire.UpdatePath {
	t.Helper()
	return validCommit(t, g, CommitOptions{ForcePath: true}).Path
}

// byValue and byRef build ProposalOrRef entries.
func byValue(p *wire.Proposal) wire.ProposalOrRef {
	return wire.ProposalOrRef{Type: wire.ProposalOrRefProposal, Proposal: p}
}

func byRef(ref []byte) wire.ProposalOrRef {
	return wire.ProposalOrRef{Type: wire.ProposalOrRefReference, Reference: ref}
}

// forgeCommit has g sign and send cm as its Commit without the checks
// Group.Commit runs: what a modified client can send. The membership tag
// and the signature are valid. A Commit whose proposal list the library
// refuses to apply has no computable confirmation tag, so the tag is one
// of the right length; every rule tested with forgeCommit is checked
// before the confirmation tag (RFC 9420 §12.4.2 lists it last), which the
// error naming the rule shows, and the follower does not check the tag.
func forgeCommit(t *testing.T, g *Group, cm *wire.Commit) []byte {
	t.Helper()
	content := &wire.FramedContent{
		GroupID: g.c.gc.GroupID, Epoch: g.c.gc.Epoch, Sender: g.ownSender(),
		AuthenticatedData: []byte{}, ContentType: wire.ContentTypeCommit, Commit: cm,
	}
	msg, _, err := g.protect(content, func(ac *wire.AuthenticatedContent) error {
		ac.Auth.ConfirmationTag = bytes.Repeat([]byte{0xcc}, g.c.cs.HashSize())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// resealPublic re-signs a changed PublicMessage content as g (a member
// sender) with the given confirmation tag and recomputes the membership
// tag: only the change breaks the message.
func resealPublic(t *testing.T, g *Group, fc *wire.FramedContent, confirmationTag []byte) []byte {
	t.Helper()
	ac, err := framing.SignContent(g.c.ctx, wire.WireFormatPublicMessage, fc, g.signer.priv)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = confirmationTag
	pm, err := framing.SealPublic(g.c.ctx, ac, g.keys.sched.MembershipKey)
	if err != nil {
		t.Fatal(err)
	}
	return encodePublic(t, pm)
}

func encodePublic(t *testing.T, pm *wire.PublicMessage) []byte {
	t.Helper()
	b, err := encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resignLeaf re-signs a leaf node of g's group at leaf li with priv.
func resignLeaf(t *testing.T, g *Group, ln *wire.LeafNode, li LeafIndex, priv []byte) {
	t.Helper()
	var gid []byte
	if ln.Source != wire.LeafNodeSourceKeyPackage {
		gid = g.GroupID()
	}
	if err := ln.Sign(g.c.cs, priv, gid, uint32(li)); err != nil {
		t.Fatal(err)
	}
}

// cloneLeaf returns a deep enough copy of ln for a test to change.
func cloneLeaf(ln *wire.LeafNode) wire.LeafNode {
	c := *ln
	c.Capabilities.Versions = slices.Clone(c.Capabilities.Versions)
	c.Capabilities.CipherSuites = slices.Clone(c.Capabilities.CipherSuites)
	c.Capabilities.Extensions = slices.Clone(c.Capabilities.Extensions)
	c.Capabilities.Proposals = slices.Clone(c.Capabilities.Proposals)
	c.Capabilities.Credentials = slices.Clone(c.Capabilities.Credentials)
	c.Extensions = slices.Clone(c.Extensions)
	return c
}

// externalCommit has a new client join w's group by external commit
// (JoinExternal with opts and the joiner's own config joinCfg), changes its
// Commit with f and re-signs it as the joiner: the message a modified
// joiner sends. f may be nil.
func externalCommit(t *testing.T, w *world, from *Group, joinCfg *Config, opts ExternalJoinOptions, cred Credential, f func(cm *wire.Commit)) []byte {
	t.Helper()
	gi, err := from.GroupInfo(GroupInfoOptions{ExternalPub: true, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := GenerateSigner(w.cs)
	if err != nil {
		t.Fatal(err)
	}
	if joinCfg == nil {
		joinCfg = w.cfg
	}
	_, pc, err := JoinExternal(joinCfg, gi, s, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		return pc.Message
	}
	pm := decodePublic(t, pc.Message)
	f(pm.Content.Commit)
	ac, err := framing.SignContent(from.c.ctx, wire.WireFormatPublicMessage, &pm.Content, s.priv)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = pm.Auth.ConfirmationTag
	out, err := framing.SealPublic(from.c.ctx, ac, nil)
	if err != nil {
		t.Fatal(err)
	}
	return encodePublic(t, out)
}

// welcomeForge describes a Welcome a modified committer sends.
type welcomeForge struct {
	// tree changes the new epoch's ratchet tree; the GroupInfo then
	// carries it and its tree hash (unless gi changes that).
	tree func(tr *tree.Tree)
	// gi changes the GroupInfo before it is signed; the confirmation
	// tag is recomputed for the changed GroupContext.
	gi func(gi *wire.GroupInfo)
	// noSign keeps the signature of the GroupInfo as it was before gi
	// ran; noTag keeps its confirmation tag.
	noSign, noTag bool
	// secrets changes the GroupSecrets addressed to the joiner.
	secrets func(gs *wire.GroupSecrets)
	// outOfBand leaves the ratchet_tree extension out.
	outOfBand bool
	// rawTree changes the encoded tree the GroupInfo carries after the
	// tree hash was taken: for trees the tree package refuses to build.
	rawTree func(rt wire.RatchetTree)
	// psks are the PreSharedKeyIDs the GroupSecrets name, resolved in
	// pskStore: the welcome secret and the confirmation tag are derived
	// with their psk_secret.
	psks     []wire.PreSharedKeyID
	pskStore PSKStore
}

// forgeWelcome has committer commit opts (which must add kp and nothing
// else), then builds the Welcome for kp itself, changed as f says and
// consistent otherwise: the GroupInfo is re-signed by the committer and
// its confirmation tag recomputed from the joiner secret for the
// GroupContext sent, so only the change breaks it. The commit is
// discarded. It returns the Welcome and the GroupInfo (MLSMessage).
func forgeWelcome(t *testing.T, committer *Group, kp *KeyPackageBundle, opts CommitOptions, f welcomeForge) (welcome, groupInfo []byte) {
	t.Helper()
	pc, err := committer.Commit(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer committer.DiscardPendingCommit(pc)
	s := committer.c.cs
	next, ep := pc.next, pc.sched
	var psk schedule.CombinedPSK
	if len(f.psks) > 0 {
		if psk, err = resolvePSKs(s, f.psks, f.pskStore, nil); err != nil {
			t.Fatal(err)
		}
	}
	joined, err := schedule.FromJoiner(s, ep.JoinerSecret, psk, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer joined.Zero()
	tr := next.tree.Clone()
	if f.tree != nil {
		f.tree(tr)
	}
	gi := &wire.GroupInfo{GroupContext: next.gc, Extensions: wire.Extensions{}, Signer: uint32(committer.OwnLeaf())}
	gi.GroupContext.Extensions = slices.Clone(gi.GroupContext.Extensions)
	th, err := tr.TreeHash()
	if err != nil {
		t.Fatal(err)
	}
	gi.GroupContext.TreeHash = slices.Clone(th)
	if !f.outOfBand {
		rt, err := tr.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if f.rawTree != nil {
			w := tr.Wire()
			f.rawTree(w)
			if rt, err = wire.Marshal(w); err != nil {
				t.Fatal(err)
			}
		}
		gi.Extensions = append(gi.Extensions, wire.Extension{Type: wire.ExtensionRatchetTree, Data: rt})
	}
	confirm := func() {
		gcb, err := codec.Marshal(&gi.GroupContext)
		if err != nil {
			t.Fatal(err)
		}
		e, err := schedule.FromJoiner(s, ep.JoinerSecret, psk, gcb)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Zero()
		if gi.ConfirmationTag, err = framing.ConfirmationTag(s, e.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash); err != nil {
			t.Fatal(err)
		}
	}
	if f.noSign || f.noTag {
		confirm()
		if err := gi.Sign(s, committer.signer.priv); err != nil {
			t.Fatal(err)
		}
	}
	if f.gi != nil {
		f.gi(gi)
	}
	if !f.noTag {
		confirm()
	}
	if !f.noSign {
		if err := gi.Sign(s, committer.signer.priv); err != nil {
			t.Fatal(err)
		}
	}
	gib, err := codec.Marshal(gi)
	if err != nil {
		t.Fatal(err)
	}
	kn, err := schedule.WelcomeKeyNonce(s, joined.WelcomeSecret)
	if err != nil {
		t.Fatal(err)
	}
	egi, err := s.Seal(kn.Key, kn.Nonce, nil, gib)
	if err != nil {
		t.Fatal(err)
	}
	gs := wire.GroupSecrets{JoinerSecret: slices.Clone(ep.JoinerSecret), PSKs: append([]wire.PreSharedKeyID{}, f.psks...)}
	if f.secrets != nil {
		f.secrets(&gs)
	}
	gsb, err := codec.Marshal(&gs)
	if err != nil {
		t.Fatal(err)
	}
	kemOut, ct, err := s.EncryptWithLabel(kp.kp.InitKey, "Welcome", egi, gsb)
	if err != nil {
		t.Fatal(err)
	}
	wm := &wire.Welcome{CipherSuite: s.ID(), EncryptedGroupInfo: egi, Secrets: []wire.EncryptedGroupSecrets{{NewMember: kp.Ref, EncryptedGroupSecrets: wire.HPKECiphertext{KEMOutput: kemOut, Ciphertext: ct}}}}
	welcome, err = encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatWelcome, Welcome: wm})
	if err != nil {
		t.Fatal(err)
	}
	groupInfo, err = encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: gi})
	if err != nil {
		t.Fatal(err)
	}
	return welcome, groupInfo
}

// mustRefuseJoin checks that the joiner refuses the Welcome with sentinel
// naming rule and detail and, when groupInfo is non-nil, that a follower
// refuses to start from the GroupInfo with sentinel naming followerDetail
// (detail if empty).
func mustRefuseJoin(t *testing.T, w *world, welcome, groupInfo []byte, kp *KeyPackageBundle, opts JoinOptions, sentinel error, rule, detail, followerDetail string) {
	t.Helper()
	g, err := JoinFromWelcome(w.cfg, welcome, kp, opts)
	wantRefusal(t, "joiner", err, sentinel, rule, detail)
	if g != nil {
		t.Errorf("joiner: refused Welcome returned a group")
	}
	if groupInfo != nil {
		pg, err := NewPublicGroup(w.cfg, groupInfo, nil)
		if followerDetail == "" {
			followerDetail = detail
		}
		wantRefusal(t, "follower from GroupInfo", err, sentinel, "", followerDetail)
		if pg != nil {
			t.Errorf("follower: refused GroupInfo returned a PublicGroup")
		}
	}
}

// capsWorld is a group of alice (leaf 0), bob (1) and mallory (2) whose
// leaves all list caps (nil: the defaults) and whose GroupContext carries
// exts, with a follower; everyone's Config has the credential hook hook.
func capsWorld(t *testing.T, caps *Capabilities, exts []Extension, hook func(CredentialInfo) error) (*world, *Group, *Group, *Group) {
	t.Helper()
	cs := MLS128DHKEMX25519AES128GCMSHA256Ed25519
	w := newWorld(t, cs)
	w.cfg.ValidateCredential = hook
	s, _ := GenerateSigner(cs)
	alice, err := CreateGroup(w.cfg, cs, []byte("caps"), s, BasicCredential([]byte("alice")), CreateOptions{Capabilities: caps, Extensions: exts})
	if err != nil {
		t.Fatal(err)
	}
	w.members["alice"] = alice
	gi, _ := alice.GroupInfo(GroupInfoOptions{InlineRatchetTree: true})
	if w.pg, err = NewPublicGroup(w.cfg, gi, nil); err != nil {
		t.Fatal(err)
	}
	var kps []*KeyPackageBundle
	for _, name := range []string{"bob", "mallory"} {
		s, _ := GenerateSigner(cs)
		kp, err := NewKeyPackage(w.cfg, cs, s, BasicCredential([]byte(name)), KeyPackageOptions{Capabilities: caps})
		if err != nil {
			t.Fatal(err)
		}
		kps = append(kps, kp)
	}
	pc := w.commit("alice", CommitOptions{Add: [][]byte{kps[0].KeyPackage, kps[1].KeyPackage}, InlineRatchetTree: true})
	for i, name := range []string{"bob", "mallory"} {
		g, err := JoinFromWelcome(w.cfg, pc.Welcome, kps[i], JoinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.members[name] = g
	}
	w.check()
	return w, alice, w.members["bob"], w.members["mallory"]
}

// kpMessage encodes a KeyPackage as an MLSMessage.
func kpMessage(t *testing.T, kp *wire.KeyPackage) []byte {
	t.Helper()
	b, err := encodeMessage(&wire.MLSMessage{WireFormat: wire.WireFormatKeyPackage, KeyPackage: kp})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refuseProposal has member name send p without its own checks and
// checks that the follower and the other members refuse it (§12.1: a
// proposal that can never be committed is invalid on receipt).
func refuseProposal(t *testing.T, w *world, name string, p *wire.Proposal, r refusal) {
	t.Helper()
	mustRefuse(t, w, name, forgeProposal(t, w.members[name], p), r)
}

// refuseByValue has member name commit ps by value (with a path) without
// its own checks and checks that the follower and the other members
// refuse the Commit.
func refuseByValue(t *testing.T, w *world, name string, r refusal, ps ...*wire.Proposal) {
	t.Helper()
	g := w.members[name]
	cm := &wire.Commit{Path: validPath(t, g)}
	for _, p := range ps {
		cm.Proposals = append(cm.Proposals, byValue(p))
	}
	mustRefuse(t, w, name, forgeCommit(t, g, cm), r)
}

// refuseByReference has member proposer send p (which receivers cache)
// and member committer commit it by reference, without its own checks;
// the follower and the other members refuse the Commit.
func refuseByReference(t *testing.T, w *world, proposer, committer string, p *wire.Proposal, r refusal) {
	t.Helper()
	msg := forgeProposal(t, w.members[proposer], p)
	w.deliver(proposer, msg)
	// The proposer caches its own proposal as receivers do.
	if _, err := w.members[proposer].Process(msg); err != nil {
		t.Fatal(err)
	}
	cg := w.members[committer]
	ref := cg.c.cache[len(cg.c.cache)-1].ref
	cm := &wire.Commit{Proposals: []wire.ProposalOrRef{byRef(ref)}, Path: validPath(t, cg)}
	mustRefuse(t, w, committer, forgeCommit(t, cg, cm), r)
}

func addProposal(kp *wire.KeyPackage) *wire.Proposal {
	return &wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp}}
}
