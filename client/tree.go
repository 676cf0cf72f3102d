package client

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/parley-chat/parley/protocol"
)

// A commit's Welcome does not carry the ratchet tree: with 10,000 members
// on X-Wing the tree is about 26 MB, and the server keeps it node by node.
// A device joining by Welcome or by external commit fetches the tree of
// the epoch it joins from the server (GET /v1/conversations/{id}/tree),
// and the mls package checks it against the tree hash of the GroupInfo
// the device decrypted or verified, so the server cannot substitute
// another tree.

// maxTree bounds a ratchet tree read from the server: far above the tree
// of the largest group the server's defaults allow.
const maxTree = 256 << 20

// fetchTree returns the encoded ratchet tree of a conversation's epoch.
// A server without the tree endpoint answers with the current epoch's
// tree inside its GroupInfo response, used when it is of that epoch.
func (c *Client) fetchTree(ctx context.Context, conv protocol.ConversationID, epoch uint64) ([]byte, error) {
	path := fmt.Sprintf("/v1/conversations/%d/tree?epoch=%d", conv, epoch)
	tree, err := c.getBinary(ctx, path, maxTree)
	if se, ok := isCode(err, protocol.CodeNotFound); ok && strings.HasPrefix(se.Err.Message, "no endpoint") {
		var gi protocol.GroupInfoResponse
		if gerr := c.call(ctx, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo", conv), true, nil, &gi); gerr == nil && gi.Epoch == epoch && len(gi.RatchetTree) > 0 {
			return gi.RatchetTree, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("fetch the ratchet tree of conversation %d at epoch %d: %w", conv, epoch, err)
	}
	return tree, nil
}

// getBinary GETs a binary answer of at most limit bytes, authenticating
// again once when the session expired.
func (c *Client) getBinary(ctx context.Context, path string, limit int64) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.request(ctx, "GET", path, true, nil, "")
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != statusOK {
			err := decodeResponse(resp, nil)
			if _, ok := isCode(err, protocol.CodeUnauthorized); ok && attempt == 0 {
				c.dropToken()
				continue
			}
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w: read answer: %v", path, ErrServerUnreachable, err)
		}
		if int64(len(data)) > limit {
			return nil, fmt.Errorf("GET %s: the answer exceeds %d bytes", path, limit)
		}
		return data, nil
	}
}

// groupInfoAndTree returns the current GroupInfo of a conversation and
// the ratchet tree of its epoch, for an external commit.
func (c *Client) groupInfoAndTree(ctx context.Context, conv protocol.ConversationID) (protocol.GroupInfoResponse, []byte, error) {
	var gi protocol.GroupInfoResponse
	if err := c.call(ctx, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo?tree=0", conv), true, nil, &gi); err != nil {
		return gi, nil, err
	}
	if len(gi.RatchetTree) > 0 {
		return gi, gi.RatchetTree, nil // a server that always sends it
	}
	tree, err := c.fetchTree(ctx, conv, gi.Epoch)
	return gi, tree, err
}
