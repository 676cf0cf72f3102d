package framing

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/vectors"
	"github.com/parley-chat/parley/mls/internal/wire"
)

func newSuite(t testing.TB, id uint16) *suite.Suite {
	t.Helper()
	s, err := suite.New(suite.ID(id))
	if err != nil {
		t.Fatalf("suite.New(%d): %v", id, err)
	}
	return s
}

func checkBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", what, got, want)
	}
}

// decodeMessage decodes an MLSMessage and checks its version and wire
// format.
func decodeMessage(t testing.TB, data []byte, wf wire.WireFormat) *wire.MLSMessage {
	t.Helper()
	var m wire.MLSMessage
	if err := wire.Unmarshal(data, &m); err != nil {
		t.Fatalf("decode MLSMessage: %v", err)
	}
	if m.Version != wire.ProtocolVersionMLS10 || m.WireFormat != wf {
		t.Fatalf("MLSMessage version %d wire format %d, want 1 and %d", m.Version, m.WireFormat, wf)
	}
	return &m
}

func encodeMessage(t testing.TB, m *wire.MLSMessage) []byte {
	t.Helper()
	out, err := wire.Marshal(m)
	if err != nil {
		t.Fatalf("encode MLSMessage: %v", err)
	}
	return out
}

// bodyBytes returns the encoding of the select arm of fc: the application
// data, or the encoded proposal or commit.
func bodyBytes(t testing.TB, fc *wire.FramedContent) []byte {
	t.Helper()
	var (
		out []byte
		err error
	)
	switch fc.ContentType {
	case wire.ContentTypeApplication:
		return fc.ApplicationData
	case wire.ContentTypeProposal:
		out, err = codec.Marshal(fc.Proposal)
	case wire.ContentTypeCommit:
		out, err = codec.Marshal(fc.Commit)
	default:
		t.Fatalf("content type %d", fc.ContentType)
	}
	if err != nil {
		t.Fatalf("encode body: %v", err)
	}
	return out
}

type messageProtectionVector struct {
	CipherSuite             uint16      `json:"cipher_suite"`
	GroupID                 vectors.Hex `json:"group_id"`
	Epoch                   uint64      `json:"epoch"`
	TreeHash                vectors.Hex `json:"tree_hash"`
	ConfirmedTranscriptHash vectors.Hex `json:"confirmed_transcript_hash"`
	SignaturePriv           vectors.Hex `json:"signature_priv"`
	SignaturePub            vectors.Hex `json:"signature_pub"`
	EncryptionSecret        vectors.Hex `json:"encryption_secret"`
	SenderDataSecret        vectors.Hex `json:"sender_data_secret"`
	MembershipKey           vectors.Hex `json:"membership_key"`
	Proposal                vectors.Hex `json:"proposal"`
	ProposalPub             vectors.Hex `json:"proposal_pub"`
	ProposalPriv            vectors.Hex `json:"proposal_priv"`
	Commit                  vectors.Hex `json:"commit"`
	CommitPub               vectors.Hex `json:"commit_pub"`
	CommitPriv              vectors.Hex `json:"commit_priv"`
	Application             vectors.Hex `json:"application"`
	ApplicationPriv         vectors.Hex `json:"application_priv"`
}

// fixture is the state of a message-protection vector: the group
// context, keys, and a way to make fresh secret trees.
type fixture struct {
	s       *suite.Suite
	c       *Context
	v       *messageProtectionVector
	signers SignerLookup
}

// senderLeaf is the leaf of the sender in the message-protection vectors.
const senderLeaf = 1

func newFixture(t testing.TB, v *messageProtectionVector) *fixture {
	t.Helper()
	s := newSuite(t, v.CipherSuite)
	c, err := NewContext(s, &wire.GroupContext{
		Version:                 wire.ProtocolVersionMLS10,
		CipherSuite:             s.ID(),
		GroupID:                 v.GroupID,
		Epoch:                   v.Epoch,
		TreeHash:                v.TreeHash,
		ConfirmedTranscriptHash: v.ConfirmedTranscriptHash,
	})
	if err != nil {
		t.Fatal(err)
	}
	pub := v.SignaturePub
	return &fixture{s: s, c: c, v: v, signers: func(sender wire.Sender) ([]byte, error) {
		if sender.Type == wire.SenderTypeMember && sender.LeafIndex == senderLeaf {
			return pub, nil
		}
		return nil, fmt.Errorf("%s has no leaf node", senderName(sender))
	}}
}

