package kvstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// The records held are never given out: reads return copies.

func cloneIdentity(id *store.Identity) *store.Identity {
	c := *id
	c.IdentityKey, c.DeviceKey, c.Certificate = slices.Clone(id.IdentityKey), slices.Clone(id.DeviceKey), slices.Clone(id.Certificate)
	return &c
}

func cloneDevice(d *store.Device) store.Device {
	c := *d
	c.Certificate = slices.Clone(d.Certificate)
	return c
}

func cloneContact(k *store.Contact) store.Contact {
	c := *k
	c.IdentityKey, c.ChangedKey = slices.Clone(k.IdentityKey), slices.Clone(k.ChangedKey)
	return c
}

func cloneConversation(v *store.Conversation) store.Conversation {
	c := *v
	c.GroupID, c.Members = slices.Clone(v.GroupID), slices.Clone(v.Members)
	return c
}

func cloneMessage(m *store.Message) store.Message {
	c := *m
	c.Content, c.Reactions, c.ReadBy = slices.Clone(m.Content), slices.Clone(m.Reactions), slices.Clone(m.ReadBy)
	if m.System != nil {
		s := *m.System
		s.Users, s.Devices = slices.Clone(s.Users), slices.Clone(s.Devices)
		c.System = &s
	}
	return c
}

func cloneOutgoing(o *store.Outgoing) store.Outgoing {
	c := *o
	c.Content, c.Ciphertext = slices.Clone(o.Content), slices.Clone(o.Ciphertext)
	return c
}

// Identity returns the account's identity, or ErrNotFound before
// [Tx.PutIdentity].
func (t *Tx) Identity() (*store.Identity, error) {
	const op = "get identity"
	if err := t.damage(op, keyIdentity); err != nil {
		return nil, err
	}
	if t.s.st.identity == nil {
		return nil, notFound(op)
	}
	return cloneIdentity(t.s.st.identity), nil
}

// PutIdentity stores the account's identity, replacing any.
func (t *Tx) PutIdentity(id *store.Identity) error {
	held, err := putJSON(t, "put identity", keyIdentity, id)
	if err != nil {
		return err
	}
	st, old := t.s.st, t.s.st.identity
	st.identity = held
	t.onUndo(func() { st.identity = old })
	return nil
}

// PutDevice stores a device, replacing the one with the same id.
func (t *Tx) PutDevice(d *store.Device) error {
	if d.ID == "" {
		return errors.New("kvstore: put device: empty device id")
	}
	held, err := putJSON(t, fmt.Sprintf("put device %q", d.ID), deviceKey(d.ID), d)
	if err != nil {
		return err
	}
	setMap(t, t.s.st.devices, d.ID, held)
	return nil
}

// Device returns the device with the given id, or ErrNotFound.
func (t *Tx) Device(id protocol.DeviceID) (*store.Device, error) {
	op := fmt.Sprintf("get device %q", id)
	if err := t.damage(op, deviceKey(id)); err != nil {
		return nil, err
	}
	d, ok := t.s.st.devices[id]
	if !ok {
		return nil, notFound(op)
	}
	c := cloneDevice(d)
	return &c, nil
}

