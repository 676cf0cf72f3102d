package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// sample writes an archive of two conversations, the first with three
// messages, the second with one.
func sample(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, cv := range []struct {
		id protocol.ConversationID
		n  int
	}{{7, 3}, {9, 1}} {
		if err := w.Conversation(&Conversation{ID: cv.id, GroupID: []byte{1, 2, 3}, Name: "team", Members: []string{"alice", "bob"}, Created: now, ReadSeq: 2}); err != nil {
			t.Fatal(err)
		}
		for i := range cv.n {
			m := &store.Message{Conversation: cv.id, Seq: int64(i + 1), ID: [16]byte{byte(cv.id), byte(i)}, Sender: "bob", Text: "hello", Sent: now,
				Reactions: []store.Reaction{{User: "alice", Emoji: "👍"}}}
			if err := w.Message(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Count() != (Count{Conversations: 2, Messages: 4}) {
		t.Fatalf("writer counts %+v", w.Count())
	}
	return buf.Bytes()
}

// readAll reads every record of b.
func readAll(b []byte) ([]Record, error) {
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	var out []Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
}

func TestRoundTrip(t *testing.T) {
	recs, err := readAll(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || recs[0].Conversation == nil || recs[0].Conversation.ID != 7 || recs[0].Conversation.ReadSeq != 2 ||
		recs[3].Message == nil || recs[3].Message.Seq != 3 || recs[3].Message.Reactions[0].Emoji != "👍" ||
		recs[4].Conversation == nil || recs[5].Message.Conversation != 9 {
		t.Errorf("read back %+v", recs)
	}
}

// frame encodes one record as a frame.
func frame(json string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(json))), json...)
}

func TestRefused(t *testing.T) {
	good := sample(t)
	head := []byte(Magic + "\x01")
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "header"},
		{"not an archive", []byte("SQLite format 3\x00xxxxxxxxxxxx"), "not a history archive"},
		{"future version", []byte(Magic + "\x02"), "version 2"},
		{"truncated at a record", good[:len(good)-10], "record"},
		{"without its end", good[:len(head)+len(frame(""))-4], "truncated"},
		{"data after the end", append(append([]byte(nil), good...), 0), "after the end"},
		{"counts differ", append(append([]byte(nil), head...), frame(`{"end":{"conversations":1,"messages":0}}`)...), "end record counts"},
		{"message outside a conversation", append(append([]byte(nil), head...), frame(`{"message":{"conversation":3}}`)...), "outside its conversation"},
		{"message of another conversation", append(append(append([]byte(nil), head...), frame(`{"conversation":{"id":3,"group_id":"AQ=="}}`)...),
			frame(`{"message":{"conversation":4}}`)...), "outside its conversation"},
		{"conversation without group", append(append([]byte(nil), head...), frame(`{"conversation":{"id":3}}`)...), "group id of 0 bytes"},
		{"two kinds", append(append([]byte(nil), head...), frame(`{"conversation":{"id":3,"group_id":"AQ=="},"end":{}}`)...), "2 kinds"},
		{"empty record", append(append([]byte(nil), head...), frame(`{}`)...), "empty"},
		{"not JSON", append(append([]byte(nil), head...), frame(`{`)...), "record 1"},
		{"huge frame", append(append([]byte(nil), head...), 0xff, 0xff, 0xff, 0xff), "exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(tc.b)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrMalformed mentioning %q", err, tc.want)
			}
		})
	}
}

func TestWriterRefusesStrayMessage(t *testing.T) {
	w := NewWriter(io.Discard)
	if err := w.Message(&store.Message{Conversation: 1}); err == nil {
		t.Error("a message before any conversation was written")
	}
	w.Conversation(&Conversation{ID: 1, GroupID: []byte{1}})
	if err := w.Message(&store.Message{Conversation: 2}); err == nil {
		t.Error("a message of conversation 2 was written under conversation 1")
	}
}

// FuzzReader: no input makes the reader panic, and a stream it accepts
// is read to its end record.
func FuzzReader(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte(Magic + "\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := readAll(b)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		_ = recs
	})
}
