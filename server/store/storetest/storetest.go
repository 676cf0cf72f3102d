// Package storetest is the conformance suite every server store backend
// runs: Run exercises each operation of store.Store and each atomicity and
// uniqueness rule, then checks the backend's invariants after every
// subtest, as bbolt checks its database after every test.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/server/store"
)

// Checker is implemented by backends that can check their own internal
// consistency (contiguous logs, cursors within logs, no dangling rows).
// Run requires it.
type Checker interface {
	// CheckInvariants returns every violation found.
	CheckInvariants(ctx context.Context) error
}

// t0 is the base time of the suite.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const suite = 1

// Run runs the conformance suite. open returns a fresh, empty store for
// each subtest; Run closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Users", testUsers},
		{"InviteUses", testInviteUses},
		{"InviteExpiry", testInviteExpiry},
		{"DeviceUniqueness", testDeviceUniqueness},
		{"RevokeAndDisable", testRevokeAndDisable},
		{"RevocationStatement", testRevocationStatement},
		{"InactiveMembers", testInactiveMembers},
		{"Challenges", testChallenges},
		{"Sessions", testSessions},
		{"KeyPackageClaim", testKeyPackageClaim},
		{"KeyPackageReplace", testKeyPackageReplace},
		{"KeyPackageConcurrentClaims", testConcurrentClaims},
		{"KeyPackageClaimBudget", testClaimBudget},
		{"KeyPackageClaimBudgetConcurrent", testClaimBudgetConcurrent},
		{"KeyPackageClaimBatch", testClaimBatch},
		{"KeyPackageClaimBatchConcurrent", testClaimBatchConcurrent},
		{"Conversations", testConversations},
		{"CommitStaleEpoch", testCommitStale},
		{"CommitConcurrent", testCommitConcurrent},
		{"CommitFailureLeavesNothing", testCommitFailure},
		{"Proposal", testProposal},
		{"PendingProposals", testPendingProposals},
		{"ProposalConcurrent", testProposalConcurrent},
		{"HandshakeByHash", testHandshakeByHash},
		{"TreeNodes", testTreeNodes},
		{"TreeChanges", testTreeChanges},
		{"TreeHistory", testTreeHistory},
		{"TreeSnapshots", testTreeSnapshots},
		{"Departed", testDeparted},
		{"DepartedReadded", testDepartedReadded},
		{"Joined", testJoined},
		{"AppendEntries", testAppend},
		{"AppendConcurrent", testAppendConcurrent},
		{"Ack", testAck},
		{"AckBatch", testAckBatch},
		{"Inbox", testInbox},
		{"PruneAcked", testPruneAcked},
		{"PruneRetention", testPruneRetention},
		{"PruneTimer", testPruneTimer},
		{"Blobs", testBlobs},
		{"BlobQuota", testBlobQuota},
		{"BlobQuotaConcurrent", testBlobQuotaConcurrent},
		{"BlobExpiry", testBlobExpiry},
		{"LinkMailboxes", testLinkMailboxes},
		{"LinkMailboxConcurrent", testLinkMailboxConcurrent},
		{"Stats", testStats},
		{"Backup", testBackup},
		{"Cancelled", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			c, ok := s.(Checker)
			if !ok {
				t.Fatalf("storetest: %T does not implement storetest.Checker", s)
			}
			t.Cleanup(func() {
				if err := c.CheckInvariants(context.Background()); err != nil {
					t.Errorf("invariants after %s: %v", tc.name, err)
				}
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// ctx is the context of every call.
var ctx = context.Background()

// key returns a distinct test key.
func key(s string) []byte { return []byte("key:" + s) }

// mkUser creates a user with one device named name+"-1".
func mkUser(t *testing.T, s store.Store, name string) (store.User, store.Device) {
	t.Helper()
	u, d, err := s.CreateUser(ctx, store.NewUser{Name: name, IdentityKey: key("id-" + name), Created: t0,
		Device: store.Device{ID: store.DeviceID(name + "-1"), SignatureKey: key(name + "-1"), Certificate: []byte("cert"), Created: t0}})
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return u, d
}

// mkDevice adds a device to a user.
func mkDevice(t *testing.T, s store.Store, u store.User, id string) store.Device {
	t.Helper()
	d, err := s.AddDevice(ctx, store.Device{ID: store.DeviceID(id), User: u.ID, SignatureKey: key(id), Certificate: []byte("cert"), Created: t0})
	if err != nil {
		t.Fatalf("add device %s: %v", id, err)
	}
	return d
}

// mkConv creates a conversation created by device d.
func mkConv(t *testing.T, s store.Store, d store.DeviceID, gid string) store.Conversation {
	t.Helper()
	c, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte(gid), Suite: suite, GroupInfo: []byte("gi0"), Tree: []store.TreeNode{{Index: 0, Data: []byte("leaf0")}}, FollowerState: []byte("fs0"), Creator: d, Created: t0})
	if err != nil {
		t.Fatalf("create conversation %s: %v", gid, err)
	}
	return c
}

// add commits the addition of devices to a conversation at its epoch.
func add(t *testing.T, s store.Store, c store.ConversationID, by store.DeviceID, devs ...store.DeviceID) store.Entry {
	t.Helper()
	conv, err := s.Conversation(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var ws []store.Welcome
	for _, d := range devs {
		ws = append(ws, store.Welcome{Device: d, Data: []byte("welcome-" + string(d))})
	}
	e, err := s.Commit(ctx, store.Commit{Conversation: c, Epoch: conv.Epoch, Sender: by, Data: []byte("commit"), GroupInfo: []byte("gi"), Tree: []store.TreeNode{{Index: 2, Data: []byte("leaf2")}}, FollowerState: []byte("fs"), Add: devs, Welcomes: ws, Created: t0})
	if err != nil {
		t.Fatalf("commit adding %v: %v", devs, err)
	}
	return e
}

// send appends application entries from one sender and fails on any error.
func send(t *testing.T, s store.Store, c store.ConversationID, from store.DeviceID, n int, at time.Time) []store.Entry {
	t.Helper()
	var batch []store.NewEntry
	for i := range n {
		batch = append(batch, store.NewEntry{Conversation: c, Sender: from, Data: []byte(fmt.Sprintf("m%d", i)), Created: at})
	}
	res, err := s.AppendEntries(ctx, batch)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	var out []store.Entry
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("append: %v", r.Err)
		}
		out = append(out, r.Entry)
	}
	return out
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

// must fails on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func testUsers(t *testing.T, s store.Store) {
	u, d := mkUser(t, s, "alice")
	if u.ID <= 0 || d.User != u.ID || !d.Active() {
		t.Fatalf("created %+v %+v", u, d)
	}
	got, err := s.UserByName(ctx, "alice")
	must(t, "user by name", err)
	if got.ID != u.ID || !bytes.Equal(got.IdentityKey, key("id-alice")) || !got.Created.Equal(t0) || got.Admin || got.Disabled {
		t.Errorf("user by name: %+v", got)
	}
	if got, err := s.User(ctx, u.ID); err != nil || got.Name != "alice" {
		t.Errorf("user by id: %+v %v", got, err)
	}
	_, err = s.UserByName(ctx, "nobody")
	wantErr(t, "unknown user", err, store.ErrNotFound)
	_, err = s.User(ctx, 9999)
	wantErr(t, "unknown user id", err, store.ErrNotFound)
	_, _, err = s.CreateUser(ctx, store.NewUser{Name: "alice", IdentityKey: key("x"), Created: t0, Device: store.Device{ID: "other", SignatureKey: key("other"), Created: t0}})
	wantErr(t, "duplicate name", err, store.ErrConflict)
	if _, err := s.Device(ctx, "other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failed registration left device behind: %v", err)
	}
	mkUser(t, s, "bob")
	must(t, "set admin", s.SetUserAdmin(ctx, u.ID, true))
	users, err := s.Users(ctx)
	must(t, "users", err)
	if len(users) != 2 || users[0].Name != "alice" || !users[0].Admin || users[1].Name != "bob" {
		t.Errorf("users: %+v", users)
	}
	wantErr(t, "admin of unknown user", s.SetUserAdmin(ctx, 9999, true), store.ErrNotFound)
	d2 := mkDevice(t, s, u, "alice-2")
	devs, err := s.Devices(ctx, u.ID)
	must(t, "devices", err)
	if len(devs) != 2 || devs[0].ID != d.ID || devs[1].ID != d2.ID {
		t.Errorf("devices: %+v", devs)
	}
	if got, err := s.DeviceByKey(ctx, key("alice-2")); err != nil || got.ID != "alice-2" {
		t.Errorf("device by key: %+v %v", got, err)
	}
	_, err = s.AddDevice(ctx, store.Device{ID: "x", User: 9999, SignatureKey: key("x"), Created: t0})
	wantErr(t, "device of unknown user", err, store.ErrNotFound)
}

// invite creates an invite with the code hash.
func invite(t *testing.T, s store.Store, hash string, uses int, expires time.Time) store.Invite {
	t.Helper()
	inv, err := s.CreateInvite(ctx, store.Invite{CodeHash: []byte(hash), UsesLeft: uses, Expires: expires, Created: t0})
	must(t, "create invite", err)
	return inv
}

// register registers name with an invite hash at a time.
func register(s store.Store, name, hash string, at time.Time) error {
	var h []byte
	if hash != "" {
		h = []byte(hash)
	}
	_, _, err := s.CreateUser(ctx, store.NewUser{Name: name, IdentityKey: key("id-" + name), Created: at, InviteHash: h,
		Device: store.Device{ID: store.DeviceID(name + "-1"), SignatureKey: key(name + "-1"), Created: at}})
	return err
}

func testInviteUses(t *testing.T, s store.Store) {
	inv := invite(t, s, "h2", 2, t0.Add(time.Hour))
	if inv.ID <= 0 {
		t.Errorf("invite id %d", inv.ID)
	}
	_, err := s.CreateInvite(ctx, store.Invite{CodeHash: []byte("h2"), UsesLeft: 1, Expires: t0.Add(time.Hour)})
	wantErr(t, "duplicate invite", err, store.ErrConflict)
	wantErr(t, "unknown invite", register(s, "x", "nope", t0), store.ErrInviteInvalid)
	must(t, "first use", register(s, "a", "h2", t0))
	// A failing registration must not consume a use.
	wantErr(t, "taken name", register(s, "a", "h2", t0), store.ErrConflict)
	must(t, "second use", register(s, "b", "h2", t0))
	wantErr(t, "third use", register(s, "c", "h2", t0), store.ErrInviteInvalid)
	if _, err := s.UserByName(ctx, "c"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused registration created the user: %v", err)
	}
	invs, err := s.Invites(ctx)
	must(t, "invites", err)
	if len(invs) != 1 || invs[0].UsesLeft != 0 {
		t.Errorf("invites: %+v", invs)
	}
	// Concurrent registrations on a 3-use invite: exactly 3 succeed.
	invite(t, s, "h3", 3, t0.Add(time.Hour))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = register(s, fmt.Sprintf("u%d", i), "h3", t0) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, store.ErrInviteInvalid) {
			t.Errorf("concurrent registration: %v", err)
		}
	}
	if ok != 3 {
		t.Errorf("%d registrations on a 3-use invite", ok)
	}
	must(t, "delete invite", s.DeleteInvite(ctx, inv.ID))
	wantErr(t, "delete again", s.DeleteInvite(ctx, inv.ID), store.ErrNotFound)
}

func testInviteExpiry(t *testing.T, s store.Store) {
	invite(t, s, "h", 5, t0.Add(time.Hour))
	wantErr(t, "expired invite", register(s, "late", "h", t0.Add(time.Hour)), store.ErrInviteInvalid)
	must(t, "valid invite", register(s, "early", "h", t0.Add(time.Hour-time.Second)))
	invite(t, s, "used", 1, t0.Add(48*time.Hour))
	must(t, "use", register(s, "u", "used", t0))
	r, err := s.Prune(ctx, store.PruneOptions{Now: t0.Add(2 * time.Hour)})
	must(t, "prune", err)
	if r.Invites != 2 {
		t.Errorf("pruned %d invites, want 2 (one expired, one used up)", r.Invites)
	}
	// Open registration needs no invite.
	must(t, "open registration", register(s, "open", "", t0))
}

