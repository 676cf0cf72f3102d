package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// FrameType names a WebSocket frame: the "type" member of its JSON object.
type FrameType string

// The WebSocket frame types.
const (
	FrameSubscribe FrameType = "subscribe" // FrameSubscribe: client → server, SubscribeFrame.
	FrameAck       FrameType = "ack"       // FrameAck: client → server, AckFrame.
	FrameSend      FrameType = "send"      // FrameSend: client → server, SendFrame.
	FrameSent      FrameType = "sent"      // FrameSent: server → client, SentFrame.
	FrameTyping    FrameType = "typing"    // FrameTyping: both directions, TypingFrame.
	FrameEphemeral FrameType = "ephemeral" // FrameEphemeral: both directions, EphemeralFrame.
	FrameEntry     FrameType = "entry"     // FrameEntry: server → client, EntryFrame.
	FrameInbox     FrameType = "inbox"     // FrameInbox: server → client, InboxFrame.
	FrameError     FrameType = "error"     // FrameError: server → client, ErrorFrame.
	FramePing      FrameType = "ping"      // FramePing: client → server, PingFrame.
	FramePong      FrameType = "pong"      // FramePong: server → client, PongFrame.
	FrameRevoked   FrameType = "revoked"   // FrameRevoked: server → client, RevokedFrame.
)

// Frame is one WebSocket message. Every frame is one of the *Frame types of
// this package; [MarshalFrame] adds the "type" member and [UnmarshalFrame]
// dispatches on it.
type Frame interface {
	// FrameType returns the frame's type.
	FrameType() FrameType
}

// SubscribeFrame starts (or restarts) delivery on a connection. For every
// listed conversation the server sends the entries after Seq; for the
// device's other conversations it starts after the device's acknowledged
// cursor. Inbox entries after Inbox are sent. Then new entries follow as
// they are appended, in seq order per conversation.
type SubscribeFrame struct {
	// Cursors are the last seqs the client has processed.
	Cursors []Cursor `json:"cursors,omitempty"`
	// Inbox is the last inbox seq the client has processed.
	Inbox uint64 `json:"inbox,omitempty"`
	// Revocations asks for "revoked" frames (see [RevokedFrame]): a
	// client that cannot read them leaves it false and is sent none.
	Revocations bool `json:"revocations,omitempty"`
	// Ephemeral asks for "ephemeral" frames (see [EphemeralFrame]): a
	// client that cannot read them, or does not want typing indicators,
	// leaves it false and is sent none.
	Ephemeral bool `json:"ephemeral,omitempty"`
	// Binary asks for entries as binary entry frames (see
	// [MarshalBinaryEntry]): a client that cannot read them leaves it
	// false and is sent JSON "entry" frames.
	Binary bool `json:"binary,omitempty"`
}

// AckFrame acknowledges entries, like POST /v1/ack. It has no answer.
type AckFrame struct {
	// Cursors are the acknowledged positions; cursors only move forward.
	Cursors []Cursor `json:"cursors,omitempty"`
	// Inbox acknowledges (and deletes) inbox entries up to this seq.
	Inbox uint64 `json:"inbox,omitempty"`
}

// SendFrame posts an application message (PrivateMessage). The server
// answers with a SentFrame once the entry is durable, or an ErrorFrame,
// both carrying ClientID.
type SendFrame struct {
	// ClientID is chosen by the client to match the answer (≤ 64 bytes).
	ClientID string `json:"client_id"`
	// Conversation is the conversation.
	Conversation ConversationID `json:"conversation"`
	// Message is the MLSMessage-framed PrivateMessage.
	Message []byte `json:"message"`
}

// SentFrame confirms a SendFrame: the entry is durable at Seq.
type SentFrame struct {
	// ClientID echoes the SendFrame's id.
	ClientID string `json:"client_id"`
	// Conversation is the conversation.
	Conversation ConversationID `json:"conversation"`
	// Seq is the entry's seq.
	Seq uint64 `json:"seq"`
	// Time is when the server stored it.
	Time time.Time `json:"time"`
}

// TypingFrame is an ephemeral signal, relayed only to connected member
// devices and never stored. The server fills Device when relaying.
type TypingFrame struct {
	// Conversation is the conversation.
	Conversation ConversationID `json:"conversation"`
	// Device is the typing device (set by the server).
	Device DeviceID `json:"device,omitempty"`
	// Typing is true while typing, false when stopped.
	Typing bool `json:"typing"`
}

// EphemeralFrame carries an ephemeral application message (an
// MLSMessage-framed PrivateMessage, such as a typing indicator) that the
// server relays to the conversation's other connected member devices and
// never stores: it is not acknowledged, not in the log, and lost for
// devices that are not connected. From a client it names Conversation and
// Message; the server fills Device when relaying.
type EphemeralFrame struct {
	// Conversation is the conversation.
	Conversation ConversationID `json:"conversation"`
	// Device is the sending device (set by the server).
	Device DeviceID `json:"device,omitempty"`
	// Message is the MLSMessage-framed PrivateMessage, at most
	// [MaxEphemeralBytes].
	Message []byte `json:"message"`
}

// MaxEphemeralBytes bounds EphemeralFrame.Message.
const MaxEphemeralBytes = 1024

// EntryFrame delivers one conversation log entry.
type EntryFrame struct {
	Entry
}

// InboxFrame delivers one Welcome from the device's inbox.
type InboxFrame struct {
	InboxEntry
}

// ErrorFrame reports an error. With ClientID it answers that SendFrame;
// without it the server closes the connection after sending it.
type ErrorFrame struct {
	// ClientID is the id of the failed SendFrame, if any.
	ClientID string `json:"client_id,omitempty"`
	Error
}

