package treekem

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/tree"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/vectors"
	"github.com/parley-chat/parley/mls/internal/wire"
)

type treeKEMCase struct {
	CipherSuite             uint16      `json:"cipher_suite"`
	GroupID                 vectors.Hex `json:"group_id"`
	Epoch                   uint64      `json:"epoch"`
	ConfirmedTranscriptHash vectors.Hex `json:"confirmed_transcript_hash"`
	RatchetTree             vectors.Hex `json:"ratchet_tree"`
	LeavesPrivate           []struct {
		Index          uint32      `json:"index"`
		EncryptionPriv vectors.Hex `json:"encryption_priv"`
		SignaturePriv  vectors.Hex `json:"signature_priv"`
		PathSecrets    []struct {
			Node       uint32      `json:"node"`
			PathSecret vectors.Hex `json:"path_secret"`
		} `json:"path_secrets"`
	} `json:"leaves_private"`
	UpdatePaths []struct {
		Sender        uint32        `json:"sender"`
		UpdatePath    vectors.Hex   `json:"update_path"`
		PathSecrets   []vectors.Hex `json:"path_secrets"`
		CommitSecret  vectors.Hex   `json:"commit_secret"`
		TreeHashAfter vectors.Hex   `json:"tree_hash_after"`
	} `json:"update_paths"`
}

// TestVectorsTreeKEM runs treekem.json as test-vectors.md §TreeKEM
// prescribes.
func TestVectorsTreeKEM(t *testing.T) {
	var cases []treeKEMCase
	vectors.Load(t, "treekem.json", &cases)
	c := vectors.NewCounter("treekem.json")
	for i, tc := range cases {
		c.Run(t, fmt.Sprintf("%d/suite=%d", i, tc.CipherSuite), func(t *testing.T) {
			runTreeKEMCase(t, &tc)
		})
	}
	c.Report(t)
}

