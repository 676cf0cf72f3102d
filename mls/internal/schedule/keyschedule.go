package schedule

import (
	"fmt"

	"github.com/parley-chat/parley/mls/internal/suite"
)

// InitSecret is init_secret (RFC 9420 §8): the previous epoch's secret that
// seeds the next epoch, or a random value for a group's first epoch (§11).
type InitSecret []byte

// CommitSecret is commit_secret (RFC 9420 §8): the secret a Commit
// contributes from its UpdatePath (§7.4), or Nh zero bytes without one.
type CommitSecret []byte

// JoinerSecret is joiner_secret (RFC 9420 §8), the secret a Welcome
// carries to new members in GroupSecrets (§12.4.3.1).
type JoinerSecret []byte

// WelcomeSecret is welcome_secret (RFC 9420 §8), from which the key and
// nonce protecting a Welcome's GroupInfo derive (§12.4.3.1).
type WelcomeSecret []byte

// EpochSecret is epoch_secret (RFC 9420 §8), the root of an epoch's
// derived secrets.
type EpochSecret []byte

// SenderDataSecret is sender_data_secret (RFC 9420 §8, §6.3.2).
type SenderDataSecret []byte

// EncryptionSecret is encryption_secret (RFC 9420 §8), the root of the
// secret tree (§9).
type EncryptionSecret []byte

// ExporterSecret is exporter_secret (RFC 9420 §8, §8.5).
type ExporterSecret []byte

// ExternalSecret is external_secret (RFC 9420 §8), from which the external
// HPKE key pair derives.
type ExternalSecret []byte

// ConfirmationKey is confirmation_key (RFC 9420 §8), the MAC key of the
// confirmation tag (§6.1).
type ConfirmationKey []byte

// MembershipKey is membership_key (RFC 9420 §8), the MAC key of a
// PublicMessage's membership tag (§6.2).
type MembershipKey []byte

// ResumptionPSK is resumption_psk (RFC 9420 §8, §8.6).
type ResumptionPSK []byte

// EpochAuthenticator is epoch_authenticator (RFC 9420 §8, §8.7).
type EpochAuthenticator []byte

// The labels of RFC 9420 §8 (Table 4 and the schedule diagram).
const (
	labelJoiner         = "joiner"
	labelWelcome        = "welcome"
	labelEpoch          = "epoch"
	labelInit           = "init"
	labelSenderData     = "sender data"
	labelEncryption     = "encryption"
	labelExporter       = "exporter"
	labelExternal       = "external"
	labelConfirm        = "confirm"
	labelMembership     = "membership"
	labelResumption     = "resumption"
	labelAuthentication = "authentication"
)

// Epoch holds the secrets of one epoch (RFC 9420 §8). Every field is Nh
// bytes. The fields are the caller's to read; after the epoch has moved on
// the caller should call Zero.
type Epoch struct {
	suite *suite.Suite

	// JoinerSecret and WelcomeSecret feed the Welcome for members added
	// by the Commit that started this epoch.
	JoinerSecret  JoinerSecret
	WelcomeSecret WelcomeSecret

	SenderDataSecret   SenderDataSecret
	EncryptionSecret   EncryptionSecret
	ExporterSecret     ExporterSecret
	ExternalSecret     ExternalSecret
	ConfirmationKey    ConfirmationKey
	MembershipKey      MembershipKey
	ResumptionPSK      ResumptionPSK
	EpochAuthenticator EpochAuthenticator

	// InitSecret is init_secret for the next epoch.
	InitSecret InitSecret
}

// checkLen verifies that a secret has the suite's hash size.
func checkLen(s *suite.Suite, op, what string, b []byte) error {
	if s == nil {
		return fmt.Errorf("schedule: %s: nil cipher suite", op)
	}
	if nh := s.HashSize(); len(b) != nh {
		return fmt.Errorf("schedule: %s: %s is %d bytes, want Nh=%d", op, what, len(b), nh)
	}
	return nil
}

// pskOrZero returns psk, or Nh zero bytes for an empty psk ("psk_secret
// (or 0)" in §8).
func pskOrZero(s *suite.Suite, op string, psk CombinedPSK) ([]byte, error) {
	if len(psk) == 0 {
		return make([]byte, s.HashSize()), nil
	}
	if err := checkLen(s, op, "psk_secret", psk); err != nil {
		return nil, err
	}
	return psk, nil
}

// Joiner computes joiner_secret = ExpandWithLabel(KDF.Extract(init_secret,
// commit_secret), "joiner", GroupContext, Nh) (RFC 9420 §8). groupContext
// is the TLS encoding of the new epoch's GroupContext.
func Joiner(s *suite.Suite, init InitSecret, commit CommitSecret, groupContext []byte) (JoinerSecret, error) {
	const op = "derive joiner_secret"
	if err := checkLen(s, op, "init_secret", init); err != nil {
		return nil, err
	}
	if err := checkLen(s, op, "commit_secret", commit); err != nil {
		return nil, err
	}
	prk := s.Extract(init, commit)
	defer clear(prk)
	out, err := s.ExpandWithLabel(prk, labelJoiner, groupContext, s.HashSize())
	if err != nil {
		return nil, fmt.Errorf("schedule: %s: %w", op, err)
	}
	return out, nil
}

