package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func TestDeviceCertificate(t *testing.T) {
	id := testKey(1)
	dev := testKey(2).Public().(ed25519.PublicKey)
	created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	data, err := NewDeviceCertificate(id, "alice", "dev1", SchemeEd25519, dev, created)
	if err != nil {
		t.Fatal(err)
	}
	c, err := VerifyDeviceCertificate(data, id.Public().(ed25519.PublicKey), "alice", "dev1", dev)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Created.Equal(created.Truncate(time.Second)) || c.Scheme != SchemeEd25519 {
		t.Errorf("decoded %+v", c)
	}
	re, _ := c.Marshal()
	if !bytes.Equal(re, data) {
		t.Errorf("re-encoding differs")
	}
	other := testKey(3).Public().(ed25519.PublicKey)
	if _, err := VerifyDeviceCertificate(data, other, "alice", "dev1", dev); err == nil {
		t.Error("verified with the wrong identity key")
	}
	if _, err := VerifyDeviceCertificate(data, id.Public().(ed25519.PublicKey), "bob", "dev1", dev); err == nil {
		t.Error("verified for the wrong user")
	}
	if _, err := VerifyDeviceCertificate(data, id.Public().(ed25519.PublicKey), "alice", "dev2", dev); err == nil {
		t.Error("verified for the wrong device")
	}
	if _, err := VerifyDeviceCertificate(data, id.Public().(ed25519.PublicKey), "alice", "dev1", other); err == nil {
		t.Error("verified for the wrong device key")
	}
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x40
		if _, err := VerifyDeviceCertificate(bad, id.Public().(ed25519.PublicKey), "alice", "dev1", dev); err == nil {
			t.Errorf("verified with byte %d flipped", i)
		}
	}
	for n := range len(data) {
		if _, err := ParseDeviceCertificate(data[:n]); err == nil {
			t.Errorf("parsed a certificate truncated to %d bytes", n)
		}
	}
	if _, err := ParseDeviceCertificate(append(bytes.Clone(data), 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Errorf("trailing byte: %v", err)
	}
}

func FuzzParseDeviceCertificate(f *testing.F) {
	data, _ := NewDeviceCertificate(testKey(1), "alice", "dev1", SchemeEd25519, testKey(2).Public().(ed25519.PublicKey), time.Unix(1700000000, 0))
	f.Add(data)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseDeviceCertificate(b)
		if err != nil {
			return
		}
		re, err := c.Marshal()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs: %x vs %x (%v)", re, b, err)
		}
	})
}

