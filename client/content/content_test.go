package content

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client/attach"
)

func id(b byte) MessageID {
	var m MessageID
	for i := range m {
		m[i] = b + byte(i)
	}
	return m
}

func ptr(s string) *string { return &s }

var sent = time.Date(2025, 3, 1, 12, 30, 45, 123e6, time.UTC)

// examples are valid messages of every kind.
func examples() map[string]*Message {
	var key attach.Key
	var hash attach.Hash
	for i := range key {
		key[i], hash[i] = byte(i+1), byte(0xff-i)
	}
	return map[string]*Message{
		"text":       {ID: id(1), Sent: sent, Kind: KindText, Text: "hello, world ✓"},
		"reply":      {ID: id(2), Sent: sent, Kind: KindText, Text: "yes", ReplyTo: id(1)},
		"reaction":   {ID: id(3), Sent: sent, Kind: KindReaction, Target: id(1), Emoji: "👍"},
		"unreact":    {ID: id(4), Sent: sent, Kind: KindReaction, Target: id(1), Emoji: "👍", Remove: true},
		"edit":       {ID: id(5), Sent: sent, Kind: KindEdit, Target: id(1), Text: "hello, everyone"},
		"delete":     {ID: id(6), Sent: sent, Kind: KindDelete, Target: id(1)},
		"read up to": {ID: id(7), Sent: sent, Kind: KindReadReceipt, ReadUpTo: id(5)},
		"read list":  {ID: id(8), Sent: sent, Kind: KindReadReceipt, ReadIDs: []MessageID{id(1), id(2)}},
		"attachment": {ID: id(9), Sent: sent, Kind: KindAttachment, Text: "the report", Attachment: &Attachment{
			BlobID: hash.String(), Size: 5 << 20, MediaType: "application/pdf", FileName: "report.pdf", Key: key, Hash: hash}},
		"empty file":   {ID: id(10), Sent: sent, Kind: KindAttachment, Attachment: &Attachment{BlobID: "x", Key: key, Hash: hash}},
		"rename":       {ID: id(11), Sent: sent, Kind: KindGroupMetadata, Name: ptr("Newsroom")},
		"clear topic":  {ID: id(12), Sent: sent, Kind: KindGroupMetadata, Name: ptr("Desk"), Topic: ptr("")},
		"future kind":  {ID: id(13), Sent: sent, Kind: 999, Text: "fallback", Unknown: []Field{{Tag: 100, Value: []byte{1, 2}}, {Tag: 200, Value: []byte{}}}},
		"direct":       {ID: id(15), Sent: sent, Kind: KindGroupMetadata, Direct: true},
		"future field": {ID: id(14), Sent: sent, Kind: KindText, Text: "hi", Unknown: []Field{{Tag: 117, Value: []byte("poll")}}},
		"mentions":     {ID: id(16), Sent: sent, Kind: KindText, Text: "hi @bob @carol", Mentions: []string{"bob", "carol"}},
		"before 1970":  {ID: id(15), Sent: time.UnixMilli(-1).UTC(), Kind: KindDelete, Target: id(2)},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, m := range examples() {
		t.Run(name, func(t *testing.T) {
			b, err := Encode(m)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			b2, err := Encode(got)
			if err != nil || !bytes.Equal(b, b2) {
				t.Fatalf("re-encode differs (%v)", err)
			}
			if got.ID != m.ID || !got.Sent.Equal(m.Sent) || got.Kind != m.Kind || got.Text != m.Text ||
				got.Target != m.Target || got.ReplyTo != m.ReplyTo || got.Emoji != m.Emoji || got.Remove != m.Remove ||
				deref(got.Name) != deref(m.Name) || (got.Name == nil) != (m.Name == nil) ||
				(got.Topic == nil) != (m.Topic == nil) || len(got.Unknown) != len(m.Unknown) || len(got.ReadIDs) != len(m.ReadIDs) ||
				strings.Join(got.Mentions, ",") != strings.Join(m.Mentions, ",") {
				t.Fatalf("decoded %+v, want %+v", got, m)
			}
			if (m.Attachment == nil) != (got.Attachment == nil) || m.Attachment != nil && *m.Attachment != *got.Attachment {
				t.Fatalf("attachment %+v, want %+v", got.Attachment, m.Attachment)
			}
		})
	}
	t.Logf("%d examples", len(examples()))
}

// TestGolden pins the encoding of a text message so that it cannot change
// by accident.
func TestGolden(t *testing.T) {
	m := &Message{ID: id(0), Sent: time.UnixMilli(0x0102030405), Kind: KindText, Text: "hi", ReplyTo: id(0x10)}
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	want := "01" + "000102030405060708090a0b0c0d0e0f" + "0000000102030405" + "0001" +
		"0001" + "00000002" + "6869" +
		"0002" + "00000010" + "101112131415161718191a1b1c1d1e1f"
	if got := hexs(b); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&15])
	}
	return sb.String()
}

