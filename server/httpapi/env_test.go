package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/blob"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/follower"
	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlite"
)

const cs = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// checkedStore is a store backend with its invariant check.
type checkedStore interface {
	store.Store
	CheckInvariants(ctx context.Context) error
}

// env is a parleyd core on a real SQLite file (or a PostgreSQL schema)
// behind a loopback HTTP server.
type env struct {
	t     testing.TB
	srv   *httptest.Server
	svc   *delivery.Service
	api   *httpapi.Server
	st    checkedStore
	clock *clock
	dcfg  delivery.Config
	hcfg  httpapi.Config
	// logger is the node's logger (nil: none); a change takes effect at
	// the next (re)start.
	logger *slog.Logger

	dir   string
	open  func() checkedStore // open opens the node's store
	blobs delivery.BlobStore
	stop  func() // stop shuts the node down and closes its store
}

func newEnv(t testing.TB, mod func(*delivery.Config, *httpapi.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	return newEnvOn(t, dir, func() checkedStore {
		st, err := sqlite.Open(context.Background(), sqlite.NewConfig(filepath.Join(dir, "parley.db")))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}, mod)
}

// newEnvOn starts a node on the store open returns, with blobs in dir.
func newEnvOn(t testing.TB, dir string, open func() checkedStore, mod func(*delivery.Config, *httpapi.Config)) *env {
	t.Helper()
	blobs, err := blob.NewDisk(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	dcfg := delivery.DefaultConfig()
	dcfg.ServerName = "test.example"
	dcfg.OpenRegistration = true
	hcfg := httpapi.DefaultConfig()
	hcfg.RateLimits.RegisterPerIP = httpapi.Rate{PerSecond: 1000, Burst: 1000}
	hcfg.RateLimits.AuthPerIP = httpapi.Rate{PerSecond: 1000, Burst: 1000}
	hcfg.RateLimits.RequestsPerIP = httpapi.Rate{PerSecond: 100000, Burst: 100000}
	hcfg.RateLimits.RequestsPerUser = httpapi.Rate{PerSecond: 100000, Burst: 100000}
	hcfg.RateLimits.PostsPerDevice = httpapi.Rate{PerSecond: 100000, Burst: 100000}
	if mod != nil {
		mod(&dcfg, &hcfg)
	}
	e := &env{t: t, clock: &clock{t: time.Now().UTC()}, dcfg: dcfg, hcfg: hcfg, dir: dir, open: open, blobs: blobs}
	e.start()
	t.Cleanup(func() { e.stop() })
	return e
}

// start opens the store and starts a new delivery service and HTTP server
// on it, with a fresh follower (nothing in memory survives a restart).
func (e *env) start() {
	t := e.t
	t.Helper()
	ctx := context.Background()
	st := e.open()
	reg := prometheus.NewRegistry()
	svc, err := delivery.New(e.dcfg, st, e.blobs, follower.New(nil), delivery.Options{Now: e.clock.Now, Metrics: reg, Logger: e.logger})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() {
		svc.Run(runCtx)
		close(ran)
	}()
	api, err := httpapi.New(e.hcfg, svc, e.logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	e.srv, e.svc, e.api, e.st = srv, svc, api, st
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		api.Shutdown(sctx)
		cancel()
		srv.Close()
		stop()
		<-ran
		if err := st.CheckInvariants(ctx); err != nil {
			t.Errorf("store invariants: %v", err)
		}
		st.Close()
	}
}

// restart stops the node and starts a new one on the same database: a
// process restart. Sessions live in the store, so tokens stay valid.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

// call does a JSON request and decodes the answer into out (on 2xx) or a
// protocol.Error. It returns the status and the error body, if any.
func (e *env) call(token, method, path string, body, out any) (int, *protocol.Error) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var pe protocol.Error
		if err := json.Unmarshal(data, &pe); err != nil || pe.Code == "" {
			e.t.Fatalf("%s %s: status %d with a body that is not a protocol error: %q", method, path, resp.StatusCode, data)
		}
		if pe.Code.HTTPStatus() != resp.StatusCode && resp.StatusCode != http.StatusMethodNotAllowed {
			e.t.Errorf("%s %s: status %d for code %s (want %d)", method, path, resp.StatusCode, pe.Code, pe.Code.HTTPStatus())
		}
		return resp.StatusCode, &pe
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: decode %T: %v", method, path, out, err)
		}
	}
	return resp.StatusCode, nil
}

