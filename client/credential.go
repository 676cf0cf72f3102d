package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-chat/parley/client/safety"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// CredentialVersion is the first byte of a Parley credential.
const CredentialVersion = protocol.CredentialVersion

// Credential is what a Parley MLS leaf claims: the account user@server and
// the device, with the device certificate that binds the device's signature
// key to the user's identity key. It is protocol.Credential; see there for
// the encoding and docs/protocol.md, "Credentials".
type Credential = protocol.Credential

// EncodeCredential returns the basic-credential identity of a device of
// the server with the given encoded certificate
// (protocol.EncodeCredential).
func EncodeCredential(server string, certificate []byte) ([]byte, error) {
	return protocol.EncodeCredential(server, certificate)
}

// DecodeCredential decodes a basic-credential identity written by
// EncodeCredential (protocol.DecodeCredential). It rejects other versions,
// truncation and trailing bytes. It does not verify the certificate's
// signature.
func DecodeCredential(identity []byte) (*Credential, error) {
	return protocol.DecodeCredential(identity)
}

// errCredentialReplaced means a leaf's new credential names another user
// or device than the one it replaces.
var errCredentialReplaced = errors.New("a leaf changes its user or device")

// errCertificateRefused means a device certificate is refused whoever
// signed it: it is for another server, of the outdated version 1, or, for
// a device coming into use, expired or dated in the future.
var errCertificateRefused = errors.New("device certificate refused")

// credentialOf decodes the credential of an MLS member.
func credentialOf(cr mls.Credential) (*Credential, error) {
	if cr.Type != mls.CredentialBasic {
		return nil, fmt.Errorf("client: decode credential: type %d is not basic", cr.Type)
	}
	return DecodeCredential(cr.Identity)
}

// serverCredentialOf decodes the credential of an MLS member and checks
// that it and its certificate name the server.
func serverCredentialOf(cr mls.Credential, server string) (*Credential, error) {
	cred, err := credentialOf(cr)
	if err != nil {
		return nil, err
	}
	if err := cred.CheckServer(server); err != nil {
		return nil, err
	}
	return cred, nil
}

// ownCredential returns this device's MLS credential.
func (c *Client) ownCredential() (mls.Credential, error) {
	id, err := EncodeCredential(c.serverName, c.id.Certificate)
	if err != nil {
		return mls.Credential{}, err
	}
	return mls.BasicCredential(id), nil
}

// validateCredential is the mls.Config.ValidateCredential hook: a leaf is
// accepted only if its credential and device certificate name our server
// and the certificate verifies, for the leaf's signature key, under the
// identity key pinned for the user (fetched and pinned on first use). The
// certificate of a leaf that enters the group (see entersGroup) must be
// valid now (protocol.DeviceCertificate.CheckTime). A replaced credential
// must keep its user and device.
func (c *Client) validateCredential(info mls.CredentialInfo) error {
	cred, err := credentialOf(info.Credential)
	if errors.Is(err, protocol.ErrCertificateOutdated) {
		return fmt.Errorf("client: credential: %w: %v", errCertificateRefused, err)
	}
	if err != nil {
		return err
	}
	if err := cred.CheckServer(c.serverName); err != nil {
		return certificateRefused(cred, err)
	}
	if cred.Certificate.Scheme != protocol.SchemeEd25519 {
		return fmt.Errorf("client: credential of %s device %s: signature scheme %#04x not supported", cred.User(), cred.Device(), cred.Certificate.Scheme)
	}
	var prev *Credential
	if info.Previous != nil {
		if prev, err = credentialOf(*info.Previous); err != nil {
			return err
		}
		if prev.User() != cred.User() || prev.Device() != cred.Device() || prev.Server != cred.Server {
			return fmt.Errorf("client: credential of %s device %s replaces that of %s device %s: %w", cred.User(), cred.Device(), prev.User(), prev.Device(), errCredentialReplaced)
		}
	}
	if entersGroup(info.Reason, cred, prev) {
		if err := cred.Certificate.CheckTime(c.cfg.Now()); err != nil {
			return certificateRefused(cred, err)
		}
	}
	ctx, cancel := context.WithTimeout(c.life, 30*time.Second)
	defer cancel()
	key, err := c.identityKey(ctx, cred.User())
	var lost *TrustRollbackError
	if errors.As(err, &lost) {
		// Held back like an identity change (the error matches
		// ErrIdentityChanged), and said so.
		c.ev.push(Event{Kind: EventIdentityChanged, User: lost.User, Err: lost})
	}
	if err != nil {
		return err
	}
	if _, err := protocol.VerifyDeviceCertificate(cred.Raw, key, c.serverName, cred.User(), cred.Device(), info.SignatureKey); err == nil {
		return nil
	}
	// The certificate does not verify under the pinned key: either the
	// user's identity key changed, or the device is forged.
	if cred.User() != c.id.User {
		if u, ferr := c.fetchUser(ctx, cred.User()); ferr == nil && !bytes.Equal(u.IdentityKey, key) {
			if _, err := protocol.VerifyDeviceCertificate(cred.Raw, u.IdentityKey, c.serverName, cred.User(), cred.Device(), info.SignatureKey); err == nil {
				c.identityChanged(ctx, cred.User(), u.IdentityKey)
				return fmt.Errorf("client: credential of %s device %s: %w", cred.User(), cred.Device(), &IdentityChangedError{User: cred.User()})
			}
		}
	}
	c.ev.push(Event{Kind: EventDeviceRejected, User: cred.User(), Device: cred.Device(),
		Err: fmt.Errorf("device %s of %s: %w", cred.Device(), cred.User(), ErrForgedDevice)})
	return fmt.Errorf("client: credential of %s device %s: %w", cred.User(), cred.Device(), ErrForgedDevice)
}

