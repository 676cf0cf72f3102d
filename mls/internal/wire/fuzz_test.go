package wire

import (
	"bytes"
	"runtime"
	"testing"
)

// maxSmallInputAlloc bounds the heap a decoder may allocate for an input
// shorter than smallInput bytes.
const (
	smallInput         = 100
	maxSmallInputAlloc = 64 << 10
)

// checkDecoder is the property every fuzz target asserts: decoding never
// panics, accepted input re-encodes to exactly itself, decoding without
// copying (UnmarshalAliasing) accepts the same inputs and yields the same
// value, and decoding a small input allocates a bounded amount.
func checkDecoder(t *testing.T, data []byte, newV func() codecValue) {
	v, va := newV(), newV()
	err := Unmarshal(data, v)
	if aerr := UnmarshalAliasing(bytes.Clone(data), va); (aerr == nil) != (err == nil) {
		t.Fatalf("input %x: copying decode error %v, aliasing decode error %v", data, err, aerr)
	}
	if err != nil {
		return
	}
	enc, err := Marshal(v)
	if err != nil {
		t.Fatalf("accepted input %x does not re-encode: %v", data, err)
	}
	if !bytes.Equal(enc, data) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc, data)
	}
	if aenc, err := Marshal(va); err != nil || !bytes.Equal(aenc, data) {
		t.Fatalf("aliasing decode re-encodes differently (%v):\n got %x\nwant %x", err, aenc, data)
	}
	if len(data) < smallInput {
		checkAlloc(t, data, func() { _ = Unmarshal(data, newV()) })
	}
}

// checkAlloc fails t if decode allocates more than maxSmallInputAlloc
// bytes. ReadMemStats flushes every per-P cache, so TotalAlloc is exact.
func checkAlloc(t *testing.T, data []byte, decode func()) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	decode()
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > maxSmallInputAlloc {
		t.Fatalf("decoding %d bytes %x allocated %d bytes", len(data), data, n)
	}
}

// fuzzDecoder seeds f with the messages.json values that seeds picks and
// fuzzes the decoder of the structure newV returns.
func fuzzDecoder(f *testing.F, seeds func(c *messagesCase) [][]byte, newV func() codecValue) {
	for _, c := range loadMessages(f) {
		for _, s := range seeds(&c) {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecoder(t, data, newV) })
}

// body strips the version and wire_format of an encoded MLSMessage.
func body(msg []byte) []byte {
	if len(msg) < 4 {
		return nil
	}
	return msg[4:]
}

func FuzzMLSMessage(f *testing.F) {
	fuzzDecoder(f, func(c *messagesCase) [][]byte {
		return [][]byte{c.MLSWelcome, c.MLSGroupInfo, c.MLSKeyPackage, c.PublicMessageApplication,
			c.PublicMessageProposal, c.PublicMessageCommit, c.PrivateMessage}
	}, func() codecValue { return new(MLSMessage) })
}

func FuzzRatchetTree(f *testing.F) {
	fuzzDecoder(f, func(c *messagesCase) [][]byte { return [][]byte{c.RatchetTree} },
		func() codecValue { return new(RatchetTree) })
}

func FuzzKeyPackage(f *testing.F) {
	fuzzDecoder(f, func(c *messagesCase) [][]byte { return [][]byte{body(c.MLSKeyPackage)} },
		func() codecValue { return new(KeyPackage) })
}

func FuzzLeafNode(f *testing.F) {
	fuzzDecoder(f, func(c *messagesCase) [][]byte { return [][]byte{c.UpdateProposal} },
		func() codecValue { return new(LeafNode) })
}

