package tree

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/vectors"
	"github.com/parley-chat/parley/mls/internal/wire"
)

type treeValidationCase struct {
	CipherSuite uint16        `json:"cipher_suite"`
	Tree        vectors.Hex   `json:"tree"`
	GroupID     vectors.Hex   `json:"group_id"`
	Resolutions [][]uint32    `json:"resolutions"`
	TreeHashes  []vectors.Hex `json:"tree_hashes"`
}

func TestVectorsTreeValidation(t *testing.T) {
	var cases []treeValidationCase
	vectors.Load(t, "tree-validation.json", &cases)
	c := vectors.NewCounter("tree-validation.json")
	for i, tc := range cases {
		c.Run(t, fmt.Sprintf("%d/suite=%d", i, tc.CipherSuite), func(t *testing.T) {
			s, err := suite.New(suite.ID(tc.CipherSuite))
			if err != nil {
				t.Fatal(err)
			}
			// Decode copies; DecodeAliasing is given its own copy.
			for _, dec := range []struct {
				name   string
				decode func(*suite.Suite, []byte) (*Tree, error)
			}{
				{"Decode", Decode},
				{"DecodeAliasing", func(s *suite.Suite, b []byte) (*Tree, error) { return DecodeAliasing(s, bytes.Clone(b)) }},
			} {
				t.Logf("decoded with %s", dec.name)
				tr, err := dec.decode(s, tc.Tree)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := tr.NodeCount(), len(tc.Resolutions); got != want {
					t.Fatalf("node count %d, want %d", got, want)
				}
				for x := range tr.NodeCount() {
					res := tr.Resolution(treemath.NodeIndex(x))
					want := make([]treemath.NodeIndex, len(tc.Resolutions[x]))
					for j, v := range tc.Resolutions[x] {
						want[j] = treemath.NodeIndex(v)
					}
					if !slices.Equal(res, want) {
						t.Errorf("resolution of node %d = %v, want %v", x, res, want)
					}
					h, err := tr.NodeHash(treemath.NodeIndex(x))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(h, tc.TreeHashes[x]) {
						t.Errorf("tree hash of node %d = %x, want %x", x, h, tc.TreeHashes[x])
					}
				}
				if err := tr.VerifyParentHashes(); err != nil {
					t.Errorf("parent hashes: %v", err)
				}
				if err := tr.Validate(ValidateOptions{GroupID: tc.GroupID, TreeHash: tc.TreeHashes[tr.Root()]}); err != nil {
					t.Errorf("validate: %v", err)
				}
				// Export reproduces the input byte for byte.
				enc, err := tr.Encode()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(enc, tc.Tree) {
					t.Errorf("re-encoded tree differs from input")
				}
			}
		})
	}
	c.Report(t)
}

type treeOperationsCase struct {
	CipherSuite    uint16      `json:"cipher_suite"`
	TreeBefore     vectors.Hex `json:"tree_before"`
	Proposal       vectors.Hex `json:"proposal"`
	ProposalSender uint32      `json:"proposal_sender"`
	TreeHashBefore vectors.Hex `json:"tree_hash_before"`
	TreeAfter      vectors.Hex `json:"tree_after"`
	TreeHashAfter  vectors.Hex `json:"tree_hash_after"`
}

func TestVectorsTreeOperations(t *testing.T) {
	var cases []treeOperationsCase
	vectors.Load(t, "tree-operations.json", &cases)
	c := vectors.NewCounter("tree-operations.json")
	for i, tc := range cases {
		c.Run(t, fmt.Sprintf("%d/suite=%d", i, tc.CipherSuite), func(t *testing.T) {
			s, err := suite.New(suite.ID(tc.CipherSuite))
			if err != nil {
				t.Fatal(err)
			}
			tr, err := Decode(s, tc.TreeBefore)
			if err != nil {
				t.Fatal(err)
			}
			h, err := tr.TreeHash()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(h, tc.TreeHashBefore) {
				t.Errorf("tree hash before = %x, want %x", h, tc.TreeHashBefore)
			}
			var p wire.Proposal
			if err := codec.Unmarshal(tc.Proposal, &p); err != nil {
				t.Fatal(err)
			}
			before := tr.Clone()
			if _, err := tr.Apply(&p, treemath.LeafIndex(tc.ProposalSender)); err != nil {
				t.Fatalf("apply %v: %v", p.Type, err)
			}
			got, err := tr.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.TreeAfter) {
				t.Errorf("tree after differs:\n got %x\nwant %x", got, tc.TreeAfter)
			}
			h, err = tr.TreeHash()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(h, tc.TreeHashAfter) {
				t.Errorf("tree hash after = %x, want %x", h, tc.TreeHashAfter)
			}
			// The clone taken before is untouched, and a fresh decode of
			// the result hashes the same as the incrementally updated tree.
			if h0, _ := before.TreeHash(); !bytes.Equal(h0, tc.TreeHashBefore) {
				t.Errorf("clone changed by Apply: tree hash %x", h0)
			}
			fresh, err := Decode(s, tc.TreeAfter)
			if err != nil {
				t.Fatal(err)
			}
			if h2, _ := fresh.TreeHash(); !bytes.Equal(h2, tc.TreeHashAfter) {
				t.Errorf("fresh decode tree hash %x, want %x", h2, tc.TreeHashAfter)
			}
		})
	}
	c.Report(t)
}
