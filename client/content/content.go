// Package content defines what travels inside Parley's MLS application
// messages: text, replies, reactions, edits, deletions, read receipts,
// attachments and the conversation metadata that must stay encrypted
// (name, topic).
//
// A [Message] has a client-generated [MessageID] (16 random bytes), the
// sender's clock time, a [Kind] and a set of fields. The encoding is
// binary, deterministic and extensible; docs/content.md is its
// specification:
//
//	uint8   version (1)
//	[16]byte message id
//	int64   sent, Unix milliseconds
//	uint16  kind
//	field*  uint16 tag, uint32 length, length bytes of value
//
// with big-endian integers and fields in strictly increasing tag order,
// each at most once, and a field present only when its value is not the
// zero value. A decoder keeps fields whose tag it does not know in
// [Message.Unknown] and messages whose kind it does not know (with their
// known fields decoded), so that an old client neither fails on nor loses
// what a newer one sends: [Encode] of a decoded message reproduces its
// input byte for byte. Changing the meaning of an existing tag or kind
// needs a new version; adding one does not.
//
// The package does no cryptography: the MLS layer encrypts and
// authenticates the encoded bytes, and names the sender.
package content

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/parley-chat/parley/client/attach"
)

// Version is the encoding version, the first byte of every message.
const Version = 1

// Limits of the encoding. Decode rejects, and Encode refuses, a message
// beyond any of them.
const (
	// MaxEncodedSize bounds the whole encoded message.
	MaxEncodedSize = 128 << 10
	// MaxTextSize bounds Text, in bytes of UTF-8.
	MaxTextSize = 64 << 10
	// MaxEmojiSize bounds Emoji, in bytes of UTF-8.
	MaxEmojiSize = 64
	// MaxNameSize bounds the conversation name, in bytes of UTF-8.
	MaxNameSize = 256
	// MaxTopicSize bounds the conversation topic, in bytes of UTF-8.
	MaxTopicSize = 1024
	// MaxFileNameSize bounds an attachment's file name, in bytes of UTF-8.
	MaxFileNameSize = 255
	// MaxMediaTypeSize bounds an attachment's media type.
	MaxMediaTypeSize = 255
	// MaxBlobIDSize bounds an attachment's blob id.
	MaxBlobIDSize = 128
	// MaxReadIDs bounds the message ids of one read receipt.
	MaxReadIDs = 256
	// MaxMentions bounds the users one message mentions.
	MaxMentions = 64
	// MaxMentionSize bounds one mentioned user name, in bytes.
	MaxMentionSize = 64
	// MaxFields bounds the fields of a message, known and unknown.
	MaxFields = 64
)

// headerSize is the size of the fixed header: version, id, sent, kind.
const headerSize = 1 + 16 + 8 + 2

// fieldHeaderSize is the size of a field's tag and length.
const fieldHeaderSize = 2 + 4

// ErrUnsupportedVersion is returned (wrapped) by [Decode] for a message of
// another encoding version: the sender runs an incompatible client.
var ErrUnsupportedVersion = errors.New("content: unsupported version")

// MessageID identifies a message within its conversation. The sending
// client draws it at random; edits, deletions, reactions, replies and read
// receipts refer to messages by it. The zero ID means "none".
type MessageID [16]byte

// NewMessageID returns a fresh random message id.
func NewMessageID() MessageID {
	var id MessageID
	rand.Read(id[:]) // never fails since Go 1.24
	return id
}

// IsZero reports whether id is the zero id ("none").
func (id MessageID) IsZero() bool { return id == MessageID{} }

