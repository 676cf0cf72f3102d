package httpapi_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/httpapi"
)

func TestKeyPackages(t *testing.T) {
	e := newEnv(t, func(d *delivery.Config, h *httpapi.Config) { d.ClaimBurst = 5; d.ClaimRate = 0.001 })
	alice := e.register("alice")
	bob := e.register("bob")

	countPath := fmt.Sprintf("/v1/keypackages/count?cipher_suite=%d", cs)
	c := bob.upload(2, true)
	if c.Available != 2 || !c.LastResort {
		t.Fatalf("count after upload %+v", c)
	}
	var cnt protocol.KeyPackageCount
	e.must(bob.token, "GET", countPath, nil, &cnt)
	if cnt != c {
		t.Fatalf("count %+v, upload said %+v", cnt, c)
	}

	// Bad packages are refused with the index and the reason; nothing is stored.
	carol := e.register("carol")
	good := bob.keyPackage(false)
	foreign := carol.keyPackage(false) // signed with carol's key
	pe := e.wantErr(protocol.CodeBadKeyPackage, bob.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: good}, {Data: foreign}}})
	if pe.Index == nil || *pe.Index != 1 {
		t.Errorf("bad package error %v: index %v, want 1", pe, pe.Index)
	}
	t.Logf("foreign key: %s", pe.Message)
	pe = e.wantErr(protocol.CodeBadKeyPackage, bob.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: good[:len(good)-3]}}})
	t.Logf("truncated: %s", pe.Message)
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-10] ^= 1
	pe = e.wantErr(protocol.CodeBadKeyPackage, bob.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: tampered}}})
	t.Logf("tampered: %s", pe.Message)
	old, err := mls.NewKeyPackage(&mls.Config{Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }}, cs, bob.signer, bob.credential(), mls.KeyPackageOptions{Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pe = e.wantErr(protocol.CodeBadKeyPackage, bob.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: old.KeyPackage}}})
	t.Logf("expired: %s", pe.Message)
	e.wantErr(protocol.CodeBadKeyPackage, bob.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: good}, {Data: good}}})
	e.wantErr(protocol.CodeBadRequest, bob.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{})
	e.must(bob.token, "GET", countPath, nil, &cnt)
	if cnt.Available != 2 {
		t.Fatalf("pool %d after refused uploads, want 2", cnt.Available)
	}

	// Claims: two one-time packages, then the last resort, which stays.
	seen := map[string]bool{}
	for i := range 4 {
		r := alice.claim("bob")
		if len(r.KeyPackages) != 1 || r.KeyPackages[0].Device != bob.id {
			t.Fatalf("claim %d: %+v", i, r)
		}
		kp := r.KeyPackages[0]
		if wantLR := i >= 2; kp.LastResort != wantLR {
			t.Errorf("claim %d: last resort %v, want %v", i, kp.LastResort, wantLR)
		}
		if !kp.LastResort && seen[string(kp.Data)] {
			t.Errorf("claim %d returned a one-time package twice", i)
		}
		seen[string(kp.Data)] = true
	}
	e.must(bob.token, "GET", countPath, nil, &cnt)
	// The last resort was handed out: the count asks for a new one.
	if cnt.Available != 0 || cnt.LastResort {
		t.Errorf("pool after claims %+v", cnt)
	}
	// Exhaustion: carol has nothing.
	e.wantErr(protocol.CodeNoKeyPackage, alice.token, "POST", "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{User: "carol", CipherSuite: uint16(cs)})
	e.wantErr(protocol.CodeUnknownUser, alice.token, "POST", "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{User: "nobody", CipherSuite: uint16(cs)})
	e.wantErr(protocol.CodeUnsupported, alice.token, "POST", "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{User: "bob", CipherSuite: 0x7777})
	// Rate limit per (claimer, target): alice used 4 of 5 on bob.
	alice.claim("bob")
	e.wantErr(protocol.CodeRateLimited, alice.token, "POST", "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{User: "bob", CipherSuite: uint16(cs)})
	carol.claim("bob") // another claimer is not limited by alice's claims
}

// KeyPackages must carry the uploading device's Parley credential;
// foreign credentials only with AllowForeignCredentials.
func TestKeyPackageCredentials(t *testing.T) {
	e := newEnv(t, nil)
	bob := e.register("bob")
	phone := bob.addDevice()
	carol := e.register("carol")
	kp := func(cred mls.Credential) []byte {
		b, err := mls.NewKeyPackage(nil, cs, bob.signer, cred, mls.KeyPackageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return b.KeyPackage
	}
	parley := func(server string, cert []byte) mls.Credential {
		id, err := protocol.EncodeCredential(server, cert)
		if err != nil {
			t.Fatal(err)
		}
		return mls.BasicCredential(id)
	}
	cert := func(identity ed25519.PrivateKey, user string, dev protocol.DeviceID) []byte {
		c, err := protocol.NewDeviceCertificate(identity, e.dcfg.ServerName, user, dev, protocol.SchemeEd25519, bob.signer.PublicKey(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	otherKey, err := protocol.NewDeviceCertificate(bob.user.identity, e.dcfg.ServerName, "bob", bob.id, protocol.SchemeEd25519, phone.signer.PublicKey(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cred mls.Credential
		want string
	}{
		{"other server", parley("other.example", bob.cert), "server"},
		{"other user", parley(e.dcfg.ServerName, cert(carol.user.identity, "carol", bob.id)), "names user"},
		{"other device", parley(e.dcfg.ServerName, cert(bob.user.identity, "bob", phone.id)), "names device"},
		{"other key", parley(e.dcfg.ServerName, otherKey), "device key differs"},
		{"forged", parley(e.dcfg.ServerName, cert(stranger, "bob", bob.id)), "signature invalid"},
		{"foreign", mls.BasicCredential([]byte(bob.id)), "not a Parley credential"},
	} {
		pe := e.wantErr(protocol.CodeBadKeyPackage, bob.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: kp(tc.cred)}}})
		t.Logf("%s: %s", tc.name, pe.Message)
		if !strings.Contains(pe.Message, tc.want) {
			t.Errorf("%s: refused with %q, want %q in it", tc.name, pe.Message, tc.want)
		}
	}
	e.must(bob.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: kp(bob.credential())}}}, nil)

	open := newEnv(t, func(d *delivery.Config, _ *httpapi.Config) { d.AllowForeignCredentials = true })
	dave := open.register("dave")
	foreign, err := mls.NewKeyPackage(nil, cs, dave.signer, mls.BasicCredential([]byte(dave.id)), mls.KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	open.must(dave.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: foreign.KeyPackage}}}, nil)
	// A Parley credential is checked even then.
	forged, err := mls.NewKeyPackage(nil, cs, dave.signer, parley(open.dcfg.ServerName, cert(stranger, "dave", dave.id)), mls.KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	open.wantErr(protocol.CodeBadKeyPackage, dave.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: forged.KeyPackage}}})
}