// Devices returns the known devices of user ("" for all), by id.
func (t *Tx) Devices(user string) ([]store.Device, error) {
	if err := t.damageUnder("list devices", prefixDevice); err != nil {
		return nil, err
	}
	var out []store.Device
	for _, d := range t.s.st.devices {
		if user == "" || d.User == user {
			out = append(out, cloneDevice(d))
		}
	}
	slices.SortFunc(out, func(a, b store.Device) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out, nil
}

// DeleteDevice removes a device; removing an unknown one is not an error.
func (t *Tx) DeleteDevice(id protocol.DeviceID) error {
	if err := t.writable(fmt.Sprintf("delete device %q", id)); err != nil {
		return err
	}
	t.del(deviceKey(id))
	deleteMap(t, t.s.st.devices, id)
	return nil
}

// PutConversation stores a conversation, replacing the one with its id.
func (t *Tx) PutConversation(c *store.Conversation) error {
	held, err := putJSON(t, fmt.Sprintf("put conversation %d", c.ID), convKey(prefixConv, c.ID), c)
	if err != nil {
		return err
	}
	setMap(t, t.s.st.convs, c.ID, held)
	return nil
}

// Conversation returns a conversation, or ErrNotFound.
func (t *Tx) Conversation(id protocol.ConversationID) (*store.Conversation, error) {
	op := fmt.Sprintf("get conversation %d", id)
	if err := t.damage(op, convKey(prefixConv, id)); err != nil {
		return nil, err
	}
	c, ok := t.s.st.convs[id]
	if !ok {
		return nil, notFound(op)
	}
	v := cloneConversation(c)
	return &v, nil
}

// Conversations returns every conversation, by id.
func (t *Tx) Conversations() ([]store.Conversation, error) {
	if err := t.damageUnder("list conversations", prefixConv); err != nil {
		return nil, err
	}
	var out []store.Conversation
	for _, id := range slices.Sorted(maps.Keys(t.s.st.convs)) {
		out = append(out, cloneConversation(t.s.st.convs[id]))
	}
	return out, nil
}

// DeleteConversation removes a conversation with its group and ratchet
// state, history, cursor and queued messages.
func (t *Tx) DeleteConversation(id protocol.ConversationID) error {
	if err := t.writable(fmt.Sprintf("delete conversation %d", id)); err != nil {
		return err
	}
	st := t.s.st
	for _, prefix := range []string{prefixConv, prefixGroup, prefixRatchet, prefixCursor} {
		t.del(convKey(prefix, id))
	}
	deleteMap(t, st.convs, id)
	deleteMap(t, st.groups, id)
	deleteMap(t, st.ratchets, id)
	deleteMap(t, st.cursors, id)
	if h := st.hists[id]; h != nil {
		for _, m := range h.msgs {
			t.del(msgKey(id, m.Seq))
			if e, ok := expiryOf(m); ok {
				t.removeExpiry(e)
			}
		}
		deleteMap(t, st.hists, id)
	}
	for k := range st.damaged {
		if strings.HasPrefix(k, msgPrefix(id)) {
			t.del(k)
		}
	}
	for oid, o := range st.outbox {
		if o.Conversation == id {
			t.del(outKey(oid))
			deleteMap(t, st.outbox, oid)
		}
	}
	return nil
}

// PutGroupState stores the opaque full MLS group state of a conversation
// (mls.Group.MarshalBinary), replacing the previous one, and deletes the
// conversation's ratchet state: a full state is complete by itself.
func (t *Tx) PutGroupState(conv protocol.ConversationID, state []byte) error {
	if err := t.writable(fmt.Sprintf("put group state of conversation %d", conv)); err != nil {
		return err
	}
	if _, ok := t.s.st.ratchets[conv]; ok || t.s.st.damaged[convKey(prefixRatchet, conv)] != nil {
		t.del(convKey(prefixRatchet, conv))
		deleteMap(t, t.s.st.ratchets, conv)
	}
	t.putBytes(convKey(prefixGroup, conv), state)
	setMap(t, t.s.st.groups, conv, slices.Clone(state))
	return nil
}

// PutRatchetState stores the opaque MLS ratchet state of a conversation
// (mls.Group.RatchetState), replacing the previous one. It is written
// after application messages instead of the full state, and applies on
// top of the full state from [Tx.GroupState] (mls.Group.ApplyRatchetState)
// until the next [Tx.PutGroupState] deletes it.
func (t *Tx) PutRatchetState(conv protocol.ConversationID, state []byte) error {
	if err := t.writable(fmt.Sprintf("put ratchet state of conversation %d", conv)); err != nil {
		return err
	}
	t.putBytes(convKey(prefixRatchet, conv), state)
	setMap(t, t.s.st.ratchets, conv, slices.Clone(state))
	return nil
}

// RatchetState returns the MLS ratchet state of a conversation written
// since its last full group state, or ErrNotFound if there is none.
func (t *Tx) RatchetState(conv protocol.ConversationID) ([]byte, error) {
	return bytesOf(t, fmt.Sprintf("get ratchet state of conversation %d", conv), convKey(prefixRatchet, conv), t.s.st.ratchets, conv)
}

// GroupState returns the MLS group state of a conversation, or ErrNotFound.
func (t *Tx) GroupState(conv protocol.ConversationID) ([]byte, error) {
	return bytesOf(t, fmt.Sprintf("get group state of conversation %d", conv), convKey(prefixGroup, conv), t.s.st.groups, conv)
}

// bytesOf returns a copy of m[k], the record key.
func bytesOf[K comparable](t *Tx, op, key string, m map[K][]byte, k K) ([]byte, error) {
	if err := t.damage(op, key); err != nil {
		return nil, err
	}
	v, ok := m[k]
	if !ok {
		return nil, notFound(op)
	}
	return slices.Clone(v), nil
}

// addExpiry adds e to the expiry index.
func (t *Tx) addExpiry(e expiry) {
	st := t.s.st
	i, found := slices.BinarySearchFunc(st.expiries, e, cmpExpiry)
	if found {
		return
	}
	st.expiries = slices.Insert(st.expiries, i, e)
	t.onUndo(func() {
		if i, found := slices.BinarySearchFunc(st.expiries, e, cmpExpiry); found {
			st.expiries = slices.Delete(st.expiries, i, i+1)
		}
	})
}

// removeExpiry removes e from the expiry index.
func (t *Tx) removeExpiry(e expiry) {
	st := t.s.st
	i, found := slices.BinarySearchFunc(st.expiries, e, cmpExpiry)
	if !found {
		return
	}
	st.expiries = slices.Delete(st.expiries, i, i+1)
	t.onUndo(func() {
		if i, found := slices.BinarySearchFunc(st.expiries, e, cmpExpiry); !found {
			st.expiries = slices.Insert(st.expiries, i, e)
		}
	})
}

// history returns the history of conv, failing if one of its records is
// damaged.
func (t *Tx) history(op string, conv protocol.ConversationID) (*history, error) {
	if err := t.damageUnder(op, msgPrefix(conv)); err != nil {
		return nil, err
	}
	return t.s.st.hists[conv], nil
}

// AddMessage appends a message to its conversation's history and sets
// m.Seq. If the conversation already holds a message with the same id,
// it changes nothing and returns false: replaying an entry after a crash
// never shows a message twice.
func (t *Tx) AddMessage(m *store.Message) (added bool, err error) {
	op := fmt.Sprintf("add message %x to conversation %d", m.ID, m.Conversation)
	if err := t.writable(op); err != nil {
		return false, err
	}
	h, err := t.history(op, m.Conversation)
	if err != nil {
		return false, err
	}
	if h != nil {
		if _, dup := h.byID[m.ID]; dup {
			return false, nil
		}
	}
	seq := int64(1)
	if h != nil && len(h.msgs) > 0 {
		seq = h.msgs[len(h.msgs)-1].Seq + 1
	}
	oldSeq := m.Seq
	m.Seq = seq
	held, err := putJSON(t, op, msgKey(m.Conversation, seq), m)
	if err != nil {
		m.Seq = oldSeq
		return false, err
	}
	st := t.s.st
	if h == nil {
		h = &history{byID: map[[16]byte]int64{}}
		setMap(t, st.hists, m.Conversation, h)
	}
	h.msgs = append(h.msgs, held)
	h.byID[held.ID] = seq
	t.onUndo(func() {
		h.msgs = h.msgs[:len(h.msgs)-1]
		delete(h.byID, held.ID)
	})
	if e, ok := expiryOf(held); ok {
		t.addExpiry(e)
	}
	return true, nil
}

// ExpiredBy returns the conversation and Seq of every message whose
// expiry is at or before now, in order of expiry.
func (t *Tx) ExpiredBy(now time.Time) ([][2]int64, error) {
	var out [][2]int64
	limit := now.Unix()
	for _, e := range t.s.st.expiries {
		if e.at > limit {
			break
		}
		out = append(out, [2]int64{int64(e.conv), e.seq})
	}
	return out, nil
}

// NextExpiry returns when the next message expires; ok is false when
// none will.
func (t *Tx) NextExpiry() (at time.Time, ok bool, err error) {
	if len(t.s.st.expiries) == 0 {
		return time.Time{}, false, nil
	}
	return time.Unix(t.s.st.expiries[0].at, 0), true, nil
}

// message returns the held message conv/seq.
func (t *Tx) message(op string, conv protocol.ConversationID, seq int64) (*history, int, error) {
	if err := t.damage(op, msgKey(conv, seq)); err != nil {
		return nil, 0, err
	}
	h := t.s.st.hists[conv]
	if h == nil {
		return nil, 0, notFound(op)
	}
	i, ok := h.find(seq)
	if !ok {
		return nil, 0, notFound(op)
	}
	return h, i, nil
}

// replaceMessage seals m as message i of h and holds it instead.
func (t *Tx) replaceMessage(op string, h *history, i int, m *store.Message) (*store.Message, error) {
	held, err := putJSON(t, op, msgKey(m.Conversation, m.Seq), m)
	if err != nil {
		return nil, err
	}
	old := h.msgs[i]
	h.msgs[i] = held
	t.onUndo(func() { h.msgs[i] = old })
	if e, ok := expiryOf(old); ok {
		t.removeExpiry(e)
	}
	if e, ok := expiryOf(held); ok {
		t.addExpiry(e)
	}
	return held, nil
}

// ExpireMessage erases message conv/seq (Message.Erase) and forgets its
// expiry. It returns the tombstone, or nil when the message was already
// gone or expired.
func (t *Tx) ExpireMessage(conv protocol.ConversationID, seq int64) (*store.Message, error) {
	op := fmt.Sprintf("expire message %d/%d", conv, seq)
	if err := t.writable(op); err != nil {
		return nil, err
	}
	h, i, err := t.message(op, conv, seq)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if h.msgs[i].Expired {
		return nil, nil
	}
	m := cloneMessage(h.msgs[i])
	m.Erase()
	held, err := t.replaceMessage(op, h, i, &m)
	if err != nil {
		return nil, err
	}
	out := cloneMessage(held)
	return &out, nil
}

// UpdateMessage replaces the stored message m.Conversation/m.Seq with m
// (for edits, deletions, reactions, receipts and delivery state). The id
// must not change.
func (t *Tx) UpdateMessage(m *store.Message) error {
	op := fmt.Sprintf("update message %d/%d", m.Conversation, m.Seq)
	if err := t.writable(op); err != nil {
		return err
	}
	h, i, err := t.message(op, m.Conversation, m.Seq)
	if err != nil {
		return err
	}
	if h.msgs[i].ID != m.ID {
		return fmt.Errorf("kvstore: %s: message id changed", op)
	}
	_, err = t.replaceMessage(op, h, i, m)
	return err
}

// MessageByID returns the message with the given id in a conversation,
// or ErrNotFound.
func (t *Tx) MessageByID(conv protocol.ConversationID, id [16]byte) (*store.Message, error) {
	op := fmt.Sprintf("get message %x in conversation %d", id, conv)
	h, err := t.history(op, conv)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, notFound(op)
	}
	seq, ok := h.byID[id]
	if !ok {
		return nil, notFound(op)
	}
	i, ok := h.find(seq)
	if !ok {
		return nil, notFound(op)
	}
	m := cloneMessage(h.msgs[i])
	return &m, nil
}

