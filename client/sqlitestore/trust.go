package sqlitestore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/parley-chat/parley/client/store"
)

// Trust rows and their root
//
// The contacts table holds the identity keys pinned on first use. Sealing
// each row keeps an attacker without the store key from forging a row or
// moving one to another user, but not from deleting a row or putting back
// an older copy of it (from a backup of the file): either would make the
// client pin, silently, whatever key the server presents next, or forget
// that a key was verified. The trust root closes that gap. It is one
// sealed value (the trust table's "root" row) that lists every contact
// with the SHA-256 of its sealed row, and carries a version that every
// write of a contact increments; the version is also kept, sealed, in the
// header ("trust_version"), so that rolling back the contacts and the
// root together from an older copy still shows. Open checks the rows
// against the root and the root against the header (see checkTrust).
//
// What it cannot see: a rollback of the whole file, or of the contacts,
// trust and header tables together, is consistent in itself; only state
// kept outside the file could tell it.

// it was deleted, replaced by another copy, or the trust rows were rolled
// back as a whole (see [TrustAlarm]). [Tx.Contact] returns it, instead of
// the row or ErrNotFound, until the contact is written again with
// [Tx.PutContact]: the caller must not pin a key on first use for the
// user without the user's explicit consent.

// trustRoot is the sealed value that authenticates the set of trust rows.
type trustRoot struct {
	// Version counts the writes of contacts; the header keeps a copy.
	Version uint64 `json:"version"`
	// Rows maps each contact's user name to the SHA-256 of its sealed row.
	Rows map[string][]byte `json:"rows"`
	// Lost is TrustAlarm.Lost, kept once found.
	Lost bool `json:"lost,omitempty"`
}

// Names of the trust root's row and of the header's copy of its version.
const (
	trustRootKey      = "root"
	trustVersionField = "trust_version"
)

// rowDigest returns the digest of a sealed row that the root keeps.
func rowDigest(sealed []byte) []byte {
	d := sha256.Sum256(sealed)
	return d[:]
}

// TrustAlarm returns what Open found wrong with the trust rows, or nil if
// they were intact. The rows it names stay refused (ErrTrustRollback)
// after Open until they are written again.
func (s *Store) TrustAlarm() *store.TrustAlarm {
	if s.trustAlarm == nil {
		return nil
	}
	a := *s.trustAlarm
	a.Users = slices.Clone(a.Users)
	return &a
}

// readTrustRoot reads and opens the trust root; ErrNotFound if it is
// missing.
func (t *Tx) readTrustRoot() (*trustRoot, error) {
	p, err := t.getSealed("read trust root", "trust", trustRootKey, `SELECT v FROM trust WHERE k = ?`, trustRootKey)
	if err != nil {
		return nil, err
	}
	defer clear(p)
	var r trustRoot
	if err := json.Unmarshal(p, &r); err != nil {
		return nil, fmt.Errorf("sqlitestore: read trust root: %w: %v", store.ErrCorrupt, err)
	}
	if r.Rows == nil {
		r.Rows = map[string][]byte{}
	}
	return &r, nil
}

