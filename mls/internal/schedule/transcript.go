package schedule

import (
	"fmt"

	"github.com/parley-chat/parley/mls/internal/suite"
)

// ConfirmedTranscriptHash computes confirmed_transcript_hash_[epoch] =
// Hash(interim_transcript_hash_[epoch-1] || ConfirmedTranscriptHashInput)
// (RFC 9420 §8.2). interimBefore is empty for the first Commit after group
// creation (interim_transcript_hash_[0] = ""); input is the TLS encoding of
// ConfirmedTranscriptHashInput (wire_format || FramedContent || signature).
func ConfirmedTranscriptHash(s *suite.Suite, interimBefore, input []byte) ([]byte, error) {
	if err := checkTranscript(s, "confirmed transcript hash", "interim_transcript_hash", interimBefore); err != nil {
		return nil, err
	}
	return s.Hash(concat(interimBefore, input)), nil
}

// InterimTranscriptHash computes interim_transcript_hash_[epoch] =
// Hash(confirmed_transcript_hash_[epoch] || InterimTranscriptHashInput)
// (RFC 9420 §8.2). input is the TLS encoding of InterimTranscriptHashInput,
// that is the confirmation_tag as opaque<V> (with its length prefix).
// confirmed is empty only for a new group's epoch 0 (RFC 9420 §11).
func InterimTranscriptHash(s *suite.Suite, confirmed, input []byte) ([]byte, error) {
	if err := checkTranscript(s, "interim transcript hash", "confirmed_transcript_hash", confirmed); err != nil {
		return nil, err
	}
	return s.Hash(concat(confirmed, input)), nil
}

// checkTranscript accepts an empty previous hash or one of Nh bytes.
func checkTranscript(s *suite.Suite, op, what string, prev []byte) error {
	if s == nil {
		return fmt.Errorf("schedule: %s: nil cipher suite", op)
	}
	if len(prev) != 0 && len(prev) != s.HashSize() {
		return fmt.Errorf("schedule: %s: %s is %d bytes, want 0 or Nh=%d", op, what, len(prev), s.HashSize())
	}
	return nil
}

func concat(a, b []byte) []byte {
	out := make([]byte, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}
