package framing

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// reuseGuardSize is the length of SenderData.reuse_guard (RFC 9420 §6.3.2).
const reuseGuardSize = 4

// SecretTree is the secret tree of one epoch (RFC 9420 §9) as message
// protection uses it; *schedule.SecretTree implements it. Next consumes
// the key it returns. Peek returns a key without consuming it and Consume
// marks its generation used (§9.2), so that a receiver deletes a key only
// once a message decrypted under it: after Consume, Peek and Consume for
// that generation fail with an error wrapping schedule.ErrGenerationUsed.
type SecretTree interface {
	// LeafCount returns the number of leaves of the tree.
	LeafCount() treemath.LeafCount
	// Next returns the next unused generation of leaf's kind ratchet
	// with its key and nonce, for sending, and consumes them.
	Next(leaf treemath.LeafIndex, kind schedule.ContentKind) (uint32, schedule.KeyNonce, error)
	// Peek returns the key and nonce of generation gen of leaf's kind
	// ratchet, for receiving, without changing the tree.
	Peek(leaf treemath.LeafIndex, kind schedule.ContentKind, gen uint32) (schedule.KeyNonce, error)
	// Consume marks generation gen of leaf's kind ratchet used and
	// deletes its key.
	Consume(leaf treemath.LeafIndex, kind schedule.ContentKind, gen uint32) error
}

// maxPaddedContent bounds a padded PrivateMessageContent: the ciphertext
// is an opaque<V> whose length is at most 2^30-1 (RFC 9420 §2.1.2), and
// the AEAD tag must fit as well.
const maxPaddedContent = 1<<30 - 1 - 64

// PrivateOptions are a sender's choices for one PrivateMessage. The zero
// value adds no padding and draws the reuse guard from crypto/rand.
type PrivateOptions struct {
	// Padding is a number of zero bytes appended to the
	// PrivateMessageContent (RFC 9420 §6.3.1, §15.1).
	Padding int
	// PadTo, when set, is called with the length of the encoded
	// PrivateMessageContent plus Padding and returns the length to pad it
	// to with zero bytes, hiding the exact length of the content (§15.1);
	// a result below its argument, or beyond what a PrivateMessage can
	// carry, is an error.
	PadTo func(n int) int
	// PadBlock, when above 1, adds zero bytes after Padding and PadTo
	// until the PrivateMessageContent is a multiple of PadBlock bytes
	// long, hiding the exact length of the content.
	PadBlock int
	// Rand is the source of the reuse guard (§6.3.1); nil means
	// crypto/rand.
	Rand io.Reader
}

// ratchetKind returns the ratchet that protects content of type ct (RFC
// 9420 §6.3.1): handshake for proposals and commits, application for
// application data.
func ratchetKind(ct wire.ContentType) (schedule.ContentKind, bool) {
	switch ct {
	case wire.ContentTypeApplication:
		return schedule.Application, true
	case wire.ContentTypeProposal, wire.ContentTypeCommit:
		return schedule.Handshake, true
	}
	return 0, false
}

// applyGuard returns nonce with guard XORed into its first four bytes
// (RFC 9420 §6.3.1). nonce is not modified.
func applyGuard(nonce []byte, guard [reuseGuardSize]byte) []byte {
	out := append([]byte(nil), nonce...)
	for i := 0; i < reuseGuardSize && i < len(out); i++ {
		out[i] ^= guard[i]
	}
	return out
}

// ProtectPrivate signs content and encrypts it as a PrivateMessage (RFC
// 9420 §6.3): the signature over FramedContentTBS with sigPriv, the
// confirmation tag (required for and only for commits), then SealPrivate.
// As with ProtectPublic, a committer that needs the signature before the
// tag uses SignContent with mls_private_message and SealPrivate.
func ProtectPrivate(c *Context, content *wire.FramedContent, sigPriv, confirmationTag []byte, senderData schedule.SenderDataSecret, tree SecretTree, opts PrivateOptions) (*wire.PrivateMessage, error) {
	const op = "framing: protect PrivateMessage"
	if c == nil || content == nil {
		return nil, fmt.Errorf("%s: nil context or content", op)
	}
	if content.Sender.Type != wire.SenderTypeMember {
		return nil, fmt.Errorf("%s: %s cannot send PrivateMessage", op, senderName(content.Sender))
	}
	if content.ContentType == wire.ContentTypeCommit {
		if len(confirmationTag) == 0 {
			return nil, fmt.Errorf("%s: commit without confirmation tag", op)
		}
	} else if confirmationTag != nil {
		return nil, fmt.Errorf("%s: confirmation tag given for %s content", op, contentName(content.ContentType))
	}
	ac, err := c.sign(op, wire.WireFormatPrivateMessage, content, sigPriv)
	if err != nil {
		return nil, err
	}
	ac.Auth.ConfirmationTag = confirmationTag
	return sealPrivate(op, c, ac, senderData, tree, opts)
}

