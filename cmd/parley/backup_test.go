package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIBackupViaDaemon: 'parley backup create' on a profile that a
// daemon holds goes through the daemon, which writes the file; the
// recovery key it printed restores the account into a new profile,
// which reads the history and chats with bob.
func TestCLIBackupViaDaemon(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob")
	c.run("alice", "chat", "new", "bob")
	c.run("alice", "send", "bob", "kept in the backup")
	c.startDaemon("alice") // the profile is the daemon's: no other process may open it
	path := filepath.Join(t.TempDir(), "alice.backup")
	var out struct {
		Path        string `json:"path"`
		User        string `json:"user"`
		RecoveryKey string `json:"recovery_key"`
	}
	if err := json.Unmarshal([]byte(c.run("alice", "--json", "backup", "create", path)), &out); err != nil {
		t.Fatal(err)
	}
	if out.Path != path || out.User != "alice" || len(out.RecoveryKey) != 39 {
		t.Fatalf("backup create through the daemon: %+v", out)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v", fi, err)
	}

	c.env = append(c.env, "PARLEY_RECOVERY_KEY="+out.RecoveryKey)
	restored := c.run("alice2", "restore", path)
	if !strings.Contains(restored, "restored alice@") || !strings.Contains(restored, "rejoined 1 conversations") {
		t.Fatalf("restore output:\n%s", restored)
	}
	if h := c.read("alice2", "bob").messages(); len(h) != 1 || h[0].Text != "kept in the backup" {
		t.Errorf("the restored history: %+v", h)
	}
	c.run("bob", "send", "alice", "to both devices")
	if h := c.read("alice2", "bob").messages(); len(h) != 2 || h[1].Text != "to both devices" {
		t.Errorf("the restored device after bob's message: %+v", h)
	}
}
