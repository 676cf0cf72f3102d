package httpapi_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/httpapi"
)

// TestRecoverDevice: POST /v1/devices/recover registers, without a
// session, a device whose fresh certificate verifies under the user's
// identity key and that proves possession of its key; the device then
// signs in. A replay is a conflict; a certificate of another key, of an
// unknown user (the same answer), too old, or without a proof is
// refused and stores nothing; a disabled account is refused.
func TestRecoverDevice(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.register("alice")
	now := e.clock.Now()

	phone, nd := e.newDeviceCert(alice.user, e.dcfg.ServerName, now)
	var info protocol.DeviceInfo
	e.must("", "POST", "/v1/devices/recover", protocol.RecoverDeviceRequest{User: "alice", Device: nd}, &info)
	if info.ID != phone.id {
		t.Errorf("recovered device %+v, want id %s", info, phone.id)
	}
	phone.login()
	e.wantStored(phone.token, "alice", 1, 2)
	e.wantErr(protocol.CodeConflict, "", "POST", "/v1/devices/recover", protocol.RecoverDeviceRequest{User: "alice", Device: nd})

	// Another identity key: the holder of alice's name is not enough.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	_, forged := e.newDeviceCert(&user{name: "alice", identity: other}, e.dcfg.ServerName, now)
	wrongKey := e.wantErr(protocol.CodeBadCertificate, "", "POST", "/v1/devices/recover", protocol.RecoverDeviceRequest{User: "alice", Device: forged})
	wantRefused(t, "another identity key", wrongKey, "signature invalid")

	// An unknown user gets the same answer.
	_, ghost := e.newDeviceCert(&user{name: "nobody", identity: other}, e.dcfg.ServerName, now)
	unknown := e.wantErr(protocol.CodeBadCertificate, "", "POST", "/v1/devices/recover", protocol.RecoverDeviceRequest{User: "nobody", Device: ghost})
	wantRefused(t, "unknown user", unknown, "signature invalid")

	// A certificate made too long ago.
	_, old := e.newDeviceCert(alice.user, e.dcfg.ServerName, now.Add(-protocol.MaxRecoveryCertificateAge-time.Minute))
	wantRefused(t, "old certificate", e.wantErr(protocol.CodeBadCertificate, "", "POST", "/v1/devices/recover", protocol.RecoverDeviceRequest{User: "alice", Device: old}), "at most 1h0m0s", "clock")

	// No proof of possession.
	_, noProof := e.newDeviceCert(alice.user, e.dcfg.ServerName, now)
	noProof.Proof = nil
	wantRefused(t, "no proof", e.wantErr(protocol.CodeBadCertificate, "", "POST", "/v1/devices/recover", protocol.RecoverDeviceRequest{User: "alice", Device: noProof}), "no proof of possession")
	e.wantErr(protocol.CodeBadRequest, "", "POST", "/v1/devices/recover", protocol.RecoverDeviceRequest{User: "Not A Name", Device: nd})
	e.wantStored(phone.token, "alice", 1, 2)

	// A disabled account recovers nothing.
	yes := true
	if _, err := e.svc.UpdateUser(t.Context(), "alice", protocol.AdminUserUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	_, later := e.newDeviceCert(alice.user, e.dcfg.ServerName, now)
	e.wantErr(protocol.CodeForbidden, "", "POST", "/v1/devices/recover", protocol.RecoverDeviceRequest{User: "alice", Device: later})
}

// TestRecoverDeviceRateLimited: recoveries count against the address's
// registration bucket.
func TestRecoverDeviceRateLimited(t *testing.T) {
	e := newEnv(t, func(_ *delivery.Config, h *httpapi.Config) {
		h.RateLimits.RegisterPerIP = httpapi.Rate{PerSecond: 0.001, Burst: 3}
	})
	alice := e.register("alice")
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	_, forged := e.newDeviceCert(&user{name: "alice", identity: other}, e.dcfg.ServerName, e.clock.Now())
	for range 2 {
		e.wantErr(protocol.CodeBadCertificate, "", "POST", "/v1/devices/recover", protocol.RecoverDeviceRequest{User: "alice", Device: forged})
	}
	_, nd := e.newDeviceCert(alice.user, e.dcfg.ServerName, e.clock.Now())
	e.wantErr(protocol.CodeRateLimited, "", "POST", "/v1/devices/recover", protocol.RecoverDeviceRequest{User: "alice", Device: nd})
}

// TestAccountConversations: GET /v1/conversations?account=1 lists the
// conversations of every device of the caller's user, so that a new
// device of the account finds those it may join by external commit; the
// plain list stays the device's own.
func TestAccountConversations(t *testing.T) {
	e := newEnv(t, nil)
	laptop := e.register("alice")
	m := laptop.createConversation()
	phone := laptop.addDevice()

	var own, acct protocol.ConversationList
	e.must(phone.token, "GET", "/v1/conversations", nil, &own)
	if len(own.Conversations) != 0 {
		t.Errorf("the phone's own conversations: %+v, want none", own.Conversations)
	}
	e.must(phone.token, "GET", "/v1/conversations?account=1", nil, &acct)
	if len(acct.Conversations) != 1 || acct.Conversations[0].ID != m.conv || acct.Conversations[0].Cursor != 0 {
		t.Errorf("the account's conversations: %+v, want %d", acct.Conversations, m.conv)
	}
	e.must(laptop.token, "GET", "/v1/conversations?account=true", nil, &acct)
	if len(acct.Conversations) != 1 || acct.Conversations[0].ID != m.conv {
		t.Errorf("the account's conversations from the laptop: %+v, want %d", acct.Conversations, m.conv)
	}
	e.wantErr(protocol.CodeBadRequest, phone.token, "GET", "/v1/conversations?account=maybe", nil)

	bob := e.register("bob")
	e.must(bob.token, "GET", "/v1/conversations?account=1", nil, &acct)
	if len(acct.Conversations) != 0 {
		t.Errorf("bob lists alice's conversations: %+v", acct.Conversations)
	}
}
