package client

import (
	"context"

	"github.com/parley-chat/parley/client/content"
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
