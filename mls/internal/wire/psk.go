package wire

import (
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
)

// PSKType is the kind of a pre-shared key (RFC 9420 §8.4).
type PSKType uint8

// The PSK types of RFC 9420 §8.4.
const (
	PSKTypeExternal   PSKType = 1
	PSKTypeResumption PSKType = 2
)

// ResumptionPSKUsage says why a resumption PSK is used (RFC 9420 §8.4).
// It selects nothing, so decoding keeps any value.
type ResumptionPSKUsage uint8

// The resumption PSK usages of RFC 9420 §8.4.
const (
	ResumptionPSKUsageApplication ResumptionPSKUsage = 1
	ResumptionPSKUsageReInit      ResumptionPSKUsage = 2
	ResumptionPSKUsageBranch      ResumptionPSKUsage = 3
)

// PreSharedKeyID is RFC 9420 §8.4 PreSharedKeyID. ID is meaningful for
// external PSKs; Usage, GroupID and Epoch for resumption PSKs.
type PreSharedKeyID struct {
	Type    PSKType
	ID      []byte
	Usage   ResumptionPSKUsage
	GroupID []byte
	Epoch   uint64
	Nonce   []byte
}

// EncodeMLS appends the PreSharedKeyID's encoding.
func (p *PreSharedKeyID) EncodeMLS(b *codec.Builder) {
	b.AddUint8(uint8(p.Type))
	switch p.Type {
	case PSKTypeExternal:
		b.AddOpaque(p.ID)
	case PSKTypeResumption:
		b.AddUint8(uint8(p.Usage))
		b.AddOpaque(p.GroupID)
		b.AddUint64(p.Epoch)
	default:
		b.Fail(fmt.Errorf("wire: encode PreSharedKeyID: unknown psktype %d", p.Type))
		return
	}
	b.AddOpaque(p.Nonce)
}

// DecodeMLS reads a PreSharedKeyID; an unknown psktype is an error.
func (p *PreSharedKeyID) DecodeMLS(r *codec.Reader) {
	*p = PreSharedKeyID{Type: PSKType(r.Uint8())}
	if r.Err() != nil {
		return
	}
	switch p.Type {
	case PSKTypeExternal:
		p.ID = r.Opaque()
	case PSKTypeResumption:
		p.Usage = ResumptionPSKUsage(r.Uint8())
		p.GroupID = r.Opaque()
		p.Epoch = r.Uint64()
	default:
		r.Failf("wire: decode PreSharedKeyID: unknown psktype %d", p.Type)
		return
	}
	p.Nonce = r.Opaque()
}
