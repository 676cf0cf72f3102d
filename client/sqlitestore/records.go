package sqlitestore

import (
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// putJSON seals v as JSON and upserts it.
func (t *Tx) putJSON(op, table, key, query string, v any, args ...any) error {
	p, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("sqlitestore: %s: %v", op, err)
	}
	return t.put(op, table, key, query, p, args...)
}

// put seals p and runs query with args followed by the sealed value (so
// the sealed value is the last parameter: ?N in an UPDATE).
func (t *Tx) put(op, table, key, query string, p []byte, args ...any) error {
	sealed := t.s.sealValue(table, key, p)
	clear(p)
	_, err := t.exec(op, query, append(args, sealed)...)
	return err
}

// getJSON reads, opens and decodes one row into v.
func (t *Tx) getJSON(op, table, key string, v any, query string, args ...any) error {
	p, err := t.getSealed(op, table, key, query, args...)
	if err != nil {
		return err
	}
	defer clear(p)
	if err := json.Unmarshal(p, v); err != nil {
		return fmt.Errorf("sqlitestore: %s: %w: %v", op, store.ErrCorrupt, err)
	}
	return nil
}

// listJSON opens every row of query (columns: key parts, sealed value)
// and calls each with the plaintext.
func (t *Tx) list(op, table string, keyOf func(scan []any) string, nkeys int, each func([]byte) error, query string, args ...any) error {
	rows, err := t.tx.QueryContext(t.ctx, query, args...)
	if err != nil {
		return fmt.Errorf("sqlitestore: %s: %v", op, err)
	}
	defer rows.Close()
	dst := make([]any, nkeys+1)
	keys := make([]any, nkeys)
	for i := range nkeys {
		dst[i] = &keys[i]
	}
	var sealed sql.RawBytes // valid until the next row: open copies it
	dst[nkeys] = &sealed
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return fmt.Errorf("sqlitestore: %s: %v", op, err)
		}
		p, err := t.s.open(table, keyOf(keys), sealed)
		if err != nil {
			return fmt.Errorf("sqlitestore: %s: %w", op, err)
		}
		err = each(p)
		clear(p)
		if err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlitestore: %s: %v", op, err)
	}
	return nil
}

func listJSON[T any](t *Tx, op, table string, keyOf func([]any) string, nkeys int, query string, args ...any) ([]T, error) {
	var out []T
	err := t.list(op, table, keyOf, nkeys, func(p []byte) error {
		var v T
		if err := json.Unmarshal(p, &v); err != nil {
			return fmt.Errorf("sqlitestore: %s: %w: %v", op, store.ErrCorrupt, err)
		}
		out = append(out, v)
		return nil
	}, query, args...)
	return out, err
}

func int64Key(k []any) string { return strconv.FormatInt(asInt64(k[0]), 10) }
func textKey(k []any) string  { return asString(k[0]) }
func hexKey(k []any) string   { return hex.EncodeToString(asBytes(k[0])) }

func asInt64(v any) int64 {
	n, _ := v.(int64)
	return n
}

func asString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return ""
}

