package delivery

import (
	"testing"

	"github.com/parley-chat/parley/server/store"
)

func frames(conv store.ConversationID, from, to uint64, size int) []*entryFrame {
	var fs []*entryFrame
	for s := from; s <= to; s++ {
		fs = append(fs, newEntryFrame(store.Entry{Conversation: conv, Seq: s, Data: make([]byte, size)}))
	}
	return fs
}

// The tail serves a cursor only when it holds the entry right after it,
// restarts after a gap, and stays within its bounds.
func TestTails(t *testing.T) {
	var ts tails
	ts.add(1, frames(1, 5, 10, 10))
	for _, tc := range []struct {
		after    uint64
		ok       bool
		from, to uint64
	}{
		{3, false, 0, 0}, // seq 4 is not in the tail: the store
		{4, true, 5, 10},
		{7, true, 8, 10},
		{10, false, 0, 0}, // nothing newer known here
		{11, false, 0, 0},
	} {
		fs, ok := ts.read(1, tc.after, 64)
		if ok != tc.ok || ok && (fs[0].e.Seq != tc.from || fs[len(fs)-1].e.Seq != tc.to) {
			t.Errorf("read after %d: ok %v, %d entries", tc.after, ok, len(fs))
		}
	}
	if fs, ok := ts.read(1, 4, 2); !ok || len(fs) != 2 {
		t.Errorf("limit: %d entries", len(fs))
	}
	// A gap (seq 11 appended elsewhere, e.g. a commit) restarts the tail.
	ts.add(1, frames(1, 12, 13, 10))
	if _, ok := ts.read(1, 9, 64); ok {
		t.Error("tail served across a gap")
	}
	if fs, ok := ts.read(1, 11, 64); !ok || len(fs) != 2 {
		t.Errorf("after the gap: %v %d", ok, len(fs))
	}
	// Bounded by entries and bytes; large entries are not cached.
	ts.add(2, frames(2, 1, 200, 10))
	if fs, ok := ts.read(2, 200-tailEntries, 1000); !ok || len(fs) != tailEntries {
		t.Errorf("bounded tail: %v %d", ok, len(fs))
	}
	ts.add(3, frames(3, 1, 1, tailMaxEntry+1))
	if _, ok := ts.read(3, 0, 10); ok {
		t.Error("large entry cached")
	}
	const mid = 16 << 10
	ts.add(3, frames(3, 2, 40, mid))
	if fs, ok := ts.read(3, 40-tailBytes/mid-1, 100); !ok || len(fs) != tailBytes/mid+1 {
		t.Errorf("byte-bounded tail: %v %d, want the newest and %d more", ok, len(fs), tailBytes/mid)
	}
	// The newest entry stays however large (a commit every member reads).
	ts.add(3, frames(3, 41, 41, tailMaxEntry))
	if fs, ok := ts.read(3, 40, 100); !ok || len(fs) != 1 {
		t.Errorf("a large newest entry: %v %d", ok, len(fs))
	}
	// All tails together stay within tailTotal (plus the entry just added).
	for c := store.ConversationID(10); c < 100; c++ {
		ts.add(c, frames(c, 1, 1, tailMaxEntry))
		if ts.bytes > tailTotal+tailMaxEntry {
			t.Fatalf("%d bytes in the tails, bound %d", ts.bytes, tailTotal)
		}
	}
	sum := 0
	for _, tl := range ts.m {
		sum += tl.bytes
	}
	if sum != ts.bytes {
		t.Errorf("tails hold %d bytes, counted %d", sum, ts.bytes)
	}
	ts.reset()
	if _, ok := ts.read(2, 190, 10); ok {
		t.Error("reset tail still served")
	}
	// The encoding is computed once and shared.
	f := newEntryFrame(store.Entry{Conversation: 1, Seq: 1, Data: []byte("x")})
	a, err := f.EncodeFrame()
	b, _ := f.EncodeFrame()
	if err != nil || &a[0] != &b[0] {
		t.Errorf("encoding not shared: %v", err)
	}
}

// The notes of handshakes say which devices keep their membership, and
// forget the oldest beyond their bound.
func TestHandshakeNotes(t *testing.T) {
	var hn handshakeNotes
	hn.note(1, 10, []store.DeviceID{"gone"})
	hn.note(1, 11, nil) // a proposal
	for _, tc := range []struct {
		seq    uint64
		device store.DeviceID
		want   bool
	}{{10, "stays", true}, {10, "gone", false}, {11, "gone", true}, {12, "stays", false}} {
		if got := hn.unchanged(1, tc.seq, tc.device); got != tc.want {
			t.Errorf("unchanged(1, %d, %s) = %v, want %v", tc.seq, tc.device, got, tc.want)
		}
	}
	if hn.unchanged(2, 10, "stays") {
		t.Error("a note of another conversation")
	}
	for seq := uint64(100); seq < 100+handshakeNotesMax; seq++ {
		hn.note(1, seq, nil)
	}
	if hn.unchanged(1, 10, "stays") || !hn.unchanged(1, 100+handshakeNotesMax-1, "stays") || len(hn.m) != handshakeNotesMax {
		t.Errorf("bounded notes: %d kept", len(hn.m))
	}
}
