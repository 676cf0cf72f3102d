package client

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/parley-chat/parley/client/backup"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// Backups (docs/cli.md, "Backup and restore"; the file format is package
// client/backup's). A backup holds what makes the account and what the
// user has read: the identity key, the server, the contacts with their
// verification states, the settings a linked device gets, the list of
// conversations and the history. It never holds MLS group state, ratchet
// secrets, KeyPackage private keys or the device key: Restore makes a
// new device with keys of its own, certified by the identity key, and
// rejoins every conversation by external commit, so nothing of the
// backed-up device is ever used twice.
//
// The content, inside the encrypted stream:
//
//	uint32 n, n bytes  the account (backupAccount, JSON)
//	rest               the history (exportHistory)

// backupContentVersion is the version of the account section.
const backupContentVersion = 1

// maxBackupAccount bounds the account section of a backup.
const maxBackupAccount = 64 << 20

// backupAccount is what a backup holds besides the history.
type backupAccount struct {
	Version        int                `json:"version"`
	Created        time.Time          `json:"created"`
	User           string             `json:"user"`
	Server         string             `json:"server"`
	ServerName     string             `json:"server_name"`
	TLSFingerprint string             `json:"tls_fingerprint,omitempty"`
	IdentityKey    []byte             `json:"identity_key"`
	Device         protocol.DeviceID  `json:"device"`
	Contacts       []store.Contact    `json:"contacts,omitempty"`
	Settings       map[string][]byte  `json:"settings,omitempty"`
	Conversations  []linkConversation `json:"conversations,omitempty"`
}

// check validates an account read from a backup.
func (a *backupAccount) check() error {
	switch {
	case a.Version != backupContentVersion:
		return fmt.Errorf("the backup's content is of version %d; this Parley reads version %d", a.Version, backupContentVersion)
	case !protocol.ValidUserName(a.User):
		return fmt.Errorf("the backup names no valid user (%.64q)", a.User)
	case len(a.IdentityKey) != ed25519.PrivateKeySize:
		return fmt.Errorf("the backup's identity key is %d bytes, want %d", len(a.IdentityKey), ed25519.PrivateKeySize)
	case a.ServerName == "":
		return errors.New("the backup names no server")
	}
	return checkServerURL(a.Server)
}

// BackupOptions configure WriteBackup.
type BackupOptions struct {
	// KDF are the Argon2id parameters of a passphrase backup; zero means
	// backup.DefaultKDFParams (tests lower them).
	KDF store.KDFParams
	// Force replaces an existing file (WriteBackupFile).
	Force bool
}

// BackupInfo says what a backup holds.
type BackupInfo struct {
	User          string    `json:"user"`
	Device        string    `json:"device"`
	Created       time.Time `json:"created"`
	Contacts      int       `json:"contacts"`
	Conversations int       `json:"conversations"`
	Messages      int       `json:"messages"`
	// Path is the file written (WriteBackupFile).
	Path string `json:"path,omitempty"`
}