func asBytes(v any) []byte {
	switch b := v.(type) {
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	return nil
}

func convKey(c protocol.ConversationID) string { return strconv.FormatInt(int64(c), 10) }

// Identity returns the account's identity, or ErrNotFound before
// [Tx.PutIdentity].
func (t *Tx) Identity() (*store.Identity, error) {
	var id store.Identity
	if err := t.getJSON("get identity", "identity", "self", &id, `SELECT v FROM identity WHERE k = 'self'`); err != nil {
		return nil, err
	}
	return &id, nil
}

// PutIdentity stores the account's identity, replacing any.
func (t *Tx) PutIdentity(id *store.Identity) error {
	return t.putJSON("put identity", "identity", "self",
		`INSERT INTO identity (k, v) VALUES ('self', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, id)
}

// PutDevice stores a device, replacing the one with the same id.
func (t *Tx) PutDevice(d *store.Device) error {
	if d.ID == "" {
		return errors.New("sqlitestore: put device: empty device id")
	}
	return t.putJSON(fmt.Sprintf("put device %q", d.ID), "devices", string(d.ID),
		`INSERT INTO devices (id, v) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET v = excluded.v`, d, string(d.ID))
}

// Device returns the device with the given id, or ErrNotFound.
func (t *Tx) Device(id protocol.DeviceID) (*store.Device, error) {
	var d store.Device
	if err := t.getJSON(fmt.Sprintf("get device %q", id), "devices", string(id), &d, `SELECT v FROM devices WHERE id = ?`, string(id)); err != nil {
		return nil, err
	}
	return &d, nil
}

// Devices returns the known devices of user ("" for all), by id.
func (t *Tx) Devices(user string) ([]store.Device, error) {
	all, err := listJSON[store.Device](t, "list devices", "devices", textKey, 1, `SELECT id, v FROM devices ORDER BY id`)
	if err != nil || user == "" {
		return all, err
	}
	var out []store.Device
	for _, d := range all {
		if d.User == user {
			out = append(out, d)
		}
	}
	return out, nil
}

// DeleteDevice removes a device; removing an unknown one is not an error.
func (t *Tx) DeleteDevice(id protocol.DeviceID) error {
	_, err := t.exec(fmt.Sprintf("delete device %q", id), `DELETE FROM devices WHERE id = ?`, string(id))
	return err
}

func (t *Tx) contactKey(user string) ([]byte, string) {
	h := t.s.blind("contact", []byte(user))
	return h, hex.EncodeToString(h)
}

// PutContact stores a contact, replacing the one with the same user name
// (a row refused with ErrTrustRollback among them), and records the row
// in the trust root (see [TrustAlarm]).
func (t *Tx) PutContact(c *store.Contact) error {
	if c.User == "" {
		return errors.New("sqlitestore: put contact: empty user name")
	}
	op := fmt.Sprintf("put contact %q", c.User)
	root, err := t.currentTrustRoot(op)
	if err != nil {
		return err
	}
	h, key := t.contactKey(c.User)
	sealed, err := t.putContactRow(c, h, key)
	if err != nil {
		return err
	}
	root.Rows[c.User] = rowDigest(sealed)
	root.Version++
	return t.writeTrustRoot(root)
}

// Contact returns the contact with the given user name, or ErrNotFound.
// It returns an error wrapping ErrTrustRollback instead when Open found
// the user's row deleted or replaced by another copy, and, once the trust
// rows were found rolled back as a whole, for every user without a row.
func (t *Tx) Contact(user string) (*store.Contact, error) {
	op := fmt.Sprintf("get contact %q", user)
	h, key := t.contactKey(user)
	var c store.Contact
	err := t.getJSON(op, "contacts", key, &c, `SELECT v FROM contacts WHERE h = ?`, h)
	if errors.Is(err, store.ErrNotFound) {
		if lost, lerr := t.trustLost(); lerr != nil {
			return nil, lerr
		} else if lost {
			return nil, fmt.Errorf("sqlitestore: %s: %w: the trust rows were rolled back as a whole, so a key pinned for the user may be forgotten", op, store.ErrTrustRollback)
		}
	}
	if err != nil {
		return nil, err
	}
	if c.User != user {
		return nil, fmt.Errorf("sqlitestore: %s: %w: row holds another user", op, store.ErrCorrupt)
	}
	if c.RolledBack {
		return nil, fmt.Errorf("sqlitestore: %s: %w", op, store.ErrTrustRollback)
	}
	return &c, nil
}

// Contacts returns every contact, in no particular order, rows refused
// with ErrTrustRollback among them (RolledBack set).
func (t *Tx) Contacts() ([]store.Contact, error) {
	return listJSON[store.Contact](t, "list contacts", "contacts", hexKey, 1, `SELECT h, v FROM contacts`)
}

// PutConversation stores a conversation, replacing the one with its id.
func (t *Tx) PutConversation(c *store.Conversation) error {
	return t.putJSON(fmt.Sprintf("put conversation %d", c.ID), "conversations", convKey(c.ID),
		`INSERT INTO conversations (id, v) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET v = excluded.v`, c, int64(c.ID))
}

// Conversation returns a conversation, or ErrNotFound.
func (t *Tx) Conversation(id protocol.ConversationID) (*store.Conversation, error) {
	var c store.Conversation
	if err := t.getJSON(fmt.Sprintf("get conversation %d", id), "conversations", convKey(id), &c, `SELECT v FROM conversations WHERE id = ?`, int64(id)); err != nil {
		return nil, err
	}
	return &c, nil
}

// Conversations returns every conversation, by id.
func (t *Tx) Conversations() ([]store.Conversation, error) {
	return listJSON[store.Conversation](t, "list conversations", "conversations", int64Key, 1, `SELECT id, v FROM conversations ORDER BY id`)
}

// DeleteConversation removes a conversation with its group and ratchet
// state, history, cursor and queued messages.
func (t *Tx) DeleteConversation(id protocol.ConversationID) error {
	op := fmt.Sprintf("delete conversation %d", id)
	t.purge = true
	for _, q := range []string{
		`DELETE FROM conversations WHERE id = ?`, `DELETE FROM groups WHERE conv = ?`, `DELETE FROM ratchets WHERE conv = ?`,
		`DELETE FROM messages WHERE conv = ?`, `DELETE FROM cursors WHERE conv = ?`, `DELETE FROM outbox WHERE conv = ?`,
		`DELETE FROM expiries WHERE conv = ?`,
	} {
		if _, err := t.exec(op, q, int64(id)); err != nil {
			return err
		}
	}
	return nil
}

// PutGroupState stores the opaque full MLS group state of a conversation
// (mls.Group.MarshalBinary), replacing the previous one, and deletes the
// conversation's ratchet state: a full state is complete by itself.
func (t *Tx) PutGroupState(conv protocol.ConversationID, state []byte) error {
	op := fmt.Sprintf("put group state of conversation %d", conv)
	if _, err := t.exec(op, `DELETE FROM ratchets WHERE conv = ?`, int64(conv)); err != nil {
		return err
	}
	t.purge = true // the secrets of the epoch left behind
	return t.put(op, "groups", convKey(conv),
		`INSERT INTO groups (conv, v) VALUES (?, ?) ON CONFLICT (conv) DO UPDATE SET v = excluded.v`, append([]byte(nil), state...), int64(conv))
}

// PutRatchetState stores the opaque MLS ratchet state of a conversation
// (mls.Group.RatchetState), replacing the previous one. It is written
// after application messages instead of the full state, and applies on
// top of the full state from [Tx.GroupState] (mls.Group.ApplyRatchetState)
// until the next [Tx.PutGroupState] deletes it.
func (t *Tx) PutRatchetState(conv protocol.ConversationID, state []byte) error {
	return t.put(fmt.Sprintf("put ratchet state of conversation %d", conv), "ratchets", convKey(conv),
		`INSERT INTO ratchets (conv, v) VALUES (?, ?) ON CONFLICT (conv) DO UPDATE SET v = excluded.v`, append([]byte(nil), state...), int64(conv))
}

// RatchetState returns the MLS ratchet state of a conversation written
// since its last full group state, or ErrNotFound if there is none.
func (t *Tx) RatchetState(conv protocol.ConversationID) ([]byte, error) {
	return t.getSealed(fmt.Sprintf("get ratchet state of conversation %d", conv), "ratchets", convKey(conv),
		`SELECT v FROM ratchets WHERE conv = ?`, int64(conv))
}

// GroupState returns the MLS group state of a conversation, or ErrNotFound.
func (t *Tx) GroupState(conv protocol.ConversationID) ([]byte, error) {
	return t.getSealed(fmt.Sprintf("get group state of conversation %d", conv), "groups", convKey(conv),
		`SELECT v FROM groups WHERE conv = ?`, int64(conv))
}

func msgKey(conv protocol.ConversationID, seq int64) string {
	return strconv.FormatInt(int64(conv), 10) + "/" + strconv.FormatInt(seq, 10)
}

func (t *Tx) messageHash(conv protocol.ConversationID, id [16]byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(conv))
	return t.s.blind("message", append(b, id[:]...))
}

// AddMessage appends a message to its conversation's history and sets
// m.Seq. If the conversation already holds a message with the same id,
// it changes nothing and returns false: replaying an entry after a crash
// never shows a message twice.
func (t *Tx) AddMessage(m *store.Message) (added bool, err error) {
	op := fmt.Sprintf("add message %x to conversation %d", m.ID, m.Conversation)
	h := t.messageHash(m.Conversation, m.ID)
	var n int
	if err := t.tx.QueryRowContext(t.ctx, `SELECT count(*) FROM messages WHERE conv = ? AND h = ?`, int64(m.Conversation), h).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlitestore: %s: %v", op, err)
	}
	if n > 0 {
		return false, nil
	}
	var last int64
	if err := t.tx.QueryRowContext(t.ctx, `SELECT coalesce(max(seq), 0) FROM messages WHERE conv = ?`, int64(m.Conversation)).Scan(&last); err != nil {
		return false, fmt.Errorf("sqlitestore: %s: %v", op, err)
	}
	m.Seq = last + 1
	if err := t.putJSON(op, "messages", msgKey(m.Conversation, m.Seq),
		`INSERT INTO messages (conv, seq, h, v) VALUES (?, ?, ?, ?)`, m, int64(m.Conversation), m.Seq, h); err != nil {
		return false, err
	}
	if !m.Expires.IsZero() && !m.Expired {
		if _, err := t.exec(op, `INSERT OR REPLACE INTO expiries (conv, seq, at) VALUES (?, ?, ?)`, int64(m.Conversation), m.Seq, expirySeconds(m.Expires)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// expirySeconds rounds an expiry up to whole Unix seconds, so that a
// message is never erased before its time.
func expirySeconds(at time.Time) int64 {
	s := at.Unix()
	if at.Nanosecond() > 0 {
		s++
	}
	return s
}

// ExpiredBy returns the conversation and Seq of every message whose
// expiry is at or before now, in order of expiry.
func (t *Tx) ExpiredBy(now time.Time) ([][2]int64, error) {
	rows, err := t.tx.QueryContext(t.ctx, `SELECT conv, seq FROM expiries WHERE at <= ? ORDER BY at, conv, seq`, now.Unix())
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list expired messages: %v", err)
	}
	defer rows.Close()
	var out [][2]int64
	for rows.Next() {
		var k [2]int64
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			return nil, fmt.Errorf("sqlitestore: list expired messages: %v", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list expired messages: %v", err)
	}
	return out, nil
}

// NextExpiry returns when the next message expires; ok is false when
// none will.
func (t *Tx) NextExpiry() (at time.Time, ok bool, err error) {
	var s sql.NullInt64
	if err := t.tx.QueryRowContext(t.ctx, `SELECT min(at) FROM expiries`).Scan(&s); err != nil {
		return time.Time{}, false, fmt.Errorf("sqlitestore: next expiry: %v", err)
	}
	if !s.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(s.Int64, 0), true, nil
}

// ExpireMessage erases message conv/seq (Message.Erase) and forgets its
// expiry. It returns the tombstone, or nil when the message was already
// gone or expired.
func (t *Tx) ExpireMessage(conv protocol.ConversationID, seq int64) (*store.Message, error) {
	op := fmt.Sprintf("expire message %d/%d", conv, seq)
	if _, err := t.exec(op, `DELETE FROM expiries WHERE conv = ? AND seq = ?`, int64(conv), seq); err != nil {
		return nil, err
	}
	m, err := t.messageBySeq(conv, seq)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil || m.Expired {
		return nil, err
	}
	m.Erase()
	t.purge = true
	if err := t.putJSON(op, "messages", msgKey(conv, seq),
		`UPDATE messages SET v = ?3 WHERE conv = ?1 AND seq = ?2`, m, int64(conv), seq); err != nil {
		return nil, err
	}
	return m, nil
}

// UpdateMessage replaces the stored message m.Conversation/m.Seq with m
// (for edits, deletions, reactions, receipts and delivery state). The id
// must not change.
func (t *Tx) UpdateMessage(m *store.Message) error {
	op := fmt.Sprintf("update message %d/%d", m.Conversation, m.Seq)
	old, err := t.messageBySeq(m.Conversation, m.Seq)
	if err != nil {
		return err
	}
	if old.ID != m.ID {
		return fmt.Errorf("sqlitestore: %s: message id changed", op)
	}
	if m.Deleted && !old.Deleted {
		t.purge = true
	}
	return t.putJSON(op, "messages", msgKey(m.Conversation, m.Seq),
		`UPDATE messages SET v = ?3 WHERE conv = ?1 AND seq = ?2`, m, int64(m.Conversation), m.Seq)
}

func (t *Tx) messageBySeq(conv protocol.ConversationID, seq int64) (*store.Message, error) {
	var m store.Message
	if err := t.getJSON(fmt.Sprintf("get message %d/%d", conv, seq), "messages", msgKey(conv, seq), &m,
		`SELECT v FROM messages WHERE conv = ? AND seq = ?`, int64(conv), seq); err != nil {
		return nil, err
	}
	return &m, nil
}

// MessageByID returns the message with the given id in a conversation,
// or ErrNotFound.
func (t *Tx) MessageByID(conv protocol.ConversationID, id [16]byte) (*store.Message, error) {
	var seq int64
	err := t.tx.QueryRowContext(t.ctx, `SELECT seq FROM messages WHERE conv = ? AND h = ?`, int64(conv), t.messageHash(conv, id)).Scan(&seq)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("sqlitestore: get message %x in conversation %d: %w", id, conv, store.ErrNotFound)
		}
		return nil, fmt.Errorf("sqlitestore: get message %x in conversation %d: %v", id, conv, err)
	}
	m, err := t.messageBySeq(conv, seq)
	if err != nil {
		return nil, err
	}
	if m.ID != id {
		return nil, fmt.Errorf("sqlitestore: get message %x in conversation %d: %w: row holds another message", id, conv, store.ErrCorrupt)
	}
	return m, nil
}

// Messages returns up to limit messages of a conversation with Seq above
// after, in order. A limit of 0 or less means no limit.
func (t *Tx) Messages(conv protocol.ConversationID, after int64, limit int) ([]store.Message, error) {
	if limit <= 0 {
		limit = -1
	}
	keyOf := func(k []any) string { return msgKey(conv, asInt64(k[0])) }
	return listJSON[store.Message](t, fmt.Sprintf("list messages of conversation %d", conv), "messages", keyOf, 1,
		`SELECT seq, v FROM messages WHERE conv = ? AND seq > ? ORDER BY seq LIMIT ?`, int64(conv), after, limit)
}

// LastMessages returns the last n messages of a conversation, in order.
func (t *Tx) LastMessages(conv protocol.ConversationID, n int) ([]store.Message, error) {
	var last int64
	if err := t.tx.QueryRowContext(t.ctx, `SELECT coalesce(max(seq), 0) FROM messages WHERE conv = ?`, int64(conv)).Scan(&last); err != nil {
		return nil, fmt.Errorf("sqlitestore: list messages of conversation %d: %v", conv, err)
	}
	return t.Messages(conv, max(0, last-int64(n)), n)
}

// LatestMessages returns the last entry (the highest Seq) of every
// conversation's history, by conversation, in one query: a conversation
// whose history is empty has none.
func (t *Tx) LatestMessages() ([]store.Message, error) {
	keyOf := func(k []any) string { return msgKey(protocol.ConversationID(asInt64(k[0])), asInt64(k[1])) }
	// One seek of the (conv, seq) key per conversation.
	return listJSON[store.Message](t, "list latest messages", "messages", keyOf, 2,
		`SELECT m.conv, m.seq, m.v FROM conversations c
		 JOIN messages m ON m.conv = c.id AND m.seq = (SELECT max(seq) FROM messages WHERE conv = c.id)
		 ORDER BY c.id`)
}

// messageHead decodes the fields of a Message's JSON that MessageHead
// holds; encoding/json skips the others.
type messageHead struct {
	Sender       string            `json:"sender"`
	SenderDevice protocol.DeviceID `json:"sender_device"`
	Deleted      bool              `json:"deleted"`
	Expired      bool              `json:"expired"`
	System       json.RawMessage   `json:"system"`
}

// MessageHeadsAfter calls each with the head of every entry of the
// conversations in after whose Seq is above the position after gives
// it, reading them in one query, in no particular order (the rows are
// not sorted: this is for counting). The MessageHead is valid only
// during the call.
func (t *Tx) MessageHeadsAfter(after map[protocol.ConversationID]int64, each func(*store.MessageHead) error) error {
	const op = "list messages after positions"
	if len(after) == 0 {
		return nil
	}
	pos := make(map[string]int64, len(after))
	for conv, seq := range after {
		pos[convKey(conv)] = seq
	}
	arg, err := json.Marshal(pos)
	if err != nil {
		return fmt.Errorf("sqlitestore: %s: %v", op, err)
	}
	var h store.MessageHead
	keyOf := func(k []any) string {
		h.Conversation, h.Seq = protocol.ConversationID(asInt64(k[0])), asInt64(k[1])
		return msgKey(h.Conversation, h.Seq)
	}
	return t.list(op, "messages", keyOf, 2, func(p []byte) error {
		var m messageHead
		if err := json.Unmarshal(p, &m); err != nil {
			return fmt.Errorf("sqlitestore: %s: %w: %v", op, store.ErrCorrupt, err)
		}
		h.Sender, h.SenderDevice, h.Deleted, h.Expired = m.Sender, m.SenderDevice, m.Deleted, m.Expired
		h.System = len(m.System) != 0 && string(m.System) != "null"
		return each(&h)
	}, `SELECT m.conv, m.seq, m.v FROM json_each(?) p
	    JOIN messages m ON m.conv = CAST(p.key AS INTEGER) AND m.seq > p.value`, string(arg))
}

// Cursor returns the last server seq processed in a conversation (or
// [InboxCursor]); 0 if none was set.
func (t *Tx) Cursor(conv protocol.ConversationID) (uint64, error) {
	p, err := t.getSealed(fmt.Sprintf("get cursor of conversation %d", conv), "cursors", convKey(conv), `SELECT v FROM cursors WHERE conv = ?`, int64(conv))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(p) != 8 {
		return 0, fmt.Errorf("sqlitestore: get cursor of conversation %d: %w: %d bytes", conv, store.ErrCorrupt, len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}

// SetCursor sets the cursor of a conversation (or [InboxCursor]).
func (t *Tx) SetCursor(conv protocol.ConversationID, seq uint64) error {
	return t.put(fmt.Sprintf("set cursor of conversation %d", conv), "cursors", convKey(conv),
		`INSERT INTO cursors (conv, v) VALUES (?, ?) ON CONFLICT (conv) DO UPDATE SET v = excluded.v`,
		binary.BigEndian.AppendUint64(nil, seq), int64(conv))
}

// Cursors returns every conversation cursor (not the inbox), by
// conversation.
func (t *Tx) Cursors() ([]protocol.Cursor, error) {
	var out []protocol.Cursor
	var conv int64
	keyOf := func(k []any) string { conv = asInt64(k[0]); return convKey(protocol.ConversationID(conv)) }
	err := t.list("list cursors", "cursors", keyOf, 1, func(p []byte) error {
		if len(p) != 8 {
			return fmt.Errorf("sqlitestore: list cursors: %w: cursor of conversation %d is %d bytes", store.ErrCorrupt, conv, len(p))
		}
		out = append(out, protocol.Cursor{Conversation: protocol.ConversationID(conv), Seq: binary.BigEndian.Uint64(p)})
		return nil
	}, `SELECT conv, v FROM cursors WHERE conv != 0 ORDER BY conv`)
	return out, err
}

func outboxKey(id int64) string { return strconv.FormatInt(id, 10) }

// Enqueue adds a message to the outgoing queue and sets o.ID.
func (t *Tx) Enqueue(o *store.Outgoing) error {
	op := fmt.Sprintf("enqueue message %x to conversation %d", o.MessageID, o.Conversation)
	r, err := t.exec(op, `INSERT INTO outbox (conv, v) VALUES (?, x'')`, int64(o.Conversation))
	if err != nil {
		return err
	}
	if o.ID, err = r.LastInsertId(); err != nil {
		return fmt.Errorf("sqlitestore: %s: %v", op, err)
	}
	return t.putJSON(op, "outbox", outboxKey(o.ID), `UPDATE outbox SET v = ?2 WHERE id = ?1`, o, o.ID)
}

// UpdateOutgoing replaces the queued message o.ID (for example to add the
// ciphertext or count an attempt).
func (t *Tx) UpdateOutgoing(o *store.Outgoing) error {
	op := fmt.Sprintf("update outgoing %d", o.ID)
	r, err := t.exec(op, `UPDATE outbox SET conv = ? WHERE id = ?`, int64(o.Conversation), o.ID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlitestore: %s: %w", op, store.ErrNotFound)
	}
	return t.putJSON(op, "outbox", outboxKey(o.ID), `UPDATE outbox SET v = ?2 WHERE id = ?1`, o, o.ID)
}

// Outbox returns the queued messages of a conversation (0 for all), in
// queue order.
func (t *Tx) Outbox(conv protocol.ConversationID) ([]store.Outgoing, error) {
	return listJSON[store.Outgoing](t, "list outbox", "outbox", int64Key, 1,
		`SELECT id, v FROM outbox WHERE ? = 0 OR conv = ? ORDER BY id`, int64(conv), int64(conv))
}

// Dequeue removes a message from the outgoing queue; removing an unknown
// one is not an error.
func (t *Tx) Dequeue(id int64) error {
	_, err := t.exec(fmt.Sprintf("dequeue outgoing %d", id), `DELETE FROM outbox WHERE id = ?`, id)
	return err
}

// PutKeyPackage stores the private keys of a published KeyPackage under
// its reference.
func (t *Tx) PutKeyPackage(ref, private []byte) error {
	return t.put(fmt.Sprintf("put key package %x", ref), "keypackages", hex.EncodeToString(ref),
		`INSERT INTO keypackages (ref, v) VALUES (?, ?) ON CONFLICT (ref) DO UPDATE SET v = excluded.v`, append([]byte(nil), private...), ref)
}

// KeyPackage returns the private keys stored under ref, or ErrNotFound.
func (t *Tx) KeyPackage(ref []byte) ([]byte, error) {
	return t.getSealed(fmt.Sprintf("get key package %x", ref), "keypackages", hex.EncodeToString(ref), `SELECT v FROM keypackages WHERE ref = ?`, ref)
}

// DeleteKeyPackage removes the private keys under ref (once used, for
// forward secrecy); removing an unknown one is not an error.
func (t *Tx) DeleteKeyPackage(ref []byte) error {
	_, err := t.exec(fmt.Sprintf("delete key package %x", ref), `DELETE FROM keypackages WHERE ref = ?`, ref)
	t.purge = true
	return err
}

// KeyPackageCount returns the number of stored KeyPackage private keys.
func (t *Tx) KeyPackageCount() (int, error) {
	var n int
	if err := t.tx.QueryRowContext(t.ctx, `SELECT count(*) FROM keypackages`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlitestore: count key packages: %v", err)
	}
	return n, nil
}

// Setting returns the value of a setting, or ErrNotFound.
func (t *Tx) Setting(name string) ([]byte, error) {
	return t.getSealed(fmt.Sprintf("get setting %q", name), "settings", name, `SELECT v FROM settings WHERE k = ?`, name)
}

// Settings returns the settings whose names start with prefix, keyed by
// name, in one query.
func (t *Tx) Settings(prefix string) (map[string][]byte, error) {
	out := map[string][]byte{}
	var name string
	keyOf := func(k []any) string { name = asString(k[0]); return name }
	err := t.list(fmt.Sprintf("list settings %q", prefix+"*"), "settings", keyOf, 1, func(p []byte) error {
		out[name] = append([]byte(nil), p...)
		return nil
	}, `SELECT k, v FROM settings WHERE k >= ? AND k < ? ORDER BY k`,
		prefix, prefix+"\xff") // the names that start with prefix: none holds the byte 0xff (not UTF-8)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetSetting sets a setting.
func (t *Tx) SetSetting(name string, value []byte) error {
	return t.put(fmt.Sprintf("set setting %q", name), "settings", name,
		`INSERT INTO settings (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, append([]byte(nil), value...), name)
}

// messageText decodes the fields of a Message's JSON that MessageText
// holds; encoding/json skips the others.
type messageText struct {
	store.MessageText
	System json.RawMessage `json:"system"`
}

// MessageTexts calls each with the text of every entry of a
// conversation's history, in order of Seq, reading only what
// MessageText holds. The MessageText is valid only during the call.
func (t *Tx) MessageTexts(conv protocol.ConversationID, each func(*store.MessageText) error) error {
	op := fmt.Sprintf("list message texts of conversation %d", conv)
	var seq int64
	keyOf := func(k []any) string {
		seq = asInt64(k[0])
		return msgKey(conv, seq)
	}
	return t.list(op, "messages", keyOf, 1, func(p []byte) error {
		var m messageText
		if err := json.Unmarshal(p, &m); err != nil {
			return fmt.Errorf("sqlitestore: %s: %w: %v", op, store.ErrCorrupt, err)
		}
		m.MessageText.Conversation, m.MessageText.Seq = conv, seq
		m.MessageText.System = len(m.System) != 0 && string(m.System) != "null"
		return each(&m.MessageText)
	}, `SELECT seq, v FROM messages WHERE conv = ? ORDER BY seq`, int64(conv))
}
