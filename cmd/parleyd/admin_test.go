package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlite"
)

// seedStore creates a database in dataDir holding the named users, each
// with one device "<name>-dev1", and returns it open.
func seedStore(t *testing.T, dataDir string, names ...string) *sqlite.Store {
	t.Helper()
	ctx := context.Background()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, sqlite.NewConfig(filepath.Join(dataDir, "parley.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, name := range names {
		idPub, idPriv, _ := ed25519.GenerateKey(rand.Reader)
		devPub, _, _ := ed25519.GenerateKey(rand.Reader)
		dev := protocol.DeviceID(name + "-dev1")
		cert, err := protocol.NewDeviceCertificate(idPriv, "localhost", name, dev, protocol.SchemeEd25519, devPub, now)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = st.CreateUser(ctx, store.NewUser{Name: name, IdentityKey: idPub, Created: now,
			Device: store.Device{ID: store.DeviceID(dev), Scheme: uint16(protocol.SchemeEd25519), SignatureKey: devPub, Certificate: cert, Created: now}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// runOK runs a command that must succeed and returns its stdout.
func runOK(t *testing.T, e *env, stdout *syncBuffer, args ...string) string {
	t.Helper()
	before := len(stdout.String())
	if err := run(context.Background(), args, e); err != nil {
		t.Fatalf("parleyd %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String()[before:]
}

// runJSON runs a command with --json and decodes its output into v.
func runJSON(t *testing.T, e *env, stdout *syncBuffer, v any, args ...string) {
	t.Helper()
	out := runOK(t, e, stdout, append(args, "--json")...)
	reflect.ValueOf(v).Elem().SetZero() // omitted false fields must not keep old values
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("parleyd %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestAdminInvites(t *testing.T) {
	dir := t.TempDir()
	st := seedStore(t, dir)
	e, stdout, _ := testEnv(t, map[string]string{"PARLEY_DATA_DIR": dir})

	var inv protocol.InviteInfo
	runJSON(t, e, stdout, &inv, "admin", "invite", "create", "--uses", "3", "--expires", "2d")
	if inv.ID == 0 || inv.UsesLeft != 3 || inv.Code == "" {
		t.Fatalf("invite create: %+v", inv)
	}
	if d := time.Until(inv.Expires); d < 47*time.Hour || d > 49*time.Hour {
		t.Errorf("invite expires in %v, want 2d", d)
	}
	// The stored hash is the SHA-256 of the code, as the delivery
	// service looks codes up.
	invs, err := st.Invites(context.Background())
	if err != nil || len(invs) != 1 {
		t.Fatalf("stored invites: %v, %v", invs, err)
	}
	if h := sha256.Sum256([]byte(inv.Code)); string(invs[0].CodeHash) != string(h[:]) {
		t.Error("stored hash is not SHA-256 of the code")
	}

	// Flags before the subcommand work too; plain output is the code.
	out := runOK(t, e, stdout, "admin", "--data-dir", dir, "invite", "create")
	if code := strings.TrimSpace(out); len(code) != 43 || strings.ContainsAny(code, " \n") {
		t.Errorf("plain invite create printed %q, want the code alone", out)
	}

	var list protocol.InviteList
	runJSON(t, e, stdout, &list, "admin", "invite", "list")
	if len(list.Invites) != 2 || list.Invites[0].ID != inv.ID || list.Invites[0].Code != "" {
		t.Fatalf("invite list: %+v", list)
	}
	if out := runOK(t, e, stdout, "admin", "invite", "list"); !strings.Contains(out, "USES LEFT") || !strings.Contains(out, "active") {
		t.Errorf("invite list table: %q", out)
	}
	runOK(t, e, stdout, "admin", "invite", "delete", "1")
	runJSON(t, e, stdout, &list, "admin", "invite", "list")
	if len(list.Invites) != 1 || list.Invites[0].ID == inv.ID {
		t.Errorf("after delete: %+v", list)
	}
	err = run(context.Background(), []string{"admin", "invite", "delete", "99"}, e)
	if err == nil || !strings.Contains(err.Error(), "99") || exitCode(err, e.stderr) != 1 {
		t.Errorf("delete unknown invite: %v", err)
	}
}

func TestAdminUsersAndDevices(t *testing.T) {
	dir := t.TempDir()
	seedStore(t, dir, "alice", "bob")
	e, stdout, _ := testEnv(t, nil)
	dd := "--data-dir=" + dir

	var users protocol.UserList
	runJSON(t, e, stdout, &users, "admin", "users", "list", dd)
	if len(users.Users) != 2 || users.Users[0].Name != "alice" || users.Users[0].Admin || len(users.Users[0].Devices) != 1 {
		t.Fatalf("users list: %+v", users)
	}

	var u protocol.UserInfo
	runJSON(t, e, stdout, &u, "admin", "users", "promote", "alice", dd)
	if !u.Admin {
		t.Errorf("promote: %+v", u)
	}
	runJSON(t, e, stdout, &u, "admin", "users", "disable", "bob", dd)
	if !u.Disabled || u.Name != "bob" {
		t.Errorf("disable: %+v", u)
	}
	runJSON(t, e, stdout, &users, "admin", "users", "list", dd)
	if !users.Users[0].Admin || !users.Users[1].Disabled {
		t.Errorf("after promote/disable: %+v", users)
	}
	runJSON(t, e, stdout, &u, "admin", "users", "enable", "bob", dd)
	runJSON(t, e, stdout, &u, "admin", "users", "demote", "alice", dd)
	runJSON(t, e, stdout, &users, "admin", "users", "list", dd)
	if users.Users[0].Admin || users.Users[1].Disabled {
		t.Errorf("after demote/enable: %+v", users)
	}
	if out := runOK(t, e, stdout, "admin", "users", "list", dd); !strings.Contains(out, "alice") || !strings.Contains(out, "1/1") {
		t.Errorf("users table: %q", out)
	}

	var devs struct {
		User    string                `json:"user"`
		Devices []protocol.DeviceInfo `json:"devices"`
	}
	runJSON(t, e, stdout, &devs, "admin", "devices", "list", "alice", dd)
	if devs.User != "alice" || len(devs.Devices) != 1 || devs.Devices[0].ID != "alice-dev1" {
		t.Fatalf("devices list: %+v", devs)
	}
	var d protocol.DeviceInfo
	runJSON(t, e, stdout, &d, "admin", "devices", "disable", "alice-dev1", dd)
	if !d.Disabled {
		t.Errorf("device disable: %+v", d)
	}
	if out := runOK(t, e, stdout, "admin", "devices", "list", "alice", dd); !strings.Contains(out, "disabled") {
		t.Errorf("devices table: %q", out)
	}
	runJSON(t, e, stdout, &d, "admin", "devices", "enable", "alice-dev1", dd)
	if d.Disabled {
		t.Errorf("device enable: %+v", d)
	}

	for _, args := range [][]string{
		{"admin", "users", "disable", "carol", dd},
		{"admin", "devices", "disable", "nodev", dd},
		{"admin", "devices", "list", "carol", dd},
	} {
		err := run(context.Background(), args, e)
		if err == nil || exitCode(err, e.stderr) != 1 || !strings.Contains(err.Error(), args[3]) {
			t.Errorf("%q: err %v, want a runtime error naming %q", args, err, args[3])
		}
	}

	var s statsJSON
	runJSON(t, e, stdout, &s, "admin", "stats", dd)
	if s.Users != 2 || s.Devices != 2 || s.DatabaseBytes == 0 || !strings.HasPrefix(s.Store, "sqlite:") {
		t.Errorf("stats: %+v", s)
	}
	if out := runOK(t, e, stdout, "admin", "stats", dd); !strings.Contains(out, "users") {
		t.Errorf("stats table: %q", out)
	}
}

// TestBackup checks that a backup taken while the store is open (and
// being written) opens and holds the data.
func TestBackup(t *testing.T) {
	dir := t.TempDir()
	st := seedStore(t, dir, "alice")
	e, stdout, _ := testEnv(t, map[string]string{"PARLEY_DATA_DIR": dir})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A concurrent writer: invites keep being created during the backup.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			h := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
			st.CreateInvite(ctx, store.Invite{CodeHash: h[:], UsesLeft: 1, Expires: time.Now().Add(time.Hour), Created: time.Now()})
			time.Sleep(time.Millisecond)
		}
	}()
	path := filepath.Join(t.TempDir(), "copy.db")
	out := runOK(t, e, stdout, "backup", path)
	cancel()
	<-done
	if !strings.Contains(out, path) {
		t.Errorf("backup output %q does not name %s", out, path)
	}
	cp, err := sqlite.Open(context.Background(), sqlite.NewConfig(path))
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	u, err := cp.UserByName(context.Background(), "alice")
	if err != nil || u.Name != "alice" {
		t.Fatalf("backup lacks alice: %v", err)
	}
	if err := cp.CheckInvariants(context.Background()); err != nil {
		t.Errorf("backup invariants: %v", err)
	}
	// The copy works as a data directory for the admin commands.
	dir2 := t.TempDir()
	if err := os.Rename(path, filepath.Join(dir2, "parley.db")); err != nil {
		t.Fatal(err)
	}
	var users protocol.UserList
	runJSON(t, e, stdout, &users, "admin", "users", "list", "--data-dir", dir2)
	if len(users.Users) != 1 {
		t.Errorf("users in restored copy: %+v", users)
	}
	// An existing target is refused.
	if err := run(context.Background(), []string{"backup", filepath.Join(dir2, "parley.db")}, e); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("backup over an existing file: %v", err)
	}
}

// Admin commands refuse a missing or extra positional argument as a
// usage error (exit 2) that names the command and what it wants, before
// they open the store.
func TestAdminArguments(t *testing.T) {
	dir := t.TempDir()
	seedStore(t, dir, "alice")
	e, _, _ := testEnv(t, map[string]string{"PARLEY_DATA_DIR": dir})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"admin", "invite", "list", "x"}, `invite list: unexpected argument "x"`},
		{[]string{"admin", "users", "list", "x"}, `unexpected argument "x"`},
		{[]string{"admin", "stats", "x"}, `unexpected argument "x"`},
		{[]string{"admin", "invite", "delete"}, "want exactly one argument, the invite ID"},
		{[]string{"admin", "invite", "delete", "1", "2"}, "want exactly one argument, the invite ID"},
		{[]string{"admin", "users", "disable"}, "want exactly one argument, the user NAME"},
		{[]string{"admin", "devices", "list"}, "want exactly one argument, the user NAME"},
		{[]string{"admin", "devices", "disable"}, "want exactly one argument, the device ID"},
		{[]string{"backup"}, "backup: want exactly one argument, the PATH of the new copy"},
	} {
		err := run(context.Background(), tc.args, e)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err, e.stderr) != 2 {
			t.Errorf("parleyd %s: %v (exit %d), want a usage error containing %q", strings.Join(tc.args, " "), err, exitCode(err, e.stderr), tc.want)
		}
	}
}
