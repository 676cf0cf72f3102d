package wire

import (
	"fmt"
	"strings"

	"github.com/parley-chat/parley/mls/internal/codec"
)

// MLSMessage is RFC 9420 §6 MLSMessage, the outermost wrapper of every MLS
// message. Exactly the field matching WireFormat is set. Version is kept
// verbatim on decoding; callers reject versions they do not speak.
type MLSMessage struct {
	Version        ProtocolVersion
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

// body returns the arm selected by WireFormat, or nil.
func (m *MLSMessage) body() codec.Encoder {
	switch m.WireFormat {
	case WireFormatPublicMessage:
		if m.PublicMessage != nil {
			return m.PublicMessage
		}
	case WireFormatPrivateMessage:
		if m.PrivateMessage != nil {
			return m.PrivateMessage
		}
	case WireFormatWelcome:
		if m.Welcome != nil {
			return m.Welcome
		}
	case WireFormatGroupInfo:
		if m.GroupInfo != nil {
			return m.GroupInfo
		}
	case WireFormatKeyPackage:
		if m.KeyPackage != nil {
			return m.KeyPackage
		}
	default:
		return nil
	}
	return nil
}

// EncodeMLS appends the MLSMessage's encoding.
func (m *MLSMessage) EncodeMLS(b *codec.Builder) {
	b.AddUint16(uint16(m.Version))
	b.AddUint16(uint16(m.WireFormat))
	body := m.body()
	if body == nil {
		b.Fail(fmt.Errorf("wire: encode MLSMessage: wire_format %d without its body (or unknown)", m.WireFormat))
		return
	}
	body.EncodeMLS(b)
}

// DecodeMLS reads an MLSMessage; an unknown wire_format is an error.
func (m *MLSMessage) DecodeMLS(r *codec.Reader) {
	*m = MLSMessage{Version: ProtocolVersion(r.Uint16()), WireFormat: WireFormat(r.Uint16())}
	if r.Err() != nil {
		return
	}
	switch m.WireFormat {
	case WireFormatPublicMessage:
		m.PublicMessage = new(PublicMessage)
		m.PublicMessage.DecodeMLS(r)
	case WireFormatPrivateMessage:
		m.PrivateMessage = new(PrivateMessage)
		m.PrivateMessage.DecodeMLS(r)
	case WireFormatWelcome:
		m.Welcome = new(Welcome)
		m.Welcome.DecodeMLS(r)
	case WireFormatGroupInfo:
		m.GroupInfo = new(GroupInfo)
		m.GroupInfo.DecodeMLS(r)
	case WireFormatKeyPackage:
		m.KeyPackage = new(KeyPackage)
		m.KeyPackage.DecodeMLS(r)
	default:
		r.Failf("wire: decode MLSMessage: unknown wire_format %d", m.WireFormat)
	}
}

// Unmarshal decodes data into v, requiring every byte to be consumed, and
// names v's type in the error: "wire: decode KeyPackage: codec: ...".
func Unmarshal(data []byte, v codec.Decoder) error {
	if err := codec.Unmarshal(data, v); err != nil {
		return decodeErr(typeName(v), err)
	}
	return nil
}

// UnmarshalAliasing is Unmarshal with codec.UnmarshalAliasing: the byte
// slices of v alias data instead of copying it, so the caller hands data
// over and must not modify it while v, or anything built from v, is in use.
func UnmarshalAliasing(data []byte, v codec.Decoder) error {
	if err := codec.UnmarshalAliasing(data, v); err != nil {
		return decodeErr(typeName(v), err)
	}
	return nil
}

// Marshal returns the encoding of v, naming v's type in any error.
func Marshal(v codec.Encoder) ([]byte, error) {
	out, err := codec.Marshal(v)
	if err != nil {
		if strings.HasPrefix(err.Error(), "wire: ") {
			return nil, err
		}
		return nil, fmt.Errorf("wire: encode %s: %w", typeName(v), err)
	}
	return out, nil
}

// decodeErr prefixes err with the operation unless it already names one
// of this package's decoders.
func decodeErr(what string, err error) error {
	if strings.HasPrefix(err.Error(), "wire: ") {
		return err
	}
	return fmt.Errorf("wire: decode %s: %w", what, err)
}
