package kvstore

import (
	"crypto/hmac"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// Record keys. Numbers are decimal; names that are not numbers are hex.
const (
	keyCheck        = "check"
	keyIdentity     = "identity"
	keyOutNext      = "outnext"
	keyTrustRoot    = "trust/root"
	keyTrustVersion = "trust/version"

	prefixDevice   = "device/"  // hex of the device id
	prefixContact  = "contact/" // hex of the blinded user name
	prefixConv     = "conv/"    // conversation
	prefixGroup    = "group/"   // conversation
	prefixRatchet  = "ratchet/" // conversation
	prefixCursor   = "cursor/"  // conversation
	prefixMessage  = "msg/"     // conversation/seq
	prefixOutgoing = "out/"     // queue id
	prefixKP       = "kp/"      // hex of the reference
	prefixSetting  = "setting/" // hex of the name
)

func convKey(prefix string, c protocol.ConversationID) string {
	return prefix + strconv.FormatInt(int64(c), 10)
}

func msgKey(c protocol.ConversationID, seq int64) string {
	return prefixMessage + strconv.FormatInt(int64(c), 10) + "/" + strconv.FormatInt(seq, 10)
}

func msgPrefix(c protocol.ConversationID) string {
	return prefixMessage + strconv.FormatInt(int64(c), 10) + "/"
}

func deviceKey(id protocol.DeviceID) string { return prefixDevice + hex.EncodeToString([]byte(id)) }
func outKey(id int64) string                { return prefixOutgoing + strconv.FormatInt(id, 10) }
func kpKey(ref []byte) string               { return prefixKP + hex.EncodeToString(ref) }
func settingKey(name string) string         { return prefixSetting + hex.EncodeToString([]byte(name)) }

// contactRec is a contact's record as held: the contact and the digest
// of its sealed value, which the trust root lists.
type contactRec struct {
	c      *store.Contact
	digest []byte
}

// history is a conversation's messages, by Seq, with the index of their
// ids.
type history struct {
	msgs []*store.Message // ascending Seq
	byID map[[16]byte]int64
}

// find returns the index of seq in h.msgs and whether it is there.
func (h *history) find(seq int64) (int, bool) {
	return slices.BinarySearchFunc(h.msgs, seq, func(m *store.Message, s int64) int {
		switch {
		case m.Seq < s:
			return -1
		case m.Seq > s:
			return 1
		}
		return 0
	})
}

// expiry is an entry of the expiry index: when message conv/seq expires,
// in Unix seconds rounded up.
type expiry struct {
	at   int64
	conv protocol.ConversationID
	seq  int64
}

func cmpExpiry(a, b expiry) int {
	switch {
	case a.at != b.at:
		return cmpInt(a.at, b.at)
	case a.conv != b.conv:
		return cmpInt(int64(a.conv), int64(b.conv))
	}
	return cmpInt(a.seq, b.seq)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// state is the store's records in memory.
type state struct {
	identity *store.Identity
	devices  map[protocol.DeviceID]*store.Device
	contacts map[string]*contactRec // by user name
	convs    map[protocol.ConversationID]*store.Conversation
	groups   map[protocol.ConversationID][]byte
	ratchets map[protocol.ConversationID][]byte
	hists    map[protocol.ConversationID]*history
	expiries []expiry // sorted by cmpExpiry
	cursors  map[protocol.ConversationID]uint64
	outbox   map[int64]*store.Outgoing
	outNext  int64 // the last queue id given
	kps      map[string][]byte
	settings map[string][]byte
	root     *trustRoot // nil when missing or damaged (before the trust check)
	version  uint64     // the trust root's version kept apart; 0 when missing
	// damaged are the records that did not open or decode, by key, with
	// the error that reads needing them return.
	damaged map[string]error
}

func newState() *state {
	return &state{
		devices:  map[protocol.DeviceID]*store.Device{},
		contacts: map[string]*contactRec{},
		convs:    map[protocol.ConversationID]*store.Conversation{},
		groups:   map[protocol.ConversationID][]byte{},
		ratchets: map[protocol.ConversationID][]byte{},
		hists:    map[protocol.ConversationID]*history{},
		cursors:  map[protocol.ConversationID]uint64{},
		outbox:   map[int64]*store.Outgoing{},
		kps:      map[string][]byte{},
		settings: map[string][]byte{},
		damaged:  map[string]error{},
	}
}

// decodeJSON decodes a record's plaintext into v.
func decodeJSON(key string, p []byte, v any) error {
	if err := json.Unmarshal(p, v); err != nil {
		return fmt.Errorf("%w: record %s: %v", store.ErrCorrupt, key, err)
	}
	return nil
}

// parseConv parses a conversation number of a record key.
func parseConv(key, s string) (protocol.ConversationID, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%w: record %s: bad number %q", store.ErrCorrupt, key, s)
	}
	return protocol.ConversationID(n), nil
}

// parseHex parses the hex part of a record key.
func parseHex(key, s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || hex.EncodeToString(b) != s {
		return nil, fmt.Errorf("%w: record %s: bad hex %q", store.ErrCorrupt, key, s)
	}
	return b, nil
}

// decodeState opens and decodes every record. A record that does not
// open or decode is kept in damaged; a key the store does not know fails.
func (s *Store) decodeState(recs map[string][]byte) (*state, error) {
	st := newState()
	for key, sealed := range recs {
		if key == keyCheck {
			continue
		}
		p, err := s.open(key, sealed)
		if err == nil {
			err = st.decodeRecord(s, key, p, sealed)
			clear(p)
		}
		if err != nil {
			if !isKnownKey(key) {
				return nil, err
			}
			st.damaged[key] = err
		}
	}
	for _, h := range st.hists {
		slices.SortFunc(h.msgs, func(a, b *store.Message) int { return cmpInt(a.Seq, b.Seq) })
	}
	slices.SortFunc(st.expiries, cmpExpiry)
	return st, nil
}

// isKnownKey reports whether key has the form of a record key.
func isKnownKey(key string) bool {
	switch key {
	case keyIdentity, keyOutNext, keyTrustRoot, keyTrustVersion:
		return true
	}
	for _, p := range []string{prefixDevice, prefixContact, prefixConv, prefixGroup, prefixRatchet, prefixCursor, prefixMessage, prefixOutgoing, prefixKP, prefixSetting} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// decodeRecord adds the opened record key to st.
func (st *state) decodeRecord(s *Store, key string, p, sealed []byte) error {
	switch key {
	case keyIdentity:
		var id store.Identity
		if err := decodeJSON(key, p, &id); err != nil {
			return err
		}
		st.identity = &id
		return nil
	case keyOutNext:
		n, err := decodeUint64(key, p)
		st.outNext = int64(n)
		return err
	case keyTrustRoot:
		var r trustRoot
		if err := decodeJSON(key, p, &r); err != nil {
			return err
		}
		if r.Rows == nil {
			r.Rows = map[string][]byte{}
		}
		st.root = &r
		return nil
	case keyTrustVersion:
		var err error
		st.version, err = decodeUint64(key, p)
		return err
	}
	prefix, rest, _ := strings.Cut(key, "/")
	prefix += "/"
	switch prefix {
	case prefixDevice:
		id, err := parseHex(key, rest)
		if err != nil {
			return err
		}
		var d store.Device
		if err := decodeJSON(key, p, &d); err != nil {
			return err
		}
		if string(d.ID) != string(id) {
			return fmt.Errorf("%w: record %s holds device %q", store.ErrCorrupt, key, d.ID)
		}
		st.devices[d.ID] = &d
	case prefixContact:
		h, err := parseHex(key, rest)
		if err != nil {
			return err
		}
		var c store.Contact
		if err := decodeJSON(key, p, &c); err != nil {
			return err
		}
		if !hmac.Equal(s.blind("contact", []byte(c.User)), h) {
			return fmt.Errorf("%w: record %s holds another user", store.ErrCorrupt, key)
		}
		st.contacts[c.User] = &contactRec{c: &c, digest: digest(sealed)}
	case prefixConv, prefixGroup, prefixRatchet, prefixCursor:
		conv, err := parseConv(key, rest)
		if err != nil {
			return err
		}
		return st.decodeConvRecord(key, prefix, conv, p)
	case prefixMessage:
		cs, ss, _ := strings.Cut(rest, "/")
		conv, err1 := parseConv(key, cs)
		seq, err2 := parseConv(key, ss)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%w: record %s: bad message key", store.ErrCorrupt, key)
		}
		var m store.Message
		if err := decodeJSON(key, p, &m); err != nil {
			return err
		}
		if m.Conversation != conv || m.Seq != int64(seq) || m.Seq < 1 {
			return fmt.Errorf("%w: record %s holds message %d/%d", store.ErrCorrupt, key, m.Conversation, m.Seq)
		}
		h := st.hists[conv]
		if h == nil {
			h = &history{byID: map[[16]byte]int64{}}
			st.hists[conv] = h
		}
		if _, dup := h.byID[m.ID]; dup {
			return fmt.Errorf("%w: record %s repeats a message id", store.ErrCorrupt, key)
		}
		h.msgs = append(h.msgs, &m)
		h.byID[m.ID] = m.Seq
		if e, ok := expiryOf(&m); ok {
			st.expiries = append(st.expiries, e)
		}
	case prefixOutgoing:
		id, err := parseConv(key, rest)
		if err != nil {
			return err
		}
		var o store.Outgoing
		if err := decodeJSON(key, p, &o); err != nil {
			return err
		}
		if o.ID != int64(id) {
			return fmt.Errorf("%w: record %s holds queued message %d", store.ErrCorrupt, key, o.ID)
		}
		st.outbox[o.ID] = &o
	case prefixKP:
		ref, err := parseHex(key, rest)
		if err != nil {
			return err
		}
		st.kps[string(ref)] = slices.Clone(p)
	case prefixSetting:
		name, err := parseHex(key, rest)
		if err != nil {
			return err
		}
		st.settings[string(name)] = slices.Clone(p)
	default:
		return fmt.Errorf("%w: unknown record %s", store.ErrCorrupt, key)
	}
	return nil
}

// decodeConvRecord adds a record kept per conversation to st.
func (st *state) decodeConvRecord(key, prefix string, conv protocol.ConversationID, p []byte) error {
	switch prefix {
	case prefixConv:
		var c store.Conversation
		if err := decodeJSON(key, p, &c); err != nil {
			return err
		}
		if c.ID != conv {
			return fmt.Errorf("%w: record %s holds conversation %d", store.ErrCorrupt, key, c.ID)
		}
		st.convs[conv] = &c
	case prefixGroup:
		st.groups[conv] = slices.Clone(p)
	case prefixRatchet:
		st.ratchets[conv] = slices.Clone(p)
	case prefixCursor:
		n, err := decodeUint64(key, p)
		if err != nil {
			return err
		}
		st.cursors[conv] = n
	}
	return nil
}

func decodeUint64(key string, p []byte) (uint64, error) {
	if len(p) != 8 {
		return 0, fmt.Errorf("%w: record %s is %d bytes, want 8", store.ErrCorrupt, key, len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}

// expiryOf returns the expiry index entry of m, if it has one.
func expiryOf(m *store.Message) (expiry, bool) {
	if m.Expires.IsZero() || m.Expired {
		return expiry{}, false
	}
	// Rounded up to whole seconds, so that a message is never erased
	// before its time.
	at := m.Expires.Unix()
	if m.Expires.Nanosecond() > 0 {
		at++
	}
	return expiry{at: at, conv: m.Conversation, seq: m.Seq}, true
}
