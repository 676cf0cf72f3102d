package httpapi_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// A revocation needs the user's signed statement for exactly this server,
// user and device: anything else is refused and changes nothing (the
// device keeps its session, nothing is stored); the accepted statement is
// served with the device list.
func TestRevocationStatementChecked(t *testing.T) {
	e := newEnv(t, nil)
	laptop := e.register("alice")
	phone := laptop.addDevice()
	bob := e.register("bob")
	path := "/v1/devices/" + string(phone.id)
	sign := func(key ed25519.PrivateKey, server, user string, dev protocol.DeviceID) protocol.RevokeDeviceRequest {
		st, err := protocol.NewDeviceRevocation(key, server, user, dev, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return protocol.RevokeDeviceRequest{Revocation: st}
	}
	good := phone.revocation()
	flipped := bytes.Clone(good.Revocation)
	flipped[len(flipped)-1] ^= 1
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		what string
		code protocol.ErrorCode
		body any
	}{
		{"no body", protocol.CodeBadRequest, nil},
		{"no statement", protocol.CodeBadRequest, protocol.RevokeDeviceRequest{}},
		{"a huge statement", protocol.CodeBadRequest, protocol.RevokeDeviceRequest{Revocation: make([]byte, 4096)}},
		{"garbage", protocol.CodeBadCertificate, protocol.RevokeDeviceRequest{Revocation: []byte{1, 2, 3}}},
		{"a flipped signature bit", protocol.CodeBadCertificate, protocol.RevokeDeviceRequest{Revocation: flipped}},
		{"a trailing byte", protocol.CodeBadCertificate, protocol.RevokeDeviceRequest{Revocation: append(bytes.Clone(good.Revocation), 0)}},
		{"another identity key", protocol.CodeBadCertificate, sign(otherKey, e.dcfg.ServerName, "alice", phone.id)},
		{"bob's identity key", protocol.CodeBadCertificate, sign(bob.user.identity, e.dcfg.ServerName, "alice", phone.id)},
		{"another server", protocol.CodeBadCertificate, sign(laptop.user.identity, "other.example", "alice", phone.id)},
		{"another user", protocol.CodeBadCertificate, sign(laptop.user.identity, e.dcfg.ServerName, "bob", phone.id)},
		{"another device", protocol.CodeBadCertificate, sign(laptop.user.identity, e.dcfg.ServerName, "alice", laptop.id)},
	} {
		pe := e.wantErr(tc.code, laptop.token, "DELETE", path, tc.body)
		t.Logf("%s: %s", tc.what, pe.Message)
	}
	// Another user's device, even with its owner's valid statement.
	e.wantErr(protocol.CodeUnknownDevice, bob.token, "DELETE", path, good)

	// Nothing changed: the phone still works and is not shown revoked.
	e.must(phone.token, "GET", "/v1/users/bob", nil, nil)
	var me protocol.UserInfo
	e.must(laptop.token, "GET", "/v1/users/alice", nil, &me)
	for _, d := range me.Devices {
		if d.Revoked != nil || d.Revocation != nil {
			t.Fatalf("refused revocations changed device %s: %+v", d.ID, d)
		}
	}

	e.must(laptop.token, "DELETE", path, good, nil)
	e.wantErr(protocol.CodeUnauthorized, phone.token, "GET", "/v1/users/bob", nil)
	e.must(bob.token, "GET", "/v1/users/alice", nil, &me)
	i := slices.IndexFunc(me.Devices, func(d protocol.DeviceInfo) bool { return d.ID == phone.id })
	if i < 0 || me.Devices[i].Revoked == nil || !bytes.Equal(me.Devices[i].Revocation, good.Revocation) {
		t.Fatalf("revoked phone as served: %+v", me.Devices)
	}
	if _, err := protocol.VerifyDeviceRevocation(me.Devices[i].Revocation, me.IdentityKey, e.dcfg.ServerName, "alice", phone.id); err != nil {
		t.Errorf("served statement: %v", err)
	}
	if j := slices.IndexFunc(me.Devices, func(d protocol.DeviceInfo) bool { return d.ID == laptop.id }); me.Devices[j].Revocation != nil {
		t.Errorf("laptop carries a revocation: %+v", me.Devices[j])
	}
}

