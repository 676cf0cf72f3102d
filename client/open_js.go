//go:build js

package client

import (
	"context"
	"fmt"
)

// openProfile fails: the browser has no SQLite store and no profile
// directory; the web client passes its store in Config.Store.
func openProfile(ctx context.Context, cfg Config) (*Client, error) {
	return nil, fmt.Errorf("client: open profile %s: no SQLite store in the browser: set Config.Store", cfg.ProfileDir)
}
