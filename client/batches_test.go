package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/internal/testserver"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/store"
)

// suite1 makes a client use suite 1 only, with a small KeyPackage pool:
// cheap to register by the hundred. (X-Wing sizes are what
// maxCommitAdds is chosen for; the batching is the same on every suite.)
func suite1(cfg *client.Config) {
	cfg.CipherSuites = []mls.CipherSuite{mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519}
	cfg.KeyPackageBatch, cfg.KeyPackageLowWater = 2, 1
}

// registerMany registers n users prefix000… straight through the
// server's core, each with one device and one KeyPackage of suite 1 that
// supports roles, as a client makes them (no client profile: none of them
// runs).
func registerMany(t *testing.T, s *server, prefix string, n int) []string {
	t.Helper()
	ctx := context.Background()
	cs := mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519
	caps := &mls.Capabilities{Extensions: []uint16{protocol.PolicyExtensionType}, Credentials: []mls.CredentialType{mls.CredentialBasic, mls.CredentialX509}}
	names := make([]string, n)
	for i := range names {
		name := fmt.Sprintf("%s%03d", prefix, i)
		names[i] = name
		_, identity, _ := ed25519.GenerateKey(rand.Reader)
		signer, err := mls.GenerateSigner(cs)
		if err != nil {
			t.Fatal(err)
		}
		dev := protocol.DeviceID(fmt.Sprintf("%x", signer.PublicKey()[:8]))
		cert, err := protocol.NewDeviceCertificate(identity, s.name, name, dev, protocol.SchemeEd25519, signer.PublicKey(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		devKey := ed25519.NewKeyFromSeed(signer.PrivateKey())
		_, err = s.svc.Register(ctx, protocol.RegisterRequest{Name: name, IdentityKey: identity.Public().(ed25519.PublicKey), Device: protocol.NewDevice{
			ID: dev, Scheme: protocol.SchemeEd25519, SignatureKey: signer.PublicKey(), Certificate: cert,
			Proof: ed25519.Sign(devKey, protocol.DeviceProofSignedData(s.name, name, dev, cert))}})
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		ch, err := s.svc.Challenge(ctx, protocol.ChallengeRequest{User: name, Device: dev})
		if err != nil {
			t.Fatal(err)
		}
		ss, err := s.svc.CreateSession(ctx, protocol.SessionRequest{User: name, Device: dev, Challenge: ch.Challenge,
			Signature: ed25519.Sign(devKey, protocol.SessionSignedData(s.name, name, dev, ch.Challenge))})
		if err != nil {
			t.Fatal(err)
		}
		sess, err := s.svc.Authenticate(ctx, ss.Token)
		if err != nil {
			t.Fatal(err)
		}
		id, err := client.EncodeCredential(s.name, cert)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := mls.NewKeyPackage(nil, cs, signer, mls.BasicCredential(id), mls.KeyPackageOptions{Capabilities: caps})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.svc.UploadKeyPackages(ctx, sess, protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: kp.KeyPackage}}}); err != nil {
			t.Fatalf("upload KeyPackage of %s: %v", name, err)
		}
	}
	return names
}