func TestEncodeRejects(t *testing.T) {
	cases := map[string]*Message{
		"zero id":           {Kind: KindText, Text: "x"},
		"text too long":     {ID: id(1), Kind: KindText, Text: strings.Repeat("a", MaxTextSize+1)},
		"invalid utf8":      {ID: id(1), Kind: KindText, Text: "\xff"},
		"text without":      {ID: id(1), Kind: KindText},
		"reaction no emo":   {ID: id(1), Kind: KindReaction, Target: id(2)},
		"edit no target":    {ID: id(1), Kind: KindEdit, Text: "x"},
		"delete no target":  {ID: id(1), Kind: KindDelete},
		"receipt empty":     {ID: id(1), Kind: KindReadReceipt},
		"receipt zero id":   {ID: id(1), Kind: KindReadReceipt, ReadIDs: []MessageID{{}}},
		"receipt too many":  {ID: id(1), Kind: KindReadReceipt, ReadIDs: make([]MessageID, MaxReadIDs+1)},
		"attachment nil":    {ID: id(1), Kind: KindAttachment},
		"attachment nokey":  {ID: id(1), Kind: KindAttachment, Attachment: &Attachment{BlobID: "b", Hash: attach.Hash{1}}},
		"negative size":     {ID: id(1), Kind: KindAttachment, Attachment: &Attachment{BlobID: "b", Key: attach.Key{1}, Hash: attach.Hash{1}, Size: -1}},
		"metadata empty":    {ID: id(1), Kind: KindGroupMetadata},
		"name too long":     {ID: id(1), Kind: KindGroupMetadata, Name: ptr(strings.Repeat("n", MaxNameSize+1))},
		"unknown known":     {ID: id(1), Kind: 99, Unknown: []Field{{Tag: tagText, Value: []byte("x")}}},
		"unknown order":     {ID: id(1), Kind: 99, Unknown: []Field{{Tag: 30}, {Tag: 20}}},
		"unknown too big":   {ID: id(1), Kind: 99, Unknown: []Field{{Tag: 30, Value: make([]byte, MaxEncodedSize)}}},
		"too many fields":   {ID: id(1), Kind: 99, Unknown: manyFields(MaxFields + 1)},
		"mention empty":     {ID: id(1), Kind: KindText, Text: "x", Mentions: []string{""}},
		"mention order":     {ID: id(1), Kind: KindText, Text: "x", Mentions: []string{"bob", "alice"}},
		"mention twice":     {ID: id(1), Kind: KindText, Text: "x", Mentions: []string{"bob", "bob"}},
		"mention too long":  {ID: id(1), Kind: KindText, Text: "x", Mentions: []string{strings.Repeat("b", MaxMentionSize+1)}},
		"mentions too many": {ID: id(1), Kind: KindText, Text: "x", Mentions: manyNames(MaxMentions + 1)},
	}
	for name, m := range cases {
		if b, err := Encode(m); err == nil {
			t.Errorf("%s: Encode accepted: %x", name, b)
		}
	}
}

func manyFields(n int) []Field {
	fs := make([]Field, n)
	for i := range fs {
		fs[i].Tag = uint16(100 + i)
	}
	return fs
}

// field appends one encoded field.
func appendField(b []byte, tag uint16, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, tag)
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func header(kind Kind) []byte {
	b := []byte{Version}
	m := id(1)
	b = append(b, m[:]...)
	b = binary.BigEndian.AppendUint64(b, 1)
	return binary.BigEndian.AppendUint16(b, uint16(kind))
}

func TestDecodeRejects(t *testing.T) {
	text := appendField(header(KindText), tagText, []byte("x"))
	cases := map[string][]byte{
		"empty":           nil,
		"version 2":       append([]byte{2}, text[1:]...),
		"short header":    text[:10],
		"zero id":         appendField(append(append([]byte{Version}, make([]byte, 16+8)...), 0, 1), tagText, []byte("x")),
		"truncated field": text[:len(text)-1],
		"trailing byte":   append(bytes.Clone(text), 0),
		"length too long": append(header(KindText), 0, 1, 0xff, 0xff, 0xff, 0xff, 'x'),
		"repeated tag":    appendField(bytes.Clone(text), tagText, []byte("y")),
		"tags descending": appendField(appendField(header(KindText), tagReplyTo, id(2).bytes()), tagText, []byte("x")),
		"tag zero":        appendField(header(99), 0, nil),
		"empty text":      appendField(header(KindText), tagText, nil),
		"bad utf8":        appendField(header(KindText), tagText, []byte{0xc3}),
		"missing text":    header(KindText),
		"short reply id":  appendField(bytes.Clone(text), tagReplyTo, []byte{1}),
		"zero target":     appendField(header(KindDelete), tagTarget, make([]byte, 16)),
		"remove 0":        appendField(appendField(appendField(header(KindReaction), tagTarget, id(2).bytes()), tagEmoji, []byte("x")), tagRemove, []byte{0}),
		"read ids 17":     appendField(header(KindReadReceipt), tagReadIDs, make([]byte, 17)),
		"size zero":       appendField(header(99), tagSize, make([]byte, 8)),
		"key short":       appendField(header(99), tagKey, []byte{1}),
		"too large":       append(bytes.Clone(text), make([]byte, MaxEncodedSize)...),
	}
	for name, b := range cases {
		if m, err := Decode(b); err == nil {
			t.Errorf("%s: Decode accepted: %+v", name, m)
		} else if !strings.HasPrefix(err.Error(), "content: decode message: ") {
			t.Errorf("%s: error %q lacks the operation", name, err)
		}
	}
	if _, err := Decode(append([]byte{2}, text[1:]...)); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("version 2: got %v, want ErrUnsupportedVersion", err)
	}
}