// tree returns a fresh secret tree for 2 members.
func (fx *fixture) tree(t testing.TB) *schedule.SecretTree {
	t.Helper()
	st, err := schedule.NewSecretTree(fx.s, schedule.EncryptionSecret(fx.v.EncryptionSecret), 2, schedule.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (fx *fixture) membershipKey() schedule.MembershipKey {
	return schedule.MembershipKey(fx.v.MembershipKey)
}

func (fx *fixture) senderData() schedule.SenderDataSecret {
	return schedule.SenderDataSecret(fx.v.SenderDataSecret)
}

// content returns a FramedContent from leaf 1 carrying raw, of type ct.
func (fx *fixture) content(t testing.TB, ct wire.ContentType, raw []byte) *wire.FramedContent {
	t.Helper()
	fc := &wire.FramedContent{
		GroupID:           fx.v.GroupID,
		Epoch:             fx.v.Epoch,
		Sender:            wire.Sender{Type: wire.SenderTypeMember, LeafIndex: senderLeaf},
		AuthenticatedData: []byte("parley"),
		ContentType:       ct,
	}
	switch ct {
	case wire.ContentTypeApplication:
		fc.ApplicationData = raw
	case wire.ContentTypeProposal:
		fc.Proposal = new(wire.Proposal)
		if err := wire.Unmarshal(raw, fc.Proposal); err != nil {
			t.Fatal(err)
		}
	case wire.ContentTypeCommit:
		fc.Commit = new(wire.Commit)
		if err := wire.Unmarshal(raw, fc.Commit); err != nil {
			t.Fatal(err)
		}
	}
	return fc
}

// checkContent checks that ac is from leaf 1 in the vector's group and
// epoch and carries raw.
func (fx *fixture) checkContent(t testing.TB, ac *wire.AuthenticatedContent, wf wire.WireFormat, ct wire.ContentType, raw []byte) {
	t.Helper()
	if ac.WireFormat != wf || ac.Content.ContentType != ct {
		t.Errorf("wire format %d content type %d, want %d and %d", ac.WireFormat, ac.Content.ContentType, wf, ct)
	}
	if s := ac.Content.Sender; s.Type != wire.SenderTypeMember || s.LeafIndex != senderLeaf {
		t.Errorf("sender %+v, want member leaf %d", s, senderLeaf)
	}
	checkBytes(t, "group_id", ac.Content.GroupID, fx.v.GroupID)
	if ac.Content.Epoch != fx.v.Epoch {
		t.Errorf("epoch %d, want %d", ac.Content.Epoch, fx.v.Epoch)
	}
	checkBytes(t, "content", bodyBytes(t, &ac.Content), raw)
}

func TestVectorsMessageProtection(t *testing.T) {
	var vs []messageProtectionVector
	vectors.Load(t, "message-protection.json", &vs)
	c := vectors.NewCounter("message-protection.json")
	for i := range vs {
		v := &vs[i]
		c.Run(t, fmt.Sprintf("%d/suite%d", i, v.CipherSuite), func(t *testing.T) {
			fx := newFixture(t, v)
			kinds := []struct {
				name      string
				ct        wire.ContentType
				raw, pub  []byte
				priv      []byte
				tagSource []byte
			}{
				{"proposal", wire.ContentTypeProposal, v.Proposal, v.ProposalPub, v.ProposalPriv, nil},
				{"commit", wire.ContentTypeCommit, v.Commit, v.CommitPub, v.CommitPriv, v.CommitPub},
				{"application", wire.ContentTypeApplication, v.Application, nil, v.ApplicationPriv, nil},
			}
			for _, k := range kinds {
				t.Run(k.name, func(t *testing.T) {
					fx.checkKind(t, k.ct, k.raw, k.pub, k.priv, k.tagSource)
				})
			}
		})
	}
	c.Report(t)
}

// checkKind runs the checks of test-vectors.md §Message Protection for one
// content type.
func (fx *fixture) checkKind(t *testing.T, ct wire.ContentType, raw, pubMsg, privMsg, tagSource []byte) {
	// A commit needs a confirmation tag to be protected; any Nh-byte tag
	// will do for these checks, so take the one of the vector's message.
	var tag []byte
	if tagSource != nil {
		tag = decodeMessage(t, tagSource, wire.WireFormatPublicMessage).PublicMessage.Auth.ConfirmationTag
		if len(tag) != fx.s.HashSize() {
			t.Fatalf("vector confirmation tag is %d bytes", len(tag))
		}
	}

	if ct != wire.ContentTypeApplication {
		// The vector's PublicMessage verifies and yields the raw value.
		m := decodeMessage(t, pubMsg, wire.WireFormatPublicMessage)
		ac, err := UnprotectPublic(fx.c, m.PublicMessage, fx.membershipKey(), fx.signers)
		if err != nil {
			t.Fatalf("vector PublicMessage: %v", err)
		}
		fx.checkContent(t, ac, wire.WireFormatPublicMessage, ct, raw)

		// Ours verifies too.
		pm, err := ProtectPublic(fx.c, fx.content(t, ct, raw), fx.v.SignaturePriv, tag, fx.membershipKey())
		if err != nil {
			t.Fatalf("ProtectPublic: %v", err)
		}
		enc := encodeMessage(t, &wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm})
		m = decodeMessage(t, enc, wire.WireFormatPublicMessage)
		ac, err = UnprotectPublic(fx.c, m.PublicMessage, fx.membershipKey(), fx.signers)
		if err != nil {
			t.Fatalf("our PublicMessage: %v", err)
		}
		fx.checkContent(t, ac, wire.WireFormatPublicMessage, ct, raw)
	} else {
		// Application data must not go out as PublicMessage.
		if _, err := ProtectPublic(fx.c, fx.content(t, ct, raw), fx.v.SignaturePriv, nil, fx.membershipKey()); err == nil {
			t.Fatal("ProtectPublic accepted application data")
		}
	}

	// The vector's PrivateMessage decrypts with a fresh tree.
	m := decodeMessage(t, privMsg, wire.WireFormatPrivateMessage)
	ac, err := UnprotectPrivate(fx.c, m.PrivateMessage, fx.senderData(), fx.tree(t), fx.signers)
	if err != nil {
		t.Fatalf("vector PrivateMessage: %v", err)
	}
	fx.checkContent(t, ac, wire.WireFormatPrivateMessage, ct, raw)

	// Ours decrypts with another fresh tree: sender and receiver each
	// consume their own copy of the ratchet.
	pm, err := ProtectPrivate(fx.c, fx.content(t, ct, raw), fx.v.SignaturePriv, tag, fx.senderData(), fx.tree(t), PrivateOptions{Padding: 7})
	if err != nil {
		t.Fatalf("ProtectPrivate: %v", err)
	}
	enc := encodeMessage(t, &wire.MLSMessage{Version: wire.ProtocolVersionMLS10, WireFormat: wire.WireFormatPrivateMessage, PrivateMessage: pm})
	m = decodeMessage(t, enc, wire.WireFormatPrivateMessage)
	ac, err = UnprotectPrivate(fx.c, m.PrivateMessage, fx.senderData(), fx.tree(t), fx.signers)
	if err != nil {
		t.Fatalf("our PrivateMessage: %v", err)
	}
	fx.checkContent(t, ac, wire.WireFormatPrivateMessage, ct, raw)
	if ct == wire.ContentTypeCommit {
		checkBytes(t, "confirmation tag", ac.Auth.ConfirmationTag, tag)
	}
}

type transcriptVector struct {
	CipherSuite                  uint16      `json:"cipher_suite"`
	ConfirmationKey              vectors.Hex `json:"confirmation_key"`
	AuthenticatedContent         vectors.Hex `json:"authenticated_content"`
	InterimTranscriptHashBefore  vectors.Hex `json:"interim_transcript_hash_before"`
	ConfirmedTranscriptHashAfter vectors.Hex `json:"confirmed_transcript_hash_after"`
	InterimTranscriptHashAfter   vectors.Hex `json:"interim_transcript_hash_after"`
}

func TestVectorsTranscriptHashes(t *testing.T) {
	var vs []transcriptVector
	vectors.Load(t, "transcript-hashes.json", &vs)
	c := vectors.NewCounter("transcript-hashes.json")
	for i := range vs {
		v := &vs[i]
		c.Run(t, fmt.Sprintf("%d/suite%d", i, v.CipherSuite), func(t *testing.T) {
			s := newSuite(t, v.CipherSuite)
			var ac wire.AuthenticatedContent
			if err := wire.Unmarshal(v.AuthenticatedContent, &ac); err != nil {
				t.Fatal(err)
			}
			if ac.Content.ContentType != wire.ContentTypeCommit {
				t.Fatalf("content type %d, want commit", ac.Content.ContentType)
			}
			if err := VerifyConfirmationTag(s, schedule.ConfirmationKey(v.ConfirmationKey), v.ConfirmedTranscriptHashAfter, ac.Auth.ConfirmationTag); err != nil {
				t.Error(err)
			}
			confirmed, interim, err := TranscriptHashes(s, v.InterimTranscriptHashBefore, &ac)
			if err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "confirmed_transcript_hash_after", confirmed, v.ConfirmedTranscriptHashAfter)
			checkBytes(t, "interim_transcript_hash_after", interim, v.InterimTranscriptHashAfter)
		})
	}
	c.Report(t)
}

