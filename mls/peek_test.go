package mls

import (
	"bytes"
	"testing"

	"github.com/parley-chat/parley/mls/internal/wire"
)

// resign re-signs a GroupInfo (MLSMessage) after f changed it, as the member
// g; the result is a well-signed GroupInfo with f's change.
func resign(t *testing.T, g *Group, gi []byte, f func(*wire.GroupInfo)) []byte {
	t.Helper()
	var m wire.MLSMessage
	if err := wire.Unmarshal(gi, &m); err != nil {
		t.Fatal(err)
	}
	f(m.GroupInfo)
	if err := m.GroupInfo.Sign(g.c.cs, g.signer.priv); err != nil {
		t.Fatal(err)
	}
	b, err := wire.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyGroupInfo(t *testing.T) {
	w, alice, bob := twoMembers(t)
	pc, err := alice.Commit(CommitOptions{ForcePath: true, InlineRatchetTree: true, ExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := w.pg.Process(pc.Message)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.VerifyGroupInfo(pc.GroupInfo); err != nil {
		t.Fatalf("the commit's own GroupInfo: %v", err)
	}
	// Without extensions too, and from the state after the merge, as any
	// member's GroupInfo.
	bare := resign(t, alice, pc.GroupInfo, func(gi *wire.GroupInfo) { gi.Extensions = wire.Extensions{} })
	if err := ch.VerifyGroupInfo(bare); err != nil {
		t.Fatalf("GroupInfo without extensions: %v", err)
	}
	oldGI, _ := bob.GroupInfo(GroupInfoOptions{})
	reject := func(name string, gi []byte, rule string) {
		t.Helper()
		err := ch.VerifyGroupInfo(gi)
		wantRule(t, err, ErrInvalidWelcome, rule)
		t.Logf("%s: %v", name, err)
	}
	reject("the old epoch's GroupInfo", oldGI, "group context")
	reject("another epoch", resign(t, alice, pc.GroupInfo, func(gi *wire.GroupInfo) { gi.GroupContext.Epoch++ }), "group context")
	reject("another tree hash", resign(t, alice, pc.GroupInfo, func(gi *wire.GroupInfo) { gi.GroupContext.TreeHash[0] ^= 1 }), "group context")
	reject("another transcript", resign(t, alice, pc.GroupInfo, func(gi *wire.GroupInfo) { gi.GroupContext.ConfirmedTranscriptHash[0] ^= 1 }), "group context")
	reject("another confirmation tag", resign(t, alice, pc.GroupInfo, func(gi *wire.GroupInfo) { gi.ConfirmationTag[0] ^= 1 }), "confirmation_tag")
	reject("signed by a non-committer", resign(t, bob, pc.GroupInfo, func(gi *wire.GroupInfo) { gi.Signer = uint32(bob.OwnLeaf()) }), "not by the committer")
	reject("bad signature", resign(t, bob, pc.GroupInfo, func(*wire.GroupInfo) {}), "signature")
	reject("tampered tree", resign(t, alice, pc.GroupInfo, func(gi *wire.GroupInfo) {
		e := &gi.Extensions[extIndex(gi.Extensions, wire.ExtensionRatchetTree)]
		e.Data = bytes.Clone(e.Data)
		e.Data[len(e.Data)-1] ^= 1
	}), "ratchet_tree")
	reject("malformed external_pub", resign(t, alice, pc.GroupInfo, func(gi *wire.GroupInfo) {
		gi.Extensions[extIndex(gi.Extensions, wire.ExtensionExternalPub)].Data = []byte{3, 1, 2, 3}
	}), "external_pub")
	reject("duplicate extension", resign(t, alice, pc.GroupInfo, func(gi *wire.GroupInfo) {
		gi.Extensions = append(gi.Extensions, gi.Extensions[0])
	}), "§12.4.3")
	if err := ch.VerifyGroupInfo(append(bytes.Clone(pc.GroupInfo), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	// After the merge, PublicGroup.VerifyGroupInfo takes any member's.
	if err := w.pg.Merge(ch); err != nil {
		t.Fatal(err)
	}
	if err := w.pg.VerifyGroupInfo(pc.GroupInfo); err != nil {
		t.Fatal(err)
	}
	if err := alice.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	p, err := bob.Process(pc.Message)
	if err != nil {
		t.Fatal(err)
	}
	bob.MergeStagedCommit(p.Commit)
	bobGI, _ := bob.GroupInfo(GroupInfoOptions{ExternalPub: true})
	if err := w.pg.VerifyGroupInfo(bobGI); err != nil {
		t.Fatalf("another member's GroupInfo of the epoch: %v", err)
	}
	if err := w.pg.VerifyGroupInfo(oldGI); err == nil {
		t.Fatal("an old GroupInfo accepted")
	}
}

func extIndex(es wire.Extensions, typ wire.ExtensionType) int {
	for i := range es {
		if es[i].Type == typ {
			return i
		}
	}
	panic("extension not found")
}

func TestPeek(t *testing.T) {
	w, alice, _ := twoMembers(t)
	msg, err := alice.Encrypt([]byte("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	gid, epoch, ct, err := PeekPrivateMessage(msg)
	if err != nil || !bytes.Equal(gid, alice.GroupID()) || epoch != alice.Epoch() || ct != ContentApplication {
		t.Fatalf("PeekPrivateMessage = %x, %d, %d, %v", gid, epoch, ct, err)
	}
	for i := range msg {
		if _, _, _, err := PeekPrivateMessage(msg[:i]); err == nil {
			t.Fatalf("truncated PrivateMessage (%d of %d bytes) accepted", i, len(msg))
		}
	}
	carol := w.kp("carol")
	pc, err := alice.Commit(CommitOptions{Add: [][]byte{carol.KeyPackage}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := PeekPrivateMessage(pc.Message); err == nil {
		t.Fatal("PublicMessage accepted as PrivateMessage")
	}
	cs, refs, err := PeekWelcome(pc.Welcome)
	if err != nil || cs != alice.CipherSuite() || len(refs) != 1 || !bytes.Equal(refs[0], carol.Ref) {
		t.Fatalf("PeekWelcome = %v, %x, %v", cs, refs, err)
	}
	if _, _, err := PeekWelcome(pc.Message); err == nil {
		t.Fatal("PublicMessage accepted as Welcome")
	}
	for _, c := range []struct {
		msg  []byte
		want WireFormat
	}{{msg, WireFormatPrivateMessage}, {pc.Message, WireFormatPublicMessage}, {pc.Welcome, WireFormatWelcome}, {pc.GroupInfo, WireFormatGroupInfo}, {carol.KeyPackage, WireFormatKeyPackage}} {
		if wf, err := PeekWireFormat(c.msg); err != nil || wf != c.want {
			t.Fatalf("PeekWireFormat = %d, %v; want %d", wf, err, c.want)
		}
	}
}

func FuzzPeek(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 0x40, 1, 0xff})
	f.Add([]byte{0, 1, 0, 3, 0, 1, 1, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if gid, _, _, err := PeekPrivateMessage(data); err == nil && len(gid) > len(data) {
			t.Fatal("group id longer than the input")
		}
		PeekWelcome(data)
		PeekWireFormat(data)
	})
}