func testDeviceUniqueness(t *testing.T, s store.Store) {
	u, _ := mkUser(t, s, "alice")
	v, _ := mkUser(t, s, "bob")
	_, err := s.AddDevice(ctx, store.Device{ID: "new", User: v.ID, SignatureKey: key("alice-1"), Created: t0})
	wantErr(t, "signature key of another user's device", err, store.ErrConflict)
	_, err = s.AddDevice(ctx, store.Device{ID: "alice-1", User: v.ID, SignatureKey: key("fresh"), Created: t0})
	wantErr(t, "taken device id", err, store.ErrConflict)
	_, _, err = s.CreateUser(ctx, store.NewUser{Name: "carol", IdentityKey: key("c"), Created: t0, Device: store.Device{ID: "c1", SignatureKey: key("bob-1"), Created: t0}})
	wantErr(t, "registration with a taken key", err, store.ErrConflict)
	if _, err := s.UserByName(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failed registration left the user behind: %v", err)
	}
	mkDevice(t, s, u, "alice-2")
	// Revoked devices keep their key: it stays taken.
	must(t, "revoke", s.RevokeDevice(ctx, "alice-2", t0, nil))
	_, err = s.AddDevice(ctx, store.Device{ID: "alice-3", User: u.ID, SignatureKey: key("alice-2"), Created: t0})
	wantErr(t, "key of a revoked device", err, store.ErrConflict)
}

func testRevokeAndDisable(t *testing.T, s store.Store) {
	u, d := mkUser(t, s, "alice")
	d2 := mkDevice(t, s, u, "alice-2")
	must(t, "session", s.CreateSession(ctx, store.Session{TokenHash: []byte("t2"), Device: d2.ID, User: u.ID, Created: t0, Expires: t0.Add(time.Hour)}))
	must(t, "session", s.CreateSession(ctx, store.Session{TokenHash: []byte("t1"), Device: d.ID, User: u.ID, Created: t0, Expires: t0.Add(time.Hour)}))
	must(t, "kp", s.AddKeyPackages(ctx, []store.KeyPackage{{Ref: []byte("r1"), Device: d2.ID, Suite: suite, Data: []byte("kp"), Created: t0}}))
	must(t, "revoke", s.RevokeDevice(ctx, d2.ID, t0.Add(time.Minute), nil))
	must(t, "revoke again", s.RevokeDevice(ctx, d2.ID, t0.Add(time.Hour), nil))
	got, err := s.Device(ctx, d2.ID)
	must(t, "device", err)
	if got.Active() || !got.Revoked.Equal(t0.Add(time.Minute)) {
		t.Errorf("revoked device: %+v", got)
	}
	_, err = s.Session(ctx, []byte("t2"), t0)
	wantErr(t, "session of revoked device", err, store.ErrNotFound)
	if c, _ := s.CountKeyPackages(ctx, d2.ID, suite, t0); c.Available != 0 {
		t.Errorf("revoked device kept %d key packages", c.Available)
	}
	err = s.AddKeyPackages(ctx, []store.KeyPackage{{Ref: []byte("r2"), Device: d2.ID, Suite: suite, Data: []byte("kp"), Created: t0}})
	wantErr(t, "key package of revoked device", err, store.ErrNotFound)
	wantErr(t, "revoke unknown", s.RevokeDevice(ctx, "nope", t0, nil), store.ErrNotFound)

	if _, err := s.Session(ctx, []byte("t1"), t0); err != nil {
		t.Fatalf("session: %v", err)
	}
	must(t, "disable device", s.SetDeviceDisabled(ctx, d.ID, true))
	_, err = s.Session(ctx, []byte("t1"), t0)
	wantErr(t, "session of disabled device", err, store.ErrNotFound)
	must(t, "enable device", s.SetDeviceDisabled(ctx, d.ID, false))
	must(t, "session", s.CreateSession(ctx, store.Session{TokenHash: []byte("t3"), Device: d.ID, User: u.ID, Created: t0, Expires: t0.Add(time.Hour)}))
	must(t, "disable user", s.SetUserDisabled(ctx, u.ID, true))
	_, err = s.Session(ctx, []byte("t3"), t0)
	wantErr(t, "session of disabled user", err, store.ErrNotFound)
	if got, _ := s.User(ctx, u.ID); !got.Disabled {
		t.Error("user not disabled")
	}
	wantErr(t, "disable unknown device", s.SetDeviceDisabled(ctx, "nope", true), store.ErrNotFound)

	// A device's sealed name is kept as given, replaced, and removed.
	if got, _ := s.Device(ctx, d.ID); got.SealedName != nil {
		t.Errorf("a new device's sealed name = %x, want none", got.SealedName)
	}
	must(t, "set device name", s.SetDeviceName(ctx, d.ID, []byte{1, 0, 2}))
	must(t, "set device name", s.SetDeviceName(ctx, d.ID, []byte{1, 2, 3, 0}))
	if got, err := s.Device(ctx, d.ID); err != nil || string(got.SealedName) != "\x01\x02\x03\x00" {
		t.Errorf("sealed name = %x, %v", got.SealedName, err)
	}
	if ds, err := s.Devices(ctx, u.ID); err != nil || len(ds) == 0 || string(ds[0].SealedName) != "\x01\x02\x03\x00" {
		t.Errorf("devices' sealed name = %+v, %v", ds, err)
	}
	must(t, "remove device name", s.SetDeviceName(ctx, d.ID, nil))
	if got, _ := s.Device(ctx, d.ID); got.SealedName != nil {
		t.Errorf("a removed sealed name = %x", got.SealedName)
	}
	wantErr(t, "name unknown device", s.SetDeviceName(ctx, "nope", []byte{1}), store.ErrNotFound)
	wantErr(t, "disable unknown user", s.SetUserDisabled(ctx, 9999, true), store.ErrNotFound)
}

