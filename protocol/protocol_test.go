package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
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
	idKey := id.Public().(ed25519.PublicKey)
	dev := testKey(2).Public().(ed25519.PublicKey)
	created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	data, err := NewDeviceCertificate(id, "example.org", "alice", "dev1", SchemeEd25519, dev, created)
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != 2 {
		t.Errorf("version %d, want 2", data[0])
	}
	c, err := VerifyDeviceCertificate(data, idKey, "example.org", "alice", "dev1", dev)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server != "example.org" || !c.Created.Equal(created.Truncate(time.Second)) || c.Scheme != SchemeEd25519 {
		t.Errorf("decoded %+v", c)
	}
	re, _ := c.Marshal()
	if !bytes.Equal(re, data) {
		t.Errorf("re-encoding differs")
	}
	other := testKey(3).Public().(ed25519.PublicKey)
	for _, tc := range []struct {
		name, server, user string
		device             DeviceID
		idKey, devKey      []byte
		want               string
	}{
		{"identity key", "example.org", "alice", "dev1", other, dev, "signature invalid"},
		{"server", "other.org", "alice", "dev1", idKey, dev, `is for server "example.org", not this server "other.org"`},
		{"user", "example.org", "bob", "dev1", idKey, dev, "names user"},
		{"device", "example.org", "alice", "dev2", idKey, dev, "names device"},
		{"device key", "example.org", "alice", "dev1", idKey, other, "device key differs"},
	} {
		_, err := VerifyDeviceCertificate(data, tc.idKey, tc.server, tc.user, tc.device, tc.devKey)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("another %s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// The signature covers the server name: the same fields signed for
	// another server give another signature.
	c.Server = "other.org"
	if err := c.Verify(idKey); err == nil {
		t.Error("a certificate whose server name was changed verifies")
	}
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x40
		if _, err := VerifyDeviceCertificate(bad, idKey, "example.org", "alice", "dev1", dev); err == nil {
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
	if _, err := NewDeviceCertificate(id, strings.Repeat("x", 4097), "alice", "dev1", SchemeEd25519, dev, created); err == nil {
		t.Error("created a certificate with a server name of 4097 bytes")
	}
}

// v1Certificate is a certificate of version 1 (no server name), as
// Parley wrote them before version 2.
func v1Certificate(id ed25519.PrivateKey, user string, device DeviceID, deviceKey []byte, created time.Time) []byte {
	body := appendField(nil, []byte(user))
	body = appendField(body, []byte(device))
	body = binary.BigEndian.AppendUint16(body, uint16(SchemeEd25519))
	body = appendField(body, deviceKey)
	body = binary.BigEndian.AppendUint64(body, uint64(created.Unix()))
	sig := ed25519.Sign(id, append(appendField(nil, []byte("parley device certificate v1")), body...))
	return appendField(append([]byte{1}, body...), sig)
}

func TestDeviceCertificateOutdated(t *testing.T) {
	dev := testKey(2).Public().(ed25519.PublicKey)
	old := v1Certificate(testKey(1), "alice", "dev1", dev, time.Unix(1700000000, 0))
	_, err := ParseDeviceCertificate(old)
	if !errors.Is(err, ErrCertificateOutdated) || !strings.Contains(err.Error(), "register the device again") {
		t.Errorf("version 1: %v, want ErrCertificateOutdated", err)
	}
	cred, _ := EncodeCredential("example.org", old)
	if _, err := DecodeCredential(cred); !errors.Is(err, ErrCertificateOutdated) {
		t.Errorf("credential with a version 1 certificate: %v, want ErrCertificateOutdated", err)
	}
	if _, err := ParseDeviceCertificate(append([]byte{3}, old[1:]...)); err == nil || !strings.Contains(err.Error(), "unknown version 3") {
		t.Errorf("version 3: %v", err)
	}
}

func TestDeviceCertificateTime(t *testing.T) {
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	data, err := NewDeviceCertificate(testKey(1), "example.org", "alice", "dev1", SchemeEd25519, testKey(2).Public().(ed25519.PublicKey), created)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseDeviceCertificate(data)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Expires().Equal(created.Add(MaxCertificateAge)) {
		t.Errorf("expires %v", c.Expires())
	}
	for _, tc := range []struct {
		name string
		now  time.Time
		want string // empty: valid
	}{
		{"at creation", created, ""},
		{"skewed clock", created.Add(-CertificateClockSkew), ""},
		{"future", created.Add(-CertificateClockSkew - time.Second), "in the future"},
		{"last second", created.Add(MaxCertificateAge), ""},
		{"expired", created.Add(MaxCertificateAge + time.Second), "expired 2027-01-02T03:04:05Z"},
	} {
		err := c.CheckTime(tc.now)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestDeviceProofSignedData(t *testing.T) {
	cert := []byte{2, 0, 1}
	base := DeviceProofSignedData("example.org", "alice", "dev1", cert)
	want := appendField(nil, []byte("parley device proof v1"))
	want = appendField(want, []byte("example.org"))
	want = appendField(want, []byte("alice"))
	want = appendField(want, []byte("dev1"))
	want = appendField(want, cert)
	if !bytes.Equal(base, want) {
		t.Fatalf("signed data %x, want %x", base, want)
	}
	// Every field is length-prefixed: moving a byte from one field to the
	// next changes the data.
	for _, other := range [][]byte{
		DeviceProofSignedData("example.or", "galice", "dev1", cert),
		DeviceProofSignedData("other.org", "alice", "dev1", cert),
		DeviceProofSignedData("example.org", "alice", "dev2", cert),
		DeviceProofSignedData("example.org", "alice", "dev1", []byte{2, 0, 2}),
		SessionSignedData("example.org", "alice", "dev1", cert),
	} {
		if bytes.Equal(other, base) {
			t.Errorf("different inputs give the same signed data %x", base)
		}
	}
}

func FuzzParseDeviceCertificate(f *testing.F) {
	data, _ := NewDeviceCertificate(testKey(1), "example.org", "alice", "dev1", SchemeEd25519, testKey(2).Public().(ed25519.PublicKey), time.Unix(1700000000, 0))
	f.Add(data)
	f.Add(v1Certificate(testKey(1), "alice", "dev1", testKey(2).Public().(ed25519.PublicKey), time.Unix(1700000000, 0)))
	f.Add([]byte{1})
	f.Add([]byte{2})
	f.Add([]byte{2, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseDeviceCertificate(b)
		if err != nil {
			if c != nil {
				t.Fatalf("a certificate with the error %v", err)
			}
			return
		}
		re, err := c.Marshal()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs: %x vs %x (%v)", re, b, err)
		}
		// Checks on any parsed certificate answer, never panic.
		c.CheckTime(time.Unix(1700000000, 0))
		c.CheckServer("example.org")
		c.Verify(testKey(1).Public().(ed25519.PublicKey))
		DeviceProofSignedData(c.Server, c.User, c.Device, b)
	})
}

func TestFrames(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	epoch := uint64(7)
	frames := []Frame{
		&SubscribeFrame{Cursors: []Cursor{{Conversation: 1, Seq: 2}}, Inbox: 3},
		&SubscribeFrame{},
		&SubscribeFrame{Revocations: true},
		&SubscribeFrame{Ephemeral: true},
		&EphemeralFrame{Conversation: 4, Message: []byte{1, 2}},
		&EphemeralFrame{Conversation: 4, Device: "d", Message: []byte{1, 2}},
		&RevokedFrame{RevokedDevices{Devices: []RevokedDevice{
			{User: "alice", Device: "d", Revoked: &now, Revocation: []byte{1}, Conversations: []ConversationID{4, 5}},
			{User: "bob", Device: "e", Disabled: true, Conversations: []ConversationID{4}},
		}, Truncated: true}},
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
	bin, _ := MarshalBinaryEntry(Entry{Conversation: 1, Seq: 2, Kind: KindApplication, Sender: "d", Data: []byte{1, 2, 3}})
	f.Add(bin)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 0 && b[0] == binaryEntryTag {
			fr, err := UnmarshalServerFrame(b)
			if err != nil {
				return
			}
			e := fr.(*EntryFrame).Entry
			out, err := MarshalBinaryEntry(e)
			if err != nil {
				t.Fatal(err)
			}
			fr2, err := UnmarshalServerFrame(out)
			if err != nil {
				t.Fatalf("re-decoding a binary entry frame: %v", err)
			}
			if out2, _ := MarshalBinaryEntry(fr2.(*EntryFrame).Entry); !bytes.Equal(out, out2) {
				t.Fatalf("re-encoding a binary entry frame differs: %q vs %q", out, out2)
			}
			return
		}
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
