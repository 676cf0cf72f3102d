package kvstore

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/parley-chat/parley/client/store"
)

// Trust records and their root
//
// The contacts' records hold the identity keys pinned on first use.
// Sealing each record keeps someone without the store key from forging
// one or moving one to another user, but not from deleting one or
// putting back an older copy of it: either would make the client pin,
// silently, whatever key the server presents next, or forget that a key
// was verified. The trust root (record trust/root) lists every contact
// with the SHA-256 of its sealed record, and carries a version that
// every write of a contact increments; record trust/version keeps the
// version too, so that rolling back the contacts and the root together
// still shows. Open checks the records against the root and the root
// against the version (checkTrust). A rollback of every record together
// is consistent in itself and cannot be seen.

// trustRoot is the sealed value that authenticates the contacts' records.
type trustRoot struct {
	// Version counts the writes of contacts; trust/version keeps a copy.
	Version uint64 `json:"version"`
	// Rows maps each contact's user name to the digest of its sealed
	// record.
	Rows map[string][]byte `json:"rows"`
	// Lost is TrustAlarm.Lost, kept once found.
	Lost bool `json:"lost,omitempty"`
}

func (r *trustRoot) clone() *trustRoot {
	c := *r
	c.Rows = maps.Clone(r.Rows)
	if c.Rows == nil {
		c.Rows = map[string][]byte{}
	}
	return &c
}

func (t *Tx) contactKey(user string) string {
	return prefixContact + hex.EncodeToString(t.s.blind("contact", []byte(user)))
}

// writeTrustRoot writes r and its version, and holds r.
func (t *Tx) writeTrustRoot(r *trustRoot) {
	p, err := json.Marshal(r)
	if err != nil {
		panic("kvstore: encode trust root: " + err.Error()) // maps of strings to bytes always encode
	}
	t.putBytes(keyTrustRoot, p)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], r.Version)
	t.putBytes(keyTrustVersion, b[:])
	st := t.s.st
	oldRoot, oldVersion := st.root, st.version
	st.root, st.version = r, r.Version
	t.onUndo(func() { st.root, st.version = oldRoot, oldVersion })
}

// putContactRecord seals and writes c and holds it.
func (t *Tx) putContactRecord(op string, c *store.Contact) ([]byte, error) {
	key := t.contactKey(c.User)
	p, sealed, err := t.sealJSON(op, key, c)
	if err != nil {
		return nil, err
	}
	var held store.Contact
	if err := json.Unmarshal(p, &held); err != nil {
		return nil, fmt.Errorf("kvstore: %s: %v", op, err)
	}
	clear(p)
	t.put(key, sealed)
	d := digest(sealed)
	setMap(t, t.s.st.contacts, c.User, &contactRec{c: &held, digest: d})
	return d, nil
}

// PutContact stores a contact, replacing the one with the same user name
// (a record refused with ErrTrustRollback among them), and records it in
// the trust root (see [store.TrustAlarm]).
func (t *Tx) PutContact(c *store.Contact) error {
	if c.User == "" {
		return errors.New("kvstore: put contact: empty user name")
	}
	op := fmt.Sprintf("put contact %q", c.User)
	if err := t.writable(op); err != nil {
		return err
	}
	st := t.s.st
	if st.root == nil || st.root.Version != st.version {
		return fmt.Errorf("kvstore: %s: %w: the trust root is missing or out of step with its version", op, store.ErrTrustRollback)
	}
	d, err := t.putContactRecord(op, c)
	if err != nil {
		return err
	}
	r := st.root.clone()
	r.Rows[c.User] = d
	r.Version++
	t.writeTrustRoot(r)
	return nil
}

// Contact returns the contact with the given user name, or ErrNotFound.
// It returns an error wrapping ErrTrustRollback instead when Open found
// the user's record deleted or replaced by another copy, and, once the
// trust records were found rolled back as a whole, for every user
// without a record.
func (t *Tx) Contact(user string) (*store.Contact, error) {
	op := fmt.Sprintf("get contact %q", user)
	if err := t.damage(op, t.contactKey(user)); err != nil {
		return nil, err
	}
	st := t.s.st
	rec, ok := st.contacts[user]
	if !ok {
		if st.root == nil || st.root.Lost {
			return nil, fmt.Errorf("kvstore: %s: %w: the trust records were rolled back as a whole, so a key pinned for the user may be forgotten", op, store.ErrTrustRollback)
		}
		return nil, notFound(op)
	}
	if rec.c.RolledBack {
		return nil, fmt.Errorf("kvstore: %s: %w", op, store.ErrTrustRollback)
	}
	c := cloneContact(rec.c)
	return &c, nil
}

// Contacts returns every contact, in no particular order, records
// refused with ErrTrustRollback among them (RolledBack set).
func (t *Tx) Contacts() ([]store.Contact, error) {
	if err := t.damageUnder("list contacts", prefixContact); err != nil {
		return nil, err
	}
	out := make([]store.Contact, 0, len(t.s.st.contacts))
	for _, rec := range t.s.st.contacts {
		out = append(out, cloneContact(rec.c))
	}
	return out, nil
}

// checkTrust checks the contacts' records against the trust root and
// the root against its version. Records that fail are replaced by
// records that hold only the user name and RolledBack, so that Contact
// refuses them from now on, and the root is rewritten to match, keeping
// the finding across restarts. It returns nil if everything matched.
func (t *Tx) checkTrust() (*store.TrustAlarm, error) {
	st := t.s.st
	rootOK := st.root != nil && t.damage("", keyTrustRoot) == nil
	versionOK := st.version != 0 && t.damage("", keyTrustVersion) == nil
	// The root and its version are written together: if they differ, or
	// either is missing or damaged, the set was rolled back as a whole
	// (or partly), and no record can be trusted.
	whole := !rootOK || !versionOK || st.root.Version != st.version
	root := st.root
	if root == nil {
		root = &trustRoot{Rows: map[string][]byte{}}
	}
	var suspects []string
	for user, rec := range st.contacts {
		if rec.c.RolledBack {
			continue // refused already
		}
		if whole || !bytes.Equal(root.Rows[user], rec.digest) {
			suspects = append(suspects, user)
		}
	}
	for user := range root.Rows {
		if _, ok := st.contacts[user]; !ok {
			suspects = append(suspects, user)
		}
	}
	if len(suspects) == 0 && !whole {
		return nil, nil
	}
	slices.Sort(suspects)
	for _, u := range suspects {
		if _, err := t.putContactRecord("refuse contact", &store.Contact{User: u, RolledBack: true}); err != nil {
			return nil, err
		}
	}
	r := &trustRoot{Version: max(root.Version, st.version) + 1, Rows: map[string][]byte{}, Lost: whole || root.Lost}
	for user, rec := range st.contacts {
		r.Rows[user] = rec.digest
	}
	t.writeTrustRoot(r)
	return &store.TrustAlarm{Users: suspects, Lost: whole}, nil
}