// entersGroup reports whether a leaf's certificate brings its device into
// the group, so that the expiry policy applies: a KeyPackage (claimed, or
// added by a commit), an external join, or an Update or commit path that
// replaces the leaf's certificate with another. A member's unchanged
// certificate, and the leaves of a tree received with a Welcome, are
// members already.
func entersGroup(reason mls.CredentialReason, cred, prev *Credential) bool {
	switch reason {
	case mls.ReasonKeyPackage, mls.ReasonExternalJoin:
		return true
	case mls.ReasonUpdate, mls.ReasonCommit:
		return prev == nil || !bytes.Equal(prev.Raw, cred.Raw)
	}
	return false
}

// certificateRefused returns the error of a leaf whose certificate is
// refused because of err (it is for another server, expired or dated in
// the future); it matches errCertificateRefused.
func certificateRefused(cred *Credential, err error) error {
	return fmt.Errorf("client: credential of %s device %s: %w: %v", cred.User(), cred.Device(), errCertificateRefused, err)
}

// identityKey returns the identity key pinned for user, pinning the
// server's answer on first use. Our own user's key is our own.
func (c *Client) identityKey(ctx context.Context, user string) (ed25519.PublicKey, error) {
	if user == c.id.User {
		return ed25519.PrivateKey(c.id.IdentityKey).Public().(ed25519.PublicKey), nil
	}
	var ct *store.Contact
	err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		ct, err = tx.Contact(user)
		return err
	})
	if err == nil {
		return ct.IdentityKey, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("client: read contact %s: %w", user, trustError(user, err))
	}
	u, err := c.fetchUser(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("client: look up %s: %w", user, err)
	}
	return c.pin(ctx, u)
}

// pin records the identity key of a user seen for the first time, or
// compares it with the pinned one (raising EventIdentityChanged on a
// difference). It returns the key pinned. It never pins the key of a user
// whose pinned key is lost (a *TrustRollbackError): a user the store
// forgot is not one seen for the first time.
func (c *Client) pin(ctx context.Context, u *protocol.UserInfo) (ed25519.PublicKey, error) {
	keys, err := c.pinAll(ctx, []*protocol.UserInfo{u})
	if err != nil {
		return nil, err
	}
	return keys[u.Name], nil
}

