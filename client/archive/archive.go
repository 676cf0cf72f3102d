// Package archive encodes the history of a Parley client's conversations
// as a stream: the conversations' metadata and their messages, as a
// device stores them, and never any MLS secret. A device writes one to
// carry its history to a device being linked, and into a backup; the
// reader is the other end. The stream is plaintext: its callers seal it
// (package client/attach for a transfer, the backup format for a backup).
//
// # Format
//
//	magic   "parley-history\n" (15 bytes)
//	version uint8 (1)
//	frame*  uint32 big-endian length, then one JSON Record of that length
//
// Records come in order: a Conversation, then its Messages in the order
// of the history, then the next Conversation. A stream ends with a Record
// holding End, the counts of what it holds; a stream without it, with
// anything after it, or whose counts differ is refused, so that a
// truncated archive is never taken for a whole one. A conversation may
// appear in several streams (a history cut into parts): each part opens
// with the record of the conversation its first message belongs to.
package archive

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// Magic opens every archive.
const Magic = "parley-history\n"

// Version is the format's version.
const Version = 1

// MaxRecordBytes bounds one record: a message's content is bounded by the
// server's message limit well below it.
const MaxRecordBytes = 8 << 20

// ErrMalformed wraps every refusal of a stream that is not a well-formed
// archive.
var ErrMalformed = errors.New("archive: malformed")

// Conversation is the metadata of a conversation in an archive.
type Conversation struct {
	ID      protocol.ConversationID `json:"id"`
	GroupID []byte                  `json:"group_id"`
	Direct  bool                    `json:"direct,omitempty"`
	Name    string                  `json:"name,omitempty"`
	Topic   string                  `json:"topic,omitempty"`
	Members []string                `json:"members,omitempty"`
	Left    bool                    `json:"left,omitempty"`
	Created time.Time               `json:"created"`
	// ReadSeq is the writer's read position (a Message.Seq of the
	// writer's history): the messages up to it were read.
	ReadSeq int64 `json:"read_seq,omitempty"`
}

// Count is what an archive holds.
type Count struct {
	Conversations int `json:"conversations"`
	Messages      int `json:"messages"`
}

// Record is one record of an archive: exactly one field is set.
type Record struct {
	Conversation *Conversation  `json:"conversation,omitempty"`
	Message      *store.Message `json:"message,omitempty"`
	End          *Count         `json:"end,omitempty"`
}

// Writer writes an archive.
type Writer struct {
	w      io.Writer
	count  Count
	conv   protocol.ConversationID
	opened bool
	err    error
	buf    []byte
}

// NewWriter returns a Writer writing to w; it writes the header at once.
func NewWriter(w io.Writer) *Writer {
	aw := &Writer{w: w}
	_, aw.err = io.WriteString(w, Magic+string([]byte{Version}))
	return aw
}

// Count returns what was written so far.
func (w *Writer) Count() Count { return w.count }

// Conversation starts the messages of a conversation.
func (w *Writer) Conversation(cv *Conversation) error {
	if err := w.write(Record{Conversation: cv}); err != nil {
		return err
	}
	w.conv, w.opened = cv.ID, true
	w.count.Conversations++
	return nil
}

// Message writes a message of the current conversation.
func (w *Writer) Message(m *store.Message) error {
	if !w.opened || m.Conversation != w.conv {
		return fmt.Errorf("archive: message of conversation %d outside its conversation's records", m.Conversation)
	}
	if err := w.write(Record{Message: m}); err != nil {
		return err
	}
	w.count.Messages++
	return nil
}

// Close writes the end record. It does not close the underlying writer.
func (w *Writer) Close() error {
	c := w.count
	return w.write(Record{End: &c})
}

func (w *Writer) write(r Record) error {
	if w.err != nil {
		return w.err
	}
	b, err := json.Marshal(r)
	if err != nil {
		w.err = fmt.Errorf("archive: encode record: %v", err)
		return w.err
	}
	if len(b) > MaxRecordBytes {
		w.err = fmt.Errorf("archive: record of %d bytes exceeds %d", len(b), MaxRecordBytes)
		return w.err
	}
	w.buf = binary.BigEndian.AppendUint32(w.buf[:0], uint32(len(b)))
	w.buf = append(w.buf, b...)
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("archive: write: %w", err)
	}
	return w.err
}