// TestAddManyUsers: one AddUsers call adds 600 users to a channel
// through a server with parleyd's default rate limits (requests, claims
// and lookups per account): the lookups and claims go in batches, the
// devices in several commits, with progress reported; every user ends up
// a member, as the adding client and the server see it. With -short it
// adds 160 users: one batch of lookups and claims (a batch holds 500),
// still two commits (a commit adds 150 devices).
func TestAddManyUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := testserver.StartWith(t, testserver.Options{DefaultLimits: true})
	s := &server{srv: ts.HTTP, url: ts.URL, fingerprint: ts.Fingerprint, name: ts.Name, st: ts.Store, svc: ts.Service}
	n, batches := 600, 2
	if testing.Short() {
		n, batches = 160, 1
	}
	t0 := time.Now()
	names := registerMany(t, s, "member", n)
	t.Logf("registered in %v", time.Since(t0))
	alice := openDeviceConfig(t, s.url, s.fingerprint, t.TempDir(), "alice", suite1)
	if _, err := alice.c.Register(ctx, s.url, "", "alice"); err != nil {
		t.Fatal(err)
	}
	conv, err := alice.c.NewChannel(ctx, "announcements")
	if err != nil {
		t.Fatal(err)
	}
	before, err := alice.c.Conversation(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	var stages []client.Progress
	pctx := client.WithProgress(ctx, func(p client.Progress) { stages = append(stages, p) })
	t0 = time.Now()
	if err := alice.c.AddUsers(pctx, conv, names...); err != nil {
		t.Fatal(err)
	}
	t.Logf("added in %v", time.Since(t0))
	after, err := alice.c.Conversation(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Members) != n+1 {
		t.Errorf("%d members, want %d", len(after.Members), n+1)
	}
	// The Adds' commits; alice's self-updates that fill the tree
	// (client/fill.go) may follow them, each an epoch too.
	commits := uint64((n + client.MaxCommitAdds - 1) / client.MaxCommitAdds)
	if epochs := after.Epoch - before.Epoch; commits < 2 || epochs < commits {
		t.Errorf("the adds took %d epochs, want at least %d commits", epochs, commits)
	}
	if ms, err := s.st.Members(ctx, store.ConversationID(conv)); err != nil || len(ms) != n+1 {
		t.Errorf("the server lists %d member devices (%v), want %d", len(ms), err, n+1)
	}
	var lookups, claims, commitReports int
	last := map[string]client.Progress{}
	for _, p := range stages {
		switch p.Stage {
		case "lookup":
			lookups++
		case "claim":
			claims++
		case "commit":
			commitReports++
		}
		last[p.Stage] = p
	}
	if lookups < batches || claims < batches || uint64(commitReports) != commits {
		t.Errorf("progress: %d lookup, %d claim and %d commit reports for %d commits", lookups, claims, commitReports, commits)
	}
	for _, stage := range []string{"lookup", "claim", "commit"} {
		if p := last[stage]; p.Done != n || p.Total != n {
			t.Errorf("last %s report %+v, want %d of %d", stage, p, n, n)
		}
	}
	t.Logf("%d users added by %d commits", n, commits)
}

// TestAddUsersRateLimited: against a server whose claims_per_user bucket
// holds 50 users and refills 50 a second, adding 60 users at once still
// succeeds: the client halves a batch the bucket can never hold
// (too_large), and waits the Retry-After of a batch it cannot pay yet,
// reporting the wait.
func TestAddUsersRateLimited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := testserver.StartWith(t, testserver.Options{DefaultLimits: true, HTTP: func(h *httpapi.Config) {
		h.RateLimits.ClaimsPerUser = httpapi.Rate{PerSecond: 5, Burst: 50} // the second half waits about 2 s
	}})
	s := &server{srv: ts.HTTP, url: ts.URL, fingerprint: ts.Fingerprint, name: ts.Name, st: ts.Store, svc: ts.Service}
	names := registerMany(t, s, "member", 60)
	alice := openDeviceConfig(t, s.url, s.fingerprint, t.TempDir(), "alice", suite1)
	if _, err := alice.c.Register(ctx, s.url, "", "alice"); err != nil {
		t.Fatal(err)
	}
	conv, err := alice.c.NewGroup(ctx, "team")
	if err != nil {
		t.Fatal(err)
	}
	var waits int
	pctx := client.WithProgress(ctx, func(p client.Progress) {
		if p.Stage == "wait" && p.Wait > 0 {
			waits++
		}
	})
	if err := alice.c.AddUsers(pctx, conv, names...); err != nil {
		t.Fatal(err)
	}
	cv, err := alice.c.Conversation(ctx, conv)
	if err != nil || len(cv.Members) != 61 {
		t.Fatalf("%d members (%v), want 61", len(cv.Members), err)
	}
	if waits == 0 {
		t.Error("no wait for the rate limit was reported")
	}
}