// Messages returns up to limit messages of a conversation with Seq above
// after, in order. A limit of 0 or less means no limit.
func (t *Tx) Messages(conv protocol.ConversationID, after int64, limit int) ([]store.Message, error) {
	h, err := t.history(fmt.Sprintf("list messages of conversation %d", conv), conv)
	if err != nil || h == nil {
		return nil, err
	}
	i, found := h.find(after)
	if found {
		i++
	}
	msgs := h.msgs[i:]
	if limit > 0 && len(msgs) > limit {
		msgs = msgs[:limit]
	}
	out := make([]store.Message, len(msgs))
	for j, m := range msgs {
		out[j] = cloneMessage(m)
	}
	return out, nil
}

// LastMessages returns the last n messages of a conversation, in order.
func (t *Tx) LastMessages(conv protocol.ConversationID, n int) ([]store.Message, error) {
	h, err := t.history(fmt.Sprintf("list messages of conversation %d", conv), conv)
	if err != nil || h == nil || n <= 0 {
		return nil, err
	}
	msgs := h.msgs[max(0, len(h.msgs)-n):]
	out := make([]store.Message, len(msgs))
	for j, m := range msgs {
		out[j] = cloneMessage(m)
	}
	return out, nil
}

// LatestMessages returns the last entry (the highest Seq) of every
// conversation's history, by conversation: a conversation whose history
// is empty has none. Only conversations stored with PutConversation are
// listed.
func (t *Tx) LatestMessages() ([]store.Message, error) {
	var out []store.Message
	for _, conv := range slices.Sorted(maps.Keys(t.s.st.convs)) {
		h, err := t.history("list latest messages", conv)
		if err != nil {
			return nil, err
		}
		if h != nil && len(h.msgs) > 0 {
			out = append(out, cloneMessage(h.msgs[len(h.msgs)-1]))
		}
	}
	return out, nil
}

