package protocol

import (
	"time"
)

// Linking a device (docs/protocol.md, "Linking a device"). The device
// being linked creates a rendezvous mailbox at the server (POST /v1/link)
// and shows its id together with a secret (the link code); a device of
// the account that holds the code writes to the mailbox and reads from
// it. The messages are opaque to the server: the devices encrypt and
// authenticate them with keys derived from an X25519 exchange and the
// code's secret, which never passes the server.

// LinkTTL is how long a link mailbox lives after its creation.
const LinkTTL = 10 * time.Minute

// MaxLinkMessageBytes bounds one message of a link mailbox.
const MaxLinkMessageBytes = 64 << 10

// MaxLinkMessages bounds the messages of one link mailbox, both sides
// together.
const MaxLinkMessages = 16

// MaxLinkWait bounds the wait of a long poll (GET /v1/link/{id}?wait=N).
const MaxLinkWait = 30 * time.Second

// LinkIDLength is the length of a link mailbox id: base32 characters
// (RFC 4648 alphabet, upper case) of 40 random bits.
const LinkIDLength = 8

// LinkTokenHeader carries the token of the device being linked, which
// authorizes its requests to the mailbox it created (it has no session).
const LinkTokenHeader = "Parley-Link-Token"

// LinkSide names who wrote a message of a link mailbox.
type LinkSide string

// The sides of a link.
const (
	// LinkSideNew is the device being linked, which created the mailbox.
	LinkSideNew LinkSide = "new"
	// LinkSideExisting is a device of the account that links it.
	LinkSideExisting LinkSide = "existing"
)

// ValidLinkID reports whether id has the form of a link mailbox id.
func ValidLinkID(id string) bool {
	if len(id) != LinkIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// CreateLinkRequest creates a link mailbox (POST /v1/link, no session)
// holding its first message, from the device being linked.
type CreateLinkRequest struct {
	// Message is the first message (at most MaxLinkMessageBytes).
	Message []byte `json:"message"`
}

// Validate checks the message's size.
func (r *CreateLinkRequest) Validate() error {
	return checkLinkMessage("create link", r.Message)
}

// CreateLinkResponse answers POST /v1/link.
type CreateLinkResponse struct {
	// ID is the mailbox id (see ValidLinkID).
	ID string `json:"id"`
	// Token authorizes the creator's later requests (LinkTokenHeader).
	Token string `json:"token"`
	// Expires is when the mailbox and its messages are deleted.
	Expires time.Time `json:"expires"`
}

// PostLinkRequest appends a message to a link mailbox
// (POST /v1/link/{id}), from the device being linked (with its token)
// or from a device of an account (with its session; the first such
// message claims the mailbox for the account).
type PostLinkRequest struct {
	// Message is the message (at most MaxLinkMessageBytes).
	Message []byte `json:"message"`
}

// Validate checks the message's size.
func (r *PostLinkRequest) Validate() error {
	return checkLinkMessage("post link message", r.Message)
}

func checkLinkMessage(msg string, m []byte) error {
	if len(m) == 0 {
		return badField(msg, "message", "is empty")
	}
	if len(m) > MaxLinkMessageBytes {
		return NewError(CodeTooLarge, "%s: message of %d bytes exceeds %d", msg, len(m), MaxLinkMessageBytes)
	}
	return nil
}

// PostLinkResponse answers POST /v1/link/{id}.
type PostLinkResponse struct {
	// Seq is the message's position in the mailbox.
	Seq uint64 `json:"seq"`
}

// LinkMessage is a message of a link mailbox.
type LinkMessage struct {
	// Seq numbers the mailbox's messages from 1.
	Seq uint64 `json:"seq"`
	// From says which side wrote it.
	From LinkSide `json:"from"`
	// Message is the message.
	Message []byte `json:"message"`
}

// LinkMessages answers GET /v1/link/{id}?after=SEQ&wait=SECONDS: the
// messages of the other side with seq above after, waiting up to wait
// seconds (at most MaxLinkWait) for one when there is none yet.
type LinkMessages struct {
	// Messages are the messages, in order.
	Messages []LinkMessage `json:"messages"`
	// Expires is when the mailbox is deleted.
	Expires time.Time `json:"expires"`
}
