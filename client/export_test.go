package client

import (
	"context"
	"fmt"

	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// SetFailpoint installs a failpoint for tests; nil removes it.
func SetFailpoint(f func(name string) bool) { failpoint = f }

// EncryptForTest encrypts text as a message of conv in the sender's
// current epoch, advancing its ratchet in memory only: nothing is stored
// or posted (benchmarks use it to make entries for a receiver).
func EncryptForTest(c *Client, conv protocol.ConversationID, text string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := content.New(content.KindText, c.cfg.Now())
	m.Text = text
	data, err := content.Encode(m)
	if err != nil {
		return nil, err
	}
	return c.groups[conv].Encrypt(data, nil)
}

// ApplyEntryForTest applies one log entry as if the server had pushed it.
func ApplyEntryForTest(ctx context.Context, c *Client, e protocol.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applyEntryLocked(ctx, e)
}

// CursorForTest returns the stored cursor of a conversation.
func CursorForTest(ctx context.Context, c *Client, conv protocol.ConversationID) (uint64, error) {
	return c.cursor(ctx, conv)
}

// SendMetadataForTest sends a group metadata message with the given name
// and 1:1 flag, as any member's client could.
func SendMetadataForTest(ctx context.Context, c *Client, conv protocol.ConversationID, name string, direct bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := content.New(content.KindGroupMetadata, c.cfg.Now())
	m.Name, m.Direct = &name, direct
	_, err := c.sendLocked(ctx, conv, m)
	return err
}

// ProposeRemoveForTest posts a Remove proposal of every device of user
// in conv, as a modified client could (the SDK proposes only this user's
// own removal, Leave).
func ProposeRemoveForTest(ctx context.Context, c *Client, conv protocol.ConversationID, user string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[conv]
	for _, leaf := range leavesOf(g, user) {
		msg, err := g.ProposeRemove(leaf)
		if err != nil {
			return err
		}
		err = c.call(ctx, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", conv), true, protocol.HandshakeRequest{Epoch: g.Epoch(), Message: msg}, nil)
		if err != nil {
			c.reloadGroupLocked(ctx, conv)
			return err
		}
	}
	return nil
}

// CreateWithoutPolicyForTest makes the groups created from now on have no
// policy, like those created before policies existed; false restores it.
func CreateWithoutPolicyForTest(on bool) { createWithoutPolicy = on }

// LegacyKeyPackagesForTest makes c behave, for its KeyPackages, as
// clients did before roles: they lack the policy extension in their
// capabilities, and the pool is never replaced for new capabilities.
func LegacyKeyPackagesForTest(c *Client, on bool) { c.legacyKeyPackages.Store(on) }

// SkipPostCheckForTest makes c send posts that its channel's policy
// forbids, as a modified client could; the other members' clients are
// left to refuse them.
func SkipPostCheckForTest(c *Client, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.skipPostCheck = on
}

// StoredMessageForTest returns the stored record of a message, tombstones
// included.
func StoredMessageForTest(ctx context.Context, c *Client, conv protocol.ConversationID, id content.MessageID) (*store.Message, error) {
	var m *store.Message
	err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		m, err = tx.MessageByID(conv, id)
		return err
	})
	return m, err
}

// MaxCommitAdds exports maxCommitAdds.
const MaxCommitAdds = maxCommitAdds