// setup2 makes alice's conversation with bob as a member.
func setup2(t *testing.T, e *env) (alice, bob *member) {
	a := e.register("alice")
	b := e.register("bob")
	b.upload(1, false)
	alice = a.createConversation()
	alice.add(t, "bob")
	bob = b.join(t, alice.conv)
	return alice, bob
}

// Every leaf that enters a group — its creator, an added KeyPackage that
// never went through the directory, an external joiner — must carry its
// device's Parley credential, as uploaded KeyPackages must; a refused
// handshake leaves the conversation as it was.
func TestLeafCredentials(t *testing.T) {
	e := newEnv(t, nil)
	alice, _ := setup2(t, e)
	foreign := func(d *device) mls.Credential { return mls.BasicCredential([]byte(d.id)) }
	convPath := fmt.Sprintf("/v1/conversations/%d", alice.conv)
	var before protocol.ConversationInfo
	e.must(alice.d.token, "GET", convPath, nil, &before)

	gid := make([]byte, 16)
	rand.Read(gid)
	g, err := mls.CreateGroup(nil, cs, gid, alice.d.signer, foreign(alice.d), mls.CreateOptions{})
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
	pe := e.wantErr(protocol.CodeBadMessage, alice.d.token, "POST", "/v1/conversations", protocol.CreateConversationRequest{GroupID: gid, CipherSuite: uint16(cs), GroupInfo: gi, RatchetTree: tree})
	t.Logf("creation: %s", pe.Message)

	// carol signs a KeyPackage with her registered key but a foreign
	// credential and hands it to alice outside the directory.
	carol := e.register("carol")
	kp, err := mls.NewKeyPackage(nil, cs, carol.signer, foreign(carol), mls.KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := alice.g.Commit(mls.CommitOptions{Add: [][]byte{kp.KeyPackage}, ExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	pe = e.wantErr(protocol.CodeBadMessage, alice.d.token, "POST", convPath+"/handshake", commitReq(alice.g.Epoch(), pc, []protocol.DeviceID{carol.id}))
	t.Logf("add: %s", pe.Message)
	alice.g.DiscardPendingCommit(pc)

	phone := alice.d.addDevice()
	var info protocol.GroupInfoResponse
	e.must(phone.token, "GET", convPath+"/groupinfo", nil, &info)
	_, xc, err := mls.JoinExternal(nil, info.GroupInfo, phone.signer, foreign(phone), mls.ExternalJoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pe = e.wantErr(protocol.CodeBadMessage, phone.token, "POST", convPath+"/handshake", protocol.HandshakeRequest{Epoch: info.Epoch, Message: xc.Message, GroupInfo: xc.GroupInfo})
	t.Logf("external join: %s", pe.Message)

	var after protocol.ConversationInfo
	e.must(alice.d.token, "GET", convPath, nil, &after)
	if after.Epoch != before.Epoch || !slices.Equal(after.Members, before.Members) {
		t.Fatalf("refused handshakes changed the conversation: %+v, was %+v", after, before)
	}
	// The same operation with Parley credentials goes through.
	carol.upload(1, false)
	alice.add(t, "carol")
}

func TestWelcomeAfterCommit(t *testing.T) {
	e := newEnv(t, nil)
	a := e.register("alice")
	b := e.register("bob")
	b.upload(1, false)
	alice := a.createConversation()

	claimed := a.claim("bob")
	pc, err := alice.g.Commit(mls.CommitOptions{Add: [][]byte{claimed.KeyPackages[0].Data}, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	// A commit for the wrong epoch is refused and its Welcome goes nowhere.
	bad := commitReq(5, pc, []protocol.DeviceID{b.id})
	pe := e.wantErr(protocol.CodeStaleEpoch, a.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv), bad)
	if pe.CurrentEpoch == nil || *pe.CurrentEpoch != 0 {
		t.Fatalf("stale epoch error %v without current epoch 0", pe)
	}
	// A Welcome for a device the commit does not add is refused.
	carol := e.register("carol")
	e.wantErr(protocol.CodeBadRequest, a.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv), commitReq(0, pc, []protocol.DeviceID{carol.id}))
	var in protocol.InboxResponse
	e.must(b.token, "GET", "/v1/inbox", nil, &in)
	if len(in.Entries) != 0 {
		t.Fatalf("Welcome released before its commit was accepted: %+v", in.Entries)
	}
	ws := b.dial(t)
	ws.send(&protocol.SubscribeFrame{})
	ws.silent(100 * time.Millisecond)

	e.must(a.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv), commitReq(0, pc, []protocol.DeviceID{b.id}), nil)
	alice.g.MergePendingCommit(pc)
	f := ws.must(5 * time.Second)
	ib, ok := f.(*protocol.InboxFrame)
	if !ok || ib.Conversation != alice.conv || ib.Seq != 1 {
		t.Fatalf("after the commit got %T %+v, want the Welcome", f, f)
	}
	bob := b.join(t, alice.conv)
	if bob.g.Epoch() != 1 {
		t.Fatalf("bob joined at epoch %d", bob.g.Epoch())
	}
	// Bob's cursor starts at the commit: he receives messages after it only.
	alice.send(t, "hello bob")
	es := ws.entries(1, 5*time.Second)
	p, err := bob.g.Process(es[0].Data)
	if err != nil || string(p.ApplicationData) != "hello bob" || es[0].Sender != a.id || es[0].Seq != 2 {
		t.Fatalf("bob got %+v: %v", es[0], err)
	}
	var info protocol.ConversationInfo
	e.must(b.token, "GET", fmt.Sprintf("/v1/conversations/%d", alice.conv), nil, &info)
	if info.Epoch != 1 || len(info.Members) != 2 || info.Head != 2 {
		t.Errorf("conversation %+v", info)
	}
	var gi protocol.GroupInfoResponse
	e.must(b.token, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo", alice.conv), nil, &gi)
	if gi.Epoch != 1 || len(gi.GroupInfo) == 0 || len(gi.RatchetTree) == 0 {
		t.Errorf("group info %+v", gi.Epoch)
	}
}

// TestWelcomeForDevices: one Welcome entry naming several devices is
// checked once and released, after the commit only, to the inbox of each.
func TestWelcomeForDevices(t *testing.T) {
	e := newEnv(t, nil)
	a := e.register("alice")
	b1 := e.register("bob")
	bobs := []*device{b1, b1.addDevice(), b1.addDevice()}
	for _, b := range bobs {
		b.upload(1, false)
	}
	alice := a.createConversation()
	claimed := a.claim("bob")
	var kps [][]byte
	var to []protocol.DeviceID
	for _, kp := range claimed.KeyPackages {
		kps = append(kps, kp.Data)
		to = append(to, kp.Device)
	}
	if len(to) != 3 {
		t.Fatalf("claimed %d KeyPackages of bob, want 3", len(to))
	}
	pc, err := alice.g.Commit(mls.CommitOptions{Add: kps, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv)
	req := func(ws ...protocol.Welcome) protocol.HandshakeRequest {
		r := commitReq(0, pc, nil)
		r.Welcomes = ws
		return r
	}
	carol := e.register("carol")
	// Malformed entries are refused and release nothing.
	for _, bad := range []struct {
		code protocol.ErrorCode
		ws   []protocol.Welcome
	}{
		{protocol.CodeBadRequest, []protocol.Welcome{{Devices: slices.Concat(to, []protocol.DeviceID{carol.id}), Data: pc.Welcome}}}, // carol is not added
		{protocol.CodeBadRequest, []protocol.Welcome{{Device: to[0], Devices: to, Data: pc.Welcome}}},                                // both forms
		{protocol.CodeBadRequest, []protocol.Welcome{{Data: pc.Welcome}}},                                                            // no device
		{protocol.CodeBadRequest, []protocol.Welcome{{Devices: to, Data: pc.Welcome}, {Device: to[1], Data: pc.Welcome}}},            // a device twice
		{protocol.CodeBadRequest, []protocol.Welcome{{Devices: slices.Concat(to, to[2:]), Data: pc.Welcome}}},                        // twice in one list
		{protocol.CodeBadMessage, []protocol.Welcome{{Devices: to, Data: pc.Message}}},                                               // not a Welcome
	} {
		e.wantErr(bad.code, a.token, "POST", path, req(bad.ws...))
	}
	for _, b := range bobs {
		var in protocol.InboxResponse
		e.must(b.token, "GET", "/v1/inbox", nil, &in)
		if len(in.Entries) != 0 {
			t.Fatalf("Welcome released to %s before its commit was accepted: %+v", b.id, in.Entries)
		}
	}

	e.must(a.token, "POST", path, req(protocol.Welcome{Devices: to, Data: pc.Welcome}), nil)
	if err := alice.g.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	for _, b := range bobs {
		var in protocol.InboxResponse
		e.must(b.token, "GET", "/v1/inbox", nil, &in)
		if len(in.Entries) != 1 || !bytes.Equal(in.Entries[0].Data, pc.Welcome) {
			t.Fatalf("inbox of %s: %d entries, want the one Welcome", b.id, len(in.Entries))
		}
		if m := b.join(t, alice.conv); m.g.Epoch() != 1 {
			t.Errorf("%s joined at epoch %d", b.id, m.g.Epoch())
		}
	}
	var info protocol.ConversationInfo
	e.must(a.token, "GET", fmt.Sprintf("/v1/conversations/%d", alice.conv), nil, &info)
	if len(info.Members) != 4 {
		t.Errorf("%d members, want 4", len(info.Members))
	}
}

func TestConcurrentCommits(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	epoch := alice.g.Epoch()
	pcs := []*mls.PendingCommit{}
	for _, m := range []*member{alice, bob} {
		pc, err := m.g.Commit(mls.CommitOptions{ForcePath: true, InlineRatchetTree: true})
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, pc)
	}
	type result struct {
		status int
		pe     *protocol.Error
	}
	results := make([]result, 2)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, m := range []*member{alice, bob} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			st, pe := e.call(m.d.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", m.conv), commitReq(epoch, pcs[i], nil), nil)
			results[i] = result{st, pe}
		}()
	}
	close(start)
	wg.Wait()
	won := -1
	for i, r := range results {
		if r.pe == nil {
			if won >= 0 {
				t.Fatalf("both commits for epoch %d accepted", epoch)
			}
			won = i
			continue
		}
		if r.pe.Code != protocol.CodeStaleEpoch || r.pe.CurrentEpoch == nil || *r.pe.CurrentEpoch != epoch+1 {
			t.Fatalf("losing commit: %d %v, want stale_epoch with current epoch %d", r.status, r.pe, epoch+1)
		}
	}
	if won < 0 {
		t.Fatal("no commit accepted")
	}
	winner, loser := []*member{alice, bob}[won], []*member{alice, bob}[1-won]
	winner.g.MergePendingCommit(pcs[won])
	loser.g.DiscardPendingCommit(pcs[1-won])
	// The loser catches up from the log and the group goes on.
	var es protocol.EntriesResponse
	e.must(loser.d.token, "GET", fmt.Sprintf("/v1/conversations/%d/entries?after=0", loser.conv), nil, &es)
	last := es.Entries[len(es.Entries)-1]
	if last.Kind != protocol.KindHandshake || last.Sender != winner.d.id {
		t.Fatalf("last entry %+v", last)
	}
	p, err := loser.g.Process(last.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := loser.g.MergeStagedCommit(p.Commit); err != nil {
		t.Fatal(err)
	}
	loser.send(t, "after the race")
	t.Logf("winner %s, epoch now %d", winner.d.user.name, loser.g.Epoch())
}

func TestMalformedCommit(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	path := fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv)
	var before protocol.ConversationInfo
	e.must(alice.d.token, "GET", fmt.Sprintf("/v1/conversations/%d", alice.conv), nil, &before)

	pc, err := alice.g.Commit(mls.CommitOptions{ForcePath: true, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	ep := alice.g.Epoch()
	truncated := commitReq(ep, pc, nil)
	truncated.Message = pc.Message[:len(pc.Message)/2]
	pe := e.wantErr(protocol.CodeBadMessage, alice.d.token, "POST", path, truncated)
	t.Logf("truncated: %s", pe.Message)
	flipped := commitReq(ep, pc, nil)
	flipped.Message = append([]byte(nil), pc.Message...)
	flipped.Message[len(flipped.Message)/2] ^= 0x55 // covered by the signature (the membership tag at the end is not checkable without secrets)
	pe = e.wantErr(protocol.CodeBadMessage, alice.d.token, "POST", path, flipped)
	t.Logf("corrupted: %s", pe.Message)
	noGI := commitReq(ep, pc, nil)
	noGI.GroupInfo = nil
	e.wantErr(protocol.CodeBadMessage, alice.d.token, "POST", path, noGI)
	// A GroupInfo of the old epoch does not match the commit.
	wrongGI := commitReq(ep, pc, nil)
	wrongGI.GroupInfo, _ = alice.g.GroupInfo(mls.GroupInfoOptions{InlineRatchetTree: true})
	pe = e.wantErr(protocol.CodeBadMessage, alice.d.token, "POST", path, wrongGI)
	t.Logf("old GroupInfo: %s", pe.Message)
	// A commit from another group.
	other := alice.d.createConversation()
	opc, err := other.g.Commit(mls.CommitOptions{ForcePath: true, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	pe = e.wantErr(protocol.CodeBadMessage, alice.d.token, "POST", path, commitReq(ep, opc, nil))
	t.Logf("foreign group: %s", pe.Message)
	// An application message is not a handshake.
	app, _ := alice.g.Encrypt([]byte("x"), nil)
	e.wantErr(protocol.CodeBadMessage, alice.d.token, "POST", path, protocol.HandshakeRequest{Epoch: ep, Message: app})
	// Bob cannot submit alice's commit (the sender is not the caller).
	e.wantErr(protocol.CodeForbidden, bob.d.token, "POST", path, commitReq(ep, pc, nil))

	var after protocol.ConversationInfo
	e.must(alice.d.token, "GET", fmt.Sprintf("/v1/conversations/%d", alice.conv), nil, &after)
	if after.Epoch != before.Epoch || after.Head != before.Head || len(after.Members) != len(before.Members) {
		t.Fatalf("conversation changed by refused commits: %+v → %+v", before, after)
	}
	// The genuine commit still goes through.
	e.must(alice.d.token, "POST", path, commitReq(ep, pc, nil), nil)
	alice.g.MergePendingCommit(pc)
}

func TestNonMember(t *testing.T) {
	e := newEnv(t, nil)
	alice, _ := setup2(t, e)
	carol := e.register("carol")
	msg, _ := alice.g.Encrypt([]byte("not carol's"), nil)
	base := fmt.Sprintf("/v1/conversations/%d", alice.conv)
	e.wantErr(protocol.CodeNotMember, carol.token, "POST", base+"/messages", protocol.SendRequest{Message: msg})
	e.wantErr(protocol.CodeNotMember, carol.token, "GET", base+"/entries", nil)
	e.wantErr(protocol.CodeNotMember, carol.token, "GET", base, nil)
	e.wantErr(protocol.CodeNotMember, carol.token, "GET", base+"/groupinfo", nil)
	e.wantErr(protocol.CodeNotMember, carol.token, "POST", "/v1/ack", protocol.AckRequest{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: 1}}})
	e.wantErr(protocol.CodeNotFound, carol.token, "GET", "/v1/conversations/999/entries", nil)
	e.wantErr(protocol.CodeNotFound, alice.d.token, "POST", "/v1/conversations/999/messages", protocol.SendRequest{Message: msg})
	ws := carol.dial(t)
	ws.send(&protocol.SubscribeFrame{})
	ws.send(&protocol.SendFrame{ClientID: "c1", Conversation: alice.conv, Message: msg})
	f := ws.must(5 * time.Second)
	ef, ok := f.(*protocol.ErrorFrame)
	if !ok || ef.ClientID != "c1" || ef.Code != protocol.CodeNotMember {
		t.Fatalf("carol's send answered %T %+v", f, f)
	}
	var list protocol.ConversationList
	e.must(carol.token, "GET", "/v1/conversations", nil, &list)
	if len(list.Conversations) != 0 {
		t.Errorf("carol lists %d conversations", len(list.Conversations))
	}
	st, _ := e.svc.Stats(t.Context())
	if st.Entries != 1 { // alice's commit adding bob
		t.Errorf("%d entries stored, want 1", st.Entries)
	}
}

// A device of a member user joins by external commit; a stranger cannot.
func TestExternalJoin(t *testing.T) {
	e := newEnv(t, nil)
	alice, _ := setup2(t, e)
	phone := alice.d.addDevice()
	var gi protocol.GroupInfoResponse
	e.must(phone.token, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo", alice.conv), nil, &gi)
	g, pc, err := mls.JoinExternal(nil, gi.GroupInfo, phone.signer, phone.credential(), mls.ExternalJoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.must(phone.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv), protocol.HandshakeRequest{Epoch: gi.Epoch, Message: pc.Message, GroupInfo: pc.GroupInfo}, nil)
	g.MergePendingCommit(pc)
	var info protocol.ConversationInfo
	e.must(phone.token, "GET", fmt.Sprintf("/v1/conversations/%d", alice.conv), nil, &info)
	if len(info.Members) != 3 || info.Epoch != gi.Epoch+1 {
		t.Fatalf("after external join: %+v", info)
	}
	carol := e.register("carol")
	e.wantErr(protocol.CodeNotMember, carol.token, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo", alice.conv), nil)
}

// A proposal is logged without changing the epoch, and a commit may
// include it by reference; a proposal with a commit's extras is refused.
func TestProposalByReference(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	path := fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv)
	prop, err := bob.g.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	e.wantErr(protocol.CodeBadRequest, bob.d.token, "POST", path, protocol.HandshakeRequest{Epoch: bob.g.Epoch(), Message: prop, GroupInfo: []byte{1}})
	var res protocol.HandshakeResponse
	e.must(bob.d.token, "POST", path, protocol.HandshakeRequest{Epoch: bob.g.Epoch(), Message: prop}, &res)
	if res.Epoch != 1 {
		t.Fatalf("proposal changed the epoch to %d", res.Epoch)
	}
	if _, err := alice.g.Process(prop); err != nil {
		t.Fatal(err)
	}
	pc, err := alice.g.Commit(mls.CommitOptions{IncludePending: true, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	e.must(alice.d.token, "POST", path, commitReq(alice.g.Epoch(), pc, nil), &res)
	alice.g.MergePendingCommit(pc)
	if res.Epoch != 2 {
		t.Fatalf("epoch %d after the commit", res.Epoch)
	}
	var es protocol.EntriesResponse
	e.must(bob.d.token, "GET", fmt.Sprintf("/v1/conversations/%d/entries", alice.conv), nil, &es)
	for _, en := range es.Entries[len(es.Entries)-2:] {
		p, err := bob.g.Process(en.Data)
		if err != nil && en.Sender == bob.d.id {
			continue // bob's own proposal
		}
		if err != nil {
			t.Fatalf("bob processes seq %d: %v", en.Seq, err)
		}
		if p.Commit != nil {
			if err := bob.g.MergeStagedCommit(p.Commit); err != nil {
				t.Fatal(err)
			}
		}
	}
	if bob.g.Epoch() != 2 {
		t.Fatalf("bob at epoch %d", bob.g.Epoch())
	}
}

// A member device that lost its state rejoins by an external commit that
// removes its own old leaf (resync, RFC 9420 §12.4.3.2) and stays a member
// once; an external commit that would leave it in the group twice, or that
// removes another device's leaf, is refused.
func TestResync(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	path := fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv)
	groupInfo := func(d *device) protocol.GroupInfoResponse {
		var gi protocol.GroupInfoResponse
		e.must(d.token, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo", alice.conv), nil, &gi)
		return gi
	}
	join := func(d *device, resync *mls.LeafIndex) (*mls.Group, protocol.HandshakeRequest, error) {
		gi := groupInfo(d)
		g, pc, err := mls.JoinExternal(nil, gi.GroupInfo, d.signer, d.credential(), mls.ExternalJoinOptions{RatchetTree: gi.RatchetTree, ResyncLeaf: resync, ExternalPub: true})
		if err != nil {
			return nil, protocol.HandshakeRequest{}, err
		}
		if err := g.MergePendingCommit(pc); err != nil {
			t.Fatal(err)
		}
		return g, protocol.HandshakeRequest{Epoch: gi.Epoch, Message: pc.Message, GroupInfo: pc.GroupInfo}, nil
	}

	// Without removing its old leaf: refused (the MLS library does not
	// even build it; delivery's TestExternalCommitRules checks the server).
	if _, req, err := join(alice.d, nil); err == nil {
		pe := e.wantErr(protocol.CodeBadMessage, alice.d.token, "POST", path, req)
		t.Logf("external commit without resync: %s", pe.Message)
	} else {
		t.Logf("external commit without resync not built: %v", err)
	}
	// Another device of alice's may not remove bob's leaf.
	phone := alice.d.addDevice()
	bobLeaf := bob.g.OwnLeaf()
	if _, req, err := join(phone, &bobLeaf); err == nil {
		pe := e.wantErr(protocol.CodeBadMessage, phone.token, "POST", path, req)
		t.Logf("external commit removing another device: %s", pe.Message)
	} else {
		t.Logf("external commit removing another device not built: %v", err)
	}
	// Nor alice's own leaf.
	aliceLeaf := alice.g.OwnLeaf()
	if _, req, err := join(phone, &aliceLeaf); err == nil {
		pe := e.wantErr(protocol.CodeBadMessage, phone.token, "POST", path, req)
		t.Logf("external commit removing another device of the user: %s", pe.Message)
	}

	// The resync is accepted; alice is a member once, with bob.
	g, req, err := join(alice.d, &aliceLeaf)
	if err != nil {
		t.Fatal(err)
	}
	var res protocol.HandshakeResponse
	e.must(alice.d.token, "POST", path, req, &res)
	if res.Epoch != g.Epoch() {
		t.Fatalf("epoch %d after resync, group at %d", res.Epoch, g.Epoch())
	}
	var info protocol.ConversationInfo
	e.must(alice.d.token, "GET", fmt.Sprintf("/v1/conversations/%d", alice.conv), nil, &info)
	if len(info.Members) != 2 || !slices.Contains(info.Members, alice.d.id) || !slices.Contains(info.Members, bob.d.id) {
		t.Fatalf("members after resync %v", info.Members)
	}
	// Bob processes the resync, and the two talk in the new epoch.
	var page protocol.EntriesResponse
	e.must(bob.d.token, "GET", fmt.Sprintf("/v1/conversations/%d/entries?after=0", alice.conv), nil, &page)
	last := page.Entries[len(page.Entries)-1]
	if last.Seq != res.Seq || last.Kind != protocol.KindHandshake {
		t.Fatalf("bob's last entry %+v, want the resync at %d", last, res.Seq)
	}
	p, err := bob.g.Process(last.Data)
	if err != nil || p.Commit == nil {
		t.Fatalf("bob processes the resync: %v", err)
	}
	if err := bob.g.MergeStagedCommit(p.Commit); err != nil {
		t.Fatal(err)
	}
	alice.g = g
	sent := alice.send(t, "back")
	e.must(bob.d.token, "GET", fmt.Sprintf("/v1/conversations/%d/entries?after=%d", alice.conv, res.Seq), nil, &page)
	if len(page.Entries) != 1 || page.Entries[0].Seq != sent.Seq {
		t.Fatalf("bob's entries after the resync %+v", page.Entries)
	}
	if m, err := bob.g.Process(page.Entries[0].Data); err != nil || string(m.ApplicationData) != "back" {
		t.Fatalf("bob decrypts %v %v", m, err)
	}
}

// A device reads nothing from before the commit that added it: not over
// HTTP with after=0, not over the WebSocket with an old cursor (from the
// store or from the shared tail).
func TestHistoryBeforeJoin(t *testing.T) {
	e := newEnv(t, nil)
	a := e.register("alice")
	b := e.register("bob")
	b.upload(1, false)
	alice := a.createConversation()
	for i := range 3 {
		alice.send(t, fmt.Sprintf("before %d", i)) // seq 1-3
	}
	alice.add(t, "bob") // seq 4
	bob := b.join(t, alice.conv)
	after := alice.send(t, "after") // seq 5
	var page protocol.EntriesResponse
	e.must(bob.d.token, "GET", fmt.Sprintf("/v1/conversations/%d/entries?after=0", alice.conv), nil, &page)
	if len(page.Entries) != 1 || page.Entries[0].Seq != after.Seq {
		t.Fatalf("bob reads %+v over HTTP, want only seq %d", page.Entries, after.Seq)
	}
	e.must(bob.d.token, "GET", fmt.Sprintf("/v1/conversations/%d/entries?after=2", alice.conv), nil, &page)
	if len(page.Entries) != 1 || page.Entries[0].Seq != after.Seq {
		t.Fatalf("bob reads %+v after 2, want only seq %d", page.Entries, after.Seq)
	}
	for _, restart := range []bool{false, true} {
		if restart {
			e.restart() // an empty tail: from the store
			bob.d.login()
		}
		ws := bob.d.dial(t)
		ws.send(&protocol.SubscribeFrame{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: 0}}})
		got := ws.entries(1, 5*time.Second)
		if got[0].Seq != after.Seq {
			t.Fatalf("restart %v: bob receives seq %d first, want %d", restart, got[0].Seq, after.Seq)
		}
		ws.silent(200 * time.Millisecond)
	}
	// Alice, the creator, still reads the whole log.
	e.must(alice.d.token, "GET", fmt.Sprintf("/v1/conversations/%d/entries?after=0", alice.conv), nil, &page)
	if len(page.Entries) != 5 {
		t.Fatalf("alice reads %d entries, want 5", len(page.Entries))
	}
}

// TestKeyPackagesReplace checks an upload with replace: it replaces the
// caller device's one-time packages of the batch's suite only (not its
// other devices', other users' or other suites'), keeps the last-resort
// package when the batch has none, and deletes nothing when the batch is
// refused.
func TestKeyPackagesReplace(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.register("alice")
	bob := e.register("bob")
	bob2 := bob.addDevice()
	bob.upload(3, true)
	bob2.upload(2, false)
	alice.upload(2, false)
	const cs3 = mls.MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519
	signer3, err := mls.NewSigner(cs3, bob.signer.PrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	other, err := mls.NewKeyPackage(nil, cs3, signer3, bob.credential(), mls.KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.must(bob.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: other.KeyPackage}}}, nil)
	count := func(d *device, suite mls.CipherSuite) protocol.KeyPackageCount {
		t.Helper()
		var c protocol.KeyPackageCount
		e.must(d.token, "GET", fmt.Sprintf("/v1/keypackages/count?cipher_suite=%d", suite), nil, &c)
		return c
	}

	// A refused batch deletes nothing.
	foreign := alice.keyPackage(false)
	e.wantErr(protocol.CodeBadKeyPackage, bob.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{Replace: true, KeyPackages: []protocol.KeyPackageUpload{{Data: bob.keyPackage(false)}, {Data: foreign}}})
	if c := count(bob, cs); c.Available != 3 || !c.LastResort {
		t.Fatalf("pool after a refused replace: %+v, want 3 and a last-resort package", c)
	}

	fresh := bob.keyPackage(false)
	var out protocol.UploadKeyPackagesResponse
	e.must(bob.token, "POST", "/v1/keypackages", protocol.UploadKeyPackagesRequest{Replace: true, KeyPackages: []protocol.KeyPackageUpload{{Data: fresh}}}, &out)
	if out.Count.Available != 1 || !out.Count.LastResort {
		t.Errorf("replace answered %+v, want 1 and the kept last-resort package", out.Count)
	}
	if c := count(bob2, cs); c.Available != 2 {
		t.Errorf("pool of the other device after replace: %+v, want 2", c)
	}
	if c := count(alice, cs); c.Available != 2 {
		t.Errorf("pool of another user after replace: %+v, want 2", c)
	}
	if c := count(bob, cs3); c.Available != 1 {
		t.Errorf("pool of another suite after replace: %+v, want 1", c)
	}
	claim := alice.claim("bob")
	for _, kp := range claim.KeyPackages {
		if kp.Device == bob.id && !bytes.Equal(kp.Data, fresh) {
			t.Errorf("claim after replace handed out an old package of %s", bob.id)
		}
	}
	if len(claim.KeyPackages) != 2 {
		t.Errorf("claim after replace: %d packages, want 2", len(claim.KeyPackages))
	}
	// Without replace, an upload adds to the pool.
	bob.upload(1, false)
	bob.upload(1, false)
	if c := count(bob, cs); c.Available != 2 {
		t.Errorf("pool after two uploads without replace: %+v, want 2", c)
	}
}