func testChallenges(t *testing.T, s store.Store) {
	_, d := mkUser(t, s, "alice")
	must(t, "create", s.CreateChallenge(ctx, store.Challenge{Nonce: []byte("n1"), Device: d.ID, Expires: t0.Add(time.Minute)}))
	wantErr(t, "duplicate nonce", s.CreateChallenge(ctx, store.Challenge{Nonce: []byte("n1"), Device: d.ID, Expires: t0.Add(time.Minute)}), store.ErrConflict)
	c, err := s.ConsumeChallenge(ctx, []byte("n1"), d.ID, t0)
	if err != nil || c.Device != d.ID || !c.Expires.Equal(t0.Add(time.Minute)) {
		t.Fatalf("consume: %+v %v", c, err)
	}
	_, err = s.ConsumeChallenge(ctx, []byte("n1"), d.ID, t0)
	wantErr(t, "second use", err, store.ErrNotFound)
	must(t, "create", s.CreateChallenge(ctx, store.Challenge{Nonce: []byte("n2"), Device: d.ID, Expires: t0.Add(time.Minute)}))
	_, err = s.ConsumeChallenge(ctx, []byte("n2"), d.ID, t0.Add(time.Minute))
	wantErr(t, "expired", err, store.ErrNotFound)
	must(t, "create", s.CreateChallenge(ctx, store.Challenge{Nonce: []byte("n3"), Device: d.ID, Expires: t0.Add(time.Minute)}))
	_, err = s.ConsumeChallenge(ctx, []byte("n3"), "other", t0)
	wantErr(t, "other device", err, store.ErrNotFound)
	_, err = s.ConsumeChallenge(ctx, []byte("n3"), d.ID, t0)
	wantErr(t, "after a wrong-device attempt", err, store.ErrNotFound)
	// Concurrent consumers: exactly one wins.
	must(t, "create", s.CreateChallenge(ctx, store.Challenge{Nonce: []byte("n4"), Device: d.ID, Expires: t0.Add(time.Minute)}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 6 {
		wg.Go(func() {
			if _, err := s.ConsumeChallenge(ctx, []byte("n4"), d.ID, t0); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("challenge consumed %d times", wins)
	}
	must(t, "create", s.CreateChallenge(ctx, store.Challenge{Nonce: []byte("n5"), Device: d.ID, Expires: t0.Add(time.Minute)}))
	r, err := s.Prune(ctx, store.PruneOptions{Now: t0.Add(time.Minute)})
	if err != nil || r.Challenges != 1 {
		t.Errorf("prune challenges: %+v %v", r, err)
	}
}

func testSessions(t *testing.T, s store.Store) {
	u, d := mkUser(t, s, "alice")
	ss := store.Session{TokenHash: []byte("tok"), Device: d.ID, User: u.ID, Created: t0, Expires: t0.Add(time.Hour)}
	must(t, "create", s.CreateSession(ctx, ss))
	wantErr(t, "duplicate", s.CreateSession(ctx, ss), store.ErrConflict)
	got, err := s.Session(ctx, []byte("tok"), t0.Add(time.Minute))
	if err != nil || got.Device != d.ID || got.User != u.ID || !got.Expires.Equal(ss.Expires) || !got.Created.Equal(t0) {
		t.Errorf("session: %+v %v", got, err)
	}
	_, err = s.Session(ctx, []byte("tok"), t0.Add(time.Hour))
	wantErr(t, "expired", err, store.ErrNotFound)
	_, err = s.Session(ctx, []byte("nope"), t0)
	wantErr(t, "unknown", err, store.ErrNotFound)
	if dev, err := s.Device(ctx, d.ID); err != nil || !dev.LastSeen.Equal(t0) {
		t.Errorf("last seen after a session: %v %v", dev.LastSeen, err)
	}
	must(t, "create", s.CreateSession(ctx, store.Session{TokenHash: []byte("tok3"), Device: d.ID, User: u.ID, Created: t0.Add(time.Minute), Expires: t0.Add(time.Hour)}))
	must(t, "create", s.CreateSession(ctx, store.Session{TokenHash: []byte("tok2"), Device: d.ID, User: u.ID, Created: t0, Expires: t0.Add(2 * time.Hour)}))
	if devs, err := s.Devices(ctx, u.ID); err != nil || len(devs) != 1 || !devs[0].LastSeen.Equal(t0.Add(time.Minute)) {
		t.Errorf("last seen after a later and an earlier session: %+v %v", devs, err)
	}
	must(t, "delete", s.DeleteSession(ctx, []byte("tok3")))
	must(t, "delete", s.DeleteSession(ctx, []byte("tok2")))
	_, err = s.Session(ctx, []byte("tok2"), t0)
	wantErr(t, "deleted", err, store.ErrNotFound)
	r, err := s.Prune(ctx, store.PruneOptions{Now: t0.Add(time.Hour)})
	if err != nil || r.Sessions != 1 {
		t.Errorf("prune sessions: %+v %v", r, err)
	}
}

// kp is a test KeyPackage.
func kp(ref string, d store.DeviceID, lastResort bool, created time.Time) store.KeyPackage {
	return store.KeyPackage{Ref: []byte(ref), Device: d, Suite: suite, Data: []byte("data-" + ref), LastResort: lastResort, Expires: t0.Add(24 * time.Hour), Created: created}
}

func testKeyPackageClaim(t *testing.T, s store.Store) {
	u, d1 := mkUser(t, s, "alice")
	d2 := mkDevice(t, s, u, "alice-2")
	d3 := mkDevice(t, s, u, "alice-3")
	must(t, "upload", s.AddKeyPackages(ctx, []store.KeyPackage{
		kp("a1", d1.ID, false, t0), kp("a2", d1.ID, false, t0.Add(time.Second)), kp("alr", d1.ID, true, t0),
		kp("b1", d2.ID, false, t0), kp("blr", d2.ID, true, t0),
		{Ref: []byte("other-suite"), Device: d3.ID, Suite: 2, Data: []byte("x"), Expires: t0.Add(time.Hour), Created: t0},
	}))
	err := s.AddKeyPackages(ctx, []store.KeyPackage{kp("new", d1.ID, false, t0), kp("a1", d1.ID, false, t0)})
	wantErr(t, "duplicate ref", err, store.ErrConflict)
	if c, _ := s.CountKeyPackages(ctx, d1.ID, suite, t0); c.Available != 2 || !c.LastResort {
		t.Errorf("failed batch changed the pool: %+v", c)
	}
	err = s.AddKeyPackages(ctx, []store.KeyPackage{kp("zz", "nodevice", false, t0)})
	wantErr(t, "unknown device", err, store.ErrNotFound)

	claim := func(want ...string) {
		t.Helper()
		got, err := s.ClaimKeyPackages(ctx, u.ID, suite, t0)
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		var refs []string
		for _, k := range got {
			refs = append(refs, string(k.Ref))
			if !bytes.Equal(k.Data, []byte("data-"+string(k.Ref))) || k.Suite != suite {
				t.Errorf("claimed %+v", k)
			}
		}
		if fmt.Sprint(refs) != fmt.Sprint(want) {
			t.Errorf("claimed %v, want %v", refs, want)
		}
	}
	claim("a1", "b1") // oldest one-time first; d3 has none of the suite
	claim("a2", "blr")
	claim("alr", "blr") // last resort kept
	if c, _ := s.CountKeyPackages(ctx, d1.ID, suite, t0); c.Available != 0 || !c.LastResort {
		t.Errorf("pool after claims: %+v", c)
	}
	// A new last-resort package replaces the old one.
	must(t, "replace last resort", s.AddKeyPackages(ctx, []store.KeyPackage{kp("alr2", d1.ID, true, t0)}))
	claim("alr2", "blr")
	// Expired packages are never handed out.
	must(t, "upload", s.AddKeyPackages(ctx, []store.KeyPackage{{Ref: []byte("old"), Device: d3.ID, Suite: suite, Data: []byte("data-old"), Expires: t0.Add(time.Minute), Created: t0}}))
	got, err := s.ClaimKeyPackages(ctx, u.ID, suite, t0.Add(time.Hour))
	must(t, "claim later", err)
	for _, k := range got {
		if string(k.Ref) == "old" {
			t.Error("claimed an expired package")
		}
	}
	// A disabled device is skipped.
	must(t, "disable", s.SetDeviceDisabled(ctx, d2.ID, true))
	claim("alr2", "old")
	v, _ := mkUser(t, s, "bob")
	_, err = s.ClaimKeyPackages(ctx, v.ID, suite, t0)
	wantErr(t, "empty pool", err, store.ErrNoKeyPackage)
	_, err = s.ClaimKeyPackages(ctx, 9999, suite, t0)
	wantErr(t, "unknown user", err, store.ErrNotFound)
	r, err := s.Prune(ctx, store.PruneOptions{Now: t0.Add(25 * time.Hour)})
	if err != nil || r.KeyPackages != 3 { // both last-resort packages and the other suite's
		t.Errorf("prune expired key packages: %+v %v", r, err)
	}
}

// testKeyPackageReplace checks ReplaceKeyPackages: the batch replaces the
// one-time packages of its device and suites only, a last-resort package
// only when it carries one, and a refused batch deletes nothing.
func testKeyPackageReplace(t *testing.T, s store.Store) {
	u, d1 := mkUser(t, s, "alice")
	d2 := mkDevice(t, s, u, "alice-2")
	other := func(ref string, d store.DeviceID) store.KeyPackage {
		k := kp(ref, d, false, t0)
		k.Suite = 2
		return k
	}
	must(t, "upload", s.AddKeyPackages(ctx, []store.KeyPackage{
		kp("old1", d1.ID, false, t0), kp("old2", d1.ID, false, t0), kp("oldlr", d1.ID, true, t0),
		other("old-suite2", d1.ID), kp("d2-1", d2.ID, false, t0), kp("d2lr", d2.ID, true, t0),
	}))
	count := func(d store.DeviceID, suite uint16, want int, wantLR bool) {
		t.Helper()
		c, err := s.CountKeyPackages(ctx, d, suite, t0)
		if err != nil || c.Available != want || c.LastResort != wantLR {
			t.Errorf("pool of %s, suite %d: %+v %v; want %d one-time, last resort %v", d, suite, c, err, want, wantLR)
		}
	}
	// A refused batch (a ref uploaded before) deletes nothing.
	err := s.ReplaceKeyPackages(ctx, []store.KeyPackage{kp("new1", d1.ID, false, t0), kp("d2-1", d1.ID, false, t0)})
	wantErr(t, "replace with a duplicate ref", err, store.ErrConflict)
	count(d1.ID, suite, 2, true)
	// Without a last-resort package in the batch, the old one stays.
	must(t, "replace", s.ReplaceKeyPackages(ctx, []store.KeyPackage{kp("new1", d1.ID, false, t0.Add(time.Second))}))
	count(d1.ID, suite, 1, true)
	count(d1.ID, 2, 1, false)
	count(d2.ID, suite, 1, true)
	got, err := s.ClaimKeyPackages(ctx, u.ID, suite, t0)
	must(t, "claim", err)
	if len(got) != 2 || string(got[0].Ref) != "new1" || string(got[1].Ref) != "d2-1" {
		t.Errorf("claimed %v after replace, want new1 and d2-1", got)
	}
	got, err = s.ClaimKeyPackages(ctx, u.ID, suite, t0)
	must(t, "claim", err)
	if len(got) != 2 || string(got[0].Ref) != "oldlr" || string(got[1].Ref) != "d2lr" {
		t.Errorf("claimed %v, want the last-resort packages oldlr and d2lr", got)
	}
	// With one, it is replaced too, and a claimed last-resort mark goes.
	must(t, "replace", s.ReplaceKeyPackages(ctx, []store.KeyPackage{kp("new2", d1.ID, false, t0), kp("new3", d1.ID, false, t0), kp("newlr", d1.ID, true, t0)}))
	if c, _ := s.CountKeyPackages(ctx, d1.ID, suite, t0); c.Available != 2 || !c.LastResort || c.LastResortClaimed {
		t.Errorf("pool after replace with a last-resort package: %+v", c)
	}
	for _, want := range []string{"new2", "new3", "newlr"} {
		got, err := s.ClaimKeyPackages(ctx, u.ID, suite, t0)
		must(t, "claim", err)
		if len(got) == 0 || string(got[0].Ref) != want || got[0].Device != d1.ID {
			t.Errorf("claimed %v, want %s first", got, want)
		}
	}
	// A replace for another suite leaves this one.
	must(t, "replace suite 2", s.ReplaceKeyPackages(ctx, []store.KeyPackage{other("new-suite2", d1.ID)}))
	count(d1.ID, 2, 1, false)
	count(d1.ID, suite, 0, true)
	err = s.ReplaceKeyPackages(ctx, []store.KeyPackage{kp("zz", "nodevice", false, t0)})
	wantErr(t, "unknown device", err, store.ErrNotFound)
}

func testConcurrentClaims(t *testing.T, s store.Store) {
	u, d1 := mkUser(t, s, "alice")
	d2 := mkDevice(t, s, u, "alice-2")
	const n = 40
	var kps []store.KeyPackage
	for i := range n {
		kps = append(kps, kp(fmt.Sprintf("a%03d", i), d1.ID, false, t0), kp(fmt.Sprintf("b%03d", i), d2.ID, false, t0))
	}
	kps = append(kps, kp("alr", d1.ID, true, t0))
	must(t, "upload", s.AddKeyPackages(ctx, kps))
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for range 8 {
		wg.Go(func() {
			for range 7 {
				got, err := s.ClaimKeyPackages(ctx, u.ID, suite, t0)
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				mu.Lock()
				for _, k := range got {
					seen[string(k.Ref)]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	onetime := 0
	for ref, c := range seen {
		if ref != "alr" {
			onetime++
			if c > 1 {
				t.Errorf("package %s handed out %d times", ref, c)
			}
		}
	}
	// 56 claims: d1 gets 40 one-time then the last resort 16 times; d2 gets 40.
	if onetime != 2*n || seen["alr"] != 56-n {
		t.Errorf("%d one-time packages claimed, last resort %d times", onetime, seen["alr"])
	}
}

// testClaimBudget: a device's one-time packages are handed out only
// within its budget, whoever claims; past it, and when the pool is empty,
// the last-resort package is returned, kept and marked claimed, until a
// new last-resort package replaces it.
func testClaimBudget(t *testing.T, s store.Store) {
	u, d1 := mkUser(t, s, "alice")
	d2 := mkDevice(t, s, u, "alice-2")
	var kps []store.KeyPackage
	for i := range 20 {
		kps = append(kps, kp(fmt.Sprintf("a%02d", i), d1.ID, false, t0))
	}
	kps = append(kps, kp("alr", d1.ID, true, t0), kp("b0", d2.ID, false, t0))
	must(t, "upload", s.AddKeyPackages(ctx, kps))
	b := store.ClaimBudget{Burst: 10, Interval: time.Minute}
	claim := func(at time.Time) (d1Ref string, d2Ref string) {
		t.Helper()
		got, err := s.ClaimKeyPackagesBudgeted(ctx, u.ID, suite, at, b)
		if err != nil {
			t.Fatalf("claim at %v: %v", at.Sub(t0), err)
		}
		for _, k := range got {
			switch k.Device {
			case d1.ID:
				d1Ref = string(k.Ref)
			case d2.ID:
				d2Ref = string(k.Ref)
			}
			if k.LastResort != (string(k.Ref) == "alr") {
				t.Errorf("claimed %s with LastResort %v", k.Ref, k.LastResort)
			}
		}
		return d1Ref, d2Ref
	}
	// The burst, then only the last resort: the pool keeps 10.
	for i := range 15 {
		ref, _ := claim(t0)
		want := fmt.Sprintf("a%02d", i)
		if i >= 10 {
			want = "alr"
		}
		if ref != want {
			t.Fatalf("claim %d: got %q, want %q", i, ref, want)
		}
	}
	c, err := s.CountKeyPackages(ctx, d1.ID, suite, t0)
	if err != nil || c.Available != 10 || !c.LastResort || !c.LastResortClaimed {
		t.Errorf("pool after the burst: %+v %v", c, err)
	}
	// Device 2's budget is its own: its one package, then nothing.
	if _, ref := claim(t0); ref != "" {
		t.Errorf("device 2 had one package, claimed again: %q", ref)
	}
	// Two intervals later, two more one-time packages, then the last resort.
	later := t0.Add(2*time.Minute + time.Second)
	for i, want := range []string{"a10", "a11", "alr"} {
		if ref, _ := claim(later); ref != want {
			t.Errorf("claim %d after 2 minutes: got %q, want %q", i, ref, want)
		}
	}
	// A clock that went back adds nothing.
	if ref, _ := claim(t0); ref != "alr" {
		t.Errorf("claim with an earlier clock: got %q", ref)
	}
	// A new last-resort package replaces the claimed one, unclaimed.
	must(t, "replace last resort", s.AddKeyPackages(ctx, []store.KeyPackage{kp("alr2", d1.ID, true, t0)}))
	if c, _ := s.CountKeyPackages(ctx, d1.ID, suite, later); !c.LastResort || c.LastResortClaimed {
		t.Errorf("pool after replacing the last resort: %+v", c)
	}
	// Without a budget (ClaimKeyPackages), the rest of the pool goes, then
	// the new last resort.
	for range 8 {
		if _, err := s.ClaimKeyPackages(ctx, u.ID, suite, later); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ClaimKeyPackages(ctx, u.ID, suite, later)
	if err != nil || len(got) != 1 || string(got[0].Ref) != "alr2" || !got[0].LastResort {
		t.Errorf("claim on an empty pool: %+v %v", got, err)
	}
	if c, _ := s.CountKeyPackages(ctx, d1.ID, suite, later); c.Available != 0 || !c.LastResortClaimed {
		t.Errorf("pool after claiming the last resort: %+v", c)
	}
}

// testClaimBudgetConcurrent: concurrent claims of one device spend its
// budget exactly once each.
func testClaimBudgetConcurrent(t *testing.T, s store.Store) {
	u, d := mkUser(t, s, "alice")
	var kps []store.KeyPackage
	for i := range 20 {
		kps = append(kps, kp(fmt.Sprintf("a%02d", i), d.ID, false, t0))
	}
	kps = append(kps, kp("alr", d.ID, true, t0))
	must(t, "upload", s.AddKeyPackages(ctx, kps))
	b := store.ClaimBudget{Burst: 5, Interval: time.Hour}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for range 16 {
		wg.Go(func() {
			got, err := s.ClaimKeyPackagesBudgeted(ctx, u.ID, suite, t0, b)
			if err != nil {
				t.Errorf("claim: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, k := range got {
				seen[string(k.Ref)]++
			}
		})
	}
	wg.Wait()
	if len(seen) != 6 || seen["alr"] != 11 {
		t.Errorf("16 concurrent claims with a budget of 5 got %v, want 5 one-time packages and the last resort 11 times", seen)
	}
	if c, _ := s.CountKeyPackages(ctx, d.ID, suite, t0); c.Available != 15 {
		t.Errorf("pool after the claims: %+v", c)
	}
}

// testClaimBatch: a batched claim answers every user in the order asked,
// with its packages and its devices that had none, under each device's
// budget; a user without any package, or unknown, gets an empty answer;
// a user named twice is refused and nothing is claimed.
func testClaimBatch(t *testing.T, s store.Store) {
	a, a1 := mkUser(t, s, "alice")
	mkDevice(t, s, a, "alice-2")
	b, b1 := mkUser(t, s, "bob")
	c, c1 := mkUser(t, s, "carol")
	revoked := mkDevice(t, s, c, "carol-2")
	e, _ := mkUser(t, s, "erin") // no package at all
	must(t, "upload", s.AddKeyPackages(ctx, []store.KeyPackage{
		kp("a1-1", a1.ID, false, t0), kp("a1-2", a1.ID, false, t0), kp("a1lr", a1.ID, true, t0),
		kp("b1-1", b1.ID, false, t0), kp("b1lr", b1.ID, true, t0),
		kp("c1lr", c1.ID, true, t0), kp("c2-1", revoked.ID, false, t0),
	}))
	must(t, "revoke", s.RevokeDevice(ctx, revoked.ID, t0, nil))
	_, err := s.ClaimKeyPackagesBatch(ctx, []store.UserID{a.ID, b.ID, a.ID}, suite, t0, store.ClaimBudget{})
	wantErr(t, "user twice", err, store.ErrInvalid)
	if n, _ := s.CountKeyPackages(ctx, a1.ID, suite, t0); n.Available != 2 {
		t.Errorf("a refused batch claimed: %+v", n)
	}
	budget := store.ClaimBudget{Burst: 1, Interval: time.Hour}
	show := func(got []store.UserClaim) string {
		var parts []string
		for _, uc := range got {
			var refs []string
			for _, k := range uc.KeyPackages {
				refs = append(refs, string(k.Ref))
			}
			parts = append(parts, fmt.Sprintf("%d:%v-%v", uc.User, refs, uc.Missing))
		}
		return strings.Join(parts, " ")
	}
	batch := []store.UserID{c.ID, 9999, a.ID, e.ID, b.ID}
	got, err := s.ClaimKeyPackagesBatch(ctx, batch, suite, t0, budget)
	must(t, "claim batch", err)
	want := fmt.Sprintf("%d:[c1lr]-[] 9999:[]-[] %d:[a1-1]-[alice-2] %d:[]-[erin-1] %d:[b1-1]-[]", c.ID, a.ID, e.ID, b.ID)
	if show(got) != want {
		t.Errorf("batch claimed %s, want %s", show(got), want)
	}
	// The budget of one is spent: the last-resort packages now.
	got, err = s.ClaimKeyPackagesBatch(ctx, []store.UserID{a.ID, b.ID}, suite, t0, budget)
	must(t, "claim batch again", err)
	if want := fmt.Sprintf("%d:[a1lr]-[alice-2] %d:[b1lr]-[]", a.ID, b.ID); show(got) != want {
		t.Errorf("second batch claimed %s, want %s", show(got), want)
	}
	if n, _ := s.CountKeyPackages(ctx, a1.ID, suite, t0); n.Available != 1 || !n.LastResortClaimed {
		t.Errorf("pool of alice-1 after the batches: %+v", n)
	}
}

// testClaimBatchConcurrent: concurrent batches over the same users, in
// different orders, never hand out a one-time package twice and do not
// deadlock.
func testClaimBatchConcurrent(t *testing.T, s store.Store) {
	var users []store.UserID
	var kps []store.KeyPackage
	for i := range 6 {
		u, d1 := mkUser(t, s, fmt.Sprintf("user%d", i))
		d2 := mkDevice(t, s, u, fmt.Sprintf("user%d-2", i))
		users = append(users, u.ID)
		for j := range 10 {
			kps = append(kps, kp(fmt.Sprintf("%s-%02d", d1.ID, j), d1.ID, false, t0), kp(fmt.Sprintf("%s-%02d", d2.ID, j), d2.ID, false, t0))
		}
	}
	must(t, "upload", s.AddKeyPackages(ctx, kps))
	b := store.ClaimBudget{Burst: 1000, Interval: time.Hour}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for w := range 8 {
		wg.Go(func() {
			order := slices.Clone(users)
			if w%2 == 1 {
				slices.Reverse(order)
			}
			got, err := s.ClaimKeyPackagesBatch(ctx, order, suite, t0, b)
			if err != nil {
				t.Errorf("claim batch: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for i, uc := range got {
				if uc.User != order[i] || len(uc.KeyPackages) != 2 {
					t.Errorf("batch %d answered %+v for user %d", w, uc, order[i])
				}
				for _, k := range uc.KeyPackages {
					seen[string(k.Ref)]++
				}
			}
		})
	}
	wg.Wait()
	for ref, n := range seen {
		if n != 1 {
			t.Errorf("package %s handed out %d times", ref, n)
		}
	}
	if len(seen) != 8*6*2 {
		t.Errorf("%d packages handed out, want %d", len(seen), 8*6*2)
	}
}

func testConversations(t *testing.T, s store.Store) {
	u, d1 := mkUser(t, s, "alice")
	_, b := mkUser(t, s, "bob")
	c := mkConv(t, s, d1.ID, "g1")
	if c.ID <= 0 || c.Epoch != 0 || c.Head != 0 {
		t.Fatalf("created %+v", c)
	}
	_, err := s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g1"), Creator: d1.ID, Created: t0})
	wantErr(t, "duplicate group id", err, store.ErrConflict)
	_, err = s.CreateConversation(ctx, store.NewConversation{GroupID: []byte("g2"), Creator: "nope", Created: t0})
	wantErr(t, "unknown creator", err, store.ErrNotFound)
	got, err := s.ConversationByGroupID(ctx, []byte("g1"))
	if err != nil || got.ID != c.ID || string(got.GroupInfo) != "gi0" || got.LegacyTree || string(got.FollowerState) != "fs0" || got.Suite != suite {
		t.Errorf("by group id: %+v %v", got, err)
	}
	_, err = s.Conversation(ctx, 9999)
	wantErr(t, "unknown", err, store.ErrNotFound)
	if m, _ := s.Members(ctx, c.ID); fmt.Sprint(m) != "[alice-1]" {
		t.Errorf("members %v", m)
	}
	d2 := mkDevice(t, s, u, "alice-2")
	e := add(t, s, c.ID, d1.ID, b.ID, d2.ID)
	if e.Seq != 1 || e.Kind != store.KindHandshake {
		t.Errorf("commit entry %+v", e)
	}
	got, _ = s.Conversation(ctx, c.ID)
	if got.Epoch != 1 || got.Head != 1 || string(got.GroupInfo) != "gi" || string(got.FollowerState) != "fs" {
		t.Errorf("after commit %+v", got)
	}
	if m, _ := s.Members(ctx, c.ID); fmt.Sprint(m) != "[alice-1 alice-2 bob-1]" {
		t.Errorf("members %v", m)
	}
	if ok, _ := s.IsMember(ctx, c.ID, b.ID); !ok {
		t.Error("bob not member")
	}
	if ok, err := s.UserIsMember(ctx, c.ID, b.User); !ok || err != nil {
		t.Errorf("bob's user is not a member: %v", err)
	}
	if ok, err := s.UserIsMember(ctx, c.ID, 9999); ok || err != nil {
		t.Errorf("an unknown user is a member: %v", err)
	}
	ms, err := s.Conversations(ctx, b.ID)
	// The added device starts after the commit that added it.
	if err != nil || len(ms) != 1 || ms[0].Conversation != c.ID || ms[0].Cursor != 1 || ms[0].Head != 1 || ms[0].Epoch != 1 {
		t.Errorf("conversations of bob: %+v %v", ms, err)
	}
	if ms, _ := s.Conversations(ctx, d1.ID); len(ms) != 1 || ms[0].Cursor != 0 {
		t.Errorf("conversations of alice: %+v", ms)
	}
	// Remove bob.
	_, err = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 1, Sender: d1.ID, Data: []byte("rm"), GroupInfo: []byte("gi2"), Remove: []store.DeviceID{b.ID}, Created: t0})
	must(t, "remove", err)
	if ok, _ := s.IsMember(ctx, c.ID, b.ID); ok {
		t.Error("bob still member")
	}
	if ok, err := s.UserIsMember(ctx, c.ID, b.User); ok || err != nil {
		t.Errorf("bob's user is still a member after his only device departed: %v", err)
	}
	// Bob departs: he may read up to the commit that removed him.
	if ms, _ := s.Conversations(ctx, b.ID); len(ms) != 1 || ms[0].Left != 2 || ms[0].Cursor != 1 || ms[0].Readable() != 2 {
		t.Errorf("bob's conversations %+v", ms)
	}
	if m, _ := s.Members(ctx, c.ID); fmt.Sprint(m) != "[alice-1 alice-2]" {
		t.Errorf("members after removal %v", m)
	}
	es, err := s.Entries(ctx, c.ID, 0, 10)
	if err != nil || len(es) != 2 || es[1].Seq != 2 || string(es[1].Data) != "rm" || es[1].Sender != d1.ID || !es[1].Created.Equal(t0) {
		t.Errorf("entries %+v %v", es, err)
	}
}

func testCommitStale(t *testing.T, s store.Store) {
	_, d := mkUser(t, s, "alice")
	c := mkConv(t, s, d.ID, "g")
	add(t, s, c.ID, d.ID)
	_, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 0, Sender: d.ID, Data: []byte("late"), Created: t0})
	wantErr(t, "stale", err, store.ErrStaleEpoch)
	if cur, ok := store.CurrentEpoch(err); !ok || cur != 1 {
		t.Errorf("stale error carries epoch %d, %t; want 1", cur, ok)
	}
	_, err = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 5, Sender: d.ID, Data: []byte("future"), Created: t0})
	if cur, ok := store.CurrentEpoch(err); !ok || cur != 1 {
		t.Errorf("future epoch: %v", err)
	}
	_, err = s.Commit(ctx, store.Commit{Conversation: 9999, Epoch: 0, Sender: d.ID, Created: t0})
	wantErr(t, "unknown conversation", err, store.ErrNotFound)
	if got, _ := s.Conversation(ctx, c.ID); got.Head != 1 || got.Epoch != 1 {
		t.Errorf("refused commits changed the conversation: %+v", got)
	}
}

func testCommitConcurrent(t *testing.T, s store.Store) {
	u, d := mkUser(t, s, "alice")
	c := mkConv(t, s, d.ID, "g")
	const n = 8
	var devs []store.DeviceID
	for i := range n {
		devs = append(devs, mkDevice(t, s, u, fmt.Sprintf("new-%d", i)).ID)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 0, Sender: d.ID, Data: []byte("c"), GroupInfo: []byte(fmt.Sprint(i)),
				Add: []store.DeviceID{devs[i]}, Welcomes: []store.Welcome{{Device: devs[i], Data: []byte("w")}}, Created: t0})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Errorf("commits %d and %d both accepted for epoch 0", winner, i)
			}
			winner = i
		} else if cur, ok := store.CurrentEpoch(err); !ok || cur != 1 {
			t.Errorf("loser %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no commit accepted")
	}
	got, _ := s.Conversation(ctx, c.ID)
	if got.Epoch != 1 || got.Head != 1 || string(got.GroupInfo) != fmt.Sprint(winner) {
		t.Errorf("conversation %+v, winner %d", got, winner)
	}
	m, _ := s.Members(ctx, c.ID)
	if len(m) != 2 {
		t.Errorf("members %v", m)
	}
	for i, dv := range devs {
		in, _ := s.Inbox(ctx, dv, 0, 10)
		if (i == winner) != (len(in) == 1) {
			t.Errorf("device %s inbox %d entries (winner %d)", dv, len(in), winner)
		}
	}
}

func testCommitFailure(t *testing.T, s store.Store) {
	u, d := mkUser(t, s, "alice")
	d2 := mkDevice(t, s, u, "alice-2")
	c := mkConv(t, s, d.ID, "g")
	// An unknown added device fails the whole commit.
	_, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 0, Sender: d.ID, Data: []byte("c"), GroupInfo: []byte("bad"),
		Add: []store.DeviceID{d2.ID, "ghost"}, Welcomes: []store.Welcome{{Device: d2.ID, Data: []byte("w")}}, Remove: []store.DeviceID{d.ID}, Created: t0})
	wantErr(t, "unknown added device", err, store.ErrNotFound)
	// A Welcome for a device not being added is refused.
	_, err = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 0, Sender: d.ID, Data: []byte("c"),
		Welcomes: []store.Welcome{{Device: d2.ID, Data: []byte("w")}}, Created: t0})
	wantErr(t, "welcome without add", err, store.ErrInvalid)
	got, _ := s.Conversation(ctx, c.ID)
	if got.Epoch != 0 || got.Head != 0 || string(got.GroupInfo) != "gi0" {
		t.Errorf("failed commit changed the conversation: %+v", got)
	}
	if m, _ := s.Members(ctx, c.ID); fmt.Sprint(m) != "[alice-1]" {
		t.Errorf("failed commit changed members: %v", m)
	}
	if in, _ := s.Inbox(ctx, d2.ID, 0, 10); len(in) != 0 {
		t.Errorf("failed commit left a welcome: %+v", in)
	}
	if es, _ := s.Entries(ctx, c.ID, 0, 10); len(es) != 0 {
		t.Errorf("failed commit left entries: %+v", es)
	}
	if dv, _ := s.Device(ctx, d2.ID); dv.InboxHead != 0 {
		t.Errorf("failed commit moved the inbox head: %d", dv.InboxHead)
	}
	// Cancelled context: nothing stored.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Commit(cctx, store.Commit{Conversation: c.ID, Epoch: 0, Sender: d.ID, Data: []byte("c"), Created: t0})
	if err == nil {
		t.Error("commit with a cancelled context succeeded")
	}
	if got, _ := s.Conversation(ctx, c.ID); got.Epoch != 0 {
		t.Errorf("cancelled commit changed the epoch: %+v", got)
	}
}

