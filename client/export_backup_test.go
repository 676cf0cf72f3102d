package client

import (
	"context"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// SecretsForTest returns what a backup must never hold of c's device:
// its device key and the stored state of conv's group.
func SecretsForTest(ctx context.Context, c *Client, conv protocol.ConversationID) (deviceKey, groupState []byte, err error) {
	c.mu.Lock()
	deviceKey = append([]byte(nil), c.id.DeviceKey...)
	c.mu.Unlock()
	err = c.st.View(ctx, func(tx store.Tx) error {
		groupState, err = tx.GroupState(conv)
		return err
	})
	return deviceKey, groupState, err
}
