package schedule

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/vectors"
)

func newSuite(t testing.TB, id uint16) *suite.Suite {
	t.Helper()
	s, err := suite.New(suite.ID(id))
	if err != nil {
		t.Fatalf("suite.New(%d): %v", id, err)
	}
	return s
}

func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", what, got, want)
	}
}

type keyScheduleVector struct {
	CipherSuite       uint16       `json:"cipher_suite"`
	GroupID           vectors.Hex  `json:"group_id"`
	InitialInitSecret vectors.Hex  `json:"initial_init_secret"`
	Epochs            []epochEntry `json:"epochs"`
}

type epochEntry struct {
	TreeHash                vectors.Hex `json:"tree_hash"`
	CommitSecret            vectors.Hex `json:"commit_secret"`
	PSKSecret               vectors.Hex `json:"psk_secret"`
	ConfirmedTranscriptHash vectors.Hex `json:"confirmed_transcript_hash"`

	GroupContext vectors.Hex `json:"group_context"`

	JoinerSecret  vectors.Hex `json:"joiner_secret"`
	WelcomeSecret vectors.Hex `json:"welcome_secret"`
	InitSecret    vectors.Hex `json:"init_secret"`

	SenderDataSecret   vectors.Hex `json:"sender_data_secret"`
	EncryptionSecret   vectors.Hex `json:"encryption_secret"`
	ExporterSecret     vectors.Hex `json:"exporter_secret"`
	EpochAuthenticator vectors.Hex `json:"epoch_authenticator"`
	ExternalSecret     vectors.Hex `json:"external_secret"`
	ConfirmationKey    vectors.Hex `json:"confirmation_key"`
	MembershipKey      vectors.Hex `json:"membership_key"`
	ResumptionPSK      vectors.Hex `json:"resumption_psk"`

	ExternalPub vectors.Hex `json:"external_pub"`
	Exporter    struct {
		Label   string      `json:"label"`
		Context vectors.Hex `json:"context"`
		Length  uint32      `json:"length"`
		Secret  vectors.Hex `json:"secret"`
	} `json:"exporter"`
}

// encodeGroupContext builds the GroupContext of RFC 9420 §8.1 with empty
// extensions.
func encodeGroupContext(t *testing.T, cs uint16, groupID []byte, epoch uint64, treeHash, confirmed []byte) []byte {
	t.Helper()
	var b codec.Builder
	b.AddUint16(1) // mls10
	b.AddUint16(cs)
	b.AddOpaque(groupID)
	b.AddUint64(epoch)
	b.AddOpaque(treeHash)
	b.AddOpaque(confirmed)
	b.AddVector(func(*codec.Builder) {}) // extensions
	out, err := b.Bytes()
	if err != nil {
		t.Fatalf("encode GroupContext: %v", err)
	}
	return out
}

func TestVectorsKeySchedule(t *testing.T) {
	var tests []keyScheduleVector
	vectors.Load(t, "key-schedule.json", &tests)
	c := vectors.NewCounter("key-schedule.json")
	for i, tc := range tests {
		c.Run(t, fmt.Sprintf("%d/suite=%d", i, tc.CipherSuite), func(t *testing.T) {
			s := newSuite(t, tc.CipherSuite)
			init := InitSecret(tc.InitialInitSecret)
			for n, ep := range tc.Epochs {
				gc := encodeGroupContext(t, tc.CipherSuite, tc.GroupID, uint64(n), ep.TreeHash, ep.ConfirmedTranscriptHash)
				checkBytes(t, fmt.Sprintf("epoch %d group_context", n), gc, ep.GroupContext)

				e, err := DeriveEpoch(s, init, CommitSecret(ep.CommitSecret), CombinedPSK(ep.PSKSecret), gc)
				if err != nil {
					t.Fatalf("epoch %d: %v", n, err)
				}
				for _, f := range []struct {
					name      string
					got, want []byte
				}{
					{"joiner_secret", e.JoinerSecret, ep.JoinerSecret},
					{"welcome_secret", e.WelcomeSecret, ep.WelcomeSecret},
					{"init_secret", e.InitSecret, ep.InitSecret},
					{"sender_data_secret", e.SenderDataSecret, ep.SenderDataSecret},
					{"encryption_secret", e.EncryptionSecret, ep.EncryptionSecret},
					{"exporter_secret", e.ExporterSecret, ep.ExporterSecret},
					{"epoch_authenticator", e.EpochAuthenticator, ep.EpochAuthenticator},
					{"external_secret", e.ExternalSecret, ep.ExternalSecret},
					{"confirmation_key", e.ConfirmationKey, ep.ConfirmationKey},
					{"membership_key", e.MembershipKey, ep.MembershipKey},
					{"resumption_psk", e.ResumptionPSK, ep.ResumptionPSK},
				} {
					checkBytes(t, fmt.Sprintf("epoch %d %s", n, f.name), f.got, f.want)
				}

				// The joiner's entry reaches the same epoch.
				w, err := Welcome(s, JoinerSecret(ep.JoinerSecret), CombinedPSK(ep.PSKSecret))
				if err != nil {
					t.Fatalf("epoch %d: Welcome: %v", n, err)
				}
				checkBytes(t, fmt.Sprintf("epoch %d Welcome", n), w, ep.WelcomeSecret)
				j, err := FromJoiner(s, JoinerSecret(ep.JoinerSecret), CombinedPSK(ep.PSKSecret), gc)
				if err != nil {
					t.Fatalf("epoch %d: FromJoiner: %v", n, err)
				}
				checkBytes(t, fmt.Sprintf("epoch %d FromJoiner epoch_authenticator", n), j.EpochAuthenticator, ep.EpochAuthenticator)
				checkBytes(t, fmt.Sprintf("epoch %d FromJoiner init_secret", n), j.InitSecret, ep.InitSecret)

				_, pub, err := e.ExternalKeyPair()
				if err != nil {
					t.Fatalf("epoch %d: ExternalKeyPair: %v", n, err)
				}
				checkBytes(t, fmt.Sprintf("epoch %d external_pub", n), pub, ep.ExternalPub)

				x := ep.Exporter
				got, err := e.Export(string(x.Label), x.Context, int(x.Length))
				if err != nil {
					t.Fatalf("epoch %d: Export: %v", n, err)
				}
				checkBytes(t, fmt.Sprintf("epoch %d exporter.secret", n), got, x.Secret)

				init = e.InitSecret
			}
		})
	}
	c.Report(t)
}

