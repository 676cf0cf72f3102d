package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/daemonapi"
)

// TestRolesUnsupportedError: adding a user whose client is older than
// roles to a group with roles fails with the code roles_unsupported and a
// hint that the user must update, directly and through the daemon.
func TestRolesUnsupportedError(t *testing.T) {
	direct := fmt.Errorf("client: add bob to conversation 2: bob's client does not support roles: %w", client.ErrRolesUnsupported)
	viaDaemon := &daemonapi.Error{Code: -32000, Message: direct.Error(), Data: &daemonapi.ErrorData{Kind: "roles_unsupported"}}
	for name, err := range map[string]error{"direct": direct, "daemon": viaDaemon} {
		if code, kind := classify(err); code != exitFailure || kind != "roles_unsupported" {
			t.Errorf("%s: classify = %d %q, want %d roles_unsupported", name, code, kind, exitFailure)
		}
		if h := defaultHint(err); !strings.Contains(h, "must update") {
			t.Errorf("%s: hint %q does not say that the user must update", name, h)
		}
	}
}
