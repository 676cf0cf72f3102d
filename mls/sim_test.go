package mls

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls/internal/suite"
)

// The seeded random simulation of issue 3. A group of up to -sim.members
// members runs -sim.epochs epochs of random adds (by proposal and by value,
// joined by Welcome with the tree inline or out of band), removes (by
// proposal, by value, self-removal), updates (proposals committed by others
// and self-update commits), external joins (with and without resync) and
// application messages (delivered out of order, some after the next commit
// as late messages of a past epoch). One commit wins each epoch; sometimes a
// concurrent commit loses and is discarded. After every epoch the members,
// the Delivery Service's PublicGroup follower and a simple model (identity
// to leaf) must agree, and every removed member must fail on later messages.
//
//	go test -run TestSimulation ./mls/ -sim.seed=42 -sim.members=200 -sim.epochs=1000 -v
//	go test -run TestSimulation ./mls/ -sim.suite=0xf009 -sim.members=12 -v
//
// By default it runs on suite 1 and X-Wing (largeSuites); -sim.suite picks
// any one supported suite by its number instead.
//
// The seed fixes the schedule of operations; key material comes from
// crypto/rand as always.
var (
	simSeed    = flag.Uint64("sim.seed", 0, "seed of TestSimulation (0: from the clock)")
	simMembers = flag.Int("sim.members", 64, "maximum group size of TestSimulation")
	simEpochs  = flag.Int("sim.epochs", 300, "epochs of TestSimulation (-short: 40)")
	simSuite   = flag.String("sim.suite", "", "cipher suite of TestSimulation, e.g. 1 or 0xf009 (default: suite 1 and X-Wing)")
)

// simSuites returns the suites TestSimulation runs on: largeSuites, or the
// one named by -sim.suite.
func simSuites(t *testing.T) []struct {
	name string
	cs   CipherSuite
} {
	if *simSuite == "" {
		return largeSuites
	}
	v, err := strconv.ParseUint(*simSuite, 0, 16)
	if err != nil {
		t.Fatalf("-sim.suite %q: %v", *simSuite, err)
	}
	cs := CipherSuite(v)
	if _, err := suite.New(cs); err != nil {
		t.Fatalf("-sim.suite %q: %v", *simSuite, err)
	}
	return []struct {
		name string
		cs   CipherSuite
	}{{fmt.Sprintf("%#04x", uint16(cs)), cs}}
}

func TestSimulation(t *testing.T) {
	seed := *simSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	epochs := *simEpochs
	if testing.Short() && epochs > 40 {
		epochs = 40
	}
	t.Logf("seed %d (rerun with -sim.seed=%d), members %d, epochs %d", seed, seed, *simMembers, epochs)
	for _, su := range simSuites(t) {
		t.Run(su.name, func(t *testing.T) {
			t.Logf("seed %d", seed)
			s := newSim(t, su.cs, seed, *simMembers)
			start := time.Now()
			for range epochs {
				s.epoch()
			}
			t.Logf("%d epochs in %v: %+v", epochs, time.Since(start), s.stats)
		})
	}
}

type simMember struct {
	name   string
	g      *Group
	signer *Signer
}

// simMsg is an application message sent in some epoch.
type simMsg struct {
	ct, data []byte
	from     string
	leaf     LeafIndex
	// to are the members (of the sending epoch) that have not yet
	// received it.
	to []*simMember
}

type simStats struct {
	Commits, Adds, ExternalJoins, Resyncs, Removes, SelfRemoves, UpdateProposals, LosingCommits, Messages, LateMessages, RemovedProbes, MaxSize int
	// The follower's tree store (checkTreeStore): commits without a
	// path, commits that grew or shrank the tree, nodes written and
	// deleted.
	PathlessCommits, TreeGrows, TreeShrinks, NodeWrites, NodeDeletes int
}

type sim struct {
	t       *testing.T
	rng     *rand.Rand
	cs      CipherSuite
	cfg     *Config
	max     int
	next    int // next identity number
	members map[string]*simMember
	// model maps each member's identity to its leaf: what Members() must
	// list.
	model   map[string]LeafIndex
	removed []*simMember
	pg      *PublicGroup
	stats   simStats
	// nodes is the follower's tree stored node by node, kept up to date
	// with TreeChanges only; trng shuffles it for LoadPublicGroupTree
	// (apart from rng, so that the schedule depends only on the seed).
	nodes map[uint32][]byte
	trng  *rand.Rand
}

