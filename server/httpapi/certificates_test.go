package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// wantRefused checks that a refusal's message says each of want.
func wantRefused(t *testing.T, what string, pe *protocol.Error, want ...string) {
	t.Helper()
	t.Logf("%s: %s", what, pe.Message)
	for _, w := range want {
		if !strings.Contains(pe.Message, w) {
			t.Errorf("%s: refused with %q, want %q in it", what, pe.Message, w)
		}
	}
}

// wantStored checks how many users the server has, and how many devices
// the user has, after refused requests.
func (e *env) wantStored(token, user string, users int64, devices int) {
	e.t.Helper()
	st, err := e.svc.Stats(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	if st.Users != users {
		e.t.Errorf("%d users stored, want %d", st.Users, users)
	}
	var u protocol.UserInfo
	e.must(token, "GET", "/v1/users/"+user, nil, &u)
	if len(u.Devices) != devices {
		e.t.Errorf("%s has %d devices, want %d: %+v", user, len(u.Devices), devices, u.Devices)
	}
}

// TestCertificateOtherServer: a certificate signed by the user's own
// identity key, for the same device and key, but for another server is
// refused at registration, when adding a device and in a KeyPackage, with
// a message naming both servers; nothing is stored.
func TestCertificateOtherServer(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.register("alice")
	const other = "other.example"
	names := []string{`"other.example"`, `"test.example"`}

	_, id, _ := ed25519.GenerateKey(rand.Reader)
	u := &user{name: "bob", identity: id}
	_, nd := e.newDeviceCert(u, other, e.clock.Now())
	pe := e.wantErr(protocol.CodeBadCertificate, "", "POST", "/v1/register", protocol.RegisterRequest{Name: "bob", IdentityKey: id.Public().(ed25519.PublicKey), Device: nd})
	wantRefused(t, "register", pe, names...)

	_, nd = e.newDeviceCert(alice.user, other, e.clock.Now())
	pe = e.wantErr(protocol.CodeBadCertificate, alice.token, "POST", "/v1/devices", protocol.AddDeviceRequest{Device: nd})
	wantRefused(t, "add device", pe, names...)
	e.wantStored(alice.token, "alice", 1, 1)

	// A KeyPackage whose credential names this server but whose
	// certificate, for alice's registered device and key, names another.
	cert, err := protocol.NewDeviceCertificate(alice.user.identity, other, "alice", alice.id, protocol.SchemeEd25519, alice.signer.PublicKey(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := protocol.EncodeCredential(e.dcfg.ServerName, cert)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := mls.NewKeyPackage(nil, cs, alice.signer, mls.BasicCredential(cred), mls.KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pe = e.wantErr(protocol.CodeBadKeyPackage, alice.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: kp.KeyPackage}}})
	wantRefused(t, "KeyPackage", pe, names...)
	var count protocol.KeyPackageCount
	e.must(alice.token, "GET", "/v1/keypackages/count", nil, &count)
	if count.Available != 0 || count.LastResort {
		t.Errorf("KeyPackages stored after a refused upload: %+v", count)
	}
}

// TestCertificateTime: a certificate created in the future beyond the
// clock skew, or older than MaxCertificateAge, is refused at registration
// and when adding a device. A device whose certificate expires after its
// registration can no longer upload KeyPackages, create a conversation or
// be added to one.
func TestCertificateTime(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	for _, tc := range []struct {
		name    string
		created time.Time
		want    string // empty: accepted
	}{
		{"future", now.Add(protocol.CertificateClockSkew + time.Minute), "in the future"},
		{"expired", now.Add(-protocol.MaxCertificateAge - time.Minute), "expired"},
		{"skewed clock", now.Add(protocol.CertificateClockSkew - time.Minute), ""},
	} {
		_, id, _ := ed25519.GenerateKey(rand.Reader)
		u := &user{name: "u" + strings.ReplaceAll(tc.name, " ", ""), identity: id}
		_, nd := e.newDeviceCert(u, e.dcfg.ServerName, tc.created)
		req := protocol.RegisterRequest{Name: u.name, IdentityKey: id.Public().(ed25519.PublicKey), Device: nd}
		if tc.want == "" {
			e.must("", "POST", "/v1/register", req, nil)
			continue
		}
		wantRefused(t, tc.name, e.wantErr(protocol.CodeBadCertificate, "", "POST", "/v1/register", req), tc.want)
	}
	bob := e.register("bob")
	for name, created := range map[string]time.Time{"future": now.Add(2 * protocol.CertificateClockSkew), "expired": now.Add(-protocol.MaxCertificateAge - time.Hour)} {
		_, nd := e.newDeviceCert(bob.user, e.dcfg.ServerName, created)
		wantRefused(t, "add device: "+name, e.wantErr(protocol.CodeBadCertificate, bob.token, "POST", "/v1/devices", protocol.AddDeviceRequest{Device: nd}), name)
	}
	e.wantStored(bob.token, "bob", 2, 1)

	// alice's certificate expires an hour after her registration.
	_, id, _ := ed25519.GenerateKey(rand.Reader)
	u := &user{name: "alice", identity: id}
	alice, nd := e.newDeviceCert(u, e.dcfg.ServerName, now.Add(-protocol.MaxCertificateAge+time.Hour))
	e.must("", "POST", "/v1/register", protocol.RegisterRequest{Name: "alice", IdentityKey: id.Public().(ed25519.PublicKey), Device: nd}, nil)
	u.devices = append(u.devices, alice)
	alice.login()
	alice.upload(1, false)
	e.clock.Advance(2 * time.Hour)

	pe := e.wantErr(protocol.CodeBadKeyPackage, alice.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: alice.keyPackage(false)}}})
	wantRefused(t, "KeyPackage of an expired device", pe, "expired", "register the device again")
	gid := make([]byte, 16)
	rand.Read(gid)
	g, err := mls.CreateGroup(nil, cs, gid, alice.signer, alice.credential(), mls.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gi, err := g.GroupInfo(mls.GroupInfoOptions{ExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := g.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	pe = e.wantErr(protocol.CodeBadMessage, alice.token, "POST", "/v1/conversations", protocol.CreateConversationRequest{GroupID: gid, CipherSuite: uint16(cs), GroupInfo: gi, RatchetTree: tree})
	wantRefused(t, "conversation created by an expired device", pe, "create conversation", "expired")

	// bob adds alice with the KeyPackage she uploaded in time.
	m := bob.createConversation()
	claimed := bob.claim("alice")
	if len(claimed.KeyPackages) != 1 {
		t.Fatalf("claimed %+v", claimed)
	}
	pc, err := m.g.Commit(mls.CommitOptions{Add: [][]byte{claimed.KeyPackages[0].Data}, InlineRatchetTree: true, ExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	pe = e.wantErr(protocol.CodeBadMessage, bob.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", m.conv), commitReq(m.g.Epoch(), pc, []protocol.DeviceID{alice.id}))
	wantRefused(t, "add of an expired device", pe, "added leaf 1", "expired")
	var info protocol.ConversationInfo
	e.must(bob.token, "GET", fmt.Sprintf("/v1/conversations/%d", m.conv), nil, &info)
	if info.Epoch != 0 || len(info.Members) != 1 {
		t.Errorf("conversation after the refused add: %+v", info)
	}
}

// TestRegisterProofOfPossession: registering and adding a device need
// the device key's signature over the device proof data of exactly this
// server, user, device and certificate. A refused request stores
// nothing; a proof is never accepted twice.
func TestRegisterProofOfPossession(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.register("alice")

	regs := func() (*device, protocol.RegisterRequest) {
		_, id, _ := ed25519.GenerateKey(rand.Reader)
		u := &user{name: "bob", identity: id}
		d, nd := e.newDevice(u)
		return d, protocol.RegisterRequest{Name: "bob", IdentityKey: id.Public().(ed25519.PublicKey), Device: nd}
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name  string
		proof func(d *device, nd protocol.NewDevice) []byte
		want  string
	}{
		{"no proof", func(*device, protocol.NewDevice) []byte { return nil }, "no proof of possession"},
		{"another key", func(d *device, nd protocol.NewDevice) []byte {
			return ed25519.Sign(stranger, protocol.DeviceProofSignedData(e.dcfg.ServerName, "bob", nd.ID, nd.Certificate))
		}, "does not verify"},
		{"another server", func(d *device, nd protocol.NewDevice) []byte { return d.proof("other.example", nd.Certificate) }, "does not verify"},
		{"another certificate", func(d *device, nd protocol.NewDevice) []byte { return d.proof(e.dcfg.ServerName, alice.cert) }, "does not verify"},
		{"session signature", func(d *device, nd protocol.NewDevice) []byte { return d.sign(nd.Certificate) }, "does not verify"},
		{"too long", func(d *device, nd protocol.NewDevice) []byte { return make([]byte, 257) }, "at most 256"},
	} {
		d, req := regs()
		req.Device.Proof = tc.proof(d, req.Device)
		wantRefused(t, "register: "+tc.name, e.wantErr(protocol.CodeBadCertificate, "", "POST", "/v1/register", req), tc.want)

		d, nd := e.newDevice(alice.user)
		nd.Proof = tc.proof(d, nd)
		wantRefused(t, "add device: "+tc.name, e.wantErr(protocol.CodeBadCertificate, alice.token, "POST", "/v1/devices", protocol.AddDeviceRequest{Device: nd}), tc.want)
	}
	e.wantStored(alice.token, "alice", 1, 1)

	// mallory certifies bob's device key as hers and presents bob's
	// proof: it names bob and bob's certificate, so it is refused.
	bobDev, bobReq := regs()
	_, mid, _ := ed25519.GenerateKey(rand.Reader)
	mcert, err := protocol.NewDeviceCertificate(mid, e.dcfg.ServerName, "mallory", bobDev.id, protocol.SchemeEd25519, bobDev.signer.PublicKey(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	mreq := protocol.RegisterRequest{Name: "mallory", IdentityKey: mid.Public().(ed25519.PublicKey), Device: bobReq.Device}
	mreq.Device.Certificate = mcert
	wantRefused(t, "someone else's proof", e.wantErr(protocol.CodeBadCertificate, "", "POST", "/v1/register", mreq), "does not verify")
	e.wantStored(alice.token, "alice", 1, 1)

	// A proof is used once: the same registration again, or the same
	// device added again after its revocation, is a conflict.
	e.must("", "POST", "/v1/register", bobReq, nil)
	e.wantErr(protocol.CodeConflict, "", "POST", "/v1/register", bobReq)
	phoneDev, phone := e.newDevice(alice.user)
	e.must(alice.token, "POST", "/v1/devices", protocol.AddDeviceRequest{Device: phone}, nil)
	e.must(alice.token, "DELETE", "/v1/devices/"+string(phone.ID), phoneDev.revocation(), nil)
	e.wantErr(protocol.CodeConflict, alice.token, "POST", "/v1/devices", protocol.AddDeviceRequest{Device: phone})
	e.wantStored(alice.token, "alice", 2, 2)
}

// ecdsaSign signs with a P-256, P-384 or P-521 key as the server
// verifies it (and as MLS signs): ASN.1 DER over the scheme's hash.
func ecdsaSign(t *testing.T, scheme protocol.SignatureScheme, priv []byte, msg []byte) []byte {
	t.Helper()
	var curve elliptic.Curve
	var digest []byte
	switch scheme {
	case protocol.SchemeECDSAP256SHA256:
		h := sha256.Sum256(msg)
		curve, digest = elliptic.P256(), h[:]
	case protocol.SchemeECDSAP384SHA384:
		h := sha512.Sum384(msg)
		curve, digest = elliptic.P384(), h[:]
	default:
		h := sha512.Sum512(msg)
		curve, digest = elliptic.P521(), h[:]
	}
	k, err := ecdsa.ParseRawPrivateKey(curve, priv)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, k, digest)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestRegisterProofSchemes: the proof of possession is checked for every
// supported signature scheme, with keys made by the MLS cipher suites of
// each: a proof by the device key is accepted, one by another key of the
// same scheme refused.
func TestRegisterProofSchemes(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		scheme protocol.SignatureScheme
		suite  mls.CipherSuite
	}{
		{protocol.SchemeEd25519, mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519},
		{protocol.SchemeECDSAP256SHA256, mls.MLS128DHKEMP256AES128GCMSHA256P256},
		{protocol.SchemeECDSAP384SHA384, mls.MLS256DHKEMP384AES256GCMSHA384P384},
		{protocol.SchemeECDSAP521SHA512, mls.MLS256DHKEMP521AES256GCMSHA512P521},
	} {
		name := fmt.Sprintf("u%04x", uint16(tc.scheme))
		sign := func(s *mls.Signer, msg []byte) []byte {
			if tc.scheme == protocol.SchemeEd25519 {
				return ed25519.Sign(ed25519.NewKeyFromSeed(s.PrivateKey()), msg)
			}
			return ecdsaSign(t, tc.scheme, s.PrivateKey(), msg)
		}
		signer, err := mls.GenerateSigner(tc.suite)
		if err != nil {
			t.Fatal(err)
		}
		other, err := mls.GenerateSigner(tc.suite)
		if err != nil {
			t.Fatal(err)
		}
		_, id, _ := ed25519.GenerateKey(rand.Reader)
		dev := protocol.DeviceID(name + "-dev")
		cert, err := protocol.NewDeviceCertificate(id, e.dcfg.ServerName, name, dev, tc.scheme, signer.PublicKey(), e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		msg := protocol.DeviceProofSignedData(e.dcfg.ServerName, name, dev, cert)
		req := protocol.RegisterRequest{Name: name, IdentityKey: id.Public().(ed25519.PublicKey),
			Device: protocol.NewDevice{ID: dev, Scheme: tc.scheme, SignatureKey: signer.PublicKey(), Certificate: cert, Proof: sign(other, msg)}}
		wantRefused(t, name+" with another key's proof", e.wantErr(protocol.CodeBadCertificate, "", "POST", "/v1/register", req), "does not verify")
		req.Device.Proof = sign(signer, msg)
		e.must("", "POST", "/v1/register", req, nil)
	}
	st, err := e.svc.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Users != 4 {
		t.Errorf("%d users, want 4", st.Users)
	}
}