func testProposal(t *testing.T, s store.Store) {
	_, d := mkUser(t, s, "alice")
	c := mkConv(t, s, d.ID, "g")
	e, err := s.Propose(ctx, store.Proposal{Conversation: c.ID, Epoch: 0, Sender: d.ID, Data: []byte("p"), Created: t0})
	if err != nil || e.Seq != 1 || e.Kind != store.KindHandshake {
		t.Fatalf("propose: %+v %v", e, err)
	}
	_, err = s.Propose(ctx, store.Proposal{Conversation: c.ID, Epoch: 1, Sender: d.ID, Data: []byte("p"), Created: t0})
	if cur, ok := store.CurrentEpoch(err); !ok || cur != 0 {
		t.Errorf("stale proposal: %v", err)
	}
	if got, _ := s.Conversation(ctx, c.ID); got.Epoch != 0 || got.Head != 1 {
		t.Errorf("after proposal %+v", got)
	}
}

func testAppend(t *testing.T, s store.Store) {
	u, a := mkUser(t, s, "alice")
	_, b := mkUser(t, s, "bob")
	c1 := mkConv(t, s, a.ID, "g1")
	c2 := mkConv(t, s, a.ID, "g2")
	add(t, s, c1.ID, a.ID, b.ID)
	a2 := mkDevice(t, s, u, "alice-2")
	batch := []store.NewEntry{
		{Conversation: c1.ID, Sender: a.ID, Data: []byte("1"), Created: t0},
		{Conversation: c2.ID, Sender: a.ID, Data: []byte("2"), Created: t0},
		{Conversation: c1.ID, Sender: b.ID, Data: []byte("3"), Created: t0},
		{Conversation: c2.ID, Sender: b.ID, Data: []byte("not member"), Created: t0},
		{Conversation: 9999, Sender: a.ID, Data: []byte("no conv"), Created: t0},
		{Conversation: c1.ID, Sender: a2.ID, Data: []byte("not member"), Created: t0},
		{Conversation: c1.ID, Sender: a.ID, Data: []byte("4"), Created: t0},
	}
	res, err := s.AppendEntries(ctx, batch)
	must(t, "append", err)
	want := []struct {
		seq uint64
		err error
	}{{2, nil}, {1, nil}, {3, nil}, {0, store.ErrNotMember}, {0, store.ErrNotFound}, {0, store.ErrNotMember}, {4, nil}}
	for i, w := range want {
		if res[i].Entry.Seq != w.seq || (w.err == nil) != (res[i].Err == nil) || (w.err != nil && !errors.Is(res[i].Err, w.err)) {
			t.Errorf("result %d: %+v, want seq %d err %v", i, res[i], w.seq, w.err)
		}
	}
	es, _ := s.Entries(ctx, c1.ID, 1, 100)
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%d:%s:%s", e.Seq, e.Sender, e.Data))
		if e.Kind != store.KindApplication && e.Seq > 1 {
			t.Errorf("kind %v", e.Kind)
		}
	}
	if fmt.Sprint(got) != "[2:alice-1:1 3:bob-1:3 4:alice-1:4]" {
		t.Errorf("log %v", got)
	}
	if es, _ := s.Entries(ctx, c1.ID, 2, 1); len(es) != 1 || es[0].Seq != 3 {
		t.Errorf("page: %+v", es)
	}
	if res, err := s.AppendEntries(ctx, nil); err != nil || len(res) != 0 {
		t.Errorf("empty batch: %v %v", res, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.AppendEntries(cctx, batch[:1]); err == nil {
		t.Error("append with a cancelled context succeeded")
	}
	if got, _ := s.Conversation(ctx, c1.ID); got.Head != 4 {
		t.Errorf("head %d after cancelled append", got.Head)
	}
}

func testAppendConcurrent(t *testing.T, s store.Store) {
	_, a := mkUser(t, s, "alice")
	var convs []store.ConversationID
	for i := range 3 {
		convs = append(convs, mkConv(t, s, a.ID, fmt.Sprint("g", i)).ID)
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 10 {
				var batch []store.NewEntry
				for j := range 5 {
					batch = append(batch, store.NewEntry{Conversation: convs[(w+i+j)%3], Sender: a.ID, Data: []byte("x"), Created: t0})
				}
				if _, err := s.AppendEntries(ctx, batch); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	total := uint64(0)
	for _, c := range convs {
		got, _ := s.Conversation(ctx, c)
		es, _ := s.Entries(ctx, c, 0, 1000)
		if uint64(len(es)) != got.Head {
			t.Errorf("conversation %d: %d entries, head %d", c, len(es), got.Head)
		}
		total += got.Head
	}
	if total != 300 {
		t.Errorf("%d entries, want 300", total)
	}
}

func testAck(t *testing.T, s store.Store) {
	_, a := mkUser(t, s, "alice")
	_, b := mkUser(t, s, "bob")
	c := mkConv(t, s, a.ID, "g")
	send(t, s, c.ID, a.ID, 5, t0)
	cursor := func() uint64 {
		ms, _ := s.Conversations(ctx, a.ID)
		return ms[0].Cursor
	}
	must(t, "ack 3", s.Ack(ctx, a.ID, c.ID, 3))
	must(t, "ack 2", s.Ack(ctx, a.ID, c.ID, 2))
	if cursor() != 3 {
		t.Errorf("cursor moved backwards to %d", cursor())
	}
	must(t, "ack 3 again", s.Ack(ctx, a.ID, c.ID, 3))
	wantErr(t, "ack beyond head", s.Ack(ctx, a.ID, c.ID, 6), store.ErrInvalid)
	wantErr(t, "ack by non-member", s.Ack(ctx, b.ID, c.ID, 1), store.ErrNotMember)
	wantErr(t, "ack unknown conversation", s.Ack(ctx, a.ID, 9999, 1), store.ErrNotMember)
	must(t, "ack 5", s.Ack(ctx, a.ID, c.ID, 5))
	if cursor() != 5 {
		t.Errorf("cursor %d", cursor())
	}
}

func testAckBatch(t *testing.T, s store.Store) {
	_, a := mkUser(t, s, "alice")
	_, b := mkUser(t, s, "bob")
	c := mkConv(t, s, a.ID, "g")
	add(t, s, c.ID, a.ID, b.ID) // seq 1
	send(t, s, c.ID, a.ID, 5, t0)
	cursor := func(d store.DeviceID) uint64 {
		ms, _ := s.Conversations(ctx, d)
		return ms[0].Cursor
	}
	errs, err := s.AckBatch(ctx, []store.Ack{
		{Device: a.ID, Conversation: c.ID, Seq: 4},
		{Device: b.ID, Conversation: c.ID, Seq: 99}, // beyond head: refused alone
		{Device: b.ID, Conversation: 9999, Seq: 1},  // not a member
		{Device: b.ID, Conversation: c.ID, Seq: 3},
		{Device: a.ID, Conversation: c.ID, Seq: 2}, // backwards: ignored
	})
	if err != nil || len(errs) != 5 {
		t.Fatalf("ack batch: %v %v", errs, err)
	}
	for i, want := range []error{nil, store.ErrInvalid, store.ErrNotMember, nil, nil} {
		if want == nil && errs[i] != nil || want != nil && !errors.Is(errs[i], want) {
			t.Errorf("ack %d: %v, want %v", i, errs[i], want)
		}
	}
	if got := cursor(a.ID); got != 4 {
		t.Errorf("alice cursor %d, want 4", got)
	}
	if got := cursor(b.ID); got != 3 {
		t.Errorf("bob cursor %d, want 3", got)
	}
	if errs, err := s.AckBatch(ctx, nil); err != nil || len(errs) != 0 {
		t.Errorf("empty ack batch: %v %v", errs, err)
	}
}

func testInbox(t *testing.T, s store.Store) {
	u, a := mkUser(t, s, "alice")
	_, b := mkUser(t, s, "bob")
	c1 := mkConv(t, s, a.ID, "g1")
	c2 := mkConv(t, s, a.ID, "g2")
	add(t, s, c1.ID, a.ID, b.ID)
	add(t, s, c2.ID, a.ID, b.ID)
	in, err := s.Inbox(ctx, b.ID, 0, 10)
	if err != nil || len(in) != 2 || in[0].Seq != 1 || in[1].Seq != 2 || in[0].Conversation != c1.ID || in[1].Conversation != c2.ID || string(in[0].Data) != "welcome-bob-1" || in[0].Device != b.ID {
		t.Fatalf("inbox %+v %v", in, err)
	}
	if in, _ := s.Inbox(ctx, b.ID, 1, 10); len(in) != 1 || in[0].Seq != 2 {
		t.Errorf("inbox after 1: %+v", in)
	}
	must(t, "ack inbox", s.AckInbox(ctx, b.ID, 1))
	if in, _ := s.Inbox(ctx, b.ID, 0, 10); len(in) != 1 || in[0].Seq != 2 {
		t.Errorf("inbox after ack: %+v", in)
	}
	must(t, "ack inbox", s.AckInbox(ctx, b.ID, 2))
	// Seqs keep increasing after the inbox is emptied.
	a2 := mkDevice(t, s, u, "alice-2")
	_ = a2
	c3 := mkConv(t, s, a.ID, "g3")
	add(t, s, c3.ID, a.ID, b.ID)
	if in, _ := s.Inbox(ctx, b.ID, 0, 10); len(in) != 1 || in[0].Seq != 3 {
		t.Errorf("inbox seq after emptying: %+v", in)
	}
	if in, _ := s.Inbox(ctx, a.ID, 0, 10); len(in) != 0 {
		t.Errorf("alice inbox %+v", in)
	}
}

func testPruneAcked(t *testing.T, s store.Store) {
	_, a := mkUser(t, s, "alice")
	_, b := mkUser(t, s, "bob")
	c := mkConv(t, s, a.ID, "g")
	add(t, s, c.ID, a.ID, b.ID) // seq 1; bob's cursor starts at 1
	send(t, s, c.ID, a.ID, 9, t0)
	must(t, "ack", s.Ack(ctx, a.ID, c.ID, 6))
	must(t, "ack", s.Ack(ctx, b.ID, c.ID, 4))
	r, err := s.Prune(ctx, store.PruneOptions{Now: t0})
	must(t, "prune", err)
	if r.Entries != 4 {
		t.Errorf("pruned %d entries, want 4", r.Entries)
	}
	es, _ := s.Entries(ctx, c.ID, 0, 100)
	if len(es) != 6 || es[0].Seq != 5 {
		t.Errorf("remaining %d entries from %d", len(es), es[0].Seq)
	}
	// New entries continue the sequence.
	if e := send(t, s, c.ID, a.ID, 1, t0); e[0].Seq != 11 {
		t.Errorf("seq after prune %d", e[0].Seq)
	}
	// Nothing acknowledged by all: nothing pruned.
	r, _ = s.Prune(ctx, store.PruneOptions{Now: t0})
	if r.Entries != 0 {
		t.Errorf("second prune removed %d", r.Entries)
	}
}

func testPruneRetention(t *testing.T, s store.Store) {
	_, a := mkUser(t, s, "alice")
	_, b := mkUser(t, s, "bob")
	c := mkConv(t, s, a.ID, "g")
	add(t, s, c.ID, a.ID, b.ID)
	send(t, s, c.ID, a.ID, 3, t0.Add(time.Hour))    // seq 2-4
	send(t, s, c.ID, a.ID, 2, t0.Add(3*time.Hour))  // seq 5-6
	send(t, s, c.ID, a.ID, 1, t0.Add(time.Minute))  // seq 7: clock went back
	send(t, s, c.ID, a.ID, 2, t0.Add(10*time.Hour)) // seq 8-9
	must(t, "blob", s.CreateBlob(ctx, store.Blob{ID: "old", Owner: 1, Size: 1, Created: t0}))
	must(t, "blob", s.CreateBlob(ctx, store.Blob{ID: "new", Owner: 1, Size: 1, Created: t0.Add(10 * time.Hour)}))
	r, err := s.Prune(ctx, store.PruneOptions{Now: t0.Add(12 * time.Hour), Retention: 10 * time.Hour})
	must(t, "prune", err)
	// Entries created before t0+2h are removed as a prefix up to seq 7.
	es, _ := s.Entries(ctx, c.ID, 0, 100)
	if r.Entries != 7 || len(es) != 2 || es[0].Seq != 8 {
		t.Errorf("pruned %d, remaining %+v", r.Entries, es)
	}
	if r.Inbox != 1 {
		t.Errorf("pruned %d inbox entries, want 1", r.Inbox)
	}
	if fmt.Sprint(r.Blobs) != "[old]" {
		t.Errorf("pruned blobs %v", r.Blobs)
	}
	if _, err := s.Blob(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old blob: %v", err)
	}
}

// testPruneTimer: a commit sets the conversation's timer; Prune empties
// the application entries appended since then once older than the timer,
// keeps those from before it, the handshakes and the log's seqs; a later
// commit that keeps the timer does not move when it was set.
func testPruneTimer(t *testing.T, s store.Store) {
	_, a := mkUser(t, s, "alice")
	_, b := mkUser(t, s, "bob")
	c := mkConv(t, s, a.ID, "g")
	add(t, s, c.ID, a.ID, b.ID)                  // seq 1
	send(t, s, c.ID, a.ID, 2, t0.Add(time.Hour)) // seq 2-3: before the timer
	const timer = 10 * time.Minute
	commit := func(at time.Time) {
		t.Helper()
		conv, err := s.Conversation(ctx, c.ID)
		must(t, "conversation", err)
		_, err = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: conv.Epoch, Sender: a.ID, Data: []byte("timer"), GroupInfo: []byte("gi"), FollowerState: []byte("fs"), Created: at, Timer: timer})
		must(t, "commit", err)
	}
	commit(t0.Add(2 * time.Hour))                              // seq 4
	send(t, s, c.ID, a.ID, 2, t0.Add(2*time.Hour+time.Minute)) // seq 5-6
	commit(t0.Add(3 * time.Hour))                              // seq 7: the same timer
	send(t, s, c.ID, b.ID, 1, t0.Add(3*time.Hour))             // seq 8
	if conv, err := s.Conversation(ctx, c.ID); err != nil || conv.Timer != timer {
		t.Fatalf("conversation timer %v, %v; want %v", conv.Timer, err, timer)
	}
	r, err := s.Prune(ctx, store.PruneOptions{Now: t0.Add(2*time.Hour + 12*time.Minute)})
	must(t, "prune", err)
	if r.Expired != 2 {
		t.Errorf("first prune emptied %d entries, want 2", r.Expired)
	}
	r, err = s.Prune(ctx, store.PruneOptions{Now: t0.Add(4 * time.Hour)})
	must(t, "prune", err)
	if r.Expired != 1 || r.Entries != 0 {
		t.Errorf("second prune emptied %d entries and deleted %d, want 1 and 0", r.Expired, r.Entries)
	}
	es, err := s.Entries(ctx, c.ID, 0, 100)
	must(t, "entries", err)
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%d:%d:%s", e.Seq, e.Kind, e.Data))
	}
	want := "[1:2:commit 2:1:m0 3:1:m1 4:2:timer 5:1: 6:1: 7:2:timer 8:1:]"
	if fmt.Sprint(got) != want {
		t.Errorf("entries after the timer: %v, want %s", got, want)
	}
}

