package tree

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// wantErr fails t unless err is non-nil and mentions every fragment.
func wantErr(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not mention %q", err, f)
		}
	}
}

// withLeaf returns a copy of leaf i of tr, changed by f and re-signed
// with priv, stored back into tr.
func withLeaf(t *testing.T, tr *Tree, i treemath.LeafIndex, priv []byte, f func(*wire.LeafNode)) {
	t.Helper()
	ln := *tr.Leaf(i)
	f(&ln)
	if priv != nil {
		if err := ln.Sign(tr.Suite(), priv, genGroupID, uint32(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.SetLeaf(i, &ln); err != nil {
		t.Fatal(err)
	}
}

func validOpts() ValidateOptions { return ValidateOptions{GroupID: genGroupID} }

func TestValidateTamperedSignature(t *testing.T) {
	tr, _ := cachedTree(t, 64)
	// Leaf 0's content feeds no parent hash (it is never a copath
	// subtree), so only its signature breaks.
	withLeaf(t, tr, 0, nil, func(ln *wire.LeafNode) {
		ln.Signature = bytes.Clone(ln.Signature)
		ln.Signature[0] ^= 1
	})
	if err := tr.VerifyParentHashes(); err != nil {
		t.Fatalf("parent hashes should still hold: %v", err)
	}
	wantErr(t, tr.Validate(validOpts()), "tree: validate: leaf 0: signature invalid")
}

func TestValidateReportsLowestBadSignature(t *testing.T) {
	tr, _ := cachedTree(t, 1000)
	bad := []treemath.LeafIndex{977, 500, 301}
	for _, li := range bad {
		// Flip a signature bit; the tree structure is unchanged.
		ln := *tr.Leaf(li)
		tr.poke(li.Node(), &wire.Node{Type: wire.NodeTypeLeaf, Leaf: &ln})
		ln.Signature = append([]byte{}, ln.Signature...)
		ln.Signature[len(ln.Signature)-1] ^= 0x80
	}
	for range 5 {
		err := tr.verifySignatures(genGroupID, 2)
		wantErr(t, err, "leaf 301: signature invalid")
	}
}

func TestValidateBrokenParentHash(t *testing.T) {
	t.Run("parent key replaced", func(t *testing.T) {
		tr, _ := cachedTree(t, 16)
		p := *tr.ParentNode(5)
		p.EncryptionKey = bytes.Repeat([]byte{7}, len(p.EncryptionKey))
		if err := tr.SetParent(5, &p); err != nil {
			t.Fatal(err)
		}
		wantErr(t, tr.VerifyParentHashes(), "tree: verify parent hashes: node", "not parent-hash valid")
		wantErr(t, tr.Validate(validOpts()), "not parent-hash valid")
	})
	t.Run("leaf parent hash altered", func(t *testing.T) {
		tr, priv := cachedTree(t, 16)
		// Leaf 0 heads the chain covering nodes 1, 3, 7 and 15; its
		// content feeds no other parent hash.
		withLeaf(t, tr, 0, priv[0], func(ln *wire.LeafNode) {
			ln.ParentHash = bytes.Repeat([]byte{1}, len(ln.ParentHash))
		})
		wantErr(t, tr.VerifyParentHashes(), "node 1: not parent-hash valid")
	})
	t.Run("blank parent inserted in chain", func(t *testing.T) {
		tr, _ := cachedTree(t, 16)
		// Blanking node 1 cuts leaf 0 off from node 3.
		if err := tr.SetParent(1, nil); err != nil {
			t.Fatal(err)
		}
		wantErr(t, tr.VerifyParentHashes(), "node 3: not parent-hash valid")
	})
	t.Run("unmerged leaf added without re-chaining", func(t *testing.T) {
		tr, _ := cachedTree(t, 16)
		p := *tr.ParentNode(3)
		p.UnmergedLeaves = []uint32{2}
		if err := tr.SetParent(3, &p); err != nil {
			t.Fatal(err)
		}
		// Node 5, between leaf 2 and node 3, does not list leaf 2.
		wantErr(t, tr.VerifyParentHashes(), "unmerged leaf 2 missing from unmerged_leaves of intermediate node 5")
	})
}

func TestValidateDuplicateKeys(t *testing.T) {
	t.Run("encryption key", func(t *testing.T) {
		tr, priv := cachedTree(t, 8)
		other := tr.Leaf(5).EncryptionKey
		withLeaf(t, tr, 0, priv[0], func(ln *wire.LeafNode) { ln.EncryptionKey = other })
		wantErr(t, tr.Validate(validOpts()), "tree: validate: node 10: encryption key duplicates that of node 0")
	})
	t.Run("encryption key of a parent", func(t *testing.T) {
		tr, priv := cachedTree(t, 8)
		other := tr.ParentNode(11).EncryptionKey
		withLeaf(t, tr, 0, priv[0], func(ln *wire.LeafNode) { ln.EncryptionKey = other })
		wantErr(t, tr.Validate(validOpts()), "node 11: encryption key duplicates that of node 0")
	})
	t.Run("signature key", func(t *testing.T) {
		tr, priv := cachedTree(t, 8)
		other := tr.Leaf(6).SignatureKey
		// Leaf 0 now claims leaf 6's signature key, signed by leaf 6.
		withLeaf(t, tr, 0, priv[6], func(ln *wire.LeafNode) { ln.SignatureKey = other })
		wantErr(t, tr.Validate(validOpts()), "leaf 6: signature key duplicates that of leaf 0")
	})
}

func TestValidateLeafRules(t *testing.T) {
	t.Run("lifetime only when asked", func(t *testing.T) {
		tr, priv := generateTree(t, suite1(t), 1)
		withLeaf(t, tr, 0, priv[0], func(ln *wire.LeafNode) {
			ln.Lifetime = &wire.Lifetime{NotBefore: 1000, NotAfter: 2000}
		})
		if err := tr.Validate(validOpts()); err != nil {
			t.Fatalf("lifetime checked without a clock: %v", err)
		}
		opts := validOpts()
		opts.Now = func() time.Time { return time.Unix(1500, 0) }
		if err := tr.Validate(opts); err != nil {
			t.Fatalf("lifetime in range rejected: %v", err)
		}
		opts.Now = func() time.Time { return time.Unix(2001, 0) }
		wantErr(t, tr.Validate(opts), "leaf 0: lifetime [1000, 2000] does not contain the current time 2001")
	})
	t.Run("source without lifetime", func(t *testing.T) {
		tr, _ := generateTree(t, suite1(t), 1)
		withLeaf(t, tr, 0, nil, func(ln *wire.LeafNode) { ln.Lifetime = nil })
		wantErr(t, tr.Validate(validOpts()), "leaf 0: leaf_node_source key_package without lifetime")
	})
	t.Run("required credential", func(t *testing.T) {
		tr, _ := cachedTree(t, 4)
		opts := validOpts()
		opts.RequiredCredentials = []wire.CredentialType{wire.CredentialX509}
		wantErr(t, tr.Validate(opts), "leaf 0: required credential type x509 not in capabilities")
	})
	t.Run("required extension", func(t *testing.T) {
		tr, _ := cachedTree(t, 4)
		opts := validOpts()
		opts.RequiredExtensions = []wire.ExtensionType{wire.ExtensionExternalSenders}
		if err := tr.Validate(opts); err != nil {
			t.Fatalf("default extension must not need listing: %v", err)
		}
		opts.RequiredExtensions = []wire.ExtensionType{0xff00}
		wantErr(t, tr.Validate(opts), "leaf 0: required extension type 0xff00 not in capabilities")
	})
	t.Run("unlisted extension", func(t *testing.T) {
		tr, priv := cachedTree(t, 4)
		withLeaf(t, tr, 0, priv[0], func(ln *wire.LeafNode) {
			ln.Extensions = wire.Extensions{{Type: 0xff01, Data: []byte{1}}}
		})
		wantErr(t, tr.Validate(validOpts()), "leaf 0: extension type 0xff01 not in capabilities")
	})
	t.Run("credential type unsupported by others", func(t *testing.T) {
		tr, priv := cachedTree(t, 4)
		withLeaf(t, tr, 0, priv[0], func(ln *wire.LeafNode) {
			ln.Credential = wire.Credential{Type: 0xf000, Opaque: []byte("x")}
			ln.Capabilities.Credentials = []wire.CredentialType{wire.CredentialBasic, 0xf000}
		})
		wantErr(t, tr.Validate(validOpts()), "leaf 1: credential type credential_type(0xf000) used in the group not in capabilities")
	})
}

// encodeNodes encodes a hand-built ratchet tree.
func encodeNodes(t *testing.T, nodes ...*wire.Node) []byte {
	t.Helper()
	b, err := codec.Marshal(wire.RatchetTree(nodes))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFromWireStructure(t *testing.T) {
	s := suite1(t)
	src, _ := cachedTree(t, 4)
	leaf := &wire.Node{Type: wire.NodeTypeLeaf, Leaf: src.Leaf(0)}
	parent := func(um ...uint32) *wire.Node {
		return &wire.Node{Type: wire.NodeTypeParent, Parent: &wire.ParentNode{EncryptionKey: []byte{1}, ParentHash: []byte{}, UnmergedLeaves: um}}
	}
	cases := []struct {
		name  string
		nodes []*wire.Node
		want  string
	}{
		{"empty", nil, "empty ratchet tree"},
		{"trailing blank", []*wire.Node{leaf, nil, nil}, "last node 2 is blank"},
		{"even node count", []*wire.Node{leaf, parent()}, "even number of nodes 2"},
		{"parent at leaf position", []*wire.Node{parent()}, "node 0: leaf position holds node_type 2"},
		{"leaf at parent position", []*wire.Node{leaf, leaf, leaf}, "node 1: parent position holds node_type 1"},
		{"unmerged leaf out of range", []*wire.Node{leaf, parent(7), leaf}, "node 1: unmerged leaf 7 out of range (2 leaves)"},
		{"unmerged leaf not below", []*wire.Node{leaf, parent(), leaf, parent(), leaf, parent(1), leaf}, "node 5: unmerged leaf 1 is not below the node"},
		{"unmerged leaves unsorted", []*wire.Node{leaf, parent(), leaf, parent(1, 0), leaf}, "node 3: unmerged leaves not strictly increasing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(s, encodeNodes(t, c.nodes...))
			wantErr(t, err, "tree: from wire:", c.want)
			// The same through FromWire with unencodable shapes too.
			_, err = FromWire(s, c.nodes)
			wantErr(t, err, c.want)
		})
	}
	t.Run("node with mismatched arms", func(t *testing.T) {
		_, err := FromWire(s, wire.RatchetTree{{Type: wire.NodeTypeLeaf}})
		wantErr(t, err, "node 0: leaf position holds node_type 1")
		_, err = FromWire(s, wire.RatchetTree{leaf, {Type: wire.NodeTypeParent, Leaf: leaf.Leaf}, leaf})
		wantErr(t, err, "node 1: parent position")
	})
	t.Run("blank unmerged leaf", func(t *testing.T) {
		_, err := Decode(s, encodeNodes(t, leaf, parent(), nil, parent(), leaf, nil, parent(2, 3)))
		// Node 6 is leaf 3's position: holds a parent node.
		wantErr(t, err, "node 6: leaf position")
		tr, err := FromWire(s, wire.RatchetTree{leaf, parent(1), leaf})
		if err != nil {
			t.Fatal(err)
		}
		tr.poke(2, nil)
		wantErr(t, tr.CheckUnmergedLeaves(), "node 1: unmerged leaf 1 is blank")
	})
}

func TestDecodeGarbage(t *testing.T) {
	s := suite1(t)
	src, _ := cachedTree(t, 8)
	good, err := src.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 2, len(good) / 2, len(good) - 1} {
		_, err := Decode(s, good[:n])
		wantErr(t, err, "tree: decode:")
	}
	_, err = Decode(s, append(bytes.Clone(good), 0))
	wantErr(t, err, "tree: decode:", "trailing")
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for range 2000 {
		data := bytes.Clone(good)
		for range 1 + rng.IntN(4) {
			data[rng.IntN(len(data))] ^= byte(1 + rng.IntN(255))
		}
		exercise(t, data)
	}
}

// exercise runs every read-only operation on a decoded input; none may
// panic, whatever the input.
func exercise(t testing.TB, data []byte) {
	tr, err := Decode(suite1(t), data)
	if err != nil {
		return
	}
	_, _ = tr.TreeHash()
	for x := range tr.NodeCount() {
		_ = tr.Resolution(treemath.NodeIndex(x))
	}
	for i := range tr.LeafCount() {
		_, _, _ = tr.FilteredDirectPath(treemath.LeafIndex(i))
	}
	_ = tr.VerifyParentHashes()
	_ = tr.Validate(ValidateOptions{GroupID: genGroupID, Now: time.Now})
	c := tr.Clone()
	for i := range c.LeafCount() {
		if c.Leaf(treemath.LeafIndex(i)) != nil {
			_ = c.RemoveLeaf(treemath.LeafIndex(i))
			break
		}
	}
	_, _ = c.Encode()
}

func FuzzDecode(f *testing.F) {
	for _, n := range []int{1, 3, 8} {
		tr, _ := generateTree(f, suite1(f), n)
		enc, err := tr.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Decode(suite1(t), data)
		atr, aerr := DecodeAliasing(suite1(t), bytes.Clone(data))
		if (aerr == nil) != (err == nil) {
			t.Fatalf("Decode error %v, DecodeAliasing error %v", err, aerr)
		}
		if err != nil {
			return
		}
		if aenc, err := atr.Encode(); err != nil || !bytes.Equal(aenc, data) {
			t.Fatalf("DecodeAliasing: decode→encode differs (%v)", err)
		}
		// Accepted input re-encodes to itself.
		enc, err := tr.Encode()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("decode→encode differs")
		}
		exercise(t, data)
	})
}

