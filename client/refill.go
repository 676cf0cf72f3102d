package client

import (
	"context"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// refillMinMembers is the group size from which a member sets again the
// nodes a removal left blank (mls.Group.Refiller). At 10,000 members a removal
// far from its committer leaves up to 13 such nodes, and a later path
// commit whose copath meets the highest of them encrypts to one node per
// level below it instead of to one: about 15 KB more on X-Wing, for
// every such commit until the nodes are set again. Below 64 members a
// blank parent costs a later commit a few ciphertexts, less than the
// commit that would fill it.
const refillMinMembers = 64

// refillAfter returns after followed, when this device is the refiller
// (mls.Group.Refiller) of a leaf the merged commit sc removed, by a
// self-update of conv.
func (c *Client) refillAfter(after func(), conv protocol.ConversationID, g *mls.Group, sc *mls.StagedCommit) func() {
	if sc.SelfRemoved || len(sc.Removed) == 0 || !g.Active() {
		return after
	}
	committer, ok := committerLeaf(sc)
	if !ok {
		return after
	}
	if g.MemberCount() < refillMinMembers {
		return after
	}
	own := g.OwnLeaf()
	for _, r := range sc.Removed {
		if l, ok := g.Refiller(r.Leaf, committer); ok && l == own {
			return func() {
				if after != nil {
					after()
				}
				c.background(func(ctx context.Context) {
					if err := c.SelfUpdate(ctx, conv); err != nil {
						c.log.Warn("self-update to refill the tree after a removal", "conversation", conv, "err", err)
					}
				})
			}
		}
	}
	return after
}

// committerLeaf returns the leaf of a commit's sender in the new epoch:
// a member's own, or the leaf an external joiner took.
func committerLeaf(sc *mls.StagedCommit) (mls.LeafIndex, bool) {
	switch sc.Committer.Type {
	case mls.SenderMember:
		return sc.Committer.Leaf, true
	case mls.SenderNewMemberCommit:
		if len(sc.Added) > 0 {
			return sc.Added[len(sc.Added)-1].Leaf, true
		}
	}
	return 0, false
}
