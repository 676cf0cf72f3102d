package interop_test

import (
	"bytes"
	"crypto/rand"
	"slices"

	pb "github.com/parley-chat/parley/interop/proto"
	"github.com/parley-chat/parley/mls"
)

// scenario is one script of the interop harness: the steps of the
// harness's configurations (welcome_join, application, commit,
// external_join, external_proposals, reinit, branch), written for this
// test.
type scenario struct {
	name string
	run  func(h *harness)
}

var scenarios = []scenario{
	// welcome_join
	{"welcome/no_path_secret", func(h *harness) {
		h.createGroup("alice")
		p := h.addProposal("alice", h.keyPackage("bob"))
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p}, joiners: []string{"bob"}})
	}},
	{"welcome/with_path_secret", func(h *harness) {
		h.createGroup("alice")
		p := h.addProposal("alice", h.keyPackage("bob"))
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p}, joiners: []string{"bob"}, forcePath: true})
	}},
	{"welcome/with_psk", func(h *harness) {
		h.createGroup("alice")
		p := h.addProposal("alice", h.keyPackage("bob"))
		id := h.installPSK("alice", "bob")
		q := h.externalPSKProposal("alice", id)
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p, q}, joiners: []string{"bob"}})
	}},
	{"welcome/external_tree", func(h *harness) {
		h.createGroup("alice")
		p := h.addProposal("alice", h.keyPackage("bob"))
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p}, joiners: []string{"bob"}, externalTree: true})
	}},

	// application
	{"application/in_order_both_ways", func(h *harness) {
		h.groupOf("alice", "bob")
		var cts [][]byte
		for _, m := range []string{"hello 1", "hello 2", "hello 3"} {
			cts = append(cts, h.protect("alice", m))
		}
		h.unprotect("bob", cts[0], "hello 1")
		h.unprotect("bob", cts[1], "hello 2")
		h.unprotect("bob", cts[2], "hello 3")
		h.unprotect("alice", h.protect("bob", "reply"), "reply")
		h.check("messages")
	}},
	{"application/out_of_order_within_epoch", func(h *harness) {
		h.groupOf("alice", "bob")
		c1, c2, c3 := h.protect("alice", "m1"), h.protect("alice", "m2"), h.protect("alice", "m3")
		h.unprotect("bob", c3, "m3")
		h.unprotect("bob", c2, "m2")
		h.unprotect("bob", c1, "m1")
		b1, b2 := h.protect("bob", "b1"), h.protect("bob", "b2")
		h.unprotect("alice", b2, "b2")
		h.unprotect("alice", b1, "b1")
	}},
	{"application/out_of_order_across_epochs", func(h *harness) {
		h.groupOf("alice", "bob")
		c1, c2 := h.protect("alice", "m1"), h.protect("alice", "m2")
		b1 := h.protect("bob", "b1")
		h.fullCommit("alice", commitSpec{members: []string{"bob"}})
		c3, c4 := h.protect("alice", "m3"), h.protect("alice", "m4")
		h.unprotect("bob", c4, "m4")
		h.unprotect("bob", c3, "m3")
		h.unprotect("bob", c2, "m2")
		h.unprotect("bob", c1, "m1")
		h.unprotect("alice", b1, "b1")
	}},

	// commit: each proposal type by reference and by value
	{"commit/empty", func(h *harness) {
		h.createGroup("alice")
		h.externalJoin("alice", "bob", nil, false, false)
		h.fullCommit("alice", commitSpec{members: []string{"bob"}})
		h.fullCommit("bob", commitSpec{members: []string{"alice"}, forcePath: true})
	}},
	{"commit/add", func(h *harness) {
		h.createGroup("alice")
		h.externalJoin("alice", "bob", nil, false, false)
		k1, k2, k3 := h.keyPackage("charlie1"), h.keyPackage("charlie2"), h.keyPackage("charlie3")
		p1, p2 := h.addProposal("alice", k1), h.addProposal("bob", k2)
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p1, p2}, byValue: []*pb.ProposalDescription{add(k3)},
			members: []string{"bob"}, joiners: []string{"charlie1", "charlie2", "charlie3"}, forcePath: true})
		k4, k5, k6 := h.keyPackage("charlie4"), h.keyPackage("charlie5"), h.keyPackage("charlie6")
		p4, p5 := h.addProposal("alice", k4), h.addProposal("bob", k5)
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p4, p5}, byValue: []*pb.ProposalDescription{add(k6)},
			members: []string{"bob", "charlie1", "charlie2", "charlie3"}, joiners: []string{"charlie4", "charlie5", "charlie6"}})
	}},
	{"commit/remove", func(h *harness) {
		h.createGroup("alice")
		h.externalJoin("alice", "bob", nil, false, false)
		var refs [][]byte
		for _, c := range []string{"charlie1", "charlie2", "charlie3"} {
			refs = append(refs, h.addProposal("alice", h.keyPackage(c)))
		}
		h.fullCommit("alice", commitSpec{byRef: refs, members: []string{"bob"}, joiners: []string{"charlie1", "charlie2", "charlie3"}})
		r1, r2 := h.removeProposal("alice", "charlie1"), h.removeProposal("bob", "charlie2")
		h.fullCommit("alice", commitSpec{byRef: [][]byte{r1, r2}, byValue: []*pb.ProposalDescription{remove("charlie3")}, members: []string{"bob"}})
	}},
	{"commit/update", func(h *harness) {
		h.createGroup("alice")
		h.externalJoin("alice", "bob", nil, false, false)
		u := h.updateProposal("bob")
		h.fullCommit("alice", commitSpec{byRef: [][]byte{u}, members: []string{"bob"}})
		u = h.updateProposal("alice")
		h.fullCommit("bob", commitSpec{byRef: [][]byte{u}, members: []string{"alice"}})
	}},
	{"commit/group_context_extensions", func(h *harness) {
		h.createGroup("alice")
		h.externalJoin("alice", "bob", nil, false, false)
		p := h.gceProposal("alice", someExtensions())
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p}, members: []string{"bob"}})
		p = h.gceProposal("bob", nil)
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p}, members: []string{"bob"}})
		h.fullCommit("alice", commitSpec{byValue: []*pb.ProposalDescription{gce(someExtensions()[:1])}, members: []string{"bob"}})
	}},
	{"commit/external_psk", func(h *harness) {
		h.createGroup("alice")
		h.externalJoin("alice", "bob", nil, false, false)
		a, b, c := h.installPSK("alice", "bob"), h.installPSK("alice", "bob"), h.installPSK("alice", "bob")
		for _, path := range []bool{true, false} {
			p, q := h.externalPSKProposal("alice", a), h.externalPSKProposal("bob", b)
			h.fullCommit("alice", commitSpec{byRef: [][]byte{p, q}, byValue: []*pb.ProposalDescription{extPSK(c)}, members: []string{"bob"}, forcePath: path})
		}
	}},
	{"commit/resumption_psk", func(h *harness) {
		h.createGroup("alice")
		h.externalJoin("alice", "bob", nil, false, false)
		h.fullCommit("alice", commitSpec{members: []string{"bob"}})
		h.fullCommit("alice", commitSpec{members: []string{"bob"}})
		p, q := h.resumptionPSKProposal("alice", 1), h.resumptionPSKProposal("bob", 2)
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p, q}, byValue: []*pb.ProposalDescription{resPSK(3)}, members: []string{"bob"}, forcePath: true})
		p, q = h.resumptionPSKProposal("alice", 2), h.resumptionPSKProposal("bob", 3)
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p, q}, byValue: []*pb.ProposalDescription{resPSK(4)}, members: []string{"bob"}})
	}},
	{"commit/all_together_alice_proposes", func(h *harness) { allTogether(h, "alice") }},
	{"commit/all_together_bob_proposes", func(h *harness) { allTogether(h, "bob") }},

	// external_join
	{"external_join/normal", func(h *harness) {
		h.createGroup("alice")
		h.externalJoin("alice", "bob", nil, false, false)
	}},
	{"external_join/with_psk", func(h *harness) {
		h.createGroup("alice")
		id := h.installPSK("alice")
		h.externalJoin("alice", "bob", nil, false, false, id)
	}},
	{"external_join/resync_removing_prior", func(h *harness) {
		h.createGroup("alice")
		h.externalJoin("alice", "bob", nil, false, false)
		h.externalJoin("alice", "bob", nil, false, true)
		h.unprotect("alice", h.protect("bob", "resynced"), "resynced")
	}},
	{"external_join/external_tree", func(h *harness) {
		h.createGroup("alice")
		h.externalJoin("alice", "bob", nil, true, false)
	}},
	{"external_join/more_members", func(h *harness) {
		h.groupOf("alice", "bob", "charlie", "diana")
		h.externalJoin("diana", "ellen", []string{"alice", "bob", "charlie"}, false, false)
	}},

	// external_proposals
	{"external_proposals/joiner_signed_add", func(h *harness) {
		h.createGroup("alice")
		p := h.newMemberAddProposal("alice", "bob")
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p}, joiners: []string{"bob"}})
	}},
	{"external_proposals/add", func(h *harness) {
		h.createGroup("alice")
		h.externalJoin("alice", "bob", nil, false, false)
		h.addExternalSigner("alice", "ds", []string{"bob"})
		kp := h.keyPackage("charlie")
		p := h.externalSignerProposal("ds", "alice", add(kp))
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p}, members: []string{"bob"}, joiners: []string{"charlie"}})
	}},
	{"external_proposals/remove", func(h *harness) {
		threeWithSigner(h, "ds")
		p := h.externalSignerProposal("ds", "alice", remove("bob"))
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p}, members: []string{"charlie"}})
	}},
	{"external_proposals/external_psk", func(h *harness) {
		threeWithSigner(h, "ds")
		id := h.installPSK("alice", "bob", "charlie")
		p := h.externalSignerProposal("ds", "alice", extPSK(id))
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p}, members: []string{"bob", "charlie"}})
	}},
	{"external_proposals/resumption_psk", func(h *harness) {
		threeWithSigner(h, "ds")
		p := h.externalSignerProposal("ds", "alice", resPSK(2))
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p}, members: []string{"bob", "charlie"}})
	}},
	{"external_proposals/group_context_extensions", func(h *harness) {
		threeWithSigner(h, "ds")
		p := h.externalSignerProposal("ds", "alice", gce(someExtensions()[:1]))
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p}, members: []string{"bob", "charlie"}})
	}},
	{"external_proposals/multiple_signers", func(h *harness) {
		threeWithSigner(h, "ds1")
		h.addExternalSigner("alice", "ds2", []string{"bob", "charlie"})
		a, b := h.installPSK("alice", "bob", "charlie"), h.installPSK("alice", "bob", "charlie")
		p := h.externalSignerProposal("ds1", "alice", extPSK(a))
		q := h.externalSignerProposal("ds2", "alice", extPSK(b))
		h.fullCommit("alice", commitSpec{byRef: [][]byte{p, q}, members: []string{"bob", "charlie"}})
	}},
	{"external_proposals/reinit", func(h *harness) {
		threeWithSigner(h, "ds")
		gid := append(bytes.Clone(h.groupID), "++"...)
		cs := h.otherSuite()
		p := h.externalSignerProposal("ds", "alice", &pb.ProposalDescription{ProposalType: []byte("reinit"), GroupId: gid, CipherSuite: cs, Extensions: someExtensions()[:1]})
		h.reinit(reinitSpec{proposal: p, committer: "alice", welcomer: "bob", members: []string{"charlie"}, groupID: gid, cs: cs, exts: someExtensions()[:1], forcePath: true})
	}},

	// reinit
	{"reinit/change_ciphersuite", func(h *harness) {
		reinitOf5(h, reinitSpec{proposer: "alice", committer: "alice", welcomer: "charlie", members: []string{"bob", "diana", "eliza"}, cs: h.otherSuite()})
	}},
	{"reinit/change_group_id", func(h *harness) {
		reinitOf5(h, reinitSpec{proposer: "alice", committer: "alice", welcomer: "charlie", members: []string{"bob", "diana", "eliza"}, newID: true})
	}},
	{"reinit/change_extensions", func(h *harness) {
		reinitOf5(h, reinitSpec{proposer: "alice", committer: "alice", welcomer: "charlie", members: []string{"bob", "diana", "eliza"}, exts: someExtensions()})
	}},
	{"reinit/all_same_actor", func(h *harness) {
		reinitOf5(h, reinitSpec{proposer: "alice", committer: "alice", welcomer: "alice", members: []string{"bob", "charlie", "diana", "eliza"}, newID: true, cs: h.otherSuite()})
	}},
	{"reinit/external_tree", func(h *harness) {
		reinitOf5(h, reinitSpec{proposer: "alice", committer: "alice", welcomer: "bob", members: []string{"charlie", "diana", "eliza"}, newID: true, externalTree: true})
	}},
	{"reinit/force_path", func(h *harness) {
		reinitOf5(h, reinitSpec{proposer: "alice", committer: "alice", welcomer: "charlie", members: []string{"bob", "diana", "eliza"}, newID: true, forcePath: true})
	}},
	{"reinit/proposer_is_not_committer", func(h *harness) {
		reinitOf5(h, reinitSpec{proposer: "alice", committer: "bob", welcomer: "charlie", members: []string{"diana", "eliza"}, newID: true, forcePath: true})
	}},

	// branch
	{"branch/base", func(h *harness) { branchOf5(h, nil, false, false) }},
	{"branch/with_extensions", func(h *harness) { branchOf5(h, someExtensions(), false, false) }},
	{"branch/external_tree", func(h *harness) { branchOf5(h, nil, false, true) }},
	{"branch/force_path", func(h *harness) { branchOf5(h, nil, true, false) }},
}

