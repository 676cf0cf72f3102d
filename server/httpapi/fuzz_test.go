package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/httpapi"
)

// requestTypes are every JSON request body of the protocol.
var requestTypes = []func() any{
	func() any { return new(protocol.RegisterRequest) },
	func() any { return new(protocol.ChallengeRequest) },
	func() any { return new(protocol.SessionRequest) },
	func() any { return new(protocol.AddDeviceRequest) },
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
// panic, errors are protocol errors, and what it accepts re-encodes to
// JSON that decodes to the same value.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"name":"a","device":{"id":"x"}}`, `{"message":"AAAA"}`, `{"cursors":[{"conversation":1,"seq":2}]}`, `{"x":1}`, `[]`, `{} {}`, `null`} {
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
// as a member: every answer is a 2xx or a 4xx with a protocol error body,
// never a 5xx or a panic.
func FuzzHandlers(f *testing.F) {
	e := newEnv(f, nil)
	alice := e.register("alice")
	m := alice.createConversation()
	routes := []string{"/v1/register", "/v1/auth/challenge", "/v1/auth/session", "/v1/devices", "/v1/keypackages", "/v1/keypackages/claim",
		"/v1/conversations", fmt.Sprintf("/v1/conversations/%d/handshake", m.conv), fmt.Sprintf("/v1/conversations/%d/messages", m.conv),
		"/v1/ack", "/v1/admin/invites", "/v1/conversations/77/messages"}
	for i := range routes {
		f.Add(uint8(i), []byte(`{}`))
		f.Add(uint8(i), []byte(`{"message":"AAEAAgAA","epoch":0,"key_packages":[{"data":"AAEABQ=="}],"group_info":"AAEABA=="}`))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
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
