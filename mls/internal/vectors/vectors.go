// Package vectors loads the official MLS test vectors for tests.
//
// The vectors live outside the repository, in ../shared/mls-test-vectors
// beside the project's root (the directory holding go.mod), or wherever the
// environment variable PARLEY_MLS_VECTORS points. When they cannot be found
// a test is skipped, except under CI=true, where it fails: CI must never
// pass by not checking.
package vectors

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// EnvDir names the environment variable that overrides the vector folder.
const EnvDir = "PARLEY_MLS_VECTORS"

// Dir returns the folder holding the vector files.
func Dir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared", "mls-test-vectors"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("vectors: no go.mod above %s", wd)
		}
	}
}

// Load decodes the vector file name (e.g. "tree-math.json") into v. If the
// file is missing it skips the test, or fails it when CI=true.
func Load(t testing.TB, name string, v any) {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		missing(t, err)
		return
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		missing(t, err)
		return
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("vectors: decode %s: %v", name, err)
	}
}

func missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("vectors: %v (set %s; under CI=true missing vectors fail the run)", err, EnvDir)
	}
	t.Skipf("vectors: %v (set %s to run)", err, EnvDir)
}

// Hex is a byte string written in JSON as lowercase hex; null decodes to nil.
type Hex []byte

// UnmarshalJSON decodes a hex string or null.
func (h *Hex) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// Counter tallies the cases of one vector file and reports "N/N cases".
type Counter struct {
	name          string
	passed, total int
}

// NewCounter starts a tally for the named file.
func NewCounter(name string) *Counter { return &Counter{name: name} }

// Run runs f as subtest name and counts it.
func (c *Counter) Run(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	c.total++
	if t.Run(name, f) {
		c.passed++
	}
}

// Report logs the tally and fails t if any case failed or none ran.
func (c *Counter) Report(t *testing.T) {
	t.Helper()
	msg := fmt.Sprintf("%s: %d/%d cases", c.name, c.passed, c.total)
	fmt.Println(msg)
	if c.total == 0 {
		t.Fatalf("%s: no cases ran", c.name)
	}
	if c.passed != c.total {
		t.Errorf("%s", msg)
	}
}
