package wire

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/suite"
	"github.com/parley-chat/parley/mls/internal/vectors"
)

// loadMessages returns the cases of messages.json.
func loadMessages(t testing.TB) []messagesCase {
	t.Helper()
	var cases []messagesCase
	vectors.Load(t, "messages.json", &cases)
	return cases
}

// newValue returns a fresh value of the same structure as v.
func newValue(v codecValue) codecValue {
	return reflect.New(reflect.TypeOf(v).Elem()).Interface().(codecValue)
}

func TestTruncatedInputsFail(t *testing.T) {
	cases := loadMessages(t)
	for i := range min(len(cases), 3) {
		for _, f := range cases[i].fields() {
			for n := range len(f.data) {
				if err := Unmarshal(f.data[:n], newValue(f.value)); err == nil {
					t.Errorf("case %d %s: prefix of %d/%d bytes decoded without error", i, f.name, n, len(f.data))
				}
			}
		}
	}
}

func TestTrailingBytesFail(t *testing.T) {
	cases := loadMessages(t)
	for i := range cases {
		for _, f := range cases[i].fields() {
			data := append(append([]byte(nil), f.data...), 0)
			err := Unmarshal(data, newValue(f.value))
			if err == nil {
				t.Errorf("case %d %s: trailing byte accepted", i, f.name)
			} else if !strings.HasPrefix(err.Error(), "wire: decode ") {
				t.Errorf("case %d %s: error %q does not name the operation", i, f.name, err)
			}
		}
	}
}

