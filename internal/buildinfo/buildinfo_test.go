package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	s := String("parley")
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if lines[0] != "parley "+Version() {
		t.Errorf("first line %q, want %q", lines[0], "parley "+Version())
	}
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "go: "+runtime.Version()+" ") {
		t.Errorf("String() = %q, want a go line", s)
	}
}