// TestValidateGroupParamsAndDuplicateExtensions checks that a joiner
// refuses a tree with a leaf that does not list the protocol version or
// the tree's cipher suite (RFC 9420 §7.2) or carries an extension type
// twice (§13.4).
func TestValidateGroupParamsAndDuplicateExtensions(t *testing.T) {
	for _, c := range []struct {
		name, want string
		f          func(*wire.LeafNode)
	}{
		{"no cipher suite", "leaf 0: capabilities do not list the cipher suite 0x0001", func(ln *wire.LeafNode) {
			ln.Capabilities.CipherSuites = []suite.ID{2}
		}},
		{"no version", "leaf 0: capabilities do not list the protocol version mls10", func(ln *wire.LeafNode) {
			ln.Capabilities.Versions = []wire.ProtocolVersion{}
		}},
		{"extension twice", "leaf 0: extension type 0x0001 appears twice", func(ln *wire.LeafNode) {
			ln.Extensions = wire.Extensions{{Type: wire.ExtensionApplicationID, Data: []byte("a")}, {Type: wire.ExtensionApplicationID, Data: []byte("b")}}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, priv := cachedTree(t, 4)
			withLeaf(t, tr, 0, priv[0], c.f)
			wantErr(t, tr.Validate(validOpts()), c.want)
		})
	}
}
