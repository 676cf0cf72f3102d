package nats

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []record{
		{origin: "a#0011"},
		{origin: "node-1", typing: &delivery.Typing{Device: "alice", Typing: true}},
		{origin: "n", typing: &delivery.Typing{Device: "b", Typing: false}},
		{origin: "n", ephemeral: &delivery.Ephemeral{Device: "b", Message: []byte{0, 1, 2}}},
		{origin: "n", ephemeral: &delivery.Ephemeral{Device: "b", Message: bytes.Repeat([]byte{7}, protocol.MaxEphemeralBytes)}},
	} {
		b := appendRecord(nil, r)
		got, err := parseRecord(b)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("parseRecord(appendRecord(%+v)) = %+v, %v", r, got, err)
		}
	}
}

func TestRecordMalformed(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{1},
		{1, 0},
		{2, 0, 1, 'a'},                         // version
		{1, 8, 1, 'a'},                         // unknown flag
		{1, 4, 1, 'a'},                         // ephemeral without device
		{1, 4, 1, 'a', 1, 'd'},                 // ephemeral without message
		{1, 4, 1, 'a', 1, 'd', 0, 0},           // empty message
		{1, 4, 1, 'a', 1, 'd', 0, 2, 'x'},      // short message
		{1, 4, 1, 'a', 1, 'd', 0, 1, 'x', 'y'}, // trailing byte
		{1, 5, 1, 'a', 1, 'd', 0, 1, 'x'},      // ephemeral and typing
		{1, 4, 1, 'a', 1, 'd', 4, 1, 'x'},      // message longer than the limit
		{1, 2, 1, 'a'},                         // "on" without typing
		{1, 0, 0},                              // empty origin
		{1, 0, 2, 'a'},                         // short origin
		{1, 0, 1, 'a', 0},                      // trailing byte
		{1, 1, 1, 'a'},                         // typing without device
		{1, 1, 1, 'a', 0},                      // empty device
		{1, 1, 1, 'a', 1, 'd', 'x'},            // trailing byte
	} {
		if r, err := parseRecord(b); err == nil {
			t.Errorf("parseRecord(%v) = %+v, want an error", b, r)
		}
	}
}

func TestSubjects(t *testing.T) {
	for _, tc := range []delivery.Topic{conv(0), conv(1), conv(1<<62 + 5), device("a"), device("A_b-9")} {
		s, ok := subject("p.x.", tc)
		if !ok {
			t.Fatalf("subject(%v) not routable", tc)
		}
		got, resync, err := parseSubject(s[len("p.x."):])
		if err != nil || resync || got != tc {
			t.Errorf("parseSubject(%q) = %v, %v, %v", s, got, resync, err)
		}
	}
	for _, d := range []string{"a.b", "a*", ">", "a b", ""} {
		if _, ok := subject("p.", device(d)); ok && d != "" {
			t.Errorf("device %q routable", d)
		}
	}
	for _, s := range []string{"conv", "conv.", "conv.01", "conv.+1", "conv.x", "device", "device.a.b", "resync.x", "other.1", "conv.1.2"} {
		if _, _, err := parseSubject(s); err == nil {
			t.Errorf("parseSubject(%q) accepted", s)
		}
	}
	if _, resync, err := parseSubject("resync"); err != nil || !resync {
		t.Errorf("parseSubject(resync) = %v, %v", resync, err)
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add(appendRecord(nil, record{origin: "a#1"}))
	f.Add(appendRecord(nil, record{origin: "a#1", typing: &delivery.Typing{Device: "d", Typing: true}}))
	f.Add(appendRecord(nil, record{origin: "a#1", ephemeral: &delivery.Ephemeral{Device: "d", Message: []byte("ciphertext")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRecord(b)
		if err != nil {
			return
		}
		if out := appendRecord(nil, r); !bytes.Equal(out, b) {
			t.Fatalf("parse→append: %x → %x", b, out)
		}
	})
}
