package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/internal/tlsutil"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// evilProxy is a misbehaving server double: a TLS reverse proxy in front
// of the real server that can rewrite answers.
type evilProxy struct {
	srv *httptest.Server
	lis *trackingListener
	fp  string
	// rewrite, if set, may replace the body of an answer to path.
	rewrite atomic.Pointer[func(path string, body []byte) []byte]
	// inspect, if set, sees the body of every request to path.
	inspect atomic.Pointer[func(path string, body []byte)]
	// route, if set, may send a request for path to another path.
	route atomic.Pointer[func(path string) string]
	// unavailable, if set, answers a request for path with 503
	// unavailable when it returns true, as a busy server would.
	unavailable atomic.Pointer[func(path string) bool]
}

func newEvilProxy(t *testing.T, s *server) *evilProxy {
	target, _ := url.Parse(s.url)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	p := &evilProxy{}
	rp.ModifyResponse = func(resp *http.Response) error {
		f := p.rewrite.Load()
		if f == nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body.Close()
		body = rewriteBody(*f, resp.Request.URL.Path, body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := p.inspect.Load(); f != nil && r.Body != nil {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body.Close()
			(*f)(r.URL.Path, body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if f := p.route.Load(); f != nil {
			r.URL.Path = (*f)(r.URL.Path)
		}
		if f := p.unavailable.Load(); f != nil && (*f)(r.URL.Path) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"code":"unavailable","message":"try again later"}`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.lis = &trackingListener{Listener: p.srv.Listener}
	p.srv.Listener = p.lis
	p.srv.StartTLS()
	p.fp = tlsutil.Fingerprint(p.srv.Certificate().Raw)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *evilProxy) set(f func(path string, body []byte) []byte) { p.rewrite.Store(&f) }

// rewriteBody applies a rewrite f to the answer to path. A batched
// lookup or claim is rewritten user by user, each part as f would
// rewrite the answer for that user alone (GET /v1/users/NAME, a claim
// of one user), so that a server double's rewrite reaches both forms.
func rewriteBody(f func(path string, body []byte) []byte, path string, body []byte) []byte {
	switch path {
	case "/v1/users/lookup":
		var res protocol.LookupUsersResponse
		if json.Unmarshal(body, &res) != nil {
			return f(path, body)
		}
		for i, u := range res.Users {
			b, _ := json.Marshal(u)
			var nu protocol.UserInfo
			if json.Unmarshal(f("/v1/users/"+u.Name, b), &nu) == nil {
				res.Users[i] = nu
			}
		}
		out, _ := json.Marshal(res)
		return out
	case "/v1/keypackages/claim":
		var res protocol.ClaimKeyPackagesResponse
		if json.Unmarshal(body, &res) != nil || len(res.Users) == 0 {
			return f(path, body)
		}
		for i, cu := range res.Users {
			if cu.Error != nil {
				continue
			}
			b, _ := json.Marshal(protocol.ClaimKeyPackagesResponse{KeyPackages: cu.KeyPackages, Missing: cu.Missing})
			var one protocol.ClaimKeyPackagesResponse
			if json.Unmarshal(f(path, b), &one) == nil {
				res.Users[i].KeyPackages, res.Users[i].Missing = one.KeyPackages, one.Missing
			}
		}
		out, _ := json.Marshal(res)
		return out
	}
	return f(path, body)
}

func (p *evilProxy) watch(f func(path string, body []byte)) { p.inspect.Store(&f) }

func (p *evilProxy) reroute(f func(path string) string) { p.route.Store(&f) }

func (p *evilProxy) refuse(f func(path string) bool) { p.unavailable.Store(&f) }

// registerVia registers a user through the proxy.
func registerVia(t *testing.T, p *evilProxy, name string) *device {
	d := openDeviceURL(t, p.srv.URL, p.fp, t.TempDir(), name)
	if _, err := d.c.Register(context.Background(), p.srv.URL, "", name); err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return d
}

// forgedKeyPackage makes a KeyPackage for a device of user whose
// certificate is signed by an attacker's identity key.
func forgedKeyPackage(t *testing.T, serverName, user string, device protocol.DeviceID, cs mls.CipherSuite) []byte {
	_, attacker, _ := ed25519.GenerateKey(rand.Reader)
	return certifiedKeyPackage(t, cs, serverName, serverName, user, attacker, device)
}

// TestForgedDevice: a server double injects, into a KeyPackage claim, a
// device of bob whose certificate is not signed by bob's identity key. The
// client refuses it, reports it, and the conversation holds only bob's
// real device.
func TestForgedDevice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	p := newEvilProxy(t, s)
	alice := registerVia(t, p, "alice")
	bob := register(t, s, "bob")
	bob.start()
	alice.start()
	const forged = protocol.DeviceID("ghost")
	p.set(func(path string, body []byte) []byte {
		if path != "/v1/keypackages/claim" {
			return body
		}
		var res protocol.ClaimKeyPackagesResponse
		if json.Unmarshal(body, &res) != nil || len(res.KeyPackages) == 0 {
			return body
		}
		cs := mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519
		res.KeyPackages = append(res.KeyPackages, protocol.ClaimedKeyPackage{Device: forged, Data: forgedKeyPackage(t, s.name, "bob", forged, cs)})
		out, _ := json.Marshal(res)
		return out
	})
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	ev := alice.waitEvent("device rejected", func(ev client.Event) bool { return ev.Kind == client.EventDeviceRejected && ev.Device == forged })
	if ev.User != "bob" || !errors.Is(ev.Err, client.ErrForgedDevice) {
		t.Errorf("event: %+v", ev)
	}
	mb, err := alice.c.Members(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mb {
		if m.Device == forged {
			t.Fatalf("forged device is a member: %+v", mb)
		}
	}
	if len(mb) != 2 {
		t.Errorf("members: %+v", mb)
	}
	if _, err := alice.c.Send(ctx, conv, "only for bob", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	bob.waitTexts(conv, "only for bob")

	// A claim that holds only a forged device fails with ErrNoKeyPackage.
	p.set(func(path string, body []byte) []byte {
		if path != "/v1/keypackages/claim" {
			return body
		}
		cs := mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519
		out, _ := json.Marshal(protocol.ClaimKeyPackagesResponse{KeyPackages: []protocol.ClaimedKeyPackage{{Device: forged, Data: forgedKeyPackage(t, s.name, "bob", forged, cs)}}})
		return out
	})
	if _, err := alice.c.NewGroup(ctx, "g", "bob"); !errors.Is(err, client.ErrNoKeyPackage) {
		t.Errorf("group with only a forged device: %v", err)
	}
}

// TestIdentityChanged: after alice pinned bob's identity key, the server
// presents another one. Alice gets a loud event, sending to bob is blocked
// until she acknowledges the change.
func TestIdentityChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	p := newEvilProxy(t, s)
	alice := registerVia(t, p, "alice")
	bob := register(t, s, "bob")
	bob.start()
	alice.start()
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	_, attacker, _ := ed25519.GenerateKey(rand.Reader)
	p.set(func(path string, body []byte) []byte {
		if path != "/v1/users/bob" {
			return body
		}
		var u protocol.UserInfo
		json.Unmarshal(body, &u)
		u.IdentityKey = attacker.Public().(ed25519.PublicKey)
		for i, d := range u.Devices {
			u.Devices[i].Certificate, _ = protocol.NewDeviceCertificate(attacker, s.name, "bob", d.ID, protocol.SchemeEd25519, d.SignatureKey, time.Now())
		}
		out, _ := json.Marshal(u)
		return out
	})
	if _, err := alice.c.NewGroup(ctx, "g", "bob"); !errors.Is(err, client.ErrIdentityChanged) {
		t.Fatalf("group with bob after the change: %v", err)
	}
	alice.waitEvent("identity changed", func(ev client.Event) bool { return ev.Kind == client.EventIdentityChanged && ev.User == "bob" })
	if _, err := alice.c.Send(ctx, conv, "secret", client.SendOptions{}); !errors.Is(err, client.ErrIdentityChanged) {
		t.Fatalf("send after the change: %v", err)
	}
	mb, _ := alice.c.Members(ctx, conv)
	for _, m := range mb {
		if m.User == "bob" && !m.IdentityChanged {
			t.Errorf("member bob not flagged: %+v", m)
		}
	}
	pending, err := alice.c.SafetyNumberPending(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.c.AcknowledgeIdentity(ctx, "bob", pending.Digits); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.Send(ctx, conv, "after ack", client.SendOptions{}); err != nil {
		t.Fatalf("send after acknowledging: %v", err)
	}
	bob.waitTexts(conv, "after ack")
}

// TestSafetyNumbers: both sides compute the same number and accept each
// other's QR code; marking verified shows in the member list.
func TestSafetyNumbers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	bob := register(t, s, "bob")
	a, err := alice.c.SafetyNumber(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	b, err := bob.c.SafetyNumber(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if a.Digits != b.Digits || len(a.Digits) != 60 {
		t.Fatalf("safety numbers differ: %s vs %s", a.Digits, b.Digits)
	}
	if err := a.Number.CompareScanned(b.QRPayload); err != nil {
		t.Errorf("alice scans bob: %v", err)
	}
	if err := b.Number.CompareScanned(a.QRPayload); err != nil {
		t.Errorf("bob scans alice: %v", err)
	}
	if a.QR == "" || a.Verified {
		t.Errorf("QR %q verified %v", a.QR, a.Verified)
	}
	if err := alice.c.MarkVerified(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	bob.start()
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := alice.c.Members(ctx, conv)
	for _, m := range mb {
		if !m.Verified {
			t.Errorf("member %+v not verified", m)
		}
	}
	if a, _ := alice.c.SafetyNumber(ctx, "bob"); !a.Verified {
		t.Error("safety number not marked verified")
	}
}

// TestReconnect: the connection drops; the client reconnects by itself and
// receives what was sent meanwhile, once.
func TestReconnect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	p := newEvilProxy(t, s)
	alice := register(t, s, "alice")
	bob := registerVia(t, p, "bob")
	alice.start()
	bob.start()
	conv, err := alice.c.NewDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	alice.c.Send(ctx, conv, "one", client.SendOptions{})
	bob.waitTexts(conv, "one")
	before := bob.connections(client.Connected)
	p.lis.closeAll()
	alice.c.Send(ctx, conv, "two", client.SendOptions{})
	alice.c.Send(ctx, conv, "three", client.SendOptions{})
	bob.waitTexts(conv, "one", "two", "three")
	waitFor(t, "reconnected", func() bool { return bob.connections(client.Connected) > before })
}

// trackingListener remembers accepted connections so that a test can cut
// them all, hijacked WebSockets included.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// TestTrustRollback: someone with alice's disk but not her key deletes
// the record of the identity key she pinned for bob. Her client does not
// pin bob's key again as if he were new: it raises the alarm when the
// profile opens, refuses to write to bob or to pin his key with an error
// naming him, and takes the key the server presents only with the safety
// number alice compared.
func TestTrustRollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice, bob, conv := directPair(t, s)
	alice.close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(alice.dir, client.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := db.Exec(`DELETE FROM contacts`); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("deleted %d contact rows, want bob's", n)
	}
	db.Close()

	alice = openDevice(t, s, alice.dir, "alice")
	alice.start()
	isLost := func(what string, err error) {
		t.Helper()
		var tr *client.TrustRollbackError
		if !errors.As(err, &tr) || tr.User != "bob" || !errors.Is(err, client.ErrIdentityChanged) {
			t.Errorf("%s: %v, want a *TrustRollbackError naming bob", what, err)
		}
	}
	_, err = alice.c.Send(ctx, conv, "secret", client.SendOptions{})
	isLost("send", err)
	_, err = alice.c.NewGroup(ctx, "g", "bob")
	isLost("new group with bob", err)
	_, err = alice.c.SafetyNumber(ctx, "bob")
	isLost("safety number", err)
	isLost("mark verified", alice.c.MarkVerified(ctx, "bob"))
	ev := alice.waitEvent("trust alarm", func(ev client.Event) bool {
		return ev.Kind == client.EventIdentityChanged && errors.Is(ev.Err, client.ErrTrustRollback)
	})
	if ev.User != "bob" || !strings.Contains(ev.Error, "bob") {
		t.Errorf("alarm: %+v", ev)
	}
	if lost, err := alice.c.TrustRolledBack(ctx, "bob"); err != nil || !lost {
		t.Errorf("TrustRolledBack(bob) = %v, %v", lost, err)
	}
	if cv, err := alice.c.Conversation(ctx, conv); err != nil || !slices.Equal(cv.Unverified, []string{"bob"}) {
		t.Errorf("conversation: %+v, %v", cv, err)
	}
	mb, _ := alice.c.Members(ctx, conv)
	for _, m := range mb {
		if m.User == "bob" && !m.IdentityChanged {
			t.Errorf("member bob not flagged: %+v", m)
		}
	}

	// Only the number of the key presented now, as compared, is taken.
	pending, err := alice.c.SafetyNumberPending(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := bob.c.SafetyNumber(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if pending.Digits != theirs.Digits {
		t.Fatalf("pending safety number %s, bob's %s", pending.Digits, theirs.Digits)
	}
	isLost("accept other digits", alice.c.AcknowledgeIdentity(ctx, "bob", strings.Repeat("1", 60)))
	if err := alice.c.AcknowledgeIdentity(ctx, "bob", strings.Join(pending.Groups, " ")); err != nil {
		t.Fatal(err)
	}
	if lost, err := alice.c.TrustRolledBack(ctx, "bob"); err != nil || lost {
		t.Errorf("TrustRolledBack(bob) after accepting = %v, %v", lost, err)
	}
	if _, err := alice.c.Send(ctx, conv, "after verify", client.SendOptions{}); err != nil {
		t.Fatalf("send after accepting: %v", err)
	}
	bob.waitTexts(conv, "after verify")
}
