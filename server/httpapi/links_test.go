package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/parley-chat/parley/protocol"
)

// linkCall does a request of the device being linked: with the mailbox
// token instead of a session.
func (e *env) linkCall(token, method, path string, body, out any) (int, *protocol.Error) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	req.Header.Set(protocol.LinkTokenHeader, token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var pe protocol.Error
		json.Unmarshal(data, &pe)
		return resp.StatusCode, &pe
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatal(err)
		}
	}
	return resp.StatusCode, nil
}

// A link mailbox carries messages between the device being linked (by
// its token) and a device of the account that claims it (by its
// session); a long poll returns as soon as the other side writes; other
// accounts, wrong tokens and a mailbox past its life are refused; the
// mailbox holds a bounded number of messages and is deleted by either
// side.
func TestLinkMailbox(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.register("alice")
	bob := e.register("bob")

	var created protocol.CreateLinkResponse
	if _, pe := e.linkCall("", "POST", "/v1/link", protocol.CreateLinkRequest{Message: []byte("n1")}, &created); pe != nil {
		t.Fatal(pe)
	}
	if !protocol.ValidLinkID(created.ID) || created.Token == "" || !created.Expires.Equal(e.clock.Now().Add(protocol.LinkTTL)) {
		t.Fatalf("created %+v", created)
	}
	path := "/v1/link/" + created.ID
	// An account may not delete a mailbox it has not claimed.
	e.wantErr(protocol.CodeNotFound, bob.token, "DELETE", path, nil)

	// The existing device reads the new device's first message.
	var got protocol.LinkMessages
	e.must(alice.token, "GET", path, nil, &got)
	if len(got.Messages) != 1 || string(got.Messages[0].Message) != "n1" || got.Messages[0].From != protocol.LinkSideNew {
		t.Fatalf("existing side read %+v", got)
	}

	// The new device waits; alice's post wakes it.
	polled := make(chan protocol.LinkMessages, 1)
	go func() {
		var m protocol.LinkMessages
		if _, pe := e.linkCall(created.Token, "GET", path+"?after=1&wait=30", nil, &m); pe != nil {
			t.Error(pe)
		}
		polled <- m
	}()
	var posted protocol.PostLinkResponse
	e.must(alice.token, "POST", path, protocol.PostLinkRequest{Message: []byte("e1")}, &posted)
	if posted.Seq != 2 {
		t.Errorf("posted at seq %d, want 2", posted.Seq)
	}
	select {
	case m := <-polled:
		if len(m.Messages) != 1 || string(m.Messages[0].Message) != "e1" || m.Messages[0].Seq != 2 {
			t.Errorf("new side read %+v", m)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll did not return after the post")
	}

	// Claimed by alice: bob can neither read nor write; a wrong token
	// reads nothing.
	e.wantErr(protocol.CodeNotFound, bob.token, "GET", path, nil)
	e.wantErr(protocol.CodeNotFound, bob.token, "POST", path, protocol.PostLinkRequest{Message: []byte("x")})
	if _, pe := e.linkCall("wrong", "GET", path, nil, nil); pe == nil || pe.Code != protocol.CodeNotFound {
		t.Errorf("wrong token: %v", pe)
	}
	e.wantErr(protocol.CodeBadRequest, alice.token, "POST", path, protocol.PostLinkRequest{})
	e.wantErr(protocol.CodeTooLarge, alice.token, "POST", path, protocol.PostLinkRequest{Message: make([]byte, protocol.MaxLinkMessageBytes+1)})
	e.wantErr(protocol.CodeBadRequest, alice.token, "GET", "/v1/link/short", nil)

	// The new side reads only alice's messages, the existing side only
	// the new device's.
	if _, pe := e.linkCall(created.Token, "POST", path, protocol.PostLinkRequest{Message: []byte("n2")}, nil); pe != nil {
		t.Fatal(pe)
	}
	e.must(alice.token, "GET", path+"?after=1", nil, &got)
	if len(got.Messages) != 1 || string(got.Messages[0].Message) != "n2" {
		t.Errorf("existing side after 1: %+v", got)
	}
	// Full.
	for i := 4; i <= protocol.MaxLinkMessages; i++ {
		e.must(alice.token, "POST", path, protocol.PostLinkRequest{Message: fmt.Appendf(nil, "e%d", i)}, nil)
	}
	e.wantErr(protocol.CodeTooLarge, alice.token, "POST", path, protocol.PostLinkRequest{Message: []byte("one too many")})

	// Deleted by the new device: gone for both.
	if _, pe := e.linkCall(created.Token, "DELETE", path, nil, nil); pe != nil {
		t.Fatal(pe)
	}
	e.wantErr(protocol.CodeNotFound, alice.token, "GET", path, nil)

	// Expired after LinkTTL.
	var second protocol.CreateLinkResponse
	if _, pe := e.linkCall("", "POST", "/v1/link", protocol.CreateLinkRequest{Message: []byte("n1")}, &second); pe != nil {
		t.Fatal(pe)
	}
	e.clock.Advance(protocol.LinkTTL)
	e.wantErr(protocol.CodeNotFound, alice.token, "POST", "/v1/link/"+second.ID, protocol.PostLinkRequest{Message: []byte("late")})
	if _, pe := e.linkCall(second.Token, "GET", "/v1/link/"+second.ID, nil, nil); pe == nil || pe.Code != protocol.CodeNotFound {
		t.Errorf("expired mailbox: %v", pe)
	}
}

// TestDeviceLastSeen: GET /v1/users/{name} tells when each device last
// signed in to the devices of the same account only.
func TestDeviceLastSeen(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.register("alice")
	bob := e.register("bob")
	var own, other protocol.UserInfo
	e.must(alice.token, "GET", "/v1/users/alice", nil, &own)
	e.must(bob.token, "GET", "/v1/users/alice", nil, &other)
	if len(own.Devices) != 1 || own.Devices[0].LastSeen == nil || !own.Devices[0].LastSeen.Equal(e.clock.Now().Truncate(time.Microsecond)) {
		t.Errorf("alice's own record: %+v", own.Devices)
	}
	if len(other.Devices) != 1 || other.Devices[0].LastSeen != nil {
		t.Errorf("bob's view of alice: %+v", other.Devices)
	}
}

// TestDeviceName: PUT /v1/devices/{device}/name stores an opaque sealed
// name for a device of the caller's account, which GET /v1/users/{name}
// shows to that account only; another account's device, an unknown one
// and an oversized name are refused and change nothing.
func TestDeviceName(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.register("alice")
	bob := e.register("bob")
	sealed := bytes.Repeat([]byte{7}, 300)
	e.must(alice.token, "PUT", "/v1/devices/"+string(alice.id)+"/name", protocol.SetDeviceNameRequest{SealedName: sealed}, nil)
	e.wantErr(protocol.CodeUnknownDevice, bob.token, "PUT", "/v1/devices/"+string(alice.id)+"/name", protocol.SetDeviceNameRequest{SealedName: []byte{1}})
	e.wantErr(protocol.CodeUnknownDevice, alice.token, "PUT", "/v1/devices/"+string(bob.id)+"/name", protocol.SetDeviceNameRequest{SealedName: []byte{1}})
	e.wantErr(protocol.CodeUnknownDevice, alice.token, "PUT", "/v1/devices/0123456789abcdef0123456789abcdef/name", protocol.SetDeviceNameRequest{SealedName: []byte{1}})
	e.wantErr(protocol.CodeBadRequest, alice.token, "PUT", "/v1/devices/"+string(alice.id)+"/name",
		protocol.SetDeviceNameRequest{SealedName: make([]byte, protocol.MaxSealedDeviceNameBytes+1)})
	var own, other protocol.UserInfo
	e.must(alice.token, "GET", "/v1/users/alice", nil, &own)
	e.must(bob.token, "GET", "/v1/users/alice", nil, &other)
	if len(own.Devices) != 1 || !bytes.Equal(own.Devices[0].SealedName, sealed) {
		t.Errorf("alice's own record: %+v", own.Devices)
	}
	if len(other.Devices) != 1 || other.Devices[0].SealedName != nil {
		t.Errorf("bob's view of alice: %+v", other.Devices)
	}
	var bobs protocol.UserInfo
	if e.must(bob.token, "GET", "/v1/users/bob", nil, &bobs); len(bobs.Devices) != 1 || bobs.Devices[0].SealedName != nil {
		t.Errorf("bob's device after refused names: %+v", bobs.Devices)
	}
}
