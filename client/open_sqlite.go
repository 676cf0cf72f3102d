//go:build !js

package client

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/parley-chat/parley/client/sqlitestore"
)

// openProfile opens the SQLite store of the profile in cfg.ProfileDir,
// creating the directory and the store if needed, and locks the profile.
func openProfile(ctx context.Context, cfg Config) (*Client, error) {
	if err := os.MkdirAll(cfg.ProfileDir, 0o700); err != nil {
		return nil, fmt.Errorf("client: open profile %s: %v", cfg.ProfileDir, err)
	}
	lock, err := lockProfile(cfg.ProfileDir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.ProfileDir, StoreFile)
	if err := createPrivate(path); err != nil {
		unlockProfile(lock)
		return nil, fmt.Errorf("client: open profile %s: %v", cfg.ProfileDir, err)
	}
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{
		Passphrase: cfg.Passphrase, KeyFile: cfg.KeyFile, KDF: cfg.KDF,
	})
	if err != nil {
		unlockProfile(lock)
		return nil, fmt.Errorf("client: open profile %s: %w", cfg.ProfileDir, err)
	}
	c, err := openWith(ctx, cfg, st, lock)
	if err != nil {
		st.Close()
		unlockProfile(lock)
		return nil, err
	}
	return c, nil
}