type pskSecretVector struct {
	CipherSuite uint16 `json:"cipher_suite"`
	PSKs        []struct {
		PSKID    vectors.Hex `json:"psk_id"`
		PSK      vectors.Hex `json:"psk"`
		PSKNonce vectors.Hex `json:"psk_nonce"`
	} `json:"psks"`
	PSKSecret vectors.Hex `json:"psk_secret"`
}

// encodeExternalPSKID builds a PreSharedKeyID of RFC 9420 §8.4 with
// psktype external(1).
func encodeExternalPSKID(t *testing.T, id, nonce []byte) []byte {
	t.Helper()
	var b codec.Builder
	b.AddUint8(1)
	b.AddOpaque(id)
	b.AddOpaque(nonce)
	out, err := b.Bytes()
	if err != nil {
		t.Fatalf("encode PreSharedKeyID: %v", err)
	}
	return out
}

func TestVectorsPSKSecret(t *testing.T) {
	var tests []pskSecretVector
	vectors.Load(t, "psk_secret.json", &tests)
	c := vectors.NewCounter("psk_secret.json")
	for i, tc := range tests {
		c.Run(t, fmt.Sprintf("%d/suite=%d/psks=%d", i, tc.CipherSuite, len(tc.PSKs)), func(t *testing.T) {
			s := newSuite(t, tc.CipherSuite)
			psks := make([]PSK, len(tc.PSKs))
			for j, p := range tc.PSKs {
				psks[j] = PSK{ID: encodeExternalPSKID(t, p.PSKID, p.PSKNonce), Secret: p.PSK}
			}
			got, err := PSKSecret(s, psks)
			if err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "psk_secret", got, tc.PSKSecret)
		})
	}
	c.Report(t)
}

type secretTreeVector struct {
	CipherSuite uint16 `json:"cipher_suite"`
	SenderData  struct {
		SenderDataSecret vectors.Hex `json:"sender_data_secret"`
		Ciphertext       vectors.Hex `json:"ciphertext"`
		Key              vectors.Hex `json:"key"`
		Nonce            vectors.Hex `json:"nonce"`
	} `json:"sender_data"`
	EncryptionSecret vectors.Hex `json:"encryption_secret"`
	Leaves           [][]struct {
		Generation       uint32      `json:"generation"`
		HandshakeKey     vectors.Hex `json:"handshake_key"`
		HandshakeNonce   vectors.Hex `json:"handshake_nonce"`
		ApplicationKey   vectors.Hex `json:"application_key"`
		ApplicationNonce vectors.Hex `json:"application_nonce"`
	} `json:"leaves"`
}

func TestVectorsSecretTree(t *testing.T) {
	var tests []secretTreeVector
	vectors.Load(t, "secret-tree.json", &tests)
	c := vectors.NewCounter("secret-tree.json")
	for i, tc := range tests {
		c.Run(t, fmt.Sprintf("%d/suite=%d/leaves=%d", i, tc.CipherSuite, len(tc.Leaves)), func(t *testing.T) {
			s := newSuite(t, tc.CipherSuite)
			sd := tc.SenderData
			kn, err := SenderDataKeyNonce(s, SenderDataSecret(sd.SenderDataSecret), sd.Ciphertext)
			if err != nil {
				t.Fatal(err)
			}
			checkBytes(t, "sender_data key", kn.Key, sd.Key)
			checkBytes(t, "sender_data nonce", kn.Nonce, sd.Nonce)

			tree, err := NewSecretTree(s, EncryptionSecret(tc.EncryptionSecret), treemath.LeafCount(len(tc.Leaves)), DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			for leaf, gens := range tc.Leaves {
				l := treemath.LeafIndex(leaf)
				for _, g := range gens {
					hs, err := tree.Key(l, Handshake, g.Generation)
					if err != nil {
						t.Fatal(err)
					}
					checkBytes(t, fmt.Sprintf("handshake_key[%d][%d]", leaf, g.Generation), hs.Key, g.HandshakeKey)
					checkBytes(t, fmt.Sprintf("handshake_nonce[%d][%d]", leaf, g.Generation), hs.Nonce, g.HandshakeNonce)
					app, err := tree.Key(l, Application, g.Generation)
					if err != nil {
						t.Fatal(err)
					}
					checkBytes(t, fmt.Sprintf("application_key[%d][%d]", leaf, g.Generation), app.Key, g.ApplicationKey)
					checkBytes(t, fmt.Sprintf("application_nonce[%d][%d]", leaf, g.Generation), app.Nonce, g.ApplicationNonce)
				}
			}
		})
	}
	c.Report(t)
}