// SealPrivate encrypts an already signed AuthenticatedContent as a
// PrivateMessage (RFC 9420 §6.3). The sender must be a member; ac's wire
// format must be mls_private_message and a commit must carry its
// confirmation tag. The content is encrypted under the next key of the
// sender's ratchet in tree (handshake for proposals and commits,
// application for application data), which is consumed, with a fresh
// reuse guard XORed into the nonce and the padding opts asks for; the
// SenderData is then encrypted under the key and nonce derived from
// senderData and the ciphertext sample (§6.3.2). The message shares ac's
// group_id and authenticated_data slices.
func SealPrivate(c *Context, ac *wire.AuthenticatedContent, senderData schedule.SenderDataSecret, tree SecretTree, opts PrivateOptions) (*wire.PrivateMessage, error) {
	const op = "framing: seal PrivateMessage"
	if c == nil || ac == nil {
		return nil, fmt.Errorf("%s: nil context or content", op)
	}
	if err := c.checkGroup(op, ac.Content.GroupID, ac.Content.Epoch); err != nil {
		return nil, err
	}
	if ac.Content.ContentType == wire.ContentTypeCommit && len(ac.Auth.ConfirmationTag) == 0 {
		return nil, fmt.Errorf("%s: commit without confirmation tag", op)
	}
	return sealPrivate(op, c, ac, senderData, tree, opts)
}

