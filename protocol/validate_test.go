package protocol

import (
	"errors"
	"strings"
	"testing"
)

// Every integer field of a client frame is range-checked at decode: the
// largest seq passes, one more is refused with a bad_request *Error naming
// the field.
func TestUnmarshalFrameRanges(t *testing.T) {
	for _, tc := range []struct {
		frame string
		field string // field is "" when the frame is valid
	}{
		{`{"type":"ack","cursors":[{"conversation":1,"seq":9223372036854775807}],"inbox":9223372036854775807}`, ""},
		{`{"type":"ack","cursors":[{"conversation":1,"seq":9223372036854775808}]}`, "cursors[0].seq"},
		{`{"type":"ack","cursors":[{"conversation":1,"seq":1},{"conversation":2,"seq":18446744073709551615}]}`, "cursors[1].seq"},
		{`{"type":"ack","cursors":[{"conversation":0,"seq":1}]}`, "cursors[0].conversation"},
		{`{"type":"ack","cursors":[{"conversation":-5,"seq":1}]}`, "cursors[0].conversation"},
		{`{"type":"ack","inbox":9223372036854775808}`, "inbox"},
		{`{"type":"subscribe","cursors":[{"conversation":3,"seq":0}],"inbox":0}`, ""},
		{`{"type":"subscribe","cursors":[{"conversation":3,"seq":9223372036854775808}]}`, "cursors[0].seq"},
		{`{"type":"subscribe","inbox":9223372036854775808}`, "inbox"},
		{`{"type":"send","client_id":"a","conversation":1,"message":"AAE="}`, ""},
		{`{"type":"send","client_id":"a","conversation":0,"message":"AAE="}`, "conversation"},
		{`{"type":"send","conversation":1,"message":"AAE="}`, "client_id"},
		{`{"type":"send","client_id":"` + strings.Repeat("x", 65) + `","conversation":1,"message":"AAE="}`, "client_id"},
		{`{"type":"typing","conversation":-1,"typing":true}`, "conversation"},
		{`{"type":"typing","conversation":7,"typing":true}`, ""},
		{`{"type":"ephemeral","conversation":7,"message":"AAE="}`, ""},
		{`{"type":"ephemeral","conversation":0,"message":"AAE="}`, "conversation"},
		{`{"type":"ephemeral","conversation":7}`, "message"},
	} {
		f, err := UnmarshalFrame([]byte(tc.frame))
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.frame, err)
			}
			continue
		}
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != CodeBadRequest || !strings.Contains(pe.Message, tc.field) {
			t.Errorf("%s: got %v, %v; want bad_request naming %s", tc.frame, f, err, tc.field)
		}
	}
}

// An ephemeral message beyond MaxEphemeralBytes is too_large.
func TestEphemeralTooLarge(t *testing.T) {
	f := &EphemeralFrame{Conversation: 1, Message: make([]byte, MaxEphemeralBytes)}
	if err := f.Validate(); err != nil {
		t.Fatalf("%d bytes: %v", MaxEphemeralBytes, err)
	}
	f.Message = append(f.Message, 0)
	var pe *Error
	if err := f.Validate(); !errors.As(err, &pe) || pe.Code != CodeTooLarge {
		t.Errorf("%d bytes: %v, want too_large", len(f.Message), err)
	}
}

// The request bodies with integers beyond their Go types' ranges are
// range-checked by Validate.
func TestValidateRequests(t *testing.T) {
	for _, tc := range []struct {
		name  string
		v     Validator
		field string
	}{
		{"ack ok", &AckRequest{Cursors: []Cursor{{Conversation: 1, Seq: MaxSeq}}, Inbox: MaxSeq}, ""},
		{"ack empty", &AckRequest{}, ""},
		{"ack seq", &AckRequest{Cursors: []Cursor{{Conversation: 1, Seq: 1 << 63}}}, "cursors[0].seq"},
		{"ack conversation", &AckRequest{Cursors: []Cursor{{Conversation: 0, Seq: 1}}}, "cursors[0].conversation"},
		{"ack inbox", &AckRequest{Inbox: 1 << 63}, "inbox"},
		{"handshake ok", &HandshakeRequest{Epoch: MaxSeq}, ""},
		{"handshake epoch", &HandshakeRequest{Epoch: 1 << 63}, "epoch"},
		{"invite ok", &CreateInviteRequest{Uses: 1, TTLSeconds: MaxTTLSeconds}, ""},
		{"invite uses", &CreateInviteRequest{Uses: 0, TTLSeconds: 60}, "uses"},
		{"invite negative uses", &CreateInviteRequest{Uses: -1, TTLSeconds: 60}, "uses"},
		{"invite ttl", &CreateInviteRequest{Uses: 1, TTLSeconds: 0}, "ttl_seconds"},
		{"invite huge ttl", &CreateInviteRequest{Uses: 1, TTLSeconds: MaxTTLSeconds + 1}, "ttl_seconds"},
	} {
		err := tc.v.Validate()
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != CodeBadRequest || !strings.Contains(pe.Message, tc.field) {
			t.Errorf("%s: got %v; want bad_request naming %s", tc.name, err, tc.field)
		}
	}
}
