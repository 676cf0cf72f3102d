package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/backup"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// writeBackup writes a backup of d's account protected by sec, and
// returns its path.
func writeBackup(t *testing.T, d *device, sec backup.Secret) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "alice.parley-backup")
	if _, err := d.c.WriteBackupFile(context.Background(), path, sec, client.BackupOptions{KDF: fastKDF}); err != nil {
		t.Fatalf("backup of %s: %v", d.name, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600", fi.Mode().Perm())
	}
	return path
}

// restore opens a new profile named name and restores the backup at
// path into it.
func restore(t *testing.T, s *server, path string, sec backup.Secret, name string, opts client.RestoreOptions) (*device, *client.RestoreResult, error) {
	t.Helper()
	d := openDevice(t, s, t.TempDir(), name)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := d.c.Restore(context.Background(), f, sec, opts)
	return d, res, err
}

// noKeyReuse fails if d reported a message key used twice.
func (d *device) noKeyReuse() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ev := range d.events {
		if errors.Is(ev.Err, client.ErrKeyReused) {
			d.t.Errorf("%s: key reuse reported: %s", d.name, ev.Error)
		}
	}
	if strings.Contains(d.logs.String(), "message key used twice") {
		d.t.Errorf("%s: key reuse logged", d.name)
	}
}