// Reader reads an archive.
type Reader struct {
	r     *bufio.Reader
	count Count
	conv  *Conversation
	done  bool
	buf   []byte
}

// NewReader returns a Reader of r, once it read and checked the header.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head := make([]byte, len(Magic)+1)
	if _, err := io.ReadFull(br, head); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if string(head[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("%w: not a history archive", ErrMalformed)
	}
	if head[len(Magic)] != Version {
		return nil, fmt.Errorf("%w: version %d, this client reads %d", ErrMalformed, head[len(Magic)], Version)
	}
	return &Reader{r: br}, nil
}

// Next returns the next conversation or message; it returns io.EOF after
// the end record once it checked it. A message comes with its
// conversation (the last Conversation record read).
func (r *Reader) Next() (Record, error) {
	if r.done {
		return Record{}, io.EOF
	}
	rec, err := r.read()
	if err != nil {
		return Record{}, err
	}
	switch {
	case rec.Conversation != nil:
		cv := rec.Conversation
		if cv.ID <= 0 || len(cv.GroupID) == 0 || len(cv.GroupID) > 255 {
			return Record{}, fmt.Errorf("%w: record %d: conversation %d with a group id of %d bytes", ErrMalformed, r.records(), cv.ID, len(cv.GroupID))
		}
		r.conv = cv
		r.count.Conversations++
	case rec.Message != nil:
		if r.conv == nil || rec.Message.Conversation != r.conv.ID {
			return Record{}, fmt.Errorf("%w: record %d: a message of conversation %d outside its conversation", ErrMalformed, r.records(), rec.Message.Conversation)
		}
		r.count.Messages++
	case rec.End != nil:
		if *rec.End != r.count {
			return Record{}, fmt.Errorf("%w: the end record counts %d conversations and %d messages, the archive holds %d and %d",
				ErrMalformed, rec.End.Conversations, rec.End.Messages, r.count.Conversations, r.count.Messages)
		}
		if _, err := r.r.ReadByte(); err != io.EOF {
			return Record{}, fmt.Errorf("%w: data after the end record", ErrMalformed)
		}
		r.done = true
		return Record{}, io.EOF
	default:
		return Record{}, fmt.Errorf("%w: record %d is empty", ErrMalformed, r.records())
	}
	return rec, nil
}

// Conversation returns the conversation the last message read belongs to.
func (r *Reader) Conversation() *Conversation { return r.conv }

// Count returns what was read so far.
func (r *Reader) Count() Count { return r.count }

func (r *Reader) records() int { return r.count.Conversations + r.count.Messages + 1 }

// read reads one frame.
func (r *Reader) read() (Record, error) {
	var n [4]byte
	if _, err := io.ReadFull(r.r, n[:]); err != nil {
		if err == io.EOF {
			return Record{}, fmt.Errorf("%w: it ends without its end record (truncated)", ErrMalformed)
		}
		return Record{}, fmt.Errorf("%w: record %d: %v", ErrMalformed, r.records(), err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > MaxRecordBytes {
		return Record{}, fmt.Errorf("%w: record %d of %d bytes exceeds %d", ErrMalformed, r.records(), size, MaxRecordBytes)
	}
	if cap(r.buf) < int(size) {
		r.buf = make([]byte, size)
	}
	b := r.buf[:size]
	if _, err := io.ReadFull(r.r, b); err != nil {
		return Record{}, fmt.Errorf("%w: record %d: %v", ErrMalformed, r.records(), err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, fmt.Errorf("%w: record %d: %v", ErrMalformed, r.records(), err)
	}
	set := 0
	for _, p := range []bool{rec.Conversation != nil, rec.Message != nil, rec.End != nil} {
		if p {
			set++
		}
	}
	if set > 1 {
		return Record{}, fmt.Errorf("%w: record %d holds %d kinds of record", ErrMalformed, r.records(), set)
	}
	return rec, nil
}