// memberSecret is KDF.Extract(joiner_secret, psk_secret), the unnamed
// intermediate of §8 from which welcome_secret and epoch_secret derive.
func memberSecret(s *suite.Suite, op string, joiner JoinerSecret, psk CombinedPSK) ([]byte, error) {
	if err := checkLen(s, op, "joiner_secret", joiner); err != nil {
		return nil, err
	}
	p, err := pskOrZero(s, op, psk)
	if err != nil {
		return nil, err
	}
	return s.Extract(joiner, p), nil
}

// Welcome computes welcome_secret = DeriveSecret(KDF.Extract(joiner_secret,
// psk_secret), "welcome") (RFC 9420 §8). An empty psk stands for no PSKs
// (Nh zero bytes).
func Welcome(s *suite.Suite, joiner JoinerSecret, psk CombinedPSK) (WelcomeSecret, error) {
	const op = "derive welcome_secret"
	m, err := memberSecret(s, op, joiner, psk)
	if err != nil {
		return nil, err
	}
	defer clear(m)
	out, err := s.DeriveSecret(m, labelWelcome)
	if err != nil {
		return nil, fmt.Errorf("schedule: %s: %w", op, err)
	}
	return out, nil
}

// WelcomeKeyNonce derives the AEAD key and nonce that protect a Welcome's
// GroupInfo: ExpandWithLabel(welcome_secret, "key"/"nonce", "", Nk/Nn)
// (RFC 9420 §12.4.3.1).
func WelcomeKeyNonce(s *suite.Suite, w WelcomeSecret) (KeyNonce, error) {
	const op = "derive welcome key"
	if err := checkLen(s, op, "welcome_secret", w); err != nil {
		return KeyNonce{}, err
	}
	key, err := s.ExpandWithLabel(w, "key", nil, s.AEADKeySize())
	if err != nil {
		return KeyNonce{}, fmt.Errorf("schedule: %s: %w", op, err)
	}
	nonce, err := s.ExpandWithLabel(w, "nonce", nil, s.AEADNonceSize())
	if err != nil {
		clear(key)
		return KeyNonce{}, fmt.Errorf("schedule: %s: %w", op, err)
	}
	return KeyNonce{Key: key, Nonce: nonce}, nil
}

// DeriveEpoch runs the key schedule of RFC 9420 §8 for a member that
// processes (or creates) a Commit: from the previous epoch's init_secret,
// the Commit's commit_secret, the psk_secret (empty for no PSKs) and the
// TLS encoding of the new epoch's GroupContext it computes every secret of
// the new epoch. The inputs are not modified; the caller deletes them.
func DeriveEpoch(s *suite.Suite, init InitSecret, commit CommitSecret, psk CombinedPSK, groupContext []byte) (*Epoch, error) {
	joiner, err := Joiner(s, init, commit, groupContext)
	if err != nil {
		return nil, err
	}
	defer clear(joiner) // FromJoiner keeps its own copy
	return FromJoiner(s, joiner, psk, groupContext)
}

// FromJoiner runs the key schedule of RFC 9420 §8 from joiner_secret, as a
// member joining by Welcome does (§12.4.3.1): with the psk_secret of the
// Welcome's PSKs (empty for none) and the TLS encoding of the GroupContext
// from the decrypted GroupInfo. The returned Epoch keeps its own copy of
// joiner.
func FromJoiner(s *suite.Suite, joiner JoinerSecret, psk CombinedPSK, groupContext []byte) (*Epoch, error) {
	const op = "derive epoch"
	m, err := memberSecret(s, op, joiner, psk)
	if err != nil {
		return nil, err
	}
	defer clear(m)
	e := &Epoch{suite: s, JoinerSecret: append(JoinerSecret(nil), joiner...)}
	fail := func(what string, err error) (*Epoch, error) {
		e.Zero()
		return nil, fmt.Errorf("schedule: %s: %s: %w", op, what, err)
	}
	if e.WelcomeSecret, err = s.DeriveSecret(m, labelWelcome); err != nil {
		return fail("welcome_secret", err)
	}
	epoch, err := s.ExpandWithLabel(m, labelEpoch, groupContext, s.HashSize())
	if err != nil {
		return fail("epoch_secret", err)
	}
	defer clear(epoch)
	if err := e.deriveFromEpochSecret(epoch); err != nil {
		return fail("epoch-derived secrets", err)
	}
	return e, nil
}

