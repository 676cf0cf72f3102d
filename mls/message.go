package mls

import (
	"crypto/rand"

	"github.com/parley-chat/parley/mls/internal/wire"
)

func randRead(b []byte) (int, error) { return rand.Read(b) }

// Encrypt protects an application message as a PrivateMessage of the
// current epoch (RFC 9420 §15) and returns the encoded MLSMessage. data and
// authenticatedData are not retained; authenticatedData travels in the
// clear, authenticated. The key used is deleted (§9.2).
func (g *Group) Encrypt(data, authenticatedData []byte) ([]byte, error) {
	const op = "encrypt"
	if err := g.checkActive(op); err != nil {
		return nil, err
	}
	content := &wire.FramedContent{
		GroupID:           g.c.gc.GroupID,
		Epoch:             g.c.gc.Epoch,
		Sender:            g.ownSender(),
		AuthenticatedData: orEmpty(authenticatedData),
		ContentType:       wire.ContentTypeApplication,
		ApplicationData:   orEmpty(data),
	}
	msg, _, err := g.protect(content, nil)
	if err != nil {
		return nil, opError(op, err)
	}
	return msg, nil
}