// must does a request that must succeed.
func (e *env) must(token, method, path string, body, out any) {
	e.t.Helper()
	if status, pe := e.call(token, method, path, body, out); pe != nil {
		e.t.Fatalf("%s %s: %d %v", method, path, status, pe)
	}
}

// wantErr does a request that must fail with the code.
func (e *env) wantErr(code protocol.ErrorCode, token, method, path string, body any) *protocol.Error {
	e.t.Helper()
	status, pe := e.call(token, method, path, body, nil)
	if pe == nil {
		e.t.Fatalf("%s %s: status %d, want error %s", method, path, status, code)
	}
	if pe.Code != code {
		e.t.Fatalf("%s %s: error %v, want %s", method, path, pe, code)
	}
	return pe
}

// device is a client device with its MLS signer.
type device struct {
	e        *env
	user     *user
	id       protocol.DeviceID
	signer   *mls.Signer
	cert     []byte // cert is the encoded device certificate.
	token    string
	bundles  map[string]*mls.KeyPackageBundle // by KeyPackage bytes
	bundleMu sync.Mutex
}

// user is a client account.
type user struct {
	name     string
	identity ed25519.PrivateKey
	devices  []*device
}

func randomID() protocol.DeviceID {
	b := make([]byte, 8)
	rand.Read(b)
	return protocol.DeviceID(hex.EncodeToString(b))
}

// newDevice makes a device and its registration data: a certificate for
// the env's server created now, and the device's proof of possession.
func (e *env) newDevice(u *user) (*device, protocol.NewDevice) {
	e.t.Helper()
	return e.newDeviceCert(u, e.dcfg.ServerName, e.clock.Now())
}

// newDeviceCert is newDevice with a certificate for the server named
// server, created at created; the proof is for the env's server.
func (e *env) newDeviceCert(u *user, server string, created time.Time) (*device, protocol.NewDevice) {
	e.t.Helper()
	s, err := mls.GenerateSigner(cs)
	if err != nil {
		e.t.Fatal(err)
	}
	d := &device{e: e, user: u, id: randomID(), signer: s, bundles: map[string]*mls.KeyPackageBundle{}}
	cert, err := protocol.NewDeviceCertificate(u.identity, server, u.name, d.id, protocol.SchemeEd25519, s.PublicKey(), created)
	if err != nil {
		e.t.Fatal(err)
	}
	d.cert = cert
	nd := protocol.NewDevice{ID: d.id, Scheme: protocol.SchemeEd25519, SignatureKey: s.PublicKey(), Certificate: cert}
	nd.Proof = d.proof(e.dcfg.ServerName, cert)
	return d, nd
}

// proof signs, with the device key, the proof of possession of a
// registration of the device with the certificate on the named server.
func (d *device) proof(server string, cert []byte) []byte {
	priv := ed25519.NewKeyFromSeed(d.signer.PrivateKey())
	return ed25519.Sign(priv, protocol.DeviceProofSignedData(server, d.user.name, d.id, cert))
}

// registerReq builds a registration.
func (e *env) registerReq(name, invite string) (*user, *device, protocol.RegisterRequest) {
	_, id, _ := ed25519.GenerateKey(rand.Reader)
	u := &user{name: name, identity: id}
	d, nd := e.newDevice(u)
	return u, d, protocol.RegisterRequest{Name: name, Invite: invite, IdentityKey: id.Public().(ed25519.PublicKey), Device: nd}
}