func testBlobs(t *testing.T, s store.Store) {
	u, _ := mkUser(t, s, "alice")
	bl := store.Blob{ID: "abc", Owner: u.ID, Size: 100, SHA256: []byte("h"), Created: t0}
	must(t, "create", s.CreateBlob(ctx, bl))
	wantErr(t, "duplicate", s.CreateBlob(ctx, bl), store.ErrConflict)
	wantErr(t, "unknown owner", s.CreateBlob(ctx, store.Blob{ID: "x", Owner: 9999, Size: 1, Created: t0}), store.ErrNotFound)
	must(t, "create", s.CreateBlob(ctx, store.Blob{ID: "def", Owner: u.ID, Size: 50, SHA256: []byte("h2"), Created: t0}))
	got, err := s.Blob(ctx, "abc")
	if err != nil || got.Owner != u.ID || got.Size != 100 || string(got.SHA256) != "h" || !got.Created.Equal(t0) {
		t.Errorf("blob %+v %v", got, err)
	}
	n, sz, err := s.BlobUsage(ctx, u.ID)
	if err != nil || n != 2 || sz != 150 {
		t.Errorf("usage %d %d %v", n, sz, err)
	}
	must(t, "delete", s.DeleteBlob(ctx, "abc"))
	wantErr(t, "delete again", s.DeleteBlob(ctx, "abc"), store.ErrNotFound)
	_, err = s.Blob(ctx, "abc")
	wantErr(t, "deleted", err, store.ErrNotFound)
}

