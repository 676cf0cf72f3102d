package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// testSuite is the MLS cipher suite of the test conversation.
const testSuite = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

// testUser is an account with one Ed25519 device.
type testUser struct {
	name     string
	identity ed25519.PrivateKey
	device   protocol.DeviceID
	devKey   ed25519.PrivateKey
	signer   *mls.Signer // signer holds devKey for MLS.
	cert     []byte
}

// newTestUser creates the keys and device certificate of a user.
func newTestUser(t *testing.T, name string) *testUser {
	t.Helper()
	_, id, _ := ed25519.GenerateKey(crand.Reader)
	_, dk, _ := ed25519.GenerateKey(crand.Reader)
	signer, err := mls.NewSigner(testSuite, dk.Seed())
	if err != nil {
		t.Fatal(err)
	}
	u := &testUser{name: name, identity: id, device: protocol.DeviceID(name + "-phone"), devKey: dk, signer: signer}
	u.cert, err = protocol.NewDeviceCertificate(id, "localhost", name, u.device, protocol.SchemeEd25519, dk.Public().(ed25519.PublicKey), time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// createConversation creates an MLS group of u alone with the group id and
// registers it as a conversation at base with u's session token.
func (u *testUser) createConversation(t *testing.T, hc *http.Client, base, token, groupID string) (*mls.Group, protocol.ConversationInfo) {
	t.Helper()
	group, err := mls.CreateGroup(nil, testSuite, []byte(groupID), u.signer, u.credential(t, "localhost"), mls.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gi, err := group.GroupInfo(mls.GroupInfoOptions{ExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := group.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	var conv protocol.ConversationInfo
	doJSON(t, hc, "POST", base+"/v1/conversations", token,
		protocol.CreateConversationRequest{GroupID: group.GroupID(), CipherSuite: uint16(testSuite), GroupInfo: gi, RatchetTree: tree}, &conv, http.StatusOK)
	return group, conv
}

// credential returns the device's Parley MLS credential on the server
// named server (protocol.EncodeCredential).
func (u *testUser) credential(t *testing.T, server string) mls.Credential {
	t.Helper()
	id, err := protocol.EncodeCredential(server, u.cert)
	if err != nil {
		t.Fatal(err)
	}
	return mls.BasicCredential(id)
}

// register registers the user with the invite.
func (u *testUser) register(t *testing.T, hc *http.Client, base, invite string) {
	t.Helper()
	req := protocol.RegisterRequest{
		Name: u.name, Invite: invite, IdentityKey: u.identity.Public().(ed25519.PublicKey),
		Device: protocol.NewDevice{ID: u.device, Scheme: protocol.SchemeEd25519, SignatureKey: u.devKey.Public().(ed25519.PublicKey), Certificate: u.cert,
			Proof: ed25519.Sign(u.devKey, protocol.DeviceProofSignedData("localhost", u.name, u.device, u.cert))},
	}
	doJSON(t, hc, "POST", base+"/v1/register", "", req, nil, http.StatusOK)
}

// login authenticates the device and returns a session token.
func (u *testUser) login(t *testing.T, hc *http.Client, base, server string) string {
	t.Helper()
	var ch protocol.ChallengeResponse
	doJSON(t, hc, "POST", base+"/v1/auth/challenge", "", protocol.ChallengeRequest{User: u.name, Device: u.device}, &ch, http.StatusOK)
	sig := ed25519.Sign(u.devKey, protocol.SessionSignedData(server, u.name, u.device, ch.Challenge))
	var sess protocol.SessionResponse
	doJSON(t, hc, "POST", base+"/v1/auth/session", "", protocol.SessionRequest{User: u.name, Device: u.device, Challenge: ch.Challenge, Signature: sig}, &sess, http.StatusOK)
	return sess.Token
}

// TestCrashSafety kills parleyd with SIGKILL in the middle of a stream of
// acknowledged messages, restarts it on the same data directory and
// checks that every acknowledged message is in the log exactly once.
// PARLEY_CRASH_SEED replays a run.
func TestCrashSafety(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PARLEY_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PARLEY_CRASH_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (PARLEY_CRASH_SEED=%d replays the kill point and window)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	killAt := 50 + rng.IntN(950) // acknowledged messages before the kill
	window := 1 + rng.IntN(64)   // sends in flight
	t.Logf("kill after %d acknowledgements, %d sends in flight", killAt, window)

	bin := buildParleyd(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	// The stream is faster than the default per-device post limit.
	limits := []string{"--rate-limits-posts-per-device-per-second", "1e6", "--rate-limits-posts-per-device-burst", "1000000"}
	c := startParleyd(t, bin, dataDir, limits...)
	hc := c.client()
	if c.invite == "" {
		t.Fatal("no first-start invite printed")
	}

	// alice registers with the first-start invite and becomes an
	// administrator; bob with an invite made by the admin command beside
	// the running server.
	alice, bob := newTestUser(t, "alice"), newTestUser(t, "bob")
	alice.register(t, hc, c.url, c.invite)
	out, err := exec.Command(bin, "admin", "invite", "create", "--json", "--data-dir", dataDir).Output()
	if err != nil {
		t.Fatalf("admin invite create: %v", err)
	}
	var inv protocol.InviteInfo
	if err := json.Unmarshal(out, &inv); err != nil {
		t.Fatal(err)
	}
	bob.register(t, hc, c.url, inv.Code)
	out, err = exec.Command(bin, "admin", "users", "list", "--json", "--data-dir", dataDir).Output()
	if err != nil {
		t.Fatalf("admin users list: %v", err)
	}
	var users protocol.UserList
	if err := json.Unmarshal(out, &users); err != nil || len(users.Users) != 2 {
		t.Fatalf("users: %s %v", out, err)
	}
	if !users.Users[0].Admin || users.Users[1].Admin {
		t.Errorf("admin flags: alice %t (want true), bob %t (want false)", users.Users[0].Admin, users.Users[1].Admin)
	}

	token := alice.login(t, hc, c.url, "localhost")
	group, conv := alice.createConversation(t, hc, c.url, token, "crash-test-group")

	// bob uploads a KeyPackage; alice claims it and adds bob by a commit
	// with a Welcome; bob joins from his inbox.
	bobToken := bob.login(t, hc, c.url, "localhost")
	bobKP, err := mls.NewKeyPackage(nil, testSuite, bob.signer, bob.credential(t, "localhost"), mls.KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doJSON(t, hc, "POST", c.url+"/v1/keypackages", bobToken,
		protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: bobKP.KeyPackage}}}, nil, http.StatusOK)
	var claim protocol.ClaimKeyPackagesResponse
	doJSON(t, hc, "POST", c.url+"/v1/keypackages/claim", token, protocol.ClaimKeyPackagesRequest{User: "bob", CipherSuite: uint16(testSuite)}, &claim, http.StatusOK)
	if len(claim.KeyPackages) != 1 || claim.KeyPackages[0].Device != bob.device {
		t.Fatalf("claim: %+v", claim)
	}
	pc, err := group.Commit(mls.CommitOptions{Add: [][]byte{claim.KeyPackages[0].Data}})
	if err != nil {
		t.Fatal(err)
	}
	if err := group.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	gi1, err := group.GroupInfo(mls.GroupInfoOptions{ExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	tree1, err := group.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	var hs protocol.HandshakeResponse
	doJSON(t, hc, "POST", fmt.Sprintf("%s/v1/conversations/%d/handshake", c.url, conv.ID), token, protocol.HandshakeRequest{
		Epoch: 0, Message: pc.Message, GroupInfo: gi1, RatchetTree: tree1,
		Welcomes: []protocol.Welcome{{Device: bob.device, Data: pc.Welcome}},
	}, &hs, http.StatusOK)
	if hs.Epoch != 1 {
		t.Fatalf("handshake: %+v", hs)
	}
	var inbox protocol.InboxResponse
	doJSON(t, hc, "GET", c.url+"/v1/inbox?after=0", bobToken, nil, &inbox, http.StatusOK)
	if len(inbox.Entries) != 1 {
		t.Fatalf("bob's inbox: %+v", inbox)
	}
	var pub protocol.GroupInfoResponse
	doJSON(t, hc, "GET", fmt.Sprintf("%s/v1/conversations/%d/groupinfo", c.url, conv.ID), bobToken, nil, &pub, http.StatusOK)
	bobGroup, err := mls.JoinFromWelcome(nil, inbox.Entries[0].Data, bobKP, mls.JoinOptions{RatchetTree: pub.RatchetTree})
	if err != nil {
		t.Fatalf("bob joins: %v", err)
	}

	// Stream messages over the WebSocket until the kill.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(c.url, "https")+"/v1/ws", &websocket.DialOptions{
		HTTPClient: hc, HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		t.Fatalf("WebSocket dial: %v", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(16 << 20)
	writeFrame := func(f protocol.Frame) error {
		b, err := protocol.MarshalFrame(f)
		if err != nil {
			return err
		}
		return ws.Write(ctx, websocket.MessageText, b)
	}
	if err := writeFrame(&protocol.SubscribeFrame{}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	sent := map[string][]byte{}  // client id → MLS message
	acked := map[string]uint64{} // client id → seq
	var refused []string
	slots := make(chan struct{}, window)
	killed := make(chan struct{})
	readerDone := make(chan error, 1)
	readerStopped := make(chan struct{})
	go func() {
		defer close(readerStopped)
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				readerDone <- err
				return
			}
			f, err := protocol.UnmarshalFrame(data)
			if err != nil {
				readerDone <- fmt.Errorf("bad frame %q: %v", data, err)
				return
			}
			switch f := f.(type) {
			case *protocol.SentFrame:
				mu.Lock()
				if _, dup := acked[f.ClientID]; dup {
					mu.Unlock()
					readerDone <- fmt.Errorf("second ack for %s", f.ClientID)
					return
				}
				acked[f.ClientID] = f.Seq
				n := len(acked)
				mu.Unlock()
				<-slots
				if n == killAt {
					// SIGKILL while up to window sends are in flight.
					c.cmd.Process.Signal(syscall.SIGKILL)
					close(killed)
				}
			case *protocol.ErrorFrame:
				mu.Lock()
				refused = append(refused, fmt.Sprintf("%s: %s %s", f.ClientID, f.Code, f.Message))
				mu.Unlock()
				if f.ClientID != "" {
					<-slots
				}
			}
		}
	}()
	for i := 0; ; i++ {
		select {
		case slots <- struct{}{}:
		case <-killed:
		case <-readerStopped:
			t.Fatalf("the WebSocket reader stopped before the kill: %v", <-readerDone)
		case <-ctx.Done():
			t.Fatal("timeout while streaming")
		}
		if isClosed(killed) {
			break
		}
		id := "m" + strconv.Itoa(i)
		msg, err := group.Encrypt([]byte(fmt.Sprintf("message %d of the crash test", i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		sent[id] = msg
		mu.Unlock()
		if err := writeFrame(&protocol.SendFrame{ClientID: id, Conversation: conv.ID, Message: msg}); err != nil {
			if isClosed(killed) {
				break
			}
			t.Fatalf("send %s: %v", id, err)
		}
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("parleyd did not die after SIGKILL")
	}
	if err := <-readerDone; err != nil && !isConnEnd(err) {
		t.Errorf("reader: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) > 0 {
		t.Errorf("%d sends refused before the kill, first: %s", len(refused), refused[0])
	}
	t.Logf("killed with %d acknowledged of %d sent", len(acked), len(sent))

	// Restart on the same data directory.
	c2 := startParleyd(t, bin, dataDir, limits...)
	if c2.fingerprint != c.fingerprint {
		t.Errorf("certificate changed across the restart: %s → %s", c.fingerprint, c2.fingerprint)
	}
	if c2.invite != "" {
		t.Error("an admin invite was printed although users exist")
	}
	hc2 := c2.client()
	token2 := alice.login(t, hc2, c2.url, "localhost")
	var log []protocol.Entry
	after := uint64(0)
	for {
		var page protocol.EntriesResponse
		doJSON(t, hc2, "GET", fmt.Sprintf("%s/v1/conversations/%d/entries?after=%d&limit=500", c2.url, conv.ID, after), token2, nil, &page, http.StatusOK)
		log = append(log, page.Entries...)
		if len(page.Entries) > 0 {
			after = page.Entries[len(page.Entries)-1].Seq
		}
		if !page.More || len(page.Entries) == 0 {
			break
		}
	}
	bySeq := map[uint64]protocol.Entry{}
	count := map[string]int{} // message bytes → occurrences
	if len(log) == 0 || log[0].Kind != protocol.KindHandshake {
		t.Fatalf("the log does not start with the commit adding bob")
	}
	for i, e := range log {
		if _, dup := bySeq[e.Seq]; dup {
			t.Errorf("seq %d appears twice", e.Seq)
		}
		if e.Seq != uint64(i+1) {
			t.Errorf("entry %d has seq %d: gap or reordering", i, e.Seq)
		}
		bySeq[e.Seq] = e
		if e.Kind == protocol.KindApplication {
			count[string(e.Data)]++
		}
	}
	missing := 0
	for id, seq := range acked {
		e, ok := bySeq[seq]
		switch {
		case !ok:
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged %s (seq %d) is missing after the restart", id, seq)
			}
		case !bytes.Equal(e.Data, sent[id]):
			t.Errorf("acknowledged %s: seq %d holds another message", id, seq)
		case count[string(sent[id])] != 1:
			t.Errorf("acknowledged %s is stored %d times", id, count[string(sent[id])])
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged messages missing", missing, len(acked))
	}
	// bob reads the log after the restart: every application entry
	// decrypts, in order, to a message alice sent.
	var bobLog []protocol.Entry
	after = 0
	for {
		var page protocol.EntriesResponse
		doJSON(t, hc2, "GET", fmt.Sprintf("%s/v1/conversations/%d/entries?after=%d&limit=500", c2.url, conv.ID, after), bob.login(t, hc2, c2.url, "localhost"), nil, &page, http.StatusOK)
		bobLog = append(bobLog, page.Entries...)
		if len(page.Entries) > 0 {
			after = page.Entries[len(page.Entries)-1].Seq
		}
		if !page.More || len(page.Entries) == 0 {
			break
		}
	}
	plain := map[string]string{} // client id → plaintext alice encrypted
	for id := range sent {
		n, _ := strconv.Atoi(strings.TrimPrefix(id, "m"))
		plain[id] = fmt.Sprintf("message %d of the crash test", n)
	}
	decrypted := map[string]int{}
	for _, e := range bobLog {
		if e.Kind != protocol.KindApplication {
			continue
		}
		p, err := bobGroup.Process(e.Data)
		if err != nil {
			t.Errorf("bob cannot decrypt seq %d: %v", e.Seq, err)
			continue
		}
		decrypted[string(p.ApplicationData)]++
	}
	for id := range acked {
		if n := decrypted[plain[id]]; n != 1 {
			t.Errorf("bob decrypted acknowledged %s %d times, want once", id, n)
		}
	}

	sentData := map[string]bool{}
	for _, m := range sent {
		sentData[string(m)] = true
	}
	for data, n := range count {
		if !sentData[data] {
			t.Errorf("the log holds a message that was never sent")
		} else if n > 1 {
			t.Errorf("a message is stored %d times", n)
		}
	}
	if len(log)-1 > len(sent) {
		t.Errorf("log holds %d application entries, more than the %d sent", len(log)-1, len(sent))
	}
	t.Logf("after restart: %d entries in the log, %d acknowledged, %d sent", len(log), len(acked), len(sent))
	for _, logs := range []string{c.stderr.String(), c2.stderr.String()} {
		for _, secret := range []string{token, bobToken, token2, c.invite, inv.Code} {
			if strings.Contains(logs, secret) {
				t.Errorf("a session token or invite code appears in the log")
			}
		}
	}
	if err := c2.stop(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// isClosed reports whether ch is closed.
func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// isConnEnd reports whether err is the end of a connection (the server
// died or closed it).
func isConnEnd(err error) bool {
	var ce websocket.CloseError
	return errors.As(err, &ce) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "closed")
}
