package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/parley-chat/parley/protocol"
)

// ShownFile is the name of the file inside the profile directory that
// records how far the application showed each conversation (MarkShown).
const ShownFile = "shown"

// shownRecordSize is the size of one record of the shown file: a
// conversation id and a local position, both big-endian 64-bit.
const shownRecordSize = 16

// shownCompactAt is how many records the shown file may hold beyond one
// per conversation before it is rewritten with one each.
const shownCompactAt = 4096

// shownLog keeps the MarkShown positions outside the SQLite store, in an
// append-only file of fixed-size records, so that recording a position
// is one write system call that never waits for the store's writer: an
// application that prints a message and then records it leaves only the
// time between two system calls in which a kill shows the message again.
// A record is durable against a kill once written (it is in the kernel's
// page cache); a crash of the whole machine can lose the last ones, which
// shows those messages again, never hides them.
//
// The file holds conversation ids and positions, which the store's
// unencrypted keys reveal too, never content.
type shownLog struct {
	mu   sync.Mutex
	path string
	f    *os.File
	pos  map[protocol.ConversationID]int64
	n    int // records in the file
}

// openShownLog reads the shown file of a profile directory (creating it
// with mode 0600), dropping a torn last record, and compacts it when it
// holds many more records than conversations.
func openShownLog(dir string) (*shownLog, error) {
	l := &shownLog{path: filepath.Join(dir, ShownFile), pos: map[protocol.ConversationID]int64{}}
	b, err := os.ReadFile(l.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("client: read %s: %v", l.path, err)
	}
	for ; len(b) >= shownRecordSize; b = b[shownRecordSize:] {
		conv := protocol.ConversationID(binary.BigEndian.Uint64(b))
		seq := int64(binary.BigEndian.Uint64(b[8:]))
		if seq > l.pos[conv] {
			l.pos[conv] = seq
		}
		l.n++
	}
	if len(b) != 0 || l.n > len(l.pos)+shownCompactAt {
		// A torn record (a kill in the middle of a write) or a long file:
		// rewrite it with one record per conversation.
		if err := l.rewrite(); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("client: open %s: %v", l.path, err)
	}
	l.f = f
	return l, nil
}

// memoryShownLog returns a shown log kept in memory only, for a client
// without a profile directory (Config.Store).
func memoryShownLog() *shownLog {
	return &shownLog{pos: map[protocol.ConversationID]int64{}}
}

// rewrite replaces the file by one with a record per conversation, by a
// synced temporary file renamed over it.
func (l *shownLog) rewrite() error {
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("client: compact %s: %v", l.path, err)
	}
	b := make([]byte, 0, len(l.pos)*shownRecordSize)
	for conv, seq := range l.pos {
		b = appendShown(b, conv, seq)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, l.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("client: compact %s: %v", l.path, err)
	}
	l.n = len(l.pos)
	return nil
}

func appendShown(b []byte, conv protocol.ConversationID, seq int64) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(conv))
	return binary.BigEndian.AppendUint64(b, uint64(seq))
}

// position returns how far a conversation was shown (0 when never).
func (l *shownLog) position(conv protocol.ConversationID) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pos[conv]
}

// advance records that conv was shown up to seq; positions never move
// back. One record is one write of 16 bytes to a file opened for
// appending, which a kill cannot tear in practice; openShownLog drops a
// torn record if it ever is.
func (l *shownLog) advance(conv protocol.ConversationID, seq int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq <= l.pos[conv] {
		return nil
	}
	if l.path == "" {
		l.pos[conv] = seq
		return nil
	}
	if l.f == nil {
		return fmt.Errorf("client: %s: %w", l.path, os.ErrClosed)
	}
	var rec [shownRecordSize]byte
	if _, err := l.f.Write(appendShown(rec[:0], conv, seq)); err != nil {
		return fmt.Errorf("client: append to %s: %v", l.path, err)
	}
	l.pos[conv] = seq
	l.n++
	return nil
}

// close syncs the file (so that an orderly Close survives a machine
// crash too) and closes it.
func (l *shownLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("client: close %s: %v", l.path, err)
	}
	return nil
}
