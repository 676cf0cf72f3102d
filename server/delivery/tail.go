package delivery

import (
	"encoding/json"
	"sync"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// The tail cache keeps, per recently written conversation, the latest
// entries this node stored — application entries of the group-commit
// writer, and handshakes — as frames encoded once. Connections woken by
// the writer read new entries from it instead of the store, so one
// message or commit to N connections is one encoding and no store reads
// (a 35 KB X-Wing commit to 10,000 members would otherwise be 10,000
// reads and encodings of it); a connection whose cursor is outside the
// tail (a slow reader, a resume, entries appended on other nodes) reads
// the store.
const (
	tailEntries  = 64         // tailEntries bounds one conversation's tail.
	tailBytes    = 128 << 10  // tailBytes bounds the data of one tail, beyond its newest entry.
	tailMaxEntry = 1 << 20    // tailMaxEntry: larger entries are not cached (the largest MLS message by default).
	tailConvs    = 256        // tailConvs bounds the conversations with a tail.
	tailTotal    = 32 << 20   // tailTotal bounds the data of all tails.
	unknownHead  = ^uint64(0) // unknownHead: read the store until a short page.
)

// entryFrame is an entry frame whose encoding is computed once and shared
// by every connection that writes it. It must not be modified.
type entryFrame struct {
	e    store.Entry
	once sync.Once
	enc  []byte
	err  error

	binOnce sync.Once
	bin     []byte
	binErr  error
}

func newEntryFrame(e store.Entry) *entryFrame { return &entryFrame{e: e} }

// FrameType returns protocol.FrameEntry.
func (f *entryFrame) FrameType() protocol.FrameType { return protocol.FrameEntry }

// MarshalJSON encodes the frame like a protocol.EntryFrame.
func (f *entryFrame) MarshalJSON() ([]byte, error) {
	return json.Marshal(&protocol.EntryFrame{Entry: entry(f.e)})
}

// EncodeFrame returns protocol.MarshalFrame of the frame, computed once
// and shared: the caller must not modify it.
func (f *entryFrame) EncodeFrame() ([]byte, error) {
	f.once.Do(func() { f.enc, f.err = protocol.MarshalFrame(&protocol.EntryFrame{Entry: entry(f.e)}) })
	return f.enc, f.err
}

// EncodeBinary returns protocol.MarshalBinaryEntry of the entry,
// computed once and shared: the caller must not modify it.
func (f *entryFrame) EncodeBinary() ([]byte, error) {
	f.binOnce.Do(func() { f.bin, f.binErr = protocol.MarshalBinaryEntry(entry(f.e)) })
	return f.bin, f.binErr
}

// BinaryFrame is implemented by the entry frames that Conn.Next returns,
// with their binary encoding (protocol.MarshalBinaryEntry) for
// connections that asked for it, precomputed and shared like
// EncodedFrame's.
type BinaryFrame interface {
	EncodedFrame
	EncodeBinary() ([]byte, error)
}

// EncodedFrame is implemented by frames that Conn.Next returns with a
// precomputed encoding, equal to protocol.MarshalFrame's; the bytes are
// shared and must not be modified.
type EncodedFrame interface {
	protocol.Frame
	EncodeFrame() ([]byte, error)
}

// tail is one conversation's latest entries: seqs lo .. lo+len(ents)-1,
// contiguous.
type tail struct {
	lo    uint64
	ents  []*entryFrame
	bytes int
}

// tails is the tail cache.
type tails struct {
	mu    sync.RWMutex
	m     map[store.ConversationID]*tail
	bytes int // the data of all tails
}

// add appends the entries of one batch (of one conversation, in seq
// order) to its tail; a gap starts the tail again.
func (ts *tails) add(id store.ConversationID, fs []*entryFrame) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.m == nil {
		ts.m = make(map[store.ConversationID]*tail)
	}
	t := ts.m[id]
	if t == nil {
		if len(ts.m) >= tailConvs {
			ts.evictOther(id)
		}
		t = &tail{}
		ts.m[id] = t
	}
	before := t.bytes
	for _, f := range fs {
		if len(f.e.Data) > tailMaxEntry || len(t.ents) > 0 && f.e.Seq != t.lo+uint64(len(t.ents)) {
			t.ents, t.bytes = t.ents[:0], 0
		}
		if len(f.e.Data) > tailMaxEntry {
			continue
		}
		if len(t.ents) == 0 {
			t.lo = f.e.Seq
		}
		t.ents = append(t.ents, f)
		t.bytes += len(f.e.Data)
		// The newest entry stays, however large: it is the one every
		// woken connection reads next.
		for len(t.ents) > 1 && (len(t.ents) > tailEntries || t.bytes-len(f.e.Data) > tailBytes) {
			t.bytes -= len(t.ents[0].e.Data)
			t.ents[0] = nil
			t.ents = t.ents[1:]
			t.lo++
		}
	}
	if cap(t.ents) > 4*tailEntries { // re-slicing from the front only grows
		t.ents = append(make([]*entryFrame, 0, tailEntries+1), t.ents...)
	}
	ts.bytes += t.bytes - before
	for ts.bytes > tailTotal && len(ts.m) > 1 {
		ts.evictOther(id)
	}
}