// register creates a user with one logged-in device.
func (e *env) register(name string) *device {
	e.t.Helper()
	u, d, req := e.registerReq(name, "")
	e.must("", "POST", "/v1/register", req, nil)
	u.devices = append(u.devices, d)
	d.login()
	return d
}

// credential returns the device's Parley MLS credential
// (protocol.EncodeCredential) on the env's server.
func (d *device) credential() mls.Credential {
	d.e.t.Helper()
	id, err := protocol.EncodeCredential(d.e.dcfg.ServerName, d.cert)
	if err != nil {
		d.e.t.Fatal(err)
	}
	return mls.BasicCredential(id)
}

// sign signs a challenge with the device key.
func (d *device) sign(challenge []byte) []byte {
	priv := ed25519.NewKeyFromSeed(d.signer.PrivateKey())
	return ed25519.Sign(priv, protocol.SessionSignedData(d.e.dcfg.ServerName, d.user.name, d.id, challenge))
}

func (d *device) challenge() []byte {
	var ch protocol.ChallengeResponse
	d.e.must("", "POST", "/v1/auth/challenge", protocol.ChallengeRequest{User: d.user.name, Device: d.id}, &ch)
	return ch.Challenge
}

// login authenticates the device.
func (d *device) login() {
	d.e.t.Helper()
	ch := d.challenge()
	var s protocol.SessionResponse
	d.e.must("", "POST", "/v1/auth/session", protocol.SessionRequest{User: d.user.name, Device: d.id, Challenge: ch, Signature: d.sign(ch)}, &s)
	d.token = s.Token
}

// revocation returns the request revoking the device, signed by its
// user's identity key.
func (d *device) revocation() protocol.RevokeDeviceRequest {
	d.e.t.Helper()
	st, err := protocol.NewDeviceRevocation(d.user.identity, d.e.dcfg.ServerName, d.user.name, d.id, d.e.clock.Now())
	if err != nil {
		d.e.t.Fatal(err)
	}
	return protocol.RevokeDeviceRequest{Revocation: st}
}

// addDevice links a second device to the user.
func (d *device) addDevice() *device {
	d.e.t.Helper()
	nd, req := d.e.newDevice(d.user)
	d.e.must(d.token, "POST", "/v1/devices", protocol.AddDeviceRequest{Device: req}, nil)
	d.user.devices = append(d.user.devices, nd)
	nd.login()
	return nd
}

// keyPackage makes a KeyPackage of the device.
func (d *device) keyPackage(lastResort bool) []byte {
	d.e.t.Helper()
	b, err := mls.NewKeyPackage(nil, cs, d.signer, d.credential(), mls.KeyPackageOptions{LastResort: lastResort})
	if err != nil {
		d.e.t.Fatal(err)
	}
	d.bundleMu.Lock()
	d.bundles[string(b.KeyPackage)] = b
	d.bundleMu.Unlock()
	return b.KeyPackage
}

// upload uploads n one-time KeyPackages and optionally a last-resort one.
func (d *device) upload(n int, lastResort bool) protocol.KeyPackageCount {
	var req protocol.UploadKeyPackagesRequest
	for range n {
		req.KeyPackages = append(req.KeyPackages, protocol.KeyPackageUpload{Data: d.keyPackage(false)})
	}
	if lastResort {
		req.KeyPackages = append(req.KeyPackages, protocol.KeyPackageUpload{Data: d.keyPackage(true), LastResort: true})
	}
	var out protocol.UploadKeyPackagesResponse
	d.e.must(d.token, "POST", "/v1/keypackages", req, &out)
	return out.Count
}

// member is a device's MLS group in a conversation.
type member struct {
	d    *device
	g    *mls.Group
	conv protocol.ConversationID
}