// The connected members of a revoked (or disabled) device's conversations
// get a "revoked" frame naming it and the conversations, if they asked
// for them; GET /v1/revocations answers the same until a member removed
// the device.
func TestRevokedNotice(t *testing.T) {
	e := newEnv(t, nil)
	laptop := e.register("alice")
	phone := laptop.addDevice()
	b := e.register("bob")
	c := e.register("carol")
	for _, d := range []*device{phone, b, c} {
		d.upload(1, false)
	}
	alice := laptop.createConversation()
	alice.add(t, "alice") // the phone
	alice.add(t, "carol")
	alice.add(t, "bob")
	bob := b.join(t, alice.conv)

	w := b.dial(t)
	w.send(&protocol.SubscribeFrame{Revocations: true})
	old := b.dial(t) // a client that does not read "revoked" frames
	old.send(&protocol.SubscribeFrame{})
	w.handled()
	old.handled()

	e.must(laptop.token, "DELETE", "/v1/devices/"+string(phone.id), phone.revocation(), nil)
	rf := nextRevoked(t, w)
	if len(rf.Devices) != 1 {
		t.Fatalf("revoked frame %+v", rf)
	}
	rd := rf.Devices[0]
	if rd.User != "alice" || rd.Device != phone.id || rd.Revoked == nil || rd.Disabled || !slices.Equal(rd.Conversations, []protocol.ConversationID{alice.conv}) {
		t.Errorf("revoked device %+v", rd)
	}
	if _, err := protocol.VerifyDeviceRevocation(rd.Revocation, laptop.user.identity.Public().(ed25519.PublicKey), e.dcfg.ServerName, "alice", phone.id); err != nil {
		t.Errorf("statement in the frame: %v", err)
	}
	var list protocol.RevokedDevices
	e.must(b.token, "GET", "/v1/revocations", nil, &list)
	if len(list.Devices) != 1 || list.Devices[0].Device != phone.id || list.Truncated {
		t.Errorf("GET /v1/revocations: %+v", list)
	}

	// The administrator disables carol's device (over HTTP).
	yes := true
	e.svc.UpdateUser(t.Context(), "alice", protocol.AdminUserUpdate{Admin: &yes})
	e.must(laptop.token, "POST", "/v1/admin/devices/"+string(c.id), protocol.AdminDeviceUpdate{Disabled: &yes}, nil)
	rf = nextRevoked(t, w)
	if len(rf.Devices) != 2 || rf.Devices[0].Device != c.id && rf.Devices[1].Device != c.id {
		t.Fatalf("revoked frame after the disable: %+v", rf)
	}
	for _, rd := range rf.Devices {
		if rd.Device == c.id && (!rd.Disabled || rd.Revoked != nil || rd.Revocation != nil || rd.User != "carol") {
			t.Errorf("disabled device %+v", rd)
		}
	}

	// Bob removes both; the list empties.
	var leaves []mls.LeafIndex
	for _, m := range bob.g.Members() {
		if bytes.Equal(m.SignatureKey, phone.signer.PublicKey()) || bytes.Equal(m.SignatureKey, c.signer.PublicKey()) {
			leaves = append(leaves, m.Leaf)
		}
	}
	pc, err := bob.g.Commit(mls.CommitOptions{Remove: leaves, ExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	e.must(b.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", bob.conv), commitReq(bob.g.Epoch(), pc, nil), nil)
	e.must(b.token, "GET", "/v1/revocations", nil, &list)
	if len(list.Devices) != 0 {
		t.Errorf("GET /v1/revocations after the removal: %+v", list)
	}
	if err := bob.g.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}

	// Neither comes back: the server refuses a commit that adds them
	// again, with KeyPackages made before (never through the directory).
	for _, d := range []*device{phone, c} {
		add, err := bob.g.Commit(mls.CommitOptions{Add: [][]byte{d.keyPackage(false)}, InlineRatchetTree: true, ExternalPub: true})
		if err != nil {
			t.Fatal(err)
		}
		pe := e.wantErr(protocol.CodeBadMessage, b.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", bob.conv), commitReq(bob.g.Epoch(), add, []protocol.DeviceID{d.id}))
		if !strings.Contains(pe.Message, "revoked or disabled") {
			t.Errorf("re-adding %s: %v", d.id, pe)
		}
		bob.g.DiscardPendingCommit(add)
	}

	// The connection that did not ask got entries only, up to the removal.
	for {
		f := old.must(10 * time.Second)
		if _, ok := f.(*protocol.RevokedFrame); ok {
			t.Fatalf("a connection subscribed without revocations got %+v", f)
		}
		if ef, ok := f.(*protocol.EntryFrame); ok && ef.Kind == protocol.KindHandshake && bytes.Equal(ef.Data, pc.Message) {
			return
		}
	}
}

// nextRevoked returns the next "revoked" frame, skipping entries.
func nextRevoked(t *testing.T, w *ws) *protocol.RevokedFrame {
	t.Helper()
	for {
		f := w.must(10 * time.Second)
		if rf, ok := f.(*protocol.RevokedFrame); ok {
			return rf
		}
	}
}
