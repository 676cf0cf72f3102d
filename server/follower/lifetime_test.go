package follower

import (
	"testing"
	"time"

	"github.com/parley-chat/parley/mls"
)

// TestMaxLeafLifetime checks that the Delivery Service's follower bounds
// leaf lifetimes as Parley's clients do (mls.DefaultMaxLeafLifetime, RFC
// 9420 §7.2): it refuses a KeyPackage upload valid for two centuries and
// a conversation whose tree holds such a leaf, unless configured without
// a bound.
func TestMaxLeafLifetime(t *testing.T) {
	unbounded := &mls.Config{MaxLeafLifetime: -1}
	s, _ := mls.GenerateSigner(cs)
	long, err := mls.NewKeyPackage(unbounded, cs, s, mls.BasicCredential([]byte("long")), mls.KeyPackageOptions{Lifetime: 200 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f := New(nil).(*Follower)
	if _, err := f.ValidateKeyPackage(long.KeyPackage, time.Now()); err == nil {
		t.Fatal("follower accepted a KeyPackage valid for 200 years")
	} else {
		t.Log(err)
	}
	ok, err := mls.NewKeyPackage(nil, cs, s, mls.BasicCredential([]byte("ok")), mls.KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ValidateKeyPackage(ok.KeyPackage, time.Now()); err != nil {
		t.Fatalf("follower refused a client's default KeyPackage: %v", err)
	}

	gs, _ := mls.GenerateSigner(cs)
	g, err := mls.CreateGroup(unbounded, cs, []byte("lax"), gs, mls.BasicCredential([]byte("a")), mls.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := g.Commit(mls.CommitOptions{Add: [][]byte{long.KeyPackage}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	gi, _ := g.GroupInfo(mls.GroupInfoOptions{})
	tree, _ := g.RatchetTree()
	if _, err := f.Start(gi, tree); err == nil {
		t.Fatal("follower started a conversation whose tree has a leaf valid for 200 years")
	}
	if _, err := New(unbounded).Start(gi, tree); err != nil {
		t.Fatalf("follower without a bound: %v", err)
	}
}