// String returns the lowercase hex of the id.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the id as its 32 hex digits (so JSON carries them).
func (id MessageID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes the 32 hex digits written by MarshalText.
func (id *MessageID) UnmarshalText(b []byte) error {
	v, err := ParseMessageID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseMessageID decodes the 32-digit hex form of a message id.
func ParseMessageID(s string) (MessageID, error) {
	var id MessageID
	if len(s) != 32 {
		return id, fmt.Errorf("content: parse message id %q: want 32 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("content: parse message id %q: %v", s, err)
	}
	return id, nil
}

// Kind says what a message does.
type Kind uint16

// The kinds of messages. Each lists the fields it requires; any message
// may carry other fields, which receivers that do not need them ignore.
const (
	// KindText is a text message: Text, optionally ReplyTo.
	KindText Kind = 1
	// KindReaction adds (or with Remove, removes) the sender's reaction
	// Emoji to the message Target.
	KindReaction Kind = 2
	// KindEdit replaces the Text of the sender's message Target.
	KindEdit Kind = 3
	// KindDelete deletes the sender's message Target for everyone.
	KindDelete Kind = 4
	// KindReadReceipt says that the sender has read every message up to
	// and including ReadUpTo, and the messages ReadIDs (at least one of
	// the two).
	KindReadReceipt Kind = 5
	// KindAttachment shares a file: Attachment, optionally a caption in
	// Text and ReplyTo.
	KindAttachment Kind = 6
	// KindGroupMetadata changes the conversation's Name and/or Topic,
	// or marks it Direct (a 1:1 conversation).
	KindGroupMetadata Kind = 7
	// KindTyping says that the sender started typing in the conversation,
	// or with Remove stopped. It travels only as an ephemeral message
	// (relayed to connected members, never stored by the server); a
	// receiver never keeps it in the history.
	KindTyping Kind = 8
)

var kindNames = map[Kind]string{
	KindText:          "text",
	KindReaction:      "reaction",
	KindEdit:          "edit",
	KindDelete:        "delete",
	KindReadReceipt:   "read-receipt",
	KindAttachment:    "attachment",
	KindGroupMetadata: "group-metadata",
	KindTyping:        "typing",
}

// Known reports whether this version of the package knows the kind.
func (k Kind) Known() bool { _, ok := kindNames[k]; return ok }

// String returns the kind's name, or "kind(N)" for an unknown kind.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint16(k))
}

// MarshalText encodes the kind by name (see String), so JSON carries it.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes a name written by MarshalText, including
// "kind(N)" for kinds this version does not know.
func (k *Kind) UnmarshalText(b []byte) error {
	for kind, name := range kindNames {
		if name == string(b) {
			*k = kind
			return nil
		}
	}
	var n uint16
	if _, err := fmt.Sscanf(string(b), "kind(%d)", &n); err != nil || fmt.Sprintf("kind(%d)", n) != string(b) {
		return fmt.Errorf("content: unmarshal kind %q: unknown name", b)
	}
	*k = Kind(n)
	return nil
}

// Field tags. docs/content.md lists them with their encodings.
const (
	tagText      = 1
	tagReplyTo   = 2
	tagTarget    = 3
	tagEmoji     = 4
	tagRemove    = 5
	tagReadUpTo  = 6
	tagReadIDs   = 7
	tagBlobID    = 8
	tagSize      = 9
	tagMediaType = 10
	tagFileName  = 11
	tagKey       = 12
	tagHash      = 13
	tagName      = 14
	tagTopic     = 15
	tagDirect    = 16
	tagMentions  = 17
	maxKnownTag  = 17
)

// Field is a field whose tag this version does not know, kept verbatim.
type Field struct {
	// Tag is the field's tag, not one of the known tags, never 0.
	Tag uint16
	// Value is the field's value.
	Value []byte
}

// Attachment describes an encrypted file stored as a blob on the server
// (see package github.com/parley-chat/parley/client/attach).
type Attachment struct {
	// BlobID is the server's id of the uploaded ciphertext (the hex of
	// Hash for parleyd).
	BlobID string
	// Size is the size of the plaintext file in bytes.
	Size int64
	// MediaType is the file's media type, such as "image/png"; optional.
	MediaType string
	// FileName is the file's name without any directory; optional.
	FileName string
	// Key is the file's secret symmetric key.
	Key attach.Key
	// Hash is the SHA-256 of the ciphertext, checked on download.
	Hash attach.Hash
}

// Message is one application message. Which fields are set depends on
// the Kind; fields that are zero are not encoded.
type Message struct {
	// ID is the message's id, drawn at random by the sender; never zero.
	ID MessageID
	// Sent is the sender's clock when sending, to the millisecond. It is
	// the sender's claim, for display only; order comes from the server log.
	Sent time.Time
	// Kind says what the message does.
	Kind Kind

	// Text is the text of a text message, the new text of an edit, or an
	// attachment's caption.
	Text string
	// ReplyTo is the message this one answers, or zero.
	ReplyTo MessageID
	// Target is the message a reaction, edit or delete applies to.
	Target MessageID
	// Emoji is a reaction's emoji (any short UTF-8 string).
	Emoji string
	// Remove makes a reaction remove the sender's Emoji instead of adding
	// it, and a typing message say that the sender stopped typing.
	Remove bool
	// ReadUpTo is the last message a read receipt covers, in log order.
	ReadUpTo MessageID
	// ReadIDs are further individual messages a read receipt covers.
	ReadIDs []MessageID
	// Attachment is the file of an attachment message, or nil.
	Attachment *Attachment
	// Name is the conversation's new name; nil leaves it unchanged and
	// an empty string clears it.
	Name *string
	// Topic is the conversation's new topic; nil leaves it unchanged and
	// an empty string clears it.
	Topic *string
	// Direct marks the conversation as a 1:1 conversation between the
	// two member users (group metadata). It is sent by the creator
	// before any other message so that the invited user records the
	// conversation as the 1:1 with the creator. It cannot be unset.
	Direct bool
	// Mentions are the users the sender mentions (text and attachment
	// messages): distinct, non-empty user names in increasing byte
	// order, chosen by the sender. A receiver trusts this list, never the
	// "@name" words of the text.
	Mentions []string

	// Unknown holds the fields with tags this version does not know, in
	// increasing tag order, to be re-encoded unchanged.
	Unknown []Field
}

// New returns a message of the given kind with a fresh random id, sent at
// now (truncated to the millisecond).
func New(kind Kind, now time.Time) *Message {
	return &Message{ID: NewMessageID(), Sent: now.Truncate(time.Millisecond), Kind: kind}
}

// Validate checks that the message can be encoded: its id is set, every
// field is within its limit and valid UTF-8 where it is text, and a
// message of a known kind has the fields that kind requires.
func (m *Message) Validate() error {
	_, err := m.fields()
	return err
}

// field is one encoded field.
type field struct {
	tag   uint16
	value []byte
}

// fields checks the message and returns its fields in tag order.
func (m *Message) fields() ([]field, error) {
	if m.ID.IsZero() {
		return nil, errors.New("message id is zero")
	}
	var fs []field
	addString := func(tag uint16, s string, limit int, what string, emptyOK bool, present bool) error {
		if !present {
			return nil
		}
		if len(s) > limit {
			return fmt.Errorf("%s is %d bytes, limit %d", what, len(s), limit)
		}
		if !utf8.ValidString(s) {
			return fmt.Errorf("%s is not valid UTF-8", what)
		}
		if s == "" && !emptyOK {
			return nil
		}
		fs = append(fs, field{tag, []byte(s)})
		return nil
	}
	addID := func(tag uint16, id MessageID) {
		if !id.IsZero() {
			fs = append(fs, field{tag, bytes.Clone(id[:])})
		}
	}
	if err := addString(tagText, m.Text, MaxTextSize, "text", false, true); err != nil {
		return nil, err
	}
	addID(tagReplyTo, m.ReplyTo)
	addID(tagTarget, m.Target)
	if err := addString(tagEmoji, m.Emoji, MaxEmojiSize, "emoji", false, true); err != nil {
		return nil, err
	}
	if m.Remove {
		fs = append(fs, field{tagRemove, []byte{1}})
	}
	addID(tagReadUpTo, m.ReadUpTo)
	if len(m.ReadIDs) > MaxReadIDs {
		return nil, fmt.Errorf("read receipt lists %d ids, limit %d", len(m.ReadIDs), MaxReadIDs)
	}
	if len(m.ReadIDs) > 0 {
		v := make([]byte, 0, 16*len(m.ReadIDs))
		for _, id := range m.ReadIDs {
			if id.IsZero() {
				return nil, errors.New("read receipt lists the zero id")
			}
			v = append(v, id[:]...)
		}
		fs = append(fs, field{tagReadIDs, v})
	}
	if a := m.Attachment; a != nil {
		if err := addString(tagBlobID, a.BlobID, MaxBlobIDSize, "attachment blob id", false, true); err != nil {
			return nil, err
		}
		if a.Size < 0 || a.Size > 1<<62 {
			return nil, fmt.Errorf("attachment size %d out of range", a.Size)
		}
		if a.Size > 0 {
			fs = append(fs, field{tagSize, binary.BigEndian.AppendUint64(nil, uint64(a.Size))})
		}
		if err := addString(tagMediaType, a.MediaType, MaxMediaTypeSize, "attachment media type", false, true); err != nil {
			return nil, err
		}
		if err := addString(tagFileName, a.FileName, MaxFileNameSize, "attachment file name", false, true); err != nil {
			return nil, err
		}
		if a.Key != (attach.Key{}) {
			fs = append(fs, field{tagKey, bytes.Clone(a.Key[:])})
		}
		if a.Hash != (attach.Hash{}) {
			fs = append(fs, field{tagHash, bytes.Clone(a.Hash[:])})
		}
	}
	if err := addString(tagName, deref(m.Name), MaxNameSize, "conversation name", true, m.Name != nil); err != nil {
		return nil, err
	}
	if err := addString(tagTopic, deref(m.Topic), MaxTopicSize, "conversation topic", true, m.Topic != nil); err != nil {
		return nil, err
	}
	if m.Direct {
		fs = append(fs, field{tagDirect, []byte{1}})
	}
	if len(m.Mentions) > 0 {
		v, err := encodeMentions(m.Mentions)
		if err != nil {
			return nil, err
		}
		fs = append(fs, field{tagMentions, v})
	}
	if err := m.checkRequired(); err != nil {
		return nil, err
	}
	last := uint16(maxKnownTag)
	for i, f := range m.Unknown {
		switch {
		case f.Tag <= maxKnownTag:
			return nil, fmt.Errorf("unknown field %d has a known or reserved tag %d", i, f.Tag)
		case i > 0 && f.Tag <= last:
			return nil, fmt.Errorf("unknown field tag %d is not above the previous one, %d", f.Tag, last)
		}
		last = f.Tag
		fs = append(fs, field{f.Tag, f.Value})
	}
	if len(fs) > MaxFields {
		return nil, fmt.Errorf("%d fields, limit %d", len(fs), MaxFields)
	}
	size := headerSize
	for _, f := range fs {
		size += fieldHeaderSize + len(f.value)
	}
	if size > MaxEncodedSize {
		return nil, fmt.Errorf("encoded size %d, limit %d", size, MaxEncodedSize)
	}
	return fs, nil
}

// checkRequired checks the fields required by a known kind.
func (m *Message) checkRequired() error {
	missing := func(what string) error {
		return fmt.Errorf("%s message without %s", m.Kind, what)
	}
	switch m.Kind {
	case KindText:
		if m.Text == "" {
			return missing("text")
		}
	case KindReaction:
		if m.Target.IsZero() {
			return missing("target")
		}
		if m.Emoji == "" {
			return missing("emoji")
		}
	case KindEdit:
		if m.Target.IsZero() {
			return missing("target")
		}
		if m.Text == "" {
			return missing("text")
		}
	case KindDelete:
		if m.Target.IsZero() {
			return missing("target")
		}
	case KindReadReceipt:
		if m.ReadUpTo.IsZero() && len(m.ReadIDs) == 0 {
			return missing("read ids")
		}
	case KindAttachment:
		a := m.Attachment
		switch {
		case a == nil || a.BlobID == "":
			return missing("attachment blob id")
		case a.Key == attach.Key{}:
			return missing("attachment key")
		case a.Hash == attach.Hash{}:
			return missing("attachment hash")
		}
	case KindGroupMetadata:
		if m.Name == nil && m.Topic == nil && !m.Direct {
			return missing("name, topic or direct")
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Encode returns the encoding of the message. It fails if [Message.Validate]
// does.
func Encode(m *Message) ([]byte, error) {
	fs, err := m.fields()
	if err != nil {
		return nil, fmt.Errorf("content: encode %s message %s: %v", m.Kind, m.ID, err)
	}
	size := headerSize
	for _, f := range fs {
		size += fieldHeaderSize + len(f.value)
	}
	b := make([]byte, 0, size)
	b = append(b, Version)
	b = append(b, m.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Sent.UnixMilli()))
	b = binary.BigEndian.AppendUint16(b, uint16(m.Kind))
	for _, f := range fs {
		b = binary.BigEndian.AppendUint16(b, f.tag)
		b = binary.BigEndian.AppendUint32(b, uint32(len(f.value)))
		b = append(b, f.value...)
	}
	return b, nil
}

// reader is a bounded reader over an encoded message.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("%s truncated: %d bytes needed, %d left", what, n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) uint16(what string) uint16 {
	if v := r.bytes(2, what); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) uint32(what string) uint32 {
	if v := r.bytes(4, what); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// Decode decodes and checks an encoded message. It rejects input longer
// than [MaxEncodedSize], another version ([ErrUnsupportedVersion]),
// truncated or trailing bytes, fields out of tag order or repeated, known
// fields with invalid or zero values, and known kinds missing a required
// field. It keeps unknown fields and kinds, so that Encode of the result
// reproduces data exactly. The result shares no memory with data.
func Decode(data []byte) (*Message, error) {
	m, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("content: decode message: %w", err)
	}
	return m, nil
}

func decode(data []byte) (*Message, error) {
	if len(data) > MaxEncodedSize {
		return nil, fmt.Errorf("%d bytes, limit %d", len(data), MaxEncodedSize)
	}
	if len(data) > 0 && data[0] != Version {
		return nil, fmt.Errorf("%w %d", ErrUnsupportedVersion, data[0])
	}
	r := &reader{b: data}
	r.bytes(1, "version")
	m := &Message{}
	copy(m.ID[:], r.bytes(16, "message id"))
	if v := r.bytes(8, "sent"); v != nil {
		m.Sent = time.UnixMilli(int64(binary.BigEndian.Uint64(v))).UTC()
	}
	m.Kind = Kind(r.uint16("kind"))
	if r.err != nil {
		return nil, r.err
	}
	if m.ID.IsZero() {
		return nil, errors.New("message id is zero")
	}
	var last uint16
	for n := 0; len(r.b) > 0; n++ {
		if n == MaxFields {
			return nil, fmt.Errorf("more than %d fields", MaxFields)
		}
		tag := r.uint16("field tag")
		length := r.uint32("field length")
		value := r.bytes(int(min(length, uint32(MaxEncodedSize)+1)), fmt.Sprintf("field %d", tag))
		if r.err != nil {
			return nil, r.err
		}
		if tag == 0 || tag <= last {
			return nil, fmt.Errorf("field tag %d after tag %d: tags must increase", tag, last)
		}
		last = tag
		if err := m.setField(tag, value); err != nil {
			return nil, fmt.Errorf("field %d: %v", tag, err)
		}
	}
	if err := m.checkRequired(); err != nil {
		return nil, err
	}
	return m, nil
}

// setField decodes the value of one field into m.
func (m *Message) setField(tag uint16, v []byte) error {
	str := func(limit int, emptyOK bool) (string, error) {
		switch {
		case len(v) == 0 && !emptyOK:
			return "", errors.New("empty value")
		case len(v) > limit:
			return "", fmt.Errorf("%d bytes, limit %d", len(v), limit)
		case !utf8.Valid(v):
			return "", errors.New("not valid UTF-8")
		}
		return string(v), nil
	}
	id := func(dst *MessageID) error {
		if len(v) != len(dst) {
			return fmt.Errorf("message id of %d bytes, want %d", len(v), len(dst))
		}
		copy(dst[:], v)
		if dst.IsZero() {
			return errors.New("zero message id")
		}
		return nil
	}
	fixed := func(dst []byte) error {
		if len(v) != len(dst) {
			return fmt.Errorf("%d bytes, want %d", len(v), len(dst))
		}
		if !slices.ContainsFunc(v, func(c byte) bool { return c != 0 }) {
			return errors.New("zero value")
		}
		copy(dst, v)
		return nil
	}
	att := func() *Attachment {
		if m.Attachment == nil {
			m.Attachment = &Attachment{}
		}
		return m.Attachment
	}
	var err error
	switch tag {
	case tagText:
		m.Text, err = str(MaxTextSize, false)
	case tagReplyTo:
		err = id(&m.ReplyTo)
	case tagTarget:
		err = id(&m.Target)
	case tagEmoji:
		m.Emoji, err = str(MaxEmojiSize, false)
	case tagRemove:
		if len(v) != 1 || v[0] != 1 {
			return errors.New("remove flag is not the single byte 1")
		}
		m.Remove = true
	case tagReadUpTo:
		err = id(&m.ReadUpTo)
	case tagReadIDs:
		if len(v) == 0 || len(v)%16 != 0 || len(v)/16 > MaxReadIDs {
			return fmt.Errorf("read ids of %d bytes: want 1 to %d ids of 16 bytes", len(v), MaxReadIDs)
		}
		m.ReadIDs = make([]MessageID, len(v)/16)
		for i := range m.ReadIDs {
			copy(m.ReadIDs[i][:], v[16*i:])
			if m.ReadIDs[i].IsZero() {
				return fmt.Errorf("read id %d is zero", i)
			}
		}
	case tagBlobID:
		att().BlobID, err = str(MaxBlobIDSize, false)
	case tagSize:
		if len(v) != 8 {
			return fmt.Errorf("size of %d bytes, want 8", len(v))
		}
		n := binary.BigEndian.Uint64(v)
		if n == 0 || n > 1<<62 {
			return fmt.Errorf("size %d out of range", n)
		}
		att().Size = int64(n)
	case tagMediaType:
		att().MediaType, err = str(MaxMediaTypeSize, false)
	case tagFileName:
		att().FileName, err = str(MaxFileNameSize, false)
	case tagKey:
		err = fixed(att().Key[:])
	case tagHash:
		err = fixed(att().Hash[:])
	case tagName:
		var s string
		s, err = str(MaxNameSize, true)
		m.Name = &s
	case tagTopic:
		var s string
		s, err = str(MaxTopicSize, true)
		m.Topic = &s
	case tagDirect:
		if len(v) != 1 || v[0] != 1 {
			return errors.New("direct flag is not the single byte 1")
		}
		m.Direct = true
	case tagMentions:
		m.Mentions, err = decodeMentions(v)
	default:
		m.Unknown = append(m.Unknown, Field{Tag: tag, Value: bytes.Clone(v)})
	}
	return err
}

// encodeMentions checks a mention list and encodes it: each name as a
// uint8 length and its bytes.
func encodeMentions(names []string) ([]byte, error) {
	if len(names) > MaxMentions {
		return nil, fmt.Errorf("%d mentions, limit %d", len(names), MaxMentions)
	}
	var v []byte
	for i, n := range names {
		switch {
		case n == "" || len(n) > MaxMentionSize:
			return nil, fmt.Errorf("mention %d is %d bytes, want 1 to %d", i, len(n), MaxMentionSize)
		case !utf8.ValidString(n):
			return nil, fmt.Errorf("mention %d is not valid UTF-8", i)
		case i > 0 && n <= names[i-1]:
			return nil, fmt.Errorf("mention %q is not above the previous one, %q: want distinct names in increasing order", n, names[i-1])
		}
		v = append(v, byte(len(n)))
		v = append(v, n...)
	}
	return v, nil
}

// decodeMentions decodes and checks the value of the mentions field.
func decodeMentions(v []byte) ([]string, error) {
	if len(v) == 0 {
		return nil, errors.New("empty value")
	}
	var names []string
	for len(v) > 0 {
		if len(names) == MaxMentions {
			return nil, fmt.Errorf("more than %d mentions", MaxMentions)
		}
		n := int(v[0])
		if n == 0 || n > MaxMentionSize || n > len(v)-1 {
			return nil, fmt.Errorf("mention %d: length %d, want 1 to %d within the %d bytes left", len(names), n, MaxMentionSize, len(v)-1)
		}
		name := string(v[1 : 1+n])
		v = v[1+n:]
		switch {
		case !utf8.ValidString(name):
			return nil, fmt.Errorf("mention %d is not valid UTF-8", len(names))
		case len(names) > 0 && name <= names[len(names)-1]:
			return nil, fmt.Errorf("mention %q is not above the previous one: want distinct names in increasing order", name)
		}
		names = append(names, name)
	}
	return names, nil
}
