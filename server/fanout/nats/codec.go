package nats

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/store"
)

// Subject kinds, the token after the prefix.
const (
	kindConv   = "conv"
	kindDevice = "device"
	kindResync = "resync"
)

// subject returns the subject of topic t under prefix p (with its trailing
// dot), or false when t cannot be routed (a device id that is not a subject
// token; valid protocol device ids always are).
func subject(p string, t delivery.Topic) (string, bool) {
	if t.Device != "" {
		if !validToken(string(t.Device)) {
			return "", false
		}
		return p + kindDevice + "." + string(t.Device), true
	}
	return p + kindConv + "." + strconv.FormatInt(int64(t.Conversation), 10), true
}

// parseSubject is the inverse of subject for a subject without the
// prefix; resync reports a p.resync subject.
func parseSubject(s string) (t delivery.Topic, resync bool, err error) {
	kind, tok, _ := strings.Cut(s, ".")
	switch kind {
	case kindResync:
		if tok != "" {
			break
		}
		return t, true, nil
	case kindConv:
		id, err := strconv.ParseInt(tok, 10, 64)
		if err != nil || strconv.FormatInt(id, 10) != tok {
			break
		}
		t.Conversation = store.ConversationID(id)
		return t, false, nil
	case kindDevice:
		if !validToken(tok) {
			break
		}
		t.Device = store.DeviceID(tok)
		return t, false, nil
	}
	return t, false, errors.New("fanout/nats: decode subject: unknown kind or invalid id")
}

// The record format, version 1:
//
//	version  uint8 = 1
//	flags    uint8: bit 0 typing signal, bit 1 typing (true) or stopped,
//	         bit 2 ephemeral message (not with bits 0 and 1)
//	origin   uint8 length (1..255), bytes
//	device   uint8 length (1..255), bytes; present only with bit 0 or 2
//	message  uint16 length (1..protocol.MaxEphemeralBytes), bytes; only with bit 2
//
// A record must be consumed exactly.
const (
	recordVersion = 1
	flagTyping    = 1 << 0
	flagOn        = 1 << 1
	flagEphemeral = 1 << 2
)

// record is a decoded payload.
type record struct {
	origin    string
	typing    *delivery.Typing
	ephemeral *delivery.Ephemeral
}

// appendRecord appends the encoding of r to b. origin and the typing
// device must be 1 to 255 bytes (New and Publish check).
func appendRecord(b []byte, r record) []byte {
	var flags byte
	if r.ephemeral != nil {
		flags |= flagEphemeral
	}
	if r.typing != nil {
		flags |= flagTyping
		if r.typing.Typing {
			flags |= flagOn
		}
	}
	b = append(b, recordVersion, flags, byte(len(r.origin)))
	b = append(b, r.origin...)
	if r.typing != nil {
		b = append(b, byte(len(r.typing.Device)))
		b = append(b, r.typing.Device...)
	}
	if r.ephemeral != nil {
		b = append(b, byte(len(r.ephemeral.Device)))
		b = append(b, r.ephemeral.Device...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.ephemeral.Message)))
		b = append(b, r.ephemeral.Message...)
	}
	return b
}

// errRecord is returned for every malformed record: the receiver only
// counts them.
var errRecord = errors.New("fanout/nats: decode record: malformed")

// parseRecord decodes b, which must be one whole record.
func parseRecord(b []byte) (record, error) {
	var r record
	if len(b) < 3 || b[0] != recordVersion || b[1]&^(flagTyping|flagOn|flagEphemeral) != 0 || b[1]&flagEphemeral != 0 && b[1] != flagEphemeral {
		return r, errRecord
	}
	flags := b[1]
	origin, rest, ok := lengthPrefixed(b[2:])
	if !ok {
		return r, errRecord
	}
	r.origin = string(origin)
	if flags&flagTyping != 0 {
		var dev []byte
		if dev, rest, ok = lengthPrefixed(rest); !ok {
			return r, errRecord
		}
		r.typing = &delivery.Typing{Device: store.DeviceID(dev), Typing: flags&flagOn != 0}
	} else if flags&flagOn != 0 {
		return r, errRecord
	}
	if flags&flagEphemeral != 0 {
		var dev []byte
		if dev, rest, ok = lengthPrefixed(rest); !ok || len(rest) < 2 {
			return r, errRecord
		}
		n := int(binary.BigEndian.Uint16(rest))
		if n == 0 || n > protocol.MaxEphemeralBytes || n != len(rest)-2 {
			return r, errRecord
		}
		r.ephemeral = &delivery.Ephemeral{Device: store.DeviceID(dev), Message: append([]byte(nil), rest[2:]...)}
		rest = nil
	}
	if len(rest) != 0 {
		return r, errRecord
	}
	return r, nil
}

// lengthPrefixed splits a uint8-length-prefixed, non-empty field off b.
func lengthPrefixed(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 1 || b[0] == 0 || int(b[0]) > len(b)-1 {
		return nil, nil, false
	}
	n := int(b[0])
	return b[1 : 1+n], b[1+n:], true
}
