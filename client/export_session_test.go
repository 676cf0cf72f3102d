package client

import (
	"context"
	"encoding/json"
	"time"

	"github.com/parley-chat/parley/client/store"
)

// StoreSessionForTest replaces the session kept in the store (for a
// session the server does not know), as a later Open finds it.
func StoreSessionForTest(ctx context.Context, c *Client, token string, expires time.Time) error {
	b, _ := json.Marshal(storedSession{Server: c.serverURL, Token: token, Expires: expires})
	return c.st.Update(ctx, func(tx store.Tx) error { return tx.SetSetting(settingSession, b) })
}