// testBlobQuota: reservations count against the quota until committed
// (then the blob's size counts), released or expired.
func testBlobQuota(t *testing.T, s store.Store) {
	u, _ := mkUser(t, s, "alice")
	v, _ := mkUser(t, s, "bob")
	res := func(owner store.UserID, bytes, min int64, at time.Time) (store.BlobReservation, error) {
		return s.ReserveBlobQuota(ctx, store.BlobReservation{Owner: owner, Bytes: bytes, Created: at, Expires: at.Add(time.Hour)}, min, 1000)
	}
	must(t, "blob", s.CreateBlob(ctx, store.Blob{ID: "old", Owner: u.ID, Size: 100, Created: t0}))
	r1, err := res(u.ID, 600, 600, t0)
	if err != nil || r1.Bytes != 600 || r1.ID == 0 || r1.Owner != u.ID {
		t.Fatalf("reserve 600: %+v %v", r1, err)
	}
	_, err = res(u.ID, 301, 301, t0)
	wantErr(t, "reserve past the quota", err, store.ErrQuotaExceeded)
	// Unknown length: what is left, up to the maximum.
	r2, err := res(u.ID, 1000, 1, t0)
	if err != nil || r2.Bytes != 300 {
		t.Fatalf("reserve what is left: %+v %v", r2, err)
	}
	_, err = res(u.ID, 1000, 1, t0)
	wantErr(t, "reserve with nothing left", err, store.ErrQuotaExceeded)
	// Another user's quota is its own.
	if r, err := res(v.ID, 1000, 1000, t0); err != nil || r.Bytes != 1000 {
		t.Errorf("bob's reservation: %+v %v", r, err)
	}
	// Committing 10 of the 300 bytes gives back the rest.
	must(t, "commit", s.CommitBlobReservation(ctx, r2.ID, store.Blob{ID: "b2", Owner: u.ID, Size: 10, SHA256: []byte("h"), Created: t0}))
	if n, sz, err := s.BlobUsage(ctx, u.ID); err != nil || n != 2 || sz != 110 {
		t.Errorf("usage after commit: %d %d %v", n, sz, err)
	}
	wantErr(t, "commit twice", s.CommitBlobReservation(ctx, r2.ID, store.Blob{ID: "b3", Owner: u.ID, Size: 1, Created: t0}), store.ErrNotFound)
	if r, err := res(u.ID, 1000, 1, t0); err != nil || r.Bytes != 290 {
		t.Errorf("reserve after commit: %+v %v", r, err)
	} else {
		must(t, "release", s.ReleaseBlobReservation(ctx, r.ID))
		must(t, "release again", s.ReleaseBlobReservation(ctx, r.ID))
	}
	// A commit larger than the reservation, for another owner, or of a
	// taken id changes nothing.
	wantErr(t, "commit too large", s.CommitBlobReservation(ctx, r1.ID, store.Blob{ID: "big", Owner: u.ID, Size: 601, Created: t0}), store.ErrInvalid)
	wantErr(t, "commit for another owner", s.CommitBlobReservation(ctx, r1.ID, store.Blob{ID: "bob", Owner: v.ID, Size: 1, Created: t0}), store.ErrInvalid)
	wantErr(t, "commit a taken id", s.CommitBlobReservation(ctx, r1.ID, store.Blob{ID: "old", Owner: u.ID, Size: 1, Created: t0}), store.ErrConflict)
	// An expired reservation no longer counts and can no longer be
	// committed.
	later := t0.Add(time.Hour)
	wantErr(t, "commit expired", s.CommitBlobReservation(ctx, r1.ID, store.Blob{ID: "late", Owner: u.ID, Size: 1, Created: later}), store.ErrNotFound)
	if r, err := res(u.ID, 1000, 1, later); err != nil || r.Bytes != 890 {
		t.Errorf("reserve after expiry: %+v %v", r, err)
	}
	if _, err := s.Prune(ctx, store.PruneOptions{Now: later.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "commit pruned", s.CommitBlobReservation(ctx, r1.ID, store.Blob{ID: "late", Owner: u.ID, Size: 1, Created: t0}), store.ErrNotFound)
	_, err = s.ReserveBlobQuota(ctx, store.BlobReservation{Owner: 9999, Bytes: 1, Created: t0, Expires: later}, 1, 1000)
	wantErr(t, "unknown owner", err, store.ErrNotFound)
	_, err = s.ReserveBlobQuota(ctx, store.BlobReservation{Owner: u.ID, Bytes: 1, Created: t0, Expires: t0}, 1, 1000)
	wantErr(t, "no lifetime", err, store.ErrInvalid)
	_, err = s.ReserveBlobQuota(ctx, store.BlobReservation{Owner: u.ID, Bytes: 5, Created: t0, Expires: later}, 6, 1000)
	wantErr(t, "min above bytes", err, store.ErrInvalid)
}

// testBlobExpiry: a blob with a lifetime stays until it ends, whatever the
// retention; from then on its bytes no longer count against its owner's
// quota, Prune deletes it (and reports its id so that the content goes),
// and an upload of the same content takes its place. ExtendBlob keeps a
// blob for the longer of two lifetimes, none being the longest.
func testBlobExpiry(t *testing.T, s store.Store) {
	u, _ := mkUser(t, s, "alice")
	v, _ := mkUser(t, s, "bob")
	const quota = 1000
	left := func(at time.Time) int64 {
		t.Helper()
		r, err := s.ReserveBlobQuota(ctx, store.BlobReservation{Owner: u.ID, Bytes: quota, Created: at, Expires: at.Add(time.Minute)}, 1, quota)
		if errors.Is(err, store.ErrQuotaExceeded) {
			return 0
		}
		must(t, "reserve", err)
		must(t, "release", s.ReleaseBlobReservation(ctx, r.ID))
		return r.Bytes
	}
	expires := t0.Add(time.Hour)
	must(t, "blob", s.CreateBlob(ctx, store.Blob{ID: "kept", Owner: u.ID, Size: 100, Created: t0}))
	r, err := s.ReserveBlobQuota(ctx, store.BlobReservation{Owner: u.ID, Bytes: 500, Created: t0, Expires: t0.Add(time.Minute)}, 500, quota)
	must(t, "reserve", err)
	must(t, "commit", s.CommitBlobReservation(ctx, r.ID, store.Blob{ID: "timed", Owner: u.ID, Size: 500, SHA256: []byte("h"), Created: t0, Expires: expires}))
	if b, err := s.Blob(ctx, "timed"); err != nil || !b.Expires.Equal(expires) || !b.Created.Equal(t0) || b.Size != 500 {
		t.Errorf("blob with a lifetime: %+v %v", b, err)
	}
	if b, err := s.Blob(ctx, "kept"); err != nil || !b.Expires.IsZero() {
		t.Errorf("blob without a lifetime: %+v %v", b, err)
	}
	wantErr(t, "lifetime ending at creation", s.CreateBlob(ctx, store.Blob{ID: "bad", Owner: u.ID, Size: 1, Created: t0, Expires: t0}), store.ErrInvalid)
	wantErr(t, "live id", s.CreateBlob(ctx, store.Blob{ID: "timed", Owner: u.ID, Size: 500, Created: expires.Add(-time.Microsecond)}), store.ErrConflict)

	// Before the end: counted, kept by Prune even past the retention.
	if n := left(expires.Add(-time.Second)); n != 400 {
		t.Errorf("%d bytes left before the lifetime ended, want 400", n)
	}
	pr, err := s.Prune(ctx, store.PruneOptions{Now: expires.Add(-time.Second), Retention: time.Hour})
	must(t, "prune", err)
	if len(pr.Blobs) != 0 {
		t.Errorf("prune before the end deleted blobs %v", pr.Blobs)
	}
	// At the end: no longer counted, even before Prune.
	if n := left(expires); n != 900 {
		t.Errorf("%d bytes left once the lifetime ended, want 900", n)
	}
	pr, err = s.Prune(ctx, store.PruneOptions{Now: expires})
	must(t, "prune", err)
	if fmt.Sprint(pr.Blobs) != "[timed]" {
		t.Errorf("prune at the end deleted blobs %v, want [timed]", pr.Blobs)
	}
	_, err = s.Blob(ctx, "timed")
	wantErr(t, "expired blob after prune", err, store.ErrNotFound)
	if n, sz, err := s.BlobUsage(ctx, u.ID); err != nil || n != 1 || sz != 100 {
		t.Errorf("usage after prune: %d blobs of %d bytes, %v", n, sz, err)
	}

	// An expired record not yet pruned gives way to a new upload of the
	// same content, which Prune then keeps.
	must(t, "blob", s.CreateBlob(ctx, store.Blob{ID: "again", Owner: u.ID, Size: 10, Created: t0, Expires: t0.Add(time.Minute)}))
	must(t, "blob over an expired one", s.CreateBlob(ctx, store.Blob{ID: "again", Owner: v.ID, Size: 10, Created: t0.Add(2 * time.Minute)}))
	if b, err := s.Blob(ctx, "again"); err != nil || b.Owner != v.ID || !b.Expires.IsZero() {
		t.Errorf("blob over an expired one: %+v %v", b, err)
	}

	// ExtendBlob: the later lifetime wins, none beats any.
	must(t, "blob", s.CreateBlob(ctx, store.Blob{ID: "ext", Owner: u.ID, Size: 1, Created: t0, Expires: expires}))
	for _, tc := range []struct {
		name      string
		ask, want time.Time
	}{
		{"shorter", t0.Add(time.Minute), expires},
		{"longer", expires.Add(time.Hour), expires.Add(time.Hour)},
		{"none", time.Time{}, time.Time{}},
		{"after none", expires, time.Time{}},
	} {
		b, err := s.ExtendBlob(ctx, "ext", tc.ask)
		if err != nil || !b.Expires.Equal(tc.want) || b.ID != "ext" || b.Size != 1 || b.Owner != u.ID {
			t.Errorf("extend %s: %+v %v, want expiry %v", tc.name, b, err, tc.want)
		}
	}
	_, err = s.ExtendBlob(ctx, "missing", expires)
	wantErr(t, "extend a missing blob", err, store.ErrNotFound)
	pr, err = s.Prune(ctx, store.PruneOptions{Now: expires.Add(10 * time.Hour)})
	must(t, "prune", err)
	if len(pr.Blobs) != 0 {
		t.Errorf("prune without retention deleted blobs %v", pr.Blobs)
	}
}

// testBlobQuotaConcurrent: 16 parallel uploads of 1 MiB against a 1 MiB
// quota store at most 1 MiB, whichever of them wins.
func testBlobQuotaConcurrent(t *testing.T, s store.Store) {
	u, _ := mkUser(t, s, "alice")
	const mib, quota = 1 << 20, 1 << 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	for i := range 16 {
		wg.Go(func() {
			// Half announce their length, half do not.
			bytes, min := int64(mib), int64(mib)
			if i%2 == 1 {
				min = 1
			}
			r, err := s.ReserveBlobQuota(ctx, store.BlobReservation{Owner: u.ID, Bytes: bytes, Created: t0, Expires: t0.Add(time.Hour)}, min, quota)
			if errors.Is(err, store.ErrQuotaExceeded) {
				return
			} else if err != nil {
				t.Errorf("reserve %d: %v", i, err)
				return
			}
			if r.Bytes < mib {
				must(t, "release", s.ReleaseBlobReservation(ctx, r.ID))
				return
			}
			if err := s.CommitBlobReservation(ctx, r.ID, store.Blob{ID: fmt.Sprintf("blob%02d", i), Owner: u.ID, Size: mib, Created: t0}); err != nil {
				t.Errorf("commit %d: %v", i, err)
				return
			}
			mu.Lock()
			stored++
			mu.Unlock()
		})
	}
	wg.Wait()
	n, sz, err := s.BlobUsage(ctx, u.ID)
	if err != nil || sz > quota || n != int64(stored) || stored != 1 {
		t.Errorf("16 parallel 1 MiB uploads against a 1 MiB quota: %d committed, usage %d blobs %d bytes (%v)", stored, n, sz, err)
	}
}

func testStats(t *testing.T, s store.Store) {
	u, a := mkUser(t, s, "alice")
	mkDevice(t, s, u, "alice-2")
	c := mkConv(t, s, a.ID, "g")
	send(t, s, c.ID, a.ID, 3, t0)
	must(t, "kp", s.AddKeyPackages(ctx, []store.KeyPackage{kp("r", a.ID, false, t0)}))
	must(t, "blob", s.CreateBlob(ctx, store.Blob{ID: "b", Owner: u.ID, Size: 7, Created: t0}))
	st, err := s.Stats(ctx)
	must(t, "stats", err)
	want := store.Stats{Users: 1, Devices: 2, Conversations: 1, Entries: 3, KeyPackages: 1, Blobs: 1, BlobBytes: 7}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func testBackup(t *testing.T, s store.Store) {
	_, a := mkUser(t, s, "alice")
	c := mkConv(t, s, a.ID, "g")
	send(t, s, c.ID, a.ID, 3, t0)
	path := t.TempDir() + "/backup.db"
	// Writers keep going during the backup.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			if _, err := s.AppendEntries(ctx, []store.NewEntry{{Conversation: c.ID, Sender: a.ID, Data: []byte("x"), Created: t0}}); err != nil {
				t.Errorf("append during backup: %v", err)
				return
			}
		}
	}()
	must(t, "backup", s.Backup(ctx, path))
	<-done
	if err := s.Backup(ctx, path); err == nil {
		t.Error("backup over an existing file succeeded")
	}
}