// MessageHeadsAfter calls each with the head of every entry of the
// conversations in after whose Seq is above the position after gives
// it, in no particular order. The MessageHead is valid only during the
// call.
func (t *Tx) MessageHeadsAfter(after map[protocol.ConversationID]int64, each func(*store.MessageHead) error) error {
	var head store.MessageHead
	for conv, pos := range after {
		h, err := t.history("list messages after positions", conv)
		if err != nil {
			return err
		}
		if h == nil {
			continue
		}
		i, found := h.find(pos)
		if found {
			i++
		}
		for _, m := range h.msgs[i:] {
			head = store.MessageHead{Conversation: conv, Seq: m.Seq, Sender: m.Sender, SenderDevice: m.SenderDevice,
				Deleted: m.Deleted, Expired: m.Expired, System: m.System != nil}
			if err := each(&head); err != nil {
				return err
			}
		}
	}
	return nil
}

// MessageTexts calls each with the text of every entry of a
// conversation's history, in order of Seq. The MessageText is valid only
// during the call.
func (t *Tx) MessageTexts(conv protocol.ConversationID, each func(*store.MessageText) error) error {
	h, err := t.history(fmt.Sprintf("list message texts of conversation %d", conv), conv)
	if err != nil || h == nil {
		return err
	}
	var mt store.MessageText
	for _, m := range h.msgs {
		mt = store.MessageText{Conversation: conv, Seq: m.Seq, Sender: m.Sender, Sent: m.Sent, Text: m.Text,
			Deleted: m.Deleted, Content: m.Content, System: m.System != nil}
		if err := each(&mt); err != nil {
			return err
		}
	}
	return nil
}

