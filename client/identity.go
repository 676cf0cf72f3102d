package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/client/safety"
	"github.com/parley-chat/parley/client/store"
)

// IdentityChangedError names the user whose identity key changed. It
// matches ErrIdentityChanged with errors.Is; get the user with errors.As.
type IdentityChangedError struct {
	// User is the user whose new identity key awaits acknowledgement.
	User string
}

// Error says whose identity changed.
func (e *IdentityChangedError) Error() string {
	return fmt.Sprintf("identity of %s changed", e.User)
}

// Is reports whether target is ErrIdentityChanged.
func (e *IdentityChangedError) Is(target error) bool { return target == ErrIdentityChanged }

// TrustRollbackError names a user whose pinned identity key is lost (see
// ErrTrustRollback). It matches ErrTrustRollback and, through the
// *IdentityChangedError it wraps, ErrIdentityChanged: until the user
// compares the safety number of the key the server presents now
// (SafetyNumberPending) and accepts it (AcknowledgeIdentity), the user is
// treated as after an identity change.
type TrustRollbackError struct {
	// User is the user whose pinned key is lost.
	User string
}

// Error says whose key is lost and why.
func (e *TrustRollbackError) Error() string {
	return fmt.Sprintf("the identity key pinned for %s is lost: this profile's record of it was deleted or replaced by an older copy", e.User)
}

// Is reports whether target is ErrTrustRollback.
func (e *TrustRollbackError) Is(target error) bool { return target == ErrTrustRollback }

// Unwrap returns the identity change the loss amounts to.
func (e *TrustRollbackError) Unwrap() error { return &IdentityChangedError{User: e.User} }

// trustError returns a *TrustRollbackError for user if err is the
// store's store.ErrTrustRollback, else err.
func trustError(user string, err error) error {
	if errors.Is(err, store.ErrTrustRollback) {
		return &TrustRollbackError{User: user}
	}
	return err
}

// TrustRolledBack reports whether the identity key pinned for user is
// lost (ErrTrustRollback): then the key the server presents must be
// compared (SafetyNumberPending) and accepted (AcknowledgeIdentity).
func (c *Client) TrustRolledBack(ctx context.Context, user string) (bool, error) {
	var lost bool
	err := c.st.View(ctx, func(tx store.Tx) error {
		_, err := tx.Contact(user)
		lost = errors.Is(err, store.ErrTrustRollback)
		if lost || errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("client: trust of %s: %w", user, err)
	}
	return lost, nil
}

// changedUserOf returns the user of an *IdentityChangedError in err's
// chain, or "".
func changedUserOf(err error) string {
	var ic *IdentityChangedError
	if errors.As(err, &ic) {
		return ic.User
	}
	return ""
}

// IdentityChanged reports whether the server presented a new identity key
// for user that was not acknowledged yet (see AcknowledgeIdentity).
func (c *Client) IdentityChanged(ctx context.Context, user string) (bool, error) {
	changed, err := c.changedUsers(ctx, []string{user})
	if err != nil {
		return false, fmt.Errorf("client: identity change of %s: %w", user, err)
	}
	return len(changed) > 0, nil
}

// SafetyNumberPending computes the safety number of this account and the
// new identity key that user presents but that was not acknowledged yet,
// so that users can compare it before accepting the key with
// AcknowledgeIdentity; when the key pinned for user is lost
// (TrustRolledBack), that of the key the server presents now. It fails
// if neither is the case.
func (c *Client) SafetyNumberPending(ctx context.Context, user string) (*SafetyNumber, error) {
	if c.id == nil {
		return nil, ErrNotRegistered
	}
	var key []byte
	var lost bool
	err := c.st.View(ctx, func(tx store.Tx) error {
		ct, err := tx.Contact(user)
		if errors.Is(err, store.ErrNotFound) {
			return ErrUnknownUser
		}
		if lost = errors.Is(err, store.ErrTrustRollback); lost {
			return nil
		}
		if err != nil {
			return err
		}
		key = ct.ChangedKey
		return nil
	})
	if err == nil && lost {
		key, err = c.presentedKey(ctx, user)
	}
	if err != nil {
		return nil, fmt.Errorf("client: pending safety number with %s: %w", user, err)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("client: pending safety number with %s: no identity change is pending", user)
	}
	return c.safetyNumber(user, key, false)
}

// safetyNumber computes the safety number of this account and user's
// identity key.
func (c *Client) safetyNumber(user string, key ed25519.PublicKey, verified bool) (*SafetyNumber, error) {
	own := ed25519.PrivateKey(c.id.IdentityKey).Public().(ed25519.PublicKey)
	n, err := safety.New(safety.Identity{Name: c.id.User + "@" + c.serverName, Key: own},
		safety.Identity{Name: user + "@" + c.serverName, Key: key})
	if err != nil {
		return nil, fmt.Errorf("client: safety number with %s: %v", user, err)
	}
	qr, err := n.QR(false)
	if err != nil {
		return nil, fmt.Errorf("client: safety number with %s: %v", user, err)
	}
	return &SafetyNumber{User: user, Digits: n.Digits(), Groups: n.Groups(), QR: qr, QRPayload: n.QRPayload(), Number: n, Verified: verified}, nil
}