func newSim(t *testing.T, cs CipherSuite, seed uint64, max int) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, uint64(cs))), cs: cs, cfg: &Config{}, max: max, members: map[string]*simMember{}, model: map[string]LeafIndex{}}
	if s.max < 2 {
		s.max = 2
	}
	signer, err := GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	name := s.newName()
	g, err := CreateGroup(s.cfg, cs, []byte(fmt.Sprintf("sim-%d", seed)), signer, BasicCredential([]byte(name)), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.members[name] = &simMember{name: name, g: g, signer: signer}
	s.model[name] = 0
	gi, err := g.GroupInfo(GroupInfoOptions{InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.pg, err = NewPublicGroup(s.cfg, gi, nil); err != nil {
		t.Fatal(err)
	}
	s.trng = rand.New(rand.NewPCG(seed, 1))
	s.nodes = map[uint32][]byte{}
	tn, err := s.pg.TreeNodes()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tn {
		s.nodes[n.Index] = n.Data
	}
	s.check()
	s.checkTreeStore()
	return s
}

func (s *sim) newName() string {
	s.next++
	return fmt.Sprintf("m%d", s.next-1)
}

func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("epoch %d: %s", s.pg.Epoch(), fmt.Sprintf(format, args...))
}

// sorted returns the members in name order, so that the schedule depends
// only on the seed.
func (s *sim) sorted() []*simMember {
	out := make([]*simMember, 0, len(s.members))
	for _, m := range s.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *simMember) int { return cmpString(a.name, b.name) })
	return out
}

func cmpString(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return bytes.Compare([]byte(a), []byte(b))
}

func (s *sim) pick(ms []*simMember) *simMember { return ms[s.rng.IntN(len(ms))] }