// WriteBackup writes an encrypted backup of the account to w, protected
// by s (a recovery key, or a passphrase through Argon2id): the identity
// key, the server, the contacts and their verification states, the
// settings, the conversations and their history; never MLS secrets or
// this device's keys. On error, what was written to w must be discarded.
func (c *Client) WriteBackup(ctx context.Context, w io.Writer, s backup.Secret, opts BackupOptions) (*BackupInfo, error) {
	op := "client: write a backup"
	acct, err := c.accountForBackup(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	section, err := json.Marshal(acct)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	if len(section) > maxBackupAccount {
		return nil, fmt.Errorf("%s: the account (contacts and settings) is %d bytes, at most %d", op, len(section), maxBackupAccount)
	}
	bw, err := backup.NewWriter(w, s, opts.KDF)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := bw.Write(binary.BigEndian.AppendUint32(nil, uint32(len(section)))); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := bw.Write(section); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	n, err := c.exportHistory(ctx, bw, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: history: %w", op, err)
	}
	if err := bw.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	c.log.Info("backup written", "conversations", n.Conversations, "messages", n.Messages)
	return &BackupInfo{User: acct.User, Device: string(acct.Device), Created: acct.Created, Contacts: len(acct.Contacts),
		Conversations: n.Conversations, Messages: n.Messages}, nil
}

// WriteBackupFile writes WriteBackup's backup to the file at path,
// atomically (a temporary file in the same directory, synced, then
// renamed) and with mode 0600. It refuses to replace an existing file
// unless opts.Force (an error wrapping fs.ErrExist).
func (c *Client) WriteBackupFile(ctx context.Context, path string, s backup.Secret, opts BackupOptions) (*BackupInfo, error) {
	if _, err := os.Lstat(path); err == nil && !opts.Force {
		return nil, fmt.Errorf("client: write a backup to %s: %w (replace it with force)", path, fs.ErrExist)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".parley-backup-*")
	if err != nil {
		return nil, fmt.Errorf("client: write a backup to %s: %v", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return nil, fmt.Errorf("client: write a backup to %s: %v", path, err)
	}
	info, err := c.WriteBackup(ctx, f, s, opts)
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("client: write a backup to %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("client: write a backup to %s: %v", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("client: write a backup to %s: %v", path, err)
	}
	ok = true
	syncDir(filepath.Dir(path))
	info.Path = path
	return info, nil
}

// syncDir makes a rename in dir durable (best effort: not every system
// syncs directories).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// accountForBackup reads what the account section of a backup holds.
func (c *Client) accountForBackup(ctx context.Context) (*backupAccount, error) {
	c.mu.Lock()
	id, serverURL, serverName := c.id, c.serverURL, c.serverName
	c.mu.Unlock()
	if id == nil {
		return nil, ErrNotRegistered
	}
	// The contacts and carried settings, as a linked device gets them.
	la, err := c.accountForLink(ctx, nil, id.Device, "")
	if err != nil {
		return nil, err
	}
	acct := &backupAccount{
		Version: backupContentVersion, Created: c.cfg.Now().UTC(), User: id.User, Server: serverURL, ServerName: serverName,
		TLSFingerprint: c.cfg.TLSFingerprint, IdentityKey: id.IdentityKey, Device: id.Device,
		Contacts: la.Contacts, Settings: la.Settings,
	}
	err = c.st.View(ctx, func(tx store.Tx) error {
		cvs, err := tx.Conversations()
		if err != nil {
			return err
		}
		for _, cv := range cvs {
			if !cv.Left {
				acct.Conversations = append(acct.Conversations, linkConversation{ID: cv.ID, Name: cv.Name, Topic: cv.Topic, Direct: cv.Direct})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the conversations: %w", err)
	}
	return acct, nil
}

// readBackupAccount opens a backup with s and reads its account section;
// the reader is then at the history.
func readBackupAccount(r io.Reader, s backup.Secret) (*backupAccount, io.Reader, error) {
	br, err := backup.NewReader(r, s)
	if err != nil {
		return nil, nil, err
	}
	var n [4]byte
	if _, err := io.ReadFull(br, n[:]); err != nil {
		return nil, nil, backupReadError(err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxBackupAccount {
		return nil, nil, fmt.Errorf("%w: the account section is %d bytes, at most %d", backup.ErrCorrupt, size, maxBackupAccount)
	}
	section := make([]byte, size)
	if _, err := io.ReadFull(br, section); err != nil {
		return nil, nil, backupReadError(err)
	}
	var acct backupAccount
	if err := json.Unmarshal(section, &acct); err != nil {
		return nil, nil, fmt.Errorf("%w: the account section: %v", backup.ErrCorrupt, err)
	}
	if err := acct.check(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", backup.ErrCorrupt, err)
	}
	return &acct, br, nil
}

// backupReadError is the error of a read that ended early: the content
// ended inside a section (the stream itself authenticated).
func backupReadError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the content ends inside its account section", backup.ErrCorrupt)
	}
	return err
}

// BackupSummary describes a backup without restoring it.
type BackupSummary struct {
	User       string            `json:"user"`
	Address    string            `json:"address"`
	Server     string            `json:"server"`
	ServerName string            `json:"server_name"`
	Device     protocol.DeviceID `json:"device"`
	Created    time.Time         `json:"created"`
	// TLSFingerprint is the server certificate's pinned fingerprint, if
	// the backed-up profile had one.
	TLSFingerprint string `json:"tls_fingerprint,omitempty"`
}

// VerifyBackup reads the whole backup in r with s, checking that it is
// whole and unaltered, and describes it. It changes nothing.
func VerifyBackup(r io.Reader, s backup.Secret) (*BackupSummary, error) {
	acct, rest, err := readBackupAccount(r, s)
	if err != nil {
		return nil, fmt.Errorf("client: read the backup: %w", err)
	}
	if _, err := io.Copy(io.Discard, rest); err != nil {
		return nil, fmt.Errorf("client: read the backup: %w", err)
	}
	return &BackupSummary{User: acct.User, Address: acct.User + "@" + acct.ServerName, Server: acct.Server, ServerName: acct.ServerName,
		Device: acct.Device, Created: acct.Created, TLSFingerprint: acct.TLSFingerprint}, nil
}
