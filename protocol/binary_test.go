package protocol

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBinaryEntryRoundTrip(t *testing.T) {
	e := Entry{Conversation: 7, Seq: 42, Kind: KindHandshake, Sender: "dev-1", Data: bytes.Repeat([]byte{0, 1, '{', 0xff}, 1000), Time: time.Unix(1700000000, 123000).UTC()}
	b, err := MarshalBinaryEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := MarshalFrame(&EntryFrame{Entry: e})
	if len(b) >= len(js) {
		t.Errorf("binary frame %d bytes, JSON %d", len(b), len(js))
	}
	f, err := UnmarshalServerFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.(*EntryFrame).Entry; !reflect.DeepEqual(got, e) {
		t.Errorf("decoded %+v, want %+v", got, e)
	}
	// A message cut after its JSON part (a reader that keeps only the
	// head) still splits, with the data that is there.
	head, data, err := SplitBinaryEntry(b[:len(b)-len(e.Data)+10])
	if err != nil || !bytes.HasPrefix(head, []byte(`{"type":"entry"`)) || !bytes.Equal(data, e.Data[:10]) {
		t.Errorf("split of a cut frame: %q, %d bytes of data, %v", head, len(data), err)
	}
	if _, _, err := SplitBinaryEntry(js); err == nil {
		t.Error("a JSON frame split as a binary one")
	}
	// JSON frames still decode as before.
	if f, err := UnmarshalServerFrame(js); err != nil || !reflect.DeepEqual(f.(*EntryFrame).Entry, e) {
		t.Errorf("JSON entry frame: %+v, %v", f, err)
	}
}

func TestBinaryEntryRefused(t *testing.T) {
	frame := func(head string, data string) []byte {
		b := []byte{binaryEntryTag}
		b = binary.BigEndian.AppendUint32(b, uint32(len(head)))
		return append(append(b, head...), data...)
	}
	long := frame(`{"type":"entry","conversation":1,"seq":1,"kind":"application","sender":"d","data":null,"time":"2026-01-01T00:00:00Z"}`, "x")
	binary.BigEndian.PutUint32(long[1:], uint32(len(long)))
	for name, msg := range map[string][]byte{
		"only the tag":             {binaryEntryTag},
		"short length":             {binaryEntryTag, 0, 0},
		"length past the message":  long,
		"length past the bound":    frame(strings.Repeat(" ", maxBinaryEntryHeader+1), ""),
		"another frame inside":     frame(`{"type":"pong"}`, "x"),
		"data in its JSON part":    frame(`{"type":"entry","conversation":1,"seq":1,"kind":"application","sender":"d","data":"AA==","time":"2026-01-01T00:00:00Z"}`, "x"),
		"not JSON inside":          frame(`entry`, "x"),
		"a second binary inside":   frame(string([]byte{binaryEntryTag, 0, 0, 0, 0}), "x"),
		"trailing data after JSON": frame(`{"type":"entry"} {}`, "x"),
	} {
		if f, err := UnmarshalServerFrame(msg); err == nil {
			t.Errorf("%s: decoded %+v", name, f)
		}
	}
}