func (s *sim) keyPackage() (string, *KeyPackageBundle) {
	s.t.Helper()
	name := s.newName()
	signer, err := GenerateSigner(s.cs)
	if err != nil {
		s.t.Fatal(err)
	}
	kp, err := NewKeyPackage(s.cfg, s.cs, signer, BasicCredential([]byte(name)), KeyPackageOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return name, kp
}

// broadcast delivers a proposal to the follower and every member but from.
func (s *sim) broadcast(from *simMember, msg []byte) {
	s.t.Helper()
	ch, err := s.pg.Process(msg)
	if err != nil || ch.Kind != KindProposal {
		s.fatalf("follower: proposal from %s: %v", from.name, err)
	}
	if tc, err := ch.TreeChanges(); tc != nil || err != nil {
		s.fatalf("follower: tree changes of a proposal: %v, %v", tc, err)
	}
	for _, m := range s.sorted() {
		if m == from {
			continue
		}
		p, err := m.g.Process(msg)
		if err != nil || p.Kind != KindProposal {
			s.fatalf("%s: proposal from %s: %v", m.name, from.name, err)
		}
	}
}

// sendMessages has random members encrypt application messages of the
// current epoch; each is to be delivered to every other member.
func (s *sim) sendMessages(n int) []*simMsg {
	s.t.Helper()
	ms := s.sorted()
	var out []*simMsg
	for range n {
		from := s.pick(ms)
		data := fmt.Appendf(nil, "%s says %d in epoch %d", from.name, s.rng.Uint64(), from.g.Epoch())
		ct, err := from.g.Encrypt(data, []byte(from.name))
		if err != nil {
			s.fatalf("%s encrypt: %v", from.name, err)
		}
		msg := &simMsg{ct: ct, data: data, from: from.name, leaf: from.g.OwnLeaf()}
		for _, m := range ms {
			if m != from {
				msg.to = append(msg.to, m)
			}
		}
		out = append(out, msg)
		s.stats.Messages++
	}
	return out
}

// deliverMessages delivers every pending (message, recipient) pair with
// probability p (1: all), in random order.
func (s *sim) deliverMessages(msgs []*simMsg, p float64, late bool) {
	s.t.Helper()
	type pair struct {
		msg *simMsg
		to  *simMember
	}
	var pairs []pair
	for _, msg := range msgs {
		var keep []*simMember
		for _, to := range msg.to {
			if p >= 1 || s.rng.Float64() < p {
				pairs = append(pairs, pair{msg, to})
			} else {
				keep = append(keep, to)
			}
		}
		msg.to = keep
	}
	s.rng.Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
	for _, pr := range pairs {
		pm, err := pr.to.g.Process(pr.msg.ct)
		if err != nil {
			s.fatalf("%s: message from %s (late %v): %v", pr.to.name, pr.msg.from, late, err)
		}
		if pm.Kind != KindApplication || !bytes.Equal(pm.ApplicationData, pr.msg.data) || pm.Sender.Leaf != pr.msg.leaf || string(pm.AuthenticatedData) != pr.msg.from {
			s.fatalf("%s: wrong message from %s", pr.to.name, pr.msg.from)
		}
		if late {
			s.stats.LateMessages++
		}
	}
	if len(pairs) > 0 && s.rng.IntN(4) == 0 {
		pr := pairs[s.rng.IntN(len(pairs))]
		if _, err := pr.to.g.Process(pr.msg.ct); !errors.Is(err, ErrReplay) {
			s.fatalf("%s: replayed message from %s: %v", pr.to.name, pr.msg.from, err)
		}
	}
}

// epoch runs one epoch: messages, proposals, one winning commit (maybe a
// losing one), late messages, and the checks.
func (s *sim) epoch() {
	s.t.Helper()
	msgs := s.sendMessages(s.rng.IntN(5))
	s.deliverMessages(msgs, 0.7, false)

	ms := s.sorted()
	size := len(ms)
	r := s.rng.Float64()
	switch {
	case size < s.max && r < 0.1:
		s.externalJoin(msgs, nil)
	case size >= 2 && r < 0.17:
		s.externalJoin(msgs, s.pick(ms))
	default:
		s.commit(msgs)
	}
	s.check()
	s.probeRemoved()
	now := s.sendMessages(1 + s.rng.IntN(3))
	s.deliverMessages(now, 1, false)
}

// commit has a random member commit random proposals.
func (s *sim) commit(msgs []*simMsg) {
	s.t.Helper()
	ms := s.sorted()
	committer := s.pick(ms)
	touched := map[string]bool{committer.name: true}
	remaining := len(ms) // members left after the removals planned so far
	var wantAdded []string
	kps := map[string]*KeyPackageBundle{}
	var wantRemoved []string
	untouched := func() *simMember {
		for range 8 {
			if m := s.pick(ms); !touched[m.name] {
				return m
			}
		}
		return nil
	}
	room := func() bool { return remaining+len(wantAdded) < s.max }
	// Proposals from others, committed by reference.
	for range s.rng.IntN(4) {
		proposer := s.pick(ms)
		switch k := s.rng.IntN(4); {
		case k == 0 && room():
			name, kp := s.keyPackage()
			msg, err := proposer.g.ProposeAdd(kp.KeyPackage)
			if err != nil {
				s.fatalf("%s propose add: %v", proposer.name, err)
			}
			s.broadcast(proposer, msg)
			wantAdded, kps[name] = append(wantAdded, name), kp
		case k == 1 && proposer != committer && !touched[proposer.name]:
			msg, err := proposer.g.ProposeUpdate()
			if err != nil {
				s.fatalf("%s propose update: %v", proposer.name, err)
			}
			s.broadcast(proposer, msg)
			touched[proposer.name] = true
			s.stats.UpdateProposals++
		case k == 2 && remaining > 2 && s.rng.IntN(2*s.max) < remaining:
			victim := untouched()
			if victim == nil || victim == proposer {
				continue
			}
			msg, err := proposer.g.ProposeRemove(victim.g.OwnLeaf())
			if err != nil {
				s.fatalf("%s propose remove: %v", proposer.name, err)
			}
			s.broadcast(proposer, msg)
			touched[victim.name] = true
			wantRemoved = append(wantRemoved, victim.name)
			remaining--
		case k == 3 && remaining > 2 && !touched[proposer.name] && s.rng.IntN(2*s.max) < remaining:
			msg, err := proposer.g.ProposeSelfRemove()
			if err != nil {
				s.fatalf("%s propose self-remove: %v", proposer.name, err)
			}
			s.broadcast(proposer, msg)
			touched[proposer.name] = true
			wantRemoved = append(wantRemoved, proposer.name)
			remaining--
			s.stats.SelfRemoves++
		}
	}
	// Proposals by value.
	opts := CommitOptions{IncludePending: true, ForcePath: s.rng.IntN(2) == 0, InlineRatchetTree: s.rng.IntN(2) == 0}
	for range s.rng.IntN(3) {
		if !room() {
			break
		}
		name, kp := s.keyPackage()
		opts.Add = append(opts.Add, kp.KeyPackage)
		wantAdded, kps[name] = append(wantAdded, name), kp
	}
	if remaining > 2 && s.rng.IntN(3*s.max) < remaining {
		if victim := untouched(); victim != nil {
			opts.Remove = append(opts.Remove, victim.g.OwnLeaf())
			touched[victim.name] = true
			wantRemoved = append(wantRemoved, victim.name)
		}
	}
	pc, err := committer.g.Commit(opts)
	if err != nil {
		s.fatalf("%s commit: %v", committer.name, err)
	}
	if len(pc.Added) != len(wantAdded) || len(pc.Removed) != len(wantRemoved) {
		s.fatalf("%s commit: %d added, %d removed; want %d, %d", committer.name, len(pc.Added), len(pc.Removed), len(wantAdded), len(wantRemoved))
	}
	// A concurrent commit loses: some members and the follower stage it,
	// then the Delivery Service's order makes them drop it.
	if s.rng.IntN(4) == 0 && len(ms) > 1 {
		loser := s.pick(ms)
		if loser != committer {
			lpc, err := loser.g.Commit(CommitOptions{ForcePath: true})
			if err != nil {
				s.fatalf("%s losing commit: %v", loser.name, err)
			}
			lch, err := s.pg.Process(lpc.Message)
			if err != nil {
				s.fatalf("follower: losing commit: %v", err)
			}
			// Its tree changes are computed, never stored.
			if _, err := lch.TreeChanges(); err != nil {
				s.fatalf("follower: losing commit's tree changes: %v", err)
			}
			for _, m := range ms {
				if m != loser && s.rng.IntN(3) == 0 {
					if _, err := m.g.Process(lpc.Message); err != nil {
						s.fatalf("%s: losing commit: %v", m.name, err)
					}
				}
			}
			loser.g.DiscardPendingCommit(lpc)
			if err := loser.g.MergePendingCommit(lpc); !errors.Is(err, ErrStale) {
				s.fatalf("%s: merge after discard: %v", loser.name, err)
			}
			s.stats.LosingCommits++
		}
	}
	s.applyCommit(committer, committer.g, pc, msgs, wantAdded, wantRemoved, nil)
	// Joiners.
	var tree []byte
	if !opts.InlineRatchetTree && len(wantAdded) > 0 {
		if tree, err = committer.g.RatchetTree(); err != nil {
			s.t.Fatal(err)
		}
	}
	for _, name := range wantAdded {
		g, err := JoinFromWelcome(s.cfg, pc.Welcome, kps[name], JoinOptions{RatchetTree: tree})
		if err != nil {
			s.fatalf("%s join: %v", name, err)
		}
		s.members[name] = &simMember{name: name, g: g, signer: kps[name].Signer}
		s.stats.Adds++
	}
	s.stats.Commits++
}

// externalJoin has a new member join by external commit, or, with resync,
// an existing member rejoin under the same identity.
func (s *sim) externalJoin(msgs []*simMsg, resync *simMember) {
	s.t.Helper()
	ms := s.sorted()
	from := s.pick(ms)
	inline := s.rng.IntN(2) == 0
	gi, err := from.g.GroupInfo(GroupInfoOptions{ExternalPub: true, InlineRatchetTree: inline})
	if err != nil {
		s.fatalf("%s group info: %v", from.name, err)
	}
	var opts ExternalJoinOptions
	if !inline {
		if opts.RatchetTree, err = from.g.RatchetTree(); err != nil {
			s.t.Fatal(err)
		}
	}
	name := ""
	var signer *Signer
	var wantRemoved []string
	if resync != nil {
		name, signer = resync.name, resync.signer
		leaf := resync.g.OwnLeaf()
		opts.ResyncLeaf = &leaf
		wantRemoved = []string{name}
		s.stats.Resyncs++
	} else {
		name = s.newName()
		if signer, err = GenerateSigner(s.cs); err != nil {
			s.t.Fatal(err)
		}
		s.stats.ExternalJoins++
	}
	g, pc, err := JoinExternal(s.cfg, gi, signer, BasicCredential([]byte(name)), opts)
	if err != nil {
		s.fatalf("%s external join (resync %v): %v", name, resync != nil, err)
	}
	s.applyCommit(nil, g, pc, msgs, []string{name}, wantRemoved, resync)
	s.members[name] = &simMember{name: name, g: g, signer: signer}
}

// applyCommit delivers the winning commit to the follower and every member,
// merges it, updates the model, delivers the late messages of the old epoch
// and feeds the commit to every removed member.
func (s *sim) applyCommit(committer *simMember, cg *Group, pc *PendingCommit, msgs []*simMsg, wantAdded, wantRemoved []string, resynced *simMember) {
	s.t.Helper()
	oldEpoch := s.pg.Epoch()
	ch, err := s.pg.Process(pc.Message)
	if err != nil || ch.Kind != KindCommit {
		s.fatalf("follower: commit: %v", err)
	}
	// An external joiner is reported in Added, at its new leaf, by the
	// follower, the staged commits and the pending commit alike; a resynced
	// old leaf in Removed (wantRemoved).
	nAdds := len(wantAdded)
	joined := func(who string, sender Sender, added, updated []Member) {
		if committer != nil {
			return
		}
		i := slices.IndexFunc(added, func(m Member) bool { return string(m.Credential.Identity) == wantAdded[0] })
		if sender.Type != SenderNewMemberCommit || i < 0 || added[i].Leaf != sender.Leaf || slices.ContainsFunc(updated, func(m Member) bool { return m.Leaf == sender.Leaf }) {
			s.fatalf("%s: external commit by %s not reported in Added: sender %v, added %v, updated %d", who, wantAdded[0], sender, added, len(updated))
		}
	}
	joined("follower", ch.Sender, ch.Added, ch.Updated)
	if ch.Sender.Type == SenderMember && !slices.ContainsFunc(ch.Updated, func(m Member) bool { return m.Leaf == ch.Sender.Leaf }) {
		s.stats.PathlessCommits++
	}
	// The tree changes, half the time before the Merge, half after.
	oldWidth := s.pg.c.tree.NodeCount()
	early := s.trng.IntN(2) == 0
	var changes []TreeNode
	if early {
		if changes, err = ch.TreeChanges(); err != nil {
			s.fatalf("follower: tree changes before merge: %v", err)
		}
	}
	if committer == nil {
		joined("pending commit", ch.Sender, pc.Added, pc.Updated)
		if len(pc.Removed) != len(wantRemoved) {
			s.fatalf("pending external commit: %d removed, want %d", len(pc.Removed), len(wantRemoved))
		}
	}
	if ch.Epoch != oldEpoch+1 || len(ch.Added) != nAdds || len(ch.Removed) != len(wantRemoved) {
		s.fatalf("follower: commit to epoch %d adds %d removes %d; want %d, %d, %d", ch.Epoch, len(ch.Added), len(ch.Removed), oldEpoch+1, nAdds, len(wantRemoved))
	}
	if err := s.pg.Merge(ch); err != nil {
		s.fatalf("follower: merge: %v", err)
	}
	if !early {
		if changes, err = ch.TreeChanges(); err != nil {
			s.fatalf("follower: tree changes after merge: %v", err)
		}
	}
	for _, n := range changes {
		if n.Data == nil {
			delete(s.nodes, n.Index)
			s.stats.NodeDeletes++
		} else {
			s.nodes[n.Index] = n.Data
			s.stats.NodeWrites++
		}
	}
	switch w := s.pg.c.tree.NodeCount(); {
	case w > oldWidth:
		s.stats.TreeGrows++
	case w < oldWidth:
		s.stats.TreeShrinks++
	}
	s.checkTreeStore()
	removed := map[string]bool{}
	for _, n := range wantRemoved {
		removed[n] = true
	}
	var gone []*simMember
	for _, m := range s.sorted() {
		if m == committer {
			continue
		}
		p, err := m.g.Process(pc.Message)
		if err != nil || p.Kind != KindCommit {
			s.fatalf("%s: commit: %v", m.name, err)
		}
		sc := p.Commit
		joined(m.name, sc.Committer, sc.Added, sc.Updated)
		if sc.SelfRemoved != removed[m.name] || sc.Epoch != oldEpoch+1 || len(sc.Added) != nAdds || len(sc.Removed) != len(wantRemoved) {
			s.fatalf("%s: staged commit: self-removed %v, epoch %d, %d added, %d removed", m.name, sc.SelfRemoved, sc.Epoch, len(sc.Added), len(sc.Removed))
		}
		if err := m.g.MergeStagedCommit(sc); err != nil {
			s.fatalf("%s: merge: %v", m.name, err)
		}
		if sc.SelfRemoved {
			if m.g.Active() {
				s.fatalf("%s: still active after its removal", m.name)
			}
			gone = append(gone, m)
		}
	}
	if err := cg.MergePendingCommit(pc); err != nil {
		s.fatalf("committer merge: %v", err)
	}
	// Model: removed leaves empty; added members take the leftmost blank
	// leaves (RFC 9420 §12.1.1), in an order the model does not fix.
	for _, n := range wantRemoved {
		delete(s.model, n)
	}
	for _, m := range gone {
		delete(s.members, m.name)
	}
	s.stats.Removes += len(wantRemoved)
	taken := map[LeafIndex]bool{}
	for _, l := range s.model {
		taken[l] = true
	}
	var free []LeafIndex
	for l := LeafIndex(0); len(free) < len(wantAdded); l++ {
		if !taken[l] {
			free = append(free, l)
		}
	}
	var got []LeafIndex
	for _, m := range cg.Members() {
		if slices.Contains(wantAdded, string(m.Credential.Identity)) {
			s.model[string(m.Credential.Identity)] = m.Leaf
			got = append(got, m.Leaf)
		}
	}
	if !slices.Equal(got, free) {
		s.fatalf("added members at leaves %v; want the leftmost blank leaves %v", got, free)
	}
	// Late messages of the old epoch, to those still holding it.
	s.deliverMessages(msgs, 1, true)
	// Removed members (including this commit's) must refuse what follows.
	for _, r := range s.removed {
		if _, err := r.g.Process(pc.Message); err == nil {
			s.fatalf("removed member %s processed a later commit", r.name)
		}
	}
	s.removed = append(s.removed, gone...)
	if resynced != nil && !slices.Contains(gone, resynced) {
		s.fatalf("%s: old state not removed by its resync", resynced.name)
	}
}

// probeRemoved has a member send a message that no removed member may
// decrypt.
func (s *sim) probeRemoved() {
	s.t.Helper()
	if len(s.removed) == 0 {
		return
	}
	from := s.pick(s.sorted())
	ct, err := from.g.Encrypt([]byte("not for former members"), nil)
	if err != nil {
		s.fatalf("%s encrypt: %v", from.name, err)
	}
	for _, r := range s.removed {
		if p, err := r.g.Process(ct); err == nil {
			s.fatalf("removed member %s decrypted a message of epoch %d: %q", r.name, s.pg.Epoch(), p.ApplicationData)
		}
		s.stats.RemovedProbes++
	}
	for _, m := range s.sorted() {
		if m != from {
			if _, err := m.g.Process(ct); err != nil {
				s.fatalf("%s: probe from %s: %v", m.name, from.name, err)
			}
		}
	}
}

// check asserts that members, follower and model agree.
func (s *sim) check() {
	s.t.Helper()
	ms := s.sorted()
	if len(ms) > s.stats.MaxSize {
		s.stats.MaxSize = len(ms)
	}
	ref := ms[0].g
	refAuth := ref.EpochAuthenticator()
	ctx := fmt.Appendf(nil, "epoch %d", ref.Epoch())
	refExp, err := ref.Export("sim", ctx, 32)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, m := range ms {
		g := m.g
		if !g.Active() {
			s.fatalf("%s: inactive", m.name)
		}
		if g.Epoch() != ref.Epoch() || !bytes.Equal(g.EpochAuthenticator(), refAuth) || !bytes.Equal(g.TreeHash(), ref.TreeHash()) || !bytes.Equal(g.GroupContext(), ref.GroupContext()) {
			s.fatalf("%s disagrees with %s (epoch %d/%d)", m.name, ms[0].name, g.Epoch(), ref.Epoch())
		}
		exp, err := g.Export("sim", ctx, 32)
		if err != nil || !bytes.Equal(exp, refExp) {
			s.fatalf("%s: exporter disagrees: %v", m.name, err)
		}
		if g.OwnLeaf() != s.model[m.name] {
			s.fatalf("%s: at leaf %d, model says %d", m.name, g.OwnLeaf(), s.model[m.name])
		}
	}
	if s.pg.Epoch() != ref.Epoch() || !bytes.Equal(s.pg.TreeHash(), ref.TreeHash()) {
		s.fatalf("follower disagrees: epoch %d/%d", s.pg.Epoch(), ref.Epoch())
	}
	got, pub := ref.Members(), s.pg.Members()
	if len(got) != len(s.model) || len(pub) != len(got) {
		s.fatalf("%d members, follower %d, model %d", len(got), len(pub), len(s.model))
	}
	for i, m := range got {
		p := pub[i]
		if m.Leaf != p.Leaf || !bytes.Equal(m.Credential.Identity, p.Credential.Identity) || !bytes.Equal(m.SignatureKey, p.SignatureKey) || !bytes.Equal(m.EncryptionKey, p.EncryptionKey) {
			s.fatalf("follower's member at leaf %d differs", m.Leaf)
		}
		if l, ok := s.model[string(m.Credential.Identity)]; !ok || l != m.Leaf {
			s.fatalf("member %q at leaf %d; model: %d, %v", m.Credential.Identity, m.Leaf, l, ok)
		}
	}
}

// checkTreeStore asserts that the nodes kept with TreeChanges are the
// follower's TreeNodes, that EncodeRatchetTree of them is its RatchetTree,
// and that LoadPublicGroupTree of its MarshalState and the nodes, in random
// order, gives the same group, which then replaces the follower.
func (s *sim) checkTreeStore() {
	s.t.Helper()
	got, err := s.pg.TreeNodes()
	if err != nil {
		s.fatalf("follower: tree nodes: %v", err)
	}
	if len(got) != len(s.nodes) {
		s.fatalf("follower: %d tree nodes, %d kept from the tree changes", len(got), len(s.nodes))
	}
	for i, n := range got {
		if i > 0 && n.Index <= got[i-1].Index {
			s.fatalf("follower: tree nodes not in increasing order at %d", n.Index)
		}
		if d, ok := s.nodes[n.Index]; !ok || !bytes.Equal(d, n.Data) {
			s.fatalf("follower: node %d differs from the one kept from the tree changes (kept: %v)", n.Index, ok)
		}
	}
	rt, err := s.pg.RatchetTree()
	if err != nil {
		s.t.Fatal(err)
	}
	if enc, err := EncodeRatchetTree(got); err != nil || !bytes.Equal(enc, rt) {
		s.fatalf("follower: EncodeRatchetTree of the tree nodes is not the ratchet tree: %v", err)
	}
	state, err := s.pg.MarshalState()
	if err != nil {
		s.fatalf("follower: marshal state: %v", err)
	}
	shuffled := slices.Clone(got)
	s.trng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	loaded, err := LoadPublicGroupTree(s.cfg, state, shuffled)
	if err != nil {
		s.fatalf("follower: load from state and tree nodes: %v", err)
	}
	want, err := s.pg.MarshalBinary()
	if err != nil {
		s.t.Fatal(err)
	}
	if gotState, err := loaded.MarshalBinary(); err != nil || !bytes.Equal(gotState, want) {
		s.fatalf("follower: loaded from state and tree nodes, marshals differently: %v", err)
	}
	s.pg = loaded
}
