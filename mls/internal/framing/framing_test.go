package framing

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/vectors"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// loadFixture returns the fixture of the message-protection vector for
// cipher suite id.
func loadFixture(t testing.TB, id uint16) *fixture {
	t.Helper()
	var vs []messageProtectionVector
	vectors.Load(t, "message-protection.json", &vs)
	for i := range vs {
		if vs[i].CipherSuite == id {
			return newFixture(t, &vs[i])
		}
	}
	t.Fatalf("no message-protection vector for suite %d", id)
	return nil
}

// wantErr fails unless err is non-nil and mentions want.
func wantErr(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not mention %q", err, want)
	}
	if !strings.HasPrefix(err.Error(), "framing: ") {
		t.Errorf("error %q does not name the package", err)
	}
}

func (fx *fixture) proposal(t testing.TB) *wire.FramedContent {
	return fx.content(t, wire.ContentTypeProposal, fx.v.Proposal)
}

func (fx *fixture) application(t testing.TB) *wire.FramedContent {
	return fx.content(t, wire.ContentTypeApplication, []byte("hello, parley"))
}

func (fx *fixture) protectPublic(t testing.TB) *wire.PublicMessage {
	t.Helper()
	pm, err := ProtectPublic(fx.c, fx.proposal(t), fx.v.SignaturePriv, nil, fx.membershipKey())
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

func (fx *fixture) protectPrivate(t testing.TB, fc *wire.FramedContent, tree SecretTree) *wire.PrivateMessage {
	t.Helper()
	pm, err := ProtectPrivate(fx.c, fc, fx.v.SignaturePriv, nil, fx.senderData(), tree, PrivateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

// sealRaw encrypts an arbitrary plaintext as a PrivateMessage of type ct
// from leaf at generation gen under kn, bypassing every check of
// SealPrivate, so that tests can build malformed messages.
func (fx *fixture) sealRaw(t testing.TB, ct wire.ContentType, plaintext []byte, leaf, gen uint32, kn schedule.KeyNonce) *wire.PrivateMessage {
	t.Helper()
	s := fx.s
	guard := [4]byte{1, 2, 3, 4}
	authData := []byte("parley")
	ciphertext, err := s.Seal(kn.Key, applyGuard(kn.Nonce, guard), wire.PrivateContentAAD(fx.v.GroupID, fx.v.Epoch, ct, authData), plaintext)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := codec.Marshal(&wire.SenderData{LeafIndex: leaf, Generation: gen, ReuseGuard: guard})
	if err != nil {
		t.Fatal(err)
	}
	sdkn, err := schedule.SenderDataKeyNonce(s, fx.senderData(), ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	esd, err := s.Seal(sdkn.Key, sdkn.Nonce, wire.SenderDataAAD(fx.v.GroupID, fx.v.Epoch, ct), sd)
	if err != nil {
		t.Fatal(err)
	}
	return &wire.PrivateMessage{
		GroupID: fx.v.GroupID, Epoch: fx.v.Epoch, ContentType: ct, AuthenticatedData: authData,
		EncryptedSenderData: esd, Ciphertext: ciphertext,
	}
}

// signedPlaintext returns a correctly signed PrivateMessageContent of fc
// followed by padding.
func (fx *fixture) signedPlaintext(t testing.TB, fc *wire.FramedContent, padding []byte) []byte {
	t.Helper()
	ac, err := SignContent(fx.c, wire.WireFormatPrivateMessage, fc, fx.v.SignaturePriv)
	if err != nil {
		t.Fatal(err)
	}
	pmc := wire.PrivateMessageContent{ApplicationData: fc.ApplicationData, Proposal: fc.Proposal, Commit: fc.Commit, Auth: ac.Auth}
	out, err := pmc.Marshal(fc.ContentType, 0)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, padding...)
}

func TestPublicTamperedMembershipTag(t *testing.T) {
	fx := loadFixture(t, 1)
	pm := fx.protectPublic(t)
	if _, err := UnprotectPublic(fx.c, pm, fx.membershipKey(), fx.signers); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tamper func(pm *wire.PublicMessage) schedule.MembershipKey
	}{
		{"flipped tag", func(pm *wire.PublicMessage) schedule.MembershipKey {
			pm.MembershipTag[0] ^= 1
			return fx.membershipKey()
		}},
		{"truncated tag", func(pm *wire.PublicMessage) schedule.MembershipKey {
			pm.MembershipTag = pm.MembershipTag[:len(pm.MembershipTag)-1]
			return fx.membershipKey()
		}},
		{"empty tag", func(pm *wire.PublicMessage) schedule.MembershipKey {
			pm.MembershipTag = nil
			return fx.membershipKey()
		}},
		{"wrong key", func(pm *wire.PublicMessage) schedule.MembershipKey {
			k := bytes.Clone(fx.membershipKey())
			k[0] ^= 1
			return k
		}},
		{"altered authenticated data", func(pm *wire.PublicMessage) schedule.MembershipKey {
			pm.Content.AuthenticatedData = []byte("parlez")
			return fx.membershipKey()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pm := fx.protectPublic(t)
			key := tc.tamper(pm)
			_, err := UnprotectPublic(fx.c, pm, key, fx.signers)
			wantErr(t, err, "membership tag of member leaf 1 invalid")
		})
	}
}

func TestPublicTamperedSignature(t *testing.T) {
	fx := loadFixture(t, 1)
	ac, err := SignContent(fx.c, wire.WireFormatPublicMessage, fx.proposal(t), fx.v.SignaturePriv)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.Signature[3] ^= 0x10
	// The membership tag is computed over the bad signature, so only the
	// signature check can catch it.
	pm, err := SealPublic(fx.c, ac, fx.membershipKey())
	if err != nil {
		t.Fatal(err)
	}
	_, err = UnprotectPublic(fx.c, pm, fx.membershipKey(), fx.signers)
	wantErr(t, err, "signature of member leaf 1 invalid")

	// A good signature under another sender's key fails too.
	pm = fx.protectPublic(t)
	other := func(wire.Sender) ([]byte, error) { return fx.v.MembershipKey[:32], nil }
	_, err = UnprotectPublic(fx.c, pm, fx.membershipKey(), other)
	wantErr(t, err, "signature of member leaf 1 invalid")

	// And a sender the lookup does not know is refused.
	_, err = UnprotectPublic(fx.c, pm, fx.membershipKey(), func(wire.Sender) ([]byte, error) { return nil, errors.New("leaf 1 is blank") })
	wantErr(t, err, "leaf 1 is blank")
}

func TestPublicRefusesApplication(t *testing.T) {
	fx := loadFixture(t, 1)
	_, err := ProtectPublic(fx.c, fx.application(t), fx.v.SignaturePriv, nil, fx.membershipKey())
	wantErr(t, err, "application data must be sent as PrivateMessage")

	// Nor is one accepted, even correctly tagged and signed.
	ac, err := SignContent(fx.c, wire.WireFormatPublicMessage, fx.application(t), fx.v.SignaturePriv)
	if err != nil {
		t.Fatal(err)
	}
	pm := &wire.PublicMessage{Content: ac.Content, Auth: ac.Auth}
	pm.MembershipTag = fx.s.MAC(fx.membershipKey(), wire.AuthenticatedContentTBM(ac.WireFormat, &ac.Content, &ac.Auth, fx.c.Encoded()))
	_, err = UnprotectPublic(fx.c, pm, fx.membershipKey(), fx.signers)
	wantErr(t, err, "application data must be sent as PrivateMessage")
}

func TestPublicCommitNeedsConfirmationTag(t *testing.T) {
	fx := loadFixture(t, 1)
	_, err := ProtectPublic(fx.c, fx.content(t, wire.ContentTypeCommit, fx.v.Commit), fx.v.SignaturePriv, nil, fx.membershipKey())
	wantErr(t, err, "commit without confirmation tag")
	_, err = ProtectPublic(fx.c, fx.proposal(t), fx.v.SignaturePriv, []byte{1}, fx.membershipKey())
	wantErr(t, err, "confirmation tag given for proposal content")
}

func TestPrivateTamperedSignature(t *testing.T) {
	fx := loadFixture(t, 1)
	ac, err := SignContent(fx.c, wire.WireFormatPrivateMessage, fx.application(t), fx.v.SignaturePriv)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.Signature[0] ^= 1
	pm, err := SealPrivate(fx.c, ac, fx.senderData(), fx.tree(t), PrivateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = UnprotectPrivate(fx.c, pm, fx.senderData(), fx.tree(t), fx.signers)
	wantErr(t, err, "signature of member leaf 1 invalid")

	// Content signed for PublicMessage does not verify as private.
	ac, err = SignContent(fx.c, wire.WireFormatPublicMessage, fx.proposal(t), fx.v.SignaturePriv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SealPrivate(fx.c, ac, fx.senderData(), fx.tree(t), PrivateOptions{}); err == nil {
		t.Error("SealPrivate accepted content signed for mls_public_message")
	}
	// Smuggled into a PrivateMessage, its signature does not verify: the
	// wire format is part of FramedContentTBS.
	pmc := wire.PrivateMessageContent{Proposal: ac.Content.Proposal, Auth: ac.Auth}
	plain, err := pmc.Marshal(wire.ContentTypeProposal, 0)
	if err != nil {
		t.Fatal(err)
	}
	sender := fx.tree(t)
	gen, kn, err := sender.Next(senderLeaf, schedule.Handshake)
	if err != nil {
		t.Fatal(err)
	}
	pm = fx.sealRaw(t, wire.ContentTypeProposal, plain, senderLeaf, gen, kn)
	_, err = UnprotectPrivate(fx.c, pm, fx.senderData(), fx.tree(t), fx.signers)
	wantErr(t, err, "signature of member leaf 1 invalid")
}

func TestPrivatePadding(t *testing.T) {
	fx := loadFixture(t, 1)
	fc := fx.application(t)

	t.Run("zero padding accepted", func(t *testing.T) {
		sender := fx.tree(t)
		gen, kn, err := sender.Next(senderLeaf, schedule.Application)
		if err != nil {
			t.Fatal(err)
		}
		pm := fx.sealRaw(t, wire.ContentTypeApplication, fx.signedPlaintext(t, fc, make([]byte, 100)), senderLeaf, gen, kn)
		ac, err := UnprotectPrivate(fx.c, pm, fx.senderData(), fx.tree(t), fx.signers)
		if err != nil {
			t.Fatal(err)
		}
		checkBytes(t, "application data", ac.Content.ApplicationData, fc.ApplicationData)
	})
	for _, pad := range [][]byte{{1}, {0, 0, 0, 0x80}, {0, 7, 0}} {
		sender := fx.tree(t)
		gen, kn, err := sender.Next(senderLeaf, schedule.Application)
		if err != nil {
			t.Fatal(err)
		}
		pm := fx.sealRaw(t, wire.ContentTypeApplication, fx.signedPlaintext(t, fc, pad), senderLeaf, gen, kn)
		_, err = UnprotectPrivate(fx.c, pm, fx.senderData(), fx.tree(t), fx.signers)
		wantErr(t, err, "not zero")
	}

	t.Run("block padding", func(t *testing.T) {
		for _, opts := range []PrivateOptions{{PadBlock: 64}, {Padding: 5, PadBlock: 256}, {Padding: 1000}} {
			pm, err := ProtectPrivate(fx.c, fc, fx.v.SignaturePriv, nil, fx.senderData(), fx.tree(t), opts)
			if err != nil {
				t.Fatal(err)
			}
			n := len(pm.Ciphertext) - 16 // AES-GCM tag
			if opts.PadBlock > 1 && n%opts.PadBlock != 0 {
				t.Errorf("%+v: plaintext of %d bytes", opts, n)
			}
			if _, err := UnprotectPrivate(fx.c, pm, fx.senderData(), fx.tree(t), fx.signers); err != nil {
				t.Errorf("%+v: %v", opts, err)
			}
		}
		_, err := ProtectPrivate(fx.c, fc, fx.v.SignaturePriv, nil, fx.senderData(), fx.tree(t), PrivateOptions{Padding: -1})
		wantErr(t, err, "negative padding")
	})
}

func TestPrivateReplay(t *testing.T) {
	fx := loadFixture(t, 1)
	sender, receiver := fx.tree(t), fx.tree(t)
	for _, fc := range []*wire.FramedContent{fx.application(t), fx.proposal(t)} {
		pm := fx.protectPrivate(t, fc, sender)
		if _, err := UnprotectPrivate(fx.c, pm, fx.senderData(), receiver, fx.signers); err != nil {
			t.Fatal(err)
		}
		_, err := UnprotectPrivate(fx.c, pm, fx.senderData(), receiver, fx.signers)
		wantErr(t, err, "generation 0")
		errorsIs(t, err, schedule.ErrGenerationUsed)
	}

	// Out of order within the window is fine, once.
	pms := make([]*wire.PrivateMessage, 5)
	for i := range pms {
		pms[i] = fx.protectPrivate(t, fx.application(t), sender)
	}
	for _, i := range []int{4, 0, 2, 1, 3} {
		if _, err := UnprotectPrivate(fx.c, pms[i], fx.senderData(), receiver, fx.signers); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	_, err := UnprotectPrivate(fx.c, pms[2], fx.senderData(), receiver, fx.signers)
	errorsIs(t, err, schedule.ErrGenerationUsed)
}

func TestWrongGroupOrEpoch(t *testing.T) {
	fx := loadFixture(t, 1)
	for _, tc := range []struct {
		name   string
		tamper func(groupID *[]byte, epoch *uint64)
		want   error
	}{
		{"epoch", func(_ *[]byte, e *uint64) { *e++ }, ErrWrongEpoch},
		{"group", func(g *[]byte, _ *uint64) { *g = []byte("another group") }, ErrWrongGroup},
	} {
		t.Run("private/"+tc.name, func(t *testing.T) {
			pm := fx.protectPrivate(t, fx.application(t), fx.tree(t))
			tc.tamper(&pm.GroupID, &pm.Epoch)
			_, err := UnprotectPrivate(fx.c, pm, fx.senderData(), fx.tree(t), fx.signers)
			errorsIs(t, err, tc.want)
		})
		t.Run("public/"+tc.name, func(t *testing.T) {
			pm := fx.protectPublic(t)
			tc.tamper(&pm.Content.GroupID, &pm.Content.Epoch)
			_, err := UnprotectPublic(fx.c, pm, fx.membershipKey(), fx.signers)
			errorsIs(t, err, tc.want)
		})
		t.Run("protect/"+tc.name, func(t *testing.T) {
			fc := fx.application(t)
			tc.tamper(&fc.GroupID, &fc.Epoch)
			_, err := ProtectPrivate(fx.c, fc, fx.v.SignaturePriv, nil, fx.senderData(), fx.tree(t), PrivateOptions{})
			errorsIs(t, err, tc.want)
		})
	}

	// A message of this epoch fails under the next epoch's context.
	gc := wire.GroupContext{Version: wire.ProtocolVersionMLS10, CipherSuite: fx.s.ID(), GroupID: fx.v.GroupID, Epoch: fx.v.Epoch + 1}
	next, err := NewContext(fx.s, &gc)
	if err != nil {
		t.Fatal(err)
	}
	pm := fx.protectPrivate(t, fx.application(t), fx.tree(t))
	_, err = UnprotectPrivate(next, pm, fx.senderData(), fx.tree(t), fx.signers)
	errorsIs(t, err, ErrWrongEpoch)
}

func TestPrivateSenderLeaf(t *testing.T) {
	fx := loadFixture(t, 1)
	plain := fx.signedPlaintext(t, fx.application(t), nil)
	kn := schedule.KeyNonce{Key: make([]byte, 16), Nonce: make([]byte, 12)}

	pm := fx.sealRaw(t, wire.ContentTypeApplication, plain, 7, 0, kn)
	_, err := UnprotectPrivate(fx.c, pm, fx.senderData(), fx.tree(t), fx.signers)
	wantErr(t, err, "framing: unprotect PrivateMessage: sender data: leaf 7 out of range")

	pm = fx.sealRaw(t, wire.ContentTypeApplication, plain, 1<<31, 0, kn)
	_, err = UnprotectPrivate(fx.c, pm, fx.senderData(), fx.tree(t), fx.signers)
	wantErr(t, err, "out of range")

	// Leaf 0 is in the tree but blank for the lookup: refused before any
	// key is consumed, so its generation 0 is still usable afterwards.
	receiver := fx.tree(t)
	pm = fx.sealRaw(t, wire.ContentTypeApplication, plain, 0, 0, kn)
	_, err = UnprotectPrivate(fx.c, pm, fx.senderData(), receiver, fx.signers)
	wantErr(t, err, "member leaf 0 has no leaf node")
	if _, err := receiver.Key(0, schedule.Application, 0); err != nil {
		t.Errorf("generation 0 of leaf 0 consumed by a refused message: %v", err)
	}

	// Protecting as a leaf outside the tree fails too.
	fc := fx.application(t)
	fc.Sender.LeafIndex = 5
	_, err = ProtectPrivate(fx.c, fc, fx.v.SignaturePriv, nil, fx.senderData(), fx.tree(t), PrivateOptions{})
	wantErr(t, err, "leaf 5 out of range")
	fc.Sender = wire.Sender{Type: wire.SenderTypeNewMemberCommit}
	_, err = ProtectPrivate(fx.c, fc, fx.v.SignaturePriv, nil, fx.senderData(), fx.tree(t), PrivateOptions{})
	wantErr(t, err, "cannot send PrivateMessage")
}

func TestPrivateTruncatedCiphertexts(t *testing.T) {
	fx := loadFixture(t, 1)
	pm := fx.protectPrivate(t, fx.application(t), fx.tree(t))
	cut := func(b []byte, n int) []byte { return bytes.Clone(b[:n]) }
	for _, n := range []int{0, 1, 15, 16, 31, 32, len(pm.Ciphertext) - 1} {
		m := *pm
		m.Ciphertext = cut(pm.Ciphertext, n)
		if _, err := UnprotectPrivate(fx.c, &m, fx.senderData(), fx.tree(t), fx.signers); err == nil {
			t.Errorf("ciphertext cut to %d bytes accepted", n)
		}
	}
	for _, n := range []int{0, 1, 10, len(pm.EncryptedSenderData) - 1} {
		m := *pm
		m.EncryptedSenderData = cut(pm.EncryptedSenderData, n)
		_, err := UnprotectPrivate(fx.c, &m, fx.senderData(), fx.tree(t), fx.signers)
		wantErr(t, err, "sender data")
	}
	// A ciphertext altered past the sample keeps the sender data valid
	// and fails at the content.
	m := *pm
	m.Ciphertext = bytes.Clone(pm.Ciphertext)
	m.Ciphertext[len(m.Ciphertext)-1] ^= 1
	_, err := UnprotectPrivate(fx.c, &m, fx.senderData(), fx.tree(t), fx.signers)
	wantErr(t, err, "does not decrypt")

	// Every prefix of the encoded message is rejected somewhere.
	enc := encodeMessage(t, &wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: pm})
	for n := range len(enc) {
		var msg wire.MLSMessage
		if err := wire.Unmarshal(enc[:n], &msg); err == nil {
			t.Fatalf("prefix of %d/%d bytes decodes", n, len(enc))
		}
	}
	// A plaintext cut short inside the content does not decode.
	sender := fx.tree(t)
	gen, kn, err := sender.Next(senderLeaf, schedule.Application)
	if err != nil {
		t.Fatal(err)
	}
	plain := fx.signedPlaintext(t, fx.application(t), nil)
	bad := fx.sealRaw(t, wire.ContentTypeApplication, plain[:len(plain)-3], senderLeaf, gen, kn)
	_, err = UnprotectPrivate(fx.c, bad, fx.senderData(), fx.tree(t), fx.signers)
	wantErr(t, err, "content of leaf 1 generation 0")
}

func TestPrivateContentTypeBound(t *testing.T) {
	fx := loadFixture(t, 1)
	// The content type is in both AADs: relabelling fails.
	pm := fx.protectPrivate(t, fx.application(t), fx.tree(t))
	pm.ContentType = wire.ContentTypeProposal
	_, err := UnprotectPrivate(fx.c, pm, fx.senderData(), fx.tree(t), fx.signers)
	wantErr(t, err, "sender data")
	// So is the authenticated data (content AAD only).
	pm = fx.protectPrivate(t, fx.application(t), fx.tree(t))
	pm.AuthenticatedData = []byte("other")
	_, err = UnprotectPrivate(fx.c, pm, fx.senderData(), fx.tree(t), fx.signers)
	wantErr(t, err, "does not decrypt")
}

func TestNewContextChecks(t *testing.T) {
	fx := loadFixture(t, 1)
	if _, err := NewContext(fx.s, &wire.GroupContext{Version: 2, CipherSuite: fx.s.ID()}); err == nil {
		t.Error("version 2 accepted")
	}
	if _, err := NewContext(fx.s, &wire.GroupContext{Version: 1, CipherSuite: 2}); err == nil {
		t.Error("foreign cipher suite accepted")
	}
	if _, err := NewContext(nil, nil); err == nil {
		t.Error("nil accepted")
	}
}

// TestPrivateTamperedCiphertextKeepsGeneration checks that a ciphertext
// altered past the sender-data sample (the first Nh bytes) fails without
// using up its generation: the genuine message decrypts afterwards, once.
func TestPrivateTamperedCiphertextKeepsGeneration(t *testing.T) {
	fx := loadFixture(t, 1)
	nh := fx.s.HashSize()
	for _, fc := range []*wire.FramedContent{fx.application(t), fx.proposal(t)} {
		name := contentName(fc.ContentType)
		sender, receiver := fx.tree(t), fx.tree(t)
		pm := fx.protectPrivate(t, fc, sender)
		if len(pm.Ciphertext) <= nh {
			t.Fatalf("%s: ciphertext of %d bytes has nothing past the sample", name, len(pm.Ciphertext))
		}
		for _, i := range []int{nh, len(pm.Ciphertext) - 1} {
			m := *pm
			m.Ciphertext = bytes.Clone(pm.Ciphertext)
			m.Ciphertext[i] ^= 0x80
			_, err := UnprotectPrivate(fx.c, &m, fx.senderData(), receiver, fx.signers)
			wantErr(t, err, "content of leaf 1 generation 0")
			wantErr(t, err, "does not decrypt")
		}
		if _, err := UnprotectPrivate(fx.c, pm, fx.senderData(), receiver, fx.signers); err != nil {
			t.Fatalf("%s: genuine message after tampered copies: %v", name, err)
		}
		_, err := UnprotectPrivate(fx.c, pm, fx.senderData(), receiver, fx.signers)
		wantErr(t, err, "generation 0")
		errorsIs(t, err, schedule.ErrGenerationUsed)
	}

	// A tampered message for a future generation does not move the
	// ratchet either: with no window for late keys, the earlier
	// generations would otherwise be lost.
	strict, err := schedule.NewSecretTree(fx.s, schedule.EncryptionSecret(fx.v.EncryptionSecret), 2, schedule.Config{MaxForward: 10})
	if err != nil {
		t.Fatal(err)
	}
	sender := fx.tree(t)
	pms := make([]*wire.PrivateMessage, 3)
	for i := range pms {
		pms[i] = fx.protectPrivate(t, fx.application(t), sender)
	}
	m := *pms[2]
	m.Ciphertext = bytes.Clone(pms[2].Ciphertext)
	m.Ciphertext[nh] ^= 1
	_, err = UnprotectPrivate(fx.c, &m, fx.senderData(), strict, fx.signers)
	wantErr(t, err, "generation 2")
	for i, pm := range pms {
		if _, err := UnprotectPrivate(fx.c, pm, fx.senderData(), strict, fx.signers); err != nil {
			t.Fatalf("message %d after a tampered generation 2: %v", i, err)
		}
	}
}

// TestPrivateBadSignatureConsumes pins down the documented choice: content
// that decrypts but whose signature fails was made with the epoch's
// ratchet key, and its generation is used up.
func TestPrivateBadSignatureConsumes(t *testing.T) {
	fx := loadFixture(t, 1)
	fc := fx.application(t)
	ac, err := SignContent(fx.c, wire.WireFormatPrivateMessage, fc, fx.v.SignaturePriv)
	if err != nil {
		t.Fatal(err)
	}
	pmc := wire.PrivateMessageContent{ApplicationData: []byte("not what was signed"), Auth: ac.Auth}
	plain, err := pmc.Marshal(wire.ContentTypeApplication, 0)
	if err != nil {
		t.Fatal(err)
	}
	gen, kn, err := fx.tree(t).Next(senderLeaf, schedule.Application)
	if err != nil {
		t.Fatal(err)
	}
	pm := fx.sealRaw(t, wire.ContentTypeApplication, plain, senderLeaf, gen, kn)
	receiver := fx.tree(t)
	_, err = UnprotectPrivate(fx.c, pm, fx.senderData(), receiver, fx.signers)
	wantErr(t, err, "signature of member leaf 1 invalid")
	if _, err := receiver.Peek(senderLeaf, schedule.Application, gen); !errors.Is(err, schedule.ErrGenerationUsed) {
		t.Errorf("generation %d after a bad signature: err = %v, want ErrGenerationUsed", gen, err)
	}
}

// racyTree consumes each generation behind the caller's back between
// Peek and Consume, as a concurrent UnprotectPrivate of the same message
// would.
type racyTree struct{ *schedule.SecretTree }

func (r racyTree) Peek(leaf treemath.LeafIndex, kind schedule.ContentKind, gen uint32) (schedule.KeyNonce, error) {
	kn, err := r.SecretTree.Peek(leaf, kind, gen)
	if err == nil {
		err = r.SecretTree.Consume(leaf, kind, gen)
	}
	return kn, err
}

// TestPrivateConcurrentConsume checks that when another call consumes the
// generation between Peek and Consume, the message is refused as a
// replay.
func TestPrivateConcurrentConsume(t *testing.T) {
	fx := loadFixture(t, 1)
	pm := fx.protectPrivate(t, fx.application(t), fx.tree(t))
	_, err := UnprotectPrivate(fx.c, pm, fx.senderData(), racyTree{fx.tree(t)}, fx.signers)
	wantErr(t, err, "generation 0")
	errorsIs(t, err, schedule.ErrGenerationUsed)
}