// createConversation creates a group with the device as only member.
func (d *device) createConversation() *member {
	d.e.t.Helper()
	gid := make([]byte, 16)
	rand.Read(gid)
	g, err := mls.CreateGroup(nil, cs, gid, d.signer, d.credential(), mls.CreateOptions{})
	if err != nil {
		d.e.t.Fatal(err)
	}
	gi, err := g.GroupInfo(mls.GroupInfoOptions{ExternalPub: true})
	if err != nil {
		d.e.t.Fatal(err)
	}
	tree, err := g.RatchetTree()
	if err != nil {
		d.e.t.Fatal(err)
	}
	var info protocol.ConversationInfo
	d.e.must(d.token, "POST", "/v1/conversations", protocol.CreateConversationRequest{GroupID: gid, CipherSuite: uint16(cs), GroupInfo: gi, RatchetTree: tree}, &info)
	return &member{d: d, g: g, conv: info.ID}
}

// claim claims KeyPackages of a user.
func (d *device) claim(name string) protocol.ClaimKeyPackagesResponse {
	d.e.t.Helper()
	var out protocol.ClaimKeyPackagesResponse
	d.e.must(d.token, "POST", "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{User: name, CipherSuite: uint16(cs)}, &out)
	return out
}

// commitReq turns a pending commit into a handshake request.
func commitReq(epoch uint64, pc *mls.PendingCommit, welcomeTo []protocol.DeviceID) protocol.HandshakeRequest {
	req := protocol.HandshakeRequest{Epoch: epoch, Message: pc.Message, GroupInfo: pc.GroupInfo}
	for _, d := range welcomeTo {
		req.Welcomes = append(req.Welcomes, protocol.Welcome{Device: d, Data: pc.Welcome})
	}
	return req
}

// add adds all devices of a user to the conversation and returns the
// pending commit (merged).
func (m *member) add(t *testing.T, name string) *mls.PendingCommit {
	t.Helper()
	claimed := m.d.claim(name)
	var kps [][]byte
	var to []protocol.DeviceID
	for _, kp := range claimed.KeyPackages {
		kps = append(kps, kp.Data)
		to = append(to, kp.Device)
	}
	pc, err := m.g.Commit(mls.CommitOptions{Add: kps, InlineRatchetTree: true, ExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	var res protocol.HandshakeResponse
	m.d.e.must(m.d.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", m.conv), commitReq(m.g.Epoch(), pc, to), &res)
	if err := m.g.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	if res.Epoch != m.g.Epoch() {
		t.Fatalf("server epoch %d, group epoch %d", res.Epoch, m.g.Epoch())
	}
	return pc
}

// join makes the device join from the Welcome in its inbox.
func (d *device) join(t *testing.T, conv protocol.ConversationID) *member {
	t.Helper()
	var in protocol.InboxResponse
	d.e.must(d.token, "GET", "/v1/inbox", nil, &in)
	for _, ie := range in.Entries {
		if ie.Conversation != conv {
			continue
		}
		d.bundleMu.Lock()
		var g *mls.Group
		var err error
		for _, b := range d.bundles {
			if g, err = mls.JoinFromWelcome(nil, ie.Data, b, mls.JoinOptions{}); err == nil {
				break
			}
		}
		d.bundleMu.Unlock()
		if g == nil {
			t.Fatalf("join conversation %d: %v", conv, err)
		}
		return &member{d: d, g: g, conv: conv}
	}
	t.Fatalf("no Welcome for conversation %d in the inbox of %s", conv, d.id)
	return nil
}

// send posts an application message over HTTP.
func (m *member) send(t *testing.T, text string) protocol.SendResponse {
	t.Helper()
	msg, err := m.g.Encrypt([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out protocol.SendResponse
	m.d.e.must(m.d.token, "POST", fmt.Sprintf("/v1/conversations/%d/messages", m.conv), protocol.SendRequest{Message: msg}, &out)
	return out
}

// ws is a test WebSocket client; a goroutine reads frames into a channel
// (a read with a cancelled context would close the connection).
type ws struct {
	t      *testing.T
	c      *websocket.Conn
	frames chan protocol.Frame
	err    chan error
	held   []protocol.Frame // read by handled, returned first by next
	// binaries counts the binary messages read (binary entry frames).
	binaries atomic.Int64
}

func (d *device) dial(t *testing.T) *ws {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(d.e.srv.URL, "http")+"/v1/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + d.token}},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(16 << 20)
	w := &ws{t: t, c: c, frames: make(chan protocol.Frame, 10000), err: make(chan error, 1)}
	go func() {
		for {
			typ, data, err := c.Read(context.Background())
			if err != nil {
				w.err <- err
				close(w.frames)
				return
			}
			var f protocol.Frame
			if typ == websocket.MessageBinary {
				w.binaries.Add(1)
				f, err = protocol.UnmarshalServerFrame(data)
				if _, ok := f.(*protocol.EntryFrame); err == nil && !ok {
					err = fmt.Errorf("a binary message holds a %s frame", f.FrameType())
				}
			} else {
				f, err = protocol.UnmarshalFrame(data)
			}
			if err != nil {
				w.err <- err
				close(w.frames)
				return
			}
			w.frames <- f
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return w
}

func (w *ws) send(f protocol.Frame) {
	w.t.Helper()
	b, err := protocol.MarshalFrame(f)
	if err != nil {
		w.t.Fatal(err)
	}
	w.raw(b)
}

func (w *ws) raw(b []byte) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatalf("ws write: %v", err)
	}
}

var errTimeout = errors.New("timeout")

// next returns the next frame, errTimeout, or the read error.
func (w *ws) next(timeout time.Duration) (protocol.Frame, error) {
	if len(w.held) > 0 {
		f := w.held[0]
		w.held = w.held[1:]
		return f, nil
	}
	return w.recv(timeout)
}

// recv returns the next frame from the connection, errTimeout, or the
// read error.
func (w *ws) recv(timeout time.Duration) (protocol.Frame, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case f, ok := <-w.frames:
		if !ok {
			return nil, <-w.err
		}
		return f, nil
	case <-t.C:
		return nil, errTimeout
	}
}

func (w *ws) must(timeout time.Duration) protocol.Frame {
	w.t.Helper()
	f, err := w.next(timeout)
	if err != nil {
		w.t.Fatalf("ws read: %v", err)
	}
	return f
}

// handled returns once the server handled every frame sent so far: it
// sends a ping and waits for the pong (the server handles a connection's
// frames in order). Other frames that arrive meanwhile are kept for next.
func (w *ws) handled() {
	w.t.Helper()
	const nonce = "handled"
	w.send(&protocol.PingFrame{Nonce: nonce})
	for {
		f, err := w.recv(10 * time.Second)
		if err != nil {
			w.t.Fatalf("ws read while waiting for pong %q: %v", nonce, err)
		}
		if p, ok := f.(*protocol.PongFrame); ok && p.Nonce == nonce {
			return
		}
		w.held = append(w.held, f)
	}
}

// acksWritten returns once the acknowledgements the server received from d
// so far are written: a Subscribe waits for them (the delivery service's
// ack barrier), and handled returns once the Subscribe was handled.
func (d *device) acksWritten(t *testing.T) {
	t.Helper()
	w := d.dial(t)
	w.send(&protocol.SubscribeFrame{})
	w.handled()
	w.c.CloseNow()
}

// silent checks that nothing arrives within d.
func (w *ws) silent(d time.Duration) {
	w.t.Helper()
	f, err := w.next(d)
	if err == nil {
		w.t.Fatalf("unexpected frame %T %+v", f, f)
	}
	if err != errTimeout {
		w.t.Fatalf("ws read: %v", err)
	}
}

// entries reads n entry frames (skipping typing/pong), in order.
func (w *ws) entries(n int, timeout time.Duration) []protocol.Entry {
	w.t.Helper()
	var out []protocol.Entry
	for len(out) < n {
		f := w.must(timeout)
		switch f := f.(type) {
		case *protocol.EntryFrame:
			out = append(out, f.Entry)
		case *protocol.ErrorFrame:
			w.t.Fatalf("error frame: %v", &f.Error)
		}
	}
	return out
}