// allTogether commits every proposal type at once, the by-reference ones
// proposed by proposer.
func allTogether(h *harness, proposer string) {
	h.createGroup("alice")
	h.externalJoin("alice", "bob", nil, false, false)
	p1, p2 := h.addProposal("alice", h.keyPackage("charlie1")), h.addProposal("alice", h.keyPackage("charlie2"))
	h.fullCommit("alice", commitSpec{byRef: [][]byte{p1, p2}, members: []string{"bob"}, joiners: []string{"charlie1", "charlie2"}})
	a, b := h.installPSK("alice", "bob"), h.installPSK("alice", "bob")
	refs := [][]byte{
		h.addProposal(proposer, h.keyPackage("charlie3")),
		h.removeProposal(proposer, "charlie1"),
		h.gceProposal(proposer, someExtensions()),
		h.externalPSKProposal(proposer, a),
		h.resumptionPSKProposal(proposer, 1),
	}
	if proposer != "alice" {
		refs = append(refs, h.updateProposal(proposer))
	}
	k4 := h.keyPackage("charlie4")
	h.fullCommit("alice", commitSpec{byRef: refs, byValue: []*pb.ProposalDescription{add(k4), remove("charlie2"), extPSK(b), resPSK(2)},
		members: []string{"bob"}})
}

