package client

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// CommitForTest makes c commit in conv with opts (a self-update when opts
// asks for a path, with the test knobs of mls.CommitOptions), posted and
// merged as every commit of the SDK.
func CommitForTest(ctx context.Context, c *Client, conv protocol.ConversationID, opts mls.CommitOptions) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commitLocked(ctx, conv, func(*mls.Group) (*commitPlan, error) { return &commitPlan{opts: opts}, nil })
}

// ResyncForTest makes c's device rejoin conv by external commit from the
// server's current GroupInfo, as after a lost commit.
func ResyncForTest(ctx context.Context, c *Client, conv protocol.ConversationID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resyncLocked(ctx, conv)
}

// SetResyncLimitForTest changes Config.ResyncLimit and ResyncWindow of an
// open Client.
func SetResyncLimitForTest(c *Client, limit int, window time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg.ResyncLimit, c.cfg.ResyncWindow = limit, window
}

// EntriesForTest returns the entries of conv after seq, as the server
// hands them to c's device.
func EntriesForTest(ctx context.Context, c *Client, conv protocol.ConversationID, after uint64) ([]protocol.Entry, error) {
	var page protocol.EntriesResponse
	err := c.call(ctx, "GET", fmt.Sprintf("/v1/conversations/%d/entries?after=%d", conv, after), true, nil, &page)
	return page.Entries, err
}