// Cursor returns the last server seq processed in a conversation (or
// [store.InboxCursor]); 0 if none was set.
func (t *Tx) Cursor(conv protocol.ConversationID) (uint64, error) {
	if err := t.damage(fmt.Sprintf("get cursor of conversation %d", conv), convKey(prefixCursor, conv)); err != nil {
		return 0, err
	}
	return t.s.st.cursors[conv], nil
}

// SetCursor sets the cursor of a conversation (or [store.InboxCursor]).
func (t *Tx) SetCursor(conv protocol.ConversationID, seq uint64) error {
	if err := t.writable(fmt.Sprintf("set cursor of conversation %d", conv)); err != nil {
		return err
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	t.putBytes(convKey(prefixCursor, conv), b[:])
	setMap(t, t.s.st.cursors, conv, seq)
	return nil
}

// Cursors returns every conversation cursor (not the inbox), by
// conversation.
func (t *Tx) Cursors() ([]protocol.Cursor, error) {
	if err := t.damageUnder("list cursors", prefixCursor); err != nil {
		return nil, err
	}
	var out []protocol.Cursor
	for _, conv := range slices.Sorted(maps.Keys(t.s.st.cursors)) {
		if conv != store.InboxCursor {
			out = append(out, protocol.Cursor{Conversation: conv, Seq: t.s.st.cursors[conv]})
		}
	}
	return out, nil
}

// Enqueue adds a message to the outgoing queue and sets o.ID. Queue ids
// are never given twice.
func (t *Tx) Enqueue(o *store.Outgoing) error {
	op := fmt.Sprintf("enqueue message %x to conversation %d", o.MessageID, o.Conversation)
	if err := t.writable(op); err != nil {
		return err
	}
	if err := t.damage(op, keyOutNext); err != nil {
		return err
	}
	st := t.s.st
	id := st.outNext + 1
	for st.outbox[id] != nil || st.damaged[outKey(id)] != nil {
		id++ // the counter was damaged or rolled back: skip ids in use
	}
	oldID := o.ID
	o.ID = id
	held, err := putJSON(t, op, outKey(id), o)
	if err != nil {
		o.ID = oldID
		return err
	}
	setMap(t, st.outbox, id, held)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	t.putBytes(keyOutNext, b[:])
	old := st.outNext
	st.outNext = id
	t.onUndo(func() { st.outNext = old })
	return nil
}

// UpdateOutgoing replaces the queued message o.ID (for example to add the
// ciphertext or count an attempt).
func (t *Tx) UpdateOutgoing(o *store.Outgoing) error {
	op := fmt.Sprintf("update outgoing %d", o.ID)
	if err := t.writable(op); err != nil {
		return err
	}
	if _, ok := t.s.st.outbox[o.ID]; !ok && t.s.st.damaged[outKey(o.ID)] == nil {
		return notFound(op)
	}
	held, err := putJSON(t, op, outKey(o.ID), o)
	if err != nil {
		return err
	}
	setMap(t, t.s.st.outbox, o.ID, held)
	return nil
}

// Outbox returns the queued messages of a conversation (0 for all), in
// queue order.
func (t *Tx) Outbox(conv protocol.ConversationID) ([]store.Outgoing, error) {
	if err := t.damageUnder("list outbox", prefixOutgoing); err != nil {
		return nil, err
	}
	var out []store.Outgoing
	for _, id := range slices.Sorted(maps.Keys(t.s.st.outbox)) {
		if o := t.s.st.outbox[id]; conv == 0 || o.Conversation == conv {
			out = append(out, cloneOutgoing(o))
		}
	}
	return out, nil
}

// Dequeue removes a message from the outgoing queue; removing an unknown
// one is not an error.
func (t *Tx) Dequeue(id int64) error {
	if err := t.writable(fmt.Sprintf("dequeue outgoing %d", id)); err != nil {
		return err
	}
	t.del(outKey(id))
	deleteMap(t, t.s.st.outbox, id)
	return nil
}

// PutKeyPackage stores the private keys of a published KeyPackage under
// its reference.
func (t *Tx) PutKeyPackage(ref, private []byte) error {
	if err := t.writable(fmt.Sprintf("put key package %x", ref)); err != nil {
		return err
	}
	t.putBytes(kpKey(ref), private)
	setMap(t, t.s.st.kps, string(ref), slices.Clone(private))
	return nil
}

// KeyPackage returns the private keys stored under ref, or ErrNotFound.
func (t *Tx) KeyPackage(ref []byte) ([]byte, error) {
	return bytesOf(t, fmt.Sprintf("get key package %x", ref), kpKey(ref), t.s.st.kps, string(ref))
}

// DeleteKeyPackage removes the private keys under ref (once used, for
// forward secrecy); removing an unknown one is not an error.
func (t *Tx) DeleteKeyPackage(ref []byte) error {
	if err := t.writable(fmt.Sprintf("delete key package %x", ref)); err != nil {
		return err
	}
	t.del(kpKey(ref))
	deleteMap(t, t.s.st.kps, string(ref))
	return nil
}

// KeyPackageCount returns the number of stored KeyPackage private keys.
func (t *Tx) KeyPackageCount() (int, error) {
	if err := t.damageUnder("count key packages", prefixKP); err != nil {
		return 0, err
	}
	return len(t.s.st.kps), nil
}

// Setting returns the value of a setting, or ErrNotFound.
func (t *Tx) Setting(name string) ([]byte, error) {
	return bytesOf(t, fmt.Sprintf("get setting %q", name), settingKey(name), t.s.st.settings, name)
}

// Settings returns the settings whose names start with prefix, keyed by
// name.
func (t *Tx) Settings(prefix string) (map[string][]byte, error) {
	if err := t.damageUnder(fmt.Sprintf("list settings %q", prefix+"*"), prefixSetting); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for name, v := range t.s.st.settings {
		if strings.HasPrefix(name, prefix) {
			out[name] = slices.Clone(v)
		}
	}
	return out, nil
}

// SetSetting sets a setting.
func (t *Tx) SetSetting(name string, value []byte) error {
	if err := t.writable(fmt.Sprintf("set setting %q", name)); err != nil {
		return err
	}
	t.putBytes(settingKey(name), value)
	setMap(t, t.s.st.settings, name, slices.Clone(value))
	return nil
}
