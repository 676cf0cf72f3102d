package framing

import (
	"bytes"
	"strings"
	"testing"

	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/vectors"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// checkFramingErr fails unless err names this package: errors from the
// network path must say where they come from.
func checkFramingErr(t *testing.T, err error) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), "framing: ") {
		t.Fatalf("error without package prefix: %v", err)
	}
}

// FuzzUnprotectPrivate feeds arbitrary MLSMessages to UnprotectPrivate,
// and, since the fuzzer cannot forge AEAD tags, also encrypts an
// arbitrary plaintext under the right keys so that content decoding,
// padding and signature checks see fuzzed input. Keys are those of the
// suite 1 message-protection vector; every call uses fresh secret trees.
func FuzzUnprotectPrivate(f *testing.F) {
	fx := loadFixture(f, 1)
	var vs []messageProtectionVector
	vectors.Load(f, "message-protection.json", &vs)
	valid := fx.signedPlaintext(f, fx.application(f), []byte{0, 0})
	for _, v := range vs {
		for _, m := range [][]byte{v.ProposalPriv, v.CommitPriv, v.ApplicationPriv} {
			f.Add([]byte(m), valid)
		}
	}
	f.Add([]byte{0, 1, 0, 2}, []byte{})

	f.Fuzz(func(t *testing.T, msg, plaintext []byte) {
		var m wire.MLSMessage
		if err := wire.Unmarshal(msg, &m); err == nil && m.PrivateMessage != nil {
			ac, err := UnprotectPrivate(fx.c, m.PrivateMessage, fx.senderData(), fx.tree(t), fx.signers)
			if err != nil {
				checkFramingErr(t, err)
			} else if ac.Content.Sender.LeafIndex != senderLeaf {
				t.Fatalf("accepted a message from leaf %d", ac.Content.Sender.LeafIndex)
			}
		}

		for _, ct := range []wire.ContentType{wire.ContentTypeApplication, wire.ContentTypeProposal, wire.ContentTypeCommit} {
			kind, _ := ratchetKind(ct)
			sender := fx.tree(t)
			gen, kn, err := sender.Next(senderLeaf, kind)
			if err != nil {
				t.Fatal(err)
			}
			pm := fx.sealRaw(t, ct, plaintext, senderLeaf, gen, kn)
			ac, err := UnprotectPrivate(fx.c, pm, fx.senderData(), fx.tree(t), fx.signers)
			if err != nil {
				checkFramingErr(t, err)
				continue
			}
			// Only a correctly signed content gets through; its
			// re-encoding is the plaintext minus the padding.
			pmc := wire.PrivateMessageContent{ApplicationData: ac.Content.ApplicationData, Proposal: ac.Content.Proposal, Commit: ac.Content.Commit, Auth: ac.Auth}
			enc, err := pmc.Marshal(ct, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(plaintext, enc) || strings.Trim(string(plaintext[len(enc):]), "\x00") != "" {
				t.Fatalf("accepted plaintext %x re-encodes as %x", plaintext, enc)
			}
		}
	})
}

// FuzzUnprotectPublic feeds arbitrary MLSMessages to UnprotectPublic with
// the keys of the suite 1 message-protection vector.
func FuzzUnprotectPublic(f *testing.F) {
	fx := loadFixture(f, 1)
	var vs []messageProtectionVector
	vectors.Load(f, "message-protection.json", &vs)
	for _, v := range vs {
		f.Add([]byte(v.ProposalPub))
		f.Add([]byte(v.CommitPub))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var m wire.MLSMessage
		if err := wire.Unmarshal(msg, &m); err != nil || m.PublicMessage == nil {
			return
		}
		ac, err := UnprotectPublic(fx.c, m.PublicMessage, schedule.MembershipKey(fx.v.MembershipKey), fx.signers)
		if err != nil {
			checkFramingErr(t, err)
			return
		}
		if ac.Content.Sender.Type != wire.SenderTypeMember || ac.Content.Sender.LeafIndex != senderLeaf {
			t.Fatalf("accepted a message from %s", senderName(ac.Content.Sender))
		}
	})
}