func runTreeKEMCase(t *testing.T, tc *treeKEMCase) {
	s, err := suite.New(suite.ID(tc.CipherSuite))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := tree.Decode(s, tc.RatchetTree)
	if err != nil {
		t.Fatal(err)
	}

	// Private states, checked against the tree.
	privs := map[treemath.LeafIndex]*Private{}
	sigPrivs := map[treemath.LeafIndex][]byte{}
	for _, lp := range tc.LeavesPrivate {
		li := treemath.LeafIndex(lp.Index)
		p, err := NewPrivate(s, li, lp.EncryptionPriv)
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range lp.PathSecrets {
			if err := p.SetPathSecret(treemath.NodeIndex(ps.Node), PathSecret(ps.PathSecret)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Check(tr); err != nil {
			t.Fatal(err)
		}
		privs[li], sigPrivs[li] = p, lp.SignaturePriv
	}

	th, err := tr.TreeHash()
	if err != nil {
		t.Fatal(err)
	}
	gc := &wire.GroupContext{
		Version:                 wire.ProtocolVersionMLS10,
		CipherSuite:             suite.ID(tc.CipherSuite),
		GroupID:                 tc.GroupID,
		Epoch:                   tc.Epoch,
		TreeHash:                th, // replaced by the tree hash after the merge
		ConfirmedTranscriptHash: tc.ConfirmedTranscriptHash,
		Extensions:              wire.Extensions{},
	}
	ctx := GroupContext(gc)

	for k, u := range tc.UpdatePaths {
		sender := treemath.LeafIndex(u.Sender)
		var up wire.UpdatePath
		if err := codec.Unmarshal(u.UpdatePath, &up); err != nil {
			t.Fatalf("update path %d: %v", k, err)
		}

		// Parent-hash valid relative to ratchet_tree, and the merged tree
		// has the expected hash.
		merged, err := MergeUpdatePath(tr, sender, &up, tc.GroupID)
		if err != nil {
			t.Fatalf("update path %d: %v", k, err)
		}
		if err := merged.VerifyParentHashes(); err != nil {
			t.Errorf("update path %d: merged tree: %v", k, err)
		}
		got, err := merged.TreeHash()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, u.TreeHashAfter) {
			t.Errorf("update path %d: tree hash after = %x, want %x", k, got, u.TreeHashAfter)
		}

		// Every other member processes it.
		for li := range tr.Members() {
			if li == sender {
				continue
			}
			p := privs[li]
			if p == nil {
				t.Fatalf("update path %d: no private state for leaf %d", k, li)
			}
			a, err := ApplyUpdatePath(tr, p, sender, &up, ApplyParams{GroupID: tc.GroupID, Context: ctx})
			if err != nil {
				t.Errorf("update path %d: %v", k, err)
				continue
			}
			if int(li) >= len(u.PathSecrets) || !bytes.Equal(a.PathSecret, u.PathSecrets[li]) {
				t.Errorf("update path %d: leaf %d: path secret %x, want %x", k, li, a.PathSecret, u.PathSecrets[li])
			}
			if !bytes.Equal(a.CommitSecret, u.CommitSecret) {
				t.Errorf("update path %d: leaf %d: commit secret %x, want %x", k, li, a.CommitSecret, u.CommitSecret)
			}
			if h, _ := a.Tree.TreeHash(); !bytes.Equal(h, u.TreeHashAfter) {
				t.Errorf("update path %d: leaf %d: tree hash after = %x, want %x", k, li, h, u.TreeHashAfter)
			}
			if err := a.Private.Check(a.Tree); err != nil {
				t.Errorf("update path %d: leaf %d: new private state: %v", k, li, err)
			}
		}
		// The input state is untouched.
		if h, _ := tr.TreeHash(); !bytes.Equal(h, th) {
			t.Fatalf("update path %d: ratchet_tree modified", k)
		}

		// A fresh UpdatePath from the same sender reaches everyone.
		if sigPrivs[sender] == nil {
			t.Fatalf("update path %d: no signature key for sender %d", k, sender)
		}
		nu, err := CreateUpdatePath(tr, sender, CreateParams{
			Leaf:                tr.Leaf(sender),
			SignaturePrivateKey: sigPrivs[sender],
			GroupID:             tc.GroupID,
			Context:             ctx,
		})
		if err != nil {
			t.Fatalf("update path %d: %v", k, err)
		}
		if err := nu.Private.Check(nu.Tree); err != nil {
			t.Errorf("update path %d: creator's private state: %v", k, err)
		}
		if err := nu.Tree.VerifyParentHashes(); err != nil {
			t.Errorf("update path %d: created tree: %v", k, err)
		}
		enc, err := codec.Marshal(nu.Path)
		if err != nil {
			t.Fatal(err)
		}
		var rt wire.UpdatePath // go through the wire, as a recipient does
		if err := codec.Unmarshal(enc, &rt); err != nil {
			t.Fatal(err)
		}
		want, _ := nu.Tree.TreeHash()
		for li := range tr.Members() {
			if li == sender {
				continue
			}
			a, err := ApplyUpdatePath(tr, privs[li], sender, &rt, ApplyParams{GroupID: tc.GroupID, Context: ctx})
			if err != nil {
				t.Errorf("update path %d: new path: %v", k, err)
				continue
			}
			if !bytes.Equal(a.CommitSecret, nu.CommitSecret) {
				t.Errorf("update path %d: new path: leaf %d: commit secret %x, want %x", k, li, a.CommitSecret, nu.CommitSecret)
			}
			if h, _ := a.Tree.TreeHash(); !bytes.Equal(h, want) {
				t.Errorf("update path %d: new path: leaf %d: tree differs from the creator's", k, li)
			}
			x, ps, err := nu.PathSecretFor(li)
			if err != nil || x != a.Node || !bytes.Equal(ps, a.PathSecret) {
				t.Errorf("update path %d: new path: leaf %d: PathSecretFor = %d, %x, %v; decrypted at %d", k, li, x, ps, err, a.Node)
			}
			if err := a.Private.Check(a.Tree); err != nil {
				t.Errorf("update path %d: new path: leaf %d: new private state: %v", k, li, err)
			}
		}
	}
}