// pinAll is pin for several users (other than this one), in one store
// transaction; it returns the keys pinned by user name.
func (c *Client) pinAll(ctx context.Context, us []*protocol.UserInfo) (map[string]ed25519.PublicKey, error) {
	for _, u := range us {
		if len(u.IdentityKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("client: look up %s: identity key of %d bytes", u.Name, len(u.IdentityKey))
		}
	}
	var pinned map[string]ed25519.PublicKey
	var changed []string
	var failed string
	err := c.st.Update(ctx, func(tx store.Tx) error {
		pinned, changed = make(map[string]ed25519.PublicKey, len(us)), nil
		for _, u := range us {
			failed = u.Name
			ct, err := tx.Contact(u.Name)
			if errors.Is(err, store.ErrNotFound) {
				pinned[u.Name] = u.IdentityKey
				if err := tx.PutContact(&store.Contact{User: u.Name, IdentityKey: u.IdentityKey, Pinned: c.cfg.Now()}); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			pinned[u.Name] = ct.IdentityKey
			if !bytes.Equal(ct.IdentityKey, u.IdentityKey) && !bytes.Equal(ct.ChangedKey, u.IdentityKey) {
				ct.ChangedKey = u.IdentityKey
				changed = append(changed, u.Name)
				if err := tx.PutContact(ct); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: pin identity of %s: %w", failed, trustError(failed, err))
	}
	for _, name := range changed {
		c.ev.push(Event{Kind: EventIdentityChanged, User: name, Err: &IdentityChangedError{User: name}})
	}
	return pinned, nil
}

// identityChanged records a new identity key of user and reports it.
func (c *Client) identityChanged(ctx context.Context, user string, key []byte) {
	c.pin(ctx, &protocol.UserInfo{Name: user, IdentityKey: key})
}

// lookupUser fetches a user, pins or checks its identity key, and returns
// the user's active devices whose certificates verify under the pinned
// key. It fails with ErrIdentityChanged if the key differs from the pinned
// one (and was not acknowledged).
func (c *Client) lookupUser(ctx context.Context, name string) (*protocol.UserInfo, []protocol.DeviceInfo, error) {
	u, err := c.fetchUser(ctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("client: look up %s: %w", name, err)
	}
	var key []byte
	if name != c.id.User {
		if key, err = c.pin(ctx, u); err != nil {
			return nil, nil, err
		}
	}
	devs, err := c.checkUser(name, u, key)
	if err != nil {
		return nil, nil, err
	}
	return u, devs, nil
}

// checkUser checks the server's record u of user name against the
// identity key pinned for it (pin; nil for this user, whose key is this
// profile's), and returns the user's active devices whose certificates
// verify under it (lookupUser).
func (c *Client) checkUser(name string, u *protocol.UserInfo, key []byte) ([]protocol.DeviceInfo, error) {
	if u.Name != name {
		return nil, fmt.Errorf("client: look up %s: server answered for %q", name, u.Name)
	}
	if name == c.id.User {
		key = ed25519.PrivateKey(c.id.IdentityKey).Public().(ed25519.PublicKey)
	}
	if !bytes.Equal(key, u.IdentityKey) {
		return nil, fmt.Errorf("client: look up %s: identity key differs from the pinned one: %w", name, &IdentityChangedError{User: name})
	}
	var devs []protocol.DeviceInfo
	for _, d := range u.Devices {
		if d.Revoked != nil || d.Disabled {
			continue
		}
		if err := c.checkListedDevice(name, key, d); err != nil {
			c.ev.push(Event{Kind: EventDeviceRejected, User: name, Device: d.ID, Err: fmt.Errorf("device %s of %s: %w", d.ID, name, err)})
			continue
		}
		devs = append(devs, d)
	}
	return devs, nil
}

// checkListedDevice checks the certificate of a device the server lists
// for user: it must be for our server (else the error matches
// errCertificateRefused, as for the outdated version 1) and verify under
// the identity key (else ErrForgedDevice).
func (c *Client) checkListedDevice(user string, key []byte, d protocol.DeviceInfo) error {
	dc, err := protocol.ParseDeviceCertificate(d.Certificate)
	if errors.Is(err, protocol.ErrCertificateOutdated) {
		return fmt.Errorf("%w: %v", errCertificateRefused, err)
	}
	if err == nil {
		if err := dc.CheckServer(c.serverName); err != nil {
			return fmt.Errorf("%w: %v", errCertificateRefused, err)
		}
	}
	if _, err := protocol.VerifyDeviceCertificate(d.Certificate, key, c.serverName, user, d.ID, d.SignatureKey); err != nil {
		return ErrForgedDevice
	}
	return nil
}

// AcknowledgeIdentity accepts the new identity key of user after an
// EventIdentityChanged, or the key the server presents for a user whose
// pinned key is lost (ErrTrustRollback): it is pinned (unverified) and
// sending to the user is unblocked. Conversations held back by the change
// are processed again.
//
// digits is the safety number the user was shown for the new key
// (SafetyNumberPending; spaces are ignored): the key is accepted only if
// its safety number is still that one, so that a key that changed again
// meanwhile is never accepted unseen. The mismatch error matches
// ErrIdentityChanged. If no change is pending, digits must be the
// safety number of the pinned key, and nothing changes.
func (c *Client) AcknowledgeIdentity(ctx context.Context, user, digits string) error {
	if c.id == nil {
		return ErrNotRegistered
	}
	digits = strings.Join(strings.Fields(digits), "")
	lost, err := c.TrustRolledBack(ctx, user)
	if err == nil && lost {
		err = c.acceptPresentedKey(ctx, user, digits)
	} else if err == nil {
		err = c.acceptChangedKey(ctx, user, digits)
	}
	if err != nil {
		return fmt.Errorf("client: acknowledge identity of %s: %w", user, err)
	}
	c.resumeBlocked(ctx, user)
	return nil
}

// acceptChangedKey pins the new identity key of user pending since an
// identity change, if digits are its safety number (or, with no change
// pending, checks that they are that of the pinned key).
func (c *Client) acceptChangedKey(ctx context.Context, user, digits string) error {
	return c.st.Update(ctx, func(tx store.Tx) error {
		ct, err := tx.Contact(user)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w", ErrUnknownUser)
		}
		if err != nil {
			return err
		}
		key := ct.ChangedKey
		if len(key) == 0 {
			key = ct.IdentityKey
		}
		sn, err := c.safetyNumber(user, key, false)
		if err != nil {
			return err
		}
		if sn.Digits != digits {
			return fmt.Errorf("safety number %q is not the one of the identity key %s presents now (compare the number shown again): %w",
				digits, user, &IdentityChangedError{User: user})
		}
		if len(ct.ChangedKey) == 0 {
			return nil
		}
		ct.IdentityKey, ct.ChangedKey, ct.Verified, ct.Pinned = ct.ChangedKey, nil, false, c.cfg.Now()
		return tx.PutContact(ct)
	})
}

// acceptPresentedKey pins the identity key the server presents now for a
// user whose pinned key is lost, if digits are its safety number.
func (c *Client) acceptPresentedKey(ctx context.Context, user, digits string) error {
	key, err := c.presentedKey(ctx, user)
	if err != nil {
		return err
	}
	sn, err := c.safetyNumber(user, key, false)
	if err != nil {
		return err
	}
	if sn.Digits != digits {
		return fmt.Errorf("safety number %q is not the one of the identity key %s presents now (compare the number shown again): %w",
			digits, user, &TrustRollbackError{User: user})
	}
	return c.st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Contact(user); !errors.Is(err, store.ErrTrustRollback) {
			return fmt.Errorf("the record of %s changed meanwhile (%v): compare again", user, err)
		}
		return tx.PutContact(&store.Contact{User: user, IdentityKey: key, Pinned: c.cfg.Now()})
	})
}

// presentedKey fetches the identity key the server presents for user,
// without pinning it.
func (c *Client) presentedKey(ctx context.Context, user string) (ed25519.PublicKey, error) {
	u, err := c.fetchUser(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", user, err)
	}
	if len(u.IdentityKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("look up %s: identity key of %d bytes", user, len(u.IdentityKey))
	}
	return u.IdentityKey, nil
}

// resumeBlocked processes again the conversations held back by an
// identity change of user, now accepted.
func (c *Client) resumeBlocked(ctx context.Context, user string) {
	c.mu.Lock()
	var resume []protocol.ConversationID
	for conv, u := range c.blocked {
		if u == user {
			delete(c.blocked, conv)
			resume = append(resume, conv)
		}
	}
	for _, conv := range resume {
		if err := c.catchUpLocked(ctx, conv); err != nil {
			c.log.Warn("catch up after identity acknowledgement", "conversation", conv, "err", err)
		}
	}
	c.mu.Unlock()
}

// SafetyNumber is the safety number of this account and another user.
type SafetyNumber struct {
	// User is the other user.
	User string `json:"user"`
	// Digits are the 60 digits; Groups the 12 groups of 5 shown to users.
	Digits string   `json:"digits"`
	Groups []string `json:"groups"`
	// QR is the code rendered for a terminal; QRPayload its bytes.
	QR        string `json:"-"`
	QRPayload []byte `json:"qr_payload"`
	// Verified says the user was marked verified for the pinned key.
	Verified bool `json:"verified"`
	// Number compares a scanned code (Number.CompareScanned).
	Number *safety.Number `json:"-"`
}

// SafetyNumber computes the safety number of this account and user from
// the identity key pinned for user (pinning it on first use).
func (c *Client) SafetyNumber(ctx context.Context, user string) (*SafetyNumber, error) {
	if c.id == nil {
		return nil, ErrNotRegistered
	}
	key, err := c.identityKey(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("client: safety number with %s: %w", user, err)
	}
	sn, err := c.safetyNumber(user, key, false)
	if err != nil {
		return nil, err
	}
	c.st.View(ctx, func(tx store.Tx) error {
		if ct, err := tx.Contact(user); err == nil {
			sn.Verified = ct.Verified
		}
		return nil
	})
	return sn, nil
}

// MarkVerified records that the safety number with user was compared for
// the identity key pinned now.
func (c *Client) MarkVerified(ctx context.Context, user string) error {
	if _, err := c.identityKey(ctx, user); err != nil {
		return fmt.Errorf("client: mark %s verified: %w", user, err)
	}
	err := c.st.Update(ctx, func(tx store.Tx) error {
		ct, err := tx.Contact(user)
		if err != nil {
			return err
		}
		if len(ct.ChangedKey) != 0 {
			return &IdentityChangedError{User: user}
		}
		ct.Verified = true
		return tx.PutContact(ct)
	})
	if err != nil {
		return fmt.Errorf("client: mark %s verified: %w", user, err)
	}
	return nil
}

// changedUsers returns which of users have an unacknowledged identity
// change (not counting users whose pinned key is lost: see trustBlock).
func (c *Client) changedUsers(ctx context.Context, users []string) ([]string, error) {
	var out []string
	err := c.st.View(ctx, func(tx store.Tx) error {
		for _, u := range users {
			ct, err := tx.Contact(u)
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrTrustRollback) {
				continue
			}
			if err != nil {
				return err
			}
			if len(ct.ChangedKey) != 0 {
				out = append(out, u)
			}
		}
		return nil
	})
	return out, err
}

