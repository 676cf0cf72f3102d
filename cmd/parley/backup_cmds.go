package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/backup"
	"github.com/parley-chat/parley/client/daemonapi"
	"github.com/parley-chat/parley/protocol"
)

// Backup and restore (docs/cli.md, "Backup and restore"). The secrets
// come from the environment (PARLEY_RECOVERY_KEY,
// PARLEY_BACKUP_PASSPHRASE), else the terminal, else the first line of
// standard input; never from the command line, where other users and
// the shell's history would see them.

// minBackupPassphrase is the shortest passphrase a backup accepts: the
// file may end up where anyone can try passphrases offline.
const minBackupPassphrase = 12

// cmdBackup writes (create) or checks (verify) a backup file.
func cmdBackup(ctx context.Context, e *env, args []string) error {
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "create":
		return backupCreate(ctx, e, args)
	case "verify":
		return backupVerify(ctx, e, args)
	}
	return usagef("backup: unknown subcommand %q (want create or verify)", printable(sub))
}

// backupJSON is the output of backup create --json.
type backupJSON struct {
	*client.BackupInfo
	Protection  string `json:"protection"`
	RecoveryKey string `json:"recovery_key,omitempty"`
}

func backupCreate(ctx context.Context, e *env, args []string) error {
	fs := e.flags("backup create", "FILE [--passphrase] [--force]")
	usePass := fs.Bool("passphrase", false, "protect the backup with a passphrase (PARLEY_BACKUP_PASSPHRASE, else asked on the terminal) instead of a generated recovery key")
	force := fs.Bool("force", false, "replace FILE if it exists")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	path, err := filepath.Abs(pos[0])
	if err != nil {
		return err
	}
	var key backup.RecoveryKey
	var pass []byte
	if *usePass {
		if pass, err = e.newBackupPassphrase(); err != nil {
			return err
		}
	} else {
		key = backup.NewRecoveryKey()
	}
	s, err := e.openSyncedOrOffline(ctx, openOptions{routed: true})
	if err != nil {
		return err
	}
	defer s.close()
	var info *client.BackupInfo
	switch {
	case s.daemon != nil:
		p := daemonapi.BackupParams{Path: path, Force: *force, Passphrase: string(pass)}
		if !*usePass {
			p.RecoveryKey = key.Text()
		}
		info, err = s.daemon.Backup(ctx, p)
	case *usePass:
		info, err = s.c.WriteBackupFile(ctx, path, backup.WithPassphrase(pass), client.BackupOptions{Force: *force})
	default:
		info, err = s.c.WriteBackupFile(ctx, path, backup.WithRecoveryKey(key), client.BackupOptions{Force: *force})
	}
	if errors.Is(err, os.ErrExist) {
		return withHint(err, "nothing was overwritten: pass --force to replace the file, or choose another FILE")
	}
	if err != nil {
		return err
	}
	return printBackup(e, info, key, *usePass)
}

// printBackup prints what backup create wrote and, once, the recovery
// key.
func printBackup(e *env, info *client.BackupInfo, key backup.RecoveryKey, passphrase bool) error {
	if e.json {
		out := backupJSON{BackupInfo: info, Protection: "passphrase"}
		if !passphrase {
			out.Protection, out.RecoveryKey = "recovery_key", key.Text()
		}
		return writeJSON(e.stdout, out)
	}
	fmt.Fprintf(e.stdout, "backup of %s written to %s (%d conversations, %d messages, %d contacts)\n",
		info.User, info.Path, info.Conversations, info.Messages, info.Contacts)
	if passphrase {
		fmt.Fprintf(e.stdout, "it opens with your passphrase: without it, nobody (you included) can restore it\n")
	} else {
		fmt.Fprintf(e.stdout, "\nrecovery key (shown only now: write it down, and keep it apart from the backup file):\n\n    %s\n\n", key.Text())
		fmt.Fprintf(e.stdout, "without it, nobody (you included) can restore the backup; with it and the file, anyone can take over your account\n")
	}
	fmt.Fprintf(e.stdout, "restore with: parley --profile NEW restore %s\n", info.Path)
	return nil
}

