package follower

import (
	"strings"
	"testing"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// TestStartChecksPolicy: a conversation whose policy extension does not
// decode is refused when it is created; one with a valid policy is
// followed.
func TestStartChecksPolicy(t *testing.T) {
	good, err := protocol.DefaultPolicy("alice").MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"valid", good, true},
		{"trailing byte", append(good, 0), false},
		{"truncated", good[:15], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := mls.GenerateSigner(cs)
			if err != nil {
				t.Fatal(err)
			}
			g, err := mls.CreateGroup(nil, cs, []byte("group"), s, mls.BasicCredential([]byte("a")), mls.CreateOptions{
				Capabilities: &mls.Capabilities{Extensions: []uint16{protocol.PolicyExtensionType}, Credentials: []mls.CredentialType{mls.CredentialBasic}},
				Extensions:   []mls.Extension{{Type: protocol.PolicyExtensionType, Data: tc.data}},
			})
			if err != nil {
				t.Fatal(err)
			}
			gi, _ := g.GroupInfo(mls.GroupInfoOptions{})
			tree, _ := g.RatchetTree()
			_, err = New(nil).Start(gi, tree)
			if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "policy")) {
				t.Fatalf("Start: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