// trustBlock returns what blocks sending to users (this account aside): a
// *TrustRollbackError for the first whose pinned key is lost, else an
// *IdentityChangedError for the first whose key changed, else nil.
func (c *Client) trustBlock(ctx context.Context, users []string) error {
	var lost, changed error
	err := c.st.View(ctx, func(tx store.Tx) error {
		for _, u := range users {
			if u == c.id.User {
				continue
			}
			ct, err := tx.Contact(u)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case errors.Is(err, store.ErrTrustRollback):
				if lost == nil {
					lost = &TrustRollbackError{User: u}
				}
			case err != nil:
				return err
			case len(ct.ChangedKey) != 0 && changed == nil:
				changed = &IdentityChangedError{User: u}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if lost != nil {
		return lost
	}
	return changed
}

// unverifiedUsers returns which of users (this account aside) are not
// verified for the identity key pinned now: trusted on first use only,
// changed since, or lost. known, when not nil, keeps the answers by user
// across calls in one transaction.
func (c *Client) unverifiedUsers(tx store.Tx, users []string, known map[string]bool) []string {
	var out []string
	for _, u := range users {
		if c.id != nil && u == c.id.User {
			continue
		}
		unverified, ok := known[u]
		if !ok {
			ct, err := tx.Contact(u)
			unverified = err != nil || !ct.Verified || len(ct.ChangedKey) != 0
			if known != nil {
				known[u] = unverified
			}
		}
		if unverified {
			out = append(out, u)
		}
	}
	return out
}

// reportTrustAlarm raises the alarm of the store's trust check at Open
// (store.TrustAlarm): an EventIdentityChanged whose Err is a
// *TrustRollbackError for each user whose pinned key is lost, and an
// EventError when the records were rolled back as a whole.
func (c *Client) reportTrustAlarm() {
	a := c.st.TrustAlarm()
	if a == nil {
		return
	}
	c.log.Error("pinned identity keys deleted or rolled back in the store", "users", len(a.Users), "whole_set", a.Lost)
	for _, u := range a.Users {
		c.ev.push(Event{Kind: EventIdentityChanged, User: u, Err: &TrustRollbackError{User: u}})
	}
	if a.Lost {
		c.ev.push(Event{Kind: EventError, Err: fmt.Errorf("client: open: %w: the profile's records of pinned identity keys were put back from an older copy; "+
			"keys pinned since are forgotten, so no key is pinned on first use any more: compare safety numbers with every user before writing to them", ErrTrustRollback)})
	}
}