// newBackupPassphrase reads the passphrase of a new backup:
// PARLEY_BACKUP_PASSPHRASE, else twice on the terminal.
func (e *env) newBackupPassphrase() ([]byte, error) {
	p := []byte(e.getenv("PARLEY_BACKUP_PASSPHRASE"))
	if len(p) == 0 {
		if e.readPassword == nil {
			return nil, withHint(errors.New("backup create --passphrase: no passphrase"),
				"set PARLEY_BACKUP_PASSPHRASE, or run parley on a terminal to be asked for it")
		}
		var err error
		if p, err = e.readPassword("passphrase of the backup: "); err != nil {
			return nil, fmt.Errorf("read the passphrase from the terminal: %v", err)
		}
		again, err := e.readPassword("the same passphrase again: ")
		if err != nil {
			return nil, fmt.Errorf("read the passphrase from the terminal: %v", err)
		}
		if !bytes.Equal(p, again) {
			return nil, usagef("backup create: the two passphrases differ")
		}
	}
	if n := utf8.RuneCount(p); n < minBackupPassphrase {
		return nil, usagef("backup create: the passphrase has %d characters; a backup's needs at least %d (or use the generated recovery key: leave out --passphrase)", n, minBackupPassphrase)
	}
	return p, nil
}

// openBackup opens the backup file at path and reads the secret that
// opens it (the file's header says which): PARLEY_RECOVERY_KEY or
// PARLEY_BACKUP_PASSPHRASE, else asked on the terminal, else the first
// line of standard input. The file is at its start.
func (e *env) openBackup(path string) (*os.File, backup.Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, backup.Secret{}, err
	}
	sec, err := e.backupSecret(f, path)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, backup.Secret{}, err
	}
	return f, sec, nil
}

// backupSecret reads the header of the backup f and the secret that
// opens it.
func (e *env) backupSecret(f io.Reader, path string) (backup.Secret, error) {
	h, err := backup.ReadHeader(f)
	if err != nil {
		return backup.Secret{}, fmt.Errorf("backup %s: %w", path, err)
	}
	envVar, prompt := "PARLEY_RECOVERY_KEY", "recovery key of the backup: "
	if h.Protection == backup.ProtectedByPassphrase {
		envVar, prompt = "PARLEY_BACKUP_PASSPHRASE", "passphrase of the backup: "
	}
	text := e.getenv(envVar)
	switch {
	case text != "":
	case e.readPassword != nil:
		b, err := e.readPassword(prompt)
		if err != nil {
			return backup.Secret{}, fmt.Errorf("read the %s from the terminal: %v", h.Protection, err)
		}
		text = string(b)
	case e.stdin != nil:
		line, _ := bufio.NewReader(e.stdin).ReadString('\n')
		text = strings.TrimRight(line, "\r\n")
	}
	if text == "" {
		return backup.Secret{}, withHint(fmt.Errorf("backup %s is protected by a %s, and none was given", path, h.Protection),
			"set %s, type it on a terminal, or give it on the first line of standard input", envVar)
	}
	if h.Protection == backup.ProtectedByPassphrase {
		return backup.WithPassphrase([]byte(text)), nil
	}
	k, err := backup.ParseRecoveryKey(text)
	if err != nil {
		return backup.Secret{}, err
	}
	return backup.WithRecoveryKey(k), nil
}

func backupVerify(ctx context.Context, e *env, args []string) error {
	fs := e.flags("backup verify", "FILE")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	f, sec, err := e.openBackup(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	sum, err := client.VerifyBackup(f, sec)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, sum)
	}
	fmt.Fprintf(e.stdout, "backup of %s (device %s, %s), on %s: whole, and the key opens it\n",
		sum.Address, sum.Device, sum.Created.Local().Format(time.DateTime), sum.Server)
	return nil
}

// restoreJSON is the output of restore --json.
type restoreJSON struct {
	Account       *accountJSON           `json:"account"`
	BackupDevice  protocol.DeviceID      `json:"backup_device"`
	BackupCreated time.Time              `json:"backup_created"`
	History       client.HistoryCount    `json:"history"`
	Rejoined      int                    `json:"rejoined"`
	Failed        []client.RejoinFailure `json:"failed"`
	OldDevices    []client.OwnDevice     `json:"old_devices"`
	Revoked       []protocol.DeviceID    `json:"revoked"`
}