// FromEpochSecret derives the epoch-derived secrets of RFC 9420 §8 (Table
// 4 and the next init_secret) directly from epoch_secret, as the creator
// of a group does for epoch 0, whose epoch_secret is a fresh random value
// (§11). JoinerSecret and WelcomeSecret of the result are nil.
func FromEpochSecret(s *suite.Suite, epochSecret EpochSecret) (*Epoch, error) {
	const op = "derive epoch from epoch_secret"
	if err := checkLen(s, op, "epoch_secret", epochSecret); err != nil {
		return nil, err
	}
	e := &Epoch{suite: s}
	if err := e.deriveFromEpochSecret(epochSecret); err != nil {
		e.Zero()
		return nil, fmt.Errorf("schedule: %s: %w", op, err)
	}
	return e, nil
}

// deriveFromEpochSecret fills the Table 4 secrets and the next init_secret.
func (e *Epoch) deriveFromEpochSecret(epoch []byte) error {
	for _, d := range []struct {
		label string
		dst   *[]byte
	}{
		{labelSenderData, (*[]byte)(&e.SenderDataSecret)},
		{labelEncryption, (*[]byte)(&e.EncryptionSecret)},
		{labelExporter, (*[]byte)(&e.ExporterSecret)},
		{labelExternal, (*[]byte)(&e.ExternalSecret)},
		{labelConfirm, (*[]byte)(&e.ConfirmationKey)},
		{labelMembership, (*[]byte)(&e.MembershipKey)},
		{labelResumption, (*[]byte)(&e.ResumptionPSK)},
		{labelAuthentication, (*[]byte)(&e.EpochAuthenticator)},
		{labelInit, (*[]byte)(&e.InitSecret)},
	} {
		var err error
		if *d.dst, err = e.suite.DeriveSecret(epoch, d.label); err != nil {
			return fmt.Errorf("%q: %w", d.label, err)
		}
	}
	return nil
}

// Suite returns the cipher suite the epoch was derived with.
func (e *Epoch) Suite() *suite.Suite {
	if e == nil {
		return nil
	}
	return e.suite
}

// ExternalKeyPair derives the epoch's external HPKE key pair,
// KEM.DeriveKeyPair(external_secret) (RFC 9420 §8); external_pub goes into
// the GroupInfo's external_pub extension (§12.4.3.2).
func (e *Epoch) ExternalKeyPair() (priv, pub []byte, err error) {
	if e == nil {
		return nil, nil, fmt.Errorf("schedule: derive external key pair: nil epoch")
	}
	if err := checkLen(e.suite, "derive external key pair", "external_secret", e.ExternalSecret); err != nil {
		return nil, nil, err
	}
	priv, pub, err = e.suite.DeriveKeyPair(e.ExternalSecret)
	if err != nil {
		return nil, nil, fmt.Errorf("schedule: derive external key pair: %w", err)
	}
	return priv, pub, nil
}

// Export is MLS-Exporter(label, context, length) = ExpandWithLabel(
// DeriveSecret(exporter_secret, label), "exported", Hash(context), length)
// (RFC 9420 §8.5). label enters the KDFLabel as its bytes, after the
// "MLS 1.0 " prefix (the official key-schedule vectors give it as a JSON
// string, used as is).
func (e *Epoch) Export(label string, context []byte, length int) ([]byte, error) {
	if e == nil {
		return nil, fmt.Errorf("schedule: export %q: nil epoch", label)
	}
	return Export(e.suite, e.ExporterSecret, label, context, length)
}

// Export is MLS-Exporter (RFC 9420 §8.5) over an exporter_secret; see
// Epoch.Export. length must lie in 0..65535 (the KDFLabel length field).
func Export(s *suite.Suite, exporter ExporterSecret, label string, context []byte, length int) ([]byte, error) {
	op := fmt.Sprintf("export %q", label)
	if err := checkLen(s, op, "exporter_secret", exporter); err != nil {
		return nil, err
	}
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("schedule: %s: length %d outside 0..65535", op, length)
	}
	derived, err := s.DeriveSecret(exporter, label)
	if err != nil {
		return nil, fmt.Errorf("schedule: %s: %w", op, err)
	}
	defer clear(derived)
	out, err := s.ExpandWithLabel(derived, "exported", s.Hash(context), length)
	if err != nil {
		return nil, fmt.Errorf("schedule: %s: %w", op, err)
	}
	return out, nil
}

// Zero overwrites every secret of the epoch with zeros, as §9.2 requires
// once they are no longer needed.
func (e *Epoch) Zero() {
	if e == nil {
		return
	}
	for _, b := range [][]byte{
		e.JoinerSecret, e.WelcomeSecret, e.SenderDataSecret, e.EncryptionSecret,
		e.ExporterSecret, e.ExternalSecret, e.ConfirmationKey, e.MembershipKey,
		e.ResumptionPSK, e.EpochAuthenticator, e.InitSecret,
	} {
		clear(b)
	}
}
