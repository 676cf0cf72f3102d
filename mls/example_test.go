package mls_test

import (
	"errors"
	"fmt"

	"github.com/parley-chat/parley/mls"
)

const cs = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

// check ends an example on an unexpected error; an application would
// return it.
func check(err error) {
	if err != nil {
		panic(err)
	}
}

// newMember returns a KeyPackage bundle for a new client.
func newMember(name string) *mls.KeyPackageBundle {
	s, err := mls.GenerateSigner(cs)
	check(err)
	b, err := mls.NewKeyPackage(nil, cs, s, mls.BasicCredential([]byte(name)), mls.KeyPackageOptions{})
	check(err)
	return b
}

// The lifecycle of a group: a KeyPackage, creating the group and joining
// it, a proposal and the Commit that includes it, processing, and
// application messages. Every step returns an error; sentinel errors say
// what went wrong (here ErrReplay, for a message processed twice).
func Example() {
	// Bob publishes a KeyPackage (RFC 9420 §10) and keeps the bundle,
	// which holds its private keys, until it is used.
	bobKP := newMember("bob")

	// Alice creates the group (§11) and commits bob's addition. A Commit
	// is applied only once the Delivery Service accepted it; the Welcome
	// goes to bob.
	aliceSigner, err := mls.GenerateSigner(cs)
	check(err)
	alice, err := mls.CreateGroup(nil, cs, []byte("example group"), aliceSigner, mls.BasicCredential([]byte("alice")), mls.CreateOptions{})
	check(err)
	pc, err := alice.Commit(mls.CommitOptions{Add: [][]byte{bobKP.KeyPackage}, InlineRatchetTree: true})
	check(err)
	check(alice.MergePendingCommit(pc))
	bob, err := mls.JoinFromWelcome(nil, pc.Welcome, bobKP, mls.JoinOptions{})
	check(err)
	fmt.Println("bob joined epoch", bob.Epoch())

	// Bob proposes a fresh leaf key (§12.1.2); alice processes the
	// proposal, which caches it, and commits it by reference.
	proposal, err := bob.ProposeUpdate()
	check(err)
	p, err := alice.Process(proposal)
	check(err)
	fmt.Println("alice cached a proposal from leaf", p.Proposal.Sender.Leaf)
	pc, err = alice.Commit(mls.CommitOptions{IncludePending: true})
	check(err)

	// Bob processes the Commit: it is staged, and merged once the
	// Delivery Service accepted it (§12.4.2). Alice merges her own.
	p, err = bob.Process(pc.Message)
	check(err)
	check(bob.MergeStagedCommit(p.Commit))
	check(alice.MergePendingCommit(pc))
	fmt.Println("both in epoch", alice.Epoch(), bob.Epoch())

	// Application messages (§15).
	msg, err := alice.Encrypt([]byte("hi bob"), nil)
	check(err)
	p, err = bob.Process(msg)
	check(err)
	fmt.Printf("%s from leaf %d\n", p.ApplicationData, p.Sender.Leaf)
	if _, err := bob.Process(msg); errors.Is(err, mls.ErrReplay) {
		fmt.Println("again:", err != nil, "(a replay)")
	}
	// Output:
	// bob joined epoch 1
	// alice cached a proposal from leaf 1
	// both in epoch 2 2
	// hi bob from leaf 0
	// again: true (a replay)
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
