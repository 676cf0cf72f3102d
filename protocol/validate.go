package protocol

import (
	"fmt"
	"math"
)

// Range checks. Every integer of a request body or a client frame is
// checked against its documented range when it is decoded: JSON decoding
// already bounds the unsigned 16-bit fields (cipher suites, signature
// schemes) by their Go types, and Validate bounds the rest. A value out of
// range is refused with [CodeBadRequest] (HTTP 400, or an error frame that
// closes the WebSocket) before the server acts on any part of the message.

// MaxSeq is the largest sequence number, cursor, inbox seq and epoch a
// client may send: servers store them as signed 64-bit integers, so
// 2^63-1. No server hands out a larger one.
const MaxSeq = math.MaxInt64

// MaxTTLSeconds is the largest lifetime in seconds a request may name: a
// longer one is not representable as a time.Duration.
const MaxTTLSeconds = math.MaxInt64 / 1_000_000_000

// Validator is implemented by the request bodies and client frames whose
// fields have ranges beyond their Go types. Validate returns a
// *[Error] with [CodeBadRequest] naming the first field out of range, or
// nil.
type Validator interface {
	Validate() error
}

// badField returns the CodeBadRequest error for a field of a message.
func badField(msg, field string, format string, args ...any) *Error {
	return NewError(CodeBadRequest, "%s: %s %s", msg, field, fmt.Sprintf(format, args...))
}

// checkSeq checks a sequence number or an epoch.
func checkSeq(msg, field string, v uint64) error {
	if v > MaxSeq {
		return badField(msg, field, "%d is above the largest seq %d", v, uint64(MaxSeq))
	}
	return nil
}

// checkConversation checks a conversation id: ids are positive.
func checkConversation(msg, field string, id ConversationID) error {
	if id < 1 {
		return badField(msg, field, "%d is not a conversation id (ids are positive)", id)
	}
	return nil
}

// checkCursors checks the cursors of a subscribe or an acknowledgement.
func checkCursors(msg string, cs []Cursor) error {
	for i, c := range cs {
		if err := checkConversation(msg, fmt.Sprintf("cursors[%d].conversation", i), c.Conversation); err != nil {
			return err
		}
		if err := checkSeq(msg, fmt.Sprintf("cursors[%d].seq", i), c.Seq); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks that every cursor names a conversation id (positive)
// and a seq of at most [MaxSeq], and that Inbox is at most MaxSeq.
func (r *AckRequest) Validate() error {
	if err := checkCursors("ack", r.Cursors); err != nil {
		return err
	}
	return checkSeq("ack", "inbox", r.Inbox)
}

// Validate checks the frame like [AckRequest.Validate].
func (f *AckFrame) Validate() error {
	if err := checkCursors("ack frame", f.Cursors); err != nil {
		return err
	}
	return checkSeq("ack frame", "inbox", f.Inbox)
}

// Validate checks that every cursor names a conversation id (positive)
// and a seq of at most [MaxSeq], and that Inbox is at most MaxSeq.
func (f *SubscribeFrame) Validate() error {
	if err := checkCursors("subscribe frame", f.Cursors); err != nil {
		return err
	}
	return checkSeq("subscribe frame", "inbox", f.Inbox)
}

// Validate checks that ClientID has 1 to [MaxClientIDBytes] bytes and
// Conversation is a conversation id (positive).
func (f *SendFrame) Validate() error {
	if f.ClientID == "" || len(f.ClientID) > MaxClientIDBytes {
		// The answer (sent or error) is matched by client_id; an error
		// frame without one closes the connection, so a send must have one.
		return badField("send frame", "client_id", "%d bytes, want 1 to %d", len(f.ClientID), MaxClientIDBytes)
	}
	return checkConversation("send frame", "conversation", f.Conversation)
}

// MaxClientIDBytes bounds SendFrame.ClientID.
const MaxClientIDBytes = 64

// Validate checks that Conversation is a conversation id (positive).
func (f *TypingFrame) Validate() error {
	return checkConversation("typing frame", "conversation", f.Conversation)
}

// Validate checks that Conversation is a conversation id (positive) and
// Message has 1 to [MaxEphemeralBytes] bytes.
func (f *EphemeralFrame) Validate() error {
	if len(f.Message) == 0 {
		return badField("ephemeral frame", "message", "is empty")
	}
	if len(f.Message) > MaxEphemeralBytes {
		return NewError(CodeTooLarge, "ephemeral frame: message is %d bytes, at most %d", len(f.Message), MaxEphemeralBytes)
	}
	return checkConversation("ephemeral frame", "conversation", f.Conversation)
}

// Validate checks that Epoch is at most [MaxSeq].
func (r *HandshakeRequest) Validate() error {
	return checkSeq("handshake", "epoch", r.Epoch)
}

// Validate checks that Uses is at least 1 and TTLSeconds is positive and
// at most [MaxTTLSeconds]. The server may bound both further.
func (r *CreateInviteRequest) Validate() error {
	if r.Uses < 1 {
		return badField("create invite", "uses", "%d is less than 1", r.Uses)
	}
	if r.TTLSeconds < 1 || r.TTLSeconds > MaxTTLSeconds {
		return badField("create invite", "ttl_seconds", "%d is not between 1 and %d", r.TTLSeconds, int64(MaxTTLSeconds))
	}
	return nil
}
