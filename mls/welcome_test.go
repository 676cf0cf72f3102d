package mls

import (
	"bytes"
	"fmt"
	"testing"
)

// TestJoinOwnsItsInputs checks that a member who joined keeps no reference
// to the caller's buffers: the decoded tree and GroupInfo alias one copy
// that JoinFromWelcome owns, so overwriting the Welcome and the
// out-of-band ratchet tree after the join changes nothing, and the group
// goes on committing, messaging and saving its state.
func TestJoinOwnsItsInputs(t *testing.T) {
	for _, cs := range []CipherSuite{MLS128DHKEMX25519AES128GCMSHA256Ed25519, MLS128MLKEM768X25519AES128GCMSHA256Ed25519} {
		t.Run(fmt.Sprintf("suite=%#04x", uint16(cs)), func(t *testing.T) {
			w := newWorld(t, cs)
			signer, err := GenerateSigner(cs)
			if err != nil {
				t.Fatal(err)
			}
			alice, err := CreateGroup(w.cfg, cs, []byte("owned inputs"), signer, BasicCredential([]byte("alice")), CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			w.members["alice"] = alice
			// bob gets the tree inside the Welcome, carol out of band.
			for _, name := range []string{"bob", "carol"} {
				kp := w.kp(name)
				inline := name == "bob"
				pc := w.commit("alice", CommitOptions{Add: [][]byte{kp.KeyPackage}, InlineRatchetTree: inline})
				want, err := alice.RatchetTree()
				if err != nil {
					t.Fatal(err)
				}
				welcome := bytes.Clone(pc.Welcome)
				var opts JoinOptions
				if !inline {
					opts.RatchetTree = bytes.Clone(want)
				}
				g, err := JoinFromWelcome(w.cfg, welcome, kp, opts)
				if err != nil {
					t.Fatalf("%s join: %v", name, err)
				}
				for _, b := range [][]byte{welcome, opts.RatchetTree} {
					for i := range b {
						b[i] = 0xa5
					}
				}
				if got, err := g.RatchetTree(); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: tree changed with the caller's buffers (%v)", name, err)
				}
				if !bytes.Equal(g.GroupID(), alice.GroupID()) {
					t.Fatalf("%s: group id changed with the caller's buffers", name)
				}
				gm, am := g.Members(), alice.Members()
				if len(gm) != len(am) {
					t.Fatalf("%s: %d members, alice has %d", name, len(gm), len(am))
				}
				for i := range gm {
					if !bytes.Equal(gm[i].SignatureKey, am[i].SignatureKey) || !bytes.Equal(gm[i].EncryptionKey, am[i].EncryptionKey) || !bytes.Equal(gm[i].Credential.Identity, am[i].Credential.Identity) {
						t.Fatalf("%s: member %d changed with the caller's buffers", name, i)
					}
				}
				w.members[name] = g
				w.check()
			}
			w.commit("bob", CommitOptions{ForcePath: true})
			w.commit("carol", CommitOptions{ForcePath: true})
			w.message("carol")
			for _, name := range []string{"bob", "carol"} {
				g, err := withConfig(w.members[name], w.cfg)
				if err != nil {
					t.Fatalf("%s: reload: %v", name, err)
				}
				w.members[name] = g
			}
			w.check()
			w.commit("alice", CommitOptions{ForcePath: true})
			w.message("bob")

			// A follower and an external joiner start from a GroupInfo,
			// which they likewise copy once.
			gi, err := alice.GroupInfo(GroupInfoOptions{InlineRatchetTree: true, ExternalPub: true})
			if err != nil {
				t.Fatal(err)
			}
			in := bytes.Clone(gi)
			pg, err := NewPublicGroup(w.cfg, in, nil)
			if err != nil {
				t.Fatal(err)
			}
			s, err := GenerateSigner(cs)
			if err != nil {
				t.Fatal(err)
			}
			dave, epc, err := JoinExternal(w.cfg, in, s, BasicCredential([]byte("dave")), ExternalJoinOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range in {
				in[i] = 0xa5
			}
			if !bytes.Equal(pg.TreeHash(), alice.TreeHash()) || !bytes.Equal(pg.GroupID(), alice.GroupID()) {
				t.Fatal("follower changed with the caller's GroupInfo")
			}
			w.pg = pg
			w.deliver("dave", epc.Message)
			if err := dave.MergePendingCommit(epc); err != nil {
				t.Fatal(err)
			}
			w.members["dave"] = dave
			w.check()
			w.commit("dave", CommitOptions{ForcePath: true})
			w.message("dave")
		})
	}
}