// threeWithSigner makes a group of alice, bob and charlie (joined
// externally) with the external sender signer.
func threeWithSigner(h *harness, signer string) {
	h.createGroup("alice")
	h.externalJoin("alice", "bob", nil, false, false)
	h.externalJoin("alice", "charlie", []string{"bob"}, false, false)
	h.addExternalSigner("alice", signer, []string{"bob", "charlie"})
}

// otherSuite is the suite a ReInit changes to: suite 1 and X-Wing swap.
func (h *harness) otherSuite() uint32 {
	if h.cs == uint32(mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519) {
		return uint32(mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519)
	}
	return uint32(mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
}

// newMemberAddProposal has joiner create a self-signed Add from actor's
// GroupInfo.
func (h *harness) newMemberAddProposal(from, joiner string) []byte {
	h.t.Helper()
	f := h.a(from)
	gi, err := f.c.GroupInfo(ctx(h.t), &pb.GroupInfoRequest{StateId: f.state})
	h.ok(err, "GroupInfo by "+from)
	j := h.a(joiner)
	r, err := j.c.NewMemberAddProposal(ctx(h.t), &pb.NewMemberAddProposalRequest{GroupInfo: gi.GetGroupInfo(), Identity: []byte(joiner)})
	h.ok(err, "NewMemberAddProposal by "+joiner)
	j.tx = r.GetTransactionId()
	return r.GetProposal()
}

// addExternalSigner creates the external signer and has actor propose and
// commit adding it; members handle the commit.
func (h *harness) addExternalSigner(from, signer string, members []string) {
	h.t.Helper()
	s := h.a(signer)
	r, err := s.c.CreateExternalSigner(ctx(h.t), &pb.CreateExternalSignerRequest{CipherSuite: h.cs, Identity: []byte(signer)})
	h.ok(err, "CreateExternalSigner "+signer)
	s.signer = r.GetSignerId()
	f := h.a(from)
	p, err := f.c.AddExternalSigner(ctx(h.t), &pb.AddExternalSignerRequest{StateId: f.state, ExternalSender: r.GetExternalSender()})
	h.ok(err, "AddExternalSigner by "+from)
	h.fullCommit(from, commitSpec{byRef: [][]byte{p.GetProposal()}, members: members})
}

// externalSignerProposal has signer create a proposal from member's
// GroupInfo and tree.
func (h *harness) externalSignerProposal(signer, member string, d *pb.ProposalDescription) []byte {
	h.t.Helper()
	m := h.a(member)
	gi, err := m.c.GroupInfo(ctx(h.t), &pb.GroupInfoRequest{StateId: m.state, ExternalTree: true})
	h.ok(err, "GroupInfo by "+member)
	s := h.a(signer)
	r, err := s.c.ExternalSignerProposal(ctx(h.t), &pb.ExternalSignerProposalRequest{SignerId: s.signer, GroupInfo: gi.GetGroupInfo(), RatchetTree: gi.GetRatchetTree(), Description: d})
	h.ok(err, "ExternalSignerProposal by "+signer)
	return r.GetProposal()
}

// reinitSpec is a reinit step. Either proposer proposes (with groupID or
// newID, cs and exts) or proposal is an external one.
type reinitSpec struct {
	proposer, committer, welcomer string
	members                       []string
	proposal                      []byte
	newID                         bool
	groupID                       []byte
	cs                            uint32
	exts                          []*pb.Extension
	forcePath, externalTree       bool
}

func reinitOf5(h *harness, s reinitSpec) {
	h.groupOf("alice", "bob", "charlie", "diana", "eliza")
	h.reinit(s)
}

// reinit runs a ReInit as the harness does: propose, commit by reference,
// everyone gets a KeyPackage for the new group, the welcomer creates it and
// the others join.
func (h *harness) reinit(s reinitSpec) {
	h.t.Helper()
	if s.cs == 0 {
		s.cs = h.cs
	}
	if s.groupID == nil {
		s.groupID = bytes.Clone(h.groupID)
		if s.newID {
			s.groupID = append(s.groupID, "++"...)
		}
	}
	all := []string{}
	for _, n := range append([]string{s.proposer, s.committer, s.welcomer}, s.members...) {
		if n != "" && !slices.Contains(all, n) {
			all = append(all, n)
		}
	}
	p := s.proposal
	if s.proposer != "" {
		pr := h.a(s.proposer)
		r, err := pr.c.ReInitProposal(ctx(h.t), &pb.ReInitProposalRequest{StateId: pr.state, CipherSuite: s.cs, GroupId: s.groupID, Extensions: s.exts})
		h.ok(err, "ReInitProposal by "+s.proposer)
		p = r.GetProposal()
	}
	c := h.a(s.committer)
	cr, err := c.c.ReInitCommit(ctx(h.t), &pb.CommitRequest{StateId: c.state, ByReference: [][]byte{p}, ForcePath: s.forcePath})
	h.ok(err, "ReInitCommit by "+s.committer)
	pr, err := c.c.HandlePendingReInitCommit(ctx(h.t), &pb.HandlePendingCommitRequest{StateId: c.state})
	h.ok(err, "HandlePendingReInitCommit by "+s.committer)
	c.reinit, c.kp = pr.GetReinitId(), pr.GetKeyPackage()
	for _, n := range all {
		if n == s.committer {
			continue
		}
		ac := h.a(n)
		r, err := ac.c.HandleReInitCommit(ctx(h.t), &pb.HandleCommitRequest{StateId: ac.state, Proposal: [][]byte{p}, Commit: cr.GetCommit()})
		h.ok(err, "HandleReInitCommit by "+n)
		if !bytes.Equal(r.GetEpochAuthenticator(), pr.GetEpochAuthenticator()) {
			h.t.Fatalf("HandleReInitCommit: %s disagrees on the epoch authenticator", n)
		}
		ac.reinit, ac.kp = r.GetReinitId(), r.GetKeyPackage()
	}
	h.group = all
	h.epoch++
	h.check("reinit commit")

	w := h.a(s.welcomer)
	var kps [][]byte
	for _, n := range all {
		if n != s.welcomer {
			kps = append(kps, h.a(n).kp)
		}
	}
	wr, err := w.c.ReInitWelcome(ctx(h.t), &pb.ReInitWelcomeRequest{ReinitId: w.reinit, KeyPackage: kps, ForcePath: s.forcePath, ExternalTree: s.externalTree})
	h.ok(err, "ReInitWelcome by "+s.welcomer)
	if s.externalTree != (len(wr.GetRatchetTree()) > 0) {
		h.t.Fatalf("ReInitWelcome: external_tree %v but ratchet_tree of %d bytes", s.externalTree, len(wr.GetRatchetTree()))
	}
	w.state = wr.GetStateId()
	for _, n := range all {
		if n == s.welcomer {
			continue
		}
		ac := h.a(n)
		r, err := ac.c.HandleReInitWelcome(ctx(h.t), &pb.HandleReInitWelcomeRequest{ReinitId: ac.reinit, Welcome: wr.GetWelcome(), RatchetTree: wr.GetRatchetTree()})
		h.ok(err, "HandleReInitWelcome by "+n)
		if !bytes.Equal(r.GetEpochAuthenticator(), wr.GetEpochAuthenticator()) {
			h.t.Fatalf("HandleReInitWelcome: %s disagrees on the epoch authenticator", n)
		}
		ac.state = r.GetStateId()
	}
	h.cs, h.groupID = s.cs, s.groupID
	h.group = append([]string{s.welcomer}, without(all, s.welcomer)...)
	h.epoch++
	h.check("reinit welcome")
	// The new group carries messages.
	h.unprotect(all[len(all)-1], h.protect(s.welcomer, "after reinit"), "after reinit")
}

// branchOf5 makes a group of five and has alice branch it with everyone.
func branchOf5(h *harness, exts []*pb.Extension, forcePath, externalTree bool) {
	members := []string{"bob", "charlie", "diana", "eliza"}
	h.groupOf("alice", members...)
	old := map[string]uint32{}
	for _, n := range append([]string{"alice"}, members...) {
		old[n] = h.a(n).state
	}
	var kps [][]byte
	for _, m := range members {
		kps = append(kps, h.keyPackage(m))
	}
	a := h.a("alice")
	r, err := a.c.CreateBranch(ctx(h.t), &pb.CreateBranchRequest{StateId: a.state, GroupId: []byte(rand.Text()), Extensions: exts, KeyPackages: kps, ForcePath: forcePath, ExternalTree: externalTree})
	h.ok(err, "CreateBranch by alice")
	if externalTree != (len(r.GetRatchetTree()) > 0) {
		h.t.Fatalf("CreateBranch: external_tree %v but ratchet_tree of %d bytes", externalTree, len(r.GetRatchetTree()))
	}
	a.state = r.GetStateId()
	for _, m := range members {
		ac := h.a(m)
		hr, err := ac.c.HandleBranch(ctx(h.t), &pb.HandleBranchRequest{StateId: ac.state, TransactionId: ac.tx, Welcome: r.GetWelcome(), RatchetTree: r.GetRatchetTree()})
		h.ok(err, "HandleBranch by "+m)
		if !bytes.Equal(hr.GetEpochAuthenticator(), r.GetEpochAuthenticator()) {
			h.t.Fatalf("HandleBranch: %s disagrees on the epoch authenticator", m)
		}
		ac.state = hr.GetStateId()
	}
	h.epoch++
	h.check("branch")
	h.unprotect("eliza", h.protect("alice", "in the branch"), "in the branch")
	// The old group goes on.
	for n, id := range old {
		h.a(n).state = id
	}
	h.check("old group after branch")
	h.fullCommit("bob", commitSpec{members: []string{"alice", "charlie", "diana", "eliza"}})
}

func without(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
