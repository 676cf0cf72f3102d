// Package vectors loads the official MLS test vectors for tests.
//
// The vectors are the test-vectors folder of
// https://github.com/mlswg/mls-implementations. They live outside the
// repository, in ../shared/mls-test-vectors beside the project's root (the
// directory holding go.mod), or wherever the environment variable
// PARLEY_MLS_VECTORS points. Whether a test without them is skipped or
// fails (under CI=true) is decided by internal/testenv.
package vectors

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-chat/parley/internal/testenv"
)

// Load decodes the vector file name (e.g. "tree-math.json") into v. If the
// vectors are missing it skips the test, or fails it when CI=true
// (testenv.MLSVectors).
func Load(t testing.TB, name string, v any) {
	t.Helper()
	dir := testenv.MLSVectors(t)
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		testenv.Unavailable(t, testenv.NeedMLSVectors, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("vectors: decode %s: %v", name, err)
	}
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
