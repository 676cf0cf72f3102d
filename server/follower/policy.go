package follower

import (
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// The proposal types of RFC 9420 §12.1 the policy rules.
const (
	proposalAdd                    = 1
	proposalRemove                 = 3
	proposalGroupContextExtensions = 7
)

// userOf returns the user a leaf's Parley credential names, "" if none.
func userOf(c mls.Credential) string {
	if c.Type != mls.CredentialBasic {
		return ""
	}
	cr, err := protocol.DecodeCredential(c.Identity)
	if err != nil {
		return ""
	}
	return cr.User()
}

// leafUsers returns the users of members in leaf order.
func leafUsers(ms []mls.Member) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, userOf(m.Credential))
	}
	return out
}

// policyOf returns the policy among GroupContext extensions (nil when
// there is none) and why it could not be decoded.
func policyOf(exts []mls.Extension) (*protocol.Policy, error) {
	for _, e := range exts {
		if e.Type == protocol.PolicyExtensionType {
			return protocol.ParsePolicy(e.Data)
		}
	}
	return nil, nil
}

// leafUsers keeps the users of a group's leaves by leaf index ("" for a
// blank leaf), built once from the group and then changed by each commit,
// so that a handshake in a group with a policy does not decode every
// member's credential again.
type leafUserIndex []string

// newLeafUsers indexes the users of pg's leaves.
func newLeafUsers(pg *mls.PublicGroup) leafUserIndex {
	var out leafUserIndex
	for _, m := range pg.Members() {
		out = out.set(m.Leaf, userOf(m.Credential))
	}
	return out
}

func (u leafUserIndex) set(l mls.LeafIndex, user string) leafUserIndex {
	if int(l) >= len(u) {
		u = append(u, make([]string, int(l)+1-len(u))...)
	}
	u[l] = user
	return u
}

// apply changes the index by a commit's removed and added leaves.
func (u leafUserIndex) apply(ch *mls.PublicChange) leafUserIndex {
	for _, m := range ch.Removed {
		if int(m.Leaf) < len(u) {
			u[m.Leaf] = ""
		}
	}
	for _, m := range ch.Added {
		u = u.set(m.Leaf, userOf(m.Credential))
	}
	return u
}

// applyLeaves changes the index by the tree nodes that changed between
// its group's epoch and pg's (nil Data: blank): each changed leaf gets
// the user of pg's member there, or none.
func (u leafUserIndex) applyLeaves(pg *mls.PublicGroup, changes []mls.TreeNode) leafUserIndex {
	for _, n := range changes {
		if n.Index%2 != 0 {
			continue
		}
		l := mls.LeafIndex(n.Index / 2)
		if m, ok := pg.Member(l); ok {
			u = u.set(l, userOf(m.Credential))
		} else if int(l) < len(u) {
			u[l] = ""
		}
	}
	return u
}

// members returns the users of the members in leaf order.
func (u leafUserIndex) members() []string {
	out := make([]string, 0, len(u))
	for _, user := range u {
		if user != "" {
			out = append(out, user)
		}
	}
	return out
}

// policyHandshake describes a proposal or commit that pg (still in the
// epoch it was made in) processed, for protocol.PolicyHandshake.Check.
// users returns the users of pg's leaves; it is called only for a group
// with a policy.
func policyHandshake(pg *mls.PublicGroup, ch *mls.PublicChange, users func() leafUserIndex) *protocol.PolicyHandshake {
	p, err := policyOf(pg.Extensions())
	h := &protocol.PolicyHandshake{Policy: p}
	if p != nil || err != nil {
		h.Members = users().members()
	}
	if err != nil {
		// Start refuses a group whose policy does not decode, and Check
		// a commit that leaves one; should one be stored anyway, what it
		// rules is left to the user of the first leaf.
		h.Policy = &protocol.Policy{}
	}
	joiner := ""
	if ch.Sender.Type == mls.SenderNewMemberCommit {
		for _, m := range ch.Added {
			if m.Leaf == ch.Sender.Leaf {
				joiner = userOf(m.Credential)
			}
		}
	}
	props := ch.Proposals
	if ch.Kind != mls.KindCommit && ch.Proposal != nil {
		props = []mls.ProposalInfo{*ch.Proposal}
	}
	for i := range props {
		h.Proposals = append(h.Proposals, policyProposal(pg, &props[i], joiner))
	}
	if ch.Kind == mls.KindCommit {
		h.Commit = true
		if ch.ExtensionsChanged {
			h.NewPolicy, h.NewPolicyErr = policyOf(ch.Extensions)
			h.MembersAfter = usersAfter(pg, ch)
			h.OtherExtensionsChanged = protocol.OtherExtensionsChanged(pg.Extensions(), ch.Extensions)
		}
	}
	return h
}

// policyProposal describes a proposal of pg's epoch for the policy.
func policyProposal(pg *mls.PublicGroup, p *mls.ProposalInfo, joiner string) protocol.PolicyProposal {
	var pp protocol.PolicyProposal
	switch p.Sender.Type {
	case mls.SenderMember:
		if m, ok := pg.Member(p.Sender.Leaf); ok {
			pp.Proposer = userOf(m.Credential)
		}
	case mls.SenderNewMemberCommit:
		pp.Proposer = joiner
	}
	switch p.Type {
	case proposalAdd:
		pp.Kind, pp.Target = protocol.ProposalAdd, userOf(p.Credential)
	case proposalRemove:
		pp.Kind = protocol.ProposalRemove
		if m, ok := pg.Member(p.Leaf); ok {
			pp.Target = userOf(m.Credential)
		}
	case proposalGroupContextExtensions:
		pp.Kind = protocol.ProposalExtensions
	}
	return pp
}

// usersAfter returns the users of the leaves after a commit.
func usersAfter(pg *mls.PublicGroup, ch *mls.PublicChange) []string {
	gone := map[mls.LeafIndex]bool{}
	for _, m := range ch.Removed {
		gone[m.Leaf] = true
	}
	var out []string
	for _, m := range pg.Members() {
		if !gone[m.Leaf] {
			out = append(out, userOf(m.Credential))
		}
	}
	return append(out, leafUsers(ch.Added)...)
}
