package delivery_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/follower"
	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/store/sqlite"
)

// countingStore records the bytes each Propose is handed: the sum of the
// lengths of the byte-slice fields of its store.Proposal.
type countingStore struct {
	*sqlite.Store
	mu      sync.Mutex
	writes  []int
	snapped chan snapshotCall // SnapshotTree's calls
}

// snapshotCall is what a call of SnapshotTree did: whether it stored a
// snapshot, and the conversation's epoch after it.
type snapshotCall struct {
	wrote bool
	epoch uint64
	err   error
}

func (s *countingStore) SnapshotTree(ctx context.Context, id store.ConversationID) (bool, error) {
	wrote, err := s.Store.SnapshotTree(ctx, id)
	call := snapshotCall{wrote: wrote, err: err}
	if c, cerr := s.Store.Conversation(ctx, id); cerr == nil {
		call.epoch = c.Epoch
	}
	select {
	case s.snapped <- call:
	default: // a test that does not read them
	}
	return wrote, err
}

func (s *countingStore) Propose(ctx context.Context, p store.Proposal) (store.Entry, error) {
	n := 0
	v := reflect.ValueOf(p)
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Uint8 {
			n += f.Len()
		}
	}
	e, err := s.Store.Propose(ctx, p)
	if err == nil {
		s.mu.Lock()
		s.writes = append(s.writes, n)
		s.mu.Unlock()
	}
	return e, err
}

// proposalEnv is a delivery service with the real follower on a SQLite
// file, and a one-member MLS group whose member proposes Updates.
type proposalEnv struct {
	dir  string
	st   *countingStore
	svc  *delivery.Service
	cfg  delivery.Config
	sess *delivery.Session
	g    *mls.Group
	conv protocol.ConversationID
}

