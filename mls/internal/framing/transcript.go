package framing

import (
	"fmt"

	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// ConfirmationTag returns MAC(confirmation_key, confirmed_transcript_hash)
// (RFC 9420 §6.1), the tag a Commit and a GroupInfo carry.
func ConfirmationTag(s *suite.Suite, key schedule.ConfirmationKey, confirmedTranscriptHash []byte) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("framing: confirmation tag: nil suite")
	}
	if len(key) != s.HashSize() {
		return nil, fmt.Errorf("framing: confirmation tag: confirmation key is %d bytes, want %d", len(key), s.HashSize())
	}
	return s.MAC(key, confirmedTranscriptHash), nil
}

// VerifyConfirmationTag checks, in constant time, that tag is
// MAC(confirmation_key, confirmed_transcript_hash) (RFC 9420 §6.1,
// §12.4.2, §12.4.3.1). It returns nil only for a valid tag.
func VerifyConfirmationTag(s *suite.Suite, key schedule.ConfirmationKey, confirmedTranscriptHash, tag []byte) error {
	if s == nil {
		return fmt.Errorf("framing: verify confirmation tag: nil suite")
	}
	if len(key) != s.HashSize() {
		return fmt.Errorf("framing: verify confirmation tag: confirmation key is %d bytes, want %d", len(key), s.HashSize())
	}
	if !s.VerifyMAC(key, confirmedTranscriptHash, tag) {
		return fmt.Errorf("framing: verify confirmation tag: %d-byte tag does not match", len(tag))
	}
	return nil
}

// ConfirmedTranscriptHash returns the confirmed transcript hash after the
// commit in ac (RFC 9420 §8.2): Hash(interimBefore ||
// ConfirmedTranscriptHashInput{wire_format, content, signature}).
// interimBefore is the interim transcript hash of the epoch the commit was
// sent in. The confirmation tag of ac is not used, so a committer calls
// this between signing and computing the tag.
func ConfirmedTranscriptHash(s *suite.Suite, interimBefore []byte, ac *wire.AuthenticatedContent) ([]byte, error) {
	const op = "framing: confirmed transcript hash"
	if ac == nil {
		return nil, fmt.Errorf("%s: nil content", op)
	}
	if ac.Content.ContentType != wire.ContentTypeCommit {
		return nil, fmt.Errorf("%s: %s content is not a commit", op, contentName(ac.Content.ContentType))
	}
	input := wire.ConfirmedTranscriptHashInput(ac.WireFormat, &ac.Content, ac.Auth.Signature)
	if input == nil {
		return nil, fmt.Errorf("%s: ConfirmedTranscriptHashInput cannot be encoded", op)
	}
	h, err := schedule.ConfirmedTranscriptHash(s, interimBefore, input)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return h, nil
}

// InterimTranscriptHash returns the interim transcript hash that follows
// confirmed and a commit's (or GroupInfo's) confirmation tag (RFC 9420
// §8.2): Hash(confirmed || InterimTranscriptHashInput{confirmation_tag}).
func InterimTranscriptHash(s *suite.Suite, confirmed, confirmationTag []byte) ([]byte, error) {
	const op = "framing: interim transcript hash"
	input := wire.InterimTranscriptHashInput(confirmationTag)
	if input == nil {
		return nil, fmt.Errorf("%s: %d-byte confirmation tag cannot be encoded", op, len(confirmationTag))
	}
	h, err := schedule.InterimTranscriptHash(s, confirmed, input)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return h, nil
}

// TranscriptHashes returns both transcript hashes after the commit in ac,
// which must carry its confirmation tag (RFC 9420 §8.2).
func TranscriptHashes(s *suite.Suite, interimBefore []byte, ac *wire.AuthenticatedContent) (confirmed, interim []byte, err error) {
	confirmed, err = ConfirmedTranscriptHash(s, interimBefore, ac)
	if err != nil {
		return nil, nil, err
	}
	if len(ac.Auth.ConfirmationTag) == 0 {
		return nil, nil, fmt.Errorf("framing: transcript hashes: commit without confirmation tag")
	}
	interim, err = InterimTranscriptHash(s, confirmed, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	return confirmed, interim, nil
}
