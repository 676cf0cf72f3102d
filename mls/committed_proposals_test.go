package mls_test

import (
	"slices"
	"testing"

	"github.com/parley-chat/parley/mls"
)

// TestCommittedProposals: StagedCommit.Proposals and PublicChange.Proposals
// list what a commit applies with who proposed it (by reference: the
// proposer and its Ref; by value: the committer and no Ref, an Add with
// its KeyPackage's credential), and PublicChange reports the new
// GroupContext extensions as StagedCommit does.
func TestCommittedProposals(t *testing.T) {
	const extType = 0xF0AA
	caps := &mls.Capabilities{Extensions: []uint16{extType}, Credentials: []mls.CredentialType{mls.CredentialBasic}}
	member := func(name string) *mls.KeyPackageBundle {
		s, err := mls.GenerateSigner(cs)
		if err != nil {
			t.Fatal(err)
		}
		b, err := mls.NewKeyPackage(nil, cs, s, mls.BasicCredential([]byte(name)), mls.KeyPackageOptions{Capabilities: caps})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	as, err := mls.GenerateSigner(cs)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := mls.CreateGroup(nil, cs, []byte("proposals"), as, mls.BasicCredential([]byte("alice")), mls.CreateOptions{Capabilities: caps})
	if err != nil {
		t.Fatal(err)
	}
	bobKP, carolKP := member("bob"), member("carol")
	pc, err := alice.Commit(mls.CommitOptions{Add: [][]byte{bobKP.KeyPackage, carolKP.KeyPackage}, InlineRatchetTree: true})
	if err != nil || alice.MergePendingCommit(pc) != nil {
		t.Fatal(err)
	}
	bob, err := mls.JoinFromWelcome(nil, pc.Welcome, bobKP, mls.JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	carol, err := mls.JoinFromWelcome(nil, pc.Welcome, carolKP, mls.JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gi, err := alice.GroupInfo(mls.GroupInfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := alice.RatchetTree()
	if err != nil {
		t.Fatal(err)
	}
	pg, err := mls.NewPublicGroup(nil, gi, tree)
	if err != nil {
		t.Fatal(err)
	}

	// carol proposes removing bob; alice commits it by reference with an
	// Add and new extensions by value.
	prop, err := carol.ProposeRemove(bob.OwnLeaf())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*mls.Group{alice, bob} {
		if _, err := g.Process(prop); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pg.Process(prop); err != nil {
		t.Fatal(err)
	}
	daveKP := member("dave")
	exts := []mls.Extension{{Type: extType, Data: []byte("policy")}}
	pc, err = alice.Commit(mls.CommitOptions{Add: [][]byte{daveKP.KeyPackage}, IncludePending: true, GroupContextExtensions: exts, SetExtensions: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := bob.Process(pc.Message)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := pg.Process(pc.Message)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.ExtensionsChanged || !slices.ContainsFunc(ch.Extensions, func(e mls.Extension) bool { return e.Type == extType && string(e.Data) == "policy" }) {
		t.Errorf("public change: extensions %v changed %v, want the new one", ch.Extensions, ch.ExtensionsChanged)
	}
	for name, props := range map[string][]mls.ProposalInfo{"staged": p.Commit.Proposals, "public": ch.Proposals} {
		if len(props) != 3 {
			t.Fatalf("%s: %d proposals, want 3: %+v", name, len(props), props)
		}
		for _, pi := range props {
			switch pi.Type {
			case 1: // Add
				if pi.Sender.Leaf != alice.OwnLeaf() || pi.Ref != nil || string(pi.Credential.Identity) != "dave" {
					t.Errorf("%s: Add %+v, want by value from alice, dave's credential", name, pi)
				}
			case 3: // Remove
				if pi.Sender.Leaf != carol.OwnLeaf() || pi.Ref == nil || pi.Leaf != bob.OwnLeaf() {
					t.Errorf("%s: Remove %+v, want carol's by reference, of bob", name, pi)
				}
			case 7: // GroupContextExtensions
				if pi.Sender.Leaf != alice.OwnLeaf() || pi.Ref != nil {
					t.Errorf("%s: GroupContextExtensions %+v, want by value from alice", name, pi)
				}
			default:
				t.Errorf("%s: unexpected proposal %+v", name, pi)
			}
		}
	}
}
