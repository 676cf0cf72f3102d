package daemonapi

import (
	"context"
	"encoding/json"
	"path/filepath"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/backup"
)

// The backup method (parley backup create): the daemon writes the file
// with its own rights, which are those of the caller (checkPeer), so the
// recovery key or passphrase crosses only the profile's socket.

func init() {
	methods["backup"] = writeBackup
}

// BackupParams ask for a backup at Path (absolute), protected by the
// RecoveryKey (its text) or the Passphrase, exactly one of them; Force
// replaces an existing file.
type BackupParams struct {
	Path        string `json:"path"`
	RecoveryKey string `json:"recovery_key,omitempty"`
	Passphrase  string `json:"passphrase,omitempty"`
	Force       bool   `json:"force,omitempty"`
}

// backupSecret returns the secret the params name.
func (p BackupParams) backupSecret() (backup.Secret, error) {
	switch {
	case p.RecoveryKey != "" && p.Passphrase == "":
		k, err := backup.ParseRecoveryKey(p.RecoveryKey)
		if err != nil {
			return backup.Secret{}, invalidParams("recovery_key: %v", err)
		}
		return backup.WithRecoveryKey(k), nil
	case p.Passphrase != "" && p.RecoveryKey == "":
		return backup.WithPassphrase([]byte(p.Passphrase)), nil
	}
	return backup.Secret{}, invalidParams("backup: want recovery_key or passphrase, one of them")
}

func writeBackup(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	if s.dir == "" {
		return nil, noFiles("backup")
	}
	var p BackupParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(p.Path) {
		return nil, invalidParams("path %q: want an absolute path (the daemon does not share the caller's working directory)", p.Path)
	}
	sec, err := p.backupSecret()
	if err != nil {
		return nil, err
	}
	return s.c.WriteBackupFile(ctx, p.Path, sec, client.BackupOptions{Force: p.Force})
}

// Backup writes a backup of the account to an absolute path
// (Client.WriteBackupFile, with the default Argon2id parameters).
func (c *Client) Backup(ctx context.Context, p BackupParams) (*client.BackupInfo, error) {
	var info client.BackupInfo
	if err := c.Call(ctx, "backup", p, &info); err != nil {
		return nil, err
	}
	return &info, nil
}