func sealPrivate(op string, c *Context, ac *wire.AuthenticatedContent, senderData schedule.SenderDataSecret, tree SecretTree, opts PrivateOptions) (*wire.PrivateMessage, error) {
	s := c.suite
	fc := &ac.Content
	if ac.WireFormat != wire.WireFormatPrivateMessage {
		return nil, fmt.Errorf("%s: content signed for wire format %d, not mls_private_message", op, ac.WireFormat)
	}
	if fc.Sender.Type != wire.SenderTypeMember {
		return nil, fmt.Errorf("%s: %s cannot send PrivateMessage", op, senderName(fc.Sender))
	}
	kind, ok := ratchetKind(fc.ContentType)
	if !ok {
		return nil, fmt.Errorf("%s: unknown %s", op, contentName(fc.ContentType))
	}
	if tree == nil {
		return nil, fmt.Errorf("%s: no secret tree", op)
	}
	leaf := treemath.LeafIndex(fc.Sender.LeafIndex)
	if n := tree.LeafCount(); !n.HasLeaf(leaf) {
		return nil, fmt.Errorf("%s: leaf %d out of range (%d leaves)", op, leaf, n)
	}
	if opts.Padding < 0 || opts.PadBlock < 0 {
		return nil, fmt.Errorf("%s: negative padding %d or pad block %d", op, opts.Padding, opts.PadBlock)
	}

	// The plaintext: content, auth, zero padding (§6.3.1).
	pmc := wire.PrivateMessageContent{
		ApplicationData: fc.ApplicationData,
		Proposal:        fc.Proposal,
		Commit:          fc.Commit,
		Auth:            ac.Auth,
	}
	b := codec.NewBuilder(make([]byte, 0, len(fc.ApplicationData)+len(ac.Auth.Signature)+len(ac.Auth.ConfirmationTag)+opts.Padding+opts.PadBlock+32))
	pmc.Encode(b, fc.ContentType, 0)
	pad := opts.Padding
	if opts.PadTo != nil {
		n := b.Len() + pad
		target := opts.PadTo(n)
		if target < n || target > maxPaddedContent {
			return nil, fmt.Errorf("%s: padding policy maps %d content bytes to %d (want %d to %d)", op, n, target, n, maxPaddedContent)
		}
		pad = target - b.Len()
	}
	if opts.PadBlock > 1 {
		if r := (b.Len() + pad) % opts.PadBlock; r != 0 {
			pad += opts.PadBlock - r
		}
	}
	b.AddRaw(make([]byte, pad))
	plaintext, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%s: encode content: %w", op, err)
	}
	defer clear(plaintext)

	// Draw the guard before taking a key, so that a failing source does
	// not burn a generation.
	var guard [reuseGuardSize]byte
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	if _, err := io.ReadFull(rnd, guard[:]); err != nil {
		return nil, fmt.Errorf("%s: reuse guard: %w", op, err)
	}

	aad := wire.PrivateContentAAD(fc.GroupID, fc.Epoch, fc.ContentType, fc.AuthenticatedData)
	sdAAD := wire.SenderDataAAD(fc.GroupID, fc.Epoch, fc.ContentType)
	if aad == nil || sdAAD == nil {
		return nil, fmt.Errorf("%s: AAD cannot be encoded", op)
	}

	gen, kn, err := tree.Next(leaf, kind)
	if err != nil {
		return nil, fmt.Errorf("%s: ratchet key: %w", op, err)
	}
	defer kn.Zero()
	ciphertext, err := s.Seal(kn.Key, applyGuard(kn.Nonce, guard), aad, plaintext)
	if err != nil {
		return nil, fmt.Errorf("%s: encrypt content: %w", op, err)
	}

	sd := wire.SenderData{LeafIndex: uint32(leaf), Generation: gen, ReuseGuard: guard}
	sdPlain, err := codec.Marshal(&sd)
	if err != nil {
		return nil, fmt.Errorf("%s: encode sender data: %w", op, err)
	}
	sdkn, err := schedule.SenderDataKeyNonce(s, senderData, ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%s: sender data key: %w", op, err)
	}
	defer sdkn.Zero()
	encSD, err := s.Seal(sdkn.Key, sdkn.Nonce, sdAAD, sdPlain)
	if err != nil {
		return nil, fmt.Errorf("%s: encrypt sender data: %w", op, err)
	}
	return &wire.PrivateMessage{
		GroupID:             fc.GroupID,
		Epoch:               fc.Epoch,
		ContentType:         fc.ContentType,
		AuthenticatedData:   fc.AuthenticatedData,
		EncryptedSenderData: encSD,
		Ciphertext:          ciphertext,
	}, nil
}

