package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/httpapi"
)

// getTree fetches the tree of an epoch: the status and the body.
func (e *env) getTree(token string, conv protocol.ConversationID, query string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest("GET", fmt.Sprintf("%s/v1/conversations/%d/tree%s", e.srv.URL, conv, query), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") != "application/octet-stream" {
		e.t.Errorf("tree served as %q", resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, body
}

// TestTreeEndpoint: the server serves the ratchet tree of each kept epoch
// exactly as the members have it, to member users only; older epochs are
// gone, and the GroupInfo comes without the tree on request.
func TestTreeEndpoint(t *testing.T) {
	const history = 2
	e := newEnv(t, func(dc *delivery.Config, _ *httpapi.Config) { dc.TreeHistoryEpochs = history })
	a := e.register("alice")
	b := e.register("bob")
	carol := e.register("carol")
	b.upload(1, false)
	alice := a.createConversation()
	trees := map[uint64][]byte{}
	keep := func() {
		tree, err := alice.g.RatchetTree()
		if err != nil {
			t.Fatal(err)
		}
		trees[alice.g.Epoch()] = tree
	}
	keep()
	alice.add(t, "bob")
	keep()
	for range 4 {
		pc, err := alice.g.Commit(mls.CommitOptions{ForcePath: true, ExternalPub: true})
		if err != nil {
			t.Fatal(err)
		}
		e.must(a.token, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", alice.conv), commitReq(alice.g.Epoch(), pc, nil), nil)
		if err := alice.g.MergePendingCommit(pc); err != nil {
			t.Fatal(err)
		}
		keep()
	}
	cur := alice.g.Epoch() // 5
	for epoch := cur - history; epoch <= cur; epoch++ {
		status, body := e.getTree(b.token, alice.conv, fmt.Sprintf("?epoch=%d", epoch))
		if status != http.StatusOK || !bytes.Equal(body, trees[epoch]) {
			t.Errorf("tree of epoch %d: status %d, %d bytes; want the members' %d bytes", epoch, status, len(body), len(trees[epoch]))
		}
	}
	for _, tc := range []struct {
		token, query string
		conv         protocol.ConversationID
		status       int
	}{
		{b.token, fmt.Sprintf("?epoch=%d", cur-history-1), alice.conv, http.StatusGone},
		{b.token, "?epoch=0", alice.conv, http.StatusGone},
		{b.token, fmt.Sprintf("?epoch=%d", cur+1), alice.conv, http.StatusBadRequest},
		{b.token, "", alice.conv, http.StatusBadRequest},
		{b.token, "?epoch=x", alice.conv, http.StatusBadRequest},
		{carol.token, fmt.Sprintf("?epoch=%d", cur), alice.conv, http.StatusForbidden},
		{b.token, "?epoch=0", alice.conv + 100, http.StatusNotFound},
		{"", fmt.Sprintf("?epoch=%d", cur), alice.conv, http.StatusUnauthorized},
	} {
		if status, _ := e.getTree(tc.token, tc.conv, tc.query); status != tc.status {
			t.Errorf("tree of conversation %d%s: status %d, want %d", tc.conv, tc.query, status, tc.status)
		}
	}
	var gi protocol.GroupInfoResponse
	e.must(b.token, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo?tree=0", alice.conv), nil, &gi)
	if gi.Epoch != cur || len(gi.GroupInfo) == 0 || gi.RatchetTree != nil {
		t.Errorf("GroupInfo without the tree: epoch %d, %d bytes of tree", gi.Epoch, len(gi.RatchetTree))
	}
	e.must(b.token, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo", alice.conv), nil, &gi)
	if !bytes.Equal(gi.RatchetTree, trees[cur]) {
		t.Error("the GroupInfo's tree is not the members' tree")
	}
	e.wantErr(protocol.CodeBadRequest, b.token, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo?tree=maybe", alice.conv), nil)
}
