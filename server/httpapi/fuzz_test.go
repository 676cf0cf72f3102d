package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/httpapi"
)

// requestTypes are every JSON request body of the protocol.
var requestTypes = []func() any{
	func() any { return new(protocol.RegisterRequest) },
	func() any { return new(protocol.ChallengeRequest) },
	func() any { return new(protocol.SessionRequest) },
	func() any { return new(protocol.AddDeviceRequest) },
	func() any { return new(protocol.RecoverDeviceRequest) },
	func() any { return new(protocol.UploadKeyPackagesRequest) },
	func() any { return new(protocol.ClaimKeyPackagesRequest) },
	func() any { return new(protocol.CreateConversationRequest) },
	func() any { return new(protocol.HandshakeRequest) },
	func() any { return new(protocol.SendRequest) },
	func() any { return new(protocol.AckRequest) },
	func() any { return new(protocol.CreateInviteRequest) },
	func() any { return new(protocol.AdminUserUpdate) },
	func() any { return new(protocol.AdminDeviceUpdate) },
}

// FuzzDecodeJSON checks the strict decoder of every request type: no
// panic, errors are protocol errors, what it accepts is within the
// type's ranges (protocol.Validator) and re-encodes to JSON that decodes
// to the same value.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"name":"a","device":{"id":"x"}}`, `{"message":"AAAA"}`, `{"cursors":[{"conversation":1,"seq":2}]}`, `{"x":1}`, `[]`, `{} {}`, `null`,
		`{"cursors":[{"conversation":1,"seq":9223372036854775808}]}`, `{"cursors":[{"conversation":-1,"seq":1}],"inbox":18446744073709551615}`,
		`{"epoch":9223372036854775808,"message":"AAAA"}`, `{"uses":0,"ttl_seconds":9223372036854775807}`, `{"cipher_suite":65536}`, `{"device":{"scheme":-1}}`} {
		for i := range requestTypes {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		v := requestTypes[int(kind)%len(requestTypes)]()
		err := httpapi.DecodeJSON(bytes.NewReader(data), 1<<20, v)
		if err != nil {
			if _, ok := err.(*protocol.Error); !ok {
				t.Fatalf("error %T %v is not a protocol error", err, err)
			}
			return
		}
		if vv, ok := v.(protocol.Validator); ok {
			if err := vv.Validate(); err != nil {
				t.Fatalf("accepted %q out of range: %v", data, err)
			}
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		w := requestTypes[int(kind)%len(requestTypes)]()
		if err := httpapi.DecodeJSON(bytes.NewReader(b), 1<<20, w); err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", b, err)
		}
	})
}

// FuzzHandlers sends arbitrary bodies to every POST route, authenticated
// as a member and administrator: every answer is a 2xx or a 4xx with a
// protocol error body, never a 5xx or a panic.
func FuzzHandlers(f *testing.F) {
	e := newEnv(f, nil)
	alice := e.register("alice")
	truth := true
	if _, err := e.svc.UpdateUser(context.Background(), "alice", protocol.AdminUserUpdate{Admin: &truth}); err != nil {
		f.Fatal(err)
	}
	m := alice.createConversation()
	sendOne(f, m)
	routes := []string{"/v1/register", "/v1/auth/challenge", "/v1/auth/session", "/v1/devices", "/v1/keypackages", "/v1/keypackages/claim",
		"/v1/conversations", fmt.Sprintf("/v1/conversations/%d/handshake", m.conv), fmt.Sprintf("/v1/conversations/%d/messages", m.conv),
		"/v1/ack", "/v1/admin/invites", "/v1/conversations/77/messages", "/v1/admin/users/nobody", "/v1/admin/devices/nodevice", "/v1/devices/recover"}
	for i := range routes {
		f.Add(uint8(i), []byte(`{}`))
		f.Add(uint8(i), []byte(`{"message":"AAEAAgAA","epoch":0,"key_packages":[{"data":"AAEABQ=="}],"group_info":"AAEABA=="}`))
		f.Add(uint8(i), []byte(`{"epoch":9223372036854775808,"message":"AAEAAgAA","uses":-1,"ttl_seconds":9223372036854775807,"cipher_suite":65535}`))
	}
	for _, body := range []string{
		fmt.Sprintf(`{"cursors":[{"conversation":%d,"seq":1}]}`, m.conv),
		fmt.Sprintf(`{"cursors":[{"conversation":%d,"seq":9223372036854775807}]}`, m.conv),
		fmt.Sprintf(`{"cursors":[{"conversation":%d,"seq":9223372036854775808}]}`, m.conv),
		fmt.Sprintf(`{"cursors":[{"conversation":%d,"seq":18446744073709551615}],"inbox":9223372036854775808}`, m.conv),
		`{"cursors":[{"conversation":-9223372036854775808,"seq":1}]}`,
		`{"inbox":9223372036854775807}`,
	} {
		f.Add(uint8(slices.Index(routes, "/v1/ack")), []byte(body))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		if bytes.Contains(body, []byte(`"disabled"`)) {
			t.Skip("would disable the fuzzing account")
		}
		path := routes[int(route)%len(routes)]
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+alice.token)
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: status %d %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var pe protocol.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &pe); err != nil || pe.Code == "" || pe.Code.HTTPStatus() != rec.Code && rec.Code != http.StatusMethodNotAllowed {
				t.Fatalf("POST %s: status %d with body %q", path, rec.Code, rec.Body)
			}
			if strings.Contains(pe.Message, alice.token) {
				t.Fatal("error message contains the token")
			}
		}
	})
}

