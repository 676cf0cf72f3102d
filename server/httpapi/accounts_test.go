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

func TestInfoHealth(t *testing.T) {
	e := newEnv(t, nil)
	var info protocol.ServerInfo
	e.must("", "GET", "/v1/info", nil, &info)
	if info.Name != "test.example" || len(info.Protocols) != 1 || info.Protocols[0] != 1 || info.Limits.MaxAttachmentBytes != 100<<20 || info.Limits.MaxFrameBytes == 0 {
		t.Errorf("info = %+v", info)
	}
	// Metrics are not served by the API (parleyd serves them on a
	// listener of their own).
	for p, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 404} {
		resp, err := e.srv.Client().Get(e.srv.URL + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", p, resp.StatusCode, want)
		}
		resp.Body.Close()
	}
}

func TestRegisterInvites(t *testing.T) {
	e := newEnv(t, func(d *delivery.Config, h *httpapi.Config) { d.OpenRegistration = false })
	_, _, req := e.registerReq("alice", "")
	e.wantErr(protocol.CodeInviteInvalid, "", "POST", "/v1/register", req)
	_, _, req = e.registerReq("alice", "not-a-code")
	e.wantErr(protocol.CodeInviteInvalid, "", "POST", "/v1/register", req)

	// An admin (made by the local admin path) creates invites over HTTP.
	single, err := e.svc.CreateInvite(t.Context(), 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u, d, req := e.registerReq("alice", single.Code)
	e.must("", "POST", "/v1/register", req, nil)
	u.devices = append(u.devices, d)
	d.login()
	_, _, req = e.registerReq("bob", single.Code)
	e.wantErr(protocol.CodeInviteInvalid, "", "POST", "/v1/register", req) // used up

	e.wantErr(protocol.CodeForbidden, d.token, "POST", "/v1/admin/invites", protocol.CreateInviteRequest{Uses: 2, TTLSeconds: 60})
	truth := true
	if _, err := e.svc.UpdateUser(t.Context(), "alice", protocol.AdminUserUpdate{Admin: &truth}); err != nil {
		t.Fatal(err)
	}
	var multi protocol.InviteInfo
	e.must(d.token, "POST", "/v1/admin/invites", protocol.CreateInviteRequest{Uses: 2, TTLSeconds: 60}, &multi)
	if multi.Code == "" || multi.UsesLeft != 2 {
		t.Fatalf("invite %+v", multi)
	}
	var list protocol.InviteList
	e.must(d.token, "GET", "/v1/admin/invites", nil, &list)
	for _, inv := range list.Invites {
		if inv.Code != "" {
			t.Errorf("listed invite shows its code")
		}
	}
	for _, name := range []string{"bob", "carol"} {
		_, _, req := e.registerReq(name, multi.Code)
		e.must("", "POST", "/v1/register", req, nil)
	}
	_, _, req = e.registerReq("dave", multi.Code)
	e.wantErr(protocol.CodeInviteInvalid, "", "POST", "/v1/register", req)

	// Expired invite.
	var short protocol.InviteInfo
	e.must(d.token, "POST", "/v1/admin/invites", protocol.CreateInviteRequest{Uses: 5, TTLSeconds: 60}, &short)
	e.clock.Advance(2 * time.Minute)
	_, _, req = e.registerReq("erin", short.Code)
	e.wantErr(protocol.CodeInviteInvalid, "", "POST", "/v1/register", req)

	// Delete an invite.
	e.must(d.token, "DELETE", "/v1/admin/invites/"+itoa(short.ID), nil, nil)
	e.wantErr(protocol.CodeNotFound, d.token, "DELETE", "/v1/admin/invites/"+itoa(short.ID), nil)

	var stats protocol.Stats
	e.must(d.token, "GET", "/v1/admin/stats", nil, &stats)
	if stats.Users != 3 {
		t.Errorf("stats users %d, want 3", stats.Users)
	}
}

func itoa(n int64) string {
	return string(appendInt(nil, n))
}

func appendInt(b []byte, n int64) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func TestRegisterValidation(t *testing.T) {
	e := newEnv(t, nil)
	e.register("alice")
	_, _, req := e.registerReq("alice", "")
	e.wantErr(protocol.CodeConflict, "", "POST", "/v1/register", req)
	_, _, req = e.registerReq("Bad Name", "")
	e.wantErr(protocol.CodeBadRequest, "", "POST", "/v1/register", req)
	// Certificate signed by another identity key.
	_, _, req = e.registerReq("bob", "")
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	req.IdentityKey = other.Public().(ed25519.PublicKey)
	e.wantErr(protocol.CodeBadCertificate, "", "POST", "/v1/register", req)
	// Certificate for another device key.
	_, _, req = e.registerReq("bob", "")
	req.Device.SignatureKey = make([]byte, 32)
	e.wantErr(protocol.CodeBadCertificate, "", "POST", "/v1/register", req)
	// Unsupported scheme.
	_, _, req = e.registerReq("bob", "")
	req.Device.Scheme = protocol.SchemeEd448
	e.wantErr(protocol.CodeUnsupported, "", "POST", "/v1/register", req)
	var st protocol.Stats
	st, _ = e.svc.Stats(t.Context())
	if st.Users != 1 {
		t.Errorf("%d users stored after refused registrations, want 1", st.Users)
	}
}

func TestAuthFailures(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.register("alice")
	var me protocol.UserInfo
	e.must(alice.token, "GET", "/v1/users/alice", nil, &me)
	if len(me.Devices) != 1 || me.Devices[0].ID != alice.id {
		t.Fatalf("user info %+v", me)
	}

	// No token, bad token.
	e.wantErr(protocol.CodeUnauthorized, "", "GET", "/v1/users/alice", nil)
	e.wantErr(protocol.CodeUnauthorized, "bogus", "GET", "/v1/users/alice", nil)

	// Bad signature.
	ch := alice.challenge()
	sig := alice.sign(ch)
	sig[0] ^= 1
	e.wantErr(protocol.CodeUnauthorized, "", "POST", "/v1/auth/session", protocol.SessionRequest{User: "alice", Device: alice.id, Challenge: ch, Signature: sig})
	// The failed attempt consumed the challenge: the good signature is refused too (replay).
	e.wantErr(protocol.CodeUnauthorized, "", "POST", "/v1/auth/session", protocol.SessionRequest{User: "alice", Device: alice.id, Challenge: ch, Signature: alice.sign(ch)})

	// Replayed challenge after a success.
	ch = alice.challenge()
	e.must("", "POST", "/v1/auth/session", protocol.SessionRequest{User: "alice", Device: alice.id, Challenge: ch, Signature: alice.sign(ch)}, nil)
	e.wantErr(protocol.CodeUnauthorized, "", "POST", "/v1/auth/session", protocol.SessionRequest{User: "alice", Device: alice.id, Challenge: ch, Signature: alice.sign(ch)})

	// Expired challenge.
	ch = alice.challenge()
	e.clock.Advance(e.dcfg.ChallengeTTL + time.Second)
	e.wantErr(protocol.CodeUnauthorized, "", "POST", "/v1/auth/session", protocol.SessionRequest{User: "alice", Device: alice.id, Challenge: ch, Signature: alice.sign(ch)})

	// Unknown user gets a challenge that never works.
	var unk protocol.ChallengeResponse
	e.must("", "POST", "/v1/auth/challenge", protocol.ChallengeRequest{User: "nobody", Device: "dev1"}, &unk)
	if len(unk.Challenge) != 32 {
		t.Errorf("challenge for unknown user: %d bytes", len(unk.Challenge))
	}

	// Challenge signed by another user's device for alice.
	bob := e.register("bob")
	ch = alice.challenge()
	e.wantErr(protocol.CodeUnauthorized, "", "POST", "/v1/auth/session", protocol.SessionRequest{User: "alice", Device: alice.id, Challenge: ch, Signature: bob.sign(ch)})

	// Revoked device: alice links a phone, then revokes it from the laptop.
	phone := alice.addDevice()
	e.must(phone.token, "GET", "/v1/users/bob", nil, nil)
	e.wantErr(protocol.CodeUnknownDevice, bob.token, "DELETE", "/v1/devices/"+string(phone.id), phone.revocation()) // not bob's
	e.must(alice.token, "DELETE", "/v1/devices/"+string(phone.id), phone.revocation(), nil)
	e.wantErr(protocol.CodeUnauthorized, phone.token, "GET", "/v1/users/bob", nil)
	ch = phone.challenge()
	e.wantErr(protocol.CodeUnauthorized, "", "POST", "/v1/auth/session", protocol.SessionRequest{User: "alice", Device: phone.id, Challenge: ch, Signature: phone.sign(ch)})
	e.must(alice.token, "GET", "/v1/users/alice", nil, &me)
	if len(me.Devices) != 2 || me.Devices[1].Revoked == nil {
		t.Errorf("revoked device not shown as revoked: %+v", me.Devices)
	}

	// Admin disables bob: his session ends.
	truth := true
	e.svc.UpdateUser(t.Context(), "alice", protocol.AdminUserUpdate{Admin: &truth})
	e.must(alice.token, "POST", "/v1/admin/users/bob", protocol.AdminUserUpdate{Disabled: &truth}, nil)
	e.wantErr(protocol.CodeUnauthorized, bob.token, "GET", "/v1/users/alice", nil)

	// Logout.
	e.must(alice.token, "DELETE", "/v1/auth/session", nil, nil)
	e.wantErr(protocol.CodeUnauthorized, alice.token, "GET", "/v1/users/alice", nil)
}

func TestRateLimitRegistration(t *testing.T) {
	e := newEnv(t, func(d *delivery.Config, h *httpapi.Config) {
		h.RateLimits.RegisterPerIP = httpapi.Rate{PerSecond: 0.001, Burst: 2}
	})
	e.register("a1")
	e.register("a2")
	_, _, req := e.registerReq("a3", "")
	e.wantErr(protocol.CodeRateLimited, "", "POST", "/v1/register", req)
}
