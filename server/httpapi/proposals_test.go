package httpapi_test

import (
	"fmt"
	"testing"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/httpapi"
)

// Proposals accepted before restarts (each a new service and follower on
// the same SQLite file) are committed by reference after them; the epoch's
// cap refuses a proposal beyond it with 409 too_many_proposals until the
// commit starts the next epoch.
func TestPendingProposalsCommittedAfterRestart(t *testing.T) {
	e := newEnv(t, func(d *delivery.Config, _ *httpapi.Config) { d.MaxPendingProposals = 2 })
	alice, bob := setup2(t, e)
	c := e.register("carol")
	c.upload(1, false)
	alice.add(t, "carol")
	carol := c.join(t, alice.conv)
	start := catchUp(t, e, bob, 1) // the seq of the commit that added carol
	if bob.g.Epoch() != 2 || carol.g.Epoch() != 2 {
		t.Fatalf("epochs bob %d carol %d", bob.g.Epoch(), carol.g.Epoch())
	}
	path := fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv)

	fromBob, _ := bob.propose(t, e)
	e.restart()
	fromCarol, _ := carol.propose(t, e) // on a group rebuilt from the store
	e.restart()
	extra, err := bob.g.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	pe := e.wantErr(protocol.CodeTooManyProposals, bob.d.token, "POST", path, protocol.HandshakeRequest{Epoch: 2, Message: extra})
	t.Logf("third proposal: %s", pe.Message)
	var info protocol.ConversationInfo
	e.must(alice.d.token, "GET", fmt.Sprintf("/v1/conversations/%d", alice.conv), nil, &info)

	for _, p := range [][]byte{fromBob, fromCarol} {
		if _, err := alice.g.Process(p); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := alice.g.Commit(mls.CommitOptions{IncludePending: true, InlineRatchetTree: true})
	if err != nil {
		t.Fatal(err)
	}
	var res protocol.HandshakeResponse
	e.must(alice.d.token, "POST", path, commitReq(2, pc, nil), &res)
	if err := alice.g.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	if res.Epoch != 3 || res.Seq != info.Head+1 {
		t.Fatalf("commit answered %+v; the head was %d before it", res, info.Head)
	}
	catchUp(t, e, bob, start)
	catchUp(t, e, carol, start)
	if bob.g.Epoch() != 3 || carol.g.Epoch() != 3 {
		t.Fatalf("epochs bob %d carol %d", bob.g.Epoch(), carol.g.Epoch())
	}
	// The new epoch has room again.
	if _, res := bob.propose(t, e); res.Epoch != 3 {
		t.Fatalf("proposal in the new epoch answered %+v", res)
	}
	bob.send(t, "after the commit")
}