// readTrustVersion reads the header's copy of the root's version;
// ErrNotFound if it is missing.
func (t *Tx) readTrustVersion() (uint64, error) {
	p, err := t.getSealed("read trust version", "header", trustVersionField, `SELECT value FROM header WHERE name = ?`, trustVersionField)
	if err != nil {
		return 0, err
	}
	if len(p) != 8 {
		return 0, fmt.Errorf("sqlitestore: read trust version: %w: %d bytes", store.ErrCorrupt, len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}

// writeTrustRoot writes the root and the header's copy of its version.
func (t *Tx) writeTrustRoot(r *trustRoot) error {
	if err := t.putJSON("write trust root", "trust", trustRootKey,
		`INSERT INTO trust (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, r, trustRootKey); err != nil {
		return err
	}
	if err := t.put("write trust version", "header", trustVersionField,
		`INSERT INTO header (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
		binary.BigEndian.AppendUint64(nil, r.Version), trustVersionField); err != nil {
		return err
	}
	t.purge = true
	return nil
}

// currentTrustRoot reads the root and checks it against the header's
// version, for a write of a contact.
func (t *Tx) currentTrustRoot(op string) (*trustRoot, error) {
	r, err := t.readTrustRoot()
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %s: %w (trust root: %v)", op, store.ErrTrustRollback, err)
	}
	v, err := t.readTrustVersion()
	if err != nil || v != r.Version {
		return nil, fmt.Errorf("sqlitestore: %s: %w: the trust root (version %d) is out of step with the header (%d, %v)", op, store.ErrTrustRollback, r.Version, v, err)
	}
	return r, nil
}

// trustRow is one row of the contacts table as stored.
type trustRow struct {
	h      []byte
	sealed []byte
	c      *store.Contact // nil if the row does not open
}

// trustRows reads every row of the contacts table, opening what opens.
func (t *Tx) trustRows() ([]trustRow, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT h, v FROM contacts`)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: check trust rows: %v", err)
	}
	defer rows.Close()
	var out []trustRow
	for rows.Next() {
		var r trustRow
		if err := rows.Scan(&r.h, &r.sealed); err != nil {
			return nil, fmt.Errorf("sqlitestore: check trust rows: %v", err)
		}
		if p, err := t.s.open("contacts", hex.EncodeToString(r.h), r.sealed); err == nil {
			var c store.Contact
			if json.Unmarshal(p, &c) == nil && bytes.Equal(t.s.blind("contact", []byte(c.User)), r.h) {
				r.c = &c
			}
			clear(p)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: check trust rows: %v", err)
	}
	return out, nil
}

// initTrustRoot writes the root of a store that has none yet: a new
// store, or one of a format before the root existed, whose rows are
// taken as they are.
func (t *Tx) initTrustRoot() error {
	rows, err := t.trustRows()
	if err != nil {
		return err
	}
	r := &trustRoot{Version: 1, Rows: map[string][]byte{}}
	for _, row := range rows {
		if row.c != nil {
			r.Rows[row.c.User] = rowDigest(row.sealed)
		}
	}
	return t.writeTrustRoot(r)
}

// checkTrust checks the trust rows against their root and the root
// against the header's version. Rows that fail are replaced by rows that
// hold only the user name and RolledBack, so that Tx.Contact refuses them
// from now on, and the root is rewritten to match, keeping the finding
// across restarts. It returns nil if everything matched.
func (t *Tx) checkTrust() (*store.TrustAlarm, error) {
	root, rootErr := t.readTrustRoot()
	version, versionErr := t.readTrustVersion()
	for _, err := range []error{rootErr, versionErr} {
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrCorrupt) {
			return nil, err
		}
	}
	// The root and the header's version are written together: if they
	// differ, or either is missing or damaged, the set was rolled back as
	// a whole (or partly), and no row can be trusted.
	whole := rootErr != nil || versionErr != nil || root.Version != version
	if root == nil {
		root = &trustRoot{Rows: map[string][]byte{}}
	}
	rows, err := t.trustRows()
	if err != nil {
		return nil, err
	}
	var suspects []string
	seen := map[string]bool{}
	for _, row := range rows {
		if row.c == nil {
			continue // Tx.Contact reports it as ErrCorrupt
		}
		seen[row.c.User] = true
		if row.c.RolledBack {
			continue // refused already
		}
		if whole || !bytes.Equal(root.Rows[row.c.User], rowDigest(row.sealed)) {
			suspects = append(suspects, row.c.User)
		}
	}
	for user := range root.Rows {
		if !seen[user] {
			suspects = append(suspects, user)
		}
	}
	if len(suspects) == 0 && !whole {
		return nil, nil
	}
	slices.Sort(suspects)
	if err := t.refuseTrustRows(root, max(root.Version, version), whole, suspects); err != nil {
		return nil, err
	}
	return &store.TrustAlarm{Users: suspects, Lost: whole}, nil
}

// refuseTrustRows replaces the rows of users by refused ones and writes a
// root that matches the rows as they are now.
func (t *Tx) refuseTrustRows(old *trustRoot, version uint64, lost bool, users []string) error {
	for _, u := range users {
		h, key := t.contactKey(u)
		if _, err := t.putContactRow(&store.Contact{User: u, RolledBack: true}, h, key); err != nil {
			return err
		}
	}
	rows, err := t.trustRows()
	if err != nil {
		return err
	}
	r := &trustRoot{Version: version + 1, Rows: map[string][]byte{}, Lost: lost || old.Lost}
	for _, row := range rows {
		if row.c != nil {
			r.Rows[row.c.User] = rowDigest(row.sealed)
		}
	}
	return t.writeTrustRoot(r)
}

// putContactRow seals and upserts a contact's row and returns the sealed
// value.
func (t *Tx) putContactRow(c *store.Contact, h []byte, key string) ([]byte, error) {
	op := fmt.Sprintf("put contact %q", c.User)
	p, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %s: %v", op, err)
	}
	sealed := t.s.sealValue("contacts", key, p)
	clear(p)
	if _, err := t.exec(op, `INSERT INTO contacts (h, v) VALUES (?, ?) ON CONFLICT (h) DO UPDATE SET v = excluded.v`, h, sealed); err != nil {
		return nil, err
	}
	return sealed, nil
}

// trustLost reports whether the trust rows were found rolled back as a
// whole (TrustAlarm.Lost).
func (t *Tx) trustLost() (bool, error) {
	r, err := t.readTrustRoot()
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrCorrupt) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return r.Lost, nil
}