func TestUnknownSelectValuesFail(t *testing.T) {
	cases := loadMessages(t)
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	c := cases[0]
	mut := func(data []byte, off int, v ...byte) []byte {
		out := append([]byte(nil), data...)
		copy(out[off:], v)
		return out
	}
	// A Node vector entry starts with presence octet 1 then node_type.
	tree := c.RatchetTree
	_, n, _ := codec.ReadVarint(tree)
	tests := []struct {
		name string
		data []byte
		v    codecValue
		want string
	}{
		{"wire_format", mut(c.MLSWelcome, 2, 0x00, 0x06), new(MLSMessage), "unknown wire_format 6"},
		{"wire_format zero", mut(c.MLSWelcome, 2, 0x00, 0x00), new(MLSMessage), "unknown wire_format 0"},
		{"node_type", mut(tree, n+1, 3), new(RatchetTree), "unknown node_type 3"},
		{"presence octet", mut(tree, n, 2), new(RatchetTree), "presence octet 2"},
		{"proposal_or_ref", []byte{0x01, 0x03, 0x00}, new(Commit), "unknown type 3"},
		{"psktype", []byte{0x03, 0x00}, new(PreSharedKey), "unknown psktype 3"},
		{"sender_type", []byte{0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x05}, new(FramedContent), "unknown sender_type 5"},
		{"content_type", []byte{0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0x00, 0x04}, new(FramedContent), "unknown content_type 4"},
		{"private content_type", []byte{0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00}, new(PrivateMessage), "unknown content_type 0"},
		{"leaf_node_source", leafWithSource(t, 7), new(LeafNode), "unknown leaf_node_source 7"},
	}
	for _, tt := range tests {
		err := Unmarshal(tt.data, tt.v)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// testLeaf returns a syntactically complete leaf node with GREASE and
// unknown values in its capabilities, extensions and credential.
func testLeaf() *LeafNode {
	return &LeafNode{
		EncryptionKey: []byte("enc"),
		SignatureKey:  []byte("sig"),
		Credential:    Credential{Type: 0xf00d, Opaque: []byte("custom credential")},
		Capabilities: Capabilities{
			Versions:     []ProtocolVersion{ProtocolVersionMLS10, 0x0a0a},
			CipherSuites: []suite.ID{1, 0x1a1a, 0xfeff},
			Extensions:   []ExtensionType{0x2a2a, 0xff00},
			Proposals:    []ProposalType{0x3a3a, 0xff01},
			Credentials:  []CredentialType{CredentialBasic, 0x4a4a, 0xf00d},
		},
		Source:     LeafNodeSourceKeyPackage,
		Lifetime:   &Lifetime{NotBefore: 1, NotAfter: 1 << 62},
		Extensions: Extensions{{Type: 0xeaea, Data: []byte{}}, {Type: 0xff00, Data: []byte("unknown")}},
		Signature:  []byte("signature"),
	}
}

// leafWithSource encodes testLeaf with its leaf_node_source octet set to
// src.
func leafWithSource(t *testing.T, src byte) []byte {
	t.Helper()
	l := testLeaf()
	var b codec.Builder
	b.AddOpaque(l.EncryptionKey)
	b.AddOpaque(l.SignatureKey)
	l.Credential.EncodeMLS(&b)
	l.Capabilities.EncodeMLS(&b)
	b.AddUint8(src)
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// roundTrip encodes v, decodes it into a fresh value, and checks that the
// value and its re-encoding are unchanged.
func roundTrip(t *testing.T, name string, v codecValue) {
	t.Helper()
	enc, err := Marshal(v)
	if err != nil {
		t.Fatalf("%s: encode: %v", name, err)
	}
	got := newValue(v)
	if err := Unmarshal(enc, got); err != nil {
		t.Fatalf("%s: decode: %v", name, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("%s: decoded value differs:\n got %+v\nwant %+v", name, got, v)
	}
	again, err := Marshal(got)
	if err != nil || !bytes.Equal(again, enc) {
		t.Errorf("%s: re-encoding differs (%v)", name, err)
	}
}

func TestUnknownAndGREASERoundTrip(t *testing.T) {
	leaf := testLeaf()
	roundTrip(t, "LeafNode", leaf)
	roundTrip(t, "Proposal", &Proposal{Type: 0xf7f7, Unknown: []byte("custom proposal body")})
	roundTrip(t, "Proposal empty", &Proposal{Type: 0x5a5a, Unknown: []byte{}})
	roundTrip(t, "GroupContextExtensions", &GroupContextExtensions{Extensions: Extensions{{Type: 0x0a0a, Data: []byte{1, 2}}, {Type: ExtensionExternalPub, Data: []byte{0}}}})
	roundTrip(t, "RequiredCapabilities", &RequiredCapabilities{Extensions: []ExtensionType{0x0a0a}, Proposals: []ProposalType{0xff00}, Credentials: []CredentialType{}})
	roundTrip(t, "ExternalSenders", &ExternalSenders{{SignatureKey: []byte("k"), Credential: Credential{Type: CredentialX509, Certificates: [][]byte{[]byte("a"), {}}}}})
	roundTrip(t, "ExternalPub", &ExternalPub{PublicKey: []byte("pub")})
	id := ApplicationID("app")
	roundTrip(t, "ApplicationID", &id)
	roundTrip(t, "GroupSecrets empty path secret", &GroupSecrets{JoinerSecret: []byte{1}, PathSecret: []byte{}, PSKs: []PreSharedKeyID{}})
	roundTrip(t, "GroupSecrets absent path secret", &GroupSecrets{JoinerSecret: []byte{1}, PSKs: []PreSharedKeyID{
		{Type: PSKTypeExternal, ID: []byte("ext"), Nonce: []byte("n")},
		{Type: PSKTypeResumption, Usage: 0x7f, GroupID: []byte("g"), Epoch: 9, Nonce: []byte{}},
	}})
	for _, s := range []Sender{{Type: SenderTypeExternal, SenderIndex: 3}, {Type: SenderTypeNewMemberProposal}} {
		roundTrip(t, "PublicMessage", &PublicMessage{
			Content: FramedContent{GroupID: []byte("g"), Sender: s, AuthenticatedData: []byte{},
				ContentType: ContentTypeProposal, Proposal: &Proposal{Type: ProposalTypeRemove, Remove: &Remove{Removed: 4}}},
			Auth: FramedContentAuthData{Signature: []byte("s")},
		})
	}
	if e := leaf.Extensions.Find(0xff00); e == nil || string(e.Data) != "unknown" {
		t.Errorf("Find(0xff00) = %v", e)
	}
	if leaf.Extensions.Find(ExtensionRatchetTree) != nil {
		t.Error("Find(ratchet_tree) found an absent extension")
	}
}

func TestIsGREASE(t *testing.T) {
	var n int
	for v := range 1 << 16 {
		if IsGREASE(uint16(v)) {
			n++
			if v&0xff != v>>8 || v&0x0f != 0x0a {
				t.Errorf("IsGREASE(%#04x) = true", v)
			}
		}
	}
	if n != 15 {
		t.Errorf("%d GREASE values, want 15", n)
	}
}

func TestPrivateMessageContentPadding(t *testing.T) {
	content := &PrivateMessageContent{
		Commit: &Commit{Proposals: []ProposalOrRef{{Type: ProposalOrRefReference, Reference: []byte("ref")}}},
		Auth:   FramedContentAuthData{Signature: []byte("sig"), ConfirmationTag: []byte("tag")},
	}
	for _, pad := range []int{0, 1, 17} {
		data, err := content.Marshal(ContentTypeCommit, pad)
		if err != nil {
			t.Fatal(err)
		}
		var got PrivateMessageContent
		n, err := got.Unmarshal(data, ContentTypeCommit)
		if err != nil || n != pad || !reflect.DeepEqual(&got, content) {
			t.Errorf("padding %d: got %d, %v, %+v", pad, n, err, got)
		}
		if pad == 0 {
			continue
		}
		for i := len(data) - pad; i < len(data); i++ {
			bad := append([]byte(nil), data...)
			bad[i] = 0x80
			if _, err := got.Unmarshal(bad, ContentTypeCommit); err == nil || !strings.Contains(err.Error(), "padding byte") {
				t.Errorf("padding %d: non-zero byte at %d: error %v", pad, i, err)
			}
		}
	}
	if _, err := content.Marshal(ContentTypeApplication, 0); err == nil {
		t.Error("commit content encoded as application")
	}
	if _, err := content.Marshal(ContentTypeCommit, -1); err == nil {
		t.Error("negative padding accepted")
	}
	var got PrivateMessageContent
	if _, err := got.Unmarshal([]byte{0x00, 0x00}, 9); err == nil || !strings.Contains(err.Error(), "unknown content_type 9") {
		t.Errorf("content type 9: %v", err)
	}
}

func TestInconsistentValuesFailToEncode(t *testing.T) {
	tests := []struct {
		name string
		v    codec.Encoder
	}{
		{"Proposal without body", &Proposal{Type: ProposalTypeAdd}},
		{"Proposal with other body", &Proposal{Type: ProposalTypeAdd, Remove: &Remove{}}},
		{"MLSMessage without body", &MLSMessage{Version: 1, WireFormat: WireFormatWelcome}},
		{"MLSMessage unknown", &MLSMessage{Version: 1, WireFormat: 9}},
		{"LeafNode without lifetime", &LeafNode{Source: LeafNodeSourceKeyPackage}},
		{"LeafNode unknown source", &LeafNode{Source: 0}},
		{"Node without leaf", &Node{Type: NodeTypeLeaf}},
		{"RatchetTree with bad node", RatchetTree{nil, &Node{Type: 9}}},
		{"Sender", &Sender{Type: 0}},
		{"PreSharedKeyID", &PreSharedKeyID{Type: 0}},
		{"ProposalOrRef", &ProposalOrRef{Type: ProposalOrRefProposal}},
		{"PrivateMessage", &PrivateMessage{ContentType: 0}},
		{"PublicMessage tag for non-member", &PublicMessage{
			Content:       FramedContent{Sender: Sender{Type: SenderTypeExternal}, ContentType: ContentTypeApplication},
			MembershipTag: []byte{1}}},
		{"PublicMessage tag on application", &PublicMessage{
			Content: FramedContent{Sender: Sender{Type: SenderTypeMember}, ContentType: ContentTypeApplication},
			Auth:    FramedContentAuthData{ConfirmationTag: []byte{1}}}},
	}
	for _, tt := range tests {
		if _, err := Marshal(tt.v); err == nil {
			t.Errorf("%s: encoded without error", tt.name)
		} else if !strings.HasPrefix(err.Error(), "wire: encode") {
			t.Errorf("%s: error %q does not name the operation", tt.name, err)
		}
	}
}

func TestTBSEncodings(t *testing.T) {
	leaf := testLeaf()
	kp := leaf.TBS([]byte("group"), 5)
	enc, err := Marshal(leaf)
	if err != nil {
		t.Fatal(err)
	}
	sigLen := 1 + len(leaf.Signature)
	if !bytes.Equal(kp, enc[:len(enc)-sigLen]) {
		t.Error("key_package LeafNodeTBS is not the leaf without its signature")
	}
	leaf.Source, leaf.Lifetime, leaf.ParentHash = LeafNodeSourceCommit, nil, []byte("ph")
	commit := leaf.TBS([]byte("group"), 5)
	if want := []byte{5, 'g', 'r', 'o', 'u', 'p', 0, 0, 0, 5}; !bytes.HasSuffix(commit, want) {
		t.Errorf("commit LeafNodeTBS does not end in group_id and leaf_index: %x", commit)
	}
	leaf.Source = 9
	if leaf.TBS(nil, 0) != nil {
		t.Error("TBS of an unencodable leaf is not nil")
	}

	gc := []byte{0xaa, 0xbb}
	content := &FramedContent{GroupID: []byte("g"), Epoch: 2, Sender: Sender{Type: SenderTypeMember, LeafIndex: 1},
		AuthenticatedData: []byte{}, ContentType: ContentTypeApplication, ApplicationData: []byte("hi")}
	fc, _ := Marshal(content)
	want := append(append([]byte{0, 1, 0, 1}, fc...), gc...)
	if got := ContentTBS(WireFormatPublicMessage, content, gc); !bytes.Equal(got, want) {
		t.Errorf("member ContentTBS = %x, want %x", got, want)
	}
	if ContentTBS(WireFormatPublicMessage, content, nil) != nil {
		t.Error("member ContentTBS without group context is not nil")
	}
	auth := &FramedContentAuthData{Signature: []byte("s")}
	if got := AuthenticatedContentTBM(WireFormatPublicMessage, content, auth, gc); !bytes.Equal(got, append(want, 1, 's')) {
		t.Errorf("AuthenticatedContentTBM = %x", got)
	}
	content.Sender = Sender{Type: SenderTypeExternal, SenderIndex: 1}
	fc, _ = Marshal(content)
	if got := ContentTBS(WireFormatPublicMessage, content, gc); !bytes.Equal(got, append([]byte{0, 1, 0, 1}, fc...)) {
		t.Errorf("external ContentTBS includes the group context: %x", got)
	}
	if ConfirmedTranscriptHashInput(WireFormatPublicMessage, content, nil) != nil {
		t.Error("ConfirmedTranscriptHashInput accepted application content")
	}
	if got := InterimTranscriptHashInput([]byte{7}); !bytes.Equal(got, []byte{1, 7}) {
		t.Errorf("InterimTranscriptHashInput = %x", got)
	}
	if got := SenderDataAAD([]byte{9}, 1, ContentTypeCommit); !bytes.Equal(got, []byte{1, 9, 0, 0, 0, 0, 0, 0, 0, 1, 3}) {
		t.Errorf("SenderDataAAD = %x", got)
	}
	if got := PrivateContentAAD([]byte{9}, 1, ContentTypeCommit, []byte{4}); !bytes.Equal(got, []byte{1, 9, 0, 0, 0, 0, 0, 0, 0, 1, 3, 1, 4}) {
		t.Errorf("PrivateContentAAD = %x", got)
	}
}

func TestSignVerify(t *testing.T) {
	for _, id := range []suite.ID{suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519, suite.MLS128DHKEMP256AES128GCMSHA256P256} {
		t.Run(fmt.Sprintf("suite%d", id), func(t *testing.T) {
			s, err := suite.New(id)
			if err != nil {
				t.Fatalf("suite.New: %v", err)
			}
			priv, pub, err := s.GenerateSignatureKey()
			if err != nil {
				t.Fatalf("GenerateSignatureKey: %v", err)
			}
			leaf := testLeaf()
			leaf.SignatureKey = pub
			leaf.Source, leaf.Lifetime = LeafNodeSourceUpdate, nil
			if err := leaf.Sign(s, priv, []byte("group"), 3); err != nil {
				t.Fatal(err)
			}
			if err := leaf.Verify(s, []byte("group"), 3); err != nil {
				t.Errorf("LeafNode: %v", err)
			}
			if err := leaf.Verify(s, []byte("group"), 4); err == nil {
				t.Error("LeafNode signature verified for another leaf index")
			}
			leaf.Source, leaf.Lifetime = LeafNodeSourceKeyPackage, &Lifetime{NotAfter: 10}
			if err := leaf.Sign(s, priv, nil, 0); err != nil {
				t.Fatal(err)
			}
			kp := &KeyPackage{Version: ProtocolVersionMLS10, CipherSuite: id, InitKey: []byte("init"), LeafNode: *leaf, Extensions: Extensions{}}
			if err := kp.Sign(s, priv); err != nil {
				t.Fatal(err)
			}
			if err := kp.Verify(s); err != nil {
				t.Errorf("KeyPackage: %v", err)
			}
			kp.InitKey = []byte("other")
			if err := kp.Verify(s); err == nil {
				t.Error("tampered KeyPackage verified")
			}
			ref, err := kp.Ref(s)
			if err != nil || len(ref) != s.HashSize() {
				t.Errorf("KeyPackage ref %x, %v", ref, err)
			}
			gi := &GroupInfo{GroupContext: GroupContext{Version: 1, CipherSuite: id, GroupID: []byte("g"), TreeHash: []byte{}, ConfirmedTranscriptHash: []byte{}, Extensions: Extensions{}},
				Extensions: Extensions{}, ConfirmationTag: []byte("t"), Signer: 2}
			if err := gi.Sign(s, priv); err != nil {
				t.Fatal(err)
			}
			if err := gi.Verify(s, pub); err != nil {
				t.Errorf("GroupInfo: %v", err)
			}
			gi.Signer = 1
			if err := gi.Verify(s, pub); err == nil {
				t.Error("tampered GroupInfo verified")
			}
			if len(ProposalRef(s, []byte("content"))) != s.HashSize() {
				t.Error("ProposalRef has the wrong size")
			}
		})
	}
}

// TestVerifyEncoded checks that verifying a GroupInfo over the bytes it
// was decoded from agrees with Verify, and rejects what Verify rejects.
func TestVerifyEncoded(t *testing.T) {
	s, err := suite.New(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := s.GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	_, otherPub, _ := s.GenerateSignatureKey()
	gi := &GroupInfo{GroupContext: GroupContext{Version: 1, CipherSuite: s.ID(), GroupID: []byte("g"), TreeHash: []byte{1}, ConfirmedTranscriptHash: []byte{2}, Extensions: Extensions{}},
		Extensions: Extensions{{Type: ExtensionRatchetTree, Data: bytes.Repeat([]byte{0xab}, 20000)}}, ConfirmationTag: []byte("t"), Signer: 2}
	if err := gi.Sign(s, priv); err != nil {
		t.Fatal(err)
	}
	enc, err := Marshal(gi)
	if err != nil {
		t.Fatal(err)
	}
	off := suite.LabelHeadroom(LabelGroupInfoTBS)
	// buf lays out headroom and then the encoding, as a decrypted Welcome
	// does; it returns the buffer and the GroupInfo decoded from it.
	buf := func(enc []byte, headroom int) ([]byte, *GroupInfo) {
		b := append(bytes.Repeat([]byte{0xee}, headroom), enc...)
		var g GroupInfo
		if err := UnmarshalAliasing(b[headroom:], &g); err != nil {
			t.Fatal(err)
		}
		return b, &g
	}
	b, g := buf(enc, off)
	if err := g.VerifyEncoded(s, pub, b, off); err != nil {
		t.Fatalf("VerifyEncoded: %v", err)
	}
	if err := g.Verify(s, pub); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !bytes.Equal(b[off:], enc) {
		t.Error("VerifyEncoded modified the encoding")
	}
	if err := g.VerifyEncoded(s, otherPub, b, off); err == nil {
		t.Error("VerifyEncoded accepted another signer's key")
	}
	// Tampered TBS bytes (the signer index, the tree): both checks fail.
	sigField := codec.VarintLen(uint64(len(gi.Signature))) + len(gi.Signature)
	for _, i := range []int{len(enc) - sigField - 1, len(enc) / 2} {
		bad := bytes.Clone(enc)
		bad[i] ^= 1
		b, g := buf(bad, off)
		if g.VerifyEncoded(s, pub, b, off) == nil || g.Verify(s, pub) == nil {
			t.Errorf("tampered byte %d accepted", i)
		}
	}
	b, g = buf(enc, off)
	if err := g.VerifyEncoded(s, pub, b[:len(b)-1], off); err == nil {
		t.Error("VerifyEncoded accepted an encoding that does not end with the signature")
	}
	if err := g.VerifyEncoded(s, pub, b[2:], off-2); err == nil {
		t.Error("VerifyEncoded accepted too little headroom")
	}
	if err := g.VerifyEncoded(s, pub, b, len(b)+1); err == nil {
		t.Error("VerifyEncoded accepted headroom beyond the buffer")
	}
}

// TestVerifyScratch checks that one scratch Builder serves many leaves,
// valid and not, with Verify's answers.
func TestVerifyScratch(t *testing.T) {
	s, err := suite.New(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	var scratch codec.Builder
	for i := range 6 {
		priv, pub, err := s.GenerateSignatureKey()
		if err != nil {
			t.Fatal(err)
		}
		leaf := testLeaf()
		leaf.SignatureKey = pub
		leaf.Source, leaf.Lifetime = LeafNodeSourceCommit, nil
		leaf.ParentHash = bytes.Repeat([]byte{byte(i)}, 32*i) // varied sizes
		if err := leaf.Sign(s, priv, []byte("group"), uint32(i)); err != nil {
			t.Fatal(err)
		}
		idx := uint32(i)
		if i%2 == 1 {
			idx++ // signed for leaf i, checked at i+1
		}
		got := leaf.VerifyScratch(s, []byte("group"), idx, &scratch)
		want := leaf.Verify(s, []byte("group"), idx)
		if (got == nil) != (want == nil) || (got == nil) != (i%2 == 0) {
			t.Errorf("leaf %d: VerifyScratch %v, Verify %v", i, got, want)
		}
	}
}

func TestUnmarshalErrorNamesType(t *testing.T) {
	err := Unmarshal([]byte{0x00, 0x01}, new(KeyPackage))
	if err == nil || !strings.HasPrefix(err.Error(), "wire: decode KeyPackage: codec:") || !errors.Is(err, codec.ErrTruncated) {
		t.Errorf("error %v", err)
	}
}
