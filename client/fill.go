package client

import (
	"context"
	"errors"
	"sync"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// FillMinMembers is the group size from which members keep the ratchet
// tree filled (mls.Group.TreeFiller): the member that the rule names
// commits a self-update after the commit or Welcome that made it one. A
// group grown by Adds or thinned by Removes has blank parent nodes, and
// a path commit whose copath meets one encrypts to every member under
// it: in a 10,000-member group on X-Wing, a member far from the creator
// would otherwise commit megabytes, past the server's message limit.
// Below 64 members a blank parent costs a later commit a few
// ciphertexts, less than the commit that would fill it.
const FillMinMembers = 64

// fillState remembers the conversations a fill is running in.
type fillState struct {
	mu      sync.Mutex
	running map[protocol.ConversationID]bool
}

// fillsTree reports whether this device, as its group g stands, commits
// a self-update to fill the tree.
func fillsTree(g *mls.Group) bool {
	return g.Active() && g.MemberCount() >= FillMinMembers && g.TreeFiller(g.OwnLeaf())
}

// fillAfter returns after followed, when this device fills the tree of
// conv as g stands with a commit merged, by a fill in the background (the
// sync loop runs after once the commit is stored).
func (c *Client) fillAfter(after func(), conv protocol.ConversationID, g *mls.Group) func() {
	if !fillsTree(g) {
		return after
	}
	return func() {
		if after != nil {
			after()
		}
		c.goFill(conv)
	}
}

// fillIfNamed starts a fill of conv in the background when this device,
// as its group g stands after a commit or a join, fills the tree.
func (c *Client) fillIfNamed(conv protocol.ConversationID, g *mls.Group) {
	if fillsTree(g) {
		c.goFill(conv)
	}
}

// goFill fills the tree of conv in the background unless a fill of conv
// is running already.
func (c *Client) goFill(conv protocol.ConversationID) {
	c.fill.mu.Lock()
	if c.fill.running[conv] {
		c.fill.mu.Unlock()
		return
	}
	if c.fill.running == nil {
		c.fill.running = map[protocol.ConversationID]bool{}
	}
	c.fill.running[conv] = true
	c.fill.mu.Unlock()
	c.background(func(ctx context.Context) {
		defer func() {
			c.fill.mu.Lock()
			delete(c.fill.running, conv)
			c.fill.mu.Unlock()
		}()
		if err := c.fillTree(ctx, conv); err != nil {
			c.log.Warn("self-update to fill the tree", "conversation", conv, "err", err)
		}
	})
}

// fillTree commits a self-update of conv if this device still fills its
// tree once caught up: a commit that won the epoch meanwhile may have
// filled it, and each retry asks again.
func (c *Client) fillTree(ctx context.Context, conv protocol.ConversationID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.selfUpdateWhen(ctx, conv, fillsTree)
	if errors.Is(err, errNothingToCommit) {
		return nil
	}
	return err
}