func newProposalEnv(tb testing.TB, mod func(*delivery.Config)) *proposalEnv {
	tb.Helper()
	ctx := context.Background()
	e := &proposalEnv{dir: tb.TempDir(), cfg: delivery.DefaultConfig()}
	e.cfg.AllowForeignCredentials = true // the member's credential is a plain basic one
	e.cfg.CipherSuites = []uint16{uint16(mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519)}
	if mod != nil {
		mod(&e.cfg)
	}
	e.open(tb)
	signer, err := mls.GenerateSigner(mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	_, dev, err := e.st.CreateUser(ctx, store.NewUser{Name: "a", IdentityKey: make([]byte, 32), Created: now,
		Device: store.Device{ID: "d1", Scheme: 0x0807, SignatureKey: signer.PublicKey(), Created: now}})
	if err != nil {
		tb.Fatal(err)
	}
	e.sess = &delivery.Session{Device: dev.ID, User: dev.User, UserName: "a"}
	e.g, err = mls.CreateGroup(nil, mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519, []byte("group"), signer, mls.BasicCredential([]byte("a")), mls.CreateOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	gi, err := e.g.GroupInfo(mls.GroupInfoOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tree, err := e.g.RatchetTree()
	if err != nil {
		tb.Fatal(err)
	}
	info, err := e.svc.CreateConversation(ctx, e.sess, protocol.CreateConversationRequest{GroupID: []byte("group"),
		CipherSuite: uint16(mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519), GroupInfo: gi, RatchetTree: tree})
	if err != nil {
		tb.Fatal(err)
	}
	e.conv = info.ID
	return e
}

// open opens the store and a new service with a new follower on it: after
// a close, a process restart.
func (e *proposalEnv) open(tb testing.TB) {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.NewConfig(filepath.Join(e.dir, "d.db")))
	if err != nil {
		tb.Fatal(err)
	}
	e.st = &countingStore{Store: st, snapped: make(chan snapshotCall, 100)}
	tb.Cleanup(func() { st.Close() })
	if e.svc, err = delivery.New(e.cfg, e.st, nopBlobs{}, follower.New(nil), delivery.Options{}); err != nil {
		tb.Fatal(err)
	}
}

// restart closes the store and opens a new service on the same file.
func (e *proposalEnv) restart(tb testing.TB) {
	tb.Helper()
	if err := e.st.Close(); err != nil {
		tb.Fatal(err)
	}
	e.open(tb)
}

// update returns a new Update proposal of the member.
func (e *proposalEnv) update(tb testing.TB) []byte {
	tb.Helper()
	msg, err := e.g.ProposeUpdate()
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

// handshake submits a message of the member's current epoch.
func (e *proposalEnv) handshake(msg []byte) (protocol.HandshakeResponse, error) {
	return e.svc.Handshake(context.Background(), e.sess, e.conv, protocol.HandshakeRequest{Epoch: e.g.Epoch(), Message: msg})
}

// propose proposes n Updates, each of which must be accepted.
func (e *proposalEnv) propose(tb testing.TB, n int) {
	tb.Helper()
	for i := range n {
		if _, err := e.handshake(e.update(tb)); err != nil {
			tb.Fatalf("proposal %d: %v", i+1, err)
		}
	}
}

// wantTooMany checks that err is a too_many_proposals refusal.
func wantTooMany(t *testing.T, what string, err error) {
	t.Helper()
	pe, ok := delivery.AsProtocolError(err)
	if !ok || pe.Code != protocol.CodeTooManyProposals {
		t.Fatalf("%s: %v, want %s", what, err, protocol.CodeTooManyProposals)
	}
	if pe.Code.HTTPStatus() != 409 {
		t.Errorf("%s answers HTTP %d, want 409", pe.Code, pe.Code.HTTPStatus())
	}
}

// Proposals beyond the epoch's caps (count, then total size) are refused
// and change nothing: no log entry, no pending proposal, no write.
func TestPendingProposalCaps(t *testing.T) {
	ctx := context.Background()
	e := newProposalEnv(t, func(c *delivery.Config) { c.MaxPendingProposals = 3 })
	e.propose(t, 3)
	before, err := e.st.Conversation(ctx, store.ConversationID(e.conv))
	if err != nil || before.Proposals != 3 {
		t.Fatalf("after 3 proposals: %+v %v", before, err)
	}
	_, err = e.handshake(e.update(t))
	wantTooMany(t, "proposal 4 of at most 3", err)
	after, err := e.st.Conversation(ctx, store.ConversationID(e.conv))
	if err != nil || after.Proposals != 3 || after.Head != before.Head || after.ProposalBytes != before.ProposalBytes || len(e.st.writes) != 3 {
		t.Fatalf("refused proposal changed the conversation: %+v (before %+v), %d writes", after, before, len(e.st.writes))
	}
	if ps, err := e.st.PendingProposals(ctx, after.ID, 0, 0, 3); err != nil || len(ps) != 3 {
		t.Fatalf("pending proposals after the refusal: %d, %v", len(ps), err)
	}

	// The size cap: room for two Updates, not three.
	one := len(e.update(t))
	e = newProposalEnv(t, func(c *delivery.Config) { c.MaxPendingProposalBytes = int64(2*one + one/2) })
	e.propose(t, 2)
	_, err = e.handshake(e.update(t))
	wantTooMany(t, "a proposal beyond the pending bytes", err)
	if c, err := e.st.Conversation(ctx, store.ConversationID(e.conv)); err != nil || c.Proposals != 2 || c.Head != 2 || len(e.st.writes) != 2 {
		t.Fatalf("refused proposal changed the conversation: %+v %v", c, err)
	}
}

// What the store is handed for an accepted proposal does not grow with
// the proposals already pending, and the stored follower state is not
// rewritten: proposal 1,000 writes what proposal 1 wrote.
func TestProposalWriteSize(t *testing.T) {
	ctx := context.Background()
	e := newProposalEnv(t, nil)
	c0, err := e.st.Conversation(ctx, store.ConversationID(e.conv))
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000 // the default cap
	e.propose(t, n)
	first, last := e.st.writes[0], e.st.writes[n-1]
	t.Logf("proposal 1 handed the store %d bytes, proposal %d %d bytes", first, n, last)
	if last > first+first/4 {
		t.Errorf("proposal %d handed the store %d bytes, proposal 1 %d: the write grows with the pending proposals", n, last, first)
	}
	c, err := e.st.Conversation(ctx, store.ConversationID(e.conv))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.FollowerState, c0.FollowerState) || c.Proposals != n {
		t.Errorf("after %d proposals the follower state is %d bytes (was %d), %d proposals", n, len(c.FollowerState), len(c0.FollowerState), c.Proposals)
	}
	_, err = e.handshake(e.update(t))
	wantTooMany(t, "proposal 1,001 with the default cap", err)
}

// A group rebuilt after a restart (new follower, new service, same SQLite
// file) has the pending proposals accepted before it: the next proposal
// extends them and the store stays consistent. (The commit by reference
// after a restart is server/httpapi's TestPendingProposalsCommittedAfterRestart.)
func TestPendingProposalsAfterRestart(t *testing.T) {
	ctx := context.Background()
	e := newProposalEnv(t, nil)
	e.propose(t, 5)
	e.restart(t)
	e.propose(t, 1)
	c, err := e.st.Conversation(ctx, store.ConversationID(e.conv))
	if err != nil || c.Proposals != 6 {
		t.Fatalf("after the restart: %+v %v", c, err)
	}
	if err := e.st.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkProposal measures accepting one more Update proposal when a
// number of proposals of the epoch are pending, through the delivery
// service, the real follower and SQLite. Run it with a fixed count
// (-benchtime=100x): every iteration adds a pending proposal. store-B/op
// is what each Propose hands the store.
func BenchmarkProposal(b *testing.B) {
	for _, pending := range []int{10, 1000} {
		b.Run(fmt.Sprint("pending=", pending), func(b *testing.B) {
			e := newProposalEnv(b, func(c *delivery.Config) { c.MaxPendingProposals, c.MaxPendingProposalBytes = 1<<20, 1<<40 })
			e.propose(b, pending)
			first := len(e.st.writes)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				msg := e.update(b)
				b.StartTimer()
				if _, err := e.handshake(msg); err != nil {
					b.Fatal(err)
				}
			}
			total := 0
			for _, n := range e.st.writes[first:] {
				total += n
			}
			b.ReportMetric(float64(total)/float64(len(e.st.writes)-first), "store-B/op")
		})
	}
}
