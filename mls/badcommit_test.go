package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestCommitUnsafeCorruptPath: a commit whose encrypted path secrets are
// damaged (CommitOptions.UnsafeCorruptPathForTesting) passes the
// follower's public checks and merges at the committer, but no other
// member can process it; without the option the same group goes on.
func TestCommitUnsafeCorruptPath(t *testing.T) {
	for _, cs := range []CipherSuite{MLS128DHKEMX25519AES128GCMSHA256Ed25519, MLS128MLKEM768X25519AES128GCMSHA256Ed25519} {
		t.Run(fmt.Sprintf("%#04x", uint16(cs)), func(t *testing.T) {
			w, _ := externalWorld(t, cs)
			alice := w.members["alice"]
			pc, err := alice.Commit(CommitOptions{ForcePath: true, ExternalPub: true, UnsafeCorruptPathForTesting: true})
			if err != nil {
				t.Fatal(err)
			}
			ch, err := w.pg.Process(pc.Message)
			if err != nil {
				t.Fatalf("follower refused the corrupted commit: %v", err)
			}
			if err := ch.VerifyGroupInfo(pc.GroupInfo); err != nil {
				t.Fatalf("follower refused its GroupInfo: %v", err)
			}
			for _, name := range []string{"bob", "carol"} {
				if _, err := w.members[name].Process(pc.Message); !errors.Is(err, ErrInvalidCommit) {
					t.Fatalf("%s processed the corrupted commit: %v, want ErrInvalidCommit", name, err)
				}
			}
			if err := alice.MergePendingCommit(pc); err != nil {
				t.Fatalf("committer cannot merge its own corrupted commit: %v", err)
			}

			// A member behind it rejoins by external commit from the
			// committer's (sound) GroupInfo; everyone can process that.
			if err := w.pg.Merge(ch); err != nil {
				t.Fatal(err)
			}
			bob := w.members["bob"]
			own := bob.OwnLeaf()
			nb, jpc, err := JoinExternal(w.cfg, pc.GroupInfo, bob.signer, credentialFromWire(&bob.c.tree.Leaf(own).Credential), ExternalJoinOptions{RatchetTree: mustTree(t, alice), ResyncLeaf: &own})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := alice.Process(jpc.Message); err != nil {
				t.Fatalf("alice cannot process bob's resync: %v", err)
			}
			if err := nb.MergePendingCommit(jpc); err != nil {
				t.Fatal(err)
			}

			// Without the option nothing is damaged.
			w2, _ := externalWorld(t, cs)
			w2.commit("alice", CommitOptions{ForcePath: true})
		})
	}
}

// TestCommitUnsafePoisonExternalPub: a GroupInfo whose external_pub is
// not the epoch's (CommitOptions.UnsafePoisonExternalPubForTesting)
// passes the follower's checks; an external commit made from it cannot
// be processed by the members; CheckGroupInfoExternalPub tells it from
// a sound one and refuses a GroupInfo not signed by the given leaf.
func TestCommitUnsafePoisonExternalPub(t *testing.T) {
	cs := MLS128MLKEM768X25519AES128GCMSHA256Ed25519
	w, _ := externalWorld(t, cs)
	alice, bob := w.members["alice"], w.members["bob"]
	pc, err := alice.Commit(CommitOptions{ForcePath: true, ExternalPub: true, UnsafePoisonExternalPubForTesting: true})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := w.pg.Process(pc.Message)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.VerifyGroupInfo(pc.GroupInfo); err != nil {
		t.Fatalf("follower refused the poisoned GroupInfo: %v", err)
	}
	w.deliver("alice", pc.Message)
	if err := alice.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	w.check()

	ok, err := bob.CheckGroupInfoExternalPub(pc.GroupInfo, alice.OwnLeaf())
	if err != nil || ok {
		t.Fatalf("bob's check of the poisoned GroupInfo: ok %v, err %v; want a mismatch", ok, err)
	}
	if _, err := bob.CheckGroupInfoExternalPub(pc.GroupInfo, bob.OwnLeaf()); !errors.Is(err, ErrInvalidWelcome) {
		t.Fatalf("check against the wrong signer: %v, want ErrInvalidWelcome", err)
	}
	sound, err := alice.GroupInfo(GroupInfoOptions{ExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := bob.CheckGroupInfoExternalPub(sound, alice.OwnLeaf()); err != nil || !ok {
		t.Fatalf("bob's check of a sound GroupInfo: ok %v, err %v", ok, err)
	}

	// carol resyncs from the poisoned GroupInfo: alice and bob cannot
	// process her commit.
	carol := w.members["carol"]
	own := carol.OwnLeaf()
	_, jpc, err := JoinExternal(w.cfg, pc.GroupInfo, carol.signer, credentialFromWire(&carol.c.tree.Leaf(own).Credential), ExternalJoinOptions{RatchetTree: mustTree(t, alice), ResyncLeaf: &own})
	if err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]*Group{"alice": alice, "bob": bob} {
		if _, err := g.Process(jpc.Message); !errors.Is(err, ErrInvalidCommit) {
			t.Fatalf("%s processed an external commit made from a poisoned GroupInfo: %v", name, err)
		}
	}
}

// TestPeekPublicMessageOfCommit: PeekPublicMessage returns a commit's
// clear header and refuses other wire formats.
func TestPeekPublicMessageOfCommit(t *testing.T) {
	w, _ := externalWorld(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	bob := w.members["bob"]
	pc, err := bob.Commit(CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	gid, epoch, ct, sender, err := PeekPublicMessage(pc.Message)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gid, bob.GroupID()) || epoch != bob.Epoch() || ct != ContentCommit || sender.Type != SenderMember || sender.Leaf != bob.OwnLeaf() {
		t.Fatalf("peek: group %x epoch %d content %d sender %+v", gid, epoch, ct, sender)
	}
	if _, _, _, _, err := PeekPublicMessage(pc.GroupInfo); !errors.Is(err, ErrMalformed) {
		t.Fatalf("peek of a GroupInfo: %v, want ErrMalformed", err)
	}
}

// mustTree returns g's encoded ratchet tree.
func mustTree(t *testing.T, g *Group) []byte {
	t.Helper()
	rt, err := g.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	return rt
}
