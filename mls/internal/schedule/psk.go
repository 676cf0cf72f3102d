package schedule

import (
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
)

// CombinedPSK is psk_secret (RFC 9420 §8.4): the PSKs of one epoch chained
// into a single Nh-byte secret. An empty CombinedPSK stands for "no PSKs",
// the all-zero vector.
type CombinedPSK []byte

// PSK is one pre-shared key injected into an epoch (RFC 9420 §8.4).
type PSK struct {
	// ID is the TLS encoding of the PreSharedKeyID naming the PSK,
	// psk_nonce included.
	ID []byte
	// Secret is the PSK value: an external PSK from the application or a
	// resumption_psk of an earlier epoch.
	Secret []byte
}

// maxPSKs is the largest number of PSKs PSKLabel's uint16 index and count
// can describe.
const maxPSKs = 0xffff

// PSKSecret computes psk_secret from psks in order (RFC 9420 §8.4):
//
//	psk_extracted_[i] = KDF.Extract(0, psk_[i])
//	psk_input_[i]     = ExpandWithLabel(psk_extracted_[i], "derived psk", PSKLabel, Nh)
//	psk_secret_[i+1]  = KDF.Extract(psk_input_[i], psk_secret_[i]),  psk_secret_[0] = 0
//
// where PSKLabel = PreSharedKeyID id || uint16 index || uint16 count. With
// no PSKs the result is Nh zero bytes. The inputs are not modified.
func PSKSecret(s *suite.Suite, psks []PSK) (CombinedPSK, error) {
	const op = "derive psk_secret"
	if s == nil {
		return nil, fmt.Errorf("schedule: %s: nil cipher suite", op)
	}
	if len(psks) > maxPSKs {
		return nil, fmt.Errorf("schedule: %s: %d PSKs exceed %d", op, len(psks), maxPSKs)
	}
	nh := s.HashSize()
	zero := make([]byte, nh)
	acc := make([]byte, nh) // psk_secret_[0] = 0
	for i, p := range psks {
		if len(p.ID) == 0 {
			clear(acc)
			return nil, fmt.Errorf("schedule: %s: PSK %d has an empty PreSharedKeyID", op, i)
		}
		b := codec.NewBuilder(make([]byte, 0, len(p.ID)+4))
		b.AddRaw(p.ID)
		b.AddUint16(uint16(i))
		b.AddUint16(uint16(len(psks)))
		label, err := b.Bytes()
		if err != nil {
			clear(acc)
			return nil, fmt.Errorf("schedule: %s: encode PSKLabel %d: %w", op, i, err)
		}
		extracted := s.Extract(zero, p.Secret)
		input, err := s.ExpandWithLabel(extracted, "derived psk", label, nh)
		clear(extracted)
		if err != nil {
			clear(acc)
			return nil, fmt.Errorf("schedule: %s: PSK %d: %w", op, i, err)
		}
		next := s.Extract(input, acc)
		clear(input)
		clear(acc)
		acc = next
	}
	return acc, nil
}