func FuzzProposal(f *testing.F) {
	typed := func(t ProposalType, b []byte) []byte { return append([]byte{byte(t >> 8), byte(t)}, b...) }
	fuzzDecoder(f, func(c *messagesCase) [][]byte {
		return [][]byte{
			typed(ProposalTypeAdd, c.AddProposal),
			typed(ProposalTypeUpdate, c.UpdateProposal),
			typed(ProposalTypeRemove, c.RemoveProposal),
			typed(ProposalTypePSK, c.PreSharedKeyProposal),
			typed(ProposalTypeReInit, c.ReInitProposal),
			typed(ProposalTypeExternalInit, c.ExternalInitProposal),
			typed(ProposalTypeGroupContextExtensions, c.GroupContextExtensionsProposal),
			typed(0xff00, []byte{0x02, 0xab, 0xcd}),
		}
	}, func() codecValue { return new(Proposal) })
}

func FuzzCommit(f *testing.F) {
	fuzzDecoder(f, func(c *messagesCase) [][]byte { return [][]byte{c.Commit} },
		func() codecValue { return new(Commit) })
}

func FuzzGroupSecrets(f *testing.F) {
	fuzzDecoder(f, func(c *messagesCase) [][]byte { return [][]byte{c.GroupSecrets} },
		func() codecValue { return new(GroupSecrets) })
}

func FuzzGroupInfo(f *testing.F) {
	fuzzDecoder(f, func(c *messagesCase) [][]byte { return [][]byte{body(c.MLSGroupInfo)} },
		func() codecValue { return new(GroupInfo) })
}

func FuzzWelcome(f *testing.F) {
	fuzzDecoder(f, func(c *messagesCase) [][]byte { return [][]byte{body(c.MLSWelcome)} },
		func() codecValue { return new(Welcome) })
}

func FuzzAuthenticatedContent(f *testing.F) {
	// AuthenticatedContent is a PublicMessage without the membership tag,
	// prefixed by a wire format.
	fuzzDecoder(f, func(c *messagesCase) [][]byte {
		var out [][]byte
		for _, m := range publicMessages(c) {
			ac := &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: m.Content, Auth: m.Auth}
			if enc, err := Marshal(ac); err == nil {
				out = append(out, enc)
			}
		}
		return out
	}, func() codecValue { return new(AuthenticatedContent) })
}

// publicMessages decodes the public messages of a case, skipping any that
// fail (TestVectorsMessages reports those).
func publicMessages(c *messagesCase) []*PublicMessage {
	var out []*PublicMessage
	for _, data := range [][]byte{c.PublicMessageApplication, c.PublicMessageProposal, c.PublicMessageCommit} {
		var m MLSMessage
		if Unmarshal(data, &m) == nil && m.PublicMessage != nil {
			out = append(out, m.PublicMessage)
		}
	}
	return out
}

func FuzzPrivateMessageContent(f *testing.F) {
	// An input is one content-type octet followed by the plaintext.
	for _, c := range loadMessages(f) {
		for i, m := range publicMessages(&c) {
			pc := &PrivateMessageContent{ApplicationData: m.Content.ApplicationData, Proposal: m.Content.Proposal,
				Commit: m.Content.Commit, Auth: m.Auth}
			if enc, err := pc.Marshal(m.Content.ContentType, i*3); err == nil {
				f.Add(append([]byte{byte(m.Content.ContentType)}, enc...))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		ct, plain := ContentType(data[0]), data[1:]
		var pc PrivateMessageContent
		pad, err := pc.Unmarshal(plain, ct)
		if err != nil {
			return
		}
		enc, err := pc.Marshal(ct, pad)
		if err != nil {
			t.Fatalf("accepted input %x does not re-encode: %v", data, err)
		}
		if !bytes.Equal(enc, plain) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc, plain)
		}
		if len(plain) < smallInput {
			checkAlloc(t, plain, func() {
				var pc PrivateMessageContent
				_, _ = pc.Unmarshal(plain, ct)
			})
		}
	})
}

// TestSmallInputAllocation runs the allocation bound over every short
// prefix of the vectors, outside fuzzing.
func TestSmallInputAllocation(t *testing.T) {
	cases := loadMessages(t)
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	for _, fl := range cases[0].fields() {
		for n := range min(len(fl.data), smallInput) {
			data := fl.data[:n]
			checkAlloc(t, data, func() { _ = Unmarshal(data, newValue(fl.value)) })
		}
	}
}