// UnprotectPrivate decrypts and checks a PrivateMessage received in c's
// epoch and returns its AuthenticatedContent (RFC 9420 §6.3):
//
//  1. the group and epoch must be c's (errors wrap ErrWrongGroup,
//     ErrWrongEpoch);
//  2. the SenderData is decrypted under the key and nonce derived from
//     senderData and the ciphertext sample (§6.3.2), and its leaf must be
//     in the tree and have a signature key in signers (a blank leaf is
//     the lookup's error), both checked before any ratchet key is taken;
//  3. the key and nonce of the sender's ratchet (handshake or application
//     by content type) at the SenderData generation are looked up in tree
//     without consuming them (SecretTree.Peek): a generation already used
//     fails with an error wrapping schedule.ErrGenerationUsed (a replay),
//     and the tree's window and forward limits apply
//     (schedule.ErrGenerationExpired, ErrGenerationTooFar);
//  4. the content is decrypted with the reuse guard XORed into the nonce;
//     only once it decrypts is the generation consumed
//     (SecretTree.Consume, which fails if a concurrent call consumed it
//     first);
//  5. the content is decoded, and its padding must be all zero (§6.3.1);
//  6. the signature over FramedContentTBS must verify.
//
// The sender data authenticates only the first Nh bytes of the
// ciphertext, so a message altered further on reaches step 4 with a valid
// generation: it fails there and leaves the tree unchanged, and the
// genuine message still decrypts afterwards. A message that decrypts but
// fails steps 5 or 6 has used up its generation: AEAD success shows it was
// made with the epoch's ratchet key, so by a holder of the epoch's
// secrets, who could use up the generation anyway by re-encrypting any
// signed content of the sender under it (the signature covers neither
// generation nor reuse guard); consuming at once deletes the key as early
// as possible and makes a repeated bad message fail as a replay instead of
// costing a signature verification each time.
//
// The confirmation tag of a commit is returned unchecked (see
// VerifyConfirmationTag).
func UnprotectPrivate(c *Context, pm *wire.PrivateMessage, senderData schedule.SenderDataSecret, tree SecretTree, signers SignerLookup) (*wire.AuthenticatedContent, error) {
	const op = "framing: unprotect PrivateMessage"
	if c == nil || pm == nil {
		return nil, fmt.Errorf("%s: nil context or message", op)
	}
	if tree == nil {
		return nil, fmt.Errorf("%s: no secret tree", op)
	}
	s := c.suite
	if err := c.checkGroup(op, pm.GroupID, pm.Epoch); err != nil {
		return nil, err
	}
	kind, ok := ratchetKind(pm.ContentType)
	if !ok {
		return nil, fmt.Errorf("%s: unknown %s", op, contentName(pm.ContentType))
	}

	// Sender data (§6.3.2).
	sdkn, err := schedule.SenderDataKeyNonce(s, senderData, pm.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%s: sender data key: %w", op, err)
	}
	sdAAD := wire.SenderDataAAD(pm.GroupID, pm.Epoch, pm.ContentType)
	if sdAAD == nil {
		sdkn.Zero()
		return nil, fmt.Errorf("%s: sender data AAD cannot be encoded", op)
	}
	sdPlain, err := s.Open(sdkn.Key, sdkn.Nonce, sdAAD, pm.EncryptedSenderData)
	sdkn.Zero()
	if err != nil {
		return nil, fmt.Errorf("%s: sender data: %d-byte encrypted_sender_data does not decrypt: %w", op, len(pm.EncryptedSenderData), err)
	}
	var sd wire.SenderData
	if err := codec.Unmarshal(sdPlain, &sd); err != nil {
		return nil, fmt.Errorf("%s: sender data: %w", op, err)
	}
	leaf := treemath.LeafIndex(sd.LeafIndex)
	if n := tree.LeafCount(); !n.HasLeaf(leaf) {
		return nil, fmt.Errorf("%s: sender data: leaf %d out of range (%d leaves)", op, leaf, n)
	}
	sender := wire.Sender{Type: wire.SenderTypeMember, LeafIndex: sd.LeafIndex}
	pub, err := signerKey(op, signers, sender)
	if err != nil {
		return nil, err
	}

	// Content (§6.3.1).
	aad := wire.PrivateContentAAD(pm.GroupID, pm.Epoch, pm.ContentType, pm.AuthenticatedData)
	if aad == nil {
		return nil, fmt.Errorf("%s: content AAD cannot be encoded", op)
	}
	kn, err := tree.Peek(leaf, kind, sd.Generation)
	if err != nil {
		// The tree's error names leaf, ratchet and generation.
		return nil, fmt.Errorf("%s: ratchet key: %w", op, err)
	}
	plaintext, err := s.Open(kn.Key, applyGuard(kn.Nonce, sd.ReuseGuard), aad, pm.Ciphertext)
	kn.Zero()
	if err != nil {
		return nil, fmt.Errorf("%s: content of leaf %d generation %d: %d-byte ciphertext does not decrypt: %w", op, leaf, sd.Generation, len(pm.Ciphertext), err)
	}
	defer clear(plaintext)
	if err := tree.Consume(leaf, kind, sd.Generation); err != nil {
		return nil, fmt.Errorf("%s: ratchet key: %w", op, err)
	}
	var pmc wire.PrivateMessageContent
	if _, err := pmc.Unmarshal(plaintext, pm.ContentType); err != nil {
		return nil, fmt.Errorf("%s: content of leaf %d generation %d: %w", op, leaf, sd.Generation, err)
	}

	ac := &wire.AuthenticatedContent{
		WireFormat: wire.WireFormatPrivateMessage,
		Content: wire.FramedContent{
			GroupID:           pm.GroupID,
			Epoch:             pm.Epoch,
			Sender:            sender,
			AuthenticatedData: pm.AuthenticatedData,
			ContentType:       pm.ContentType,
			ApplicationData:   pmc.ApplicationData,
			Proposal:          pmc.Proposal,
			Commit:            pmc.Commit,
		},
		Auth: pmc.Auth,
	}
	if err := c.verify(op, ac, pub); err != nil {
		return nil, err
	}
	return ac, nil
}
