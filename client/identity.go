package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/client/safety"
	"github.com/parley-chat/parley/client/sqlitestore"
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
// AcknowledgeIdentity. It fails if no change is pending.
func (c *Client) SafetyNumberPending(ctx context.Context, user string) (*SafetyNumber, error) {
	if c.id == nil {
		return nil, ErrNotRegistered
	}
	var key []byte
	err := c.st.View(ctx, func(tx *sqlitestore.Tx) error {
		ct, err := tx.Contact(user)
		if errors.Is(err, sqlitestore.ErrNotFound) {
			return ErrUnknownUser
		}
		if err != nil {
			return err
		}
		key = ct.ChangedKey
		return nil
	})
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
