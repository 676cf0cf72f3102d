package daemonapi_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/backup"
	"github.com/parley-chat/parley/client/daemonapi"
)

// conformBackup: backup writes a backup file that the recovery key
// opens; a relative path, no secret or both, and an existing file
// without force are refused.
func conformBackup(t *testing.T, ctx context.Context, call caller, dc *daemonapi.Client) {
	t.Helper()
	key := backup.NewRecoveryKey()
	path := filepath.Join(t.TempDir(), "alice.backup")
	var info client.BackupInfo
	if err := call("backup", daemonapi.BackupParams{Path: path, RecoveryKey: key.Text()}, &info); err != nil || info.User != "alice" || info.Path != path || info.Conversations == 0 {
		t.Fatalf("backup = %+v, %v", info, err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if sum, err := client.VerifyBackup(f, backup.WithRecoveryKey(key)); err != nil || sum.User != "alice" {
		t.Fatalf("the daemon's backup: %+v, %v", sum, err)
	}
	for name, p := range map[string]daemonapi.BackupParams{
		"relative path": {Path: "alice.backup", RecoveryKey: key.Text()},
		"no secret":     {Path: path + ".2"},
		"both secrets":  {Path: path + ".2", RecoveryKey: key.Text(), Passphrase: "pass"},
		"typo in key":   {Path: path + ".2", RecoveryKey: key.Text()[:38] + "-0000"},
	} {
		var rpcErr *daemonapi.Error
		if err := call("backup", p, nil); !errors.As(err, &rpcErr) || rpcErr.Code != daemonapi.CodeInvalidParams {
			t.Errorf("backup with %s: %v, want invalid params", name, err)
		}
	}
	if _, err := dc.Backup(ctx, daemonapi.BackupParams{Path: path, RecoveryKey: key.Text()}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Backup over an existing file: %v, want file_exists", err)
	}
	if _, err := dc.Backup(ctx, daemonapi.BackupParams{Path: path, RecoveryKey: key.Text(), Force: true}); err != nil {
		t.Errorf("Backup with force: %v", err)
	}
}
