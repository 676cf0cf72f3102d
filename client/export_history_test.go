package client

import (
	"context"

	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/protocol"
)

// SendEditForTest sends an edit (or, with text "", a deletion) of the
// message target in conv without checking that target is a message of
// this user, as any member's client could.
func SendEditForTest(ctx context.Context, c *Client, conv protocol.ConversationID, target content.MessageID, text string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	kind := content.KindEdit
	if text == "" {
		kind = content.KindDelete
	}
	m := content.New(kind, c.cfg.Now())
	m.Target, m.Text = target, text
	_, err := c.sendLocked(ctx, conv, m)
	return err
}
