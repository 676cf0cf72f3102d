package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store/postgres"
)

// catchUp processes the handshake entries of others after seq in the
// member's group, merging commits, and returns the last seq seen.
func catchUp(t *testing.T, e *env, m *member, after uint64) uint64 {
	t.Helper()
	var es protocol.EntriesResponse
	e.must(m.d.token, "GET", fmt.Sprintf("/v1/conversations/%d/entries?after=%d", m.conv, after), nil, &es)
	for _, en := range es.Entries {
		after = en.Seq
		if en.Kind != protocol.KindHandshake || en.Sender == m.d.id {
			continue
		}
		p, err := m.g.Process(en.Data)
		if err != nil {
			t.Fatalf("%s processes seq %d: %v", m.d.user.name, en.Seq, err)
		}
		if p.Commit != nil {
			if err := m.g.MergeStagedCommit(p.Commit); err != nil {
				t.Fatal(err)
			}
		}
	}
	return after
}

// propose posts an update proposal of the member to env e.
func (m *member) propose(t *testing.T, e *env) ([]byte, protocol.HandshakeResponse) {
	t.Helper()
	prop, err := m.g.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	var res protocol.HandshakeResponse
	e.must(m.d.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", m.conv), protocol.HandshakeRequest{Epoch: m.g.Epoch(), Message: prop}, &res)
	return prop, res
}

// A proposal accepted before a restart can be committed by reference
// after it: the follower state with the proposal is in the store.
func TestProposalSurvivesRestart(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	prop, res := bob.propose(t, e)
	if res.Epoch != 1 {
		t.Fatalf("proposal answered epoch %d", res.Epoch)
	}
	e.restart()
	if _, err := alice.g.Process(prop); err != nil {
		t.Fatal(err)
	}
	pc, err := alice.g.Commit(mls.CommitOptions{IncludePending: true, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	e.must(alice.d.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv), commitReq(1, pc, nil), &res)
	if err := alice.g.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	if res.Epoch != 2 {
		t.Fatalf("commit answered epoch %d", res.Epoch)
	}
	catchUp(t, e, bob, 1)
	if bob.g.Epoch() != 2 {
		t.Fatalf("bob at epoch %d", bob.g.Epoch())
	}
	bob.send(t, "after the restart")
}

// pgDSN returns the test PostgreSQL: $PARLEY_TEST_POSTGRES or the local
// default of the build machines.
func pgDSN() string { return testenv.PostgresURL() }

// pgSchema returns a fresh schema name, dropped when the test ends; it
// skips the test when PostgreSQL is unreachable (fails under CI=true;
// testenv).
func pgSchema(t *testing.T) string {
	t.Helper()
	dsn := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		testenv.Unavailable(t, testenv.NeedPostgres, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "parley_httptest_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// pgNode starts a node on the PostgreSQL schema.
func pgNode(t *testing.T, schema string) *env {
	t.Helper()
	return newEnvOn(t, t.TempDir(), func() checkedStore {
		c := postgres.NewConfig(pgDSN())
		c.Schema, c.MaxConns = schema, 4
		st, err := postgres.Open(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}, nil)
}

// Two nodes on one PostgreSQL schema: proposals accepted concurrently by
// node A and node B are both kept in the follower state, and a commit
// including both by reference is accepted by either node.
func TestProposalsAcrossNodes(t *testing.T) {
	schema := pgSchema(t)
	a := pgNode(t, schema)
	b := pgNode(t, schema)
	alice, bob := setup2(t, a)
	// Carol joins through node B (the devices' sessions are in the store).
	c := a.register("carol")
	c.upload(1, false)
	alice.add(t, "carol")
	carol := c.join(t, alice.conv)
	catchUp(t, b, bob, 1)
	if bob.g.Epoch() != 2 || carol.g.Epoch() != 2 {
		t.Fatalf("epochs bob %d carol %d", bob.g.Epoch(), carol.g.Epoch())
	}
	// Bob proposes to node A while carol proposes to node B.
	var props [2][]byte
	var wg sync.WaitGroup
	for i, x := range []struct {
		m *member
		e *env
	}{{bob, a}, {carol, b}} {
		wg.Go(func() { props[i], _ = x.m.propose(t, x.e) })
	}
	wg.Wait()
	for _, p := range props {
		if _, err := alice.g.Process(p); err != nil {
			t.Fatal(err)
		}
	}
	// Alice commits both by reference, to node B, then node A accepts her
	// next commit on the state node B wrote.
	pc, err := alice.g.Commit(mls.CommitOptions{IncludePending: true, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	var res protocol.HandshakeResponse
	b.must(alice.d.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv), commitReq(2, pc, nil), &res)
	if err := alice.g.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	if res.Epoch != 3 {
		t.Fatalf("commit answered epoch %d", res.Epoch)
	}
	catchUp(t, a, bob, 2)
	catchUp(t, b, carol, 2)
	if bob.g.Epoch() != 3 || carol.g.Epoch() != 3 {
		t.Fatalf("epochs bob %d carol %d", bob.g.Epoch(), carol.g.Epoch())
	}
	prop, _ := bob.propose(t, b)
	if _, err := alice.g.Process(prop); err != nil {
		t.Fatal(err)
	}
	pc, err = alice.g.Commit(mls.CommitOptions{IncludePending: true, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	a.must(alice.d.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv), commitReq(3, pc, nil), &res)
	if res.Epoch != 4 {
		t.Fatalf("second commit answered epoch %d", res.Epoch)
	}
}

// A handshake retried with the same bytes after its answer was lost gets
// the original answer, even after later commits; the log keeps one entry.
func TestHandshakeRetryIdempotent(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	path := fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv)

	prop, first := bob.propose(t, e)
	var again protocol.HandshakeResponse
	e.must(bob.d.token, "POST", path, protocol.HandshakeRequest{Epoch: 1, Message: prop}, &again)
	if again != first {
		t.Fatalf("retried proposal answered %+v, first %+v", again, first)
	}
	if _, err := alice.g.Process(prop); err != nil {
		t.Fatal(err)
	}
	pc, err := alice.g.Commit(mls.CommitOptions{IncludePending: true, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	req := commitReq(1, pc, nil)
	e.must(alice.d.token, "POST", path, req, &first)
	if err := alice.g.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	e.must(alice.d.token, "POST", path, req, &again)
	if again != first || first.Epoch != 2 {
		t.Fatalf("retried commit answered %+v, first %+v", again, first)
	}
	// Bob cannot claim alice's commit as his.
	e.wantErr(protocol.CodeStaleEpoch, bob.d.token, "POST", path, req)
	// After another commit the retry still gets its own answer.
	catchUp(t, e, bob, first.Seq-1)
	pc2, err := bob.g.Commit(mls.CommitOptions{ForcePath: true, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	var second protocol.HandshakeResponse
	e.must(bob.d.token, "POST", path, commitReq(2, pc2, nil), &second)
	e.must(alice.d.token, "POST", path, req, &again)
	if again != first {
		t.Fatalf("retry after a later commit answered %+v, want %+v", again, first)
	}
	var info protocol.ConversationInfo
	e.must(alice.d.token, "GET", fmt.Sprintf("/v1/conversations/%d", alice.conv), nil, &info)
	if info.Epoch != 3 || info.Head != second.Seq || second.Seq != first.Seq+1 {
		t.Fatalf("conversation %+v after retries (commits at %d and %d)", info, first.Seq, second.Seq)
	}
}

// A device removed by a commit receives that commit over its WebSocket,
// and again after reconnecting, but nothing after it; acknowledging it
// ends its membership.
func TestRemovedDeviceReceivesCommit(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e)
	ws := bob.d.dial(t)
	ws.send(&protocol.SubscribeFrame{})
	alice.send(t, "before")
	if es := ws.entries(1, 5*time.Second); es[0].Seq != 2 {
		t.Fatalf("bob got %+v", es[0])
	}
	var bobLeaf mls.LeafIndex = bob.g.OwnLeaf()
	pc, err := alice.g.Commit(mls.CommitOptions{Remove: []mls.LeafIndex{bobLeaf}, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	var res protocol.HandshakeResponse
	e.must(alice.d.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv), commitReq(1, pc, nil), &res)
	if err := alice.g.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	alice.send(t, "after")
	es := ws.entries(1, 5*time.Second)
	if es[0].Seq != res.Seq || es[0].Kind != protocol.KindHandshake {
		t.Fatalf("bob got %+v, want the removing commit at %d", es[0], res.Seq)
	}
	p, err := bob.g.Process(es[0].Data)
	if err != nil || p.Commit == nil || !p.Commit.SelfRemoved {
		t.Fatalf("bob processes the commit: %+v %v", p, err)
	}
	ws.silent(300 * time.Millisecond)

	// Departed, bob is no member: no sending, no listing.
	base := fmt.Sprintf("/v1/conversations/%d", alice.conv)
	msg, _ := alice.g.Encrypt([]byte("x"), nil)
	e.wantErr(protocol.CodeNotMember, bob.d.token, "POST", base+"/messages", protocol.SendRequest{Message: msg})
	var list protocol.ConversationList
	e.must(bob.d.token, "GET", "/v1/conversations", nil, &list)
	if len(list.Conversations) != 0 {
		t.Errorf("bob lists %+v", list.Conversations)
	}
	// Reconnecting from before the commit delivers it again, and only it.
	ws.c.CloseNow()
	ws = bob.d.dial(t)
	ws.send(&protocol.SubscribeFrame{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: 2}}})
	if es := ws.entries(1, 5*time.Second); es[0].Seq != res.Seq {
		t.Fatalf("after reconnecting bob got %+v", es[0])
	}
	ws.silent(300 * time.Millisecond)
	// The log over HTTP stops at the commit too.
	var page protocol.EntriesResponse
	e.must(bob.d.token, "GET", base+"/entries?after=0", nil, &page)
	if n := len(page.Entries); n == 0 || page.Entries[n-1].Seq != res.Seq || page.More {
		t.Fatalf("bob's entries %+v", page)
	}
	e.wantErr(protocol.CodeBadRequest, bob.d.token, "POST", "/v1/ack", protocol.AckRequest{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: res.Seq + 1}}})
	e.must(bob.d.token, "POST", "/v1/ack", protocol.AckRequest{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: res.Seq}}}, nil)
	e.wantErr(protocol.CodeNotMember, bob.d.token, "GET", base+"/entries?after=0", nil)
	alice.send(t, "later")
	ws.silent(300 * time.Millisecond)
}

// A device removed and added again before it acknowledged its removal
// never reads what was sent while it was out, over HTTP or the WebSocket,
// whatever cursor it names; it still reads the rest of its old membership.
func TestReaddedDeviceGap(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := setup2(t, e) // seq 1: the commit adding bob
	base := fmt.Sprintf("/v1/conversations/%d", alice.conv)
	before := alice.send(t, "before")
	pc, err := alice.g.Commit(mls.CommitOptions{Remove: []mls.LeafIndex{bob.g.OwnLeaf()}})
	if err != nil {
		t.Fatal(err)
	}
	var rm protocol.HandshakeResponse
	e.must(alice.d.token, "POST", base+"/handshake", commitReq(alice.g.Epoch(), pc, nil), &rm)
	if err := alice.g.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	out := []uint64{alice.send(t, "while out 1").Seq, alice.send(t, "while out 2").Seq}
	bob.d.upload(1, false)
	alice.add(t, "bob")
	var info protocol.ConversationInfo
	e.must(alice.d.token, "GET", base, nil, &info)
	readd := info.Head
	after := alice.send(t, "after")
	want := []uint64{before.Seq, rm.Seq, after.Seq}
	t.Logf("before %d, removed %d, out %v, added again %d, after %d", before.Seq, rm.Seq, out, readd, after.Seq)

	// Over HTTP, one entry per page, so that a page boundary meets the gap.
	read := func(from uint64, limit int) []uint64 {
		var seqs []uint64
		for range 20 {
			var page protocol.EntriesResponse
			e.must(bob.d.token, "GET", fmt.Sprintf("%s/entries?after=%d&limit=%d", base, from, limit), nil, &page)
			for _, en := range page.Entries {
				seqs = append(seqs, en.Seq)
				from = en.Seq
			}
			if !page.More {
				return seqs
			}
		}
		t.Fatalf("entries from %d: no end after 20 pages: %v", from, seqs)
		return nil
	}
	for _, limit := range []int{1, 2, 100} {
		if got := read(0, limit); !slices.Equal(got, want) {
			t.Errorf("bob reads %v from the start (pages of %d), want %v", got, limit, want)
		}
	}
	for _, from := range append(out, rm.Seq, readd) {
		if got := read(from, 100); !slices.Equal(got, want[2:]) {
			t.Errorf("bob reads %v after %d, want %v", got, from, want[2:])
		}
	}
	// Over the WebSocket, from a cursor before the gap and from one inside.
	for _, from := range []uint64{1, out[0]} {
		ws := bob.d.dial(t)
		ws.send(&protocol.SubscribeFrame{Cursors: []protocol.Cursor{{Conversation: alice.conv, Seq: from}}})
		exp := want
		if from > rm.Seq {
			exp = want[2:]
		}
		var got []uint64
		for _, en := range ws.entries(len(exp), 5*time.Second) {
			got = append(got, en.Seq)
		}
		if !slices.Equal(got, exp) {
			t.Errorf("bob is pushed %v from %d, want %v", got, from, exp)
		}
		ws.silent(300 * time.Millisecond)
		ws.c.CloseNow()
	}
}