func TestFrames(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	epoch := uint64(7)
	frames := []Frame{
		&SubscribeFrame{Cursors: []Cursor{{Conversation: 1, Seq: 2}}, Inbox: 3},
		&SubscribeFrame{},
		&AckFrame{Cursors: []Cursor{{Conversation: 1, Seq: 5}}},
		&SendFrame{ClientID: "c1", Conversation: 4, Message: []byte{1, 2, 3}},
		&SentFrame{ClientID: "c1", Conversation: 4, Seq: 9, Time: now},
		&TypingFrame{Conversation: 4, Device: "d", Typing: true},
		&EntryFrame{Entry{Conversation: 4, Seq: 9, Kind: KindApplication, Sender: "d", Data: []byte{9}, Time: now}},
		&InboxFrame{InboxEntry{Seq: 1, Conversation: 4, Data: []byte{8}, Time: now}},
		&ErrorFrame{ClientID: "c2", Error: Error{Code: CodeStaleEpoch, Message: "x", CurrentEpoch: &epoch}},
		&PingFrame{Nonce: "n"},
		&PongFrame{},
	}
	for _, f := range frames {
		b, err := MarshalFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) || !bytes.HasPrefix(b, []byte(`{"type":"`+string(f.FrameType())+`"`)) {
			t.Errorf("%s: bad encoding %s", f.FrameType(), b)
		}
		g, err := UnmarshalFrame(b)
		if err != nil {
			t.Fatalf("%s: %v (%s)", f.FrameType(), err, b)
		}
		if !reflect.DeepEqual(f, g) {
			t.Errorf("%s: round trip %#v != %#v", f.FrameType(), g, f)
		}
	}
	e, _ := MarshalFrame(&EntryFrame{Entry{Conversation: 1, Seq: 2, Kind: KindHandshake, Sender: "d", Data: []byte("hi"), Time: now}})
	want := `{"type":"entry","conversation":1,"seq":2,"kind":"handshake","sender":"d","data":"aGk=","time":"2025-01-02T03:04:05Z"}`
	if string(e) != want {
		t.Errorf("entry frame\n got %s\nwant %s", e, want)
	}
	for _, bad := range []string{``, `[]`, `{}`, `null`, `{"type":"nope"}`, `{"type":"send","conversation":"x"}`, `{"type":"ack"} {}`, `{"type":1}`} {
		if _, err := UnmarshalFrame([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzUnmarshalFrame(f *testing.F) {
	f.Add([]byte(`{"type":"send","client_id":"a","conversation":1,"message":"AAE="}`))
	f.Add([]byte(`{"type":"subscribe","cursors":[{"conversation":1,"seq":2}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := UnmarshalFrame(b)
		if err != nil {
			return
		}
		out, err := MarshalFrame(fr)
		if err != nil {
			t.Fatal(err)
		}
		fr2, err := UnmarshalFrame(out)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		// Compare encodings: an empty list and a missing one are equal.
		if out2, _ := MarshalFrame(fr2); !bytes.Equal(out, out2) {
			t.Fatalf("re-encoding differs: %s vs %s", out, out2)
		}
	})
}

func TestErrorBody(t *testing.T) {
	b, _ := json.Marshal(StaleEpoch(5))
	if string(b) != `{"code":"stale_epoch","message":"conversation is at epoch 5","current_epoch":5}` {
		t.Errorf("got %s", b)
	}
	var e *Error
	if !errors.As(error(StaleEpoch(1)), &e) || e.Code.HTTPStatus() != 409 {
		t.Error("stale epoch status")
	}
	if CodeRateLimited.HTTPStatus() != 429 || CodeTooLarge.HTTPStatus() != 413 || CodeUnauthorized.HTTPStatus() != 401 {
		t.Error("statuses")
	}
}

func TestValidNames(t *testing.T) {
	for _, s := range []string{"alice", "a", "bob.smith", "x_1-2"} {
		if !ValidUserName(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", "Alice", ".a", "a b", "a@b", strings.Repeat("a", 65)} {
		if ValidUserName(s) {
			t.Errorf("%q accepted", s)
		}
	}
	if !ValidDeviceID("0123abcdEF_-") || ValidDeviceID("") || ValidDeviceID("a/b") {
		t.Error("device ids")
	}
}

// The fast path for the usual shape decodes like the general one.
func TestUnmarshalFrameShapes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want FrameType // "" for an error
	}{
		{`{"type":"send","client_id":"a","conversation":1,"message":"AAE="}`, FrameSend},
		{`{"type":"ping"}`, FramePing},
		{` {"type":"ping"}`, FramePing},
		{`{"nonce":"x","type":"ping"}`, FramePing},
		{`{"type":"ping","type":"ack"}`, FrameAck}, // the last duplicate wins, as in encoding/json
		{`{"type":"ping"} {}`, ""},
		{`{"type":"ping"}x`, ""},
		{`{"type":"nope"}`, ""},
		{`{"type":"ping","nonce":1}`, ""},
		{`{"type":"ping",}`, ""},
	} {
		f, err := UnmarshalFrame([]byte(tc.in))
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: accepted as %s", tc.in, f.FrameType())
		case tc.want != "" && (err != nil || f.FrameType() != tc.want):
			t.Errorf("%s: %v %v, want %s", tc.in, f, err, tc.want)
		}
	}
}

func BenchmarkUnmarshalFrame(b *testing.B) {
	msg, _ := MarshalFrame(&SendFrame{ClientID: "c-123456", Conversation: 42, Message: make([]byte, 256)})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalFrame(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWelcomeForms: the single form encodes as before, without devices;
// the list form without device; Recipients names the devices of either.
func TestWelcomeForms(t *testing.T) {
	for _, tc := range []struct {
		w    Welcome
		json string
		to   []DeviceID
	}{
		{Welcome{Device: "a", Data: []byte{1}}, `{"device":"a","data":"AQ=="}`, []DeviceID{"a"}},
		{Welcome{Devices: []DeviceID{"a", "b"}, Data: []byte{1}}, `{"devices":["a","b"],"data":"AQ=="}`, []DeviceID{"a", "b"}},
		{Welcome{Data: []byte{1}}, `{"data":"AQ=="}`, nil},
	} {
		b, err := json.Marshal(tc.w)
		if err != nil || string(b) != tc.json {
			t.Errorf("marshal %+v = %s, %v; want %s", tc.w, b, err, tc.json)
		}
		var back Welcome
		if err := json.Unmarshal([]byte(tc.json), &back); err != nil {
			t.Fatal(err)
		}
		if got := back.Recipients(); !slices.Equal(got, tc.to) {
			t.Errorf("%s: recipients %v, want %v", tc.json, got, tc.to)
		}
	}
}
