package protocol

import (
	"encoding/binary"
	"fmt"
)

// Binary entry frames.
//
// A client that subscribes with [SubscribeFrame.Binary] receives each
// entry as a binary WebSocket message instead of a JSON "entry" frame,
// with the entry's data as it is instead of in base64: a quarter fewer
// bytes, which is most of what a large conversation's commits cost to
// fan out. The message is
//
//	0x00 | n, uint32 big-endian | n bytes: the "entry" frame in JSON, with "data":null | the data
//
// A JSON frame starts with "{", so the first byte tells the two apart.

// binaryEntryTag is the first byte of a binary entry frame.
const binaryEntryTag = 0x00

// maxBinaryEntryHeader bounds the JSON part of a binary entry frame (an
// entry's fields without its data take about 150 bytes).
const maxBinaryEntryHeader = 4 << 10

// MarshalBinaryEntry encodes e as a binary entry frame.
func MarshalBinaryEntry(e Entry) ([]byte, error) {
	data := e.Data
	e.Data = nil
	head, err := MarshalFrame(&EntryFrame{Entry: e})
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 5+len(head)+len(data))
	out = append(out, binaryEntryTag)
	out = binary.BigEndian.AppendUint32(out, uint32(len(head)))
	out = append(out, head...)
	return append(out, data...), nil
}

// IsBinaryEntry reports whether msg is a binary entry frame, by its first
// byte.
func IsBinaryEntry(msg []byte) bool { return len(msg) > 0 && msg[0] == binaryEntryTag }

// SplitBinaryEntry returns the JSON part and the data of a binary entry
// frame, checking its framing only (UnmarshalServerFrame decodes the JSON
// part too). Of a message cut after its JSON part, data is what is there.
func SplitBinaryEntry(msg []byte) (head, data []byte, err error) {
	if !IsBinaryEntry(msg) {
		return nil, nil, fmt.Errorf("protocol: decode binary entry frame: starts with %#x, not %#x", firstByte(msg), binaryEntryTag)
	}
	if len(msg) < 5 {
		return nil, nil, fmt.Errorf("protocol: decode binary entry frame: %d bytes, shorter than its length", len(msg))
	}
	n := binary.BigEndian.Uint32(msg[1:5])
	if n > maxBinaryEntryHeader || uint64(n) > uint64(len(msg)-5) {
		return nil, nil, fmt.Errorf("protocol: decode binary entry frame: a JSON part of %d bytes in a message of %d", n, len(msg))
	}
	return msg[5 : 5+n], msg[5+n:], nil
}

// firstByte returns b's first byte, or 0 for none.
func firstByte(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// UnmarshalServerFrame decodes a message the server sent: a binary entry
// frame ([MarshalBinaryEntry]), whose Data then aliases msg, or a JSON
// frame ([UnmarshalFrame]).
func UnmarshalServerFrame(msg []byte) (Frame, error) {
	if !IsBinaryEntry(msg) {
		return UnmarshalFrame(msg)
	}
	head, data, err := SplitBinaryEntry(msg)
	if err != nil {
		return nil, err
	}
	f, err := UnmarshalFrame(head)
	if err != nil {
		return nil, fmt.Errorf("protocol: decode binary entry frame: %w", err)
	}
	ef, ok := f.(*EntryFrame)
	if !ok {
		return nil, fmt.Errorf("protocol: decode binary entry frame: a %s frame inside", f.FrameType())
	}
	if ef.Data != nil {
		return nil, fmt.Errorf("protocol: decode binary entry frame: data in its JSON part")
	}
	ef.Data = data
	return ef, nil
}