// evictOther drops the tail of a conversation other than keep, at random.
func (ts *tails) evictOther(keep store.ConversationID) {
	for k, t := range ts.m {
		if k != keep {
			ts.bytes -= t.bytes
			delete(ts.m, k)
			return
		}
	}
}

// read returns up to limit entries after seq after, if the tail holds the
// one right after it; ok is false when the store must be read instead.
func (ts *tails) read(id store.ConversationID, after uint64, limit int) (fs []*entryFrame, ok bool) {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	t := ts.m[id]
	if t == nil || len(t.ents) == 0 || after+1 < t.lo || after+1 >= t.lo+uint64(len(t.ents)) {
		return nil, false
	}
	i := int(after + 1 - t.lo)
	n := min(len(t.ents)-i, limit)
	return append([]*entryFrame(nil), t.ents[i:i+n]...), true
}

// last returns the seq of the newest entry the tail of a conversation
// holds. Every entry stored after it is followed by an event naming its
// seq as the head, so a connection that has sent up to last has nothing
// more to read until then.
func (ts *tails) last(id store.ConversationID) (uint64, bool) {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	t := ts.m[id]
	if t == nil || len(t.ents) == 0 {
		return 0, false
	}
	return t.lo + uint64(len(t.ents)) - 1, true
}

// handshakeNotes remembers, for the handshake entries this node stored
// lately, the devices a commit removed (none for a proposal), so that
// the connections of the other members pass the entry's membership
// barrier without reading their membership from the store: a commit
// changes the membership of the devices it removes only (the devices it
// adds follow the conversation from a device event).
type handshakeNotes struct {
	mu    sync.Mutex
	m     map[handshakeKey]map[store.DeviceID]bool
	order []handshakeKey
}

type handshakeKey struct {
	conv store.ConversationID
	seq  uint64
}

// handshakeNotesMax bounds the notes kept.
const handshakeNotesMax = 1024

// note records the handshake entry at seq and the devices it removed.
func (hn *handshakeNotes) note(id store.ConversationID, seq uint64, removed []store.DeviceID) {
	set := make(map[store.DeviceID]bool, len(removed))
	for _, d := range removed {
		set[d] = true
	}
	hn.mu.Lock()
	defer hn.mu.Unlock()
	if hn.m == nil {
		hn.m = map[handshakeKey]map[store.DeviceID]bool{}
	}
	k := handshakeKey{id, seq}
	hn.m[k] = set
	hn.order = append(hn.order, k)
	for len(hn.order) > handshakeNotesMax {
		delete(hn.m, hn.order[0])
		hn.order = hn.order[1:]
	}
}

// unchanged reports whether the handshake entry at seq is known to leave
// device's membership as it was.
func (hn *handshakeNotes) unchanged(id store.ConversationID, seq uint64, device store.DeviceID) bool {
	hn.mu.Lock()
	defer hn.mu.Unlock()
	removed, ok := hn.m[handshakeKey{id, seq}]
	return ok && !removed[device]
}

// reset empties the cache, after pruning: a connection resuming from an
// old cursor then reads what is left in the store.
func (ts *tails) reset() {
	ts.mu.Lock()
	ts.m, ts.bytes = nil, 0
	ts.mu.Unlock()
}