func testCancelled(t *testing.T, s store.Store) {
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err := s.CreateUser(cctx, store.NewUser{Name: "x", IdentityKey: key("x"), Created: t0, Device: store.Device{ID: "x1", SignatureKey: key("x1"), Created: t0}})
	if err == nil {
		t.Error("create user with a cancelled context succeeded")
	}
	if _, err := s.UserByName(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cancelled registration stored the user: %v", err)
	}
}

// pendingData returns the Data of the pending proposals from to n.
func pendingData(t *testing.T, s store.Store, id store.ConversationID, epoch, from, n uint64) []string {
	t.Helper()
	ps, err := s.PendingProposals(ctx, id, epoch, from, n)
	if err != nil {
		t.Fatalf("pending proposals: %v", err)
	}
	var out []string
	for _, p := range ps {
		if !p.Created.Equal(t0) {
			t.Errorf("pending proposal %q created %v, want %v", p.Data, p.Created, t0)
		}
		out = append(out, string(p.Data))
	}
	return out
}

// testPendingProposals: a proposal is stored on its own, with the count,
// size and digest of the epoch's pending proposals, and leaves the
// follower state alone; a commit starts the next epoch with none.
func testPendingProposals(t *testing.T, s store.Store) {
	_, d := mkUser(t, s, "alice")
	c := mkConv(t, s, d.ID, "g")
	if c.Proposals != 0 || c.ProposalBytes != 0 || c.ProposalsDigest != nil {
		t.Fatalf("new conversation has proposals: %+v", c)
	}
	if ps, err := s.PendingProposals(ctx, c.ID, 0, 0, 0); err != nil || len(ps) != 0 {
		t.Fatalf("no pending proposals: %v %v", ps, err)
	}
	e, err := s.Propose(ctx, store.Proposal{Conversation: c.ID, Epoch: 0, Proposals: 0, Digest: []byte("d1"), Sender: d.ID, Data: []byte("p1"), Created: t0})
	must(t, "propose", err)
	got, _ := s.Conversation(ctx, c.ID)
	if got.Proposals != 1 || got.ProposalBytes != 2 || string(got.ProposalsDigest) != "d1" || string(got.FollowerState) != "fs0" || got.Epoch != 0 || got.Head != e.Seq {
		t.Fatalf("after proposal %+v", got)
	}
	// A proposal or commit validated against the state before p1 is refused.
	_, err = s.Propose(ctx, store.Proposal{Conversation: c.ID, Epoch: 0, Proposals: 0, Digest: []byte("x"), Sender: d.ID, Data: []byte("p2"), Created: t0})
	wantErr(t, "proposal on a stale state", err, store.ErrStaleState)
	if _, ok := store.CurrentEpoch(err); ok {
		t.Errorf("stale state reported as a stale epoch: %v", err)
	}
	_, err = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 0, Proposals: 0, Sender: d.ID, Data: []byte("c"), FollowerState: []byte("fs1"), Created: t0})
	wantErr(t, "commit on a stale state", err, store.ErrStaleState)
	got, _ = s.Conversation(ctx, c.ID)
	if got.Proposals != 1 || got.ProposalBytes != 2 || string(got.ProposalsDigest) != "d1" || string(got.FollowerState) != "fs0" || got.Head != 1 {
		t.Fatalf("refused handshakes changed the conversation: %+v", got)
	}
	if ps := pendingData(t, s, c.ID, 0, 0, 1); len(ps) != 1 || ps[0] != "p1" {
		t.Fatalf("pending after refused handshakes: %q", ps)
	}
	// A stale epoch stays a stale epoch.
	_, err = s.Propose(ctx, store.Proposal{Conversation: c.ID, Epoch: 3, Proposals: 1, Sender: d.ID, Data: []byte("p"), Created: t0})
	if cur, ok := store.CurrentEpoch(err); !ok || cur != 0 {
		t.Errorf("proposal for epoch 3: %v", err)
	}
	must(t, "propose p2", func() error {
		_, err := s.Propose(ctx, store.Proposal{Conversation: c.ID, Epoch: 0, Proposals: 1, Digest: []byte("d2"), Sender: d.ID, Data: []byte("p-2"), Created: t0})
		return err
	}())
	got, _ = s.Conversation(ctx, c.ID)
	if got.Proposals != 2 || got.ProposalBytes != 5 || string(got.ProposalsDigest) != "d2" || string(got.FollowerState) != "fs0" {
		t.Fatalf("after the second proposal %+v", got)
	}
	// The first n, in order, whatever was added after n was read.
	if ps := pendingData(t, s, c.ID, 0, 0, 2); len(ps) != 2 || ps[0] != "p1" || ps[1] != "p-2" {
		t.Fatalf("pending %q", ps)
	}
	if ps := pendingData(t, s, c.ID, 0, 0, 1); len(ps) != 1 || ps[0] != "p1" {
		t.Fatalf("first pending %q", ps)
	}
	if ps := pendingData(t, s, c.ID, 0, 1, 2); len(ps) != 1 || ps[0] != "p-2" {
		t.Fatalf("pending from 1: %q", ps)
	}
	_, err = s.PendingProposals(ctx, c.ID, 0, 0, 3)
	wantErr(t, "more pending proposals than stored", err, store.ErrInvalid)
	_, err = s.PendingProposals(ctx, c.ID, 0, 2, 1)
	wantErr(t, "pending proposals from beyond to", err, store.ErrInvalid)
	_, err = s.PendingProposals(ctx, 9999, 0, 0, 1)
	wantErr(t, "pending proposals of an unknown conversation", err, store.ErrNotFound)
	_, err = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 0, Proposals: 2, Sender: d.ID, Data: []byte("c"), FollowerState: []byte("fs1"), Created: t0})
	must(t, "commit", err)
	got, _ = s.Conversation(ctx, c.ID)
	if got.Proposals != 0 || got.ProposalBytes != 0 || got.ProposalsDigest != nil || got.Epoch != 1 || string(got.FollowerState) != "fs1" || got.Head != 3 {
		t.Fatalf("after commit %+v", got)
	}
	// The old epoch's proposals are gone with it.
	_, err = s.PendingProposals(ctx, c.ID, 0, 0, 2)
	if cur, ok := store.CurrentEpoch(err); !ok || cur != 1 {
		t.Errorf("pending proposals of the old epoch: %v", err)
	}
	must(t, "propose in epoch 1", func() error {
		_, err := s.Propose(ctx, store.Proposal{Conversation: c.ID, Epoch: 1, Proposals: 0, Digest: []byte("e1"), Sender: d.ID, Data: []byte("q1"), Created: t0})
		return err
	}())
	if ps := pendingData(t, s, c.ID, 1, 0, 1); len(ps) != 1 || ps[0] != "q1" {
		t.Fatalf("pending of epoch 1: %q", ps)
	}
	if _, err := s.Propose(ctx, store.Proposal{Conversation: 9999, Epoch: 0, Sender: d.ID, Data: []byte("p"), Created: t0}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("proposal to an unknown conversation: %v", err)
	}
}

// testProposalConcurrent: proposals validated against one follower state
// (as on two nodes) cannot both be accepted as proposal N, so neither is
// lost from the pending proposals.
func testProposalConcurrent(t *testing.T, s store.Store) {
	_, d := mkUser(t, s, "alice")
	c := mkConv(t, s, d.ID, "g")
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Propose(ctx, store.Proposal{Conversation: c.ID, Epoch: 0, Proposals: 0, Digest: []byte(fmt.Sprint("d", i)),
				Sender: d.ID, Data: []byte(fmt.Sprint("p", i)), Created: t0})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("proposals %d and %d both accepted on the same state", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrStaleState):
			t.Errorf("loser %d: %v, want ErrStaleState", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no proposal accepted")
	}
	got, _ := s.Conversation(ctx, c.ID)
	if got.Proposals != 1 || got.Head != 1 || string(got.ProposalsDigest) != fmt.Sprint("d", winner) || got.ProposalBytes != int64(len(fmt.Sprint("p", winner))) {
		t.Errorf("conversation %+v, winner %d", got, winner)
	}
	if ps := pendingData(t, s, c.ID, 0, 0, 1); len(ps) != 1 || ps[0] != fmt.Sprint("p", winner) {
		t.Errorf("pending %q, winner %d", ps, winner)
	}
}