type welcomeVector struct {
	CipherSuite uint16      `json:"cipher_suite"`
	InitPriv    vectors.Hex `json:"init_priv"`
	SignerPub   vectors.Hex `json:"signer_pub"`
	KeyPackage  vectors.Hex `json:"key_package"`
	Welcome     vectors.Hex `json:"welcome"`
}

func TestVectorsWelcome(t *testing.T) {
	var vs []welcomeVector
	vectors.Load(t, "welcome.json", &vs)
	c := vectors.NewCounter("welcome.json")
	for i := range vs {
		v := &vs[i]
		c.Run(t, fmt.Sprintf("%d/suite%d", i, v.CipherSuite), func(t *testing.T) {
			s := newSuite(t, v.CipherSuite)
			kp := decodeMessage(t, v.KeyPackage, wire.WireFormatKeyPackage).KeyPackage
			w := decodeMessage(t, v.Welcome, wire.WireFormatWelcome).Welcome

			// Step by step, as the group state machine may.
			e, err := FindGroupSecrets(s, w, kp)
			if err != nil {
				t.Fatal(err)
			}
			gs, err := DecryptGroupSecrets(s, w, e, v.InitPriv)
			if err != nil {
				t.Fatal(err)
			}
			if len(gs.PSKs) != 0 {
				t.Fatalf("vector names %d PSKs", len(gs.PSKs))
			}
			gi, err := DecryptGroupInfo(s, w, gs.JoinerSecret, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := gi.Verify(s, v.SignerPub); err != nil {
				t.Error(err)
			}
			gcBytes, err := codec.Marshal(&gi.GroupContext)
			if err != nil {
				t.Fatal(err)
			}
			epoch, err := schedule.FromJoiner(s, gs.JoinerSecret, nil, gcBytes)
			if err != nil {
				t.Fatal(err)
			}
			tag, err := ConfirmationTag(s, epoch.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash)
			if err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "confirmation_tag", tag, gi.ConfirmationTag)

			// All at once.
			var asked uint32 = 1 << 31
			j, err := OpenWelcome(s, w, kp, v.InitPriv, nil, func(gi *wire.GroupInfo) ([]byte, error) {
				asked = gi.Signer
				return v.SignerPub, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if asked != gi.Signer {
				t.Errorf("signer lookup asked for leaf %d, want %d", asked, gi.Signer)
			}
			checkBytes(t, "joiner_secret", j.GroupSecrets.JoinerSecret, gs.JoinerSecret)
			checkBytes(t, "confirmation_key", j.Epoch.ConfirmationKey, epoch.ConfirmationKey)
			interim, err := InterimTranscriptHash(s, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag)
			if err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "interim_transcript_hash", j.InterimTranscriptHash, interim)

			// A wrong signer key is refused.
			_, err = OpenWelcome(s, w, kp, v.InitPriv, nil, func(*wire.GroupInfo) ([]byte, error) { return kp.LeafNode.SignatureKey, nil })
			if err == nil {
				t.Error("OpenWelcome accepted a GroupInfo under the wrong signer key")
			}
			// A wrong init key finds nothing to decrypt.
			bad := append([]byte(nil), v.InitPriv...)
			bad[len(bad)-1] ^= 1
			if _, err := OpenWelcome(s, w, kp, bad, nil, func(*wire.GroupInfo) ([]byte, error) { return v.SignerPub, nil }); err == nil {
				t.Error("OpenWelcome accepted a wrong init key")
			}
		})
	}
	c.Report(t)
}

// errorsIs is errors.Is with a helpful failure.
func errorsIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("error %v, want one wrapping %v", err, target)
	}
}
