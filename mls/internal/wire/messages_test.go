package wire

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/vectors"
)

// messagesCase is one case of messages.json (test-vectors.md §Messages).
type messagesCase struct {
	MLSWelcome                     vectors.Hex `json:"mls_welcome"`
	MLSGroupInfo                   vectors.Hex `json:"mls_group_info"`
	MLSKeyPackage                  vectors.Hex `json:"mls_key_package"`
	RatchetTree                    vectors.Hex `json:"ratchet_tree"`
	GroupSecrets                   vectors.Hex `json:"group_secrets"`
	AddProposal                    vectors.Hex `json:"add_proposal"`
	UpdateProposal                 vectors.Hex `json:"update_proposal"`
	RemoveProposal                 vectors.Hex `json:"remove_proposal"`
	PreSharedKeyProposal           vectors.Hex `json:"pre_shared_key_proposal"`
	ReInitProposal                 vectors.Hex `json:"re_init_proposal"`
	ExternalInitProposal           vectors.Hex `json:"external_init_proposal"`
	GroupContextExtensionsProposal vectors.Hex `json:"group_context_extensions_proposal"`
	Commit                         vectors.Hex `json:"commit"`
	PublicMessageApplication       vectors.Hex `json:"public_message_application"`
	PublicMessageProposal          vectors.Hex `json:"public_message_proposal"`
	PublicMessageCommit            vectors.Hex `json:"public_message_commit"`
	PrivateMessage                 vectors.Hex `json:"private_message"`
}

// codecValue is a decodable and encodable structure.
type codecValue interface {
	codec.Encoder
	codec.Decoder
}

// messageField is one field of a messages.json case with the structure it
// decodes as and a check of the decoded value.
type messageField struct {
	name  string
	data  []byte
	value codecValue
	check func(v codecValue) error
}

// wantMessage returns a check that an MLSMessage has wire format wf and,
// for public messages, content type ct.
func wantMessage(wf WireFormat, ct ContentType) func(codecValue) error {
	return func(v codecValue) error {
		m := v.(*MLSMessage)
		if m.WireFormat != wf {
			return fmt.Errorf("wire_format %d, want %d", m.WireFormat, wf)
		}
		if m.Version != ProtocolVersionMLS10 {
			return fmt.Errorf("version %d, want mls10", m.Version)
		}
		if wf == WireFormatPublicMessage && m.PublicMessage.Content.ContentType != ct {
			return fmt.Errorf("content_type %d, want %d", m.PublicMessage.Content.ContentType, ct)
		}
		return nil
	}
}

func (c *messagesCase) fields() []messageField {
	return []messageField{
		{"mls_welcome", c.MLSWelcome, new(MLSMessage), wantMessage(WireFormatWelcome, 0)},
		{"mls_group_info", c.MLSGroupInfo, new(MLSMessage), wantMessage(WireFormatGroupInfo, 0)},
		{"mls_key_package", c.MLSKeyPackage, new(MLSMessage), wantMessage(WireFormatKeyPackage, 0)},
		{"ratchet_tree", c.RatchetTree, new(RatchetTree), nil},
		{"group_secrets", c.GroupSecrets, new(GroupSecrets), nil},
		{"add_proposal", c.AddProposal, new(Add), nil},
		{"update_proposal", c.UpdateProposal, new(Update), nil},
		{"remove_proposal", c.RemoveProposal, new(Remove), nil},
		{"pre_shared_key_proposal", c.PreSharedKeyProposal, new(PreSharedKey), nil},
		{"re_init_proposal", c.ReInitProposal, new(ReInit), nil},
		{"external_init_proposal", c.ExternalInitProposal, new(ExternalInit), nil},
		{"group_context_extensions_proposal", c.GroupContextExtensionsProposal, new(GroupContextExtensions), nil},
		{"commit", c.Commit, new(Commit), nil},
		{"public_message_application", c.PublicMessageApplication, new(MLSMessage), wantMessage(WireFormatPublicMessage, ContentTypeApplication)},
		{"public_message_proposal", c.PublicMessageProposal, new(MLSMessage), wantMessage(WireFormatPublicMessage, ContentTypeProposal)},
		{"public_message_commit", c.PublicMessageCommit, new(MLSMessage), wantMessage(WireFormatPublicMessage, ContentTypeCommit)},
		{"private_message", c.PrivateMessage, new(MLSMessage), wantMessage(WireFormatPrivateMessage, 0)},
	}
}

func TestVectorsMessages(t *testing.T) {
	var cases []messagesCase
	vectors.Load(t, "messages.json", &cases)
	c := vectors.NewCounter("messages.json")
	for i := range cases {
		tc := &cases[i]
		c.Run(t, fmt.Sprintf("case%03d", i), func(t *testing.T) {
			for _, f := range tc.fields() {
				if len(f.data) == 0 {
					t.Errorf("%s: empty field", f.name)
					continue
				}
				if err := Unmarshal(f.data, f.value); err != nil {
					t.Errorf("%s: %v", f.name, err)
					continue
				}
				if f.check != nil {
					if err := f.check(f.value); err != nil {
						t.Errorf("%s: %v", f.name, err)
					}
				}
				got, err := Marshal(f.value)
				if err != nil {
					t.Errorf("%s: re-encode: %v", f.name, err)
					continue
				}
				if !bytes.Equal(got, f.data) {
					t.Errorf("%s: re-encoding differs:\n got %x\nwant %x", f.name, got, f.data)
				}
			}
		})
	}
	c.Report(t)
}
