package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/parley-chat/parley/client/backup"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
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

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// ServerURL is the server's URL when it moved since the backup
	// ("": the backup's). It must be the same server (by name).
	ServerURL string
	// DeviceName names the new device in the account's device list.
	DeviceName string
	// RevokeOld revokes the account's other active devices once this one
	// has rejoined the conversations (the lost device among them).
	RevokeOld bool
}

// RestoreResult reports a restore.
type RestoreResult struct {
	Account *Account `json:"account"`
	// BackupDevice is the device that wrote the backup; BackupCreated
	// when.
	BackupDevice  protocol.DeviceID `json:"backup_device"`
	BackupCreated time.Time         `json:"backup_created"`
	// History is what the backup's history restored.
	History HistoryCount `json:"history"`
	// Rejoined counts the conversations this device joined; Failed
	// those it could not join, with why.
	Rejoined int             `json:"rejoined"`
	Failed   []RejoinFailure `json:"failed,omitempty"`
	// OldDevices are the account's other devices still active (to
	// revoke, unless RevokeOld revoked them: Revoked).
	OldDevices []OwnDevice         `json:"old_devices"`
	Revoked    []protocol.DeviceID `json:"revoked,omitempty"`
}

// RejoinFailure names a conversation a restored device could not join.
type RejoinFailure struct {
	Conversation protocol.ConversationID `json:"conversation"`
	Error        string                  `json:"error"`
}

