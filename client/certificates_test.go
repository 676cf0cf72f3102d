package client_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// certifiedKeyPackage makes a KeyPackage of a new device of user whose
// credential names credServer and whose certificate, signed by identity,
// names certServer.
func certifiedKeyPackage(t *testing.T, cs mls.CipherSuite, credServer, certServer, user string, identity ed25519.PrivateKey, device protocol.DeviceID) []byte {
	t.Helper()
	signer, err := mls.GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := protocol.NewDeviceCertificate(identity, certServer, user, device, protocol.SchemeEd25519, signer.PublicKey(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := client.EncodeCredential(credServer, cert)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mls.NewKeyPackage(nil, cs, signer, mls.BasicCredential(id), mls.KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b.KeyPackage
}

// TestCertificateOtherServer: the server presents devices of bob whose
// certificates bob's own identity key signed, but for another server (as
// bob's devices on another Parley server carry them): one in bob's device
// list, one as a KeyPackage of a claim whose credential claims this
// server. alice's client refuses both, naming both servers, and the
// conversation holds only bob's real device.
func TestCertificateOtherServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	p := newEvilProxy(t, s)
	alice := registerVia(t, p, "alice")
	bob := register(t, s, "bob")
	bob.start()
	alice.start()
	const other = "other.example"
	bobKey := client.IdentityKeyForTest(bob.c)
	listed, claimed := protocol.DeviceID("listed-elsewhere"), protocol.DeviceID("claimed-elsewhere")
	cs := mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519
	listedSigner, err := mls.GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	listedCert, err := protocol.NewDeviceCertificate(bobKey, other, "bob", listed, protocol.SchemeEd25519, listedSigner.PublicKey(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kp := certifiedKeyPackage(t, cs, s.name, other, "bob", bobKey, claimed)
	p.set(func(path string, body []byte) []byte {
		var out any
		switch path {
		case "/v1/users/bob":
			var u protocol.UserInfo
			if json.Unmarshal(body, &u) != nil {
				return body
			}
			u.Devices = append(u.Devices, protocol.DeviceInfo{ID: listed, SignatureKey: listedSigner.PublicKey(), Certificate: listedCert, Created: time.Now()})
			out = u
		case "/v1/keypackages/claim":
			var res protocol.ClaimKeyPackagesResponse
			if json.Unmarshal(body, &res) != nil || len(res.KeyPackages) == 0 {
				return body
			}
			res.KeyPackages = append(res.KeyPackages, protocol.ClaimedKeyPackage{Device: claimed, Data: kp})
			out = res
		default:
			return body
		}
		b, _ := json.Marshal(out)
		return b
	})
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range []protocol.DeviceID{listed, claimed} {
		ev := alice.waitEvent("device rejected", func(ev client.Event) bool { return ev.Kind == client.EventDeviceRejected && ev.Device == dev })
		msg := ev.Err.Error()
		if ev.User != "bob" || !strings.Contains(msg, `"other.example"`) || !strings.Contains(msg, `"test.example"`) || errors.Is(ev.Err, client.ErrForgedDevice) {
			t.Errorf("device %s: event %+v; want bob's device refused for naming other.example, not test.example", dev, ev)
		}
	}
	mb, err := alice.c.Members(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if len(mb) != 2 || slices.ContainsFunc(mb, func(m client.Member) bool { return m.Device == listed || m.Device == claimed }) {
		t.Fatalf("members %+v, want alice and bob's registered device", mb)
	}
	if _, err := alice.c.Send(ctx, conv, "only for bob", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, "only for bob")
}
