package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/parley-chat/parley/client/backup"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// Restoring a backup (backup.go) into a new profile: a new device of the
// account, registered by recovery, that imports the history and then
// joins every conversation by external commit with keys of its own
// (docs/protocol.md, "Backups").

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
	if res.Account, err = c.Whoami(); err != nil {
		return nil, err
	}
	if res.OldDevices, res.Revoked, err = c.oldDevices(ctx, opts.RevokeOld); err != nil {
		return res, fmt.Errorf("%s: the account is restored on this device, but: %w", op, err)
	}
	if err := c.Sync(ctx); err != nil {
		c.log.Warn("sync after a restore", "err", err)
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
	if c.cfg.TLSFingerprint == "" && acct.TLSFingerprint != "" && c.cfg.ownTLS() {
		// The backed-up profile's pin, for a server with a self-signed
		// certificate (a fingerprint given to Open wins).
		c.cfg.TLSFingerprint = acct.TLSFingerprint
		t, err := c.cfg.newTransport()
		if err != nil {
			return err
		}
		c.net = t
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
	known, err := c.storedGroupID(ctx, conv)
	if err != nil {
		return err
	}
	g, seq, err := c.externalCommit(ctx, conv, func(pg *mls.PublicGroup) (*mls.LeafIndex, error) {
		if len(known) > 0 && !bytes.Equal(known, pg.GroupID()) {
			return nil, fmt.Errorf("the server's group of conversation %d is another MLS group than its history on this device: refused", conv)
		}
		return nil, nil // a new leaf
	})
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
