package framing

import (
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// labelWelcome is the EncryptWithLabel label of GroupSecrets (RFC 9420
// §12.4.3.1).
const labelWelcome = "Welcome"

// FindGroupSecrets returns the entry of w addressed to kp (RFC 9420
// §12.4.3.1): the one whose new_member is kp's KeyPackageRef under s. The
// Welcome's and the KeyPackage's cipher suites must both be s.
func FindGroupSecrets(s *suite.Suite, w *wire.Welcome, kp *wire.KeyPackage) (*wire.EncryptedGroupSecrets, error) {
	const op = "framing: open Welcome"
	if s == nil || w == nil || kp == nil {
		return nil, fmt.Errorf("%s: nil suite, welcome or key package", op)
	}
	if w.CipherSuite != s.ID() {
		return nil, fmt.Errorf("%s: welcome cipher suite %#04x is not %#04x", op, uint16(w.CipherSuite), uint16(s.ID()))
	}
	if kp.CipherSuite != s.ID() {
		return nil, fmt.Errorf("%s: key package cipher suite %#04x is not the welcome's %#04x", op, uint16(kp.CipherSuite), uint16(s.ID()))
	}
	ref, err := kp.Ref(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	e := w.Find(ref)
	if e == nil {
		return nil, fmt.Errorf("%s: no secrets for key package %x among %d entries", op, ref, len(w.Secrets))
	}
	return e, nil
}

// welcomeHeadroom is the scratch space an owned copy of a Welcome's
// encrypted_group_info keeps in front of it (see ownEncryptedGroupInfo).
var welcomeHeadroom = max(suite.LabelHeadroom(labelWelcome), suite.LabelHeadroom(wire.LabelGroupInfoTBS))

// ownEncryptedGroupInfo returns a copy of w's encrypted_group_info at
// buf[off:], after off bytes of headroom. The copy serves three steps
// without another one: it is the context of the GroupSecrets' HPKE
// decryption (the EncryptContext header goes into the headroom), the
// GroupInfo is then decrypted in place in it, and the GroupInfoTBS is
// verified as decrypted (the SignContent header goes into the headroom).
func ownEncryptedGroupInfo(w *wire.Welcome) (buf []byte, off int) {
	buf = make([]byte, welcomeHeadroom+len(w.EncryptedGroupInfo))
	copy(buf[welcomeHeadroom:], w.EncryptedGroupInfo)
	return buf, welcomeHeadroom
}

// DecryptGroupSecrets decrypts the GroupSecrets in e, an entry of w, with
// initPriv, the HPKE private key of the KeyPackage's init_key (RFC 9420
// §12.4.3.1): DecryptWithLabel(initPriv, "Welcome", encrypted_group_info,
// kem_output, ciphertext). The joiner_secret must be Nh bytes. The caller
// owns the result and should zero its secrets once used.
func DecryptGroupSecrets(s *suite.Suite, w *wire.Welcome, e *wire.EncryptedGroupSecrets, initPriv []byte) (*wire.GroupSecrets, error) {
	const op = "framing: decrypt GroupSecrets"
	if s == nil || w == nil || e == nil {
		return nil, fmt.Errorf("%s: nil suite, welcome or secrets", op)
	}
	buf, off := ownEncryptedGroupInfo(w)
	return decryptGroupSecrets(s, buf, off, e, initPriv)
}

// decryptGroupSecrets is DecryptGroupSecrets with the encrypted_group_info
// at buf[off:] after off bytes of headroom (ownEncryptedGroupInfo), which
// it leaves unchanged.
func decryptGroupSecrets(s *suite.Suite, buf []byte, off int, e *wire.EncryptedGroupSecrets, initPriv []byte) (*wire.GroupSecrets, error) {
	const op = "framing: decrypt GroupSecrets"
	ct := &e.EncryptedGroupSecrets
	plain, err := s.DecryptWithLabelHeadroom(initPriv, labelWelcome, buf, off, ct.KEMOutput, ct.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%s: %d-byte ciphertext does not decrypt: %w", op, len(ct.Ciphertext), err)
	}
	defer clear(plain)
	gs := new(wire.GroupSecrets)
	if err := wire.Unmarshal(plain, gs); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if len(gs.JoinerSecret) != s.HashSize() {
		clear(gs.JoinerSecret)
		clear(gs.PathSecret)
		return nil, fmt.Errorf("%s: joiner_secret is %d bytes, want %d", op, len(gs.JoinerSecret), s.HashSize())
	}
	return gs, nil
}

// DecryptGroupInfo decrypts and decodes w's GroupInfo (RFC 9420
// §12.4.3.1): welcome_secret comes from joiner and psk (the psk_secret of
// the GroupSecrets' PSKs, empty for none), and the GroupInfo is opened
// with welcome_key = ExpandWithLabel(welcome_secret, "key", "", Nk) and
// welcome_nonce = ExpandWithLabel(welcome_secret, "nonce", "", Nn) and an
// empty AAD. It neither verifies the signature nor the confirmation tag.
// The GroupInfo's byte slices alias one buffer of its own (a copy of the
// encrypted_group_info, decrypted in place), not w.
func DecryptGroupInfo(s *suite.Suite, w *wire.Welcome, joiner schedule.JoinerSecret, psk schedule.CombinedPSK) (*wire.GroupInfo, error) {
	const op = "framing: decrypt GroupInfo"
	if s == nil || w == nil {
		return nil, fmt.Errorf("%s: nil suite or welcome", op)
	}
	buf, off := ownEncryptedGroupInfo(w)
	gi, _, err := decryptGroupInfo(s, buf[off:], joiner, psk)
	return gi, err
}

// decryptGroupInfo is DecryptGroupInfo decrypting the encrypted_group_info
// egi in place: it returns the GroupInfo, whose byte slices alias egi, and
// its encoding, a prefix of egi. egi must be owned by the caller, who
// hands it over to the GroupInfo; on failure its contents are unspecified.
func decryptGroupInfo(s *suite.Suite, egi []byte, joiner schedule.JoinerSecret, psk schedule.CombinedPSK) (*wire.GroupInfo, []byte, error) {
	const op = "framing: decrypt GroupInfo"
	ws, err := schedule.Welcome(s, joiner, psk)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	kn, err := schedule.WelcomeKeyNonce(s, ws)
	clear(ws)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	n := len(egi)
	plain, err := s.OpenInPlace(kn.Key, kn.Nonce, nil, egi)
	kn.Zero()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %d-byte encrypted_group_info does not decrypt: %w", op, n, err)
	}
	gi := new(wire.GroupInfo)
	if err := wire.UnmarshalAliasing(plain, gi); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	return gi, plain, nil
}

// PSKResolver returns the psk_secret (RFC 9420 §8.4) of the PSKs a Welcome
// names, or an error if the client lacks one of them (§12.4.3.1).
type PSKResolver func(ids []wire.PreSharedKeyID) (schedule.CombinedPSK, error)

// GroupInfoSigner returns the signature public key of the member at leaf
// gi.Signer in the group's ratchet tree (from the ratchet_tree extension
// or elsewhere), or an error if that leaf is blank or absent.
type GroupInfoSigner func(gi *wire.GroupInfo) ([]byte, error)

// Joined is what a new member learns from a Welcome whose GroupInfo has
// been authenticated: the secrets addressed to it, the GroupInfo, the
// epoch's key schedule and the interim transcript hash (RFC 9420
// §12.4.3.1). The ratchet tree is not checked here. The caller owns the
// secrets and should zero them (GroupSecrets, Epoch.Zero) once used.
type Joined struct {
	GroupSecrets          *wire.GroupSecrets
	GroupInfo             *wire.GroupInfo
	Epoch                 *schedule.Epoch
	InterimTranscriptHash []byte
}

// OpenWelcome runs the cryptographic steps of joining via Welcome (RFC
// 9420 §12.4.3.1): it finds the entry for kp, decrypts the GroupSecrets
// with initPriv, derives psk_secret with psks (nil is allowed only if the
// Welcome names no PSKs), decrypts the GroupInfo, checks that its version
// is mls10 and its cipher suite s, verifies its signature with the key
// signer returns, runs the key schedule from joiner_secret with the
// GroupInfo's GroupContext, verifies the confirmation tag against the
// confirmed transcript hash and computes the interim transcript hash.
// The remaining checks of §12.4.3.1 (group_id uniqueness, the ratchet
// tree, PSK usage rules) are the caller's.
//
// The encrypted_group_info is copied once, decrypted in place, and the
// GroupInfo's byte slices (its ratchet_tree extension among them) alias
// that copy, which belongs to the result: signer and the caller may keep
// them, and nothing returned aliases w.
func OpenWelcome(s *suite.Suite, w *wire.Welcome, kp *wire.KeyPackage, initPriv []byte, psks PSKResolver, signer GroupInfoSigner) (*Joined, error) {
	const op = "framing: open Welcome"
	e, err := FindGroupSecrets(s, w, kp)
	if err != nil {
		return nil, err
	}
	buf, off := ownEncryptedGroupInfo(w)
	gs, err := decryptGroupSecrets(s, buf, off, e, initPriv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	ok := false
	defer func() {
		if !ok {
			clear(gs.JoinerSecret)
			clear(gs.PathSecret)
		}
	}()
	var psk schedule.CombinedPSK
	if len(gs.PSKs) > 0 {
		if psks == nil {
			return nil, fmt.Errorf("%s: welcome names %d PSKs and no resolver was given", op, len(gs.PSKs))
		}
		if psk, err = psks(gs.PSKs); err != nil {
			return nil, fmt.Errorf("%s: PSKs: %w", op, err)
		}
		defer clear(psk)
	}
	gi, enc, err := decryptGroupInfo(s, buf[off:], gs.JoinerSecret, psk)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	gc := &gi.GroupContext
	if gc.Version != wire.ProtocolVersionMLS10 {
		return nil, fmt.Errorf("%s: group info version %d is not mls10", op, gc.Version)
	}
	if gc.CipherSuite != s.ID() {
		return nil, fmt.Errorf("%s: group info cipher suite %#04x is not %#04x", op, uint16(gc.CipherSuite), uint16(s.ID()))
	}
	if signer == nil {
		return nil, fmt.Errorf("%s: no signer lookup", op)
	}
	pub, err := signer(gi)
	if err != nil {
		return nil, fmt.Errorf("%s: signature key of signer %d: %w", op, gi.Signer, err)
	}
	// enc = buf[off:off+len(enc)]: the GroupInfo as decrypted, with the
	// headroom still in front of it.
	if err := gi.VerifyEncoded(s, pub, buf[:off+len(enc)], off); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	gcBytes, err := codec.Marshal(gc)
	if err != nil {
		return nil, fmt.Errorf("%s: encode group context: %w", op, err)
	}
	epoch, err := schedule.FromJoiner(s, gs.JoinerSecret, psk, gcBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := VerifyConfirmationTag(s, epoch.ConfirmationKey, gc.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
		epoch.Zero()
		return nil, fmt.Errorf("%s: group info: %w", op, err)
	}
	interim, err := InterimTranscriptHash(s, gc.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		epoch.Zero()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	ok = true
	return &Joined{GroupSecrets: gs, GroupInfo: gi, Epoch: epoch, InterimTranscriptHash: interim}, nil
}
