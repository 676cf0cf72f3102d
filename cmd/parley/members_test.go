package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMembersFile: channel create takes its members from a file (one name
// per line, with or without @, blank and # lines skipped), and add takes
// several users, each with all its devices.
func TestMembersFile(t *testing.T) {
	c := newCLI(t)
	c.register("alice", "bob", "carol", "dave", "erin")
	file := filepath.Join(t.TempDir(), "members.txt")
	if err := os.WriteFile(file, []byte("# the team\nbob\n\n  @carol  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var conv conversationJSON
	if err := json.Unmarshal([]byte(c.run("alice", "--json", "channel", "create", "news", "--members-file", file)), &conv); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(conv.Members, []string{"alice", "bob", "carol"}) {
		t.Errorf("channel created with members %v, want alice, bob and carol", conv.Members)
	}
	out := c.run("alice", "add", "news", "dave", "@erin")
	if !strings.HasPrefix(out, "added 2 users to channel ") || !strings.Contains(out, "alice, bob, carol, dave, erin") {
		t.Errorf("add of two users printed %q", out)
	}
	if _, stderr, code := c.runStatus("alice", "add", "news"); code != exitUsage || !strings.Contains(stderr, "at least one USER") {
		t.Errorf("add without a user: exit %d\n%s", code, stderr)
	}
}
