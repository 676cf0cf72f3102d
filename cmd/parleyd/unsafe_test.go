package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestNoUnsafeMembershipSwitch: the delivery service's test-only switch
// that turns off its membership checks (delivery.Config.
// UnsafeSkipMembershipChecks) cannot be set in parleyd: no configuration
// key, variable or flag reaches it, and the mapping never sets it.
func TestNoUnsafeMembershipSwitch(t *testing.T) {
	dir := t.TempDir()
	for _, file := range []string{
		"unsafe_skip_membership_checks = true\n",
		"[delivery]\nunsafe_skip_membership_checks = true\n",
	} {
		p := filepath.Join(dir, "parleyd.toml")
		writeFile(t, p, file)
		_, err := parseConfig(t, []string{"--config", p}, map[string]string{"HOME": dir})
		if err == nil || !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("config file %q: err %v, want an unknown key", file, err)
		}
	}
	if _, err := parseConfig(t, []string{"--unsafe-skip-membership-checks"}, map[string]string{"HOME": dir}); err == nil {
		t.Error("flag --unsafe-skip-membership-checks accepted")
	}
	c, err := parseConfig(t, nil, map[string]string{"HOME": dir, "PARLEY_UNSAFE_SKIP_MEMBERSHIP_CHECKS": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if deliveryConfig(c).UnsafeSkipMembershipChecks {
		t.Error("parleyd's delivery configuration skips membership checks")
	}
	if deliveryConfig(c).UnsafeSkipPolicyChecks {
		t.Error("parleyd's delivery configuration skips policy checks")
	}
}