func (id MessageID) bytes() []byte { return id[:] }

func TestMessageID(t *testing.T) {
	a, b := NewMessageID(), NewMessageID()
	if a == b || a.IsZero() {
		t.Fatal("NewMessageID repeats or is zero")
	}
	got, err := ParseMessageID(a.String())
	if err != nil || got != a {
		t.Fatalf("ParseMessageID(%s) = %v, %v", a, got, err)
	}
	if _, err := ParseMessageID("xyz"); err == nil {
		t.Fatal("ParseMessageID accepted xyz")
	}
	m := New(KindText, time.Date(2025, 1, 1, 0, 0, 0, 999999, time.UTC))
	if m.Sent.Nanosecond() != 0 || m.ID.IsZero() {
		t.Fatalf("New: %+v", m)
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range examples() {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(header(KindText))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode of a decoded message: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("decode→encode differs:\n in  %x\n out %x", data, b)
		}
	})
}

// TestDecodeAllocation checks that decoding allocates in proportion to the
// input, never to a length it claims.
func TestDecodeAllocation(t *testing.T) {
	claim := append(header(99), 0, 100, 0x7f, 0xff, 0xff, 0xff)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		if _, err := Decode(claim); err == nil {
			t.Fatal("Decode accepted a truncated field")
		}
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 100<<10 {
		t.Fatalf("100 decodes of a field that claims 2 GiB allocated %d bytes", n)
	}
	ids := appendField(header(KindReadReceipt), tagReadIDs, bytes.Repeat(id(1).bytes(), MaxReadIDs))
	if _, err := Decode(ids); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkDecodeText(b *testing.B) {
	data, _ := Encode(examples()["reply"])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTextForms: ids and kinds travel in JSON as text and back.
func TestTextForms(t *testing.T) {
	v := struct {
		ID   MessageID `json:"id"`
		Kind Kind      `json:"kind"`
		Odd  Kind      `json:"odd"`
	}{id(7), KindReadReceipt, 999}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"` + id(7).String() + `","kind":"read-receipt","odd":"kind(999)"}`; string(b) != want {
		t.Fatalf("marshal = %s, want %s", b, want)
	}
	w := v
	w.ID, w.Kind, w.Odd = MessageID{}, 0, 0
	if err := json.Unmarshal(b, &w); err != nil || w != v {
		t.Fatalf("unmarshal = %+v, %v; want %+v", w, err, v)
	}
	for _, bad := range []string{`{"kind":"poll"}`, `{"kind":"kind(x)"}`, `{"id":"12"}`} {
		if err := json.Unmarshal([]byte(bad), &w); err == nil {
			t.Errorf("unmarshal %s: no error", bad)
		}
	}
}

func manyNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("u%03d", i)
	}
	return out
}

// TestMentionsGolden pins the mentions field and checks that a decoder
// refuses malformed lists.
func TestMentionsGolden(t *testing.T) {
	m := &Message{ID: id(0), Sent: time.UnixMilli(0), Kind: KindText, Text: "@bob", Mentions: []string{"bob", "carol"}}
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	want := "01" + "000102030405060708090a0b0c0d0e0f" + "0000000000000000" + "0001" +
		"0001" + "00000004" + "40626f62" +
		"0011" + "0000000a" + "03626f62" + "05636172" + "6f6c"
	if got := hexs(b); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	for name, v := range map[string]string{
		"zero length":  "00",
		"past the end": "05626f62",
		"not sorted":   "05636172" + "6f6c" + "03626f62",
		"repeated":     "03626f62" + "03626f62",
		"empty":        "",
	} {
		raw, _ := hex.DecodeString(v)
		enc := append(b[:headerSize+fieldHeaderSize+4:headerSize+fieldHeaderSize+4], 0, 17, 0, 0, 0, byte(len(raw)))
		enc = append(enc, raw...)
		if _, err := Decode(enc); err == nil {
			t.Errorf("%s: Decode accepted the mentions %x", name, raw)
		}
	}
}
