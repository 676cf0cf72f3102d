package mls_test

import (
	"fmt"

	"github.com/parley-chat/parley/mls"
)

const cs = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

// newMember returns a KeyPackage bundle for a new client.
func newMember(name string) *mls.KeyPackageBundle {
	s, _ := mls.GenerateSigner(cs)
	b, err := mls.NewKeyPackage(nil, cs, s, mls.BasicCredential([]byte(name)), mls.KeyPackageOptions{})
	if err != nil {
		panic(err)
	}
	return b
}

// Two members exchange a message.
func Example() {
	aliceSigner, _ := mls.GenerateSigner(cs)
	alice, _ := mls.CreateGroup(nil, cs, []byte("example group"), aliceSigner, mls.BasicCredential([]byte("alice")), mls.CreateOptions{})

	bobKP := newMember("bob")
	pc, _ := alice.Commit(mls.CommitOptions{Add: [][]byte{bobKP.KeyPackage}, InlineRatchetTree: true})
	// ... send pc.Message to the group and pc.Welcome to bob; once the
	// Delivery Service accepted the commit:
	_ = alice.MergePendingCommit(pc)
	bob, err := mls.JoinFromWelcome(nil, pc.Welcome, bobKP, mls.JoinOptions{})
	if err != nil {
		panic(err)
	}

	msg, _ := alice.Encrypt([]byte("hi bob"), nil)
	p, _ := bob.Process(msg)
	fmt.Printf("%s from leaf %d in epoch %d\n", p.ApplicationData, p.Sender.Leaf, p.Epoch)
	// Output: hi bob from leaf 0 in epoch 1
}

// A member is removed and can no longer read the group.
func Example_remove() {
	aliceSigner, _ := mls.GenerateSigner(cs)
	alice, _ := mls.CreateGroup(nil, cs, []byte("example group"), aliceSigner, mls.BasicCredential([]byte("alice")), mls.CreateOptions{})
	bobKP, carolKP := newMember("bob"), newMember("carol")
	pc, _ := alice.Commit(mls.CommitOptions{Add: [][]byte{bobKP.KeyPackage, carolKP.KeyPackage}, InlineRatchetTree: true})
	_ = alice.MergePendingCommit(pc)
	bob, _ := mls.JoinFromWelcome(nil, pc.Welcome, bobKP, mls.JoinOptions{})
	carol, _ := mls.JoinFromWelcome(nil, pc.Welcome, carolKP, mls.JoinOptions{})

	pc, _ = alice.Commit(mls.CommitOptions{Remove: []mls.LeafIndex{carol.OwnLeaf()}})
	for _, g := range []*mls.Group{bob, carol} {
		p, _ := g.Process(pc.Message)
		fmt.Println("removed:", p.Commit.SelfRemoved)
		_ = g.MergeStagedCommit(p.Commit)
	}
	_ = alice.MergePendingCommit(pc)

	msg, _ := alice.Encrypt([]byte("without carol"), nil)
	_, err := carol.Process(msg)
	fmt.Println("carol can read:", err == nil)
	p, _ := bob.Process(msg)
	fmt.Printf("bob reads: %s\n", p.ApplicationData)
	// Output:
	// removed: false
	// removed: true
	// carol can read: false
	// bob reads: without carol
}

// A new device joins by external commit from a published GroupInfo.
func Example_externalJoin() {
	aliceSigner, _ := mls.GenerateSigner(cs)
	alice, _ := mls.CreateGroup(nil, cs, []byte("example group"), aliceSigner, mls.BasicCredential([]byte("alice")), mls.CreateOptions{})

	// Alice publishes a GroupInfo with external_pub and the tree.
	gi, _ := alice.GroupInfo(mls.GroupInfoOptions{ExternalPub: true, InlineRatchetTree: true})

	deviceSigner, _ := mls.GenerateSigner(cs)
	device, pc, err := mls.JoinExternal(nil, gi, deviceSigner, mls.BasicCredential([]byte("alice")), mls.ExternalJoinOptions{})
	if err != nil {
		panic(err)
	}
	p, err := alice.Process(pc.Message)
	if err != nil {
		panic(err)
	}
	_ = alice.MergeStagedCommit(p.Commit)
	_ = device.MergePendingCommit(pc)
	fmt.Println("members:", len(alice.Members()), "epoch:", device.Epoch())
	fmt.Println("same epoch authenticator:", string(alice.EpochAuthenticator()) == string(device.EpochAuthenticator()))
	// Output:
	// members: 2 epoch: 1
	// same epoch authenticator: true
}