// FuzzFrames sends an arbitrary WebSocket message on a new authenticated
// connection, then a ping: the server answers the ping, or refuses the
// message with an error frame and closes the connection with a client
// error status; it never reports an internal error or panics.
func FuzzFrames(f *testing.F) {
	e := newEnv(f, nil)
	alice := e.register("alice")
	m := alice.createConversation()
	sendOne(f, m)
	for _, s := range []string{
		`{"type":"subscribe"}`,
		fmt.Sprintf(`{"type":"subscribe","cursors":[{"conversation":%d,"seq":0}],"inbox":0}`, m.conv),
		fmt.Sprintf(`{"type":"subscribe","cursors":[{"conversation":%d,"seq":9223372036854775808}]}`, m.conv),
		fmt.Sprintf(`{"type":"ack","cursors":[{"conversation":%d,"seq":1}]}`, m.conv),
		fmt.Sprintf(`{"type":"ack","cursors":[{"conversation":%d,"seq":9223372036854775808}]}`, m.conv),
		fmt.Sprintf(`{"type":"ack","cursors":[{"conversation":%d,"seq":18446744073709551615}],"inbox":18446744073709551615}`, m.conv),
		`{"type":"ack","cursors":[{"conversation":0,"seq":1}]}`,
		`{"type":"ack","inbox":9223372036854775808}`,
		fmt.Sprintf(`{"type":"send","client_id":"c","conversation":%d,"message":"AAEAAgAA"}`, m.conv),
		`{"type":"send","client_id":"c","conversation":-1,"message":"AAEAAgAA"}`,
		fmt.Sprintf(`{"type":"typing","conversation":%d,"typing":true}`, m.conv),
		`{"type":"typing","conversation":-9223372036854775808}`,
		`{"type":"subscribe","ephemeral":true}`,
		fmt.Sprintf(`{"type":"ephemeral","conversation":%d,"message":"AAEAAgAA"}`, m.conv),
		fmt.Sprintf(`{"type":"ephemeral","conversation":%d,"message":""}`, m.conv),
		`{"type":"ephemeral","conversation":1,"message":"` + strings.Repeat("A", 1400) + `"}`,
		`{"type":"ping","nonce":"x"}`,
		`{"type":"entry"}`,
		`{"type":"nope"}`,
		`{"type":"ack"} {}`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	const end = "fuzz-end-5b1c"
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.Contains(data, []byte(end)) {
			t.Skip("names the closing nonce")
		}
		w := alice.dial(t)
		defer w.c.CloseNow()
		if w.write(data) == nil { // else closed already: the reads below tell why
			w.write([]byte(`{"type":"ping","nonce":"` + end + `"}`))
		}
		for {
			fr, err := w.next(10 * time.Second)
			if err == errTimeout {
				t.Fatalf("frame %q: neither an answer nor a close", data)
			}
			if err != nil {
				var ce websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation && ce.Code != websocket.StatusMessageTooBig {
					t.Fatalf("frame %q: connection ended with %v, want a client error status", data, err)
				}
				return
			}
			switch fr := fr.(type) {
			case *protocol.ErrorFrame:
				if fr.Code == protocol.CodeInternal || fr.Code == "" {
					t.Fatalf("frame %q: error frame %v", data, &fr.Error)
				}
			case *protocol.PongFrame:
				if fr.Nonce == end {
					return
				}
			}
		}
	})
}

// sendOne posts one application message, so that the log has an entry.
func sendOne(t testing.TB, m *member) {
	msg, err := m.g.Encrypt([]byte("one"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.d.e.must(m.d.token, "POST", fmt.Sprintf("/v1/conversations/%d/messages", m.conv), protocol.SendRequest{Message: msg}, nil)
}