// cmdRestore recovers the account of a backup into a new profile.
func cmdRestore(ctx context.Context, e *env, args []string) error {
	fs := e.flags("restore", "FILE [--server URL] [--fingerprint SHA256] [--name NAME] [--revoke-old]")
	server := fs.String("server", "", "the server's `URL` if it moved since the backup (default: the backup's)")
	fingerprint := fs.String("fingerprint", "", "pin the server's self-signed certificate by its `SHA256` fingerprint (default: the backup's)")
	name := fs.String("name", "", "`NAME` of this device in the account's device list (default: the host name)")
	revokeOld := fs.Bool("revoke-old", false, "revoke the account's other devices once this one has rejoined the conversations")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *name == "" {
		*name, _ = os.Hostname()
	}
	f, sec, err := e.openBackup(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	s, dir, release, err := e.openUnbound(ctx, *fingerprint)
	if err != nil {
		return err
	}
	res, err := s.c.Restore(ctx, f, sec, client.RestoreOptions{ServerURL: *server, DeviceName: *name, RevokeOld: *revokeOld})
	release()
	if errors.Is(err, client.ErrAlreadyRegistered) {
		return withHint(err, "parley restore makes a new profile: choose another --profile or --dir")
	}
	if err != nil && (res == nil || res.Account == nil) {
		return err
	}
	if perr := printRestore(e, res, dir); perr != nil {
		return perr
	}
	return err
}

// printRestore prints what restore did and what is left to do.
func printRestore(e *env, res *client.RestoreResult, dir string) error {
	if e.json {
		return writeJSON(e.stdout, restoreJSON{Account: toAccountJSON(res.Account, dir), BackupDevice: res.BackupDevice, BackupCreated: res.BackupCreated,
			History: res.History, Rejoined: res.Rejoined, Failed: orEmptySlice(res.Failed), OldDevices: orEmptySlice(res.OldDevices), Revoked: orEmptySlice(res.Revoked)})
	}
	a := res.Account
	fmt.Fprintf(e.stdout, "restored %s as a new device (%s) on %s\nprofile: %s\n", a.Address, a.Device, a.Server, dir)
	fmt.Fprintf(e.stdout, "history: %d conversations, %d messages (backup of %s by device %s)\n",
		res.History.Conversations, res.History.Messages, res.BackupCreated.Local().Format(time.DateTime), res.BackupDevice)
	fmt.Fprintf(e.stdout, "rejoined %d conversations with new keys\n", res.Rejoined)
	for _, f := range res.Failed {
		fmt.Fprintf(e.stderr, "parley: not rejoined: conversation %d: %s\n", f.Conversation, f.Error)
	}
	if len(res.Failed) > 0 {
		fmt.Fprintf(e.stderr, "parley: another device of your account can add this one where it is missing: parley devices sync (on that device)\n")
	}
	for _, id := range res.Revoked {
		fmt.Fprintf(e.stdout, "revoked device %s\n", id)
	}
	var left []client.OwnDevice
	for _, d := range res.OldDevices {
		if !slices.Contains(res.Revoked, d.ID) {
			left = append(left, d)
		}
	}
	if len(left) == 0 {
		return nil
	}
	fmt.Fprintf(e.stdout, "\nyour account's other devices:\n")
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCREATED\tLAST SEEN")
	for _, d := range left {
		seen := "-"
		if !d.LastSeen.IsZero() {
			seen = d.LastSeen.Local().Format(time.DateTime)
		}
		name := printable(d.Name)
		if d.ID == res.BackupDevice {
			name = strings.TrimSpace(name + " (made the backup)")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.ID, name, d.Created.Local().Format(time.DateTime), seen)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "revoke the lost device from here (it still reads your conversations until then): parley devices revoke ID\n")
	return nil
}

// orEmptySlice returns s, or an empty slice for nil (JSON [] rather than
// null).
func orEmptySlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
