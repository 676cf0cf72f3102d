package mls

import (
	"testing"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// TestConformance_12_4_3_2 covers RFC 9420 §12.4.3.2, "Joining via
// External Commits", and the external-commit half of §12.2: a modified
// joiner sends an external commit (built by JoinExternal, then changed and
// re-signed by the joiner) that breaks one rule; alice, bob, mallory and
// the follower refuse it and keep their state.
func TestConformance_12_4_3_2(t *testing.T) {
	type tc struct {
		name string
		msg  func(t *testing.T, w *world, alice, bob *Group) []byte
		want refusal
	}
	joiner := BasicCredential([]byte("joiner"))
	extInit := func(cm *wire.Commit) wire.ProposalOrRef {
		for _, p := range cm.Proposals {
			if p.Proposal != nil && p.Proposal.Type == wire.ProposalTypeExternalInit {
				return p
			}
		}
		t.Fatal("no ExternalInit")
		return wire.ProposalOrRef{}
	}
	cases := []tc{
		// "Exactly one ExternalInit"
		{"no ExternalInit", func(t *testing.T, w *world, alice, _ *Group) []byte {
			return externalCommit(t, w, alice, nil, ExternalJoinOptions{ExternalPSKs: [][]byte{[]byte("psk1")}}, joiner, func(cm *wire.Commit) {
				cm.Proposals = cm.Proposals[1:]
			})
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.4.3.2", detail: "external commit with 0 ExternalInit proposals"}},
		{"two ExternalInit", func(t *testing.T, w *world, alice, _ *Group) []byte {
			return externalCommit(t, w, alice, nil, ExternalJoinOptions{}, joiner, func(cm *wire.Commit) {
				cm.Proposals = append(cm.Proposals, extInit(cm))
			})
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.4.3.2", detail: "external commit with 2 ExternalInit proposals"}},
		// "At most one Remove proposal, with which the joiner removes an
		// old version of themselves."
		{"two Removes", func(t *testing.T, w *world, alice, bob *Group) []byte {
			leaf := bob.OwnLeaf()
			return externalCommit(t, w, alice, nil, ExternalJoinOptions{ResyncLeaf: &leaf}, BasicCredential([]byte("bob")), func(cm *wire.Commit) {
				cm.Proposals = append(cm.Proposals, byValue(&wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: 0}}))
			})
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.4.3.2", detail: "more than one Remove proposal"}},
		// "If a Remove proposal is present, then the LeafNode in the path
		// field of the external Commit MUST meet the same criteria as would
		// the LeafNode in an Update for the removed leaf ... the credential
		// in the LeafNode MUST present a set of identifiers that is
		// acceptable to the application for the removed participant."
		{"resync with another identity", func(t *testing.T, w *world, alice, bob *Group) []byte {
			leaf := bob.OwnLeaf()
			lax := *w.cfg
			lax.ValidateCredential = func(CredentialInfo) error { return nil }
			return externalCommit(t, w, alice, &lax, ExternalJoinOptions{ResyncLeaf: &leaf}, BasicCredential([]byte("eve")), nil)
		}, refusal{sentinel: ErrCredentialRejected, rule: "§12.4.3.2", detail: "resync of leaf 1"}},
		// "No other proposals"
		{"an Add in an external commit", func(t *testing.T, w *world, alice, _ *Group) []byte {
			kp := w.kp("carol")
			return externalCommit(t, w, alice, nil, ExternalJoinOptions{}, joiner, func(cm *wire.Commit) {
				cm.Proposals = append(cm.Proposals, byValue(&wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp.kp}}))
			})
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.4.3.2", detail: "external commit with a proposal of type 1"}},
		{"a GroupContextExtensions in an external commit", func(t *testing.T, w *world, alice, _ *Group) []byte {
			return externalCommit(t, w, alice, nil, ExternalJoinOptions{}, joiner, func(cm *wire.Commit) {
				cm.Proposals = append(cm.Proposals, byValue(&wire.Proposal{Type: wire.ProposalTypeGroupContextExtensions, GroupContextExtensions: &wire.GroupContextExtensions{Extensions: wire.Extensions{}}}))
			})
		}, refusal{sentinel: ErrInvalidProposal, rule: "§12.4.3.2", detail: "external commit with a proposal of type 7"}},
		// "The Commit MUST NOT include any proposals by reference."
		{"a proposal by reference", func(t *testing.T, w *world, alice, bob *Group) []byte {
			msg, err := bob.ProposeRemove(alice.OwnLeaf())
			if err != nil {
				t.Fatal(err)
			}
			w.deliver("bob", msg)
			ref := cachedRef(t, alice, wire.ProposalTypeRemove)
			return externalCommit(t, w, alice, nil, ExternalJoinOptions{}, joiner, func(cm *wire.Commit) {
				cm.Proposals = append(cm.Proposals, byRef(ref))
			})
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4.3.2", detail: "external commit includes a proposal by reference"}},
		// "External Commits MUST contain a path field."
		{"no path", func(t *testing.T, w *world, alice, _ *Group) []byte {
			return externalCommit(t, w, alice, nil, ExternalJoinOptions{}, joiner, func(cm *wire.Commit) { cm.Path = nil })
		}, refusal{sentinel: ErrMalformed, rule: "§6.1", detail: "new_member_commit"}},
		// "External Commits MUST be signed by the new member ... using the
		// public key for the credential in the leaf_node of the path."
		{"signed by a key other than the path leaf's", func(t *testing.T, w *world, alice, _ *Group) []byte {
			msg := externalCommit(t, w, alice, nil, ExternalJoinOptions{}, joiner, nil)
			pm := decodePublic(t, msg)
			other, _ := GenerateSigner(w.cs)
			ac, err := framing.SignContent(alice.c.ctx, wire.WireFormatPublicMessage, &pm.Content, other.priv)
			if err != nil {
				t.Fatal(err)
			}
			pm.Auth.Signature = ac.Auth.Signature
			return encodePublic(t, pm)
		}, refusal{sentinel: ErrMalformed, rule: "§6.2", followerRule: "§6.1", detail: "signature of new_member_commit sender invalid"}},
		// "When processing a Commit, both existing and new members MUST use
		// the external init secret": a kem_output for another secret gives
		// another epoch, whose confirmation tag does not match.
		{"ExternalInit for another init secret", func(t *testing.T, w *world, alice, _ *Group) []byte {
			_, pub, err := alice.keys.sched.ExternalKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			kemOut, _, err := alice.c.cs.ExportSender(pub, nil, []byte(externalInitLabel), alice.c.cs.HashSize())
			if err != nil {
				t.Fatal(err)
			}
			return externalCommit(t, w, alice, nil, ExternalJoinOptions{}, joiner, func(cm *wire.Commit) {
				for _, p := range cm.Proposals {
					if p.Proposal != nil && p.Proposal.Type == wire.ProposalTypeExternalInit {
						p.Proposal.ExternalInit.KEMOutput = kemOut
					}
				}
			})
		}, refusal{sentinel: ErrInvalidCommit, rule: "§12.4.2", detail: "confirmation tag", memberOnly: true}},
		// §12.4.2: the joiner's path leaf is validated as in §7.3.
		{"path leaf with an extension not in its capabilities", func(t *testing.T, w *world, alice, _ *Group) []byte {
			return externalCommit(t, w, alice, nil, ExternalJoinOptions{}, joiner, func(cm *wire.Commit) {
				ln := cloneLeaf(&cm.Path.LeafNode)
				ln.Extensions = append(ln.Extensions, wire.Extension{Type: 0xff20, Data: []byte{}})
				cm.Path.LeafNode = ln // the joiner's signature no longer covers it
			})
		}, refusal{sentinel: ErrInvalidLeafNode, rule: "§7.3", detail: "extension type 0xff20 not in capabilities"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, alice, bob, _ := floodWorld(t)
			mustRefuse(t, w, "", c.msg(t, w, alice, bob), c.want)
			goesOn(t, w, "bob")
		})
	}
	t.Run("control: the unchanged external commit is accepted", func(t *testing.T) {
		w, alice, _, _ := floodWorld(t)
		msg := externalCommit(t, w, alice, nil, ExternalJoinOptions{}, joiner, func(*wire.Commit) {})
		w.deliver("", msg)
		w.check()
	})
}