func testHandshakeByHash(t *testing.T, s store.Store) {
	_, d := mkUser(t, s, "alice")
	c := mkConv(t, s, d.ID, "g")
	p, err := s.Propose(ctx, store.Proposal{Conversation: c.ID, Epoch: 0, Sender: d.ID, Data: []byte("p"), Hash: []byte("hash-p"), Created: t0})
	must(t, "propose", err)
	cm, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 0, Proposals: 1, Sender: d.ID, Data: []byte("c"), Hash: []byte("hash-c"), Created: t0})
	must(t, "commit", err)
	send(t, s, c.ID, d.ID, 2, t0)
	_, err = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 1, Sender: d.ID, Data: []byte("no hash"), Created: t0})
	must(t, "commit without hash", err)
	h, err := s.HandshakeByHash(ctx, c.ID, []byte("hash-c"))
	if err != nil || h.Seq != cm.Seq || h.Epoch != 1 || h.Kind != store.KindHandshake || h.Sender != d.ID || string(h.Data) != "c" || !h.Created.Equal(t0) || h.Conversation != c.ID {
		t.Errorf("commit by hash: %+v %v", h, err)
	}
	if h, err := s.HandshakeByHash(ctx, c.ID, []byte("hash-p")); err != nil || h.Seq != p.Seq || h.Epoch != 0 {
		t.Errorf("proposal by hash: %+v %v", h, err)
	}
	_, err = s.HandshakeByHash(ctx, c.ID, []byte("other"))
	wantErr(t, "unknown hash", err, store.ErrNotFound)
	_, err = s.HandshakeByHash(ctx, c.ID, nil)
	wantErr(t, "empty hash", err, store.ErrNotFound)
	c2 := mkConv(t, s, d.ID, "g2")
	_, err = s.HandshakeByHash(ctx, c2.ID, []byte("hash-c"))
	wantErr(t, "hash of another conversation", err, store.ErrNotFound)
	// The same hash cannot be stored twice in a conversation.
	_, err = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 2, Sender: d.ID, Data: []byte("c"), Hash: []byte("hash-c"), Created: t0})
	wantErr(t, "duplicate hash", err, store.ErrConflict)
	if got, _ := s.Conversation(ctx, c.ID); got.Epoch != 2 || got.Head != 5 {
		t.Errorf("refused duplicate changed the conversation: %+v", got)
	}
	// Pruned entries take their hashes with them.
	must(t, "ack", s.Ack(ctx, d.ID, c.ID, 5))
	if _, err := s.Prune(ctx, store.PruneOptions{Now: t0}); err != nil {
		t.Fatal(err)
	}
	_, err = s.HandshakeByHash(ctx, c.ID, []byte("hash-c"))
	wantErr(t, "pruned hash", err, store.ErrNotFound)
}

// testDeparted: a removed device may read and acknowledge the log up to
// the commit that removed it, and nothing after it.
func testDeparted(t *testing.T, s store.Store) {
	_, a := mkUser(t, s, "alice")
	_, b := mkUser(t, s, "bob")
	c := mkConv(t, s, a.ID, "g")
	add(t, s, c.ID, a.ID, b.ID)   // seq 1
	send(t, s, c.ID, b.ID, 2, t0) // seq 2-3
	rm, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 1, Sender: a.ID, Data: []byte("rm"), Remove: []store.DeviceID{b.ID}, Created: t0})
	must(t, "remove", err)        // seq 4
	send(t, s, c.ID, a.ID, 2, t0) // seq 5-6
	if ok, _ := s.IsMember(ctx, c.ID, b.ID); ok {
		t.Error("departed bob is a member")
	}
	if m, _ := s.Members(ctx, c.ID); fmt.Sprint(m) != "[alice-1]" {
		t.Errorf("members %v", m)
	}
	m, err := s.Membership(ctx, c.ID, b.ID)
	if err != nil || m.Left != rm.Seq || m.Cursor != 1 || m.Head != 6 || m.Epoch != 2 || m.Readable() != rm.Seq || m.Conversation != c.ID {
		t.Errorf("bob's membership %+v %v", m, err)
	}
	if m, err := s.Membership(ctx, c.ID, a.ID); err != nil || m.Left != 0 || m.Readable() != 6 {
		t.Errorf("alice's membership %+v %v", m, err)
	}
	_, err = s.Membership(ctx, 9999, b.ID)
	wantErr(t, "membership of an unknown conversation", err, store.ErrNotMember)
	res, err := s.AppendEntries(ctx, []store.NewEntry{{Conversation: c.ID, Sender: b.ID, Data: []byte("x"), Created: t0}})
	must(t, "append", err)
	wantErr(t, "departed append", res[0].Err, store.ErrNotMember)
	wantErr(t, "departed ack beyond the removing commit", s.Ack(ctx, b.ID, c.ID, 5), store.ErrInvalid)
	must(t, "departed ack", s.Ack(ctx, b.ID, c.ID, 3))
	must(t, "alice ack", s.Ack(ctx, a.ID, c.ID, 6))
	// Bob's cursor holds the log.
	r, err := s.Prune(ctx, store.PruneOptions{Now: t0})
	must(t, "prune", err)
	if r.Entries != 3 {
		t.Errorf("pruned %d entries with departed bob at 3, want 3", r.Entries)
	}
	if m, _ := s.Membership(ctx, c.ID, b.ID); m.Cursor != 3 || m.Left != rm.Seq {
		t.Errorf("bob after ack %+v", m)
	}
	// Acknowledging the removing commit ends the membership.
	must(t, "departed ack of the commit", s.Ack(ctx, b.ID, c.ID, rm.Seq))
	_, err = s.Membership(ctx, c.ID, b.ID)
	wantErr(t, "membership after the final ack", err, store.ErrNotMember)
	if ms, _ := s.Conversations(ctx, b.ID); len(ms) != 0 {
		t.Errorf("bob's conversations after the final ack %+v", ms)
	}
	wantErr(t, "ack after the final ack", s.Ack(ctx, b.ID, c.ID, rm.Seq), store.ErrNotMember)
	r, _ = s.Prune(ctx, store.PruneOptions{Now: t0})
	if r.Entries != 3 {
		t.Errorf("pruned %d entries after bob left, want 3", r.Entries)
	}
}

// checkInvariants runs the store's consistency check, if it has one.
func checkInvariants(t *testing.T, s store.Store) {
	t.Helper()
	if c, ok := s.(interface{ CheckInvariants(context.Context) error }); ok {
		must(t, "invariants", c.CheckInvariants(ctx))
	}
}

// testDepartedReadded: a departed device added again restarts at the
// commit that adds it.
func testDepartedReadded(t *testing.T, s store.Store) {
	_, a := mkUser(t, s, "alice")
	_, b := mkUser(t, s, "bob")
	c := mkConv(t, s, a.ID, "g")
	add(t, s, c.ID, a.ID, b.ID) // seq 1
	_, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 1, Sender: a.ID, Data: []byte("rm"), Remove: []store.DeviceID{b.ID}, Created: t0})
	must(t, "remove", err)           // seq 2
	send(t, s, c.ID, a.ID, 2, t0)    // seq 3-4
	e := add(t, s, c.ID, a.ID, b.ID) // seq 5
	m, err := s.Membership(ctx, c.ID, b.ID)
	if err != nil || m.Left != 0 || m.Cursor != e.Seq {
		t.Errorf("re-added bob %+v %v", m, err)
	}
	if ok, _ := s.IsMember(ctx, c.ID, b.ID); !ok {
		t.Error("re-added bob is not a member")
	}
	// Adding a current member changes nothing.
	must(t, "ack", s.Ack(ctx, b.ID, c.ID, 5))
	add(t, s, c.ID, a.ID, b.ID) // seq 6
	if m, _ := s.Membership(ctx, c.ID, b.ID); m.Cursor != 5 || m.Left != 0 {
		t.Errorf("bob after a second add %+v", m)
	}
}

// testJoined: a membership records the seq of the commit that added the
// device (0 for the creator); adding a member again keeps it, adding a
// departed device again moves it to the new commit.
func testJoined(t *testing.T, s store.Store) {
	_, a := mkUser(t, s, "alice")
	_, b := mkUser(t, s, "bob")
	c := mkConv(t, s, a.ID, "g")
	send(t, s, c.ID, a.ID, 2, t0)    // seq 1-2
	e := add(t, s, c.ID, a.ID, b.ID) // seq 3
	if m, err := s.Membership(ctx, c.ID, a.ID); err != nil || m.Joined != 0 {
		t.Errorf("creator's membership %+v %v, want joined 0", m, err)
	}
	if m, err := s.Membership(ctx, c.ID, b.ID); err != nil || m.Joined != e.Seq || m.Cursor != e.Seq {
		t.Errorf("added bob %+v %v, want joined and cursor %d", m, err, e.Seq)
	}
	send(t, s, c.ID, b.ID, 1, t0) // seq 4
	must(t, "ack", s.Ack(ctx, b.ID, c.ID, 4))
	add(t, s, c.ID, a.ID, b.ID) // seq 5: bob is a member already (resync)
	if ms, err := s.Conversations(ctx, b.ID); err != nil || len(ms) != 1 || ms[0].Joined != e.Seq || ms[0].Cursor != 4 {
		t.Errorf("bob after a second add %+v %v, want joined %d cursor 4", ms, err, e.Seq)
	}
	rm, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 2, Sender: a.ID, Data: []byte("rm"), Remove: []store.DeviceID{b.ID}, Created: t0})
	must(t, "remove", err) // seq 6
	if m, _ := s.Membership(ctx, c.ID, b.ID); m.Joined != e.Seq || m.Left != rm.Seq {
		t.Errorf("departed bob %+v, want joined %d", m, e.Seq)
	}
	send(t, s, c.ID, a.ID, 1, t0)     // seq 7
	e2 := add(t, s, c.ID, a.ID, b.ID) // seq 8
	// Added again before it read its old membership to the end: it keeps
	// its joined seq, and the time it was out is its gap.
	if m, _ := s.Membership(ctx, c.ID, b.ID); m.Joined != e.Seq || m.Cursor != e2.Seq || m.Left != 0 || m.GapFrom != rm.Seq || m.GapTo != e2.Seq {
		t.Errorf("re-added bob %+v, want joined %d cursor %d gap (%d, %d]", m, e.Seq, e2.Seq, rm.Seq, e2.Seq)
	}
	if ms, err := s.Conversations(ctx, b.ID); err != nil || len(ms) != 1 || ms[0].GapFrom != rm.Seq || ms[0].GapTo != e2.Seq {
		t.Errorf("bob's conversations %+v %v, want gap (%d, %d]", ms, err, rm.Seq, e2.Seq)
	}
	checkInvariants(t, s)
	// Removed and added again a second time without reading: the new gap
	// replaces the old one, and the joined seq moves to the old gap's end.
	rm2, err := s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 4, Sender: a.ID, Data: []byte("rm"), Remove: []store.DeviceID{b.ID}, Created: t0})
	must(t, "remove", err)            // seq 9
	e4 := add(t, s, c.ID, a.ID, b.ID) // seq 10
	if m, _ := s.Membership(ctx, c.ID, b.ID); m.Joined != e2.Seq || m.Cursor != e4.Seq || m.GapFrom != rm2.Seq || m.GapTo != e4.Seq {
		t.Errorf("bob re-added twice %+v, want joined %d cursor %d gap (%d, %d]", m, e2.Seq, e4.Seq, rm2.Seq, e4.Seq)
	}
	checkInvariants(t, s)
	// Removed, the departure acknowledged, and added again: a new start.
	rm, err = s.Commit(ctx, store.Commit{Conversation: c.ID, Epoch: 6, Sender: a.ID, Data: []byte("rm"), Remove: []store.DeviceID{b.ID}, Created: t0})
	must(t, "remove", err) // seq 11
	must(t, "departed ack", s.Ack(ctx, b.ID, c.ID, rm.Seq))
	e3 := add(t, s, c.ID, a.ID, b.ID) // seq 12
	if m, _ := s.Membership(ctx, c.ID, b.ID); m.Joined != e3.Seq || m.Cursor != e3.Seq || m.Left != 0 || m.GapTo != 0 {
		t.Errorf("bob added after leaving %+v, want joined and cursor %d and no gap", m, e3.Seq)
	}
}
