package mls

import (
	"fmt"
	"strings"
	"testing"

	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// kpWithEncryptionKey returns a KeyPackage of a new member named name,
// signed by signer (nil: a fresh one), whose leaf carries encryption key
// enc (nil: its own fresh key).
func kpWithEncryptionKey(t *testing.T, w *world, name string, signer *Signer, enc []byte) []byte {
	t.Helper()
	cs := w.cs
	if signer == nil {
		var err error
		if signer, err = GenerateSigner(cs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := NewKeyPackage(w.cfg, cs, signer, BasicCredential([]byte(name)), KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if enc == nil {
		return b.KeyPackage
	}
	kp := *b.kp
	kp.LeafNode.EncryptionKey = enc
	if err := kp.LeafNode.Sign(b.suite, signer.priv, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := kp.Sign(b.suite, signer.priv); err != nil {
		t.Fatal(err)
	}
	msg, err := wire.Marshal(&wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatKeyPackage, KeyPackage: &kp})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestKeyUniqueness checks the §7.3 uniqueness rules, now answered by the
// trees' key indexes, against every kind of node and every stage of a
// commit: an Add reusing the encryption key of a member's leaf, of a parent
// node, of a leaf removed or updated by the same commit, or of an earlier
// Add of the same commit; an Add reusing a member's signature key, and one
// reusing the signature key of a member removed by the same commit (which
// is allowed); and an UpdatePath reusing a key of the tree. Members and the
// public follower agree on each.
func TestKeyUniqueness(t *testing.T) {
	w, alice, bob := twoMembers(t)
	// Carol joins; then Bob commits with a path so that parents are set.
	carolKP := w.kp("carol")
	w.commit("alice", CommitOptions{Add: [][]byte{carolKP.KeyPackage}})
	w.commit("bob", CommitOptions{ForcePath: true})
	tr := alice.c.tree
	root := tr.Root()
	if tr.ParentNode(root) == nil {
		t.Fatal("setup: root is blank")
	}
	leafKey := func(li LeafIndex) []byte { return tr.Leaf(li).EncryptionKey }
	rejectAdd := func(name string, kps ...[]byte) {
		t.Helper()
		_, err := alice.Commit(CommitOptions{Add: kps})
		wantRule(t, err, ErrInvalidLeafNode, "§7.3")
		t.Logf("%s: %v", name, err)
	}
	rejectAdd("member leaf's encryption key", kpWithEncryptionKey(t, w, "d", nil, leafKey(1)))
	rejectAdd("parent's encryption key", kpWithEncryptionKey(t, w, "d", nil, tr.ParentNode(root).EncryptionKey))
	rejectAdd("own leaf's encryption key", kpWithEncryptionKey(t, w, "d", nil, leafKey(alice.OwnLeaf())))
	fresh := kpWithEncryptionKey(t, w, "d", nil, nil)
	d, _ := decodeKeyPackage(fresh)
	rejectAdd("earlier Add's encryption key", fresh, kpWithEncryptionKey(t, w, "e", nil, d.LeafNode.EncryptionKey))
	rejectAdd("member's signature key", kpWithEncryptionKey(t, w, "d", bob.signer, nil))

	// A key of a leaf removed by the same commit stays reserved.
	_, err := alice.Commit(CommitOptions{Remove: []LeafIndex{1}, Add: [][]byte{kpWithEncryptionKey(t, w, "d", nil, leafKey(1))}})
	wantRule(t, err, ErrInvalidLeafNode, "§7.3")
	// Its signature key does not: the removed member may come back.
	pc, err := alice.Commit(CommitOptions{Remove: []LeafIndex{1}, Add: [][]byte{kpWithEncryptionKey(t, w, "bob2", bob.signer, nil)}})
	if err != nil {
		t.Fatalf("re-adding a removed member's signature key: %v", err)
	}
	alice.DiscardPendingCommit(pc)

	// A forged UpdatePath reusing a parent's key: members and the follower
	// reject it by rule.
	pc, err = bob.Commit(CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	bob.DiscardPendingCommit(pc)
	var m wire.MLSMessage
	if err := wire.Unmarshal(pc.Message, &m); err != nil {
		t.Fatal(err)
	}
	fc := m.PublicMessage.Content
	cm := *fc.Commit
	up := *cm.Path
	up.Nodes = append([]wire.UpdatePathNode(nil), up.Nodes...)
	up.Nodes[len(up.Nodes)-1].EncryptionKey = leafKey(2) // carol's leaf key
	cm.Path = &up
	fc.Commit = &cm
	tag := m.PublicMessage.Auth.ConfirmationTag
	forged, _, err := bob.protect(&fc, func(ac *wire.AuthenticatedContent) error {
		ac.Auth.ConfirmationTag = tag // stale, but checked after the path
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, process := range map[string]func([]byte) error{
		"alice":    func(b []byte) error { _, err := alice.Process(b); return err },
		"follower": func(b []byte) error { _, err := w.pg.Process(b); return err },
	} {
		err := process(forged)
		wantRule(t, err, ErrInvalidCommit, "§12.4.2")
		if want := fmt.Sprintf("already used by node %d", treemath.LeafIndex(2).Node()); !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want the node using the key named", name, err)
		}
	}
}