// TestBackupRestore: alice backs up her account, loses her only device
// (the profile is wiped), and restores the backup on a new profile: a
// new device of the same account, certified by the same identity key,
// that rejoins her conversations by external commit, keeps her contacts'
// verification, restores her history, and chats both ways with bob, who
// sees the same safety number and "alice added a device". The old device
// is listed for revocation, and revoking it removes it.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	alice.start()
	bob.start()
	direct, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	group, err := bob.c.NewGroup(ctx, "team", "alice")
	if err != nil {
		t.Fatal(err)
	}
	alice.waitEvent("joined the group", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == group
	})
	bob.waitEvent("joined the 1:1", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == direct
	})
	if _, err := alice.c.Send(ctx, direct, "before the backup", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(direct, "before the backup")
	if _, err := bob.c.Send(ctx, group, "in the team", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	alice.waitTexts(group, "in the team")
	if err := alice.c.MarkVerified(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	snBefore, err := bob.c.SafetyNumber(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	oldAcct, err := alice.c.Whoami()
	if err != nil {
		t.Fatal(err)
	}

	key := backup.NewRecoveryKey()
	path := writeBackup(t, alice, backup.WithRecoveryKey(key))
	// What the backup must not hold: the device key and the group state.
	devKey, state, err := client.SecretsForTest(ctx, alice.c, direct)
	if err != nil {
		t.Fatal(err)
	}
	plain := decryptBackup(t, path, backup.WithRecoveryKey(key))
	if bytes.Contains(plain, devKey) || bytes.Contains(plain, state[len(state)/2:len(state)/2+64]) {
		t.Fatal("the backup holds the device key or MLS group state")
	}

	// The device is lost.
	alice.close()
	if err := os.RemoveAll(alice.dir); err != nil {
		t.Fatal(err)
	}
	typed, err := backup.ParseRecoveryKey(strings.ToLower(key.Text()))
	if err != nil {
		t.Fatal(err)
	}
	restored, res, err := restore(t, s, path, backup.WithRecoveryKey(typed), "alice", client.RestoreOptions{DeviceName: "new laptop"})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	acct := res.Account
	if acct.User != "alice" || acct.Device == oldAcct.Device || !bytes.Equal(acct.IdentityKey, oldAcct.IdentityKey) {
		t.Errorf("restored %+v, backed up %+v", acct, oldAcct)
	}
	if res.Rejoined != 2 || len(res.Failed) != 0 || res.BackupDevice != oldAcct.Device || res.History.Conversations != 2 || res.History.Messages < 2 {
		t.Errorf("restore result %+v", res)
	}
	if len(res.OldDevices) != 1 || res.OldDevices[0].ID != oldAcct.Device || len(res.Revoked) != 0 {
		t.Errorf("old devices %+v, revoked %v; want %s listed, not revoked", res.OldDevices, res.Revoked, oldAcct.Device)
	}
	if sn, err := restored.c.SafetyNumber(ctx, "bob"); err != nil || !sn.Verified {
		t.Errorf("bob's verification after the restore: %+v, %v", sn, err)
	}
	// The history came back, before this device's own join.
	restored.waitTexts(direct, "before the backup")
	restored.waitTexts(group, "in the team")

	restored.start()
	bob.waitSystem(direct, client.SystemDeviceAdded)
	if _, err := bob.c.Send(ctx, direct, "welcome back", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	restored.waitTexts(direct, "before the backup", "welcome back")
	if _, err := restored.c.Send(ctx, group, "restored", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(group, "in the team", "restored")
	snAfter, err := bob.c.SafetyNumber(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if snAfter.Digits != snBefore.Digits {
		t.Errorf("bob's safety number with alice changed: %s, was %s", snAfter.Digits, snBefore.Digits)
	}
	if changed, err := bob.c.IdentityChanged(ctx, "alice"); err != nil || changed {
		t.Errorf("bob sees alice's identity changed: %v %v", changed, err)
	}

	// The lost device is revoked from the restored one.
	if err := restored.c.RevokeOwnDevice(ctx, oldAcct.Device, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lost device to leave", func() bool {
		return slices.Equal(memberDevices(t, bob, direct, "alice"), []protocol.DeviceID{acct.Device})
	})
	bob.noKeyReuse()
	restored.noKeyReuse()
}

// decryptBackup returns the content of a backup file.
func decryptBackup(t *testing.T, path string, sec backup.Secret) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := backup.NewReader(f, sec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRestoreRefused: a wrong recovery key or passphrase, a truncated or
// altered file, and a profile that has an account are refused with a
// clear error, and change nothing: the profile stays unbound (a correct
// restore into it then works) and the server registered no device.
func TestRestoreRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	key := backup.NewRecoveryKey()
	path := writeBackup(t, alice, backup.WithRecoveryKey(key))
	ppath := writeBackup(t, alice, backup.WithPassphrase([]byte("correct horse battery staple")))
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	variant := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tampered := bytes.Clone(file)
	tampered[len(tampered)-40] ^= 0x80
	header := bytes.Clone(file)
	header[10] ^= 0x01 // the salt: another key
	d := openDevice(t, s, t.TempDir(), "restored")
	for _, tc := range []struct {
		name string
		path string
		sec  backup.Secret
		want error
	}{
		{"another recovery key", path, backup.WithRecoveryKey(backup.NewRecoveryKey()), backup.ErrWrongKey},
		{"a passphrase for a recovery key", path, backup.WithPassphrase([]byte("guess")), backup.ErrWrongKey},
		{"a wrong passphrase", ppath, backup.WithPassphrase([]byte("correct horse battery stable")), backup.ErrWrongKey},
		{"truncated", variant("truncated", file[:len(file)-20]), backup.WithRecoveryKey(key), backup.ErrCorrupt},
		{"cut at the header", variant("header-only", file[:len(file)/4]), backup.WithRecoveryKey(key), backup.ErrCorrupt},
		{"a byte changed", variant("tampered", tampered), backup.WithRecoveryKey(key), backup.ErrCorrupt},
		{"the salt changed", variant("salt", header), backup.WithRecoveryKey(key), backup.ErrWrongKey},
		{"not a backup", variant("other", []byte("hello, world")), backup.WithRecoveryKey(key), backup.ErrNotBackup},
	} {
		f, err := os.Open(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.c.Restore(ctx, f, tc.sec, client.RestoreOptions{})
		f.Close()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if _, err := d.c.Whoami(); !errors.Is(err, client.ErrNotRegistered) {
			t.Fatalf("%s: the profile is bound after a refused restore: %v", tc.name, err)
		}
	}
	devs, err := alice.c.Devices(ctx)
	if err != nil || len(devs) != 1 {
		t.Fatalf("alice's devices after refused restores: %+v, %v", devs, err)
	}
	// The same profile restores the good backup, once.
	f, err := os.Open(ppath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := d.c.Restore(ctx, f, backup.WithPassphrase([]byte("correct horse battery staple")), client.RestoreOptions{}); err != nil {
		t.Fatalf("restore after refusals: %v", err)
	}
	f.Seek(0, io.SeekStart)
	if _, err := d.c.Restore(ctx, f, backup.WithPassphrase([]byte("correct horse battery staple")), client.RestoreOptions{}); !errors.Is(err, client.ErrAlreadyRegistered) {
		t.Errorf("restore into a registered profile: %v, want ErrAlreadyRegistered", err)
	}
	if _, err := alice.c.WriteBackupFile(ctx, path, backup.WithRecoveryKey(key), client.BackupOptions{KDF: fastKDF}); err == nil {
		t.Error("a backup replaced an existing file without force")
	}
}

// TestRestoreTwice: the same backup restored on two new profiles makes
// two devices with keys of their own, while the backed-up device keeps
// working: all three and bob chat in one group, and no device reports a
// message key used twice.
func TestRestoreTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	alice.start()
	bob.start()
	conv, err := alice.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("joined", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == conv
	})
	if _, err := alice.c.Send(ctx, conv, "one", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, "one")
	key := backup.NewRecoveryKey()
	path := writeBackup(t, alice, backup.WithRecoveryKey(key))

	first, res1, err := restore(t, s, path, backup.WithRecoveryKey(key), "alice", client.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second, res2, err := restore(t, s, path, backup.WithRecoveryKey(key), "alice", client.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res1.Account.Device == res2.Account.Device || res1.Rejoined != 1 || res2.Rejoined != 1 {
		t.Fatalf("restores: %+v and %+v", res1, res2)
	}
	k1, _, err := client.SecretsForTest(ctx, first.c, conv)
	if err != nil {
		t.Fatal(err)
	}
	k2, _, err := client.SecretsForTest(ctx, second.c, conv)
	if err != nil {
		t.Fatal(err)
	}
	k0, _, err := client.SecretsForTest(ctx, alice.c, conv)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k1, k2) || bytes.Equal(k1, k0) || bytes.Equal(k2, k0) {
		t.Fatal("restored devices share a device key")
	}
	if len(res2.OldDevices) != 2 {
		t.Errorf("the second restore lists %d other devices, want 2 (the original and the first restore)", len(res2.OldDevices))
	}
	first.start()
	second.start()
	want := []string{"one"}
	for _, d := range []*device{alice, first, second, bob} {
		text := "from " + d.name + " " + string(d.deviceID())[:4]
		waitFor(t, d.name+" to see four devices", func() bool { return len(memberDevices(t, d, conv, "alice")) == 3 })
		if _, err := d.c.Send(ctx, conv, text, client.SendOptions{}); err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		want = append(want, text)
		bob.waitTexts(conv, want...)
	}
	for _, d := range []*device{alice, first, second, bob} {
		d.noKeyReuse()
	}
}

// TestRestoreOtherGroup: a conversation whose history names another MLS
// group than the server's is not joined (no commit: its members see no
// new device); the restore reports it and joins the others.
func TestRestoreOtherGroup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	bob.start()
	direct, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	group, err := alice.c.NewGroup(ctx, "team", "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("joined", func(ev client.Event) bool {
		return ev.Kind == client.EventConversationJoined && ev.Conversation == group
	})
	alice.close()
	editStore(t, alice, func(tx store.Tx) error {
		cv, err := tx.Conversation(direct)
		if err != nil {
			return err
		}
		cv.GroupID = []byte("another group")
		return tx.PutConversation(cv)
	})
	alice = openDevice(t, s, alice.dir, "alice")
	key := backup.NewRecoveryKey()
	path := writeBackup(t, alice, backup.WithRecoveryKey(key))
	epoch := bob.epoch(direct)

	_, res, err := restore(t, s, path, backup.WithRecoveryKey(key), "alice", client.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejoined != 1 || len(res.Failed) != 1 || res.Failed[0].Conversation != direct || !strings.Contains(res.Failed[0].Error, "another MLS group") {
		t.Fatalf("restore: rejoined %d, failed %+v", res.Rejoined, res.Failed)
	}
	if err := bob.c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := bob.epoch(direct); got != epoch {
		t.Errorf("the 1:1 moved from epoch %d to %d: something was committed", epoch, got)
	}
	if devs := memberDevices(t, bob, direct, "alice"); len(devs) != 1 {
		t.Errorf("alice's devices in the 1:1: %v", devs)
	}
}