// Restore recovers the account of a backup into this new profile (it
// refuses one bound to an account: ErrAlreadyRegistered). It first reads
// the whole backup with s, so that a wrong key (backup.ErrWrongKey) or a
// damaged or altered file (backup.ErrCorrupt) changes nothing. Then it
// makes a new device — a new id and signature key, certified by the
// backup's identity key — and registers it at the server without a
// session (POST /v1/devices/recover), stores the identity, contacts and
// settings, authenticates, uploads KeyPackages, imports the history, and
// joins every conversation of the backup and every one the server lists
// for the account by external commit with its own fresh keys (a device
// of the account must still be a member: the lost one, until it is
// revoked). It lists the account's other devices for revocation, and
// with opts.RevokeOld revokes them. r is read twice.
func (c *Client) Restore(ctx context.Context, r io.ReadSeeker, s backup.Secret, opts RestoreOptions) (*RestoreResult, error) {
	op := "client: restore a backup"
	if c.id != nil {
		return nil, fmt.Errorf("%s: %w (as %s)", op, ErrAlreadyRegistered, c.id.User)
	}
	if _, err := VerifyBackup(r, s); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("%s: rewind the backup: %v", op, err)
	}
	acct, history, err := readBackupAccount(r, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.registerRestored(ctx, acct, opts); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	res := &RestoreResult{BackupDevice: acct.Device, BackupCreated: acct.Created}
	// The history first, so that it comes before what this device
	// receives once it joined.
	if res.History, err = c.importHistory(ctx, history); err != nil {
		return nil, fmt.Errorf("%s: the account is restored on this device, but its history is not: %w", op, err)
	}
	if err := c.applyLinkedMetadata(ctx, acct.Conversations); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	res.Rejoined, res.Failed = c.rejoinAccount(ctx, acct.Conversations)
	if res.OldDevices, res.Revoked, err = c.oldDevices(ctx, opts.RevokeOld); err != nil {
		return res, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.Sync(ctx); err != nil {
		c.log.Warn("sync after a restore", "err", err)
	}
	if res.Account, err = c.Whoami(); err != nil {
		return res, err
	}
	c.log.Info("account restored", "user", acct.User, "device", res.Account.Device, "rejoined", res.Rejoined, "failed", len(res.Failed))
	return res, nil
}

// registerRestored makes this profile a new device of the backup's
// account: a new device key and id, certified by the identity key,
// registered through POST /v1/devices/recover; then the identity,
// contacts and settings are stored, and the device authenticates and
// uploads KeyPackages.
func (c *Client) registerRestored(ctx context.Context, acct *backupAccount, opts RestoreOptions) error {
	serverURL := acct.Server
	if opts.ServerURL != "" {
		serverURL = opts.ServerURL
	}
	if c.cfg.TLSFingerprint == "" && acct.TLSFingerprint != "" && c.cfg.HTTPClient == nil {
		// The backed-up profile's pin, for a server with a self-signed
		// certificate (a fingerprint given to Open wins).
		c.cfg.TLSFingerprint = acct.TLSFingerprint
		hc, err := c.cfg.httpClient()
		if err != nil {
			return err
		}
		c.http = hc
	}
	serverName, suites, err := c.bindServer(ctx, serverURL)
	if err != nil {
		return err
	}
	if serverName != acct.ServerName {
		return fmt.Errorf("the backup is of an account on server %q, and the server at %s is %q", acct.ServerName, serverURL, serverName)
	}
	identity := ed25519.PrivateKey(acct.IdentityKey)
	signer, err := mls.GenerateSigner(suites[0])
	if err != nil {
		return err
	}
	devRaw := make([]byte, 16)
	rand.Read(devRaw)
	dev := protocol.DeviceID(hex.EncodeToString(devRaw))
	now := c.cfg.Now()
	nd, err := newDevice(identity, signer, serverName, acct.User, dev, now)
	if err != nil {
		return err
	}
	if err := c.call(ctx, "POST", "/v1/devices/recover", false, protocol.RecoverDeviceRequest{User: acct.User, Device: nd}, nil); err != nil {
		return fmt.Errorf("register the new device: %w", err)
	}
	c.log.Info("device registered by recovery", "user", acct.User, "device", dev)
	id := &store.Identity{
		Server: c.serverURL, User: acct.User, Device: dev, IdentityKey: acct.IdentityKey,
		DeviceScheme: protocol.SchemeEd25519, DeviceKey: signer.PrivateKey(), Certificate: nd.Certificate, Created: now,
	}
	settings := map[string][]byte{}
	for k, v := range acct.Settings {
		settings[k] = v
	}
	if name := cleanDeviceName(opts.DeviceName); name != "" {
		settings[deviceNamePrefix+string(dev)] = []byte(name)
	}
	if err := c.bindLinked(ctx, id, serverName, suites, &linkAccount{Contacts: acct.Contacts, Settings: settings}); err != nil {
		return fmt.Errorf("the device is registered, but: %w", err)
	}
	if _, err := c.sessionToken(ctx); err != nil {
		return err
	}
	return c.replenishKeyPackages(ctx)
}

// rejoinAccount joins, by external commit, the conversations of the
// backup and those the server lists for the account that this device is
// not in; it returns how many it joined and those it could not.
func (c *Client) rejoinAccount(ctx context.Context, fromBackup []linkConversation) (int, []RejoinFailure) {
	var ids []protocol.ConversationID
	for _, cv := range fromBackup {
		ids = append(ids, cv.ID)
	}
	var list protocol.ConversationList
	if err := c.call(ctx, "GET", "/v1/conversations?account=1", true, nil, &list); err != nil {
		c.log.Warn("the server did not list the account's conversations; rejoining those of the backup", "err", err)
	}
	for _, cv := range list.Conversations {
		ids = append(ids, cv.ID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	n := 0
	var failed []RejoinFailure
	for _, conv := range ids {
		err := c.joinExternally(ctx, conv)
		switch {
		case err == nil:
			n++
		case errors.Is(err, errAlreadyJoined):
		default:
			c.log.Warn("conversation not rejoined", "conversation", conv, "err", err)
			failed = append(failed, RejoinFailure{Conversation: conv, Error: err.Error()})
		}
	}
	return n, failed
}

// errAlreadyJoined means this device is a member of the conversation
// already (a Welcome got there first).
var errAlreadyJoined = errors.New("already a member")

// joinExternally joins a conversation this device is not a member of by
// an external commit that adds a new leaf for it (a new device of a
// member user: membership rule (b)), and stores the group into the
// conversation's record, which may exist already without a group (an
// imported history).
func (c *Client) joinExternally(ctx context.Context, conv protocol.ConversationID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.groups[conv]; g != nil && g.Active() {
		return errAlreadyJoined
	}
	g, seq, err := c.externalCommit(ctx, conv, nil)
	if err != nil {
		return err
	}
	state, err := g.MarshalBinary()
	if err != nil {
		return err
	}
	users := memberUsers(g)
	var joined []Event
	err = c.st.Update(ctx, func(tx store.Tx) error {
		cv, err := tx.Conversation(conv)
		switch {
		case errors.Is(err, store.ErrNotFound):
			cv = &store.Conversation{ID: conv, Created: c.cfg.Now()}
		case err != nil:
			return err
		case len(cv.GroupID) > 0 && string(cv.GroupID) != string(g.GroupID()):
			return fmt.Errorf("the server's group of conversation %d is another MLS group than its history on this device: refused", conv)
		}
		cv.GroupID, cv.Members, cv.Left, cv.RemovedBy = g.GroupID(), users, false, ""
		if err := tx.PutGroupState(conv, state); err != nil {
			return err
		}
		if err := tx.PutConversation(cv); err != nil {
			return err
		}
		if err := tx.SetCursor(conv, seq); err != nil {
			return err
		}
		joined, err = c.putJoined(tx, conv, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("store joined conversation %d: %w", conv, err)
	}
	c.groups[conv] = g
	c.ev.push(Event{Kind: EventConversationJoined, Conversation: conv})
	for _, ev := range joined {
		c.ev.push(ev)
	}
	return nil
}

// oldDevices returns the account's other active devices; with revoke it
// revokes those that verify (a forged one is not the account's).
func (c *Client) oldDevices(ctx context.Context, revoke bool) ([]OwnDevice, []protocol.DeviceID, error) {
	devs, err := c.Devices(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list the account's devices: %w", err)
	}
	var old []OwnDevice
	var revoked []protocol.DeviceID
	for _, d := range devs {
		if d.This || !d.Revoked.IsZero() || d.Disabled {
			continue
		}
		old = append(old, d)
		if !revoke || d.Forged {
			continue
		}
		if err := c.RevokeDevice(ctx, d.ID); err != nil {
			return old, revoked, err
		}
		revoked = append(revoked, d.ID)
	}
	return old, revoked, nil
}