// RevokedFrame lists the revoked and disabled devices that are still
// members of the device's conversations, like GET /v1/revocations. The
// server sends it, to a connection that subscribed with Revocations set,
// after each subscribe when the list is not empty, and again when a
// device of one of its conversations is revoked or disabled through the
// server while it is connected; the same list is not sent twice in a row.
type RevokedFrame struct {
	RevokedDevices
}

// PingFrame asks for a PongFrame with the same nonce.
type PingFrame struct {
	// Nonce is echoed.
	Nonce string `json:"nonce,omitempty"`
}

// PongFrame answers a PingFrame.
type PongFrame struct {
	// Nonce echoes the ping's nonce.
	Nonce string `json:"nonce,omitempty"`
}

// FrameType returns FrameSubscribe.
func (*SubscribeFrame) FrameType() FrameType { return FrameSubscribe }

// FrameType returns FrameAck.
func (*AckFrame) FrameType() FrameType { return FrameAck }

// FrameType returns FrameSend.
func (*SendFrame) FrameType() FrameType { return FrameSend }

// FrameType returns FrameSent.
func (*SentFrame) FrameType() FrameType { return FrameSent }

// FrameType returns FrameTyping.
func (*TypingFrame) FrameType() FrameType { return FrameTyping }

// FrameType returns FrameEphemeral.
func (*EphemeralFrame) FrameType() FrameType { return FrameEphemeral }

// FrameType returns FrameEntry.
func (*EntryFrame) FrameType() FrameType { return FrameEntry }

// FrameType returns FrameInbox.
func (*InboxFrame) FrameType() FrameType { return FrameInbox }

// FrameType returns FrameError.
func (*ErrorFrame) FrameType() FrameType { return FrameError }

// FrameType returns FrameRevoked.
func (*RevokedFrame) FrameType() FrameType { return FrameRevoked }

// FrameType returns FramePing.
func (*PingFrame) FrameType() FrameType { return FramePing }

// FrameType returns FramePong.
func (*PongFrame) FrameType() FrameType { return FramePong }

// newFrame returns a zero frame of the type, or nil for an unknown type.
func newFrame(t FrameType) Frame {
	switch t {
	case FrameSubscribe:
		return new(SubscribeFrame)
	case FrameAck:
		return new(AckFrame)
	case FrameSend:
		return new(SendFrame)
	case FrameSent:
		return new(SentFrame)
	case FrameTyping:
		return new(TypingFrame)
	case FrameEphemeral:
		return new(EphemeralFrame)
	case FrameEntry:
		return new(EntryFrame)
	case FrameInbox:
		return new(InboxFrame)
	case FrameError:
		return new(ErrorFrame)
	case FramePing:
		return new(PingFrame)
	case FramePong:
		return new(PongFrame)
	case FrameRevoked:
		return new(RevokedFrame)
	}
	return nil
}

// MarshalFrame encodes f as a JSON object with its "type" member first.
func MarshalFrame(f Frame) ([]byte, error) {
	body, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("protocol: marshal %s frame: %v", f.FrameType(), err)
	}
	typ, _ := json.Marshal(f.FrameType())
	out := make([]byte, 0, len(body)+len(typ)+9)
	out = append(out, `{"type":`...)
	out = append(out, typ...)
	if len(body) > 2 { // not "{}"
		out = append(out, ',')
	}
	return append(out, body[1:]...), nil
}

// UnmarshalFrame decodes one WebSocket message into the frame its "type"
// names. It rejects anything but a single JSON object, unknown types and
// malformed fields; unknown members are ignored. A frame that implements
// [Validator] is validated, and a field out of range is reported as the
// *[Error] that Validate returned.
func UnmarshalFrame(data []byte) (Frame, error) {
	if typ, ok := leadingType(data); ok {
		// The common shape, as MarshalFrame writes it: one pass fewer.
		// json.Unmarshal still checks the whole message.
		return unmarshalAs(typ, data)
	}
	var head struct {
		Type *FrameType `json:"type"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&head); err != nil {
		return nil, fmt.Errorf("protocol: decode frame: %v", err)
	}
	if dec.More() || dec.InputOffset() != int64(len(bytes.TrimRight(data, " \t\r\n"))) {
		return nil, fmt.Errorf("protocol: decode frame: trailing data after the JSON object")
	}
	if head.Type == nil {
		return nil, fmt.Errorf("protocol: decode frame: missing type")
	}
	return unmarshalAs(*head.Type, data)
}

// leadingType returns the type of a message that starts with a "type"
// member holding a plain lowercase string and names no other "type"
// member; ok is false for any other message, which then takes the general
// path.
func leadingType(data []byte) (FrameType, bool) {
	const prefix = `{"type":"`
	if !bytes.HasPrefix(data, []byte(prefix)) {
		return "", false
	}
	rest := data[len(prefix):]
	i := 0
	for i < len(rest) && i <= 16 && rest[i] >= 'a' && rest[i] <= 'z' {
		i++
	}
	if i == 0 || i+1 >= len(rest) || rest[i] != '"' || rest[i+1] != ',' && rest[i+1] != '}' {
		return "", false
	}
	if bytes.Contains(rest[i+1:], []byte(`"type"`)) { // a later duplicate wins in encoding/json
		return "", false
	}
	return FrameType(rest[:i]), true
}

// unmarshalAs decodes data as a frame of the type.
func unmarshalAs(typ FrameType, data []byte) (Frame, error) {
	f := newFrame(typ)
	if f == nil {
		return nil, fmt.Errorf("protocol: decode frame: unknown type %.32q", string(typ))
	}
	if err := json.Unmarshal(data, f); err != nil {
		return nil, fmt.Errorf("protocol: decode %s frame: %v", typ, err)
	}
	if v, ok := f.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return f, nil
}
