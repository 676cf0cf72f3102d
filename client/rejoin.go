package client

import (
	"context"
	"fmt"

	"github.com/parley-chat/parley/protocol"
)

// rejoinLocked prepares a conversation whose group is still active in
// this device's store for a Welcome of a newer epoch: the device was
// removed and added again while it was not following. The entries before
// the commit that added it again (the server's cursor for the new
// membership, joinSeq) are applied to the old group as long as it stays
// active, so that nothing sent while this device was still a member is
// lost; the caller then replaces the group with the one of the Welcome.
// c.mu is held.
func (c *Client) rejoinLocked(ctx context.Context, conv protocol.ConversationID, joinSeq uint64) error {
	if c.rejoining == nil {
		c.rejoining = map[protocol.ConversationID]bool{}
	}
	c.rejoining[conv] = true // the Welcome replaces the group: no recovery (see recoverable)
	defer delete(c.rejoining, conv)
	for {
		g := c.groups[conv]
		if g == nil || !g.Active() {
			return nil
		}
		cur, err := c.cursor(ctx, conv)
		if err != nil {
			return err
		}
		if cur+1 >= joinSeq {
			return nil
		}
		var page protocol.EntriesResponse
		if err := c.call(ctx, "GET", fmt.Sprintf("/v1/conversations/%d/entries?after=%d&limit=%d", conv, cur, min(joinSeq-cur-1, 500)), true, nil, &page); err != nil {
			return fmt.Errorf("client: fetch entries of conversation %d before rejoining: %w", conv, err)
		}
		applied := false
		for _, e := range page.Entries {
			if e.Seq >= joinSeq || !g.Active() {
				return nil
			}
			if err := c.applyEntryLocked(ctx, e); err != nil {
				return err
			}
			applied = true
		}
		if !applied || !page.More {
			return nil
		}
	}
}
